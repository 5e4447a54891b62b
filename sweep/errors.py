"""Turn what Hydra, OmegaConf and sweep raise about bad input into one line: what was wrong, what is allowed."""
from __future__ import annotations

import re
import sys
from typing import Any, Callable, NoReturn

from hydra.errors import ConfigCompositionException, HydraException, OverrideParseException
from omegaconf.errors import OmegaConfBaseException

USER_ERROR_EXIT = 2


class ConfigError(ValueError):
    """A config value is invalid. The message is one line: what was wrong and what is allowed.

    Defined here, not in sweep.config, so that reporting an error never imports torch (via sweep.data)."""


def one_line(exc: BaseException) -> str | None:
    """The one-line message for a user error, or None when `exc` is a bug that deserves its traceback."""
    from sweep.data import DataError

    if isinstance(exc, (ConfigError, DataError)):
        return str(exc)
    text = str(exc)
    m = re.search(r"Could not find '([\w/]+)/([^']+)'", text)
    if m and "Available options" in text:
        group, value = m.group(1), m.group(2)
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        return f"unknown {group} '{value}'; choices: {', '.join(options)}"
    cause = exc.__cause__
    if isinstance(exc, ConfigCompositionException) and "Error merging override" in text and cause is not None:
        override = text.split("Error merging override", 1)[1].strip()
        reason = str(cause).splitlines()[0]
        return f"invalid override {override}: {reason}"
    if isinstance(exc, ConfigCompositionException) and "Could not override" in text:
        key = re.search(r"Could not override '([^']+)'", text)
        return (f"unknown config key '{key.group(1) if key else text}'; check the spelling "
                "(`sweep run --cfg job` lists every key)")
    if isinstance(exc, ValueError) and "can be specified" in text:  # Hydra's mutually exclusive flags
        return text.splitlines()[0] + " (e.g. `sweep run --cfg job` without -m)"
    if isinstance(exc, (OverrideParseException, HydraException, OmegaConfBaseException)):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if isinstance(cause, OmegaConfBaseException):
            lines.append(str(cause).splitlines()[0])
        return "; ".join(lines[:2]) if lines else type(exc).__name__
    return None


def report_user_errors(func: Callable[[], Any]) -> Any:
    """Hydra's run_and_report, but user errors become one line on stderr and exit status 2."""
    try:
        return func()
    except Exception as exc:
        msg = one_line(exc)
        if msg is None:
            raise
        fail(msg)


def fail(msg: str) -> NoReturn:
    print(f"sweep: error: {msg}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT)

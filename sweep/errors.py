"""The one home of user errors: their types, and the one line every command prints for them.

Bad input (a config value, a data file, a Hydra override) is reported as `sweep: error: <one line>` with exit
status 2; anything else is a bug and keeps its traceback. Raise a `UserError` subclass, or let Hydra and OmegaConf
raise theirs: `one_line` turns both into the line (keeping the fix Hydra offers, e.g. `+sweeps=restarts`).
Import-light (no torch, no Hydra at import time), so that every module may raise these types.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130
T = TypeVar("T")


class UserError(ValueError):
    """Bad input the user can fix. The message is one line: what was wrong and what is allowed (or what to do).
    A ValueError, so code that predates this family and catches ValueError still catches it."""


class ConfigError(UserError):
    """A config value is invalid."""


class DataError(UserError):
    """A problem with the data config or the data files (raised by sweep.data)."""


class Interrupted(Exception):
    """Training stopped on request (preemption, time limit, Ctrl-C) after checkpointing every run of the pack."""


def first_line(e: BaseException) -> str:
    """An exception's message, first line only (its type's name when it has none): the one way every message
    of sweep quotes an exception."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def described(e: BaseException) -> str:
    """`TypeName: first line of its message` (the type alone when it has none)."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def storage_problem(exc: BaseException) -> str | None:
    """One line for an OSError of the results store (full disk, read-only folder, a file where a folder should
    be), or None for anything else."""
    import errno

    if not isinstance(exc, OSError):
        return None
    where = exc.filename or "the results folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device holding {where}: free space (or set out_dir=...) and rerun to resume"
    if exc.errno == errno.EISDIR:  # os.replace(tmp, path) onto a folder: filename2 is the file sweep writes
        return f"{exc.filename2 or where} is a folder where sweep writes a file: move it away and rerun"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
        return f"cannot write {where}: {exc.strerror}; choose a writable out_dir=..."
    return None


def one_line(exc: BaseException) -> str | None:
    """The one-line message for a user error, or None when `exc` is a bug that deserves its traceback."""
    from hydra.errors import ConfigCompositionException, HydraException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, OSError):  # the results store: a full disk, a read-only or file-typed out_dir
        msg = storage_problem(exc)
        if msg is not None:  # (Hydra's MissingConfigException is an OSError too: read on)
            return msg
    inner = _user_error_cause(exc, (UserError,))
    if inner is not None:  # raised inside OmegaConf (e.g. by a resolver) and wrapped by it
        return str(inner)
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
        return _could_not_override(text, cause)
    if isinstance(exc, ConfigCompositionException) and "Could not append" in text:  # its lines are the fixes
        return "; ".join(ln.strip() for ln in text.splitlines() if ln.strip())
    if "LexerNoViableAltException" in text and re.search(r"[^\x00-\x7f]", text):
        override = text.splitlines()[0].split(":", 1)[-1].strip()
        return (
            f"cannot parse override {override}: quote values with "
            "non-ASCII characters, e.g. \"name='日本語'\" or \"wandb.tags=['日本語']\""
        )
    yaml_problem = _yaml_problem(exc)
    if yaml_problem:
        return yaml_problem
    if text.startswith("Ambiguous value for argument"):  # a comma list in a single run: most often a missing -m
        arg = text.split("'")[1] if text.count("'") >= 2 else "key=a,b"
        key = arg.split("=", 1)[0]
        return (
            f"{arg} is a list of values: add -m to run one job each (sweep run -m {arg}), "
            f"or write {key}=[...] for a list value"
        )
    if isinstance(exc, ValueError) and "can be specified" in text:  # Hydra's mutually exclusive flags
        return text.splitlines()[0] + " (e.g. `sweep run --cfg job` without -m)"
    if isinstance(exc, (OverrideParseException, HydraException, OmegaConfBaseException)):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if isinstance(cause, OmegaConfBaseException):
            lines.append(str(cause).splitlines()[0])
        return "; ".join(lines[:2]) if lines else type(exc).__name__
    return None


def _yaml_problem(exc: BaseException) -> str | None:
    """One line for a config file that is not YAML (a `--config-dir` file written by hand), or None."""
    try:
        import yaml
    except ImportError:
        return None
    if not isinstance(exc, yaml.MarkedYAMLError):
        return None
    mark = exc.problem_mark or exc.context_mark
    where = f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}" if mark else "a config file"
    what = "; ".join(x for x in (exc.context, exc.problem) if x)
    return f"cannot parse {where} as YAML: {what}; fix the file (or leave it out of --config-dir)"


def _user_error_cause(exc: BaseException, kinds: tuple[type, ...]) -> BaseException | None:
    """The first exception of `kinds` in the __cause__/__context__ chain of `exc`, or None."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, kinds):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def _could_not_override(text: str, cause: BaseException | None) -> str:
    """One line for Hydra's "Could not override 'key'": keep Hydra's own fix (its `+key=value` hint) where
    it works: for a group not in the defaults list (`+sweeps=restarts`) and for a new key of a free-form dict
    such as cluster.additional_parameters. For a typed section the key really is unknown: no `+` adds it."""
    key_m = re.search(r"Could not override '([^']+)'", text)
    key = key_m.group(1) if key_m else text
    fix_m = re.search(r"use (\+\S+)", text)
    fix = fix_m.group(1) if fix_m else None
    if fix and "No match in the defaults list" in text:
        return (
            f"unknown config key '{key}': '{key}' is a config group that is not chosen by default; "
            f"add it with a leading '+': {fix}"
        )
    if fix and "object_type=dict" in str(cause):  # OmegaConf's words for a free-form (Dict[str, Any]) node
        full = getattr(cause, "full_key", None) or key
        return (
            f"'{full}' is a new key of the dict {key.rsplit('.', 1)[0] if full == key else key}: "
            f"add new keys with a leading '+': {fix}"
        )
    return f"unknown config key '{key}'; check the spelling (`sweep run --cfg job` lists every key)"


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Inside: a user error (`one_line` has a line for it) prints that line and exits with status 2; anything
    else propagates with its traceback."""
    try:
        yield
    except Exception as exc:
        msg = one_line(exc)
        if msg is None:
            raise
        fail(msg)


@contextlib.contextmanager
def reworded(prefix: str = "", suffix: str = "") -> Iterator[None]:
    """Inside: a user error is raised again as ConfigError(prefix + its one line + suffix), without the chain
    of the original (its line says all); anything else propagates unchanged."""
    try:
        yield
    except Exception as exc:
        msg = one_line(exc)
        if msg is None:
            raise
        raise ConfigError(f"{prefix}{msg}{suffix}") from None


def train_guarded(train: Callable[[], T]) -> T:
    """Call train(); an interruption becomes one line and exit status 130, a user error (a full disk, an
    unwritable out_dir) one line and exit status 2, here rather than through Hydra's job-failure log."""
    try:
        with exit_on_user_error():
            return train()
    except Interrupted as e:
        print(f"sweep: interrupted: {e}; run the same command again to resume", file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT) from None
    except KeyboardInterrupt:
        print(
            "sweep: interrupted at once: runs resume from their last periodic checkpoint when the same command "
            "is run again",
            file=sys.stderr,
        )
        raise SystemExit(INTERRUPTED_EXIT) from None


def fail(msg: str) -> NoReturn:
    """Print `msg` as sweep's one error line and exit with status 2 (bad input)."""
    print(f"sweep: error: {msg}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT)

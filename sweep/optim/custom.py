"""optimizer=custom: a student's own `torch.optim.Optimizer` subclass, swept like a built-in optimizer.

    sweep run optimizer=custom optimizer.cls=hw1.optim.MyAdam optimizer.kwargs='{betas:[0.9,0.99]}' lr=1e-3

`optimizer.cls` is `module.Class`, imported as `python -m` would find it: from the current directory (where the
command is run; on SLURM, the submission directory) or PYTHONPATH. Each model of a pack gets its own instance on
its own parameters (as optimizer.impl=torch does), so the batched forward/backward is shared and the update is
the student's, model by model; checkpoints hold its `state_dict()`.

`optimizer.cls` may also name an update *function*, written like sweep's own (sweep/optim/*.py):

    def update(p, grad, state, *, lr, **kwargs):   # in place on p; state: a dict kept between steps
        ...

It is called once per step on the stacked parameters of the whole pack ([K, ...] tensors, with lr a [K, 1, ...]
tensor that broadcasts over them), so a student's functional optimizer trains fully batched; its state tensors
are sliced, checkpointed and resumed like sweep's own.

The student's source is part of each run's identity: `optimizer.code` (set by sweep, never by hand) is a hash of
the module's file, or of every .py file of its top-level package, so fixing the code and rerunning trains new
runs instead of returning the old results; a run whose code changed after it was configured (a SLURM job
queued before the edit) fails with a line saying so instead of training other code under the old record.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch

from sweep.deadline import StepTimeout, time_limit
from sweep.errors import ConfigError, described
from sweep.isolation import ProcessEnded, in_own_process
from sweep.optim.base import per_model
from sweep.optim.spec import Knob, OptimizerSpec


def import_student_module(name: str) -> Any:
    """Import the student's module `name` as `python -m` finds modules: the current directory first, then
    PYTHONPATH (`sweep` is a console script, whose sys.path lacks the current directory). The one rule of
    `sweep run` and `sweep check`, so both import the same code for one name."""
    here = os.getcwd()
    if sys.path[:1] != [here]:
        if here in sys.path:
            sys.path.remove(here)
        sys.path.insert(0, here)
    return importlib.import_module(name)


def load_class(path: str | None) -> Any:
    """The Optimizer subclass or update function `module.name` names; ConfigError (one line) when it cannot be
    imported or is neither."""
    if not path or "." not in path:
        raise ConfigError(
            f"optimizer.cls={path!r} is invalid: optimizer=custom needs optimizer.cls=MODULE.CLASS, "
            "e.g. optimizer.cls=hw1.optim.MyAdam (a module in this directory or on PYTHONPATH)"
        )
    module_name, _, cls_name = path.rpartition(".")
    here = os.getcwd()
    try:
        module = import_student_module(module_name)
    except Exception as e:
        raise ConfigError(
            f"optimizer.cls={path}: cannot import module {module_name!r} from {here} or PYTHONPATH ({described(e)})"
        ) from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise ConfigError(f"optimizer.cls={path}: module {module_name!r} ({module.__file__}) has no {cls_name!r}")
    if not (is_functional(cls) or (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer))):
        raise ConfigError(
            f"optimizer.cls={path} is not a torch.optim.Optimizer subclass (nor an update function "
            "update(p, grad, state, *, lr, ...))"
        )
    return cls


MAX_SOURCE_FILES = 2000  # a package bigger than a homework is hashed by its first files (sorted) only


def code_version(path: str) -> str:
    """sha256 (16 hex digits) of the source `optimizer.cls=path` comes from: every .py file (names and bytes) of
    the top-level package holding the module, or the module's own file when it is not in a package. ConfigError
    as `load_class` when it cannot be imported."""
    load_class(path)
    top = path.split(".")[0]
    module = sys.modules[path.rpartition(".")[0]]
    package_dirs = list(getattr(sys.modules[top], "__path__", []))
    if package_dirs:
        files = sorted({f for d in package_dirs for f in Path(d).rglob("*.py") if "__pycache__" not in f.parts})
        files, roots = files[:MAX_SOURCE_FILES], [Path(d).parent for d in package_dirs]
    else:
        files = [Path(module.__file__)] if getattr(module, "__file__", None) else []
        roots = [f.parent for f in files]
    h = hashlib.sha256()
    for f in files:
        root = next((r for r in roots if f.is_relative_to(r)), f.parent)
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def check_code_unchanged(cfg_optimizer: dict) -> None:
    """ConfigError (one line) when the student's source differs from the version the run was configured with."""
    recorded = cfg_optimizer.get("code")
    if recorded is None:  # a run configured before sweep recorded the code
        return
    now = code_version(cfg_optimizer.get("cls"))
    if now != recorded:
        raise ConfigError(
            f"optimizer.cls={cfg_optimizer.get('cls')}: the code changed since this run was configured "
            f"(code {recorded}, now {now}); run the command again to train the new code as new runs"
        )


def is_functional(obj: Any) -> bool:
    """An update function (batched over the pack), as opposed to an Optimizer class (one instance per model)."""
    return inspect.isfunction(obj)


def functional_update(cfg_optimizer: dict) -> Callable[..., None] | None:
    """update(p, grad, state, lr=[K] tensor) calling the configured function with lr shaped to broadcast over
    p and the configured kwargs; None when the configured cls is a class."""
    fn = load_class(cfg_optimizer.get("cls"))
    if not is_functional(fn):
        return None
    check_code_unchanged(cfg_optimizer)
    kwargs = dict(cfg_optimizer.get("kwargs") or {})

    def update(p: torch.Tensor, grad: torch.Tensor, state: dict, *, lr: Any, **_: Any) -> None:
        fn(p, grad, state, lr=per_model(lr, p), **kwargs)

    return update


def make(cfg_optimizer: dict, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """One instance of the configured class on `params`: cls(params, lr=lr, **kwargs)."""
    cls = load_class(cfg_optimizer.get("cls"))
    check_code_unchanged(cfg_optimizer)
    return cls(params, lr=lr, **dict(cfg_optimizer.get("kwargs") or {}))


def check(cfg_optimizer: dict, lr: float) -> None:
    """Build and step the optimizer once on a throwaway parameter, so that a class that rejects `lr` or a kwarg
    fails before anything is written or submitted (ConfigError, one line)."""
    p = torch.zeros(3, requires_grad=True)
    try:
        fn = functional_update(cfg_optimizer)
        if fn is not None:  # two models of one parameter [2, 3], as a pack calls it
            with torch.no_grad():
                fn(torch.zeros(2, 3), torch.ones(2, 3), {}, lr=torch.full((2,), float(lr)))
            return
        opt = make(cfg_optimizer, [p], lr)
        p.grad = torch.ones(3)
        opt.step()
    except ConfigError:
        raise
    except (Exception, SystemExit) as e:  # SystemExit: the student's code called sys.exit
        kwargs: Any = dict(cfg_optimizer.get("kwargs") or {})
        what = f"called sys.exit({e.code!r})" if isinstance(e, SystemExit) else f"{described(e)}"
        cls = cfg_optimizer.get("cls")
        raise ConfigError(f"optimizer.cls={cls}(params, lr={lr}, **{kwargs}) failed: {what}") from None


def check_isolated(checks: list[tuple[dict, float]], timeout_s: float | None = None) -> None:
    """`check` of each (optimizer config, lr), in a process of its own: a student's optimizer that ends its
    process (os._exit, a crash in native code) or hangs at its first step is one line (ConfigError) here,
    before anything is written or submitted, instead of the silent end of `sweep run`."""
    if not checks:
        return
    try:
        problems = in_own_process(_check_each, checks, timeout_s)
    except ProcessEnded:
        cls = checks[0][0].get("cls")
        raise ConfigError(f"optimizer.cls={cls} ended its process at its first step (os._exit, or a crash)") from None
    for problem in problems:
        if problem:
            raise ConfigError(problem)


def _check_each(checks: list[tuple[dict, float]], timeout_s: float | None) -> list[str | None]:
    """In the checking process: each check's one-line problem, or None."""
    out: list[str | None] = []
    for o, lr in checks:
        try:
            with time_limit(timeout_s, f"the first step of optimizer.cls={o.get('cls')}"):
                check(o, lr)
            out.append(None)
        except (ConfigError, StepTimeout) as e:
            out.append(str(e))
    return out


def _text_or_none(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _mapping_or_none(v: Any) -> bool:
    return v is None or isinstance(v, dict)


def _custom_rule(o: dict) -> str | None:
    if not o["cls"]:
        return "optimizer=custom needs optimizer.cls=MODULE.CLASS, e.g. optimizer.cls=hw1.optim.MyAdam"
    return None


def with_code(cfg: dict) -> dict:
    """`cfg` with `optimizer.code` set to the student's source version when the optimizer is custom (what
    composition does once per config, before run_id is taken); other configs unchanged."""
    o = cfg.get("optimizer") or {}
    if o.get("name") != "custom":
        return cfg
    if o.get("code") is not None:
        raise ConfigError(
            f"optimizer.code={o['code']} is set by sweep (a hash of the source of optimizer.cls), not by hand: "
            "remove it"
        )
    return dict(cfg, optimizer=dict(o, code=code_version(o["cls"])))


SPECS = (
    OptimizerSpec(
        "custom",
        family="custom",
        updater="custom",
        knobs=(
            Knob("cls", Optional[str], None, _text_or_none, "MODULE.CLASS", added_later=True),
            Knob("kwargs", Any, None, _mapping_or_none, "a mapping, e.g. {betas:[0.9,0.99]}", added_later=True),
            Knob("code", Optional[str], None, _text_or_none, "set by sweep, not by hand", added_later=True),
        ),
        check=_custom_rule,
    ),
)

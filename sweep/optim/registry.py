"""Every optimizer `optimizer=<name>` can select: the SPECS of each module in sweep/optim/, found by import.

A new optimizer is a new module here ending with `SPECS = (OptimizerSpec(...),)` plus its
conf/optimizer/<name>.yaml; nothing else lists optimizers.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import sweep.optim as _package
from sweep.optim.spec import Knob, OptimizerSpec

# listed first, in this order (the order of `optimizer.` keys in configs and of choices in messages); any other
# module with SPECS follows, alphabetically
_FIRST = ("sgd", "adagrad", "rmsprop", "adam", "anneal", "custom")


def _collect() -> dict[str, OptimizerSpec]:
    found = {m.name for m in pkgutil.iter_modules(_package.__path__)}
    specs: dict[str, OptimizerSpec] = {}
    for module in [*(m for m in _FIRST if m in found), *sorted(found - set(_FIRST))]:
        for spec in getattr(importlib.import_module(f"sweep.optim.{module}"), "SPECS", ()):
            if spec.name in specs:
                raise RuntimeError(f"optimizer {spec.name!r} is defined twice (sweep/optim/{module}.py)")
            specs[spec.name] = spec
    return specs


SPECS: dict[str, OptimizerSpec] = _collect()
OPTIMIZERS: tuple[str, ...] = tuple(SPECS)


def _knobs() -> dict[str, Knob]:
    """Every knob of every optimizer, by name; a knob several optimizers read has one type and one default."""
    out: dict[str, Knob] = {}
    for spec in SPECS.values():
        for k in spec.knobs:
            seen = out.setdefault(k.name, k)
            if (seen.type, seen.default) != (k.type, k.default):
                raise RuntimeError(f"optimizer.{k.name} has two types or defaults: {seen} and {k} ({spec.name})")
    return out


KNOBS: dict[str, Knob] = _knobs()


def spec_of(name: str) -> OptimizerSpec:
    """The spec of `optimizer=name`; KeyError for an unknown name (config validation refuses those first)."""
    return SPECS[name]


def knobs_read(name: str) -> tuple[str, ...]:
    """The `optimizer.` knobs that optimizer `name` reads."""
    return SPECS[name].knob_names


def schema_fields() -> list[tuple[str, Any, Any]]:
    """(name, type, default) of every knob, in registry order: the fields of the config's OptimizerConfig."""
    return [(k.name, k.type, k.default) for k in KNOBS.values()]

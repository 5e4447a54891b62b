"""The import contract (`make lint` runs this file): no cycle among sweep's modules, function-level imports
included; errors.py at the bottom; the reading commands load neither torch nor Hydra. docs/architecture.md
draws the layers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# folder -> the package it installs as (pyproject.toml's package-dir)
PACKAGES = {"sweep": "sweep", "analysis": "sweep.analysis", "hydra_plugins": "hydra_plugins"}
READERS = ("sweep.cli", "sweep.status", "sweep.collect", "sweep.sync", "sweep.show", "sweep.report", "sweep.study")


def modules() -> dict[str, Path]:
    out = {}
    for folder, pkg in PACKAGES.items():
        for p in (REPO / folder).rglob("*.py"):
            name = ".".join((pkg, *p.relative_to(REPO / folder).with_suffix("").parts))
            out[name.removesuffix(".__init__")] = p
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project's modules it imports anywhere in its text (top level or inside functions)."""

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in mods.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {known(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:  # `from sweep import schedule` imports the module sweep.schedule
                    full = f"{node.module}.{a.name}"
                    found.add(full if full in mods else known(node.module))
        graph[name] = {m for m in found if m and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_back_up_not_even_inside_a_function():
    found = cycles(imports(modules()))
    assert not found, f"import cycles: {found}"


def test_the_checker_finds_a_cycle_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_errors_is_the_bottom_layer():
    """Every module may raise sweep's errors, so errors.py imports nothing of the project."""
    assert imports(modules())["sweep.errors"] == set()


def test_reading_commands_load_neither_torch_nor_hydra():
    code = (
        f"import sys; import {', '.join(READERS)}; "
        "print(sorted(m for m in ('torch', 'hydra', 'omegaconf', 'wandb', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

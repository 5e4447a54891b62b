"""sweep.errors: one family of user errors, each one line that keeps Hydra's fix; Hydra left unpatched."""

from __future__ import annotations

import pytest
from conftest import REPO, make_cfg
from hydra import compose, initialize_config_module

from sweep.config import ConfigError


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "override, message",
    [
        (
            "cluster.additional_parameters={hold:true}",
            "add new keys with a leading '+': +cluster.additional_parameters={hold:true}",
        ),
        ("cluster.additional_parameters.hold=true", "+cluster.additional_parameters.hold=true"),
        (
            "sweeps=restarts",
            "unknown config key 'sweeps': 'sweeps' is a config group that is not chosen by default; "
            "add it with a leading '+': +sweeps=restarts",
        ),
        ("optimizer.momentm=0.9", "unknown config key 'optimizer.momentm'; check the spelling"),
        (
            "+lr=0.2",
            "An item is already at 'lr'.; Either remove + prefix: 'lr=0.2'; "
            "Or add a second + to add or override 'lr': '++lr=0.2'",
        ),
    ],
)
def test_composition_errors_keep_hydras_fix(override, message):
    import sweep.compose  # noqa: F401  (registers the schema)
    from sweep.errors import one_line

    with initialize_config_module(config_module="sweep.conf", version_base="1.3"), pytest.raises(Exception) as info:
        compose(config_name="config", overrides=[override])
    msg = one_line(info.value)
    assert msg is not None and message in msg and "\n" not in msg, msg


@pytest.mark.parametrize(
    "fix", ["+cluster.additional_parameters={hold:true}", "+cluster.additional_parameters.hold=true"]
)
def test_the_suggested_fix_for_additional_parameters_works(tmp_path, fix):
    assert make_cfg(tmp_path, "cluster=slurm", fix)["cluster"]["additional_parameters"] == {"hold": True}


# ------------------------------------------------------------------------------------------------ one home
def test_user_errors_are_one_family_defined_in_sweep_errors():
    import sweep.config
    import sweep.data
    from sweep import errors

    assert sweep.data.DataError is errors.DataError and sweep.config.ConfigError is errors.ConfigError
    for kind in (errors.ConfigError, errors.DataError):
        assert issubclass(kind, errors.UserError) and issubclass(kind, ValueError)
        assert errors.one_line(kind("what was wrong: what to do")) == "what was wrong: what to do"


def test_reworded_keeps_the_line_and_lets_bugs_through():
    from sweep.data import DataError
    from sweep.errors import reworded

    with (
        pytest.raises(ConfigError, match=r"^point \[a\]: no file; nothing ran$"),
        reworded("point [a]: ", "; nothing ran"),
    ):
        raise DataError("no file")
    with pytest.raises(KeyError), reworded("point: "):
        raise KeyError("a bug keeps its type and traceback")


def test_nothing_imports_the_entry_point_and_hydra_is_not_patched():
    """sweep.app is the Hydra entry point: only sweep.cli may import it (an import loop ran app -> hydra plugin
    -> sweep.launch -> sweep.app); and sweep reports Hydra's errors without replacing Hydra's functions."""
    import ast

    import hydra._internal.utils as hydra_utils

    importers = []
    for path in [*(REPO / "sweep").rglob("*.py"), *(REPO / "hydra_plugins").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n == "sweep.app" or (n or "").startswith("sweep.app.") for n in names):
                importers.append(path.relative_to(REPO).as_posix())
    assert importers == ["sweep/cli.py"]
    import sweep.app  # noqa: F401

    assert hydra_utils.run_and_report.__module__ == "hydra._internal.utils"

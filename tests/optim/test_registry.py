"""The optimizer registry: every optimizer is one module with SPECS plus one conf/optimizer/<name>.yaml, and
everything else (config schema, validation, packing, the trainer's update) derives from it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from sweep.optim.registry import SPECS

REPO = Path(__file__).resolve().parents[2]


def test_every_optimizer_has_its_config_and_every_config_its_optimizer():
    confs = {p.stem for p in (REPO / "conf" / "optimizer").glob("*.yaml")}
    assert confs == set(SPECS)


def _conf(name: str) -> dict:
    """conf/optimizer/<name>.yaml's optimizer settings (a `_global_` package keeps them under `optimizer:`)."""
    text = (REPO / "conf" / "optimizer" / f"{name}.yaml").read_text()
    conf = yaml.safe_load(text)
    return conf["optimizer"] if "@package _global_" in text else conf


@pytest.mark.parametrize("name", sorted(SPECS))
def test_an_optimizers_config_sets_only_its_own_knobs(name):
    keys = set(_conf(name)) - {"name", "impl"}
    assert keys <= set(SPECS[name].knob_names), keys - set(SPECS[name].knob_names)


@pytest.mark.parametrize("name", [n for n, s in SPECS.items() if s.torch_class is not None])
def test_the_torch_twin_takes_the_configs_knobs(name):
    """make_torch builds torch.optim's optimizer from the config's knobs (their yaml defaults) without error."""
    o = {**_conf(name), "name": name}
    for knob in SPECS[name].knobs:
        o.setdefault(knob.name, knob.default)
    p = torch.zeros(3, requires_grad=True)
    opt = SPECS[name].make_torch(o, [p], 0.1)
    assert isinstance(opt, SPECS[name].torch_class) and opt.param_groups[0]["lr"] == 0.1


SIGN_SGD = '''
"""signSGD with momentum on the sign (a test optimizer, found by the registry)."""
import torch
from sweep.optim.base import per_model
from sweep.optim.spec import Knob, OptimizerSpec, in_range


def init_state(p, **_):
    return {"buf": torch.zeros_like(p)}


def update(p, grad, state, *, lr, sign_beta=0.0, **_):
    state["buf"].mul_(per_model(sign_beta, p)).add_(grad)
    p.sub_(per_model(lr, p) * state["buf"].sign())


SPECS = (
    OptimizerSpec(
        "signsgd",
        family="signsgd",
        knobs=(Knob("sign_beta", float, 0.0, in_range(0, 1, high_open=True), "0 <= sign_beta < 1"),),
        update=update,
        init_state=init_state,
        update_kwargs=lambda o: {"sign_beta": o["sign_beta"]},
    ),
)
'''


def test_a_new_optimizer_is_one_module(tmp_path):
    """A module with SPECS on sweep.optim's path is a full optimizer: the config accepts its knob (and refuses a
    bad value in one line), and models with different values of it train as one pack and learn."""
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "signsgd.py").write_text(SIGN_SGD)
    script = textwrap.dedent(f"""
        import sweep.optim, torch
        sweep.optim.__path__.append({str(tmp_path / "plugin")!r})
        from conftest import make_cfg
        from sweep.config import ConfigError, validate
        from store_helpers import summary
        from sweep.runner import train_runs
        base = ["optimizer.name=signsgd", "data=spirals", "data.n_samples=200", "epochs=2", "batch_size=50",
                "model.hidden=[8]", "wandb.mode=disabled", "dtype=float64", "log_every=1"]
        try:
            make_cfg({str(tmp_path / "bad")!r}, *base, "optimizer.sign_beta=1.5")
        except ConfigError as e:
            print("REFUSED", e)
        cfgs = [make_cfg({str(tmp_path / "runs")!r}, *base, f"optimizer.sign_beta={{b}}", f"lr={{lr}}")
                for b, lr in ((0.0, 0.01), (0.9, 0.003))]
        train_runs(cfgs, pack=2, progress=False)
        for c in cfgs:
            s = summary(c)
            print("RUN", s["status"], s["pack_size"], s["final_train_loss"] < s["first_loss"])
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO / "tests", capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "REFUSED optimizer.sign_beta=1.5 is invalid: use 0 <= sign_beta < 1" in proc.stdout
    assert proc.stdout.count("RUN done 2 True") == 2, proc.stdout

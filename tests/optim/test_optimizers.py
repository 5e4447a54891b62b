"""sweep.optim's from-scratch optimizers against torch.optim, on a real MLP loss, in float64.

Every configuration trains two copies of the same MLP for 200 minibatch steps, one with torch.optim.<Name> and one
with sweep.optim.<Name>, and requires the parameters to agree to 1e-6 relative (they agree to ~1e-13). Variants:
resuming from a state_dict saved mid-way, and a layer that has no gradient on odd steps. Then the K-vector path
(`update` on K stacked models with [K] hyperparameters) is checked against K separate scalar runs.
"""

from __future__ import annotations

import copy
import functools
import inspect
import io

import pytest
import torch
from torch import nn

import sweep.optim as so
from sweep.optim import adagrad, adam, rmsprop, sgd

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


STEPS, RESUME_AT = 200, 100
TOL = 1e-6
N, D_IN, HIDDEN, CLASSES, BATCH = 96, 12, 16, 4, 32


class MLP(nn.Module):
    """tanh MLP with an optional extra residual layer (used on every step, or only on even steps)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(D_IN, HIDDEN), nn.Tanh())
        self.extra = nn.Linear(HIDDEN, HIDDEN)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x: torch.Tensor, use_extra: bool = True) -> torch.Tensor:
        h = self.body(x)
        if use_extra:
            h = h + torch.tanh(self.extra(h))
        return self.head(h)


def _data():
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(N, D_IN, generator=g, dtype=torch.float64)
    w = torch.randn(D_IN, CLASSES, generator=g, dtype=torch.float64)
    y = (x @ w + 0.5 * torch.randn(N, CLASSES, generator=g, dtype=torch.float64)).argmax(1)
    batches = [torch.randperm(N, generator=g)[:BATCH] for _ in range(STEPS)]
    return x, y, batches


X, Y, BATCHES = _data()


def _net() -> MLP:
    torch.manual_seed(0)
    return MLP().double()


NET0 = _net()


def _step(net: MLP, opt: torch.optim.Optimizer, t: int, sometimes: bool) -> None:
    opt.zero_grad()  # set_to_none=True: a layer unused this step has .grad None
    idx = BATCHES[t]
    loss = nn.functional.cross_entropy(net(X[idx], use_extra=(not sometimes) or t % 2 == 0), Y[idx])
    loss.backward()
    opt.step()


def _train(cls, kwargs: dict, *, sometimes: bool = False, resume_at: int | None = None) -> list[list[torch.Tensor]]:
    """Parameters after every step (a list per step) of a fresh copy of NET0 trained by cls(**kwargs)."""
    net = copy.deepcopy(NET0)
    opt = cls(net.parameters(), **kwargs)
    traj = []
    for t in range(STEPS):
        if t == resume_at:
            buf = io.BytesIO()
            torch.save(opt.state_dict(), buf)
            net = copy.deepcopy(net)  # fresh parameter tensors, same values
            opt = cls(net.parameters(), **kwargs)
            buf.seek(0)
            opt.load_state_dict(torch.load(buf))
        _step(net, opt, t, sometimes)
        traj.append([p.detach().clone() for p in net.parameters()])
    return traj


@functools.cache
def _cached(cls, frozen: tuple, sometimes: bool) -> list[list[torch.Tensor]]:
    return _train(cls, dict(frozen), sometimes=sometimes)


def trajectory(cls, kwargs: dict, *, sometimes: bool = False) -> list[list[torch.Tensor]]:
    """_train, remembered: torch's run serves all variants, our uninterrupted run is the resume test's reference."""
    return _cached(cls, tuple(sorted(kwargs.items())), sometimes)


def max_rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest elementwise |a − b| / (|b| + 1e-8) over all parameter tensors."""
    return max(float(((x - y).abs() / (y.abs() + 1e-8)).max()) for x, y in zip(a, b))


def moved(traj: list[list[torch.Tensor]]) -> float:
    return max(float((p - p0.detach()).abs().max()) for p, p0 in zip(traj[-1], NET0.parameters()))


# (ours, torch's, kwargs): defaults first, then every argument away from its default
CONFIGS = [
    ("SGD", {}),
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("SGD", dict(lr=0.01, momentum=0.5, maximize=True)),
    ("Adagrad", {}),
    ("Adagrad", dict(lr=0.05, lr_decay=1e-2, weight_decay=1e-2, initial_accumulator_value=0.1, eps=1e-6)),
    ("Adagrad", dict(lr=0.02, maximize=True)),
    ("RMSprop", {}),
    ("RMSprop", dict(lr=1e-3, alpha=0.9, eps=1e-6, weight_decay=1e-2)),
    ("RMSprop", dict(lr=1e-3, momentum=0.9)),
    ("RMSprop", dict(lr=1e-3, centered=True)),
    ("RMSprop", dict(lr=5e-4, alpha=0.95, eps=1e-5, weight_decay=1e-3, momentum=0.8, centered=True)),
    ("RMSprop", dict(lr=1e-3, maximize=True)),
    ("Adam", {}),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
    ("Adam", dict(lr=1e-2, amsgrad=True)),
    ("Adam", dict(lr=5e-3, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", {}),
    ("AdamW", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.05, amsgrad=True)),
    ("AdamW", dict(lr=1e-3, weight_decay=0.0, maximize=True)),
]
IDS = [f"{n}-" + (",".join(f"{k}={v}" for k, v in kw.items()) or "defaults") for n, kw in CONFIGS]


@pytest.mark.parametrize("variant", ["plain", "resume", "sometimes_no_grad"])
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_torch(name: str, kwargs: dict, variant: str) -> None:
    ours, theirs = getattr(so, name), getattr(torch.optim, name)
    sometimes = variant == "sometimes_no_grad"
    ref = trajectory(theirs, kwargs, sometimes=sometimes)
    if variant == "resume":
        got = _train(ours, kwargs, resume_at=RESUME_AT)
    else:
        got = trajectory(ours, kwargs, sometimes=sometimes)
    assert moved(ref) > 1e-3, "the comparison is vacuous: the parameters hardly moved"
    worst = max(max_rel(g, r) for g, r in zip(got, ref))
    assert worst <= TOL, f"max relative difference to torch.optim.{name}: {worst:.3g}"
    if variant == "resume":
        # resuming is invisible: the trajectory is bit-for-bit the uninterrupted one
        straight = trajectory(ours, kwargs)
        assert all(torch.equal(a, b) for s1, s2 in zip(got, straight) for a, b in zip(s1, s2))
    if sometimes:
        # the extra layer really had no gradient on odd steps: it did not move on them
        extra = [i for i, (n, _) in enumerate(NET0.named_parameters()) if n.startswith("extra")]
        for t in range(1, STEPS, 2):
            assert all(torch.equal(got[t][i], got[t - 1][i]) for i in extra)


def test_state_untouched_without_grad() -> None:
    """A parameter whose .grad is None is skipped: neither it nor its optimizer state changes."""
    a, b = (
        torch.ones(3, dtype=torch.float64, requires_grad=True),
        torch.ones(2, dtype=torch.float64, requires_grad=True),
    )
    opt = so.Adam([a, b], lr=0.1)
    (a.sum() + b.sum()).backward()
    opt.step()
    opt.zero_grad()
    b_state = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in opt.state[b].items()}
    b_before = b.detach().clone()
    (a**2).sum().backward()
    opt.step()
    assert b.grad is None and torch.equal(b, b_before)
    assert opt.state[b]["step"] == b_state["step"] == 1
    assert torch.equal(opt.state[b]["exp_avg"], b_state["exp_avg"])
    assert opt.state[a]["step"] == 2


ARGS = {
    "SGD": ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"),
    "Adagrad": ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize"),
    "RMSprop": ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"),
    "Adam": ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"),
    "AdamW": ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"),
}


@pytest.mark.parametrize("name", list(ARGS))
def test_constructor_defaults_equal_torch(name: str) -> None:
    ours = inspect.signature(getattr(so, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
    for arg in ARGS[name]:
        assert arg in ours, f"{name} lacks {arg}"
        assert ours[arg].default == theirs[arg].default, f"{name}({arg}=...) default differs from torch"
    # positional order of the positional arguments is torch's too (drop-in replacement)
    pos = [p for p in ours if ours[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert pos == [p for p in theirs if p in pos]


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", dict(lr=-1.0)),
        ("SGD", dict(nesterov=True)),
        ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True)),
        ("Adagrad", dict(eps=-1.0)),
        ("RMSprop", dict(alpha=-0.1)),
        ("Adam", dict(betas=(1.0, 0.9))),
        ("AdamW", dict(lr=-1e-3)),
    ],
)
def test_invalid_arguments_rejected_like_torch(name: str, kwargs: dict) -> None:
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError):
        getattr(torch.optim, name)(p, **kwargs)
    with pytest.raises(ValueError):
        getattr(so, name)(p, **kwargs)


# ------------------------------------------------------------------------------------------------ K-vector path
K, KSTEPS = 3, 50
SHAPE = (5, 4)

# family -> (module, K-vector hyperparameters, structural flags to try)
KVEC = {
    "sgd": (
        sgd,
        dict(lr=[0.1, 0.03, 0.01], momentum=[0.0, 0.9, 0.5], dampening=[0.2, 0.0, 0.3], weight_decay=[0.0, 1e-2, 0.1]),
        [dict(), dict(maximize=True)],
    ),
    "sgd_nesterov": (
        sgd,
        dict(lr=[0.1, 0.03, 0.01], momentum=[0.9, 0.5, 0.99], dampening=[0.0, 0.0, 0.0], weight_decay=[0.0, 1e-2, 0.1]),
        [dict(nesterov=True)],
    ),
    "adagrad": (
        adagrad,
        dict(
            lr=[0.1, 0.01, 0.05],
            lr_decay=[0.0, 0.01, 0.1],
            weight_decay=[0.0, 1e-2, 0.1],
            initial_accumulator_value=[0.0, 0.1, 1.0],
            eps=[1e-10, 1e-6, 1e-3],
        ),
        [dict(), dict(maximize=True)],
    ),
    "rmsprop": (
        rmsprop,
        dict(
            lr=[1e-2, 1e-3, 5e-3],
            alpha=[0.99, 0.9, 0.5],
            eps=[1e-8, 1e-6, 1e-3],
            weight_decay=[0.0, 1e-2, 0.1],
            momentum=[0.0, 0.9, 0.5],
        ),
        [dict(), dict(centered=True), dict(maximize=True)],
    ),
    "adam": (
        adam,
        dict(
            lr=[1e-3, 1e-2, 3e-3],
            beta1=[0.9, 0.5, 0.0],
            beta2=[0.999, 0.9, 0.99],
            eps=[1e-8, 1e-6, 1e-3],
            weight_decay=[0.0, 1e-2, 0.1],
        ),
        [dict(), dict(amsgrad=True), dict(decoupled=True), dict(decoupled=True, amsgrad=True), dict(maximize=True)],
    ),
}
KVEC_CASES = [(fam, flags) for fam, (_, _, fl) in KVEC.items() for flags in fl]


@pytest.mark.parametrize("family,flags", KVEC_CASES, ids=[f"{f}-{','.join(fl) or 'plain'}" for f, fl in KVEC_CASES])
def test_k_vector_update_equals_k_separate_runs(family: str, flags: dict) -> None:
    mod, vec, _ = KVEC[family]
    g = torch.Generator().manual_seed(7)
    p0 = torch.randn(K, *SHAPE, generator=g, dtype=torch.float64)
    grads = [torch.randn(K, *SHAPE, generator=g, dtype=torch.float64) for _ in range(KSTEPS)]

    hyper = {k: torch.tensor(v, dtype=torch.float64) for k, v in vec.items()}
    pack = p0.clone()
    state = mod.init_state(pack, **hyper, **flags)
    for gr in grads:
        mod.update(pack, gr, state, **hyper, **flags)

    for k in range(K):
        scalar = {name: v[k] for name, v in vec.items()}
        alone = p0[k].clone()
        st = mod.init_state(alone, **scalar, **flags)
        for gr in grads:
            mod.update(alone, gr[k], st, **scalar, **flags)
        assert not torch.allclose(alone, p0[k]), "vacuous: the parameter did not move"
        rel = float(((pack[k] - alone).abs() / (alone.abs() + 1e-12)).max())
        assert rel <= 1e-12, f"model {k} ({scalar}): pack differs from its own run by {rel:.3g}"


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
        ("Adagrad", dict(lr=0.05, lr_decay=0.01)),
        ("RMSprop", dict(lr=1e-3, momentum=0.5, centered=True)),
        ("Adam", dict(lr=1e-2, amsgrad=True)),
        ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
    ],
)
def test_pack_of_one_with_vector_lr_matches_class(name: str, kwargs: dict) -> None:
    """The engine's call (stacked K = 1 parameters, lr a [1] tensor) is the class's maths on one model."""
    family = {"SGD": sgd, "Adagrad": adagrad, "RMSprop": rmsprop, "Adam": adam, "AdamW": adam}[name]
    ref = trajectory(getattr(so, name), kwargs)[-1]
    params = [p.detach().clone().unsqueeze(0).requires_grad_(True) for p in NET0.parameters()]
    hyper = {k: v for k, v in kwargs.items() if k != "lr"}
    if name.startswith("Adam"):
        hyper.update(decoupled=name == "AdamW")
        b1, b2 = hyper.pop("betas", (0.9, 0.999))
        hyper.update(beta1=b1, beta2=b2)
        if name == "AdamW":
            hyper.setdefault("weight_decay", 1e-2)
    states = [family.init_state(p, **hyper) for p in params]
    lr = torch.tensor([kwargs["lr"]], dtype=torch.float64)
    names = [n for n, _ in NET0.named_parameters()]
    for t in range(STEPS):
        idx = BATCHES[t]
        loss = nn.functional.cross_entropy(
            torch.func.functional_call(NET0, {n: p[0] for n, p in zip(names, params)}, (X[idx],)), Y[idx]
        )
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, gr, st in zip(params, grads, states):
                family.update(p, gr, st, lr=lr, **hyper)
    assert max_rel([p.detach()[0] for p in params], ref) <= 1e-12

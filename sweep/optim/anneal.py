"""Simulated annealing: gradient-free, the lecture's alternative to descent.

    θ' ← θ + η·ξ, ξ ~ N(0, I)            (η is the learning rate: the proposal scale, so schedules apply)
    T_t ← T₀ · c^t
    accept θ' if L(θ') ≤ L(θ), else with probability exp(−(L(θ') − L(θ)) / T_t)     (Metropolis)

A step costs two loss evaluations (current and proposal, on the same batch) and no gradient, or one when the
batch is the same as the previous step's (full batch, fixed order): the loss the previous step ended at is then the
current loss, bit for bit, and the caller passes it back (`current=`). The count is kept so comparisons with
gradient methods can be made per loss evaluation, honestly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from sweep.optim.base import Hyper, per_model
from sweep.optim.spec import Knob, OptimizerSpec, finite, is_bool


def anneal_step(
    params: Sequence[Tensor],
    loss_fn: Callable[[Sequence[Tensor]], Tensor],
    state: dict[str, Any],
    *,
    lr: Hyper,
    temperature: Hyper,
    cooling: Hyper,
    generators: Sequence[torch.Generator],
    relative_temperature: bool = False,
    current: Tensor | None = None,
) -> Tensor:
    """One Metropolis step on K stacked models; returns the [K] losses after the step.

    `loss_fn(params)` gives the [K] losses of stacked parameters; `generators[k]` drives model k's proposals and
    acceptance draws (CPU generators, so the stream is the same on any device and in any pack). `current`: the
    [K] losses of `params` on this step's batch when the caller has them (what the previous step returned, when
    the batch has not changed): one loss evaluation instead of two, the same step.
    """
    k = len(generators)
    t = state.setdefault("step", 0)
    evals = 1 if current is not None else 2
    if current is None:
        current = loss_fn(params)
    if relative_temperature and "first_loss" not in state:
        # T0 in units of each model's first loss: the same setting works whatever the loss's scale
        state["first_loss"] = current.detach().to(torch.float64).abs().clamp_min(torch.finfo(torch.float64).tiny)
    proposal = []
    for p in params:
        noise = torch.stack([torch.randn(p.shape[1:], generator=g, dtype=torch.float64) for g in generators])
        proposal.append(p + per_model(lr, p) * noise.to(p.device, p.dtype))
    new = loss_fn(proposal)
    u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators]).to(new.device)
    temp = (
        torch.as_tensor(temperature, dtype=torch.float64, device=new.device)
        * torch.as_tensor(cooling, dtype=torch.float64, device=new.device) ** t
    )
    if relative_temperature:
        temp = temp * state["first_loss"]
    delta = (new - current).to(torch.float64)
    accept = (delta <= 0) | (u < torch.exp(-delta / temp))
    accept = accept & torch.isfinite(new)
    for p, q in zip(params, proposal):
        p.copy_(torch.where(accept.view(k, *([1] * (p.ndim - 1))), q, p))
    state["step"] = t + 1
    state["loss_evals"] = state.get("loss_evals", 0) + evals
    state["accepted"] = state.get("accepted", 0) + accept.to(torch.int64)  # per model, no host sync
    return torch.where(accept, new, current)


class SimulatedAnnealing(torch.optim.Optimizer):
    """Metropolis-rule optimizer for one model: `step(closure)` needs a closure returning the loss (no backward).

    `loss_evals` counts closure calls, the cost measure to compare with gradient methods (2 per step and group).
    Each param group keeps its own step count (its temperature is T0·c^t with t the optimizer's steps, however many
    groups there are). `state_dict()` carries the proposal generator and `loss_evals`, so a resumed run draws the
    same proposals as an uninterrupted one.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        temperature: float = 1.0,
        cooling: float = 0.999,
        seed: int = 0,
        relative_temperature: bool = False,
    ) -> None:
        if lr <= 0 or temperature <= 0 or not 0 < cooling <= 1:
            raise ValueError("SimulatedAnnealing needs lr > 0, temperature > 0, 0 < cooling <= 1")
        super().__init__(
            params, dict(lr=lr, temperature=temperature, cooling=cooling, relative_temperature=relative_temperature)
        )
        self.generator = torch.Generator().manual_seed(seed)
        self.loss_evals = 0

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise ValueError("SimulatedAnnealing.step needs a closure that returns the loss")
        result = None
        for i, group in enumerate(self.param_groups):
            ps = [p for p in group["params"]]
            stacked = [p.unsqueeze(0) for p in ps]

            def loss_fn(candidate: Sequence[Tensor]) -> Tensor:
                saved = [p.clone() for p in ps]
                for p, c in zip(ps, candidate):
                    p.copy_(c[0])
                with torch.enable_grad():
                    loss = closure()
                for p, s in zip(ps, saved):
                    p.copy_(s)
                self.loss_evals += 1
                return torch.as_tensor(loss).detach().reshape(1)

            # one state per group: a shared one would advance the cooling clock once per group per step
            state = self.state.setdefault("anneal" if i == 0 else f"anneal_{i}", {})
            result = anneal_step(
                stacked,
                loss_fn,
                state,
                lr=group["lr"],
                temperature=group["temperature"],
                cooling=group["cooling"],
                generators=[self.generator],
                relative_temperature=group.get("relative_temperature", False),
            )
        return result[0]

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["generator"] = self.generator.get_state()
        sd["loss_evals"] = self.loss_evals
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        gen, evals = state_dict.pop("generator", None), state_dict.pop("loss_evals", None)
        super().load_state_dict(state_dict)
        if gen is not None:
            self.generator.set_state(gen)
        if evals is not None:
            self.loss_evals = int(evals)


def _anneal_kwargs(o: dict) -> dict[str, Any]:
    return {
        "temperature": o["temperature"],
        "cooling": o["cooling"],
        "relative_temperature": o["relative_temperature"],
    }


SPECS = (
    OptimizerSpec(
        "anneal",
        family="anneal",
        updater="anneal",
        knobs=(
            # initial temperature T0, in units of the loss; lr is the proposal's standard deviation
            Knob("temperature", float, 1.0, lambda v: finite(v) and v > 0, "temperature > 0"),
            Knob("cooling", float, 0.999, lambda v: finite(v) and 0 < v <= 1, "0 < cooling <= 1"),  # T_t = T0 c^t
            # true: T0 = temperature x the model's first loss (a default that suits any loss scale)
            Knob("relative_temperature", bool, False, is_bool, "true or false", added_later=True),
        ),
        update_kwargs=_anneal_kwargs,
    ),
)

"""How a pack's weights move after each forward pass: one small interface, three implementations.

- `Functional`: an optimizer's `update` (its maths, written once in sweep/optim/) applied to the stacked [K, ...]
  parameters, hyperparameters as numbers or K-vectors. sweep's own optimizers, and a student's update function.
- `PerModel`: one torch.optim.Optimizer per model on its own leaf tensors (optimizer.impl=torch, and a student's
  Optimizer class); the forward/backward is still batched over the pack.
- `Anneal`: Metropolis steps, no gradient.

Every updater can drop models from the pack (`keep`), give one model's state for its checkpoint (`save`) and
restore it (`load`). `make_updater` picks one from the optimizer's spec.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sweep.deadline import time_limit
from sweep.model import Batch
from sweep.optim import custom as custom_optimizer
from sweep.optim.anneal import anneal_step
from sweep.optim.registry import spec_of
from sweep.optim.spec import OptimizerSpec
from sweep.sampling import generator

ANNEAL_STREAM = 2  # the random stream of a model's annealing proposals (sweep.sampling.generator)


def grad_norms(grads: Sequence[Tensor]) -> Tensor:
    """‖∇‖ of each of the K models [K] (float64), bit-identical whatever K is.

    A plain `g.pow(2).flatten(1).sum(1)` splits a long row over threads when K is small and not when K is large,
    so a model's recorded norm would depend on the size of its pack (measured: 1 ulp-scale differences at K=1 vs
    4 for 40k-element layers). Each row is summed in fixed chunks small enough never to be split, then the chunk
    sums are added: the same order of additions for every K and thread count."""
    total = None
    for g in grads:
        f = g.detach().flatten(1).double()
        k, n = f.shape
        if n <= _NORM_CHUNK:  # already short enough never to be split (and padding it would cost up to 800x)
            sq = f.pow(2).sum(1)
        else:
            c = -(-n // _NORM_CHUNK)
            f = torch.nn.functional.pad(f, (0, c * _NORM_CHUNK - n))
            sq = f.view(k * c, _NORM_CHUNK).pow(2).sum(1).view(k, c).sum(1)
        total = sq if total is None else total + sq
    return total.sqrt()


_NORM_CHUNK = 8192  # elements reduced serially: well under torch's parallel grain (32768), so never split


def pack_kwargs(spec: OptimizerSpec, optimizers: Sequence[dict], dtype: torch.dtype, device: torch.device) -> dict:
    """`update`'s keyword arguments for a pack: booleans (equal across a pack, see packing.pack_key) as they are;
    numbers as one number when every model agrees (cheaper, and exactly torch.optim's arithmetic), else as a
    K-vector on the pack's device."""
    per_model = [spec.update_kwargs(o) for o in optimizers]
    out: dict[str, Any] = {}
    for key, first in (per_model[0] if per_model else {}).items():
        values = [m[key] for m in per_model]
        if isinstance(first, bool) or all(v == first for v in values):
            out[key] = first if isinstance(first, bool) else float(first)
        else:
            out[key] = torch.tensor(values, dtype=dtype, device=device)
    return out


class Updater:
    """The interface. `params` are the pack's stacked parameters [K, ...] per layer (the trainer's)."""

    loss_evals_per_step: int | None = None  # for methods whose cost is counted in loss evaluations (annealing)

    def step(
        self, params: list[Tensor], batch: Batch, lr: Tensor, lr_host: np.ndarray, want_norm: bool
    ) -> tuple[Tensor, Tensor | None]:
        """One update of every model on its batch; returns its losses [K] before the update (and grad norms when
        asked)."""
        raise NotImplementedError

    def weights(self, params: list[Tensor]) -> list[Tensor]:
        """The current weights [K, ...] per layer (those an updater keeps elsewhere, stacked)."""
        return params

    def keep(self, idx: list[int], sel: Tensor, optimizers: Sequence[dict]) -> None:
        """Keep only models idx (sel: the same as a device tensor); `optimizers` are their configs."""

    def save(self, k: int) -> dict[str, Any]:
        """Model k's optimizer state, on the CPU, for its checkpoint."""
        return {}

    def load(self, k: int, saved: dict[str, Any]) -> None:
        """Restore model k's optimizer state from its checkpoint."""

    def state_tensors(self) -> list[Tensor]:
        """The optimizer-state tensors a step changes in place (a capturable updater's: see graph_step)."""
        return []

    def capturable(self, device: torch.device) -> bool:
        """Can the step be recorded once as a CUDA graph and replayed (sweep/graph_step.py)?"""
        return False

    def compilable(self) -> bool:
        """Can the step be compiled as one graph (sweep/compiled_step.py): no host state, sweep's own maths?"""
        return False


class _StackedState(Updater):
    """State kept as stacked tensors per layer ([K, ...] entries; anything else is shared by the pack)."""

    states: list[dict[str, Any]]

    def keep(self, idx: list[int], sel: Tensor, optimizers: Sequence[dict]) -> None:
        for st in self.states:
            for name, v in st.items():
                if isinstance(v, Tensor) and v.ndim >= 1:
                    st[name] = v[sel].clone()

    def save(self, k: int) -> dict[str, Any]:
        # which entries the pack shares (a 0-dim tensor: a step count, a student's one value): a model's slice of
        # a per-model [K] entry is 0-dim too, so the checkpoint says which is which
        shared = [[n for n, v in st.items() if isinstance(v, Tensor) and v.ndim == 0] for st in self.states]
        return {
            "opt_states": [{n: _model_slice(v, k) for n, v in st.items()} for st in self.states],
            "opt_shared": shared,
        }

    def state_tensors(self) -> list[Tensor]:
        return [v for st in self.states for v in st.values() if isinstance(v, Tensor)]

    def load(self, k: int, saved: dict[str, Any]) -> None:
        layers = saved.get("opt_states")
        if not isinstance(layers, list) or len(layers) != len(self.states):
            n = len(layers) if isinstance(layers, list) else type(layers).__name__
            raise ValueError(f"the checkpoint's optimizer state has {n} layers, the model {len(self.states)}")
        for st, layer in zip(self.states, layers):
            lacks = [n for n, v in st.items() if isinstance(v, Tensor) and v.ndim >= 1 and n not in layer]
            if lacks:
                raise ValueError(f"the checkpoint's optimizer state lacks {', '.join(lacks)}")
            for name, v in layer.items():
                cur = st.get(name)
                if isinstance(v, Tensor) and isinstance(cur, Tensor) and cur.ndim >= 1 and v.shape != cur.shape[1:]:
                    raise ValueError(
                        f"the checkpoint's optimizer state {name} has shape {tuple(v.shape)}, "
                        f"the model's {tuple(cur.shape[1:])}"
                    )
        # checkpoints written before opt_shared: a 0-dim entry was taken as shared
        shared_names = saved.get("opt_shared") or [None] * len(layers)
        with torch.no_grad():
            for st, layer, shared in zip(self.states, layers, shared_names):
                for name, v in layer.items():
                    cur = st.get(name)
                    if not isinstance(v, Tensor):
                        st[name] = v
                        continue
                    is_shared = v.ndim == 0 if shared is None else name in shared
                    if is_shared and isinstance(cur, Tensor) and cur.ndim == 0:  # a step count on the device
                        cur.fill_(v)
                        continue
                    if is_shared:  # shared by the pack and made on the first step: as saved, not per model
                        st[name] = v.to(self.device)
                        continue
                    if cur is None or not isinstance(cur, Tensor) or cur.ndim == 0:  # made lazily: make it now
                        st[name] = torch.zeros((self.k, *v.shape), dtype=v.dtype, device=self.device)
                    st[name][k].copy_(v)


def _model_slice(v: Any, k: int) -> Any:
    """Model k's part of one state entry, for its checkpoint (on the CPU): its row of a stacked tensor; an entry
    the pack shares (a number, or a 0-dim tensor such as a step count kept on the device) whole."""
    if isinstance(v, Tensor):
        return v[k].detach().cpu().clone() if v.ndim >= 1 else v.detach().cpu().clone()
    return v


class Functional(_StackedState):
    """`update(p, grad, state, lr=..., **kwargs)` on each stacked layer: sweep's own maths, K models at once."""

    def __init__(
        self,
        spec: OptimizerSpec,
        update: Callable[..., None],
        init_state: Callable[..., dict],
        params: list[Tensor],
        optimizers: Sequence[dict],
    ) -> None:
        self.spec, self.update, self.k, self.device, self.dtype = (
            spec,
            update,
            len(optimizers),
            params[0].device,
            params[0].dtype,
        )
        self.kwargs = pack_kwargs(spec, optimizers, self.dtype, self.device)
        # step counts on the device (no host state: the step can be captured as a CUDA graph)
        self.states = [init_state(p.detach(), capturable=True, **self.kwargs) for p in params]

    def step(self, params, batch, lr, lr_host, want_norm):
        loss, grads = batch.losses_and_grads(params)
        norm = grad_norms(grads) if want_norm else None
        with torch.no_grad():
            for p, g, s in zip(params, grads, self.states):
                self.update(p, g, s, lr=lr, **self.kwargs)
        return loss, norm

    def keep(self, idx, sel, optimizers):
        super().keep(idx, sel, optimizers)
        self.k = len(idx)
        self.kwargs = pack_kwargs(self.spec, optimizers, self.dtype, self.device)

    def capturable(self, device: torch.device) -> bool:
        return device.type == "cuda" and self.compilable()

    def compilable(self) -> bool:
        ready = self.spec.graph_ready
        return ready is not None and ready(self.states, self.kwargs)


class PerModel(Updater):
    """One torch.optim.Optimizer per model on its own leaves: torch's code (or a student's class) does the update.
    Its leaves are the trained weights; `weights` stacks them for the batched forward and for checkpoints."""

    def __init__(
        self,
        make: Callable[[dict, list[Tensor], float], torch.optim.Optimizer],
        params: list[Tensor],
        cfgs: Sequence[dict],
    ) -> None:
        self.opts = []
        for k, c in enumerate(cfgs):
            leaves = [p.detach()[k].clone().requires_grad_(True) for p in params]
            self.opts.append(make(c["optimizer"], leaves, c["lr"]))

    def weights(self, params):
        leaves = [o.param_groups[0]["params"] for o in self.opts]
        return [torch.stack([lv[i] for lv in leaves]) for i in range(len(params))]

    def step(self, params, batch, lr, lr_host, want_norm):
        loss, grads = batch.losses_and_grads(self.weights(params))  # batched: only the updates are per model
        norm = grad_norms(grads) if want_norm else None
        with torch.no_grad():
            for k, opt in enumerate(self.opts):
                opt.param_groups[0]["lr"] = float(lr_host[k])
                for p, g in zip(opt.param_groups[0]["params"], grads):
                    p.grad = g[k]
                opt.step()
        return loss, norm

    def keep(self, idx, sel, optimizers):
        self.opts = [self.opts[i] for i in idx]

    def save(self, k):
        return {"torch_opt": self.opts[k].state_dict()}

    def load(self, k, saved):  # its leaves were made from the restored weights
        load_state_dict(self.opts[k], saved["torch_opt"])


def load_state_dict(opt: torch.optim.Optimizer, sd: dict) -> None:
    """`opt.load_state_dict(sd)`, numpy values of its per-parameter state included: torch's casting treats a
    numpy array as a sequence and fails, so they are set aside, and put back as they were saved."""
    kept = {}
    state = {}
    for i, entry in sd.get("state", {}).items():
        plain = {}
        for key, v in entry.items() if isinstance(entry, dict) else ():
            if isinstance(v, (np.ndarray, np.generic)):
                kept[i, key] = v
            else:
                plain[key] = v
        state[i] = plain if isinstance(entry, dict) else entry
    opt.load_state_dict(dict(sd, state=state))
    params = [p for group in opt.param_groups for p in group["params"]]
    for (i, key), v in kept.items():
        opt.state[params[i]][key] = v


class Anneal(_StackedState):
    """Simulated annealing (sweep/optim/anneal.py): a proposal around each model, accepted by the Metropolis rule.
    Each model draws from its own CPU generator (seeded by its seed), so its stream does not depend on the pack.

    A full batch in a fixed order (batch_size=full, sampling=shuffle_once) is the same batch every step, so the
    loss a step ends at is the next step's current loss, bit for bit: it is kept, and a step evaluates only its
    proposal (one loss evaluation; the first step after a start, a resume or a change of pack evaluates both).
    Any other batching evaluates both every step."""

    def __init__(self, spec: OptimizerSpec, params: list[Tensor], cfgs: Sequence[dict]) -> None:
        self.spec, self.k, self.device, self.dtype = spec, len(cfgs), params[0].device, params[0].dtype
        self.kwargs = pack_kwargs(spec, [c["optimizer"] for c in cfgs], self.dtype, self.device)
        self.gens = [generator(c["seed"], ANNEAL_STREAM) for c in cfgs]
        self.states = [{}]
        # batch_size and sampling are the same across a pack (packing.pack_key)
        self.same_batch = cfgs[0]["batch_size"] == "full" and cfgs[0]["sampling"] == "shuffle_once"
        self.loss_evals_per_step = 1 if self.same_batch else 2  # the proposal (and the current point)
        self.current: Tensor | None = None  # the [K] losses the last step ended at, when the batch repeats

    def step(self, params, batch, lr, lr_host, want_norm):
        with torch.no_grad():
            loss = anneal_step(
                params, batch.losses, self.states[0], lr=lr, generators=self.gens, current=self.current, **self.kwargs
            )
        self.current = loss if self.same_batch else None
        return loss, None

    def keep(self, idx, sel, optimizers):
        super().keep(idx, sel, optimizers)
        self.current = None  # evaluated again in the smaller pack: the same numbers however the pack is made
        self.gens = [self.gens[i] for i in idx]
        self.k = len(idx)
        self.kwargs = pack_kwargs(self.spec, optimizers, self.dtype, self.device)

    def save(self, k):
        return dict(super().save(k), anneal_rng=self.gens[k].get_state())

    def load(self, k, saved):
        super().load(k, saved)
        self.gens[k].set_state(saved["anneal_rng"])
        self.current = None


def time_limited(updater: Updater, cfgs: Sequence[dict]) -> Updater:
    """`updater` whose step fails with StepTimeout past `step_timeout_s`: a student's code that hangs fails its
    own runs, said, instead of holding the grid forever."""
    step, limit = updater.step, cfgs[0].get("step_timeout_s")
    what = f"a step of optimizer.cls={cfgs[0]['optimizer'].get('cls')}"

    def timed(*args: Any, **kwargs: Any) -> Any:
        with time_limit(limit, what):
            return step(*args, **kwargs)

    updater.step = timed  # type: ignore[method-assign]
    return updater


def make_updater(cfgs: Sequence[dict], params: list[Tensor]) -> Updater:
    """The updater for a pack of `cfgs` (one pack_key) on its stacked `params`."""
    o = cfgs[0]["optimizer"]
    spec = spec_of(o["name"])
    if spec.updater == "anneal":
        return Anneal(spec, params, cfgs)
    if spec.updater == "custom":  # a student's update function runs batched; a class, once per model
        fn = custom_optimizer.functional_update(o)
        if fn is None:
            return time_limited(PerModel(custom_optimizer.make, params, cfgs), cfgs)
        return time_limited(Functional(spec, fn, lambda p, **_: {}, params, [c["optimizer"] for c in cfgs]), cfgs)
    if o["impl"] == "torch":
        return PerModel(spec.make_torch, params, cfgs)
    return Functional(spec, spec.update, spec.init_state, params, [c["optimizer"] for c in cfgs])

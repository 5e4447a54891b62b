"""The training loop over a pack of K models: one forward/backward and one optimizer update for all K.

A single `sweep run` is a pack of K = 1; a multirun packs configs that share shapes (see `pack_key`). Each model
keeps its own run: run_id, folder, history, summary, checkpoint and wandb run. Per-model settings (lr, seed,
optimizer and schedule parameters, init) travel as K-vectors; a model that diverges is recorded at its step
and dropped from the pack, so it stops costing or affecting anything.

The host is synchronised only every `log_every` steps (and at epoch ends): losses accumulate on the device.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sweep import model as mlp
from sweep.compiled_step import CompiledStep
from sweep.data import cached_splits
from sweep.device import keep_freed_memory, resolve_device
from sweep.errors import Interrupted
from sweep.graph_step import CapturedStep, replay_checked
from sweep.provenance import provenance, slurm_job_id
from sweep.pruning import TrialPruning
from sweep.results import DIVERGED_UNSET, summary_record
from sweep.sampling import epoch_order, generator, steps_per_epoch
from sweep.schedule import PARAMS as SCHEDULE_PARAMS
from sweep.schedule import lr_table
from sweep.store import PackWriter, RunRecord
from sweep.updaters import Updater, grad_norms, make_updater

INIT_STREAM = 0  # the random stream of a model's initial weights (sweep.sampling.generator)

# A run "collapsed" when its loss blew up to COLLAPSE_PEAK x its first loss and it ended no better than
# COLLAPSE_END x its first loss: it spiked and sits at chance with dead units, which the diverge_factor rule
# never sees. Calibrated on the stock studies' runs (benchmarks/README.md, "Collapse thresholds").
COLLAPSE_PEAK, COLLAPSE_END = 1.5, 0.9


def collapsed(first_loss: float, peak_loss: float, history: Sequence[dict]) -> bool:
    """Did this finished run blow up (peak > COLLAPSE_PEAK x first loss) and never recover (its last train
    loss row >= COLLAPSE_END x first loss)?"""
    if not history or not np.isfinite(first_loss) or first_loss <= 0:
        return False
    return peak_loss > COLLAPSE_PEAK * first_loss and last_train_loss(history) >= COLLAPSE_END * first_loss


def divergence(losses: np.ndarray, init_loss: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Which models diverged among the step losses [steps since the last sync, K], and the row of each one's
    first bad step: a loss that is not finite or above `factor` x the model's first loss. One bad step is
    enough, wherever it falls between two syncs."""
    bad = ~np.isfinite(losses) | (losses > factor * init_loss)
    return bad.any(axis=0), np.argmax(bad, axis=0)


def best_on_validation(history: Sequence[dict]) -> dict | None:
    """The evaluation row with the lowest validation loss (the summary's `best_val_*`, and the test numbers
    reported there): early stopping chooses on validation, never on test. None before the first evaluation."""
    vals = [r for r in history if "val_loss" in r]
    return min(vals, key=lambda r: r["val_loss"]) if vals else None


def last_train_loss(history: Sequence[dict]) -> float:
    """The train loss of the last train row (evaluation rows carry none); NaN before the first."""
    return next((r["train_loss"] for r in reversed(history) if "train_loss" in r), float("nan"))


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _finite_or_none(values: np.ndarray, k: int | None) -> float | None:
    """values[k] for model k of the pack, as a float (None when not in the pack, not known or not finite)."""
    if k is None or k >= len(values) or not np.isfinite(values[k]):
        return None
    return float(values[k])


def _rows(t: Tensor, idx: Tensor) -> Tensor:
    """t[idx] for row indices idx [K, B]: index_select, 3.7x faster than advanced indexing on the CPU for a
    pack of 64 digits batches (measured: 28 us against 104 us), the same values."""
    return torch.index_select(t, 0, idx.reshape(-1)).view(*idx.shape, *t.shape[1:])


@dataclass
class Run:
    """One run of a pack: its resolved config (a plain dict), identity, what the store held of it when it was
    claimed, and the pack it is written to."""

    cfg: dict
    run_id: str
    record: RunRecord | None = None
    store: PackWriter | None = None
    wandb_id: str | None = None
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    # this run's share of its pack's wall time (each sync interval split evenly among the models then in the
    # pack), over every process that trained it: summed over a sweep, the device time it really took
    wall_share_s: float = 0.0
    # the train-loss row being filled: sum of the step losses since the last row, and how many (a row is written
    # every log_every steps exactly, so rows average equal numbers of steps; epoch ends do not cut them short)
    row_loss_sum: float = 0.0
    row_steps: int = 0


class PackState:
    """Everything that evolves during training, for the K models still in the pack, plus how to slice it.

    Device rule: every tensor here lives on the pack's device (`params[0].device`), so a subset can be taken with
    one device index. What the host needs (first losses, peaks) is kept as numpy arrays, refreshed only at sync
    points. How the weights move, and the optimizer state that goes with it, is the updater's (sweep/updaters.py);
    with a per-model torch.optim updater the trained weights are its leaves, so read them with `weights()`.
    """

    def __init__(
        self, runs: list[Run], params: list[Tensor], updater: Updater, init_loss: np.ndarray, peak_loss: np.ndarray
    ) -> None:
        self.runs, self.params, self.updater = runs, params, updater
        self.init_loss, self.peak_loss = init_loss, peak_loss  # host [K] float64: the first and the largest loss
        self._index_of: tuple[list[Run] | None, dict[int, int]] = (None, {})

    def index(self, run: Run) -> int | None:
        """The run's place k in the pack, None once it has left (a dict: a search per run made summaries O(K²))."""
        if self._index_of[0] is not self.runs:  # keep() makes a new list
            self._index_of = (self.runs, {id(r): k for k, r in enumerate(self.runs)})
        return self._index_of[1].get(id(run))

    @property
    def device(self) -> torch.device:
        return self.params[0].device

    def weights(self) -> list[Tensor]:
        """The current weights [K, ...] per layer."""
        return self.updater.weights(self.params)

    def live_tensors(self) -> list[Tensor]:
        """Every tensor a step of a stacked-state updater changes in place: the weights, then the optimizer
        state (what `graph_step.replay_checked` compares)."""
        return [*self.params, *self.updater.state_tensors()]

    def keep(self, idx: list[int]) -> None:
        """Drop every model not in idx (diverged, collapsed, failed, pruned) from all stacked tensors."""
        sel = torch.tensor(idx, dtype=torch.long, device=self.device)  # [] would be a float tensor
        self.runs = [self.runs[i] for i in idx]
        self.params = [p.detach()[sel].clone().requires_grad_(True) for p in self.params]
        self.updater.keep(idx, sel, [r.cfg["optimizer"] for r in self.runs])
        self.init_loss, self.peak_loss = self.init_loss[idx], self.peak_loss[idx]

    def model_checkpoint(self, k: int) -> dict:
        """Model k's slice of the state, as saved in its own checkpoint.pt (tensors moved to the CPU, so a
        checkpoint written on a GPU resumes anywhere)."""
        return {
            "params": [p.detach()[k].cpu().clone() for p in self.weights()],
            **self.updater.save(k),
            "init_loss": float(self.init_loss[k]),
            "peak_loss": float(self.peak_loss[k]),
        }


class Trainer:
    """Trains one pack (runs sharing `pack_key` and the same start step) from start to end."""

    def __init__(
        self,
        runs: list[Run],
        start_step: int,
        checkpoints: list[dict | None],
        *,
        should_stop: Callable[[], bool] = lambda: False,
        progress: bool = True,
    ) -> None:
        c = runs[0].cfg
        self.c = c
        self.device = resolve_device(c["device"])
        if self.device.type == "cpu":
            keep_freed_memory()
        self.dtype = getattr(torch, c["dtype"])
        self.data = cached_splits(c["data"], self.device, self.dtype)
        n_train = self.data.x_train.shape[0]
        self.batch = n_train if c["batch_size"] == "full" else min(int(c["batch_size"]), n_train)
        self.steps_per_epoch = steps_per_epoch(n_train, self.batch)
        self.total = c["epochs"] * self.steps_per_epoch
        self.start_step = start_step
        self.should_stop, self.progress = should_stop, progress
        self.cuda_graph = bool(c.get("cuda_graph", True))
        self._graphs: dict[bool, CapturedStep] = {}  # by want_norm
        self.compile = bool(c.get("compile", False))
        self._compiled: CompiledStep | None = None
        # which step trained this process's steps: compile=true and CUDA graphs round differently from the plain
        # step yet share its run_id (same maths), so the summary says which ran
        self.steps_by_path = {"plain": 0, "compiled": 0, "cuda_graph": 0}
        self.sizes = mlp.layer_sizes(self.data.num_inputs, c["model"]["hidden"], self.data.num_outputs)
        self.state = self._build_state(runs, checkpoints)
        self.store = runs[0].store
        if self.store is None:  # a trainer made directly (tests, benchmarks): a pack of its own in the sweep
            self.store = PackWriter(Path(c["out_dir"]) / c["name"], {r.run_id: r.cfg for r in runs})
            self.store.start({})
        self._checkpoint_step: int | None = None  # the step of the pack's checkpoint this process last wrote
        cfgs = [r.cfg for r in runs]
        self.pruning = TrialPruning(cfgs) if TrialPruning.wanted(cfgs) else None

    # ------------------------------------------------------------------ set-up
    def _build_state(self, runs: list[Run], checkpoints: list[dict | None]) -> PackState:
        """Initial weights (or the checkpoints' weights), then the updater on them (and its saved state)."""
        inits = [r.cfg["init"] for r in runs]
        gens = [generator(r.cfg["seed"], INIT_STREAM) for r in runs]
        params = mlp.init_params(self.sizes, inits, gens, dtype=self.dtype, device=self.device)
        init_loss = np.full(len(runs), np.nan)
        peak_loss = np.full(len(runs), np.nan)
        for ck in checkpoints:
            if ck is not None:
                self._check_checkpoint(ck, params)
        with torch.no_grad():
            for k, ck in enumerate(checkpoints):
                if ck is not None:
                    for p, saved in zip(params, ck["params"]):
                        p[k].copy_(saved)
                    init_loss[k] = ck["init_loss"]
                    peak_loss[k] = ck.get("peak_loss", ck["init_loss"])
        updater = make_updater([r.cfg for r in runs], params)
        for k, ck in enumerate(checkpoints):
            if ck is not None:
                updater.load(k, ck)
        return PackState(runs, params, updater, init_loss, peak_loss)

    def _check_checkpoint(self, ck: dict, params: list[Tensor]) -> None:
        """Refuse a checkpoint that is not this run's model at a step of this run: weights of another shape
        (copying a scalar or one row would broadcast silently), or a step outside 0..total."""
        saved = ck.get("params")
        if not isinstance(saved, list) or len(saved) != len(params):
            n = len(saved) if isinstance(saved, list) else type(saved).__name__
            raise ValueError(f"the checkpoint holds {n} weight tensors, the model {len(params)}")
        for i, (p, w) in enumerate(zip(params, saved)):
            if not isinstance(w, Tensor) or w.shape != p.shape[1:]:
                got = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
                raise ValueError(f"the checkpoint's weight {i} has shape {got}, the model's {tuple(p.shape[1:])}")
        step = ck.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= self.total:
            raise ValueError(f"the checkpoint is at step {step!r}, outside this run's 0..{self.total}")

    def _lr_rows(self, steps: np.ndarray) -> np.ndarray:
        """Learning rates [len(steps), K]; models of one pack may even use different schedules."""
        runs = self.state.runs
        table = np.empty((len(steps), len(runs)))
        for name in {r.cfg["schedule"]["name"] for r in runs}:
            cols = [k for k, r in enumerate(runs) if r.cfg["schedule"]["name"] == name]
            params = {p: [runs[k].cfg["schedule"][p] for k in cols] for p in SCHEDULE_PARAMS}
            table[:, cols] = lr_table(name, steps, [runs[k].cfg["lr"] for k in cols], self.total, params)
        return table

    # ------------------------------------------------------------------ one step
    def _batch(self, idx: Tensor) -> mlp.Batch:
        """Each model's own batch of training examples idx [K, B]."""
        x, y = (_rows(t, idx) for t in (self.data.x_train, self.data.y_train))
        return mlp.Batch(x, y, self.c["model"]["activation"], self.data.task)

    def _step(
        self, idx: Tensor, lr_t: Tensor, lr_host: np.ndarray | None = None, want_norm: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """One optimizer step of every model on its own batch idx [K, B]; returns losses [K] (and grad norms).
        With a functional updater nothing here reads the host: it is what a CUDA graph captures."""
        st = self.state
        return st.updater.step(st.params, self._batch(idx), lr_t, lr_host, want_norm)

    def _forward_backward(self, idx: Tensor) -> None:
        """Forward, backward and norms of this batch with no update: a CUDA graph's warm-up (changes nothing)."""
        grad_norms(self._batch(idx).losses_and_grads(self.state.params)[1])

    def _advance(self, idx: Tensor, lr_t: Tensor, lr_host: np.ndarray, want_norm: bool) -> tuple[Tensor, Tensor | None]:
        """One step of the pack: replayed from its CUDA graph where it can be captured (see sweep/graph_step.py),
        else the plain step, which `compile=true` compiles where no graph applies (sweep/compiled_step.py: the
        CPU, or cuda_graph=false). All are the same maths."""
        if self.cuda_graph and self.state.updater.capturable(self.device):
            # two graphs: grad norms (a pass over every gradient) only at sync steps, as in the plain step
            graph = self._graphs.get(want_norm)
            if graph is None and idx.shape[1] == self.batch:  # full batches only: a fixed shape
                step = partial(self._step, want_norm=want_norm)
                graph = self._graphs[want_norm] = CapturedStep(step, idx, lr_t, self._forward_backward)
                out, problem = replay_checked(graph, step, idx, lr_t, self.state.live_tensors)
                if problem:
                    print(
                        f"sweep: the captured CUDA step is not bit-identical to the plain step here ({problem}); "
                        "this pack trains with the plain step",
                        file=sys.stderr,
                    )
                    self.cuda_graph, self._graphs = False, {}
                self.steps_by_path["cuda_graph" if not problem else "plain"] += 1
                return out
            if graph is not None and graph.fits(idx):
                self.steps_by_path["cuda_graph"] += 1
                return graph.replay(idx, lr_t)
        elif self.compile and not want_norm and idx.shape[1] == self.batch and self.state.updater.compilable():
            if self._compiled is None:
                self._compiled = CompiledStep(partial(self._step, lr_host=None, want_norm=False))
            done = self._compiled(idx, lr_t)
            if done is not None:
                self.steps_by_path["compiled"] += 1
                return done
        self.steps_by_path["plain"] += 1
        return self._step(idx, lr_t, lr_host, want_norm)

    def _rung(self, epoch: int, j: int) -> int:
        """The pruning rung (1, 2, ...: rungs_per_epoch per epoch, the last at the epoch's end) that step j of
        `epoch` closes, or 0 (no pruning, or not a rung)."""
        if not self.pruning:
            return 0
        rungs = self.pruning.rungs_per_epoch
        if j == self.steps_per_epoch - 1:
            return (epoch + 1) * rungs
        every = max(1, self.steps_per_epoch // rungs)
        within = (j + 1) // every
        return epoch * rungs + within if (j + 1) % every == 0 and within < rungs else 0

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def _evaluate(self, x: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Loss and accuracy [K] of every model on a whole held-out part (x, y), in chunks to bound memory."""
        params = [p.detach() for p in self.state.weights()]
        k = params[0].shape[0]
        loss = torch.zeros(k, dtype=torch.float64, device=self.device)
        correct = torch.zeros(k, dtype=torch.float64, device=self.device)
        chunk = max(1, 2**22 // (k * max(self.sizes)))
        for i in range(0, x.shape[0], chunk):
            out = mlp.forward(params, x[i : i + chunk], self.c["model"]["activation"])
            n = out.shape[1]
            loss += mlp.per_model_loss(out, y[i : i + chunk], self.data.task).double() * n
            if self.data.task == "classification":
                correct += mlp.accuracy(out, y[i : i + chunk]).double() * n
        loss = (loss / x.shape[0]).cpu().numpy()
        acc = (correct / x.shape[0]).cpu().numpy() if self.data.task == "classification" else None
        return loss, acc

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        """Train the pack to its last step: a step of every model at a time; at sync points (every log_every
        steps, epoch ends, pruning rungs) the host reads the losses, the rows are recorded and diverged or pruned
        models leave; a checkpoint every checkpoint_every steps, at the end, and when asked to stop."""
        c, st = self.c, self.state
        t0 = self._last_sync = time.perf_counter()
        self._buf = torch.zeros(c["log_every"], len(st.runs), dtype=torch.float64, device=self.device)
        self._n_buf, self._norm, self._order_epoch = 0, None, -1
        step = last_ckpt = self.start_step
        bar = _Progress(self.total, self.start_step, len(st.runs), enabled=self.progress)
        while step < self.total and st.runs:
            # step: every model one optimizer step on its own batch; the losses stay on the device
            epoch, j = divmod(step, self.steps_per_epoch)
            idx, lr_dev, lr_host = self._plan(epoch, j)
            rung = self._rung(epoch, j)  # a search's pruner decides here (epoch ends, or finer: rungs_per_epoch)
            at_sync = (
                (step + 1) % c["log_every"] == 0
                or j == self.steps_per_epoch - 1
                or step + 1 == self.total
                or bool(rung)
            )
            loss, step_norm = self._advance(idx, lr_dev, lr_host, want_norm=at_sync)
            self._norm = step_norm if step_norm is not None else self._norm
            self._buf[self._n_buf] = loss
            self._n_buf += 1
            step += 1
            if not at_sync:
                continue
            # sync: the host reads the losses (a device sync), records rows; diverged and pruned models leave
            self._sync(step, j, rung, lr_host, t0)
            bar.update(step, st.runs)
            # checkpoint: on the cadence, at the end, and before stopping when asked to
            stop = self.should_stop()
            if st.runs and (step - last_ckpt >= c["checkpoint_every"] or step == self.total or stop):
                self._checkpoint(step, time.perf_counter() - t0)
                last_ckpt = step
                _hold_if_asked(step, self.total)
            if stop and step < self.total:
                bar.close()
                raise Interrupted(f"stopped at step {step} of {self.total}; checkpoints saved")
        bar.close()
        self._end(step, t0)

    def _plan(self, epoch: int, j: int) -> tuple[Tensor, Tensor, np.ndarray]:
        """Step j of `epoch`: the batch indices [K, B] and the scheduled rates (device, host) of every model. The
        epoch's order and rates are made once per epoch (again after models leave: `_order_epoch` is reset)."""
        if epoch != self._order_epoch:
            seeds = [r.cfg["seed"] for r in self.state.runs]
            self._order = epoch_order(self.c["sampling"], self.data.x_train.shape[0], seeds, epoch, self.device)
            self._lr_host = self._lr_rows(np.arange(epoch * self.steps_per_epoch, (epoch + 1) * self.steps_per_epoch))
            self._lr_dev = torch.as_tensor(self._lr_host, dtype=self.dtype, device=self.device)
            self._order_epoch = epoch
        return self._order[:, j * self.batch : (j + 1) * self.batch], self._lr_dev[j], self._lr_host[j]

    def _sync(self, step: int, j: int, rung: int, lr_row: np.ndarray, t0: float) -> None:
        """At a sync point: the buffered losses to the host, time shared out, held-out evaluation (validation and
        test at epoch ends, validation at a rung), each run's rows, and the leaving of diverged and pruned runs."""
        st, n_buf = self.state, self._n_buf
        losses = self._buf[:n_buf].cpu().numpy()
        now = time.perf_counter()
        for run in st.runs:
            run.wall_share_s += (now - self._last_sync) / len(st.runs)
        self._last_sync = now
        st.init_loss = np.where(np.isnan(st.init_loss), losses[0], st.init_loss)
        st.peak_loss = np.fmax(st.peak_loss, np.where(np.isfinite(losses), losses, -np.inf).max(axis=0))
        norms = self._norm.double().cpu().numpy() if self._norm is not None else None
        parts = ("val", "test") if j == self.steps_per_epoch - 1 else ("val",) if rung else ()
        held_out = {p: self._evaluate(getattr(self.data, f"x_{p}"), getattr(self.data, f"y_{p}")) for p in parts}
        diverged, first_bad = divergence(losses, st.init_loss, self.c["diverge_factor"])
        at_epoch = step / self.steps_per_epoch
        pruned = None
        if rung:  # a model that diverged leaves as diverged: the pruner does not hear of it
            pruned = self.pruning.prune(rung, np.where(diverged, np.nan, held_out["val"][0]), at_epoch)
        keep = []
        for k, run in enumerate(st.runs):
            if diverged[k]:
                first = int(first_bad[k])
                run.summary.update(
                    status="diverged", diverged_step=step - n_buf + first + 1, diverged_loss=float(losses[first, k])
                )
                continue
            norm = float(norms[k]) if norms is not None else float("nan")
            self._record_rows(
                run,
                step,
                losses[:, k],
                float(lr_row[k]),
                norm,
                {p: (lo[k], None if a is None else a[k]) for p, (lo, a) in held_out.items()},
            )
            if pruned is not None and pruned[k]:
                run.summary.update(status="pruned", pruned_epoch=at_epoch)
            else:
                keep.append(k)
        self._n_buf = 0
        leaving = [run for k, run in enumerate(st.runs) if k not in keep]
        if leaving:
            self._finish(leaving, step, time.perf_counter() - t0)
            if pruned is not None:  # their summaries have landed: their trials are done
                self.pruning.tell_pruned([k for k, p in enumerate(pruned) if p])
            st.keep(keep)
            if self.pruning:
                self.pruning.keep(keep)
            self._graphs = {}  # captured for the old pack's tensors
            if st.runs:
                self._order_epoch = -1  # this epoch's order and rates again, for the models that stay
                self._buf = self._buf[:, keep]

    def _record_rows(self, run: Run, step: int, losses: np.ndarray, lr_t: float, norm: float, held_out: dict) -> None:
        """A run's history rows at a sync: a train row once log_every steps have accumulated (their mean loss: rows
        average equal numbers of steps; epoch ends do not cut them short), and an evaluation row of its own.
        `lr_t` is the scheduled rate at this step (the config's `lr` is the base rate it scales)."""
        run.row_loss_sum += float(losses.sum())
        run.row_steps += len(losses)
        base = {"step": step, "epoch": step / self.steps_per_epoch, "lr_t": lr_t}
        if run.row_steps >= self.c["log_every"] or step == self.total:
            run.history.append(
                dict(base, train_loss=run.row_loss_sum / run.row_steps, train_steps=run.row_steps, grad_norm=norm)
            )
            run.row_loss_sum, run.row_steps = 0.0, 0
        if held_out:
            row = dict(base)
            for part, (loss_k, acc_k) in held_out.items():
                row[f"{part}_loss"] = float(loss_k)
                if acc_k is not None:
                    row[f"{part}_acc"] = float(acc_k)
            run.history.append(row)

    def _end(self, step: int, t0: float) -> None:
        """The pack reached its last step: the final checkpoint, and each remaining run done (or collapsed)."""
        st = self.state
        wall = time.perf_counter() - t0
        for run in st.runs:  # the time since the last sync, shared like the rest
            run.wall_share_s += (t0 + wall - self._last_sync) / len(st.runs)
        if st.runs and self._checkpoint_step != step:  # resumed at the last step: the final state in this pack too
            self._checkpoint(step, wall)
        for k, run in enumerate(st.runs):
            run.summary["status"] = "done"
            if collapsed(float(st.init_loss[k]), float(st.peak_loss[k]), run.history):
                run.summary.update(status="collapsed", peak_loss=float(st.peak_loss[k]))
        self._finish(st.runs, step, wall)

    # ------------------------------------------------------------------ outputs
    def _checkpoint(self, step: int, wall: float) -> None:
        """The pack's checkpoint (every model still in it, at this step), then its histories and summaries so
        far. At the last step only the checkpoint (it holds the histories): `_finish` writes the rest next."""
        runs = self.state.runs
        models, summaries = {}, {}
        for k, run in enumerate(runs):
            summaries[run.run_id] = self._summary(run, step, wall, status="running", checkpoint_step=step)
            ck = self.state.model_checkpoint(k)
            ck.update(
                step=step,
                history=json.dumps(run.history),
                wall_s=run.summary.get("wall_s_before", 0.0) + wall,
                wall_share_s=run.wall_share_s,
                row_loss_sum=run.row_loss_sum,
                row_steps=run.row_steps,
                run_id=run.run_id,
                samples_per_s=summaries[run.run_id]["samples_per_s"],
            )
            models[run.run_id] = ck
        self.store.write_checkpoint(step, models)
        self._checkpoint_step = step
        if step == self.total:
            return
        self.store.write_histories({run.run_id: run.history for run in runs})
        self.store.write_summaries(summaries)

    def _summary(self, run: Run, step: int, wall: float, status: str, checkpoint_step: int | None = None) -> dict:
        k = self.state.index(run)
        h = run.history
        tests = [r for r in h if "test_loss" in r]
        vals = [r for r in h if "val_loss" in r]
        best = best_on_validation(h)
        wall_total = run.summary.get("wall_s_before", 0.0) + wall
        trained = step - self.start_step
        speed = trained * self.batch / wall if trained > 0 and wall > 0 else run.summary.get("samples_per_s_before")
        s = {
            "step": step,
            "total_steps": self.total,
            "epochs": self.c["epochs"],
            "steps_per_epoch": self.steps_per_epoch,
            "n_train": int(self.data.x_train.shape[0]),
            "n_val": int(self.data.x_val.shape[0]),
            "n_test": int(self.data.x_test.shape[0]),
            "final_train_loss": _finite(last_train_loss(h)),
            "final_test_loss": tests[-1]["test_loss"] if tests else None,
            "final_test_acc": tests[-1].get("test_acc") if tests else None,
            "final_val_loss": vals[-1]["val_loss"] if vals else None,
            "final_val_acc": vals[-1].get("val_acc") if vals else None,
            "best_val_loss": best["val_loss"] if best else None,
            "best_val_acc": best.get("val_acc") if best else None,
            "best_val_epoch": best["epoch"] if best else None,
            # the test numbers of the epoch chosen on validation (never a best taken over test itself)
            "test_loss_at_best_val": best.get("test_loss") if best else None,
            "test_acc_at_best_val": best.get("test_acc") if best else None,
            "diverged_step": run.summary.get("diverged_step"),
            "diverged_loss": run.summary.get("diverged_loss"),
            "pruned_epoch": run.summary.get("pruned_epoch"),
            # what it cost: epochs of training (a diverged or pruned run stopped early); summed, a sweep's compute
            "epochs_trained": step / self.steps_per_epoch,
            # wall_s: this run's share of the device time (sums to the sweep's device time); pack_wall_s: the
            # wall time of the pack it trained in (the same for every run of the pack: not its own cost)
            "wall_s": run.wall_share_s,
            "pack_wall_s": wall_total,
            "samples_per_s": speed,
            "resumed_from_step": self.start_step,
            "steps_this_process": trained,
            # which step trained this process's steps (plain, compiled, cuda_graph): flat, one column each
            **{f"steps_{path}": n for path, n in self.steps_by_path.items()},
            "first_loss": _finite_or_none(self.state.init_loss, k),
            "peak_loss": run.summary.get("peak_loss", _finite_or_none(self.state.peak_loss, k)),
            "pack_size": run.summary.get("pack_size"),
            "device": str(self.device),
            "slurm_job_id": slurm_job_id(),
            # this pack's checkpoint.pt holds the run at this step (None: it holds nothing of the run)
            "checkpoint_step": checkpoint_step,
            "wandb_id": run.wandb_id,
            "versions": provenance(),
        }
        s = summary_record(s, run_id=run.run_id, name=run.cfg.get("name"), status=status)
        if self.state.updater.loss_evals_per_step:
            s["loss_evals"] = self.state.updater.loss_evals_per_step * step
        return s

    def _finish(self, runs: list[Run], step: int, wall: float) -> None:
        """Final history and summary of runs leaving the pack (finished, diverged or pruned); their histories land
        before any summary says a run has ended. A finished run's last state stays in the pack's checkpoint."""
        self.store.write_histories({run.run_id: run.history for run in runs})
        summaries = {}
        for run in runs:
            status = run.summary.get("status", "done")
            kept = self._checkpoint_step if status in ("done", "collapsed") and self._checkpoint_step == step else None
            summary = self._summary(run, step, wall, status=status, checkpoint_step=kept)
            if status == "diverged":  # its last metrics describe a model on its way to diverging: not results
                summary.update(
                    step=summary["diverged_step"],
                    epochs_trained=summary["diverged_step"] / self.steps_per_epoch,
                    **dict.fromkeys(DIVERGED_UNSET),
                )
            summaries[run.run_id] = summary
        self.store.write_summaries(summaries)
        for run in runs:
            run.summary.update(summaries[run.run_id])


def _hold_if_asked(step: int, total: int) -> None:
    """For tests that kill a trainer: with SWEEP_HOLD_AFTER_CHECKPOINT=N, the first checkpoint at a step >= N
    (before the last step) is announced on stderr and the process waits there to be killed, so the kill lands
    at a step the run chose, not at a moment a clock guessed."""
    at = os.environ.get("SWEEP_HOLD_AFTER_CHECKPOINT")
    if at and at.isdigit() and int(at) <= step < total:
        print(f"sweep: held after the checkpoint at step {step}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)


def checkpoint_history(ck: dict) -> list[dict]:
    """The history rows a checkpoint holds: JSON text (floats round-trip exactly; pickling ~60 row dicts object
    by object cost 3x more per checkpoint), or a list in checkpoints written before."""
    h = ck["history"]
    return json.loads(h) if isinstance(h, str) else list(h)


PROGRESS_LINE_S = 60.0  # batch jobs (SLURM logs): a plain progress line at most this often


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class _Progress:
    """A rich progress bar over steps; for packs inside batch jobs (no bar: a log file), a plain line at most
    every PROGRESS_LINE_S seconds, so a SLURM task's log shows a long pack moving, and how long it has left."""

    def __init__(self, total: int, start: int, k: int, enabled: bool) -> None:
        self.p = None
        self.total, self.start, self.t0 = total, start, time.monotonic()
        self.last_line, self.lines = self.t0, 0
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(
            TextColumn("[bold]train[/] K={task.fields[k]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.p.start()
        self.task = self.p.add_task("train", total=total, completed=start, k=k, loss="-")

    def update(self, step: int, runs: list[Run]) -> None:
        now = time.monotonic()
        if self.p is None and now - self.last_line < PROGRESS_LINE_S and not (step >= self.total and self.lines):
            return  # (a pack too short for a line ends without one too)
        losses = [x for x in (last_train_loss(r.history) for r in runs) if np.isfinite(x)]
        loss = f"{np.median(losses):.4g}" if losses else "-"
        if self.p is not None:
            self.p.update(self.task, completed=step, k=len(runs), loss=loss)
            return
        self.last_line, self.lines = now, self.lines + 1
        done, elapsed = step - self.start, now - self.t0
        left = f", ~{_minutes(elapsed / done * (self.total - step))} left" if done > 0 and step < self.total else ""
        print(
            f"sweep: step {step}/{self.total} ({100 * step / max(self.total, 1):.0f} %), K={len(runs)}, "
            f"median train loss {loss}, {_minutes(elapsed)}{left}",
            flush=True,
        )

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None

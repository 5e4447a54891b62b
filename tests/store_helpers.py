"""What the store holds of a config's run, for tests: its summary, history, checkpoint and traceback."""

from __future__ import annotations

from pathlib import Path

from sweep import store
from sweep.config import run_id
from sweep.runner import sweep_dir_for


def where(cfg: dict) -> tuple[Path, str]:
    """(sweep folder, run id) of a resolved config."""
    return sweep_dir_for(cfg), run_id(cfg)


def record(cfg: dict) -> store.RunRecord | None:
    d, rid = where(cfg)
    return store.scan(d).get(rid)


def summary(cfg: dict) -> dict | None:
    """The run's newest summary (None: the store holds none)."""
    return store.summary(*where(cfg))


def status(cfg: dict) -> str | None:
    rec = record(cfg)
    return None if rec is None else rec.status


def history(cfg: dict):
    """The run's history rows as a DataFrame (empty when none)."""
    return store.history(*where(cfg))


def checkpoint(cfg: dict) -> dict | None:
    """The run's newest checkpoint, as its own (params, optimizer state, step, history, ...)."""
    return store.checkpoint(*where(cfg))


def traceback_text(cfg: dict) -> str:
    return (summary(cfg) or {}).get("traceback") or ""


class ClaimHeld:
    """Another process holding a run's claim (POSIX locks never conflict within one process): a child that
    claims the run, says so on stdout, and holds it until this context ends."""

    def __init__(self, cfg: dict) -> None:
        self.sweep_dir, self.run_id = where(cfg)

    def __enter__(self) -> ClaimHeld:
        import subprocess
        import sys

        code = (
            "import sys; from pathlib import Path; from sweep.store import Claims; "
            f"ok = Claims.claim(Path({str(self.sweep_dir)!r}), {self.run_id!r}); "
            "print('held' if ok else 'refused', flush=True); sys.stdin.read()"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline().strip()
        assert line == "held", line
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def assert_same_histories(xs: list[dict], ys: list[dict]) -> None:
    """Runs xs[i] and ys[i] have equal histories in the store (every value, bit for bit)."""
    import pandas as pd

    rows = 0
    for x, y in zip(xs, ys, strict=True):
        hx, hy = history(x), history(y)
        pd.testing.assert_frame_equal(hx, hy)
        rows += len(hx)
    assert rows > 0, "no history rows to compare"


def rewrite_checkpoint(cfg: dict, ck: dict) -> None:
    """Put `ck` in place of the run's state in the pack checkpoint the run resumes from (the other members, the
    step and the summaries unchanged): a checkpoint as an older sweep, or a damaged disk, would have left it."""
    from sweep.results import load_torch, save_torch

    rec = record(cfg)
    src = rec.checkpoint_source() if rec is not None else None
    assert src is not None and src.pack is not None, f"run {run_id(cfg)} has no pack checkpoint"
    path = src.pack / store.CHECKPOINT_FILE
    pack = load_torch(path)
    ids = pack["run_ids"]
    models = [ck if rid == rec.run_id else store.unstack(pack["models"], i) for i, rid in enumerate(ids)]
    pack["models"] = store.stack_trees(models)
    save_torch(path, pack)


def stopped_at(cfg: dict, step: int, checkpoint: dict | bytes) -> Path:
    """A pack of this run alone, as a process stopped at `step` leaves it: its config, an interrupted summary
    whose checkpoint_step is `step`, and checkpoint.pt: `checkpoint` (the run's own tree: params, opt_states,
    ...) stored as the trainer stores it, or bytes written as they are (a planted or garbage file). Returns
    the pack folder."""
    from sweep.results import summary_record, write_bytes

    d, rid = where(cfg)
    w = store.PackWriter(d, {rid: cfg})
    w.start({})
    if isinstance(checkpoint, bytes):
        write_bytes(w.root / store.CHECKPOINT_FILE, checkpoint)
    else:
        w.write_checkpoint(step, {rid: checkpoint})
    s = summary_record({"step": step}, run_id=rid, name=cfg.get("name"), status="interrupted", checkpoint_step=step)
    w.write_summaries({rid: s})
    return w.root

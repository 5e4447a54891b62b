"""The results store, a few files per pack: what a pack of K runs writes, and how a sweep's runs are read back.

    out_dir/<name>/packs/<pack_id>/runs.json        the members: {run_id: resolved config} (written at the start)
                                   summary.json     {run_id: summary}: status, final metrics, timings, wandb id
                                   history.parquet  every member's rows, a `run_id` column first
                                   checkpoint.pt    the unfinished members' state at ONE step (stacked tensors)
                                   .claim.json      who trains the pack (host, pid, SLURM job)
    out_dir/<name>/.claims                          one byte per run, locked (fcntl) by the process training it

A pack is the set of runs one trainer moves together (`pack_id` hashes their run ids), so a sweep of N runs in
packs of K holds ~5 N/K files instead of ~7 N. Every file is written whole (temp file, fsync, rename: the old or
the new version, never a torn one), in the order checkpoint -> history -> summary, so a summary never names a
checkpoint or history that has not landed.

A run can appear in several packs: a pack that crashed is retrained run by run, a rerun may pack differently. Each
summary carries `written_at` (ns); readers take, for each run, the record written last. A pack's summary row says
`checkpoint_step` only when that pack's checkpoint.pt holds the run at that step, so a resume takes the newest
record that has one. Sweeps written before this store (a folder per run: `sweep.results.RunDir`) are read too;
a record of this store is always newer than one of theirs.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from sweep.results import (
    CONFIG_JSON,
    CORRUPT,
    HISTORY_FILE,
    NOT_RUNS,
    SUMMARY_FILE,
    RunDir,
    first_line,
    flatten_config,
    history_bytes,
    json_bytes,
    load_torch,
    read_text,
    report_skipped,
    summary_fields,
    summary_problem,
    torch_bytes,
    write_bytes,
)
from sweep.results import (
    PACKS_DIR as PACKS,
)

RUNS_FILE = "runs.json"
CHECKPOINT_FILE = "checkpoint.pt"
CLAIM_OWNER = ".claim.json"
CLAIMS_FILE = ".claims"
ROWS_FILE = "rows.parquet"  # the members as `sweep collect` rows: rebuilt from summary.json with every write
ROWS_MIN = 32  # packs from this size keep rows.parquet: below it, parsing their JSON costs less than a table
LEGACY = -1  # written_at of a record from a run folder: older than any pack's


def pack_id(run_ids: Iterable[str]) -> str:
    """The pack's folder name: a hash of its members' run ids (the same runs, the same folder)."""
    return hashlib.sha256(",".join(sorted(run_ids)).encode()).hexdigest()[:12]


def packs_dir(sweep_dir: Path | str) -> Path:
    return Path(sweep_dir) / PACKS


# ----------------------------------------------------------------------------------------------- claims
class Claims:
    """Per-run claims of one sweep: a one-byte fcntl lock in the sweep's `.claims` file at the run id's offset
    (run ids are 48-bit hex hashes). The kernel drops a process's locks when it dies, so a killed trainer never
    leaves a stale claim; fcntl locks also hold across the hosts of a network filesystem that supports them.
    POSIX locks do not conflict within one process, so this process's own claims are also kept in a set."""

    _lock = threading.Lock()
    _fds: ClassVar[dict[str, int]] = {}
    _held: ClassVar[dict[str, set[str]]] = {}

    @classmethod
    def _fd(cls, sweep_dir: Path) -> tuple[int, set[str]]:
        key = str(Path(sweep_dir).resolve())
        if key not in cls._fds:
            Path(key).mkdir(parents=True, exist_ok=True)
            cls._fds[key] = os.open(os.path.join(key, CLAIMS_FILE), os.O_RDWR | os.O_CREAT, 0o666)
            cls._held[key] = set()
        return cls._fds[key], cls._held[key]

    @staticmethod
    def _offset(run_id: str) -> int:
        try:
            return int(run_id, 16) % (1 << 60)
        except ValueError:
            return int(hashlib.sha256(run_id.encode()).hexdigest()[:12], 16)

    @classmethod
    def claim(cls, sweep_dir: Path, run_id: str) -> bool:
        """True when this process now holds the run; False when another process (or this one) already does."""
        with cls._lock:
            fd, held = cls._fd(sweep_dir)
            if run_id in held:
                return False
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, cls._offset(run_id))
            except OSError:
                return False
            held.add(run_id)
            return True

    @classmethod
    def release(cls, sweep_dir: Path, run_id: str) -> None:
        with cls._lock:
            fd, held = cls._fd(sweep_dir)
            if run_id in held:
                held.discard(run_id)
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, cls._offset(run_id))


# ----------------------------------------------------------------------------------------------- stacking
_LIST = "__per_model__"  # a leaf whose K values could not be stacked: kept as a list


_NUMPY = "__numpy__"  # a numpy array or scalar of a student's optimizer state, kept as a tensor


def _numpy_as_tensor(x: Any) -> Any:
    """A numpy array or scalar leaf as {_NUMPY: kind, "t": tensor}: checkpoints load with weights_only=True,
    which refuses numpy's pickles, so a student's optimizer keeping numpy state could never resume."""
    if type(x).__module__ != "numpy":  # every node of every model's tree passes here: the common case first
        return x
    import numpy as np
    import torch

    if isinstance(x, np.ndarray) and x.dtype.kind in "biufc":
        return {_NUMPY: "array", "t": torch.from_numpy(np.ascontiguousarray(x).copy())}
    if isinstance(x, np.generic) and np.asarray(x).dtype.kind in "biufc":
        return {_NUMPY: "scalar", "t": torch.from_numpy(np.asarray(x).copy())}
    return x


def _tensor_as_numpy(tree: dict) -> Any:
    """`_numpy_as_tensor`'s inverse: the numpy array or scalar, as the optimizer kept it."""
    a = tree["t"].numpy().copy()
    return a[()] if tree[_NUMPY] == "scalar" else a


def stack_trees(trees: Sequence[Any]) -> Any:
    """K per-model checkpoint trees (dicts, lists, tensors, numbers, strings, numpy arrays) as one tree whose
    tensor leaves are stacked along a new first axis: one torch.save of a pack's state writes L tensors, not
    K x L. numpy leaves travel as tensors (`_numpy_as_tensor`) and come back as numpy from `unstack`."""
    import torch

    trees = [_numpy_as_tensor(t) for t in trees]
    first = trees[0]
    if isinstance(first, dict) and all(isinstance(t, dict) and t.keys() == first.keys() for t in trees):
        return {k: stack_trees([t[k] for t in trees]) for k in first}
    if isinstance(first, (list, tuple)) and all(isinstance(t, (list, tuple)) and len(t) == len(first) for t in trees):
        return [stack_trees([t[i] for t in trees]) for i in range(len(first))]
    if isinstance(first, torch.Tensor) and all(
        isinstance(t, torch.Tensor) and t.shape == first.shape and t.dtype == first.dtype for t in trees
    ):
        return {_LIST: "stacked", "t": torch.stack(list(trees))}
    return {_LIST: "list", "v": list(trees)}


def unstack(tree: Any, k: int) -> Any:
    """Model k's tree out of `stack_trees`'s result (tensors cloned: the model's own, as it was saved)."""
    if isinstance(tree, dict):
        kind = tree.get(_LIST)
        if kind == "stacked":
            return tree["t"][k].clone()
        if kind == "list":
            return tree["v"][k]
        out = {key: unstack(v, k) for key, v in tree.items()}
        return _tensor_as_numpy(out) if out.get(_NUMPY) in ("array", "scalar") else out
    if isinstance(tree, list):
        return [unstack(v, k) for v in tree]
    return tree


# ----------------------------------------------------------------------------------------------- writing
class PackWriter:
    """The files of one pack. Summaries and histories of every member are kept here and rewritten whole."""

    def __init__(self, sweep_dir: Path | str, cfgs: Mapping[str, dict]) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.run_ids = list(cfgs)
        self.root = packs_dir(sweep_dir) / pack_id(self.run_ids)
        self.cfgs = dict(cfgs)
        self.summaries: dict[str, dict] = {}
        self.histories: dict[str, list[dict]] = {}
        self._flat: dict[str, dict] | None = None  # the members' configs flattened, made at the first summary

    def start(self, owner: Mapping[str, Any], previous: Mapping[str, dict] | None = None) -> None:
        """Make the folder; write the members' configs and who trains them. `previous`: the summaries this pack
        continues (its own from an earlier process), kept for the members it does not write again."""
        self.root.mkdir(parents=True, exist_ok=True)
        for tmp in self.root.glob(".*.tmp"):  # a killed writer's leftovers: ours alone while we hold the claims
            tmp.unlink(missing_ok=True)
        old = read_pack_summaries(self.root)[0] if previous is None else dict(previous)
        self.summaries = {rid: s for rid, s in old.items() if rid in self.cfgs}
        text = json.dumps(self.cfgs, separators=(",", ":"), default=str) + "\n"
        if read_text(self.root / RUNS_FILE) != text:
            write_bytes(self.root / RUNS_FILE, text.encode())
        write_bytes(self.root / CLAIM_OWNER, json_bytes(dict(owner)), durable=False)

    def write_checkpoint(self, step: int, models: Mapping[str, dict]) -> None:
        """The unfinished members' state at `step`, in one file (a pack's checkpoint is one consistent step)."""
        ids = list(models)
        data = {"format": 1, "step": step, "run_ids": ids, "models": stack_trees([models[r] for r in ids])}
        write_bytes(self.root / CHECKPOINT_FILE, torch_bytes(data))

    def write_histories(self, rows: Mapping[str, list[dict]]) -> None:
        self.histories.update(rows)
        write_bytes(self.root / HISTORY_FILE, pack_history_bytes(self.histories))

    def write_summaries(self, summaries: Mapping[str, dict]) -> None:
        now = time.time_ns()
        for rid, s in summaries.items():
            self.summaries[rid] = {**s, "written_at": now}
        write_bytes(self.root / SUMMARY_FILE, summaries_bytes(self.summaries))
        if len(self.cfgs) >= ROWS_MIN:
            if self._flat is None:
                self._flat = {rid: flatten_config(cfg) for rid, cfg in self.cfgs.items()}
            write_bytes(self.root / ROWS_FILE, rows_bytes(self._flat, self.summaries), durable=False)


def rows_bytes(flat_cfgs: Mapping[str, dict], summaries: Mapping[str, dict]) -> bytes:
    """rows.parquet: one row per member as `sweep collect` shows it (run_id, written_at, the config flattened,
    the summary's fields), so reading a sweep of many runs is reading a few tables, not parsing every run's JSON.
    It is an index of summary.json, written after it: readers trust it only when it is not older (a kill in
    between, or a hand edit of summary.json, sends them to summary.json). Not fsynced: it can be rebuilt."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for rid, flat in flat_cfgs.items():
        s = summaries.get(rid)
        row = {"run_id": rid, "written_at": int(s.get("written_at") or 0) if s else LEGACY - 1, **flat}
        if s is not None:
            row.update(summary_fields(s))
        rows.append(row)
    arrays = {}
    for name in dict.fromkeys(k for r in rows for k in r):
        values = [r.get(name) for r in rows]
        try:
            arrays[name] = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):  # mixed types: as text
            arrays[name] = pa.array([None if v is None else str(v) for v in values])
    config_keys = list(dict.fromkeys(k for flat in flat_cfgs.values() for k in flat))
    table = pa.table(arrays).replace_schema_metadata({"config_columns": json.dumps(config_keys)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def read_rows(pack: Path) -> tuple[Any, list[str]] | None:
    """(rows.parquet as a pyarrow table, its config columns) when it is at least as new as summary.json, else
    None (then read the pack through `scan`)."""
    import pyarrow.parquet as pq

    rows, summ = file_stamp(pack / ROWS_FILE), file_stamp(pack / SUMMARY_FILE)
    if not rows or (summ and rows[0] < summ[0]):
        return None
    try:
        table = pq.read_table(pack / ROWS_FILE)
        cols = json.loads((table.schema.metadata or {}).get(b"config_columns", b"[]"))
    except Exception:  # an unreadable index: the JSON it indexes is the truth
        return None
    return table, cols


def summaries_bytes(summaries: Mapping[str, dict]) -> bytes:
    """A pack's summary.json: one line per run (`{"<run_id>": {...},` ...), keys sorted."""
    lines = [json.dumps(rid) + ":" + json.dumps(s, sort_keys=True, default=str) for rid, s in summaries.items()]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def pack_history_bytes(histories: Mapping[str, list[dict]]) -> bytes:
    """history.parquet of a pack: each member's rows in order, a `run_id` column first."""
    return history_bytes([{"run_id": rid, **row} for rid, h in histories.items() for row in h])


# ----------------------------------------------------------------------------------------------- reading
@dataclass
class RunRecord:
    """What the store holds of one run: its summary (None before it wrote one; `problem` says why it is
    unusable), config, where it lives (a pack folder, or a run folder of the earlier layout) and who claimed it."""

    run_id: str
    summary: dict | None = None
    problem: str | None = None
    config: dict | None = None
    pack: Path | None = None
    legacy: Path | None = None
    claim: dict | None = None
    written_at: int = LEGACY
    mtime: float | None = None
    older: list[RunRecord] = field(default_factory=list)  # the run's other records, newest first

    @property
    def status(self) -> str | None:
        if self.problem:
            return CORRUPT
        return None if self.summary is None else self.summary.get("status")

    @property
    def where(self) -> Path:
        return self.pack if self.pack is not None else self.legacy  # type: ignore[return-value]

    @property
    def summary_path(self) -> Path:
        return self.where / SUMMARY_FILE

    def checkpoint_sources(self) -> list[RunRecord]:
        """The records whose checkpoint may hold this run, newest first: a pack's whose summary says so
        (`checkpoint_step`), a pack's whose summary is unreadable but has a checkpoint.pt (it may hold the run:
        `load_start` looks), and a run folder's checkpoint.pt."""
        out = []
        for rec in (self, *self.older):
            if rec.pack is not None:
                said = rec.summary is not None and rec.summary.get("checkpoint_step") is not None
                if said or (rec.problem and (rec.pack / CHECKPOINT_FILE).is_file()):
                    out.append(rec)
            elif rec.legacy is not None and (rec.legacy / "checkpoint.pt").is_file():
                out.append(rec)
        return out

    def checkpoint_source(self) -> RunRecord | None:
        """The newest record whose checkpoint holds this run, or None: the run starts from scratch."""
        sources = self.checkpoint_sources()
        return sources[0] if sources else None


def read_pack_summaries(pack: Path) -> tuple[dict[str, dict], str | None]:
    """({run_id: summary}, None), or ({}, why the file is unusable); ({}, None) when there is none yet."""
    try:
        text = read_text(pack / SUMMARY_FILE)
    except (OSError, UnicodeDecodeError) as e:
        return {}, f"unreadable ({type(e).__name__})"
    if text is None:
        return {}, None
    try:
        obj = json.loads(text)
    except ValueError as e:
        return {}, f"not valid JSON ({first_line(e)})"
    if not isinstance(obj, dict):
        return {}, f"holds a JSON {type(obj).__name__}, not an object"
    return obj, None


def read_pack_configs(pack: Path) -> dict[str, dict]:
    try:
        text = read_text(pack / RUNS_FILE)
        obj = json.loads(text) if text is not None else {}
    except (OSError, ValueError) as e:
        report_skipped(pack / RUNS_FILE, f"not valid JSON ({first_line(e)}); its runs' configs are left out")
        return {}
    if not isinstance(obj, dict):
        report_skipped(pack / RUNS_FILE, "not a JSON object; its runs' configs are left out")
        return {}
    return {k: v for k, v in obj.items() if isinstance(v, dict)}


_PACK_CACHE: dict[str, tuple[tuple, list[RunRecord]]] = {}


def file_stamp(path: Path) -> tuple:
    """(mtime_ns, size, inode) of a file, () when it is missing: a rename of a new version changes it."""
    try:
        st = path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        return ()


def _pack_records(pack: Path) -> list[RunRecord]:
    """The records of one pack folder, parsed again only when its files changed (a grid of N packs of one run
    reads its sweep before every pack)."""
    stamp = tuple(file_stamp(pack / f) for f in (SUMMARY_FILE, RUNS_FILE, CLAIM_OWNER))
    hit = _PACK_CACHE.get(str(pack))
    if hit is None or hit[0] != stamp:
        if len(_PACK_CACHE) > 100_000:
            _PACK_CACHE.clear()
        hit = _PACK_CACHE[str(pack)] = (stamp, _read_pack_records(pack))
    return [replace(r, older=[], summary=dict(r.summary) if r.summary else r.summary) for r in hit[1]]


def _read_pack_records(pack: Path) -> list[RunRecord]:
    summaries, problem = read_pack_summaries(pack)
    configs = read_pack_configs(pack)
    try:
        claim = json.loads(read_text(pack / CLAIM_OWNER) or "null")
    except (OSError, ValueError):
        claim = None
    try:
        mtime = (pack / SUMMARY_FILE).stat().st_mtime
    except OSError:
        mtime = None
    if problem:
        report_skipped(pack / SUMMARY_FILE, problem)
    out = []
    for rid in dict.fromkeys([*configs, *summaries]):
        s = summaries.get(rid)
        rec = RunRecord(rid, config=configs.get(rid), pack=pack, claim=claim if isinstance(claim, dict) else None)
        rec.mtime = mtime
        if problem:
            rec.problem = problem
        elif s is not None:
            why = summary_problem(s)
            if why:
                report_skipped(pack / SUMMARY_FILE, f"run {rid}: {why}")
                rec.problem = why
            else:
                rec.summary = s
                rec.written_at = int(s.get("written_at") or 0)
        if rec.summary is None and not rec.problem:
            rec.written_at = LEGACY - 1  # configs only: the pack started, wrote nothing of this run yet
        out.append(rec)
    return out


def _legacy_record(run_dir: Path) -> RunRecord | None:
    from sweep.results import read_config, read_summary

    d = RunDir(run_dir)
    summary, problem = read_summary(d.summary)
    has_config = any((run_dir / f).exists() for f in (CONFIG_JSON, "config.yaml"))
    if summary is None and problem is None and not has_config:
        return None
    if problem:
        report_skipped(d.summary, problem)
    rec = RunRecord(run_dir.name, summary=summary, problem=problem, config=read_config(run_dir), legacy=run_dir)
    rec.claim = d.read_claim_owner()
    try:
        rec.mtime = d.summary.stat().st_mtime
    except OSError:
        rec.mtime = None
    return rec


def pack_dirs(sweep_dir: Path | str) -> list[Path]:
    """The sweep's pack folders, sorted."""
    try:
        with os.scandir(packs_dir(sweep_dir)) as it:
            return sorted(Path(e.path) for e in it if e.is_dir() and not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []


def scan(sweep_dir: Path | str, skip: set[Path] | frozenset = frozenset()) -> dict[str, RunRecord]:
    """Every run the sweep's folder holds, by run id: its newest record (the others in `older`). Packs in
    `skip` are left out (a reader that took them from their rows.parquet)."""
    sweep_dir = Path(sweep_dir)
    found: dict[str, list[RunRecord]] = {}
    for p in pack_dirs(sweep_dir):
        if p in skip:
            continue
        for rec in _pack_records(p):
            found.setdefault(rec.run_id, []).append(rec)
    try:
        entries = list(os.scandir(sweep_dir))
    except OSError:
        entries = []
    for e in entries:
        if e.name.startswith(".") or e.name in NOT_RUNS:
            continue
        try:
            if not e.is_dir():
                continue
        except OSError:
            continue
        rec = _legacy_record(Path(e.path))
        if rec is not None:
            found.setdefault(rec.run_id, []).append(rec)
    out = {}
    for rid, recs in found.items():
        recs.sort(key=lambda r: r.written_at, reverse=True)
        head = recs[0]
        head.older = recs[1:]
        if head.config is None:  # a pack that crashed before writing the config of a run it named: any copy
            head.config = next((r.config for r in recs if r.config is not None), None)
        out[rid] = head
    return out


def load_start(rec: RunRecord | None, cache: dict[Path, dict]) -> dict | None:
    """The per-model checkpoint a run resumes from (the newest that holds it), or None to start afresh.
    `cache` keeps each pack checkpoint loaded once (a pack of K reads its one file, not K times)."""
    for src in rec.checkpoint_sources() if rec is not None else []:
        if src.legacy is not None:
            ck = load_torch(src.legacy / "checkpoint.pt")
            if ck.get("run_id") != rec.run_id:
                raise RuntimeError(
                    f"{src.legacy / 'checkpoint.pt'} belongs to run {ck.get('run_id')}, not {rec.run_id}"
                )
            return ck
        path = src.pack / CHECKPOINT_FILE
        if path not in cache:
            cache[path] = load_torch(path)
        pack = cache[path]
        ids = pack.get("run_ids") or []
        if rec.run_id not in ids:
            if src.problem:  # an unreadable summary said nothing: the run may be elsewhere
                continue
            raise RuntimeError(f"{path} does not hold run {rec.run_id} (its summary says it does)")
        # a kill between the checkpoint and the summary leaves the checkpoint a step ahead: it is the newer state
        # (it holds its own step and history), so the run resumes from it
        ck = unstack(pack["models"], ids.index(rec.run_id))
        ck["run_id"] = rec.run_id
        return ck
    return None


def read_history_rows(rec: RunRecord) -> Any:
    """The run's history as a pyarrow table (None when it has none)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if rec.pack is None:
        path = rec.legacy / HISTORY_FILE
        return pq.read_table(path) if path.is_file() else None
    path = rec.pack / HISTORY_FILE
    if not path.is_file():
        return None
    t = pq.read_table(path)
    return t.filter(pc.equal(t["run_id"], rec.run_id)).drop(["run_id"])


def run_ids(
    sweep_dir: Path | str, record: dict | None = None, all_runs: bool = False, records: Mapping | None = None
) -> list[str]:
    """The sweep's run ids: those sweep.json lists (in its order), or with all_runs / without sweep.json every
    run the store holds as well (sorted)."""
    from sweep.results import read_sweep_record

    record = read_sweep_record(sweep_dir) if record is None else record
    listed = [r["run_id"] for r in record.get("runs") or [] if isinstance(r, dict) and r.get("run_id")]
    if listed and not all_runs:
        return list(dict.fromkeys(listed))
    present = sorted(scan(sweep_dir) if records is None else records)
    return list(dict.fromkeys([*listed, *present]))


def summary(sweep_dir: Path | str, run_id: str) -> dict | None:
    """The run's newest summary (None when the store holds none)."""
    rec = scan(sweep_dir).get(run_id)
    return None if rec is None else rec.summary


def history(sweep_dir: Path | str, run_id: str) -> Any:
    """The run's history as a pandas DataFrame (empty when it has none)."""
    import pandas as pd

    rec = scan(sweep_dir).get(run_id)
    t = read_history_rows(rec) if rec is not None else None
    return pd.DataFrame() if t is None else t.to_pandas()


def checkpoint(sweep_dir: Path | str, run_id: str) -> dict | None:
    """The newest checkpoint that holds the run, as the run's own (params, optimizer state, step, ...)."""
    return load_start(scan(sweep_dir).get(run_id), {})

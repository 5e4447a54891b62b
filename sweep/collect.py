"""A sweep's results as pandas frames: one row per run (`load_runs`), or its histories stacked (`load_history`).

    runs = load_runs("runs/sweep-20250101-120000")     # run_id, swept keys, status, metrics, every config key
    hist = load_history("runs/sweep-20250101-120000")  # run_id, swept keys, step, epoch, lr, train_loss, ...

Config keys are flattened with dots (`optimizer.name`, `schedule.name`, `model.hidden`); lists and dicts become
compact JSON strings (`model.hidden` = "[64,64]") so every column can be grouped on and written to parquet/csv.
`batch_size` is a number (`full` becomes the training-set size where a run's files state it, else NaN) with a
boolean `full_batch` beside it; optimizer knobs the run's optimizer does not read (`optimizer.betas` of an SGD
run) are NaN, per `sweep.config.OPTIMIZER_KNOBS` (`tidy`).
The swept keys of sweep.json come first (a swept config group such as `optimizer` is its `optimizer.name`
column) and are also in `frame.attrs["swept"]`. `frame.attrs["config_keys"]` are the columns that tell one
configuration from another (`config_keys`): the swept keys but the seed, plus any other semantic config value
that differs (a Hydra `choices.optimizer`, an `optimizer.betas`), so presets sharing a name are never seeds.

A corrupt file (truncated JSON, a summary.json holding `[]` or `{"status": 5}`, a torn history.parquet) is
skipped with one line on stderr, `sweep: skipped <path>: <reason>`; its run's row says status `corrupt`.

Each run's config is read from its config.json (runs recorded before config.json existed: config.yaml, with
PyYAML's C loader); the store's layout and fields are `sweep.results`'. benchmarks/bench_collect.py times it.

`sweep collect SWEEP [-o runs.parquet|runs.csv] [--history] [--all]` writes the frame (atomically), or prints a
short table. `--from-wandb ENTITY/PROJECT --group NAME` builds the same frame from the wandb API instead.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from sweep.identity import is_semantic
from sweep.results import (
    CORRUPT,
    FLOAT_FIELDS,
    HISTORY_COLUMNS,
    HISTORY_FILE,
    INT_FIELDS,
    SUMMARY_METRICS,
    atomic_write,
    check_sweep_dir,
    first_line,
    flatten_config,
    folder_problem,
    read_sweep_record,
    report_skipped,
    summary_fields,
)
from sweep.results import sweep_dir_problem as sweep_dir_problem  # where the report and analysis look for it
from sweep.store import pack_dirs, read_rows, scan
from sweep.store import run_ids as store_run_ids


# ----------------------------------------------------------------------------------------------- the run frame
def swept_columns(swept: Iterable[str], columns: Iterable[str]) -> list[str]:
    """sweep.json's swept override keys as frame columns: `lr` -> lr, a group `optimizer` -> optimizer.name."""
    cols = set(columns)
    out = []
    for k in swept:
        k = str(k).lstrip("+~")
        for c in (k, f"{k}.name"):
            if c in cols and c not in out:
                out.append(c)
                break
    return out


def infer_swept(df: pd.DataFrame, config_columns: Iterable[str], rows: Any = None) -> list[str]:
    """Config columns whose value differs between runs (where no sweep.json says what was swept); `rows` (a
    boolean mask) limits it to the runs whose config could be read."""
    df = df if rows is None else df[rows]
    out = []
    for c in config_columns:
        # choices.* name the preset of a group whose values are columns already (config_keys adds a choice
        # back where it alone tells runs apart)
        if not is_semantic(c) or c.startswith("choices.") or c not in df:
            continue
        if df[c].nunique(dropna=False) > 1 and df[c].astype(str).nunique(dropna=False) > 1:
            out.append(c)
    return out


def config_keys(df: pd.DataFrame, swept: Sequence[str], config_columns: Iterable[str], rows: Any = None) -> list[str]:
    """The columns that tell one configuration from another: the swept keys but the seed, then every other
    semantic config column (Hydra `choices.*` first) whose value still differs between runs that agree on the
    keys so far. Two runs with the same keys are seeds of one configuration; runs of different configs (a
    preset `optimizer=adam_lowbeta` beside `optimizer=adam`: both `optimizer.name=adam`) never are. A column
    determined by the keys already taken (`optimizer.betas` of `optimizer.name`) adds nothing and is left out,
    so labels stay short. `rows` (a boolean mask) limits the test to runs whose config could be read."""
    d = df if rows is None else df[rows]
    keys = [k for k in swept if k != "seed" and k in df]
    cols = [c for c in config_columns if c in d and c != "seed" and c not in keys and is_semantic(c)]
    cols.sort(key=lambda c: not c.startswith("choices."))  # stable: config order within each kind
    if len(d) < 2:
        return keys
    cols = [c for c in cols if d[c].nunique(dropna=False) > 1]  # a column equal in every run tells none apart
    text = d[[*keys, *cols]].astype(str)  # lists are JSON text already; NaN -> "nan"
    for c in cols:
        if text[c].nunique() < 2:
            continue
        spread = text.groupby(keys, sort=False)[c].nunique() if keys else pd.Series([text[c].nunique()])
        if (spread > 1).any():
            keys.append(c)
    return keys


def _numeric(df: pd.DataFrame) -> pd.DataFrame:
    """Metric columns as floats and nullable ints (None -> NaN / <NA>), whatever JSON gave."""
    for c in (*FLOAT_FIELDS, *INT_FIELDS):
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64" if c in INT_FIELDS else float)
    return df


# Where a run's training-set size may be written (a full batch is that many examples).
TRAIN_SIZE_FIELDS = ("n_train", "train_size")


def _train_size(df: pd.DataFrame) -> pd.Series:
    """Each run's training-set size: its summary's `n_train` (or `train_size`) where given, else the generated
    data's `data.n_samples` less its test split (`data.test_fraction`), else NaN (a fixed dataset such as digits
    whose size no run file states)."""
    import numpy as np

    size = pd.Series(np.nan, index=df.index)
    for c in TRAIN_SIZE_FIELDS:
        if c in df:
            size = size.fillna(pd.to_numeric(df[c], errors="coerce"))
    if "data.n_samples" in df:
        n = pd.to_numeric(df["data.n_samples"], errors="coerce")
        frac = pd.to_numeric(df["data.test_fraction"], errors="coerce") if "data.test_fraction" in df else np.nan
        # num_test_samples's rounding (half to even, as Python's round), for a whole column at once
        size = size.fillna(n - (n * frac).round())
    return size


def tidy_batch_size(df: pd.DataFrame) -> pd.DataFrame:
    """`batch_size` as numbers (sortable, numeric in parquet): an integer as typed, and for `full` the run's
    training-set size (`_train_size`, NaN where unknown); plus a boolean `full_batch` column right after it,
    True where the user typed `full`. The typed value stays recoverable: `full` where full_batch, else the
    number. A frame without batch_size is returned unchanged."""
    if "batch_size" not in df:
        return df
    typed = df["batch_size"]
    full = typed.astype(str).str.strip().str.lower().eq("full")
    numeric = pd.to_numeric(typed.where(~full), errors="coerce").astype(float)
    if full.any():
        numeric = numeric.where(~full, _train_size(df))
    at = df.columns.get_loc("batch_size") + 1
    # one new frame (copy-on-write: the caller's is never changed), not an insert into a wide fragmented one
    return pd.concat(
        [df.iloc[:, :at].assign(batch_size=numeric), full.astype(bool).rename("full_batch"), df.iloc[:, at:]], axis=1
    )


def blank_unread_knobs(df: pd.DataFrame) -> pd.DataFrame:
    """Optimizer knobs the run's optimizer does not read (`optimizer.betas` of an SGD run: the schema's default,
    never used) as NaN, per `sweep.config.OPTIMIZER_KNOBS`; runs of an optimizer that table does not know keep
    their values."""
    if "optimizer.name" not in df:
        return df
    from sweep.config import OPTIMIZER_KNOBS  # lazily: sweep.config loads torch, the readers need it only here

    knobs = {k for reads in OPTIMIZER_KNOBS.values() for k in reads}
    cols = [f"optimizer.{k}" for k in sorted(knobs) if f"optimizer.{k}" in df]
    if not cols:
        return df
    df = df.copy(deep=False)  # copy-on-write (pandas >= 3): the caller's frame is never changed
    name = df["optimizer.name"]
    for col in cols:
        knob = col.split(".", 1)[1]
        readers = [o for o, reads in OPTIMIZER_KNOBS.items() if knob in reads]
        unread = name.isin(list(OPTIMIZER_KNOBS)) & ~name.isin(readers)
        if unread.any():
            df[col] = df[col].astype(object).where(~unread, float("nan"))
            df[col] = df[col].infer_objects()
    return df


def tidy(df: pd.DataFrame, swept: Sequence[str] = ()) -> pd.DataFrame:
    """The frame's config columns made analysable: numeric `batch_size` with `full_batch`, and unread optimizer
    knobs empty (see `tidy_batch_size`, `blank_unread_knobs`). With batch_size among the `swept` keys (which
    lead the frame), full_batch follows them, so the frame still reads run_id, swept keys, status, ..."""
    df = blank_unread_knobs(tidy_batch_size(df))
    if "batch_size" in swept and "full_batch" in df:
        cols = [c for c in df.columns if c != "full_batch"]
        at = max(cols.index(k) for k in swept if k in cols) + 1
        df = df[[*cols[:at], "full_batch", *cols[at:]]]
    return df


def _order(df: pd.DataFrame, swept: list[str], config_cols: list[str]) -> pd.DataFrame:
    first = ["run_id", *swept, *[m for m in SUMMARY_METRICS if m in df]]
    rest_cfg = [c for c in config_cols if c not in first]
    rest = [c for c in df.columns if c not in first and c not in rest_cfg]
    return df[[*first, *rest_cfg, *rest]]


def load_runs(sweep_dir: Path | str, *, all_runs: bool = False) -> pd.DataFrame:
    """One row per run the sweep's store holds: run_id, swept keys, status and metrics, every config key
    (flattened with dots), then the rest of its summary. Runs still running show their latest checkpointed
    values; a run whose pack has not written its summary yet has status `pending`. Each pack is read from its
    rows.parquet (`sweep.store.rows_bytes`) where that is current, else from its JSON; a run in several packs
    is shown by its newest record."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"no sweep folder {sweep_dir}")
    record = read_sweep_record(sweep_dir)
    tables, config_cols, indexed = [], {}, set()
    packs = pack_dirs(sweep_dir)
    with ThreadPoolExecutor(max_workers=4) as pool:  # parquet reads release the GIL
        for pack, got in zip(packs, pool.map(read_rows, packs)):
            if got is not None:
                table, cols = got
                tables.append(table)
                config_cols.update(dict.fromkeys(cols))
                indexed.add(pack)
    rows = []
    for rec in scan(sweep_dir, skip=indexed).values():
        for r in (rec, *rec.older):
            flat = flatten_config(r.config) if r.config else {}
            config_cols.update(dict.fromkeys(flat))
            summary = {"status": CORRUPT} if r.problem else (r.summary or {})
            rows.append({"run_id": r.run_id, "written_at": r.written_at, **flat, **summary_fields(summary),
                         "_has_config": bool(flat)})  # fmt: skip
    every = _one_table(tables, rows)
    if every is not None and len(every):
        keys = pd.DataFrame({"run_id": every["run_id"].to_numpy(), "written_at": every["written_at"].to_numpy()})
        newest = keys.sort_values("written_at", ascending=False, kind="stable").drop_duplicates("run_id")
        where = dict(zip(newest["run_id"], newest.index))
        ids = store_run_ids(sweep_dir, record, all_runs, where)
        df = _take(every, [where[i] for i in ids if i in where])
        if "status" not in df:
            df["status"] = None
        df["status"] = df["status"].fillna("pending")
        has_config = [v is True for v in df.pop("_has_config").tolist()]
    else:
        df, has_config = None, []
    df = _numeric(df if df is not None and len(df) else pd.DataFrame(columns=["run_id", *SUMMARY_METRICS]))
    for m in SUMMARY_METRICS:  # no run has a summary yet (all pending or corrupt): the metrics exist, as NaN
        if m not in df:
            df[m] = float("nan")
    cfg_cols = list(config_cols)
    readable = pd.Series(has_config, index=df.index) if len(df) else None
    swept = (
        swept_columns(record.get("swept") or [], df.columns)
        if record.get("swept") is not None
        else infer_swept(df, cfg_cols, readable)
    )
    df = tidy(_order(df, swept, cfg_cols), swept)
    df.attrs.update(
        swept=swept,
        config_keys=config_keys(df, swept, cfg_cols, readable),
        name=record.get("name") or sweep_dir.name,
        sweep_dir=str(sweep_dir),
    )
    return df


def _one_table(tables: list, rows: list[dict]) -> Any:
    """Every record of the sweep in one frame-like table: the packs' rows.parquet tables concatenated in arrow
    (one conversion to pandas for the whole sweep), or, with records read from JSON too, a pandas frame."""
    import pyarrow as pa

    tables = [t.append_column("_has_config", pa.array([True] * t.num_rows)) for t in tables]
    if not rows:
        if not tables:
            return None
        try:
            return pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column of different types in two packs
            pass
    frames = [t.to_pandas() for t in tables] + ([pd.DataFrame.from_records(rows)] if rows else [])
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _take(table: Any, positions: list[int]) -> pd.DataFrame:
    """Rows `positions` of `_one_table`'s result, in that order, as a fresh pandas frame."""
    if isinstance(table, pd.DataFrame):
        return table.iloc[positions].reset_index(drop=True)
    # split_blocks: one block per column, no consolidation copy (a third of this call for 100,000 runs)
    return table.take(positions).to_pandas(split_blocks=True, self_destruct=True)


def _history_schema(first: Any) -> Any:
    import pyarrow as pa

    known = pa.schema([(k, pa.type_for_alias(v)) for k, v in HISTORY_COLUMNS.items()])
    return known if first is None else pa.unify_schemas([known, first], promote_options="permissive")


def _read_history_file(path: str) -> Any:
    """One history.parquet as a table whose engine columns have HISTORY_COLUMNS's types; raises (pyarrow's
    errors, OSError, ValueError) for a file that is not parquet, is truncated, or holds a column of another
    type (`step` as text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    for name, alias in HISTORY_COLUMNS.items():
        i = t.schema.get_field_index(name)
        if i >= 0 and t.schema.field(i).type != pa.type_for_alias(alias):
            try:
                t = t.set_column(i, name, t.column(i).cast(pa.type_for_alias(alias)))
            except (pa.ArrowException, ValueError) as e:
                raise ValueError(f"column {name} is {t.schema.field(i).type}, not {alias} ({first_line(e)})") from e
    return t


def _history_tables(paths: list[str]) -> list[tuple[int, Any]]:
    """(index into paths, record batch) for every history file that exists, read by pyarrow's dataset scanner
    (multi-threaded C++; about 3x faster than one read_table per file). When a file is corrupt (truncated,
    not parquet, a column of the wrong type) the files are read one by one instead, and each bad one is
    skipped with one `sweep: skipped <path>: <reason>` line on stderr."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    present = [p for p in paths if os.path.exists(p)]
    if not present:
        return []
    index = {os.path.normpath(p): i for i, p in enumerate(paths)}
    try:  # the first file's extra columns join the known ones; a bad first file sends us one by one
        schema = _history_schema(pq.read_schema(present[0]))
        dataset = ds.dataset(present, format="parquet", schema=schema)
        return [
            (index[os.path.normpath(b.fragment.path)], b.record_batch)
            for b in dataset.scanner().scan_batches()
            if b.record_batch.num_rows
        ]
    except (pa.ArrowException, OSError, ValueError):
        pass
    out = []
    for p in present:
        try:
            t = _read_history_file(p)
        except (pa.ArrowException, OSError, ValueError) as e:
            report_skipped(p, first_line(e))
            continue
        out.extend((index[os.path.normpath(p)], b) for b in t.to_batches() if b.num_rows)
    return out


def _store_history(sweep_dir: Path, ids: list[str]) -> list[tuple[Any, Any]]:
    """(run index per row, table) pieces of the runs' histories: each pack's history.parquet read once and
    kept to the rows of runs whose newest record it holds; a run folder's (earlier layout) file as it is."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    records = scan(sweep_dir)
    index = {rid: i for i, rid in enumerate(ids)}
    by_pack: dict[Path, list[str]] = {}
    legacy: list[str] = []
    for rid in ids:
        rec = records.get(rid)
        if rec is None:
            continue
        if rec.pack is not None:
            by_pack.setdefault(rec.pack, []).append(rid)
        else:
            legacy.append(f"{rec.legacy}/{HISTORY_FILE}")
    out = []
    for pack, members in by_pack.items():
        path = pack / HISTORY_FILE
        if not path.exists():
            continue
        try:
            t = _read_history_file(str(path))
        except (pa.ArrowException, OSError, ValueError) as e:
            report_skipped(path, first_line(e))
            continue
        if "run_id" not in t.column_names or not t.num_rows:
            continue
        t = t.filter(pc.is_in(t.column("run_id"), value_set=pa.array(members)))  # in C++: packs can be large
        if not t.num_rows:
            continue
        which = pd.Series(t.column("run_id").to_numpy(zero_copy_only=False)).map(index).to_numpy(np.int64)
        out.append((which, t.drop(["run_id"])))
    legacy_index = {p: index[os.path.basename(os.path.dirname(p))] for p in legacy}
    for i, batch in _history_tables(legacy):
        p = legacy[i]
        out.append((np.full(batch.num_rows, legacy_index[p], dtype=np.int64), pa.Table.from_batches([batch])))
    return out


def load_history(sweep_dir: Path | str, runs: pd.DataFrame | None = None, *, all_runs: bool = False) -> pd.DataFrame:
    """Every run's history.parquet stacked (long format): run_id, the swept keys, then step, epoch, lr_t (the
    scheduled rate; `lr`, the base rate, is a config key), train_loss, grad_norm, val_* and test_* (NaN except
    at evaluation rows), ordered by run (as in `runs`) and step. Histories recorded before the column was named
    lr_t call it lr: read as lr_t. Any other history column named like a swept key gets the suffix `_t`."""
    import numpy as np
    import pyarrow as pa

    sweep_dir = Path(sweep_dir)
    runs = load_runs(sweep_dir, all_runs=all_runs) if runs is None else runs
    swept = list(runs.attrs.get("swept", []))
    ids = list(runs["run_id"])
    batches = _store_history(sweep_dir, ids)
    if not batches:
        df = pd.DataFrame(columns=["run_id", *swept, *HISTORY_COLUMNS])
        df.attrs.update(runs.attrs)
        return df
    which = np.concatenate([w for w, _ in batches])
    tables = [t for _, t in batches]
    table = (
        pa.concat_tables(tables)
        if len({t.schema for t in tables}) == 1
        else pa.concat_tables(tables, promote_options="permissive")
    )
    hist = table.to_pandas()
    if "lr" in hist.columns:  # histories recorded before the rename call the scheduled rate lr
        hist["lr_t"] = hist["lr_t"].fillna(hist["lr"]) if "lr_t" in hist.columns else hist["lr"]
        hist = hist.drop(columns="lr")
    order = np.lexsort((hist["step"].to_numpy(), which)) if "step" in hist else np.argsort(which, kind="stable")
    hist = hist.iloc[order].reset_index(drop=True)
    which = which[order]
    front = {"run_id": np.asarray(ids, dtype=object)[which]}
    for c in swept:
        front[c] = runs[c].to_numpy()[which]
    hist = hist.rename(columns={c: f"{c}_t" for c in hist.columns if c in front})
    df = pd.concat([pd.DataFrame(front), hist], axis=1)
    df.attrs.update(runs.attrs)
    return df


# ----------------------------------------------------------------------------------------------- wandb
def _get(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, dict):
        return record.get(name, default)
    return getattr(record, name, default)


def _as_dict(obj: Any) -> dict:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    for attr in ("_json_dict",):
        d = getattr(obj, attr, None)
        if isinstance(d, dict):
            return d
    try:
        return dict(obj.items())
    except Exception:
        return {}


_WANDB_STATES = {"finished": "done", "crashed": "failed", "failed": "failed", "killed": "failed", "running": "running"}


def frame_from_wandb_records(records: Iterable[Any]) -> pd.DataFrame:
    """The run frame of `load_runs`, from wandb-API-shaped records (wandb.Api().runs(...) items, or dicts):
    `.id`, `.config` (the nested run config), `.summary` (our summary fields, as `sweep sync` sends them),
    `.group` (the sweep name), optionally `.tags` (`key=value` for each swept override) and `.state`."""
    rows, config_cols, tag_keys = [], {}, {}
    groups = set()
    for rec in records:
        config = _as_dict(_get(rec, "config"))
        config = {
            k: (v["value"] if isinstance(v, dict) and set(v) <= {"value", "desc"} and "value" in v else v)
            for k, v in config.items()
            if not str(k).startswith("_")
        }
        flat = flatten_config(config)
        config_cols.update(dict.fromkeys(flat))
        summary = {k: v for k, v in _as_dict(_get(rec, "summary")).items() if not str(k).startswith("_")}
        row: dict[str, Any] = {"run_id": _get(rec, "id"), **flat, **summary_fields(summary)}
        if "status" not in summary:
            row["status"] = _WANDB_STATES.get(str(_get(rec, "state", "")), "pending")
        group = _get(rec, "group")
        if group is not None:
            groups.add(group)
            row.setdefault("name", group)
        for tag in _get(rec, "tags") or config.get("wandb", {}).get("tags", []) or []:
            k, eq, _ = str(tag).partition("=")
            if eq:
                tag_keys[k] = None
        rows.append(row)
    df = _numeric(pd.DataFrame.from_records(rows) if rows else pd.DataFrame(columns=["run_id", *SUMMARY_METRICS]))
    cfg_cols = list(config_cols)
    swept = swept_columns(tag_keys, df.columns) if tag_keys else []
    if len(df) > 1:
        swept = [c for c in swept if df[c].astype(str).nunique(dropna=False) > 1] or infer_swept(df, cfg_cols)
    df = tidy(_order(df, swept, cfg_cols), swept)
    df.attrs.update(
        swept=swept, config_keys=config_keys(df, swept, cfg_cols), name=next(iter(groups)) if len(groups) == 1 else None
    )
    return df


def from_wandb(path: str, group: str) -> pd.DataFrame:
    """The run frame of the wandb group `group` (the sweep's name) in ENTITY/PROJECT `path` (needs network)."""
    import wandb

    return frame_from_wandb_records(wandb.Api().runs(path, filters={"group": group}))


# ----------------------------------------------------------------------------------------------- writing
def arrow_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Columns of mixed Python types (a hand-edited config value: 64 or 'x') as strings, so parquet can store
    them."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            types = {type(v) for v in out[c] if v is not None and not (isinstance(v, float) and v != v)}
            if len(types) > 1:
                out[c] = out[c].map(lambda v: None if v is None else str(v))
    return out


def output_problem(path: Path | str) -> str | None:
    """Why `-o path` cannot be written (a wrong suffix, a file where its folder should be, a folder that cannot be
    made), checked before any run is read; None when it can. Makes the missing folders."""
    path = Path(path)
    if path.is_dir():
        return f"-o {path} is a folder: give a file name, e.g. {path / 'runs.parquet'}"
    if path.suffix not in (".parquet", ".csv"):
        return f"-o {path}: use a .parquet or .csv file name"
    problem = folder_problem(path.parent)
    return f"-o {path}: {problem}" if problem else None


def write_frame(df: pd.DataFrame, path: Path) -> None:
    path = Path(path)
    if path.suffix == ".parquet":
        safe = arrow_safe(df)
        safe.attrs = {}
        atomic_write(path, lambda f: safe.to_parquet(f, index=False))
    elif path.suffix == ".csv":
        atomic_write(path, lambda f: f.write(df.to_csv(index=False).encode()))
    else:
        raise ValueError(f"-o {path}: use a .parquet or .csv file name")


def short_table(df: pd.DataFrame, limit: int = 30) -> str:
    """The first `limit` runs, best first: run_id, the swept keys (and any other config value that tells
    configurations apart), status and the final metrics."""
    swept = [*df.attrs.get("swept", []), *df.attrs.get("config_keys", [])]
    cols = [
        "run_id",
        *swept,
        *[c for c in ("status", "final_val_loss", "final_test_loss", "final_test_acc", "wall_s") if c in df],
    ]
    view = df[list(dict.fromkeys(cols))]
    if "final_val_loss" in view and view["final_val_loss"].notna().any():  # best first: on validation
        view = view.sort_values("final_val_loss", na_position="last")
    text = view.head(limit).to_string(index=False, float_format=lambda x: f"{x:.4g}")
    if len(view) > limit:
        text += f"\n... {len(view) - limit} more (write them all with -o runs.parquet)"
    return text


def main(argv: Sequence[str] | None = None) -> None:
    from sweep.errors import described, fail

    p = argparse.ArgumentParser(
        prog="sweep collect",
        description="A sweep's runs as one table: one row per run "
        "(swept keys, status, final/best metrics, every config key), or with --history "
        "every run's history stacked.",
    )
    p.add_argument("sweep", nargs="?", help="the sweep folder (out_dir/<name>)")
    p.add_argument("-o", "--output", type=Path, help="write to this .parquet or .csv file (else print a table)")
    p.add_argument("--history", action="store_true", help="the stacked histories instead of one row per run")
    p.add_argument("--all", action="store_true", help="every run folder, not only the runs sweep.json lists")
    p.add_argument("--from-wandb", metavar="ENTITY/PROJECT", help="read the runs from the wandb API instead")
    p.add_argument("--group", help="with --from-wandb: the wandb group (default: the sweep folder's name)")
    a = p.parse_args(list(argv) if argv is not None else None)
    t0 = time.perf_counter()
    if a.output and (problem := output_problem(a.output)):
        fail(problem)  # before reading the runs: a large sweep takes a while to read
    if a.from_wandb:
        group = a.group or (Path(a.sweep).name if a.sweep else None)
        if not group:
            fail("--from-wandb needs --group NAME (the sweep's name) or a SWEEP folder")
        if a.history:
            fail("--history reads the local results; it cannot be combined with --from-wandb")
        try:
            df = from_wandb(a.from_wandb, group)
        except Exception as e:
            fail(f"wandb API: {described(e)}")
    else:
        if not a.sweep:
            fail("give a sweep folder: sweep collect runs/<name>")
        check_sweep_dir(a.sweep, "sweep collect")
        df = load_runs(a.sweep, all_runs=a.all)
        if a.history:
            df = load_history(a.sweep, df)
    dt = time.perf_counter() - t0
    if a.output:
        try:
            write_frame(df, a.output)
        except OSError as e:  # the folder checked before reading went away, or the disk is full
            fail(f"cannot write {a.output}: {e.strerror}")
        print(f"sweep: {len(df)} rows x {len(df.columns)} columns -> {a.output} ({dt:.2f} s)")
        return
    if a.history:
        print(df.head(20).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        print(f"{len(df)} history rows of {df['run_id'].nunique() if len(df) else 0} runs (-o FILE to save)")
        return
    print(short_table(df))
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    print(f"{len(df)} runs {counts}; swept: {', '.join(df.attrs.get('swept', [])) or '-'} ({dt:.2f} s)")


if __name__ == "__main__":
    main()

"""The results store's vocabulary: its statuses and fields, atomic files, and the sweep-level layout. The pack
store (sweep/store.py) holds the runs; this module also reads the layout of sweeps written before it.

    out_dir/<name>/sweep.json               the sweep's record: name, swept keys, runs and their overrides, submissions
                   code/<hash>/             the code snapshot SLURM tasks import (sweep.launch.slurm)
                   submitit/                submitit's pickles and logs
                   packs/<pack_id>/         the runs, a few files per pack (sweep/store.py)
                   <run_id>/                a run of the earlier layout (`RunDir`: config.yaml/json, history.parquet,
                                            summary.json, checkpoint.pt, error.txt, wandb_id, wandb/): still read

A write goes to a temporary file in the same folder and is renamed over the target, so a process killed at any
instant leaves the previous complete file or the new complete file, never a torn one. Readers never trust a file
all the same: a hand-edited or foreign one is skipped with one `sweep: skipped <path>: <reason>` line on stderr.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sweep.errors import first_line as first_line  # where the readers quote an exception from

# ----------------------------------------------------------------------------------------------- layout
SWEEP_FILE = "sweep.json"
CONFIG_YAML = "config.yaml"
CONFIG_JSON = "config.json"
HISTORY_FILE = "history.parquet"
SUMMARY_FILE = "summary.json"
CONFIG_FILES = (CONFIG_JSON, CONFIG_YAML)  # where a run's config is read from, in this order
# Files whose presence makes a folder a run folder.
RUN_FILES = (SUMMARY_FILE, CONFIG_YAML)
# Folders inside a sweep folder that are not runs.
NOT_RUNS = {"code", "submitit", "report", ".hydra", "wandb", "packs"}
PACKS_DIR = "packs"  # the pack store's folder in a sweep (sweep/store.py)

# ----------------------------------------------------------------------------------------------- statuses
# running: training (or killed while training: resumable from its checkpoint)
# interrupted: stopped on request (Ctrl-C) after a checkpoint; the same command resumes it
# done: trained to the end; diverged: loss non-finite or above diverge_factor x its first loss, stopped there
# collapsed: blew up (loss above collapse_factor x its first) and never recovered: ended no better than it began
# failed: an error; error.txt has the traceback
# pruned: a search trial its pruner stopped at an epoch end (pruned_epoch): its metrics are those of that epoch
STATUSES = ("running", "interrupted", "done", "diverged", "collapsed", "pruned", "failed")
FINISHED = ("done", "diverged", "collapsed", "pruned")  # nothing left to train: a rerun skips them
ENDED = (*FINISHED, "failed")  # no process writes the run any more (failed is retried by a rerun, not resumed)
BLOWN_UP = ("diverged", "collapsed")  # results that are no result: counted and drawn, never averaged
# Not a status a run writes: what readers call a run whose summary.json cannot be read as a run summary.
CORRUPT = "corrupt"

# ----------------------------------------------------------------------------------------------- fields
# The summary fields that say how a run went, in the order readers show them (after the swept keys).
SUMMARY_METRICS = (
    "status",
    "final_val_loss",
    "final_val_acc",
    "final_test_loss",
    "final_test_acc",
    "final_train_loss",
    "best_val_loss",
    "best_val_acc",
    "best_val_epoch",
    "test_loss_at_best_val",
    "test_acc_at_best_val",
    "diverged_step",
    "diverged_loss",
    "pruned_epoch",
    "epochs_trained",
    "step",
    "total_steps",
    "steps_per_epoch",
    "wall_s",
    "samples_per_s",
)
# Summary fields that are numbers (None when not known yet), by type.
INT_FIELDS = ("diverged_step", "step", "total_steps", "steps_per_epoch", "pack_size", "loss_evals")
FLOAT_FIELDS = tuple(f for f in SUMMARY_METRICS if f != "status" and f not in INT_FIELDS)
# The final metrics a diverged run's summary leaves empty: they describe a model on its way to diverging.
DIVERGED_UNSET = ("final_train_loss", "final_test_loss", "final_test_acc", "final_val_loss", "final_val_acc")
# history.parquet's columns and their arrow types; a file may lack some (test_acc for regression) or add others.
HISTORY_COLUMNS = {
    "step": "int64",
    "epoch": "double",
    "lr_t": "double",  # the scheduled rate at the step
    "lr": "double",  # lr_t in runs recorded before it was renamed (readers merge the two)
    "train_loss": "double",
    "grad_norm": "double",
    "test_loss": "double",
    "test_acc": "double",
    "train_steps": "int64",
    "val_loss": "double",
    "val_acc": "double",
}

_UMASK = os.umask(0)
os.umask(_UMASK)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser, where PyYAML was built with libyaml


# Summary fields whose name is also a config key with another meaning.
RENAMED = {"device": "run_device", "name": "run_name", "epochs": "run_epochs"}

# ----------------------------------------------------------------------------------------------- a run as one row
_COMPOUND = (list, tuple, dict)
_SCALARS = frozenset((str, int, float, bool, type(None)))


def _cell(v: Any) -> Any:
    """Lists and dicts as compact JSON (hashable, sortable, parquet-safe); scalars unchanged."""
    if v.__class__ in _COMPOUND or isinstance(v, _COMPOUND):
        return json.dumps(v, separators=(",", ":"), default=str)
    return v


def flatten(d: dict, prefix: str = "", out: dict | None = None) -> dict:
    """{'optimizer': {'name': 'sgd'}} -> {'optimizer.name': 'sgd'}; lists (and empty dicts) stay whole values."""
    out = {} if out is None else out
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            flatten(v, key + ".", out)
        else:
            out[key] = v
    return out


def flatten_config(cfg: dict, prefix: str = "", out: dict | None = None) -> dict:
    """A config as frame cells: `flatten`, then `_cell` of each value, in one pass (per run, this costs load_runs
    about as much as parsing config.json)."""
    out = {} if out is None else out
    for k, v in cfg.items():
        if v.__class__ in _SCALARS:
            out[f"{prefix}{k}"] = v
        elif isinstance(v, dict) and v:
            flatten_config(v, f"{prefix}{k}.", out)
        elif isinstance(v, _COMPOUND):
            out[f"{prefix}{k}"] = json.dumps(v, separators=(",", ":"), default=str)
        else:
            out[f"{prefix}{k}"] = v
    return out


_VERSIONS: dict[str, dict] = {}


def summary_fields(s: dict) -> dict:
    """A summary as frame cells: fields renamed where a config key has the name, versions flattened."""
    out = {
        RENAMED.get(k, k): (v if v.__class__ not in _COMPOUND else _cell(v))
        for k, v in s.items()
        if k != "run_id" and k != "versions"
    }
    v = s.get("versions")
    if isinstance(v, dict):
        key = repr(v)  # the same few environments recur across a sweep's runs
        flat = _VERSIONS.get(key)
        if flat is None:
            flat = _VERSIONS[key] = {f"versions.{a}": _cell(b) for a, b in flatten(v).items()}
        out.update(flat)
    return out


# ----------------------------------------------------------------------------------------------- choosing
# What the report, the plots and the notebooks choose configurations on: validation, never test.
SELECTION_METRIC = "final_val_loss"


def lower_is_better(metric: str = SELECTION_METRIC) -> bool:
    """Whether a smaller value of `metric` is better (a loss) or a larger one (an accuracy)."""
    return not metric.endswith("acc")


def metric_name(metric: str) -> str:
    """`final_test_loss` -> final test loss."""
    return metric.replace("_", " ")


# ----------------------------------------------------------------------------------------------- writing
def folder_problem(folder: Path | str) -> str | None:
    """Why files cannot be written into `folder` (a file where it or a parent should be, a folder that cannot
    be made or written), or None when they can; makes the missing folders. For a reader's output, checked
    before the work so that nothing is drawn or read in vain."""
    folder = Path(folder)
    in_the_way = next((d for d in (folder, *folder.parents) if d.exists() and not d.is_dir()), None)
    if in_the_way is not None:
        return f"cannot write into {folder}: {in_the_way} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot write into {folder}: {e.filename or folder}: {e.strerror}"
    if not os.access(folder, os.W_OK):
        return f"cannot write into {folder}: it is not writable"
    return None


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None], durable: bool = True) -> None:
    """Call write(f) on a temp file beside `path`, fsync it, and rename it to `path`. durable=False skips the
    fsync, for a file that means nothing after the machine crashes (who holds a claim): still never torn for a
    reader or a killed process, but possibly empty or missing after a power loss."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes | memoryview, durable: bool = True) -> None:
    atomic_write(path, lambda f: f.write(data), durable=durable)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def json_bytes(obj: Any) -> bytes:
    """A summary or record as the store writes it: indented, keys sorted."""
    return (json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n").encode()


def write_json(path: Path, obj: Any, durable: bool = True) -> None:
    write_bytes(path, json_bytes(obj), durable=durable)


def config_files(run_dir: RunDir, cfg: Mapping[str, Any]) -> list[tuple[Path, bytes]]:
    """The run's resolved config twice, in the order to write them: config.json for programs (order kept, so
    the readers' columns follow the config), then config.yaml for people."""
    return [
        (run_dir.config_json, (json.dumps(cfg, separators=(",", ":"), default=str) + "\n").encode()),
        (run_dir.config, config_yaml(cfg).encode()),
    ]


def config_yaml(cfg: Mapping[str, Any]) -> str:
    """`yaml.dump(cfg, sort_keys=False)`, made one top-level entry at a time (a block mapping's text is its
    entries' texts in order), each entry's text remembered: the K configs of a pack share all but a few entries,
    and PyYAML's representer is Python even with the C emitter (1.1 ms a config; 4.6 s of a pack of 4,096)."""
    if not cfg:
        return _dump(cfg)
    return "".join(_yaml_entry(k, v) for k, v in cfg.items())


def _yaml_entry(key: str, value: Any) -> str:
    memo = f"{key!r}: {value!r}"  # repr tells 1 from "1" and 1.0, and int keys from str keys, as YAML does
    text = _YAML_ENTRIES.get(memo)
    if text is None:
        text = _dump({key: value})
        if len(_YAML_ENTRIES) >= 4096:  # bounded: a long-lived process dumps many packs
            _YAML_ENTRIES.clear()
        _YAML_ENTRIES[memo] = text
    return text


_YAML_ENTRIES: dict[str, str] = {}


def _dump(obj: Any) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the C emitter (benchmarks/README.md, "config.yaml writes")
    return yaml.dump(obj, Dumper=dumper, sort_keys=False)


def write_config(run_dir: RunDir, cfg: Mapping[str, Any]) -> None:
    for path, data in config_files(run_dir, cfg):
        write_bytes(path, data)


def write_configs(pack: Sequence[tuple[RunDir, Mapping[str, Any]]]) -> None:
    """Every run's config files, as `write_config` writes them, for a pack at once (`write_all`): all the
    config.json files, then all the config.yaml files (a folder is a run folder once its config.yaml exists)."""
    files = [config_files(d, cfg) for d, cfg in pack]
    for i in range(2):
        write_all([f[i] for f in files])


def write_all(files: Sequence[tuple[Path, bytes | memoryview]]) -> None:
    """Write each (path, data) as `atomic_write` does, several at once: a pack writes one file per run at a
    checkpoint, and the fsyncs (most of a small file's cost, and far more on a cluster's network filesystem)
    release the GIL, so they overlap in threads. Returns when every file is in place; if any write failed, raises
    the first error once all have ended (each file is then its previous or its new version, never torn)."""
    if len(files) <= 1:
        for path, data in files:
            write_bytes(path, data)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(files)), thread_name_prefix="results") as pool:
        futures = [pool.submit(write_bytes, path, data) for path, data in files]
    for fut in futures:
        fut.result()


def history_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """history.parquet's content for a run's rows: columns in the order the rows first name them, the engine's
    columns typed as HISTORY_COLUMNS says, a key a row lacks and NaN both stored as null (as pandas' writer
    stores them). Built with pyarrow directly: through a DataFrame it cost 8x more (1.3 ms against 0.17 ms per
    run measured here), which a pack pays for every run at every checkpoint."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = list(dict.fromkeys(k for row in rows for k in row))
    types = {k: pa.type_for_alias(v) for k, v in HISTORY_COLUMNS.items()}
    table = pa.table({k: pa.array([row.get(k) for row in rows], type=types.get(k), from_pandas=True) for k in names})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def torch_bytes(obj: Any) -> memoryview:
    """torch.save's bytes for obj (serialised in memory: a full disk then raises ENOSPC when the file is
    written, not torch's "unexpected pos")."""
    import torch  # here, not at the top: readers of results (status, collect) should not pay for torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getbuffer()


def save_torch(path: Path, obj: Any) -> None:
    write_bytes(path, torch_bytes(obj))


def load_torch(path: Path) -> Any:
    """A checkpoint written by save_torch. weights_only: a planted pickle in a shared project folder must not
    run code when a sweep is resumed; checkpoints hold only tensors, numbers, strings, lists and dicts."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torn, empty, foreign or planted: say which file, and what to do
        raise RuntimeError(
            f"cannot load the checkpoint {path}: {type(e).__name__}: {first_line(e)}; delete it to train its "
            "runs from the start"
        ) from e


def clean_temporaries(folder: Path) -> int:
    """Remove the temporary files atomic_write leaves when a process is killed mid-write; only call this on a
    folder no other process is writing (a run folder whose claim this process holds). Returns how many."""
    n = 0
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        n += 1
    return n


def pid_alive(pid: Any) -> bool:
    """Is process `pid` of this host still there? What cannot be told (not an int, another user's process) is
    taken as alive: a run or trial is called lost only when its process is known to be gone."""
    if not isinstance(pid, int) or isinstance(pid, bool):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None when the file does not exist."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


def read_record(path: Path) -> dict | None:
    """The JSON object in `path`; None when it is missing, or unreadable (said in one line on stderr): one torn
    file must not stop every other sweep or run from being read."""
    try:
        obj = read_json(path)
    except (ValueError, OSError) as e:
        print(
            f"sweep: skipped {path}: unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120]})", file=sys.stderr
        )
        return None
    if obj is not None and not isinstance(obj, dict):
        print(f"sweep: skipped {path}: not a JSON object", file=sys.stderr)
        return None
    return obj


# ----------------------------------------------------------------------------------------------- reading
_REPORTED: set[str] = set()


def report_skipped(path: Path | str, reason: str) -> None:
    """One line on stderr, `sweep: skipped <path>: <reason>`, once per file and process (a report reads a
    sweep several times; `status --watch` re-reads it every refresh)."""
    line = f"sweep: skipped {path}: {reason}"
    if line not in _REPORTED:
        _REPORTED.add(line)
        print(line, file=sys.stderr)


def read_text(path: Path | str) -> str | None:
    """The UTF-8 text of `path`; None when it (or a folder on its way) does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def summary_problem(summary: Any) -> str | None:
    """Why a parsed summary.json cannot be used (None when it is an object with a known status)."""
    if not isinstance(summary, dict):
        return f"holds a JSON {type(summary).__name__}, not an object"
    status = summary.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        return f"status {status!r} is not one of {', '.join(STATUSES)}"
    return None


def parse_summary(text: str) -> tuple[dict | None, str | None]:
    """(summary, None) for a usable summary.json text, else (None, why it is corrupt)."""
    try:
        summary = json.loads(text)
    except ValueError as e:
        return None, f"not valid JSON ({first_line(e)})"
    problem = summary_problem(summary)
    return (None, problem) if problem else (summary, None)


def read_summary(path: Path | str) -> tuple[dict | None, str | None]:
    """summary.json's object: (summary, None); (None, None) when there is none yet; (None, why) when it is
    corrupt (unreadable, not JSON, not an object, an unknown status)."""
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as e:
        return None, f"unreadable ({type(e).__name__})"
    return (None, None) if text is None else parse_summary(text)


def summary_record(
    base: Mapping[str, Any] | None, *, run_id: str, name: str | None, status: str, **fields: Any
) -> dict:
    """A summary.json object: `base`'s fields, with run_id, name, status and `fields` set over them. Raises
    ValueError for a status not in STATUSES: every reader would call that file corrupt."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    return {**(base or {}), "run_id": run_id, "name": name, "status": status, **fields}


def config_from_text(text: str, *, json_text: bool) -> dict:
    """A config file's mapping: config.json's JSON, or config.yaml's YAML (runs recorded before config.json
    existed). Raises ValueError (or yaml.YAMLError) for a text that does not parse or is not a mapping."""
    cfg = json.loads(text) if json_text else yaml.load(text, Loader=_YAML_LOADER)
    if cfg is None and not json_text:
        return {}  # an empty config.yaml
    if not isinstance(cfg, dict):
        raise ValueError(f"not a {'JSON object' if json_text else 'YAML mapping'}")
    return cfg


def read_config(run_root: Path | str) -> dict | None:
    """The run's resolved config, from config.json, or from config.yaml where there is no usable config.json
    (runs recorded before config.json existed); None when it has neither. A file that does not parse is skipped
    with one `sweep: skipped` line on stderr."""
    root = str(run_root)  # str paths: this runs once per run of a sweep, and pathlib costs as much as the parse
    json_path, yaml_path = f"{root}/{CONFIG_JSON}", f"{root}/{CONFIG_YAML}"
    unusable = (OSError, ValueError, yaml.YAMLError)  # ValueError: JSONDecodeError, UnicodeDecodeError, ours
    json_problem = None
    try:
        text = read_text(json_path)
        if text is not None:
            return config_from_text(text, json_text=True)
    except unusable as e:
        json_problem = first_line(e)
    cfg, yaml_problem = None, None
    try:
        text = read_text(yaml_path)
        cfg = None if text is None else config_from_text(text, json_text=False)
    except unusable as e:
        yaml_problem = first_line(e)
    if json_problem:
        report_skipped(
            json_path,
            f"{json_problem}; " + ("its config is left out" if cfg is None else f"read {CONFIG_YAML} instead"),
        )
    if yaml_problem:
        report_skipped(yaml_path, f"{yaml_problem}; its config is left out")
    return cfg


def sweep_record_problem(record: Any) -> str | None:
    """Why a parsed sweep.json cannot be used (None when its fields have the types the readers assume)."""
    if not isinstance(record, dict):
        return f"holds a JSON {type(record).__name__}, not an object"
    for key, types in (("runs", list), ("swept", list), ("name", str), ("slurm", (list, dict))):
        if record.get(key) is not None and not isinstance(record[key], types):
            return f"'{key}' is a {type(record[key]).__name__}"
    if record.get("swept") and not all(isinstance(k, str) for k in record["swept"]):
        return "'swept' holds something other than key names"
    return None


def read_sweep_record(sweep_dir: Path | str) -> dict:
    """sweep.json as a dict ({} when absent; {} and one `sweep: skipped` line on stderr when it is corrupt:
    truncated JSON, or fields of the wrong type). The run folders then say what the sweep holds."""
    path = Path(sweep_dir) / SWEEP_FILE
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, ValueError) as e:  # ValueError: JSONDecodeError, UnicodeDecodeError
        report_skipped(path, f"not valid JSON ({first_line(e)})")
        return {}
    problem = sweep_record_problem(record)
    if problem:
        report_skipped(path, problem)
        return {}
    return record


def slurm_tasks(record: dict) -> dict[str, list[str]]:
    """run_id -> the SLURM task ids of every submission of it in sweep.json, oldest first (a sweep submitted
    again while running lists a run twice). Read defensively: an entry or pack lacking a field is skipped."""
    out: dict[str, list[str]] = {}
    subs = record.get("slurm") or []
    if isinstance(subs, dict):
        subs = [subs]
    for sub in subs if isinstance(subs, list) else []:
        if not isinstance(sub, dict):
            continue
        packs = sub.get("packs") or []
        for p in packs if isinstance(packs, list) else []:
            if not isinstance(p, dict):
                continue
            task = p.get("job_id")
            if not task and p.get("array_job_id") is not None and p.get("index") is not None:
                task = f"{p['array_job_id']}_{p['index']}"
            rids = p.get("run_ids") or []
            for rid in rids if task and isinstance(rids, list) else []:
                tasks = out.setdefault(str(rid), [])
                if str(task) not in tasks:
                    tasks.append(str(task))
    return out


def run_ids(sweep_dir: Path | str, record: dict | None = None, all_runs: bool = False) -> list[str]:
    """The sweep's run ids: those sweep.json lists (in its order), or with all_runs / without sweep.json every
    run folder present."""
    sweep_dir = Path(sweep_dir)
    record = read_sweep_record(sweep_dir) if record is None else record
    listed = [r["run_id"] for r in record.get("runs") or [] if isinstance(r, dict) and r.get("run_id")]
    if listed and not all_runs:
        return list(dict.fromkeys(listed))
    present = sorted(
        e.name for e in os.scandir(sweep_dir) if e.is_dir() and e.name not in NOT_RUNS and not e.name.startswith(".")
    )
    return list(dict.fromkeys([*listed, *present]))


# ----------------------------------------------------------------------------------------------- what a folder is
def _has_run_files(d: Path) -> bool:
    return any((d / f).is_file() for f in RUN_FILES)


def _child_dirs(d: Path, limit: int | None = None) -> list[Path]:
    """Sub-folders of d that could be runs or sweeps (not dot-folders nor NOT_RUNS), at most `limit`."""
    out = []
    try:
        with os.scandir(d) as it:
            for e in it:
                if e.name.startswith(".") or e.name in NOT_RUNS:
                    continue
                try:
                    if e.is_dir():
                        out.append(Path(e.path))
                except OSError:
                    continue
                if limit is not None and len(out) >= limit:
                    break
    except OSError:
        pass
    return sorted(out)


def is_sweep_dir(d: Path | str) -> bool:
    """A sweep folder has a sweep.json, a pack store, or a run folder of the earlier layout (a sub-folder with
    summary.json/config.yaml)."""
    d = Path(d)
    return (d / SWEEP_FILE).is_file() or (d / PACKS_DIR).is_dir() or any(_has_run_files(c) for c in _child_dirs(d))


def sweep_dir_problem(path: Path | str, command: str = "sweep status") -> str | None:
    """None when `path` is a sweep folder; else the one-line error `command` gives: what the folder is and the
    command to type instead (paths shell-quoted: a sweep's name may hold `$(...)`)."""
    import shlex

    d = Path(path)
    if not d.is_dir():
        return f"no sweep folder {path}"
    if is_sweep_dir(d):
        return None
    if _has_run_files(d):
        parent = d.resolve().parent if str(d) in (".", "") else d.parent
        return f"{path} is a run folder, not a sweep: use {command} {shlex.quote(str(parent))}"
    sweeps = [
        c
        for c in _child_dirs(d, limit=200)
        if (c / SWEEP_FILE).is_file()
        or (c / PACKS_DIR).is_dir()
        or any(_has_run_files(g) for g in _child_dirs(c, limit=50))
    ]
    if sweeps:
        names = ", ".join(c.name for c in sweeps[:5]) + (", ..." if len(sweeps) > 5 else "")
        return (
            f"{path} is an output folder holding {len(sweeps)} sweep{'s' * (len(sweeps) != 1)} ({names}), "
            f"not a sweep: use {command} {shlex.quote(str(sweeps[0]))}"
        )
    return (
        f"{path} is not a sweep (no {SWEEP_FILE}, no run folders with {' or '.join(RUN_FILES)}): "
        f"give a sweep folder, e.g. {command} runs/<name>"
    )


def check_sweep_dir(path: Path | str, command: str) -> Path:
    """`path` as a Path when it is a sweep folder; else exit 2 with `sweep_dir_problem`'s one line (so that no
    command ever writes into, or lists, a folder that is not a sweep)."""
    from sweep.errors import fail

    problem = sweep_dir_problem(path, command)
    if problem:
        fail(problem)
    return Path(path)


# ----------------------------------------------------------------------------------------------- paths
class SweepDir:
    """The paths of one sweep's folder (out_dir/<name>)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.record = self.root / SWEEP_FILE
        self.code = self.root / "code"  # one snapshot of the package per content hash
        self.submitit = self.root / "submitit"

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.root / run_id)


class RunDir:
    """The paths of one run's folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.config = self.root / CONFIG_YAML
        self.config_json = self.root / CONFIG_JSON
        self.history = self.root / HISTORY_FILE
        self.summary = self.root / SUMMARY_FILE
        self.checkpoint = self.root / "checkpoint.pt"
        self.error = self.root / "error.txt"
        self.claim_lock = self.root / ".claim.lock"  # held while a process trains the run
        self.claim_owner = self.root / ".claim.json"  # who holds it: host, pid, SLURM job
        self.wandb_id = self.root / "wandb_id"  # this run's wandb id: random once, kept across resumes
        self.wandb = self.root / "wandb"  # wandb's own folder (wandb.init(dir=root)): one offline-run-* per process

    def status(self) -> str | None:
        """The summary's status; None before the run wrote one; CORRUPT when summary.json cannot be read as a
        run summary (a torn copy, a stray edit): the run is then trained again from its checkpoint."""
        summary, problem = read_summary(self.summary)
        if problem:
            return CORRUPT
        return None if summary is None else summary["status"]

    def is_finished(self) -> bool:
        return self.status() in FINISHED

    def read_claim_owner(self) -> dict | None:
        """The run's claim (host, pid, slurm_job_id of the process training it), or None when absent or
        unreadable: a claim is advisory, a bad one only means the process cannot be checked."""
        try:
            owner = read_json(self.claim_owner)
        except (OSError, ValueError):
            return None
        return owner if isinstance(owner, dict) else None

"""The results store: atomic writes leave the old or the new file, never a torn one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweep.results import RunDir, atomic_write, history_bytes, read_json, write_all, write_json


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "summary.json"
    write_json(target, {"status": "running", "step": 1})

    def boom(f):
        f.write(b'{"status": "do')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert read_json(target) == {"status": "running", "step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_process_killed_while_writing_in_a_loop_never_leaves_a_torn_file(tmp_path):
    target = tmp_path / "summary.json"
    script = textwrap.dedent(f"""
        from sweep.results import write_json
        i = 0
        while True:
            write_json({str(target)!r}, {{"step": i, "pad": "x" * 200000}})
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(200):
            if target.exists():
                break
            __import__("time").sleep(0.02)
        __import__("time").sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    data = json.loads(target.read_text())  # parses: complete
    assert data["step"] >= 0 and len(data["pad"]) == 200000


def test_run_dir_status(tmp_path):
    d = RunDir(tmp_path / "abc")
    assert d.status() is None and not d.is_finished()
    write_json(d.summary, {"status": "diverged"})
    assert d.is_finished()
    write_json(d.summary, {"status": "failed"})
    assert not d.is_finished()


def test_storage_problems_are_one_line_that_names_the_path_and_the_fix():
    import errno

    from sweep.errors import storage_problem

    full = storage_problem(OSError(errno.ENOSPC, "No space left on device", "/runs/x/checkpoint.pt"))
    assert full.startswith("no space left on the device holding /runs/x/checkpoint.pt") and "rerun" in full
    ro = storage_problem(OSError(errno.EROFS, "Read-only file system", "/ro/runs"))
    assert ro == "cannot write /ro/runs: Read-only file system; choose a writable out_dir=..."
    assert storage_problem(OSError(errno.ECONNRESET, "reset")) is None and storage_problem(ValueError("x")) is None


# ------------------------------------------------------------------------------------------------ the vocabulary
@pytest.mark.parametrize(
    "text, why",
    [
        ("[]", "holds a JSON list, not an object"),
        ('{"status": 5}', "status 5 is not one of"),
        ('{"status": "done", "final_te', "not valid JSON"),
        (b"\xff\xfe", "unreadable (UnicodeDecodeError)"),
    ],
)
def test_one_summary_reader_says_why_a_summary_is_corrupt(tmp_path, text, why):
    from sweep.results import CORRUPT, read_summary

    d = RunDir(tmp_path / "r")
    assert read_summary(d.summary) == (None, None)  # no summary yet: not corrupt
    d.root.mkdir()
    d.summary.write_bytes(text if isinstance(text, bytes) else text.encode())
    summary, problem = read_summary(d.summary)
    assert summary is None and problem.startswith(why)
    assert d.status() == CORRUPT


def test_statuses_that_ended_are_the_finished_ones_and_failed():
    from sweep.results import BLOWN_UP, ENDED, FINISHED, STATUSES

    assert set(FINISHED) | {"failed"} == set(ENDED) and set(BLOWN_UP) < set(FINISHED) and set(ENDED) < set(STATUSES)


def test_summary_record_sets_the_identity_and_refuses_an_unknown_status():
    from sweep.results import summary_record

    s = summary_record({"step": 3, "status": "running"}, run_id="r1", name="sw", status="failed", error="E: x")
    assert s == {"step": 3, "run_id": "r1", "name": "sw", "status": "failed", "error": "E: x"}
    with pytest.raises(ValueError, match="requeued"):
        summary_record(None, run_id="r1", name="sw", status="requeued")


def test_write_config_writes_the_same_config_as_json_and_yaml_in_order(tmp_path):
    import yaml

    from sweep.results import read_config, write_config

    cfg = {"seed": 1, "lr": 1e-3, "name": "0.5", "model": {"hidden": [64, 64]}, "data": {"root": "/d/ü"}, "x": None}
    d = RunDir(tmp_path / "r")
    write_config(d, cfg)
    assert list(json.loads(d.config_json.read_text())) == list(cfg)  # the readers' columns follow config order
    assert json.loads(d.config_json.read_text()) == yaml.safe_load(d.config.read_text()) == cfg
    assert read_config(d.root) == cfg
    d.config_json.unlink()  # a run recorded before config.json existed
    assert read_config(d.root) == cfg
    d.config.unlink()
    assert read_config(d.root) is None


def test_sweep_and_run_folders_name_their_files(tmp_path):
    from sweep.results import SWEEP_FILE, SweepDir

    s = SweepDir(tmp_path / "sw")
    assert s.record == tmp_path / "sw" / SWEEP_FILE == tmp_path / "sw" / "sweep.json"
    assert (s.code, s.submitit) == (tmp_path / "sw" / "code", tmp_path / "sw" / "submitit")
    r = s.run("abc")
    assert r.summary == tmp_path / "sw" / "abc" / "summary.json" and r.claim_owner.name == ".claim.json"
    assert r.read_claim_owner() is None
    r.root.mkdir(parents=True)
    r.claim_owner.write_text("[1]")  # not a claim: ignored
    assert r.read_claim_owner() is None
    write_json(r.claim_owner, {"host": "n1", "pid": 7})
    assert r.read_claim_owner() == {"host": "n1", "pid": 7}


def test_write_all_writes_every_file_and_raises_only_after_the_others_landed(tmp_path):
    """A pack's files are written together; one unwritable path raises, and every other file is complete."""
    (tmp_path / "blocker").write_text("a file where a run folder should be")
    good = [tmp_path / f"r{i}" / "summary.json" for i in range(6)]
    write_json(good[0], {"step": 0})
    files = [(p, json.dumps({"step": i}).encode()) for i, p in enumerate(good)]
    with pytest.raises(OSError):
        write_all([*files[:3], (tmp_path / "blocker" / "summary.json", b"{}"), *files[3:]])
    assert [read_json(p) for p in good] == [{"step": i} for i in range(6)]
    assert not [p for p in tmp_path.rglob(".*.tmp")]


def test_history_bytes_types_the_engine_columns_and_stores_missing_values_as_null():
    """Rows name different columns (training rows, evaluation rows): each column is typed as HISTORY_COLUMNS
    says (train_steps stays an integer), a key a row lacks and NaN are null, and the columns keep the order the
    rows first name them; pandas reads it as the rows' DataFrame."""
    rows = [
        {"step": 10, "epoch": 0.5, "lr_t": 0.1, "train_loss": 2.0, "train_steps": 10, "grad_norm": float("nan")},
        {"step": 20, "epoch": 1.0, "lr_t": 0.05, "val_loss": 1.5, "val_acc": 0.25, "my_metric": 3},
    ]
    t = pq.read_table(pa.BufferReader(history_bytes(rows)))
    assert t.schema.names == [
        "step",
        "epoch",
        "lr_t",
        "train_loss",
        "train_steps",
        "grad_norm",
        "val_loss",
        "val_acc",
        "my_metric",
    ]
    assert t.schema.field("train_steps").type == pa.int64() and t.schema.field("step").type == pa.int64()
    assert t.schema.field("grad_norm").type == pa.float64()  # never a number yet: still a float column
    assert t.schema.field("my_metric").type == pa.int64()  # a column sweep does not know: inferred
    assert t.column("grad_norm").to_pylist() == [None, None] and t.column("train_steps").to_pylist() == [10, None]
    pd.testing.assert_frame_equal(t.to_pandas(), pd.DataFrame(rows), check_dtype=False)
    assert pq.read_table(pa.BufferReader(history_bytes([]))).num_rows == 0  # a run stopped before its first row


def test_only_a_durable_write_is_fsynced(tmp_path, monkeypatch):
    """Results are fsynced; a claim's owner (durable=False) is not: it means nothing after a crash."""
    import os

    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), fsync(fd))[1])
    write_json(tmp_path / "summary.json", {"step": 1})
    assert len(synced) == 1
    write_json(tmp_path / ".claim.json", {"pid": 1}, durable=False)
    assert len(synced) == 1 and read_json(tmp_path / ".claim.json") == {"pid": 1}


def test_a_packs_configs_are_the_files_write_config_writes(tmp_path):
    from sweep.results import write_config, write_configs

    cfgs = [{"seed": s, "lr": 10.0**-s, "model": {"hidden": [8] * s}} for s in range(1, 4)]
    write_configs([(RunDir(tmp_path / "pack" / str(i)), c) for i, c in enumerate(cfgs)])
    for i, c in enumerate(cfgs):
        write_config(RunDir(tmp_path / "one" / str(i)), c)
        for name in ("config.json", "config.yaml"):
            assert (tmp_path / "pack" / str(i) / name).read_bytes() == (tmp_path / "one" / str(i) / name).read_bytes()


@pytest.mark.parametrize(
    "overrides",
    [["optimizer=adam", "schedule=cosine"], ["optimizer=momentum", "schedule=step"], ["optimizer=anneal"]],
)
def test_config_yaml_is_yamls_own_text_of_the_config(tmp_path, overrides):
    """config.yaml is made an entry at a time from remembered texts: it must be exactly what yaml.dump writes."""
    import yaml
    from conftest import make_cfg

    from sweep.results import config_yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for seed in range(3):
        cfg = make_cfg(tmp_path, *overrides, f"seed={seed}")
        assert config_yaml(cfg) == yaml.dump(cfg, Dumper=dumper, sort_keys=False)


def test_config_yaml_never_takes_one_value_for_another_that_prints_alike():
    """Values JSON would not tell apart (1, 1.0, True; an int key and a str key; a tuple and a list) each get
    their own text, whatever was dumped before."""
    import yaml

    from sweep.results import config_yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    cases = [{"a": 1}, {"a": 1.0}, {"a": True}, {"a": "1"}, {"a": {1: "x"}}, {"a": {"1": "x"}}, {"a": [1, 2]}, {}]
    for _ in range(2):
        for cfg in cases:
            assert config_yaml(cfg) == yaml.dump(cfg, Dumper=dumper, sort_keys=False), cfg

"""sweep status: statuses from the files, SLURM asked once (sacct, batched) to tell queued/running/requeued/lost,
and everything still working without SLURM. A fake `sacct`/`squeue` on PATH stands in for the cluster; one test
uses the real one when this machine has it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import sweep_cli

from sweep.launch.queue import (
    GONE,
    JobState,
    cross_check,
    expand_job_id,
    job_phase,
    parse_sacct,
    parse_sacct_states,
    parse_squeue,
    parse_squeue_states,
    slurm_states,
)
from sweep.status import gather

pytest_plugins = ["analysis_fixtures"]  # the shared session sweeps: small_sweep, init_sweep


def test_expand_and_parse_sacct():
    assert expand_job_id("12_[0-2,5%4]") == ["12_0", "12_1", "12_2", "12_5"]
    assert expand_job_id("12_[0-6:3]") == ["12_0", "12_3", "12_6"]
    assert expand_job_id("12_3") == ["12_3"] and expand_job_id("99") == ["99"]
    text = "\n".join(
        [
            "174_0|175|COMPLETED",
            "174_1|176|RUNNING",
            "174_1.batch|176.batch|RUNNING",
            "174_2|177|CANCELLED by 0",
            "174_[1-4%1]|174|PENDING",
            "180|180|NODE_FAIL",
            "",
        ]
    )
    s = parse_sacct(text)
    # a task's own line wins over the stale pending-range record slurmdbd keeps
    assert s["174_0"] == "COMPLETED" and s["174_1"] == "RUNNING" and s["174_2"] == "CANCELLED"
    assert s["174_3"] == "PENDING" and s["174_4"] == "PENDING"
    assert s["175"] == "COMPLETED" and s["180"] == "NODE_FAIL"
    assert "174_1.batch" not in s
    assert parse_squeue("7_[2-3]|PENDING\n7_1|RUNNING\n") == {"7_2": "PENDING", "7_3": "PENDING", "7_1": "RUNNING"}


def test_held_jobs_are_held_not_requeued():
    """Real squeue -o '%i|%T|%r' and sacct -P --format=JobID,JobIDRaw,State,Reason lines of held jobs."""
    sq = parse_squeue_states(
        "812_3|PENDING|launch_failed_requeued_held\n813|PENDING|JobHeldUser\n"
        "814|PENDING|JobHeldAdmin\n815_[0-4%2]|PENDING|JobArrayTaskLimit\n"
        "816|REQUEUE_HOLD|launch_failed_requeued_held\n817|PENDING|(Priority)\n"
        "818_1|RUNNING|None\n"
    )
    assert {j: job_phase(sq[j]) for j in ("812_3", "813", "814", "815_2", "816", "817", "818_1")} == {
        "812_3": "held",
        "813": "held",
        "814": "held",
        "815_2": "waiting",
        "816": "held",
        "817": "waiting",
        "818_1": "running",
    }
    assert sq["817"].reason == "Priority"
    sa = parse_sacct_states(
        "812_3|820|PENDING|launch_failed_requeued_held\n900|900|PENDING|None\n"
        "901|901|SPECIAL_EXIT|None\n902|902|COMPLETED|None\n"
    )
    assert job_phase(sa["812_3"]) == job_phase(sa["820"]) == "held"
    assert job_phase(sa["900"]) == "waiting" and job_phase(sa["901"]) == "held"
    assert job_phase(sa["902"]) == "ended" and job_phase(None) is None


def test_stale_range_records_are_checked_against_squeue():
    """slurmdbd keeps `500_[4-5%2]|500|PENDING` after task 500_4 started and failed: squeue, which no longer
    lists 500_4, has the last word; a task sacct never heard of stays unknown."""
    sa = parse_sacct_states("500_0|501|COMPLETED|None\n500_[4-5%2]|500|PENDING|JobArrayTaskLimit\n")
    assert sa["500_4"] == JobState("PENDING", "JobArrayTaskLimit", exact=False) and sa["500_0"].exact
    sq = parse_squeue_states("500_5|PENDING|JobArrayTaskLimit\n")
    merged = cross_check(sa, sq, ["500_0", "500_4", "500_5", "777_1"])
    assert merged["500_0"].state == "COMPLETED"
    assert merged["500_4"].state == GONE and job_phase(merged["500_4"]) == "ended"
    assert merged["500_5"] == JobState("PENDING", "JobArrayTaskLimit") and "777_1" not in merged


def _fake_bin(tmp_path: Path, name: str, stdout: str, rc: int = 0) -> Path:
    """An executable `name` that logs its argv (one line per call) and prints `stdout`."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / f"{name}.out").write_text(stdout)
    script = bindir / name
    script.write_text(
        f"#!{sys.executable}\nimport sys, pathlib\n"
        f"here = pathlib.Path({str(bindir)!r})\n"
        f"with open(here / '{name}.calls', 'a') as f: f.write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"sys.stdout.write((here / '{name}.out').read_text())\nsys.exit({rc})\n"
    )
    script.chmod(0o755)
    return bindir


def _summary(d: Path, status: str, step: int = 50, **extra) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text("lr: 0.1\n")
    s = {"run_id": d.name, "status": status, "step": step, "total_steps": 100, "final_train_loss": 0.5}
    s.update(extra)
    (d / "summary.json").write_text(json.dumps(s))


@pytest.fixture
def slurm_sweep(tmp_path):
    """A sweep of 9 runs in 6 array tasks of job 500 (and one of job 600), in every state a run can be in."""
    d = tmp_path / "runs" / "sw"
    ids = [f"run{i}" for i in range(9)]
    record = {
        "name": "sw",
        "swept": ["lr"],
        "runs": [{"run_id": r, "overrides": [f"lr=0.{i + 1}"]} for i, r in enumerate(ids)],
        "slurm": [
            {
                "job_ids": ["500"],
                "packs": [
                    {"job_id": "500_0", "array_job_id": "500", "index": 0, "run_ids": ["run0", "run1"]},
                    {"job_id": "500_1", "array_job_id": "500", "index": 1, "run_ids": ["run2"]},
                    {"job_id": "500_2", "array_job_id": "500", "index": 2, "run_ids": ["run3"]},
                    {"job_id": "500_3", "array_job_id": "500", "index": 3, "run_ids": ["run4"]},
                    {"job_id": "500_4", "array_job_id": "500", "index": 4, "run_ids": ["run5"]},
                    {"array_job_id": "500", "index": 5, "run_ids": ["run6"]},  # no job_id: rebuilt
                    {"bogus": True},
                ],
            },
            {"job_ids": ["600"], "packs": [{"job_id": "600", "run_ids": ["run7"]}]},
            "not a dict",
        ],
    }
    d.mkdir(parents=True)
    (d / "sweep.json").write_text(json.dumps(record))
    _summary(d / "run0", "done", 100)
    _summary(d / "run1", "failed", 3, error="RuntimeError: boom")
    (d / "run1" / "error.txt").write_text("Traceback (most recent call last):\n  File x\nRuntimeError: boom\n")
    _summary(d / "run2", "running", 40)  # task running
    _summary(d / "run3", "running", 60)  # task pending again: requeued
    _summary(d / "run4", "running", 70)  # task died with the node: lost
    # run5: no folder, task pending: queued; run6: no folder, task running: running
    _summary(d / "run7", "diverged", 12, diverged_step=12, diverged_loss=1e9)
    # run8: no folder and no SLURM job: pending
    return d


SACCT = "\n".join(
    [
        "500_0|501|COMPLETED",
        "500_1|502|RUNNING",
        "500_2|503|PENDING",
        "500_3|504|NODE_FAIL",
        "500_[4-5%2]|500|PENDING",
        "500_5|506|RUNNING",
        "600|600|COMPLETED",
        "",
    ]
)


# squeue's live view: task 500_4 is still pending (sacct knows it only from the array's range record)
SQUEUE = "500_1|RUNNING|None\n500_2|PENDING|BeginTime\n500_4|PENDING|Resources\n500_5|RUNNING|None\n"


def test_statuses_with_one_batched_sacct_call(slurm_sweep, tmp_path, monkeypatch):
    bindir = _fake_bin(tmp_path, "sacct", SACCT)
    _fake_bin(tmp_path, "squeue", SQUEUE)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    info = gather(slurm_sweep)
    st = {r["run_id"]: r["status"] for r in info["rows"]}
    assert st == {
        "run0": "done",
        "run1": "failed",
        "run2": "running",
        "run3": "requeued",
        "run4": "lost",
        "run5": "queued",
        "run6": "running",
        "run7": "diverged",
        "run8": "pending",
    }
    assert info["slurm"] == "sacct"
    calls = (bindir / "sacct.calls").read_text().splitlines()
    assert len(calls) == 1
    args = calls[0].split()
    assert args[0] == "-j" and args[1] == "500" and "-X" in args and "-n" in args and "-P" in args
    assert "--format=JobID,JobIDRaw,State,Reason" in args
    rows = {r["run_id"]: r for r in info["rows"]}
    assert "RuntimeError: boom" in rows["run1"]["note"] and "File x" in rows["run1"]["note"]
    assert "NODE_FAIL" in rows["run4"]["note"] and "node died" in rows["run4"]["note"]
    assert "diverged at step 12" in rows["run7"]["note"]
    assert info["counts"]["queued"] == 1 and info["counts"]["lost"] == 1


def test_held_duplicate_and_just_failed_tasks(slurm_sweep, tmp_path, monkeypatch):
    """run3's task is held (never starts by itself); run2 was submitted again while its first task runs (the
    new task pends: it is still running, not requeued); run5's task failed at once (sacct's stale range record
    says pending; squeue no longer lists it)."""
    rec = json.loads((slurm_sweep / "sweep.json").read_text())
    rec["slurm"].append({"job_ids": ["700"], "packs": [{"job_id": "700_0", "run_ids": ["run2"]}]})
    (slurm_sweep / "sweep.json").write_text(json.dumps(rec))
    s2 = json.loads((slurm_sweep / "run2" / "summary.json").read_text())
    (slurm_sweep / "run2" / "summary.json").write_text(json.dumps(dict(s2, slurm_job_id="500_1")))
    sacct = (
        SACCT.replace("500_2|503|PENDING", "500_2|503|PENDING|launch_failed_requeued_held")
        + "700_[0]|700|PENDING|Priority\n"
    )
    bindir = _fake_bin(tmp_path, "sacct", sacct)
    _fake_bin(
        tmp_path,
        "squeue",
        "500_1|RUNNING|None\n500_2|PENDING|launch_failed_requeued_held\n500_5|RUNNING|None\n700_0|PENDING|Priority\n",
    )
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    rows = {r["run_id"]: r for r in gather(slurm_sweep)["rows"]}
    assert rows["run3"]["status"] == "held" and rows["run3"]["note"].endswith("scontrol release 500_2")
    assert rows["run2"]["status"] == "running"
    assert rows["run5"]["status"] == "lost" and "no longer queued or running" in rows["run5"]["note"]
    assert (bindir / "squeue.calls").exists()  # asked once, to check what sacct knew only from a range


def test_status_cli_table(slurm_sweep, tmp_path):
    bindir = _fake_bin(tmp_path, "sacct", SACCT)
    _fake_bin(tmp_path, "squeue", SQUEUE)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "160"}
    p = sweep_cli("status", str(slurm_sweep), env=env, check=True)
    out = p.stdout
    for word in (
        "1 pending",
        "1 queued",
        "2 running",
        "1 requeued",
        "1 done",
        "1 diverged",
        "1 failed",
        "1 lost",
        "RuntimeError: boom",
        "40/100",
        "SLURM: sacct",
    ):
        assert word in out, (word, out)
    only = sweep_cli("status", str(slurm_sweep), "--only", "failed,lost", env=env, check=True).stdout
    assert "run1" in only and "run4" in only and "run0 " not in only


def test_big_sweeps_leave_out_done_rows_unless_all(slurm_sweep, tmp_path, monkeypatch):
    from rich.console import Console

    from sweep.status import render

    monkeypatch.setenv("PATH", str(tmp_path))
    info = gather(slurm_sweep)
    console = Console(width=200, record=True)
    console.print(render(info, max_rows=5))
    text = console.export_text()
    assert "run0" not in text and "run1" in text and "rows not shown" in text  # done left out first
    console = Console(width=200, record=True)
    console.print(render(info, max_rows=None))
    assert "run0" in console.export_text()


def test_without_slurm_the_files_decide(slurm_sweep, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no sacct, no squeue
    assert slurm_states(["500_1"]) == ({}, None)
    info = gather(slurm_sweep)
    st = {r["run_id"]: r["status"] for r in info["rows"]}
    assert st["run2"] == st["run3"] == st["run4"] == "running"
    assert st["run5"] == st["run6"] == st["run8"] == "pending"
    assert st["run0"] == "done" and st["run1"] == "failed"
    assert info["slurm"] is None


def test_squeue_fallback_when_sacct_fails(slurm_sweep, tmp_path, monkeypatch):
    bindir = _fake_bin(tmp_path, "sacct", "", rc=1)  # accounting not configured
    _fake_bin(tmp_path, "squeue", "500_1|RUNNING\n500_[2,4]|PENDING\n500_5|RUNNING\n")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    info = gather(slurm_sweep)
    st = {r["run_id"]: r["status"] for r in info["rows"]}
    assert info["slurm"] == "squeue"
    assert st["run2"] == "running" and st["run3"] == "requeued" and st["run5"] == "queued"
    assert st["run4"] == "lost"  # no longer in the queue, no final status


def test_real_sweep_and_watch_ends_when_all_finished(small_sweep):
    t0 = time.perf_counter()
    p = sweep_cli("status", str(small_sweep), "--watch", "1", env={"COLUMNS": "200"}, check=True, timeout=60)
    assert time.perf_counter() - t0 < 30
    import re

    counts = {k: int(n) for n, k in re.findall(r"(\d+) (done|diverged|collapsed)\b", p.stdout.split("\n")[0])}
    assert "32 runs" in p.stdout and counts["diverged"] == 8  # lr=8 diverges at once
    assert counts["done"] + counts.get("collapsed", 0) == 24  # a collapsed run is a result too
    assert "every run has ended" in p.stdout
    assert "optimizer" in p.stdout and "schedule" in p.stdout  # swept columns
    missing = sweep_cli("status", str(small_sweep / "nope"))
    assert missing.returncode == 2 and "no sweep folder" in missing.stderr


def _real_slurm() -> bool:
    if not (shutil.which("sbatch") and shutil.which("sacct") and shutil.which("sinfo")):
        return False
    try:
        return (
            subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
            and subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, timeout=10).returncode == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slurm
@pytest.mark.skipif(not _real_slurm(), reason="no SLURM cluster with accounting here")
def test_real_slurm_queued_then_done(tmp_path):
    out = tmp_path / "runs"
    sweep_cli(
        "run",
        "-m",
        "lr=0.05,0.1,0.2",
        "epochs=1",
        "model.hidden=[8]",
        "pack=1",
        "cluster=dev",
        "cluster.array_parallelism=1",
        "wandb.mode=disabled",
        "name=st",
        f"out_dir={out}",
        cwd=tmp_path,
        check=True,
    )
    seen, sources = set(), set()
    deadline = time.time() + 240
    while time.time() < deadline:
        info = gather(out / "st")
        seen |= {r["status"] for r in info["rows"]}
        sources.add(info["slurm"])  # sacct while some run is unfinished; nobody is asked after that
        if info["counts"].get("done") == 3:
            break
        time.sleep(1)
    assert info["counts"].get("done") == 3, info["counts"]
    assert seen & {"queued", "running"}, seen
    assert "sacct" in sources and info["slurm"] is None


def test_a_locally_killed_run_is_lost_not_running(tmp_path):
    """A run whose training process died without a final status (SIGKILL, machine reboot) shows as lost."""
    import signal
    import subprocess
    import sys
    import time

    from sweep.status import gather

    out = tmp_path / "runs"
    args = [
        sys.executable,
        "-m",
        "sweep.cli",
        "run",
        "-m",
        "lr=0.01,0.02",
        "epochs=200",
        "checkpoint_every=20",
        "model.hidden=[16]",
        "wandb.mode=disabled",
        f"out_dir={out}",
        "name=killed",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    from sweep import store

    def checkpointed() -> int:  # runs whose pack's checkpoint holds them: training, resumable
        recs = store.scan(out / "killed").values()
        return sum(r.summary is not None and r.summary.get("checkpoint_step") is not None for r in recs)

    while time.time() < deadline and checkpointed() < 2:
        time.sleep(0.05)
    assert {r["status"] for r in gather(out / "killed", use_slurm=False)["rows"]} == {"running"}
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = gather(out / "killed", use_slurm=False)["rows"]
    assert {r["status"] for r in rows} == {"lost"}
    assert "run the same command again" in rows[0]["note"]


def test_failed_and_corrupt_runs_of_the_pack_store(tmp_path):
    """A failed run's traceback is its summary's (its last lines in the note); a pack's torn summary file makes
    each of its runs corrupt, a bad entry only its own run, and the note names the file and says that the same
    command trains the run again (the store's newer record then wins): nothing to delete."""
    from sweep import store

    d = tmp_path / "runs" / "sw"
    tb = "Traceback (most recent call last):\n  File x\nRuntimeError: boom\n"
    one = store.PackWriter(d, {"aaa": {"lr": 0.1}, "bbb": {"lr": 0.2}, "ddd": {"lr": 0.4}})
    one.start({})
    base = {"step": 3, "total_steps": 100, "final_train_loss": 0.5}
    one.write_summaries(
        {
            "aaa": dict(base, run_id="aaa", status="failed", error="RuntimeError: boom", traceback=tb),
            "bbb": dict(base, run_id="bbb", status="done", step=100),
            "ddd": dict(base, run_id="ddd", status=5),
        }
    )
    two = store.PackWriter(d, {"ccc": {"lr": 0.3}, "eee": {"lr": 0.5}})
    two.start({})
    (two.root / "summary.json").write_text('{"ccc": {"status": "running", "st')  # torn
    rows = {r["run_id"]: r for r in gather(d, use_slurm=False)["rows"]}
    assert rows["aaa"]["status"] == "failed"
    assert "RuntimeError: boom" in rows["aaa"]["note"] and "File x" in rows["aaa"]["note"]
    assert rows["bbb"]["status"] == "done"
    for rid, where, why in (
        ("ddd", one.root, "status 5 is not one of"),
        ("ccc", two.root, "not valid JSON"),
        ("eee", two.root, "not valid JSON"),
    ):
        note = rows[rid]["note"]
        assert rows[rid]["status"] == "corrupt" and "rm -r" not in note, (rid, note)
        assert note.startswith(f"{where / 'summary.json'} is corrupt ({why}"), (rid, note)
        assert note.endswith("run the same command again to train it again from its checkpoint"), (rid, note)


def test_a_collapsed_run_says_how_it_collapsed_not_step_none(tmp_path):
    """A collapsed run trained to the end (no step at which it diverged): once 'collapsed at step None'."""
    from sweep.status import gather

    run = tmp_path / "s" / "r1"
    run.mkdir(parents=True)
    summary = {"run_id": "r1", "status": "collapsed", "first_loss": 2.3, "peak_loss": 9.2, "final_train_loss": 2.31}
    (run / "summary.json").write_text(json.dumps(summary))
    (row,) = gather(tmp_path / "s", use_slurm=False)["rows"]
    assert row["note"] == "collapsed: loss peaked at 9.2 (4x its first, 2.3), ended at 2.31"


def test_an_80_column_table_keeps_every_note_and_status():
    """On an 80-column terminal or pipe, six swept keys pushed the note column out and cropped the status: now
    the swept values share one wrapped column and the notes are lines under the table."""
    from rich.console import Console

    from sweep.status import render

    values = {"optimizer.name": "momentum", "schedule.name": "warmup_cosine", "lr": "0.001", "batch_size": "128",
              "init.name": "xavier_uniform", "seed": "3"}  # fmt: skip
    rows = [
        {"run_id": f"run{i}", "values": values, "status": status, "step": 10, "total": 100, "loss": 0.5, "note": note}
        for i, (status, note) in enumerate([("failed", "RuntimeError: boom in the student's code"), ("done", "")])
    ]
    info = {"counts": {"failed": 1, "done": 1}, "slurm": None, "asked": False, "name": "s", "dir": "/x",
            "swept": list(values), "rows": rows}  # fmt: skip
    for width in (80, 200):
        console = Console(width=width, record=True)
        console.print(render(info, width=width))
        text = console.export_text()
        assert "RuntimeError: boom in the student's code" in text.replace("\n", " ").replace("  ", " "), text
        assert "failed" in text and "xavier_uniform" in text and "warmup_cosine" in text, text
        assert max(len(line) for line in text.splitlines()) <= width

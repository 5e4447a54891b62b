"""Faults a run must survive (issue: faults survived): kills and Ctrl-C, torn and planted files, a bad run inside
a pack, a results folder that cannot be written, a wandb server that never answers. Each test is an attack that
once broke `sweep`; each fails if its fix is taken out."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import make_cfg, sweep_cli
from store_helpers import ClaimHeld, history, record, stopped_at, summary, traceback_text, where

from sweep import store
from sweep.runner import train_runs

pytestmark = pytest.mark.faults
TINY = ["epochs=2", "model.hidden=[8]", "wandb.mode=disabled", "log_every=5"]


class _Planted:
    """A pickle that runs code when loaded (what an attacker would leave in a shared project folder)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_a_planted_checkpoint_does_not_run_code(tmp_path, one_thread):
    """A pack checkpoint the run resumes from (its summary says so), replaced by a pickle that runs code."""
    cfg = make_cfg(tmp_path, *TINY)
    _, rid = where(cfg)
    marker = tmp_path / "pwned"
    planted = {"format": 1, "step": 3, "run_ids": [rid], "models": {"evil": _Planted(str(marker))}}
    stopped_at(cfg, 3, _torch_bytes(planted))
    (s,) = train_runs([cfg], progress=False)
    assert not marker.exists(), "loading the checkpoint executed code"
    assert s["status"] == "failed" and "Weights only load failed" in s["error"]


def test_one_bad_run_fails_alone_and_its_pack_finishes(tmp_path, one_thread):
    cfgs = [make_cfg(tmp_path / "pack", *TINY, f"lr={lr}") for lr in (0.1, 0.2, 0.3)]
    alone = make_cfg(tmp_path / "alone", *TINY, "lr=0.3")
    # a readable pack checkpoint whose weights have the wrong shapes (another model's): fails inside the pack
    stopped_at(
        cfgs[1],
        3,
        {
            "step": 3,
            "history": [],
            "wall_s": 0.0,
            "params": [torch.zeros(3, 3)] * 4,
            "opt_states": [{}] * 4,
            "torch_opt": None,
            "anneal_rng": torch.Generator().get_state(),
            "init_loss": 2.0,
        },
    )
    results = train_runs(cfgs, pack=3, progress=False)
    assert [r["status"] for r in results] == ["done", "failed", "done"]
    assert traceback_text(cfgs[1]).startswith("Traceback")  # kept in its summary
    train_runs([alone], progress=False)
    assert summary(cfgs[2])["final_train_loss"] == summary(alone)["final_train_loss"]


def test_a_config_value_json_cannot_represent_does_not_stop_its_pack(tmp_path, one_thread):
    """A pack writes its runs' configs together (runs.json); a value JSON cannot represent is written as its
    str (as the run id hashes it), so no run fails for its config and every run's config is recorded."""
    cfgs = [make_cfg(tmp_path, *TINY, f"lr={lr}") for lr in (0.1, 0.2, 0.3)]
    cfgs[1]["data"]["note"] = object()
    results = train_runs(cfgs, pack=3, progress=False)
    assert [r["status"] for r in results] == ["done", "done", "done"]
    configs = [record(c).config for c in cfgs]
    assert [c["lr"] for c in configs] == [0.1, 0.2, 0.3]
    assert configs[1]["data"]["note"] == str(cfgs[1]["data"]["note"]) and "note" not in configs[0]["data"]


def _tear_pack_summary(cfg) -> None:
    """Cut the summary.json of the run's pack in half (a damaged disk: the writers never leave a torn file)."""
    path = record(cfg).pack / store.SUMMARY_FILE
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _corrupt_summary_entry(cfg) -> None:
    """Give the run's entry in its pack's summary.json a status no reader knows (the other entries intact)."""
    rec = record(cfg)
    path = rec.pack / store.SUMMARY_FILE
    summaries = json.loads(path.read_text())
    summaries[rec.run_id]["status"] = 5
    path.write_bytes(store.summaries_bytes(summaries))


@pytest.mark.parametrize(
    ("pack", "damage"),
    [(1, _tear_pack_summary), (2, _corrupt_summary_entry)],
    ids=["torn-summary-file-of-its-own-pack", "corrupt-entry-in-a-shared-pack"],
)
def test_an_unreadable_summary_retrains_that_run_only(tmp_path, one_thread, capfd, pack, damage):
    cfgs = [make_cfg(tmp_path, *TINY, f"lr={lr}") for lr in (0.1, 0.2)]
    train_runs(cfgs, pack=pack, progress=False)
    assert (record(cfgs[0]).pack == record(cfgs[1]).pack) == (pack == 2)
    before = summary(cfgs[0])
    damage(cfgs[1])
    capfd.readouterr()
    again = train_runs(cfgs, pack=2, progress=False)
    assert again[0].get("skipped") and again[0]["status"] == "done"
    assert again[1]["status"] == "done" and again[1]["resumed_from_step"] == again[1]["total_steps"]
    assert summary(cfgs[0]) == before
    err = capfd.readouterr().err
    unreadable = [ln for ln in err.splitlines() if "summary.json is unreadable" in ln]
    assert len(unreadable) == 1 and "training run " + where(cfgs[1])[1] in unreadable[0], err
    # besides it, at most the reader's one `sweep: skipped <file>: <why>` line for the damaged file
    others = [ln for ln in err.strip().splitlines() if ln not in unreadable]
    assert len(others) <= 1 and all(ln.startswith("sweep: skipped ") for ln in others), err


def test_temporaries_left_by_a_kill_are_removed(tmp_path, one_thread):
    cfg = make_cfg(tmp_path, *TINY)
    sweep_dir, rid = where(cfg)
    root = store.packs_dir(sweep_dir) / store.pack_id([rid])  # the folder of the pack that trains it
    root.mkdir(parents=True)
    stale = root / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    train_runs([cfg], progress=False)
    assert record(cfg).pack == root
    assert not stale.exists() and not list(root.glob(".*.tmp"))


def test_a_torn_sweep_record_elsewhere_does_not_stop_new_sweeps(tmp_path):
    out = tmp_path / "runs"
    (out / "old").mkdir(parents=True)
    (out / "old" / "sweep.json").write_text('{"name": "old", "grid_k')
    p = sweep_cli("run", "-m", *TINY, "lr=0.1,0.2", f"out_dir={out}")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and "skipped" in p.stderr and "old/sweep.json" in p.stderr


def test_a_grid_with_failed_runs_exits_nonzero_and_says_how_many(tmp_path):
    out = tmp_path / "runs"
    p = sweep_cli("run", "-m", *TINY, "lr=0.1,0.2", f"out_dir={out}", "name=g", check=True)
    # one run made to resume (its summary: interrupted, checkpoint_step kept) from a garbage checkpoint; the other
    # stays done, whether or not it shares the pack
    records = store.scan(out / "g")
    assert len(records) == 2 and {r.status for r in records.values()} == {"done"}
    victim = next(iter(records.values()))
    assert victim.summary["checkpoint_step"] is not None
    summaries = json.loads(victim.summary_path.read_text())
    summaries[victim.run_id]["status"] = "interrupted"
    victim.summary_path.write_bytes(store.summaries_bytes(summaries))
    (victim.pack / store.CHECKPOINT_FILE).write_bytes(b"garbage")
    p = sweep_cli("run", "-m", *TINY, "lr=0.1,0.2", f"out_dir={out}", "name=g")
    assert p.returncode == 1
    assert "1 of 2 runs failed" in p.stderr


def test_a_run_being_trained_elsewhere_is_named_not_offered_for_deletion(tmp_path):
    cfg = make_cfg(tmp_path / "runs", *TINY)
    sweep_dir, rid = where(cfg)
    # the pack of the process training it: its runs' configs and who it is (node7's PID 4242), and the claim held
    store.PackWriter(sweep_dir, {rid: cfg}).start({"host": "node7", "pid": 4242, "slurm_job_id": None})
    with ClaimHeld(cfg):
        p = sweep_cli("run", *TINY, f"out_dir={tmp_path / 'runs'}")
    assert p.returncode == 0, p.stderr
    assert "being trained by PID 4242 on node7" in p.stdout and "delete" not in p.stdout


def test_an_out_dir_that_is_a_file_is_one_line(tmp_path):
    f = tmp_path / "results"
    f.write_text("not a folder")
    p = sweep_cli("run", *TINY, f"out_dir={f}")
    assert p.returncode == 2
    assert p.stderr.startswith("sweep: error: cannot write") and len(p.stderr.strip().splitlines()) == 1


def test_ctrl_c_checkpoints_says_how_to_resume_and_the_rerun_continues(tmp_path):
    args = [
        "epochs=150",
        "checkpoint_every=1000",
        "log_every=5",
        "model.hidden=[64,64]",
        "optimizer=adam",
        "lr=3e-3",
        "wandb.mode=disabled",
    ]
    ref, out = tmp_path / "ref", tmp_path / "cut"
    sweep_cli("run", f"out_dir={ref}", *args, check=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "run", f"out_dir={out}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("single/packs/*/runs.json")):
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "the run finished before Ctrl-C; make it longer"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "run the same command again to resume" in stderr
    cut, want_cfg = make_cfg(out, *args), make_cfg(ref, *args)
    assert where(cut)[1] == where(want_cfg)[1] and list(store.scan(out / "single")) == [where(cut)[1]]
    s = summary(cut)
    assert s["status"] == "interrupted" and 0 < s["step"] < s["total_steps"]
    assert s["checkpoint_step"] == s["step"]
    sweep_cli("run", f"out_dir={out}", *args, check=True)
    got = summary(cut)
    want = summary(want_cfg)
    assert got["resumed_from_step"] == s["step"] and got["final_test_loss"] == want["final_test_loss"]
    h = history(cut)
    assert len(h) > 0
    pd.testing.assert_frame_equal(h, history(want_cfg))


class _SilentServer:
    """A TCP server on loopback that accepts every connection, reads what is sent, and never answers (a hung
    wandb server). `requests` holds the first line of each connection's request."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.requests: list[str] = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            self.requests.append(conn.recv(256).decode(errors="replace").split("\r\n")[0])
        except OSError:
            pass

    def close(self) -> None:
        self.stop = True
        for c in self.conns:
            c.close()
        self.sock.close()


def test_training_never_talks_to_a_wandb_server(tmp_path):
    """Once every run of a pack opened wandb online and waited out its init timeout, then a probe per pack
    decided. Now training does no wandb work at all: with wandb offline (the default) a server that never
    answers receives nothing while a grid trains, and no wandb file is written (`sweep sync` mirrors later)."""
    server = _SilentServer()
    env = {"WANDB_BASE_URL": f"http://127.0.0.1:{server.port}", "WANDB_API_KEY": "x" * 40, "WANDB_MODE": None}
    try:
        p = sweep_cli(
            "run", "-m", "epochs=1", "model.hidden=[8]", "wandb.mode=offline", "lr=0.1,0.2,0.3,0.4", "pack=4",
            f"out_dir={tmp_path}", "name=w", env=env, timeout=300,
        )  # fmt: skip
    finally:
        server.close()
    assert p.returncode == 0, p.stderr
    assert server.requests == []
    assert not list(tmp_path.rglob("wandb"))
    from sweep.store import scan

    assert [r.status for r in scan(tmp_path / "w").values()] == ["done"] * 4


def _trained_checkpoint(tmp_path, **overrides) -> tuple[dict, dict]:
    """A config and a real checkpoint of it at step 3 (its own tree), with `overrides` applied to the tree."""
    cfg = make_cfg(tmp_path, *TINY, "optimizer=adam", "lr=0.01", "checkpoint_every=3")
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] == 1

    from sweep.engine import Interrupted

    with pytest.raises(Interrupted):
        train_runs([cfg], progress=False, should_stop=stop)
    ck = store.checkpoint(*where(cfg))
    ck.update(overrides)
    return cfg, ck


@pytest.mark.parametrize(
    "attack, says",
    [
        (lambda ck: ck.update(params=[torch.tensor(0.5)] * len(ck["params"])), "weight 0 has shape ()"),
        (lambda ck: ck.update(params=[p[:1] for p in ck["params"]]), "weight 0 has shape (1,"),
        (lambda ck: ck.update(step=10**6), "at step 1000000, outside this run's 0.."),
        (lambda ck: ck.update(opt_states=[]), "optimizer state has 0 layers"),
        (lambda ck: ck.update(opt_states=[{} for _ in ck["opt_states"]]), "optimizer state lacks exp_avg"),
    ],
    ids=["scalar weights", "one-row weights", "step past the end", "no optimizer state", "emptied state"],
)
def test_a_checkpoint_that_is_not_this_runs_state_fails_that_run_with_one_line(tmp_path, one_thread, attack, says):
    """Copying a scalar or one row into the weights broadcast silently; a step past the end made `done` without
    training; an emptied optimizer state resumed as if fresh. Each is now the run's own failure, said."""
    cfg, ck = _trained_checkpoint(tmp_path)
    attack(ck)
    from store_helpers import rewrite_checkpoint

    rewrite_checkpoint(cfg, ck)
    (s,) = train_runs([cfg], progress=False)
    assert s["status"] == "failed" and says in s["error"], s.get("error")


def test_sweep_check_grades_an_optimizer_that_calls_sys_exit_instead_of_exiting_with_it(tmp_path):
    """`sys.exit(0)` in a student's step() ended `sweep check` with status 0 and no output: a pass. Now it is
    that check's failure ('called sys.exit(0)') and the grade is a fail; at import it is one line, exit 2."""
    (tmp_path / "quits.py").write_text(
        "import sys, torch\nclass MyAdam(torch.optim.Adam):\n    def step(self, closure=None):\n        sys.exit(0)\n"
    )
    p = sweep_cli("check", "quits.MyAdam", "--like", "adam", cwd=tmp_path, timeout=240)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "called sys.exit(0)" in p.stdout and "FAIL" in p.stdout
    (tmp_path / "quits_early.py").write_text("import sys\nsys.exit(0)\n")
    p = sweep_cli("check", "quits_early.MyAdam", "--like", "adam", cwd=tmp_path, timeout=240)
    assert p.returncode == 2
    assert (
        p.stderr.strip()
        == "sweep: error: cannot import module 'quits_early' (for quits_early.MyAdam): called sys.exit(0)"
    )


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 torn"], ids=["empty", "truncated"])
def test_an_empty_or_torn_checkpoint_names_the_file_and_the_fix(tmp_path, one_thread, data):
    """Once 'EOFError:' or 'OSError: [Errno 22]' alone; now the file, the error and what to do."""
    cfg = make_cfg(tmp_path, *TINY)
    pack = stopped_at(cfg, 3, data)
    (s,) = train_runs([cfg], progress=False)
    assert s["status"] == "failed"
    assert f"cannot load the checkpoint {pack / store.CHECKPOINT_FILE}: " in s["error"]
    assert s["error"].endswith("delete it to train its runs from the start")


@pytest.mark.parametrize(
    ("output", "says"),
    [
        ("afile/x.csv", "afile is a file, not a folder"),
        ("x.txt", "use a .parquet or .csv file name"),
        ("sub", "is a folder: give a file name"),
    ],
)
def test_collect_into_a_place_it_cannot_write_is_one_line(tmp_path, output, says):
    """`sweep collect -o` into a path under a file was a FileExistsError traceback, after reading every run."""
    cfg = make_cfg(tmp_path / "runs", *TINY)
    train_runs([cfg], progress=False)
    (tmp_path / "afile").write_text("")
    (tmp_path / "sub").mkdir()
    p = sweep_cli("collect", str(where(cfg)[0]), "-o", str(tmp_path / output))
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.startswith("sweep: error: ") and says in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr


def test_a_summary_that_is_a_folder_is_corrupt_to_readers_and_named_by_the_rerun(tmp_path):
    """A summary.json that is a folder was a traceback in collect; the rerun said 'choose a writable out_dir'."""
    cfg = make_cfg(tmp_path / "runs", *TINY)
    (done,) = train_runs([cfg], progress=False)
    (pack,) = (where(cfg)[0] / "packs").iterdir()
    (pack / "summary.json").unlink()
    (pack / "summary.json").mkdir()
    p = sweep_cli("collect", str(where(cfg)[0]))
    assert p.returncode == 0 and "corrupt" in p.stdout, p.stdout + p.stderr
    p = sweep_cli("run", *TINY, f"out_dir={tmp_path / 'runs'}")
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.strip().endswith(
        f"{pack / 'summary.json'} is a folder where sweep writes a file: move it away and rerun"
    )


def test_report_into_a_place_it_cannot_write_is_one_line_before_drawing(tmp_path):
    """`sweep report -o` under a file was a NotADirectoryError traceback."""
    cfg = make_cfg(tmp_path / "runs", *TINY)
    train_runs([cfg], progress=False)
    (tmp_path / "afile").write_text("")
    p = sweep_cli("report", str(where(cfg)[0]), "-o", str(tmp_path / "afile" / "rep"))
    assert p.returncode == 2, p.stdout + p.stderr
    assert (
        p.stderr.strip()
        == f"sweep: error: cannot write into {tmp_path / 'afile' / 'rep'}: {tmp_path / 'afile'} is a file, not a folder"
    )


def test_report_of_a_sweep_whose_summaries_are_all_missing_draws(tmp_path):
    """With no run's summary on disk (all pending) the report crashed with KeyError: 'final_test_loss'."""
    cfgs = [make_cfg(tmp_path / "runs", *TINY, f"lr={lr}", "name=g") for lr in (0.1, 0.2)]
    train_runs(cfgs, progress=False)
    cfg = cfgs[0]
    for pack in (where(cfg)[0] / "packs").iterdir():
        (pack / "summary.json").unlink()
    p = sweep_cli("report", str(where(cfg)[0]))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "pending" in (where(cfg)[0] / "report" / "report.md").read_text()

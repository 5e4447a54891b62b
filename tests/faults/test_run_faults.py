"""Faults a run must survive (issue: faults survived): kills and Ctrl-C, torn and planted files, a bad run inside
a pack, a results folder that cannot be written, a wandb server that never answers. Each test is an attack that
once broke `sweep`; each fails if its fix is taken out."""

from __future__ import annotations

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

from sweep.results import save_torch
from sweep.runner import run_dir_for, train_runs

pytestmark = pytest.mark.faults
TINY = ["epochs=2", "model.hidden=[8]", "wandb.mode=disabled", "log_every=5"]


def summary(cfg) -> dict:
    return json.loads(run_dir_for(cfg).summary.read_text())


class _Planted:
    """A pickle that runs code when loaded (what an attacker would leave in a shared project folder)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_planted_checkpoint_does_not_run_code(tmp_path, one_thread):
    cfg = make_cfg(tmp_path, *TINY)
    d = run_dir_for(cfg)
    d.root.mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch.save({"run_id": d.root.name, "evil": _Planted(str(marker))}, d.checkpoint)
    (s,) = train_runs([cfg], progress=False)
    assert not marker.exists(), "loading the checkpoint executed code"
    assert s["status"] == "failed" and "Weights only load failed" in s["error"]


def test_one_bad_run_fails_alone_and_its_pack_finishes(tmp_path, one_thread):
    cfgs = [make_cfg(tmp_path / "pack", *TINY, f"lr={lr}") for lr in (0.1, 0.2, 0.3)]
    alone = make_cfg(tmp_path / "alone", *TINY, "lr=0.3")
    bad = run_dir_for(cfgs[1])
    bad.root.mkdir(parents=True)
    # a readable checkpoint whose weights have the wrong shapes (another model's): fails inside the pack
    save_torch(
        bad.checkpoint,
        {
            "run_id": bad.root.name,
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
    train_runs([alone], progress=False)
    assert summary(cfgs[2])["final_train_loss"] == summary(alone)["final_train_loss"]


def test_a_run_whose_config_cannot_be_written_fails_alone_and_its_pack_finishes(tmp_path, one_thread):
    """A pack writes its runs' configs together; when one cannot be written (here a value YAML cannot represent)
    each run writes its own, so only that run fails."""
    cfgs = [make_cfg(tmp_path, *TINY, f"lr={lr}") for lr in (0.1, 0.2, 0.3)]
    cfgs[1]["data"]["note"] = object()
    results = train_runs(cfgs, pack=3, progress=False)
    assert [r["status"] for r in results] == ["done", "failed", "done"]
    assert "RepresenterError" in run_dir_for(cfgs[1]).error.read_text()
    assert all(run_dir_for(c).config.exists() and run_dir_for(c).config_json.exists() for c in (cfgs[0], cfgs[2]))


def test_an_unreadable_summary_retrains_that_run_only(tmp_path, one_thread, capfd):
    cfgs = [make_cfg(tmp_path, *TINY, f"lr={lr}") for lr in (0.1, 0.2)]
    train_runs(cfgs, pack=2, progress=False)
    before = summary(cfgs[0])
    run_dir_for(cfgs[1]).summary.write_text('{"status": "do')  # torn
    capfd.readouterr()
    again = train_runs(cfgs, pack=2, progress=False)
    assert again[0].get("skipped") and again[0]["status"] == "done"
    assert again[1]["status"] == "done" and again[1]["resumed_from_step"] == again[1]["total_steps"]
    assert summary(cfgs[0]) == before
    err = capfd.readouterr().err
    assert "summary.json is unreadable" in err and len(err.strip().splitlines()) == 1


def test_temporaries_left_by_a_kill_are_removed(tmp_path, one_thread):
    cfg = make_cfg(tmp_path, *TINY)
    d = run_dir_for(cfg)
    d.root.mkdir(parents=True)
    stale = d.root / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    train_runs([cfg], progress=False)
    assert not stale.exists() and not list(d.root.glob(".*.tmp"))


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
    victim = next((out / "g").glob("*/checkpoint.pt"))
    victim.write_bytes(b"garbage")
    (victim.parent / "summary.json").unlink()
    p = sweep_cli("run", "-m", *TINY, "lr=0.1,0.2", f"out_dir={out}", "name=g")
    assert p.returncode == 1
    assert "1 of 2 runs failed" in p.stderr


def test_a_run_being_trained_elsewhere_is_named_not_offered_for_deletion(tmp_path):
    from filelock import FileLock

    cfg = make_cfg(tmp_path / "runs", *TINY)
    d = run_dir_for(cfg)
    d.root.mkdir(parents=True)
    d.claim_owner.write_text(json.dumps({"host": "node7", "pid": 4242, "slurm_job_id": None}))
    with FileLock(str(d.claim_lock)):
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
    while time.time() < deadline and not list(out.glob("single/*/config.yaml")):
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "the run finished before Ctrl-C; make it longer"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "run the same command again to resume" in stderr
    (sdir,) = out.glob("single/*")
    s = json.loads((sdir / "summary.json").read_text())
    assert s["status"] == "interrupted" and 0 < s["step"] < s["total_steps"]
    sweep_cli("run", f"out_dir={out}", *args, check=True)
    got = json.loads((sdir / "summary.json").read_text())
    want = json.loads((ref / "single" / sdir.name / "summary.json").read_text())
    assert got["resumed_from_step"] == s["step"] and got["final_test_loss"] == want["final_test_loss"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(sdir / "history.parquet"), pd.read_parquet(ref / "single" / sdir.name / "history.parquet")
    )


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


@pytest.mark.slow
def test_a_wandb_server_that_never_answers_costs_one_probe_per_pack_and_no_online_attempt(tmp_path):
    """Before the fix every run of a pack opened wandb online and waited out its init timeout (one after another),
    and the process then waited for wandb's upload retries at exit. Now one HTTP probe per pack finds that the
    server does not answer, and every run of the pack logs offline at once."""
    server = _SilentServer()
    env = {"WANDB_BASE_URL": f"http://127.0.0.1:{server.port}", "WANDB_API_KEY": "x" * 40, "WANDB_MODE": None}
    try:
        p = sweep_cli(
            "run",
            "-m",
            "epochs=1",
            "model.hidden=[8]",
            "wandb.mode=online",
            "wandb.init_timeout_s=3",
            "lr=0.1,0.2,0.3,0.4",
            "pack=4",
            f"out_dir={tmp_path}",
            "name=w",
            env=env,
            timeout=300,
        )
        time.sleep(0.5)
    finally:
        server.close()
    assert p.returncode == 0, p.stderr
    probes = [r for r in server.requests if r.startswith("HEAD ")]
    assert len(probes) == 1, server.requests
    assert "init in online mode failed" not in p.stderr and "unreachable" in p.stderr
    assert len(list(tmp_path.glob("w/*/wandb/offline-run-*"))) == 4, p.stderr

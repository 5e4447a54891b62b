"""wandb as a mirror of the store, with the real SDK offline: training writes no wandb file; the mirror makes one
wandb run per run with the store's id, group, config, history and summary; online, a server that never answers
is the mirror process's problem, not training's."""

from __future__ import annotations

import json
import socket
import time

import pytest
from conftest import make_cfg, sweep_cli
from store_helpers import history, summary, where
from wandb_records import summarize

from sweep.config import run_id
from sweep.engine import Interrupted
from sweep.mirror import WANDB_DIR, mirror_once
from sweep.runner import train_runs

SECRET = "0123456789abcdef0123456789abcdef01234567"


def _wandb_files(sweep_dir) -> dict[str, dict]:
    """The offline wandb runs under the sweep's wandb folder, by wandb id."""
    out = {}
    for path in sorted((sweep_dir / WANDB_DIR).glob("offline-run-*/run-*.wandb")):
        rec = summarize(path)
        out.setdefault(rec["run"]["id"], []).append(rec)
    return out


def test_training_writes_no_wandb_file_and_the_mirror_makes_each_run_from_the_store(tmp_path):
    cfgs = [
        make_cfg(tmp_path, "epochs=2", "model.hidden=[16]", "wandb.mode=offline", f"lr={lr}", "name=grid")
        for lr in (0.05, 0.2)
    ]
    for c in cfgs:
        c["wandb"]["tags"] = ["demo"]
    train_runs(cfgs, pack=2, progress=False)
    sweep_dir = where(cfgs[0])[0]
    assert not list(tmp_path.rglob("wandb")), "training wrote wandb files"
    res = mirror_once(sweep_dir, "offline", echo=lambda s: None)
    assert sorted(res["sent"]) == sorted(run_id(c) for c in cfgs) and not res["failed"]
    files = _wandb_files(sweep_dir)
    for cfg in cfgs:
        s = summary(cfg)
        (rec,) = files[s["wandb_id"]]
        assert rec["run"] == {
            "id": s["wandb_id"],
            "group": "grid",
            "job_type": "train",
            "tags": ["demo"],
            "name": run_id(cfg),
        }
        assert rec["config"]["lr"] == cfg["lr"] and rec["config"]["optimizer"]["name"] == "sgd"
        assert rec["config"]["run_id"] == run_id(cfg)
        assert rec["config"]["versions"]["torch"] and "commit" in rec["config"]["versions"]["git"]
        h = history(cfg)
        logged = [row for row in rec["history"] if "train_loss" in row]
        stored = h[h.train_loss.notna()]
        assert [r["_step"] for r in logged] == list(stored.step)
        assert [r["train_loss"] for r in logged] == list(stored.train_loss)
        assert [r["val_loss"] for r in rec["history"] if "val_loss" in r] == list(h.val_loss.dropna())
        assert rec["summary"]["status"] == "done" and rec["summary"]["final_val_loss"] == s["final_val_loss"]
    # what was sent is remembered: a second mirror sends nothing
    assert mirror_once(sweep_dir, "offline", echo=lambda s: None)["sent"] == []


def test_wandb_ids_are_unique_per_sweep_and_stable_on_resume(tmp_path):
    """The same config in two sweeps must not land in one wandb run, and a resumed run continues its own."""
    a = make_cfg(tmp_path, "epochs=2", "model.hidden=[8]", "wandb.mode=offline", "name=first", "checkpoint_every=5")
    b = dict(a, name="second")
    calls = {"n": 0}

    def stop_once():
        calls["n"] += 1
        return calls["n"] == 1

    try:
        train_runs([a], progress=False, should_stop=stop_once)
        raise AssertionError("should have been interrupted")
    except Interrupted:
        pass
    first = summary(a)
    assert first["status"] == "running" and first["step"] < first["total_steps"]
    train_runs([a], progress=False)
    train_runs([b], progress=False)
    assert summary(a)["status"] == "done" and summary(a)["resumed_from_step"] == first["step"]
    assert summary(a)["wandb_id"] == first["wandb_id"]  # resumed: the same wandb run
    assert run_id(a) == run_id(b) and summary(b)["wandb_id"] != first["wandb_id"]  # another sweep: another
    assert len(first["wandb_id"]) == 8


def test_grid_runs_are_named_by_their_swept_values(tmp_path):
    out = tmp_path / "runs"
    sweep_cli(
        "run", "-m", "epochs=1", "model.hidden=[8]", "wandb.mode=offline", "lr=0.01,0.03", f"out_dir={out}",
        "name=g", check=True,
    )  # fmt: skip
    mirror_once(out / "g", "offline", echo=lambda s: None)
    names = {recs[0]["run"]["name"] for recs in _wandb_files(out / "g").values()}
    assert names == {"lr=0.01", "lr=0.03"}


def test_disabled_runs_are_never_mirrored(tmp_path):
    cfg = make_cfg(tmp_path, "epochs=1", "model.hidden=[16]", "wandb.mode=disabled")
    train_runs([cfg], progress=False)
    assert mirror_once(where(cfg)[0], "offline", echo=lambda s: None)["sent"] == []
    assert not list(tmp_path.rglob("wandb"))


def _silent_server() -> socket.socket:
    """A TCP server that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def test_online_with_a_server_that_never_answers_trains_and_the_mirror_says_what_it_could_not_send(tmp_path):
    server = _silent_server()
    out = tmp_path / "runs"
    env = {
        "WANDB_API_KEY": SECRET,
        "WANDB_MODE": None,
        "WANDB_BASE_URL": f"http://127.0.0.1:{server.getsockname()[1]}",
    }
    proc = sweep_cli(
        "run", "epochs=1", "model.hidden=[16]", "wandb.mode=online", "wandb.init_timeout_s=3", f"out_dir={out}",
        env=env, timeout=300, check=True,
    )  # fmt: skip
    assert "done" in proc.stdout
    sweep_dir = out / "single"
    # the follower is a process of its own: it says in its log what it could not send, once its training
    # process has ended and it has given up on the server
    log_path = sweep_dir / WANDB_DIR / "mirror.log"
    deadline = time.monotonic() + 240
    while "could not send" not in (log_path.read_text() if log_path.exists() else ""):
        assert time.monotonic() < deadline, "the mirror never said what it could not send"
        time.sleep(0.5)
    log = log_path.read_text()
    assert "sweep sync" in log
    state = json.loads((sweep_dir / WANDB_DIR / "mirror.json").read_text())
    assert not any(v.get("ended") for v in state.values())  # still due for `sweep sync`
    dry = sweep_cli("sync", str(sweep_dir), "--dry-run", env=env, check=True)
    assert "1 from the store" in dry.stdout
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"API key leaked into {path}"
    assert SECRET not in proc.stdout + proc.stderr
    server.close()


def test_the_follower_ends_with_its_training_process(tmp_path):
    """A follower whose parent is gone sends what is left and exits (no orphan polling forever)."""
    cfg = make_cfg(tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=offline")
    train_runs([cfg], progress=False)
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    proc = subprocess.run(
        [sys.executable, "-m", "sweep.mirror", str(where(cfg)[0]), "--mode", "offline", "--follow"]
        + ["--parent", str(dead.pid), "--poll", "0.1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert list(_wandb_files(where(cfg)[0])) == [summary(cfg)["wandb_id"]]


class _Answering:
    """A local wandb-like server answering every request with `status` (500: a server in trouble)."""

    def __init__(self, status: int) -> None:
        import http.server
        import threading

        code = status

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()


@pytest.mark.parametrize("server", ["down", "errors"])
def test_a_server_down_or_answering_errors_is_reported_and_the_runs_stay_due(tmp_path, monkeypatch, server):
    """`sweep sync`'s mirror against a server that refuses connections or answers 500: each run is reported
    failed (never counted as synced) and stays due, and the store is untouched."""
    cfg = make_cfg(tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=offline", "wandb.init_timeout_s=3")
    train_runs([cfg], progress=False)
    sweep_dir = where(cfg)[0]
    if server == "down":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        s.close()  # nothing listens there now
        stop = None
    else:
        stop = _Answering(500)
        url = stop.url
    monkeypatch.setenv("WANDB_BASE_URL", url)
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    try:
        res = mirror_once(sweep_dir, "online", echo=lambda s: None)
    finally:
        if stop:
            stop.close()
    assert res["sent"] == [] and list(res["failed"]) == [run_id(cfg)]
    state = json.loads((sweep_dir / WANDB_DIR / "mirror.json").read_text())
    assert not any(v.get("ended") for v in state.values())
    assert summary(cfg)["status"] == "done"


def test_wandbs_usual_settings_reach_wandb_and_stay_out_of_the_run_id(tmp_path):
    """wandb.group, name, notes and job_type were refused as unknown keys (+wandb.notes was stored and never
    sent); they are config keys now, sent by the mirror, and not part of a run's identity."""
    plain = make_cfg(tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=offline", "name=s")
    cfg = make_cfg(
        tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=offline", "name=s", "wandb.group=lecture3",
        "wandb.name=baseline", "wandb.notes=first try", "wandb.job_type=eval",
    )  # fmt: skip
    assert run_id(cfg) == run_id(plain)
    train_runs([cfg], progress=False)
    mirror_once(where(cfg)[0], "offline", echo=lambda s: None)
    ((rec,),) = _wandb_files(where(cfg)[0]).values()
    assert rec["run"]["group"] == "lecture3" and rec["run"]["name"] == "baseline"
    assert rec["run"]["notes"] == "first try" and rec["run"]["job_type"] == "eval"

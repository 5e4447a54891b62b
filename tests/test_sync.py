"""sweep sync of sweeps written before the pack store, whose runs kept wandb's offline files in their folders:
which offline wandb runs are due, the commands, skipping synced ones (wandb's `.wandb.synced` marker),
--dry-run, and running the commands in parallel (with a stand-in for `wandb` that marks what it was given as
synced, so nothing is uploaded). The pack store's runs are mirrored from the store: tests/test_tracking.py."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from conftest import sweep_cli

from sweep import sync
from sweep.sync import build_command, is_synced, offline_dirs, plan, wandb_file

pytest_plugins = ["analysis_fixtures"]  # the shared session sweeps: small_sweep, init_sweep


@pytest.fixture
def sweep_copy(small_sweep, tmp_path):
    """small_sweep in the earlier layout: a folder per run with its summary, config and one offline wandb run
    (`offline-run-<time>-<wandb id>/run-<wandb id>.wandb`, as wandb 0.31 names them)."""
    from sweep.results import config_yaml
    from sweep.store import scan

    dst = tmp_path / "copy" / small_sweep.name
    for rid, rec in scan(small_sweep).items():
        d = dst / rid
        wid = rec.summary["wandb_id"]
        offline = d / "wandb" / f"offline-run-20261206_000000-{wid}"
        offline.mkdir(parents=True)
        (offline / f"run-{wid}.wandb").write_bytes(b":W&B" + bytes(3))
        (d / "summary.json").write_text(json.dumps({k: v for k, v in rec.summary.items() if k != "wandb_id"}))
        (d / "config.yaml").write_text(config_yaml(rec.config))
        (d / "wandb_id").write_text(wid + "\n")
    return dst


@pytest.fixture(scope="module")
def wandb_server():
    """A local HTTP server that answers every request (the wandb server `sweep sync` checks before uploading)."""
    import http.server
    import threading

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _fake_wandb(tmp_path: Path, rc: int = 0, message: str = "", mark: bool = True) -> str:
    """A `wandb` stand-in: logs its argv; on success writes the .synced marker wandb-core writes (unless not
    `mark`: what wandb sync does when the server answers garbage, exiting 0 after logging an ERROR)."""
    log = tmp_path / "wandb_calls.jsonl"
    script = tmp_path / "fake_wandb.py"
    script.write_text(f"""import json, pathlib, sys, time
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
time.sleep(0.2)
if {rc}:
    print({message!r}, file=sys.stderr)
    sys.exit({rc})
if not {mark}:
    print({message!r}, file=sys.stderr)
    sys.exit(0)
for a in sys.argv[2:]:
    p = pathlib.Path(a)
    if p.is_dir():
        for w in p.glob("*.wandb"):
            w.with_suffix(".wandb.synced").write_text("")
""")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def test_our_synced_test_is_the_installed_wandb_one(sweep_copy):
    """The marker convention checked against the installed wandb's own file selection for `wandb sync`."""
    bs = pytest.importorskip("wandb.cli.beta_sync")
    runs = plan(sweep_copy)
    dirs = [r.todo[0] for r in runs[:4]]
    wandb_file(dirs[0]).with_suffix(".wandb.synced").write_text("")
    theirs = bs._find_wandb_files(dirs, skip_synced=True, skip_online=True, verbose=False)
    ours = {wandb_file(d) for d in dirs if not is_synced(wandb_file(d))}
    assert {p.resolve() for p in theirs} == {p.resolve() for p in ours} and len(ours) == 3


def test_plan_every_finished_run_has_one_offline_dir(sweep_copy):
    runs = plan(sweep_copy)
    assert len(runs) == 32
    for r in runs:
        assert r.status in ("done", "diverged", "collapsed") and r.skip_reason is None
        # one folder per process: offline-run-<time>-<wandb id>/run-<wandb id>.wandb
        assert len(r.todo) == 1 and r.todo[0].name.startswith("offline-run-")
        assert wandb_file(r.todo[0]).name == f"run-{r.todo[0].name.rsplit('-', 1)[1]}.wandb"
        cmd = build_command(r, base=["wandb"])
        assert cmd == ["wandb", "sync", str(r.todo[0])]
    r = runs[0]
    assert build_command(r, project="p", entity="e", base=["wandb"]) == [
        "wandb",
        "sync",
        "--project",
        "p",
        "--entity",
        "e",
        str(r.todo[0]),
    ]


def test_skips_synced_unfinished_and_orders_resumed_dirs(sweep_copy):
    runs = plan(sweep_copy)
    a, b, c = runs[0], runs[1], runs[2]
    # a: already synced
    log = wandb_file(a.todo[0])
    log.with_suffix(".wandb.synced").write_text("")
    assert is_synced(log)
    # b: still running
    s = json.loads((sweep_copy / b.run_id / "summary.json").read_text())
    (sweep_copy / b.run_id / "summary.json").write_text(json.dumps(dict(s, status="running")))
    # c: resumed after a requeue: a second, later offline folder for the same run
    later = c.todo[0].with_name("offline-run-29991231_235959-" + c.run_id)
    shutil.copytree(c.todo[0], later)
    # a folder without a .wandb file is not a run
    (sweep_copy / c.run_id / "wandb" / "offline-run-00000000_000000-junk").mkdir()
    again = {r.run_id: r for r in plan(sweep_copy)}
    assert again[a.run_id].skip_reason == "synced" and again[a.run_id].synced
    assert again[b.run_id].skip_reason.startswith("not finished (running)")
    assert again[c.run_id].todo == [c.todo[0], later]  # oldest first, one command
    assert build_command(again[c.run_id], base=["w"])[2:] == [str(c.todo[0]), str(later)]
    assert plan(sweep_copy, include_unfinished=True)[1].skip_reason is None
    assert offline_dirs(sweep_copy / "nope") == []


def test_dry_run_prints_commands_and_uploads_nothing(sweep_copy, tmp_path):
    env = {"SWEEP_WANDB_CMD": _fake_wandb(tmp_path)}
    first = plan(sweep_copy)[0]
    wandb_file(first.todo[0]).with_suffix(".wandb.synced").write_text("")
    p = sweep_cli("sync", str(sweep_copy), "--dry-run", env=env, check=True)
    cmds = [ln for ln in p.stdout.splitlines() if " sync " in ln and not ln.startswith("sweep:")]
    assert len(cmds) == 31
    assert all(shlex.split(c)[-1].startswith(str(sweep_copy)) for c in cmds)
    assert "would sync 31 run(s)" in p.stdout and "1 synced" in p.stdout and "dry run" in p.stdout
    assert not (tmp_path / "wandb_calls.jsonl").exists()


def test_sync_runs_commands_in_parallel_then_has_nothing_left(sweep_copy, tmp_path, wandb_server):
    env = {"SWEEP_WANDB_CMD": _fake_wandb(tmp_path), "WANDB_BASE_URL": wandb_server}
    p = sweep_cli("sync", str(sweep_copy), "--jobs", "8", "--project", "proj", env=env, check=True, timeout=120)
    assert "32 synced, 0 failed" in p.stdout, p.stdout
    calls = [json.loads(x) for x in (tmp_path / "wandb_calls.jsonl").read_text().splitlines()]
    assert len(calls) == 32 and all(c[:3] == ["sync", "--project", "proj"] for c in calls)
    assert all(r.skip_reason == "synced" for r in plan(sweep_copy))
    again = sweep_cli("sync", str(sweep_copy), env=env, check=True)
    assert "nothing to sync" in again.stdout and "32 synced" in again.stdout


def test_login_failure_stops_early_and_exits_nonzero(sweep_copy, tmp_path, wandb_server):
    env = {
        "SWEEP_WANDB_CMD": _fake_wandb(
            tmp_path, rc=1, message="Error: No API key configured. Use `wandb login` to log in."
        ),
        "WANDB_BASE_URL": wandb_server,
    }
    p = sweep_cli("sync", str(sweep_copy), "--jobs", "2", env=env, timeout=120)
    assert p.returncode == 1
    assert "No API key" in p.stdout and "not attempted" in p.stdout
    calls = (tmp_path / "wandb_calls.jsonl").read_text().splitlines()
    assert len(calls) < 32
    assert all(r.skip_reason is None for r in plan(sweep_copy))  # nothing marked synced


@pytest.mark.faults
def test_a_sync_that_exits_0_without_uploading_is_a_failure(sweep_copy, tmp_path, wandb_server):
    """`sweep sync` said "4 synced, 0 failed" when nothing was uploaded: wandb sync logs an ERROR, exits 0 and
    writes no .synced marker against a server answering garbage. The marker, not the exit status, decides."""
    fake = _fake_wandb(tmp_path, message="wandb: ERROR Error uploading run: returned error 500", mark=False)
    p = sweep_cli("sync", str(sweep_copy), "--jobs", "8", env={"SWEEP_WANDB_CMD": fake, "WANDB_BASE_URL": wandb_server})
    assert p.returncode == 1, p.stdout + p.stderr
    assert "0 synced, 32 failed" in p.stdout, p.stdout
    assert "did not mark" in p.stdout
    assert all(r.skip_reason is None for r in plan(sweep_copy))  # every run still due


def test_wandb_command_default_is_the_venv_wandb(monkeypatch):
    monkeypatch.delenv("SWEEP_WANDB_CMD", raising=False)
    cmd = sync.wandb_command()
    assert cmd and (Path(cmd[0]).name == "wandb" or cmd[-2:] == ["-m", "wandb"])
    monkeypatch.setenv("SWEEP_WANDB_CMD", "python -m wandb")
    assert sync.wandb_command() == ["python", "-m", "wandb"]


def test_no_network_is_one_line_at_once_not_a_silent_hang(sweep_copy, tmp_path):
    """A server that accepts connections and never answers (or no route at all): one line, exit 2, no upload."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        env = {
            "SWEEP_WANDB_CMD": _fake_wandb(tmp_path),
            "WANDB_BASE_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
        }
        p = sweep_cli("sync", str(sweep_copy), "--connect-timeout", "2", env=env, timeout=60)
    finally:
        silent.close()
    assert p.returncode == 2
    assert "did not answer within 2 s" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "wandb_calls.jsonl").exists()

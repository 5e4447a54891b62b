"""cluster.backend=slurm against the REAL one-node cluster of `slurm/dev-cluster-up` (no mocked sbatch).

Every test runs the real CLI (`sweep run -m ... cluster=dev`) from the repo root, lets the array tasks run on the
cluster and reads what they left: sweep.json, the store (sweep.store), submitit's logs, sacct. The cluster is
expected with SLURM_MAX_ARRAY=8 (chunking test) and 2 fake GPUs (gpu test), as the project's dev cluster is started.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, make_cfg, slurm_problem, sweep_cli

_problem = slurm_problem()
if _problem:
    pytest.skip(
        f"!!! SLURM not available: start it with slurm/dev-cluster-up ({_problem}) !!!", allow_module_level=True
    )

from store_helpers import stopped_at  # noqa: E402

from sweep import store  # noqa: E402
from sweep.config import run_id  # noqa: E402
from sweep.launch.queue import max_array_size, wait_for_jobs  # noqa: E402
from sweep.launch.slurm import _executor, _task_pack_size  # noqa: E402
from sweep.launch.worker import PackJob  # noqa: E402
from sweep.packing import AUTO_PACK_CPU, AUTO_PACK_GPU  # noqa: E402

pytestmark = pytest.mark.slurm

FAST = ["epochs=1", "model.hidden=[16]", "wandb.mode=disabled"]
JOB_TIMEOUT_S = 180


# ---------------------------------------------------------------------------------------------- helpers
def submit(out_dir: Path, *overrides: str, check: bool = True) -> tuple[subprocess.CompletedProcess, Path | None]:
    """`sweep run -m <overrides> cluster=dev out_dir=<out_dir>` from the repo root; returns (process, sweep_dir)."""
    proc = sweep_cli("run", "-m", *overrides, "cluster=dev", f"out_dir={out_dir}", cwd=REPO, timeout=300)
    if check:
        assert proc.returncode == 0, f"sweep run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    m = re.search(r"^sweep: \d+ runs -> (.+)$", proc.stdout, flags=re.M)
    return proc, (Path(m.group(1)) if m else None)


def record(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep.json").read_text())


def wait(sweep_dir: Path, timeout_s: float = JOB_TIMEOUT_S) -> list[str]:
    """Wait for every array of the sweep to leave the queue; returns the array job ids."""
    ids = [j for sub in record(sweep_dir).get("slurm", []) for j in sub["job_ids"]]
    assert wait_for_jobs(ids, timeout_s=timeout_s, poll_s=1), f"jobs {ids} still queued after {timeout_s} s"
    return ids


def sacct_states(job_id: str, tasks: int = 1, timeout_s: float = 30) -> dict[str, str]:
    """Task id -> final state from the accounting database, once `tasks` tasks are recorded there in a final
    state (slurmdbd records them asynchronously, one by one)."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-j", str(job_id), "-o", "JobID,State"], capture_output=True, text=True
        ).stdout
        states = dict(line.split("|", 1) for line in out.splitlines() if line.strip())
        if len(states) >= tasks and all(
            s.split()[0] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY") for s in states.values()
        ):
            return states
        if time.monotonic() > deadline:
            return states
        time.sleep(1)


def summaries(sweep_dir: Path) -> dict[str, dict]:
    """Run id -> the newest summary the sweep's store holds (a corrupt one fails the test)."""
    records = store.scan(sweep_dir)
    assert not [r.problem for r in records.values() if r.problem], {k: r.problem for k, r in records.items()}
    return {rid: r.summary for rid, r in records.items() if r.summary is not None}


def queued_ids() -> set[str]:
    out = subprocess.run(["squeue", "--me", "-h", "-r", "-o", "%i"], capture_output=True, text=True).stdout
    return set(out.split())


def hint(stdout: str, command: str) -> list[str]:
    """The printed follow-up line starting with `command`, split as a POSIX shell would split it."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip().startswith(command + " ")]
    assert len(lines) == 1, stdout
    return shlex.split(lines[0])


def tail_path(stdout: str) -> Path:
    words = hint(stdout, "tail -f")
    assert len(words) == 3, words
    return Path(words[2])


def logs(sweep_dir: Path, suffix: str = "out") -> str:
    return "\n".join(p.read_text() for p in sorted((sweep_dir / "submitit").glob(f"*_log.{suffix}")))


# ---------------------------------------------------------------------------------------------- one packed array
@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """8 configs, pack=4: queued as ONE array of 2 tasks and run to completion (shared by several tests)."""
    out = tmp_path_factory.mktemp("packed")
    args = ["lr=0.05,0.1", "seed=0,1,2,3", "pack=4", *FAST]
    t0 = time.monotonic()
    proc, sweep_dir = submit(out, *args)
    submit_s = time.monotonic() - t0
    ids = wait(sweep_dir)
    return {"out": out, "args": args, "proc": proc, "dir": sweep_dir, "ids": ids, "submit_s": submit_s}


def test_grid_is_one_array_and_completes(packed):
    sweep_dir, rec = packed["dir"], record(packed["dir"])
    assert {"name", "grid_key", "runs", "argv"} <= set(rec)  # launch_grid's keys are kept
    assert len(rec["slurm"]) == 1 and len(rec["slurm"][0]["job_ids"]) == 1
    array = rec["slurm"][0]["job_ids"][0]
    assert "queued 2 pack(s) as SLURM job array " + array in packed["proc"].stdout
    for hint in ("squeue --me", f"sweep status {sweep_dir}", f"tail -f {sweep_dir}/submitit/{array}_0_0_log.out"):
        assert hint in packed["proc"].stdout
    assert tail_path(packed["proc"].stdout).is_file()
    states = sacct_states(array, tasks=2)
    assert states == {f"{array}_0": "COMPLETED", f"{array}_1": "COMPLETED"}, states
    s = summaries(sweep_dir)
    assert len(s) == 8 and {v["status"] for v in s.values()} == {"done"}
    assert {r["run_id"] for r in rec["runs"]} == set(s)


def test_packs_of_four_make_two_array_tasks(packed):
    rec = record(packed["dir"])
    packs = rec["slurm"][0]["packs"]
    assert [p["index"] for p in packs] == [0, 1]
    assert [len(p["run_ids"]) for p in packs] == [4, 4]
    assert {r for p in packs for r in p["run_ids"]} == {r["run_id"] for r in rec["runs"]}
    assert {v["pack_size"] for v in summaries(packed["dir"]).values()} == {4}
    assert len(list((packed["dir"] / "submitit").glob("*_submitted.pkl"))) == 2


def test_resubmission_skips_finished_runs(packed):
    sweep_dir = packed["dir"]
    mtimes = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("packs/*/*")}  # every file of every pack
    assert len(list(sweep_dir.glob("packs/*/summary.json"))) == 2
    before = queued_ids()
    proc, again = submit(packed["out"], *packed["args"])
    assert again == sweep_dir  # the same grid continues its sweep folder
    assert "nothing to submit (8 already finished)" in proc.stdout
    assert queued_ids() <= before  # no new job
    assert len(record(sweep_dir)["slurm"]) == 1
    assert {p: p.stat().st_mtime_ns for p in sweep_dir.glob("packs/*/*")} == mtimes


def test_tasks_import_the_code_snapshot_not_the_checkout(packed):
    """The CLI ran from the repo root (where `python -m` would put ./sweep first on sys.path) with the editable
    install active; the tasks must still import the copy made at submission."""
    sweep_dir, rec = packed["dir"], record(packed["dir"])
    code = Path(rec["slurm"][0]["code"])
    assert code.parent == sweep_dir / "code" and (code / "sweep" / "__init__.py").is_file()
    assert (code / "sweep" / "launch" / "slurm.py").read_bytes() == (REPO / "sweep/launch/slurm.py").read_bytes()
    used = re.findall(r"sweep_code=(\S+)", logs(sweep_dir))
    assert len(used) == 2 and set(used) == {str(code / "sweep")}, used
    assert json.loads((code / "SOURCE.json").read_text())["source"] == str(REPO / "sweep")


# ---------------------------------------------------------------------------------------------- chunking
def test_more_packs_than_max_array_size_are_chunked(tmp_path):
    max_array = max_array_size()
    if max_array != 8:
        pytest.skip(f"needs the dev cluster's MaxArraySize=8 (SLURM_MAX_ARRAY=8 slurm/dev-cluster-up), not {max_array}")
    lrs = ",".join(f"{0.01 * (i + 1):.2f}" for i in range(10))
    proc, sweep_dir = submit(tmp_path, f"lr={lrs}", "pack=1", *FAST)
    sub = record(sweep_dir)["slurm"][0]
    assert len(sub["job_ids"]) == 2 and sub["max_array_size"] == 8
    by_array = {a: [p["index"] for p in sub["packs"] if p["array_job_id"] == a] for a in sub["job_ids"]}
    assert sorted(map(len, by_array.values())) == [2, 8]
    assert all(idx == list(range(len(idx))) for idx in by_array.values())
    assert "2 SLURM job arrays" in proc.stdout
    wait(sweep_dir)
    s = summaries(sweep_dir)
    assert len(s) == 10 and {v["status"] for v in s.values()} == {"done"}
    assert {v["pack_size"] for v in s.values()} == {1}


# ---------------------------------------------------------------------------------------------- requeue
def test_requeued_run_resumes_bit_identically(tmp_path):
    """SIGUSR2 mid-training (what SLURM sends before a time limit or preemption): the pack checkpoints at its
    next sync point, submitit requeues the task, and the rerun resumes to exactly the uninterrupted result."""
    long = [
        "epochs=500",
        "model.hidden=[128,128]",
        "log_every=5",
        "checkpoint_every=50",
        "wandb.mode=disabled",
        "name=requeue",
    ]
    proc, sweep_dir = submit(tmp_path / "slurm", *long)
    # the reference, trained uninterrupted here meanwhile, with the task's thread count (1 CPU per task)
    ref = subprocess.Popen(
        [sys.executable, "-m", "sweep.cli", "run", *long, f"out_dir={tmp_path / 'local'}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, SLURM_CPUS_PER_TASK="1"),
    )
    job = record(sweep_dir)["slurm"][0]["packs"][0]["job_id"]
    rid = record(sweep_dir)["runs"][0]["run_id"]
    deadline = time.monotonic() + 120
    while (store.summary(sweep_dir, rid) or {}).get("step", 0) < 200:
        assert time.monotonic() < deadline, "the run never started training on the cluster"
        time.sleep(0.5)
    # submitit's own Job._interrupt() does the same: signal the job's steps (where python runs), not the batch shell
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    wait(sweep_dir)
    ref_out, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, ref_out

    log = logs(sweep_dir) + logs(sweep_dir, "err")
    assert "caught SIGUSR2: checkpointing the pack" in log
    total = store.summary(sweep_dir, rid)["total_steps"]
    assert re.search(rf"stopped at step \d+ of {total}; checkpoints saved", log)
    assert "Requeued job" in log and "SLURM_RESTART_COUNT=1" in log
    stopped = int(re.search(r"stopped at step (\d+)", log).group(1))
    assert 0 < stopped < total

    got = store.summary(sweep_dir, rid)
    want = store.summary(tmp_path / "local" / "requeue", rid)
    assert got["status"] == want["status"] == "done"
    # resumed, not restarted: deterministic training gives the same bits either way, so ask the finishing
    # process where it started (a restart from scratch would say 0 and train every step)
    assert got["resumed_from_step"] == stopped > 0, (got.get("resumed_from_step"), stopped)
    assert got["resumed_from_step"] + got["steps_this_process"] == got["total_steps"] == total
    assert got["final_test_loss"] == want["final_test_loss"]  # bit-identical floats
    assert got["final_train_loss"] == want["final_train_loss"]
    h_got = store.history(sweep_dir, rid)
    h_want = store.history(tmp_path / "local" / "requeue", rid)
    assert len(h_got) > 0
    pd.testing.assert_frame_equal(h_got, h_want, check_exact=True)


# ---------------------------------------------------------------------------------------------- failures
def test_failing_run_does_not_stop_its_pack(tmp_path):
    args = ["lr=0.1,0.2,0.3", "pack=3", "name=failpack", *FAST]
    bad_cfg = make_cfg(tmp_path, "lr=0.2", "pack=3", "name=failpack", *FAST)
    bad = run_id(bad_cfg)
    # an earlier pack stopped at step 3 with the run in its checkpoint, which is garbage: the run resumes from it
    stopped_at(bad_cfg, 3, b"this is not a torch checkpoint")
    proc, sweep_dir = submit(tmp_path, *args)
    sub = record(sweep_dir)["slurm"][0]
    assert len(sub["packs"]) == 1 and bad in sub["packs"][0]["run_ids"]  # the bad run shares the pack
    ids = wait(sweep_dir)
    assert set(sacct_states(ids[0]).values()) == {"COMPLETED"}
    s = summaries(sweep_dir)
    assert s[bad]["status"] == "failed" and s[bad]["traceback"].strip()
    others = {k: v for k, v in s.items() if k != bad}
    assert len(others) == 2 and {v["status"] for v in others.values()} == {"done"}
    assert {v["pack_size"] for v in others.values()} == {3}


def test_invalid_grid_submits_nothing(tmp_path):
    before = queued_ids()
    proc, _ = submit(tmp_path / "runs", "lr=0.1,fast", *FAST, check=False)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweep: error:") and "lr=fast" in lines[0], proc.stderr
    assert queued_ids() <= before
    # no sweep folder (Hydra's own multirun.yaml in out_dir/.hydra is written before any launcher runs)
    assert not [p for p in (tmp_path / "runs").glob("*") if p.name != ".hydra"]


def test_sbatch_refusal_is_one_line(tmp_path):
    proc, _ = submit(tmp_path, "lr=0.1,0.2", *FAST, "cluster.partition=no_such_partition", check=False)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "sbatch refused the job array" in lines[0] and "nothing was submitted" in lines[0]


# ---------------------------------------------------------------------------------------------- sbatch script
def test_sbatch_script_runs_a_grid_in_one_allocation(tmp_path):
    """`sbatch --wait slurm/sweep.sbatch <overrides>` from the repo root, with the venv NOT on PATH: the script
    activates the submit directory's .venv itself."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if ".venv" not in p)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = path
    out = tmp_path / "job.out"
    proc = subprocess.run(
        [
            "sbatch",
            "--wait",
            f"--output={out}",
            "slurm/sweep.sbatch",
            "lr=0.1,0.2",
            *FAST,
            f"out_dir={tmp_path / 'runs'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
    )
    text = out.read_text() if out.exists() else ""
    assert proc.returncode == 0, f"{proc.stdout}{proc.stderr}\n{text}"
    assert "sweep.sbatch: job" in text and "'done': 2" in text, text
    sweeps = [d for d in (tmp_path / "runs").iterdir() if d.is_dir() and d.name != ".hydra"]
    s = {k: v for d in sweeps for k, v in summaries(d).items()}
    assert len(s) == 2 and {v["status"] for v in s.values()} == {"done"}
    assert {v["slurm_job_id"] for v in s.values()} == {re.search(r"job (\d+)", proc.stdout).group(1)}


# ---------------------------------------------------------------------------------------------- gpus, wait
def test_gpu_request_gets_a_fake_gpu_and_auto_device_falls_back_to_cpu(tmp_path):
    """gpus_per_node=1 is scheduled on the dev node's fake GPU (CUDA_VISIBLE_DEVICES set); this torch has no
    CUDA, so device=auto trains on the CPU. cluster.wait=true: the CLI returns after the job, with a summary."""
    proc, sweep_dir = submit(tmp_path, "lr=0.1", *FAST, "device=auto", "cluster.gpus_per_node=1", "cluster.wait=true")
    assert "waiting for job(s)" in proc.stdout and "{'done': 1}" in proc.stdout, proc.stdout
    assert not (set(record(sweep_dir)["slurm"][0]["job_ids"]) & {i.split("_")[0] for i in queued_ids()})
    script = next((sweep_dir / "submitit").glob("*_submission.sh")).read_text()
    assert "#SBATCH --gpus-per-node=1" in script
    assert re.search(r"CUDA_VISIBLE_DEVICES=0\b", logs(sweep_dir)), logs(sweep_dir)
    (s,) = summaries(sweep_dir).values()
    assert s["status"] == "done" and s["device"] == "cpu"


# ---------------------------------------------------------------------------------------------- parameters
def test_every_cluster_field_reaches_sbatch(tmp_path):
    """The mapping ClusterConfig -> sbatch flags (no job: this cluster has no accounts or qos to accept them)."""
    cluster = {
        "name": "x",
        "backend": "slurm",
        "partition": "gpu",
        "account": "lab",
        "qos": "short",
        "timeout_min": 90,
        "cpus_per_task": 8,
        "mem_gb": 32.0,
        "gpus_per_node": 2,
        "constraint": "a100",
        "array_parallelism": 5,
        "max_num_timeout": 7,
        "additional_parameters": {"mail-type": "END"},
        "setup": ["module load cuda"],
        "wait": False,
    }
    ex = _executor(cluster, tmp_path / "s", tmp_path / "code")
    text = ex._executor._make_submission_file_text("CMD", "uid")
    for flag in (
        "--partition=gpu",
        "--account=lab",
        "--qos=short",
        "--time=90",
        "--cpus-per-task=8",
        "--mem=32GB",
        "--gpus-per-node=2",
        "--constraint=a100",
        "--mail-type=END",
        "--job-name=s",
    ):
        assert f"#SBATCH {flag}" in text, (flag, text)
    assert text.index("module load cuda") < text.index(f"export PYTHONPATH={tmp_path / 'code'}")
    assert ex._executor.max_num_timeout == 7 and ex._executor.parameters["array_parallelism"] == 5
    bare = _executor(
        dict(cluster, account=None, qos=None, mem_gb=None, gpus_per_node=0, constraint=None, additional_parameters={}),
        tmp_path / "s",
        tmp_path / "code",
    )
    text = bare._executor._make_submission_file_text("CMD", "uid")
    for flag in ("--account", "--qos", "--mem", "--gpus-per-node", "--constraint"):
        assert f"#SBATCH {flag}" not in text
    assert callable(PackJob(str(tmp_path)))


def test_pack_auto_is_sized_for_the_task_device_not_the_submit_host():
    cpu = {"pack": "auto", "cluster": {"gpus_per_node": 0}}
    gpu = {"pack": "auto", "cluster": {"gpus_per_node": 1}}
    assert _task_pack_size(cpu) == AUTO_PACK_CPU and _task_pack_size(gpu) == AUTO_PACK_GPU
    assert _task_pack_size(dict(gpu, pack=3)) == 3


def test_wait_flag_blocks_until_the_sweep_is_done(tmp_path):
    proc, sweep_dir = submit(tmp_path, "lr=0.05,0.1", "pack=2", *FAST, "--wait")
    s = summaries(sweep_dir)  # without --wait the command returns while the jobs are still queued
    assert len(s) == 2 and {v["status"] for v in s.values()} == {"done"}


# ---------------------------------------------------------------------------------------------- printed hints
def test_single_pack_tail_hint_names_the_real_log(tmp_path):
    """One pack is submitted as a plain job (no array): its log is `<job>_0_log.out`, not `<job>_0_0_log.out`."""
    proc, sweep_dir = submit(tmp_path, "lr=0.1,0.2", "pack=2", *FAST)
    job = record(sweep_dir)["slurm"][0]["packs"][0]["job_id"]
    assert "_" not in job  # a plain job, as the test intends
    log = tail_path(proc.stdout)
    wait(sweep_dir)
    assert log == sweep_dir / "submitit" / f"{job}_0_log.out"
    assert log.is_file() and "pack finished" in log.read_text()


def test_printed_hints_quote_paths(tmp_path):
    """A sweep folder whose path holds a space and `$(...)`: every printed path survives copy-paste into a
    shell as ONE word, and nothing in it would run."""
    out = tmp_path / "my runs"
    name = "x$(touch PWNED)"
    proc, sweep_dir = submit(out, "lr=0.1", *FAST, f"name='{name}'")
    assert sweep_dir is not None and sweep_dir.name == name, proc.stdout
    assert hint(proc.stdout, "sweep status") == ["sweep", "status", str(sweep_dir)]
    assert tail_path(proc.stdout).parent == sweep_dir / "submitit"
    wait(sweep_dir)
    assert tail_path(proc.stdout).is_file()
    assert not list(tmp_path.rglob("PWNED")) and not (REPO / "PWNED").exists()  # the job scripts ran nothing
    local = sweep_cli(
        "run", "-m", "lr=0.1,0.2", *FAST, f"name='{name}'", f"out_dir={tmp_path / 'local runs'}", cwd=REPO, timeout=300
    )
    assert local.returncode == 0, local.stderr
    m = re.search(r"`(sweep status .*)` for the table", local.stdout)
    assert m and shlex.split(m.group(1)) == ["sweep", "status", str(tmp_path / "local runs" / name)], local.stdout


# ---------------------------------------------------------------------------------------------- refusals
def test_sbatch_refusal_leaves_no_sweep_behind(tmp_path):
    """Nothing queued: no sweep.json (`sweep status` would list phantom pending runs), no code snapshot."""
    proc, _ = submit(tmp_path / "runs", "lr=0.1,0.2", *FAST, "cluster.partition=nosuchpartition", check=False)
    assert proc.returncode == 2 and "sbatch refused" in proc.stderr, proc.stderr
    assert [p.name for p in (tmp_path / "runs").glob("*") if p.name != ".hydra"] == [], sorted(
        str(p) for p in (tmp_path / "runs").rglob("*")
    )


def test_sbatch_refusal_restores_the_previous_sweep_record(tmp_path):
    """A refused submission into an existing sweep folder puts its sweep.json back as it was and leaves no
    new snapshot or submitit files; what was there before stays."""
    first = sweep_cli("run", "-m", "lr=0.1", *FAST, "name=refused", f"out_dir={tmp_path}", cwd=REPO)
    assert first.returncode == 0, first.stderr
    sweep_dir = tmp_path / "refused"
    before_json = (sweep_dir / "sweep.json").read_bytes()
    before = sorted(p.relative_to(sweep_dir) for p in sweep_dir.rglob("*"))
    proc, _ = submit(tmp_path, "lr=0.2,0.3", *FAST, "name=refused", "cluster.partition=nosuchpartition", check=False)
    assert proc.returncode == 2 and "sbatch refused" in proc.stderr, proc.stderr
    assert (sweep_dir / "sweep.json").read_bytes() == before_json
    assert sorted(p.relative_to(sweep_dir) for p in sweep_dir.rglob("*")) == before


# ---------------------------------------------------------------------------------------------- early stop signals
def _wait_for(pred, timeout_s: float, what: str, poll_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll_s)


def _assert_requeued_and_done(sweep_dir: Path, job: str) -> None:
    wait(sweep_dir)
    log = logs(sweep_dir) + logs(sweep_dir, "err")
    assert sacct_states(job) == {job: "COMPLETED"}, (sacct_states(job), log)
    assert "during the task's start-up: requeueing before training" in log, log
    assert "SLURM_RESTART_COUNT=1" in log, log
    s = summaries(sweep_dir)
    assert len(s) == 1 and {v["status"] for v in s.values()} == {"done"}, s
    assert {v["resumed_from_step"] for v in s.values()} == {0}  # nothing had trained before the stop


def test_usr2_while_the_task_unpickles_its_job_still_requeues(tmp_path):
    """USR2 to the job's step right after submitit starts loading the pickle (imports torch: > 1 s), before
    submitit installs its own handler: the task must requeue and the run finish, not die FAILED 12:0."""
    proc, sweep_dir = submit(tmp_path, "lr=0.1", *FAST)
    job = record(sweep_dir)["slurm"][0]["packs"][0]["job_id"]
    folder = sweep_dir / "submitit"
    _wait_for(lambda: "Loading pickle" in logs(sweep_dir) + logs(sweep_dir, "err"), 60, "the task to start")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    _assert_requeued_and_done(sweep_dir, job)
    assert not list(folder.glob("*.preempted"))  # the marker was consumed


def test_usr2_to_the_batch_shell_during_setup_still_requeues(tmp_path):
    """USR2 to the batch shell while it runs the setup lines (before srun starts the task): recorded there,
    and the task requeues as soon as it starts, instead of the shell dying."""
    proc, sweep_dir = submit(tmp_path, "lr=0.1", *FAST, "cluster.setup=[sleep 4]")
    job = record(sweep_dir)["slurm"][0]["packs"][0]["job_id"]
    _wait_for(lambda: queued_state(job) == "RUNNING", 60, "the job to run", poll_s=0.2)
    time.sleep(0.5)  # into `sleep 4`
    subprocess.run(["scancel", "--batch", "--signal=USR2", job], check=True)
    _assert_requeued_and_done(sweep_dir, job)


def queued_state(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout
    return out.strip()


def test_a_students_optimizer_runs_as_a_slurm_array_from_the_submission_directory(tmp_path):
    """optimizer=custom on the cluster: the array tasks import the student's module from the directory the
    sweep was submitted from (where `python -m` would find it), beside the built-in optimizer it is compared to."""
    from test_custom_optimizer import MY_ADAM

    (tmp_path / "hw1").mkdir()
    (tmp_path / "hw1" / "__init__.py").write_text("")
    (tmp_path / "hw1" / "optim.py").write_text(MY_ADAM)
    out = tmp_path / "runs"
    p = sweep_cli(
        "run",
        "-m",
        "optimizer=custom,adam",
        "optimizer.cls=hw1.optim.MyAdam",
        "seed=0,1",
        *FAST,
        "cluster=dev",
        "cluster.wait=true",
        f"out_dir={out}",
        "name=hw",
        cwd=tmp_path,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    got = list(summaries(out / "hw").values())
    assert len(got) == 4 and {s["status"] for s in got} == {"done"}, got
    assert all(s["slurm_job_id"] for s in got)

"""The launch modules without a cluster: queue queries answered by a stand-in `squeue`, what a submission prints,
and the worker's stop-signal handling within this process."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from sweep.launch.queue import active_tasks, squeue_states
from sweep.launch.slurm import _print_submission, _queued_elsewhere
from sweep.launch.worker import StopSignal, _StopGraceExpired


@pytest.fixture
def fake_squeue(tmp_path, monkeypatch):
    """Put a `squeue` that prints the given text first on PATH; returns a function taking that text."""
    bindir = tmp_path / "bin"
    bindir.mkdir()

    def answer(stdout: str) -> None:
        (bindir / "squeue.out").write_text(stdout)
        script = bindir / "squeue"
        script.write_text(
            f"#!{sys.executable}\nimport sys\nsys.stdout.write(open({str(bindir / 'squeue.out')!r}).read())\n"
        )
        script.chmod(0o755)

    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return answer


def test_the_queue_is_read_one_way_with_array_ranges_expanded(fake_squeue):
    """A pending array's tasks may come as one range line; the submission's view of the queue (active_tasks)
    and status's (squeue_states) are the same parse, so a run pending in a range is known to be queued."""
    fake_squeue("41_0|RUNNING|None\n41_[2-3%1]|PENDING|JobArrayTaskLimit\n")
    assert active_tasks() == {"41_0": "RUNNING", "41_2": "PENDING", "41_3": "PENDING"}
    assert squeue_states()["41_3"].reason == "JobArrayTaskLimit"
    record = {"slurm": [{"packs": [{"job_id": "41_3", "run_ids": ["r3"]}, {"job_id": "41_1", "run_ids": ["r1"]}]}]}
    assert _queued_elsewhere(record, active_tasks()) == {"r3": "41_3"}  # not submitted a second time


def test_a_failing_squeue_means_an_empty_queue(fake_squeue, tmp_path):
    fake_squeue("")
    (tmp_path / "bin" / "squeue").write_text("#!/bin/sh\nexit 1\n")
    assert active_tasks() == {} and squeue_states() is None


def test_the_submission_counts_collapsed_runs_as_finished(capsys, tmp_path):
    results = [
        {"run_id": "a", "status": "done", "slurm_job_id": None},
        {"run_id": "b", "status": "collapsed", "slurm_job_id": None},
        {"run_id": "c", "status": "diverged", "slurm_job_id": None},
    ]
    _print_submission([{}] * 3, results, tmp_path, {}, {}, 0.1)
    out = capsys.readouterr().out
    assert "nothing to submit (3 already finished)" in out
    assert "to train them again, give the sweep a new folder: add name=<new name>" in out  # not a dead end


# ------------------------------------------------------------------------------------------------ the worker
@pytest.fixture
def usr2_handler():
    """SIGUSR2 handled by a recorder (standing in for submitit's handler) for the test; restored after."""
    calls = []
    before = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    yield calls
    signal.signal(signal.SIGUSR2, before)
    signal.setitimer(signal.ITIMER_REAL, 0)


def test_stop_signal_raises_a_flag_then_hands_over_to_the_previous_handler(usr2_handler):
    stop = StopSignal(signal.SIGUSR2, grace_s=30)
    alarm_before = signal.getsignal(signal.SIGALRM)
    stop.install()
    os.kill(os.getpid(), signal.SIGUSR2)
    assert stop.requested and usr2_handler == []  # training goes on to its next sync point
    stop.cancel_grace()
    stop.pass_on()
    assert usr2_handler == [signal.SIGUSR2]  # submitit's handler: checkpoint and requeue
    stop.restore()
    assert signal.getsignal(signal.SIGALRM) is alarm_before
    assert signal.getsignal(signal.SIGUSR2) is stop.previous


def test_stop_signal_gives_up_waiting_for_a_sync_point_after_its_grace(usr2_handler):
    stop = StopSignal(signal.SIGUSR2, grace_s=0.05)
    stop.install()
    try:
        with pytest.raises(_StopGraceExpired, match=r"no sync point within 0\.05 s"):
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(5)
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGUSR2) is not stop._handler


def test_a_handed_over_stop_ignores_its_grace_alarm(usr2_handler):
    stop = StopSignal(signal.SIGUSR2, grace_s=0.05)
    stop.install()
    os.kill(os.getpid(), signal.SIGUSR2)
    stop.handed_over = True  # as cancel_grace, but leaving the alarm armed: it must not raise
    time.sleep(0.2)
    stop.restore()

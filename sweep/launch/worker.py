"""What runs on a compute node: the SLURM array task that trains one pack (`PackJob`), and its stop handling.

Preemption and time limits: SLURM (or `scancel --signal=USR2 <job>`) sends SIGUSR2 to the task. submitit's own
handler would checkpoint the *callable* and requeue at once, in the middle of an optimizer step. While training,
`StopSignal` replaces it with a handler that only raises a flag; the engine sees the flag at its next sync point,
checkpoints every run of the pack and raises Interrupted; then PackJob hands the signal back to submitit's
handler, which pickles `PackJob(same pack)` again and requeues the task. The requeued task skips finished runs and
resumes the others from their checkpoints, bit-identically. Should no sync point come within STOP_GRACE_S (60 s,
before SLURM's kill 90 s after the signal), the task requeues anyway and resumes from the last periodic
checkpoints.

A stop signal that arrives before PackJob runs (while the batch shell runs its setup lines, or while the task's
Python starts and unpickles the job, before submitit installs its handler) would kill the task unrequeued. The
batch script's first setup line traps it in the shell (sweep.launch.slurm writes it), and the task's Python
starts with a handler installed before any import (EARLY_TRAP); both only record it in a marker file
($SWEEP_PREEMPT_MARK), and PackJob, on finding the marker, requeues before training.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import submitit

from sweep.provenance import slurm_job_id
from sweep.runner import train_runs

STOP_GRACE_S = float(os.environ.get("SWEEP_STOP_GRACE_S", 60))  # < submitit's 90 s between USR2 and the kill
PREEMPT_MARK_ENV = "SWEEP_PREEMPT_MARK"

# The task's Python runs this before anything else (submitit's `python` command, see slurm._task_python): a stop
# signal during start-up is recorded in the marker instead of killing the process (Python's default for USR2),
# then submitit's own entry point runs exactly as `python -u -m submitit.core._submit <folder>` would.
EARLY_TRAP = """\
import os, signal, sys
def _sweep_early_stop(signum, frame):
    try:
        open(os.environ["SWEEP_PREEMPT_MARK"], "a").close()
    except (KeyError, OSError):
        pass
signal.signal(getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")), _sweep_early_stop)
sys.argv = ["submitit", sys.argv[-1]]
from submitit.core.submission import submitit_main
submitit_main()
"""


class _StopGraceExpired(BaseException):
    """The pack did not reach a sync point in time after the stop signal (a BaseException, so that train_runs,
    which records Exceptions as failed runs, lets it through)."""


class StopSignal:
    """The preemption signal while a pack trains: `requested` turns true when it arrives, and STOP_GRACE_S later
    (no sync point reached) SIGALRM raises _StopGraceExpired, unless the stop has been handed over by then.

    install() takes over the signal (keeping the handler it replaces: submitit's); pass_on() gives it back and
    calls that handler, which checkpoints the job, requeues it and exits; restore() puts back both handlers as
    they were."""

    def __init__(self, sig: signal.Signals, grace_s: float = STOP_GRACE_S) -> None:
        self.sig = sig
        self.grace_s = grace_s
        self.requested = False
        self.handed_over = False
        self.previous: Any = None  # the handler install() replaced
        self._previous_alarm: Any = None
        self._handler = self._on_signal  # one bound method, so that `is` can tell it is still installed

    def install(self) -> None:
        if signal.getsignal(self.sig) is not self._handler:
            self.previous = signal.signal(self.sig, self._handler)
            self._previous_alarm = signal.getsignal(signal.SIGALRM)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested = True
        print(f"sweep: caught {signal.Signals(signum).name}: checkpointing the pack at the next sync point", flush=True)
        signal.signal(signal.SIGALRM, self._on_grace_expired)
        signal.setitimer(signal.ITIMER_REAL, self.grace_s)

    def _on_grace_expired(self, signum: int, frame: Any) -> None:
        if self.handed_over:
            return
        raise _StopGraceExpired(
            f"no sync point within {self.grace_s:g} s of the stop signal; requeueing from the last periodic checkpoints"
        )

    def pass_on(self) -> None:
        """Give the signal back to the handler install() replaced and call it (submitit: checkpoint() ->
        requeue -> sys.exit, or raise if out of requeues); returns only where there was no such handler."""
        signal.signal(self.sig, self.previous)
        if callable(self.previous):
            self.previous(self.sig, None)

    def cancel_grace(self) -> None:
        """The pack is checkpointed (or given up on): the grace alarm must not fire while it is handed over."""
        self.handed_over = True
        signal.setitimer(signal.ITIMER_REAL, 0)

    def restore(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous_alarm)
        if signal.getsignal(self.sig) is self._handler:
            signal.signal(self.sig, self.previous)


@contextlib.contextmanager
def stoppable(submit_dir: str, log: Callable[[], None]) -> Iterator[StopSignal]:
    """A task's training, stopped on the preemption signal: enter the submission directory (srun starts the task
    in the code snapshot; runs use the submission dir), log, install the signal; when training stops on it
    (checkpoints written: Interrupted), hand the signal to submitit, which requeues the task."""
    from sweep.errors import Interrupted

    try:
        os.chdir(submit_dir)
    except OSError as e:
        print(f"sweep: cannot enter the submission directory ({e}); staying in {os.getcwd()}", flush=True)
    stop = StopSignal(preempt_signal())
    stop.install()
    log()
    if _take_early_stop():
        print(f"sweep: caught {stop.sig.name} during the task's start-up: requeueing before training", flush=True)
        stop.pass_on()
        stop.requested = True  # not under submitit: stop at the first sync point instead
        stop.install()
    try:
        yield stop
    except (Interrupted, _StopGraceExpired) as e:
        stop.cancel_grace()
        print(f"sweep: {e}; handing over to submitit to requeue", flush=True)
        stop.pass_on()
        raise
    finally:
        stop.restore()


class PackJob(submitit.helpers.Checkpointable):
    """One array task: train one pack of runs; on SIGUSR2 checkpoint them all consistently, then requeue."""

    def __init__(self, submit_dir: str, auto: bool = False) -> None:
        self.submit_dir = submit_dir
        self.auto = auto  # pack=auto: let the runner size K for this task's device memory

    def __call__(self, pack_cfgs: list[dict]) -> list[dict]:
        with stoppable(self.submit_dir, lambda: _log_start(pack_cfgs)) as stop:
            pack = "auto" if self.auto else len(pack_cfgs)
            summaries = train_runs(pack_cfgs, pack=pack, should_stop=lambda: stop.requested, progress=False)
        out = [
            {"run_id": s.get("run_id"), "status": s.get("status"), "final_test_loss": s.get("final_test_loss")}
            for s in summaries
        ]
        print(f"sweep: pack finished: {dict(Counter(s['status'] for s in out))}", flush=True)
        return out

    def checkpoint(self, pack_cfgs: list[dict]) -> submitit.helpers.DelayedSubmission:
        """Rerun the same pack after the requeue: finished runs are skipped, the others resume from checkpoints."""
        return submitit.helpers.DelayedSubmission(self, pack_cfgs)


def preempt_signal() -> signal.Signals:
    """The signal submitit is told SLURM sends before a preemption or time limit (SUBMITIT_PREEMPT_SIGNAL)."""
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"))


def _take_early_stop() -> bool:
    """True (once: the marker is removed) when a stop signal reached this task before PackJob started."""
    mark = os.environ.get(PREEMPT_MARK_ENV)
    if not mark or not os.path.exists(mark):
        return False
    with contextlib.suppress(OSError):
        os.remove(mark)
    return True


def _log_start(pack_cfgs: list[dict]) -> None:
    import sweep

    env = os.environ
    print(
        f"sweep: task {slurm_job_id() or '?'} on {socket.gethostname()}: {len(pack_cfgs)} run(s); "
        f"SLURM_RESTART_COUNT={env.get('SLURM_RESTART_COUNT', '0')} "
        f"SLURM_CPUS_PER_TASK={env.get('SLURM_CPUS_PER_TASK', '-')} "
        f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '-')} "
        f"sweep_code={Path(sweep.__file__).resolve().parent}",
        flush=True,
    )

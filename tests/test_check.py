"""`sweep check MODULE.CLS --like X`, end to end: a student's module sits in the working directory, the real CLI
checks it against torch.optim, and the verdict is the exit status, the table and, for a failure, the first step
where the trajectories part and the likely cause. The student modules are tests/check_fixtures/*.py: correct
optimizers (myopt.py) and planted bugs (buggy.py)."""

from __future__ import annotations

import inspect
import re
import shutil
from pathlib import Path

import matplotlib.image
import pytest
import torch
from conftest import REPO, sweep_cli

FIXTURES = REPO / "tests" / "check_fixtures"


@pytest.fixture
def student_dir(tmp_path: Path) -> Path:
    """A working directory holding the student's modules (myopt.py, buggy.py), as `sweep check` is run beside
    them; nothing puts it on PYTHONPATH."""
    for f in FIXTURES.glob("*.py"):
        shutil.copy(f, tmp_path)
    return tmp_path


def check(student_dir: Path, *args: str):
    return sweep_cli("check", *args, cwd=student_dir, timeout=240)


def rows(stdout: str) -> dict[str, str]:
    """The table's rows: check label -> PASS/FAIL."""
    return {m.group(1).strip(): m.group(2) for m in re.finditer(r"^(.+?)\s+\S+\s+\S+\s+(PASS|FAIL)$", stdout, re.M)}


def test_correct_adam_passes_and_plots(student_dir: Path) -> None:
    proc = check(student_dir, "myopt.MyAdam", "--like", "adam", "--plot", "curves.png")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = rows(proc.stdout)
    # defaults, non-default hyperparameters, amsgrad, a resume mid-way and grad None: all ran, all passed
    assert len(table) == 7 and set(table.values()) == {"PASS"}, proc.stdout
    assert any("amsgrad=True" in k for k in table) and any("weight_decay=0.01" in k for k in table)
    assert any("maximize=True" in k for k in table)
    assert any("state_dict" in k for k in table) and any("grad None" in k for k in table)
    assert any("lr set to 0.5x" in k for k in table)
    assert "7/7 checks passed" in proc.stdout
    img = matplotlib.image.imread(student_dir / "curves.png")
    assert img.shape[1] > 700 and img[..., :3].std() > 0.05


def test_correct_sgd_with_momentum_passes(student_dir: Path) -> None:
    proc = check(student_dir, "myopt.MySGD", "--like", "momentum")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(rows(proc.stdout).values()) == {"PASS"} and "5/5 checks passed" in proc.stdout


# (class, --like, where it first parts from torch.optim, words of the likely cause)
BUGS = [
    ("buggy.NoBiasCorrection", "adam", "at step 1, parameter body.0.weight", "no bias correction"),
    ("buggy.L2AdamW", "adamw", "at step 1, parameter body.0.weight", "L2 instead of decoupled weight decay"),
    ("buggy.TFromZero", "adam", "at step 1: parameter body.0.weight became nan or inf", "t starts at 0"),
]


@pytest.mark.parametrize("cls,like,where,cause", BUGS, ids=[b[0].split(".")[1] for b in BUGS])
def test_planted_bug_fails_at_its_first_step_with_its_cause(
    student_dir: Path, cls: str, like: str, where: str, cause: str
) -> None:
    proc = check(student_dir, cls, "--like", like)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in rows(proc.stdout).values()
    fails = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL ")]
    assert fails and all(where in ln for ln in fails), proc.stdout
    # every failing check is explained by the one planted cause, said once
    assert all(ln.endswith("[cause 1]") for ln in fails), proc.stdout
    causes = [ln for ln in proc.stdout.splitlines() if ln.startswith("likely cause")]
    assert len(causes) == 1 and causes[0].startswith("likely cause 1: ") and cause in causes[0], proc.stdout


def test_state_kept_outside_state_dict_fails_resume_and_no_grad_only(student_dir: Path) -> None:
    proc = check(student_dir, "buggy.GlobalStepAdam", "--like", "adam")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = sorted(k for k, v in rows(proc.stdout).items() if v == "FAIL")
    assert len(failed) == 2 and "state_dict" in failed[1] and "grad None" in failed[0], proc.stdout
    assert "at step 76" in proc.stdout  # the first step after the resume at step 75
    assert "state lost across state_dict()/load_state_dict()" in proc.stdout
    assert "skip p.grad is None" in proc.stdout


BAD = [
    (["nomod.MyAdam", "--like", "adam"], r"cannot import module 'nomod' \(for nomod\.MyAdam\): ModuleNotFoundError"),
    (
        ["myopt.MyAdamm", "--like", "adam"],
        r"module 'myopt' \(.*myopt\.py\) has no attribute 'MyAdamm'; "
        r"its optimizers: MyAdam, MyAdamW, MySGD",
    ),
    (["myopt.helper", "--like", "adam"], r"myopt\.helper is a function, not a torch\.optim\.Optimizer subclass"),
    (["myopt", "--like", "adam"], r"'myopt' is not MODULE\.CLASS"),
    (["buggy.NoLr", "--like", "adam"], r"buggy\.NoLr\(lr=0\.01\) raised TypeError: .*'lr'"),
    (
        ["myopt.MyAdam", "--like", "momentum"],
        r"myopt\.MyAdam\(lr=0\.05, momentum=0\.9\) raised TypeError: .*'momentum'; "
        r"the --like momentum checks pass lr, momentum, weight_decay, dampening, maximize",
    ),
    (
        ["myopt.MyAdam", "--like", "adamm"],
        r"unknown --like 'adamm'; choices: sgd, momentum, nesterov, adagrad, "
        r"rmsprop, adam, adamw$",
    ),
    (["myopt.MyAdam"], r"required: --like"),
    (
        ["myopt.MyAdam", "--like", "adam", "--plot", "nowhere/curves.png"],
        r"--plot nowhere/curves\.png: the folder "
        r".*nowhere does not exist",
    ),
]


@pytest.mark.parametrize(
    "args,message",
    BAD,
    ids=[
        "no-module",
        "no-attribute",
        "not-optimizer",
        "no-dot",
        "rejects-lr",
        "rejects-hyper",
        "unknown-like",
        "no-like",
        "plot-folder",
    ],
)
def test_bad_input_is_one_line_and_exit_2(student_dir: Path, args: list[str], message: str) -> None:
    proc = check(student_dir, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweep: error: "), proc.stderr
    assert re.search(message, lines[0]), lines[0]
    assert proc.stdout == ""


def test_module_that_raises_on_import_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import torch\nraise RuntimeError('half-written')\n")
    proc = check(tmp_path, "broken.MyAdam", "--like", "adam")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "sweep: error: cannot import module 'broken' (for broken.MyAdam): RuntimeError: half-written"
    )


# ----------------------------------------------------------------------- the cause detector's own parts, in-process
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("like_name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_faulty_optimizers_are_torch_without_a_fault_and_differ_with_each(like_name: str) -> None:
    """A cause is named by a faulty optimizer that follows the student: with no fault switched on it must be
    torch.optim's own maths (for every case of the --like, and with its lr changed mid-way), and each fault must
    really change the trajectory (one that only shows when lr changes: there, and nowhere else)."""
    from sweep import check as chk

    like = chk.LIKES[like_name]
    defaults = chk.torch_defaults(like.torch_cls)
    clean = chk.faulty_class(like, None)
    for c in [*chk.checks_for(like)[: len(like.cases)], *(c for c in chk.checks_for(like) if c.lr_change)]:
        ref = c.train(lambda ps: like.torch_cls(ps, **c.kwargs))
        assert chk.compare(c.train(lambda ps: clean(ps, **c.kwargs)), ref).worst <= 1e-9, c.label
        for fault in like.faults:
            if fault.applies({**defaults, **c.kwargs}):
                bad = chk.faulty_class(like, fault)
                parts = chk.compare(c.train(lambda ps: bad(ps, **c.kwargs)), ref).first is not None
                assert parts == (c.lr_change or not fault.lr_changes_only), (c.label, fault.cause)


def test_an_optimizer_that_raises_fails_at_that_step() -> None:
    """A student's step that raises (t from 0 in float arithmetic: ZeroDivisionError) is a failure at that step,
    not a crash of the checker."""
    from sweep import check as chk

    class Raises(torch.optim.SGD):
        def step(self, closure=None):
            self.n = getattr(self, "n", 0) + 1
            if self.n == 3:
                raise ZeroDivisionError("float division by zero")
            return super().step(closure)

    run = chk.train(lambda ps: Raises(ps, lr=0.1))
    assert run.blew_up == 2 and len(run.params) == 2 and run.error == "raised ZeroDivisionError: float division by zero"
    comparison = chk.compare(run, chk.train(lambda ps: torch.optim.SGD(ps, lr=0.1)))
    assert comparison.first is not None and comparison.first[0] == 2 and comparison.worst == float("inf")


def test_console_script_finds_the_module_in_the_current_directory(student_dir: Path) -> None:
    """The installed `sweep` script (unlike `python -m`) does not put the current directory on sys.path: `sweep
    check` does, so myopt.py beside the student is found."""
    import subprocess
    import sys

    script = Path(sys.executable).with_name("sweep")
    proc = subprocess.run(
        [str(script), "check", "myopt.helper", "--like", "adam"],
        cwd=student_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "myopt.helper is a function" in proc.stderr, proc.stderr


def test_notebook_runs_the_checks_and_saves_pngs(student_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """analysis/students_optimizer.ipynb (committed without outputs) runs for real beside a student's module and
    prints the same verdict as `sweep check`."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "analysis" / "students_optimizer.ipynb", as_version=4)
    assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    monkeypatch.setenv("STUDENT", "buggy.NoBiasCorrection")
    monkeypatch.setenv("LIKE", "adam")
    monkeypatch.setenv("NOTEBOOK_OUT", str(student_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(student_dir)}}).execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(o.get("text", "") for o in outputs)
    assert "0/7 checks passed" in text and "likely cause 1: no bias correction" in text, text
    for png in ("student_loss_curves", "student_difference"):
        img = matplotlib.image.imread(student_dir / f"{png}.png")
        assert img.shape[1] > 700 and img[..., :3].std() > 0.05, png


def test_a_class_lacking_an_argument_is_graded_on_the_rest_with_those_rows_skipped(student_dir: Path) -> None:
    """An SGD without `maximize` (or `dampening`) once got one error line and no grade; now the rows it cannot
    run are SKIPPED with the reason, the others graded, and the exit status is theirs."""
    proc = check(student_dir, "myopt.MySGD", "--like", "momentum")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SKIPPED: MySGD(lr=0.05, momentum=0.9, dampening=0.5) raised TypeError" in proc.stdout
    assert "SKIPPED: MySGD(lr=0.01, momentum=0.9, maximize=True) raised TypeError" in proc.stdout
    assert "5/5 checks passed (2 skipped: see SKIPPED)" in proc.stdout


@pytest.mark.parametrize("ignores", ["dampening", "maximize"])
def test_a_momentum_sgd_that_ignores_an_argument_fails_that_row(tmp_path: Path, ignores: str) -> None:
    """No check set dampening or maximize: an SGD ignoring either passed 4/4."""
    (tmp_path / "sloppy.py").write_text(
        "import torch\n"
        "class MySGD(torch.optim.SGD):\n"
        "    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,\n"
        "                 maximize=False):\n"
        f"        {ignores} = {0.0 if ignores == 'dampening' else False}  # the student's slip\n"
        "        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,\n"
        "                         weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)\n"
    )
    proc = check(tmp_path, "sloppy.MySGD", "--like", "momentum")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL ")]
    assert len(failed) == 1 and f"{ignores}=" in failed[0], proc.stdout


# ------------------------------------------------------------- a likely cause for every --like (in-process: fast)
def _grade(spec: str, like_name: str):
    """`sweep check SPEC --like LIKE_NAME` in-process on tests/check_fixtures: (results, report text)."""
    from sweep import check as chk

    like = chk.LIKES[like_name]
    cls = chk.load_class(spec)
    results = chk.run_checks(cls, like, chk.check_constructor(spec, cls, like_name, like))
    return results, chk.report(spec, like_name, like, results)


@pytest.fixture
def fixtures_importable(monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


# (class, --like, words of the likely cause, words of the one check that fails, or None: several fail)
FAMILY_BUGS = [
    ("buggy_sgd.WrongDecaySign", "sgd", "weight decay with the wrong sign", "weight_decay=0.01"),
    ("buggy_sgd.IgnoresMaximize", "sgd", "maximize=True ignored", "maximize=True"),
    ("buggy_sgd.IgnoresDampening", "momentum", "dampening ignored", "dampening=0.5"),
    ("buggy_sgd.ZeroBuffer", "momentum", "dampening applied on the first step", "dampening=0.5"),
    ("buggy_sgd.PlainMomentum", "nesterov", "nesterov=True ignored", None),
    ("buggy_sgd.LookaheadSign", "nesterov", "look-ahead with the wrong sign", None),
    ("buggy_adagrad.EpsInside", "adagrad", "eps inside the square root: use sqrt(sum) + eps", None),
    ("buggy_adagrad.IgnoresLrDecay", "adagrad", "lr_decay ignored", "lr_decay=0.01"),
    ("buggy_adagrad.DecaysFirstStep", "adagrad", "lr_decay one step early", "lr_decay=0.01"),
    ("buggy_adagrad.IgnoresInitialAccumulator", "adagrad", "initial_accumulator_value ignored", "initial_acc"),
    ("buggy_rmsprop.EpsInside", "rmsprop", "eps inside the square root: use sqrt(v) + eps", None),
    ("buggy_rmsprop.AlphaSwapped", "rmsprop", "alpha swapped", None),
    ("buggy_rmsprop.IgnoresCentered", "rmsprop", "centered=True ignored", "centered=True"),
    ("buggy_rmsprop.MomentumOnRawGradient", "rmsprop", "momentum on the raw gradient", "momentum=0.9"),
    ("buggy_rmsprop.IgnoresMaximize", "rmsprop", "maximize=True ignored", "maximize=True"),
    ("buggy.NoCorrectionOfV", "adam", "no bias correction of v", None),
    ("buggy.VCorrectionWithoutSqrt", "adam", "bias correction of v without the square root", None),
    ("buggy.IgnoresMaximize", "adam", "maximize=True ignored", "maximize=True"),
    ("buggy.DecayWithoutLr", "adamw", "weight decay not multiplied by lr", None),
    ("buggy_sgd.LrInBuffer", "momentum", "lr applied inside the momentum buffer", "lr set to 0.5x"),
    ("buggy.LrFromInit", "adam", "the learning rate read once", "lr set to 0.5x"),
]


@pytest.mark.usefixtures("fixtures_importable")
@pytest.mark.parametrize("spec,like,cause,only", FAMILY_BUGS, ids=[f"{b[1]}-{b[0].split('.')[1]}" for b in FAMILY_BUGS])
def test_every_family_names_the_cause_of_its_planted_mistake(spec: str, like: str, cause: str, only: str | None):
    """A likely cause was named only for Adam's mistakes: each family's classic slips must be named too, and a
    mistake that only shows at one argument's non-default value fails that check alone."""
    results, text = _grade(spec, like)
    failed = [r.check.label for r in results if not r.passed]
    assert failed, text
    if only is not None:
        assert len(failed) == 1 and only in failed[0], text
    fails = [ln for ln in text.splitlines() if ln.startswith("FAIL ")]
    assert all(ln.endswith("[cause 1]") for ln in fails), text
    causes = [ln for ln in text.splitlines() if ln.startswith("likely cause")]
    assert len(causes) == 1 and cause in causes[0], text


CORRECT = [
    ("buggy_sgd.SGD", "sgd"),
    ("buggy_sgd.SGD", "momentum"),
    ("buggy_sgd.SGD", "nesterov"),
    ("buggy_adagrad.Adagrad", "adagrad"),
    ("buggy_rmsprop.RMSprop", "rmsprop"),
    ("myopt.MyAdam", "adam"),
    ("myopt.MyAdamW", "adamw"),
]


@pytest.mark.usefixtures("fixtures_importable")
@pytest.mark.parametrize("spec,like", CORRECT, ids=[c[1] for c in CORRECT])
def test_a_correct_class_of_every_family_passes_every_check(spec: str, like: str) -> None:
    """The new faulty variants and cases must not fail a correct drop-in (nothing skipped: it takes every
    argument torch's class takes)."""
    results, text = _grade(spec, like)
    assert all(r.passed and not r.skipped for r in results), text


# the arguments of torch's classes that change no maths (how it runs), and those another --like checks
NOT_MATHS = {"params", "foreach", "fused", "capturable", "differentiable"}
ELSEWHERE = {
    "sgd": {"momentum", "dampening", "nesterov"},  # --like momentum and nesterov
    "momentum": {"nesterov"},
    "nesterov": {"dampening"},  # torch refuses dampening with Nesterov
    "adam": {"decoupled_weight_decay"},  # Adam(decoupled_weight_decay=True) is AdamW: --like adamw
}


@pytest.mark.parametrize("like_name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"])
def test_every_argument_of_torchs_twin_is_checked_at_a_non_default_value(like_name: str) -> None:
    """A class that ignores an argument (maximize, centered, lr_decay, ...) fails only if some check sets it:
    each argument torch's class takes is set away from its default by at least one case (or fixed)."""
    from sweep import check as chk

    like = chk.LIKES[like_name]
    defaults = chk.torch_defaults(like.torch_cls)
    args = set(inspect.signature(like.torch_cls).parameters) - NOT_MATHS - ELSEWHERE.get(like_name, set())
    unset = [
        a for a in args if not any({**like.fixed, **c}.get(a, defaults.get(a)) != defaults.get(a) for c in like.cases)
    ]
    assert not unset, f"--like {like_name} never sets {unset}"


def test_an_adam_ignoring_maximize_fails_exactly_that_check_and_one_lacking_it_is_skipped(tmp_path: Path) -> None:
    """Adagrad, RMSprop, Adam and AdamW were never checked with maximize=True: an Adam ignoring it passed."""
    shutil.copy(FIXTURES / "buggy.py", tmp_path)
    (tmp_path / "old.py").write_text(
        "import torch\n"
        "class Adam(torch.optim.Adam):\n"
        "    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):\n"
        "        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)\n"
    )
    proc = check(tmp_path, "buggy.IgnoresMaximize", "--like", "adam")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [k for k, v in rows(proc.stdout).items() if v == "FAIL"] == ["lr=0.01, maximize=True"], proc.stdout
    proc = check(tmp_path, "old.Adam", "--like", "adam")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SKIPPED: Adam(lr=0.01, maximize=True) raised TypeError" in proc.stdout
    assert "6/6 checks passed (1 skipped: see SKIPPED)" in proc.stdout


def test_notebook_skips_the_checks_a_class_cannot_run(student_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook graded a class lacking an argument (an SGD without maximize) as FAIL where `sweep check`
    shows SKIPPED: it now asks check_constructor first, as the CLI does."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(REPO / "analysis" / "students_optimizer.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type == "code"][:2]  # the settings and the report; no plots
    for name, value in {"STUDENT": "myopt.MySGD", "LIKE": "momentum", "NOTEBOOK_OUT": str(student_dir)}.items():
        monkeypatch.setenv(name, value)
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(student_dir)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "SKIPPED: MySGD(lr=0.01, momentum=0.9, maximize=True) raised TypeError" in text, text
    assert "5/5 checks passed (2 skipped: see SKIPPED)" in text, text

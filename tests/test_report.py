"""sweep report: the applicable plots and report.md (runs grouped by the swept keys, mean ± std over seeds,
diverged counted) in SWEEP/report/."""

from __future__ import annotations

import math

import matplotlib.image
import pandas as pd
import pytest
from conftest import sweep_cli

from sweep.report import markdown_table, separated, summary_table
from sweep.results import SELECTION_METRIC

pytest_plugins = ["analysis_fixtures"]  # the shared session sweeps: small_sweep, init_sweep


def test_sweep_report_writes_plots_and_table(small_sweep, copy_sweep, tmp_path):
    d = copy_sweep(small_sweep)
    (d / "report").mkdir()
    (d / "report" / ".schedules.png.k3j_x1.tmp").write_bytes(b"half a png")  # what a killed report leaves
    p = sweep_cli("report", str(d), cwd=tmp_path, check=True, timeout=180)  # not from the repo: still works
    out = d / "report"
    assert not list(out.glob(".*.tmp")), "a killed report's leftovers stay"
    assert "report.md" in p.stdout
    pngs = sorted(x.stem for x in out.glob("*.png"))
    assert pngs == sorted(
        ["lr_sensitivity", "learning_curves", "batch_size", "restarts", "schedules", "gradient_noise", "tuned"]
    )
    for x in out.glob("*.png"):
        assert matplotlib.image.imread(x).shape[1] > 700
    md = (out / "report.md").read_text()
    assert md.startswith("# Sweep `small`")
    assert "sweep run -m optimizer=sgd,adam" in md
    assert "| optimizer | schedule | batch size | lr | n (done/seeds) | diverged |" in md
    assert "final test loss (mean ± SE)" in md and "| full (" in md  # full batch, with its size
    table = [ln for ln in md.splitlines() if ln.startswith("| adam") or ln.startswith("| sgd")]
    assert len(table) == 16  # 2 x 2 x 2 x 2 configurations
    adam_div = [ln for ln in md.splitlines() if ln.startswith("| adam") and "| 8 |" in ln]
    assert adam_div and all("| 0/2 | 2 |" in ln for ln in adam_div)
    for name in pngs:
        assert f"]({name}.png)" in md
    assert "## Not drawn" in md and "`init`" in md and "`sampling`" in md and "`annealing`" in md
    # the finding in words under the plots that state one, choices made on validation
    findings = [ln for ln in md.splitlines() if ln.startswith("**Finding.**")]
    assert len(findings) >= 4
    lr_finding = md.split("](lr_sensitivity.png)", 1)[1].split("###", 1)[0]
    assert "**Finding.**" in lr_finding and "best lr" in lr_finding and "validation loss" in lr_finding
    assert not list(out.glob(".*.tmp"))
    # a second report replaces the first
    sweep_cli("report", str(d), check=True, timeout=180)
    assert (out / "report.md").read_text().count("## Results by configuration") == 1


def test_summary_table_mean_std_and_counts():
    runs = pd.DataFrame(
        {
            "run_id": list("abcdef"),
            "optimizer.name": ["sgd"] * 3 + ["adam"] * 3,
            "seed": [0, 1, 2] * 2,
            "status": ["done", "done", "diverged", "done", "done", "done"],
            "final_test_loss": [1.0, 3.0, 99.0, 0.5, 0.7, 0.9],
            "final_test_acc": [0.5, 0.7, 0.1, 0.9, 0.8, 0.7],
            "final_val_loss": [1.0, 2.0, 9.0, 0.5, 0.6, 0.7],
            "wall_s": [1.0] * 6,
        }
    )
    runs.attrs["swept"] = ["optimizer.name", "seed"]
    t = summary_table(runs)
    assert list(t["optimizer.name"]) == ["adam", "sgd"]  # best first
    sgd = t.set_index("optimizer.name").loc["sgd"]
    assert sgd["runs"] == 3 and sgd["done"] == 2 and sgd["diverged"] == 1 and sgd["seeds"] == 3
    assert sgd["final_test_loss_mean"] == pytest.approx(2.0)  # the diverged seed is not averaged
    assert sgd["final_test_loss_std"] == pytest.approx(math.sqrt(2.0))
    adam = t.set_index("optimizer.name").loc["adam"]
    assert adam["final_test_acc_mean"] == pytest.approx(0.8) and adam["diverged"] == 0


def test_report_of_a_missing_folder_is_one_line(tmp_path):
    p = sweep_cli("report", str(tmp_path / "nope"))
    assert p.returncode == 2 and p.stderr.strip().startswith("sweep: error: no sweep folder")


def test_a_user_preset_swept_beside_its_base_is_reported_as_its_own_config(tmp_path):
    """optimizer=adam,adam_lowbeta (a preset in --config-dir with other betas): two configs of two seeds each in
    collect and report.md, never one config of "4 seeds" averaged together."""
    from sweep.collect import load_runs

    conf = tmp_path / "myconf" / "optimizer"
    conf.mkdir(parents=True)
    (conf / "adam_lowbeta.yaml").write_text("defaults:\n  - adam\n  - _self_\nbetas: [0.9, 0.99]\n")
    out = tmp_path / "runs"
    sweep_cli(
        "run",
        "-m",
        "--config-dir",
        str(tmp_path / "myconf"),
        "optimizer=adam,adam_lowbeta",
        "seed=0,1",
        "lr=0.01",
        "epochs=1",
        "model.hidden=[8]",
        "wandb.mode=disabled",
        f"out_dir={out}",
        "name=p",
        check=True,
    )
    runs = load_runs(out / "p")
    assert sorted(runs["choices.optimizer"]) == ["adam", "adam", "adam_lowbeta", "adam_lowbeta"]
    t = summary_table(runs)
    assert len(t) == 2 and list(t["seeds"]) == [2, 2]
    sweep_cli("report", str(out / "p"), check=True)
    md = (out / "p" / "report" / "report.md").read_text()
    rows = [ln for ln in md.splitlines() if ln.startswith("| adam |")]
    assert len(rows) == 2 and all("2/2" in ln for ln in rows), md


def _two_configs(losses_a, losses_b):
    runs = pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(len(losses_a) + len(losses_b))],
            "optimizer.name": ["adam"] * len(losses_a) + ["sgd"] * len(losses_b),
            "seed": list(range(len(losses_a))) + list(range(len(losses_b))),
            "status": "done",
            "final_val_loss": [*losses_a, *losses_b],
            "final_test_loss": [*losses_a, *losses_b],
        }
    )
    runs.attrs["swept"] = ["optimizer.name", "seed"]
    return summary_table(runs)


def test_best_is_bold_only_when_separated_by_more_than_its_uncertainty():
    """Bold when the means differ by more than SE_best + SE_next; else nothing is bold and the report says so."""
    assert SELECTION_METRIC == "final_val_loss"
    clear = _two_configs([0.30, 0.31, 0.32], [0.90, 0.91, 0.92])
    assert clear["final_val_loss_se"].iloc[0] == pytest.approx(0.01 / math.sqrt(3))
    ok, why = separated(clear)
    assert ok and "distinguishable" in why
    assert "**0.31 ± 0.0058**" in markdown_table(clear, ["optimizer.name"], False)
    close = _two_configs([0.30, 0.50, 0.70], [0.40, 0.60, 0.80])  # 0.1 apart, SEs 0.115 each
    ok, why = separated(close)
    assert not ok and "not distinguishable" in why
    assert "**" not in markdown_table(close, ["optimizer.name"], False)
    one_seed = _two_configs([0.3], [0.9])  # no SE from one seed: never bold
    assert not separated(one_seed)[0] and "**" not in markdown_table(one_seed, ["optimizer.name"], False)


def test_configurations_are_ranked_on_validation_and_test_is_only_reported():
    """sgd looks better on test, adam on validation: the report chooses adam (choosing on test is the error a TA
    would mark), and shows test for what was chosen."""
    runs = pd.DataFrame(
        {
            "run_id": list("abcd"),
            "optimizer.name": ["sgd", "sgd", "adam", "adam"],
            "seed": [0, 1, 0, 1],
            "status": "done",
            "final_val_loss": [0.9, 0.91, 0.5, 0.51],
            "final_test_loss": [0.1, 0.11, 0.6, 0.61],
        }
    )
    runs.attrs["swept"] = ["optimizer.name", "seed"]
    t = summary_table(runs)
    assert list(t["optimizer.name"]) == ["adam", "sgd"]
    assert t["final_test_loss_mean"].iloc[0] == pytest.approx(0.605)


def test_corrupt_runs_are_named_by_their_summary_file_and_retrained_by_the_same_command(tmp_path):
    """A pack's summary file holds its other runs too: report.md names the file and never says to delete the
    pack's folder; a run folder of the earlier layout may still be deleted (its path shell-quoted)."""
    import shlex

    from sweep import store
    from sweep.analysis import Sweep
    from sweep.report import _corrupt_section

    d = tmp_path / "sw"
    w = store.PackWriter(d, {"aaa": {"lr": 0.1}, "bbb": {"lr": 0.2}})
    w.start({})
    w.write_summaries({"aaa": {"run_id": "aaa", "status": "done"}, "bbb": {"run_id": "bbb", "status": 5}})
    old = d / "old run"
    old.mkdir()
    (old / "config.yaml").write_text("lr: 0.3\n")
    (old / "summary.json").write_text("[]")
    md = "\n".join(_corrupt_section(Sweep(d)))
    assert md.startswith("## Corrupt runs") and "the same `sweep run` command trains them again" in md
    assert f"- `bbb`: `{w.root / 'summary.json'}`\n" in md and "`aaa`" not in md
    assert f"- `old run`: `{old / 'summary.json'}` (or retrain it afresh: `rm -r {shlex.quote(str(old))}`)" in md
    assert f"rm -r {w.root}" not in md and f"rm -r {d / 'bbb'}" not in md


def test_only_and_skip_choose_the_plots_and_report_md_names_those_left_out(small_sweep, copy_sweep, tmp_path):
    from sweep.analysis import NAMES

    d = copy_sweep(small_sweep)
    sweep_cli("report", str(d), "--only", "restarts,lr_sensitivity,gradient_noise", "--skip", "gradient_noise",
              check=True, timeout=180)  # fmt: skip
    out = d / "report"
    assert sorted(x.stem for x in out.glob("*.png")) == ["lr_sensitivity", "restarts"]
    md = (out / "report.md").read_text()
    asked = md.split("## Skipped on request", 1)[1]
    left_out = [n for n in NAMES if n not in ("restarts", "lr_sensitivity")]
    assert all(f"`{n}`" in asked for n in left_out) and "`restarts`" not in asked
    assert "`init`" not in md.split("## Skipped on request", 1)[0].split("## Not drawn", 1)[-1]  # not "did not apply"


@pytest.mark.parametrize("flag", ["--only", "--skip"])
def test_an_unknown_plot_name_is_one_line_listing_the_valid_ones_and_nothing_is_written(small_sweep, copy_sweep, flag):
    from sweep.analysis import NAMES

    d = copy_sweep(small_sweep)
    p = sweep_cli("report", str(d), flag, "restarts,lr_sensitivty")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "'lr_sensitivty'" in p.stderr and all(n in p.stderr for n in NAMES)
    assert not (d / "report").exists()


def test_a_students_rows_are_named_by_their_class_in_the_table():
    """report.md's table said `custom` for a student's runs: it names the class, `optim.MyAdam`."""
    runs = pd.DataFrame(
        {
            "run_id": list("abcd"),
            "optimizer.name": ["custom", "custom", "adam", "adam"],
            "optimizer.cls": ["hw1.optim.MyAdam", "hw1.optim.MyAdam", None, None],
            "seed": [0, 1, 0, 1],
            "status": "done",
            "final_val_loss": [0.5, 0.6, 0.5, 0.6],
            "final_test_loss": [0.5, 0.6, 0.5, 0.6],
        }
    )
    runs.attrs["swept"] = ["optimizer.name", "seed"]
    table = markdown_table(summary_table(runs), ["optimizer.name"], False, runs)
    names = [ln.split("|")[1].strip() for ln in table.splitlines()[2:]]
    assert sorted(names) == ["adam", "optim.MyAdam"], table

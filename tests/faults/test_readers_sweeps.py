"""The readers (collect, report, status, sync, analysis) on sweep folders built by hand, no training: runs that
blew up (diverged, collapsed) counted and drawn but never averaged; different configs never grouped as seeds of
one; folders that are not sweeps refused in one line; corrupt files skipped with one line each; printed commands
shell-quoted."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import yaml
from conftest import sweep_cli

from sweep import analysis
from sweep.collect import load_history, load_runs
from sweep.report import summary_table, write_report
from sweep.status import gather
from sweep.sync import plan


# ------------------------------------------------------------------------------------------------ builders
def config(**over) -> dict:
    """A resolved config.yaml as `sweep run` writes it (the keys the readers look at); `over` with dotted keys."""
    c = {
        "name": "sw",
        "out_dir": "runs",
        "seed": 0,
        "lr": 0.1,
        "batch_size": 64,
        "epochs": 2,
        "sampling": "shuffle_each_epoch",
        "device": "auto",
        "pack": 1,
        "log_every": 5,
        "checkpoint_every": 50,
        "optimizer": {"name": "adam", "impl": "scratch", "betas": [0.9, 0.999], "eps": 1e-8},
        "schedule": {"name": "constant"},
        "init": {"name": "lecun_normal", "scale": 1.0},
        "data": {"name": "digits", "seed": 0, "root": "~/data"},
        "model": {"hidden": [16], "activation": "relu"},
        "wandb": {"mode": "disabled", "project": "sweep"},
        "cluster": {"name": "local"},
    }
    for k, v in over.items():
        node = c
        *path, last = k.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = v
    return c


def history(loss0: float, final: float, steps: int = 20) -> pd.DataFrame:
    """A history.parquet frame: train loss going from loss0 to final, test metrics at the two epoch ends."""
    step = list(range(0, steps, 5)) + [steps]
    n = len(step)
    train = [loss0 + (final - loss0) * i / (n - 1) for i in range(n)]
    test = [float("nan")] * n
    test[n // 2] = train[n // 2]
    test[-1] = final
    return pd.DataFrame(
        {
            "step": step,
            "epoch": [s / (steps / 2) for s in step],
            "lr": [0.1] * n,
            "train_loss": train,
            "grad_norm": [1.0] * n,
            "test_loss": test,
            "test_acc": [None if t != t else 0.5 for t in test],
        }
    )


def add_run(
    sweep: Path,
    rid: str,
    cfg: dict | str | None,
    status: str | None = "done",
    loss: float = 0.3,
    summary: str | None = None,
    hist: pd.DataFrame | bytes | None = None,
    **extra,
) -> Path:
    """A run folder: config.yaml (a dict, or raw text), summary.json (from status/loss/extra, or raw text),
    history.parquet (a frame, or raw bytes)."""
    d = sweep / rid
    d.mkdir(parents=True, exist_ok=True)
    if cfg is not None:
        (d / "config.yaml").write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False))
    if summary is not None:
        (d / "summary.json").write_text(summary)
    elif status is not None:
        s = {
            "run_id": rid,
            "status": status,
            "final_test_loss": loss,
            "final_test_acc": 0.9 - loss / 10,
            "best_test_loss": loss,
            "final_train_loss": loss,
            "wall_s": 1.0,
            "step": 20,
            "total_steps": 20,
        }
        s.update(extra)
        (d / "summary.json").write_text(json.dumps(s))
    if isinstance(hist, pd.DataFrame):
        hist.to_parquet(d / "history.parquet", index=False)
    elif hist is not None:
        (d / "history.parquet").write_bytes(hist)
    return d


def sweep_json(sweep: Path, swept: list[str], runs: dict[str, list[str]], name: str | None = None) -> None:
    rec = {
        "name": name or sweep.name,
        "swept": swept,
        "argv": ["-m", *swept],
        "runs": [{"run_id": r, "overrides": o} for r, o in runs.items()],
    }
    (sweep / "sweep.json").write_text(json.dumps(rec))


@pytest.fixture
def presets(tmp_path) -> Path:
    """`optimizer=adam,adam_lowbeta seed=0,1` with a user preset adam_lowbeta.yaml (adam, betas 0.9/0.99):
    every run has optimizer.name=adam. Older runs: no `choices` in config.yaml."""
    d = tmp_path / "runs" / "presets"
    runs = {}
    for preset, betas, loss in (("adam", [0.9, 0.999], 0.3), ("adam_lowbeta", [0.9, 0.99], 0.5)):
        for seed in (0, 1):
            rid = f"{preset}-{seed}"
            add_run(
                d, rid, config(seed=seed, **{"optimizer.betas": betas}), loss=loss + seed / 100, hist=history(2.0, loss)
            )
            runs[rid] = [f"optimizer={preset}", f"seed={seed}"]
    sweep_json(d, ["optimizer", "seed"], runs)
    return d


# ------------------------------------------------------------------------------------------------ 2. grouping
def test_configs_differing_only_in_betas_are_two_configs_of_two_seeds(presets):
    runs = load_runs(presets)
    assert runs.attrs["config_keys"] == ["optimizer.name", "optimizer.betas"]
    t = summary_table(runs)
    assert len(t) == 2 and list(t["seeds"]) == [2, 2] and list(t["runs"]) == [2, 2]
    assert t["final_test_loss_mean"].tolist() == pytest.approx([0.305, 0.505])  # never one mean of 4 runs
    md = write_report(presets, echo=lambda *a: None).read_text()
    rows = [ln for ln in md.splitlines() if ln.startswith("| adam |")]
    assert len(rows) == 2 and all("| 2/2 |" in ln for ln in rows), rows
    assert "| optimizer | optimizer.betas | n (done/seeds) |" in md
    assert "- also differing between runs (kept apart, never averaged together): `optimizer.betas`" in md
    sw = analysis.Sweep(presets)
    assert sw.n_seeds == 2 and "2 seeds" in sw.describe()
    fig = analysis.plot_restarts(sw)
    assert len(fig.axes[0].get_yticks()) == 2  # one row per config, not one of 4 "seeds"


def test_hydra_choices_name_a_preset_and_its_values_are_not_repeated(presets):
    for rid in ("adam-0", "adam-1", "adam_lowbeta-0", "adam_lowbeta-1"):
        c = yaml.safe_load((presets / rid / "config.yaml").read_text())
        c["choices"] = {"optimizer": rid.rsplit("-", 1)[0], "schedule": "constant", "cluster": rid}
        (presets / rid / "config.yaml").write_text(yaml.safe_dump(c))
    runs = load_runs(presets)
    # betas follow from the preset; the cluster choice says where it ran, not what it computed
    assert runs.attrs["config_keys"] == ["optimizer.name", "choices.optimizer"]
    t = summary_table(runs)
    assert sorted(t["choices.optimizer"]) == ["adam", "adam_lowbeta"] and list(t["seeds"]) == [2, 2]
    md = write_report(presets, echo=lambda *a: None).read_text()
    assert "| optimizer | optimizer option | n (done/seeds) |" in md


def test_non_semantic_values_never_split_a_config(tmp_path):
    d = tmp_path / "sw"
    for seed in (0, 1, 2):
        add_run(
            d,
            f"r{seed}",
            config(
                seed=seed,
                out_dir=f"/scratch/{seed}",
                name=f"n{seed}",
                **{
                    "data.root": f"/d{seed}",
                    "wandb.mode": ["offline", "disabled"][seed % 2],
                    "cluster.name": f"c{seed}",
                    "log_every": seed + 1,
                },
            ),
        )
    runs = load_runs(d)
    assert runs.attrs["config_keys"] == ["seed"] or runs.attrs["config_keys"] == []
    t = summary_table(runs)
    assert len(t) == 1 and t.loc[0, "seeds"] == 3


# ------------------------------------------------------------------------------------------------ 1. collapsed
@pytest.fixture
def blown(tmp_path) -> Path:
    """lr=0.1,1 x seed=0,1,2: at lr=1 one seed diverged, one collapsed (a final loss that must never enter a
    mean), one trained."""
    d = tmp_path / "runs" / "blown"
    runs = {}
    for lr in (0.1, 1.0):
        for seed in (0, 1, 2):
            rid = f"lr{lr}-s{seed}"
            status, loss, extra = "done", 0.3 + seed / 100, {}
            if lr == 1.0 and seed == 0:
                status, loss, extra = "diverged", float("nan"), {"diverged_step": 3, "diverged_loss": 1e9}
            if lr == 1.0 and seed == 1:
                status, loss, extra = "collapsed", 2.3, {"diverged_step": 9, "diverged_loss": 40.0}
            add_run(
                d,
                rid,
                config(lr=lr, seed=seed),
                status,
                loss=loss,
                hist=history(2.0, loss if loss == loss else 50.0),
                **extra,
            )
            runs[rid] = [f"lr={lr}", f"seed={seed}"]
    sweep_json(d, ["lr", "seed"], runs)
    return d


def test_collapsed_runs_are_counted_never_averaged(blown):
    runs = load_runs(blown)
    assert (runs["status"] == "collapsed").sum() == 1  # collect keeps the status as it is
    t = summary_table(runs).set_index("lr")
    assert t.loc[1.0, "collapsed"] == 1 and t.loc[1.0, "diverged"] == 1 and t.loc[1.0, "unfinished"] == 0
    assert t.loc[1.0, "final_test_loss_mean"] == pytest.approx(0.32)  # the done seed only, not 2.3
    md = write_report(blown, echo=lambda *a: None).read_text()
    assert "| lr | n (done/seeds) | diverged | collapsed | failed |" in md
    assert [ln for ln in md.splitlines() if ln.startswith("| 1 |")][0].startswith("| 1 | 1/3 | 1 | 1 |")


def _texts(fig) -> list[str]:
    out = []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return out


def test_plots_draw_and_count_collapsed_runs(blown, tmp_path):
    sw = analysis.Sweep(blown)
    fig = analysis.plot_lr_sensitivity(sw)
    texts = _texts(fig)
    assert "2/3" in texts  # diverged + collapsed at lr=1, of 3 seeds
    assert any("diverged or collapsed" in t for t in texts)
    line = fig.axes[0].get_lines()[0]
    assert list(line.get_ydata()) == pytest.approx([0.31, 0.32])  # mean of the done seeds only
    fig = analysis.plot_restarts(sw)
    assert any("1 diverged, 1 collapsed" in t for t in _texts(fig))
    fig = analysis.plot_learning_curves(sw)
    assert any("1/3 diverged, 1/3 collapsed" in t for t in _texts(fig))
    out = analysis.plot_lr_sensitivity(sw, out=tmp_path / "lr.png")
    assert matplotlib.image.imread(out).shape[1] > 700


def test_status_and_sync_treat_collapsed_as_finished_and_interrupted_as_not(blown):
    add_run(blown, "int", config(lr=0.5), "interrupted")
    rows = {r["run_id"]: r for r in gather(blown, use_slurm=False)["rows"]}
    assert rows["lr1.0-s1"]["status"] == "collapsed" and "collapsed at step 9" in rows["lr1.0-s1"]["note"]
    assert rows["int"]["status"] == "interrupted" and "run the same command again" in rows["int"]["note"]
    for rid in ("lr1.0-s1", "int"):
        w = blown / rid / "wandb" / f"offline-run-20250101_000000-{rid}"
        w.mkdir(parents=True)
        (w / f"run-{rid}.wandb").write_bytes(b"x")
    p = {r.run_id: r for r in plan(blown)}
    assert p["lr1.0-s1"].skip_reason is None
    assert p["int"].skip_reason == "not finished (interrupted)"


# ------------------------------------------------------------------------------------------------ 3. not a sweep
@pytest.fixture
def out_dir(tmp_path) -> Path:
    """runs/ holding three sweeps (one without sweep.json, one whose name is a shell command)."""
    out = tmp_path / "runs"
    for name in ("a", "b", "$(touch pwned)"):
        add_run(out / name, "r0", config())
        if name != "b":
            sweep_json(out / name, ["lr"], {"r0": ["lr=0.1"]})
    return out


@pytest.mark.parametrize("command", ["status", "collect", "report", "sync"])
def test_an_output_folder_is_refused_with_the_command_to_type(out_dir, command, tmp_path):
    p = sweep_cli(command, str(out_dir), cwd=tmp_path)
    assert p.returncode == 2 and p.stdout == ""
    line = p.stderr.strip()
    assert "\n" not in line
    assert line.startswith(f"sweep: error: {out_dir} is an output folder holding 3 sweeps (")
    hint = line.split(", not a sweep: use ", 1)[1]
    args = shlex.split(hint)
    assert args[:2] == ["sweep", command] and Path(args[2]).parent == out_dir
    assert not (out_dir / "report").exists()
    # the hint pasted into a shell runs no command substitution
    bad = shlex.quote(str(out_dir / "$(touch pwned)"))
    subprocess.run(["bash", "-c", f"printf '%s\\n' {bad} >/dev/null"], cwd=tmp_path, check=True)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("command", ["status", "report", "collect"])
def test_system_folders_and_run_folders_are_not_sweeps(tmp_path, command):
    p = sweep_cli(command, "/etc")
    assert p.returncode == 2 and "is not a sweep" in p.stderr and p.stderr.count("\n") == 1
    run = add_run(tmp_path / "sw", "r0", config())
    p = sweep_cli(command, str(run))
    assert p.returncode == 2 and f"is a run folder, not a sweep: use sweep {command} {tmp_path / 'sw'}" in p.stderr
    assert not (run / "report").exists()
    with pytest.raises(ValueError, match="not a sweep"):
        write_report(tmp_path)  # the API refuses too: nothing written
    assert not (tmp_path / "report").exists()


# ------------------------------------------------------------------------------------------------ 4. corrupt
@pytest.fixture
def corrupt(tmp_path) -> Path:
    d = tmp_path / "runs" / "bad"
    good = history(2.0, 0.3)
    add_run(d, "good0", config(lr=0.1), loss=0.3, hist=good)
    add_run(d, "good1", config(lr=0.2), loss=0.4, hist=good)
    add_run(d, "list", config(lr=0.3), summary="[]")
    add_run(d, "int", config(lr=0.4), summary='{"status": 5}')
    add_run(d, "torn", config(lr=0.5), summary='{"status": "done", "final_te')
    buf = (d / "good0" / "history.parquet").read_bytes()
    add_run(d, "torn_hist", config(lr=0.6), loss=0.5, hist=buf[: len(buf) // 2])
    add_run(d, "text_step", config(lr=0.7), loss=0.6, hist=good.assign(step=good["step"].map(lambda s: f"s{s}")))
    add_run(d, "list_cfg", "- 1\n- 2\n", loss=0.7)
    sweep_json(
        d, ["lr"], {r: [] for r in ("good0", "good1", "list", "int", "torn", "torn_hist", "text_step", "list_cfg")}
    )
    return d


def _skipped(stderr: str) -> dict[str, str]:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("sweep: skipped ")]
    out = {}
    for ln in lines:
        path, _, why = ln[len("sweep: skipped ") :].partition(": ")
        assert path not in out, f"reported twice: {ln}"
        out[str(Path(path).relative_to(Path(path).parents[1]))] = why
    return out


BAD_FILES = {"list/summary.json", "int/summary.json", "torn/summary.json", "list_cfg/config.yaml"}
BAD_HISTORIES = {"torn_hist/history.parquet", "text_step/history.parquet"}


def test_collect_skips_each_corrupt_file_with_one_line(corrupt, tmp_path):
    runs = load_runs(corrupt)
    st = runs.set_index("run_id")["status"]
    assert st["good0"] == "done" and st["list"] == st["int"] == st["torn"] == "corrupt"
    h = load_history(corrupt, runs)
    assert set(h["run_id"]) == {"good0", "good1"}  # the two bad histories left out
    p = sweep_cli("collect", str(corrupt), "--history", "-o", str(tmp_path / "h.parquet"))
    assert p.returncode == 0, p.stderr
    skipped = _skipped(p.stderr)
    assert set(skipped) == BAD_FILES | BAD_HISTORIES, p.stderr
    assert "status 5 is not one of" in skipped["int/summary.json"]
    assert "not an object" in skipped["list/summary.json"] and "not valid JSON" in skipped["torn/summary.json"]
    assert "step" in skipped["text_step/history.parquet"]
    assert set(pd.read_parquet(tmp_path / "h.parquet")["run_id"]) == {"good0", "good1"}


def test_report_and_status_survive_corrupt_files(corrupt, tmp_path):
    p = sweep_cli("report", str(corrupt), cwd=tmp_path, timeout=180)
    assert p.returncode == 0, p.stderr
    assert set(_skipped(p.stderr)) == BAD_FILES | BAD_HISTORIES
    md = (corrupt / "report" / "report.md").read_text()
    assert "## Corrupt runs" in md and f"rm -r {corrupt / 'int'}" in md
    p = sweep_cli("status", str(corrupt), "--no-slurm", env={"COLUMNS": "250"})
    assert p.returncode == 0, p.stderr
    # status reads the runs through the store, configs included: the corrupt config.yaml is skipped too
    assert set(_skipped(p.stderr)) == {"list/summary.json", "int/summary.json", "torn/summary.json"} | {
        "list_cfg/config.yaml"
    }
    assert "3 corrupt" in p.stdout
    rows = {r["run_id"]: r for r in gather(corrupt, use_slurm=False)["rows"]}
    for rid in ("list", "int", "torn"):
        note = rows[rid]["note"]
        # a rerun trains a run whose summary is corrupt again (the store's new record then wins): no deletion
        assert rows[rid]["status"] == "corrupt" and "rm -r" not in note
        assert note.startswith(f"{corrupt / rid / 'summary.json'} is corrupt (")
        assert note.endswith("run the same command again to train it again from its checkpoint")


@pytest.mark.parametrize("text", ["[]", '{"name": "x", "runs": 5}', '{"runs": [], "sw', '{"swept": "lr"}'])
def test_a_corrupt_sweep_json_is_skipped_and_the_run_folders_read(corrupt, text, tmp_path):
    (corrupt / "sweep.json").write_text(text)
    for command in (["collect"], ["status", "--no-slurm"], ["report"]):
        p = sweep_cli(*command, str(corrupt), cwd=tmp_path, env={"COLUMNS": "250"}, timeout=180)
        assert p.returncode == 0, p.stderr
        assert "bad/sweep.json" in _skipped(p.stderr)
    assert len(load_runs(corrupt)) == 8


def test_a_corrupt_summary_in_sync_is_not_finished(corrupt):
    w = corrupt / "int" / "wandb" / "offline-run-20250101_000000-int"
    w.mkdir(parents=True)
    (w / "run-int.wandb").write_bytes(b"x")
    assert {r.run_id: r for r in plan(corrupt)}["int"].skip_reason == "not finished (no summary)"


# ------------------------------------------------------------------------------------------------ 6. quoting
def test_printed_paths_are_shell_quoted(tmp_path):
    d = tmp_path / "runs" / "$(touch pwned) x"
    add_run(d, "r0", config(), summary="[]")
    note = {r["run_id"]: r for r in gather(d, use_slurm=False)["rows"]}["r0"]["note"]
    # status's note names the file and prints no command to paste (a rerun retrains the run)
    assert note.startswith(f"{d / 'r0' / 'summary.json'} is corrupt (") and "rm -r" not in note
    md = write_report(d, echo=lambda *a: None).read_text()
    assert f"rm -r {shlex.quote(str(d / 'r0'))}" in md


def _journal_with_trials(path: Path, n: int = 3) -> None:
    from sweep.study import open_study

    search = {"name": "random", "seed": 0, "pruner": "none", "direction": "minimize"}
    study = open_study(path, search, 1, create=True)
    for i in range(n):
        t = study.ask({"x": __import__("optuna").distributions.FloatDistribution(0, 1)})
        study.tell(t, float(i))


@pytest.mark.parametrize(
    "torn", [b'{"op_code": 5, "worker_id": "a', b'{"op_code": 5, "wor\n'], ids=["no newline", "bad line"]
)
def test_a_torn_journal_is_mended_and_its_complete_trials_kept(tmp_path, capfd, torn):
    """A full disk (or a kill) mid-append tore study.journal's last record: the search, `sweep status` and
    `sweep report` then crashed with a JSONDecodeError until the file was fixed by hand."""
    from sweep.study import STUDY_FILE, read_study

    journal = tmp_path / STUDY_FILE
    _journal_with_trials(journal)
    whole = journal.read_bytes()
    with open(journal, "ab") as f:
        f.write(torn)
    study = read_study(journal)
    assert len(study.trials) == 3 and [t.value for t in study.trials] == [0.0, 1.0, 2.0]
    assert journal.read_bytes() == whole and (tmp_path / f"{STUDY_FILE}.torn-1").read_bytes() == torn
    assert "ended in a torn record" in capfd.readouterr().err


def test_a_lock_left_pointing_at_nothing_does_not_spin_the_search(tmp_path):
    """A killed process's lock symlink whose target moved away made Optuna's lock loop at full CPU for ever."""
    import os

    from sweep.study import STUDY_FILE, read_study

    journal = tmp_path / STUDY_FILE
    _journal_with_trials(journal, 1)
    os.symlink(tmp_path / "moved-away" / STUDY_FILE, str(journal) + ".lock")
    # a search asks a trial: a write, under the lock (in a process of its own, so a spin is a timeout here)
    code = (
        "import sys, optuna; from sweep.study import open_study; "
        "s = open_study(sys.argv[1], {'name': 'random', 'seed': 0, 'pruner': 'none', 'direction': 'minimize'}, "
        "1, create=True); s.ask({'x': optuna.distributions.FloatDistribution(0, 1)})"
    )
    p = subprocess.run([sys.executable, "-c", code, str(journal)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "a lock left by a killed process" in p.stderr
    assert len(read_study(journal).trials) == 2 and not os.path.lexists(str(journal) + ".lock")

"""sweep.collect: the run frame and the long history frame of a real sweep, configs read from config.json and from
a legacy config.yaml alike, the wandb-shaped path, and `sweep collect` as users type it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import make_cfg, sweep_cli

from sweep import collect, store
from sweep.collect import flatten_config, frame_from_wandb_records, load_history, load_runs, write_frame
from sweep.results import RunDir, write_config

SWEPT = ["lr", "optimizer.name", "schedule.name", "batch_size", "seed"]

pytest_plugins = ["analysis_fixtures"]  # the shared session sweeps: small_sweep, init_sweep


def test_load_runs_one_row_per_run_swept_first_every_config_key(small_sweep):
    df = load_runs(small_sweep)
    record = json.loads((small_sweep / "sweep.json").read_text())
    assert len(df) == len(record["runs"]) == 32
    assert list(df["run_id"]) == [r["run_id"] for r in record["runs"]]
    assert set(df.attrs["swept"]) == set(SWEPT)
    assert list(df.columns[: 1 + len(SWEPT)]) == ["run_id", *df.attrs["swept"]]
    assert list(df.columns[1 + len(SWEPT) : 3 + len(SWEPT)]) == ["full_batch", "status"]  # batch_size's flag
    assert {"done", "diverged"} <= set(df["status"]) <= {"done", "diverged", "collapsed"}  # kept as they are
    assert set(df["optimizer.name"]) == {"sgd", "adam"} and set(df["lr"]) == {0.05, 8.0}
    n_train = df["n_train"].dropna().unique()
    assert len(n_train) == 1 and df["batch_size"].dtype == float  # full: the training part's size, from summary
    assert set(df["batch_size"]) == {64.0, float(n_train[0])}
    assert (df["full_batch"] == (df["batch_size"] == n_train[0])).all() and df["full_batch"].dtype == bool
    assert df.sort_values("batch_size")["batch_size"].iloc[0] == 64
    assert "best_test_loss" not in df  # no early stopping on test: the best epoch is chosen on validation
    for col in (
        "final_val_loss",
        "best_val_loss",
        "test_loss_at_best_val",
        "final_test_loss",
        "final_test_acc",
        "wall_s",
        "samples_per_s",
        "diverged_step",
        "step",
        "total_steps",
        "model.hidden",
        "data.name",
        "init.name",
        "versions.torch",
    ):
        assert col in df, col
    assert df["final_test_loss"].dtype == float and str(df["step"].dtype) == "Int64"
    assert df["model.hidden"].eq("[16]").all()  # lists as compact JSON strings
    assert df.loc[df["status"] == "diverged", "diverged_step"].notna().all()
    assert df.loc[df["status"] == "done", "diverged_step"].isna().all()
    # every config value equals the run's config as its pack stored it (runs.json), but the tidied ones
    from sweep.config import OPTIMIZER_KNOBS

    records = store.scan(small_sweep)
    for _, row in df.iterrows():
        full = flatten_config(records[row["run_id"]].config)
        for k, v in full.items():
            got = row[k]
            if k == "batch_size":
                assert (got == v) or (v == "full" and row["full_batch"]), (k, got, v)
                continue
            if (
                k.startswith("optimizer.")
                and k.split(".", 1)[1] not in OPTIMIZER_KNOBS[row["optimizer.name"]]
                and any(k.split(".", 1)[1] in reads for reads in OPTIMIZER_KNOBS.values())
            ):
                assert pd.isna(got), (row["run_id"], k, got)  # a knob this optimizer does not read
                continue
            assert (got == v) or (v is None and pd.isna(got)), (row["run_id"], k, got, v)


def test_load_runs_without_sweep_json_infers_swept_keys_and_pending(small_sweep, copy_sweep):
    d = copy_sweep(small_sweep)
    (d / "sweep.json").unlink()
    records = store.scan(d)
    first, second = sorted(records)[:2]
    pack = records[first].pack
    summaries = json.loads((pack / "summary.json").read_text())
    del summaries[first]  # its pack started, wrote nothing of it yet
    (pack / "summary.json").write_text(json.dumps(summaries))
    (d / "submitit").mkdir()  # not a run
    pack = records[second].pack
    configs = json.loads((pack / "runs.json").read_text())
    configs[second] = "lr: [unclosed"  # hand-edited: its config is left out
    (pack / "runs.json").write_text(json.dumps(configs))
    df = load_runs(d)
    assert pd.isna(df.set_index("run_id").loc[second, "lr"])
    assert df.set_index("run_id").loc[second, "status"] in ("done", "diverged", "collapsed")
    assert len(df) == 32
    assert set(df.attrs["swept"]) == set(SWEPT)
    assert df.set_index("run_id").loc[first, "status"] == "pending"
    assert len(df) == 32


def test_load_history_long_frame(small_sweep):
    runs = load_runs(small_sweep)
    h = load_history(small_sweep, runs)
    assert list(h.columns[: 1 + len(SWEPT)]) == ["run_id", *runs.attrs["swept"]]
    for col in ("step", "epoch", "lr_t", "train_loss", "grad_norm", "test_loss", "test_acc"):
        assert col in h, col
    assert set(runs.loc[runs["status"] == "done", "run_id"]) <= set(h["run_id"]) <= set(runs["run_id"])
    for rid, g in h.groupby("run_id"):
        assert g["step"].is_monotonic_increasing
        lr = runs.set_index("run_id").loc[rid, "lr"]
        assert (g["lr"] == lr).all()  # the swept base rate ...
        assert g["lr_t"].max() <= lr + 1e-9  # ... and the scheduled one per step
    # test metrics only at epoch ends
    ends = h.dropna(subset=["test_loss"])
    assert len(ends) and (ends["epoch"].round(6) == ends["epoch"].round()).all()
    done = runs[runs["status"] == "done"].iloc[0]
    last = h[h["run_id"] == done["run_id"]].dropna(subset=["test_loss"]).iloc[-1]
    assert last["test_loss"] == pytest.approx(done["final_test_loss"])


def _variants(base: dict) -> list[dict]:
    """Configs that differ from `base` the ways real sweeps do, and some ways that defeat a line-diff."""
    out = []
    for lr, seed, opt, bs in [(0.1, 1, "adam", 32), (1e-5, 12, "sgd", "full"), (3, 0, "momentum", 1024)]:
        c = json.loads(json.dumps(base))
        c.update(lr=lr, seed=seed, batch_size=bs)
        c["optimizer"]["name"] = opt
        out.append(c)
    c = json.loads(json.dumps(base))
    c["model"]["hidden"] = [128, 64, 32]  # another shape (line count)
    out.append(c)
    c = json.loads(json.dumps(base))
    c["model"]["hidden"] = [7, 9]  # same shape, list items changed
    out.append(c)
    c = json.loads(json.dumps(base))
    c["name"] = "x" * 150 + " y" * 40  # a long string that safe_dump wraps
    out.append(c)
    c = json.loads(json.dumps(base))
    c["name"] = "0.5"  # a string that looks like a number: quoted
    c["wandb"]["entity"] = "null"
    c["out_dir"] = "runs: with colon # and hash"
    out.append(c)
    c = json.loads(json.dumps(base))
    c["optimizer"]["betas"] = [0.5, 0.9]
    c["cluster"]["additional_parameters"] = {"mail-type": "END"}
    c["cluster"]["setup"] = ["module load x", "source ~/venv/bin/activate"]
    c["data"]["root"] = "/data/ünïcode"
    out.append(c)
    c = json.loads(json.dumps(base))
    c["optimizer"]["nesterov"] = True
    c["data"]["n_samples"] = 500
    c["dtype"] = "float64"
    out.append(c)
    return out


def _sweep_of(configs: list[dict], root: Path) -> Path:
    """A sweep folder of one run per config (config files as the runner writes them, a done summary)."""
    for i, c in enumerate(configs):
        d = RunDir(root / f"r{i:02d}")
        write_config(d, c)
        d.summary.write_text(json.dumps({"run_id": d.root.name, "status": "done", "final_test_loss": i / 10}))
    return root


def test_config_json_and_a_legacy_config_yaml_give_the_same_frame(small_sweep, tmp_path, capfd):
    """New runs are read from config.json; runs recorded before it existed, from config.yaml (C YAML parser)."""
    base = store.scan(small_sweep)[load_runs(small_sweep)["run_id"][0]].config
    configs = [base, *_variants(base)]
    sweep = _sweep_of(configs, tmp_path / "s")
    for i, c in enumerate(configs):
        assert json.loads((sweep / f"r{i:02d}" / "config.json").read_text()) == c  # the same config, order kept
    from_json = load_runs(sweep)
    for p in sweep.glob("*/config.json"):
        p.unlink()
    from_yaml = load_runs(sweep)
    pd.testing.assert_frame_equal(from_json, from_yaml)
    assert from_json.attrs == from_yaml.attrs
    assert "sweep: skipped" not in capfd.readouterr().err


def test_config_json_is_read_first_and_a_bad_one_falls_back_to_config_yaml(tmp_path, capfd):
    sweep = _sweep_of([{"lr": 0.1, "model": {"hidden": [8]}}, {"lr": 0.2, "model": {"hidden": [8]}}], tmp_path / "s")
    (sweep / "r00" / "config.json").write_text('{"lr": 0.5, "model": {"hidden": [8]}}')  # yaml still says 0.1
    (sweep / "r01" / "config.json").write_text('{"lr": 0.2, "mo')  # torn: config.yaml stands in
    runs = load_runs(sweep).set_index("run_id")
    assert runs.loc["r00", "lr"] == 0.5 and runs.loc["r01", "lr"] == 0.2
    err = capfd.readouterr().err
    assert f"sweep: skipped {sweep / 'r01' / 'config.json'}: " in err and "read config.yaml instead" in err


@pytest.mark.parametrize("layout", ["packs", "run folders"])
def test_reading_many_runs_gives_one_row_each_in_order(small_sweep, tmp_path, layout):
    """1,000 runs in the real format (a pack each: the most files per run; or a run folder each, as sweeps made
    before the pack store hold them) give one row each, in sweep.json's order."""
    rec = store.scan(small_sweep)[load_runs(small_sweep).iloc[0]["run_id"]]
    cfg, summary = dict(rec.config), dict(rec.summary)
    d = tmp_path / "big"
    runs = []
    for i in range(1000):
        cfg.update(seed=i, lr=[0.001, 0.01, 0.1][i % 3])
        rid = f"{i:012x}"
        if layout == "packs":
            w = store.PackWriter(d, {rid: cfg})
            w.start({})
            w.write_summaries({rid: dict(summary, run_id=rid, final_test_loss=i / 1000)})
        else:
            (d / rid).mkdir(parents=True)
            write_config(RunDir(d / rid), cfg)
            (d / rid / "summary.json").write_text(json.dumps(dict(summary, run_id=rid, final_test_loss=i / 1000)))
        runs.append({"run_id": rid, "overrides": [f"seed={i}", f"lr={cfg['lr']}"]})
    (d / "sweep.json").write_text(json.dumps({"name": "big", "swept": ["lr", "seed"], "runs": runs}))
    df = load_runs(d)  # how fast: benchmarks/bench_store.py (a time asserted here fails on a busy machine)
    assert len(df) == 1000 and df["seed"].tolist() == list(range(1000))
    assert df["final_test_loss"].iloc[-1] == pytest.approx(0.999)


def _wandb_records(sweep_dir: Path) -> list:
    """What wandb.Api().runs(...) would give for the sweep: the config and the summary as
    `sweep sync` sends them (plus wandb's own keys and the last logged metrics)."""
    recs = []
    records = store.scan(sweep_dir)
    for rid in load_runs(sweep_dir)["run_id"]:
        cfg, s = records[rid].config, dict(records[rid].summary)
        s.pop("versions", None)
        s.update({"_step": s.get("step"), "_runtime": 3.2, "_wandb": {"runtime": 3}, "train_loss": 0.1})
        recs.append(
            SimpleNamespace(
                id=rid, config=cfg, summary=s, group=cfg["name"], tags=cfg["wandb"]["tags"], state="finished"
            )
        )
    return recs


def test_frame_from_wandb_records_matches_local_frame(small_sweep):
    local = load_runs(small_sweep)
    recs = _wandb_records(small_sweep)
    remote = frame_from_wandb_records(recs)
    assert set(remote.attrs["swept"]) == set(local.attrs["swept"])
    assert remote.attrs["name"] == "small"
    m = local.merge(remote, on="run_id", suffixes=("", "_w"))
    assert len(m) == len(local)
    assert (m["status"] == m["status_w"]).all()
    assert np.allclose(m["final_test_loss"].astype(float), m["final_test_loss_w"].astype(float), equal_nan=True)
    for k in local.attrs["swept"]:
        same = (m[k].astype(str) == m[f"{k}_w"].astype(str)) | (m[k].isna() & m[f"{k}_w"].isna())
        assert same.all(), k
    # dicts work too, and wandb's {"value": ...} config wrapping is undone
    d = [
        {"id": r.id, "config": {k: {"value": v} for k, v in r.config.items()}, "summary": r.summary, "group": r.group}
        for r in recs
    ]
    again = frame_from_wandb_records(d)
    assert list(again["run_id"]) == list(remote["run_id"])
    assert (again["optimizer.name"] == remote["optimizer.name"]).all()
    assert set(again.attrs["swept"]) == set(SWEPT)  # inferred from the config (no tags given)


def test_from_wandb_asks_the_api_for_the_group(small_sweep, monkeypatch):
    calls = []
    recs = _wandb_records(small_sweep)

    class FakeApi:
        def runs(self, path, filters=None):
            calls.append((path, filters))
            return iter(recs)

    import wandb

    monkeypatch.setattr(wandb, "Api", FakeApi)
    df = collect.from_wandb("me/sweep", "small")
    assert calls == [("me/sweep", {"group": "small"})]
    assert len(df) == 32


def test_write_frame_parquet_and_csv_roundtrip(small_sweep, tmp_path):
    df = load_runs(small_sweep)
    write_frame(df, tmp_path / "r.parquet")
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert len(back) == 32 and list(back.columns) == list(df.columns)
    assert back["batch_size"].dtype == float and 64.0 in set(back["batch_size"].dropna())  # numeric
    assert back["full_batch"].dtype == bool and back["full_batch"].sum() == 16
    write_frame(df, tmp_path / "r.csv")
    assert len(pd.read_csv(tmp_path / "r.csv")) == 32
    with pytest.raises(ValueError):
        write_frame(df, tmp_path / "r.xlsx")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_cli_collect(small_sweep, tmp_path):
    p = sweep_cli("collect", str(small_sweep), check=True)
    assert "32 runs" in p.stdout and "optimizer.name" in p.stdout
    p = sweep_cli("collect", str(small_sweep), "-o", str(tmp_path / "runs.parquet"), check=True)
    assert "32 rows" in p.stdout and (tmp_path / "runs.parquet").exists()
    p = sweep_cli("collect", str(small_sweep), "--history", "-o", str(tmp_path / "h.csv"), check=True)
    h = pd.read_csv(tmp_path / "h.csv")
    assert {"run_id", "lr", "lr_t", "train_loss"} <= set(h.columns) and h["run_id"].nunique() > 20
    bad = sweep_cli("collect", str(small_sweep), "-o", str(tmp_path / "x.txt"))
    assert bad.returncode == 2 and bad.stderr.strip().startswith("sweep: error:") and "parquet" in bad.stderr
    missing = sweep_cli("collect", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no sweep folder" in missing.stderr


def test_unread_optimizer_knobs_are_empty(small_sweep):
    """An SGD run has no betas and an Adam run no momentum (the schema's defaults are not values it used)."""
    df = load_runs(small_sweep)
    sgd, adam = df[df["optimizer.name"] == "sgd"], df[df["optimizer.name"] == "adam"]
    assert sgd["optimizer.betas"].isna().all() and sgd["optimizer.eps"].isna().all()
    assert adam["optimizer.betas"].eq("[0.9,0.999]").all() and adam["optimizer.eps"].notna().all()
    assert adam["optimizer.momentum"].isna().all() and sgd["optimizer.momentum"].eq(0.0).all()
    assert adam["optimizer.weight_decay"].notna().all() and sgd["optimizer.weight_decay"].notna().all()
    assert "optimizer.betas" not in df.attrs["config_keys"]


def test_full_batch_size_from_summary_or_generated_data_size():
    df = pd.DataFrame(
        {
            "batch_size": [32, "full", "full", "full"],
            "n_train": [None, 1437, None, None],
            "data.n_samples": [None, None, 1000, None],
            "data.test_fraction": [0.2] * 4,
        }
    )
    out = collect.tidy_batch_size(df)
    assert list(out.columns[:2]) == ["batch_size", "full_batch"]
    assert out["batch_size"].tolist()[:3] == [32.0, 1437.0, 800.0] and np.isnan(out["batch_size"].iloc[3])
    assert out["full_batch"].tolist() == [False, True, True, True]


def test_a_config_that_is_not_utf8_is_skipped_not_fatal(tmp_path, capfd):
    sweep = _sweep_of([{"lr": 0.1}, {"lr": 0.2}], tmp_path / "s")
    (sweep / "r01" / "config.json").unlink()
    (sweep / "r01" / "config.yaml").write_bytes(b"lr: \xff\xfe\n")  # a foreign file
    runs = load_runs(sweep).set_index("run_id")
    assert runs.loc["r00", "lr"] == 0.1 and runs.loc["r01", "status"] == "done"
    assert f"sweep: skipped {sweep / 'r01' / 'config.yaml'}: " in capfd.readouterr().err


def test_the_scheduled_rate_is_lr_t_in_new_and_old_histories(tmp_path):
    """History rows call the scheduled rate lr_t (the config's lr is the base rate); a history recorded when the
    column was called lr reads the same."""
    sweep = _sweep_of([{"lr": 0.1, "model": {"hidden": [8]}}, {"lr": 0.2, "model": {"hidden": [8]}}], tmp_path / "s")
    pd.DataFrame({"step": [10, 20], "lr_t": [0.1, 0.05], "train_loss": [1.0, 0.9]}).to_parquet(
        sweep / "r00" / "history.parquet"
    )
    pd.DataFrame({"step": [10, 20], "lr": [0.2, 0.1], "train_loss": [1.0, 0.9]}).to_parquet(
        sweep / "r01" / "history.parquet"
    )
    hist = load_history(sweep)
    assert list(hist["lr_t"]) == [0.1, 0.05, 0.2, 0.1]
    assert list(hist["lr"]) == [0.1, 0.1, 0.2, 0.2]  # the swept base rate, from each run's config


def test_validation_columns_survive_a_first_history_without_them(tmp_path):
    """The stacked history takes its columns from the first file and the known ones: validation rows (and
    train_steps) were dropped from every run when the first run had none (it diverged before an epoch end)."""
    sweep = _sweep_of([{"lr": 9.0, "model": {"hidden": [8]}}, {"lr": 0.2, "model": {"hidden": [8]}}], tmp_path / "s")
    pd.DataFrame({"step": [10], "lr_t": [9.0], "train_loss": [1e9]}).to_parquet(sweep / "r00" / "history.parquet")
    pd.DataFrame(
        {
            "step": [10, 10],
            "lr_t": [0.2, 0.2],
            "train_loss": [0.9, None],
            "train_steps": [10, None],
            "val_loss": [None, 0.8],
        }
    ).to_parquet(sweep / "r01" / "history.parquet")
    hist = load_history(sweep)
    assert hist["val_loss"].dropna().tolist() == [0.8] and hist["train_steps"].dropna().tolist() == [10]


def test_a_packs_row_index_gives_the_frame_its_json_gives_and_stands_aside_when_older(tmp_path):
    from sweep.runner import train_runs

    cfgs = [
        make_cfg(tmp_path, "epochs=1", "model.hidden=[8]", "wandb.mode=disabled", f"lr={0.01 * (i + 1):.2f}", "name=g")
        for i in range(store.ROWS_MIN)
    ]
    train_runs(cfgs, pack=len(cfgs), progress=False)
    sweep = tmp_path / "g"
    (pack,) = store.pack_dirs(sweep)
    index = (pack / store.ROWS_FILE).read_bytes()
    fast = load_runs(sweep)
    (pack / store.ROWS_FILE).unlink()
    slow = load_runs(sweep)
    pd.testing.assert_frame_equal(fast, slow, check_dtype=False, check_like=True)
    # summary.json edited after its index was written: the JSON is the truth
    (pack / store.ROWS_FILE).write_bytes(index)
    summaries = json.loads((pack / "summary.json").read_text())
    first = next(iter(summaries))
    summaries[first]["final_test_loss"] = 123.0
    time.sleep(0.01)
    (pack / "summary.json").write_text(json.dumps(summaries))
    assert load_runs(sweep).set_index("run_id").loc[first, "final_test_loss"] == 123.0


def test_tidy_batch_size_warns_of_no_fragmented_frame():
    """Inserting full_batch into the run frame, which load_runs builds column by column (wide and fragmented),
    printed pandas' PerformanceWarning at every read of such a sweep."""
    import warnings

    from sweep.collect import tidy_batch_size

    df = pd.DataFrame({"run_id": ["a", "b"], "batch_size": [64, "full"]})
    with warnings.catch_warnings():  # (growing it is the test's doing, not what is tested)
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        for i in range(120):  # a frame grown one column at a time, as a sweep's config and summary columns
            df[f"c{i}"] = i
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        out = tidy_batch_size(df)
    cols = list(out.columns)
    assert cols.index("full_batch") == cols.index("batch_size") + 1 and out["full_batch"].tolist() == [False, True]

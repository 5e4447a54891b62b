"""Initialisations compared (e.g. lecun_normal, he_normal, zeros, a too-large normal): learning curves, every
seed's final test metric, and the symmetry problem measured: how different the hidden units of each layer are at
the end of training (`unit_spread`: 0 when every unit of a layer has the same incoming weights, as zero weights
leave them; about 1 for a random start). All-zero weights with a non-zero bias show the symmetry problem (units
learn, but identically: spread 0); with all-zero weights and biases no gradient reaches the hidden layers at all.

    python -m sweep.analysis.init SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np

from sweep.analysis._categorical import compare, ranked_panels
from sweep.analysis._common import BLOWN_UP, Sweep, cli, group_label, groups, mean_se, plot_function
from sweep.analysis._findings import pm, ranking, selection_note, set_finding
from sweep.store import load_start, scan

INIT_KEYS = ("init.name", "init.std", "init.scale", "init.bias")


def unit_spread(weights: list) -> list[float]:
    """Per hidden layer (every weight matrix [fan_in, units] but the output layer's): the spread of its units'
    incoming weight vectors, RMS over inputs of the std across units, relative to the RMS of the weights: 0 when
    all units are identical (symmetric), about 1 for independent random units; 0 for an all-zero layer."""
    out = []
    for w in weights[:-1]:
        w = np.asarray(w, dtype=np.float64)
        rms = float(np.sqrt(np.mean(w**2)))
        out.append(float(np.sqrt(np.mean(w.std(axis=1) ** 2)) / rms) if rms > 0 else 0.0)
    return out


def run_spread(ck: dict | None) -> tuple[float, float]:
    """(the smallest `unit_spread` over the hidden layers: the most symmetric layer, the RMS of the hidden layers'
    weights: 0 when no gradient ever reached them) of a run's last checkpoint (`sweep.store.load_start`); NaNs
    without one."""
    if ck is None:
        return float("nan"), float("nan")
    weights = [p.numpy() for p in ck["params"] if p.ndim == 2 and p.shape[0] > 1]
    spread = unit_spread(weights)
    hidden = np.concatenate([w.ravel() for w in weights[:-1]]) if len(weights) > 1 else np.zeros(0)
    rms = float(np.sqrt(np.mean(hidden.astype(np.float64) ** 2))) if hidden.size else float("nan")
    return (min(spread) if spread else float("nan")), rms


def _last_checkpoint(rec, cache: dict) -> dict | None:
    """The run's checkpoint at its end (None for a diverged or pruned run: its weights are no result)."""
    if rec is None or rec.status in ("diverged", "pruned"):
        return None
    return load_start(rec, cache)


@plot_function("init")
def plot_init(sw: Sweep):
    """Initialisation comparison: learning curves, final metrics and the hidden units' spread per init."""
    sw.need(*INIT_KEYS, any_of=True, what="init (or init.std / init.scale / init.bias)")
    keys = sw.config_keys
    runs = sw.runs.copy()
    records, cache = scan(sw.dir), {}
    measured = [run_spread(_last_checkpoint(records.get(rid), cache)) for rid in runs["run_id"]]
    runs["unit_spread"] = [m[0] for m in measured]
    runs["hidden_rms"] = [m[1] for m in measured]
    fig = compare(
        sw,
        keys,
        "Initialisations: symmetric (zeros) and badly scaled starts vs variance-preserving ones",
        extra=("unit_spread", runs["unit_spread"], "spread of the hidden units' weights (0 = all identical)"),
        **ranked_panels(sw),
    )
    set_finding(fig, _finding(sw, runs, keys))
    return fig


def _finding(sw: Sweep, runs, keys) -> str:
    gs = groups(runs, keys)
    parts = []
    parts.append(ranking(runs, keys))
    sym, blown = [], []
    for vals, g in gs:
        name = group_label(keys, vals, runs)
        m, se, n = mean_se(g.loc[g["status"] == "done", "unit_spread"])
        if n and m < 1e-3:
            loss = mean_se(g.loc[g["status"] == "done", "final_val_loss"])
            rms = float(g.loc[g["status"] == "done", "hidden_rms"].max())
            moved = (
                "its hidden weights never moved from 0: no gradient reaches the hidden layers"
                if rms == 0
                else f"its hidden weights moved (RMS {rms:.2g}) but every unit alike"
            )
            sym.append(f"{name} (spread {m:.2g}; {moved}; validation loss {pm(*loss)})")
        bad = int(g["status"].isin(BLOWN_UP).sum())
        if bad:
            blown.append(f"{name} ({bad}/{len(g)})")
    if sym:
        parts.append("Hidden units stay identical (spread < 0.001: the symmetry problem) with " + "; ".join(sym) + ".")
    spread = [(group_label(keys, vals, runs), mean_se(g.loc[g["status"] == "done", "unit_spread"])) for vals, g in gs]
    rest = [m for _, (m, _se, k) in spread if k and m >= 1e-3]
    if rest:
        parts.append(f"The other inits keep distinct units: spread {min(rest):.2g}–{max(rest):.2g}.")
    if blown:
        parts.append("Diverged or collapsed (counted, not averaged): " + ", ".join(blown) + ".")
    return " ".join(parts) + " " + selection_note()


if __name__ == "__main__":
    cli(plot_init)

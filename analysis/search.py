"""A search (search=random|tpe, sweep/search.py): the best validation loss found so far against the compute
spent (model-epochs, in the order trials were asked; a pruned or diverged trial counts the epochs it trained),
and Optuna's parameter importances (fANOVA over the completed trials).

    python -m sweep.analysis.search SWEEP [-o out.png]
"""

from __future__ import annotations

import math

import numpy as np

from sweep.analysis._common import Skip, Sweep, cli, fit_title, log_y, new_figure, plot_function
from sweep.analysis._findings import set_finding
from sweep.study import STUDY_FILE, read_study  # optuna itself loads only when a study is there


@plot_function("search")
def plot_search(sw: Sweep):
    """Search: best validation loss so far vs model-epochs, and parameter importances."""
    journal = sw.dir / STUDY_FILE
    if not journal.is_file():
        raise Skip(f"not a search (no {STUDY_FILE}; search=random or search=tpe make one)")
    import optuna

    study = read_study(journal)
    runs = sw.runs
    if "search.trial" not in runs or not len(runs):
        raise Skip("no trial has a run yet")
    runs = runs.dropna(subset=["search.trial"]).sort_values("search.trial")
    cost = runs["epochs_trained"] if "epochs_trained" in runs else runs["step"] / runs["steps_per_epoch"]
    value = runs["final_val_loss"].where(runs["status"] == "done")
    spent = np.cumsum(cost.fillna(0).to_numpy(float))
    best = np.fmin.accumulate(value.fillna(np.inf).to_numpy(float))
    fig, axes = new_figure(2, width=5.5)
    ax = axes[0, 0]
    ok = np.isfinite(best)
    ax.step(spent[ok], best[ok], where="post", color="C0")
    ax.scatter(spent, value, s=10, color="0.6", label="each completed trial", zorder=1)
    log_y(ax)
    ax.set_xlabel("model-epochs spent (cumulative, in trial order)")
    ax.set_ylabel("final validation loss")
    ax.legend(loc="best", frameon=False)
    fit_title(ax, f"best so far over {len(runs)} trials ({int((runs['status'] == 'pruned').sum())} pruned)")
    ax = axes[0, 1]
    complete = [
        t for t in study.trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)
    ]
    importances = {}
    if len(complete) >= 4 and len(study.trials[0].params) > 1:
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names], color="C1")
        ax.set_xlabel("importance (fANOVA, share of the variance of the objective)")
        fit_title(ax, f"parameter importances over {len(complete)} completed trials")
    else:
        ax.set_axis_off()
        fit_title(ax, "importances need >= 4 completed trials and >= 2 parameters")
    if ok.any():
        total, at = spent[-1], spent[np.argmax(best <= best[ok][-1])]
        top = max(importances, key=importances.get) if importances else None
        set_finding(
            fig,
            f"The best validation loss, {best[ok][-1]:.4g}, was reached after {at:.0f} of {total:.0f} model-epochs"
            + (f"; {top} explains {importances[top]:.0%} of the variance of the objective." if top else "."),
        )
    return fig


if __name__ == "__main__":
    cli(plot_search)

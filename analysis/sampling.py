"""Sampling modes compared (shuffle each epoch, shuffle once, with replacement): the validation loss per epoch and
every seed's final validation loss per mode (what the Finding ranks them on), and the final test metric beside it
(reported only, never ranked on). Without a validation split, the train loss and the test metric as before.

    python -m sweep.analysis.sampling SWEEP [-o out.png]
"""

from __future__ import annotations

from sweep.analysis._categorical import compare, test_metric
from sweep.analysis._common import AGGREGATE, Sweep, cli, plot_function
from sweep.analysis._findings import ranking, set_finding
from sweep.results import SELECTION_METRIC


@plot_function("sampling")
def plot_sampling(sw: Sweep):
    """Sampling modes comparison: validation loss per epoch and final, per way of drawing minibatches."""
    sw.need("sampling")
    runs = sw.runs
    title = "Minibatch sampling: the order in which examples are visited"
    dots = f"each dot a seed, bar = {AGGREGATE} (n = finished of {sw.n_seeds} seeds)"
    hist = sw.history
    has_val = SELECTION_METRIC in runs and runs[SELECTION_METRIC].notna().any()
    if has_val and not hist.empty and "val_loss" in hist and hist["val_loss"].notna().any():
        test, test_label = test_metric(sw)
        fig = compare(
            sw,
            sw.config_keys,
            title,
            curve=("val_loss", "validation loss"),
            finals=[
                (SELECTION_METRIC, f"final validation loss ({sw.loss_unit})", f"ranked on: {dots}"),
                (test, test_label, "reported only, never ranked on"),
            ],
        )
    else:
        fig = compare(sw, sw.config_keys, title)
    set_finding(fig, ranking(runs, sw.config_keys))
    return fig


if __name__ == "__main__":
    cli(plot_sampling)

"""Sampling modes compared (shuffle each epoch, shuffle once, with replacement): the validation loss per epoch and
every seed's final validation loss per mode (what the Finding ranks them on), and the final test metric beside it
(reported only, never ranked on). Without a validation split, the train loss and the test metric as before.

    python -m sweep.analysis.sampling SWEEP [-o out.png]
"""

from __future__ import annotations

from sweep.analysis._categorical import compare, ranked_panels
from sweep.analysis._common import Sweep, cli, plot_function
from sweep.analysis._findings import ranking, set_finding


@plot_function("sampling")
def plot_sampling(sw: Sweep):
    """Sampling modes comparison: validation loss per epoch and final, per way of drawing minibatches."""
    sw.need("sampling")
    runs = sw.runs
    title = "Minibatch sampling: the order in which examples are visited"
    fig = compare(sw, sw.config_keys, title, **ranked_panels(sw))
    set_finding(fig, ranking(runs, sw.config_keys))
    return fig


if __name__ == "__main__":
    cli(plot_sampling)

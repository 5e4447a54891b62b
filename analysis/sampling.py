"""Sampling modes compared (shuffle each epoch, shuffle once, with replacement): learning curves and every seed's
final test metric per mode.

    python -m sweep.analysis.sampling SWEEP [-o out.png]
"""

from __future__ import annotations

from sweep.analysis._categorical import compare
from sweep.analysis._common import Sweep, cli, plot_function
from sweep.analysis._findings import ranking, set_finding


@plot_function("sampling")
def plot_sampling(sw: Sweep):
    """Sampling modes comparison: learning curves and final metrics per way of drawing minibatches."""
    sw.need("sampling")
    fig = compare(sw, sw.config_keys, "Minibatch sampling: the order in which examples are visited")
    set_finding(fig, ranking(sw.runs, sw.config_keys))
    return fig


if __name__ == "__main__":
    cli(plot_sampling)

"""Initialisations compared (e.g. lecun_normal, he_normal, zeros, a too-large normal): learning curves and every
seed's final test metric per initialisation.

    python -m analysis.init SWEEP [-o out.png]
"""

from __future__ import annotations

from analysis._categorical import compare
from analysis._common import Sweep, cli, plot_function

INIT_KEYS = ("init.name", "init.std", "init.scale", "init.bias")


@plot_function("init")
def plot_init(sw: Sweep):
    """Initialisation comparison: learning curves and final metrics per init (incl. zeros, too-large normal)."""
    sw.need(*INIT_KEYS, any_of=True, what="init (or init.std / init.scale / init.bias)")
    return compare(
        sw, sw.config_keys, "Initialisations: symmetric (zeros) and badly scaled starts vs variance-preserving ones"
    )


if __name__ == "__main__":
    cli(plot_init)

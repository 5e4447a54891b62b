"""Why variance ∝ 1/fan_in: the scale of the activations through a deep network at initialisation, per init.

A probe network (DEPTH hidden layers of WIDTH units, the sweep's activation) is initialised by each of the
sweep's initialisations (sweep/init.py, as training does) and fed standard Gaussian inputs of width WIDTH; the
plot draws the RMS of each layer's pre-activations. With variance 1/fan_in (lecun_normal) for a linear or tanh
layer, 2/fan_in under ReLU (he_normal: ReLU zeroes half the units), the scale stays put layer after layer; a fixed
std (normal) shrinks or grows it geometrically; all-zero weights leave nothing. No training: it measures what the
start hands the optimizer.

    python -m sweep.analysis.depth SWEEP [-o out.png]
"""

from __future__ import annotations

import numpy as np

from sweep.analysis._common import Skip, Sweep, cli, group_label, groups, log_y, new_figure, plot_function
from sweep.analysis._findings import set_finding
from sweep.analysis.init import INIT_KEYS

DEPTH, WIDTH, SAMPLES = 10, 256, 512
INIT_DEFAULTS = {"init.name": "lecun_normal", "init.std": 0.01, "init.scale": 1.0}


def activation_scales(
    scheme: str, std: float, scale: float, activation: str, inputs: int, seed: int = 0
) -> list[float]:
    """RMS of each hidden layer's pre-activations (DEPTH of them) of the probe network initialised by `scheme`
    (with `std`, `scale`), for SAMPLES standard Gaussian inputs of width `inputs`; biases are 0."""
    import torch

    from sweep.init import init_weight

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(SAMPLES, inputs, generator=g, dtype=torch.float64)
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": torch.nn.functional.gelu}
    out, fan_in = [], inputs
    for _ in range(DEPTH):
        w = init_weight(scheme, fan_in, WIDTH, generator=g, std=std, scale=scale, dtype=torch.float64)
        pre = x @ w
        out.append(float(pre.pow(2).mean().sqrt()))
        x, fan_in = act[activation](pre), WIDTH
    return out


@plot_function("depth")
def plot_depth(sw: Sweep):
    """Activation scale through depth per initialisation: why variance ∝ 1/fan_in."""
    keys = sw.need(*INIT_KEYS, any_of=True, what="init (or init.std / init.scale / init.bias)")
    runs = sw.runs
    activation = str(runs["model.activation"].mode().iat[0]) if "model.activation" in runs else "relu"
    fig, axes = new_figure(ncols=1, width=7.0, height=4.4)
    ax = axes[0][0]
    lines = []
    probe_keys = [k for k in keys if k != "init.bias"] or keys  # biases are 0 in the probe
    for vals, g in groups(runs, probe_keys):
        first = g.iloc[0]
        setting = {k: first[k] if k in g and first[k] == first[k] else v for k, v in INIT_DEFAULTS.items()}
        scales = activation_scales(
            str(setting["init.name"]), float(setting["init.std"]), float(setting["init.scale"]), activation, WIDTH
        )
        label = group_label(probe_keys, vals, runs)
        shown = [s if s > 0 else np.nan for s in scales]  # a log axis: all-zero layers are said, not drawn
        ax.plot(range(1, DEPTH + 1), shown, marker="o", label=label)
        lines.append((label, scales))
    if not lines:
        raise Skip("no initialisation to probe")
    ax.set_xlabel(f"hidden layer of the probe network ({WIDTH} units each, {activation})")
    ax.set_ylabel("RMS of the layer's pre-activations")
    log_y(ax)
    ax.legend(fontsize=10, title="init", title_fontsize=10)
    fig.suptitle(f"Activation scale through {DEPTH} layers at initialisation (Gaussian inputs)\n{sw.describe()}")
    set_finding(fig, _finding(lines))
    return fig


def _finding(lines: list[tuple[str, list[float]]]) -> str:
    parts = []
    for label, scales in lines:
        first, last = scales[0], scales[-1]
        if first == 0:
            parts.append(f"{label}: every pre-activation is 0 (nothing reaches the output)")
            continue
        per_layer = (last / first) ** (1 / (len(scales) - 1)) if last > 0 else 0.0
        kept = 0.9 <= per_layer <= 1 / 0.9
        what = "keeps its scale" if kept else ("shrinks" if per_layer < 1 else "grows")
        factor = f"{last / first:.2g}×" if last > 0 else "to 0"
        parts.append(f"{label}: layer 1 → {len(scales)} {what} ({factor}, ×{per_layer:.2f} a layer)")
    return "; ".join(parts) + (
        ". Variance ∝ 1/fan_in (2/fan_in under ReLU) is what keeps the scale: a fixed std multiplies it by a factor "
        "a layer, so a deep network starts vanished or exploded."
    )


if __name__ == "__main__":
    cli(plot_depth)

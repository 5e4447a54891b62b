"""The report of a check: the table, one line per failure, and the loss curves."""

from __future__ import annotations

import math

from sweep.check.cases import Like
from sweep.check.grading import Result
from sweep.check.harness import RTOL, STEPS


# ------------------------------------------------------------------------------------------------ reporting
def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.1e}"


def report(name: str, like_name: str, like: Like, results: list[Result]) -> str:
    """The table (check, max rel. diff vs torch.optim and vs sweep.optim, PASS/FAIL), then one line per failure:
    where the student first parts from torch.optim and the likely cause."""
    ref = f"torch.optim.{like.torch_cls.__name__}"
    lines = [f"{name} vs {ref} (--like {like_name}): MLP in float64, {STEPS} steps, rtol {RTOL:g}", ""]
    width = max(len(r.check.label) for r in results)
    lines.append(f"{'check':<{width}}  {'vs torch':>9}  {'vs sweep':>9}  result")
    for r in results:
        if r.skipped:
            lines.append(f"{r.check.label:<{width}}  {'-':>9}  {'-':>9}  SKIPPED: {r.skipped}")
            continue
        lines.append(
            f"{r.check.label:<{width}}  {_fmt(r.vs_torch.worst):>9}  {_fmt(r.vs_sweep.worst):>9}  "
            f"{'PASS' if r.passed else 'FAIL'}"
        )
    failed = [r for r in results if not r.passed]
    skipped = [r for r in results if r.skipped]
    causes = list(dict.fromkeys(r.cause for r in failed if r.cause))  # distinct, in order: said once each
    if failed:
        lines.append("")
    for r in failed:
        first = r.vs_torch.first
        if first is None or first[0] == r.student.blew_up:  # parted by blowing up
            where = f"step {(r.student.blew_up or 0) + 1}: {r.student.error}"
        else:
            where = f"step {first[0] + 1}, parameter {first[1]} (rel. diff {_fmt(first[2])})"
        mark = f" [cause {causes.index(r.cause) + 1}]" if r.cause else ""
        lines.append(f"FAIL {r.check.label}: first parts from {ref} at {where}{mark}")
    for i, cause in enumerate(causes):
        lines.append(f"likely cause {i + 1}: {cause}")
    lines.append("")
    ran = len(results) - len(skipped)
    lines.append(
        f"{ran - len(failed)}/{ran} checks passed" + (f" ({len(skipped)} skipped: see SKIPPED)" if skipped else "")
    )
    return "\n".join(lines)


def plot(results: list[Result], name: str, ref: str, path: str) -> None:
    """One panel per check: the student's and torch.optim's minibatch loss per step (Agg backend, a PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(results))
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.5 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results):
        ax.plot(range(1, len(r.reference.losses) + 1), r.reference.losses, label=ref, lw=2.5, alpha=0.6)
        ax.plot(range(1, len(r.student.losses) + 1), r.student.losses, label=name, lw=1, ls="--")
        verdict = "SKIPPED" if r.skipped else "PASS" if r.passed else "FAIL"
        ax.set(title=f"{verdict}  {r.check.label}", xlabel="step", ylabel="loss", yscale="log")
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(results) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""Pruning inside a pack: at each epoch end, every model that is a search trial reports its validation loss to
its study, and Optuna's pruner says whether it stops. A pruned model leaves the pack as a diverged one does.

A run is a trial when its config has `search.trial` (a trial number) and `search.study` (the journal file): both
travel with the config, so this works wherever the pack trains (another process, a SLURM node).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class TrialPruning:
    """The trials among a pack's runs, and their study (opened once per pack)."""

    def __init__(self, cfgs: Sequence[dict]) -> None:
        from sweep.study import open_study

        first = next(c for c in cfgs if _is_trial(c))
        self.rungs_per_epoch = int(first["search"].get("rungs_per_epoch", 1))
        self.study = open_study(first["search"]["study"], first["search"], first["epochs"], create=False)
        by_number = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        # optuna.trial.Trial needs the storage's trial id; the config carries the trial number users see
        self.ids = [by_number[c["search"]["trial"]]._trial_id if _is_trial(c) else None for c in cfgs]

    @staticmethod
    def wanted(cfgs: Sequence[dict]) -> bool:
        """Does any run of this pack report to a study with a pruner?"""
        return any(_is_trial(c) and c["search"].get("pruner", "none") != "none" for c in cfgs)

    def keep(self, idx: Sequence[int]) -> None:
        self.ids = [self.ids[i] for i in idx]

    def prune(self, rung: int, val_loss: np.ndarray, epoch: float) -> list[bool]:
        """Report each trial's validation loss at `rung` (1, 2, ...: rungs_per_epoch per epoch, Optuna's step;
        `epoch` epochs trained) and return which are to stop now."""
        import optuna

        from sweep.study import PRUNED_AT

        out = [False] * len(self.ids)
        # The pack's trials reach the rung together; Optuna's pruners judge one trial at a time against those
        # judged before. Judged in the pack's order, a decision would depend on the model's place in the pack
        # (the first has no competitor); judged best first, it depends only on the values.
        sign = -1.0 if self.study.direction.name == "MAXIMIZE" else 1.0
        order = sorted(
            (
                k
                for k, (trial_id, loss) in enumerate(zip(self.ids, val_loss))
                if trial_id is not None and np.isfinite(loss)
            ),
            key=lambda k: sign * float(val_loss[k]),
        )
        for k in order:
            trial = optuna.trial.Trial(self.study, self.ids[k])
            trial.report(float(val_loss[k]), rung)
            out[k] = bool(trial.should_prune())
            if out[k]:  # the asker tells the study; this says why (in epochs)
                trial.set_user_attr(PRUNED_AT, epoch)
        return out

    def tell_pruned(self, ks: Sequence[int]) -> None:
        """Tell the study now that trials ks (places in the pack) are pruned, once their summaries have landed:
        left RUNNING until the whole batch returned, a trial of a search killed in between was asked again,
        failed on its finished run and replaced by a new one. The asker skips trials told here."""
        import optuna
        from optuna.trial import TrialState

        for k in ks:
            if self.ids[k] is not None:
                self.study.tell(optuna.trial.Trial(self.study, self.ids[k]), state=TrialState.PRUNED)


def _is_trial(cfg: dict) -> bool:
    s: Any = cfg.get("search") or {}
    return s.get("trial") is not None and bool(s.get("study"))

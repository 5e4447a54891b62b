"""sweep.preflight: the checks that need the data, run before anything is written or submitted (a student's
optimizer's first step: tests/faults/test_student_code.py)."""

from __future__ import annotations

import pytest
from conftest import make_cfg

from sweep.config import ConfigError


def test_an_accuracy_objective_on_a_regression_task_is_refused(tmp_path):
    from sweep.preflight import check_data

    with pytest.raises(ConfigError, match="objective=final_val_acc but data=teacher is a regression task"):
        check_data([make_cfg(tmp_path, "data=teacher", "objective=final_val_acc")])
    check_data([make_cfg(tmp_path, "data=teacher", "objective=final_val_loss")])

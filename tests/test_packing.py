"""sweep.packing: which configs train together (equal shapes, one optimizer family) and how many fit."""

from __future__ import annotations

from conftest import make_cfg

from sweep.packing import auto_pack_size, plan_packs

TINY = ["epochs=1", "model.hidden=[8]", "wandb.mode=disabled"]


def test_configs_that_cannot_share_shapes_are_split_into_packs(tmp_path):
    cfgs = [make_cfg(tmp_path, *TINY, f"lr={lr}", f"optimizer={o}") for o in ("sgd", "adam") for lr in (0.1, 0.2)]
    cfgs += [make_cfg(tmp_path, *TINY, "model.hidden=[16]")]
    packs = plan_packs(cfgs, pack=64)
    assert sorted(len(p) for p in packs) == [1, 2, 2]
    assert all(len({c["optimizer"]["name"] for c in p}) == 1 for p in packs)
    assert [len(p) for p in plan_packs(cfgs[:2], pack=1)] == [1, 1]


def test_auto_pack_size_shrinks_for_models_that_would_not_fit(tmp_path):
    small = make_cfg(tmp_path, *TINY)
    huge = make_cfg(tmp_path, *TINY, "model.hidden=[8192,8192]")
    assert auto_pack_size(small, 64, 10, 64) == 64  # capped where batching stops paying on a CPU
    k = auto_pack_size(huge, 64, 10, 64)
    assert 1 <= k < 64
    packs = plan_packs(
        [make_cfg(tmp_path, *TINY, "model.hidden=[8192,8192]", f"seed={s}") for s in range(k + 1)], pack="auto"
    )
    assert [len(p) for p in packs] == [k, 1]

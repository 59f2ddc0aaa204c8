"""The one definition of a mask's table columns and its hash (physics.masks), shared by the
evaluation's per_volume.csv, training's masks.csv and provenance.json."""

from __future__ import annotations

import torch

from mri_recon.physics.masks import MASK_COLUMNS, ColumnMaskFunc, mask_columns, mask_hash


def test_mask_hash_tells_masks_apart() -> None:
    mask = torch.zeros(37, dtype=torch.bool)
    mask[15:21] = True
    same = mask.numpy().copy()
    other = mask.clone()
    other[3] = True
    assert mask_hash(mask) == mask_hash(same) and len(mask_hash(mask)) == 12
    assert mask_hash(other) != mask_hash(mask)
    assert mask_hash(mask) != mask_hash(torch.cat([mask, torch.zeros(1, dtype=torch.bool)]))


def test_mask_columns_describe_the_mask() -> None:
    s = ColumnMaskFunc("random", [0.08], [4])(37, seed=3)
    columns = mask_columns(s.mask, "random", "3", s.num_low_frequencies)
    assert tuple(columns) == MASK_COLUMNS
    assert columns["mask_num_sampled"] == int(s.mask.sum()) == s.num_sampled
    assert columns["num_low_frequencies"] == s.num_low_frequencies
    assert columns["mask_hash"] == mask_hash(s.mask)
    assert (columns["mask_type"], columns["mask_seed"]) == ("random", "3")

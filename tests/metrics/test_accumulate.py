"""Per-volume metrics from per-slice records, across fake and real (gloo) ranks."""

from __future__ import annotations

import json
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mri_recon.metrics.accumulate import (
    SliceStats,
    aggregate,
    deduplicate,
    slice_stats,
    volume_table,
)
from mri_recon.metrics.image import volume_metrics


def random_records(seed: int) -> tuple[list[SliceStats], dict[str, dict[str, float]]]:
    """Slice records of 4 random volumes (different slice counts) and their true metrics."""
    rng = np.random.default_rng(seed)
    records, expected = [], {}
    for v, num_slices in enumerate([3, 5, 1, 4]):
        target = rng.random((num_slices, 11, 9)).astype(np.float32) * (v + 1)
        recon = (target + 0.1 * rng.standard_normal(target.shape)).astype(np.float32)
        fname = f"vol{v}.h5"
        records += slice_stats(
            [fname] * num_slices,
            torch.arange(num_slices),
            torch.from_numpy(target),
            torch.from_numpy(recon),
            torch.full((num_slices,), float(target.max())),
        )
        expected[fname] = volume_metrics(target, recon)
    return records, expected


def split_like_distributed_sampler(records: list[SliceStats], ranks: int, seed: int) -> list:
    """Shuffle, pad by repeating (as DistributedSampler does) and deal out to ranks."""
    order = records[:]
    random.Random(seed).shuffle(order)
    order += order[: (-len(order)) % ranks + ranks]  # padding plus extra duplicates
    return [order[r::ranks] for r in range(ranks)]


def test_aggregation_over_fake_ranks_with_duplicates_equals_volume_metrics() -> None:
    records, expected = random_records(0)
    parts = split_like_distributed_sampler(records, ranks=3, seed=1)
    assert sum(len(p) for p in parts) > len(records)  # duplicates present
    gathered = [r for part in parts for r in part]
    assert len(deduplicate(gathered)) == len(records)
    table = {row["fname"]: row for row in volume_table(gathered)}
    for fname, metrics in expected.items():
        assert table[fname]["ssim"] == metrics["ssim"]  # same per-slice SSIMs, same order
        assert table[fname]["psnr"] == pytest.approx(metrics["psnr"], rel=1e-10)
        assert table[fname]["nmse"] == pytest.approx(metrics["nmse"], rel=1e-5)
    means = aggregate(gathered)
    assert means["num_volumes"] == 4
    for name in ("ssim", "psnr", "nmse"):
        assert means[name] == pytest.approx(np.mean([m[name] for m in expected.values()]), rel=1e-5)


def test_aggregation_errors() -> None:
    with pytest.raises(ValueError, match="no validation"):
        aggregate([])
    with pytest.raises(ValueError, match="slice_stats"):
        slice_stats(
            ["a"], torch.zeros(1), torch.zeros(1, 4, 4), torch.zeros(1, 4, 5), torch.ones(1)
        )


GATHER_WORKER = """
import json, pickle, sys
from pathlib import Path
import torch
from mri_recon.metrics.accumulate import aggregate, gather_records
rank, world, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
torch.distributed.init_process_group(
    "gloo", init_method=f"file://{out}/init", rank=rank, world_size=world)
part = pickle.loads((out / f"part{rank}.pkl").read_bytes())
(out / f"rank{rank}.json").write_text(json.dumps(aggregate(gather_records(part))))
torch.distributed.destroy_process_group()
"""


def test_gather_records_across_two_gloo_processes(tmp_path: Path) -> None:
    records, expected = random_records(0)
    for rank, part in enumerate(split_like_distributed_sampler(records, ranks=2, seed=2)):
        (tmp_path / f"part{rank}.pkl").write_bytes(pickle.dumps(part))
    procs = [
        subprocess.Popen([sys.executable, "-c", GATHER_WORKER, str(r), "2", str(tmp_path)])
        for r in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert results[0] == results[1]  # identical on every rank
    assert results[0] == pytest.approx(aggregate(records), rel=1e-12)
    assert results[0]["ssim"] == pytest.approx(np.mean([m["ssim"] for m in expected.values()]))

"""Per-volume validation metrics from per-slice statistics, correct under DDP.

Validation sees a volume one batch of slices at a time, possibly spread over several
ranks, and ``DistributedSampler`` pads the last batches by repeating samples. Each rank
therefore keeps a small record per slice (:class:`SliceStats`); the records of all ranks
are gathered (:func:`gather_records`), deduplicated by ``(fname, slice_num)`` and combined
per volume (:func:`aggregate`) into exactly what ``fastmri.evaluate`` (and
:func:`mri_recon.metrics.image.volume_metrics`) computes from the whole volume:

- NMSE = sum of squared errors / sum of squared target, over the volume;
- PSNR = 10 log10(max^2 / MSE) with MSE over the volume and max = the target volume max;
- SSIM = mean over slices of scikit-image's SSIM with data_range = the volume max, each
  computed by :func:`mri_recon.metrics.image.slice_ssim` and combined in slice order by
  :func:`mri_recon.metrics.image.mean_slice_ssim` (bit-identical to fastMRI's loop).

Sums are accumulated in float64 from float32 squared differences, as scikit-image's MSE
does, so PSNR agrees to ~1e-12 relative; fastMRI's NMSE uses float32 norms, so NMSE agrees
to float32 rounding (~1e-6 relative). No Lightning here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from mri_recon.metrics.image import mean_slice_ssim, slice_ssim


@dataclass(frozen=True)
class SliceStats:
    """What one validation slice contributes to its volume's metrics.

    Attributes:
        fname: volume file name (the key that groups slices).
        slice_num: slice index in the volume (deduplication key with ``fname``).
        sse: sum over pixels of (recon - target)^2.
        sst: sum over pixels of target^2.
        num_pixels: h * w.
        ssim: the slice SSIM with data_range = ``max_value``.
        slice_max: max of the target slice (the volume max is the max over slices).
        max_value: the target volume max handed in with the batch (``attrs['max']``).
    """

    fname: str
    slice_num: int
    sse: float
    sst: float
    num_pixels: int
    ssim: float
    slice_max: float
    max_value: float


def slice_stats(
    fnames: Sequence[str],
    slice_nums: torch.Tensor,
    target: torch.Tensor,
    recon: torch.Tensor,
    max_value: torch.Tensor,
) -> list[SliceStats]:
    """Per-slice statistics of a batch of reconstructions.

    Args:
        fnames: B volume file names.
        slice_nums: int (B,) slice indices.
        target: float32 (B, h, w) ground truth.
        recon: float (B, h, w) reconstruction (cast to float32, the dtype of saved recons).
        max_value: float (B,) target volume max of each slice's volume.

    Returns:
        B :class:`SliceStats`, in batch order.
    """
    b = target.shape[0]
    if (
        target.ndim != 3
        or recon.shape != target.shape
        or (len(fnames), *slice_nums.shape, *max_value.shape) != (b, b, b)
    ):
        raise ValueError(
            f"slice_stats: need target and recon (B, h, w), B fnames, slice_nums (B,) and "
            f"max_value (B,), got {tuple(target.shape)}, {tuple(recon.shape)}, {len(fnames)}, "
            f"{tuple(slice_nums.shape)}, {tuple(max_value.shape)}"
        )
    t = target.detach().to(torch.float32)
    r = recon.detach().to(torch.float32)
    # the batch crosses to the host once (no per-slice device syncs)
    sse = ((r - t) ** 2).to(torch.float64).sum(dim=(-2, -1)).tolist()  # (B,)
    sst = (t**2).to(torch.float64).sum(dim=(-2, -1)).tolist()  # (B,)
    slice_max = t.amax(dim=(-2, -1)).tolist()  # (B,)
    t_np, r_np = t.cpu().numpy(), r.cpu().numpy()
    max_list = max_value.detach().tolist()
    nums = slice_nums.tolist()
    return [
        SliceStats(
            fname=str(fnames[i]),
            slice_num=int(nums[i]),
            sse=sse[i],
            sst=sst[i],
            num_pixels=int(t_np[i].size),
            ssim=slice_ssim(t_np[i], r_np[i], max_list[i]),
            slice_max=slice_max[i],
            max_value=max_list[i],
        )
        for i in range(b)
    ]


def gather_records(records: list[SliceStats]) -> list[SliceStats]:
    """All ranks' records, in rank order (a no-op without an initialised process group).

    A collective: every rank must call it, and every rank gets the same list.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(records)
    gathered: list[list[SliceStats] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(records))
    return [r for part in gathered for r in (part or [])]


def deduplicate(records: Iterable[SliceStats]) -> list[SliceStats]:
    """The first record of every ``(fname, slice_num)`` (sampler padding repeats some),
    sorted by (fname, slice_num)."""
    unique: dict[tuple[str, int], SliceStats] = {}
    for r in records:
        unique.setdefault((r.fname, r.slice_num), r)
    return [unique[k] for k in sorted(unique)]


def volume_table(records: Iterable[SliceStats]) -> list[dict[str, float | int | str]]:
    """Per-volume NMSE, PSNR and SSIM, as ``fastmri.evaluate`` computes them, of slice records
    from any ranks (duplicates allowed): one dict ``fname, num_slices, nmse, psnr, ssim``
    (over the slices seen) per volume, sorted by fname."""
    volumes: dict[str, list[SliceStats]] = {}
    for r in deduplicate(records):
        volumes.setdefault(r.fname, []).append(r)  # slice order (deduplicate sorts)
    return [_volume_row(fname, rows) for fname, rows in volumes.items()]


def _volume_row(fname: str, rows: list[SliceStats]) -> dict[str, float | int | str]:
    vmax = max(r.slice_max for r in rows)
    # The slices seen may be a subset of the volume (val_sample_rate, limit_val_batches):
    # only a slice brighter than the stated volume max is an inconsistency.
    if any(vmax > r.max_value * (1 + 1e-6) for r in rows):
        warnings.warn(
            f"{fname}: max_value {rows[0].max_value} differs from the target volume max "
            f"{vmax}; validation SSIM uses max_value, the evaluation uses the volume max",
            stacklevel=3,
        )
    sse = math.fsum(r.sse for r in rows)
    sst = math.fsum(r.sst for r in rows)
    mse = sse / sum(r.num_pixels for r in rows)
    return {
        "fname": fname,
        "num_slices": len(rows),
        "nmse": sse / sst if sst > 0 else math.inf,
        "psnr": 10.0 * math.log10(vmax**2 / mse) if mse > 0 else math.inf,
        "ssim": mean_slice_ssim(r.ssim for r in rows),
    }


def mean_over_volumes(table: list[dict[str, float | int | str]]) -> dict[str, float]:
    """``{"nmse", "psnr", "ssim", "num_volumes"}``: the mean over the volumes of a
    :func:`volume_table` (ValueError if it is empty)."""
    if not table:
        raise ValueError("mean_over_volumes: no validation volumes to average")
    out = {k: float(np.mean([float(row[k]) for row in table])) for k in ("nmse", "psnr", "ssim")}
    out["num_volumes"] = float(len(table))
    return out


def aggregate(records: Iterable[SliceStats]) -> dict[str, float]:
    """:func:`mean_over_volumes` of the :func:`volume_table` of ``records``."""
    return mean_over_volumes(volume_table(records))

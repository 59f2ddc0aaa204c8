"""Choosing a reconstructor's weight on a validation subset (``mri-recon-tune-tv``).

Framework-free: the CLI (:mod:`mri_recon.cli.tune_tv`) builds the settings and one method per
lambda; :func:`sweep` runs them all on the same slices, masks and coil maps, walking the
evaluation's own loop (:func:`~mri_recon.evaluation.run.iter_volumes`: selection, prescan,
per-file masks) with its batched reconstruction and fastMRI's per-volume metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mri_recon.contract import Reconstructor
from mri_recon.evaluation.run import (
    EvalSettings,
    check_target,
    iter_volumes,
    reconstruct_volume,
    score_volume,
)
from mri_recon.metrics.image import METRICS
from mri_recon.metrics.optional import OPTIONAL_METRICS, optional_metrics
from mri_recon.physics.masks import apply_mask

CURVE_COLUMNS = ("lam", "ssim", "psnr", "nmse", "seconds_per_slice", "num_volumes", "num_slices")


def central_slices(num_slices: int, count: int | None) -> slice:
    """The ``count`` central slices of a volume (all if None or more than it has)."""
    if count is None or count >= num_slices:
        return slice(0, num_slices)
    start = (num_slices - count) // 2
    return slice(start, start + count)


def sweep(
    settings: EvalSettings, methods: Mapping[float, Reconstructor], max_slices: int | None
) -> list[dict[str, Any]]:
    """Per-(volume, lambda) metrics of one method per lambda on the central ``max_slices``
    slices of each volume of ``settings`` (a split with targets).

    Returns:
        One dict per volume and lambda: ``fname, lam, nmse, psnr, ssim, seconds_per_slice,
        num_slices``. Metrics use the whole target volume's max.

    Raises:
        DataError: a non-finite target, reconstruction or metric (file and slice named).
    """
    named = {f"{lam!r}": method for lam, method in methods.items()}
    rows = []
    for info, volume, vmask in iter_volumes(settings, desc="tune"):
        keep = central_slices(info.num_slices, max_slices)
        masked_kspace = apply_mask(volume.kspace[keep], vmask.mask)  # (s, C, H, W)
        target = check_target(info, volume.target[keep].numpy(), keep.start)  # (s, h, w)
        max_value = float(volume.target.max())
        recons = reconstruct_volume(
            named,
            masked_kspace,
            vmask.mask,
            tuple(target.shape[-2:]),
            device=settings.device,
            batch_size=settings.batch_size,
            coil_maps=settings.coil_maps,
        )
        for lam in methods:
            recon, seconds = recons[f"{lam!r}"]
            # a NaN anywhere stops here, naming file and slice: never a lambda from a NaN curve
            metrics = score_volume(
                info, f"lam={lam!r}", target, recon.numpy(), max_value, keep.start
            )
            # the optional metrics settings asks for (ssim_fg to select by it), data range alike
            metrics.update(optional_metrics(target, recon.numpy(), settings.metrics, max_value))
            row = {"fname": info.fname, "lam": lam, **metrics, "seconds_per_slice": seconds}
            rows.append({**row, "num_slices": target.shape[0]})
    return rows


def curve(rows: Sequence[dict[str, Any]], lams: Sequence[float]) -> list[dict[str, Any]]:
    """Mean over volumes of each metric and of the seconds per slice, per lambda."""
    out = []
    for lam in lams:
        mine = [r for r in rows if r["lam"] == lam]
        point = {
            "lam": lam,
            "num_volumes": len(mine),
            "num_slices": sum(r["num_slices"] for r in mine),
        }
        extra = [m for m in OPTIONAL_METRICS if mine and m in mine[0]]
        for key in (*METRICS, *extra, "seconds_per_slice"):
            point[key] = float(np.mean([r[key] for r in mine]))
        out.append(point)
    return out


def best_lambda(points: Sequence[dict[str, Any]], select_by: str) -> dict[str, Any]:
    """The point with the best ``select_by`` (highest SSIM/PSNR, lowest NMSE)."""
    sign = -1.0 if select_by == "nmse" else 1.0
    return max(points, key=lambda p: sign * p[select_by])


def curve_table(points: Sequence[dict[str, Any]], best: dict[str, Any], name: str) -> str:
    """The curve as a Markdown table with ``name`` (e.g. ``tv.lam``) heading the lambda
    column, the chosen lambda marked."""
    lines = [f"| {name} | SSIM | PSNR (dB) | NMSE | s/slice |", "|---|---|---|---|---|"]
    for p in points:
        mark = " **<-**" if p is best else ""
        lines.append(
            f"| {p['lam']:g}{mark} | {p['ssim']:.4f} | {p['psnr']:.2f} | "
            f"{p['nmse']:.4g} | {p['seconds_per_slice']:.3g} |"
        )
    return "\n".join(lines)

"""``mri-recon-tune-tv``: choose the TV weight ``tv.lam`` on a validation subset (Hydra).

    mri-recon-tune-tv data.root=DIR data.challenge=singlecoil mask=random_4x

Sweeps ``tv.lam`` over ``lams`` (default: ``num_lams`` log-spaced values around ``tv.lam``
of ``configs/tv/default.yaml``) on the central ``max_slices_per_volume`` slices of the
first ``data.max_volumes`` volumes, with the evaluation's own loop over volumes
(:func:`mri_recon.evaluation.iter_volumes`: selection, ``data.prescan``, per-file masks)
and its batched reconstruction with shared coil maps (the ``coils`` group: ``coils=espirit``
for a multi-coil search with ESPIRiT maps) and fastMRI metrics. All lambdas see the same
slices, masks and coil maps. Prints the curve (mean SSIM, PSNR,
NMSE and seconds per slice per lambda), writes ``tv_lambda_curve.csv`` and
``tv_lambda.yaml`` (``tv:\\n  lam: ...``) into the run directory atomically, and prints
the override to use (``tv.lam=...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig

from mri_recon import checks
from mri_recon.cli.config import register_resolvers
from mri_recon.cli.errors import ConfigError, run_hydra_main
from mri_recon.cli.evaluate import resolve_device, settings_from_config
from mri_recon.cli.validate import build_group, checked
from mri_recon.evaluation.run import iter_volumes, reconstruct_volume
from mri_recon.fileio import write_atomic, write_csv
from mri_recon.metrics.image import METRICS, volume_metrics
from mri_recon.physics.masks import apply_mask

CURVE_COLUMNS = ("lam", "ssim", "psnr", "nmse", "seconds_per_slice", "num_volumes", "num_slices")


def lambda_grid(cfg: DictConfig) -> list[float]:
    """The lambdas to try: ``cfg.lams``, or ``cfg.num_lams`` values log-spaced from
    ``tv.lam / lam_span`` to ``tv.lam * lam_span`` (3 significant digits), ascending."""
    if cfg.lams is not None:
        lams = list(cfg.lams) if isinstance(cfg.lams, (ListConfig, list)) else []
        numbers = [v for v in lams if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not lams or len(numbers) < len(lams) or not all(0 < v < np.inf for v in numbers):
            raise ConfigError(
                "lams", f"expected a non-empty list of finite numbers > 0, got {cfg.lams!r}"
            )
        return sorted({float(v) for v in lams})
    num = checked(checks.integer, "num_lams", cfg.num_lams, 2)
    span = checked(checks.number, "lam_span", cfg.lam_span, 1, open_low=True)
    center = checked(checks.positive, "tv.lam", cfg.tv.lam)  # the sweep's centre
    return sorted({float(f"{v:.3g}") for v in np.geomspace(center / span, center * span, num)})


def central_slices(num_slices: int, count: int | None) -> slice:
    """The ``count`` central slices of a volume (all if None or more than it has)."""
    if count is None or count >= num_slices:
        return slice(0, num_slices)
    start = (num_slices - count) // 2
    return slice(start, start + count)


def sweep(cfg: DictConfig, lams: Sequence[float]) -> list[dict[str, Any]]:
    """Per-(volume, lambda) metrics of TV on the validation subset.

    Returns:
        One dict per volume and lambda: ``fname, lam, nmse, psnr, ssim,
        seconds_per_slice, num_slices``. Metrics use the whole target volume's max.
    """
    s = settings_from_config(cfg, resolve_device(cfg.device))
    if s.split in ("test", "challenge"):
        raise ConfigError(
            "data.split", f"{s.split!r} files have no targets to tune against; use val (or train)"
        )
    count = checked(
        checks.positive_int, "max_slices_per_volume", cfg.max_slices_per_volume, optional=True
    )
    methods = {f"{lam!r}": build_group(cfg, "tv", lam=lam) for lam in lams}
    rows = []
    for info, volume, vmask in iter_volumes(s, desc="tune tv"):  # train/val: all have targets
        keep = central_slices(info.num_slices, count)
        masked_kspace = apply_mask(volume.kspace[keep], vmask.mask)  # (s, C, H, W)
        target = volume.target[keep].numpy()
        max_value = float(volume.target.max())
        recons = reconstruct_volume(
            methods,
            masked_kspace,
            vmask.mask,
            tuple(target.shape[-2:]),
            device=s.device,
            batch_size=s.batch_size,
            coil_maps=s.coil_maps,
        )
        for lam in lams:
            recon, seconds = recons[f"{lam!r}"]
            metrics = volume_metrics(target, recon.numpy(), max_value=max_value)
            rows.append(
                {
                    "fname": info.fname,
                    "lam": lam,
                    **metrics,
                    "seconds_per_slice": seconds,
                    "num_slices": target.shape[0],
                }
            )
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
        for key in (*METRICS, "seconds_per_slice"):
            point[key] = float(np.mean([r[key] for r in mine]))
        out.append(point)
    return out


def best_lambda(points: Sequence[dict[str, Any]], select_by: str) -> dict[str, Any]:
    """The point with the best ``select_by`` (highest SSIM/PSNR, lowest NMSE)."""
    sign = -1.0 if select_by == "nmse" else 1.0
    return max(points, key=lambda p: sign * p[select_by])


def curve_table(points: Sequence[dict[str, Any]], best: dict[str, Any]) -> str:
    """The curve as a Markdown table, the chosen lambda marked."""
    lines = ["| tv.lam | SSIM | PSNR (dB) | NMSE | s/slice |", "|---|---|---|---|---|"]
    for p in points:
        mark = " **<-**" if p is best else ""
        lines.append(
            f"| {p['lam']:g}{mark} | {p['ssim']:.4f} | {p['psnr']:.2f} | "
            f"{p['nmse']:.4g} | {p['seconds_per_slice']:.3g} |"
        )
    return "\n".join(lines)


def tune_tv(cfg: DictConfig) -> dict[str, Any]:
    """Run the sweep of a composed ``configs/tune_tv.yaml`` and write its outputs.

    Args:
        cfg: the config; ``paths.output_dir`` is the run directory.

    Returns:
        ``{"lam": best lambda, "curve": [per-lambda points], "rows": per-volume rows,
        "files": written paths}``.
    """
    lams = lambda_grid(cfg)
    if cfg.select_by not in METRICS:
        raise ConfigError("select_by", f"{cfg.select_by!r} is not one of {METRICS}")
    rows = sweep(cfg, lams)
    points = curve(rows, lams)
    best = best_lambda(points, cfg.select_by)
    run_dir = Path(str(cfg.paths.output_dir))
    curve_csv = write_csv(run_dir / "tv_lambda_curve.csv", points, CURVE_COLUMNS)
    mask = cfg.evaluation.mask_name
    yaml = (
        f"# mri-recon-tune-tv: best {cfg.select_by} on {points[0]['num_volumes']} "
        f"{cfg.data.challenge} {cfg.data.split} volumes, mask {mask}\n"
        f"# ({cfg.select_by} {best[cfg.select_by]:.6g}; curve in tv_lambda_curve.csv)\n"
        f"tv:\n  lam: {best['lam']!r}\n"
    )
    lam_yaml = write_atomic(run_dir / "tv_lambda.yaml", yaml)
    print(curve_table(points, best), flush=True)
    if best is points[0] or best is points[-1]:
        print(
            "note: the best lambda is at the edge of the sweep; widen lam_span or lams", flush=True
        )
    print(f"wrote {lam_yaml}\nuse: tv.lam={best['lam']!r}", flush=True)
    return {"lam": best["lam"], "curve": points, "rows": rows, "files": [curve_csv, lam_yaml]}


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-tune-tv`` (Hydra command line)."""
    register_resolvers()
    run_hydra_main(tune_tv, "tune_tv", argv)


if __name__ == "__main__":
    main()

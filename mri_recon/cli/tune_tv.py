"""``mri-recon-tune-tv``: choose a classical method's weight (``tv.lam`` by default) on a
validation subset (Hydra).

    mri-recon-tune-tv data.root=DIR data.challenge=singlecoil mask=random_4x
    mri-recon-tune-tv method=wavelet data.challenge=multicoil     # or method=cg_sense

``method`` is a classical method of the registry (``mri_recon.baselines.CLASSICAL``: tv,
cg_sense, wavelet), built from its own config group. Sweeps ``<method>.lam`` over ``lams``
(default: ``num_lams`` log-spaced values around ``<method>.lam`` of
``configs/<method>/default.yaml``) on the central ``max_slices_per_volume`` slices of the
first ``data.max_volumes`` volumes, with the evaluation's own loop over volumes
(:func:`mri_recon.evaluation.iter_volumes`: selection, ``data.prescan``, per-file masks)
and its batched reconstruction with shared coil maps (the ``coils`` group: ``coils=espirit``
for a multi-coil search with ESPIRiT maps) and fastMRI metrics. All lambdas see the same
slices, masks and coil maps. Prints the curve (mean SSIM, PSNR,
NMSE and seconds per slice per lambda), writes ``<method>_lambda_curve.csv`` and
``<method>_lambda.yaml`` (``<method>:\\n  lam: ...``) into the run directory atomically, and
prints the override to use (``<method>.lam=...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig

from mri_recon import checks
from mri_recon.baselines import CLASSICAL
from mri_recon.cli.config import register_resolvers
from mri_recon.cli.errors import ConfigError, run_hydra_main
from mri_recon.cli.evaluate import settings_from_config
from mri_recon.cli.validate import build_group, check_shapes, checked
from mri_recon.evaluation.tuning import CURVE_COLUMNS, best_lambda, curve, curve_table, sweep
from mri_recon.fileio import write_atomic, write_csv
from mri_recon.metrics.image import METRICS


def lambda_grid(cfg: DictConfig, method: str = "tv") -> list[float]:
    """The lambdas to try: ``cfg.lams``, or ``cfg.num_lams`` values log-spaced from
    ``<method>.lam / lam_span`` to ``<method>.lam * lam_span`` (3 significant digits),
    ascending."""
    if cfg.lams is not None:
        if not isinstance(cfg.lams, (ListConfig, list)) or not cfg.lams:
            raise ConfigError("lams", f"expected a non-empty list of numbers > 0, got {cfg.lams!r}")
        return sorted({checked(checks.positive, "lams", v) for v in cfg.lams})
    num = checked(checks.integer, "num_lams", cfg.num_lams, 2)
    span = checked(checks.number, "lam_span", cfg.lam_span, 1, open_low=True)
    center = checked(checks.positive, f"{method}.lam", cfg[method].lam)  # the sweep's centre
    return sorted({float(f"{v:.3g}") for v in np.geomspace(center / span, center * span, num)})


def tune_tv(cfg: DictConfig) -> dict[str, Any]:
    """Run the sweep of a composed ``configs/tune_tv.yaml`` and write its outputs.

    Args:
        cfg: the config; ``paths.output_dir`` is the run directory.

    Returns:
        ``{"method": the method, "lam": best lambda, "curve": [per-lambda points], "rows": per-volume rows,
        "files": written paths}``.
    """
    method = checked(checks.one_of, "method", cfg.get("method", "tv"), list(CLASSICAL))
    lams = lambda_grid(cfg, method)
    select_by = checked(checks.one_of, "select_by", cfg.select_by, (*METRICS, "ssim_fg"))
    settings = settings_from_config(cfg)
    if select_by == "ssim_fg":  # scored beside the fastMRI three (metrics.optional)
        settings = replace(settings, metrics=("ssim_fg",))
    if settings.split in ("test", "challenge"):
        raise ConfigError(
            "data.split",
            f"{settings.split!r} files have no targets to tune against; use val (or train)",
        )
    count = checked(
        checks.positive_int, "max_slices_per_volume", cfg.max_slices_per_volume, optional=True
    )
    methods = {lam: build_group(cfg, method, lam=lam) for lam in lams}
    rows = sweep(settings, methods, count)
    points = curve(rows, lams)
    best = best_lambda(points, select_by)
    run_dir = Path(str(cfg.paths.output_dir))
    columns = (*CURVE_COLUMNS, *(["ssim_fg"] if select_by == "ssim_fg" else []))
    curve_csv = write_csv(run_dir / f"{method}_lambda_curve.csv", points, columns)
    mask = cfg.evaluation.mask_name
    yaml = (
        f"# mri-recon-tune-tv: best {cfg.select_by} on {points[0]['num_volumes']} "
        f"{cfg.data.challenge} {cfg.data.split} volumes, mask {mask}\n"
        f"# ({cfg.select_by} {best[cfg.select_by]:.6g}; curve in {method}_lambda_curve.csv)\n"
        f"{method}:\n  lam: {best['lam']!r}\n"
    )
    lam_yaml = write_atomic(run_dir / f"{method}_lambda.yaml", yaml)
    print(curve_table(points, best, f"{method}.lam"), flush=True)
    if best is points[0] or best is points[-1]:
        print(
            "note: the best lambda is at the edge of the sweep; widen lam_span or lams", flush=True
        )
    print(f"wrote {lam_yaml}\nuse: {method}.lam={best['lam']!r}", flush=True)
    return {
        "method": method,
        "lam": best["lam"],
        "curve": points,
        "rows": rows,
        "files": [curve_csv, lam_yaml],
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-tune-tv`` (Hydra command line)."""
    register_resolvers()
    run_hydra_main(tune_tv, "tune_tv", argv, precheck=precheck)


def precheck(cfg: DictConfig) -> None:
    """Before Hydra writes the run directory: the method, its lambdas and the settings (the
    run's own checks), then the method against the data's k-space shapes (``wavelet.levels``)."""
    method = checked(checks.one_of, "method", cfg.get("method", "tv"), list(CLASSICAL))
    lams = lambda_grid(cfg, method)
    settings_from_config(cfg)
    check_shapes(cfg, [method], lam=lams[0])


if __name__ == "__main__":
    main()

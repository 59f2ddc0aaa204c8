"""``mri-recon-robustness``: every method on every (mask type, acceleration) cell (Hydra).

    mri-recon-robustness data.root=DIR 'methods=[zero_filled,tv,unet]' ckpt_path=CKPT \\
        'grid.masks=[random,equispaced_fraction,variable_density,poisson]' \\
        'grid.accelerations=[2,4,6,8,12]' hydra.run.dir=OUT

:func:`robustness` is a plain function of the composed ``configs/robustness.yaml`` (eval's
config plus ``grid``): it checks the grid and the methods as ``mri-recon-eval`` does (one-line
errors naming the field, before anything is written), builds the methods once, and runs
:func:`mri_recon.evaluation.grid.run_grid` (the evaluation loop per cell; finished cells are
skipped on a rerun).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mri_recon.cli.config import register_resolvers
from mri_recon.cli.errors import ConfigError, run_hydra_main
from mri_recon.cli.evaluate import check_checkpoints, check_methods, settings_and_methods
from mri_recon.cli.validate import build_group
from mri_recon.evaluation.grid import Cell, grid_cells, run_grid


def check_grid(cfg: DictConfig) -> list[Cell]:
    """The grid's cells, or a one-line :class:`ConfigError` naming the ``grid.*`` field."""
    grid = cfg.get("grid")
    if not isinstance(grid, DictConfig):
        raise ConfigError("grid", f"expected a mapping with masks and accelerations, got {grid!r}")
    values = OmegaConf.to_container(grid, resolve=True)
    unknown = sorted(set(values) - {"masks", "accelerations", "center_fractions"})
    if unknown:
        raise ConfigError(
            f"grid.{unknown[0]}", "unknown key; grid has masks, accelerations, center_fractions"
        )
    try:
        return grid_cells(
            values.get("masks"), values.get("accelerations"), values.get("center_fractions")
        )
    except ValueError as err:
        field, _, reason = str(err).partition(": ")  # grid_cells names its own argument
        raise ConfigError(f"grid.{field.removeprefix('mask.')}", reason) from None


def precheck(cfg: DictConfig) -> None:
    """What can be checked before Hydra writes the run directory: grid, methods, coils."""
    check_grid(cfg)
    build_group(cfg, "coils")
    check_methods(cfg.methods, cfg.ckpt_path, check_checkpoints(cfg.get("checkpoints")))


def robustness(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run the grid of a composed ``configs/robustness.yaml``; returns the grid.csv rows.

    Raises:
        ConfigError: a bad config value (one line naming the field).
        DataError: a bad input file (nothing is written).
    """
    cells = check_grid(cfg)
    settings, methods = settings_and_methods(cfg)
    keys = ("data", "methods", "ckpt_path", "checkpoints", "tv", "coils")
    fingerprint = {k: OmegaConf.to_container(cfg, resolve=True).get(k) for k in keys}
    rows = run_grid(settings, methods, cells, fingerprint)
    print((settings.run_dir / "grid.md").read_text(), flush=True)
    print(f"outputs: {settings.run_dir}", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-robustness`` (Hydra command line)."""
    register_resolvers()
    run_hydra_main(robustness, "robustness", argv, precheck=precheck)


if __name__ == "__main__":
    main()

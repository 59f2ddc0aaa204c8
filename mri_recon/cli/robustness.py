"""``mri-recon-robustness``: every method on every (mask type, acceleration, perturbation)
cell (Hydra).

    mri-recon-robustness data.root=DIR 'methods=[zero_filled,tv,unet]' ckpt_path=CKPT \\
        'grid.masks=[random,equispaced_fraction,variable_density,poisson]' \\
        'grid.accelerations=[2,4,6,8,12]' hydra.run.dir=OUT
    mri-recon-robustness ... 'grid.perturbations=[none,noise:2,coils:4,motion:2,scale:100]'

:func:`robustness` is a plain function of the composed ``configs/robustness.yaml`` (eval's
config plus ``grid``): it checks the grid and the methods as ``mri-recon-eval`` does (one-line
errors naming the field, before anything is written), builds the methods once, and runs
:func:`mri_recon.evaluation.grid.run_grid` (the evaluation loop per cell; finished cells are
reused on a rerun while the checkpoints and data files they were computed from are unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mri_recon.baselines import CLASSICAL
from mri_recon.cli.errors import run_hydra_main
from mri_recon.cli.evaluate import check_methods, settings_and_methods
from mri_recon.cli.validate import build_group, check_shapes, data_reader
from mri_recon.evaluation.grid import check_coils, run_grid


def precheck(cfg: DictConfig) -> None:
    """What can be checked before Hydra writes the run directory: grid (and its coils
    perturbations against the data's headers), methods, coils."""
    reader, data = data_reader(cfg), cfg.data
    check_coils(build_group(cfg, "grid"), data.root, data.challenge, data.split, reader)
    build_group(cfg, "coils")
    check_shapes(cfg, check_methods(cfg)[0])


def robustness(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run the grid of a composed ``configs/robustness.yaml``; returns the grid.csv rows.

    Raises:
        ConfigError: a bad config value (one line naming the field).
        DataError: a bad input file (nothing is written).
    """
    cells = build_group(cfg, "grid")
    settings, methods = settings_and_methods(cfg)
    names, named = check_methods(cfg)
    # tv always (as before the registry), the other classical groups where they run
    groups = ["tv", *(n for n in CLASSICAL if n in names and n != "tv")]
    keys = ("data", "methods", "ckpt_path", "checkpoints", *groups, "coils")
    fingerprint = {k: OmegaConf.to_container(cfg, resolve=True).get(k) for k in keys}
    ckpts = [*([str(cfg.ckpt_path)] if "unet" in names else []), *named.values()]
    rows = run_grid(settings, methods, cells, fingerprint, checkpoints=ckpts)
    print((settings.run_dir / "grid.md").read_text(), flush=True)
    print(f"outputs: {settings.run_dir}", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-robustness`` (Hydra command line)."""
    run_hydra_main(robustness, "robustness", argv, precheck=precheck)


if __name__ == "__main__":
    main()

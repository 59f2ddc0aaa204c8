"""Read training runs' Hydra configs (``.hydra/config.yaml``, whose interpolations such as
``${study.lr_grid.${hydra:runtime.choices.optim}.mid}`` resolve against the run's own
``.hydra/hydra.yaml``); compare runs labelled by config keys. :mod:`mri_recon.viz` reads logs
and draws without OmegaConf."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mri_recon.viz.convergence import Comparison, write_comparison
from mri_recon.viz.logs import load_runs


def load_run_config(run_dir: str | Path) -> DictConfig | None:
    """The run's composed config from ``.hydra/config.yaml``, or None where it is missing.

    ``${hydra:...}`` interpolations (e.g. a value chosen by ``hydra:runtime.choices``) are
    pointed at the run's own ``.hydra/hydra.yaml``, so selecting a key resolves to what the
    run used, without a Hydra job. The Hydra node sits under ``__hydra__``.

    Raises:
        ValueError: a config file that is not valid YAML.
    """
    run_dir = Path(run_dir)
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    text = re.sub(r"\$\{hydra:\s*", "${__hydra__.", path.read_text())
    hydra_path = run_dir / ".hydra" / "hydra.yaml"
    try:
        cfg = OmegaConf.load(io.StringIO(text))
        if hydra_path.is_file():
            hydra_cfg = OmegaConf.load(hydra_path)
            cfg.__hydra__ = hydra_cfg.get("hydra", hydra_cfg)
    except (OmegaConfBaseException, yaml.YAMLError) as err:
        raise ValueError(
            f"{run_dir}/.hydra: unreadable config ({str(err).splitlines()[0]})"
        ) from None
    return cfg


def run_config_values(run_dir: str | Path, keys: Sequence[str]) -> dict[str, object]:
    """Values of ``keys`` for one run: a config-group choice (``optim`` -> ``"adam"``, from
    ``hydra.runtime.choices``), else the resolved config value (None where absent).

    Raises:
        ValueError: the run has no ``.hydra/config.yaml``.
    """
    cfg = load_run_config(run_dir)
    if cfg is None:
        raise ValueError(f"{run_dir}: no .hydra/config.yaml to read keys {list(keys)} from")
    choices = OmegaConf.select(cfg, "__hydra__.runtime.choices", default=None) or {}
    values: dict[str, object] = {}
    for key in keys:
        value = (
            choices.get(key)
            if key in choices
            else OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        )
        values[key] = "{...}" if isinstance(value, DictConfig) else value
    return values


def compare_runs(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    label_keys: Sequence[str] | None = None,
    samples_key: str | None = None,
) -> Comparison:
    """Load the runs under ``paths``, write convergence plots and the final-metrics table.

    What ``scripts/compare_runs.py`` runs; files as in
    :func:`mri_recon.viz.convergence.write_comparison`.

    Args:
        paths: run or multirun directories (:func:`mri_recon.viz.logs.discover_runs`).
        out_dir: the output directory.
        label_keys: config keys or group names to label runs by (``optim optim.lr``); None
            labels them by the overrides that differ.
        samples_key: the batch-size key (``data.batch_size``): also plot against training
            samples seen.

    Raises:
        ValueError: bad paths, unreadable logs or configs, or a non-positive batch size.
    """
    config_values = partial(run_config_values, keys=list(label_keys)) if label_keys else None
    runs, skipped = load_runs(paths, config_values)
    batch_sizes = None
    if samples_key is not None:
        batch_sizes = [run_config_values(run.run_dir, [samples_key])[samples_key] for run in runs]
    return write_comparison(runs, out_dir, batch_sizes, samples_key or "batch size", skipped)

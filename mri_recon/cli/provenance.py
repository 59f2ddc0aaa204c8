"""``provenance.json`` for training and evaluation runs: the Hydra-aware half of the record.

:func:`run_record` starts a :class:`mri_recon.evaluation.provenance.RunRecord` (the record's
format and lifecycle) with the run's resolved config and Hydra's choices and overrides.
"""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mri_recon.evaluation.provenance import RunRecord


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as a plain dict, interpolations resolved; a top-level node where one cannot
    be resolved outside Hydra (e.g. a ``hydra`` node composed with ``return_hydra_config``)
    is left as written, and only that node: the others (``data.challenge``'s
    ``${format_challenge:...}``) are still resolved."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException:
        raw: dict[str, Any] = OmegaConf.to_container(cfg, resolve=False)  # type: ignore[assignment]
    for key in raw:
        try:
            value = cfg[key]
            raw[key] = (
                OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            )
        except OmegaConfBaseException:
            pass  # left as written
    return raw


def hydra_info() -> dict[str, Any] | None:
    """Hydra's group choices (e.g. ``mask: random_4x``) and the command-line overrides."""
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    overrides = OmegaConf.select(hc, "overrides.task", default=None)
    return {
        "choices": dict(OmegaConf.select(hc, "runtime.choices", default={}) or {}),
        "overrides": list(overrides) if overrides is not None else None,
    }


def run_record(cfg: DictConfig) -> RunRecord:
    """The record of the run of a composed config (``paths.output_dir`` is its directory)."""
    return RunRecord(str(cfg.paths.output_dir), resolved_config(cfg), hydra_info())

"""Experiment trackers beside the CSV logger and TensorBoard: MLflow and Weights & Biases.

Lightning's own ``MLFlowLogger`` and ``WandbLogger`` log the metrics during training
(``configs/logger/mlflow.yaml``: a local store under the run directory, no server;
``configs/logger/wandb.yaml``: offline). :func:`log_run_artifacts` adds, at the end of the
run, the resolved config and the run's final files (the per-volume table, the metrics,
the model card) as artifacts of the tracker's run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import MLFlowLogger, WandbLogger


def log_run_artifacts(
    loggers: Sequence[Any], config: Mapping[str, Any], files: Sequence[str | Path]
) -> None:
    """Hand ``config`` (the resolved run config, as ``config.yaml``) and the existing
    ``files`` to every MLflow or W&B logger of the run; other loggers are left alone."""
    files = [Path(f) for f in files if Path(f).is_file()]
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            client, run_id = logger.experiment, logger.run_id
            client.log_dict(run_id, dict(config), "config.yaml")
            for path in files:
                client.log_artifact(run_id, str(path))
        elif isinstance(logger, WandbLogger):
            run = logger.experiment
            run.config.update(dict(config), allow_val_change=True)
            for path in files:
                run.save(str(path), base_path=str(path.parent), policy="now")

"""The evaluation loop and its outputs (no Hydra: the CLI in ``mri_recon.cli.evaluate``
builds the settings and the methods from the config)."""

from mri_recon.evaluation.outputs import Staging, write_json, write_reconstruction
from mri_recon.evaluation.report import CSV_COLUMNS, EXTRA_COLUMNS
from mri_recon.evaluation.run import (
    EvalReport,
    EvalSettings,
    EvalVolumes,
    MethodOutput,
    evaluate_volume,
    iter_volumes,
    reconstruct_volume,
    run_evaluation,
)
from mri_recon.evaluation.volumes import SkippedFile, VolumeMask, select_volumes, volume_mask

__all__ = [
    "CSV_COLUMNS",
    "EXTRA_COLUMNS",
    "EvalReport",
    "EvalSettings",
    "EvalVolumes",
    "MethodOutput",
    "SkippedFile",
    "Staging",
    "VolumeMask",
    "evaluate_volume",
    "iter_volumes",
    "reconstruct_volume",
    "run_evaluation",
    "select_volumes",
    "volume_mask",
    "write_json",
    "write_reconstruction",
]

"""``mri-recon-predict``: reconstruct fastMRI-format files without targets (Hydra).

    mri-recon-predict input=DIR_OR_FILE 'methods=[zero_filled,model]' \\
        +checkpoints.model=RUN/checkpoints/best.ckpt 'export=[nifti,dicom]' hydra.run.dir=OUT
    mri-recon-predict input=FULLY_SAMPLED_DIR mask=random_4x hydra.run.dir=OUT

:func:`predict` is a plain function of the composed ``configs/predict.yaml``: it validates
every input file before anything is written (one line naming a bad file), builds the
methods as the evaluation does and runs :func:`mri_recon.evaluation.predict.predict` (one
line per volume, the outputs published all together, ``provenance.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from mri_recon.cli.errors import ConfigError, run_hydra_main
from mri_recon.cli.evaluate import build_methods, check_methods
from mri_recon.cli.provenance import run_record
from mri_recon.cli.validate import build_group, data_reader, set_torch_threads
from mri_recon.evaluation import EvalReport
from mri_recon.evaluation.predict import input_files, select_inputs
from mri_recon.evaluation.predict import predict as run_predict


def check_input(cfg: DictConfig) -> None:
    """``input`` names an existing file of the data format (``.h5``; CMRxRecon ``.mat``) or a
    folder holding some (before Hydra writes)."""
    path, reader = Path(str(cfg.input)), data_reader(cfg)
    if path.is_file() and path.suffix != reader.suffix:
        raise ConfigError("input", f"{path}: not a {reader.suffix} file ({reader.name} format)")
    try:
        input_files(path, reader)
    except ValueError as err:
        raise ConfigError("input", str(err)) from None


def predict(cfg: DictConfig) -> EvalReport:
    """Run the prediction of a composed ``configs/predict.yaml`` (``paths.output_dir`` is
    the run directory); returns the :class:`~mri_recon.evaluation.EvalReport`.

    Raises:
        ConfigError: a bad config value (one line naming the field).
        DataError: a bad input file (nothing is written).
    """
    check_input(cfg)
    names, checkpoints = check_methods(cfg)
    set_torch_threads(cfg)
    reader = data_reader(cfg)
    selection = select_inputs(cfg.input, str(cfg.prescan), bool(cfg.skip_bad_files), reader)
    challenge = selection[0][0].challenge
    with open_dict(cfg):
        cfg.data.challenge = challenge  # the checkpoints' challenge is checked against it
    has_mask = cfg.get("mask") is not None
    choice = HydraConfig.get().runtime.choices.get("mask") if HydraConfig.initialized() else None
    settings = build_group(
        cfg,
        "evaluation",
        challenge=challenge,
        mask_name=str(choice or ("mask" if has_mask else "stored")),
        mask_func=build_group(cfg, "mask") if has_mask else None,
        coil_maps=build_group(cfg, "coils") if cfg.get("coils") else None,
        run_dir=Path(str(cfg.paths.output_dir)),
    )
    methods = build_methods(cfg, names, settings.device, checkpoints)
    record = run_record(cfg)  # provenance.json, staged and published with the outputs
    return run_predict(settings, methods, selection, record=partial(record.finish_eval, settings))


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-predict`` (Hydra command line)."""
    run_hydra_main(predict, "predict", argv, precheck=check_input)


if __name__ == "__main__":
    main()

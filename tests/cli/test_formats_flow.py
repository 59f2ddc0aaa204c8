"""Every data format end to end: ``data.format=F`` trains a U-Net for one step and evaluates
zero-filled and TV on tiny files of the format's own layout (``mri-recon-data synth``), the
challenge set by the format (no ``data.challenge``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mri_recon.cli.config import config_dir
from mri_recon.cli.data import main as data_main
from mri_recon.cli.errors import ConfigError
from mri_recon.cli.evaluate import evaluate
from mri_recon.cli.notebook import compose_job
from mri_recon.cli.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hydra_config_reset")

ONE_STEP = [
    "debug=fast",
    "logger=none",
    "model.chans=4",
    "model.num_pool_layers=2",
    "data.sample_rate=1.0",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "validate_ckpt=last",
]
# format -> (format options of the run, documented fact the run relies on)
CASES = {
    "cc359": ("{}", "12-channel interleaved k-space, RSS target of the whole image"),
    "m4raw": ("{target: mean}", "repetitions averaged into the target"),
    "cmrxrecon": ("{acceleration: 4}", "the dataset's own AccFactor04 masks"),
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for fmt in CASES:
        out[fmt] = tmp_path_factory.mktemp(f"flow_{fmt}")
        assert (
            data_main(["synth", "--out", str(out[fmt]), "--format", fmt, "--preset", "tiny"]) == 0
        )
    return out


@pytest.mark.parametrize("fmt", list(CASES))
def test_one_training_step_and_an_evaluation_per_format(roots, tmp_path, fmt) -> None:
    options, _fact = CASES[fmt]
    data = [f"data.root={roots[fmt]}", f"data.format={fmt}", f"data.format_options={options}"]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[*ONE_STEP, *data, f"paths.output_dir={tmp_path / 't'}"])
    assert cfg.data.challenge == "multicoil"  # set by the format
    metrics = train(cfg)
    assert math.isfinite(metrics["val/ssim"]) and math.isfinite(metrics["val/psnr"])
    cfg = compose_job(
        "eval",
        [
            *data,
            "data.split=val",
            "data.max_volumes=1",
            "methods=[zero_filled,tv]",
            "tv.max_iters=5",
            "mask=equispaced_fraction_4x",
            "num_figures=0",
            "progress=false",
            "stats.num_resamples=50",
        ],
        tmp_path / "eval",
    )
    report = evaluate(cfg)
    with open(tmp_path / "eval" / "per_volume.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"zero_filled", "tv"} and len(rows) == 2
    assert all(math.isfinite(float(r["ssim"])) for r in rows)
    if fmt == "cmrxrecon":  # the file's own mask was scored, not a drawn one
        assert {vm.source for vm in report.masks.values()} == {"stored"}
        assert rows[0]["acceleration"] == "4.0"


def test_fastmri_prostate_trains_on_combined_averages_and_evaluates_one_average(
    tmp_path_factory, tmp_path
) -> None:
    """fastMRI prostate T2 (``synth --anatomy prostate``) through ``data.format=fastmri``:
    one U-Net step on the combined averages (the stored ``reconstruction_rss`` the target);
    zero-filled and TV evaluated on average 1 alone, the dataset's own 2x undersampling with
    its calibration lines (the stored mask, not a drawn one)."""
    root = tmp_path_factory.mktemp("flow_prostate")
    synth = ["synth", "--out", str(root), "--anatomy", "prostate", "--preset", "tiny"]
    assert data_main(synth) == 0
    data = [f"data.root={root}", "data.format=fastmri", "data.challenge=multicoil"]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[*ONE_STEP, *data, f"paths.output_dir={tmp_path / 't'}"])
    metrics = train(cfg)
    assert math.isfinite(metrics["val/ssim"]) and math.isfinite(metrics["val/psnr"])
    cfg = compose_job(
        "eval",
        [*data, "data.format_options={averages: 1}", "data.split=val", "methods=[zero_filled,tv]",
         "tv.max_iters=5", "mask=equispaced_fraction_4x", "num_figures=0", "progress=false",
         "stats.num_resamples=50"],
        tmp_path / "eval",
    )  # fmt: skip
    report = evaluate(cfg)
    with open(tmp_path / "eval" / "per_volume.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"zero_filled", "tv"} and len(rows) == 2
    assert all(math.isfinite(float(r["ssim"])) for r in rows)
    assert {vm.source for vm in report.masks.values()} == {"stored"}
    # every other of the 27 lines, and the 8 central lines of the calibration scan
    assert float(rows[0]["acceleration"]) == pytest.approx(27 / 18)


def test_a_multicoil_format_refuses_singlecoil_and_names_the_key(roots, tmp_path) -> None:
    """A format whose data are multi-coil sets the challenge; contradicting it is one line."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                *ONE_STEP,
                f"data.root={roots['cc359']}",
                "data.format=cc359",
                "data.challenge=singlecoil",
                f"paths.output_dir={tmp_path}",
            ],
        )
    with pytest.raises(ConfigError, match=r"data.challenge: cc359 data are multicoil"):
        train(cfg)


def test_predict_and_robustness_grid_read_a_format(roots, tmp_path) -> None:
    """``mri-recon-predict`` takes a folder of a format's files (CMRxRecon: one folder per
    subject of ``.mat`` files), the robustness grid a format's split (with a coils
    perturbation checked against the files' coil counts)."""
    from mri_recon.cli.predict import predict
    from mri_recon.cli.robustness import precheck, robustness

    folder = roots["cmrxrecon"] / "ValidationSet" / "FullSample"
    cfg = compose_job(
        "predict",
        [f"input={folder}", "data.format=cmrxrecon", "mask=equispaced_fraction_4x",
         "progress=false"],
        tmp_path / "predict",
    )  # fmt: skip
    report = predict(cfg)
    assert sorted(report.paths) == ["P002_cine_lax.mat", "P002_cine_sax.mat"]
    assert (
        tmp_path / "predict" / "reconstructions" / "zero_filled" / "P002_cine_sax.mat"
    ).is_file()
    cfg = compose_job(
        "robustness",
        [f"data.root={roots['cc359']}", "data.format=cc359", "data.max_volumes=1",
         "methods=[zero_filled]", "grid.masks=[equispaced_fraction]", "grid.accelerations=[4]",
         "grid.perturbations=[none,coils:2]", "progress=false", "stats.num_resamples=50"],
        tmp_path / "grid",
    )  # fmt: skip
    precheck(cfg)
    rows = robustness(cfg)
    assert len(rows) == 2 and all(math.isfinite(float(r["ssim"])) for r in rows)


@pytest.mark.parametrize(
    "override,message",
    [
        ("data.format=dicom", r"data.format: must be one of fastmri, cc359, m4raw, cmrxrecon"),
        ("data.format_options={mask:4}", r"data.format_options: \['mask'\] not options of"),
        ("data.format_options={acceleration:3}", r"^data.format_options.acceleration: must be"),
    ],
)
def test_bad_format_or_option_is_one_config_line(roots, tmp_path, override, message) -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*ONE_STEP, f"data.root={roots['cmrxrecon']}", "data.format=cmrxrecon",
                       override, f"paths.output_dir={tmp_path}"],
        )  # fmt: skip
    with pytest.raises(ConfigError, match=message):
        train(cfg)

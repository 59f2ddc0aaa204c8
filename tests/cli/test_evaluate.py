"""``mri-recon-eval`` end to end on tiny generated data: fastMRI parity of the zero-filled
numbers, the four outputs, one-line errors, bad files, the test split, multirun, unet."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import fastmri
import h5py
import numpy as np
import pytest
import torch
from fastmri import evaluate as fe
from fastmri.data import subsample
from fastmri.data import transforms as T

from mri_recon.cli.evaluate import evaluate, main
from mri_recon.cli.notebook import compose_job
from mri_recon.data.synthetic import generate_dataset
from mri_recon.evaluation import CSV_COLUMNS

REQUIRED_HEADER = (
    "fname,acquisition,method,mask,acceleration,center_fraction,nmse,psnr,ssim,seconds_per_slice"
)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    """The synthetic ``tiny`` single-coil val (2 volumes) and test (1 volume) splits."""
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(
        root, "tiny", challenge="singlecoil", seed=0, progress=False, splits=("val", "test")
    )
    return root


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _fastmri_zero_filled(path: Path, mask_func: subsample.MaskFunc) -> tuple[np.ndarray, dict]:
    """fastMRI's own pipeline (UnetDataTransform's steps without the normalisation) and
    fastmri.evaluate on one single-coil file with its per-file mask."""
    with h5py.File(path) as hf:
        kspace, target = hf["kspace"][()], hf["reconstruction_esc"][()]
    seed = tuple(map(ord, path.name))
    slices = []
    for s in range(kspace.shape[0]):
        masked = T.apply_mask(T.to_tensor(kspace[s]), mask_func, seed=seed)[0]
        image = T.complex_center_crop(fastmri.ifft2c(masked), tuple(target.shape[-2:]))
        slices.append(fastmri.complex_abs(image).numpy())
    recon = np.stack(slices)
    return recon, {
        "nmse": float(fe.nmse(target, recon)),
        "psnr": float(fe.psnr(target, recon)),
        "ssim": float(fe.ssim(target, recon)[0]),
    }


@pytest.mark.parametrize(
    "mask,fastmri_mask",
    [
        ("random_4x", subsample.RandomMaskFunc([0.08], [4])),
        ("equispaced_fraction_8x", subsample.EquispacedMaskFractionFunc([0.04], [8])),
    ],
)
def test_zero_filled_equals_fastmri(synth_root, tmp_path, mask, fastmri_mask) -> None:
    main(
        [
            f"data.root={synth_root}",
            f"mask={mask}",
            "methods=[zero_filled]",
            "num_figures=0",
            "progress=false",
            f"hydra.run.dir={tmp_path}",
        ]
    )
    rows = _read_csv(tmp_path / "per_volume.csv")
    files = sorted((synth_root / "singlecoil_val").glob("*.h5"))
    assert sorted(r["fname"] for r in rows) == [p.name for p in files]
    for path in files:
        recon_ref, metrics_ref = _fastmri_zero_filled(path, fastmri_mask)
        with h5py.File(tmp_path / "reconstructions/zero_filled" / path.name) as hf:
            np.testing.assert_allclose(
                hf["reconstruction"][()], recon_ref, rtol=1e-5, atol=1e-6 * recon_ref.max()
            )
        row = next(r for r in rows if r["fname"] == path.name)
        assert row["mask"] == mask
        for key, value in metrics_ref.items():
            assert float(row[key]) == pytest.approx(value, rel=1e-5), key


def test_end_to_end_two_methods(synth_root, tmp_path, capsys) -> None:
    main(
        [
            f"data.root={synth_root}",
            "data.challenge=singlecoil",
            "data.split=val",
            "mask=random_4x",
            "methods=[zero_filled,tv]",
            "tv.max_iters=3",
            "tv.lam=0.005",
            "num_figures=1",
            "progress=false",
            f"hydra.run.dir={tmp_path}",
        ]
    )
    out = capsys.readouterr().out
    assert "| zero_filled | 4 | all | 2 |" in out and "| tv | 4 | all | 2 |" in out
    assert (tmp_path / "summary.md").read_text() in out
    header = (tmp_path / "per_volume.csv").read_text().splitlines()[0]
    assert header.startswith(REQUIRED_HEADER + ",") and tuple(header.split(","))[:10] == CSV_COLUMNS
    rows = _read_csv(tmp_path / "per_volume.csv")
    assert sorted((r["method"], r["fname"]) for r in rows) == sorted(
        (m, p.name)
        for m in ("zero_filled", "tv")
        for p in (synth_root / "singlecoil_val").glob("*.h5")
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["run"]["mask"] == "random_4x" and summary["skipped"] == []
    assert [e["method"] for e in summary["paired_differences"] if e["acquisition"] == "all"] == [
        "tv"
    ]
    assert len(list((tmp_path / "figures").glob("*.png"))) == 1
    for path in (synth_root / "singlecoil_val").glob("*.h5"):
        with h5py.File(path) as hf:
            shape = hf["reconstruction_esc"].shape
        for method in ("zero_filled", "tv"):
            with h5py.File(tmp_path / "reconstructions" / method / path.name) as hf:
                assert hf["reconstruction"].dtype == np.float32
                assert hf["reconstruction"].shape == shape


def test_test_split_writes_reconstructions_with_the_stored_mask(synth_root, tmp_path) -> None:
    main(
        [
            f"data.root={synth_root}",
            "data.split=test",
            "methods=[zero_filled]",
            "progress=false",
            f"hydra.run.dir={tmp_path}",
        ]
    )
    (path,) = sorted((synth_root / "singlecoil_test").glob("*.h5"))
    with h5py.File(path) as hf:
        kspace, recon_size = hf["kspace"][()], (64, 64)
    # the stored k-space is already undersampled: zero-filled is its plain IFFT, cropped
    expected = np.abs(
        T.center_crop(
            np.fft.fftshift(
                np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
            ),
            recon_size,
        )
    )
    with h5py.File(tmp_path / "reconstructions/zero_filled" / path.name) as hf:
        np.testing.assert_allclose(
            hf["reconstruction"][()], expected, rtol=1e-4, atol=1e-5 * expected.max()
        )
    (row,) = _read_csv(tmp_path / "per_volume.csv")
    assert row["mask"] == "stored" and row["ssim"] == row["psnr"] == row["nmse"] == ""
    assert not (tmp_path / "figures").exists()


@pytest.mark.parametrize(
    "override,message",
    [
        ("foo=1", "error: foo: unknown key"),
        ("mask=nope", "error: mask: .*Could not find 'mask/nope' \\(available: .*random_4x"),
        # the evaluation node's values interpolate these keys: an error names the key set
        ("data.challenge=bicoil", "error: data.challenge: .*'bicoil'"),
        ("data.max_volumes=0", "error: data.max_volumes: .*0"),
        ("data.prescan=none", "error: data.prescan: .*'none'"),
        ("stats.confidence=2", "error: stats.confidence: .*2"),
        ("num_figures=-1", "error: num_figures: .*-1"),
        ("batch_size=0", "error: batch_size: .*0"),
        ("export=png", "error: export: must be one of nifti, dicom, got 'png'"),
        ("methods=[zero_filled,bart]", "error: methods: unknown method\\(s\\) \\['bart'\\]"),
        ("methods=[zero_filled,unet]", "error: ckpt_path: the unet method needs ckpt_path"),
        ("tv.lam=-1", "error: tv.lam: .*-1"),
        ("mask.accelerations=[0.5]", "error: mask.accelerations: .*0.5"),
        ("coils.method=sense", "error: coils.method: .*'sense'"),
        ("torch_threads=0", "error: torch_threads: must be an int >= 1 or null, got 0"),
        ("device=tpu", "error: device: 'tpu' is not one of"),
        ("data=3", "error: data: "),
    ],
)
def test_bad_config_is_one_line(synth_root, tmp_path, capsys, override, message) -> None:
    with pytest.raises(SystemExit) as exc:
        main([f"data.root={synth_root}", override, f"hydra.run.dir={tmp_path}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert re.match(message, err), err
    assert not (tmp_path / "per_volume.csv").exists()


def test_corrupt_file_subprocess(tmp_path, fastmri_split) -> None:
    paths = fastmri_split(tmp_path / "data", split="val", widths=(36, 40, 38))
    paths[1].write_bytes(paths[1].read_bytes()[:500])
    run_dir = tmp_path / "run"
    script = Path(sys.executable).with_name("mri-recon-eval")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "mri_recon.cli.evaluate"]
    proc = subprocess.run(
        [
            *cmd,
            f"data.root={tmp_path / 'data'}",
            "methods=[zero_filled]",
            f"hydra.run.dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {paths[1]}: "), proc.stderr
    assert not run_dir.exists()  # a failed run leaves no run directory behind (issue 21)
    # with skip_bad_files=true the same data evaluates the other two and lists the bad one
    main(
        [
            f"data.root={tmp_path / 'data'}",
            "methods=[zero_filled]",
            "data.skip_bad_files=true",
            "progress=false",
            f"hydra.run.dir={run_dir}",
        ]
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [s["fname"] for s in summary["skipped"]] == [paths[1].name]
    assert summary["num_volumes"] == 2
    assert paths[1].name in (run_dir / "summary.md").read_text()


def test_multirun_two_masks(synth_root, tmp_path) -> None:
    main(
        [
            "-m",
            f"data.root={synth_root}",
            "methods=[zero_filled]",
            "num_figures=0",
            "progress=false",
            "mask=random_4x,random_8x",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    masks = {}
    for job in ("0", "1"):
        rows = _read_csv(tmp_path / job / "per_volume.csv")
        masks[job] = {(r["mask"], float(r["acceleration"])) for r in rows}
    assert masks == {"0": {("random_4x", 4.0)}, "1": {("random_8x", 8.0)}}


def _fake_checkpoint(path: Path) -> Path:
    """A checkpoint in the training package's format, from a tiny untrained U-Net."""
    from mri_recon.lit import checkpoint
    from mri_recon.models.unet import Unet

    net = Unet(chans=4, num_pool_layers=2)
    state = {checkpoint.NET_PREFIX + k: v for k, v in net.state_dict().items()}
    torch.save(
        {
            checkpoint.CHECKPOINT_KEY: {
                "net_spec": checkpoint.net_spec_of(net),
                "net_prefix": checkpoint.NET_PREFIX,
            },
            "state_dict": state,
        },
        path,
    )
    return path


@pytest.mark.usefixtures("hydra_config_reset")
def test_unet_through_the_plain_evaluate_function(synth_root, tmp_path) -> None:
    ckpt = _fake_checkpoint(tmp_path / "tiny.ckpt")
    cfg = compose_job(
        "eval",
        [
            f"data.root={synth_root}",
            "methods=[zero_filled,unet]",
            f"ckpt_path={ckpt}",
            "data.max_volumes=1",
            "num_figures=0",
            "progress=false",
            "device=cpu",
        ],
        tmp_path / "run",
    )
    report = evaluate(cfg)
    assert [r["method"] for r in report.rows] == ["zero_filled", "unet"]
    assert report.rows[0]["mask"] == "random_4x"  # Hydra's choice of the mask group
    with h5py.File(tmp_path / "run/reconstructions/unet" / report.rows[0]["fname"]) as hf:
        assert hf["reconstruction"].shape == (3, 64, 64)
    assert np.isfinite(report.rows[1]["ssim"])


@pytest.mark.usefixtures("hydra_config_reset")
def test_named_checkpoints_are_methods_paired_against_a_reference(synth_root, tmp_path) -> None:
    torch.manual_seed(0)
    first = _fake_checkpoint(tmp_path / "first.ckpt")
    torch.manual_seed(1)
    second = _fake_checkpoint(tmp_path / "second.ckpt")
    cfg = compose_job(
        "eval",
        [
            f"data.root={synth_root}",
            "methods=[zero_filled,adam,adam_again,sgd]",
            f"+checkpoints.adam={first}",
            f"+checkpoints.adam_again={first}",
            f"+checkpoints.sgd={second}",
            "stats.reference=adam",
            "stats.num_resamples=50",
            "data.max_volumes=2",
            "num_figures=0",
            "progress=false",
            "device=cpu",
        ],
        tmp_path / "run",
    )
    report = evaluate(cfg)
    by_method = {}
    for row in report.rows:
        by_method.setdefault(row["method"], {})[row["fname"]] = row
    assert list(by_method) == ["zero_filled", "adam", "adam_again", "sgd"]
    for name in by_method:
        assert (tmp_path / "run" / "reconstructions" / name).is_dir()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["reference"] == "adam"
    paired = {e["method"]: e for e in summary["paired_differences"] if e["acquisition"] == "all"}
    assert set(paired) == {"zero_filled", "adam_again", "sgd"}
    # the same checkpoint under two names: identical reconstructions, differences exactly 0
    assert paired["adam_again"]["ssim"]["mean"] == 0.0
    for name in ("sgd", "zero_filled"):
        expected = np.mean(
            [by_method[name][f]["ssim"] - by_method["adam"][f]["ssim"] for f in by_method["adam"]]
        )
        assert paired[name]["ssim"]["mean"] == pytest.approx(expected, abs=1e-12)
    assert "## Paired differences against adam (method − adam, per volume)" in report.markdown


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["+checkpoints.tv={ckpt}", "methods=[tv]"],
            "error: checkpoints.tv: shadows the built-in method",
        ),
        (
            ["+checkpoints.a=/no/such.ckpt", "methods=[a]"],
            "error: checkpoints.a: /no/such.ckpt: no such",
        ),
        (
            ["+checkpoints.a={ckpt}", "methods=[zero_filled,b]"],
            r"error: methods: unknown method\(s\) \['b'\]; known: .* and checkpoints \['a'\]",
        ),
        (
            ["stats.reference=tv", "methods=[zero_filled]"],
            r"error: stats.reference: 'tv' is not one of the methods \['zero_filled'\]",
        ),
        (
            ["+checkpoints.a={bad}", "methods=[a]"],
            "error: checkpoints.a: .*bad.ckpt: not a torch checkpoint",
        ),
    ],
)
def test_bad_checkpoints_config_is_one_line(
    synth_root, tmp_path, capsys, overrides, message
) -> None:
    ckpt = _fake_checkpoint(tmp_path / "tiny.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_text("not a checkpoint")
    with pytest.raises(SystemExit) as exc:
        main(
            [
                f"data.root={synth_root}",
                *(o.format(ckpt=ckpt, bad=bad) for o in overrides),
                f"hydra.run.dir={tmp_path / 'run'}",
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert re.match(message, err), err
    assert not (tmp_path / "run" / "per_volume.csv").exists()


def test_output_directory_below_a_file_is_one_line(synth_root, tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("a regular file")
    out = tmp_path / "file" / "out"
    with pytest.raises(SystemExit) as exc:
        main([f"data.root={synth_root}", "methods=[zero_filled]", f"hydra.run.dir={out}"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: hydra.run.dir: {out}: {tmp_path}/file is a file, not a folder"
    ]

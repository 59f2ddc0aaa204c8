"""The data formats beyond fastMRI (``data.format``): tiny files of each layout written by
``mri-recon-data synth --format F --preset tiny``, checked by ``mri-recon-data check``, and
read key by key and axis by axis as each dataset's own documentation and reference loader
read them (docs/DATASETS.md cites each fact). Each test names the fact it checks."""

from __future__ import annotations

import math
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mri_recon.cli.data import main
from mri_recon.data.fastmri import DataError, check_values, load_volume
from mri_recon.data.formats import FORMATS, get_reader
from mri_recon.data.slice_dataset import SliceDataset
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import ifft2c

NEW_FORMATS = ("cc359", "m4raw", "cmrxrecon")


@pytest.fixture(scope="session")
def format_root(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """format -> a data root written by ``mri-recon-data synth --format F --preset tiny``."""
    roots = {}
    for fmt in NEW_FORMATS:
        roots[fmt] = tmp_path_factory.mktemp(fmt)
        assert main(["synth", "--out", str(roots[fmt]), "--format", fmt, "--preset", "tiny"]) == 0
    return roots


@pytest.mark.parametrize("fmt", NEW_FORMATS)
def test_check_says_ok_for_every_synthetic_file(format_root, fmt, capsys) -> None:
    """``check DIR --format F`` validates every file of the layout (and only volumes: the
    CMRxRecon ``*_mask.mat`` files are companions, not volumes)."""
    assert main(["check", str(format_root[fmt]), "--format", fmt]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"checked {len(lines) - 1} files: {len(lines) - 1} OK, 0 BAD"
    assert all(line.startswith("OK ") and "_mask" not in line for line in lines[:-1])


def test_unknown_format_and_a_file_of_another_format_end_in_one_line(format_root, capsys) -> None:
    """Unknown formats: one line naming the value; a file checked as the wrong format: one
    BAD line naming the file and the key or axis that differs."""
    with pytest.raises(
        ValueError, match=r"^format: must be one of fastmri, cc359, m4raw, cmrxrecon, got 'dicom'"
    ):
        get_reader("dicom")
    with pytest.raises(SystemExit):
        main(["check", str(format_root["cc359"]), "--format", "dicom"])
    assert "invalid choice: 'dicom'" in capsys.readouterr().err
    m4raw_file = sorted(format_root["m4raw"].rglob("*.h5"))[0]
    assert main(["check", str(m4raw_file), "--format", "cc359"]) == 1
    bad = capsys.readouterr().out.splitlines()[0]
    assert bad.startswith(f"BAD {m4raw_file}: kspace dtype is complex64, expected float")
    cc359_file = sorted(format_root["cc359"].rglob("*.h5"))[0]
    assert main(["check", str(cc359_file), "--format", "m4raw"]) == 1
    assert "kspace dtype is float32, expected complex64" in capsys.readouterr().out


def test_cc359_interleaved_channels_partial_kz_and_rss_target(format_root) -> None:
    """CC359 (MC-MRI-Rec getting_started, zero_filled_rec.py; DIRECT): ``kspace`` is float
    (x, ky, kz, 2C) with real/imag interleaved; one sample per readout position x; kz from
    ceil(0.85 kz) on is not acquired; the target is RSS of the channel-wise ``ifft2``."""
    reader = get_reader("cc359")
    path = sorted((format_root["cc359"] / "Train").glob("*.h5"))[0]
    info = reader.read_info(path, None, "train")
    with h5py.File(path) as hf:
        num_x, raw = hf["kspace"].shape[0], hf["kspace"][1]  # raw: (ky, kz, 2C)
    stored = np.moveaxis(raw[..., ::2] + 1j * raw[..., 1::2], -1, 0)  # (C, ky, kz)
    height, width = stored.shape[-2:]
    assert info.kspace_shape == (num_x, raw.shape[-1] // 2, height, width)
    assert (info.padding_left, info.padding_right) == (0, math.ceil(0.85 * width))
    kspace, target = reader.open(info).read(1)
    reference = np.sqrt((np.abs(np.fft.ifft2(stored, axes=(-2, -1), norm="ortho")) ** 2).sum(0))
    np.testing.assert_allclose(target, reference, rtol=1e-4, atol=1e-6)
    assert not np.abs(kspace[..., info.padding_right :]).any()
    np.testing.assert_allclose(np.abs(kspace), np.abs(stored), rtol=1e-5, atol=1e-7)
    # this project's convention: ifft2c of the sample gives the target, DC in the middle
    image = rss(ifft2c(torch.from_numpy(kspace)), dim=0).numpy()
    np.testing.assert_allclose(image, target, rtol=1e-4, atol=1e-6)
    energy = (np.abs(kspace) ** 2).sum(0)
    assert np.unravel_index(energy.argmax(), energy.shape) == (height // 2, width // 2)
    assert info.crop_size == (height, width)  # no crop: the challenge scores the whole image


def test_cc359_odd_channel_axis_is_bad_naming_the_axis(tmp_path) -> None:
    """CC359's last axis holds real/imag pairs: an odd length cannot be channels."""
    path = tmp_path / "Train" / "e1.h5"
    path.parent.mkdir()
    with h5py.File(path, "w") as hf:
        hf["kspace"] = np.zeros((2, 8, 6, 5), np.float32)
    with pytest.raises(DataError, match=r"kspace last axis has 5 entries, expected an even"):
        get_reader("cc359").read_info(path)


def test_m4raw_repetitions_file_or_mean_target(format_root) -> None:
    """M4Raw (tutorial, denoising dataloader): each file is one repetition
    ``<subject>_<protocol>0<rep>.h5`` with its own ``reconstruction_rss``; ``target=mean``
    is the mean over the subject's repetitions of the protocol."""
    folder = format_root["m4raw"] / "multicoil_train"
    reps = sorted(folder.glob("*_T20[0-9].h5"))
    assert len(reps) == 3
    own = [h5py.File(p)["reconstruction_rss"][()] for p in reps]
    mean_reader = get_reader("m4raw", {"target": "mean"})
    info = mean_reader.read_info(reps[1], None, "train")
    assert info.max_value is None and "3 repetitions" in info.target_key
    volume = load_volume(info)
    np.testing.assert_allclose(volume.target.numpy(), np.mean(own, axis=0), rtol=1e-6)
    file_volume = load_volume(get_reader("m4raw").read_info(reps[1], None, "train"))
    np.testing.assert_allclose(file_volume.target.numpy(), own[1], rtol=1e-6)
    assert not np.allclose(own[0], own[1])  # repetitions differ (noise): the mean is not one


def test_m4raw_mean_target_needs_the_naming_and_sees_a_changed_repetition(
    format_root, tmp_path
) -> None:
    """``target=mean`` finds repetitions by name; the prescan cache covers them: a NaN
    written into another repetition after a clean scan is found without ``--rescan``."""
    folder = tmp_path / "multicoil_train"
    folder.mkdir()
    for p in (format_root["m4raw"] / "multicoil_train").glob("*_FLAIR0*.h5"):
        (folder / p.name).write_bytes(p.read_bytes())
    reader = get_reader("m4raw", {"target": "mean"})
    first, second = sorted(folder.glob("*.h5"))
    odd = folder / "scan.h5"
    odd.write_bytes(first.read_bytes())
    with pytest.raises(DataError, match=r"scan.h5: name is not <subject>_<T1\|T2\|FLAIR>0"):
        reader.read_info(odd, None, "train")
    odd.unlink()
    from mri_recon.data.prescan import scan_volume

    scan_volume(first, reader=reader)  # clean, cached
    with h5py.File(second, "r+") as hf:
        hf["reconstruction_rss"][0, 0, 0] = np.nan
    with pytest.raises(DataError, match=r"has NaN or Inf"):
        scan_volume(first, reader=reader)


def test_cmrxrecon_axis_order_frames_crop_and_own_masks(format_root) -> None:
    """CMRxRecon (Format_cine.txt, loadFun.py; DIRECT): MATLAB v7.3 = HDF5, ``kspace_full``
    complex (kx, ky, sc, sz, t) read by h5py as (t, sz, sc, ky, kx) with real/imag fields;
    one frame per sample, sample i = divmod(i, sz); target RSS of ifft2c cropped to
    (kx/3, ky/2); ``AccFactor04/<P>/<name>_mask.mat`` ``mask04`` (kx, ky): a ky column mask
    with the 24 central lines."""
    root = format_root["cmrxrecon"]
    path = root / "TrainingSet" / "FullSample" / "P001" / "cine_sax.mat"
    assert path.read_bytes()[:10] == b"MATLAB 7.3"
    reader = get_reader("cmrxrecon", {"acceleration": 4})
    info = reader.read_info(path, None, "train")
    with h5py.File(path) as hf:
        stored = hf["kspace_full"][()]  # (t, sz, sc, ky, kx)
        mask_file = root / "TrainingSet" / "AccFactor04" / "P001" / "cine_sax_mask.mat"
        lines = h5py.File(mask_file)["mask04"][()][:, 0].astype(bool)  # (ky,)
    t, sz, sc, ky, kx = stored.shape
    assert info.kspace_shape == (t * sz, sc, kx, ky)
    assert info.fname == "P001_cine_sax.mat" and info.crop_size == (round(kx / 3), round(ky / 2))
    kspace, target = reader.open(info).read(3)
    frame = stored[divmod(3, sz)]
    np.testing.assert_array_equal(kspace, np.swapaxes(frame["real"] + 1j * frame["imag"], -1, -2))
    full = rss(ifft2c(torch.from_numpy(kspace)), dim=0)
    np.testing.assert_allclose(target, full.numpy(), rtol=1e-5, atol=1e-7)
    volume = load_volume(info)
    np.testing.assert_allclose(volume.target[3], center_crop(full, info.crop_size), rtol=1e-5)
    np.testing.assert_array_equal(info.mask, lines)
    assert info.mask[ky // 2 - 12 : ky // 2 + 12].all() and info.num_low_frequencies >= 24
    dataset = SliceDataset(root, "multicoil", "train", format="cmrxrecon",
                           format_options={"acceleration": 4})  # fmt: skip
    assert len(dataset) == 2 * t * sz and dataset[0]["mask"].equal(torch.from_numpy(info.mask))


def test_cmrxrecon_mask_that_varies_along_kx_is_bad_naming_file_and_key(
    format_root, tmp_path
) -> None:
    """The dataset's masks are fixed along kx; a 2-D one cannot be a column mask."""
    root = tmp_path / "Cine"
    for p in format_root["cmrxrecon"].rglob("*.mat"):
        dest = root / p.relative_to(format_root["cmrxrecon"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(p.read_bytes())
    mask_file = root / "TrainingSet" / "AccFactor04" / "P001" / "cine_lax_mask.mat"
    with h5py.File(mask_file, "r+") as hf:
        hf["mask04"][0, 0] = 1 - hf["mask04"][0, 0]
    reader = get_reader("cmrxrecon", {"acceleration": 4})
    with pytest.raises(
        DataError, match=r"AccFactor04/P001/cine_lax_mask.mat: mask04 varies along kx"
    ):
        reader.read_info(root / "TrainingSet" / "FullSample" / "P001" / "cine_lax.mat")
    with pytest.raises(DataError, match=r"no mask file AccFactor08/P001/cine_lax_mask.mat"):
        get_reader("cmrxrecon", {"acceleration": 8}).read_info(
            root / "TrainingSet" / "FullSample" / "P001" / "cine_lax.mat"
        )
    with pytest.raises(ValueError, match=r"^format_options: \['mask'\] not options of format"):
        get_reader("cmrxrecon", {"mask": 4})


@pytest.mark.parametrize("fmt", NEW_FORMATS)
def test_samples_are_this_projects_samples(format_root, fmt) -> None:
    """Every format gives the sample dict of a fastMRI slice: complex64 (C, H, W) k-space,
    float32 target of the crop size, the volume max, the acquired columns."""
    dataset = SliceDataset(format_root[fmt], "singlecoil", "val", format=fmt)
    sample = dataset[0]
    info = dataset.volumes[0]
    assert dataset.challenge == "multicoil" and sample["kspace"].dtype == torch.complex64
    assert sample["kspace"].shape == (info.num_coils, *info.image_shape)
    assert sample["target"].shape == info.crop_size and sample["target"].dtype == torch.float32
    full_max = max(float(dataset[i]["target"].max()) for i in range(info.num_slices))
    assert sample["max_value"] == pytest.approx(full_max, rel=1e-6)
    check_values(info)
    assert FORMATS[0] == "fastmri" and os.fspath(dataset.folder).startswith(
        os.fspath(format_root[fmt])
    )


def test_fastmri_brain_contrasts_sizes_and_crops_through_the_registry(
    tmp_path, fastmri_split
) -> None:
    """fastMRI brain (FASTMRI_FORMAT.md, fastMRI's SliceDataset and UnetDataTransform): the
    contrasts are the ``acquisition`` attr, k-space heights and widths vary between volumes,
    the 320 x 320 target is the centre of a larger image, and a volume narrower than the
    target is cropped to W x W; ``data.format=fastmri`` reads it all through its reader."""
    contrasts = ("AXT1PRE", "AXT1POST", "AXT2", "AXFLAIR")
    files = fastmri_split(
        tmp_path, "multicoil", "val", widths=(40, 44, 36, 28), acquisitions=contrasts,
        num_slices=1, height=48, target_size=(32, 32),
    )  # fmt: skip
    main(["check", str(tmp_path), "--format", "fastmri"])
    dataset = SliceDataset(tmp_path, "multicoil", "val", format="fastmri")
    by_contrast = {v.acquisition: v for v in dataset.volumes}
    assert sorted(by_contrast) == sorted(contrasts) and len(files) == 4
    assert by_contrast["AXT2"].crop_size == (32, 32)  # 320 x 320 of a larger image, scaled
    assert by_contrast["AXFLAIR"].crop_size == (28, 28)  # W < target width: W x W
    flair = [
        i
        for i, (v, _) in enumerate(dataset.samples)
        if dataset.volumes[v] is by_contrast["AXFLAIR"]
    ]
    assert dataset[flair[0]]["target"].shape == (28, 28)
    only = SliceDataset(tmp_path, "multicoil", "val", acquisitions=["AXFLAIR"], format="fastmri")
    assert [v.acquisition for v in only.volumes] == ["AXFLAIR"]


def test_check_takes_format_options(format_root, capsys) -> None:
    """``check --option KEY=VALUE`` checks with a format's options (CMRxRecon's own masks
    need their ``AccFactorNN`` files); a bad option is one usage line."""
    root = format_root["cmrxrecon"]
    assert main(["check", str(root), "--format", "cmrxrecon", "--option", "acceleration=4"]) == 0
    assert main(["check", str(root), "--format", "cmrxrecon", "--option", "acceleration=8"]) == 1
    assert "BAD" in capsys.readouterr().out
    assert main(["check", str(root), "--format", "cmrxrecon", "--option", "acceleration=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "mri-recon-data check: error: --option acceleration: must be one of null, 4, 8, 10, got 5"
    )

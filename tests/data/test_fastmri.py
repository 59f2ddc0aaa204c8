"""The fastMRI data layer on tiny files written by the tests (non-square, widths that vary)."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mri_recon.data import fastmri as fm
from mri_recon.data.fastmri import DataError
from mri_recon.data.header import make_ismrmrd_header
from mri_recon.data.slice_dataset import SliceDataset


def _edit(path: Path, **datasets: object) -> None:
    """Replace (or, for None, delete) datasets of an existing file."""
    with h5py.File(path, "a") as hf:
        for key, data in datasets.items():
            if key in hf:
                del hf[key]
            if data is not None:
                hf[key] = data


def _assert_error(excinfo: pytest.ExceptionInfo, path: Path, text: str) -> None:
    message = str(excinfo.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    assert text in message, message


def _load(path: Path, **kwargs) -> fm.Volume:
    return fm.load_volume(fm.read_volume_info(path, **kwargs))


# ---------------------------------------------------------------- reading good volumes


@pytest.mark.parametrize("challenge", fm.CHALLENGES)
def test_load_volume_matches_stored_arrays(tmp_path, fastmri_volume, challenge):
    path = fastmri_volume(
        tmp_path / "file1.h5",
        challenge=challenge,
        num_slices=3,
        num_coils=4,
        height=64,
        width=40,
        padding_left=3,
        padding_right=35,
    )
    vol = fm.load_volume(fm.read_volume_info(path, challenge))
    with h5py.File(path, "r") as hf:
        kspace = hf["kspace"][()]
        target = hf[fm.TARGET_KEYS[challenge]][()]
    coils = 1 if challenge == "singlecoil" else 4
    assert vol.kspace.dtype == torch.complex64 and vol.kspace.shape == (3, coils, 64, 40)
    np.testing.assert_array_equal(vol.kspace.reshape(kspace.shape).numpy(), kspace)
    np.testing.assert_array_equal(vol.target.numpy(), target)
    assert vol.target.dtype == torch.float32 and vol.mask is None
    info = vol.info
    assert (info.num_slices, info.num_coils, info.challenge) == (3, coils, challenge)
    assert (info.padding_left, info.padding_right) == (3, 35)
    # The scanner zero-filled the columns outside [padding_left, padding_right).
    assert vol.kspace[..., :3].abs().max() == 0 and vol.kspace[..., 35:].abs().max() == 0
    assert vol.kspace[..., 3:35].abs().amax(dim=(0, 1, 2)).min() > 0
    assert info.target_key == fm.TARGET_KEYS[challenge] and info.target_shape == (32, 32)
    assert info.crop_size == (32, 32) and info.encoded_size == (64, 40, 1)
    assert info.max_value == pytest.approx(float(target.max()))
    assert info.acquisition == "CORPD_FBK" and not info.is_test and info.warnings == ()


def test_narrow_kspace_uses_fastmri_crop_rule(tmp_path, fastmri_volume):
    path = fastmri_volume(tmp_path / "narrow.h5", width=28, target_size=(32, 32))
    info = fm.read_volume_info(path)
    assert info.target_shape == (32, 32) and info.crop_size == (28, 28)
    # the target wider than W is cropped to (W, W) when loaded, as fastMRI's transform does
    with h5py.File(path) as hf:
        stored = torch.from_numpy(hf["reconstruction_esc"][()])
    assert torch.equal(fm.load_volume(fm.read_volume_info(path)).target, stored[:, 2:30, 2:30])
    (tmp_path / "singlecoil_val").mkdir()
    path.rename(tmp_path / "singlecoil_val" / path.name)
    item = SliceDataset(tmp_path, "singlecoil", "val")[1]
    assert torch.equal(item["target"], stored[1, 2:30, 2:30]) and item["crop_size"] == (28, 28)


def test_test_file_without_target_loads_with_its_mask(tmp_path, fastmri_volume):
    path = fastmri_volume(
        tmp_path / "file_test.h5",
        challenge="multicoil",
        test_file=True,
        width=36,
        acceleration=4,
        center_fraction=0.08,
    )
    with h5py.File(path, "r") as hf:
        stored_mask = hf["mask"][()]
    vol = fm.load_volume(fm.read_volume_info(path, split="test"))
    assert vol.target is None and vol.info.is_test and vol.info.target_key is None
    np.testing.assert_array_equal(vol.mask.numpy(), stored_mask)
    assert vol.info.acceleration == 4.0 and vol.info.num_low_frequencies == 3
    assert vol.info.crop_size == (32, 32)  # from the header's recon size
    unsampled = ~vol.mask
    assert vol.kspace[..., unsampled].abs().max() == 0


def test_num_low_frequencies_falls_back_to_mask_center_band(tmp_path, fastmri_volume):
    path = fastmri_volume(tmp_path / "t.h5", test_file=True, attrs={"num_low_frequency": None})
    info = fm.read_volume_info(path)
    start, stop = np.flatnonzero(info.mask[: info.mask.size // 2 + 1])[-1], info.mask.size // 2
    while info.mask[stop]:
        stop += 1
    while start > 0 and info.mask[start - 1]:
        start -= 1
    assert "num_low_frequency" not in info.attrs
    assert info.num_low_frequencies == stop - start >= 1


def test_numpy_scalar_and_bytes_attrs_become_python_values(tmp_path, fastmri_volume):
    attrs = {
        "acquisition": np.bytes_(b"AXT2"),
        "max": np.float32(2.5),
        "norm": np.float64(3.0),
        "patient_id": np.bytes_(b"abc123"),
    }
    info = fm.read_volume_info(fastmri_volume(tmp_path / "a.h5", attrs=attrs))
    assert info.acquisition == "AXT2" and info.patient_id == "abc123"
    assert isinstance(info.max_value, float) and info.max_value == 2.5 and info.norm == 3.0


def test_complex128_kspace_is_accepted_and_cast(tmp_path, fastmri_volume):
    path = fastmri_volume(tmp_path / "c128.h5", kspace_dtype=np.complex128)
    assert fm.load_volume(fm.read_volume_info(path)).kspace.dtype == torch.complex64


def test_encoded_width_mismatch_is_a_warning(tmp_path, fastmri_volume):
    path = fastmri_volume(tmp_path / "w.h5", width=36, encoded_size=(64, 40, 1), padding_right=36)
    info = fm.read_volume_info(path)
    assert (
        info.warnings
        and "encoded y = 40 differs from the kspace width W = 36" in (info.warnings[0])
    )


# ---------------------------------------------------------------- bad volumes

_HEADER_NO_CENTER = make_ismrmrd_header((64, 36, 1), (32, 32, 1)).replace(
    b"<center>18</center>", b""
)

BAD = {
    "missing kspace": ({}, {"kspace": None}, {}, "no 'kspace' dataset"),
    "kspace group": ({}, {"kspace": None}, {}, "kspace is a Group, expected a dataset"),
    "missing target": (
        {},
        {"reconstruction_esc": None},
        {},
        "neither a target 'reconstruction_esc' nor a 'mask' dataset",
    ),
    "target in train": (
        {"test_file": True},
        {},
        {"split": "train"},
        "no target 'reconstruction_esc' (required in the train split)",
    ),
    "kspace rank": (
        {},
        {"kspace": np.zeros((64, 36), np.complex64)},
        {},
        "kspace has 2 dims (64, 36), expected 3 (singlecoil)",
    ),
    "kspace dtype": (
        {},
        {"kspace": np.zeros((3, 64, 36), np.float32)},
        {},
        "kspace dtype is float32, expected complex64",
    ),
    "challenge": (
        {},
        {},
        {"challenge": "multicoil"},
        "kspace shape (3, 64, 36) is singlecoil, but the challenge is multicoil",
    ),
    "target rank": (
        {},
        {"reconstruction_esc": np.zeros((32, 32), np.float32)},
        {},
        "reconstruction_esc has shape (32, 32), expected 3 dims (S, h, w)",
    ),
    "target dtype": (
        {},
        {"reconstruction_esc": np.zeros((3, 32, 32), np.complex64)},
        {},
        "reconstruction_esc dtype is complex64, expected float32",
    ),
    "target slices": (
        {},
        {"reconstruction_esc": np.zeros((2, 32, 32), np.float32)},
        {},
        "reconstruction_esc has 2 slices but kspace has 3",
    ),
    "target too big": (
        {"target_size": (80, 32)},
        {},
        {},
        "target reconstruction_esc (80, 32) is taller than the kspace image (H, W) = (64, 36)",
    ),
    # cropped to (W, W) = (36, 36) it would fit, but a target taller than the image is not
    # a crop of it (this one passed the check and failed in training and evaluation)
    "target taller and wider": (
        {"target_size": (80, 40)},
        {},
        {},
        "target reconstruction_esc (80, 40) is taller than the kspace image (H, W) = (64, 36)",
    ),
    "mask length": (
        {"test_file": True},
        {"mask": np.ones(35, bool)},
        {},
        "mask has shape (35,), expected (36,) = kspace width",
    ),
    "mask values": (
        {"test_file": True},
        {"mask": np.full(36, 2, np.int32)},
        {},
        "mask has values other than 0 and 1",
    ),
    "missing header": ({}, {"ismrmrd_header": None}, {}, "no 'ismrmrd_header' dataset"),
    "header xml": ({"header": b"<ismrmrdHeader"}, {}, {}, "ismrmrd_header is not valid XML"),
    "header field": (
        {"header": _HEADER_NO_CENTER},
        {},
        {},
        "ismrmrd_header has no encoding/encodingLimits/kspace_encoding_step_1/center",
    ),
    "header padding": (
        {"header": make_ismrmrd_header((64, 80, 1), (32, 32, 1))},
        {},
        {},
        "acquired columns [0, 80) are outside the kspace width [0, 36]",
    ),
    "attr max": ({"attrs": {"max": "big"}}, {}, {}, "attr 'max' = 'big' is not a finite number"),
    "attr norm": ({"attrs": {"norm": -1.0}}, {}, {}, "attr 'norm' = -1.0 must be >= 0"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_volume_names_file_and_key(tmp_path, fastmri_volume, case):
    params, edits, read_kwargs, text = BAD[case]
    path = fastmri_volume(tmp_path / "file1.h5", height=64, width=36, **params)
    _edit(path, **edits)
    if case == "kspace group":
        with h5py.File(path, "a") as hf:
            hf.create_group("kspace")
    for read in (fm.read_volume_info, fm.check_volume, _load):
        with pytest.raises(DataError) as excinfo:
            read(path, **read_kwargs)
        _assert_error(excinfo, path, text)


@pytest.mark.parametrize(
    "key, value, slice_index", [("kspace", np.nan, 1), ("reconstruction_esc", np.inf, 2)]
)
def test_non_finite_values_are_found_by_the_full_read(
    tmp_path, fastmri_volume, key, value, slice_index
):
    path = fastmri_volume(tmp_path / "nan.h5", num_slices=3)
    with h5py.File(path, "a") as hf:
        hf[key][slice_index, 5, 7] = value
    fm.read_volume_info(path)  # the header-level check does not read the data
    text = f"{key} has NaN or Inf values (first in slice {slice_index})"
    for read in (fm.check_volume, _load):
        with pytest.raises(DataError) as excinfo:
            read(path)
        _assert_error(excinfo, path, text)


def test_truncated_file_is_not_readable(tmp_path, fastmri_volume):
    path = fastmri_volume(tmp_path / "trunc.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as excinfo:
        fm.read_volume_info(path)
    _assert_error(excinfo, path, "not a readable HDF5 file (truncated file")


def test_non_hdf5_file_is_not_readable(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("this is not HDF5\n")
    with pytest.raises(DataError) as excinfo:
        fm.check_volume(path)
    _assert_error(excinfo, path, "not a readable HDF5 file (file signature not found)")


# ---------------------------------------------------------------- folders


def test_split_dir_and_listing(tmp_path, fastmri_split):
    paths = fastmri_split(tmp_path, "multicoil", "val", widths=(40, 36, 38))
    (paths[0].parent / "._file1000001.h5").write_bytes(b"AppleDouble")  # hidden: skipped
    (paths[0].parent / "notes.txt").write_text("x")
    assert fm.split_dir(tmp_path, "multicoil", "val") == tmp_path / "multicoil_val"
    assert fm.list_volumes(tmp_path, "multicoil", "val") == sorted(paths)
    assert fm.parse_split_dir(paths[0].parent) == ("multicoil", "val")
    assert fm.parse_split_dir(tmp_path) is None


@pytest.mark.parametrize(
    "challenge, split, text",
    [
        ("knee", "train", "unknown challenge 'knee', expected one of ('singlecoil', 'multicoil')"),
        ("singlecoil", "training", "unknown split 'training', expected one of ('train', 'val',"),
    ],
)
def test_unknown_challenge_or_split(tmp_path, challenge, split, text):
    for call in (fm.split_dir, fm.list_volumes, SliceDataset):
        with pytest.raises(DataError) as excinfo:
            call(tmp_path, challenge, split)
        _assert_error(excinfo, tmp_path, text)


def test_missing_and_empty_split_folders(tmp_path):
    folder = tmp_path / "singlecoil_train"
    with pytest.raises(DataError) as excinfo:
        fm.list_volumes(tmp_path, "singlecoil", "train")
    _assert_error(excinfo, folder, "no such directory")
    folder.mkdir()
    (folder / "readme.txt").write_text("no volumes here")
    with pytest.raises(DataError) as excinfo:
        SliceDataset(tmp_path, "singlecoil", "train")
    _assert_error(excinfo, folder, "no .h5 files in this directory")


# ---------------------------------------------------------------- fastMRI's own loader


@pytest.mark.parametrize("challenge", fm.CHALLENGES)
def test_written_files_are_readable_by_fastmri(tmp_path, fastmri_split, challenge):
    from fastmri.data import SliceDataset as FastMRISliceDataset
    from fastmri.data.subsample import RandomMaskFunc
    from fastmri.data.transforms import UnetDataTransform

    fastmri_split(
        tmp_path,
        challenge,
        "val",
        widths=(36, 40),
        num_slices=2,
        num_coils=3,
        padding_left=2,
        padding_right=34,
    )
    ours = SliceDataset(tmp_path, challenge, "val")
    raw = FastMRISliceDataset(tmp_path / f"{challenge}_val", challenge, transform=None)
    assert len(raw) == len(ours)
    for i in range(len(ours)):
        kspace, mask, target, attrs, fname, slice_num = raw[i]
        item = ours[i]
        assert (fname, slice_num) == (item["fname"], item["slice_num"]) and mask is None
        np.testing.assert_array_equal(kspace, item["kspace"].numpy().reshape(kspace.shape))
        np.testing.assert_array_equal(target, item["target"].numpy())
        assert (attrs["padding_left"], attrs["padding_right"]) == (2, 34)
        assert attrs["max"] == pytest.approx(item["max_value"])
    transform = UnetDataTransform(challenge, RandomMaskFunc([0.08], [4]), use_seed=True)
    unet = FastMRISliceDataset(tmp_path / f"{challenge}_val", challenge, transform=transform)
    sample = unet[3]
    assert sample.image.shape == sample.target.shape == (32, 32)
    assert sample.fname == "file1000002.h5" and float(sample.max_value) == pytest.approx(
        ours[3]["max_value"]
    )


def test_damaged_bytes_give_data_errors_only(tmp_path, fastmri_volume):
    """Overwrite 64-byte runs across a valid file: every outcome is a pass or a DataError."""
    path = fastmri_volume(tmp_path / "good.h5", num_slices=2)
    data, damaged = path.read_bytes(), tmp_path / "damaged.h5"
    outcomes = set()
    for offset in range(0, len(data), len(data) // 97):
        damaged.write_bytes(data[:offset] + b"\xff" * 64 + data[offset + 64 :])
        try:
            fm.check_volume(damaged)
            outcomes.add("ok")
        except DataError as err:
            assert str(err).startswith(f"{damaged}: ") and "\n" not in str(err)
            outcomes.add("bad")
    assert outcomes == {"ok", "bad"}


def test_data_error_forms_and_worker_errors(tmp_path, fastmri_split):
    err = DataError(tmp_path / "f.h5", "kspace has\n  two lines")
    assert str(err) == f"{tmp_path / 'f.h5'}: kspace has two lines" and err.path.name == "f.h5"
    assert str(pickle.loads(pickle.dumps(err))) == str(err)
    assert str(DataError("/d/x.h5: ready-made")) == "/d/x.h5: ready-made"
    paths = fastmri_split(tmp_path, "singlecoil", "train", widths=(36,), num_slices=2)
    with h5py.File(paths[0], "a") as hf:
        hf["kspace"][1, 0, 0] = np.inf
    loader = torch.utils.data.DataLoader(
        SliceDataset(tmp_path, "singlecoil", "train", prescan="header"),
        batch_size=1,
        num_workers=1,
    )
    with pytest.raises(DataError) as excinfo:  # one line, as when read in this process
        list(loader)
    assert str(excinfo.value) == f"{paths[0]}: kspace has NaN or Inf values (first in slice 1)"

"""SliceDataset on tiny files written by the tests (non-square, widths that vary)."""

from __future__ import annotations

import os
import pickle
import random

import h5py
import numpy as np
import pytest
import torch

from mri_recon.data.fastmri import DataError
from mri_recon.data.slice_dataset import SliceDataset


def test_slice_dataset_items_with_varying_widths(tmp_path, fastmri_split):
    paths = fastmri_split(
        tmp_path,
        "multicoil",
        "train",
        widths=(36, 40),
        num_slices=3,
        num_coils=2,
        padding_left=2,
        padding_right=34,
    )
    ds = SliceDataset(tmp_path, "multicoil", "train")
    assert len(ds) == 6 and ds.samples == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert [v.path for v in ds.volumes] == paths
    assert ds.shape_key(0) == ((2, 64, 36), (32, 32)) and ds.shape_key(5) == ((2, 64, 40), (32, 32))
    item = ds[4]
    with h5py.File(paths[1], "r") as hf:
        np.testing.assert_array_equal(item["kspace"].numpy(), hf["kspace"][1])
        np.testing.assert_array_equal(item["target"].numpy(), hf["reconstruction_rss"][1])
        max_value = float(hf.attrs["max"])
    assert item["kspace"].dtype == torch.complex64 and item["target"].dtype == torch.float32
    assert item["mask"].numel() == 0 and item["mask"].dtype == torch.bool
    assert (item["fname"], item["slice_num"], item["num_slices"]) == ("file1000002.h5", 1, 3)
    assert item["max_value"] == pytest.approx(max_value)
    assert (item["padding_left"], item["padding_right"], item["crop_size"]) == (2, 34, (32, 32))
    assert item["acquisition"] == "CORPDFS_FBK"
    assert torch.equal(ds[-1]["kspace"], ds[5]["kspace"])
    with pytest.raises(IndexError):
        ds[6]


def test_single_coil_items_get_a_coil_axis(tmp_path, fastmri_split):
    fastmri_split(tmp_path, "singlecoil", "val", widths=(38,), num_slices=2)
    item = SliceDataset(tmp_path, "singlecoil", "val")[1]
    assert item["kspace"].shape == (1, 64, 38) and item["target"].shape == (32, 32)


def test_slice_dataset_on_test_split(tmp_path, fastmri_split):
    paths = fastmri_split(tmp_path, "singlecoil", "test", widths=(36, 40))
    ds = SliceDataset(tmp_path, "singlecoil", "test")
    item = ds[0]
    with h5py.File(paths[0], "r") as hf:
        np.testing.assert_array_equal(item["mask"].numpy(), hf["mask"][()].astype(bool))
    assert item["target"].numel() == 0 and np.isnan(item["max_value"])
    assert item["mask"].shape == (36,) and ds[len(ds) - 1]["mask"].shape == (40,)


def test_max_value_is_computed_when_attr_missing(tmp_path, fastmri_split):
    paths = fastmri_split(tmp_path, "singlecoil", "train", widths=(36,), attrs={"max": None})
    ds = SliceDataset(tmp_path, "singlecoil", "train")
    with h5py.File(paths[0], "r") as hf:
        expected = float(hf["reconstruction_esc"][()].max())
    assert ds.volumes[0].max_value is None
    assert ds[0]["max_value"] == ds[2]["max_value"] == pytest.approx(expected)
    assert expected > float(ds[0]["target"].max()) * 0.999


def test_acquisition_filter_and_files(tmp_path, fastmri_split):
    paths = fastmri_split(
        tmp_path,
        "singlecoil",
        "train",
        widths=(36, 40, 38),
        acquisitions=("CORPD_FBK", "CORPDFS_FBK"),
    )
    ds = SliceDataset(tmp_path, "singlecoil", "train", acquisitions=["CORPD_FBK"])
    assert [v.path for v in ds.volumes] == [paths[0], paths[2]]
    assert {ds[i]["acquisition"] for i in range(len(ds))} == {"CORPD_FBK"}
    with pytest.raises(DataError, match=r"no volume has acquisition in \['AXT2'\] \(found"):
        SliceDataset(tmp_path, "singlecoil", "train", acquisitions=["AXT2"])
    ds = SliceDataset(tmp_path, "singlecoil", "train", files=["file1000002.h5"])
    assert [v.path for v in ds.volumes] == [paths[1]]
    with pytest.raises(DataError, match="no such file"):
        SliceDataset(tmp_path, "singlecoil", "train", files=["file9.h5"])


def test_bad_file_in_split_fails_construction(tmp_path, fastmri_split):
    paths = fastmri_split(tmp_path, "singlecoil", "val", widths=(36, 40))
    with h5py.File(paths[1], "a") as hf:
        del hf["reconstruction_esc"]
    with pytest.raises(DataError) as excinfo:
        SliceDataset(tmp_path, "singlecoil", "val")
    assert str(excinfo.value) == (
        f"{paths[1]}: no target 'reconstruction_esc' (required in the val split)"
    )


def test_nan_slice_fails_the_full_prescan_or_the_read(tmp_path, fastmri_split):
    paths = fastmri_split(tmp_path, "singlecoil", "train", widths=(36, 40), num_slices=3)
    with h5py.File(paths[1], "a") as hf:
        hf["kspace"][2, 0, 0] = np.nan
    message = f"{paths[1]}: kspace has NaN or Inf values \\(first in slice 2\\)"
    with pytest.raises(DataError, match=message):
        SliceDataset(tmp_path, "singlecoil", "train")  # prescan="full": before any read
    # the bad file is not spared by a volume subset that leaves it out, nor cached as clean
    SliceDataset(tmp_path, "singlecoil", "train", files=[paths[0].name])
    with pytest.raises(DataError, match=message):
        SliceDataset(tmp_path, "singlecoil", "train")
    ds = SliceDataset(tmp_path, "singlecoil", "train", prescan="header")
    ds[4]
    with pytest.raises(DataError, match=message):
        ds[5]


def _rng_states() -> tuple:
    return (pickle.dumps(np.random.get_state()), torch.get_rng_state(), random.getstate())


def test_seeded_subsampling_is_reproducible_and_leaves_global_rng(tmp_path, fastmri_split):
    fastmri_split(tmp_path, "singlecoil", "train", widths=(36, 40, 38, 36), num_slices=5)
    before = _rng_states()
    a = SliceDataset(tmp_path, "singlecoil", "train", sample_rate=0.5, seed=3)
    b = SliceDataset(tmp_path, "singlecoil", "train", sample_rate=0.5, seed=3)
    c = SliceDataset(tmp_path, "singlecoil", "train", sample_rate=0.5, seed=4)
    v = SliceDataset(tmp_path, "singlecoil", "train", volume_sample_rate=0.5, seed=3)
    after = _rng_states()
    assert before[0] == after[0] and torch.equal(before[1], after[1]) and before[2] == after[2]
    assert len(a) == 10 and a.samples == b.samples != c.samples and a.samples == sorted(a.samples)
    assert len(v.volumes) == 2 and len(v) == 10
    assert len(SliceDataset(tmp_path, "singlecoil", "train", sample_rate=0.01)) == 1
    with pytest.raises(ValueError, match="not both"):
        SliceDataset(tmp_path, "singlecoil", "train", sample_rate=0.5, volume_sample_rate=0.5)


class _OpenCounter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.modes: list[str] = []
        real = h5py.File

        def counting(name, mode="r", *args, **kwargs):
            self.modes.append(mode)
            return real(name, mode, *args, **kwargs)

        monkeypatch.setattr(h5py, "File", counting)


def test_one_read_only_handle_per_file(tmp_path, fastmri_split, monkeypatch):
    paths = fastmri_split(
        tmp_path, "multicoil", "train", widths=(36, 40), num_slices=3, num_coils=2
    )
    for p in paths:
        p.chmod(0o444)
    mtimes = [p.stat().st_mtime_ns for p in paths]
    listing = sorted(os.listdir(paths[0].parent))
    counter = _OpenCounter(monkeypatch)
    SliceDataset(tmp_path, "multicoil", "train")  # a header read and a value scan per file
    assert len(counter.modes) == 4
    counter.modes.clear()
    ds = SliceDataset(tmp_path, "multicoil", "train")
    at_index = len(counter.modes)
    assert at_index == 2  # the clean scans are cached: one header read per file
    for _ in range(2):
        for i in range(len(ds)):
            ds[i]
    assert len(counter.modes) - at_index == 2 and set(counter.modes) == {"r"}
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    assert sorted(os.listdir(paths[0].parent)) == listing and sorted(os.listdir(tmp_path)) == [
        "multicoil_train"
    ]
    ds.close()


def test_max_open_files_bounds_the_handles(tmp_path, fastmri_split, monkeypatch):
    fastmri_split(tmp_path, "singlecoil", "train", widths=(36, 40, 38), num_slices=2)
    ds = SliceDataset(tmp_path, "singlecoil", "train", max_open_files=2)
    counter = _OpenCounter(monkeypatch)
    for i in range(len(ds)):
        ds[i]
    assert len(counter.modes) == 3 and len(ds._handles) == 2


def test_dataloader_with_workers_after_parent_access(tmp_path, fastmri_split):
    fastmri_split(tmp_path, "multicoil", "val", widths=(36, 36), num_slices=3, num_coils=2)
    ds = SliceDataset(tmp_path, "multicoil", "val")
    first = ds[0]["kspace"]  # the parent now holds an open handle
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._handles == {} and torch.equal(clone[0]["kspace"], first)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    seen = [(f, int(s)) for b in batches for f, s in zip(b["fname"], b["slice_num"], strict=True)]
    assert seen == [(ds.volumes[v].fname, s) for v, s in ds.samples]
    assert batches[0]["kspace"].shape == (2, 2, 64, 36)
    torch.testing.assert_close(batches[0]["kspace"][0], first, rtol=0, atol=0)

"""The prescan: one verdict per volume, its clean value scans cached outside the data."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from mri_recon.data import prescan as ps
from mri_recon.data.fastmri import DataError


def _opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths h5py opens from now on."""
    opened: list[str] = []
    real = h5py.File

    def counting(name, *args, **kwargs):
        opened.append(str(name))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", counting)
    return opened


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MRI_RECON_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ps.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("MRI_RECON_CACHE")
    assert ps.cache_dir() == tmp_path / "xdg" / "mri_recon"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ps.cache_dir() == tmp_path / "home" / ".cache" / "mri_recon"


def test_a_clean_scan_is_cached_until_the_file_changes(monkeypatch, tmp_path, fastmri_volume):
    monkeypatch.setenv("MRI_RECON_CACHE", str(tmp_path / "cache"))
    path = fastmri_volume(tmp_path / "data" / "file1.h5", num_slices=3)
    listing = sorted(os.listdir(path.parent))
    opened = _opens(monkeypatch)
    ps.scan_volume(path)
    assert len(opened) == 2  # header, then every slice
    ps.scan_volume(path)
    assert len(opened) == 3  # cached: the header read only
    ps.scan_volume(path, rescan=True)
    assert len(opened) == 5
    assert len(list((tmp_path / "cache" / "prescan").iterdir())) == 1
    assert sorted(os.listdir(path.parent)) == listing  # nothing written next to the data
    with h5py.File(path, "a") as hf:  # same size, new mtime: scanned again, NaN found
        hf["reconstruction_esc"][2, 3, 4] = np.inf
    with pytest.raises(DataError, match=r"file1.h5: reconstruction_esc has NaN or Inf values"):
        ps.scan_volume(path)
    with pytest.raises(DataError, match=r"reconstruction_esc has NaN or Inf"):
        ps.scan_volume(path)  # a bad verdict is never cached as clean
    assert ps.scan_volume(path, prescan="header").fname == "file1.h5"


def test_a_symlink_shares_the_cache_of_its_target(monkeypatch, tmp_path, fastmri_volume):
    path = fastmri_volume(tmp_path / "file1.h5")
    link = tmp_path / "link.h5"
    link.symlink_to(path)
    ps.scan_volume(path)
    opened = _opens(monkeypatch)
    assert ps.scan_volume(link).path == link and len(opened) == 1


def test_an_unwritable_cache_warns_and_scans(monkeypatch, tmp_path, fastmri_volume):
    path = fastmri_volume(tmp_path / "file1.h5")
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder goes")
    monkeypatch.setenv("MRI_RECON_CACHE", str(blocker))
    with pytest.warns(UserWarning, match="prescan results are not cached"):
        info = ps.scan_volume(path)
    assert info.num_slices == 3 and blocker.read_text().startswith("a file")


def test_check_train_and_eval_share_the_verdict(tmp_path, fastmri_split):
    from mri_recon.data.checker import check_file
    from mri_recon.data.slice_dataset import SliceDataset
    from mri_recon.evaluation.volumes import select_volumes

    paths = fastmri_split(tmp_path, "singlecoil", "val", widths=(36, 40), num_slices=2)
    with h5py.File(paths[1], "a") as hf:
        hf["kspace"][1, 2, 3] = np.nan
    reason = "kspace has NaN or Inf values (first in slice 1)"
    assert check_file(paths[1]).reason == reason
    for build in (
        lambda: SliceDataset(tmp_path, "singlecoil", "val"),
        lambda: select_volumes(tmp_path, "singlecoil", "val"),
    ):
        with pytest.raises(DataError) as excinfo:
            build()
        assert str(excinfo.value) == f"{paths[1]}: {reason}"
    infos, skipped = select_volumes(tmp_path, "singlecoil", "val", skip_bad_files=True)
    assert [i.path for i in infos] == [paths[0]] and skipped[0].reason.endswith(reason)
    assert len(select_volumes(tmp_path, "singlecoil", "val", prescan="header")[0]) == 2


def test_an_in_place_edit_with_size_and_mtime_kept_is_scanned_again(tmp_path, fastmri_volume):
    """bit rot, ``cp -p``, ``rsync -a``: the cached clean verdict must not survive a content
    change that keeps the size and the mtime (the key holds st_ctime_ns, inode and device)."""
    path = fastmri_volume(tmp_path / "file1.h5", num_slices=3)
    ps.scan_volume(path)
    before = path.stat()
    with h5py.File(path, "r+") as hf:
        hf["kspace"][1, 2, 3] = np.nan
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with pytest.raises(
        DataError, match=r"file1.h5: kspace has NaN or Inf values \(first in slice 1\)"
    ):
        ps.scan_volume(path)


def test_a_file_replaced_by_another_with_the_same_stat_is_scanned_again(tmp_path, fastmri_volume):
    """A new inode (an archive re-extracted over the old file) is a new file."""
    path = fastmri_volume(tmp_path / "file1.h5", num_slices=3)
    ps.scan_volume(path)
    copy = tmp_path / "copy.h5"
    copy.write_bytes(path.read_bytes())
    with h5py.File(copy, "r+") as hf:
        hf["kspace"][2, 0, 0] = np.inf
    before = path.stat()
    os.utime(copy, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(copy, path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with pytest.raises(DataError, match=r"first in slice 2"):
        ps.scan_volume(path)

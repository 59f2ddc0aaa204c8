"""Zero-filled equals fastMRI's own pipeline (UnetDataTransform without its normalisation)
on volumes written to disk: per-file masks, the W < crop rule, single- and multi-coil."""

from __future__ import annotations

from pathlib import Path

import fastmri
import h5py
import numpy as np
import pytest
import torch
from fastmri.data import transforms as T
from fastmri.data.subsample import RandomMaskFunc

from mri_recon.baselines import ZeroFilled
from mri_recon.data.header import make_ismrmrd_header
from mri_recon.data.writer import write_volume
from mri_recon.physics.crop import crop_size_for
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, file_seed

H, TARGET = 40, (24, 24)


def _write(path: Path, num_coils: int, width: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    shape = (3, num_coils, H, width) if num_coils > 1 else (3, H, width)
    kspace = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    target = rng.random((3, *TARGET), dtype=np.float32)
    header = make_ismrmrd_header((H, width, 1), (TARGET[0], TARGET[1], 1))
    attrs = {
        "max": float(target.max()),
        "norm": float(np.linalg.norm(target)),
        "acquisition": "CORPD_FBK",
        "patient_id": "p0",
    }
    return write_volume(path, kspace, header=header, attrs=attrs, target=target)


def _fastmri_zero_filled(path: Path, cf: float, r: int) -> torch.Tensor:
    """fastMRI's UnetDataTransform, slice by slice, without the normalisation."""
    out = []
    with h5py.File(path, "r") as hf:
        multicoil = hf["kspace"].ndim == 4
        for i in range(hf["kspace"].shape[0]):
            kspace = T.to_tensor(hf["kspace"][i])
            seed = tuple(map(ord, path.name))
            masked, _, _ = T.apply_mask(kspace, RandomMaskFunc([cf], [r]), seed=seed)
            image = fastmri.ifft2c(masked)
            crop = TARGET
            if image.shape[-2] < crop[1]:
                crop = (image.shape[-2], image.shape[-2])
            image = fastmri.complex_abs(T.complex_center_crop(image, crop))
            out.append(fastmri.rss(image) if multicoil else image)
    return torch.stack(out)


def _ours(path: Path, cf: float, r: int) -> torch.Tensor:
    with h5py.File(path, "r") as hf:
        kspace = torch.from_numpy(hf["kspace"][()])
    if kspace.ndim == 3:
        kspace = kspace[:, None]  # (S, 1, H, W): one code path for both challenges
    s, _, _, w = kspace.shape
    mask = ColumnMaskFunc("random", [cf], [r])(w, seed=file_seed(path)).mask
    mask = mask[None].expand(s, w)  # (S, W): the same mask for every slice of a volume
    return ZeroFilled()(apply_mask(kspace, mask), mask, None, crop_size_for(w, TARGET))


@pytest.mark.parametrize(
    ("num_coils", "width", "cf", "r"),
    [(1, 36, 0.08, 4), (1, 22, 0.04, 8), (4, 30, 0.08, 4), (3, 21, 0.16, 4)],
)
def test_equals_fastmri_pipeline(
    tmp_path: Path, num_coils: int, width: int, cf: float, r: int
) -> None:
    path = _write(tmp_path / f"file{width}_{num_coils}.h5", num_coils, width, seed=width)
    ours, ref = _ours(path, cf, r), _fastmri_zero_filled(path, cf, r)
    expected_crop = TARGET if width >= TARGET[1] else (width, width)
    assert ours.shape == (3, *expected_crop) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_mask_matters_and_path_does_not(tmp_path: Path) -> None:
    a = _write(tmp_path / "a" / "file1.h5", 1, 36, seed=0)
    b = _write(tmp_path / "b" / "file1.h5", 1, 36, seed=0)
    torch.testing.assert_close(_ours(a, 0.08, 4), _ours(b, 0.08, 4))  # seed from the name
    c = _write(tmp_path / "file2.h5", 1, 36, seed=0)
    assert not torch.allclose(_ours(a, 0.08, 4), _ours(c, 0.08, 4))


def test_full_sampling_is_the_target_definition() -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, H, 30, dtype=torch.complex64, generator=g)
    kspace = torch.fft.fftshift(
        torch.fft.fft2(torch.fft.ifftshift(image, dim=(-2, -1)), norm="ortho"), dim=(-2, -1)
    )
    full = torch.ones(2, 30, dtype=torch.bool)
    out = ZeroFilled()(kspace, full, None, (20, 10))
    ref = torch.sqrt((image.abs() ** 2).sum(dim=1))[:, 10:30, 10:20]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_bad_inputs_name_the_tensor() -> None:
    zf = ZeroFilled()
    assert zf.name == "zero_filled" and not zf.needs_sens_maps
    k = torch.zeros(2, 1, H, 30, dtype=torch.complex64)
    with pytest.raises(ValueError, match="mask must be"):
        zf(k, torch.ones(2, 31, dtype=torch.bool), None, (20, 20))
    with pytest.raises(TypeError, match="masked_kspace must be complex"):
        zf(k.real, torch.ones(2, 30, dtype=torch.bool), None, (20, 20))
    with pytest.raises(ValueError, match=r"crop_size \(20, 31\) must fit in \(H, W\)"):
        zf(k, torch.ones(2, 30, dtype=torch.bool), None, (20, 31))

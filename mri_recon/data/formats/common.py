"""What the readers of other formats than fastMRI share: their VolumeInfo, RSS targets and
tiny synthetic multi-coil images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mri_recon.data.fastmri import VolumeInfo
from mri_recon.fileio import atomic_path


def volume_info(
    reader: Any,
    path: Path,
    kspace_shape: tuple[int, int, int, int],
    crop_size: tuple[int, int],
    target_key: str | None,
    **fields: Any,
) -> VolumeInfo:
    """A VolumeInfo of a file without an ISMRMRD header: the geometry a fastMRI header would
    give (encoded size (H, W, 1), recon size (h, w, 1), acquired columns ``[0, W)`` unless
    ``padding_left``/``padding_right`` say otherwise) and the format's reader.

    Args:
        kspace_shape: (S, C, H, W) as the samples are read (not as stored).
        crop_size: (h, w) the targets are centre-cropped to.
        target_key: what the target is read or computed from; None: no target (test file).
        fields: any other VolumeInfo field (``acquisition``, ``mask``, ``attrs``, ...).
    """
    num_slices, num_coils, height, width = kspace_shape
    base: dict[str, Any] = dict(
        path=path,
        fname=path.name,
        challenge="multicoil",
        num_slices=num_slices,
        num_coils=num_coils,
        kspace_shape=tuple(kspace_shape),
        target_key=target_key,
        target_shape=None if target_key is None else (height, width),
        crop_size=tuple(crop_size),
        encoded_size=(height, width, 1),
        recon_size=(*crop_size, 1),
        padding_left=0,
        padding_right=width,
        acquisition="",
        max_value=None,
        norm=None,
        patient_id=path.stem,
        is_test=target_key is None,
        mask=None,
        num_low_frequencies=None,
        acceleration=None,
        attrs={},
        reader=reader,
    )
    return VolumeInfo(**{**base, **fields})


def rss_image(image: np.ndarray) -> np.ndarray:
    """float32 (H, W): root-sum-of-squares over coils of complex (C, H, W) coil images."""
    return np.sqrt((np.abs(image) ** 2).sum(axis=0)).astype(np.float32)


def centered_ifft2(kspace: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D IFFT of centred k-space over the last two axes (fastMRI's ifft2c)."""
    axes = (-2, -1)
    shifted = np.fft.ifftshift(kspace, axes=axes)
    return np.fft.fftshift(np.fft.ifft2(shifted, axes=axes, norm="ortho"), axes=axes)


def centered_fft2(image: np.ndarray) -> np.ndarray:
    """Orthonormal 2-D FFT to centred k-space over the last two axes (fastMRI's fft2c)."""
    axes = (-2, -1)
    shifted = np.fft.ifftshift(image, axes=axes)
    return np.fft.fftshift(np.fft.fft2(shifted, axes=axes, norm="ortho"), axes=axes)


def coil_images(
    rng: np.random.Generator, num_slices: int, num_coils: int, height: int, width: int
) -> np.ndarray:
    """complex64 (S, C, H, W): a textured ellipse with a smooth phase, times smooth coil
    sensitivities on a ring (tiny synthetic data for the layouts' tests)."""
    y, x = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    inside = (x / 0.7) ** 2 + (y / 0.8) ** 2 < 1
    texture = 0.5 + rng.random((num_slices, height, width))
    phase = np.exp(1j * np.pi * (0.3 * x + 0.2 * y + rng.uniform(-1, 1, (num_slices, 1, 1))))
    angles = 2 * np.pi * np.arange(num_coils) / num_coils
    cx, cy = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    sens = np.exp(-((x - cx) ** 2 + (y - cy) ** 2)) * np.exp(1j * angles[:, None, None])
    return ((inside * texture * phase)[:, None] * sens[None]).astype(np.complex64)


def write_h5(
    path: Path,
    datasets: dict[str, np.ndarray],
    attrs: dict[str, Any] | None = None,
    userblock: bytes = b"",
) -> Path:
    """Write ``datasets`` (and file ``attrs``) to a new HDF5 file atomically; ``userblock``:
    bytes for the file's first 512 (a MATLAB v7.3 header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", userblock_size=512 if userblock else 0) as hf:
            for key, value in datasets.items():
                hf.create_dataset(key, data=value)
            hf.attrs.update(attrs or {})
        if userblock:
            with open(tmp, "r+b") as fh:
                fh.write(userblock[:512])
    return path

"""Calgary-Campinas (CC359) raw multi-coil brain k-space.

What is read, after the dataset's own code (MC-MRI-Rec ``getting_started.ipynb``,
``Modules/zero_filled_rec.py``) and DIRECT's ``CalgaryCampinasDataset``:

- ``<root>/Train/*.h5`` and ``<root>/Val/*.h5`` (``train_val_12_channel.zip`` of
  ``CC359/Raw-data/Multi-channel/12-channel/``): train -> ``Train``, val -> ``Val``
  (test -> ``Test``, files of the same layout);
- one dataset ``kspace``, float (x, ky, kz, 2 C): the readout (x) was already inverse
  Fourier transformed, so each of the x positions is one 2-D sample (slices along the readout
  axis), ky (218) the rows H and kz (170 or 180) the columns W; the last axis interleaves real
  and imaginary parts of the C = 12 channels (``kspace[..., ::2] + 1j * kspace[..., 1::2]``);
- the data were partially acquired along kz: columns from ``ceil(0.85 W)`` on are zero
  (DIRECT zeroes them explicitly, ``sampling_rate_slice_encode = 0.85``; its acquired
  columns are ``[0, ceil(0.85 W))``);
- no stored target: the reference is the root sum of squares over channels of the
  channel-wise 2-D inverse FFT (``numpy.fft.ifft2`` over (ky, kz), no shifts: DC lies in the
  middle of the stored array, so the magnitude is the image), here orthonormal.

Samples are in this project's convention (``ifft2c(kspace)`` gives the image): the stored
k-space times the checkerboard ``(-1)^(ky + kz)``, which moves the image by half the grid and
keeps every sample where it is (both grid sizes are even). Default crop: none (the whole
H x W image, as DIRECT and the challenge's metrics use it).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from mri_recon.data.formats.base import FormatReader, SliceSource, dataset_problem
from mri_recon.data.formats.common import coil_images, rss_image, volume_info, write_h5
from mri_recon.data.h5 import DataError, h5_reason, open_h5, read_dataset

SAMPLED_FRACTION = 0.85  # of kz, DIRECT's sampling_rate_slice_encode
TARGET = "rss(ifft2(kspace))"


def checkerboard(height: int, width: int) -> np.ndarray:
    """float32 (H, W): ``(-1)^(row + column)``."""
    return np.where((np.add.outer(np.arange(height), np.arange(width)) % 2) == 0, 1, -1).astype(
        np.float32
    )


class Source(SliceSource):
    """Sample ``s`` = readout position ``s`` of ``kspace``."""

    def __init__(self, info: Any) -> None:
        super().__init__(info)
        self.kspace = self.hf["kspace"]
        self.sign = checkerboard(*info.image_shape)

    def read(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        raw = read_dataset(self.kspace, self.info.path, s)  # (H, W, 2C) float
        kspace = np.moveaxis(raw[..., ::2] + 1j * raw[..., 1::2], -1, 0)  # (C, H, W)
        kspace[..., self.info.padding_right :] = 0  # not acquired (partial kz)
        target = rss_image(np.fft.ifft2(kspace, axes=(-2, -1), norm="ortho"))
        return (kspace * self.sign).astype(np.complex64), target


class Reader(FormatReader):
    """CC359 12-channel raw data; options ``sampled_fraction`` (of kz, 0.85) and
    ``crop_size`` ([h, w] or None: the whole image)."""

    name = "cc359"
    challenge = "multicoil"
    split_folders = {"train": "Train", "val": "Val", "test": "Test"}
    OPTIONS = {"sampled_fraction": SAMPLED_FRACTION, "crop_size": None}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        fraction, crop = self.options["sampled_fraction"], self.options["crop_size"]
        if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(
                f"format_options.sampled_fraction: must be in (0, 1], got {fraction!r}"
            )
        if crop is not None and (len(crop) != 2 or min(crop) < 1):
            raise ValueError(f"format_options.crop_size: must be [h, w] >= 1 or null, got {crop!r}")

    def read_info(
        self,
        path: str | os.PathLike,
        challenge: str | None = None,
        split: str | None = None,
        allow_unmasked: bool = False,
    ) -> Any:
        path, problems = Path(path), []
        try:
            with open_h5(path) as hf:
                problem = dataset_problem(
                    hf, "kspace", 4, "f", "float (x, ky, kz, 2 x channels: real/imag interleaved)"
                )
                shape = tuple(int(n) for n in hf["kspace"].shape) if problem is None else ()
                attrs = {str(k): v for k, v in hf.attrs.items()}
        except (OSError, RuntimeError, KeyError) as err:
            raise DataError(path, f"corrupt HDF5 file ({h5_reason(err)})") from None
        if problem:
            raise DataError(path, problem)
        slices, height, width, channels = shape
        if channels % 2:
            problems.append(
                f"kspace last axis has {channels} entries, expected an even number "
                "(real and imaginary parts of each channel, interleaved)"
            )
        if height % 2 or width % 2:
            problems.append(f"kspace (ky, kz) = ({height}, {width}) must both be even")
        crop = tuple(self.options["crop_size"] or (height, width))
        if crop[0] > height or crop[1] > width:
            problems.append(f"crop_size {crop} does not fit the (ky, kz) grid ({height}, {width})")
        if problems:
            raise DataError(path, "; ".join(problems))
        return volume_info(
            self,
            path,
            (slices, channels // 2, height, width),
            crop,
            TARGET,
            padding_right=math.ceil(self.options["sampled_fraction"] * width),
            acquisition=str(attrs.get("acquisition", "CC359_T1")),
            attrs=attrs,
        )

    def open(self, info: Any) -> Source:
        return Source(info)

    def synth(self, out: Path, preset: str, seed: int) -> list[Path]:
        """``Train/`` and ``Val/`` with 2 volumes each of ``kspace`` float32
        (x, ky, kz, 2 C) (tiny: 3 x 24 x 20 x 2*4), zero from ``ceil(0.85 kz)`` on."""
        size = (3, 24, 20, 4) if preset == "tiny" else (16, 218, 170, 12)
        x, height, width, coils = size
        paths = []
        for split_index, folder in enumerate(("Train", "Val")):
            for i in range(2):
                rng = np.random.default_rng([seed, split_index, i])
                image = coil_images(rng, x, coils, height, width)  # (x, C, ky, kz)
                # DC in the middle of the stored grid: ifft2 (no shifts) gives the image back
                kspace = np.fft.fftshift(np.fft.fft2(image, norm="ortho"), axes=(-2, -1))
                kspace[..., math.ceil(SAMPLED_FRACTION * width) :] = 0
                stored = np.empty((x, height, width, 2 * coils), np.float32)
                stored[..., ::2] = np.moveaxis(kspace.real, 1, -1)
                stored[..., 1::2] = np.moveaxis(kspace.imag, 1, -1)
                path = out / folder / f"e{14000 + 10 * split_index + i}s3_P{53000 + i}.7.h5"
                paths.append(write_h5(path, {"kspace": stored}))
        return paths

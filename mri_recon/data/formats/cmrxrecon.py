"""CMRxRecon (MICCAI 2023) multi-coil cardiac cine k-space, MATLAB v7.3 files read with h5py.

What is read, after the challenge's own description (CmrxRecon/CMRxRecon
``ChallengeDataFormat/Format_cine.txt``, ``loadFun.py``) and DIRECT's ``CMRxReconDataset``:

- ``<root>`` is ``MultiCoil/Cine``; train -> ``TrainingSet/FullSample``, val ->
  ``ValidationSet/FullSample``, test -> ``TestSet/FullSample`` (the fully sampled validation
  and test data were released after the challenge), one folder per subject
  (``P001/cine_sax.mat``, ``P001/cine_lax.mat``); a sample's ``fname`` is
  ``P001_cine_sax.mat`` (as DIRECT's data folders name them);
- ``.mat`` v7.3 files are HDF5; ``kspace_full`` is MATLAB complex (kx, ky, sc, sz, t), which
  h5py reads in reverse order (t, sz, sc, ky, kx) as a compound of ``real`` and ``imag``;
  one 2-D frame per sample, sample ``i`` = (t, z) = ``divmod(i, sz)`` (DIRECT's order),
  read as (sc, kx, ky) = (C, H, W): kx the readout rows, ky the phase-encode columns;
- target: root sum of squares over coils of the centred orthonormal 2-D IFFT (``loadFun``'s
  ``ifft2c`` and ``multicoilkdata2img``), cropped to the centre (round(kx / 3), round(ky / 2))
  as DIRECT's ``reconstruction_size`` does (option ``crop="full"``: no crop);
- the dataset's own masks (option ``acceleration`` 4, 8 or 10): ``mask04``/``mask08``/
  ``mask10`` of ``AccFactorNN/<subject>/<name>_mask.mat``, binary (kx, ky) in MATLAB (read as
  (ky, kx)), the same for every coil, slice and frame, undersampled along ky with the central
  24 lines always sampled: a column mask, applied to the fully sampled k-space.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mri_recon.checks import one_of
from mri_recon.data.formats.base import FormatReader, SliceSource, dataset_problem
from mri_recon.data.formats.common import (
    centered_fft2,
    centered_ifft2,
    coil_images,
    rss_image,
    volume_info,
    write_h5,
)
from mri_recon.data.h5 import DataError, h5_reason, open_h5, read_dataset
from mri_recon.physics.masks import center_band

KEY = "kspace_full"
ACCELERATIONS = (None, 4, 8, 10)
ACS_LINES = 24
CROPS = ("challenge", "full")


def mat_header() -> bytes:
    """The 128-byte text header MATLAB writes before the HDF5 data of a v7.3 file."""
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {time.ctime(0)} HDF5 schema 1.00 ."
    return text.encode().ljust(116) + b"\0" * 8 + b"\x00\x02IM"


def mat_complex(array: np.ndarray) -> np.ndarray:
    """A complex array as MATLAB stores it in HDF5: a compound of ``real`` and ``imag``."""
    dtype = np.dtype([("real", np.float32), ("imag", np.float32)])
    out = np.empty(array.shape, dtype)
    out["real"], out["imag"] = array.real, array.imag
    return out


class Source(SliceSource):
    """Frame (t, z) of ``kspace_full`` as (C, H, W) complex64 and its RSS target."""

    def __init__(self, info: Any) -> None:
        super().__init__(info)
        self.kspace = self.hf[KEY]

    def read(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        t, z = divmod(s, self.kspace.shape[1])
        frame = read_dataset(self.kspace, self.info.path, (t, z))  # (sc, ky, kx) compound
        kspace = np.swapaxes(frame["real"] + 1j * frame["imag"], -1, -2).astype(np.complex64)
        return kspace, rss_image(centered_ifft2(kspace))


class Reader(FormatReader):
    """CMRxRecon multi-coil cine; options ``acceleration`` (None, 4, 8, 10: the dataset's
    mask of that factor) and ``crop`` (``challenge``: (kx/3, ky/2); ``full``)."""

    name = "cmrxrecon"
    challenge = "multicoil"
    suffix = ".mat"
    split_folders = {
        "train": "TrainingSet/FullSample",
        "val": "ValidationSet/FullSample",
        "test": "TestSet/FullSample",
    }
    OPTIONS = {"acceleration": None, "crop": "challenge"}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        one_of("format_options.acceleration", self.options["acceleration"], ACCELERATIONS)
        one_of("format_options.crop", self.options["crop"], CROPS)

    def is_volume(self, path: Path) -> bool:
        return super().is_volume(path) and not path.stem.endswith("_mask")

    def find(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.glob(f"*/*{self.suffix}") if self.is_volume(p))

    def mask_file(self, path: Path) -> tuple[Path, str] | None:
        """(mask file, key) of a fully sampled file for option ``acceleration``, else None."""
        factor = self.options["acceleration"]
        if factor is None:
            return None
        folder = path.parent.parent.parent / f"AccFactor{factor:02d}" / path.parent.name
        return folder / f"{path.stem}_mask.mat", f"mask{factor:02d}"

    def companions(self, path: Path) -> list[Path]:
        found = self.mask_file(path)
        return [] if found is None else [found[0]]

    def _mask(self, path: Path, height: int, width: int) -> np.ndarray:
        """The dataset's (W,) column mask of ``path``; DataError naming file, key and axis."""
        file, key = self.mask_file(path)
        where = f"{file.parent.parent.name}/{file.parent.name}/{file.name}"
        if not file.is_file():
            raise DataError(path, f"no mask file {where} (format_options.acceleration)")
        with open_h5(file) as hf:
            problem = dataset_problem(hf, key, 2, "biuf", "0/1 (kx, ky)")
            mask = None if problem else read_dataset(hf[key], file)
        if problem or mask.shape != (width, height):
            shape = (
                "" if problem else f"{key} shape {mask.shape} (ky, kx) is not ({width}, {height})"
            )
            raise DataError(path, f"mask file {where}: {problem or shape}")
        columns = mask.astype(bool).any(axis=1)  # (ky,)
        if (mask.astype(bool) != columns[:, None]).any():
            raise DataError(
                path, f"mask file {where}: {key} varies along kx (not a column mask; "
                "2-D masks need 2-D data consistency)",
            )  # fmt: skip
        return columns

    def read_info(
        self,
        path: str | os.PathLike,
        challenge: str | None = None,
        split: str | None = None,
        allow_unmasked: bool = False,
    ) -> Any:
        path = Path(path)
        try:
            with open_h5(path) as hf:
                problem = dataset_problem(hf, KEY, 5, "V", "MATLAB complex (t, sz, sc, ky, kx)")
                ds = hf[KEY] if problem is None else None
                if ds is not None and set(ds.dtype.names or ()) != {"real", "imag"}:
                    problem = f"{KEY} compound fields {ds.dtype.names}, expected ('real', 'imag')"
                shape = () if problem else tuple(int(n) for n in ds.shape)
        except (OSError, RuntimeError, KeyError) as err:
            raise DataError(path, f"corrupt HDF5 file ({h5_reason(err)})") from None
        if problem:
            raise DataError(path, problem)
        frames, slices, coils, width, height = shape
        crop = (
            (round(height / 3), round(width / 2))
            if self.options["crop"] == "challenge"
            else (height, width)
        )
        mask = None if self.options["acceleration"] is None else self._mask(path, height, width)
        fields: dict[str, Any] = {}
        if mask is not None:
            start, stop = center_band(torch.from_numpy(mask))
            fields = dict(mask=mask, acceleration=float(self.options["acceleration"]),
                          num_low_frequencies=stop - start)  # fmt: skip
        info = volume_info(
            self, path, (frames * slices, coils, height, width), crop, "rss(ifft2c(kspace_full))",
            acquisition=path.stem, patient_id=path.parent.name,
            fname=f"{path.parent.name}_{path.name}", **fields,
        )  # fmt: skip
        return info

    def open(self, info: Any) -> Source:
        return Source(info)

    def synth(self, out: Path, preset: str, seed: int) -> list[Path]:
        """Two subjects (``TrainingSet`` P001, ``ValidationSet`` P002), ``cine_sax.mat`` and
        ``cine_lax.mat`` each (tiny: t 3, sz 2, sc 4, ky 64, kx 48) and their
        ``AccFactor04`` masks (24 central ky lines and every 4th)."""
        t, sz, sc, ky, kx = (3, 2, 4, 64, 48) if preset == "tiny" else (12, 10, 10, 246, 512)
        paths = []
        for index, (folder, subject) in enumerate(
            (("TrainingSet", "P001"), ("ValidationSet", "P002"))
        ):
            for view in ("cine_sax", "cine_lax"):
                rng = np.random.default_rng([seed, index, len(view)])
                images = coil_images(rng, t * sz, sc, kx, ky)  # (t sz, sc, kx, ky)
                kspace = centered_fft2(images).reshape(t, sz, sc, kx, ky).swapaxes(-1, -2)
                base = out / folder / "FullSample" / subject / f"{view}.mat"
                paths.append(write_h5(base, {KEY: mat_complex(kspace)}, userblock=mat_header()))
                lines = np.zeros(ky, bool)
                lines[::4] = True
                lines[ky // 2 - ACS_LINES // 2 : ky // 2 + ACS_LINES // 2] = True
                mask = np.repeat(lines[:, None], kx, axis=1).astype(np.float64)  # (ky, kx)
                mask_path = out / folder / "AccFactor04" / subject / f"{view}_mask.mat"
                write_h5(mask_path, {"mask04": mask}, userblock=mat_header())
        return paths

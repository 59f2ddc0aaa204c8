"""M4Raw: low-field (0.3 T) multi-contrast, multi-repetition, multi-channel brain k-space.

What is read, after the dataset's README and tutorial (mylyu/M4Raw ``M4Raw_tutorial.ipynb``,
``parallel_imaging_demo/Unet_demo/README.md``, ``denoising_demo/dataloader/dataset.py``):

- fastMRI-like files in ``<root>/multicoil_train``, ``multicoil_val`` (and ``multicoil_test``),
  one per scan: keys ``kspace`` complex (S, C = 4, H, W) (e.g. (18, 4, 256, 256)),
  ``reconstruction_rss`` float (S, H, W), ``ismrmrd_header``; attrs ``acquisition`` (``AXT1``,
  ``AXT2``, ``AXFLAIR``), ``max``, ``patient_id``. Everything a fastMRI multi-coil file is
  checked for is checked (:func:`mri_recon.data.fastmri.read_volume_info`);
- each scan is one repetition (one average) of a protocol, named
  ``<subject>_<protocol>0<repetition>.h5`` (``2022061003_T201.h5``: T2, repetition 1; the
  authors' sample subject has three T1, three T2 and two FLAIR repetitions);
- ``target="file"`` (default): each repetition is a sample with its own
  ``reconstruction_rss``, as the authors' parallel-imaging demos train with fastMRI's loader;
  ``target="mean"``: each repetition's k-space is a sample whose target is the mean of
  ``reconstruction_rss`` over all repetitions of its subject and protocol (the authors'
  multi-repetition average, the label of their denoising demo; they also rescale each image
  to [0, 1] there, which we do not: metrics use the target volume's max).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mri_recon.checks import one_of
from mri_recon.data.fastmri import read_volume_info
from mri_recon.data.formats.base import FormatReader, SliceSource
from mri_recon.data.formats.common import (
    centered_fft2,
    centered_ifft2,
    coil_images,
    rss_image,
    write_h5,
)
from mri_recon.data.h5 import DataError, open_h5, read_dataset
from mri_recon.data.header import make_ismrmrd_header

NAME = re.compile(r"^(?P<subject>.+)_(?P<protocol>T1|T2|FLAIR)0(?P<repetition>\d)\.h5$")
ACQUISITIONS = {"T1": "AXT1", "T2": "AXT2", "FLAIR": "AXFLAIR"}
TARGETS = ("file", "mean")


class Source(SliceSource):
    """A repetition's k-space; its target, or the mean target of all its repetitions."""

    def __init__(self, info: Any) -> None:
        super().__init__(info)
        self.kspace = self.hf["kspace"]
        paths = info.reader.companions(info.path) if info.reader.options["target"] == "mean" else []
        self.others = [open_h5(p) for p in paths]

    def read(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.info.path
        kspace = read_dataset(self.kspace, path, s).astype(np.complex64, copy=False)
        targets = [read_dataset(self.hf["reconstruction_rss"], path, s)]
        targets += [
            read_dataset(hf["reconstruction_rss"], Path(hf.filename), s) for hf in self.others
        ]
        return kspace, np.mean(targets, axis=0).astype(np.float32)

    def close(self) -> None:
        for hf in self.others:
            hf.close()
        super().close()


class Reader(FormatReader):
    """M4Raw; option ``target``: ``file`` (each repetition's own) or ``mean`` (the average
    over the repetitions of its subject and protocol)."""

    name = "m4raw"
    challenge = "multicoil"
    split_folders = {s: f"multicoil_{s}" for s in ("train", "val", "test")}
    OPTIONS = {"target": "file"}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        one_of("format_options.target", self.options["target"], TARGETS)

    def companions(self, path: Path) -> list[Path]:
        """The other repetitions of ``path``'s subject and protocol (``target="mean"``)."""
        found = NAME.match(path.name)
        if found is None or self.options["target"] != "mean":
            return []
        stem = f"{found['subject']}_{found['protocol']}0"
        return sorted(p for p in path.parent.glob(f"{stem}[0-9].h5") if p != path)

    def read_info(
        self,
        path: str | os.PathLike,
        challenge: str | None = None,
        split: str | None = None,
        allow_unmasked: bool = False,
    ) -> Any:
        path = Path(path)
        info = read_volume_info(path, "multicoil", split, allow_unmasked)
        if info.reader is not None:  # read as a fastMRI prostate file (averages axis)
            raise DataError(path, "kspace has 5 dims, expected 4 (S, C, H, W): M4Raw stores "
                            "each repetition in its own file")  # fmt: skip
        fields: dict[str, Any] = {"reader": self}
        if self.options["target"] == "mean" and info.target_key is not None:
            if NAME.match(path.name) is None:
                raise DataError(
                    path, "name is not <subject>_<T1|T2|FLAIR>0<repetition>.h5: its "
                    "repetitions cannot be found for target=mean",
                )  # fmt: skip
            shapes = {
                p.name: read_volume_info(p, "multicoil").kspace_shape for p in self.companions(path)
            }
            differ = {name: shape for name, shape in shapes.items() if shape != info.kspace_shape}
            if differ:
                raise DataError(
                    path, f"kspace shape {info.kspace_shape} differs from its repetitions' {differ}"
                )
            fields.update(target_key=f"mean(reconstruction_rss over {len(shapes) + 1} repetitions)",
                          max_value=None)  # fmt: skip
        return replace(info, **fields)

    def open(self, info: Any) -> Source:
        return Source(info)

    def synth(self, out: Path, preset: str, seed: int) -> list[Path]:
        """``multicoil_train/`` and ``multicoil_val/``: one subject each with three T2 and two
        FLAIR repetitions (tiny: 2 slices x 4 coils x 32 x 32), noise differing per repetition."""
        slices, coils, size = (2, 4, 32) if preset == "tiny" else (18, 4, 256)
        paths = []
        for split_index, split in enumerate(("train", "val")):
            subject = f"20220610{split_index:02d}"
            for protocol, repetitions in (("T2", 3), ("FLAIR", 2)):
                clean = coil_images(
                    np.random.default_rng([seed, split_index]), slices, coils, size, size
                )
                for rep in range(1, repetitions + 1):
                    rng = np.random.default_rng([seed, split_index, rep, len(protocol)])
                    noise = rng.normal(0, 0.05, clean.shape) + 1j * rng.normal(0, 0.05, clean.shape)
                    kspace = centered_fft2(clean + noise).astype(np.complex64)
                    target = np.stack([rss_image(centered_ifft2(k)) for k in kspace])
                    header = make_ismrmrd_header(
                        (size, size, 1), (size, size, 1), num_slices=slices
                    )
                    path = out / f"multicoil_{split}" / f"{subject}_{protocol}0{rep}.h5"
                    datasets = {"kspace": kspace, "reconstruction_rss": target,
                                "ismrmrd_header": np.bytes_(header)}  # fmt: skip
                    attrs = {"acquisition": ACQUISITIONS[protocol], "max": float(target.max()),
                             "patient_id": f"{seed:02d}{subject}"}  # fmt: skip
                    paths.append(write_h5(path, datasets, attrs))
        return paths

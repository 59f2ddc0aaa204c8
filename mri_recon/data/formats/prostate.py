"""fastMRI prostate T2: read by the ``fastmri`` format, recognised by its averages axis.

What is read, after the dataset's own code (cai2r/fastMRI_prostate: ``fastmri_prostate/data/
mri_data.py`` ``load_file_T2``, ``zero_pad_kspace_hdr``, ``get_padding``;
``reconstruction/t2/prostate_t2_recon.py`` ``t2_reconstruction``,
``create_coil_combined_im``; ``reconstruction/utils.py`` ``ifftnd``, ``center_crop_im``;
``fastmri_prostate_tutorial.ipynb``) and the paper (Tibrewala et al., Sci. Data 11:404, 2024;
arXiv 2304.09254):

- keys ``kspace`` complex (averages A = 3, slices, coils, readout H, phase W_acq), e.g.
  (3, 30, 20, 640, 451); ``calibration_data`` (slices, coils, readout, 32 lines), the
  separate GRAPPA calibration scan; ``reconstruction_rss`` float (slices, 320, 320);
  ``ismrmrd_header``; attrs ``max``, ``norm``, ``patient_id``, ``acquisition``;
- each average is 2x undersampled (averages 0 and 2 hold the odd phase-encode lines,
  average 1 the even ones; the GRAPPA code of the authors computes one kernel geometry from
  average 0 and reuses it for average 2); the stored k-space is not zero-padded: the authors
  pad the phase axis to the header's ``encodedSpace/matrixSize/x`` (= H) with
  ``floor``/``ceil`` of ``(x - (kspace_encoding_step_1.maximum + 1)) / 2`` on the left/right;
- the target the authors store, ``reconstruction_rss``, is per average GRAPPA, orthonormal
  centred 2-D IFFT, RSS over coils, ``np.flipud``, the mean of the averages' images, the
  centre 320 x 320: read as stored, flipped back up-down so that it lies as
  ``rss(ifft2c(kspace))`` of our samples does (crop and flip commute for even sizes);
- option ``averages`` of the ``fastmri`` format: ``"combine"`` (default), each sample the
  slice's k-space with every acquired column the mean over the averages that acquired it
  (odd columns: the mean of averages 0 and 2, even: average 1), i.e. the fully sampled
  acquired matrix, undersampled by the ``mask=`` group like knee and brain; an integer
  ``a``: average ``a`` alone, prospectively 2x undersampled, with the lines of the separate
  calibration scan (``calibration_data``, the authors' GRAPPA calibration) filling the
  columns it lacks in the centre band, placed about the DC column ``W // 2``; its acquired
  columns and that band are the stored mask (acceleration ``W_acq / sampled``; the
  zero-padded columns count as known zeros). The band is the ACS region sensitivity maps
  (TV, VarNet) are estimated from: without ``calibration_data`` a 2x average has none.

Diffusion files (``coil_sens_maps``, ``trace_*`` targets: EPI k-space that needs the authors'
trapezoidal regridding) are refused with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from mri_recon.data import fastmri as fm
from mri_recon.data.formats.base import SliceSource
from mri_recon.data.formats.common import centered_fft2, centered_ifft2, coil_images, write_h5
from mri_recon.data.h5 import read_dataset
from mri_recon.data.header import HeaderError, make_ismrmrd_header, parse_ismrmrd_header
from mri_recon.physics.masks import center_band

TARGET = "reconstruction_rss"


class Source(SliceSource):
    """Slice ``s``: the averages combined (or one average), zero-padded to the encoded
    width; the stored target flipped back up-down."""

    def __init__(self, info: Any) -> None:
        super().__init__(info)
        self.kspace = self.hf["kspace"]
        self.target = None if info.target_key is None else self.hf[info.target_key]
        self.average = info.reader.options["averages"]

    def read(self, s: int) -> tuple[np.ndarray, np.ndarray | None]:
        info, combine = self.info, self.average == "combine"
        k = read_dataset(self.kspace, info.path, (slice(None), s) if combine else (self.average, s))
        if combine:  # (A, C, H, W_acq): per column the mean over the averages acquiring it
            acquired = np.abs(k).max(axis=(1, 2)) > 0  # (A, W_acq)
            k = k.sum(axis=0) / np.maximum(acquired.sum(axis=0), 1)
        kspace = np.zeros(info.kspace_shape[1:], np.complex64)
        kspace[..., info.padding_left : info.padding_right] = k
        if not combine and "calibration_data" in self.hf:  # lines the average lacks, centred
            cal = read_dataset(self.hf["calibration_data"], info.path, s)  # (C, H, n)
            band = kspace[..., calibration_band(info.kspace_shape[-1], cal.shape[-1])]
            have = np.abs(band).max(axis=(0, 1)) > 0
            band[..., ~have] = cal[..., ~have]
        target = None
        if self.target is not None:
            target = np.ascontiguousarray(read_dataset(self.target, info.path, s)[::-1])
        return kspace, None if target is None else target.astype(np.float32, copy=False)

    def volume_max(self) -> float:
        return float(np.max(read_dataset(self.target, self.info.path)))


def calibration_band(width: int, lines: int) -> slice:
    """The ``lines`` central columns of a k-space ``width`` wide (DC at ``width // 2``)."""
    start = width // 2 - lines // 2
    return slice(start, start + lines)


def _header(hf: h5py.File, height: int, acquired: int, problems: list[str]) -> Any:
    ds = hf.get("ismrmrd_header")
    raw = fm._py(ds[()]) if isinstance(ds, h5py.Dataset) else None
    if isinstance(raw, np.ndarray) and raw.dtype in (np.uint8, np.int8):
        raw = raw.tobytes()
    try:
        hdr = parse_ismrmrd_header(raw) if isinstance(raw, (str, bytes)) else None
    except HeaderError as err:
        problems.append(str(err))
        return None
    if hdr is None:
        problems.append("no 'ismrmrd_header' dataset of XML bytes")
    elif hdr.encoded_size[0] != height or hdr.maximum + 1 != acquired:
        problems.append(
            f"ismrmrd_header encoded x = {hdr.encoded_size[0]} and kspace_encoding_step_1 "
            f"maximum + 1 = {hdr.maximum + 1} must be the kspace readout H = {height} and "
            f"its {acquired} phase-encode lines (the authors pad the lines to x)"
        )
    return hdr


def read_layout(
    hf: h5py.File,
    challenge: str | None,
    split: str | None,
    problems: list[str],
    allow_unmasked: bool,
    average: str | int,
) -> dict[str, Any]:
    """The VolumeInfo fields of an open prostate T2 file but its ``reader`` (``problems``
    empty), else its problems in ``problems``; ``average``: the option ``averages``."""
    ks = hf["kspace"]
    num_avg, slices, coils, height, acquired = (int(n) for n in ks.shape)
    if "coil_sens_maps" in hf:
        problems.append("a fastMRI prostate diffusion file (coil_sens_maps): its EPI k-space "
                        "needs regridding and is not read; T2 files are")  # fmt: skip
    if ks.dtype not in fm.KSPACE_DTYPES:
        problems.append(f"kspace dtype is {ks.dtype}, expected complex64 (or complex128)")
    if challenge not in (None, "multicoil"):
        problems.append(f"kspace shape {ks.shape} is multicoil, but the challenge is {challenge}")
    if average != "combine" and average >= num_avg:
        problems.append(f"format_options.averages = {average}: kspace has {num_avg} averages")
    calib = hf.get("calibration_data")
    if calib is not None and (
        calib.ndim != 4 or tuple(calib.shape[:3]) != (slices, coils, height)
        or calib.shape[3] > acquired or calib.dtype not in fm.KSPACE_DTYPES
    ):  # fmt: skip
        problems.append(f"calibration_data {calib.shape} {calib.dtype} is not complex (slices, "
                        f"coils, readout, lines <= {acquired}) = ({slices}, {coils}, {height}, n)")  # fmt: skip
    hdr = _header(hf, height, acquired, problems)
    unmasked = allow_unmasked or average != "combine"  # one average: the mask is its columns
    target_key, target_shape = fm._target_layout(
        hf, "multicoil", (slices,), split, problems, unmasked
    )
    attrs = {str(k): fm._py(v) for k, v in hf.attrs.items()}
    numbers = {f: fm._number(attrs, key, problems) for f, key in (("max_value", "max"),
                                                                     ("norm", "norm"))}  # fmt: skip
    if problems or hdr is None:
        return {}
    left = (height - acquired) // 2  # floor on the left, ceil on the right (get_padding)
    kshape = (slices, coils, height, height)
    fields: dict[str, Any] = {"mask": None, "num_low_frequencies": None, "acceleration": None}
    if average != "combine":
        sampled = np.abs(read_dataset(ks, Path(hf.filename), (average, 0, 0))).max(axis=0) > 0
        mask = np.ones(height, bool)
        mask[left : left + acquired] = sampled
        if calib is not None:
            mask[calibration_band(height, calib.shape[-1])] = True
        sampled = mask[left : left + acquired]
        start, stop = center_band(torch.from_numpy(mask))
        fields = dict(mask=mask, num_low_frequencies=stop - start,
                      acceleration=acquired / max(int(sampled.sum()), 1))  # fmt: skip
    return dict(
        challenge="multicoil",
        num_slices=slices,
        num_coils=coils,
        kspace_shape=kshape,
        target_key=target_key,
        target_shape=target_shape,
        crop_size=fm._crop(kshape, target_key, target_shape, hdr.recon_size, problems),
        encoded_size=(height, height, hdr.encoded_size[2]),
        recon_size=hdr.recon_size,
        padding_left=left,
        padding_right=left + acquired,
        acquisition=str(attrs.get("acquisition", "")),
        patient_id=str(attrs.get("patient_id", "")),
        is_test=target_key is None,
        attrs=attrs,
        recon_fov_mm=hdr.recon_fov_mm,
        **fields,
        **numbers,
    )


def synth(out: Path, preset: str, seed: int) -> list[Path]:
    """``multicoil_train/`` and ``multicoil_val/``, one T2 file each: k-space (3, S, C, H,
    W_acq) (tiny: 3 x 2 x 4 x 32 x 27, recon 16 x 16) of one noisy acquisition per average,
    averages 0 and 2 keeping the odd lines and 1 the even ones; ``calibration_data`` the
    noiseless central lines about DC; the target made as ``t2_reconstruction`` makes it, an exact GRAPPA
    standing in for the authors' (each average's full lines): pad, IFFT, RSS, flipud, mean
    over averages, centre crop."""
    slices, coils, height, acquired, crop, lines = (
        (2, 4, 32, 27, 16, 8) if preset == "tiny" else (30, 20, 640, 451, 320, 32)
    )
    left = (height - acquired) // 2
    paths = []
    for index, split in enumerate(("train", "val")):
        rng = np.random.default_rng([seed, index])
        whole = centered_fft2(coil_images(rng, slices, coils, height, height))
        full = whole[..., left : left + acquired]  # (S, C, H, W_acq): the acquired lines
        averages = []
        for _ in range(3):
            noise = rng.normal(0, 0.02, full.shape) + 1j * rng.normal(0, 0.02, full.shape)
            averages.append((full + noise).astype(np.complex64))
        images = []
        for kspace in averages:
            padded = np.zeros((slices, coils, height, height), np.complex64)
            padded[..., left : left + acquired] = kspace
            rss = np.sqrt((np.abs(centered_ifft2(padded)) ** 2).sum(axis=1))  # (S, H, H)
            images.append(rss[:, ::-1])
        offset = (height - crop) // 2
        target = np.mean(images, axis=0)[:, offset : offset + crop, offset : offset + crop]
        target = target.astype(np.float32)
        stored = np.stack(averages)  # (A, S, C, H, W_acq)
        stored[[0, 2], ..., ::2] = 0  # averages 0 and 2: odd lines
        stored[1, ..., 1::2] = 0  # average 1: even lines
        header = make_ismrmrd_header((height, height, 1), (crop, crop, 1), left, left + acquired)
        datasets = {
            "kspace": stored,
            "calibration_data": whole[..., calibration_band(height, lines)].astype(np.complex64),
            "reconstruction_rss": target,
            "ismrmrd_header": np.bytes_(header),
        }
        attrs = {"max": float(target.max()), "norm": float(np.linalg.norm(target)),
                 "patient_id": f"{seed:03d}{index:03d}", "acquisition": "AXT2"}  # fmt: skip
        path = out / f"multicoil_{split}" / f"file_prostate_AXT2_{index + 1:03d}.h5"
        paths.append(write_h5(path, datasets, attrs))
    return paths

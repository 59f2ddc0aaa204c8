"""The embedded synthetic dataset: fastMRI-layout knee-like volumes, built from a seed.

Every default run trains and evaluates on it, so it must look like MRI to a network (the
anatomy is in :mod:`mri_recon.data.phantoms`) and be stored exactly as fastMRI stores knee
data (``FASTMRI_FORMAT.md``):

- grid ``H = 640`` rows (readout, 2x oversampled: the object lies in about the central half)
  by ``W`` columns, W cycling through ``SynthConfig.widths`` so widths differ in a split;
- ``kspace = fft2c(image)`` (centered, orthonormal), complex64, (S, H, W) single-coil or
  (S, C, H, W) multi-coil, plus white Gaussian noise of std ``noise_std`` in the real and
  in the imaginary part (independent between coils). SNR = PD fat signal / ``noise_std``
  is drawn per volume from ``snr_range``; fat-suppressed volumes are noisier for it;
- some volumes carry header padding: k-space columns outside ``[padding_left,
  padding_right)`` are zero, and the target is computed from that zero-filled k-space;
- single-coil ``reconstruction_esc`` = ``center_crop(|ifft2c(kspace)|)``, also stored as
  ``reconstruction_rss``. (fastMRI's single-coil targets come from a coil *emulated* from
  multi-coil data; ours are the magnitude of our single-coil k-space, whose smooth shading
  stands in for the emulated coil profile.) Multi-coil ``reconstruction_rss`` =
  ``center_crop(rss(|ifft2c(kspace)|))``. Targets include the noise, as fastMRI's do;
- multi-coil sensitivities: receive loops on a cylinder around the leg (see
  :func:`coil_maps`), scaled so that their root-sum-of-squares averages 1 over the object;
- a smooth random image phase (offset, gentle gradient, low-order variation);
- attrs ``max``, ``norm`` (of the target volume), ``patient_id`` (64 hex digits) and
  ``acquisition``, alternating within a split between our own two contrasts:
  ``SYNTH_PD`` (proton density, fat bright; like fastMRI's ``CORPD_FBK``) and
  ``SYNTH_PDFS`` (fat suppressed, fluid bright; like ``CORPDFS_FBK``);
  the ISMRMRD header from :func:`mri_recon.data.header.make_ismrmrd_header`;
- test split, as fastMRI's test files: k-space already undersampled by a stored bool
  ``mask`` (W,), from ``ColumnMaskFunc("random", [0.08], [4])`` (even volumes) or
  ``([0.04], [8])`` (odd volumes) seeded by ``file_seed(fname)``; attrs ``acceleration``
  and ``num_low_frequency``; no target, ``max`` or ``norm``;
- magnitudes of the order of fastMRI knee data (targets ~1e-4), varying between volumes.

Volume ``i`` of split ``s`` of challenge ``c`` is drawn from
``numpy.random.SeedSequence(seed, spawn_key=(c, s, i))`` only (never global state): the same
seed gives byte-identical arrays, whatever the sizes of the other splits.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mri_recon.data.fastmri import CHALLENGES, TARGET_KEYS
from mri_recon.data.header import make_ismrmrd_header
from mri_recon.data.phantoms import CONTRASTS, Canvas, draw_knee
from mri_recon.data.writer import write_volume
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, file_seed

SPLITS = ("train", "val", "test")  # the splits generated (fastMRI's "challenge" is not)
TEST_MASKS = ((0.08, 4), (0.04, 8))  # (center_fraction, acceleration), alternating
_CANVAS_UNITS = 2.64  # canvas rows / unit: the phantom's coverage is exactly 0 beyond 1.3


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and acquisition settings of a synthetic dataset.

    Attributes:
        num_train, num_val, num_test: volumes per split.
        num_slices: slices per volume.
        num_coils: coils of the multi-coil challenge.
        multicoil_num_train, multicoil_num_val, multicoil_num_test, multicoil_num_slices:
            multi-coil sizes where they differ; None means the same as single-coil.
        height: image / k-space rows H (readout, 2x oversampled).
        widths: k-space widths W, cycled over the volumes of a split.
        target_size: (h, w) of the targets.
        padding_fraction: fraction of volumes whose k-space has zero-padded edge columns.
        snr_range: (low, high) of the per-volume SNR (PD fat signal / noise std).
        intensity_scale: signal of PD fat in k-space units (fastMRI knee-like magnitudes).
    """

    num_train: int = 24
    num_val: int = 8
    num_test: int = 4
    num_slices: int = 8
    num_coils: int = 8
    multicoil_num_train: int | None = None
    multicoil_num_val: int | None = None
    multicoil_num_test: int | None = None
    multicoil_num_slices: int | None = None
    height: int = 640
    widths: tuple[int, ...] = (368, 372, 360, 384)
    target_size: tuple[int, int] = (320, 320)
    padding_fraction: float = 0.25
    snr_range: tuple[float, float] = (30.0, 60.0)
    intensity_scale: float = 2e-4

    def __post_init__(self) -> None:
        for name in ("num_train", "num_val", "num_test", "multicoil_num_train",
                     "multicoil_num_val", "multicoil_num_test"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"SynthConfig.{name} must be an int >= 0, got {value!r}")
        for name in ("num_slices", "num_coils", "multicoil_num_slices"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"SynthConfig.{name} must be an int >= 1, got {value!r}")
        h, w = self.target_size
        if not self.widths or min(self.widths) < w or self.height < max(h, 48):
            raise ValueError(f"SynthConfig.widths={self.widths} and height={self.height} must "
                             f"be at least the target_size {self.target_size} (height >= 48)")
        if self.height < _CANVAS_UNITS * h / 2:
            raise ValueError(f"SynthConfig.height={self.height} must be >= "
                             f"{_CANVAS_UNITS * h / 2:.0f} for target_size {self.target_size}")
        if not 0.0 <= self.padding_fraction <= 1.0:
            raise ValueError(f"SynthConfig.padding_fraction={self.padding_fraction} not in [0, 1]")
        lo, hi = self.snr_range
        if not 0 < lo <= hi:
            raise ValueError(f"SynthConfig.snr_range={self.snr_range} must be 0 < low <= high")
        if not self.intensity_scale > 0:
            raise ValueError(f"SynthConfig.intensity_scale={self.intensity_scale} must be > 0")

    def sizes(self, challenge: str) -> dict[str, tuple[int, int]]:
        """``{split: (num_volumes, num_slices)}`` for one challenge."""
        mc = challenge == "multicoil"
        pick = lambda a, b: b if mc and b is not None else a  # noqa: E731
        slices = pick(self.num_slices, self.multicoil_num_slices)
        return {"train": (pick(self.num_train, self.multicoil_num_train), slices),
                "val": (pick(self.num_val, self.multicoil_num_val), slices),
                "test": (pick(self.num_test, self.multicoil_num_test), slices)}


PRESETS: dict[str, SynthConfig] = {
    # make run / notebooks: single-coil 36 volumes x 8 slices (0.72 GB), multi-coil
    # 14 volumes x 4 slices x 8 coils (0.83 GB).
    "default": SynthConfig(multicoil_num_train=8, multicoil_num_val=4, multicoil_num_test=2,
                           multicoil_num_slices=4),
    # GPU studies: single-coil 260 volumes x 16 slices (~11 GB), multi-coil 66 volumes x 12
    # slices x 12 coils (~18 GB).
    "large": SynthConfig(num_train=200, num_val=40, num_test=20, num_slices=16, num_coils=12,
                         multicoil_num_train=50, multicoil_num_val=10, multicoil_num_test=6,
                         multicoil_num_slices=12),
    # tests: a few small volumes, about a second to build.
    "tiny": SynthConfig(num_train=2, num_val=2, num_test=1, num_slices=3, num_coils=4,
                        height=128, widths=(72, 76), target_size=(64, 64),
                        padding_fraction=0.5),
}


@dataclass
class SynthVolume:
    """One generated volume, before it is written.

    Attributes:
        kspace: complex64 (S, H, W) or (S, C, H, W), fully sampled (zero outside padding).
        target: float32 (S, h, w).
        acquisition: one of ``CONTRASTS``.
        padding: (padding_left, padding_right), the acquired columns.
        noise_std: standard deviation of the real and of the imaginary part of the noise
            added to each k-space sample (each coil).
        patient_id: 64 hex digits.
    """

    kspace: np.ndarray
    target: np.ndarray
    acquisition: str
    padding: tuple[int, int]
    noise_std: float
    patient_id: str


def resolve_config(preset: str | SynthConfig = "default", **overrides: Any) -> SynthConfig:
    """The config of a preset (a ``PRESETS`` key or a ``SynthConfig``) with fields replaced.

    Raises:
        ValueError: unknown preset or field, or an invalid value.
    """
    if isinstance(preset, SynthConfig):
        config = preset
    elif preset in PRESETS:
        config = PRESETS[preset]
    else:
        raise ValueError(f"unknown synthetic preset {preset!r}, expected one of {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(SynthConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown SynthConfig field(s) {unknown}; fields are {sorted(fields)}")
    for key in ("widths", "target_size", "snr_range"):
        if key in overrides:
            overrides[key] = tuple(overrides[key])
    return dataclasses.replace(config, **overrides)


def image_phase(rng: np.random.Generator, canvas: Canvas) -> np.ndarray:
    """A smooth random image phase: offset, gentle linear gradient and low-order variation.

    Returns:
        float32 (S, h, w) radians.
    """
    low_order = canvas.field(rng, freq=0.3, num_terms=6, z_freq=0.15) * rng.uniform(0.4, 1.2)
    gy, gx = rng.normal(scale=0.3, size=2)
    ramp = float(gy) * canvas.y + float(gx) * canvas.x
    return low_order + ramp + np.float32(rng.uniform(-np.pi, np.pi))


def coil_maps(rng: np.random.Generator, canvas: Canvas, num_coils: int,
              support: np.ndarray) -> np.ndarray:
    """Receive sensitivities of loops on a cylinder around the leg (axis along the readout).

    Each loop is a magnetic dipole normal to the cylinder, regularised by its radius a:
    ``B = (3 (n . r^) r^ - n) / (|r|^2 + a^2)^(3/2)``; the sensitivity is the transverse
    field ``B_x - i B_d`` (d: the slice direction) times a random phase and gain. Computed
    on a 4x coarser grid and bilinearly upsampled (the maps are smooth). Two rings of loops
    when ``num_coils >= 8``, one otherwise. Normalised so that the RSS over coils averages
    1 where ``support > 0.5``.

    Args:
        rng: random generator.
        canvas: grid and slice positions (slices are spread over 0.5 units of depth).
        num_coils: C.
        support: float32 (S, h, w) object mask.

    Returns:
        complex64 (S, C, h, w).
    """
    step = 4
    hc, wc = -(-(canvas.height - 1) // step) + 1, -(-(canvas.width - 1) // step) + 1
    y = np.linspace(canvas.y[0, 0, 0], canvas.y[0, -1, 0], hc)[None, None, :, None]
    x = np.linspace(canvas.x[0, 0, 0], canvas.x[0, 0, -1], wc)[None, None, None, :]
    d = 0.5 * canvas.z[:, None, None, None]  # (S, 1, 1, 1)
    rings = 2 if num_coils >= 8 else 1
    ring = np.arange(num_coils) % rings
    per_ring = np.bincount(ring, minlength=rings)[ring]
    angle = 2 * np.pi * (np.arange(num_coils) // rings) / per_ring + rng.uniform(0, 2 * np.pi)
    angle = (angle + 0.5 * np.pi * ring / per_ring + rng.normal(scale=0.08, size=num_coils))
    radius = rng.uniform(1.05, 1.25)
    height = (ring - 0.5 * (rings - 1)) * rng.uniform(0.6, 0.9)
    nx, nd = (a[None, :, None, None] for a in (np.cos(angle), np.sin(angle)))  # (1, C, 1, 1)
    rx, rd = x - radius * nx, d - radius * nd
    ry = y - height[None, :, None, None]
    dist = np.sqrt(rx * rx + ry * ry + rd * rd) + 1e-6
    along = (nx * rx + nd * rd) / dist
    scale = (dist**2 + rng.uniform(0.55, 0.75) ** 2) ** -1.5
    bx, bd = (3 * along * rx / dist - nx) * scale, (3 * along * rd / dist - nd) * scale
    gain = np.exp(0.15 * rng.normal(size=num_coils) + 1j * rng.uniform(0, 2 * np.pi, num_coils))
    coarse = (bx - 1j * bd) * gain[None, :, None, None]  # (S, C, hc, wc)
    parts = torch.from_numpy(np.concatenate([coarse.real, coarse.imag], axis=1).astype(np.float32))
    fine = torch.nn.functional.interpolate(parts, size=(canvas.height, canvas.width),
                                           mode="bilinear", align_corners=True).numpy()
    maps = fine[:, :num_coils] + 1j * fine[:, num_coils:]  # (S, C, h, w)
    norm = np.sqrt((np.abs(maps) ** 2).sum(axis=1))[support > 0.5].mean()
    return (maps / norm).astype(np.complex64)


def _complex_noise(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> torch.Tensor:
    """complex64 white Gaussian noise of ``shape``, real and imaginary parts of std ``std``.

    Drawn by a torch generator seeded from ``rng`` (several times faster than numpy here)."""
    generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
    noise = torch.randn((*shape, 2), generator=generator, dtype=torch.float32)
    return torch.view_as_complex(noise.mul_(std))


def canvas_height(config: SynthConfig) -> int:
    """Rows of the drawing canvas: the central band of the image holding the object."""
    unit = config.target_size[0] / 2
    return min(config.height, 2 * int(np.ceil(_CANVAS_UNITS * unit / 2)))


def synth_volume(config: SynthConfig, challenge: str, rng: np.random.Generator, *,
                 num_slices: int, width: int, acquisition: str, padded: bool) -> SynthVolume:
    """Draw one fully sampled volume: phantom, phase, coils, k-space, noise, padding, target.

    Args:
        config: dataset settings (height, target size, noise, scale, coils).
        challenge: "singlecoil" or "multicoil".
        rng: the volume's random generator (its only source of randomness).
        num_slices: S.
        width: W.
        acquisition: one of ``phantoms.CONTRASTS``.
        padded: zero the k-space columns outside a random ``[padding_left, padding_right)``.

    Returns:
        A :class:`SynthVolume`.
    """
    if challenge not in CHALLENGES:
        raise ValueError(f"challenge {challenge!r} is not one of {CHALLENGES}")
    unit = config.target_size[0] / 2
    hc, H = canvas_height(config), config.height
    z0, z1 = rng.uniform(-1.0, -0.6), rng.uniform(0.6, 1.0)
    z = np.linspace(z0, z1, num_slices) if num_slices > 1 else np.array([0.5 * (z0 + z1)])
    canvas = Canvas(hc, width, unit, z.astype(np.float32))
    magnitude, support = draw_knee(rng, canvas, acquisition)
    gain = config.intensity_scale * float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
    image = magnitude * np.exp(1j * image_phase(rng, canvas)).astype(np.complex64)
    multicoil = challenge == "multicoil"
    if multicoil:
        image = image[:, None] * coil_maps(rng, canvas, config.num_coils, support)
    full = np.zeros((*image.shape[:-2], H, width), dtype=np.complex64)
    full[..., H // 2 - hc // 2: H // 2 - hc // 2 + hc, :] = image * np.float32(gain)
    kspace = fft2c(torch.from_numpy(full))  # (S, [C,] H, W)
    noise_std = gain / rng.uniform(*config.snr_range)
    kspace += _complex_noise(rng, tuple(kspace.shape), noise_std)
    left = right = 0
    if padded:
        left = int(rng.integers(round(0.035 * width), round(0.06 * width) + 1))
        right = width - left - int(rng.integers(0, 2))
        kspace[..., :left] = 0
        kspace[..., right:] = 0
    image_k = center_crop(ifft2c(kspace), config.target_size)  # crop first: fewer pixels
    target = (rss(image_k, dim=1) if multicoil else image_k.abs()).contiguous().numpy()
    return SynthVolume(kspace=kspace.numpy(), target=target, acquisition=acquisition,
                       padding=(left, right if padded else width), noise_std=float(noise_std),
                       patient_id=rng.bytes(32).hex())


def write_synth_volume(path: Path, volume: SynthVolume, config: SynthConfig,
                       test_mask: tuple[float, int] | None = None) -> Path:
    """Write a volume in the fastMRI layout; with ``test_mask`` = (center_fraction,
    acceleration) as a test file: undersampled k-space, ``mask``, no target."""
    S, H, W = volume.kspace.shape[0], volume.kspace.shape[-2], volume.kspace.shape[-1]
    header = make_ismrmrd_header((H, W, 1), (*config.target_size, 1),
                                 padding_left=volume.padding[0], padding_right=volume.padding[1],
                                 num_slices=S)
    attrs: dict[str, Any] = {"acquisition": volume.acquisition, "patient_id": volume.patient_id}
    if test_mask is not None:
        center_fraction, acceleration = test_mask
        sample = ColumnMaskFunc("random", [center_fraction], [acceleration])(W, file_seed(path))
        mask = sample.mask.numpy()
        attrs.update(acceleration=int(acceleration), num_low_frequency=sample.num_low_frequencies)
        return write_volume(path, volume.kspace * mask, header=header, attrs=attrs, mask=mask)
    target = volume.target
    attrs.update(max=float(target.max()), norm=float(np.linalg.norm(target)))
    singlecoil = volume.kspace.ndim == 3
    return write_volume(path, volume.kspace, header=header, attrs=attrs, target=target,
                        target_key=TARGET_KEYS["singlecoil" if singlecoil else "multicoil"],
                        extra={"reconstruction_rss": target} if singlecoil else None)


def _volume_rng(seed: int, challenge: str, split: str, index: int) -> np.random.Generator:
    key = (CHALLENGES.index(challenge), SPLITS.index(split), index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def file_names(config: SynthConfig, challenge: str, seed: int) -> dict[str, list[str]]:
    """fastMRI-style file names per split (``file1000123.h5``), unique across the splits of
    a challenge (single-coil ``file10xxxxx``, multi-coil ``file11xxxxx``), from the seed."""
    sizes = config.sizes(challenge)
    total = sum(n for n, _ in sizes.values())
    c = CHALLENGES.index(challenge)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(c, len(SPLITS))))
    numbers = iter(rng.choice(100_000, size=total, replace=False) + 1_000_000 + 100_000 * c)
    return {split: [f"file{next(numbers)}.h5" for _ in range(n)] for split, (n, _) in sizes.items()}


def _challenges(challenge: str) -> tuple[str, ...]:
    if challenge == "both":
        return CHALLENGES
    if challenge not in CHALLENGES:
        raise ValueError(f"challenge {challenge!r} is not one of {CHALLENGES + ('both',)}")
    return (challenge,)


def _has_volumes(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix == ".h5" and not p.name.startswith(".")
                                   for p in folder.iterdir())


def manifest_path(root: str | os.PathLike, challenge: str) -> Path:
    """``<root>/synthetic_<challenge>.json``: what a synthetic build was made from (kept
    outside the split folders, whose every file fastMRI's loader opens as HDF5)."""
    return Path(root) / f"synthetic_{challenge}.json"


def _manifest(preset: str | SynthConfig, config: SynthConfig, seed: int) -> dict[str, Any]:
    name = preset if isinstance(preset, str) else "custom"
    return json.loads(json.dumps({"generator": __name__, "preset": name, "seed": seed,
                                  "config": dataclasses.asdict(config)}))


def _read_manifest(root: Path, challenge: str) -> dict[str, Any] | None:
    path = manifest_path(root, challenge)
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable synthetic-dataset manifest ({err})") from None


def _write_manifest(root: Path, challenge: str, manifest: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", suffix=".tmp", dir=root)
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(tmp, manifest_path(root, challenge))


def _same_build(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    return a is not None and a.get("seed") == b["seed"] and a.get("config") == b["config"]


def _check_targets(out: Path, challenge: str, splits: Sequence[str], manifest: dict[str, Any],
                   overwrite: bool) -> None:
    """Refuse to overwrite volumes, or to add splits next to data from another build."""
    for split in SPLITS:
        folder = out / f"{challenge}_{split}"
        if not _has_volumes(folder):
            continue
        if split in splits and not overwrite:
            raise ValueError(f"{folder} already holds .h5 volumes; pass overwrite=True to "
                             "replace them or choose another output directory")
        if split not in splits and not _same_build(_read_manifest(out, challenge), manifest):
            raise ValueError(f"{folder} holds volumes of another build (see "
                             f"{manifest_path(out, challenge)}); adding {list(splits)} would "
                             "mix datasets: rebuild all splits or use another directory")


def _move_into_place(tmp: Path, final: Path) -> None:
    """Publish a finished split folder: rename it, or move its files into an existing one."""
    if final.is_dir():
        for old in final.glob("*.h5"):
            old.unlink()
        if not any(final.iterdir()):
            final.rmdir()
    if not final.exists():
        os.rename(tmp, final)
        return
    for path in tmp.iterdir():
        os.replace(path, final / path.name)
    tmp.rmdir()


@dataclass(frozen=True)
class _Job:
    """One volume to generate: its place in the dataset and its staging path."""

    challenge: str
    split: str
    index: int
    path: Path
    num_slices: int


def _run_job(job: _Job, config: SynthConfig, seed: int) -> None:
    """Generate and write one volume (widths and contrasts cycle, padding is spread evenly)."""
    i, offset = job.index, SPLITS.index(job.split)
    padded = int((i + 1) * config.padding_fraction) > int(i * config.padding_fraction)
    volume = synth_volume(config, job.challenge, _volume_rng(seed, job.challenge, job.split, i),
                          num_slices=job.num_slices,
                          width=config.widths[(i + offset) % len(config.widths)],
                          acquisition=CONTRASTS[(i + offset) % len(CONTRASTS)], padded=padded)
    mask = TEST_MASKS[i % len(TEST_MASKS)] if job.split == "test" else None
    write_synth_volume(job.path, volume, config, test_mask=mask)


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: respects taskset / container CPU sets
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _run_jobs(jobs: list[_Job], config: SynthConfig, seed: int, workers: int,
              progress: bool) -> None:
    """Run the jobs on ``workers`` threads (numpy, torch and h5py release the GIL)."""
    with tqdm(total=len(jobs), desc="synthetic volumes", unit="vol", disable=not progress) as bar:
        if workers <= 1:
            for job in jobs:
                _run_job(job, config, seed)
                bar.update(1)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_run_job, job, config, seed) for job in jobs]
            try:
                for future in as_completed(futures):
                    future.result()
                    bar.update(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def generate_dataset(out: str | os.PathLike, preset: str | SynthConfig = "default",
                     challenge: str = "both", seed: int = 0, progress: bool = True,
                     overwrite: bool = False, splits: Sequence[str] = SPLITS,
                     workers: int | None = None, **overrides: Any) -> list[Path]:
    """Generate the synthetic dataset as ``<out>/<challenge>_<split>/file*.h5``.

    Each split is written into a hidden temporary folder next to its destination and moved
    into place once every volume is written, so an interrupted run leaves no partial split.
    A manifest ``<out>/synthetic_<challenge>.json`` records the preset, seed and config.
    Splits with 0 volumes get no folder.

    Args:
        out: data root.
        preset: a ``PRESETS`` name or a :class:`SynthConfig`.
        challenge: "singlecoil", "multicoil" or "both".
        seed: the dataset seed; the same seed gives byte-identical arrays.
        progress: show a tqdm bar over volumes.
        overwrite: replace the .h5 volumes of splits that already hold some.
        splits: the splits to write (default all of ``SPLITS``).
        workers: volumes generated concurrently (threads); default: the usable CPUs, at
            most 4.
            The output does not depend on it.
        **overrides: :class:`SynthConfig` fields to replace (e.g. ``num_train=2``).

    Returns:
        The written files, in (challenge, split, index) order.

    Raises:
        ValueError: bad preset, field, challenge, split or seed; a destination split already
            holds volumes (without ``overwrite``); or other splits there are another build's.
    """
    config = resolve_config(preset, **overrides)
    challenges = _challenges(challenge)
    if not splits or any(s not in SPLITS for s in splits):
        raise ValueError(f"splits={list(splits)}: each must be one of {SPLITS}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    out, seed = Path(out), int(seed)
    manifest = _manifest(preset, config, seed)
    for c in challenges:
        _check_targets(out, c, splits, manifest, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    staged: dict[Path, Path] = {}  # final folder -> staging folder
    jobs: list[_Job] = []
    try:
        for c in challenges:
            _write_manifest(out, c, manifest)
            names = file_names(config, c, seed)
            for s in splits:
                count, slices = config.sizes(c)[s]
                if count:
                    tmp = Path(tempfile.mkdtemp(prefix=f".{c}_{s}.", suffix=".partial", dir=out))
                    staged[out / f"{c}_{s}"] = tmp
                    jobs += [_Job(c, s, i, tmp / n, slices) for i, n in enumerate(names[s])]
        _run_jobs(jobs, config, seed, workers or min(4, _usable_cpus()), progress)
        for final, tmp in staged.items():
            _move_into_place(tmp, final)
    finally:
        for tmp in staged.values():
            if tmp.exists():
                shutil.rmtree(tmp)
    return [out / f"{job.challenge}_{job.split}" / job.path.name for job in jobs]


def ensure_dataset(root: str | os.PathLike, challenge: str = "singlecoil",
                   preset: str | SynthConfig = "default", seed: int = 0,
                   progress: bool = True) -> Path:
    """Build the synthetic dataset under ``root`` unless it is already there.

    Per challenge: if no split folder holds volumes, everything is generated; if some do and
    the manifest shows they are ours (an interrupted build), the missing splits are added
    (identical to a full build); folders without a manifest are someone else's data
    (e.g. genuine fastMRI) and are left alone. Existing data from another preset or seed is
    used as is, with a warning.

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    config = resolve_config(preset)
    wanted = _manifest(preset, config, seed)
    for c in _challenges(challenge):
        present = [s for s in SPLITS if _has_volumes(root / f"{c}_{s}")]
        found = _read_manifest(root, c)
        if present and found is None:
            continue
        if present and not _same_build(found, wanted):
            if len(present) < len(SPLITS):
                raise ValueError(f"{root}: incomplete synthetic {c} data from another build "
                                 f"(see {manifest_path(root, c)}); delete it or pick another root")
            warnings.warn(f"{root}: using existing synthetic {c} data built with preset "
                          f"{found.get('preset')!r} seed {found.get('seed')}, not preset "
                          f"{wanted['preset']!r} seed {seed}", stacklevel=2)
            continue
        missing = [s for s in SPLITS if s not in present]
        if missing:
            generate_dataset(root, preset, c, seed,
                             progress=progress, splits=missing)
    return root

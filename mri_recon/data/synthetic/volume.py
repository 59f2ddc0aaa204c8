"""One synthetic volume: the dataset settings, and drawing and writing a volume.

:class:`SynthConfig` (and its ``PRESETS``) holds the sizes and acquisition settings;
:func:`synth_volume` draws one fully sampled volume from one random generator (phantom from
:mod:`mri_recon.data.synthetic.phantoms`, image phase, coil maps, k-space, noise, padding, target) and
:func:`write_synth_volume` stores it in the fastMRI layout. The stored format is described in
:mod:`mri_recon.data.synthetic`; the dataset around the volumes is built by
:mod:`mri_recon.data.synthetic.build`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mri_recon import checks
from mri_recon.data.fastmri import TARGET_KEYS
from mri_recon.data.header import make_ismrmrd_header
from mri_recon.data.synthetic.fields import Canvas
from mri_recon.data.synthetic.phantoms import draw_knee
from mri_recon.data.writer import write_volume
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, file_seed

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
        counts = ("num_train", "num_val", "num_test")
        for name in (*counts, *(f"multicoil_{n}" for n in counts)):
            checks.integer(f"SynthConfig.{name}", getattr(self, name), 0, optional=True)
        for name in ("num_slices", "num_coils", "multicoil_num_slices"):
            checks.positive_int(f"SynthConfig.{name}", getattr(self, name), optional=True)
        checks.number("SynthConfig.padding_fraction", self.padding_fraction, 0, 1)
        checks.positive("SynthConfig.intensity_scale", self.intensity_scale)
        lo, hi = self.snr_range
        h, w = self.target_size
        min_height = max(h, 48, math.ceil(_CANVAS_UNITS * h / 2))
        if not self.widths or min(self.widths) < w or self.height < min_height or not 0 < lo <= hi:
            raise ValueError(
                f"SynthConfig: need widths={self.widths} >= the target width {w}, "
                f"height={self.height} >= {min_height} for target_size {self.target_size}, "
                f"and snr_range={self.snr_range} with 0 < low <= high"
            )

    def sizes(self, challenge: str) -> dict[str, tuple[int, int]]:
        """``{split: (num_volumes, num_slices)}`` for one challenge."""
        mc = challenge == "multicoil"
        pick = lambda a, b: b if mc and b is not None else a  # noqa: E731
        slices = pick(self.num_slices, self.multicoil_num_slices)
        return {
            "train": (pick(self.num_train, self.multicoil_num_train), slices),
            "val": (pick(self.num_val, self.multicoil_num_val), slices),
            "test": (pick(self.num_test, self.multicoil_num_test), slices),
        }


PRESETS: dict[str, SynthConfig] = {
    # make run / notebooks: single-coil 36 volumes x 8 slices (0.72 GB), multi-coil
    # 18 volumes x 4 slices x 8 coils (1.07 GB; 8 validation volumes, so that intervals
    # over volumes mean something).
    "default": SynthConfig(
        multicoil_num_train=8, multicoil_num_val=8, multicoil_num_test=2, multicoil_num_slices=4
    ),
    # GPU studies: single-coil 260 volumes x 16 slices (~11 GB), multi-coil 66 volumes x 12
    # slices x 12 coils (~18 GB).
    "large": SynthConfig(
        num_train=200,
        num_val=40,
        num_test=20,
        num_slices=16,
        num_coils=12,
        multicoil_num_train=50,
        multicoil_num_val=10,
        multicoil_num_test=6,
        multicoil_num_slices=12,
    ),
    # tests: a few small volumes, about a second to build.
    "tiny": SynthConfig(
        num_train=2,
        num_val=2,
        num_test=1,
        num_slices=3,
        num_coils=4,
        height=128,
        widths=(72, 76),
        target_size=(64, 64),
        padding_fraction=0.5,
    ),
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
    """A smooth random image phase, float32 (S, h, w) radians: offset, gentle linear gradient
    and low-order variation."""
    low_order = canvas.field(rng, freq=0.3, num_terms=6, z_freq=0.15) * rng.uniform(0.4, 1.2)
    gy, gx = rng.normal(scale=0.3, size=2)
    ramp = float(gy) * canvas.y + float(gx) * canvas.x
    return low_order + ramp + np.float32(rng.uniform(-np.pi, np.pi))


def coil_maps(
    rng: np.random.Generator, canvas: Canvas, num_coils: int, support: np.ndarray
) -> np.ndarray:
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
    angle = angle + 0.5 * np.pi * ring / per_ring + rng.normal(scale=0.08, size=num_coils)
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
    fine = torch.nn.functional.interpolate(
        parts, size=(canvas.height, canvas.width), mode="bilinear", align_corners=True
    ).numpy()
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


def synth_volume(
    config: SynthConfig,
    challenge: str,
    rng: np.random.Generator,
    *,
    num_slices: int,
    width: int,
    acquisition: str,
    padded: bool,
) -> SynthVolume:
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
    full[..., H // 2 - hc // 2 : H // 2 - hc // 2 + hc, :] = image * np.float32(gain)
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
    return SynthVolume(
        kspace=kspace.numpy(),
        target=target,
        acquisition=acquisition,
        padding=(left, right if padded else width),
        noise_std=float(noise_std),
        patient_id=rng.bytes(32).hex(),
    )


def write_synth_volume(
    path: Path, volume: SynthVolume, config: SynthConfig, test_mask: tuple[float, int] | None = None
) -> Path:
    """Write a volume in the fastMRI layout; with ``test_mask`` = (center_fraction,
    acceleration) as a test file: undersampled k-space, ``mask``, no target."""
    S, H, W = volume.kspace.shape[0], volume.kspace.shape[-2], volume.kspace.shape[-1]
    header = make_ismrmrd_header(
        (H, W, 1),
        (*config.target_size, 1),
        padding_left=volume.padding[0],
        padding_right=volume.padding[1],
        num_slices=S,
    )
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
    return write_volume(
        path,
        volume.kspace,
        header=header,
        attrs=attrs,
        target=target,
        target_key=TARGET_KEYS["singlecoil" if singlecoil else "multicoil"],
        extra={"reconstruction_rss": target} if singlecoil else None,
    )

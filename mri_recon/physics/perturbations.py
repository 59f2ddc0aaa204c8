"""Test-time perturbations of a fully sampled volume: more noise, fewer coils, motion, scale.

A :class:`Perturbation` maps ``(kspace (S, C, H, W), target (S, h, w) or None, max_value)``
to the perturbed triple *before* the evaluation mask is applied, so every method sees the
same perturbed measurement and is scored against the same target. Randomness is drawn per
slice from a ``torch.Generator`` seeded by ``(perturbation_seed, slice)``, where
``perturbation_seed(seed, fname)`` depends on the run's seed and the file name only: a cell
is reproducible and, for a given file, every level of a type uses the same draw (noise at
level 4 is the level-1 noise times 4), so levels differ by the level alone.

Types (``TYPE:LEVEL``; ``none`` is the unperturbed cell):

- ``noise:L``: complex white Gaussian noise added to every measured (non-zero) k-space
  sample, real and imaginary parts of std ``L * sigma_c`` in coil ``c``, where ``sigma_c`` is
  the data's own noise std estimated from the *outer k-space* (:func:`noise_std`: the four
  corners, outer eighth of rows and of columns, of every slice, where the object's signal
  has decayed into the noise floor). Independent between coils (the file's coil noise
  correlation is not modelled). The target stays the file's.
- ``coils:N``: the first N coils of multi-coil data (1 <= N <= C); the target stays the
  file's (the RSS of all coils), so this is what a reader of an N-channel scan would lose.
- ``motion:L``: rigid in-plane translations between shots, each shot the interleaved
  columns ``j mod shots``; per shot and axis a shift uniform in ``[-L, L]`` pixels (image
  pixels of the k-space grid, H x W) applied as a linear phase ramp on that shot's columns;
  the shot holding the centre column stays put (the reference position). With
  ``max_rotation`` > 0 degrees, each moving shot is also rotated by an angle uniform in
  ``[-max_rotation, max_rotation]`` about the image centre (bilinear, in the pixel grid).
  The coil images move as a whole (sensitivities move with the object: exact for
  single-coil, an approximation for multi-coil data).
- ``scale:F``: k-space, target and volume max all multiplied by F > 0. A method whose
  output scales with its input scores identically.

A perturbation with no effect (``noise:0``, ``scale:1``, ``coils:C``, ``motion:0``) returns
tensors equal to its inputs, bit for bit (no special case: the arithmetic is exact).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mri_recon import checks
from mri_recon.physics.fft import fft2c, ifft2c

KINDS = ("none", "noise", "coils", "motion", "scale")
RANDOM_KINDS = ("noise", "motion")
OUTER = 8  # noise_std: the outer 1/OUTER of rows and of columns on each side


def _hash_int(text: str) -> int:
    """A stable 31-bit integer of ``text`` (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def perturbation_seed(seed: int, fname: str) -> int:
    """The seed of one file's perturbations: a stable function of the run seed and the
    file name (not the path), written to ``grid.csv``."""
    return _hash_int(f"{int(seed)}/{fname.rsplit('/', 1)[-1]}")


def slice_generator(pseed: int, slice_index: int) -> torch.Generator:
    """The CPU generator of one slice's draws, seeded by ``(perturbation_seed, slice)``."""
    return torch.Generator().manual_seed(_hash_int(f"{pseed}/{slice_index}"))


def noise_std(kspace: torch.Tensor) -> torch.Tensor:
    """Per-coil noise std (of the real, and of the imaginary part) of fully sampled k-space,
    from its outer corners.

    The corners (outer ``1/OUTER`` of rows and of columns on each side) of every slice are
    pooled per coil; exact zeros (zero-padded columns, never measured) are left out. The
    magnitude of complex Gaussian noise of per-part std sigma is Rayleigh, whose median is
    ``sigma * sqrt(2 ln 2)``: the median makes the estimate robust to residual signal.

    Args:
        kspace: complex (S, C, H, W), H, W >= 2 * OUTER.

    Returns:
        float32 (C,).
    """
    h, w = kspace.shape[-2:]
    dh, dw = max(h // OUTER, 1), max(w // OUTER, 1)
    rows = torch.cat([torch.arange(dh), torch.arange(h - dh, h)])
    cols = torch.cat([torch.arange(dw), torch.arange(w - dw, w)])
    corners = kspace[..., rows[:, None], cols].abs().transpose(0, 1).reshape(kspace.shape[1], -1)
    out = []
    for mags in corners:  # (N,) per coil
        mags = mags[mags > 0]
        out.append(mags.median() if mags.numel() else torch.tensor(0.0))
    return (torch.stack(out) / math.sqrt(2 * math.log(2))).float()  # (C,)


def phase_ramp(shape: tuple[int, int], shift: torch.Tensor) -> torch.Tensor:
    """The k-space factor of an image translation by ``shift = (dy, dx)`` pixels:
    ``exp(-2 pi i (ky dy / H + kx dx / W))`` with centred frequencies ``k - n // 2``, so that
    ``ifft2c(fft2c(x) * ramp)`` is ``x`` moved by ``(dy, dx)`` (circularly); complex64 (H, W).
    """
    h, w = shape
    ky = (torch.arange(h, dtype=torch.float64) - h // 2) / h
    kx = (torch.arange(w, dtype=torch.float64) - w // 2) / w
    phase = -2 * math.pi * (ky[:, None] * float(shift[0]) + kx[None, :] * float(shift[1]))
    return torch.polar(torch.ones_like(phase), phase).to(torch.complex64)


def rotate(image: torch.Tensor, degrees: float) -> torch.Tensor:
    """Complex (..., H, W) images rotated clockwise as displayed (row 0 on top) by
    ``degrees`` about the pixel ``(H // 2, W // 2)``, in pixel units (bilinear, zeros
    outside); complex (..., H, W)."""
    *lead, h, w = image.shape
    x = torch.view_as_real(image.reshape(-1, h, w)).permute(0, 3, 1, 2)  # (N, 2, H, W)
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)
    # normalised coordinates u = (2 x + 1) / W - 1; the centre pixel n // 2 sits at c_n
    cy, cx = (2 * (h // 2) + 1) / h - 1, (2 * (w // 2) + 1) / w - 1
    rot = torch.tensor([[cos, sin * h / w], [-sin * w / h, cos]], dtype=x.dtype)
    centre = torch.tensor([cx, cy], dtype=x.dtype)
    theta = torch.cat([rot, (centre - rot @ centre)[:, None]], dim=1)  # (2, 3)
    grid = F.affine_grid(theta[None].expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.view_as_complex(out.permute(0, 2, 3, 1).contiguous()).reshape(*lead, h, w)


@dataclass(frozen=True)
class Perturbation:
    """One ``TYPE:LEVEL`` perturbation (see the module docstring for the types).

    Args:
        kind: one of :data:`KINDS`.
        level: noise multiple (>= 0), number of coils (int >= 1), maximum shift in pixels
            (>= 0) or scale factor (> 0); 0 for ``none``.
        shots: motion only: the number of interleaved shots (>= 2).
        max_rotation: motion only: maximum rotation per shot in degrees (>= 0).
    """

    kind: str
    level: float = 0.0
    shots: int = 8
    max_rotation: float = 0.0

    def __post_init__(self) -> None:
        checks.one_of("kind", self.kind, KINDS)
        level = checks.number("level", self.level, 0, 0 if self.kind == "none" else None)
        if self.kind == "coils" and (level < 1 or not level.is_integer()):
            raise ValueError(f"level: coils takes a whole number of coils >= 1, got {level:g}")
        if self.kind == "scale" and level == 0:
            raise ValueError("level: scale takes a factor > 0, got 0")
        checks.integer("shots", self.shots, 2)
        checks.number("max_rotation", self.max_rotation, 0, 180)
        object.__setattr__(self, "level", level)

    @property
    def label(self) -> str:
        """``none`` or ``TYPE:LEVEL`` (``noise:2``), as the config spells it."""
        return "none" if self.kind == "none" else f"{self.kind}:{self.level:g}"

    @property
    def is_random(self) -> bool:
        """Whether it draws random numbers (then ``perturbation_seed`` matters)."""
        return self.kind in RANDOM_KINDS

    def data_problem(self, num_coils: int) -> str | None:
        """Why this perturbation cannot apply to data with ``num_coils`` coils, or None."""
        if self.kind == "coils" and self.level > num_coils:
            return f"{self.label} asks for more coils than the data has ({num_coils})"
        return None

    def __call__(
        self,
        kspace: torch.Tensor,
        target: torch.Tensor | None,
        max_value: float | None,
        pseed: int,
    ) -> tuple[torch.Tensor, torch.Tensor | None, float | None]:
        """Perturb one volume.

        Args:
            kspace: complex64 (S, C, H, W) fully sampled k-space (not modified).
            target: float32 (S, h, w) or None (not modified).
            max_value: the target volume max, or None.
            pseed: this file's :func:`perturbation_seed`.

        Returns:
            (kspace (S, C', H, W), target, max_value), new tensors where changed.
        """
        if self.kind == "coils":
            return kspace[:, : int(self.level)], target, max_value
        if self.kind == "scale":
            f = self.level
            scaled = None if target is None else target * f
            return kspace * f, scaled, None if max_value is None else max_value * f
        if self.kind == "noise":
            return self._noise(kspace, pseed), target, max_value
        if self.kind == "motion":
            return self._motion(kspace, pseed), target, max_value
        return kspace, target, max_value

    def _noise(self, kspace: torch.Tensor, pseed: int) -> torch.Tensor:
        sigma = (self.level * noise_std(kspace))[:, None, None]  # (C, 1, 1)
        out = kspace.clone()
        for s in range(kspace.shape[0]):
            g = slice_generator(pseed, s)
            draw = torch.randn((*kspace.shape[1:], 2), generator=g)  # (C, H, W, 2)
            noise = torch.view_as_complex(draw) * sigma  # (C, H, W)
            out[s] += torch.where(kspace[s] != 0, noise, 0)  # measured samples only
        return out

    def _motion(self, kspace: torch.Tensor, pseed: int) -> torch.Tensor:
        num_slices, _, h, w = kspace.shape
        shot = torch.arange(w) % self.shots  # (W,) interleaved shots
        still = int(shot[w // 2])  # the shot of the centre column: the reference position
        out = kspace.clone()
        for s in range(num_slices):
            g = slice_generator(pseed, s)
            shifts = (torch.rand((self.shots, 2), generator=g, dtype=torch.float64) * 2 - 1) * (
                self.level
            )  # (shots, 2)
            angles = (torch.rand(self.shots, generator=g, dtype=torch.float64) * 2 - 1) * (
                self.max_rotation
            )  # (shots,)
            for k in range(self.shots):
                cols = shot == k
                if k == still:
                    continue
                measured = kspace[s][..., cols]  # (C, H, n)
                moved = measured
                if self.max_rotation > 0:  # unmeasured (zero) samples stay zero
                    rotated = fft2c(rotate(ifft2c(kspace[s]), float(angles[k])))[..., cols]
                    moved = torch.where(measured != 0, rotated, 0)
                out[s][..., cols] = moved * phase_ramp((h, w), shifts[k])[:, cols]
        return out


def parse_perturbations(
    specs: Sequence[str], shots: int = 8, max_rotation: float = 0.0
) -> list[Perturbation]:
    """The perturbations of ``TYPE:LEVEL`` strings (``none`` alone), checked.

    Raises:
        ValueError: ``perturbations: <every bad spec and why>`` (one message): unknown
            type, missing or bad level, a level listed twice, an empty list; or ``shots`` /
            ``max_rotation`` out of range.
    """
    if isinstance(specs, str) or not isinstance(specs, Sequence) or not specs:
        raise ValueError("perturbations: give a non-empty list of TYPE:LEVEL, e.g. [none,noise:2]")
    Perturbation("none", 0, shots, max_rotation)  # shots, max_rotation: their own messages
    out, problems = [], []
    for spec in specs:
        kind, colon, level = str(spec).partition(":")
        try:
            if kind not in KINDS:
                raise ValueError(f"unknown type {kind!r}")
            if (kind == "none") == bool(colon):
                raise ValueError("write TYPE:LEVEL, and none alone")
            value = float(level) if colon else 0.0
            out.append(Perturbation(kind, value, shots, max_rotation))
        except ValueError as err:
            problems.append(f"{spec!r}: {str(err).removeprefix('level: ')}")
    labels = [p.label for p in out]
    problems += [f"{x} is listed twice" for x in dict.fromkeys(labels) if labels.count(x) > 1]
    if problems:
        raise ValueError(f"perturbations: {'; '.join(problems)} (types: {', '.join(KINDS)})")
    return out

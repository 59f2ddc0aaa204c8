"""The drawing canvas and the random fields the phantoms are textured with.

A :class:`Canvas` is the pixel grid of one volume, with coordinates in *units* (see
:mod:`mri_recon.data.synthetic.phantoms`). The fields are smooth or band-limited random functions of
(slice, row, column), correlated between neighbouring slices:

- :func:`smooth_field`: random plane waves, cheap at any resolution (shading, warps, wiggles);
- :func:`gaussian_field`: filtered white noise, low-pass or band-pass, anisotropic (muscle
  striation, trabecular bone);
- :func:`blob_sum`: dots and longitudinal tubes (vessels).

Everything here is numpy (float32 / complex64) and draws from an explicit
``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def smooth_field(
    rng: np.random.Generator,
    y: np.ndarray,
    x: np.ndarray,
    z: np.ndarray,
    *,
    freq: float,
    num_terms: int,
    z_freq: float,
) -> np.ndarray:
    """A smooth random field: a sum of random plane waves (random Fourier features),
    evaluated as one batched matrix product, so it is cheap at any resolution.

    Args:
        rng: random generator.
        y: float32 (h,) row coordinates in units; x: float32 (w,) columns; z: (S,) slices.
        freq: standard deviation of the in-plane frequencies, cycles per unit.
        num_terms: number of plane waves K.
        z_freq: standard deviation of the through-slice frequencies, cycles per z unit.

    Returns:
        float32 (S, h, w), zero mean and unit variance (over realisations).
    """
    fy, fx = rng.normal(scale=freq, size=(2, num_terms))
    fz = rng.normal(scale=z_freq, size=num_terms)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=num_terms)
    ey = np.exp(2j * np.pi * np.outer(y, fy)).astype(np.complex64)  # (h, K)
    ex = np.exp(2j * np.pi * np.outer(fx, x)).astype(np.complex64)  # (K, w)
    ez = np.exp(1j * (2 * np.pi * np.outer(z, fz) + phase)).astype(np.complex64)  # (S, K)
    # One 2-D product: batched small matmuls thrash a multi-threaded BLAS on a busy machine.
    field = (ey[None] * ez[:, None, :]).reshape(-1, num_terms) @ ex  # (S * h, w)
    return field.real.reshape(len(z), len(y), len(x)) * float(np.sqrt(2.0 / num_terms))


def gaussian_field(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    scale_px: tuple[float, float],
    z_corr: float,
    bandpass: bool = False,
) -> np.ndarray:
    """Two independent 3-D correlated Gaussian fields (the real and imaginary parts).

    White complex noise filtered in the Fourier domain by a Gaussian low-pass of standard
    deviation ``scale_px`` = (rows, columns) pixels (anisotropic for striated textures), or
    with ``bandpass`` a difference of Gaussians (blob / trabecular texture at that scale).
    Through slices the correlation length is ``z_corr`` slices. Boundaries are periodic.

    Args:
        rng: random generator.
        shape: (S, h, w).
        scale_px: (sy, sx) in pixels.
        z_corr: correlation length between slices, in slices.
        bandpass: band-pass instead of low-pass.

    Returns:
        complex64 (S, h, w); real and imaginary parts each have unit variance.
    """
    fz, fy, fx = (np.fft.fftfreq(n).astype(np.float32) for n in shape)
    sy, sx = scale_px
    quad = (fy[:, None] * sy) ** 2 + (fx[None, :] * sx) ** 2  # (h, w)
    filt = np.exp(-2 * np.pi**2 * quad)
    if bandpass:
        filt = filt - np.exp(-2 * np.pi**2 * 9.0 * quad)
    filt = filt[None] * np.exp(-2 * np.pi**2 * (fz * z_corr) ** 2)[:, None, None]
    noise = rng.standard_normal((*shape, 2), dtype=np.float32).view(np.complex64)[..., 0]
    field = np.fft.ifftn(noise * filt, axes=(0, 1, 2), norm="ortho")
    return field / np.sqrt(np.mean(filt**2))


def blob_sum(
    y: np.ndarray,
    x: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    sigma: np.ndarray,
    length: np.ndarray,
    weight: np.ndarray,
) -> np.ndarray:
    """Sum of K separable blobs: Gaussians of width ``sigma`` across, flat-topped Gaussians
    of extent ``length`` along the rows (dots for length 0, longitudinal tubes otherwise).
    Each blob is added on its own small window (out to 3.5 sigma).

    Args:
        y: float32 (h,) and x: float32 (w,) increasing pixel coordinates in units.
        x0, y0: (S, K) blob centres in units.
        sigma: (K,) widths in units; length: (K,) flat-top lengths in units.
        weight: (S, K) amplitude per blob and slice.

    Returns:
        float32 (S, h, w).
    """
    out = np.zeros((x0.shape[0], y.shape[0], x.shape[0]), dtype=np.float32)
    for k in range(x0.shape[1]):
        reach_y, reach_x = 0.5 * length[k] + 3.5 * sigma[k], 3.5 * sigma[k]
        r0, r1 = np.searchsorted(y, [y0[:, k].min() - reach_y, y0[:, k].max() + reach_y])
        c0, c1 = np.searchsorted(x, [x0[:, k].min() - reach_x, x0[:, k].max() + reach_x])
        if r1 <= r0 or c1 <= c0 or not weight[:, k].any():
            continue
        dy = np.maximum(np.abs(y[r0:r1] - y0[:, k, None]) - 0.5 * length[k], 0.0)  # (S, r)
        gy = np.exp(-0.5 * (dy / sigma[k]) ** 2) * weight[:, k, None]
        gx = np.exp(-0.5 * ((x[c0:c1] - x0[:, k, None]) / sigma[k]) ** 2)  # (S, c)
        out[:, r0:r1, c0:c1] += (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
    return out


@dataclass(frozen=True)
class Canvas:
    """The pixel grid a volume is drawn on.

    Attributes:
        height: rows h of the canvas (a central band of the full image rows).
        width: columns w (the full k-space width).
        unit: pixels per unit (half the target crop height).
        z: float32 (S,) slice positions in [-1, 1].
    """

    height: int
    width: int
    unit: float
    z: np.ndarray

    @property
    def num_slices(self) -> int:
        return int(self.z.shape[0])

    @property
    def y(self) -> np.ndarray:
        """float32 (1, h, 1) row coordinates in units (0 at row h // 2)."""
        rows = np.arange(self.height, dtype=np.float32) - self.height // 2
        return (rows / self.unit)[None, :, None]

    @property
    def x(self) -> np.ndarray:
        """float32 (1, 1, w) column coordinates in units (0 at column w // 2)."""
        cols = np.arange(self.width, dtype=np.float32) - self.width // 2
        return (cols / self.unit)[None, None, :]

    def field(
        self,
        rng: np.random.Generator,
        freq: float,
        num_terms: int = 8,
        z_freq: float = 0.15,
        rows_only: bool = False,
    ) -> np.ndarray:
        """A :func:`smooth_field` on this canvas: float32 (S, h, w), or (S, h, 1) rows_only."""
        x = np.zeros(1, np.float32) if rows_only else self.x[0, 0]
        return smooth_field(
            rng, self.y[0, :, 0], x, self.z, freq=freq, num_terms=num_terms, z_freq=z_freq
        )

"""Optional per-volume metrics beside the fastMRI three (named in config: ``metrics=[...]``).

- ``hfen``: high-frequency error norm (Ravishankar & Bresler, IEEE TMI 2011):
  ``||LoG(recon) - LoG(target)||_F / ||LoG(target)||_F`` with MATLAB's
  ``fspecial('log', 15, 1.5)`` applied as ``imfilter`` does (correlation, zero padding),
  over the whole volume (all slices pooled, like fastMRI's NMSE). Lower is better; 0 for a
  perfect reconstruction, 1 for an empty one.
- ``haarpsi``: Haar wavelet-based perceptual similarity (Reisenhofer et al. 2018) and
- ``vif``: pixel-domain visual information fidelity (Sheikh & Bovik 2006), both computed
  by ``piq`` (``piq.haarpsi``, ``piq.vif_p``) per slice with ``data_range`` = the target
  volume max, in float32, averaged over slices (float64). ``piq`` requires images in
  ``[0, data_range]``: the reconstruction is clipped to it first (a magnitude target is
  already inside).
- ``ssim_fg``: SSIM inside the target's foreground: fastMRI's SSIM map (scikit-image,
  7 x 7 uniform window, data range = the volume max), averaged over the pixels where the
  target smoothed by a Gaussian of std ``FG_SIGMA`` = 3 pixels exceeds ``FG_THRESHOLD`` =
  10% of the target volume max, all slices pooled; the 3-pixel border scikit-image leaves
  out of its mean is left out here too, so a foreground of every pixel gives fastMRI's SSIM.
  Against targets that keep background noise, this is the SSIM a denoiser cannot buy in the
  background.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import piq
import torch
from skimage.filters import gaussian
from skimage.metrics import structural_similarity

from mri_recon import checks
from mri_recon.metrics.image import METRICS, _check_pair, _data_range

OPTIONAL_METRICS = ("hfen", "haarpsi", "vif", "ssim_fg")
ALL_METRICS = (*METRICS, *OPTIONAL_METRICS)
LOWER_IS_BETTER = ("nmse", "hfen")
LOG_SIZE, LOG_SIGMA = 15, 1.5  # HFEN's LoG filter (Ravishankar & Bresler 2011)
FG_SIGMA, FG_THRESHOLD = 3.0, 0.1  # ssim_fg's foreground rule
_SSIM_PAD = 3  # (7 - 1) // 2: the border scikit-image's mean SSIM leaves out


def check_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """The optional metrics among ``names`` (each one of :data:`ALL_METRICS`), in the order
    of :data:`OPTIONAL_METRICS`; the fastMRI three are always computed.

    Raises:
        ValueError: ``metrics: must be one of ..., got <name>``.
    """
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f"metrics: must be a list of metric names, got {names!r}")
    chosen = {checks.one_of("metrics", n, ALL_METRICS) for n in names}
    return tuple(m for m in OPTIONAL_METRICS if m in chosen)


def log_kernel(size: int = LOG_SIZE, sigma: float = LOG_SIGMA) -> np.ndarray:
    """MATLAB's ``fspecial('log', size, sigma)``: float64 (size, size), sums to zero."""
    half = (size - 1) / 2
    y, x = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1), indexing="ij")
    r2 = x**2 + y**2
    h = np.exp(-r2 / (2 * sigma**2))
    h[h < np.finfo(float).eps * h.max()] = 0
    h /= h.sum()
    h1 = h * (r2 - 2 * sigma**2) / sigma**4
    return h1 - h1.sum() / h1.size


def _log_filter(x: np.ndarray) -> torch.Tensor:
    """``imfilter(x, fspecial('log', 15, 1.5))`` of float (S, h, w) slices: float64 (S, h, w).

    Zero-padded linear convolution through the FFT (the kernel is symmetric, so it equals
    ``imfilter``'s correlation): float64 throughout and fast, where a float64 ``conv2d`` on
    the CPU is not.
    """
    s, h, w = x.shape
    pad = LOG_SIZE // 2
    size = (h + 2 * pad, w + 2 * pad)  # the full linear convolution: no wrap-around
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))  # (S, h, w)
    k = torch.from_numpy(log_kernel())  # (15, 15)
    full = torch.fft.irfft2(torch.fft.rfft2(t, s=size) * torch.fft.rfft2(k, s=size), s=size)
    return full[:, pad : pad + h, pad : pad + w]  # "same": centred on each pixel


def hfen(target: np.ndarray, recon: np.ndarray) -> float:
    """HFEN of a float (S, h, w) volume (see the module docstring)."""
    t, r = _check_pair(target, recon, 3)
    lt, lr = _log_filter(t), _log_filter(r)
    return float(torch.linalg.vector_norm(lr - lt) / torch.linalg.vector_norm(lt))


def _piq(fn, t: np.ndarray, r: np.ndarray, data_range: float) -> float:
    # float32, the dtype piq is tested in (float64 convolutions are ~15x slower on a CPU)
    x = torch.from_numpy(np.clip(r, 0, data_range)).float()[:, None]  # (S, 1, h, w)
    y = torch.from_numpy(np.clip(t, 0, data_range)).float()[:, None]
    return float(fn(x, y, data_range=data_range, reduction="none").mean())


def haarpsi(target: np.ndarray, recon: np.ndarray, max_value: float | None = None) -> float:
    """Mean over slices of ``piq.haarpsi`` (recon clipped to ``[0, max_value]``)."""
    t, r = _check_pair(target, recon, 3)
    return _piq(piq.haarpsi, t, r, float(_data_range(t, max_value)))


def vif(target: np.ndarray, recon: np.ndarray, max_value: float | None = None) -> float:
    """Mean over slices of ``piq.vif_p`` (recon clipped to ``[0, max_value]``; h, w >= 41)."""
    t, r = _check_pair(target, recon, 3)
    return _piq(piq.vif_p, t, r, float(_data_range(t, max_value)))


def foreground(
    target: np.ndarray,
    max_value: float | None = None,
    threshold: float = FG_THRESHOLD,
    sigma: float = FG_SIGMA,
) -> np.ndarray:
    """bool (S, h, w): each slice of ``target`` smoothed by a Gaussian of std ``sigma``
    pixels exceeds ``threshold`` x the volume max (``max_value``)."""
    vmax = float(_data_range(target, max_value))
    smooth = np.stack([gaussian(s.astype(np.float64), sigma=sigma) for s in target])
    return smooth > threshold * vmax


def ssim_fg(
    target: np.ndarray,
    recon: np.ndarray,
    max_value: float | None = None,
    threshold: float = FG_THRESHOLD,
) -> float:
    """SSIM averaged over the foreground pixels of a float (S, h, w) volume (NaN if the
    foreground is empty)."""
    t, r = _check_pair(target, recon, 3)
    data_range = _data_range(t, max_value)
    fg = foreground(t, data_range, threshold)
    p = _SSIM_PAD
    fg[:, :p], fg[:, -p:], fg[:, :, :p], fg[:, :, -p:] = False, False, False, False
    total, count = 0.0, 0
    for ts, rs, ms in zip(t, r, fg, strict=True):
        _, smap = structural_similarity(ts, rs, data_range=data_range, full=True)
        total += float(smap[ms].astype(np.float64).sum())
        count += int(ms.sum())
    return total / count if count else float("nan")


_FUNCTIONS = {"hfen": hfen, "haarpsi": haarpsi, "vif": vif, "ssim_fg": ssim_fg}


def optional_metrics(
    target: np.ndarray, recon: np.ndarray, names: Sequence[str], max_value: float | None = None
) -> dict[str, float]:
    """``{name: value}`` of the optional metrics ``names`` (from :func:`check_metrics`) of a
    float (S, h, w) volume; ``max_value`` defaults to the target's maximum."""
    out = {}
    for name in names:
        fn = _FUNCTIONS[name]
        out[name] = fn(target, recon) if name == "hfen" else fn(target, recon, max_value)
    return out

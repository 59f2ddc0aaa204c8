"""Per-volume image metrics, computed exactly as ``fastmri.evaluate`` computes them.

fastMRI's conventions (``fastmri/evaluate.py``):

- NMSE over the whole volume: ``||target - recon||^2 / ||target||^2``;
- PSNR over the whole volume with ``data_range`` = the maximum of the target *volume*;
- SSIM per slice with scikit-image's defaults (7x7 uniform window) and the same
  volume ``data_range``, averaged over slices.

The arithmetic is done by ``fastmri.evaluate`` / scikit-image themselves, in the dtype of
the arrays handed in (float32 for fastMRI files), so the numbers are bit-identical to
fastMRI's own evaluation script. ``slice_ssim`` + ``mean_slice_ssim`` split the SSIM into
per-slice pieces (for a validation loop that sees slices one batch at a time) and combine
them in fastMRI's summation order, so the per-volume value is identical too.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from fastmri import evaluate as fastmri_evaluate
from skimage.metrics import structural_similarity

ArrayLike = np.ndarray | torch.Tensor

METRICS = ("nmse", "psnr", "ssim")


def _as_numpy(name: str, x: ArrayLike) -> np.ndarray:
    """A real numpy array (no dtype change) from a numpy array or a torch tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        kind = getattr(x, "dtype", type(x).__name__)
        raise TypeError(f"{name} must be a real floating numpy array or torch tensor, got {kind}")
    return x


def _check_pair(target: ArrayLike, recon: ArrayLike, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Convert and check that ``target`` and ``recon`` are ``ndim``-D of equal shape."""
    t = _as_numpy("target", target)
    r = _as_numpy("recon", recon)
    if t.ndim != ndim or r.shape != t.shape:
        dims = "(S, h, w)" if ndim == 3 else "(h, w)"
        raise ValueError(
            f"target and recon must be {ndim}-D {dims} of one shape, got {t.shape} and {r.shape}"
        )
    return t, r


def _data_range(t: np.ndarray, max_value: float | None) -> np.floating:
    """The data range as a scalar of ``t``'s dtype.

    ``fastmri.evaluate`` uses ``gt.max()``, a scalar of the array's dtype (float32 for
    fastMRI files); scikit-image's SSIM constants depend on that precision, so an explicit
    ``max_value`` is cast the same way to give bit-identical numbers.
    """
    value = t.max() if max_value is None else t.dtype.type(max_value)
    if not value > 0 or not np.isfinite(value):
        raise ValueError(f"max_value (SSIM/PSNR data_range) must be finite and > 0, got {value}")
    return value


def nmse(target: ArrayLike, recon: ArrayLike) -> float:
    """``||target - recon||^2 / ||target||^2`` over a float (S, h, w) volume, as
    ``fastmri.evaluate.nmse``."""
    t, r = _check_pair(target, recon, 3)
    return float(fastmri_evaluate.nmse(t, r))


def psnr(target: ArrayLike, recon: ArrayLike, max_value: float | None = None) -> float:
    """``10 log10(max_value^2 / MSE)`` in dB over a float (S, h, w) volume, as
    ``fastmri.evaluate.psnr``; ``max_value`` defaults to the target's maximum."""
    t, r = _check_pair(target, recon, 3)
    return float(fastmri_evaluate.psnr(t, r, maxval=_data_range(t, max_value)))


def ssim(target: ArrayLike, recon: ArrayLike, max_value: float | None = None) -> float:
    """Mean SSIM over the slices of a float (S, h, w) volume, as ``fastmri.evaluate.ssim``
    (which returns a 1-element array); ``max_value`` defaults to the target *volume* max."""
    t, r = _check_pair(target, recon, 3)
    value = fastmri_evaluate.ssim(t, r, maxval=_data_range(t, max_value))
    return float(np.asarray(value).reshape(-1)[0])


def slice_ssim(target: ArrayLike, recon: ArrayLike, max_value: float) -> float:
    """SSIM of one float (h, w) slice with fastMRI's settings (scikit-image defaults).

    ``max_value`` is the data range: the maximum of the whole target *volume*, not of the
    slice, for per-volume numbers that match :func:`ssim`.
    """
    t, r = _check_pair(target, recon, 2)
    return float(structural_similarity(t, r, data_range=_data_range(t, max_value)))


def mean_slice_ssim(values: Iterable[float]) -> float:
    """Combine the :func:`slice_ssim` of every slice of a volume, in slice order, into the
    volume SSIM of :func:`ssim`: summed sequentially in float64 from zero and divided by the
    count, the order of operations of ``fastmri.evaluate.ssim``, so bit-identical."""
    values = [np.float64(v) for v in values]
    if not values:
        raise ValueError("mean_slice_ssim needs at least one slice SSIM, got none")
    return float(sum(values, np.float64(0.0)) / len(values))


def volume_metrics(
    target: ArrayLike, recon: ArrayLike, max_value: float | None = None
) -> dict[str, float]:
    """``{"nmse", "psnr", "ssim"}`` of a float32 (S, h, w) volume, as ``fastmri.evaluate``
    computes them; ``max_value`` (PSNR/SSIM data range) defaults to the target's maximum."""
    t, r = _check_pair(target, recon, 3)
    data_range = _data_range(t, max_value)
    return {
        "nmse": nmse(t, r),
        "psnr": psnr(t, r, data_range),
        "ssim": ssim(t, r, data_range),
    }

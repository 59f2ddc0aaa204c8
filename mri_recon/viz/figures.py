"""Comparison figures: target, each method's reconstruction, and |error| maps.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas directly (no pyplot,
so no global figure state and no display backend), and saved atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mri_recon.fileio import atomic_path

_PANEL_INCHES = 2.6


def _image(name: str, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of a real image given as a numpy array or torch tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be a real floating image, got dtype {x.dtype}")
    return x.astype(np.float32)


def _title(name: str, metrics: Mapping[str, float] | None) -> str:
    if not metrics:
        return name
    return f"{name}\nSSIM {metrics['ssim']:.4f}  PSNR {metrics['psnr']:.2f} dB"


def comparison_figure(
    target: np.ndarray | torch.Tensor,
    recons: Mapping[str, np.ndarray | torch.Tensor],
    metrics: Mapping[str, Mapping[str, float] | None] | None = None,
    title: str = "",
) -> Figure:
    """A 2 x (1 + M) grid: top row the target and each method's image on one grey scale,
    bottom row each method's |recon - target| on one shared colour scale.

    Args:
        target: float (h, w) target slice.
        recons: method name -> float (h, w) reconstruction of the same slice.
        metrics: method name -> {"ssim", "psnr", ...} shown in the titles (e.g. the
            volume metrics), or None.
        title: figure title.

    Returns:
        The figure (Agg canvas attached); save it with :func:`save_figure`.
    """
    t = _image("target", target)
    images = {name: _image(f"recons[{name!r}]", r) for name, r in recons.items()}
    shapes = {name: r.shape for name, r in images.items()}
    if t.ndim != 2 or not images or any(shape != t.shape for shape in shapes.values()):
        raise ValueError(
            f"need a 2-D target slice (h, w) and at least one reconstruction of its shape, got "
            f"target {t.shape} and {shapes}"
        )
    errors = {name: np.abs(r - t) for name, r in images.items()}
    vmax = float(t.max()) or 1.0
    emax = max(float(e.max()) for e in errors.values()) or 1.0
    cols = 1 + len(images)
    fig = Figure(figsize=(_PANEL_INCHES * cols, _PANEL_INCHES * 2 + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, cols, squeeze=False)
    axes[0, 0].imshow(t, cmap="gray", vmin=0.0, vmax=vmax)
    axes[0, 0].set_title("target", fontsize=9)
    for j, (name, r) in enumerate(images.items(), start=1):
        axes[0, j].imshow(r, cmap="gray", vmin=0.0, vmax=vmax)
        axes[0, j].set_title(_title(name, (metrics or {}).get(name)), fontsize=9)
        err_im = axes[1, j].imshow(errors[name], cmap="inferno", vmin=0.0, vmax=emax)
        axes[1, j].set_title(f"|{name} - target|", fontsize=9)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.colorbar(err_im, ax=list(axes[1, 1:]), shrink=0.8, label="|error|")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def grid_heatmap(
    table: np.ndarray, row_labels: list[str], col_labels: list[str], title: str = ""
) -> Figure:
    """A (rows, cols) table of values (e.g. SSIM per mask type x acceleration) as an annotated
    heatmap; NaN cells are blank."""
    rows, cols = table.shape
    label_width = 0.07 * max((len(label) for label in row_labels), default=0)
    fig = Figure(figsize=(2.0 + 0.9 * cols + label_width, 1.2 + 0.45 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(table, cmap="viridis", aspect="auto")
    ax.set_xticks(range(cols), col_labels)
    ax.set_yticks(range(rows), row_labels)
    for i in range(rows):
        for j in range(cols):
            if np.isfinite(table[i, j]):
                ax.text(j, i, f"{table[i, j]:.3f}", ha="center", va="center", fontsize=8, color="w")
    ax.set_xlabel("acceleration")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def grid_lines(
    curves: Mapping[str, tuple[list[str], list[float], np.ndarray]], ylabel: str = "SSIM"
) -> Figure:
    """One panel per method: a metric vs acceleration, one line per mask type.

    Args:
        curves: method -> (mask types, accelerations, (types, accelerations) values).
        ylabel: the metric's name.
    """
    fig = Figure(figsize=(3.2 * len(curves), 2.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(curves), sharey=True, squeeze=False)[0]
    for ax, (method, (types, accels, table)) in zip(axes, curves.items(), strict=True):
        for i, t in enumerate(types):
            ax.plot(accels, table[i], marker="o", label=t)
        ax.set_title(method, fontsize=10)
        ax.set_xlabel("acceleration")
        ax.set_xticks(accels)
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(fontsize=7)
    return fig


def level_lines(
    curves: Mapping[str, Mapping[str, tuple[list[float], list[float]]]], ylabel: str = "SSIM"
) -> Figure:
    """One panel per perturbation type: a metric vs the perturbation's level, one line per
    label (e.g. method and acceleration).

    Args:
        curves: type -> label -> (levels, values).
        ylabel: the metric's name.
    """
    fig = Figure(figsize=(3.2 * len(curves), 2.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(curves), sharey=True, squeeze=False)[0]
    for ax, (kind, lines) in zip(axes, curves.items(), strict=True):
        for label, (xs, ys) in lines.items():
            ax.plot(xs, ys, marker="o", label=label)
        ax.set_title(kind, fontsize=10)
        ax.set_xlabel("level")
        if kind == "scale":
            ax.set_xscale("log")
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(fontsize=7)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save ``fig`` as PNG atomically (temporary file, then rename) and release it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        fig.clear()
    return Path(path)

"""Convergence plots of training runs and the ``scripts/compare_runs.py`` outputs.

:func:`write_comparison` writes the plots and tables of loaded runs; loading and labelling
them by config keys, which needs the runs' Hydra configs, is
:func:`mri_recon.cli.run_configs.compare_runs`.

Figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state), or
into axes the caller passes (a notebook's ``plt.subplots``); PNGs are written atomically.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from mri_recon import checks
from mri_recon.fileio import write_atomic, write_csv
from mri_recon.viz.logs import TABLE_COLUMNS, RunLog, final_metrics, metrics_table_markdown


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average, NaN-aware (a window of NaN stays NaN)."""
    if window <= 1:
        return values
    finite = np.isfinite(values)
    sums = np.convolve(np.where(finite, values, 0.0), np.ones(window), mode="full")[: values.size]
    counts = np.convolve(finite.astype(float), np.ones(window), mode="full")[: values.size]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


_LEGEND_INSIDE_MAX = 8  # more runs than this: the legend goes to the right of the axes


def run_colors(count: int) -> list[str]:
    """``count`` distinct colours: the default cycle ``C0..C9`` for up to 10 runs (what a
    notebook's other plots use), ``tab20`` for up to 20, evenly spaced ``turbo`` beyond."""
    if count <= 10:
        return [f"C{i}" for i in range(count)]
    if count <= 20:
        return [to_hex(colormaps["tab20"](i)) for i in range(count)]
    return [to_hex(colormaps["turbo"](i / (count - 1))) for i in range(count)]


def plot_convergence(
    runs: Sequence[RunLog],
    key: str,
    path: str | Path | None = None,
    *,
    log_y: bool = False,
    smooth: int = 1,
    x_scale: Sequence[float] | None = None,
    x_shift: float = 0.0,
    x_label: str = "step",
    title: str = "",
    ax: Axes | None = None,
    colors: Sequence[str] | None = None,
) -> Figure:
    """One curve per run of metric ``key`` against the global step.

    Args:
        runs: labelled runs; runs that never logged ``key`` are left out of the legend.
        key: a metric key, or ``"train/loss"`` for the first present of ``TRAIN_LOSS_KEYS``.
        path: the PNG to write (atomically), or None.
        log_y: logarithmic y axis (losses).
        smooth: moving-average window over logged points (1: raw); the raw curve is drawn
            faintly underneath when smoothing.
        x_scale: one factor per run multiplying its steps, e.g. the batch sizes to plot
            against training samples seen (then say so in ``x_label``).
        x_shift: added to the logged step before scaling; Lightning logs a step's metrics
            (and the validation after it) at ``global_step - 1``, so samples seen are
            ``(step + 1) * batch_size``.
        x_label: the x axis label.
        title: the axes title.
        ax: draw into these axes (e.g. from ``plt.subplots`` in a notebook); None makes a
            new figure on the Agg canvas.
        colors: one matplotlib colour per run (to keep a run's colour across figures);
            default :func:`run_colors` (distinct for up to 20 runs).

    Returns:
        The figure drawn into.
    """
    lengths = {"x_scale": x_scale, "colors": colors}
    wrong = {k: len(v) for k, v in lengths.items() if v is not None and len(v) != len(runs)}
    if wrong:
        raise ValueError(f"need one entry per run ({len(runs)} runs), got lengths {wrong}")
    default_colors = run_colors(len(runs))
    if ax is None:
        wide = len(runs) > _LEGEND_INSIDE_MAX
        fig = Figure(figsize=(10.0 if wide else 7.0, 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
    for index, run in enumerate(runs):
        curve = run.train_loss() if key == "train/loss" else run.curves.get(key)
        if curve is None:
            continue
        x = (curve.step + x_shift) * (1.0 if x_scale is None else float(x_scale[index]))
        color = default_colors[index] if colors is None else colors[index]
        if smooth > 1:
            ax.plot(x, curve.value, color=color, alpha=0.25, linewidth=0.8)
        marker = "o" if curve.step.size <= 30 else None
        ax.plot(
            x,
            _smooth(curve.value, smooth),
            color=color,
            marker=marker,
            markersize=3,
            label=run.label,
        )
    ax.set_xlabel(x_label)
    ax.set_ylabel(key + (f" (moving average, {smooth} points)" if smooth > 1 else ""))
    ax.set_title(title)
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        if len(runs) > _LEGEND_INSIDE_MAX:  # a long legend would hide the curves
            ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend(fontsize="small", loc="best")
    else:
        ax.text(0.5, 0.5, f"no run logged {key}", ha="center", va="center", transform=ax.transAxes)
    if path is not None:
        buffer = io.BytesIO()
        ax.figure.savefig(buffer, format="png", dpi=120)
        write_atomic(path, buffer.getvalue())
    return ax.figure


@dataclass(frozen=True)
class Comparison:
    """What :func:`write_comparison` produced.

    Attributes:
        runs: the labelled runs, in table order.
        rows: one :func:`final_metrics` row per run.
        markdown: the Markdown table.
        files: name -> written path (``convergence_val_ssim``, ``convergence_train_loss``,
            their ``*_samples`` versions with ``batch_sizes``, ``final_metrics_md``,
            ``final_metrics_csv``).
        skipped: messages for multirun jobs without a log.
    """

    runs: list[RunLog]
    rows: list[dict[str, object]]
    markdown: str
    files: dict[str, Path]
    skipped: list[str]


def _write_plots(
    runs: Sequence[RunLog],
    out_dir: Path,
    x_scale: Sequence[float] | None,
    x_label: str,
    suffix: str,
    x_shift: float = 0.0,
) -> dict[str, Path]:
    """The two convergence plots (validation SSIM, smoothed training loss) into ``out_dir``."""
    longest = max((c.step.size for r in runs if (c := r.train_loss()) is not None), default=0)
    files = {}
    for name, key, kwargs in (
        ("convergence_val_ssim", "val/ssim", {}),
        ("convergence_train_loss", "train/loss", {"log_y": True, "smooth": max(1, longest // 25)}),
    ):
        files[name + suffix] = out_dir / f"{name}{suffix}.png"
        plot_convergence(
            runs,
            key,
            files[name + suffix],
            x_scale=x_scale,
            x_shift=x_shift,
            x_label=x_label,
            **kwargs,
        )
    return files


def write_comparison(
    runs: Sequence[RunLog],
    out_dir: str | Path,
    batch_sizes: Sequence[float] | None = None,
    batch_size_name: str = "batch size",
    skipped: Sequence[str] = (),
) -> Comparison:
    """Write the two convergence plots and the final-metrics table of ``runs`` into ``out_dir``.

    Files: ``convergence_val_ssim.png``, ``convergence_train_loss.png`` (against the step),
    ``final_metrics.md`` and ``final_metrics.csv``, each written atomically. With
    ``batch_sizes`` (one per run), also the two plots against training samples seen
    ((step + 1) x batch size), ``*_samples.png``: the fair axis when runs' batch sizes differ.

    Args:
        runs: labelled runs (:func:`mri_recon.viz.logs.load_runs`), in table order.
        out_dir: the output directory (created).
        batch_sizes: positive batch size per run, or None.
        batch_size_name: what the batch size is called on the samples plots' x axis.
        skipped: messages about runs left out, passed through to the result.

    Raises:
        ValueError: no runs, or ``batch_sizes`` not one positive number per run.
    """
    if not runs:
        raise ValueError("no runs to compare")
    out_dir = Path(out_dir)
    rows = [final_metrics(run) for run in runs]
    markdown = metrics_table_markdown(rows)
    if batch_sizes is not None:
        if len(batch_sizes) != len(runs):
            raise ValueError(f"{len(batch_sizes)} batch sizes for {len(runs)} runs")
        for run, value in zip(runs, batch_sizes, strict=True):
            checks.positive(f"{run.run_dir}: {batch_size_name}", value)
    files = _write_plots(runs, out_dir, None, "step", "")
    if batch_sizes is not None:
        files |= _write_plots(
            runs,
            out_dir,
            [float(b) for b in batch_sizes],
            f"training samples seen ({batch_size_name} x steps)",
            "_samples",
            x_shift=1.0,
        )
    files["final_metrics_md"] = write_atomic(out_dir / "final_metrics.md", markdown)
    files["final_metrics_csv"] = write_csv(out_dir / "final_metrics.csv", rows, TABLE_COLUMNS)
    return Comparison(list(runs), rows, markdown, files, list(skipped))

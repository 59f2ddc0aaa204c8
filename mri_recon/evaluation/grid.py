"""The robustness grid: every method on every (mask type, acceleration) cell, same volumes.

A cell is one :class:`~mri_recon.physics.masks.ColumnMaskFunc` (one mask type, one
acceleration R, centre fraction ``0.32 / R`` unless given); each cell is one run of the
evaluation loop (:func:`~mri_recon.evaluation.run.run_evaluation`, per-file masks, the same
volumes), its outputs in ``cells/<cell>/`` (no reconstructions). A finished cell writes
``cells/<cell>.csv`` atomically, last, after ``cells/<cell>.inputs.json`` (the settings, the
checkpoints' hashes and the volumes' identities); a rerun skips the cells that have both, with
the same inputs, and computes again those whose checkpoint or data files changed, so a run
that was killed loses at most the cell in progress and one grid never mixes two models or
two datasets. ``grid.csv`` is always assembled from the cell files, so a resumed grid equals
an uninterrupted one; ``grid.csv``, ``grid.md`` and
``figures/`` are published together (:class:`~mri_recon.evaluation.outputs.Staging`), so a
failed or killed run leaves the previous ones whole. The volumes are selected and checked
once, for every cell; files with stored masks (the test split) are refused, since no mask
axis of the grid can apply to them. ``cells/settings.json`` holds
what the cells depend on besides the cell itself (methods, data, coil maps); a rerun with
other settings in the same directory is an error, not a mix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mri_recon.checks import number, one_of
from mri_recon.contract import Reconstructor
from mri_recon.data.fastmri import DataError
from mri_recon.data.prescan import stat_key
from mri_recon.evaluation.outputs import Staging
from mri_recon.evaluation.run import EvalSettings, iter_volumes, run_evaluation
from mri_recon.fileio import read_csv, write_atomic, write_csv
from mri_recon.metrics.stats import describe
from mri_recon.physics.masks import MASK_TYPES, ColumnMaskFunc
from mri_recon.runinfo.hashing import hash_file
from mri_recon.viz.figures import grid_heatmap, grid_lines, save_figure

CENTER_BAND = 0.32  # a cell's centre fraction is CENTER_BAND / R (fastMRI: 0.08 at 4x)
GRID_COLUMNS = (
    "mask_type",
    "acceleration",
    "center_fraction",
    "method",
    "fname",
    "nmse",
    "psnr",
    "ssim",
    "seconds_per_slice",
    "mask_acceleration",
    "mask_num_sampled",
    "num_low_frequencies",
    "mask_hash",
)
GRID_OUTPUTS = ("grid.csv", "grid.md", "figures")
_FLOATS = ("acceleration", "center_fraction", "nmse", "psnr", "ssim", "seconds_per_slice")
_TYPES = {
    **dict.fromkeys((*_FLOATS, "mask_acceleration"), float),
    **dict.fromkeys(("mask_num_sampled", "num_low_frequencies"), int),
}


@dataclass(frozen=True)
class Cell:
    """One (mask type, acceleration, centre fraction) of the grid."""

    mask_type: str
    acceleration: float
    center_fraction: float

    @property
    def name(self) -> str:
        """``<mask_type>_<R>x_cf<center_fraction>``, e.g. ``poisson_8x_cf0.04``; numbers are
        exact (``4.000001x``), so two cells never share a name."""
        return f"{self.mask_type}_{_exact(self.acceleration)}x_cf{_exact(self.center_fraction)}"

    def mask_func(self) -> ColumnMaskFunc:
        """The cell's mask function (the type's default density settings)."""
        return ColumnMaskFunc(self.mask_type, [self.center_fraction], [self.acceleration])


def _exact(value: float) -> str:
    """``value`` short (``%g``) where that is exact, else in full (``repr``)."""
    short = f"{value:g}"
    return short if float(short) == float(value) else repr(float(value))


def grid_cells(
    masks: Sequence[str],
    accelerations: Sequence[float],
    center_fractions: Sequence[float] | None = None,
) -> list[Cell]:
    """The cells, mask type major, checked: every mask function is built once here.

    Args:
        masks: mask types (non-empty, distinct).
        accelerations: R values (non-empty, distinct, each > 1).
        center_fractions: one per acceleration, each in (0, 1) and < 1/R; None: 0.32 / R.

    Raises:
        ValueError: ``<argument>: <reason>`` (``masks``, ``accelerations``,
            ``center_fractions``) for an empty grid, R <= 1, a centre fraction outside
            (0, 1) or asking for more columns than W/R, a list of the wrong length.
    """
    for name, values in (("masks", masks), ("accelerations", accelerations)):
        if not isinstance(values, Sequence) or isinstance(values, str) or not values:
            raise ValueError(f"{name}: the grid is empty; give a non-empty list")
        if len(set(values)) != len(values):
            raise ValueError(f"{name}: a value is listed twice: {list(values)}")
    masks = [one_of("masks", m, MASK_TYPES) for m in masks]
    accels = [number("accelerations", r, 1, open_low=True) for r in accelerations]
    fractions = [CENTER_BAND / r for r in accels] if center_fractions is None else center_fractions
    if isinstance(fractions, str) or len(fractions) != len(accels):
        raise ValueError(
            f"center_fractions: needs one per acceleration ({len(accels)}), got {fractions!r}"
        )
    fractions = [
        number("center_fractions", c, 0, 1, open_low=True, open_high=True) for c in fractions
    ]
    pairs = list(zip(accels, fractions, strict=True))
    cells = [Cell(str(m), r, c) for m in masks for r, c in pairs]
    for cell in cells:
        cell.mask_func()  # ColumnMaskFunc names accelerations / center_fractions itself
    return cells


def _check_settings(cells_dir: Path, fingerprint: Mapping[str, Any]) -> None:
    """Write ``cells/settings.json`` on the first run; on a rerun, it must equal."""
    path = cells_dir / "settings.json"
    text = json.dumps(fingerprint, indent=2, sort_keys=True, default=str) + "\n"
    if path.is_file():
        if path.read_text() != text:
            raise ValueError(
                f"{path}: this directory holds grid cells of other settings (methods, data or "
                "coil maps differ); use another hydra.run.dir, or delete cells/ to start over"
            )
        return
    cells_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def _inputs_key(infos: Sequence[Any], checkpoints: Sequence[str | Path]) -> dict[str, Any]:
    """What a cell's numbers were computed from besides the settings: every checkpoint's
    sha256 and every selected volume's :func:`~mri_recon.data.prescan.stat_key` (a content
    change moves its ctime; the data are not read again)."""
    return {
        "checkpoints": {str(p): hash_file(p)["hash"] for p in checkpoints},
        "data": {info.fname: stat_key(info.path) for info in infos},
    }


def _by_width(widths: Mapping[str, int]) -> list[tuple[str, int]]:
    """One (fname, width) per distinct width."""
    return list({w: (f, w) for f, w in sorted(widths.items(), reverse=True)}.values())


def _cell_is_current(done: Path, key_path: Path, key: str) -> bool:
    """A finished cell (its CSV exists) computed from these inputs."""
    return done.is_file() and key_path.is_file() and key_path.read_text() == key


def run_grid(
    settings: EvalSettings,
    methods: Mapping[str, Reconstructor],
    cells: Sequence[Cell],
    fingerprint: Mapping[str, Any],
    checkpoints: Sequence[str | Path] = (),
) -> list[dict[str, Any]]:
    """Evaluate ``methods`` on every cell (skipping finished ones) and write the grid outputs
    into ``settings.run_dir``: ``grid.csv``, ``grid.md``, ``figures/grid_ssim_<method>.png``,
    ``figures/grid_ssim_vs_acceleration.png``, and ``cells/``.

    Args:
        settings: the evaluation settings of every cell (its mask and run dir are replaced).
        methods: name -> reconstructor.
        cells: from :func:`grid_cells`.
        fingerprint: JSON-ready description of what the cells depend on besides the cell
            (a rerun with another one is refused).
        checkpoints: the methods' checkpoint files. A finished cell is reused only when its
            ``cells/<cell>.inputs.json`` (the fingerprint, these files' hashes and the
            volumes' identities) equals this run's; otherwise it is computed again.

    Returns:
        The ``grid.csv`` rows: one per cell x method x volume.

    Raises:
        DataError: the selected files carry stored masks (test split): no mask axis applies.
    """
    out = settings.run_dir
    # the volumes, selected and checked once for every cell before anything is written
    volumes = iter_volumes(settings)
    stored = [info for info in volumes.infos if info.mask is not None]
    if stored:
        raise DataError(
            stored[0].path,
            f"carries its stored mask ({settings.split} split): the grid's mask types and "
            "accelerations cannot apply to it; run the grid on val (or train)",
        )
    selection = (volumes.infos, volumes.skipped)
    widths = {info.fname: info.image_shape[1] for info in volumes.infos}  # for the true R
    for cell, (fname, width) in ((c, w) for c in cells for w in _by_width(widths)):
        if not cell.mask_func()(width, seed=0).mask.any():  # before anything is written
            raise ValueError(
                f"accelerations: {cell.acceleration:g} (centre fraction "
                f"{cell.center_fraction:g}) samples no column of {fname}'s {width}"
            )
    fingerprint = {**fingerprint, "methods": list(methods)}
    key = {"settings": fingerprint, **_inputs_key(volumes.infos, checkpoints)}
    key_text = json.dumps(key, indent=2, sort_keys=True, default=str) + "\n"
    _check_settings(out / "cells", fingerprint)
    rows: list[dict[str, Any]] = []
    for cell in cells:
        done = out / "cells" / f"{cell.name}.csv"
        key_path = out / "cells" / f"{cell.name}.inputs.json"
        if not _cell_is_current(done, key_path, key_text):
            done.unlink(missing_ok=True)  # unfinished until its inputs and rows are written
            cell_settings = replace(
                settings,
                mask_name=cell.name,
                mask_func=cell.mask_func(),
                run_dir=out / "cells" / cell.name,
                save_reconstructions=False,
                provenance=False,
            )
            report = run_evaluation(cell_settings, methods, selection)
            cell_rows = [
                {
                    **row,
                    "mask_type": cell.mask_type,
                    "acceleration": cell.acceleration,
                    "center_fraction": cell.center_fraction,
                    "mask_acceleration": widths[row["fname"]] / row["mask_num_sampled"],
                }
                for row in report.rows
            ]
            write_atomic(key_path, key_text)
            write_csv(done, cell_rows, GRID_COLUMNS)  # last: the cell is finished
        rows.extend(read_csv(done, _TYPES))
    boot = {"confidence": settings.confidence, "num_resamples": settings.num_resamples}
    md = grid_markdown(rows, cells, list(methods), **boot, reference=settings.reference)
    with Staging(out, GRID_OUTPUTS) as staging:  # the grid's outputs all or none
        write_csv(staging.path("grid.csv"), rows, GRID_COLUMNS)
        write_atomic(staging.path("grid.md"), md)
        _figures(staging.path("figures"), rows, cells, list(methods))
        staging.publish()
    return rows


def _means(
    rows: Sequence[Mapping[str, Any]], cells: Sequence[Cell], method: str, metric: str
) -> tuple[list[str], list[float], np.ndarray]:
    """Mask types, accelerations and the (types, accelerations) array of per-cell means."""
    types = list(dict.fromkeys(c.mask_type for c in cells))
    accels = list(dict.fromkeys(c.acceleration for c in cells))
    table = np.full((len(types), len(accels)), np.nan)
    for i, t in enumerate(types):
        for j, r in enumerate(accels):
            values = [
                row[metric]
                for row in rows
                if row["method"] == method and row["mask_type"] == t and row["acceleration"] == r
            ]
            if values and None not in values:
                table[i, j] = float(np.mean(values))
    return types, accels, table


def _values(
    rows: Sequence[Mapping[str, Any]], method: str, mask_type: str, r: float, metric: str
) -> dict[str, float]:
    """fname -> ``metric`` of one method in one cell (volumes with a target)."""
    return {
        row["fname"]: row[metric]
        for row in rows
        if row["method"] == method
        and row["mask_type"] == mask_type
        and row["acceleration"] == r
        and row[metric] is not None
    }


def grid_markdown(
    rows: Sequence[Mapping[str, Any]],
    cells: Sequence[Cell],
    methods: Sequence[str],
    confidence: float = 0.95,
    num_resamples: int = 2000,
    reference: str | None = None,
) -> str:
    """``grid.md``: per metric (SSIM, PSNR) and method, mask type x acceleration, each cell
    ``mean [low, high]`` (bootstrap interval of the mean over volumes, seed 0); with a
    ``reference`` among the methods, also each other method's paired per-volume difference
    (method - reference) per cell."""
    level = round(100 * confidence)
    n = len({row["fname"] for row in rows})
    accels = list(dict.fromkeys(c.acceleration for c in cells))
    types = list(dict.fromkeys(c.mask_type for c in cells))
    fractions = ", ".join(
        f"{c.acceleration:g}x: {c.center_fraction:.4g}" for c in cells[: len(accels)]
    )
    out = [
        "# Robustness grid",
        "",
        f"{n} volumes per cell; each cell is the mean [{level}% bootstrap interval of the mean]"
        f" over volumes. Centre fraction per acceleration: {fractions}.",
    ]
    tables = [(method, None) for method in methods]
    if reference in methods:
        tables += [(method, reference) for method in methods if method != reference]
    for metric, label in (("ssim", "SSIM"), ("psnr", "PSNR (dB)")):
        digits = 4 if metric == "ssim" else 2
        for method, ref in tables:
            title = f"{label}: {method}" + (f" - {ref} (paired per volume)" if ref else "")
            out += ["", f"## {title}", ""]
            out.append("| mask | " + " | ".join(f"{r:g}x" for r in accels) + " |")
            out.append("|---" * (len(accels) + 1) + "|")
            for t in types:
                texts = []
                for r in accels:
                    values = _values(rows, method, t, r, metric)
                    if ref:
                        base = _values(rows, ref, t, r, metric)
                        values = {f: v - base[f] for f, v in values.items() if f in base}
                    if not values:
                        texts.append("")
                        continue
                    d = describe(
                        list(values.values()), confidence=confidence, num_resamples=num_resamples
                    )
                    sign = "+" if ref else ""
                    texts.append(
                        f"{d.mean:{sign}.{digits}f} [{d.ci_low:{sign}.{digits}f}, "
                        f"{d.ci_high:{sign}.{digits}f}]"
                    )
                out.append(f"| {t} | " + " | ".join(texts) + " |")
    return "\n".join(out) + "\n"


def _figures(
    folder: Path, rows: Sequence[Mapping[str, Any]], cells: Sequence[Cell], methods: Sequence[str]
) -> None:
    """One SSIM heatmap per method and one line plot of SSIM vs acceleration."""
    curves = {}
    for method in methods:
        types, accels, table = _means(rows, cells, method, "ssim")
        fig = grid_heatmap(table, types, [f"{r:g}x" for r in accels], title=f"SSIM: {method}")
        save_figure(fig, folder / f"grid_ssim_{method}.png")
        curves[method] = (types, accels, table)
    save_figure(grid_lines(curves, ylabel="SSIM"), folder / "grid_ssim_vs_acceleration.png")

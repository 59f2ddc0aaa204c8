"""The robustness grid: every method on every (mask type, acceleration, perturbation) cell,
same volumes.

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

Perturbation axes (``grid.perturbations``, :mod:`mri_recon.physics.perturbations`) cross the
mask axes: a perturbed cell (``<mask cell>_<type><level>``) runs the evaluation loop with the
perturbation applied to each volume before its mask, drawn per (seed, file, slice); with a
``reference`` method ``grid.md`` adds per cell a sign-flip permutation p-value of the paired
differences and per method a Holm-adjusted verdict over all its cells.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mri_recon.checks import integer, number, one_of
from mri_recon.contract import Reconstructor
from mri_recon.data.fastmri import DataError, list_volumes, read_volume_info
from mri_recon.data.prescan import stat_key
from mri_recon.evaluation.grid_report import grid_markdown, write_figures
from mri_recon.evaluation.outputs import Staging
from mri_recon.evaluation.run import EvalSettings, iter_volumes, run_evaluation
from mri_recon.fileio import read_csv, write_atomic, write_csv
from mri_recon.metrics.optional import OPTIONAL_METRICS
from mri_recon.physics.masks import MASK_TYPES, ColumnMaskFunc
from mri_recon.physics.perturbations import Perturbation, parse_perturbations, perturbation_seed
from mri_recon.runinfo.hashing import hash_file

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
    "perturbation",
    "level",
    "perturbation_seed",
)  # then the optional metrics of the run (metrics.optional.OPTIONAL_METRICS order)
GRID_OUTPUTS = ("grid.csv", "grid.md", "figures")
_FLOATS = ("acceleration", "center_fraction", "nmse", "psnr", "ssim", "seconds_per_slice")
_TYPES = {
    **dict.fromkeys((*_FLOATS, "mask_acceleration", "level", *OPTIONAL_METRICS), float),
    **dict.fromkeys(("mask_num_sampled", "num_low_frequencies", "perturbation_seed"), int),
}
NONE = Perturbation("none")


@dataclass(frozen=True)
class Cell:
    """One (mask type, acceleration, centre fraction, perturbation) of the grid; ``seed``
    is the run seed of the perturbation's draws (per file and slice)."""

    mask_type: str
    acceleration: float
    center_fraction: float
    perturbation: Perturbation = NONE
    seed: int = 0

    @property
    def name(self) -> str:
        """``<mask_type>_<R>x_cf<center_fraction>[_<type><level>]``, e.g.
        ``poisson_8x_cf0.04`` (unperturbed) or ``random_4x_cf0.08_noise2``; numbers are exact
        (``4.000001x``), so two cells never share a name."""
        base = f"{self.mask_type}_{_exact(self.acceleration)}x_cf{_exact(self.center_fraction)}"
        p = self.perturbation
        return base if p.kind == "none" else f"{base}_{p.kind}{_exact(p.level)}"

    @property
    def row(self) -> str:
        """The cell's row in tables and heatmaps: the mask type, plus ``TYPE:LEVEL`` when
        perturbed (``random``, ``random noise:2``)."""
        p = self.perturbation
        return self.mask_type if p.kind == "none" else f"{self.mask_type} {p.label}"

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
    perturbations: Sequence[str] = ("none",),
    seed: int = 0,
    motion_shots: int = 8,
    motion_max_rotation: float = 0.0,
) -> list[Cell]:
    """The cells, perturbation major, then mask type, checked: every mask function is built
    once here.

    Args:
        masks: mask types (non-empty, distinct).
        accelerations: R values (non-empty, distinct, each > 1).
        center_fractions: one per acceleration, each in (0, 1) and < 1/R; None: 0.32 / R.
        perturbations: ``TYPE:LEVEL`` strings, ``none`` alone for the unperturbed cells
            (:func:`~mri_recon.physics.perturbations.parse_perturbations`).
        seed: the perturbations' run seed (>= 0; draws per (seed, file, slice)).
        motion_shots, motion_max_rotation: the motion type's shots and maximum rotation
            in degrees.

    Raises:
        ValueError: ``<argument>: <reason>`` (``masks``, ``accelerations``,
            ``center_fractions``, ``perturbations``, ``seed``, ``motion_shots``,
            ``motion_max_rotation``) for an empty grid, R <= 1, a centre fraction outside
            (0, 1) or asking for more columns than W/R, a list of the wrong length, a bad
            perturbation spec.
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
    seed = integer("seed", seed, 0)
    try:
        kinds = parse_perturbations(perturbations, motion_shots, motion_max_rotation)
    except ValueError as err:  # shots / max_rotation: name the grid's own arguments
        text = str(err)
        for ours, theirs in (("motion_shots", "shots"), ("motion_max_rotation", "max_rotation")):
            text = text.replace(f"{theirs}: ", f"{ours}: ", 1) if text.startswith(theirs) else text
        raise ValueError(text) from None
    cells = [Cell(str(m), r, c, p, seed) for p in kinds for m in masks for r, c in pairs]
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


def check_coils(
    cells: Sequence[Cell], root: Any, challenge: str, split: str, reader: Any = None
) -> None:
    """:func:`check_data` on the headers of every volume of the split (no k-space read), for
    a check before anything is written; a no-op without a ``coils`` cell. Files that cannot
    be read are left to the run's own checks."""
    if not any(c.perturbation.kind == "coils" for c in cells):
        return
    infos = []
    for path in list_volumes(root, challenge, split, reader):
        try:
            infos.append(read_volume_info(path, challenge, split, reader=reader))
        except DataError:
            continue
    check_data(cells, infos)


def check_data(cells: Sequence[Cell], infos: Sequence[Any]) -> None:
    """A perturbation that cannot apply to a selected volume (more coils than it has) is a
    :class:`DataError` naming the file, before anything is written."""
    for cell in cells:
        for info in infos:
            problem = cell.perturbation.data_problem(info.num_coils)
            if problem:
                raise DataError(info.path, f"perturbations: {problem}")


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
    ``figures/grid_ssim_vs_acceleration.png`` (with perturbations also
    ``figures/grid_ssim_vs_level.png``), and ``cells/``.

    Args:
        settings: the evaluation settings of every cell (its mask, perturbation and run dir
            are replaced).
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
    check_data(cells, volumes.infos)
    widths = {info.fname: info.image_shape[1] for info in volumes.infos}  # for the true R
    for cell, (fname, width) in ((c, w) for c in cells for w in _by_width(widths)):
        if not cell.mask_func()(width, seed=0).mask.any():  # before anything is written
            raise ValueError(
                f"accelerations: {cell.acceleration:g} (centre fraction "
                f"{cell.center_fraction:g}) samples no column of {fname}'s {width}"
            )
    fingerprint = {**fingerprint, "methods": list(methods)}
    if settings.metrics:
        fingerprint["metrics"] = list(settings.metrics)
    if any(c.perturbation.is_random for c in cells):
        fingerprint["perturbation_seed"] = cells[0].seed
    key = {"settings": fingerprint, **_inputs_key(volumes.infos, checkpoints)}
    key_text = json.dumps(key, indent=2, sort_keys=True, default=str) + "\n"
    _check_settings(out / "cells", fingerprint)
    columns = [*GRID_COLUMNS, *settings.metrics]
    rows: list[dict[str, Any]] = []
    for cell in cells:
        done = out / "cells" / f"{cell.name}.csv"
        key_path = out / "cells" / f"{cell.name}.inputs.json"
        if not _cell_is_current(done, key_path, key_text):
            done.unlink(missing_ok=True)  # unfinished until its inputs and rows are written
            cell_rows = _run_cell(settings, methods, cell, selection, widths)
            write_atomic(key_path, key_text)
            write_csv(done, cell_rows, columns)  # last: the cell is finished
        rows.extend(read_csv(done, _TYPES))
    boot = {"confidence": settings.confidence, "num_resamples": settings.num_resamples}
    md = grid_markdown(
        rows, cells, list(methods), **boot, reference=settings.reference, metrics=settings.metrics
    )
    coils = max(info.num_coils for info in volumes.infos)
    with Staging(out, GRID_OUTPUTS) as staging:  # the grid's outputs all or none
        write_csv(staging.path("grid.csv"), rows, columns)
        write_atomic(staging.path("grid.md"), md)
        write_figures(staging.path("figures"), rows, cells, list(methods), coils)
        staging.publish()
    return rows


def _run_cell(
    settings: EvalSettings,
    methods: Mapping[str, Reconstructor],
    cell: Cell,
    selection: tuple[Sequence[Any], Sequence[Any]],
    widths: Mapping[str, int],
) -> list[dict[str, Any]]:
    """One cell's evaluation (into ``cells/<cell>/``) and its grid rows."""
    p = cell.perturbation
    cell_settings = replace(
        settings,
        mask_name=cell.name,
        mask_func=cell.mask_func(),
        run_dir=settings.run_dir / "cells" / cell.name,
        save_reconstructions=False,
        provenance=False,
        perturbation=None if p.kind == "none" else p,
        perturbation_seed=cell.seed,
    )
    report = run_evaluation(cell_settings, methods, selection)
    return [
        {
            **row,
            "mask_type": cell.mask_type,
            "acceleration": cell.acceleration,
            "center_fraction": cell.center_fraction,
            "mask_acceleration": widths[row["fname"]] / row["mask_num_sampled"],
            "perturbation": p.kind,
            "level": None if p.kind == "none" else p.level,
            "perturbation_seed": perturbation_seed(cell.seed, row["fname"])
            if p.is_random
            else None,
        }
        for row in report.rows
    ]

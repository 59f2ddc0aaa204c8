"""The robustness grid's tables and figures: ``grid.md`` (per metric and method, (mask
type, perturbation) rows x acceleration; with a reference, paired differences, sign-flip
permutation p-values per cell and a Holm verdict per method) and the heatmaps and lines of
``figures/``. Reads the grid's rows and cells (:mod:`mri_recon.evaluation.grid`) only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mri_recon.metrics.optional import LOWER_IS_BETTER
from mri_recon.metrics.stats import describe, holm, sign_flip_pvalue
from mri_recon.viz.figures import grid_heatmap, grid_lines, level_lines, save_figure

Cells = Sequence[Any]  # grid.Cell: mask_type, acceleration, center_fraction, perturbation, row


def _label(row: Mapping[str, Any]) -> str:
    """A grid row's table row, as :attr:`mri_recon.evaluation.grid.Cell.row` writes it."""
    if row.get("perturbation", "none") == "none":
        return row["mask_type"]
    return f"{row['mask_type']} {row['perturbation']}:{row['level']:g}"


def _values(
    rows: Sequence[Mapping[str, Any]], method: str, label: str, r: float, metric: str
) -> dict[str, float]:
    """fname -> ``metric`` of one method in one cell (volumes with a target)."""
    return {
        row["fname"]: row[metric]
        for row in rows
        if row["method"] == method
        and _label(row) == label
        and row["acceleration"] == r
        and row[metric] is not None
    }


def _means(
    rows: Sequence[Mapping[str, Any]], cells: Cells, method: str, metric: str
) -> tuple[list[str], list[float], np.ndarray]:
    """Row labels, accelerations and the (rows, accelerations) array of per-cell means."""
    labels = list(dict.fromkeys(c.row for c in cells))
    accels = list(dict.fromkeys(c.acceleration for c in cells))
    table = np.full((len(labels), len(accels)), np.nan)
    for i, label in enumerate(labels):
        for j, r in enumerate(accels):
            values = _values(rows, method, label, r, metric)
            if values:
                table[i, j] = float(np.mean(list(values.values())))
    return labels, accels, table


_LABELS = {"ssim": "SSIM", "psnr": "PSNR (dB)", "hfen": "HFEN", "haarpsi": "HaarPSI",
           "vif": "VIF", "ssim_fg": "SSIM (fg)"}  # fmt: skip


def grid_markdown(
    rows: Sequence[Mapping[str, Any]],
    cells: Cells,
    methods: Sequence[str],
    confidence: float = 0.95,
    num_resamples: int = 2000,
    reference: str | None = None,
    metrics: Sequence[str] = (),
    alpha: float = 0.05,
) -> str:
    """``grid.md``: per metric (SSIM, PSNR and the optional ``metrics``) and method, a table
    of (mask type, perturbation) rows x acceleration, each cell ``mean [low, high]``
    (bootstrap interval of the mean over volumes, seed 0); with a ``reference`` among the
    methods, also each other method's paired per-volume difference (method - reference)
    per cell with its interval and the p-value of a paired sign-flip permutation test over
    volumes, and a verdict line: in how many cells the method is better / worse after
    Holm's adjustment over all of its cells (family-wise error ``alpha``)."""
    level = round(100 * confidence)
    n = len({row["fname"] for row in rows})
    accels = list(dict.fromkeys(c.acceleration for c in cells))
    labels = list(dict.fromkeys(c.row for c in cells))
    fractions = ", ".join(f"{r:g}x: {c:.4g}" for r, c in dict.fromkeys(
        (c.acceleration, c.center_fraction) for c in cells))  # fmt: skip
    out = [
        "# Robustness grid",
        "",
        f"{n} volumes per cell; each cell is the mean [{level}% bootstrap interval of the mean]"
        f" over volumes. Centre fraction per acceleration: {fractions}. Rows: mask type and"
        " perturbation (TYPE:LEVEL; none = as measured).",
    ]
    if reference in methods:
        out += [
            "",
            f"Paired cells: method - {reference} per volume, [{level}% interval], p = paired"
            " sign-flip permutation test over volumes (exact when 2^n <= "
            f"{num_resamples}; the smallest p with n = {n} volumes is {min(1.0, 2 / 2**n):.2g}"
            " when exact). Verdicts: Holm-adjusted over each method's cells at"
            f" alpha = {alpha:g}.",
        ]
        m = len(labels) * len(accels)
        p_min = 2 / 2**n if 2**n <= num_resamples else 1 / (1 + num_resamples)
        if m * p_min > alpha:
            out[-1] += (
                f" With {n} volumes and {m} cells no cell can pass ({m} x {p_min:.2g} >"
                f" {alpha:g}): the verdicts need more volumes or fewer cells."
            )
    tables = [(method, None) for method in methods]
    if reference in methods:
        tables += [(method, reference) for method in methods if method != reference]
    boot = {"confidence": confidence, "num_resamples": num_resamples}
    for metric in ("ssim", "psnr", *metrics):
        digits = 2 if metric == "psnr" else 4
        for method, ref in tables:
            title = f"{_LABELS[metric]}: {method}" + (
                f" - {ref} (paired per volume)" if ref else ""
            )
            out += ["", f"## {title}", ""]
            out.append("| cell | " + " | ".join(f"{r:g}x" for r in accels) + " |")
            out.append("|---" * (len(accels) + 1) + "|")
            tests = []
            for label in labels:
                texts = []
                for r in accels:
                    values = _values(rows, method, label, r, metric)
                    if ref:
                        base = _values(rows, ref, label, r, metric)
                        values = {f: v - base[f] for f, v in values.items() if f in base}
                    if not values:
                        texts.append("")
                        continue
                    d = describe(list(values.values()), **boot)
                    sign = "+" if ref else ""
                    text = (
                        f"{d.mean:{sign}.{digits}f} [{d.ci_low:{sign}.{digits}f}, "
                        f"{d.ci_high:{sign}.{digits}f}]"
                    )
                    if ref:
                        p = sign_flip_pvalue(list(values.values()), num_resamples=num_resamples)
                        tests.append((d.mean, p))
                        text += f" p={p:.2g}"
                    texts.append(text)
                out.append(f"| {label} | " + " | ".join(texts) + " |")
            if ref and tests:
                out += ["", _verdict(method, ref, metric, tests, alpha)]
    return "\n".join(out) + "\n"


def _verdict(
    method: str, ref: str, metric: str, tests: Sequence[tuple[float, float]], alpha: float
) -> str:
    """``<method> vs <ref> (<metric>): better in a of m cells, worse in b, ...``."""
    _, rejected = holm([p for _, p in tests], alpha)
    higher = metric not in LOWER_IS_BETTER
    better = sum(1 for (d, _), r in zip(tests, rejected, strict=True) if r and (d > 0) == higher)
    worse = sum(rejected) - better
    return (
        f"**{method} vs {ref} ({_LABELS[metric]}): better in {better} of {len(tests)} cells, "
        f"worse in {worse}, no detectable difference in {len(tests) - better - worse} "
        f"(Holm-adjusted, alpha {alpha:g}).**"
    )


def write_figures(
    folder: Path,
    rows: Sequence[Mapping[str, Any]],
    cells: Cells,
    methods: Sequence[str],
    num_coils: int,
) -> None:
    """One SSIM heatmap per method ((mask, perturbation) x acceleration), SSIM vs
    acceleration lines and, with perturbations, SSIM vs level lines."""
    curves = {}
    for method in methods:
        labels, accels, table = _means(rows, cells, method, "ssim")
        fig = grid_heatmap(table, labels, [f"{r:g}x" for r in accels], title=f"SSIM: {method}")
        save_figure(fig, folder / f"grid_ssim_{method}.png")
        curves[method] = (labels, accels, table)
    save_figure(grid_lines(curves, ylabel="SSIM"), folder / "grid_ssim_vs_acceleration.png")
    kinds = list(dict.fromkeys(c.perturbation.kind for c in cells if c.perturbation.kind != "none"))
    if kinds:
        neutral = {"noise": 0.0, "motion": 0.0, "scale": 1.0, "coils": float(num_coils)}
        save_figure(
            level_lines(_level_curves(rows, cells, methods, kinds, neutral), ylabel="SSIM"),
            folder / "grid_ssim_vs_level.png",
        )


def _level_curves(
    rows: Sequence[Mapping[str, Any]],
    cells: Cells,
    methods: Sequence[str],
    kinds: Sequence[str],
    neutral: Mapping[str, float],
) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """type -> line label (method, mask, R) -> (levels, mean SSIM); the unperturbed cell,
    where there is one, is drawn at the type's no-effect level."""
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    masks = list(dict.fromkeys(c.mask_type for c in cells))
    accels = list(dict.fromkeys(c.acceleration for c in cells))
    for kind in kinds:
        levels = sorted({c.perturbation.level for c in cells if c.perturbation.kind == kind})
        lines = {}
        for method in methods:
            for mask in masks:
                for r in accels:
                    xs, ys = [], []
                    none = _values(rows, method, mask, r, "ssim")
                    points = [(neutral[kind], none)] + [
                        (lv, _values(rows, method, f"{mask} {kind}:{lv:g}", r, "ssim"))
                        for lv in levels
                    ]
                    for x, values in sorted(points, key=lambda p: p[0]):
                        if values:
                            xs.append(x)
                            ys.append(float(np.mean(list(values.values()))))
                    name = method + (f" {mask}" if len(masks) > 1 else "")
                    lines[name + (f" {r:g}x" if len(accels) > 1 else "")] = (xs, ys)
        out[kind] = lines
    return out

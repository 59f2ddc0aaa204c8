"""The evaluation's tables: ``per_volume.csv``, ``summary.json`` and ``summary.md``.

``per_volume.csv`` has one row per (volume, method); its leading columns are an interface
other tools read: ``fname,acquisition,method,mask,acceleration,center_fraction,nmse,psnr,
ssim,seconds_per_slice``, followed by ``num_slices,challenge,split`` and the mask's provenance
``mask_type,mask_seed,mask_num_sampled,num_low_frequencies,mask_hash`` (see
:class:`~mri_recon.evaluation.volumes.VolumeMask`), then the optional metrics the run
computes (``metrics=[...]``: ``hfen,haarpsi,vif,ssim_fg``, :mod:`mri_recon.metrics.optional`)
in that order. Metric cells are empty for volumes
without a target (test split); ``mask`` is the mask config name, or "stored" for files
evaluated with their own stored mask (then ``mask_type`` is "stored" and ``mask_seed`` empty).

The summary gives, per method and acceleration and split by acquisition (plus "all"), the
mean, std and 95% bootstrap interval over volumes of each metric and of the seconds per
slice, and the paired per-volume differences of every method against a reference method
(zero-filled by default; e.g. one trained model against another).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mri_recon.evaluation.outputs import Staging, write_json
from mri_recon.evaluation.volumes import SkippedFile
from mri_recon.fileio import write_atomic, write_csv
from mri_recon.metrics.optional import ALL_METRICS
from mri_recon.metrics.stats import Interval, paired_differences, summarize
from mri_recon.physics.masks import MASK_COLUMNS

CSV_COLUMNS = (
    "fname",
    "acquisition",
    "method",
    "mask",
    "acceleration",
    "center_fraction",
    "nmse",
    "psnr",
    "ssim",
    "seconds_per_slice",
)
EXTRA_COLUMNS = ("num_slices", "challenge", "split", *MASK_COLUMNS)
REFERENCE = "zero_filled"
TIMING = "seconds_per_slice"

_LABELS = {
    "nmse": "NMSE",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "hfen": "HFEN",
    "haarpsi": "HaarPSI",
    "vif": "VIF",
    "ssim_fg": "SSIM (fg)",
    TIMING: "s/slice",
}
_FORMATS = {"nmse": ".4g", "psnr": ".2f", TIMING: ".3g"}


def scored_metrics(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The image metrics some row has a finite number for (none on the test split): one
    volume without a value never removes a metric from the summary."""
    return [m for m in ALL_METRICS if any(_finite(r.get(m)) for r in rows)]


def missing_values(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, int]:
    """Per metric, how many rows have no finite value (left out of its means)."""
    counts = {m: sum(not _finite(r.get(m)) for r in rows) for m in metrics}
    return {m: n for m, n in counts.items() if n}


def _per_metric(
    summary_fn: Any, rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], **kwargs: Any
) -> list[dict[str, Any]]:
    """``summary_fn(rows, metrics)`` (``summarize``/``paired_differences``) with each metric
    taken over the rows that have a finite value of it; a group without one gets None."""
    entries = summary_fn(rows, [], **kwargs)
    labels = [k for k in entries[0] if k != "n"] if entries else []
    index = {tuple(e[k] for k in labels): e for e in entries}
    for m in metrics:
        for e in index.values():
            e.setdefault(m, None)
        for sub in summary_fn([r for r in rows if _finite(r.get(m))], [m], **kwargs):
            index[tuple(sub[k] for k in labels)][m] = sub[m]
    return entries


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _jsonable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: (v.as_dict() if isinstance(v, Interval) else v) for k, v in e.items()} for e in entries
    ]


def build_summary(
    rows: Sequence[Mapping[str, Any]],
    skipped: Sequence[SkippedFile],
    run: Mapping[str, Any],
    *,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
    reference: str = REFERENCE,
) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """Summaries and paired differences of the CSV rows.

    Args:
        rows: the per-volume rows.
        skipped: files left out, listed in the summary.
        run: run description (data, mask, methods, ...) stored under ``"run"``.
        confidence, num_resamples, seed: bootstrap settings.
        reference: the method every other is paired with (no differences if it is absent).

    Returns:
        (JSON-ready summary, summary entries, paired-difference entries); entries hold
        :class:`Interval` values per metric.
    """
    metrics = scored_metrics(rows)
    boot = {"confidence": confidence, "num_resamples": num_resamples, "seed": seed}
    entries = _per_metric(summarize, rows, [*metrics, TIMING], **boot)
    methods = {r["method"] for r in rows}
    paired = (
        _per_metric(paired_differences, rows, metrics, reference=reference, **boot)
        if metrics and reference in methods
        else []
    )
    summary = {
        "run": dict(run),
        "num_volumes": len({r["fname"] for r in rows}),
        "metrics": metrics,
        "missing": missing_values(rows, metrics),
        "bootstrap": boot,
        "reference": reference,
        "summary": _jsonable(entries),
        "paired_differences": _jsonable(paired),
        "skipped": [{"fname": s.fname, "reason": s.reason} for s in skipped],
    }
    return summary, entries, paired


def _cell(iv: Interval | None, metric: str) -> str:
    if iv is None:
        return "–"
    f = _FORMATS.get(metric, ".4f")
    std = "" if math.isnan(iv.std) else f" ± {iv.std:{f}}"
    return f"{iv.mean:{f}}{std} [{iv.ci_low:{f}}, {iv.ci_high:{f}}]"


def _table(entries: Sequence[Mapping[str, Any]], metrics: Sequence[str], delta: bool) -> str:
    labels = [("Δ" if delta else "") + _LABELS[m] for m in metrics]
    lines = [
        "| method | R | acquisition | n | " + " | ".join(labels) + " |",
        "|" + "---|" * (4 + len(metrics)),
    ]
    for e in entries:
        cells = [_cell(e[m], m) for m in metrics]
        lines.append(
            f"| {e['method']} | {e['acceleration']:g} | {e['acquisition']} | "
            f"{e['n']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def summary_markdown(summary: Mapping[str, Any], entries: list[dict], paired: list[dict]) -> str:
    """The Markdown report: run line, metric table, paired differences, skipped files."""
    run, metrics = summary["run"], summary["metrics"]
    level = round(100 * summary["bootstrap"]["confidence"])
    out = [
        f"# Evaluation: {run.get('challenge')} {run.get('split')}, mask {run.get('mask')}",
        "",
        (
            f"{summary['num_volumes']} volumes; cells are mean ± std [{level}% bootstrap "
            "interval of the mean] over volumes."
        ),
        "",
        _table(entries, [*metrics, TIMING], delta=False),
    ]
    if not metrics:
        out += ["", "No targets in this split: reconstructions and timings only."]
    for metric, count in summary.get("missing", {}).items():
        out += [
            "",
            f"{_LABELS[metric]}: no finite value in {count} (volume, method) row(s), "
            "left out of its means (the interval's n counts the rest).",
        ]
    if paired:
        ref = summary.get("reference", REFERENCE)
        heading = f"## Paired differences against {ref} (method − {ref}, per volume)"
        out += ["", heading, "", _table(paired, metrics, delta=True)]
    if summary["skipped"]:
        out += ["", f"## Skipped files ({len(summary['skipped'])})", ""]
        out += [f"- {s['fname']}: {s['reason']}" for s in summary["skipped"]]
    return "\n".join(out) + "\n"


def write_report(
    staging: Staging,
    rows: Sequence[Mapping[str, Any]],
    skipped: Sequence[SkippedFile],
    run: Mapping[str, Any],
    **bootstrap: Any,
) -> tuple[dict[str, Any], str]:
    """Write ``per_volume.csv``, ``summary.json`` and ``summary.md`` into ``staging``.

    Args:
        staging, rows, skipped: where to write, the per-volume rows, files left out.
        run: run description stored in the summary (``challenge``, ``split``, ``mask``, ...;
            ``provenance``: the run record the summary points at).
        **bootstrap: ``confidence``, ``num_resamples``, ``seed``, ``reference`` of
            :func:`build_summary`, and ``optional``: the optional metric columns
            appended to the CSV.

    Returns:
        (the JSON summary, the Markdown text).
    """
    optional = bootstrap.pop("optional", ())
    write_csv(staging.path("per_volume.csv"), rows, [*CSV_COLUMNS, *EXTRA_COLUMNS, *optional])
    summary, entries, paired = build_summary(rows, skipped, run, **bootstrap)
    markdown = summary_markdown(summary, entries, paired)
    if run.get("provenance"):
        markdown += (
            "\nRun record (code, data hashes, masks, versions, hardware, timings): "
            "`provenance.json`; `mri-recon-replay <this directory>` re-runs and diffs it.\n"
        )
    write_json(staging.path("summary.json"), summary)
    write_atomic(staging.path("summary.md"), markdown)
    return summary, markdown

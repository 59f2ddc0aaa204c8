"""Model cards: what a trained checkpoint is, how it was made and how to use it.

At the end of training, ``model_card.md`` and ``model_card.json`` are written beside
``best.ckpt`` from what the run used and measured, never re-derived: the run's provenance
segment (config, hashed data files, masks, resources, code commit), the final validation's
per-volume rows (metrics with bootstrap intervals over volumes, :mod:`mri_recon.metrics.stats`)
and the checkpoint itself (architecture and parameter count).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mri_recon.data.fastmri import read_volume_info
from mri_recon.data.formats import get_reader
from mri_recon.fileio import write_atomic
from mri_recon.lit.checkpoint import build_from_spec, read_checkpoint
from mri_recon.metrics.stats import describe
from mri_recon.runinfo.record import read_record

METRICS = ("ssim", "psnr", "nmse")
# data.format -> the dataset family's own name (docs/DATASETS.md)
FORMAT_NAMES = {"fastmri": "fastMRI", "cc359": "Calgary-Campinas (CC359)", "m4raw": "M4Raw",
                "cmrxrecon": "CMRxRecon"}  # fmt: skip
SYNTHETIC_MANIFEST = "synthetic_{challenge}.json"  # what mri-recon-data synth writes


def _training_data(segment: Mapping[str, Any]) -> dict[str, Any]:
    """Files and slices per split of the data the run hashed, and the sha256 of that
    manifest (the canonical JSON of its ``data.files``)."""
    files = segment.get("data", {}).get("files") or []
    data = segment.get("config", {}).get("data", {})
    reader = get_reader(data.get("format") or "fastmri", data.get("format_options"))
    splits: dict[str, dict[str, int]] = {}
    for entry in files:
        split = reader.split_of(Path(entry["path"]))[1] or "unknown"
        count = splits.setdefault(split, {"files": 0, "slices": 0})
        count["files"] += 1
        # allow_unmasked: a training file without target (SSDU) is counted too
        info = read_volume_info(entry["path"], allow_unmasked=True, reader=reader)
        count["slices"] += info.num_slices
    canonical = json.dumps(files, sort_keys=True, separators=(",", ":")).encode()
    root = segment.get("data", {}).get("root")
    challenge = segment.get("config", {}).get("data", {}).get("challenge", "")
    synthetic = (
        root is not None and (Path(root) / SYNTHETIC_MANIFEST.format(challenge=challenge)).is_file()
    )
    return {
        "root": root,
        "challenge": challenge,
        "format": reader.name,
        "format_options": dict(data.get("format_options") or {}),
        "splits": splits,
        "manifest_sha256": hashlib.sha256(canonical).hexdigest(),
        "synthetic": synthetic,
    }


def _validation(volumes: Sequence[Mapping[str, Any]], seed: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"volumes": len(volumes), "interval": "95% bootstrap over volumes"}
    for metric in METRICS:
        values = [float(v[metric]) for v in volumes if v.get(metric) is not None]
        out[metric] = describe(values, seed=seed).as_dict() if values else None
    return out


def build_model_card(
    best_ckpt: str | os.PathLike,
    segment: Mapping[str, Any],
    volumes: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, float],
) -> dict[str, Any]:
    """The model card of ``best_ckpt`` as a JSON-ready dict.

    Args:
        best_ckpt: the checkpoint the card describes.
        segment: the run's provenance segment (``provenance.json``'s last).
        volumes: the final validation's per-volume rows (``fname, num_slices, nmse, psnr,
            ssim``).
        metrics: the run's final metrics (``epoch``, ``global_step``, ``val/*``).
    """
    ckpt_path = Path(best_ckpt)
    info = read_checkpoint(ckpt_path)["mri_recon"]
    net = build_from_spec(info["net_spec"], where=str(ckpt_path))
    config = segment.get("config", {})
    resources = segment.get("resources") or {}
    data = _training_data(segment)
    run_dir = ckpt_path.resolve().parent.parent
    challenge, root, fmt = data["challenge"], data["root"], data["format"]
    # the data as the card's commands must read them again
    fmt_args = "" if fmt == "fastmri" else f" data.format={fmt}"
    if data["format_options"]:
        options = ",".join(f"{k}:{json.dumps(v)}" for k, v in data["format_options"].items())
        fmt_args += f" 'data.format_options={{{options}}}'"
    limits = [
        "research use only: not a medical device, not for diagnosis",
        f"trained on {challenge} data with the masks below; other sampling patterns, "
        "accelerations, anatomies, contrasts or scanners are out of distribution",
    ]
    if data["synthetic"]:
        limits.insert(0, "trained on synthetic phantoms (mri_recon.data.synthetic), not on "
                      "scanner data: it says nothing about clinical images")  # fmt: skip
    code = segment.get("code") or {}
    ckpt = str(ckpt_path.resolve())
    return {
        "model_card_version": 1,
        "checkpoint": {"path": ckpt, "name": info.get("name")},
        "architecture": {
            "net_spec": info["net_spec"],
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "training_data": data,
        "masks": segment.get("masks", {}).get("mask_func"),
        "budget": {
            "epochs": metrics.get("epoch"),
            "steps": metrics.get("global_step"),
            "wall_hours": _hours(resources.get("wall_seconds")),
            "gpu_hours": resources.get("gpu_hours"),
            "cpu_core_hours": resources.get("cpu_core_hours"),
            "trainer": {
                k: config.get("trainer", {}).get(k) for k in ("accelerator", "devices", "precision")
            },
        },
        "validation": _validation(volumes, seed=int(config.get("seed") or 0)),
        "intended_use": f"accelerated MRI reconstruction research on {FORMAT_NAMES.get(fmt, fmt)}"
        f"-format {challenge} k-space",
        "limits": limits,
        "commit": {"commit": code.get("commit"), "dirty": code.get("dirty")} if code else None,
        "commands": {
            "evaluate": f"mri-recon-eval data.root={root} data.challenge={challenge}{fmt_args} "
            f"data.split=val +checkpoints.model={ckpt} 'methods=[zero_filled,model]' "
            f"hydra.run.dir={run_dir}/eval",
            "predict": f"mri-recon-predict input=PATH{fmt_args} +checkpoints.model={ckpt} "
            "'methods=[model]' hydra.run.dir=OUT",
        },
    }


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 6)


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """The card as Markdown (the same facts as the JSON)."""
    arch, data, budget, val = (
        card["architecture"],
        card["training_data"],
        card["budget"],
        card["validation"],
    )
    spec = arch["net_spec"]
    lines = [
        f"# Model card: {Path(card['checkpoint']['path']).name} ({card['checkpoint']['name']})",
        "",
        f"**Architecture**: `{spec['_target_']}` "
        + ", ".join(f"{k}={v}" for k, v in spec.items() if k != "_target_")
        + f"; {arch['parameters']:,} parameters.",
        "",
        f"**Training data**: {data['challenge']} ({data['format']}"
        f"{' ' + json.dumps(data['format_options']) if data['format_options'] else ''}) under "
        f"`{data['root']}`; "
        + "; ".join(
            f"{s}: {c['files']} files, {c['slices']} slices" for s, c in data["splits"].items()
        )
        + f"; manifest sha256 `{data['manifest_sha256']}`.",
        "",
        f"**Masks**: {json.dumps(card['masks'])}.",
        "",
        f"**Budget**: {budget['epochs']} epochs, {budget['steps']} steps, wall "
        f"{budget['wall_hours']} h, GPU {budget['gpu_hours']} h, CPU {budget['cpu_core_hours']} "
        f"core-h ({budget['trainer']}).",
        "",
        f"**Validation** ({val['volumes']} volumes, {val['interval']}):",
        "",
        "| metric | mean | 95% interval | sd |",
        "|---|---|---|---|",
    ]
    for metric in METRICS:
        m = val.get(metric)
        if m:
            sd = "n/a" if m["std"] is None else f"{m['std']:.4g}"
            lines.append(
                f"| {metric} | {m['mean']:.4g} | [{m['ci_low']:.4g}, {m['ci_high']:.4g}] | {sd} |"
            )
    commit = card["commit"] or {}
    lines += [
        "",
        f"**Intended use**: {card['intended_use']}.",
        "",
        "**Limits**:",
        *(f"- {limit}" for limit in card["limits"]),
        "",
        f"**Code**: commit {commit.get('commit') or 'unknown (not a git checkout)'}"
        + (" (with uncommitted changes)" if commit.get("dirty") else ""),
        "",
        "**Use it**:",
        "",
        "```",
        card["commands"]["evaluate"],
        card["commands"]["predict"],
        "```",
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    best_ckpt: str | os.PathLike,
    segment: Mapping[str, Any],
    volumes: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, float],
) -> tuple[Path, Path]:
    """Write ``model_card.json`` and ``model_card.md`` beside ``best_ckpt`` (atomically);
    returns their paths."""
    card = build_model_card(best_ckpt, segment, volumes, metrics)
    folder = Path(best_ckpt).parent
    text = json.dumps(card, indent=2, allow_nan=False) + "\n"
    return (
        write_atomic(folder / "model_card.json", text),
        write_atomic(folder / "model_card.md", model_card_markdown(card)),
    )


def write_run_model_card(run_dir: str | os.PathLike, result: Any) -> tuple[Path, ...]:
    """The model card of a finished training run (``lit.training.RunResult``) beside its
    ``best.ckpt``, from the run's last ``provenance.json`` segment; () without a best
    checkpoint or a record."""
    record_file = Path(run_dir) / "provenance.json"
    if not result.best_checkpoint or not Path(result.best_checkpoint).is_file():
        return ()
    if not record_file.is_file():
        return ()
    segment = read_record(run_dir)["segments"][-1]
    return write_model_card(result.best_checkpoint, segment, result.volumes, result.metrics)

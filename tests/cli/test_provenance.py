"""``provenance.json`` of training and evaluation runs: what was run (code, config, data
hashes, masks, versions, hardware) and what it cost, a segment per process, appended on
resume."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import h5py
import pytest

from mri_recon.cli.evaluate import main as eval_main
from mri_recon.data import fastmri
from mri_recon.physics.masks import MASK_COLUMNS, ColumnMaskFunc, file_seed, mask_hash

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hydra_config_reset")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_training_record_and_a_resume_appends_a_segment(tiny_data, train_run, tmp_path) -> None:
    out = tmp_path / "run"
    train_run(tiny_data, out, "trainer.max_epochs=1")
    first = json.loads((out / "provenance.json").read_text())
    assert first["format_version"] == 1 and first["kind"] == "train"
    (seg,) = first["segments"]
    assert seg["status"] == "completed" and seg["resumed_from"] is None
    assert seg["config"]["trainer"]["max_epochs"] == 1  # resolved, overrides applied
    assert seg["config"]["data"]["root"] == str(tiny_data)
    assert seg["versions"]["torch"] and seg["hardware"]["cpu_cores"] >= 1
    files = sorted((tiny_data / "singlecoil_train").glob("*.h5"))
    files += sorted((tiny_data / "singlecoil_val").glob("*.h5"))
    assert [f["path"] for f in seg["data"]["files"]] == [str(p) for p in files]
    assert [f["hash"] for f in seg["data"]["files"]] == [_sha256(p) for p in files]
    masks = seg["masks"]
    assert masks["mask_func"] == {
        "mask_type": "random",
        "center_fractions": [0.08],
        "accelerations": [4.0],
    }
    assert masks["seed"] == 0 and "epoch" in masks["training"]
    for entry in masks["validation_volumes"]:
        with h5py.File(tiny_data / "singlecoil_val" / entry["fname"]) as hf:
            width = hf["kspace"].shape[-1]
        mask = ColumnMaskFunc("random", [0.08], [4])(width, file_seed(entry["fname"])).mask
        assert entry["mask_hash"] == mask_hash(mask)
        assert entry["mask_num_sampled"] == int(mask.sum())
    res = seg["resources"]
    # 3 training slices, 6 validation slices after the epoch, 6 in the final validation
    assert res["slices"] == 3 + 6 + 6
    assert res["wall_seconds"] > 0 and res["cpu_core_hours"] > 0 and res["gpu_hours"] is None
    assert res["slices_per_second"] == pytest.approx(15 / res["wall_seconds"], rel=0.01)
    validated = seg["outputs"]["validated_checkpoint"]
    assert validated["path"] == str(out / "checkpoints/last.ckpt")
    assert validated["hash"] == _sha256(out / "checkpoints/last.ckpt")

    last = out / "checkpoints/last.ckpt"
    last_hash = _sha256(last)
    train_run(tiny_data, out, "trainer.max_epochs=2", f"ckpt_path={last}")
    record = json.loads((out / "provenance.json").read_text())
    assert record["segments"][0] == seg  # never replaced
    second = record["segments"][1]
    assert second["status"] == "completed" and second["resumed_from"] == str(last)
    assert second["checkpoints"][0]["hash"] == last_hash  # the checkpoint it resumed from
    assert second["resources"]["slices"] == 3 + 6 + 6  # the second epoch only


def test_evaluation_record_and_summary_pointer(tiny_data, tmp_path, monkeypatch) -> None:
    parses = []
    real_parse = fastmri.parse_ismrmrd_header
    monkeypatch.setattr(
        fastmri, "parse_ismrmrd_header", lambda raw: parses.append(1) or real_parse(raw)
    )
    run_dir = tmp_path / "eval"
    eval_main(
        [
            f"data.root={tiny_data}",
            "methods=[zero_filled]",
            "mask=equispaced_fraction_8x",
            "num_figures=0",
            "progress=false",
            f"hydra.run.dir={run_dir}",
        ]
    )
    record = json.loads((run_dir / "provenance.json").read_text())
    (seg,) = record["segments"]
    assert record["kind"] == "eval" and seg["status"] == "completed"
    assert seg["hydra"]["choices"]["mask"] == "equispaced_fraction_8x"
    assert "mask=equispaced_fraction_8x" in seg["hydra"]["overrides"]
    val = sorted((tiny_data / "singlecoil_val").glob("*.h5"))
    assert [(f["name"], f["hash"]) for f in seg["data"]["files"]] == [
        (p.name, _sha256(p)) for p in val
    ]
    assert seg["checkpoints"] == []
    vols = seg["masks"]["volumes"]
    assert [v["fname"] for v in vols] == [p.name for p in val]
    assert {v["mask_type"] for v in vols} == {"equispaced_fraction"}
    assert all(v["num_low_frequencies"] > 0 for v in vols)
    # one header parse per volume for the whole command, the record included; the record's
    # masks are the ones per_volume.csv scored, not drawn again
    assert len(parses) == len(val)
    with open(run_dir / "per_volume.csv", newline="") as f:
        scored = {r["fname"]: r for r in csv.DictReader(f)}
    for v in vols:
        row = scored[v["fname"]]
        assert [str(v[c]) for c in MASK_COLUMNS] == [row[c] for c in MASK_COLUMNS]
    assert seg["resources"]["slices"] == 6 and seg["outputs"]["table"] == "per_volume.csv"
    assert "`provenance.json`" in (run_dir / "summary.md").read_text()


def test_a_node_that_resolves_only_inside_hydra_leaves_the_others_resolved() -> None:
    # a composed config with its hydra node (tests, notebooks) cannot resolve ${hydra:...}
    # outside Hydra; the record used to keep *every* interpolation as written, so
    # data.challenge reached the data layer as '${format_challenge:${.format},singlecoil}'
    from omegaconf import OmegaConf

    from mri_recon.cli.provenance import resolved_config

    cfg = OmegaConf.create(
        {
            "hydra": {"run": {"dir": "${hydra:runtime.output_dir}"}},
            "data": {"format": "cc359", "challenge": "${format_challenge:${.format},singlecoil}"},
            "seed": "${data.format}",
        }
    )
    out = resolved_config(cfg)
    assert out["data"] == {"format": "cc359", "challenge": "multicoil"}
    assert out["seed"] == "cc359"
    assert out["hydra"] == {"run": {"dir": "${hydra:runtime.output_dir}"}}

"""A training run's model card and its experiment trackers (MLflow's local store; W&B offline)."""

from __future__ import annotations

import json

import pytest


def _train(train_run, root, out, logger: str) -> dict:
    return train_run(root, out, f"logger={logger}", "validate_ckpt=best")


def test_mlflow_run_reads_back_and_the_model_card_is_beside_best_ckpt(
    tiny_data, tmp_path, train_run
) -> None:
    mlflow = pytest.importorskip("mlflow")
    out = tmp_path / "run"
    metrics = _train(train_run, tiny_data, out, "mlflow")
    card = json.loads((out / "checkpoints/model_card.json").read_text())
    assert (out / "checkpoints/model_card.md").is_file()
    assert card["checkpoint"]["path"] == str((out / "checkpoints/best.ckpt").resolve())
    assert card["training_data"]["splits"]["train"]["files"] == 2
    assert card["training_data"]["synthetic"] is True
    assert card["validation"]["ssim"]["mean"] == pytest.approx(metrics["val/ssim"], rel=1e-5)
    assert card["budget"]["epochs"] == metrics["epoch"]
    assert (out / "csv").is_dir() and (out / "tensorboard").is_dir()  # beside the defaults
    mlflow.set_tracking_uri(f"sqlite:///{out}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["train"])
    assert len(runs) == 1
    assert runs["metrics.val/ssim"][0] == pytest.approx(metrics["val/ssim"], rel=1e-6)
    client = mlflow.tracking.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(runs["run_id"][0])}
    assert {"config.yaml", "val_volumes.csv", "metrics.json", "model_card.md"} <= artifacts


def test_wandb_logs_offline(tiny_data, tmp_path, train_run) -> None:
    pytest.importorskip("wandb")
    out = tmp_path / "run"
    _train(train_run, tiny_data, out, "wandb")
    assert list((out / "wandb").glob("offline-run-*"))

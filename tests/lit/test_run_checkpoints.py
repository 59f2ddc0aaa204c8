"""mri_recon.lit.run_checkpoints: checkpoints written atomically (a kill or a failure while
saving keeps the previous file), and best-checkpoint tracking that survives a moved run."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from mri_recon.fileio import umask_mode
from mri_recon.lit.run_checkpoints import AtomicCheckpointIO, RunCheckpoint

# save epoch 1 to argv[1], then start saving epoch 2 and get killed half-way through the bytes
KILLED_MID_SAVE = """
import io, os, signal, sys, torch
from mri_recon.lit.run_checkpoints import AtomicCheckpointIO
path, save = sys.argv[1], torch.save
checkpoint_io = AtomicCheckpointIO()
checkpoint_io.save_checkpoint({"epoch": 1, "w": torch.ones(50_000)}, path)
def killed_save(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    save(obj, buffer, *args, **kwargs)
    f.write(buffer.getvalue()[: buffer.tell() // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = killed_save
checkpoint_io.save_checkpoint({"epoch": 2, "w": torch.zeros(50_000)}, path)
"""


def _epoch(path: Path) -> int:
    return torch.load(path, weights_only=False)["epoch"]


def test_a_kill_while_saving_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    last = tmp_path / "checkpoints" / "last.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.run(
        [sys.executable, "-c", KILLED_MID_SAVE, str(last)], env=env, capture_output=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert _epoch(last) == 1  # the previous checkpoint, whole
    assert stat.S_IMODE(last.stat().st_mode) == umask_mode()
    (stale,) = last.parent.glob(".last.ckpt.*.tmp")  # the half-written temporary file
    AtomicCheckpointIO().save_checkpoint({"epoch": 3}, last)
    assert _epoch(last) == 3 and not stale.exists()  # the next save clears it
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]


def test_a_failure_while_saving_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 1}, last)

    def full_disk(obj, f, *args, **kwargs) -> None:
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        AtomicCheckpointIO().save_checkpoint({"epoch": 2}, last)
    monkeypatch.undo()
    assert _epoch(last) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary left


def test_best_checkpoint_tracking_survives_a_moved_run(tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "checkpoints", tmp_path / "new" / "checkpoints"
    saved = RunCheckpoint(dirpath=old, filename="best", monitor="val/ssim", mode="max")
    saved.best_model_score = torch.tensor(0.61)
    saved.best_model_path = saved.kth_best_model_path = str(old / "best.ckpt")
    saved.best_k_models = {str(old / "best.ckpt"): torch.tensor(0.61)}
    saved.kth_value = torch.tensor(0.61)
    saved.last_model_path = str(old / "last.ckpt")

    moved = RunCheckpoint(dirpath=new, filename="best", monitor="val/ssim", mode="max")
    moved.load_state_dict(saved.state_dict())
    assert moved.best_model_score == pytest.approx(0.61)  # Lightning would drop it
    assert moved.best_model_path == moved.kth_best_model_path == str(new / "best.ckpt")
    assert moved.best_k_models == {str(new / "best.ckpt"): pytest.approx(0.61)}
    assert moved.last_model_path == str(new / "last.ckpt")


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = (self.w * batch).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/ssim", -self.w.sum())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_run_stopped_before_its_first_validation_still_writes_last(tmp_path: Path) -> None:
    # a max_time/max_steps stop before the first validation used to leave no checkpoint at all
    loader = torch.utils.data.DataLoader(torch.randn(8, 3), batch_size=2)
    callback = RunCheckpoint(
        dirpath=tmp_path, filename="best", monitor="val/ssim", mode="max", save_last=True
    )
    trainer = pl.Trainer(
        max_steps=3, check_val_every_n_epoch=5, callbacks=[callback], logger=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(_Tiny(), loader, loader)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 3
    (state,) = [v for k, v in saved["callbacks"].items() if "RunCheckpoint" in k]
    assert set(state["train_metrics"]) == {"train/loss"}

"""``train(cfg)`` and ``mri-recon-train`` end to end on the tiny synthetic dataset (CPU).

Runs are tiny (U-Net chans 4, 2 pooling levels, 3 training batches per epoch) so the whole
file takes about a minute and a half on 2 cores; the DDP test starts 2 gloo processes
through the CLI, the resume test kills a training process and resumes it with the README's
command.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mri_recon.cli.config import config_dir
from mri_recon.cli.train import build_group, build_module, main, train
from mri_recon.data.fastmri import DataError
from mri_recon.data.synthetic import generate_dataset
from mri_recon.lit.checkpoint import load_reconstructor

BIN = Path(sys.executable).parent
# a tiny network and 3 training batches per epoch; every validation slice is seen
TINY = [
    "debug=fast",
    "model.chans=4",
    "model.num_pool_layers=2",
    "data.sample_rate=1.0",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1.0",
]
VAL_KEYS = ("val/ssim", "val/psnr", "val/nmse")


pytestmark = pytest.mark.usefixtures("one_torch_thread", "hydra_config_reset")


@pytest.fixture
def hydra_logging() -> Any:
    """Undo the logging setup of an in-process Hydra app (it replaces the root handlers)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], root.level = saved


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic single-coil dataset (2 train / 2 val volumes x 3 slices)."""
    root = tmp_path_factory.mktemp("tiny_synthetic")
    generate_dataset(root, preset="tiny", challenge="singlecoil", seed=0, progress=False)
    return root


def compose_train(root: Path, out: Path, *overrides: str) -> DictConfig:
    """``configs/train.yaml`` composed on the tiny data, writing into ``out``."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(
            "train", overrides=[*TINY, f"data.root={root}", f"paths.output_dir={out}", *overrides]
        )


def run(root: Path, out: Path, *overrides: str) -> dict[str, float]:
    return train(compose_train(root, out, *overrides))


def _csv_rows(run_dir: Path) -> list[dict[str, str]]:
    files = sorted(run_dir.glob("csv/*/metrics.csv"))
    assert files, f"no csv/*/metrics.csv under {run_dir}"
    with files[-1].open() as f:
        return list(csv.DictReader(f))


def _volumes(path: Path) -> dict[str, dict[str, float]]:
    with path.open() as f:
        return {
            row["fname"]: {k: float(v) for k, v in row.items() if k != "fname"}
            for row in csv.DictReader(f)
        }


@pytest.fixture(scope="module")
def two_epochs(
    tiny_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, float]]:
    """An uninterrupted 2-epoch run (validating the last checkpoint)."""
    out = tmp_path_factory.mktemp("two_epochs")
    return out, run(tiny_root, out, "trainer.max_epochs=2", "validate_ckpt=last")


def test_debug_run_writes_checkpoints_logs_and_metrics(two_epochs: tuple[Path, dict]) -> None:
    out, metrics = two_epochs
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "checkpoints" / "best.ckpt").is_file()
    assert list(out.glob("tensorboard/*/events.out.tfevents.*"))
    rows = _csv_rows(out)
    losses = [float(r[k]) for r in rows for k in r if k.startswith("train/loss") and r[k]]
    ssims = [float(r["val/ssim"]) for r in rows if r.get("val/ssim")]
    assert losses and all(math.isfinite(v) for v in losses)
    # one per epoch, then the final validation of the last checkpoint (same weights)
    assert len(ssims) == 3 and all(0.0 < v < 1.0 for v in ssims) and ssims[1] == ssims[2]
    assert metrics["global_step"] == 6 and metrics["epoch"] == 2
    assert 0.0 < metrics["val/ssim"] < 1.0 and metrics["val/nmse"] > 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["metrics"] == pytest.approx(metrics)
    volumes = _volumes(out / "val_volumes.csv")
    assert len(volumes) == 2 and all(v["num_slices"] == 3 for v in volumes.values())
    mean_ssim = sum(v["ssim"] for v in volumes.values()) / 2
    assert mean_ssim == pytest.approx(metrics["val/ssim"], abs=1e-6)


def test_checkpoint_is_self_contained(two_epochs: tuple[Path, dict]) -> None:
    out, _ = two_epochs
    recon = load_reconstructor(out / "checkpoints" / "last.ckpt")
    assert recon.net.chans == 4 and recon.net.num_pool_layers == 2
    masked_kspace = torch.randn(2, 1, 32, 20, dtype=torch.complex64)
    mask = torch.ones(2, 20, dtype=torch.bool)
    assert recon(masked_kspace, mask, None, (16, 16)).shape == (2, 16, 16)


def test_bf16_run_is_close_to_fp32(
    two_epochs: tuple[Path, dict], tiny_root: Path, tmp_path: Path
) -> None:
    _, fp32 = two_epochs
    bf16 = run(
        tiny_root,
        tmp_path,
        "trainer.max_epochs=2",
        "validate_ckpt=last",
        "trainer.precision=bf16-mixed",
    )
    assert all(math.isfinite(v) for v in bf16.values())
    assert bf16["val/ssim"] == pytest.approx(fp32["val/ssim"], abs=0.02)
    assert bf16["val/psnr"] == pytest.approx(fp32["val/psnr"], abs=0.3)
    assert bf16["train/loss"] == pytest.approx(fp32["train/loss"], rel=0.05)


@pytest.mark.slow
def test_compiled_run_matches_eager_and_best_ckpt_loads_eagerly(
    two_epochs: tuple[Path, dict], tiny_root: Path, tmp_path: Path
) -> None:
    """module.compile=default (about 2 minutes of compiling on 2 cores with a cold cache)."""
    _, eager = two_epochs
    compiled = run(
        tiny_root, tmp_path, "trainer.max_epochs=2", "validate_ckpt=last", "module.compile=default"
    )
    assert compiled["val/ssim"] == pytest.approx(eager["val/ssim"], abs=1e-4)
    state = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=False)["state_dict"]
    assert not any("_orig_mod" in key for key in state)
    recon = load_reconstructor(tmp_path / "checkpoints" / "best.ckpt")
    assert recon.net.chans == 4 and not hasattr(recon.net, "_orig_mod")


def test_resume_continues_the_step_count_and_matches(
    two_epochs: tuple[Path, dict], tiny_root: Path, tmp_path: Path
) -> None:
    _, uninterrupted = two_epochs
    first = run(tiny_root, tmp_path, "trainer.max_epochs=1", "validate_ckpt=last")
    assert first["global_step"] == 3
    last = tmp_path / "checkpoints" / "last.ckpt"
    # train longer: the same run, resumed in its directory with a higher max_epochs
    resumed = run(
        tiny_root, tmp_path, "trainer.max_epochs=2", "validate_ckpt=last", f"ckpt_path={last}"
    )
    assert resumed["global_step"] == uninterrupted["global_step"] == 6
    steps = [int(r["step"]) for r in _csv_rows(tmp_path) if r.get("train/loss")]
    assert min(steps) >= 3  # the resumed run logs from step 3 on, not from 0
    for key in VAL_KEYS:
        assert resumed[key] == pytest.approx(uninterrupted[key], abs=1e-5), key
    # a resume continues the run that wrote the checkpoint, not another one
    with pytest.raises(ValueError, match=r"last\.ckpt: not in this run's checkpoint folder"):
        run(tiny_root, tmp_path / "other", "trainer.max_epochs=2", f"ckpt_path={last}")
    assert not (tmp_path / "other").exists()


def test_masks_csv_lists_every_epoch_and_a_resume_rewrites_none(
    two_epochs: tuple[Path, dict], tiny_root: Path, tmp_path: Path
) -> None:
    """``masks.csv``: one row per training slice and epoch; a run killed after epoch 1 and
    resumed in its directory ends with the uninterrupted run's file, byte for byte."""
    out, _ = two_epochs
    with open(out / "masks.csv") as f:
        rows = list(csv.DictReader(f))
    num_train = sum(1 for r in rows if r["epoch"] == "0")
    assert num_train == 6 and len(rows) == 2 * num_train  # 2 volumes x 3 slices, 2 epochs
    assert all(r["mask_type"] == "random" and len(r["mask_hash"]) == 12 for r in rows)
    first = {r["index"]: r["mask_hash"] for r in rows if r["epoch"] == "0"}
    second = {r["index"]: r["mask_hash"] for r in rows if r["epoch"] == "1"}
    assert all(first[i] != second[i] for i in first)  # fresh masks each epoch
    run_dir = tmp_path / "run"
    run(tiny_root, run_dir, "trainer.max_epochs=1", "validate_ckpt=last")
    with open(run_dir / "masks.csv", "a") as f:
        f.write("1,3,file_torn")  # as if killed while appending the next epoch
    last = run_dir / "checkpoints" / "last.ckpt"
    run(tiny_root, run_dir, "trainer.max_epochs=2", "validate_ckpt=last", f"ckpt_path={last}")
    assert (run_dir / "masks.csv").read_text() == (out / "masks.csv").read_text()


def test_same_seed_same_metrics_other_seed_differs(
    two_epochs: tuple[Path, dict], tiny_root: Path, tmp_path: Path
) -> None:
    _, reference = two_epochs
    again = run(tiny_root, tmp_path / "again", "trainer.max_epochs=2", "validate_ckpt=last")
    for key in VAL_KEYS:
        assert again[key] == pytest.approx(reference[key], abs=1e-7), key
    other = run(
        tiny_root, tmp_path / "other", "trainer.max_epochs=2", "validate_ckpt=last", "seed=1"
    )
    assert abs(other["val/ssim"] - reference["val/ssim"]) > 1e-6


def test_batch_size_above_one_on_mixed_widths(tiny_root: Path, tmp_path: Path) -> None:
    cfg = compose_train(
        tiny_root,
        tmp_path,
        "data.batch_size=2",
        "data.val_batch_size=4",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1.0",
    )
    datamodule = build_group(cfg, "data", mask_func=build_group(cfg, "mask"))
    datamodule.setup("fit")
    widths = {
        datamodule.train_dataset.shape_key(i)[0][-1] for i in range(len(datamodule.train_dataset))
    }
    assert len(widths) == 2, f"the tiny train split should mix k-space widths, got {widths}"
    metrics = train(cfg)
    assert metrics["global_step"] == 4  # two volumes of 3 slices, batches of 2: 2 + 2
    assert math.isfinite(metrics["val/ssim"])


def test_runs_without_loggers(tiny_root: Path, tmp_path: Path) -> None:
    metrics = run(
        tiny_root, tmp_path, "logger=none", "trainer.max_epochs=1", "trainer.limit_train_batches=1"
    )
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "csv").exists() and not (tmp_path / "tensorboard").exists()
    assert metrics["global_step"] == 1 and math.isfinite(metrics["val/ssim"])


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [str(BIN / "mri-recon-train"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_ddp_two_cpu_processes_match_one_process_per_volume(
    tiny_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ddp"
    overrides = [
        *TINY,
        f"data.root={tiny_root}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
    ]
    result = _cli(
        *overrides,
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        f"hydra.run.dir={out}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stdout + result.stderr
    assert (out / ".hydra" / "config.yaml").is_file()
    ddp_volumes = _volumes(out / "val_volumes.csv")
    assert all(v["num_slices"] == 3 for v in ddp_volumes.values())  # no slice lost or doubled

    cfg = compose_train(tiny_root, tmp_path / "single", "trainer.max_epochs=1")
    module = build_module(cfg)
    ckpt = torch.load(out / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    module.load_state_dict(ckpt["state_dict"])
    datamodule = build_group(cfg, "data", mask_func=build_group(cfg, "mask"))
    pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    ).validate(module, datamodule=datamodule, verbose=False)
    single = {row["fname"]: row for row in module.last_val_table}
    assert single.keys() == ddp_volumes.keys()
    for fname, row in single.items():
        for key in ("ssim", "psnr", "nmse"):
            assert ddp_volumes[fname][key] == pytest.approx(row[key], rel=1e-5), (fname, key)
    with open(out / "masks.csv") as f:  # rank 0 lists every rank's samples, each once
        logged = list(csv.DictReader(f))
    assert logged == [{k: str(v) for k, v in r.items()} for r in datamodule.train_masks(0)]


def test_multirun_writes_one_run_directory_per_optimizer(
    tiny_root: Path, tmp_path: Path, hydra_logging: None
) -> None:
    main(
        [
            "-m",
            "optim=adam,sgd",
            *TINY,
            f"data.root={tiny_root}",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    for num, target in ((0, "torch.optim.Adam"), (1, "torch.optim.SGD")):
        run_dir = tmp_path / str(num)
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert f"_target_: {target}" in (run_dir / ".hydra" / "config.yaml").read_text()
        assert "val/ssim" in json.loads((run_dir / "metrics.json").read_text())["metrics"]


def test_bad_config_value_is_one_line_error_from_the_cli(tiny_root: Path, tmp_path: Path) -> None:
    result = _cli(
        f"data.root={tiny_root}",
        "mask.accelerations=[0.5]",
        f"hydra.run.dir={tmp_path}",
        timeout=120,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("error: mask.accelerations: "), result.stderr
    assert "0.5" in lines[0]
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data.foo=1", "error: data.foo: unknown key"),
        ("optim=nadam", "error: optim: "),
        ("model.norm=batchnorm", "error: model.norm: "),
        ("model.norm_groups=3", "error: model.norm_groups: "),
        ("mask.center_fractions=[1.5]", "error: mask.center_fractions: "),
        ("seed=-1", "error: seed: "),  # data.seed: ${seed}
        ("data.batch_size=0", "error: data.batch_size: "),
    ],
)
def test_bad_config_value_is_one_line_error(
    override: str,
    expected: str,
    tiny_root: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture,
    hydra_logging: None,
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([f"data.root={tiny_root}", override, f"hydra.run.dir={tmp_path}"])
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code not in (0, None)
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("prescan", ["full", "header"])
def test_nan_in_the_data_stops_the_run_naming_the_file(
    tiny_root: Path, tmp_path: Path, prescan: str
) -> None:
    """full: found before any log or checkpoint exists; header: at the first bad slice."""
    data = tmp_path / "data"
    shutil.copytree(tiny_root, data)
    bad = sorted((data / "singlecoil_train").glob("*.h5"))
    for path in bad:
        with h5py.File(path, "a") as hf:
            hf["kspace"][:, 5, 5] = np.nan
    out = tmp_path / "run"
    with pytest.raises(DataError) as excinfo:
        run(data, out, f"data.prescan={prescan}", "trainer.max_epochs=1")
    path, _, reason = str(excinfo.value).partition(": ")
    assert Path(path) in bad and reason.startswith("kspace has NaN or Inf values (first in slice")
    made = {p.name for p in out.iterdir()} if out.exists() else set()
    assert not made & (
        {"tensorboard", "csv", "checkpoints"} if prescan == "full" else {"checkpoints"}
    )


# --- resume (issue 10) -------------------------------------------------------------------

# 3 epochs of 3 steps; at this rate the validation SSIM is best after epoch 0 and lower after
# epochs 1 and 2, so a resume that forgot the best score would pick a later checkpoint
RESUME_CFG = [*TINY, "trainer.max_epochs=3", "optim.lr=0.03"]
# run mri-recon-train, but wait to be killed at global step argv[2] (mid-epoch 2, after
# last.ckpt of epoch 1 exists), touching the marker file argv[1] first
STALLING_TRAIN = """
import sys, time
from pathlib import Path
from mri_recon.lit.module import ReconModule
marker, stall_step = Path(sys.argv.pop(1)), int(sys.argv.pop(1))
training_step = ReconModule.training_step
def stalling_step(self, batch, batch_idx):
    if self.global_step == stall_step:
        marker.touch()
        time.sleep(600)
    return training_step(self, batch, batch_idx)
ReconModule.training_step = stalling_step
from mri_recon.cli.train import main
main()
"""


def _train_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def _epoch(ckpt: Path) -> int:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"]


def test_resume_after_sigkill_matches_the_uninterrupted_run(
    tiny_root: Path, tmp_path: Path, hydra_logging: None
) -> None:
    from mri_recon.viz.logs import load_run

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    overrides = [*RESUME_CFG, f"data.root={tiny_root}"]
    marker = tmp_path / "stalled"
    victim = subprocess.Popen(
        [sys.executable, "-c", STALLING_TRAIN, str(marker), "7", *overrides,
         f"hydra.run.dir={killed}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_train_env(),
    )  # fmt: skip
    try:
        main([*overrides, f"hydra.run.dir={straight}"])  # the uninterrupted run, meanwhile
        for _ in range(1200):
            if marker.exists() or victim.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), f"the run never reached step 7: {victim.stderr.read()[-2000:]}"
        assert _epoch(killed / "checkpoints" / "last.ckpt") == 1  # epochs 0 and 1 done
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=60) == -signal.SIGKILL
    finally:
        victim.kill()
        victim.stderr.close()
    assert not (killed / "metrics.json").exists()

    # the README's command, nothing else: the run's own config, directory and best score
    resumed = subprocess.run(
        [str(BIN / "mri-recon-train"), f"ckpt_path={killed}/checkpoints/last.ckpt"],
        capture_output=True, text=True, timeout=300, env=_train_env(), cwd=tmp_path,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = json.loads((straight / "metrics.json").read_text())
    got = json.loads((killed / "metrics.json").read_text())
    assert got["metrics"] == expected["metrics"]  # bit for bit
    assert got["validated_checkpoint"] == str(killed / "checkpoints" / "best.ckpt")
    assert (killed / "val_volumes.csv").read_text() == (straight / "val_volumes.csv").read_text()
    best_epoch = _epoch(straight / "checkpoints" / "best.ckpt")
    assert _epoch(killed / "checkpoints" / "best.ckpt") == best_epoch
    # the test's premise: the best epoch came before the kill, and later epochs are worse
    curves = load_run(straight).curves["val/ssim"]
    assert best_epoch == 0 and curves.value[0] > max(curves.value[1:]), curves.value
    # the logs continue: the killed run's CSV and the resumed run's, merged, are the whole run
    assert load_run(killed).curves["val/ssim"].value.tolist() == curves.value.tolist()
    assert sorted(p.name for p in (killed / "tensorboard").iterdir()) == ["version_0", "version_1"]


def _tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder below ``path``: (size, mtime in ns), to see that nothing changed."""
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")}  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real one-epoch run directory (Adam, U-Net chans 4), made by the CLI."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        main([*TINY, f"data.root={tiny_root}", "trainer.max_epochs=1",
              "trainer.limit_train_batches=1", f"hydra.run.dir={run_dir}"])  # fmt: skip
    finally:
        root.handlers[:], root.level = saved
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    return run_dir


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _weights_only(data: bytes) -> bytes:
    ckpt = torch.load(io.BytesIO(data), weights_only=False)
    del ckpt["optimizer_states"], ckpt["loops"]
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("corrupt", "overrides", "message"),
    [
        (lambda data: os.urandom(4096), [], r"last\.ckpt: not a torch checkpoint"),
        (_truncated, [], r"last\.ckpt: not a torch checkpoint"),
        (lambda data: b"", [], r"last\.ckpt: not a torch checkpoint \(empty file\)"),
        (_weights_only, [], r"last\.ckpt: weights only"),
        (None, ["model.chans=8"], r"last\.ckpt: model\.chans is 4 in the checkpoint, 8 in the"),
        (None, ["optim=sgd"], r"last\.ckpt: optim: the checkpoint's optimizer .*SGD"),
        (None, ["optim.lr=0.5"], r"last\.ckpt: optim\.lr is 0\.001 in the checkpoint, 0\.5 in"),
        (None, ["scheduler=step"], r"last\.ckpt: scheduler: the checkpoint has none, .*StepLR"),
    ],
    ids=["random", "truncated", "empty", "weights-only", "chans", "sgd", "lr", "scheduler"],
)
def test_bad_checkpoint_to_resume_is_one_line_before_anything_is_written(
    finished_run: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture,
    hydra_logging: None,
    corrupt: Any,
    overrides: list[str],
    message: str,
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    if corrupt is not None:
        last.write_bytes(corrupt(last.read_bytes()))
    before = _tree(run_dir)
    with pytest.raises(SystemExit) as exit_info:
        main([f"ckpt_path={last}", *overrides])
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 1
    assert len(lines) == 1 and re.match(
        f"error: {re.escape(str(run_dir))}/.*{message}", lines[0]
    ), lines
    assert _tree(run_dir) == before  # no new log version, .hydra/ untouched


def test_checkpoint_outside_a_run_directory_is_one_line(
    finished_run: Path, tmp_path: Path, capfd: pytest.CaptureFixture, hydra_logging: None
) -> None:
    loose = tmp_path / "loose.ckpt"
    shutil.copy(finished_run / "checkpoints" / "last.ckpt", loose)
    with pytest.raises(SystemExit) as exit_info:
        main([f"ckpt_path={loose}", f"paths.log_dir={tmp_path / 'logs'}"])
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2
    assert lines == [f"error: ckpt_path: {loose}: not in a run directory (no "
                     f"{tmp_path.parent}/.hydra/overrides.yaml): a resume continues the run "
                     "that wrote the checkpoint, in its directory"], lines  # fmt: skip
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("where", ["below-a-file", "checkpoints-file", "unwritable"])
def test_unusable_run_directory_is_one_line(
    where: str,
    tiny_root: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture,
    hydra_logging: None,
) -> None:
    (tmp_path / "file").write_text("a regular file")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoints").write_text("a file where the folder goes")
    run_dir, message = {
        "below-a-file": (
            tmp_path / "file" / "run",
            f"hydra.run.dir: {tmp_path}/file/run: {tmp_path}/file is a file, not a folder",
        ),
        "checkpoints-file": (
            tmp_path / "run",
            f"callbacks.model_checkpoint.dirpath: {tmp_path}/run/checkpoints is a file, not a "
            "folder",
        ),
        "unwritable": (  # root may write anywhere, but not make folders in /proc
            Path("/proc/mri_recon_run"),
            "hydra.run.dir: /proc/mri_recon_run: cannot create folders in /proc (",
        ),
    }[where]
    with pytest.raises(SystemExit) as exit_info:
        main([*TINY, f"data.root={tiny_root}", "trainer.max_epochs=1", f"hydra.run.dir={run_dir}"])
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "run"]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["checkpoints"]  # nothing written


def test_multirun_directory_below_a_file_is_one_line(
    tiny_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture, hydra_logging: None
) -> None:
    (tmp_path / "file").write_text("a regular file")
    with pytest.raises(SystemExit) as exit_info:
        main(["-m", *TINY, f"data.root={tiny_root}", "optim=adam,sgd",
              f"hydra.sweep.dir={tmp_path / 'file' / 'sweep'}"])  # fmt: skip
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2
    assert lines == [f"error: hydra.sweep.dir: {tmp_path}/file/sweep: {tmp_path}/file is a "
                     "file, not a folder"], lines  # fmt: skip

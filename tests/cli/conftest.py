"""Fixtures of the CLI tests that record and replay runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mri_recon.cli.config import config_dir
from mri_recon.data.synthetic import generate_dataset

# a tiny network, 3 training batches per epoch, every validation slice, no loggers
TINY_TRAIN = [
    "debug=fast",
    "logger=none",
    "model.chans=4",
    "model.num_pool_layers=2",
    "data.sample_rate=1.0",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1.0",
    "validate_ckpt=last",
]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """The tiny synthetic single-coil dataset (2 train / 2 val volumes x 3 slices)."""
    root = tmp_path_factory.mktemp("tiny_data")
    generate_dataset(root, preset="tiny", challenge="singlecoil", seed=0, progress=False)
    return root


@pytest.fixture
def train_run() -> Callable[..., dict[str, float]]:
    """``(root, out, *overrides) -> metrics``: a tiny ``train(cfg)`` run into ``out``."""
    from mri_recon.cli.train import train

    def run(root: Path, out: Path, *overrides: str) -> dict[str, float]:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(
                "train",
                overrides=[*TINY_TRAIN, f"data.root={root}", f"paths.output_dir={out}", *overrides],
            )
        return train(cfg)

    return run

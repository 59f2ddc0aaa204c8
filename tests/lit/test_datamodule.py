"""FastMRIDataModule, its shape-bucketing batch sampler and its collate function."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from mri_recon.data.fastmri import DataError
from mri_recon.lit.callbacks import MaskLog
from mri_recon.lit.datamodule import MASK_LOG_COLUMNS, FastMRIDataModule, collate_slices
from mri_recon.lit.samplers import BucketBatchSampler, mask_seeds
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, file_seed, mask_hash
from mri_recon.physics.zero_filled import zero_filled

# 7 indices in three shape groups of sizes 3, 2, 2 (interleaved, as volumes of a split are)
KEYS = ["a", "b", "a", "c", "b", "a", "c"]


def _flat(batches: list[list[Any]]) -> list[Any]:
    return [i for b in batches for i in b]


def test_sampler_epoch_covers_every_index_once_in_same_key_batches() -> None:
    sampler = BucketBatchSampler(KEYS, batch_size=2, shuffle=True, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2 + 1 + 1  # ceil(3/2) + ceil(2/2) + ceil(2/2)
    assert sorted(_flat(batches)) == list(range(len(KEYS)))
    for batch in batches:
        assert len({KEYS[i] for i in batch}) == 1, batch


def test_sampler_order_is_a_function_of_seed_and_epoch() -> None:
    def order(seed: int, epoch: int) -> list[list[int]]:
        sampler = BucketBatchSampler(KEYS * 4, batch_size=3, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 1) == order(0, 1)
    assert order(0, 1) != order(0, 2)
    assert order(0, 1) != order(1, 1)


def test_sampler_without_shuffle_is_fixed_and_grouped_in_index_order() -> None:
    sampler = BucketBatchSampler(KEYS, batch_size=2, shuffle=False, seed=0)
    first = list(sampler)
    sampler.set_epoch(5)
    assert list(sampler) == first == [[0, 2], [5], [1, 4], [3, 6]]


def test_sampler_drop_last_drops_incomplete_group_batches() -> None:
    sampler = BucketBatchSampler(KEYS, batch_size=2, shuffle=True, seed=0, drop_last=True)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3
    assert all(len(b) == 2 for b in batches)


def test_mask_seeds_depend_on_seed_epoch_index_only() -> None:
    def seeds_by_index(batch_size: int, epoch: int, seed: int = 0) -> dict[int, int]:
        sampler = BucketBatchSampler(
            KEYS, batch_size, shuffle=True, seed=seed, with_mask_seeds=True
        )
        sampler.set_epoch(epoch)
        return dict(_flat(list(sampler)))

    by_one = seeds_by_index(1, epoch=2)
    assert by_one == seeds_by_index(3, epoch=2)  # not the batch size
    assert by_one == dict(enumerate(mask_seeds(len(KEYS), 0, 2).tolist()))
    assert len(set(by_one.values())) == len(KEYS)  # fresh per sample
    assert by_one != seeds_by_index(1, epoch=3)
    assert by_one != seeds_by_index(1, epoch=2, seed=1)


def test_sampler_shards_across_ranks_with_equal_lengths() -> None:
    keys = ["a"] * 5 + ["b"] * 2  # 3 + 1 = 4 batches of <= 2
    for world in (2, 3):
        ranks = [
            BucketBatchSampler(keys, 2, shuffle=True, seed=1, num_replicas=world, rank=r)
            for r in range(world)
        ]
        shards = [list(s) for s in ranks]
        assert len({len(s) for s in shards}) == 1
        assert all(len(s) == len(r) for s, r in zip(shards, ranks, strict=True))
        everything = _flat(_flat(shards))
        assert set(everything) == set(range(len(keys)))  # every index on some rank
        full = ranks[0].batches()  # 4 batches; world 3 pads with the first two again
        padding = [] if world == 2 else full[:2]
        assert sorted(map(tuple, _flat(shards))) == sorted(map(tuple, full + padding))


def test_collate_stacks_tensors_and_keeps_strings() -> None:
    items = [
        {
            "kspace": torch.zeros(1, 8, 6, dtype=torch.complex64),
            "mask": torch.ones(6, dtype=torch.bool),
            "target": torch.zeros(4, 4),
            "max_value": 2.0,
            "fname": f"f{i}.h5",
            "slice_num": i,
            "num_slices": 3,
            "acquisition": "CORPD_FBK",
        }
        for i in range(2)
    ]
    batch = collate_slices(items)
    assert batch["kspace"].shape == (2, 1, 8, 6) and batch["kspace"].dtype == torch.complex64
    assert batch["mask"].shape == (2, 6) and batch["mask"].dtype == torch.bool
    assert batch["max_value"].dtype == torch.float32 and batch["max_value"].shape == (2,)
    assert batch["slice_num"].tolist() == [0, 1] and batch["slice_num"].dtype == torch.int64
    assert batch["fname"] == ["f0.h5", "f1.h5"]
    items[1]["kspace"] = torch.zeros(1, 8, 7, dtype=torch.complex64)
    with pytest.raises(ValueError, match="'kspace' shapes .*f0.h5"):
        collate_slices(items)


@pytest.fixture
def mixed_root(tmp_path: Path, fastmri_split: Callable[..., list[Path]]) -> Path:
    """Train and val splits whose volumes have k-space widths 36, 40 and 36 (3 slices each)."""
    for split in ("train", "val"):
        fastmri_split(tmp_path, split=split, widths=(36, 40, 36), height=48, target_size=(32, 32))
    return tmp_path


def _datamodule(root: Path, **kwargs: Any) -> FastMRIDataModule:
    params: dict[str, Any] = dict(
        challenge="singlecoil", mask_func=ColumnMaskFunc("random", [0.08], [4]), seed=5
    )
    params.update(kwargs)
    dm = FastMRIDataModule(root, **params)
    dm.setup("fit")
    return dm


def _epoch(loader: torch.utils.data.DataLoader, epoch: int) -> list[dict[str, Any]]:
    loader.batch_sampler.set_epoch(epoch)  # type: ignore[union-attr]
    return list(loader)


def test_batches_follow_the_batch_format_on_mixed_widths(mixed_root: Path) -> None:
    dm = _datamodule(mixed_root, batch_size=2, val_batch_size=4)
    for loader, n_slices in ((dm.train_dataloader(), 9), (dm.val_dataloader(), 9)):
        batches = list(loader)
        assert sum(len(b["fname"]) for b in batches) == n_slices
        assert max(len(b["fname"]) for b in batches) > 1
        for b in batches:
            bsz, width = b["mask"].shape
            assert b["kspace"].dtype == torch.complex64 and b["kspace"].shape == (bsz, 1, 48, width)
            assert b["mask"].dtype == torch.bool
            assert b["target"].dtype == torch.float32 and b["target"].shape == (bsz, 32, 32)
            assert b["max_value"].dtype == torch.float32 and b["max_value"].shape == (bsz,)
            assert b["slice_num"].dtype == b["num_slices"].dtype == torch.int64
            assert b["num_slices"].tolist() == [3] * bsz
            assert isinstance(b["fname"], list) and isinstance(b["acquisition"], list)
            assert len(set(b["fname"])) <= 2  # widths 36 (two volumes) or 40 (one)


def test_worker_transform_ships_the_zero_filled_image_of_the_device_path(
    mixed_root: Path,
) -> None:
    """transform=worker: the same batches, with the module's zero-filled image in place of
    the k-space (one worker process, so the image is formed there)."""
    device = _datamodule(mixed_root, batch_size=2, val_batch_size=3)
    worker = _datamodule(
        mixed_root, batch_size=2, val_batch_size=3, transform="worker", num_workers=1
    )
    for train in (True, False):
        loaders = [
            dm.train_dataloader() if train else dm.val_dataloader() for dm in (device, worker)
        ]
        batches = [_epoch(loader, 1) for loader in loaders]
        assert len(batches[0]) == len(batches[1]) > 1
        for d, w in zip(*batches, strict=True):
            assert "kspace" not in w and w["image"].dtype == torch.float32
            assert d["fname"] == w["fname"] and torch.equal(d["mask"], w["mask"])
            expected = zero_filled(apply_mask(d["kspace"], d["mask"]), d["mask"], (32, 32))
            torch.testing.assert_close(w["image"], expected, rtol=1e-4, atol=1e-6)


def test_validation_uses_per_file_masks_in_a_fixed_order(mixed_root: Path) -> None:
    mask_func = ColumnMaskFunc("random", [0.08], [4])
    dm = _datamodule(mixed_root, batch_size=2, mask_func=mask_func)
    first, again = _epoch(dm.val_dataloader(), 0), _epoch(dm.val_dataloader(), 3)
    order = [(f, int(s)) for b in first for f, s in zip(b["fname"], b["slice_num"], strict=True)]
    assert order == [
        (f, int(s)) for b in again for f, s in zip(b["fname"], b["slice_num"], strict=True)
    ]
    for b in first:
        for fname, mask in zip(b["fname"], b["mask"], strict=True):
            assert torch.equal(mask, mask_func(mask.shape[0], seed=file_seed(fname)).mask)


def test_training_masks_are_fresh_and_reproducible_per_epoch(mixed_root: Path) -> None:
    dm = _datamodule(mixed_root, batch_size=3)

    def masks(epoch: int, num_workers: int = 0) -> dict[tuple[str, int], torch.Tensor]:
        dm.num_workers = num_workers
        return {
            (f, int(s)): m
            for b in _epoch(dm.train_dataloader(), epoch)
            for f, s, m in zip(b["fname"], b["slice_num"], b["mask"], strict=True)
        }

    epoch1 = masks(1)
    assert len(epoch1) == 9
    assert len({tuple(m.tolist()) for m in epoch1.values()}) == 9  # one fresh mask per slice
    again = masks(1, num_workers=2)  # workers share no RNG state: the same masks
    assert all(torch.equal(epoch1[k], again[k]) for k in epoch1)
    epoch2 = masks(2)
    assert sum(not torch.equal(epoch1[k], epoch2[k]) for k in epoch1) >= 8
    fractions = [float(m.float().mean()) for m in epoch1.values()]
    assert 0.15 < sum(fractions) / len(fractions) < 0.4  # about 1/4 of the columns


def test_training_order_changes_with_the_epoch_not_between_instances(mixed_root: Path) -> None:
    def order(dm: FastMRIDataModule, epoch: int) -> list[tuple[str, int]]:
        return [
            (f, int(s))
            for b in _epoch(dm.train_dataloader(), epoch)
            for f, s in zip(b["fname"], b["slice_num"], strict=True)
        ]

    a, b = _datamodule(mixed_root), _datamodule(mixed_root)
    assert order(a, 4) == order(b, 4)
    assert Counter(order(a, 4)) == Counter(order(a, 5))
    assert order(a, 4) != order(a, 5)


def test_sample_rate_and_acquisition_filter_reach_the_datasets(mixed_root: Path) -> None:
    dm = _datamodule(mixed_root, sample_rate=0.5, acquisitions=["CORPDFS_FBK"])
    assert {v.acquisition for v in dm.train_dataset.volumes} == {"CORPDFS_FBK"}
    assert len(dm.train_dataset) == 2  # half of the one volume's 3 slices, at least one
    assert len(dm.val_dataset) == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("val_batch_size", 0),
        ("num_workers", -1),
        ("sample_rate", 0.0),
        ("val_sample_rate", 1.5),
        ("volume_sample_rate", 0.0),
        ("seed", -2),
        ("batch_size", 1.5),
        ("prefetch_factor", 0),
        ("transform", "gpu"),
        ("persistent_workers", "yes"),
    ],
)
def test_bad_arguments_name_the_argument(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"^{field}: must be"):
        FastMRIDataModule("unused", "singlecoil", ColumnMaskFunc(), **{field: value})


def test_unknown_challenge_names_the_argument() -> None:
    with pytest.raises(
        ValueError, match="^challenge: must be one of singlecoil, multicoil, got 'knee'"
    ):
        FastMRIDataModule("unused", "knee", ColumnMaskFunc())


def test_refuses_lightning_distributed_sampler_injection(mixed_root: Path) -> None:
    import pytorch_lightning as pl

    dm = _datamodule(mixed_root)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        logger=False,
        enable_checkpointing=False,
        use_distributed_sampler=True,
    )
    dm.trainer = trainer
    with pytest.raises(ValueError, match="trainer.use_distributed_sampler must be false"):
        dm.train_dataloader()


def test_lightning_sets_the_training_epoch(mixed_root: Path, tmp_path: Path) -> None:
    """Through a real Trainer: epoch e draws exactly the order and masks of ``set_epoch(e)``
    (Lightning reaches the batch sampler through ``batch_sampler.sampler``), and ``MaskLog``
    records, per epoch, the masks the training steps received."""
    import pytorch_lightning as pl

    class Recorder(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.seen: dict[int, list[tuple[str, int, tuple[bool, ...]]]] = {}

        def training_step(self, batch: dict[str, Any], _: int) -> torch.Tensor:
            self.seen.setdefault(self.current_epoch, []).extend(
                (f, int(s), tuple(m.tolist()))
                for f, s, m in zip(batch["fname"], batch["slice_num"], batch["mask"], strict=True)
            )
            return self.w**2

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD([self.w], lr=0.1)

    dm = _datamodule(mixed_root, batch_size=3)
    model = Recorder()
    pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        use_distributed_sampler=False,
        callbacks=[MaskLog(tmp_path / "run" / "masks.csv")],
    ).fit(model, datamodule=dm)
    with open(tmp_path / "run" / "masks.csv") as f:
        reader = csv.DictReader(f)
        logged = list(reader)
    assert tuple(reader.fieldnames) == MASK_LOG_COLUMNS
    assert [int(r["epoch"]) for r in logged] == [0] * 9 + [1] * 9
    for epoch in (0, 1):
        rows = {(r["fname"], int(r["slice_num"])): r for r in logged if r["epoch"] == str(epoch)}
        seeds = mask_seeds(9, 5, epoch).tolist()
        assert sorted(int(r["index"]) for r in rows.values()) == list(range(9))
        for f, s, m in model.seen[epoch]:
            row, mask = rows[(f, s)], torch.tensor(m)
            assert row["mask_hash"] == mask_hash(mask), (epoch, f, s)
            assert row["mask_seed"] == str(seeds[int(row["index"])])
            assert int(row["mask_num_sampled"]) == int(mask.sum())
            assert int(row["num_low_frequencies"]) == round(len(m) * 0.08)
            assert row["mask_type"] == "random" and float(row["acceleration"]) == 4.0
    for epoch in (0, 1):
        expected = [
            (f, int(s), tuple(m.tolist()))
            for b in _epoch(dm.train_dataloader(), epoch)
            for f, s, m in zip(b["fname"], b["slice_num"], b["mask"], strict=True)
        ]
        assert model.seen[epoch] == expected, epoch
    assert model.seen[0] != model.seen[1]


def test_setup_prescans_both_splits(mixed_root: Path) -> None:
    bad = sorted((mixed_root / "singlecoil_val").glob("*.h5"))[2]
    with h5py.File(bad, "a") as hf:
        hf["reconstruction_esc"][2, 0, 0] = np.inf
    with pytest.raises(DataError, match=rf"^{bad}: reconstruction_esc has NaN or Inf"):
        _datamodule(mixed_root)
    dm = _datamodule(mixed_root, prescan="header")  # found on read instead
    assert dm.val_dataset.check_finite and len(dm.val_dataset) == 9
    with pytest.raises(ValueError, match=r"data.prescan: 'all' is not one of \('full', 'header'\)"):
        FastMRIDataModule("unused", "singlecoil", ColumnMaskFunc(), prescan="all")


def test_mask_log_keeps_whole_earlier_epochs_on_resume(mixed_root: Path, tmp_path: Path) -> None:
    """A resumed run (starting at epoch 2) drops the rows of epochs >= 2 and a torn last
    line, then appends; the file equals an uninterrupted run's."""
    dm = _datamodule(mixed_root)
    path = tmp_path / "masks.csv"
    log = MaskLog(path)

    def trainer(epoch: int) -> Any:
        return SimpleNamespace(is_global_zero=True, current_epoch=epoch, datamodule=dm)

    for epoch in range(3):
        log.on_train_epoch_start(trainer(epoch), None)
    uninterrupted = path.read_text()
    assert len(uninterrupted.splitlines()) == 1 + 3 * 9
    with open(path, "a") as f:
        f.write("3,0,file1000001.h5,0,4.0\n1")  # killed appending; "1" of e.g. epoch 12
    log.on_train_start(trainer(2), None)  # resumed from the checkpoint of epoch 2
    assert len(path.read_text().splitlines()) == 1 + 2 * 9
    log.on_train_epoch_start(trainer(2), None)
    assert path.read_text() == uninterrupted
    log.on_train_epoch_start(SimpleNamespace(is_global_zero=False, current_epoch=3), None)
    assert path.read_text() == uninterrupted  # other ranks never write

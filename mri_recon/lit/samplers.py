"""A seeded batch sampler that keeps same-shaped slices together and shards across DDP ranks.

fastMRI k-space widths differ between volumes (368 and 372 columns in one knee split), so
two slices can only share a batch when their ``shape_key`` (k-space shape and crop size)
agrees. :class:`BucketBatchSampler` groups indices by key, shuffles within and across the
groups with a generator seeded by ``(seed, epoch)``, and, for training, pairs every index
with a mask seed drawn from its own ``(seed, epoch)`` generator. The mask seed of a sample
therefore depends only on the run seed, the epoch and the sample index (not on the batch
size, the number of workers or the rank), so a resumed run draws the same masks as an
uninterrupted one and data workers never share random state.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

MASK_SEED_HIGH = 2**31 - 1


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A ``torch.Generator`` for one (run seed, epoch, stream), well mixed by numpy's SeedSequence.

    Args:
        seed: the run seed (>= 0).
        epoch: the epoch (>= 0).
        stream: 0 for the batch order, 1 for the mask seeds.
    """
    state = np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def mask_seeds(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """The per-sample training mask seeds of one epoch.

    Returns:
        int64 (num_samples,): entry i is the seed of sample i's column mask in this epoch.
    """
    generator = epoch_generator(seed, epoch, 1)
    return torch.randint(0, MASK_SEED_HIGH, (num_samples,), generator=generator)


def _distributed() -> tuple[int, int]:
    """(num_replicas, rank) of the initialised process group, else (1, 0)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class BucketBatchSampler(Sampler[list]):
    """Batches of indices whose samples share a shape key; seeded, epoch-aware, DDP-sharded.

    Per epoch: group the indices by key (groups in order of first appearance); with
    ``shuffle``, permute each group; cut each group into batches of ``batch_size`` (the last
    one may be smaller unless ``drop_last``); with ``shuffle``, permute the batches. Under
    DDP the batch list is padded by repeating its first batches to a multiple of the world
    size and rank r takes batches r, r + world, ..., so every rank runs the same number of
    steps (validation dedupes the repeated slices by (fname, slice_num)). Without shuffle
    the order is fixed: groups in order, indices ascending.

    Args:
        keys: one hashable shape key per dataset index (``SliceDataset.shape_key(i)``).
        batch_size: slices per batch (>= 1).
        shuffle: shuffle within and across groups (training) or keep a fixed order.
        seed: the run seed (>= 0); the order of epoch e depends only on (seed, e).
        drop_last: drop each group's incomplete last batch.
        with_mask_seeds: yield ``(index, mask_seed)`` pairs instead of indices (training).
        num_replicas: world size; None reads the initialised process group at iteration.
        rank: this process's rank in [0, num_replicas) (given with ``num_replicas``); None
            reads the initialised process group at iteration.
    """

    def __init__(
        self,
        keys: Sequence[Hashable],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
        with_mask_seeds: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.with_mask_seeds = drop_last, with_mask_seeds
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        groups: dict[Hashable, list[int]] = {}
        for index, key in enumerate(keys):
            groups.setdefault(key, []).append(index)
        self.groups: list[list[int]] = list(groups.values())
        self.num_samples = len(keys)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and mask seeds the next iteration yields.

        Lightning calls it at the start of every training epoch (also after a resume),
        through :attr:`sampler`."""
        self.epoch = int(epoch)

    @property
    def sampler(self) -> BucketBatchSampler:
        """This sampler itself. Lightning sets the epoch on ``dataloader.sampler`` and on
        ``dataloader.batch_sampler.sampler`` only (``lightning_fabric``'s
        ``_set_sampler_epoch``); without this attribute a batch sampler is never told the
        epoch, and every epoch would repeat epoch 0's order and masks."""
        return self

    def _world(self) -> tuple[int, int]:
        if self.num_replicas is not None:
            return self.num_replicas, int(self.rank)  # type: ignore[arg-type]
        return _distributed()

    def _num_batches(self) -> int:
        """Batches in one epoch over all ranks, before padding."""
        if self.drop_last:
            return sum(len(g) // self.batch_size for g in self.groups)
        return sum(math.ceil(len(g) / self.batch_size) for g in self.groups)

    def batches(self) -> list[list[int]]:
        """All batches of the current epoch (every rank's, before padding and sharding)."""
        gen = epoch_generator(self.seed, self.epoch, 0)
        out: list[list[int]] = []
        for group in self.groups:
            if self.shuffle:
                group = [group[i] for i in torch.randperm(len(group), generator=gen).tolist()]
            stop = len(group) - len(group) % self.batch_size if self.drop_last else len(group)
            out.extend(group[i : i + self.batch_size] for i in range(0, stop, self.batch_size))
        if self.shuffle:
            out = [out[i] for i in torch.randperm(len(out), generator=gen).tolist()]
        return out

    def __iter__(self) -> Iterator[list]:
        world, rank = self._world()
        batches = self.batches()
        if not batches:
            return
        padded = math.ceil(len(batches) / world) * world
        batches = (batches * math.ceil(padded / len(batches)))[:padded]
        seeds = mask_seeds(self.num_samples, self.seed, self.epoch).tolist()
        for batch in batches[rank::world]:
            yield [(i, seeds[i]) for i in batch] if self.with_mask_seeds else list(batch)

    def __len__(self) -> int:
        world, _ = self._world()
        return math.ceil(self._num_batches() / world)

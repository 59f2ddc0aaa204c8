"""End-to-end training throughput of our Lightning path beside fastMRI's, on the same files.

    python scripts/bench_train.py [--data ROOT] [--device cpu|cuda] [--batch-size 1]
        [--precision 32-true|bf16-mixed|16-mixed] [--compile default|max-autotune]
        [--workers 0] [--model unet|unet_fastmri|varnet] [--steps 20] [--warmup 3] [--epochs N]

Both pipelines train on ``ROOT/singlecoil_train`` (``ROOT/multicoil_train`` for the VarNet;
fastMRI layout) with the same device, batch size, precision, compile mode, loader workers,
RMSprop (lr 1e-3, fastMRI's U-Net recipe), L1 loss on whole slices at the data's target size
and a network of the same size (``configs/model/<model>.yaml``: the U-Net's ``chans``,
``num_pool_layers``; the VarNet's ``num_cascades``, ``chans``, ``pools``, ``sens_chans``,
``sens_pools``):

- ours: :class:`~mri_recon.lit.datamodule.FastMRIDataModule` (default ``data.*`` settings,
  fastMRI's random 4x mask) + :class:`~mri_recon.lit.module.ReconModule` over our ``Unet``
  (or ``VarNet``, the config's norm and maps), run by a Lightning ``Trainer`` (no logger,
  checkpoints, progress bar or validation);
- fastMRI: ``fastmri.data.SliceDataset`` + ``UnetDataTransform`` in a ``DataLoader``
  (shuffled) + ``fastmri.models.Unet`` (InstanceNorm) + RMSprop in a plain loop; for the
  VarNet ``VarNetDataTransform`` + ``fastmri.models.VarNet`` (InstanceNorm, maps learned)
  and the output cropped to the target as fastMRI's ``VarNetModule`` does.

Each timed window is ``--steps`` optimizer steps after ``--warmup`` untimed ones, from h5 on
disk to the optimizer step (CUDA is synchronised at both ends). With ``--compile`` (static
shapes, both pipelines) a batch shape first met inside the window (a bucket's last, partial
batch) is compiled inside it: give ``--warmup`` enough steps to meet every shape. Model-only feeds random
images already on the device; loader-only iterates the loader alone. Memory: host RSS (the
process plus its loader workers) at the end of each end-to-end window, and the CUDA peak
(``torch.cuda.max_memory_allocated``) over it. ``--epochs N`` then trains ours for N epochs
of ``--steps`` batches each and prints the host RSS (after ``gc`` and ``malloc_trim``, so
allocator retention is not counted) and the CUDA peak after every epoch.
The last line is ``end-to-end ratio (ours/fastMRI): N.NN``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import fastmri.models
import psutil
import pytorch_lightning as pl
import torch
import yaml
from fastmri.data import SliceDataset as FastMRISliceDataset
from fastmri.data.subsample import RandomMaskFunc
from fastmri.data.transforms import UnetDataTransform, VarNetDataTransform, center_crop
from torch.nn import functional as F
from torch.utils.data import DataLoader

from mri_recon.data.demo import default_data_root
from mri_recon.data.fastmri import DataError, split_dir
from mri_recon.lit.datamodule import FastMRIDataModule
from mri_recon.lit.module import ReconModule
from mri_recon.models.unet import Unet
from mri_recon.models.varnet import VarNet
from mri_recon.physics.masks import ColumnMaskFunc

PROG = "bench_train"
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
PRECISIONS = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
CENTER_FRACTION, ACCELERATION, LR = 0.08, 4, 1e-3
MIB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="fastMRI-layout root")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="32-true")
    parser.add_argument("--compile", choices=("default", "max-autotune"), default=None)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--model", choices=("unet", "unet_fastmri", "varnet"), default="unet")
    parser.add_argument("--steps", type=int, default=20, help="timed steps after warm-up")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--epochs", type=int, default=0, help="RSS per epoch over N epochs")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("workers", "warmup", "epochs"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0, got {getattr(args, name)}")
    if args.model == "varnet" and args.batch_size != 1:
        parser.error("--model varnet: fastMRI's VarNet loop takes --batch-size 1 (slices of "
                     "different widths do not collate without our bucketing)")  # fmt: skip
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    args.data = default_data_root() if args.data is None else args.data
    return args


def model_kwargs(model: str) -> dict[str, Any]:
    """The network arguments of ``configs/model/<model>.yaml`` (a U-Net's with the ``unet``
    defaults; the VarNet's multi-coil)."""
    base = "varnet" if model == "varnet" else "unet"
    kwargs = yaml.safe_load((CONFIGS / f"{base}.yaml").read_text())
    if model != base:
        kwargs.update(yaml.safe_load((CONFIGS / f"{model}.yaml").read_text()))
    if model == "varnet":
        kwargs["challenge"] = "multicoil"
    return {k: v for k, v in kwargs.items() if k not in ("_target_", "defaults")}


def is_varnet(args: argparse.Namespace) -> bool:
    return args.model == "varnet"


def challenge(args: argparse.Namespace) -> str:
    return "multicoil" if is_varnet(args) else "singlecoil"


def our_net(args: argparse.Namespace) -> torch.nn.Module:
    kwargs = model_kwargs(args.model)
    return VarNet(**kwargs) if is_varnet(args) else Unet(**kwargs)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_rss_mib(trim: bool = False) -> float:
    """Resident memory of this process and its children (loader workers), MiB; ``trim``:
    after ``gc.collect()`` and glibc's ``malloc_trim(0)`` in this process, so that freed heap
    pages the allocator keeps do not count as growth (live memory, a leak included, does)."""
    if trim:
        gc.collect()
        if sys.platform == "linux":
            ctypes.CDLL("libc.so.6").malloc_trim(0)
    proc = psutil.Process(os.getpid())
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # a worker that exited meanwhile
            pass
    return total / MIB


def gpu_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / MIB if device.type == "cuda" else None


def autocast(device: torch.device, precision: str) -> Any:
    dtype = PRECISIONS[precision]
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


class StepTimer(pl.Callback):
    """Wall time and slices of the training batches after ``warmup``."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.start: float | None = None
        self.end, self.slices, self.epoch_memory = 0.0, 0, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup and self.start is None:
            sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is not None:
            self.slices += int(batch["target"].shape[0])
            sync(self.device)
            self.end = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_memory.append((host_rss_mib(trim=True), gpu_mib(self.device)))

    def rate(self) -> float:
        return self.slices / max(self.end - (self.start or self.end), 1e-12)


def our_datamodule(args: argparse.Namespace) -> FastMRIDataModule:
    return FastMRIDataModule(
        args.data,
        challenge(args),
        ColumnMaskFunc("random", [CENTER_FRACTION], [ACCELERATION]),
        batch_size=args.batch_size,
        num_workers=args.workers,
        pin_memory=args.device == "cuda",
        val_split="train",  # never run (limit_val_batches=0): ROOT needs no val split
    )


def our_module(args: argparse.Namespace, net: torch.nn.Module) -> ReconModule:
    """``module.compile`` compiles the network in place (static shapes)."""
    return ReconModule(net, partial(torch.optim.RMSprop, lr=LR), compile=args.compile)


def run_ours(args: argparse.Namespace, max_steps: int, epochs: int = 0) -> StepTimer:
    """Train ours with Lightning for ``max_steps`` steps (or ``epochs`` epochs of
    ``--steps`` batches); the timer holds the window after warm-up and per-epoch memory."""
    device = torch.device(args.device)
    timer = StepTimer(args.warmup, device)
    torch.manual_seed(0)
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=args.precision,
        max_steps=-1 if epochs else max_steps,
        max_epochs=epochs or None,
        limit_train_batches=args.steps if epochs else None,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[timer],
    )
    trainer.fit(our_module(args, our_net(args)), datamodule=our_datamodule(args))
    return timer


def fastmri_loader(args: argparse.Namespace) -> DataLoader:
    mask_func = RandomMaskFunc([CENTER_FRACTION], [ACCELERATION])
    transform = (
        VarNetDataTransform(mask_func, use_seed=False)
        if is_varnet(args)
        else UnetDataTransform("singlecoil", mask_func, use_seed=False)
    )
    dataset = FastMRISliceDataset(
        split_dir(args.data, challenge(args), "train"), challenge(args), transform
    )
    return DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=args.device == "cuda",
        persistent_workers=args.workers > 0,
        generator=torch.Generator().manual_seed(0),
    )


def fastmri_net(args: argparse.Namespace) -> torch.nn.Module:
    kwargs = model_kwargs(args.model)
    torch.manual_seed(0)
    if is_varnet(args):
        names = ("num_cascades", "chans", "pools", "sens_chans", "sens_pools")
        return FastMRIVarNet(**{k: kwargs[k] for k in names})
    return fastmri.models.Unet(
        1, 1, chans=kwargs["chans"], num_pool_layers=kwargs["num_pool_layers"], drop_prob=0.0
    )


class FastMRIVarNet(torch.nn.Module):
    """``fastmri.models.VarNet`` and fastMRI's ``VarNetModule`` crop: ``(masked_kspace (B, C,
    H, W, 2), mask (B, 1, 1, W, 1), num_low_frequencies, crop (h, w)) -> (B, h, w)``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.varnet = fastmri.models.VarNet(**kwargs)

    def forward(self, masked_kspace, mask, num_low_frequencies, crop) -> torch.Tensor:  # noqa: ANN001
        return center_crop(self.varnet(masked_kspace, mask, num_low_frequencies), crop)


def forever(loader: DataLoader) -> Iterator[Any]:
    while True:
        yield from loader


def timed_loop(
    step: Callable[[Any], int], batches: Iterator[Any], args: argparse.Namespace
) -> float:
    """Slices/s of ``step(batch) -> slices`` over ``--steps`` batches after ``--warmup``."""
    device = torch.device(args.device)
    for _ in range(args.warmup):
        step(next(batches))
    sync(device)
    start, slices = time.perf_counter(), 0
    for _ in range(args.steps):
        slices += step(next(batches))
    sync(device)
    return slices / max(time.perf_counter() - start, 1e-12)


def train_step_fn(
    net: torch.nn.Module, args: argparse.Namespace
) -> Callable[[Any, torch.Tensor], int]:
    """One RMSprop step of ``net`` on its input (a (B, 1, h, w) image, or a tuple of the
    VarNet's arguments) and the target of the output's shape (GradScaler for fp16)."""
    device = torch.device(args.device)
    net = net.to(device).train()
    if args.compile:
        net = torch.compile(net, mode=args.compile, dynamic=False)
    optimizer = torch.optim.RMSprop(net.parameters(), lr=LR)
    scaler = torch.amp.GradScaler(enabled=args.precision == "16-mixed" and device.type == "cuda")

    def step(inputs: Any, target: torch.Tensor) -> int:
        with autocast(device, args.precision):
            out = net(*inputs) if isinstance(inputs, tuple) else net(inputs)
            loss = F.l1_loss(out.float(), target)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return target.shape[0]

    return step


def fastmri_end_to_end(args: argparse.Namespace) -> float:
    """fastMRI's recipe in a plain loop: its loader's batches to the device, one step each."""
    device = torch.device(args.device)
    train = train_step_fn(fastmri_net(args), args)

    def step(batch: Any) -> int:
        if is_varnet(args):  # fastMRI's VarNetModule.training_step
            crop = tuple(batch.target.shape[-2:])
            kspace = batch.masked_kspace.to(device, non_blocking=True)  # (B, C, H, W, 2)
            mask = batch.mask.to(device, non_blocking=True)  # (B, 1, 1, W, 1)
            nlf = batch.num_low_frequencies
            return train((kspace, mask, nlf, crop), batch.target.to(device, non_blocking=True))
        image = batch.image.unsqueeze(1).to(device, non_blocking=True)  # (B, 1, h, w)
        target = batch.target.unsqueeze(1).to(device, non_blocking=True)
        return train(image, target)

    return timed_loop(step, forever(fastmri_loader(args)), args)


def model_only(net: torch.nn.Module, args: argparse.Namespace, shape: tuple, ours: bool) -> float:
    """Slices/s of training steps on one random batch already on the device: ``shape`` is
    ((C, H, W), (h, w)); a VarNet gets masked k-space in its own pipeline's form (fastMRI's
    4x mask with 8% centre columns)."""
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    (coils, height, width), size = shape
    target = torch.rand(args.batch_size, *size, generator=g).to(device)  # (B, h, w)
    if not is_varnet(args):
        image = torch.randn(args.batch_size, 1, *size, generator=g).to(device)
        train = train_step_fn(net, args)
        return timed_loop(lambda _: train(image, target[:, None]), forever([None]), args)
    sample = RandomMaskFunc([CENTER_FRACTION], [ACCELERATION])((1, width, 1), seed=0)
    mask, nlf = sample[0].reshape(width).bool(), int(sample[1])
    kspace = torch.randn(args.batch_size, coils, height, width, dtype=torch.complex64, generator=g)
    kspace = (kspace * mask).to(device)
    masks = mask.expand(args.batch_size, width).to(device)  # (B, W)
    if ours:
        inputs = (kspace, masks, None, size)
    else:
        inputs = (torch.view_as_real(kspace), masks[:, None, None, :, None], nlf, size)
    train = train_step_fn(net, args)
    return timed_loop(lambda _: train(inputs, target), forever([None]), args)


def loader_only(loader: DataLoader, args: argparse.Namespace, size_of: Callable) -> float:
    return timed_loop(size_of, forever(loader), args)


def data_shape(args: argparse.Namespace) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """((C, H, W), (h, w)) of the first training slice."""
    dm = our_datamodule(args)
    dm.setup("fit")
    assert dm.train_dataset is not None
    return dm.train_dataset.shape_key(0)


def model_summary(args: argparse.Namespace) -> str:
    k = model_kwargs(args.model)
    if not is_varnet(args):
        return f"chans {k['chans']}, {k['num_pool_layers']} pools"
    return (
        f"{k['num_cascades']} cascades, chans {k['chans']}, {k['pools']} pools, maps "
        f"{k['maps']} (sens_chans {k['sens_chans']}, {k['sens_pools']} pools), norm {k['norm']}"
        f" (fastMRI: instance), crop_readout {k['crop_readout']}"
    )


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    device = torch.device(args.device)
    try:
        shape = data_shape(args)
    except (DataError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    rows: dict[str, dict[str, Any]] = {}
    for name in ("ours", "fastMRI"):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if name == "ours":
            rate = run_ours(args, args.warmup + args.steps).rate()
        else:
            rate = fastmri_end_to_end(args)
        rows[name] = {"e2e": rate, "rss": host_rss_mib(), "gpu": gpu_mib(device)}
    torch.manual_seed(0)
    rows["ours"]["model"] = model_only(our_net(args), args, shape, ours=True)
    rows["fastMRI"]["model"] = model_only(fastmri_net(args), args, shape, ours=False)
    dm = our_datamodule(args)
    rows["ours"]["loader"] = loader_only(
        dm.train_dataloader(), args, lambda b: b["target"].shape[0]
    )
    rows["fastMRI"]["loader"] = loader_only(fastmri_loader(args), args, lambda b: b.target.shape[0])
    dm.teardown()
    (coils, height, width), size = shape
    print(
        f"{PROG}: {split_dir(args.data, challenge(args), 'train')}, target {size[0]}x{size[1]}"
        f"{f', {coils} coils {height}x{width}' if is_varnet(args) else ''}, "
        f"device {args.device}, batch {args.batch_size}, precision {args.precision}, "
        f"compile {args.compile or 'off'}, workers {args.workers}, model {args.model} "
        f"({model_summary(args)}), {args.steps} steps "
        f"after {args.warmup} warm-up, torch {torch.get_num_threads()} threads"
    )
    header = [
        "pipeline",
        "end-to-end slices/s",
        "model-only slices/s",
        "loader-only slices/s",
        "host RSS MiB",
        "peak GPU MiB",
    ]
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] * len(header)) + " |")
    for name, r in rows.items():
        cells = [f"{r[k]:.2f}" for k in ("e2e", "model", "loader")]
        print(f"| {name} | " + " | ".join(cells) + f" | {_mib(r['rss'])} | {_mib(r['gpu'])} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak host RSS of this process: {peak:.0f} MiB")
    if args.epochs:
        memory = run_ours(args, 0, epochs=args.epochs).epoch_memory
        for epoch, (rss, gpu) in enumerate(memory, start=1):
            extra = "" if gpu is None else f", GPU {gpu:.0f} MiB"
            print(f"epoch {epoch}: host RSS {rss:.0f} MiB{extra}")
        base = memory[0][0]
        growth = max(rss for rss, _ in memory) / base - 1
        print(f"host RSS growth after epoch 1: {growth:+.1%} (limit +5%)")
    print(f"end-to-end ratio (ours/fastMRI): {rows['ours']['e2e'] / rows['fastMRI']['e2e']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

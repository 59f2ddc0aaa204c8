"""Seconds per slice of each reconstruction method: zero-filled, TV-CS and U-Nets.

The point of a learned reconstruction is one network pass per slice instead of an iterative
solve. This measures it on the same single-coil slices for every method, through the one
reconstructor call (masked k-space, mask -> cropped magnitude image), so every figure includes
the FFTs and the crop:

- ``zero_filled``: IFFT + magnitude + crop.
- ``tv``: our Chambolle-Pock TV-CS with its defaults (lambda 0.002, at most 200 iterations,
  relative-change stop 1e-4), batched over the slices of a batch.
- ``unet_small``: the CPU-budget GroupNorm U-Net of ``configs/model/unet.yaml`` (chans 16,
  3 pooling levels); ``unet_fastmri``: fastMRI's size (chans 32, 4 pooling levels, 7.8M
  parameters), GroupNorm. Weights are random unless ``--checkpoint`` gives a trained one
  (time does not depend on the weights; the checkpoint's network replaces ``unet_small``).

Slices are the centre slices of the files in ``--data`` (full k-space width, e.g. 640 x 368,
not a crop), masked with fastMRI's per-file 4x validation masks (cycled when a batch needs
more slices of one shape than the folder has: time does not depend on the content). Each
(method, device, precision, batch) is warmed up once, then timed ``--repeats`` times; the
table gives the median wall milliseconds per slice, slices per second, and CPU seconds per
slice (``time.process_time``, all threads of this process). On CUDA the device is
synchronised before reading the clock. ``--precisions bf16`` runs the U-Nets under
``torch.autocast(bfloat16)`` (FFTs, normalisation and the classical methods stay float32).

Defaults keep a CPU run to a minute or two (batches 1 and 4); the GPU figures use
``--devices cuda --batch-sizes 1 16 64`` (the default batches when CUDA is present).

    python scripts/bench_recon.py [--data DIR] [--batch-sizes 1 4] [--repeats 3]
        [--precisions fp32 bf16] [--threads N] [--devices cpu cuda] [--methods ...]
        [--checkpoint CKPT]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import torch

from mri_recon.baselines.tv import TVReconstructor
from mri_recon.baselines.zero_filled import ZeroFilled
from mri_recon.data.demo import center_out_slices, default_data_root
from mri_recon.models.reconstructor import ImageReconstructor
from mri_recon.models.unet import Unet
from mri_recon.physics.crop import crop_size_for
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, file_seed

METHODS = ("zero_filled", "tv", "unet_small", "unet_fastmri")


def load_slices(folder: Path, count: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """``count`` centre slices of equal k-space shape (the first volume's), masked at 4x.

    Returns:
        masked k-space complex64 (count, 1, H, W), mask bool (count, W), crop (h, w).

    Raises:
        ValueError: one line naming the folder or file.
    """
    if not any(Path(folder).glob("*.h5")):
        raise ValueError(f"{folder}: no .h5 files (make run builds the default)")
    candidates = center_out_slices(folder, 10**9)
    shape = candidates[0][2]
    picked = [(path, index) for path, index, s in candidates if s == shape][:count]
    if len(shape) != 3:
        raise ValueError(f"{candidates[0][0]}: not a single-coil file (expected kspace (S, H, W))")
    picked = [picked[i % len(picked)] for i in range(count)]
    mask_func = ColumnMaskFunc("random", [0.08], [4])
    kspaces, masks, target_shape = [], [], (320, 320)
    for path, index in picked:
        with h5py.File(path, "r") as hf:
            kspace = torch.from_numpy(hf["kspace"][index])[None]  # (1, H, W)
            if "reconstruction_esc" in hf:
                target_shape = hf["reconstruction_esc"].shape[1:]
        mask = mask_func(kspace.shape[-1], file_seed(path.name)).mask  # bool (W,)
        kspaces.append(apply_mask(kspace, mask))
        masks.append(mask)
    return torch.stack(kspaces), torch.stack(masks), crop_size_for(shape[-1], tuple(target_shape))


def build(method: str, checkpoint: Path | None) -> tuple[Callable, int]:
    """The reconstructor and its parameter count."""
    if method == "zero_filled":
        return ZeroFilled(), 0
    if method == "tv":
        return TVReconstructor(), 0
    if method == "unet_small" and checkpoint is not None:
        from mri_recon.lit.checkpoint import load_reconstructor

        recon = load_reconstructor(checkpoint)
    else:
        chans, pools = (16, 3) if method == "unet_small" else (32, 4)
        recon = ImageReconstructor(Unet(chans=chans, num_pool_layers=pools, norm="group")).eval()
    return recon, sum(p.numel() for p in recon.parameters())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def time_method(
    recon, kspace, mask, crop, batch: int, repeats: int, device: torch.device, bf16: bool = False
) -> tuple[float, float]:
    """Median wall ms/slice and mean CPU s/slice of ``repeats`` timed calls on ``batch`` slices
    (``bf16``: under ``torch.autocast(bfloat16)``)."""
    if hasattr(recon, "to"):
        recon = recon.to(device)
    y, m = kspace[:batch].to(device), mask[:batch].to(device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    with amp:  # warm-up: allocator, cuDNN autotuning, first-call overheads
        recon(y, m, None, crop)
    _sync(device)
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        with amp:
            recon(y, m, None, crop)
        _sync(device)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return 1e3 * statistics.median(walls) / batch, sum(cpus) / len(cpus) / batch


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of single-coil .h5 files (default: singlecoil_val/ under "
        "$MRI_RECON_DATA or data/synthetic)",
    )
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=None, help="default: 1 4; 1 16 64 on CUDA"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"]
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    parser.add_argument(
        "--devices", nargs="+", default=None, help="default: cpu, and cuda if available"
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="trained model for unet_small"
    )
    args = parser.parse_args(argv)
    if args.batch_sizes is None:
        args.batch_sizes = [1, 16, 64] if torch.cuda.is_available() else [1, 4]
    if min(args.batch_sizes) < 1 or args.repeats < 1:
        parser.error("--batch-sizes and --repeats must be positive")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    for name in devices:
        if name.startswith("cuda") and not torch.cuda.is_available():
            print(f"bench_recon: error: --devices {name}: CUDA is not available", file=sys.stderr)
            return 2
    data = args.data if args.data is not None else default_data_root() / "singlecoil_val"
    try:
        kspace, mask, crop = load_slices(data, max(args.batch_sizes))
    except (ValueError, OSError) as err:
        print(f"bench_recon: error: {err}", file=sys.stderr)
        return 2
    print(
        f"# {kspace.shape[0]} slices, k-space {tuple(kspace.shape[-2:])} -> crop {crop}, "
        f"4x random mask; torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    for name in devices:
        if name.startswith("cuda"):
            print(f"# {name}: {torch.cuda.get_device_name(torch.device(name))}")
    print(
        "| method | parameters | device | precision | batch | ms/slice (median) | slices/s "
        "| CPU s/slice |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        recon, params = build(method, args.checkpoint)
        precisions = args.precisions if method.startswith("unet") else ["fp32"]
        for name in devices:
            device = torch.device(name)
            for precision in precisions:
                for batch in args.batch_sizes:
                    ms, cpu = time_method(
                        recon, kspace, mask, crop, batch, args.repeats, device, precision == "bf16"
                    )
                    print(
                        f"| {method} | {params:,} | {name} | {precision} | {batch} | {ms:.4g} "
                        f"| {1e3 / ms:.4g} | {cpu:.4g} |",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

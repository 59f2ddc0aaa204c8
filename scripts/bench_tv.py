"""Benchmark our TV-CS reconstructor against BART's ``pics`` on the same single-coil slices.

BART is run as fastMRI's CS baseline runs it (``fastmri_examples/cs/run_bart.py``):
``bart pics -d0 -S -R T:7:0:LAMBDA -i 200`` on the centered k-space with dims [1, H, W, 1]
and all-ones maps (single-coil); its lambda is the best (by mean SSIM) of a small grid,
chosen on the benchmark slices themselves, so BART gets an oracle lambda while ours runs
with its defaults. Masks are fastMRI's per-file validation masks (seed from the file name).

Metrics follow ``fastmri.evaluate``: SSIM and PSNR on the target-size crop with
``data_range`` = the target *volume* maximum (``attrs['max']``), averaged over slices.
Times: wall seconds per slice and CPU seconds per slice; ours from ``time.process_time()``
(all torch threads), BART's from ``RUSAGE_CHILDREN`` (all its OpenMP threads).

    python scripts/bench_tv.py [--data DIR] [--accelerations 4 8] [--slices 6] [--threads N]

BART is optional: without ``bart`` on PATH the script says so and benchmarks ours only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from fastmri.evaluate import psnr, ssim

from mri_recon.baselines.bart import bart_available, run_bart_pics
from mri_recon.baselines.tv import TVReconstructor
from mri_recon.data.demo import center_out_slices, default_data_root
from mri_recon.physics.crop import center_crop, crop_size_for
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, file_seed

CENTER_FRACTIONS = {4: 0.08, 8: 0.04}  # fastMRI's knee convention


@dataclass
class Slice:
    fname: str
    index: int
    kspace: torch.Tensor  # complex64 (1, H, W)
    target: np.ndarray  # float32 (h, w)
    max_value: float


@dataclass
class Row:
    method: str
    lam: float
    ssim: float
    psnr: float
    wall_s: float  # per slice
    cpu_s: float  # per slice


def pick_slices(folder: Path, count: int) -> list[Slice]:
    """``count`` slices, round-robin over the volumes from the center slice outwards."""
    try:
        order = center_out_slices(folder, count)
    except ValueError as err:
        raise SystemExit(f"bench_tv: error: {err}") from None
    out = []
    for f, i, _ in order:
        with h5py.File(f, "r") as hf:
            if hf["kspace"].ndim != 3 or "reconstruction_esc" not in hf:
                raise SystemExit(
                    f"bench_tv: error: {f}: not a single-coil file with reconstruction_esc"
                )
            target = hf["reconstruction_esc"]
            max_value = float(hf.attrs["max"]) if "max" in hf.attrs else float(target[()].max())
            out.append(
                Slice(
                    f.name,
                    i,
                    torch.from_numpy(hf["kspace"][i])[None],
                    target[i].astype(np.float32),
                    max_value,
                )
            )
    return out


def scores(slices: list[Slice], recons: list[np.ndarray]) -> tuple[float, float]:
    s = [
        float(ssim(sl.target[None], r[None], sl.max_value)[0])
        for sl, r in zip(slices, recons, strict=True)
    ]
    p = [
        float(psnr(sl.target[None], r[None], sl.max_value))
        for sl, r in zip(slices, recons, strict=True)
    ]
    return float(np.mean(s)), float(np.mean(p))


def masked(sl: Slice, accel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked k-space complex64 (1, H, W), mask bool (W,)) with the file's validation mask."""
    w = sl.kspace.shape[-1]
    mask = ColumnMaskFunc("random", [CENTER_FRACTIONS[accel]], [accel])(w, file_seed(sl.fname))
    return apply_mask(sl.kspace, mask.mask), mask.mask


def run_ours(slices: list[Slice], accel: int, tv: TVReconstructor, device: torch.device) -> Row:
    """Batched over slices of equal shape; times cover the reconstruction only."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, sl in enumerate(slices):
        groups.setdefault(tuple(sl.kspace.shape[-2:]), []).append(i)
    recons: list[np.ndarray | None] = [None] * len(slices)
    wall = cpu = 0.0
    for idx in groups.values():
        pairs = [masked(slices[i], accel) for i in idx]
        y = torch.stack([p[0] for p in pairs]).to(device)  # (B, 1, H, W)
        mask = torch.stack([p[1] for p in pairs]).to(device)  # (B, W)
        crop = crop_size_for(y.shape[-1], slices[idx[0]].target.shape)
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        out = tv(y, mask, None, crop)
        _sync(device)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        for j, i in enumerate(idx):
            recons[i] = out[j].cpu().numpy()
    s, p = scores(slices, recons)
    return Row("ours", tv.lam, s, p, wall / len(slices), cpu / len(slices))


def run_bart(slices: list[Slice], accel: int, lams: list[float], iters: int) -> list[Row]:
    rows = []
    for lam in lams:
        recons, wall, cpu = [], 0.0, 0.0
        for sl in slices:
            y, _ = masked(sl, accel)
            res = run_bart_pics(y.numpy(), None, lam, num_iters=iters)
            crop = crop_size_for(y.shape[-1], sl.target.shape)
            recons.append(center_crop(torch.from_numpy(np.abs(res.image)), crop).numpy())
            wall, cpu = wall + res.wall_s, cpu + res.cpu_s
        s, p = scores(slices, recons)
        rows.append(Row("bart", lam, s, p, wall / len(slices), cpu / len(slices)))
        print(f"  bart lam={lam:g}: SSIM {s:.4f} PSNR {p:.2f}", flush=True)
    return rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def print_table(accel: int, ours: Row, bart: Row | None, extra: list[Row]) -> None:
    print(
        f"\n{accel}x  {'method':<10}{'lam':>8}{'SSIM':>8}{'PSNR':>8}{'wall s/sl':>11}"
        f"{'CPU s/sl':>10}"
    )
    for r in [ours, *extra] + ([bart] if bart else []):
        print(
            f"    {r.method:<10}{r.lam:>8g}{r.ssim:>8.4f}{r.psnr:>8.2f}{r.wall_s:>11.3f}"
            f"{r.cpu_s:>10.3f}"
        )
    if bart:
        print(
            f"    ours/bart: SSIM {ours.ssim - bart.ssim:+.4f}, PSNR {ours.psnr - bart.psnr:+.2f} dB,"
            f" wall x{ours.wall_s / bart.wall_s:.3f}, CPU x{ours.cpu_s / bart.cpu_s:.3f}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=default_data_root(),
        help="data root holding singlecoil_val/ (default $MRI_RECON_DATA or data/synthetic)",
    )
    ap.add_argument(
        "--accelerations", type=int, nargs="+", default=[4, 8], choices=sorted(CENTER_FRACTIONS)
    )
    ap.add_argument("--slices", type=int, default=6)
    ap.add_argument("--bart-lams", type=float, nargs="+", default=[0.003, 0.01, 0.03])
    ap.add_argument("--bart-iters", type=int, default=200)
    ap.add_argument("--lam", type=float, default=None, help="ours (default: TVReconstructor's)")
    ap.add_argument("--max-iters", type=int, default=None)
    ap.add_argument("--tol", type=float, default=None)
    ap.add_argument(
        "--also-dc", action="store_true", help="also run ours with data_consistency=True"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads and OMP_NUM_THREADS for BART (0: library defaults)",
    )
    ap.add_argument("--device", default="cpu", help="device for ours (cpu, cuda)")
    ap.add_argument("--no-bart", action="store_true", help="benchmark ours only")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    device = torch.device(args.device)
    kwargs = {
        k: v
        for k, v in [("lam", args.lam), ("max_iters", args.max_iters), ("tol", args.tol)]
        if v is not None
    }
    tv = TVReconstructor(**kwargs)
    slices = pick_slices(args.data / "singlecoil_val", args.slices)
    have_bart = bart_available() and not args.no_bart
    print(
        f"data {args.data / 'singlecoil_val'}: {len(slices)} slices "
        f"({', '.join(f'{s.fname}[{s.index}]' for s in slices)}); ours {tv!r} on {device}; "
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    if not bart_available():
        print("SKIP BART: `bart` is not on PATH (apt-get install bart); benchmarking ours only")
    # Warm-up (FFT plans, allocator) so that ours is timed in steady state.
    run_ours(slices[:1], args.accelerations[0], TVReconstructor(max_iters=2), device)
    for accel in args.accelerations:
        ours = run_ours(slices, accel, tv, device)
        extra = []
        if args.also_dc:
            dc = TVReconstructor(**kwargs, data_consistency=True)
            extra.append(run_ours(slices, accel, dc, device))
            extra[-1].method = "ours+dc"
        bart = None
        if have_bart:
            bart = max(
                run_bart(slices, accel, args.bart_lams, args.bart_iters), key=lambda r: r.ssim
            )
        print_table(accel, ours, bart, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())

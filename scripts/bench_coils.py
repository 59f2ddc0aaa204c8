"""Seconds per slice of the coil-map estimates (ACS ratio, our ESPIRiT, BART's ``ecalib``) and
how far ours is from BART's.

The centre slice of each multi-coil file of ``--data``/multicoil_val (full k-space, e.g.
8 x 640 x 372), masked with fastMRI's per-file random 4x validation mask (centre 0.08). Each
estimate runs ``--repeats`` times; the table gives the median wall seconds per slice. BART
runs as a subprocess (its time includes writing and reading the .cfl files) and is left out
when ``bart`` is not installed. Agreement: per pixel ``|<ours, bart>|`` (1 = equal up to a
phase) where both maps are non-zero, mean and 1st percentile. Both use our default kernel
size ``min(6, centre columns // 2)``; thresholds 0.02, crop 0.95.

    python scripts/bench_coils.py --data DIR [--repeats 3] [--devices cpu cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from mri_recon.baselines.bart import bart_available, run_bart_ecalib
from mri_recon.data.fastmri import list_volumes, load_volume, read_volume_info
from mri_recon.physics.coils import DEFAULT_KERNEL, espirit_maps, estimate_sens_maps
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, center_band, file_seed


def _time(fn, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """Median wall seconds of ``fn()`` over ``repeats`` runs (CUDA synchronised), and its output."""
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=["cpu"])
    args = parser.parse_args()
    mask_func = ColumnMaskFunc("random", [0.08], [4])
    print(
        "| file | device | shape (C, H, W) | acs s | espirit s | bart ecalib s | agreement mean / p1 |"
    )
    print("|---|---|---|---|---|---|---|")
    for path in list_volumes(args.data, "multicoil", "val"):
        volume = load_volume(read_volume_info(path))
        kspace = volume.kspace[volume.info.num_slices // 2][None]  # (1, C, H, W)
        mask = mask_func(kspace.shape[-1], seed=file_seed(path.name)).mask[None]  # (1, W)
        y = apply_mask(kspace, mask)
        start, stop = center_band(mask[0])
        k = min(DEFAULT_KERNEL, (stop - start) // 2)  # our default, given to BART as well
        bart_s, agreement, bart = "", "", None
        if bart_available():
            run = run_bart_ecalib(y[0].numpy(), kernel_size=k)
            bart_s, bart = f"{run.wall_s:.2f}", torch.from_numpy(run.image)
        for name in args.devices:
            device = torch.device(name)
            yd, md = y.to(device), mask.to(device)
            acs_s, _ = _time(lambda: estimate_sens_maps(yd, md), device, args.repeats)  # noqa: B023
            esp_s, maps = _time(lambda: espirit_maps(yd, md), device, args.repeats)  # noqa: B023
            if bart is not None:
                ours = maps[0].cpu()
                both = ((ours.abs() ** 2).sum(0) > 0.5) & ((bart.abs() ** 2).sum(0) > 0.5)
                inner = (ours.conj() * bart).sum(0).abs()[both]
                if inner.numel():
                    agreement = f"{inner.mean():.4f} / {inner.quantile(0.01):.4f}"
            print(
                f"| {path.name} | {name} | {tuple(y.shape[1:])}, k {k} | {acs_s:.3f} | {esp_s:.3f} | "
                f"{bart_s} | {agreement} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

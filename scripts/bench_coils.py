"""CPU seconds per slice of the coil-map estimates (ACS ratio, our ESPIRiT, BART's ``ecalib``)
and how far our ESPIRiT maps are from BART's.

The centre slice of each multi-coil file of ``--data``/multicoil_val (full k-space, e.g.
8 x 640 x 372), masked with fastMRI's per-file random 4x validation mask (centre 0.08). Times
are CPU seconds (one thread each: ours under ``torch.set_num_threads(1)``, BART with
``OMP_NUM_THREADS=1``; ours from ``time.process_time()``, BART's from its child process's
rusage, so file writing and process start are in BART's, not the machine's load), the median
of ``--repeats`` runs. Both use our default kernel size ``min(6, centre columns // 2)``,
threshold 0.02, crop 0.95 and ``calib_size`` = the centre band.

Agreement: per pixel ``|<ours, bart>|`` over coils (1 = equal up to a per-pixel phase), inside
the object (the full-FOV RSS image of the fully sampled k-space, smoothed by a Gaussian of std
3 pixels, above 10% of its max: ``ssim_fg``'s foreground rule) where both maps are non-zero
(the two crops differ: BART scales its eigenvalues differently); mean and 1st percentile per
file, and over all files. ``full-res`` is the agreement of ours with our own eigen-
decomposition at every pixel (``eigen_step=1``, the method before issue 20).

    python scripts/bench_coils.py --data DIR [--repeats 3] [--eigen-step 4]

Ends with ``ESPIRiT agreement with BART: N.NNN`` and ``ESPIRiT time ratio (ours/BART): N.NN``
(ratio of the summed CPU seconds); without ``bart`` it says so and times ours only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from mri_recon.baselines.bart import bart_available, run_bart_ecalib
from mri_recon.data.fastmri import list_volumes, load_volume, read_volume_info
from mri_recon.metrics.optional import foreground
from mri_recon.physics.coils import DEFAULT_KERNEL, espirit_maps, estimate_sens_maps
from mri_recon.physics.crop import rss
from mri_recon.physics.fft import ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, center_band, file_seed


def _cpu(fn, repeats: int) -> tuple[float, torch.Tensor]:
    """Median CPU seconds of ``fn()`` over ``repeats`` runs, and its output."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return statistics.median(times), out


def _agreement(a: torch.Tensor, b: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """``|<a, b>|`` over coils of complex (C, H, W) maps at the pixels of bool (H, W) ``inside``
    where both are non-zero."""
    both = inside & ((a.abs() ** 2).sum(0) > 0.5) & ((b.abs() ** 2).sum(0) > 0.5)
    return (a.conj() * b).sum(0).abs()[both]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eigen-step", type=int, default=None, help="default: the library's")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # BART's
    step = {} if args.eigen_step is None else {"eigen_step": args.eigen_step}
    have_bart = bart_available()
    if not have_bart:
        print("bart is not installed: timing ours only (no agreement, no ratio)")
    mask_func = ColumnMaskFunc("random", [0.08], [4])
    print(
        "| file | shape (C, H, W), kernel | acs s | espirit s | bart ecalib s "
        "| vs bart mean / p1 | vs full-res mean |"
    )
    print("|---|---|---|---|---|---|---|")
    ours_total = bart_total = 0.0
    inners, count = [], 0
    for path in list_volumes(args.data, "multicoil", "val"):
        volume = load_volume(read_volume_info(path))
        kspace = volume.kspace[volume.info.num_slices // 2][None]  # (1, C, H, W)
        mask = mask_func(kspace.shape[-1], seed=file_seed(path.name)).mask[None]  # (1, W)
        y = apply_mask(kspace, mask)
        inside = torch.from_numpy(foreground(rss(ifft2c(kspace), dim=1).numpy())[0])
        start, stop = center_band(mask[0])
        k = min(DEFAULT_KERNEL, (stop - start) // 2)  # our default, given to BART as well
        acs_s, _ = _cpu(lambda: estimate_sens_maps(y, mask), args.repeats)  # noqa: B023
        esp_s, maps = _cpu(lambda: espirit_maps(y, mask, **step), args.repeats)  # noqa: B023
        full = espirit_maps(y, mask, eigen_step=1)[0]
        vs_full = f"{_agreement(maps[0], full, inside).mean():.4f}"
        bart_s, vs_bart = "-", "-"
        if have_bart:
            runs = [run_bart_ecalib(y[0].numpy(), kernel_size=k) for _ in range(args.repeats)]
            bart_cpu = statistics.median(r.cpu_s for r in runs)
            inner = _agreement(maps[0], torch.from_numpy(runs[0].image), inside)
            inners.append(inner)
            bart_s, vs_bart = f"{bart_cpu:.3f}", f"{inner.mean():.4f} / {inner.quantile(0.01):.4f}"
            bart_total += bart_cpu
        ours_total, count = ours_total + esp_s, count + 1
        print(
            f"| {path.name} | {tuple(y.shape[1:])}, {k} | {acs_s:.3f} | {esp_s:.3f} | {bart_s} "
            f"| {vs_bart} | {vs_full} |",
            flush=True,
        )
    print(f"ESPIRiT CPU seconds per slice (ours): {ours_total / max(1, count):.3f}")
    if have_bart and count:
        print(f"bart ecalib CPU seconds per slice: {bart_total / count:.3f}")
    if have_bart and inners:
        print(f"ESPIRiT agreement with BART: {float(torch.cat(inners).mean()):.3f}")
        print(f"ESPIRiT time ratio (ours/BART): {ours_total / bart_total:.2f}")


if __name__ == "__main__":
    main()

"""Diagnostics of TV-SENSE on multi-coil data (issue 20): why it loses whole-image SSIM to
zero-filling. One slice per volume (the centre slice), fastMRI's per-file random validation
mask, ACS maps, one thread. Subcommands:

- ``slices``: per volume, zero-filled and TV-SENSE (minimiser and data-consistent RSS output)
  at ``--lam``: whole-image SSIM, foreground SSIM (``ssim_fg``: the target smoothed by a
  Gaussian of std 3 pixels above 10% of the volume max), PSNR, NMSE, and the mean of the
  reconstruction over the target's mean in the background (1 = the target's noise floor).
- ``gap``: the objective ``1/2 ||A x - y||^2 + lam_eff TV(x)`` per primal-dual iteration of
  one slice (``--volume``), against the same solver run to ``--iters`` iterations.
- ``crop``: TV-SENSE at ``--lam`` with the ACS maps and with ESPIRiT maps at several crops
  (``--crops``), per volume: whole-image SSIM, foreground SSIM, PSNR.
- ``coils``: the best lambda across coil counts (subsets of the 8 coils, target = their RSS)
  and intensities (k-space x 100) on one slice: foreground SSIM and PSNR per lambda.

    python scripts/diag_tv_sense.py slices --data DIR [--acceleration 4] [--lam 0.002]
    python scripts/diag_tv_sense.py gap --data DIR --volume 3 [--lam 0.002] [--iters 1000]
    python scripts/diag_tv_sense.py coils --data DIR --volume 3
    python scripts/diag_tv_sense.py crop --data DIR [--crops 0.95 0.5 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from fastmri.evaluate import nmse, psnr, ssim

from mri_recon.baselines import tv as tvm
from mri_recon.data.fastmri import list_volumes, load_volume, read_volume_info
from mri_recon.metrics.optional import foreground, ssim_fg
from mri_recon.physics.coils import espirit_maps, estimate_sens_maps
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, file_seed
from mri_recon.physics.operators import SenseOperator
from mri_recon.physics.zero_filled import zero_filled

CENTER_FRACTIONS = {4: 0.08, 8: 0.04}


def _slice(path: Path, acceleration: int):
    """(k-space (1, C, H, W), target (1, h, w), volume max, mask (1, W)) of the centre slice."""
    volume = load_volume(read_volume_info(path))
    s = volume.info.num_slices // 2
    kspace = volume.kspace[s][None]
    target = np.asarray(volume.target[s], dtype=np.float32)[None]
    func = ColumnMaskFunc("random", [CENTER_FRACTIONS[acceleration]], [acceleration])
    mask = func(kspace.shape[-1], seed=file_seed(path.name)).mask[None]
    return kspace, target, float(volume.info.max_value), mask


def _scores(target, recon, vmax, fg) -> str:
    s = float(np.mean(ssim(target, recon, vmax)))
    bg = float(recon[~fg].mean() / target[~fg].mean())
    return (
        f"SSIM {s:.4f} fg {ssim_fg(target, recon, vmax):.4f} PSNR {psnr(target, recon, vmax):.2f} "
        f"NMSE {nmse(target, recon):.4f} bg {bg:.3f}"
    )


def slices(args) -> None:
    for path in list_volumes(args.data, "multicoil", "val"):
        kspace, target, vmax, mask = _slice(path, args.acceleration)
        y, crop, fg = apply_mask(kspace, mask), target.shape[-2:], foreground(target, vmax)
        maps = estimate_sens_maps(y, mask)
        print(f"{path.name} fg {fg.mean():.3f} of the pixels", flush=True)
        print(f"  zero-filled  {_scores(target, zero_filled(y, mask, crop).numpy(), vmax, fg)}")
        for dc in (False, True):
            out = tvm.TVReconstructor(lam=args.lam, data_consistency=dc)(y, mask, maps, crop)
            print(f"  tv dc={dc!s:5} {_scores(target, out.numpy(), vmax, fg)}", flush=True)


def gap(args) -> None:
    path = list_volumes(args.data, "multicoil", "val")[args.volume]
    kspace, _, _, mask = _slice(path, args.acceleration)
    y = apply_mask(kspace, mask)
    maps = estimate_sens_maps(y, mask)
    lam_eff = args.lam * tvm.data_scale(y)
    op = SenseOperator(maps, mask)
    step = tvm._SenseStep(y, op, lam_eff, tvm.TAU_SENSE)
    x = x_bar = step.x0()
    objective, change = [], []
    for _ in range(args.iters):
        new = step(x, x_bar)
        x_bar = 2 * new - x
        change.append(float(tvm._norms(new - x) / tvm._norms(new)))
        x = new
        objective.append(float(tvm.tv_objective(x, y, op, lam_eff)))
    best = objective[-1]
    print(f"{path.name} {args.acceleration}x lam {args.lam}: f({args.iters}) = {best:.6e}")
    print("| iteration | (f_k - f*) / f* | (f_k - f*) / (f_1 - f*) | relative change |")
    print("|---|---|---|---|")
    for k in (10, 25, 50, 100, 150, 200):
        if k <= args.iters:
            print(
                f"| {k} | {(objective[k - 1] - best) / best:.1e} | "
                f"{(objective[k - 1] - best) / (objective[0] - best):.1e} | {change[k - 1]:.1e} |"
            )


def coils(args) -> None:
    path = list_volumes(args.data, "multicoil", "val")[args.volume]
    full, _, _, mask = _slice(path, args.acceleration)
    lams = (0.0005, 0.001, 0.002, 0.004)
    print(
        f"{path.name}: | coils | scale | max|zf| / max target | zero-filled | "
        + " | ".join(f"lam {lam}" for lam in lams)
        + " |  (fg SSIM / PSNR)"
    )
    for subset in (list(range(full.shape[1])), [0, 2, 4, 6], [0, 4]):
        for factor in (1.0, 100.0) if len(subset) == full.shape[1] else (1.0,):
            k = full[:, subset] * factor
            target = center_crop(rss(ifft2c(k), dim=1), (320, 320)).numpy()
            vmax = float(target.max())
            y = apply_mask(k, mask)
            maps = estimate_sens_maps(y, mask)
            cells = [f"{len(subset)}", f"x{factor:g}", f"{float(tvm.data_scale(y)) / vmax:.3f}"]
            zf = zero_filled(y, mask, (320, 320)).numpy()
            cells.append(f"{ssim_fg(target, zf, vmax):.4f} / {psnr(target, zf, vmax):.2f}")
            for lam in lams:
                r = tvm.TVReconstructor(lam=lam)(y, mask, maps, (320, 320)).numpy()
                cells.append(f"{ssim_fg(target, r, vmax):.4f} / {psnr(target, r, vmax):.2f}")
            print("| " + " | ".join(cells) + " |", flush=True)


def crop(args) -> None:
    tv = tvm.TVReconstructor(lam=args.lam)
    for path in list_volumes(args.data, "multicoil", "val"):
        kspace, target, vmax, mask = _slice(path, args.acceleration)
        y, size = apply_mask(kspace, mask), target.shape[-2:]
        cells = []
        maps = [("acs", estimate_sens_maps(y, mask))]
        maps += [(f"espirit crop {c:g}", espirit_maps(y, mask, crop=c)) for c in args.crops]
        for name, sens in maps:
            r = tv(y, mask, sens, size).numpy()
            s = float(np.mean(ssim(target, r, vmax)))
            cells.append(
                f"{name}: SSIM {s:.4f} fg {ssim_fg(target, r, vmax):.4f} "
                f"PSNR {psnr(target, r, vmax):.2f}"
            )
        print(f"{path.name} | " + " | ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["slices", "gap", "coils", "crop"])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--acceleration", type=int, default=4, choices=sorted(CENTER_FRACTIONS))
    parser.add_argument("--lam", type=float, default=0.002)
    parser.add_argument("--volume", type=int, default=3)
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--crops", type=float, nargs="+", default=[0.95, 0.5, 0.0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    {"slices": slices, "gap": gap, "coils": coils, "crop": crop}[args.command](args)


if __name__ == "__main__":
    main()

"""Benchmark our classical reconstructors (TV, CG-SENSE, l1-wavelet) against BART's ``pics``
on the same slices and masks, single- or multi-coil.

BART is run as fastMRI's CS baseline runs it (``fastmri_examples/cs/run_bart.py``):
``bart pics -d0 -S <reg> -i N`` on the centered k-space with dims [1, H, W, C], ``<reg>`` per
method (``tv``: ``-R T:7:0:lam``; ``cg_sense``: ``-l2 -r lam``; ``wavelet``: ``-R W:7:0:lam``)
and N per method (``BART_ITERS``: 200 for TV, as ours). Single-coil: all-ones maps;
multi-coil (``--challenge multicoil``): BART gets its own ``bart ecalib -m1`` maps, ours our
default maps (the ``coils`` node's default, ACS), each computed once per slice and acceleration
and timed apart (``--bart-maps ours`` gives BART our maps: the solvers on equal maps). BART's lambda is the best (by mean SSIM) of a grid per method, chosen on the
benchmark slices themselves (an oracle lambda), while ours run with their defaults (the
challenge's, where the config group has one per challenge); ``--grid`` adds ours at the best
of the same grid mapped into our units (a row ``<method> best``: best lambda against best
lambda). The mapping: for ``tv`` and ``wavelet`` both lams are relative, ours to
``max|zero-filled|``, BART's to the scaling ``pics`` divides the data by (its
``estimate_scaling``, read from ``bart pics -d4``), so ``lam_BART = lam_ours x ratio`` with
``ratio = max|zero-filled| / BART's scaling`` (geometric mean over the slices, printed per
acceleration); CG-SENSE's lam means the same in both. Masks are
fastMRI's per-file validation masks (seed from the file name).

Metrics follow ``fastmri.evaluate``: SSIM and PSNR on the target-size crop (target
``reconstruction_esc`` single-coil, ``reconstruction_rss`` multi-coil) with ``data_range`` =
the target *volume* maximum (``attrs['max']``), averaged over slices. Times: wall and CPU
seconds per slice of the reconstruction (maps apart); ours from ``time.process_time()``, BART's
from ``RUSAGE_CHILDREN``; one thread each by default (torch threads 1, ``OMP_NUM_THREADS=1``).
The closing lines ``<method> <challenge> time ratio (ours/BART): N.NN`` are the CPU seconds of
the reconstruction summed over the accelerations, ours over BART's (maps not included; the
table shows the maps' seconds and the ratio with them).

    python scripts/bench_tv.py [--challenge singlecoil|multicoil] [--methods tv cg_sense wavelet]
        [--data DIR] [--accelerations 4 8] [--slices N] [--threads 1] [--grid]

BART is optional: without ``bart`` on PATH the script says so and benchmarks ours only.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from fastmri.evaluate import psnr, ssim
from omegaconf import OmegaConf

from mri_recon.baselines import CLASSICAL
from mri_recon.baselines.bart import bart_available, run_bart_ecalib, run_bart_pics, write_cfl
from mri_recon.baselines.tv import data_scale
from mri_recon.cli.config import config_dir
from mri_recon.data.demo import center_out_slices, default_data_root
from mri_recon.physics.coils import CoilMaps
from mri_recon.physics.crop import center_crop, crop_size_for
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, file_seed

CENTER_FRACTIONS = {4: 0.08, 8: 0.04}  # fastMRI's knee convention
TARGET_KEYS = {"singlecoil": "reconstruction_esc", "multicoil": "reconstruction_rss"}
# BART's lambda grid per method (its data scaling differs from ours: grids, not one value)
BART_LAMS = {
    "tv": [0.003, 0.01, 0.03],
    "cg_sense": [0.01, 0.03, 0.1, 0.3, 1.0],
    "wavelet": [0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1],
}
# methods whose lam is relative to the data scale (ours: max|zero-filled|; BART's pics: its
# estimate_scaling of the calibration region): their grids map by the measured ratio
RELATIVE = ("tv", "wavelet")
# BART's iterations per method (ours: each method's max_iters, printed beside): 200 ADMM for TV
# (fastMRI's call, as ours); BART's own default, 30, for CG and for FISTA (its wavelet SSIM on
# the synthetic multi-coil split is the same at 30 and 50: docs/RESULTS.md)
BART_ITERS = {"tv": 200, "cg_sense": 30, "wavelet": 30}


@dataclass
class Slice:
    fname: str
    index: int
    kspace: torch.Tensor  # complex64 (C, H, W), C = 1 single-coil
    target: np.ndarray  # float32 (h, w)
    max_value: float
    # acceleration -> (BART's maps complex (C, H, W), their CPU seconds)
    bart_maps: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)


@dataclass
class Row:
    method: str
    lam: float
    ssim: float
    psnr: float
    wall_s: float  # per slice, reconstruction only
    cpu_s: float  # per slice, reconstruction only
    maps_cpu_s: float = 0.0  # per slice, coil maps


def pick_slices(folder: Path, count: int, challenge: str) -> list[Slice]:
    """``count`` slices, round-robin over the volumes from the center slice outwards."""
    try:
        order = center_out_slices(folder, count)
    except ValueError as err:
        raise SystemExit(f"bench_tv: error: {err}") from None
    key, ndim = TARGET_KEYS[challenge], 3 if challenge == "singlecoil" else 4
    out = []
    for f, i, _ in order:
        with h5py.File(f, "r") as hf:
            if hf["kspace"].ndim != ndim or key not in hf:
                raise SystemExit(f"bench_tv: error: {f}: not a {challenge} file with {key}")
            target = hf[key]
            max_value = float(hf.attrs["max"]) if "max" in hf.attrs else float(target[()].max())
            kspace = torch.from_numpy(hf["kspace"][i])
            kspace = kspace[None] if ndim == 3 else kspace  # (C, H, W)
            out.append(Slice(f.name, i, kspace, target[i].astype(np.float32), max_value))
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
    """(masked k-space complex64 (C, H, W), mask bool (W,)) with the file's validation mask."""
    w = sl.kspace.shape[-1]
    mask = ColumnMaskFunc("random", [CENTER_FRACTIONS[accel]], [accel])(w, file_seed(sl.fname))
    return apply_mask(sl.kspace, mask.mask), mask.mask


def run_ours(slices: list[Slice], accel: int, methods: dict, device: torch.device) -> list[Row]:
    """Every method on the same batches (slices of equal shape) and maps (``CoilMaps()`` for
    multi-coil, timed once per batch and charged to every method); times cover the
    reconstruction only, the maps apart."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, sl in enumerate(slices):
        groups.setdefault(tuple(sl.kspace.shape), []).append(i)
    recons = {name: [None] * len(slices) for name in methods}
    wall, cpu = dict.fromkeys(methods, 0.0), dict.fromkeys(methods, 0.0)
    maps_cpu = 0.0
    for idx in groups.values():
        pairs = [masked(slices[i], accel) for i in idx]
        y = torch.stack([p[0] for p in pairs]).to(device)  # (B, C, H, W)
        mask = torch.stack([p[1] for p in pairs]).to(device)  # (B, W)
        crop = crop_size_for(y.shape[-1], slices[idx[0]].target.shape)
        maps = None
        if y.shape[1] > 1:
            _sync(device)
            c0 = time.process_time()
            maps = CoilMaps()(y, mask)
            _sync(device)
            maps_cpu += time.process_time() - c0
        for name, method in methods.items():
            _sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            out = method(y, mask, maps, crop)
            _sync(device)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
            for j, i in enumerate(idx):
                recons[name][i] = out[j].cpu().numpy()
    n = len(slices)
    rows = []
    for name, method in methods.items():
        s, p = scores(slices, recons[name])
        rows.append(Row(name, method.lam, s, p, wall[name] / n, cpu[name] / n, maps_cpu / n))
    return rows


def bart_maps(sl: Slice, accel: int, source: str) -> tuple[np.ndarray | None, float]:
    """The maps BART gets (None single-coil), once per (slice, acceleration): its own
    ``ecalib -m1`` (``source="ecalib"``) or ours (``"ours"``: ``CoilMaps()``, the solvers
    compared on equal maps); and their CPU seconds (computed once, reported for each method)."""
    if sl.kspace.shape[0] == 1:
        return None, 0.0
    if accel not in sl.bart_maps:
        y, mask = masked(sl, accel)
        if source == "ours":
            c0 = time.process_time()
            maps = CoilMaps()(y[None], mask[None])[0].numpy()
            sl.bart_maps[accel] = maps, time.process_time() - c0
        else:
            res = run_bart_ecalib(y.numpy())
            sl.bart_maps[accel] = res.image, res.cpu_s
    return sl.bart_maps[accel]


def bart_data_scale(y: np.ndarray) -> float:
    """The scaling ``bart pics`` divides a (C, H, W) k-space by (``estimate_scaling``: from
    the fully sampled centre, maps not used), read from its ``-d4`` log."""
    with tempfile.TemporaryDirectory(prefix="bart_") as tmp:
        write_cfl(f"{tmp}/k", np.transpose(y, (1, 2, 0))[None])
        write_cfl(f"{tmp}/s", np.ones_like(np.transpose(y, (1, 2, 0))[None]))
        cmd = ["bart", "pics", "-d4", "-i", "1", "-l2", "-r", "0", *(f"{tmp}/{n}" for n in "kso")]
        log = subprocess.run(cmd, capture_output=True, text=True)
    found = re.search(r"Inverse scaling of the data: ([-+.0-9eE]+)", log.stdout + log.stderr)
    if found is None:
        raise SystemExit(f"bench_tv: error: no data scaling in `{' '.join(cmd[:8])}`'s log")
    return float(found.group(1))


def lambda_ratio(slices: list[Slice], accel: int) -> float:
    """``max|zero-filled| / BART's data scaling``, geometric mean over the slices: a
    relative lam of ours weighs the l1 term as BART's lam = ours x this ratio."""
    ratios = []
    for sl in slices:
        y, _ = masked(sl, accel)
        ratios.append(data_scale(y[None]).item() / bart_data_scale(y.numpy()))
    return float(np.exp(np.mean(np.log(ratios))))


def run_bart(
    slices: list[Slice], accel: int, method: str, lams: list[float], iters: int, source: str
) -> list[Row]:
    maps_cpu = sum(bart_maps(sl, accel, source)[1] for sl in slices) / len(slices)
    rows = []
    for lam in lams:
        recons, wall, cpu = [], 0.0, 0.0
        for sl in slices:
            y, _ = masked(sl, accel)
            maps, _ = bart_maps(sl, accel, source)
            res = run_bart_pics(y.numpy(), maps, lam, num_iters=iters, regularizer=method)
            crop = crop_size_for(y.shape[-1], sl.target.shape)
            recons.append(center_crop(torch.from_numpy(np.abs(res.image)), crop).numpy())
            wall, cpu = wall + res.wall_s, cpu + res.cpu_s
        s, p = scores(slices, recons)
        n = len(slices)
        rows.append(Row(f"bart {method}", lam, s, p, wall / n, cpu / n, maps_cpu))
        print(f"  bart {method} lam={lam:g} -i {iters}: SSIM {s:.4f} PSNR {p:.2f}", flush=True)
    return rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


HEADER = (
    f"{'R':>3}  {'method':<16}{'lam':>8}{'iters':>6}{'SSIM':>8}{'PSNR':>8}{'wall s/sl':>11}"
    f"{'CPU s/sl':>10}{'maps CPU':>10}"
)


def print_rows(
    accel: int, iters: int, bart_iters: int, ours: Row, bart: Row | None, show_bart: bool = True
) -> None:
    for r, n in [(ours, iters)] + ([(bart, bart_iters)] if bart and show_bart else []):
        print(
            f"{accel:>2}x  {r.method:<16}{r.lam:>8g}{n:>6}{r.ssim:>8.4f}{r.psnr:>8.2f}"
            f"{r.wall_s:>11.3f}{r.cpu_s:>10.3f}{r.maps_cpu_s:>10.3f}"
        )
    if bart:
        with_maps = (ours.cpu_s + ours.maps_cpu_s) / (bart.cpu_s + bart.maps_cpu_s)
        print(
            f"{accel:>2}x  {ours.method} ours-BART: SSIM {ours.ssim - bart.ssim:+.4f}, PSNR "
            f"{ours.psnr - bart.psnr:+.2f} dB, CPU x{ours.cpu_s / bart.cpu_s:.3f} "
            f"(with maps x{with_maps:.3f}), wall x{ours.wall_s / bart.wall_s:.3f}",
            flush=True,
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=default_data_root(),
        help="data root holding <challenge>_val/ (default $MRI_RECON_DATA or data/synthetic)",
    )
    ap.add_argument("--challenge", choices=sorted(TARGET_KEYS), default="singlecoil")
    ap.add_argument("--methods", nargs="+", choices=list(CLASSICAL), default=["tv"])
    ap.add_argument(
        "--accelerations", type=int, nargs="+", default=[4, 8], choices=sorted(CENTER_FRACTIONS)
    )
    ap.add_argument("--slices", type=int, default=6)
    ap.add_argument(
        "--bart-lams", type=float, nargs="+", default=None, help="one grid for every method"
    )
    ap.add_argument(
        "--bart-iters", type=int, default=None, help=f"every method (default: {BART_ITERS})"
    )
    ap.add_argument(
        "--bart-maps",
        choices=["ecalib", "ours"],
        default="ecalib",
        help="multi-coil: BART's own ecalib -m1 maps, or ours (the solvers on equal maps)",
    )
    ap.add_argument("--lam", type=float, default=None, help="ours, every method (default: its own)")
    ap.add_argument(
        "--grid",
        action="store_true",
        help="also ours at the best lambda of BART's grid mapped into our units (best vs best)",
    )
    ap.add_argument("--max-iters", type=int, default=None, help="ours, every method")
    ap.add_argument("--tol", type=float, default=None, help="ours, TV and CG-SENSE")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads and OMP_NUM_THREADS for BART (0: library defaults)",
    )
    ap.add_argument("--device", default="cpu", help="device for ours (cpu, cuda)")
    ap.add_argument("--no-bart", action="store_true", help="benchmark ours only")
    return ap.parse_args(argv)


def default_lam(name: str, challenge: str) -> float | None:
    """The challenge's default weight where the method's config group has one per challenge
    (``<name>_lam.<challenge>`` in ``configs/<name>/default.yaml``), else None (the
    constructor's)."""
    per_challenge = OmegaConf.load(Path(config_dir()) / name / "default.yaml").get(f"{name}_lam")
    return None if per_challenge is None else float(per_challenge[challenge])


def build(name: str, args: argparse.Namespace, **extra):
    lam = args.lam if args.lam is not None else default_lam(name, args.challenge)
    kwargs = {"lam": lam, "max_iters": args.max_iters, **extra}
    if name != "wavelet":
        kwargs["tol"] = args.tol
    return CLASSICAL[name](**{k: v for k, v in kwargs.items() if v is not None})


def best_of_grid(
    slices: list[Slice], accel: int, args, name: str, lams: list[float], ratio: float, device
) -> Row:
    """Ours at the best (mean SSIM) of BART's grid mapped into our units (``lam / ratio`` for
    relative weights, the same values for CG-SENSE's absolute one), as BART's is chosen."""
    mapped = [float(f"{lam / (ratio if name in RELATIVE else 1.0):.3g}") for lam in lams]
    rows = [
        run_ours(slices, accel, {name: build(name, args, lam=lam)}, device)[0] for lam in mapped
    ]
    for row in rows:
        print(f"  ours {name} lam={row.lam:g}: SSIM {row.ssim:.4f} PSNR {row.psnr:.2f}", flush=True)
    best = max(rows, key=lambda r: r.ssim)
    return Row(
        f"{name} best", best.lam, best.ssim, best.psnr, best.wall_s, best.cpu_s, best.maps_cpu_s
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    device = torch.device(args.device)
    methods = {name: build(name, args) for name in args.methods}
    folder = args.data / f"{args.challenge}_val"
    slices = pick_slices(folder, args.slices, args.challenge)
    have_bart = bart_available() and not args.no_bart
    print(
        f"data {folder}: {len(slices)} slices "
        f"({', '.join(f'{s.fname}[{s.index}]' for s in slices)}); ours on {device}: "
        f"{'; '.join(repr(m) for m in methods.values())}; "
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; maps: "
        + (
            f"ours CoilMaps() (ACS), BART {'ecalib -m1' if args.bart_maps == 'ecalib' else 'ours'}"
            if args.challenge == "multicoil"
            else "ones"
        )
    )
    if not bart_available():
        print("SKIP BART: `bart` is not on PATH (apt-get install bart); benchmarking ours only")
    # Warm-up (FFT plans, allocator, wavelet matrices) so that ours is timed in steady state.
    run_ours(
        slices[:1], args.accelerations[0], {n: build(n, args, max_iters=2) for n in methods}, device
    )
    totals = {name: [0.0, 0.0] for name in methods}  # ours, BART CPU s/slice summed over R
    print(HEADER, flush=True)
    for accel in args.accelerations:
        ratio = lambda_ratio(slices, accel) if have_bart else 1.0
        if have_bart and any(name in RELATIVE for name in methods):
            print(
                f"  {accel}x: lam_BART = lam_ours x {ratio:.3f} (max|zero-filled| / BART's scaling)"
            )
        for ours in run_ours(slices, accel, methods, device):
            iters = args.bart_iters or BART_ITERS[ours.method]
            bart = None
            if have_bart:
                lams = args.bart_lams or BART_LAMS[ours.method]
                grid = run_bart(slices, accel, ours.method, lams, iters, args.bart_maps)
                bart = max(grid, key=lambda r: r.ssim)
                totals[ours.method][1] += bart.cpu_s
            totals[ours.method][0] += ours.cpu_s
            print_rows(accel, methods[ours.method].max_iters, iters, ours, bart)
            if have_bart and args.grid:
                best = best_of_grid(slices, accel, args, ours.method, lams, ratio, device)
                print_rows(accel, methods[ours.method].max_iters, iters, best, bart, False)
    for name, (ours_cpu, bart_cpu) in totals.items():
        if have_bart:
            print(f"{name} {args.challenge} time ratio (ours/BART): {ours_cpu / bart_cpu:.2f}")
        else:
            print(f"{name} {args.challenge}: ours {ours_cpu:.2f} CPU s/slice (no BART to compare)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

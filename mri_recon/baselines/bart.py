"""BART (Berkeley Advanced Reconstruction Toolbox) as a benchmark reference: its .cfl/.hdr
file format and a subprocess wrapper around ``bart pics``.

Benchmark-only: used by ``scripts/bench_tv.py`` and never imported by runtime code; BART is
not a dependency (Debian package ``bart``). fastMRI's own CS baseline
(``fastmri_examples/cs/run_bart.py``) passes the *centered* k-space to BART unchanged, with
dims ``[1, H, W, C]`` (BART's x, y, z, coils); BART's FFT is centered by ``fftmod``, which for
even sizes equals the fftshift-centered transform up to a sign pattern, so magnitudes agree.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BART_DIMS = 16  # BART's DIMS: every .cfl header lists 16 sizes
# ``bart pics`` regularisers by our method names: TV over image dims 0-2 (flags 7), the
# Tikhonov term ||x||^2 (solved by CG), l1 of BART's Daubechies wavelets with random shifts.
PICS_REGULARIZERS = {
    "tv": lambda lam: ["-R", f"T:7:0:{lam}"],
    "cg_sense": lambda lam: ["-l2", "-r", f"{lam}"],
    "wavelet": lambda lam: ["-R", f"W:7:0:{lam}"],
}


def write_cfl(base: str | Path, array: np.ndarray) -> None:
    """Write ``base.hdr`` and ``base.cfl`` (``base``: path without extension) of an array of
    up to 16 dims as complex64 in column-major (Fortran) order, as BART stores it."""
    array = np.asarray(array)
    dims = list(array.shape) + [1] * (BART_DIMS - array.ndim)
    base = Path(base)
    base.with_suffix(".hdr").write_text("# Dimensions\n" + " ".join(map(str, dims)) + "\n")
    data = np.asarray(array, dtype=np.complex64).reshape(-1, order="F")
    data.tofile(base.with_suffix(".cfl"))


def read_cfl(base: str | Path) -> np.ndarray:
    """Read ``base.hdr`` / ``base.cfl`` (``base``: path without extension) into a complex64
    array of the header's dims, trailing singleton dims removed."""
    base = Path(base)
    lines = [ln for ln in base.with_suffix(".hdr").read_text().splitlines() if ln.strip()]
    dims = [int(v) for v in lines[lines.index("# Dimensions") + 1].split()]  # as BART writes it
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    data = np.fromfile(base.with_suffix(".cfl"), dtype=np.complex64)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{base.with_suffix('.cfl')}: {data.size} values, header says dims {dims}")
    return data.reshape(dims, order="F")


def bart_available(bart: str = "bart") -> bool:
    """Whether the ``bart`` executable is on PATH (or at the given path)."""
    return shutil.which(bart) is not None


@dataclass(frozen=True)
class BartRun:
    """One ``bart pics`` call.

    Attributes:
        image: complex64 (H, W) reconstruction.
        wall_s: wall-clock seconds of the subprocess.
        cpu_s: user + system CPU seconds of the subprocess (all its threads).
    """

    image: np.ndarray
    wall_s: float
    cpu_s: float


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run(cmd: list[str]) -> tuple[float, float]:
    """Run a ``bart`` command; its wall and CPU seconds (RuntimeError with its stderr if it
    fails)."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return wall, cpu


def run_bart_pics(
    kspace: np.ndarray,
    sens_maps: np.ndarray | None,
    lam: float,
    num_iters: int = 200,
    bart: str = "bart",
    regularizer: str = "tv",
) -> BartRun:
    """Regularised SENSE with ``bart pics -d0 -S <regularizer> -i num_iters``: by default TV,
    ``-R T:7:0:lam`` (fastMRI's call); :data:`PICS_REGULARIZERS` names the others.

    Args:
        kspace: complex (C, H, W) centered masked k-space (C = 1 for single-coil).
        sens_maps: complex (C, H, W), or None for all-ones maps (single-coil).
        lam: BART's regularisation weight.
        num_iters: iterations (ADMM for TV, CG for l2, FISTA for wavelets).
        bart: the BART executable.
        regularizer: a key of :data:`PICS_REGULARIZERS`.

    Returns:
        BartRun with the (H, W) complex image and the subprocess's wall and CPU seconds.
    """
    sens_maps = np.ones_like(kspace) if sens_maps is None else sens_maps
    if kspace.ndim != 3 or sens_maps.shape != kspace.shape:
        raise ValueError(
            f"kspace and sens_maps must be (C, H, W), got {kspace.shape}, {sens_maps.shape}"
        )
    with tempfile.TemporaryDirectory(prefix="bart_") as tmp:
        tmp = Path(tmp)
        # [C, H, W] -> BART's [1, H, W, C] (x, y, z, coil), as fastMRI's run_bart.py.
        write_cfl(tmp / "kspace", np.transpose(kspace, (1, 2, 0))[None])
        write_cfl(tmp / "sens", np.transpose(sens_maps, (1, 2, 0))[None])
        cmd = [
            bart,
            "pics",
            "-d0",
            "-S",
            *PICS_REGULARIZERS[regularizer](lam),
            "-i",
            str(num_iters),
            str(tmp / "kspace"),
            str(tmp / "sens"),
            str(tmp / "out"),
        ]
        wall, cpu = _run(cmd)
        image = read_cfl(tmp / "out").reshape(kspace.shape[1:])
    return BartRun(image=image, wall_s=wall, cpu_s=cpu)


def run_bart_ecalib(
    kspace: np.ndarray,
    kernel_size: int = 6,
    threshold: float = 0.02,
    crop: float = 0.95,
    calib_size: int = 24,
    bart: str = "bart",
) -> BartRun:
    """ESPIRiT maps with ``bart ecalib -m1 -k kernel_size -t threshold -c crop -r calib_size``
    (one set of maps; the calibration region is BART's fully sampled centre, up to
    ``calib_size`` per axis).

    Args:
        kspace: complex (C, H, W) centered masked k-space.

    Returns:
        BartRun whose ``image`` is the complex64 (C, H, W) maps.
    """
    with tempfile.TemporaryDirectory(prefix="bart_") as tmp:
        tmp = Path(tmp)
        write_cfl(tmp / "kspace", np.transpose(kspace, (1, 2, 0))[None])  # (1, H, W, C)
        cmd = [bart, "ecalib", "-m1", "-k", str(kernel_size), "-t", str(threshold)]
        cmd += ["-c", str(crop), "-r", str(calib_size), str(tmp / "kspace"), str(tmp / "maps")]
        wall, cpu = _run(cmd)
        maps = read_cfl(tmp / "maps").reshape(kspace.shape[1:] + kspace.shape[:1])
    return BartRun(
        image=np.ascontiguousarray(np.transpose(maps, (2, 0, 1))), wall_s=wall, cpu_s=cpu
    )

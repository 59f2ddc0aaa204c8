"""The code, package versions and hardware a run ran with, and the resources it used.

Everything here degrades to ``None`` instead of failing: a package installed outside a git
checkout has no commit, a machine without CUDA no GPUs, a missing ``git`` no code state.
"""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGES = {
    "torch": "torch",
    "lightning": "pytorch-lightning",
    "hydra": "hydra-core",
    "omegaconf": "omegaconf",
    "fastmri": "fastmri",
    "h5py": "h5py",
    "numpy": "numpy",
    "mri_recon": "mri_recon",
}
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../mri_recon
_MIB = 1 << 20


def _git(root: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, check=True, timeout=30
    ).stdout


def git_state(package_dir: Path = PACKAGE_DIR) -> dict[str, Any] | None:
    """The git state of the checkout ``package_dir`` lives in, or None (not in a checkout of
    its own, e.g. installed into site-packages; or no ``git``).

    Returns:
        ``{"root", "commit", "dirty", "diff_sha256", "changed"}``: ``dirty`` when tracked
        files differ from the commit or untracked (not ignored) files exist;
        ``diff_sha256`` hashes ``git diff HEAD --binary`` plus each untracked file's name and
        content (None when clean); ``changed`` lists ``git status --porcelain`` (first 100).
    """
    root = package_dir.parent
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip()).resolve()
        if top != root.resolve() or not (root / "pyproject.toml").is_file():
            return None  # e.g. site-packages inside someone else's repository
        commit = _git(root, "rev-parse", "HEAD").decode().strip()
        status = _git(root, "status", "--porcelain").decode().splitlines()
        digest = hashlib.sha256(_git(root, "diff", "HEAD", "--binary"))
        untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z").split(b"\0")
        for name in filter(None, untracked):
            digest.update(b"\0" + name + b"\0")
            path = root / name.decode()
            digest.update(path.read_bytes() if path.is_file() else b"")
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return None
    return {
        "root": str(root),
        "commit": commit,
        "dirty": bool(status),
        "diff_sha256": digest.hexdigest() if status else None,
        "changed": status[:100],
    }


def package_versions() -> dict[str, str | None]:
    """Python and the versions of the packages a result depends on (None: not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in PACKAGES.items():
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = None
    versions["cuda"] = torch.version.cuda
    versions["cudnn"] = str(torch.backends.cudnn.version()) if torch.cuda.is_available() else None
    return versions


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """CPU model and cores (all, and usable by this process), memory, torch threads, and
    each visible GPU's name and memory."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // _MIB
    except (ValueError, OSError, AttributeError):
        memory = None
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append({"name": props.name, "memory_mib": props.total_memory // _MIB})
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "memory_mib": memory,
        "torch_threads": torch.get_num_threads(),
        "gpus": gpus,
    }


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class ResourceMeter:
    """Wall time, CPU time (this process and its finished children, e.g. data workers and
    DDP ranks), peak memory and GPU time of a stretch of work.

    Peak host memory is the process's (or a child's) high-water mark (``ru_maxrss``),
    since the process started; peak GPU memory is ``torch.cuda.max_memory_allocated`` per
    device, reset when the meter starts.
    """

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = _cpu_seconds()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(i)

    def read(self, num_gpus: int = 0, slices: int | None = None) -> dict[str, Any]:
        """The resources used since the meter was made.

        Args:
            num_gpus: GPUs the work ran on (all ranks): ``gpu_hours`` = wall time x this.
            slices: slices processed (reconstructed, or trained and validated), for
                ``slices_per_second`` over the wall time.
        """
        wall = time.perf_counter() - self.wall0
        cpu = _cpu_seconds() - self.cpu0
        rss_kib = max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        peak_scale = 1 if sys.platform != "darwin" else 1 / 1024  # bytes there, KiB here
        gpu_peaks = {}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i in range(torch.cuda.device_count()):
                peak = torch.cuda.max_memory_allocated(i)
                if peak:
                    gpu_peaks[f"cuda:{i}"] = round(peak / _MIB, 1)
        return {
            "wall_seconds": round(wall, 3),
            "cpu_seconds": round(cpu, 3),
            "cpu_core_hours": round(cpu / 3600, 6),
            "gpu_hours": round(wall * num_gpus / 3600, 6) if num_gpus else None,
            "peak_host_memory_mib": round(rss_kib * peak_scale / 1024, 1),
            "peak_gpu_memory_mib": gpu_peaks,
            "slices": slices,
            "slices_per_second": round(slices / wall, 3) if slices and wall > 0 else None,
        }

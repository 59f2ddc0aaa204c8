"""Building the synthetic dataset: file names, per-volume seeds, the manifest, staging.

:func:`generate_dataset` writes ``<out>/<challenge>_<split>/file*.h5`` (volumes from
:mod:`mri_recon.data.synthetic.volume`) through hidden staging folders, and records what the
build was made from in a manifest ``<out>/synthetic_<challenge>.json``;
:func:`ensure_dataset` builds only what a data root lacks. The stored format is described
in :mod:`mri_recon.data.synthetic`, which re-exports this module's public names.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mri_recon import checks
from mri_recon.data.fastmri import CHALLENGES
from mri_recon.data.synthetic.phantoms import CONTRASTS
from mri_recon.data.synthetic.volume import (
    SynthConfig,
    resolve_config,
    synth_volume,
    write_synth_volume,
)
from mri_recon.fileio import make_temp_dir, write_atomic

SPLITS = ("train", "val", "test")  # the splits generated (fastMRI's "challenge" is not)
TEST_MASKS = ((0.08, 4), (0.04, 8))  # (center_fraction, acceleration), alternating
# Manifests name the public module, whichever module writes them.
_GENERATOR = "mri_recon.data.synthetic"


def _volume_rng(seed: int, challenge: str, split: str, index: int) -> np.random.Generator:
    key = (CHALLENGES.index(challenge), SPLITS.index(split), index)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def file_names(config: SynthConfig, challenge: str, seed: int) -> dict[str, list[str]]:
    """fastMRI-style file names per split (``file1000123.h5``), unique across the splits of
    a challenge (single-coil ``file10xxxxx``, multi-coil ``file11xxxxx``), from the seed."""
    sizes = config.sizes(challenge)
    total = sum(n for n, _ in sizes.values())
    c = CHALLENGES.index(challenge)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(c, len(SPLITS))))
    numbers = iter(rng.choice(100_000, size=total, replace=False) + 1_000_000 + 100_000 * c)
    return {split: [f"file{next(numbers)}.h5" for _ in range(n)] for split, (n, _) in sizes.items()}


def _challenges(challenge: str) -> tuple[str, ...]:
    if challenge == "both":
        return CHALLENGES
    return (checks.one_of("challenge", challenge, (*CHALLENGES, "both")),)


def _has_volumes(folder: Path) -> bool:
    return folder.is_dir() and any(
        p.suffix == ".h5" and not p.name.startswith(".") for p in folder.iterdir()
    )


def manifest_path(root: str | os.PathLike, challenge: str) -> Path:
    """``<root>/synthetic_<challenge>.json``: what a synthetic build was made from (kept
    outside the split folders, whose every file fastMRI's loader opens as HDF5)."""
    return Path(root) / f"synthetic_{challenge}.json"


def _manifest(preset: str | SynthConfig, config: SynthConfig, seed: int) -> dict[str, Any]:
    name = preset if isinstance(preset, str) else "custom"
    return json.loads(
        json.dumps(
            {
                "generator": _GENERATOR,
                "preset": name,
                "seed": seed,
                "config": dataclasses.asdict(config),
            }
        )
    )


def _read_manifest(root: Path, challenge: str) -> dict[str, Any] | None:
    path = manifest_path(root, challenge)
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable synthetic-dataset manifest ({err})") from None


def _write_manifest(root: Path, challenge: str, manifest: dict[str, Any]) -> None:
    write_atomic(manifest_path(root, challenge), json.dumps(manifest, indent=2))


def _same_build(a: dict[str, Any] | None, b: dict[str, Any], challenge: str) -> bool:
    """Same seed and config, but for the other challenge's sizes (a single-coil build does not
    depend on the ``multicoil_*`` fields: the default preset's multi-coil validation split
    grew from 4 to 8 volumes with the single-coil data unchanged)."""

    def own(manifest: dict[str, Any]) -> dict[str, Any]:
        config = manifest.get("config") or {}
        other = challenge == "singlecoil"
        return {k: v for k, v in config.items() if not (other and k.startswith("multicoil_"))}

    return a is not None and a.get("seed") == b["seed"] and own(a) == own(b)


def _check_targets(
    out: Path, challenge: str, splits: Sequence[str], manifest: dict[str, Any], overwrite: bool
) -> None:
    """Refuse to overwrite volumes, or to add splits next to data from another build."""
    for split in SPLITS:
        folder = out / f"{challenge}_{split}"
        if not _has_volumes(folder):
            continue
        if split in splits and not overwrite:
            raise ValueError(
                f"{folder} already holds .h5 volumes; replace them with --overwrite "
                "(overwrite=True in Python) or choose another output directory"
            )
        if split not in splits and not _same_build(
            _read_manifest(out, challenge), manifest, challenge
        ):
            raise ValueError(
                f"{folder} holds volumes of another build (see "
                f"{manifest_path(out, challenge)}); adding {list(splits)} would "
                "mix datasets: rebuild all splits or use another directory"
            )


def _move_into_place(tmp: Path, final: Path) -> None:
    """Publish a finished split folder: rename it, or move its files into an existing one."""
    if final.is_dir():
        for old in final.glob("*.h5"):
            old.unlink()
        if not any(final.iterdir()):
            final.rmdir()
    if not final.exists():
        os.rename(tmp, final)
        return
    for path in tmp.iterdir():
        os.replace(path, final / path.name)
    tmp.rmdir()


@dataclass(frozen=True)
class _Job:
    """One volume to generate: its place in the dataset and its staging path."""

    challenge: str
    split: str
    index: int
    path: Path
    num_slices: int


def _run_job(job: _Job, config: SynthConfig, seed: int) -> None:
    """Generate and write one volume (widths and contrasts cycle, padding is spread evenly)."""
    i, offset = job.index, SPLITS.index(job.split)
    padded = int((i + 1) * config.padding_fraction) > int(i * config.padding_fraction)
    volume = synth_volume(
        config,
        job.challenge,
        _volume_rng(seed, job.challenge, job.split, i),
        num_slices=job.num_slices,
        width=config.widths[(i + offset) % len(config.widths)],
        acquisition=CONTRASTS[(i + offset) % len(CONTRASTS)],
        padded=padded,
    )
    mask = TEST_MASKS[i % len(TEST_MASKS)] if job.split == "test" else None
    write_synth_volume(job.path, volume, config, test_mask=mask)


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # Linux: respects taskset / container CPU sets
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _run_jobs(
    jobs: list[_Job], config: SynthConfig, seed: int, workers: int, progress: bool
) -> None:
    """Run the jobs on ``workers`` threads (numpy, torch and h5py release the GIL)."""
    with tqdm(total=len(jobs), desc="synthetic volumes", unit="vol", disable=not progress) as bar:
        if workers <= 1:
            for job in jobs:
                _run_job(job, config, seed)
                bar.update(1)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_run_job, job, config, seed) for job in jobs]
            try:
                for future in as_completed(futures):
                    future.result()
                    bar.update(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def generate_dataset(
    out: str | os.PathLike,
    preset: str | SynthConfig = "default",
    challenge: str = "both",
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
    splits: Sequence[str] = SPLITS,
    workers: int | None = None,
    **overrides: Any,
) -> list[Path]:
    """Generate the synthetic dataset as ``<out>/<challenge>_<split>/file*.h5``.

    Each split is written into a hidden temporary folder next to its destination and moved
    into place once every volume is written, so an interrupted run leaves no partial split.
    A manifest ``<out>/synthetic_<challenge>.json`` records the preset, seed and config.
    Splits with 0 volumes get no folder.

    Args:
        out: data root.
        preset: a ``PRESETS`` name or a :class:`SynthConfig`.
        challenge: "singlecoil", "multicoil" or "both".
        seed: the dataset seed; the same seed gives byte-identical arrays.
        progress: show a tqdm bar over volumes.
        overwrite: replace the .h5 volumes of splits that already hold some.
        splits: the splits to write (default all of ``SPLITS``).
        workers: volumes generated concurrently (threads); default: the usable CPUs, at
            most 4.
            The output does not depend on it.
        **overrides: :class:`SynthConfig` fields to replace (e.g. ``num_train=2``).

    Returns:
        The written files, in (challenge, split, index) order.

    Raises:
        ValueError: bad preset, field, challenge, split or seed; a destination split already
            holds volumes (without ``overwrite``); or other splits there are another build's.
    """
    config = resolve_config(preset, **overrides)
    challenges = _challenges(challenge)
    if not splits or any(s not in SPLITS for s in splits):
        raise ValueError(f"splits={list(splits)}: each must be one of {SPLITS}")
    out, seed = Path(out), checks.integer("seed", seed, 0)
    manifest = _manifest(preset, config, seed)
    for c in challenges:
        _check_targets(out, c, splits, manifest, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    staged: dict[Path, Path] = {}  # final folder -> staging folder
    jobs: list[_Job] = []
    try:
        for c in challenges:
            _write_manifest(out, c, manifest)
            names = file_names(config, c, seed)
            for s in splits:
                count, slices = config.sizes(c)[s]
                if count:
                    tmp = make_temp_dir(out, prefix=f".{c}_{s}.", suffix=".partial")
                    staged[out / f"{c}_{s}"] = tmp
                    jobs += [_Job(c, s, i, tmp / n, slices) for i, n in enumerate(names[s])]
        _run_jobs(jobs, config, seed, workers or min(4, _usable_cpus()), progress)
        for final, tmp in staged.items():
            _move_into_place(tmp, final)
    finally:
        for tmp in staged.values():
            if tmp.exists():
                shutil.rmtree(tmp)
    return [out / f"{job.challenge}_{job.split}" / job.path.name for job in jobs]


def ensure_dataset(
    root: str | os.PathLike,
    challenge: str = "singlecoil",
    preset: str | SynthConfig = "default",
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Build the synthetic dataset under ``root`` unless it is already there.

    Per challenge: if no split folder holds volumes, everything is generated; if some do and
    the manifest shows they are ours (an interrupted build), the missing splits are added
    (identical to a full build); folders without a manifest are someone else's data
    (e.g. genuine fastMRI) and are left alone. Existing data from another preset or seed is
    used as is, with a warning.

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    config = resolve_config(preset)
    wanted = _manifest(preset, config, seed)
    for c in _challenges(challenge):
        present = [s for s in SPLITS if _has_volumes(root / f"{c}_{s}")]
        found = _read_manifest(root, c)
        if present and found is None:
            continue
        if present and not _same_build(found, wanted, c):
            if len(present) < len(SPLITS):
                raise ValueError(
                    f"{root}: incomplete synthetic {c} data from another build "
                    f"(see {manifest_path(root, c)}); delete it or pick another root"
                )
            warnings.warn(
                f"{root}: using existing synthetic {c} data built with preset "
                f"{found.get('preset')!r} seed {found.get('seed')}, not preset "
                f"{wanted['preset']!r} seed {seed}",
                stacklevel=2,
            )
            continue
        missing = [s for s in SPLITS if s not in present]
        if missing:
            generate_dataset(root, preset, c, seed, progress=progress, splits=missing)
    return root

"""Reconstruct files without targets (``mri-recon-predict``): the evaluation's loop and
outputs on one ``.h5`` file or a folder of them, in fastMRI's file format.

Each file's mask (:func:`mri_recon.evaluation.volumes.volume_mask`): a test file's stored
``mask``; already undersampled k-space without one, the mask read from its all-zero columns
inside the header's encoded limits; fully sampled k-space, the configured mask function's
per-file mask (as the evaluation draws it). Outputs are the evaluation's, published all
together: ``reconstructions/<method>/<fname>`` (fastMRI's submission layout, ``reconstruction``
float32 (S, h, w)), the ``export`` formats, ``per_volume.csv`` (timings and masks; metrics
where a file happens to have a target) and the summary; one log line per volume.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mri_recon.data.fastmri import DataError, VolumeInfo, read_volume_info
from mri_recon.data.prescan import scan_values
from mri_recon.evaluation.run import EvalReport, EvalSettings, MethodOutput, run_evaluation
from mri_recon.evaluation.volumes import SkippedFile, VolumeMask


def input_files(path: str | os.PathLike, reader: Any = None) -> list[Path]:
    """``path`` itself if it is a file, else the sorted ``*.h5`` files of the folder (hidden
    ones left out; another format: its reader's volumes of a split folder); DataError if
    there is none."""
    path = Path(path)
    if path.is_file():
        return [path]
    if reader is None or reader.name == "fastmri":
        files = sorted(p for p in path.glob("*.h5") if p.is_file() and not p.name.startswith("."))
    else:
        files = [p for p in reader.find(path) if p.is_file()] if path.is_dir() else []
    if not files:
        suffix = ".h5" if reader is None else reader.suffix
        why = (
            f"no {suffix} files in this directory" if path.is_dir() else "no such file or directory"
        )
        raise DataError(path, why)
    return files


def select_inputs(
    path: str | os.PathLike,
    prescan: str = "full",
    skip_bad_files: bool = False,
    reader: Any = None,
) -> tuple[list[VolumeInfo], list[SkippedFile]]:
    """Validate every input file before anything is written (header, layout and, with
    ``prescan="full"``, every value); a file may lack a target and a mask.

    Raises:
        DataError: one line naming a bad file (unless ``skip_bad_files``), files of both
            challenges, or no valid file.
    """
    infos, skipped = [], []
    for file in input_files(path, reader):
        try:
            info = read_volume_info(file, allow_unmasked=True, reader=reader)
            if prescan == "full":
                scan_values(info)
            infos.append(info)
        except DataError as err:
            if not skip_bad_files:
                raise
            skipped.append(SkippedFile(file.name, str(err), file))
    challenges = sorted({info.challenge for info in infos})
    if len(challenges) > 1:
        raise DataError(path, f"holds files of both challenges {challenges}: predict one at a time")
    if not infos:
        raise DataError(path, f"no valid volume ({len(skipped)} bad files)")
    return infos, skipped


def volume_line(info: VolumeInfo, vmask: VolumeMask, results: Mapping[str, MethodOutput]) -> str:
    """The log line of one reconstructed volume: its mask and each method's time."""
    times = ", ".join(
        f"{name} {res.seconds_per_slice * info.num_slices:.2f} s" for name, res in results.items()
    )
    mask = f"{vmask.source} mask R={vmask.acceleration:.2f}"
    line = f"{info.fname}: {info.num_slices} slices, {mask}; {times}"
    return line + (f" ({vmask.note})" if vmask.note else "")


def predict(
    settings: EvalSettings,
    methods: Mapping[str, object],
    selection: tuple[list[VolumeInfo], list[SkippedFile]],
    log: Callable[[str], None] = tqdm.write,
    record: Callable[[EvalReport, Path], None] | None = None,
) -> EvalReport:
    """Reconstruct the selected files with every method and publish the outputs into
    ``settings.run_dir`` (all or nothing; ``record`` stages ``provenance.json`` with them,
    see :func:`~mri_recon.evaluation.run.run_evaluation`); ``log`` gets one line per volume
    and the total."""
    start = time.perf_counter()

    def on_volume(info, vmask, results) -> None:
        log(volume_line(info, vmask, results))

    report = run_evaluation(settings, methods, selection, record=record, on_volume=on_volume)
    log(
        f"{len(report.masks)} volumes x {len(methods)} methods in "
        f"{time.perf_counter() - start:.1f} s -> {settings.run_dir}"
    )
    return report

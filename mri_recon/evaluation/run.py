"""The evaluation loop: one mask setting, any number of methods, the same volumes and masks.

Per volume: load and validate it, take its mask (stored, or fastMRI's per-file one, see
:mod:`mri_recon.evaluation.volumes`), ``masked_kspace = apply_mask(kspace, mask)``; per batch
of slices, estimate the coil maps once and hand them to every method that needs them;
time each method (wall time per slice, no file I/O, CUDA synchronised); score against the
target with :func:`mri_recon.metrics.image.volume_metrics`. Outputs go to a staging
directory inside the run directory and are published only when every volume is done.

Timing: the coil-map estimate is shared, and its time is added to every method that uses
the maps (it is part of what that method costs per slice).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mri_recon.checks import boolean, integer, number, one_of, positive_int
from mri_recon.contract import Reconstructor
from mri_recon.data.fastmri import CHALLENGES, SPLITS, DataError, Volume, VolumeInfo, load_volume
from mri_recon.data.formats import check_challenge, get_reader
from mri_recon.data.h5 import check_finite
from mri_recon.data.prescan import PRESCAN_MODES
from mri_recon.evaluation.dicom import write_dicom_series
from mri_recon.evaluation.outputs import OUTPUTS, Staging, write_nifti, write_reconstruction
from mri_recon.evaluation.report import CSV_COLUMNS, EXTRA_COLUMNS, REFERENCE, write_report
from mri_recon.evaluation.volumes import SkippedFile, VolumeMask, select_volumes, volume_mask
from mri_recon.metrics.image import volume_metrics
from mri_recon.metrics.optional import check_metrics, optional_metrics
from mri_recon.physics.coils import estimate_sens_maps
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask
from mri_recon.physics.perturbations import Perturbation, perturbation_seed
from mri_recon.runinfo import RECORD_NAME
from mri_recon.viz.figures import comparison_figure, save_figure

EXPORTS = ("nifti", "dicom")


def export_formats(export: Any) -> tuple[str, ...]:
    """``export`` (None, a format or a list of formats of :data:`EXPORTS`) as a tuple.

    Raises:
        ValueError: ``export: must be ...`` naming the unknown format.
    """
    formats = () if export is None else (export,) if isinstance(export, str) else tuple(export)
    for fmt in formats:
        one_of("export", fmt, EXPORTS)
    return formats


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> cuda if available, else cpu; ``cpu``, ``cuda``, ``cuda:N`` as given.

    Raises:
        ValueError: ``device: ...`` for another name, or CUDA asked for where there is none.
    """
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name) or (
        name != "cpu" and not torch.cuda.is_available()
    ):
        unavailable = " (CUDA is not available here)" if name.startswith("cuda") else ""
        raise ValueError(f"device: {name!r} is not one of auto, cpu, cuda, cuda:N{unavailable}")
    return torch.device(name)


@dataclass(frozen=True)
class EvalSettings:
    """One evaluation run (the evaluation CLI builds it from the config).

    Attributes:
        root, challenge, split: the data (``<root>/<challenge>_<split>/``).
        mask_name: the mask config name written to the CSV (e.g. "random_4x").
        mask_func: draws per-file masks for files without a stored mask.
        run_dir: where the outputs go.
        device: where reconstruction runs: ``auto`` (cuda if available, else cpu), ``cpu``,
            ``cuda`` or ``cuda:N``, or a ``torch.device``.
        batch_size: slices per reconstruction call.
        num_figures: figures for the first volumes that have a target.
        skip_bad_files: skip and list bad files instead of failing.
        max_volumes: the first N valid volumes, or None for all.
        confidence, num_resamples, seed: bootstrap settings of the summary.
        progress: a tqdm bar over volumes.
        reference: the method the summary's paired differences subtract.
        export: None, "nifti", "dicom" or a list of them (kept as a tuple): also write
            ``reconstructions/<method>/<stem>.nii.gz`` and/or the DICOM series
            ``reconstructions/<method>/<stem>/<slice>.dcm`` (``stem``: the file name without
            ``.h5``; voxel size from the ismrmrd header).
        provenance: the caller writes ``provenance.json`` next to the outputs; the summary
            points at it.
        prescan: "full": every slice of every selected file is checked for NaN/Inf before
            anything is reconstructed (cached); "header": header checks only.
        save_reconstructions: write ``reconstructions/`` (the robustness grid does not).
        coil_maps: ``(masked_kspace (B, C, H, W), mask (B, W)) -> sens_maps (B, C, H, W)``
            for methods that need maps (e.g. ``physics.coils.CoilMaps``); None: the ACS
            estimate :func:`~mri_recon.physics.coils.estimate_sens_maps`.
        metrics: metric names (:data:`~mri_recon.metrics.optional.ALL_METRICS`); the
            optional ones among them are computed too, the fastMRI three always.
        acquisitions: only volumes whose ``acquisition`` attribute is one of these (e.g.
            ``["CORPD_FBK"]``); None: every volume.
        perturbation: applied to every volume before masking (the robustness grid's
            perturbation axes, :mod:`mri_recon.physics.perturbations`); None: none.
        perturbation_seed: the run seed of the perturbations' draws (per file and slice).
        format, format_options: the data format (:mod:`mri_recon.data.formats`) and its
            options; a multi-coil format needs ``challenge="multicoil"``.
    """

    root: Path
    challenge: str
    split: str
    mask_name: str
    mask_func: ColumnMaskFunc | None
    run_dir: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 8
    num_figures: int = 3
    skip_bad_files: bool = False
    max_volumes: int | None = None
    confidence: float = 0.95
    num_resamples: int = 2000
    seed: int = 0
    progress: bool = True
    reference: str = REFERENCE
    export: str | Sequence[str] | None = None
    provenance: bool = False
    prescan: str = "full"
    save_reconstructions: bool = True
    coil_maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    metrics: Sequence[str] = ()
    acquisitions: Sequence[str] | None = None
    perturbation: Perturbation | None = None
    perturbation_seed: int = 0
    format: str = "fastmri"
    format_options: Mapping[str, Any] | None = None

    @property
    def reader(self) -> Any:
        """The format's reader (:func:`~mri_recon.data.formats.get_reader`)."""
        return get_reader(self.format, self.format_options)

    def __post_init__(self) -> None:
        """Check every value once (ValueError ``<field>: <reason>``, the field's own name);
        ``root``, ``run_dir`` and ``device`` may arrive as strings (a config node)."""
        for name, kind in (("root", Path), ("run_dir", Path), ("device", resolve_device)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        one_of("challenge", self.challenge, CHALLENGES)
        one_of("split", self.split, SPLITS)
        check_challenge(self.format, self.challenge)
        object.__setattr__(self, "format_options", dict(self.format_options or {}))
        self.reader  # noqa: B018  (format and format_options checked once, here)
        boolean("skip_bad_files", self.skip_bad_files)
        positive_int("max_volumes", self.max_volumes, optional=True)
        positive_int("batch_size", self.batch_size)
        integer("num_figures", self.num_figures, 0)
        number("confidence", self.confidence, 0, 1, open_low=True, open_high=True)
        positive_int("num_resamples", self.num_resamples)
        integer("seed", self.seed, 0)
        object.__setattr__(self, "export", export_formats(self.export))
        one_of("prescan", self.prescan, PRESCAN_MODES)
        object.__setattr__(self, "metrics", check_metrics(self.metrics))
        integer("perturbation_seed", self.perturbation_seed, 0)
        acq = self.acquisitions
        if acq is not None:
            if isinstance(acq, str) or not acq or not all(isinstance(a, str) for a in acq):
                raise ValueError(f"acquisitions: must be a non-empty list of names, got {acq!r}")
            object.__setattr__(self, "acquisitions", tuple(acq))


@dataclass
class MethodOutput:
    """One method's reconstruction of one volume.

    Attributes:
        reconstruction: float32 (S, h, w) on the CPU.
        seconds_per_slice: reconstruction wall time / S.
        metrics: ``{"nmse", "psnr", "ssim"}`` or None without a target.
    """

    reconstruction: torch.Tensor
    seconds_per_slice: float
    metrics: dict[str, float] | None = None


@dataclass
class EvalReport:
    """What a run produced.

    Attributes:
        rows: the CSV rows (one per volume and method).
        summary: the JSON summary.
        markdown: the Markdown summary (also in ``summary.md``).
        skipped: files left out.
        files: every published output path.
        masks: fname -> the mask each evaluated volume was given (what ``provenance.json``
            records: the masks that were scored, not drawn again).
        paths: fname -> the file of each evaluated volume.
    """

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    markdown: str
    skipped: list[SkippedFile] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    masks: dict[str, VolumeMask] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)


Selection = tuple[Sequence[VolumeInfo], Sequence[SkippedFile]]


class EvalVolumes:
    """The volumes of one run, each as ``(info, volume, mask)``: the one loop over volumes
    of ``mri-recon-eval``, the robustness grid and ``mri-recon-tune-tv``.

    Construction selects and validates the files (:func:`select_volumes`, the prescan: the
    one header parse of each file), before anything is written; iteration reads each volume
    once from its info (:func:`~mri_recon.data.fastmri.load_volume`; values checked again
    only with ``prescan="header"``) and gives it its mask (:func:`volume_mask`). With
    ``skip_bad_files`` a file that fails to load joins :attr:`skipped` and is left out.

    Args:
        settings: the run's data, mask, prescan and progress settings.
        selection: ``(infos, skipped)`` already selected (the grid's cells share one).
        desc: the progress bar's label.

    Attributes:
        infos: the selected volumes.
        skipped: the files left out so far.
    """

    def __init__(
        self, settings: EvalSettings, selection: Selection | None = None, desc: str = "eval"
    ) -> None:
        s = self.settings = settings
        if selection is None:
            selection = select_volumes(
                s.root,
                s.challenge,
                s.split,
                max_volumes=s.max_volumes,
                skip_bad_files=s.skip_bad_files,
                prescan=s.prescan,
                acquisitions=s.acquisitions,
                reader=s.reader,
            )
        self.infos, self.skipped = list(selection[0]), list(selection[1])
        self.desc = desc

    def __iter__(self) -> Iterator[tuple[VolumeInfo, Volume, VolumeMask]]:
        s = self.settings
        for info in tqdm(self.infos, desc=self.desc, unit="vol", disable=not s.progress):
            try:
                volume = load_volume(info, check_values=s.prescan == "header")
            except DataError as err:
                if not s.skip_bad_files:
                    raise
                self.skipped.append(SkippedFile(info.fname, str(err)))
                continue
            yield info, volume, volume_mask(info, s.mask_func, volume.kspace)


def iter_volumes(
    settings: EvalSettings, selection: Selection | None = None, desc: str | None = None
) -> EvalVolumes:
    """:class:`EvalVolumes` of ``settings`` (``desc`` defaults to ``eval <mask name>``)."""
    return EvalVolumes(settings, selection, desc or f"eval {settings.mask_name}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def reconstruct_volume(
    methods: Mapping[str, Reconstructor],
    masked_kspace: torch.Tensor,
    mask: torch.Tensor,
    crop_size: tuple[int, int],
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    coil_maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    num_low_frequencies: int | None = None,
    acquired: tuple[int, int] | None = None,
) -> dict[str, tuple[torch.Tensor, float]]:
    """Run every method on a volume in slice batches, timing each.

    Args:
        methods: name -> reconstructor (the reconstructor contract).
        masked_kspace: complex64 (S, C, H, W), already masked.
        mask: bool (W,), the same for every slice.
        crop_size: (h, w) of the output.
        device: where the batches are reconstructed.
        batch_size: slices per call.
        coil_maps: the coil-map estimator (see :class:`EvalSettings`); None: ACS.
        num_low_frequencies, acquired: for methods with ``fastmri_inputs`` (fastMRI's
            released VarNet), what fastMRI's ``VarNetDataTransform`` gives it: a drawn mask's
            centre columns (None for a stored mask), and the mask zeroed outside the acquired
            columns ``[padding_left, padding_right)``.

    Returns:
        name -> (float32 (S, h, w) CPU reconstruction, seconds per slice).
    """
    device = torch.device(device)
    num_slices = masked_kspace.shape[0]
    outs: dict[str, list[torch.Tensor]] = {name: [] for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    any_maps = any(m.needs_sens_maps for m in methods.values())
    estimate = coil_maps or estimate_sens_maps
    mask = mask.to(device)  # once per volume
    for start in range(0, num_slices, batch_size):
        kspace = masked_kspace[start : start + batch_size].to(device)  # (B, C, H, W)
        batch_mask = mask[None].expand(kspace.shape[0], -1)  # (B, W)
        sens_maps, map_seconds = None, 0.0
        if any_maps:
            _sync(device)
            t0 = time.perf_counter()
            sens_maps = estimate(kspace, batch_mask)
            _sync(device)
            map_seconds = time.perf_counter() - t0
        for name, method in methods.items():
            _sync(device)
            t0 = time.perf_counter()
            maps = sens_maps if method.needs_sens_maps else None
            method_mask, extra = batch_mask, {}
            if getattr(method, "fastmri_inputs", False):
                extra["num_low_frequencies"] = num_low_frequencies
                if acquired is not None:
                    method_mask = batch_mask.clone()
                    method_mask[:, : acquired[0]] = False
                    method_mask[:, acquired[1] :] = False
            out = method(kspace, method_mask, maps, crop_size, **extra)
            _sync(device)
            seconds[name] += time.perf_counter() - t0 + (map_seconds if maps is not None else 0)
            outs[name].append(out.detach().float().cpu())
    return {n: (torch.cat(outs[n]), seconds[n] / num_slices) for n in methods}


def evaluate_volume(
    volume: Volume,
    vmask: VolumeMask,
    methods: Mapping[str, Reconstructor],
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    coil_maps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    extra_metrics: Sequence[str] = (),
) -> dict[str, MethodOutput]:
    """Mask, reconstruct and (when there is a target) score one volume with every method.

    Args:
        volume: the loaded volume (k-space complex64 (S, C, H, W), target (S, h, w) or None).
        vmask: its mask; a stored mask is applied again (a no-op on undersampled data).
        methods: name -> reconstructor.
        device, batch_size, coil_maps: see :func:`reconstruct_volume`.
        extra_metrics: optional metrics computed beside the fastMRI three (checked names).

    Returns:
        name -> :class:`MethodOutput`.
    """
    info = volume.info
    masked_kspace = apply_mask(volume.kspace, vmask.mask)  # (S, C, H, W)
    crop = tuple(volume.target.shape[-2:]) if volume.target is not None else info.crop_size
    recons = reconstruct_volume(
        methods,
        masked_kspace,
        vmask.mask,
        crop,
        device=device,
        batch_size=batch_size,
        coil_maps=coil_maps,
        num_low_frequencies=vmask.num_low_frequencies if vmask.source == "drawn" else None,
        acquired=(info.padding_left, info.padding_right),
    )
    results = {}
    target = check_target(info, volume.target.numpy()) if volume.target is not None else None
    for name, (recon, sec) in recons.items():
        metrics = None
        if target is not None:
            metrics = score_volume(info, name, target, recon.numpy())
            metrics.update(optional_metrics(target, recon.numpy(), extra_metrics))
        else:  # nothing to score against: a non-finite image is still never published
            check_finite(info.path, f"the {name} reconstruction", recon.numpy())
        results[name] = MethodOutput(recon, sec, metrics)
    return results


def score_volume(
    info: VolumeInfo,
    method: str,
    target: Any,
    recon: Any,
    max_value: float | None = None,
    first_slice: int = 0,
) -> dict[str, float]:
    """:func:`~mri_recon.metrics.image.volume_metrics` of one method's reconstruction of
    (some slices of) a volume, which stops rather than let a NaN through.

    Args:
        info: the volume (its path names it in an error).
        method: the method's name.
        target, recon: float32 (s, h, w) numpy arrays; the target checked finite once per
            volume by the caller (:func:`check_target`), the reconstruction here.
        max_value: the data range (default: the target's max).
        first_slice: the volume slice index of ``target[0]`` (for the message).

    Raises:
        DataError: ``<path>: <what> has NaN or Inf values (first in slice N)`` for a
            non-finite target or reconstruction, or a NaN metric (naming the slices scored).
    """
    check_finite(info.path, f"the {method} reconstruction", recon, first_slice)
    metrics = volume_metrics(target, recon, max_value)
    bad = [k for k, v in metrics.items() if math.isnan(v)]
    if bad:
        last = first_slice + len(target) - 1
        raise DataError(info.path, f"{method}: {bad[0]} is NaN (slices {first_slice}-{last})")
    return metrics


def check_target(info: VolumeInfo, target: Any, first_slice: int = 0) -> Any:
    """``target`` float32 (s, h, w), checked finite (a file edited after its cached prescan
    must not be scored): once per volume, before every method is scored against it."""
    check_finite(info.path, info.target_key or "target", target, first_slice)
    return target


def perturb_volume(volume: Volume, perturbation: Perturbation | None, seed: int) -> Volume:
    """``volume`` with ``perturbation`` applied (k-space, target; seeded by ``seed`` and the
    file name: :func:`~mri_recon.physics.perturbations.perturbation_seed`); the volume
    itself when None."""
    if perturbation is None:
        return volume
    pseed = perturbation_seed(seed, volume.info.fname)
    kspace, target, _ = perturbation(volume.kspace, volume.target, None, pseed)
    return replace(volume, kspace=kspace, target=target)


def _rows(
    info: VolumeInfo,
    vmask: VolumeMask,
    mask_name: str,
    split: str,
    results: Mapping[str, MethodOutput],
    optional: Sequence[str] = (),
) -> list[dict[str, Any]]:
    rows = []
    mask_columns = vmask.columns()
    for name, res in results.items():
        metrics = res.metrics or dict.fromkeys(("nmse", "psnr", "ssim", *optional))
        fastmri = {k: metrics[k] for k in ("nmse", "psnr", "ssim")}
        rows.append(
            {
                "fname": info.fname,
                "acquisition": info.acquisition,
                "method": name,
                "mask": mask_name if vmask.source == "drawn" else vmask.source,
                "acceleration": vmask.acceleration,
                "center_fraction": vmask.center_fraction,
                **fastmri,
                "seconds_per_slice": res.seconds_per_slice,
                "num_slices": info.num_slices,
                "challenge": info.challenge,
                "split": split,
                **mask_columns,
                **{m: metrics[m] for m in optional},
            }
        )
    assert list(rows[0])[: len(CSV_COLUMNS)] == list(CSV_COLUMNS)
    assert list(rows[0])[len(CSV_COLUMNS) :] == [*EXTRA_COLUMNS, *optional]
    return rows


def check_exportable(infos: Sequence[VolumeInfo], export: Sequence[str]) -> None:
    """DataError naming the first volume whose header has no usable reconSpace field of view
    and matrix size (finite, > 0), when ``export`` (formats) needs the voxel size; before
    anything is written."""
    for info in infos if export else ():
        fov, size = info.recon_fov_mm, info.recon_size
        if fov is None or not all(0 < v < math.inf for v in (*fov, *size)):
            raise DataError(
                info.path,
                f"ismrmrd_header encoding/reconSpace/fieldOfView_mm {fov} and matrixSize "
                f"{tuple(size)} must be finite and > 0 (export={','.join(export)} needs the "
                "voxel size)",
            )


def write_outputs(
    staging: Staging,
    info: VolumeInfo,
    name: str,
    method: Reconstructor,
    recon: Any,
    export: Sequence[str],
) -> None:
    """One method's reconstruction float32 (S, h, w) of one volume into the staging area:
    ``reconstructions/<name>/<fname>`` (fastMRI's submission layout) and the ``export``
    formats; a method loaded from a checkpoint (``method.checkpoint``, ``"<file> <sha256>"``)
    names it in the DICOM series."""
    folder = f"reconstructions/{name}"
    write_reconstruction(staging.path(f"{folder}/{info.fname}"), recon)
    stem = Path(info.fname).stem
    if "nifti" in export:
        write_nifti(staging.path(f"{folder}/{stem}.nii.gz"), recon, info.voxel_size_mm)
    if "dicom" in export:
        checkpoint = getattr(method, "checkpoint", None)
        write_dicom_series(
            staging.path(f"{folder}/{stem}"),
            recon,
            info.voxel_size_mm,
            fname=info.fname,
            method=name,
            checkpoint=checkpoint,
            patient_id=info.patient_id,
        )


def _figure(
    staging: Staging, volume: Volume, results: Mapping[str, MethodOutput], mask_name: str
) -> None:
    mid = volume.info.num_slices // 2
    fig = comparison_figure(
        volume.target[mid].numpy(),
        {name: res.reconstruction[mid].numpy() for name, res in results.items()},
        {name: res.metrics for name, res in results.items()},
        title=f"{volume.info.fname} slice {mid} ({volume.info.acquisition}, {mask_name})",
    )
    save_figure(fig, staging.path(f"figures/{Path(volume.info.fname).stem}.png"))


def run_evaluation(
    settings: EvalSettings,
    methods: Mapping[str, Reconstructor],
    selection: Selection | None = None,
    record: Callable[[EvalReport, Path], None] | None = None,
    on_volume: Callable[[VolumeInfo, VolumeMask, Mapping[str, MethodOutput]], None] | None = None,
) -> EvalReport:
    """Evaluate ``methods`` on the selected volumes and publish all outputs into the run dir.

    Writes ``per_volume.csv``, ``summary.md``, ``summary.json``, ``figures/*.png`` (volumes
    with a target) and ``reconstructions/<method>/<fname>`` (plus ``<stem>.nii.gz`` with
    ``export``: ``<stem>.nii.gz``, ``<stem>/<slice>.dcm``). Without targets (test split)
    the CSV rows have empty metric cells and the summary holds timings only.

    Args:
        settings: the run.
        methods: name -> reconstructor (at least one).
        selection: ``(infos, skipped)`` already selected (see :class:`EvalVolumes`).
        record: with ``settings.provenance``, ``record(report, folder)`` writes
            ``provenance.json`` into ``folder`` (the staging folder) before anything is
            published, so the record and the outputs it describes are published together.
        on_volume: called after each volume with its info, mask and results (e.g. a log
            line per volume).

    Raises:
        DataError: a bad file (unless ``settings.skip_bad_files``), or with
            an ``export`` a header without a field of view; nothing is published.
    """
    if not methods:
        raise ValueError("methods: at least one method is required")
    s = settings
    volumes = iter_volumes(s, selection)
    check_exportable(volumes.infos, s.export)
    rows: list[dict[str, Any]] = []
    masks: dict[str, VolumeMask] = {}
    paths: dict[str, Path] = {}
    num_figures = 0
    outputs = (*OUTPUTS, RECORD_NAME) if s.provenance and record else OUTPUTS
    with Staging(s.run_dir, outputs) as staging:
        for info, volume, vmask in volumes:
            volume = perturb_volume(volume, s.perturbation, s.perturbation_seed)
            results = evaluate_volume(
                volume,
                vmask,
                methods,
                device=s.device,
                batch_size=s.batch_size,
                coil_maps=s.coil_maps,
                extra_metrics=s.metrics,
            )
            for name, res in results.items() if s.save_reconstructions else ():
                recon = res.reconstruction.numpy()
                write_outputs(staging, info, name, methods[name], recon, s.export)
            rows.extend(_rows(info, vmask, s.mask_name, s.split, results, s.metrics))
            masks[info.fname] = vmask
            paths[info.fname] = info.path
            if on_volume is not None:
                on_volume(info, vmask, results)
            if volume.target is not None and num_figures < s.num_figures:
                _figure(staging, volume, results, s.mask_name)
                num_figures += 1
        if not rows:
            raise DataError(s.root, f"every volume of {s.challenge}_{s.split} was skipped")
        run = {
            "root": str(s.root),
            "challenge": s.challenge,
            "split": s.split,
            "mask": s.mask_name,
            "mask_func": repr(s.mask_func),
            "methods": list(methods),
            "coil_maps": repr(s.coil_maps) if s.coil_maps else "acs",
            "device": str(s.device),
            "metrics": ["nmse", "psnr", "ssim", *s.metrics],
        }
        if s.acquisitions is not None:
            run["acquisitions"] = list(s.acquisitions)
        if s.perturbation is not None:
            run["perturbation"] = s.perturbation.label
            run["perturbation_seed"] = s.perturbation_seed
        if s.provenance:
            run["provenance"] = "provenance.json"
        boot = {"confidence": s.confidence, "num_resamples": s.num_resamples, "seed": s.seed}
        skipped = volumes.skipped
        summary, markdown = write_report(
            staging, rows, skipped, run, **boot, reference=s.reference, optional=s.metrics
        )
        report = EvalReport(rows, summary, markdown, skipped, [], masks, paths)
        if RECORD_NAME in outputs:
            record(report, staging.root)
        report.files = staging.publish()
    return report

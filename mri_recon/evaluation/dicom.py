"""DICOM export of a reconstructed volume: one MR image series, one file per slice.

The series is for PACS and viewers, beside the NIfTI export (:func:`outputs.write_nifti`)
and fastMRI's h5 layout. Pixels are 16-bit unsigned magnitude: ``stored = round(value /
slope)`` with one ``RescaleSlope`` for the whole series (the volume's maximum maps to
65535), so ``stored * slope`` gives the reconstruction back to within ``slope / 2``;
negative values (a network may undershoot the zero background) are stored as 0. Geometry
is the NIfTI export's, written in DICOM's patient coordinates (LPS: NIfTI's RAS with x and y
negated): pixel (row r, column c) of slice k lies at NIfTI voxel (c, h - 1 - r, k), so both
files put every pixel at the same point. Pixel spacing and slice thickness come from the
ISMRMRD header (reconSpace field of view / matrix size).

UIDs are derived from their sources (pydicom's ``generate_uid`` with entropy sources, a
SHA-512 under pydicom's root): the study from the file name, the frame of reference from the
file name, the series from file, method and checkpoint hash, each image from the series and
its slice index, so the same run writes the same UIDs and two checkpoints never share a series.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mri_recon.fileio import write_atomic

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
MAX_STORED = 65535


def series_description(method: str, checkpoint: str | None) -> str:
    """``<method> (checkpoint <name> sha256 <12 hex>)`` or ``<method> (no checkpoint)``;
    ``checkpoint`` is ``"<name> <sha256>"`` or None. DICOM keeps 64 characters."""
    if not checkpoint:
        return f"{method} (no checkpoint)"[:64]
    name, _, digest = checkpoint.rpartition(" ")
    return f"{method} ({name} sha256 {digest[:12]})"[:64]


def write_dicom_series(
    folder: str | os.PathLike,
    reconstruction: np.ndarray,
    voxel_size: Sequence[float],
    *,
    fname: str,
    method: str,
    checkpoint: str | None = None,
    patient_id: str = "",
) -> list[Path]:
    """Write ``folder/<slice:03d>.dcm`` for every slice of a reconstruction, atomically each.

    Args:
        folder: the series' folder (``reconstructions/<method>/<fname without .h5>/``).
        reconstruction: float (S, h, w) magnitude.
        voxel_size: (row, column, slice) sizes in mm (x, y, z of the ISMRMRD reconSpace).
        fname: the input file name (``file1000001.h5``): study and frame of reference UIDs.
        method: the method name (series description and UID).
        checkpoint: ``"<checkpoint file name> <sha256>"`` of a learned method, else None.
        patient_id: the file's ``patient_id`` attr (else the file name's stem).

    Returns:
        The written paths, slice order.
    """
    from pydicom.uid import generate_uid  # only runs that export DICOM need pydicom

    recon = np.asarray(reconstruction, dtype=np.float64)
    peak = float(recon.max()) if recon.size else 0.0
    slope = peak / MAX_STORED if peak > 0 else 1.0
    stored = np.rint(np.clip(recon, 0, None) / slope).clip(0, MAX_STORED).astype(np.uint16)
    dx, dy, dz = (float(v) for v in voxel_size)
    stem = Path(fname).stem
    source = [fname, method, checkpoint or ""]
    uids = {
        "study": generate_uid(entropy_srcs=["study", fname]),
        "frame": generate_uid(entropy_srcs=["frame", fname]),
        "series": generate_uid(entropy_srcs=["series", *source]),
    }
    common = {
        "description": series_description(method, checkpoint),
        "patient_id": patient_id or stem,
        "slope": slope,
        "spacing": (dx, dy, dz),
        "uids": uids,
        "peak": peak,
    }
    paths = []
    for k, image in enumerate(stored):
        sop = generate_uid(entropy_srcs=["image", *source, str(k)])
        data = _slice_bytes(image, k, sop, common)
        paths.append(write_atomic(Path(folder) / f"{k:03d}.dcm", data))
    return paths


def _slice_bytes(image: np.ndarray, k: int, sop_uid: str, c: dict) -> bytes:
    """One slice (uint16 (h, w)) as a DICOM Part 10 file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    dx, dy, dz = c["spacing"]
    rows, cols = image.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = c["uids"]["study"], c["uids"]["series"]
    ds.FrameOfReferenceUID = c["uids"]["frame"]
    ds.Modality, ds.ImageType = "MR", ["DERIVED", "SECONDARY", "RECONSTRUCTION"]
    ds.PatientName, ds.PatientID = c["patient_id"], c["patient_id"]
    ds.PatientBirthDate, ds.PatientSex = "", ""
    ds.StudyDate, ds.StudyTime, ds.StudyID = "", "", ""
    ds.ReferringPhysicianName, ds.AccessionNumber = "", ""
    ds.Manufacturer, ds.SeriesDescription = "mri_recon", c["description"]
    ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
    ds.PositionReferenceIndicator = ""
    ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
    ds.MRAcquisitionType, ds.EchoTime, ds.RepetitionTime = "2D", "", ""
    ds.EchoTrainLength = ""
    # NIfTI voxel (c, h-1-r, k) at (c dy, (h-1-r) dx, k dz) in RAS; DICOM is LPS (x, y negated)
    ds.ImageOrientationPatient = [-1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0.0, -(rows - 1) * dx, k * dz]
    ds.SliceLocation = k * dz
    ds.PixelSpacing = [dx, dy]  # (between rows, between columns)
    ds.SliceThickness, ds.SpacingBetweenSlices = dz, dz
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = f"{c['slope']:.10g}", 0, "US"
    ds.WindowCenter, ds.WindowWidth = f"{c['peak'] / 2:.6g}", f"{c['peak']:.6g}"
    ds.PixelData = np.ascontiguousarray(image, dtype="<u2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()

"""The ISMRMRD XML header of fastMRI files: the fields fastMRI reads, and a writer.

fastMRI reads ``encoding/encodedSpace/matrixSize`` (encoded size),
``encoding/reconSpace/matrixSize`` (recon size) and
``encoding/encodingLimits/kspace_encoding_step_1/{center,maximum}``. The acquired
columns are ``[padding_left, padding_right)`` with
``padding_left = encoded_y // 2 - center`` and ``padding_right = padding_left + maximum + 1``;
columns outside were zero-filled by the scanner.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

NAMESPACE = "http://www.ismrm.org/ISMRMRD"


class HeaderError(ValueError):
    """A malformed or incomplete ``ismrmrd_header``."""


@dataclass(frozen=True)
class IsmrmrdHeader:
    """The header fields fastMRI uses.

    Attributes:
        encoded_size: (x, y, z) of ``encodedSpace/matrixSize``; x = readout (H), y = phase (W).
        recon_size: (x, y, z) of ``reconSpace/matrixSize``, e.g. (320, 320, 1).
        center: ``kspace_encoding_step_1/center``.
        maximum: ``kspace_encoding_step_1/maximum``.
        recon_fov_mm: (x, y, z) of ``reconSpace/fieldOfView_mm``, or None if absent; the
            voxel size is ``recon_fov_mm / recon_size`` (z: the slice thickness).
    """

    encoded_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    center: int
    maximum: int
    recon_fov_mm: tuple[float, float, float] | None = None

    @property
    def padding_left(self) -> int:
        return self.encoded_size[1] // 2 - self.center

    @property
    def padding_right(self) -> int:
        return self.padding_left + self.maximum + 1


def _query(root: ET.Element, path: list[str], kind: type = int) -> int | float:
    el = root.find("." + "".join(f"//i:{p}" for p in path), {"i": NAMESPACE})
    text = None if el is None else el.text
    try:
        return kind(text.strip())  # None (absent) or not a number: the field is unusable
    except (AttributeError, ValueError):
        name, what = "/".join(path), "an integer" if kind is int else "a number"
        reason = f"has no {name}" if text is None else f"{name} is not {what}: {text!r}"
        raise HeaderError(f"ismrmrd_header {reason}") from None


def _fov(root: ET.Element) -> tuple[float, float, float] | None:
    """``reconSpace/fieldOfView_mm`` (x, y, z), or None when absent (only NIfTI export
    needs it); present but not positive numbers is a HeaderError."""
    path = ["encoding", "reconSpace", "fieldOfView_mm"]
    if root.find("." + "".join(f"//i:{p}" for p in path), {"i": NAMESPACE}) is None:
        return None
    fov = tuple(float(_query(root, [*path, a], float)) for a in "xyz")
    if not all(v > 0 for v in fov):
        raise HeaderError(f"ismrmrd_header {'/'.join(path)} must be positive, got {fov}")
    return fov  # type: ignore[return-value]


def parse_ismrmrd_header(xml: bytes | str) -> IsmrmrdHeader:
    """Parse the fields fastMRI uses from an ISMRMRD XML header.

    Raises:
        HeaderError: the XML does not parse or a field is missing.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise HeaderError(f"ismrmrd_header is not valid XML ({e})") from None
    enc = ["encoding", "encodedSpace", "matrixSize"]
    rec = ["encoding", "reconSpace", "matrixSize"]
    lim = ["encoding", "encodingLimits", "kspace_encoding_step_1"]
    return IsmrmrdHeader(
        encoded_size=tuple(_query(root, enc + [a]) for a in "xyz"),  # type: ignore[arg-type]
        recon_size=tuple(_query(root, rec + [a]) for a in "xyz"),  # type: ignore[arg-type]
        center=_query(root, lim + ["center"]),
        maximum=_query(root, lim + ["maximum"]),
        recon_fov_mm=_fov(root),
    )


def make_ismrmrd_header(
    encoded_size: tuple[int, int, int],
    recon_size: tuple[int, int, int] = (320, 320, 1),
    padding_left: int = 0,
    padding_right: int | None = None,
    field_of_view_mm: tuple[float, float, float] = (280.0, 140.0, 4.5),
    num_slices: int = 1,
    system_vendor: str = "mri_recon synthetic",
) -> bytes:
    """Build a minimal valid ISMRMRD header for the given encoding.

    Args:
        encoded_size: (x, y, z); y is the k-space width W.
        recon_size: (x, y, z) of the reconstruction.
        padding_left: first acquired column.
        padding_right: one past the last acquired column (default W - padding_left).

    Returns:
        UTF-8 XML bytes whose :func:`parse_ismrmrd_header` gives back these paddings.
    """
    w = int(encoded_size[1])
    if padding_right is None:
        padding_right = w - padding_left
    if not 0 <= padding_left < padding_right <= w:
        raise ValueError(f"bad padding [{padding_left}, {padding_right}) for width {w}")
    center = w // 2 - padding_left
    maximum = padding_right - padding_left - 1
    ex, ey, ez = (int(v) for v in encoded_size)
    rx, ry, rz = (int(v) for v in recon_size)
    fx, fy, fz = field_of_view_mm
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="{NAMESPACE}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <acquisitionSystemInformation>
    <systemVendor>{system_vendor}</systemVendor>
    <systemFieldStrength_T>3</systemFieldStrength_T>
  </acquisitionSystemInformation>
  <encoding>
    <encodedSpace>
      <matrixSize><x>{ex}</x><y>{ey}</y><z>{ez}</z></matrixSize>
      <fieldOfView_mm><x>{2 * fx}</x><y>{fy}</y><z>{fz}</z></fieldOfView_mm>
    </encodedSpace>
    <reconSpace>
      <matrixSize><x>{rx}</x><y>{ry}</y><z>{rz}</z></matrixSize>
      <fieldOfView_mm><x>{fx}</x><y>{fx}</y><z>{fz}</z></fieldOfView_mm>
    </reconSpace>
    <trajectory>cartesian</trajectory>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{maximum}</maximum><center>{center}</center></kspace_encoding_step_1>
      <kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_2>
      <slice><minimum>0</minimum><maximum>{max(num_slices - 1, 0)}</maximum><center>0</center></slice>
    </encodingLimits>
  </encoding>
</ismrmrdHeader>
"""
    return xml.encode("utf-8")

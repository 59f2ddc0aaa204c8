"""The data formats this project reads (``data.format``), one reader each.

``fastmri`` (the default), ``cc359`` (Calgary-Campinas raw multi-coil brain), ``m4raw``
(low-field multi-repetition brain) and ``cmrxrecon`` (cardiac cine, MATLAB v7.3). A reader
lists a split's files, validates one file into a
:class:`~mri_recon.data.fastmri.VolumeInfo` (one-line DataError naming the file and the key
or axis that differs), reads one sample in this project's convention and writes tiny
synthetic files of its layout. docs/DATASETS.md says where each fact comes from.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from mri_recon.checks import one_of

FORMATS = ("fastmri", "cc359", "m4raw", "cmrxrecon")
# the challenge a format's data always are; the others take data.challenge
FIXED_CHALLENGES = {"cc359": "multicoil", "m4raw": "multicoil", "cmrxrecon": "multicoil"}


def format_challenge(fmt: str, challenge: str | None) -> str | None:
    """The challenge of ``fmt``'s data: its own where it has one, else ``challenge``."""
    return FIXED_CHALLENGES.get(fmt, challenge)


def get_reader(fmt: str = "fastmri", options: Mapping[str, Any] | None = None) -> Any:
    """The reader of format ``fmt`` built with its ``options``.

    Raises:
        ValueError: ``format: ...`` for an unknown format, ``format_options: ...`` for an
            option the format does not have.
    """
    one_of("format", fmt, FORMATS)
    module = importlib.import_module(f"mri_recon.data.formats.{fmt}")
    return module.Reader(**dict(options or {}))


def check_challenge(fmt: str, challenge: str) -> str:
    """``challenge`` if format ``fmt`` allows it, else ``ValueError("challenge: ...")``."""
    fixed = FIXED_CHALLENGES.get(fmt)
    if fixed is not None and challenge != fixed:
        raise ValueError(f"challenge: {fmt} data are {fixed}, not {challenge!r}")
    return challenge


__all__ = ["FIXED_CHALLENGES", "FORMATS", "check_challenge", "format_challenge", "get_reader"]

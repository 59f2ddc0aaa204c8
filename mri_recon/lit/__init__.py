"""Lightning: the training module, its callbacks and checkpoint loader, the data module.

The only subpackage that imports Lightning. :func:`load_reconstructor` rebuilds a trained
reconstructor from a checkpoint alone (for ``mri-recon-eval``). Names are imported lazily
so that ``mri_recon.lit.checkpoint`` and ``mri_recon.metrics.accumulate`` load without Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ReconModule": "mri_recon.lit.module",
    "ValidationTable": "mri_recon.lit.callbacks",
    "load_reconstructor": "mri_recon.lit.checkpoint",
}

__all__ = ["ReconModule", "ValidationTable", "load_reconstructor"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mri_recon.lit' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

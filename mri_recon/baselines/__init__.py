"""Classical reconstructors; all obey :class:`mri_recon.contract.Reconstructor` (re-exported
here for the evaluation CLI).

``CLASSICAL`` is the registry of the classical methods that take a weight ``lam``: each is
built from the config group of its own name (``configs/<name>/default.yaml``: ``tv.lam``,
``cg_sense.lam``, ``wavelet.lam``), known to ``mri-recon-eval``, the robustness grid and the
tuner (``mri-recon-tune-tv method=<name>``), and benchmarked against BART by
``scripts/bench_tv.py --methods <name>``.
"""

from mri_recon.baselines.cg_sense import CGSense
from mri_recon.baselines.tv import TVReconstructor
from mri_recon.baselines.wavelet import WaveletCS
from mri_recon.baselines.zero_filled import ZeroFilled
from mri_recon.contract import Reconstructor

CLASSICAL: dict[str, type] = {"tv": TVReconstructor, "cg_sense": CGSense, "wavelet": WaveletCS}
BASELINES: dict[str, type] = {"zero_filled": ZeroFilled, **CLASSICAL}

__all__ = [
    "BASELINES",
    "CLASSICAL",
    "CGSense",
    "Reconstructor",
    "TVReconstructor",
    "WaveletCS",
    "ZeroFilled",
]

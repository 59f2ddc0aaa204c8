"""Classical reconstructors; all obey :class:`mri_recon.contract.Reconstructor` (re-exported
here for the evaluation CLI)."""

from mri_recon.baselines.tv import TVReconstructor
from mri_recon.baselines.zero_filled import ZeroFilled
from mri_recon.contract import Reconstructor

BASELINES: dict[str, type] = {"zero_filled": ZeroFilled, "tv": TVReconstructor}

__all__ = ["BASELINES", "Reconstructor", "TVReconstructor", "ZeroFilled"]

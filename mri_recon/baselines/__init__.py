"""Classical reconstructors; all obey :class:`mri_recon.baselines.base.Reconstructor`."""

from mri_recon.baselines.base import Reconstructor
from mri_recon.baselines.tv import TVReconstructor
from mri_recon.baselines.zero_filled import ZeroFilled

BASELINES: dict[str, type] = {"zero_filled": ZeroFilled, "tv": TVReconstructor}

__all__ = ["BASELINES", "Reconstructor", "TVReconstructor", "ZeroFilled"]

"""Learned reconstruction: plain ``nn.Module`` networks, their norm factory, losses, and the
image-domain reconstructor that wraps a network in the reconstructor contract."""

from mri_recon.models.losses import L1Loss, SSIMLoss
from mri_recon.models.norms import NORM_TYPES, make_norm
from mri_recon.models.reconstructor import ImageReconstructor
from mri_recon.models.unet import Unet

__all__ = ["NORM_TYPES", "ImageReconstructor", "L1Loss", "SSIMLoss", "Unet", "make_norm"]

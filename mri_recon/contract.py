"""The two contracts: how a reconstructor is called, and how a trainable one is trained.

Framework-free (torch only, nothing of the package), so every layer may import it.

- :class:`Reconstructor`: (masked k-space, mask, coil maps, crop size) -> image. Zero-filled,
  TV, the U-Net and the VarNet obey it; the evaluation loop does not care which it runs.
- :class:`Trainable`: a reconstructor that also says what its training loss compares.
  ``ReconModule`` gives it a :class:`TrainingBatch` and hands the :class:`LossTerms` it
  returns to the loss (``loss(terms) -> scalar``, :class:`Loss`): image terms (prediction,
  reference, data range), the full reconstruction for the validation metrics, and optional
  k-space terms for a loss on k-space points (e.g. self-supervised, on points the network
  never saw). An image network is made one by ``models.reconstructor.as_reconstructor``.
- :class:`CropWindows`: the training crop as data, one window per sample, drawn by the
  module from its seeded generator; the trainable applies it to whatever images it compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Reconstructor(Protocol):
    """(masked k-space, mask, coil maps) -> magnitude image cropped to the target size.

    Attributes:
        name: short method name used in tables and file paths ("zero_filled", "tv", "unet").
        needs_sens_maps: whether ``sens_maps`` must be passed for multi-coil data.
    """

    name: str
    needs_sens_maps: bool

    def __call__(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """Reconstruct a batch of slices.

        Args:
            masked_kspace: complex64 (B, C, H, W), C = 1 for single-coil.
            mask: bool (B, W), the sampled columns.
            sens_maps: complex64 (B, C, H, W) or None.
            crop_size: (h, w) of the output.

        Returns:
            float32 (B, h, w) magnitude image.
        """
        ...


def check_inputs(
    masked_kspace: torch.Tensor,
    mask: torch.Tensor,
    sens_maps: torch.Tensor | None,
    crop_size: tuple[int, int] | None = None,
) -> None:
    """Raise TypeError (k-space not complex (B, C, H, W)) or ValueError (a mask, maps or
    crop that do not fit it) naming every argument that breaks the reconstructor contract."""
    if not masked_kspace.is_complex() or masked_kspace.ndim != 4:
        raise TypeError(
            "masked_kspace must be complex (B, C, H, W), got "
            f"{masked_kspace.dtype} {tuple(masked_kspace.shape)}"
        )
    b, _, height, width = masked_kspace.shape
    problems = []
    if mask.shape != (b, width):
        problems.append(f"mask must be (B, W) = {(b, width)}, got {tuple(mask.shape)}")
    if sens_maps is not None and sens_maps.shape != masked_kspace.shape:
        problems.append(f"sens_maps must be (B, C, H, W) too, got {tuple(sens_maps.shape)}")
    if crop_size is not None and not (0 < crop_size[0] <= height and 0 < crop_size[1] <= width):
        problems.append(f"crop_size {tuple(crop_size)} must fit in (H, W) = {(height, width)}")
    if problems:
        raise ValueError(f"{'; '.join(problems)} for masked_kspace {tuple(masked_kspace.shape)}")


@dataclass(frozen=True)
class CropWindows:
    """One crop window per sample, all of one size (so the crops stack).

    Attributes:
        corners: ``(top, left)`` of each sample's window, B pairs.
        size: ``(h, w)`` of every window.
    """

    corners: tuple[tuple[int, int], ...]
    size: tuple[int, int]

    @classmethod
    def random(
        cls, shape: tuple[int, int, int], side: int, generator: torch.Generator
    ) -> CropWindows:
        """Uniformly placed ``side x side`` windows (clipped to the image) in images of
        ``shape`` (B, H, W), corners drawn by ``generator`` (all tops, then all lefts)."""
        b, height, width = shape
        h, w = min(side, height), min(side, width)
        tops = torch.randint(0, height - h + 1, (b,), generator=generator).tolist()
        lefts = torch.randint(0, width - w + 1, (b,), generator=generator).tolist()
        return cls(tuple(zip(tops, lefts, strict=True)), (h, w))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Each sample's window: (B, H, W) -> (B, h, w), any dtype."""
        h, w = self.size
        return torch.stack([x[i, t : t + h, s : s + w] for i, (t, s) in enumerate(self.corners)])


@dataclass(frozen=True)
class TrainingBatch:
    """What a trainable is given for one batch (training or validation).

    The data reach the module in one of two forms (``data.transform``): the masked k-space
    (``device``) or the zero-filled image the data workers formed (``worker``). Exactly one
    of ``masked_kspace`` and ``zero_filled`` is set; a trainable with ``needs_kspace`` is only
    ever given the k-space (the module refuses worker batches for it).

    Attributes:
        mask: bool (B, W) the sampled columns.
        target: float32 (B, h, w) the reference image.
        max_value: float32 (B,) each target's volume maximum.
        masked_kspace: complex64 (B, C, H, W) the measured k-space (zero off the mask), or None.
        zero_filled: float32 (B, h, w) the zero-filled image, or None.
        crop: the windows to compare (training), or None (whole slices).
        sample_seed: int64 (B,) each sample's seed for the randomness a trainable draws
            itself (SSDU's split): in training the sample's mask seed, a function of (run
            seed, epoch, sample index) recorded in ``masks.csv``; in validation fixed per
            (file, slice). None where the batch has none.
    """

    mask: torch.Tensor
    target: torch.Tensor
    max_value: torch.Tensor
    masked_kspace: torch.Tensor | None = None
    zero_filled: torch.Tensor | None = None
    crop: CropWindows | None = None
    sample_seed: torch.Tensor | None = None


@dataclass(frozen=True)
class LossTerms:
    """What the training loss compares, in the units the trainable chose.

    Attributes:
        pred: float32 (B, h', w') the prediction (cropped when the batch had a crop).
        ref: float32 (B, h', w') what it is compared with.
        data_range: float32 (B,) the dynamic range of ``ref`` (SSIM's L).
        recon: float32 (B, h, w) the full reconstruction on the target's scale (the
            validation metrics' input), or None when cropped.
        pred_kspace: complex (B, C, H, W) predicted k-space, or None.
        ref_kspace: complex (B, C, H, W) measured k-space it is compared with, or None.
        kspace_mask: bool, broadcastable to (B, C, H, W): the k-space points a k-space
            loss may use (e.g. the held-out points of a self-supervised split), or None.
    """

    pred: torch.Tensor
    ref: torch.Tensor
    data_range: torch.Tensor
    recon: torch.Tensor | None
    pred_kspace: torch.Tensor | None = None
    ref_kspace: torch.Tensor | None = None
    kspace_mask: torch.Tensor | None = None


@runtime_checkable
class Trainable(Reconstructor, Protocol):
    """A reconstructor that says what its training loss compares.

    Attributes:
        needs_kspace: True if :meth:`loss_terms` needs ``masked_kspace`` (it cannot train on
            the zero-filled images of ``data.transform=worker``).
    """

    needs_kspace: bool

    def loss_terms(self, batch: TrainingBatch) -> LossTerms:
        """The terms of the loss for ``batch``: the network runs under the caller's autocast
        (if any); the returned tensors are float32 (complex64 for k-space)."""
        ...


@runtime_checkable
class DataConsistent(Protocol):
    """A trainable with data consistency that takes any sampled points, not only columns
    (what self-supervised training by splitting the acquired points needs, e.g. SSDU).

    ``kspace_estimate`` runs the network on the measured points ``mask`` marks and returns
    the k-space of its estimate at every point of the grid, ``E x`` (coil k-space for a
    SENSE model). A model that works on another grid than the file's (the VarNet's
    ``crop_readout``) also has ``measurement_grid(masked_kspace, crop_size) -> masked
    k-space on its grid`` (exact for fully sampled rows); without it the grid is the file's.
    """

    def kspace_estimate(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """complex (B, C, H, W) measured k-space (zero off ``mask``), bool ``mask`` (B, W)
        columns or (B, 1|H, W) points -> complex (B, C, H, W) k-space of the estimate."""
        ...


class Loss(Protocol):
    """A training loss: ``loss(terms) -> scalar`` (e.g. ``models.losses.L1Loss``)."""

    def __call__(self, terms: LossTerms) -> torch.Tensor:
        """The loss of ``terms``: a float32 scalar."""
        ...

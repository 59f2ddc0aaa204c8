"""The embedded synthetic dataset: fastMRI-layout knee-like volumes, built from a seed.

Every default run trains and evaluates on it, so it must look like MRI to a network (the
anatomy is in :mod:`mri_recon.data.synthetic.phantoms`) and be stored exactly as fastMRI stores knee
data (``FASTMRI_FORMAT.md``):

- grid ``H = 640`` rows (readout, 2x oversampled: the object lies in about the central half)
  by ``W`` columns, W cycling through ``SynthConfig.widths`` so widths differ in a split;
- ``kspace = fft2c(image)`` (centered, orthonormal), complex64, (S, H, W) single-coil or
  (S, C, H, W) multi-coil, plus white Gaussian noise of std ``noise_std`` in the real and
  in the imaginary part (independent between coils). SNR = PD fat signal / ``noise_std``
  is drawn per volume from ``snr_range``; fat-suppressed volumes are noisier for it;
- some volumes carry header padding: k-space columns outside ``[padding_left,
  padding_right)`` are zero, and the target is computed from that zero-filled k-space;
- single-coil ``reconstruction_esc`` = ``center_crop(|ifft2c(kspace)|)``, also stored as
  ``reconstruction_rss``. (fastMRI's single-coil targets come from a coil *emulated* from
  multi-coil data; ours are the magnitude of our single-coil k-space, whose smooth shading
  stands in for the emulated coil profile.) Multi-coil ``reconstruction_rss`` =
  ``center_crop(rss(|ifft2c(kspace)|))``. Targets include the noise, as fastMRI's do;
- multi-coil sensitivities: receive loops on a cylinder around the leg (see
  :func:`coil_maps`), scaled so that their root-sum-of-squares averages 1 over the object;
- a smooth random image phase (offset, gentle gradient, low-order variation);
- attrs ``max``, ``norm`` (of the target volume), ``patient_id`` (64 hex digits) and
  ``acquisition``, alternating within a split between our own two contrasts:
  ``SYNTH_PD`` (proton density, fat bright; like fastMRI's ``CORPD_FBK``) and
  ``SYNTH_PDFS`` (fat suppressed, fluid bright; like ``CORPDFS_FBK``);
  the ISMRMRD header from :func:`mri_recon.data.header.make_ismrmrd_header`;
- test split, as fastMRI's test files: k-space already undersampled by a stored bool
  ``mask`` (W,), from ``ColumnMaskFunc("random", [0.08], [4])`` (even volumes) or
  ``([0.04], [8])`` (odd volumes) seeded by ``file_seed(fname)``; attrs ``acceleration``
  and ``num_low_frequency``; no target, ``max`` or ``norm``;
- magnitudes of the order of fastMRI knee data (targets ~1e-4), varying between volumes.

Volume ``i`` of split ``s`` of challenge ``c`` is drawn from
``numpy.random.SeedSequence(seed, spawn_key=(c, s, i))`` only (never global state): the same
seed gives byte-identical arrays, whatever the sizes of the other splits.
"""

from mri_recon.data.fastmri import CHALLENGES, TARGET_KEYS
from mri_recon.data.synthetic.build import (
    SPLITS,
    TEST_MASKS,
    ensure_dataset,
    file_names,
    generate_dataset,
    manifest_path,
)
from mri_recon.data.synthetic.phantoms import CONTRASTS
from mri_recon.data.synthetic.volume import (
    PRESETS,
    SynthConfig,
    SynthVolume,
    canvas_height,
    coil_maps,
    image_phase,
    resolve_config,
    synth_volume,
    write_synth_volume,
)

__all__ = [
    "CHALLENGES",
    "CONTRASTS",
    "PRESETS",
    "SPLITS",
    "TARGET_KEYS",
    "TEST_MASKS",
    "SynthConfig",
    "SynthVolume",
    "canvas_height",
    "coil_maps",
    "ensure_dataset",
    "file_names",
    "generate_dataset",
    "image_phase",
    "manifest_path",
    "resolve_config",
    "synth_volume",
    "write_synth_volume",
]

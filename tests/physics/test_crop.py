"""Center crop offsets and the W < 320 rule agree with fastMRI; RSS agrees with fastmri.rss."""

from __future__ import annotations

import fastmri
import numpy as np
import pytest
import torch
from fastmri.data import transforms as T

from mri_recon.physics.crop import center_crop, crop_size_for, rss


@pytest.mark.parametrize(
    ("in_shape", "out_shape"),
    [((10, 7), (4, 3)), ((9, 12), (5, 6)), ((11, 8), (11, 8)), ((8, 9), (1, 2))],
)
def test_center_crop_matches_fastmri(in_shape: tuple[int, int], out_shape: tuple[int, int]) -> None:
    x = torch.arange(2 * in_shape[0] * in_shape[1], dtype=torch.float32).reshape(2, *in_shape)
    torch.testing.assert_close(center_crop(x, out_shape), T.center_crop(x, out_shape))
    xc = torch.complex(x, -x)
    ref = torch.view_as_complex(T.complex_center_crop(torch.view_as_real(xc), out_shape))
    torch.testing.assert_close(center_crop(xc, out_shape), ref)


def test_center_crop_rejects_too_large() -> None:
    with pytest.raises(ValueError, match=r"\(3, 4\) to \(5, 4\)"):
        center_crop(torch.zeros(3, 4), (5, 4))
    with pytest.raises(ValueError, match="center-crop"):
        center_crop(torch.zeros(3, 4), (0, 2))


def test_crop_size_for_narrow_images() -> None:
    assert crop_size_for(368, (320, 320)) == (320, 320)
    assert crop_size_for(320, (320, 320)) == (320, 320)
    # fastMRI: FLAIR volumes narrower than the target are cropped to (W, W).
    assert crop_size_for(260, (320, 320)) == (260, 260)
    assert crop_size_for(300, (320, 310)) == (300, 300)


@pytest.mark.parametrize("target_size", [(6, 8), (8, 6), (7, 7)])
@pytest.mark.parametrize("width", [5, 6, 7, 8, 9, 11])
def test_crop_size_for_matches_fastmri_unet_transform(
    target_size: tuple[int, int], width: int
) -> None:
    """fastMRI's own UnetDataTransform decides the crop: image widths below, equal to and
    above the target width, odd and even, with non-square targets either way round."""
    kspace = np.ones((11, width), dtype=np.complex64)  # single-coil (H, W), H >= every crop
    attrs = {"recon_size": (*target_size, 1), "max": 1.0}
    sample = T.UnetDataTransform("singlecoil")(kspace, None, None, attrs, "f.h5", 0)
    assert crop_size_for(width, target_size) == tuple(sample.image.shape)


def test_rss_matches_fastmri() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 6, 5, dtype=torch.complex64, generator=g)
    ref = fastmri.rss(fastmri.complex_abs(torch.view_as_real(x)), dim=1)
    torch.testing.assert_close(rss(x, dim=1), ref)
    torch.testing.assert_close(rss(x), ref)  # default dim=-3 is the coil axis
    real = x.real
    torch.testing.assert_close(rss(real, dim=1), fastmri.rss(real, dim=1))


def test_rss_of_one_coil_is_magnitude() -> None:
    x = torch.randn(3, 1, 4, 5, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(rss(x, dim=1), x[:, 0].abs())

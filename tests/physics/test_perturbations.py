"""Test-time perturbations: identities (a translation is a phase ramp, a 90 degree rotation is
rot90), the noise estimate against known noise, reproducible draws, no-effect levels that
change nothing, and one error for every bad spec."""

from __future__ import annotations

import math

import pytest
import torch

from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.perturbations import (
    Perturbation,
    noise_std,
    parse_perturbations,
    perturbation_seed,
    phase_ramp,
    rotate,
)


def _volume(sigmas=(0.01, 0.03), slices=2, h=48, w=37, pad=3) -> torch.Tensor:
    """(S, C, H, W) k-space of smooth blobs plus complex noise of per-part std ``sigmas[c]``;
    the first ``pad`` columns zero (never measured)."""
    g = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.arange(h) - h / 2, torch.arange(w) - w / 2, indexing="ij")
    image = torch.exp(-(y**2 / 60 + x**2 / 30)).to(torch.complex64)  # (H, W)
    coils = torch.stack([image * (c + 1) for c in range(len(sigmas))])  # (C, H, W)
    k = fft2c(coils)[None].repeat(slices, 1, 1, 1)
    noise = torch.view_as_complex(torch.randn((*k.shape, 2), generator=g))
    k = k + noise * torch.tensor(sigmas)[None, :, None, None]
    k[..., :pad] = 0
    return k


def test_noise_std_recovers_the_noise_of_each_coil() -> None:
    est = noise_std(_volume(sigmas=(0.01, 0.03), slices=4, h=96, w=75))
    assert est.shape == (2,)
    assert est[0] == pytest.approx(0.01, rel=0.08)
    assert est[1] == pytest.approx(0.03, rel=0.08)


def test_noise_adds_the_stated_multiple_on_measured_samples_reproducibly() -> None:
    k = _volume(sigmas=(0.01, 0.03), slices=4, h=96, w=75)
    seed = perturbation_seed(0, "file1.h5")
    out1, t, m = Perturbation("noise", 1)(k, None, 2.0, seed)
    out4, _, _ = Perturbation("noise", 4)(k, None, 2.0, seed)
    assert t is None and m == 2.0
    added = (out4 - k)[..., 3:]
    for c, sigma in enumerate(noise_std(k)):
        assert float(torch.view_as_real(added[:, c]).std()) == pytest.approx(
            4 * float(sigma), rel=0.05
        )
    assert torch.equal(out4[..., :3], k[..., :3])  # zero-padded columns stay unmeasured
    # one draw per (seed, file, slice): level 4 is level 1's noise times 4
    torch.testing.assert_close(out4 - k, 4 * (out1 - k), rtol=1e-4, atol=1e-6)
    again, _, _ = Perturbation("noise", 1)(k, None, 2.0, perturbation_seed(0, "dir/file1.h5"))
    assert torch.equal(again, out1)
    other, _, _ = Perturbation("noise", 1)(k, None, 2.0, perturbation_seed(1, "file1.h5"))
    assert not torch.equal(other, out1)
    assert not torch.equal(out1[0] - k[0], out1[1] - k[1])  # slices draw differently


def test_no_effect_levels_return_the_inputs_exactly() -> None:
    k = _volume()
    target = torch.rand(2, 5, 7)
    for p in (Perturbation("noise", 0), Perturbation("scale", 1), Perturbation("coils", 2),
              Perturbation("motion", 0), Perturbation("none")):  # fmt: skip
        kk, tt, mm = p(k, target, 0.7, 123)
        assert torch.equal(kk, k) and torch.equal(tt, target) and mm == 0.7, p.label


def test_scale_and_coils() -> None:
    k, target = _volume(), torch.rand(2, 5, 7)
    kk, tt, mm = Perturbation("scale", 100)(k, target, 0.5, 0)
    assert torch.equal(kk, k * 100) and torch.equal(tt, target * 100) and mm == 50.0
    kk, tt, _ = Perturbation("coils", 1)(k, target, 0.5, 0)
    assert torch.equal(kk, k[:, :1]) and tt is target
    assert Perturbation("coils", 3).data_problem(2) == (
        "coils:3 asks for more coils than the data has (2)"
    )
    assert Perturbation("coils", 2).data_problem(2) is None


def test_a_phase_ramp_is_a_translation_on_non_square_odd_images() -> None:
    image = torch.randn(2, 12, 9, dtype=torch.complex64)
    moved = ifft2c(fft2c(image) * phase_ramp((12, 9), torch.tensor([3.0, -2.0])))
    torch.testing.assert_close(moved, torch.roll(image, (3, -2), dims=(-2, -1)), atol=1e-5, rtol=0)


def test_rotation_by_90_degrees_is_rot90() -> None:
    image = torch.randn(3, 11, 11, dtype=torch.complex64)  # centre pixel (5, 5)
    torch.testing.assert_close(rotate(image, 0.0), image, atol=1e-5, rtol=0)
    expected = torch.rot90(image, -1, (-2, -1))  # clockwise as displayed (row 0 on top)
    torch.testing.assert_close(rotate(image, 90.0), expected, atol=1e-5, rtol=0)
    wide = torch.randn(10, 13, dtype=torch.complex64)  # non-square: pixel units, full turn
    torch.testing.assert_close(rotate(wide, 360.0), wide, atol=1e-5, rtol=0)


def test_motion_moves_every_shot_but_the_centre_one() -> None:
    k = _volume(slices=2, h=32, w=24, pad=0)
    p = Perturbation("motion", 2, shots=4)
    out, _, _ = p(k, None, None, 7)
    shot = torch.arange(24) % 4
    centre = shot == shot[12]
    assert torch.equal(out[..., centre], k[..., centre])
    for col in range(24):
        if not centre[col]:
            assert not torch.allclose(out[..., col], k[..., col])
    # each moving shot is a translation of at most 2 pixels: a unit-modulus factor per column
    ratio = out[..., ~centre] / k[..., ~centre]
    torch.testing.assert_close(ratio.abs(), torch.ones_like(ratio.abs()), atol=1e-3, rtol=0)
    assert torch.equal(p(k, None, None, 7)[0], out)  # reproducible
    assert not torch.equal(p(k, None, None, 8)[0], out)
    rotated, _, _ = Perturbation("motion", 0, shots=4, max_rotation=5)(k, None, None, 7)
    assert torch.equal(rotated[..., centre], k[..., centre])
    assert not torch.allclose(rotated[..., ~centre], k[..., ~centre])


@pytest.mark.parametrize(
    ("specs", "fragment"),
    [
        (["blur:2"], "'blur:2': unknown type 'blur'"),
        (["noise:-1"], "'noise:-1': must be a number in [0, inf)"),
        (["coils:0"], "'coils:0': coils takes a whole number of coils >= 1"),
        (["scale:0"], "'scale:0': scale takes a factor > 0"),
        (["noise"], "'noise': write TYPE:LEVEL"),
        (["none", "noise:2", "noise:2.0"], "noise:2 is listed twice"),
        ([], "give a non-empty list"),
    ],
)
def test_bad_specs_are_one_message(specs, fragment) -> None:
    with pytest.raises(ValueError, match="^perturbations: ") as err:
        parse_perturbations(specs)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_specs_parse_to_labels() -> None:
    ps = parse_perturbations(["none", "noise:2", "coils:4", "motion:1.5", "scale:0.01"])
    assert [p.label for p in ps] == ["none", "noise:2", "coils:4", "motion:1.5", "scale:0.01"]
    assert [p.is_random for p in ps] == [False, True, False, True, False]
    assert math.isclose(ps[4].level, 0.01)

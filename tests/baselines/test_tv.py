"""TV compressed sensing: beats zero-filled, objective decreases and converges, scale
equivariance, multi-coil with estimated maps, batching, dtype/device handling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mri_recon.baselines import BASELINES, TVReconstructor, ZeroFilled
from mri_recon.baselines.bart import bart_available, read_cfl, run_bart_pics, write_cfl
from mri_recon.baselines.tv import data_scale, solve_tv, tv_norm, tv_objective
from mri_recon.contract import Reconstructor
from mri_recon.physics.coils import estimate_sens_maps
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.masks import ColumnMaskFunc
from mri_recon.physics.operators import SenseOperator

H, W = 72, 56  # non-square
CROP = (40, 44)
NUM_COILS = 4


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Hundreds of tiny iterations: on a busy 2-core machine, OpenMP barriers between torch's
    threads cost far more than the arithmetic (68 s vs 3 s for this module), so run it on one
    thread and restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")


def _phantom(seed: int = 0) -> torch.Tensor:
    """Piecewise-constant ellipses and a rectangle with a smooth phase: complex64 (H, W)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = _grid()
    img = 0.8 * ((yy / 0.85) ** 2 + (xx / 0.75) ** 2 < 1).float()
    for _ in range(5):
        cy, cx, ay, ax = torch.rand(4, generator=g) * torch.tensor(
            [1.0, 1.0, 0.25, 0.25]
        ) + torch.tensor([-0.5, -0.5, 0.1, 0.1])
        img = img + 0.4 * (((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 < 1).float()
    img = img - 0.3 * ((yy.abs() < 0.15) & ((xx - 0.3).abs() < 0.1)).float()
    phase = 0.9 * xx + 0.5 * yy**2 + 0.2
    return (img * torch.exp(1j * phase)).to(torch.complex64)


def _coil_maps() -> torch.Tensor:
    yy, xx = _grid()
    maps = []
    for c in range(NUM_COILS):
        a = 2 * math.pi * c / NUM_COILS
        amp = torch.exp(-((yy - 1.2 * math.cos(a)) ** 2 + (xx - 1.2 * math.sin(a)) ** 2) / 2.0)
        maps.append(amp * torch.exp(1j * (a + 0.4 * yy)))
    return torch.stack(maps).to(torch.complex64)  # (C, H, W)


def _noise(shape: tuple[int, ...], std: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return std * torch.randn(shape, dtype=torch.complex64, generator=g)


def _mask(seed: int = 1, r: int = 4, cf: float = 0.1) -> torch.Tensor:
    return ColumnMaskFunc("random", [cf], [r])(W, seed=seed).mask  # (W,)


def _single_coil(seed: int = 0, mask_seed: int = 1, r: int = 4):
    """(kspace full (1, 1, H, W), masked (1, 1, H, W), mask (1, W), target (h, w))."""
    k = fft2c(_phantom(seed))[None, None]
    k = k + _noise(k.shape, 0.004, seed + 100)
    mask = _mask(mask_seed, r)[None]
    target = center_crop(ifft2c(k).abs()[0, 0], CROP)
    return k, k * mask[:, None, None, :], mask, target


def _scores(target: torch.Tensor, recon: torch.Tensor) -> tuple[float, float]:
    t, r = target.numpy(), recon.numpy()
    rng = float(t.max())
    return (
        structural_similarity(t, r, data_range=rng),
        peak_signal_noise_ratio(t, r, data_range=rng),
    )


def test_registry_and_contract() -> None:
    assert BASELINES["zero_filled"] is ZeroFilled and BASELINES["tv"] is TVReconstructor
    tv = TVReconstructor()
    assert isinstance(tv, Reconstructor) and tv.name == "tv" and tv.needs_sens_maps


def test_single_coil_beats_zero_filled() -> None:
    _, y, mask, target = _single_coil()
    tv = TVReconstructor()
    out = tv(y, mask, None, CROP)
    assert out.shape == (1, *CROP) and out.dtype == torch.float32
    zf = ZeroFilled()(y, mask, None, CROP)
    (s_tv, p_tv), (s_zf, p_zf) = _scores(target, out[0]), _scores(target, zf[0])
    assert s_tv > s_zf + 0.1 and p_tv > p_zf + 5.0, (s_tv, s_zf, p_tv, p_zf)


def test_objective_decreases_and_converges() -> None:
    _, y, mask, _ = _single_coil()
    op = SenseOperator.single_coil(mask, (H, W))
    lam = 0.003
    lam_eff = lam * data_scale(y)
    objs = [tv_objective(op.A_adjoint(y), y, op, lam_eff).item()]  # x0 = zero-filled
    for iters in (5, 10, 20, 40, 80, 160, 320):
        x = solve_tv(y, mask, None, lam, iters, tol=0.0).image
        objs.append(tv_objective(x, y, op, lam_eff).item())
    ref = solve_tv(y, mask, None, lam, 3000, tol=0.0).image
    f_ref = tv_objective(ref, y, op, lam_eff).item()
    gaps = [(f - f_ref) / (objs[0] - f_ref) for f in objs]
    # Primal-dual iterates need not decrease the primal objective at every step: allow
    # small bumps, but the curve must fall by orders of magnitude to the long run's value.
    assert all(b <= a + 0.02 for a, b in zip(gaps[:-1], gaps[1:], strict=True)), gaps
    assert gaps[-1] < 2e-3 and min(gaps) > -1e-4, gaps
    dist = (torch.linalg.vector_norm(x - ref) / torch.linalg.vector_norm(ref)).item()
    assert dist < 0.01


def _multi_coil():
    """(kspace full (1, C, H, W), masked (1, C, H, W), mask (1, W), true maps (1, C, H, W))."""
    k = fft2c(_coil_maps() * _phantom(3))[None]
    k = k + _noise(k.shape, 0.003, 7)
    mask = _mask(2, cf=0.14)[None]
    return k, k * mask[:, None, None, :], mask, _coil_maps()[None]


@pytest.mark.parametrize("coils", ["single", "sense"])
def test_solution_is_optimal_for_its_own_lambda(coils: str) -> None:
    """Optimality, not just convergence: for the documented objective
    1/2 ||M F S x - y||^2 + lam * max|zero-filled| * TV(x), the solution for lam scores
    lower than the solutions for lam / 1.5 and 1.5 lam. A solver that minimises with a
    scaled weight converges just as well, but to a neighbour's solution."""
    if coils == "single":
        _, y, mask, _ = _single_coil()
        maps, op = None, SenseOperator.single_coil(mask, (H, W))
    else:
        _, y, mask, maps = _multi_coil()
        op = SenseOperator(maps, mask)
    lam = 0.003
    lam_eff = lam * rss(ifft2c(y), dim=1).amax(dim=(-2, -1))  # (1,) the documented scaling
    objs = {}
    for f in (1 / 1.5, 1.0, 1.5):
        x = solve_tv(y, mask, maps, f * lam, 400, tol=0.0).image
        objs[f] = tv_objective(x, y, op, lam_eff).item()
    # converged margins are ~0.2-0.5% of the objective; the solver's own error is far less
    assert objs[1.0] < min(objs[1 / 1.5], objs[1.5]) / (1 + 5e-4), objs


def test_scale_equivariance() -> None:
    _, y, mask, _ = _single_coil()
    a = solve_tv(y, mask, None, 0.01, 60, tol=1e-4)
    b = solve_tv(1e3 * y, mask, None, 0.01, 60, tol=1e-4)
    torch.testing.assert_close(
        b.image, 1e3 * a.image, rtol=1e-3, atol=1e-3 * a.image.abs().max().item() * 1e3
    )
    assert torch.equal(a.iterations, b.iterations)
    torch.testing.assert_close(b.lam_eff, 1e3 * a.lam_eff)


def test_multi_coil_with_estimated_maps_beats_zero_filled() -> None:
    k, y, mask, _ = _multi_coil()
    target = center_crop(rss(ifft2c(k), dim=1)[0], CROP)
    maps = estimate_sens_maps(y, mask)
    out = TVReconstructor(lam=0.005)(y, mask, maps, CROP)
    zf = ZeroFilled()(y, mask, None, CROP)
    (s_tv, p_tv), (s_zf, p_zf) = _scores(target, out[0]), _scores(target, zf[0])
    assert s_tv > s_zf + 0.1 and p_tv > p_zf + 5.0, (s_tv, s_zf, p_tv, p_zf)
    with pytest.raises(ValueError, match="sens_maps is required"):
        TVReconstructor()(y, mask, None, CROP)


def test_batch_equals_single_calls() -> None:
    _, y0, m0, _ = _single_coil(0, 1)
    _, y1, m1, _ = _single_coil(5, 9, r=8)
    y, mask = torch.cat([y0, 10 * y1]), torch.cat([m0, m1])
    both = solve_tv(y, mask, None, 0.01, 300, tol=1e-3)
    assert both.iterations[0] != both.iterations[1]  # slices stop on their own
    for b, (yb, mb) in enumerate([(y0, m0), (10 * y1, m1)]):
        one = solve_tv(yb, mb, None, 0.01, 300, tol=1e-3)
        assert one.iterations.item() == both.iterations[b].item()
        torch.testing.assert_close(one.image[0], both.image[b], rtol=1e-4, atol=1e-5)


def test_stopping_rule_and_info() -> None:
    _, y, mask, _ = _single_coil()
    info = solve_tv(y, mask, None, 0.002, 500, tol=1e-3)
    assert info.image.shape == (1, H, W)
    assert bool(info.converged.all()) and 0 < info.iterations.item() < 500
    capped = solve_tv(y, mask, None, 0.002, 7, tol=0.0)
    assert capped.iterations.item() == 7 and not capped.converged.any()


def test_data_consistency_keeps_measured_samples() -> None:
    k, _, _, _ = _single_coil()
    full = torch.ones(1, W, dtype=torch.bool)
    out = TVReconstructor(max_iters=5, data_consistency=True)(k, full, None, CROP)
    torch.testing.assert_close(out, ZeroFilled()(k, full, None, CROP), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("coils", ["single", "sense"])
def test_data_consistency_fills_in_unmeasured_columns(coils: str) -> None:
    """Undersampled: the output is |F^H (y on sampled columns, F S x elsewhere)| (RSS over
    coils) for the TV solution x, which is neither zero-filled nor the plain minimiser."""
    if coils == "single":
        _, y, mask, _ = _single_coil()
        maps, s = None, torch.ones(1, 1, H, W, dtype=torch.complex64)
    else:
        _, y, mask, maps = _multi_coil()
        s = maps
    tv = dict(lam=0.01, max_iters=20, tol=0.0)
    out = TVReconstructor(**tv, data_consistency=True)(y, mask, maps, (H, W))
    x = solve_tv(y, mask, maps, tv["lam"], tv["max_iters"], tv["tol"]).image
    m = mask[:, None, None, :].to(torch.float32)
    expected = rss(ifft2c(m * y + (1 - m) * fft2c(s * x[:, None])), dim=1)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5 * expected.max().item())
    zf = ZeroFilled()(y, mask, None, (H, W))
    plain = TVReconstructor(**tv)(y, mask, maps, (H, W))
    for other, gap in ((zf, 0.02), (plain, 0.002)):  # measured: 0.13..0.18 and 0.01..0.014
        assert torch.linalg.vector_norm(out - other) > gap * torch.linalg.vector_norm(out)


def test_cpu_only_and_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_cuda(*args: object, **kwargs: object) -> None:
        raise AssertionError("TV touched CUDA")

    monkeypatch.setattr(torch.Tensor, "cuda", no_cuda)
    monkeypatch.setattr(torch.cuda, "is_available", no_cuda)
    _, y, mask, _ = _single_coil()
    cpu = torch.device("cpu")
    out = TVReconstructor(max_iters=10)(y.to(cpu), mask.to(cpu), None, CROP)
    assert out.device == cpu and out.dtype == torch.float32
    out64 = TVReconstructor(max_iters=10)(y.to(torch.complex128), mask, None, CROP)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out, rtol=1e-3, atol=1e-4)


def test_tv_norm_and_objective_values() -> None:
    step = torch.zeros(1, 5, 6)
    step[:, :, 3:] = 2.0  # a vertical edge of height 5 and jump 2
    assert tv_norm(step).item() == pytest.approx(10.0)
    assert tv_norm(torch.full((1, 4, 3), 3.0 + 1.0j)).item() == 0.0
    _, y, mask, _ = _single_coil()
    op = SenseOperator.single_coil(mask, (H, W))
    zero = torch.zeros(1, H, W, dtype=torch.complex64)
    expected = 0.5 * (y.abs() ** 2).sum()
    torch.testing.assert_close(tv_objective(zero, y, op, 1.0)[0], expected)


def test_progress_bar_and_bad_config(capsys: pytest.CaptureFixture[str]) -> None:
    _, y, mask, _ = _single_coil()
    TVReconstructor(max_iters=3, progress=True)(y, mask, None, CROP)
    assert "TV" in capsys.readouterr().err
    for kwargs, field in [
        ({"lam": -1}, "lam"),
        ({"max_iters": 0}, "max_iters"),
        ({"max_iters": 2.5}, "max_iters"),
        ({"tol": -1.0}, "tol"),
        ({"tau": 0.0}, "tau"),
        ({"data_consistency": "yes"}, "data_consistency"),
    ]:
        with pytest.raises(ValueError, match=f"^{field}: must be"):
            TVReconstructor(**kwargs)


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _, y, mask, _ = _single_coil()
    dev = torch.device("cuda")
    cpu = solve_tv(y, mask, None, 0.01, 50, tol=0.0).image
    gpu = solve_tv(y.to(dev), mask.to(dev), None, 0.01, 50, tol=0.0).image
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4)


def test_cfl_round_trip(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1, 5, 3, 2, dtype=torch.complex64, generator=g).numpy()
    write_cfl(tmp_path / "a", a)
    dims = (tmp_path / "a.hdr").read_text().splitlines()[1].split()
    assert dims[:4] == ["1", "5", "3", "2"] and len(dims) == 16
    back = read_cfl(tmp_path / "a")
    assert back.shape == (1, 5, 3, 2) and (back == a).all()
    (tmp_path / "a.cfl").write_bytes(b"\0" * 8)
    with pytest.raises(ValueError, match="a.cfl: 1 values"):
        read_cfl(tmp_path / "a")


@pytest.mark.skipif(not bart_available(), reason="bart not installed (benchmark reference only)")
def test_bart_layout_matches_ours() -> None:
    """Fully sampled, tiny lambda: BART's pics returns the image, so our [1, H, W, C] layout
    and centred k-space convention are the ones BART expects (as in fastMRI's run_bart.py)."""
    k, _, _, _ = _single_coil()
    res = run_bart_pics(k[0].numpy(), None, lam=1e-6, num_iters=30)
    expected = ifft2c(k[0, 0]).abs().numpy()
    err = np.abs(np.abs(res.image) - expected).max() / expected.max()
    assert res.image.shape == (H, W) and err < 0.02 and res.cpu_s >= 0.0


@pytest.mark.parametrize("coils", ["single", "sense"])
def test_crop_readout_solves_the_output_rows_only(coils: str, monkeypatch) -> None:
    """Issue 20: with fastMRI's 2x readout oversampling (the object in the middle half of
    the rows), the reconstructor solves on the output's rows plus READOUT_MARGIN each side:
    the same output as the whole field of view (minimiser and data consistency), on half
    the rows, with the whole field of view's lambda scale."""
    import mri_recon.baselines.tv as tv_module

    tall = torch.zeros((2 * H, W), dtype=torch.complex64)
    tall[H // 2 : H // 2 + H] = _phantom(3)
    if coils == "single":
        images, maps = tall[None], None
    else:
        yy = torch.linspace(-2, 2, 2 * H)[:, None]
        maps = torch.stack(
            [torch.exp(-((yy - c) ** 2) / 2 + 0.3j * yy) * torch.ones(W) for c in (-1, 0, 1)]
        ).to(torch.complex64)
        images = maps * tall
    k = fft2c(images)[None] + _noise((1, images.shape[0], 2 * H, W), 0.004, 7)
    mask = _mask()[None]
    y = k * mask[:, None, None, :]
    if maps is not None:
        maps = (maps / rss(maps, dim=0))[None]
    rows, scales = [], []
    real_solve = tv_module.solve_tv
    monkeypatch.setattr(
        tv_module,
        "solve_tv",
        lambda y, *a, **kw: (
            rows.append(y.shape[-2]) or scales.append(kw["scale"]) or real_solve(y, *a, **kw)
        ),
    )
    for dc in (False, True):
        settings = dict(lam=0.005, max_iters=60, tol=0.0, data_consistency=dc)
        whole = TVReconstructor(**settings, crop_readout=False)(y, mask, maps, CROP)
        cut = TVReconstructor(**settings)(y, mask, maps, CROP)
        assert cut.shape == whole.shape == (1, *CROP)
        torch.testing.assert_close(cut, whole, rtol=0, atol=2e-3 * float(whole.max()))
    start, stop = tv_module.readout_rows(2 * H, CROP[0], tv_module.READOUT_MARGIN)
    assert (
        rows == [2 * H, stop - start] * 2 and stop - start == CROP[0] + 2 * tv_module.READOUT_MARGIN
    )
    for scale in scales:  # the whole field of view's, cut or not
        torch.testing.assert_close(scale, data_scale(y))
    with pytest.raises(ValueError, match=r"^crop_readout: must be"):
        TVReconstructor(crop_readout="yes")

"""l1-wavelet compressed sensing (Lustig, Donoho & Pauly, MRM 2007), solved by FISTA.

    x* = argmin_x 1/2 ||M F S x - y||^2 + lam_eff ||Psi x||_1

with Psi an orthogonal Daubechies (or any orthogonal pywt) wavelet transform of the complex
image, ``||.||_1`` the sum of the complex magnitudes of the *detail* coefficients (the coarse
approximation band is not penalised, as in Lustig's sparseMRI and BART) and S = 1 for
single-coil. ``lam_eff = lam * max|zero-filled image|`` per slice, TV's convention
(:func:`mri_recon.baselines.tv.data_scale`): the l1 term is 1-homogeneous, so one ``lam``
serves data of any intensity.

The transform is ptwt's matrix FWT with orthogonalised boundary filters
(``ptwt.MatrixWavedec2``, ``orthogonalization="qr"``): exactly orthogonal when every level's
size is even, so the image is padded (bottom and right) to a multiple of ``2^levels``; the
padded pixels are unknowns the data never see (the data term reads the top-left H x W), so
the prox ``Psi^T soft(Psi v, t lam_eff)`` is exact and FISTA (Beck & Teboulle 2009) minimises
the stated objective. Real and imaginary parts go through the real transform as one batch.

Translation invariance as BART's ``pics`` does it (random cycle spinning): each iteration
shifts the padded image circularly by a random (dy, dx) in ``[0, 2^levels)`` before the
transform and back after it, drawn from a ``torch.Generator`` seeded by ``seed`` (the same
shifts for every call, so results are reproducible). Each shifted transform is orthogonal, so
each prox is exact; the iteration then no longer minimises one fixed objective (it averages
over shifts, which removes the blocky artefacts of a fixed dyadic grid). ``shift=False`` gives
the plain FISTA minimiser of the objective above.

The data term's gradient uses the hybrid-domain normal operator of
:class:`~mri_recon.baselines.cg_sense.HybridNormal` (1-D FFTs along W only).
"""

from __future__ import annotations

import math
import warnings

import ptwt
import pywt
import torch
from tqdm.auto import tqdm

from mri_recon.baselines.cg_sense import HybridNormal, magnitude
from mri_recon.baselines.tv import data_scale
from mri_recon.checks import boolean, integer, number, one_of, positive_int
from mri_recon.contract import check_inputs
from mri_recon.physics.cg import sq_norms
from mri_recon.physics.operators import SenseOperator

# Orthogonal discrete wavelets pywt knows (ptwt takes their filters): haar, dbN, symN, coifN.
WAVELETS = tuple(
    name
    for family in ("haar", "db", "sym", "coif")
    for name in pywt.wavelist(family)
    if pywt.Wavelet(name).orthogonal
)


def max_levels(shape: tuple[int, int], wavelet: str) -> int:
    """The deepest decomposition of an (H, W) image: every band keeps at least the filter
    length in both directions (after padding to a multiple of 2^levels)."""
    taps = pywt.Wavelet(wavelet).dec_len
    return max(0, int(math.floor(math.log2(min(shape) / taps))))


class WaveletTransform:
    """Orthogonal 2-D wavelet transform of complex (B, H, W) images on a padded grid.

    Args:
        wavelet: a name of :data:`WAVELETS`.
        levels: decomposition levels.
    """

    def __init__(self, wavelet: str, levels: int) -> None:
        self.wavelet, self.levels = wavelet, levels
        self._cache: dict[tuple, tuple] = {}

    def padded_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(H, W) rounded up to multiples of 2^levels."""
        step = 2**self.levels
        return (-(-shape[0] // step) * step, -(-shape[1] // step) * step)

    def _pair(self, x: torch.Tensor):
        """ptwt's (analysis, synthesis) pair for images of x's shape, device and dtype; each
        builds its sparse matrices on its first call and keeps them."""
        key = (tuple(x.shape[-2:]), x.device, x.dtype)
        if key not in self._cache:
            self._cache[key] = (
                ptwt.MatrixWavedec2(self.wavelet, self.levels, orthogonalization="qr"),
                ptwt.MatrixWaverec2(self.wavelet, orthogonalization="qr"),
            )
        return self._cache[key]

    @staticmethod
    def _quiet(fn, arg):
        """ptwt's sparse matrices warn (beta CSR support, unchecked invariants) on every build."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="ptwt")
            return fn(arg)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Psi x: complex (B, H', W') padded image -> [approximation, then the detail bands of
        each level, coarse to fine], each complex (B, 3, h_l, w_l) (the approximation (B, h, w))."""
        real = torch.view_as_real(x).movedim(-1, 0).reshape(-1, *x.shape[-2:])  # (2B, H', W')
        coeffs = self._quiet(self._pair(real)[0], real)
        b = x.shape[0]

        def cplx(t: torch.Tensor) -> torch.Tensor:
            return torch.complex(t[:b], t[b:])

        return [cplx(coeffs[0])] + [cplx(torch.stack(tuple(d), dim=1)) for d in coeffs[1:]]

    def inverse(self, bands: list[torch.Tensor]) -> torch.Tensor:
        """Psi^T: the bands of :meth:`forward` -> complex (B, H', W')."""

        def split(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t.real, t.imag])

        coeffs = [split(bands[0])] + [
            ptwt.constants.WaveletDetailTuple2d(*split(d).unbind(dim=1)) for d in bands[1:]
        ]
        inv = self._pair(split(bands[0]).new_empty(1, *self._shape_hint(bands)))[1]
        real = self._quiet(inv, tuple(coeffs))  # (2B, H', W')
        b = bands[0].shape[0]
        return torch.complex(real[:b], real[b:])

    @staticmethod
    def _shape_hint(bands: list[torch.Tensor]) -> tuple[int, int]:
        h, w = bands[-1].shape[-2:]
        return (2 * h, 2 * w)


def soft_threshold(z: torch.Tensor, thresh: torch.Tensor) -> torch.Tensor:
    """Complex soft thresholding ``z * max(0, 1 - thresh / |z|)``, thresh broadcast (B, 1, ...)."""
    mag = torch.sqrt(z.real.square() + z.imag.square())
    return z * (1 - thresh / mag.clamp_min(torch.finfo(mag.dtype).tiny)).clamp_min(0)


def wavelet_norm(x: torch.Tensor, transform: WaveletTransform) -> torch.Tensor:
    """||Psi x||_1 over the detail bands: complex (B, H', W') padded image -> real (B,)."""
    bands = transform.forward(x)[1:]
    return sum(d.abs().flatten(1).sum(dim=1) for d in bands)


def wavelet_objective(
    x: torch.Tensor,
    masked_kspace: torch.Tensor,
    mask: torch.Tensor,
    sens_maps: torch.Tensor | None,
    lam_eff: torch.Tensor,
    transform: WaveletTransform,
) -> torch.Tensor:
    """1/2 ||A crop(x) - y||^2 + lam_eff ||Psi x||_1 per slice for x on the padded grid:
    complex (B, H', W') -> real (B,)."""
    h, w = masked_kspace.shape[-2:]
    maps = torch.ones_like(masked_kspace) if sens_maps is None else sens_maps.to(masked_kspace)
    op = SenseOperator(maps, mask.to(masked_kspace.device))
    resid = op.A(x[:, :h, :w]) - masked_kspace * op.mask[:, None, None, :]
    return 0.5 * sq_norms(resid) + lam_eff * wavelet_norm(x, transform)


def solve_wavelet(
    masked_kspace: torch.Tensor,
    mask: torch.Tensor,
    sens_maps: torch.Tensor | None,
    lam: float,
    max_iters: int,
    transform: WaveletTransform,
    shift: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FISTA on the padded grid.

    Args:
        masked_kspace: complex (B, C, H, W) y.
        mask: bool (B, W).
        sens_maps: complex (B, C, H, W), or None for single-coil.
        lam: relative weight; ``lam_eff = lam * data_scale(masked_kspace)``.
        max_iters: FISTA iterations.
        transform: the wavelet transform (its levels fit the image: see :func:`max_levels`).
        shift: random cycle spinning per iteration.
        seed: seed of the shifts.
        progress: a tqdm bar over iterations.

    Returns:
        (complex (B, H', W') solution on the padded grid, real (B,) lam_eff).
    """
    h, w = masked_kspace.shape[-2:]
    hp, wp = transform.padded_shape((h, w))
    normal = HybridNormal(masked_kspace, mask.to(masked_kspace.device), sens_maps)
    lam_eff = lam * data_scale(masked_kspace)  # (B,)
    step = 1.0 / normal.lipschitz  # (B,)
    thresh = (step * lam_eff)[:, None, None, None]  # (B, 1, 1, 1) for the (B, 3, h, w) bands
    step = step[:, None, None]

    def pad(t: torch.Tensor) -> torch.Tensor:  # (B, H, W) -> (B, H', W') with zeros
        return torch.nn.functional.pad(t, (0, wp - w, 0, hp - h))

    rhs = pad(normal.rhs)
    x = rhs.clone()
    z, theta = x, 1.0
    gen = torch.Generator().manual_seed(seed)
    span = 2**transform.levels
    for _ in tqdm(range(max_iters), desc="wavelet", disable=not progress, leave=False):
        v = z - step * (pad(normal(z[:, :h, :w])) - rhs)
        dy, dx = torch.randint(0, span, (2,), generator=gen).tolist() if shift else (0, 0)
        v = torch.roll(v, (dy, dx), dims=(-2, -1))
        bands = transform.forward(v)
        bands = [bands[0]] + [soft_threshold(d, thresh) for d in bands[1:]]
        x_new = torch.roll(transform.inverse(bands), (-dy, -dx), dims=(-2, -1))
        theta_new = (1 + math.sqrt(1 + 4 * theta**2)) / 2
        z = x_new + ((theta - 1) / theta_new) * (x_new - x)
        x, theta = x_new, theta_new
    return x, lam_eff


class WaveletCS:
    """l1-wavelet CS obeying the reconstructor contract (name "wavelet"); the coil maps come
    from the caller (the ``coils`` config node), as for TV.

    Args:
        lam: relative weight (``lam_eff = lam * max |zero-filled|`` per slice, as TV).
        max_iters: FISTA iterations.
        wavelet: an orthogonal wavelet of :data:`WAVELETS` (db4: Daubechies, 8 taps).
        levels: decomposition levels (checked against each image: :func:`max_levels`).
        shift: random cycle spinning each iteration (BART's default).
        seed: seed of the shifts.
        progress: tqdm bar over iterations.
    """

    name = "wavelet"
    needs_sens_maps = True

    def __init__(
        self,
        lam: float = 0.002,
        max_iters: int = 15,
        wavelet: str = "db4",
        levels: int = 4,
        shift: bool = True,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        self.lam = number("lam", lam, 0)
        self.max_iters = positive_int("max_iters", max_iters)
        self.wavelet = one_of("wavelet", wavelet, WAVELETS)
        self.levels = positive_int("levels", levels)
        self.shift, self.progress = boolean("shift", shift), boolean("progress", progress)
        self.seed = integer("seed", seed, 0)
        self.transform = WaveletTransform(self.wavelet, self.levels)

    def check_shape(self, shape: tuple[int, int]) -> None:
        """ValueError naming ``levels`` when the decomposition is too deep for (H, W)."""
        deepest = max_levels(shape, self.wavelet)
        if self.levels > deepest:
            raise ValueError(
                f"wavelet: levels {self.levels} is too deep for a {shape[0]} x {shape[1]} image with "
                f"{self.wavelet} (at most {deepest}: each band keeps >= "
                f"{pywt.Wavelet(self.wavelet).dec_len} samples)"
            )

    def __call__(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """The reconstructor contract: complex (B, C, H, W), bool (B, W), maps (B, C, H, W)
        or None when C = 1 -> real (B, h, w): |x|, or the RSS of S x for multi-coil."""
        check_inputs(masked_kspace, mask, sens_maps, crop_size)
        if masked_kspace.shape[1] > 1 and sens_maps is None:
            raise ValueError(
                f"sens_maps is required for multi-coil masked_kspace {tuple(masked_kspace.shape)}"
            )
        h, w = masked_kspace.shape[-2:]
        self.check_shape((h, w))
        x, _ = solve_wavelet(
            masked_kspace,
            mask,
            sens_maps,
            self.lam,
            self.max_iters,
            self.transform,
            shift=self.shift,
            seed=self.seed,
            progress=self.progress,
        )
        return magnitude(x[:, :h, :w], sens_maps, crop_size)

    def __repr__(self) -> str:
        return (
            f"WaveletCS(lam={self.lam}, max_iters={self.max_iters}, wavelet={self.wavelet!r}, "
            f"levels={self.levels}, shift={self.shift}, seed={self.seed})"
        )

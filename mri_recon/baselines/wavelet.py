"""l1-wavelet compressed sensing (Lustig, Donoho & Pauly, MRM 2007), solved by FISTA.

    x* = argmin_x 1/2 ||M F S x - y||^2 + lam_eff ||Psi x||_1

with Psi an orthogonal Daubechies (or any orthogonal pywt) wavelet transform of the complex
image, ``||.||_1`` the sum of the complex magnitudes of the *detail* coefficients (the coarse
approximation band is not penalised) and S = 1 for single-coil.
``lam_eff = lam * max|zero-filled image|`` per slice, TV's convention
(:func:`mri_recon.baselines.tv.data_scale`): the l1 term is 1-homogeneous, so one ``lam``
serves data of any intensity.

The transform applies ptwt's 1-D analysis matrices with orthogonalised boundary filters
(``ptwt.matmul_transform.construct_boundary_a``, ``orthogonalization="qr"``, the matrices of
``ptwt.MatrixWavedec2``) along H and W at each level (:class:`WaveletTransform`, the same
coefficients as ``MatrixWavedec2`` at a fifth of its time: no batch transposes). It is exactly
orthogonal when every level's size is even, so the image is padded (bottom and right) to a
multiple of ``2^levels``; the padded pixels are unknowns the data never see (the data term
reads the top-left H x W), so the prox ``Psi^T soft(Psi v, t lam_eff)`` is exact and FISTA
(Beck & Teboulle 2009) minimises the stated objective.

Translation invariance as BART's ``pics`` does it (random cycle spinning): each iteration
shifts the padded image circularly by a random (dy, dx) in ``[0, 2^levels)`` before the
transform and back after it, drawn from a ``torch.Generator`` seeded by ``seed`` (the same
shifts for every call, so results are reproducible). Each shifted transform is orthogonal, so
each prox is exact; the iteration then no longer minimises one fixed objective (it averages
over shifts, which removes the blocky artefacts of a fixed dyadic grid). ``shift=False`` gives
the plain FISTA minimiser of the objective above.

What BART's ``bart pics -R W:7:0:lam`` does (source of v0.8.00, Debian's package here,
github.com/mrirecon/bart), and what this module does about it:

- Wavelet: Daubechies-2, 4 taps (``pics.c``: ``wtype_str = "dau2"``; ``wavelet/wavelet.c``:
  ``wavelet_dau2``, pywt's ``db2``). Ours: ``db2`` by default.
- Depth: ``grecon/optreg.c`` ``opt_reg_configure`` (case ``L1WAV``) sets ``minsize = MIN(dim,
  16)`` per transformed dim; ``wavelet/wavelet.c`` ``fwt2`` / ``wavelet_filter_flags`` keep
  decomposing a dim while its band has >= 16 samples (640 x 360: 6 levels along 640, coarse
  band 12; 5 along 360, coarse 14). Ours: ``levels="auto"``, :func:`auto_levels` (coarsest
  band >= 8 samples along the shorter side; 5 levels for 640 x 360, coarse 20 x 12).
- Boundaries: BART's bands have ``(n + taps - 1) / 2`` samples with symmetric extension
  (``wavelet.c`` ``bandsize``, ``coord``): a redundant, not orthogonal, transform, so its
  threshold step is not an exact prox. Ours: orthogonal (exact prox).
- Thresholded bands: ``wavelet.c`` ``wavelet_thresh`` soft-thresholds every coefficient, the
  coarse band included (``md_zsoftthresh`` over the whole ``fwt2`` output). Ours: the detail
  bands only (the coarse band too gives +0.0003 / +0.0022 SSIM single-coil 4x / 8x at the best
  lambda, docs/RESULTS.md: not worth an option).
- Cycle spinning: ``wavelet/wavthresh.c`` ``wavelet_thresh_apply`` draws each dim's shift
  uniformly in ``[0, 2^L]`` (``rand_lim``; L is that dim's ``wavelet_num_levels``, one more
  than its decompositions) from a
  fixed ``rand_r`` state (1) every prox call; on by default (``pics -n`` turns it off). Ours:
  ``[0, 2^levels)`` per axis (the transform's period on the padded grid), seeded.
- Solver: ``grecon/italgo.c`` ``italgo_choose``: one l1-wavelet term -> FISTA; ``pics.c``:
  ``maxiter = 30`` (``-i``), step ``0.95 / maxeigen`` with ``maxeigen = 1`` unless ``-e``, from
  x = 0 (``md_clear``). ``iter/italgos.c`` ``fista``: each iteration thresholds with
  ``lambda * step``, extrapolates (``ravine``), then takes the gradient step
  ``x += step (A^H y - A^H A x)``, so **the image BART returns is a gradient step of the data
  term after the last prox**, not the prox output: at convergence ``x* - step grad f(x*)``,
  whose sampled k-space is (almost, step 0.95) the measured one. Ours: ``max_iters`` 30 and
  ``final_step=True`` (one gradient step from the last iterate ``x``, step 1 / L); the
  minimiser itself with ``final_step=False``. This step is the largest part (+0.036 SSIM
  single-coil 4x) of what BART had over the previous version (db4, 4 levels, 15 iterations,
  no final step; docs/RESULTS.md, issue 20.3).
- Units: ``pics.c`` divides the k-space by ``scaling = estimate_scaling(...)``
  (``sense/optcom.c`` ``estimate_scaling_norm``: the 90th percentile of the RSS image of the
  fully sampled centre, at most 32 x 32, or its maximum when ``max - p90 >= 2 (p90 -
  median)``) unless ``-w`` gives it, and ``-S`` multiplies the result by ``scaling`` again:
  ``-S`` leaves lambda's meaning alone. BART's lam is relative to that scale, ours to
  ``max|zero-filled|``: ``lam_BART = lam * max|zero-filled| / scaling``, a factor of 1.8-2.8
  on the synthetic benchmark slices (``scripts/bench_tv.py`` prints it).

The data term's gradient uses the hybrid-domain normal operator of
:class:`~mri_recon.baselines.cg_sense.HybridNormal` (1-D FFTs along W only).
"""

from __future__ import annotations

import math
import warnings

import pywt
import torch
from ptwt.matmul_transform import construct_boundary_a
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


def auto_levels(shape: tuple[int, int], wavelet: str) -> int:
    """BART's depth for an (H, W) image: decompose while a band has at least 16 samples
    (``minsize`` 16 in ``opt_reg_configure``), i.e. the coarsest band keeps >= 8 samples along
    the shorter side, within :func:`max_levels`; at least 1."""
    return max(1, min(int(math.floor(math.log2(min(shape) / 8))), max_levels(shape, wavelet)))


class WaveletTransform:
    """Orthogonal 2-D wavelet transform of complex (B, H', W') images, H' and W' multiples of
    2^levels (:meth:`padded_shape`).

    Each level applies ptwt's 1-D analysis matrix (``construct_boundary_a``, boundary filters
    orthogonalised by QR: an orthogonal sparse matrix whose first half of rows is the low-pass
    band) along H, then along W; the synthesis is its transpose. The image is kept as complex
    (H, W, B) so that a matrix acts on a contiguous real (n, 2 * rest) view (real and imaginary
    parts alike, no copies), and each level transposes once: level k's coefficients are
    (W_k, H_k, B) for odd k and (H_k, W_k, B) for even k.

    Args:
        wavelet: a name of :data:`WAVELETS`.
        levels: decomposition levels.
    """

    def __init__(self, wavelet: str, levels: int) -> None:
        self.wavelet, self.levels = wavelet, levels
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def padded_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(H, W) rounded up to multiples of 2^levels."""
        step = 2**self.levels
        return (-(-shape[0] // step) * step, -(-shape[1] // step) * step)

    def _matrices(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(analysis, synthesis = its transpose) of length n as sparse CSR in like's real dtype
        on its device, built in float64 once and kept."""
        key = (n, like.device, like.dtype)
        if key not in self._cache:
            with warnings.catch_warnings():  # ptwt's sparse matrices warn on every build
                warnings.filterwarnings("ignore", category=UserWarning)
                a = construct_boundary_a(self.wavelet, n, orthogonalization="qr")
                a = a.coalesce().to_dense().to(device=like.device, dtype=like.real.dtype)
            self._cache[key] = (a.to_sparse_csr(), a.t().contiguous().to_sparse_csr())
        return self._cache[key]

    def _along0(self, m: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """m (n, n) applied along dim 0 of complex contiguous t (n, ...)."""
        real = torch.view_as_real(t).reshape(t.shape[0], -1)
        return torch.view_as_complex((m @ real).reshape(*t.shape, 2))

    def _analysis(self, t: torch.Tensor) -> torch.Tensor:
        """One level: complex (n0, n1, B) -> its coefficients (n1, n0, B) (low band first)."""
        t = self._along0(self._matrices(t.shape[0], t)[0], t).transpose(0, 1).contiguous()
        return self._along0(self._matrices(t.shape[0], t)[0], t)

    def _synthesis(self, c: torch.Tensor) -> torch.Tensor:
        """The inverse (and adjoint) of :meth:`_analysis`: (n1, n0, B) -> (n0, n1, B)."""
        t = self._along0(self._matrices(c.shape[0], c)[1], c).transpose(0, 1).contiguous()
        return self._along0(self._matrices(t.shape[0], t)[1], t)

    def _levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each level's coefficient block, fine to coarse; each block's top-left quadrant is
        the (untouched) approximation that the next level transforms."""
        t, blocks = x.permute(1, 2, 0).contiguous(), []
        for _ in range(self.levels):
            blocks.append(self._analysis(t))
            h, w = blocks[-1].shape[0] // 2, blocks[-1].shape[1] // 2
            t = blocks[-1][:h, :w].contiguous()
        return blocks

    def _unlevels(self, blocks: list[torch.Tensor], approx: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_levels` (the blocks' approximation quadrants are overwritten,
        the coarsest by approx): -> complex (B, H', W')."""
        t = approx
        for c in reversed(blocks):
            c[: c.shape[0] // 2, : c.shape[1] // 2] = t
            t = self._synthesis(c)
        return t.permute(2, 0, 1).contiguous()

    def shrink(self, x: torch.Tensor, thresh: torch.Tensor) -> torch.Tensor:
        """The prox of ``thresh ||Psi x||_1`` over the detail bands, ``Psi^T soft(Psi x)``:
        complex (B, H', W'), thresh (B,) -> (B, H', W')."""
        blocks = self._levels(x)
        approx = blocks[-1][: blocks[-1].shape[0] // 2, : blocks[-1].shape[1] // 2].clone()
        for c in blocks:
            h, w = c.shape[0] // 2, c.shape[1] // 2
            c[h:] = soft_threshold(c[h:], thresh)
            c[:h, w:] = soft_threshold(c[:h, w:], thresh)
        return self._unlevels(blocks, approx)

    @staticmethod
    def _quadrants(c: torch.Tensor, k: int) -> list[torch.Tensor]:
        """Level k's (0: finest) detail quadrants of its block c in ptwt's order, (low H, high
        W), (high H, low W), (high H, high W): views of c ((W, H, B) for even k, else (H, W, B))."""
        a, b = c.shape[0] // 2, c.shape[1] // 2
        first, second = (c[a:, :b], c[:a, b:]) if k % 2 == 0 else (c[:a, b:], c[a:, :b])
        return [first, second, c[a:, b:]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Psi x: complex (B, H', W') padded image -> [approximation, then the detail bands of
        each level, coarse to fine], each complex (B, 3, h_l, w_l) (the approximation (B, h, w)):
        ``ptwt.MatrixWavedec2(wavelet, levels, orthogonalization="qr")``'s coefficients."""
        bands = []
        for k, c in enumerate(self._levels(x)):
            quads = torch.stack(self._quadrants(c, k))  # (3, n1, n0, B)
            bands.append(quads.permute(3, 0, 2, 1) if k % 2 == 0 else quads.permute(3, 0, 1, 2))
        a, b = c.shape[0] // 2, c.shape[1] // 2
        approx = c[:a, :b].permute(2, 1, 0) if len(bands) % 2 else c[:a, :b].permute(2, 0, 1)
        return [approx.contiguous()] + [d.contiguous() for d in reversed(bands)]

    def inverse(self, bands: list[torch.Tensor]) -> torch.Tensor:
        """Psi^T: the bands of :meth:`forward` -> complex (B, H', W')."""
        blocks = []
        for k, d in enumerate(reversed(bands[1:])):  # fine to coarse
            quads = d.permute(1, 3, 2, 0) if k % 2 == 0 else d.permute(1, 2, 3, 0)  # (3, n1, n0, B)
            n1, n0 = 2 * quads.shape[1], 2 * quads.shape[2]
            c = quads.new_zeros(n1, n0, quads.shape[-1])
            for view, q in zip(self._quadrants(c, k), quads, strict=True):
                view.copy_(q)
            blocks.append(c)
        a = bands[0]
        approx = a.permute(2, 1, 0) if len(blocks) % 2 else a.permute(1, 2, 0)
        return self._unlevels(blocks, approx.contiguous())


def soft_threshold(z: torch.Tensor, thresh: torch.Tensor) -> torch.Tensor:
    """Complex soft thresholding ``z * max(0, 1 - thresh / |z|)``, thresh broadcast against
    z (a per-slice (B,) for z (..., B))."""
    r = torch.view_as_real(z)
    mag = torch.hypot(r[..., 0], r[..., 1]).clamp_min_(torch.finfo(r.dtype).tiny)
    return z * mag.reciprocal_().mul_(-thresh).add_(1).clamp_min_(0)


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
    final_step: bool = False,
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
        final_step: end on one gradient step of the data term from the last iterate, as
            BART's ``pics`` does (the module docstring); False: the last FISTA iterate.

    Returns:
        (complex (B, H', W') image on the padded grid, real (B,) lam_eff).
    """
    h, w = masked_kspace.shape[-2:]
    hp, wp = transform.padded_shape((h, w))
    normal = HybridNormal(masked_kspace, mask.to(masked_kspace.device), sens_maps)
    lam_eff = lam * data_scale(masked_kspace)  # (B,)
    step = 1.0 / normal.lipschitz  # (B,)
    thresh = step * lam_eff  # (B,)
    step = step[:, None, None]

    def pad(t: torch.Tensor) -> torch.Tensor:  # (B, H, W) -> (B, H', W') with zeros
        return torch.nn.functional.pad(t, (0, wp - w, 0, hp - h))

    rhs = pad(normal.rhs)
    x = rhs.clone()
    z, theta = x, 1.0
    gen = torch.Generator().manual_seed(seed)
    span = 2**transform.levels
    for _ in tqdm(range(max_iters), desc="wavelet", disable=not progress, leave=False):
        v = z - pad(normal(z[:, :h, :w])).sub_(rhs).mul_(step)
        dy, dx = torch.randint(0, span, (2,), generator=gen).tolist() if shift else (0, 0)
        v = torch.roll(v, (dy, dx), dims=(-2, -1))
        x_new = torch.roll(transform.shrink(v, thresh), (-dy, -dx), dims=(-2, -1))
        theta_new = (1 + math.sqrt(1 + 4 * theta**2)) / 2
        z = torch.add(x_new, x_new - x, alpha=(theta - 1) / theta_new)
        x, theta = x_new, theta_new
    if final_step:
        x = x - step * (pad(normal(x[:, :h, :w])) - rhs)
    return x, lam_eff


class WaveletCS:
    """l1-wavelet CS obeying the reconstructor contract (name "wavelet"); the coil maps come
    from the caller (the ``coils`` config node), as for TV.

    Args:
        lam: relative weight (``lam_eff = lam * max |zero-filled|`` per slice, as TV).
        max_iters: FISTA iterations (BART's default, 30).
        wavelet: an orthogonal wavelet of :data:`WAVELETS` (db2: Daubechies, 4 taps, BART's).
        levels: decomposition levels, or "auto": :func:`auto_levels` of each image (BART's
            depth). A number is checked against each image (:func:`max_levels`; the CLIs check
            it against the data's k-space shapes before writing anything: :meth:`check_shape`).
        shift: random cycle spinning each iteration (BART's default).
        seed: seed of the shifts.
        final_step: end on a gradient step of the data term, as BART (the module docstring).
        progress: tqdm bar over iterations.
    """

    name = "wavelet"
    needs_sens_maps = True

    def __init__(
        self,
        lam: float = 0.002,
        max_iters: int = 30,
        wavelet: str = "db2",
        levels: int | str = "auto",
        shift: bool = True,
        seed: int = 0,
        final_step: bool = True,
        progress: bool = False,
    ) -> None:
        self.lam = number("lam", lam, 0)
        self.max_iters = positive_int("max_iters", max_iters)
        self.wavelet = one_of("wavelet", wavelet, WAVELETS)
        self.levels = (
            one_of("levels", levels, ("auto",))
            if isinstance(levels, str)
            else positive_int("levels", levels)
        )
        self.shift, self.progress = boolean("shift", shift), boolean("progress", progress)
        self.final_step = boolean("final_step", final_step)
        self.seed = integer("seed", seed, 0)
        self._transforms: dict[int, WaveletTransform] = {}

    def levels_for(self, shape: tuple[int, int]) -> int:
        """The decomposition levels for an (H, W) image; ValueError naming ``levels`` when a
        number is too deep for it."""
        if self.levels == "auto":
            return auto_levels(shape, self.wavelet)
        deepest = max_levels(shape, self.wavelet)
        if self.levels > deepest:
            raise ValueError(
                f"wavelet: levels {self.levels} is too deep for a {shape[0]} x {shape[1]} image with "
                f"{self.wavelet} (at most {deepest}: each band keeps >= "
                f"{pywt.Wavelet(self.wavelet).dec_len} samples; levels=auto follows the image)"
            )
        return self.levels

    def check_shape(self, shape: tuple[int, int]) -> None:
        """The pre-flight check of an (H, W) k-space shape: :meth:`levels_for`'s ValueError."""
        self.levels_for(shape)

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
        levels = self.levels_for((h, w))
        if levels not in self._transforms:
            self._transforms[levels] = WaveletTransform(self.wavelet, levels)
        x, _ = solve_wavelet(
            masked_kspace,
            mask,
            sens_maps,
            self.lam,
            self.max_iters,
            self._transforms[levels],
            shift=self.shift,
            seed=self.seed,
            progress=self.progress,
            final_step=self.final_step,
        )
        return magnitude(x[:, :h, :w], sens_maps, crop_size)

    def __repr__(self) -> str:
        return (
            f"WaveletCS(lam={self.lam}, max_iters={self.max_iters}, wavelet={self.wavelet!r}, "
            f"levels={self.levels!r}, shift={self.shift}, seed={self.seed}, "
            f"final_step={self.final_step})"
        )

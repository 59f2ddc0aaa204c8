"""Anatomy-like MRI phantoms: coronal knee-like slices with texture, vectorised over slices.

Geometry is written in *units*: one unit is half the reconstruction crop height in pixels
(160 px for a 320 x 320 target), so the target crop spans [-1, 1] in both directions. Rows
(``y``) point down (superior -> inferior), columns (``x``) to the right, and the slice
position ``z`` runs over [-1, 1] (anterior -> posterior). A volume is one random draw of
anatomy; each geometric parameter is a smooth quadratic function of ``z`` and every texture
is a 3-D correlated random field, so neighbouring slices are correlated and volumes differ.

A slice holds: a leg contour with skin and a subcutaneous fat layer of varying thickness
crossed by fibrous septa; muscle compartments (a warped Voronoi partition) separated by thin
fatty septa, with striated texture and intramuscular fat streaks; femur and tibia
(condyles, intercondylar notch, tibial plateau and spines, metaphyseal flare) with dark
cortical rims (thin at the joint, thick along the shafts), physeal scars and trabecular
marrow; the fibula head in posterior slices; articular cartilage, joint fluid and
effusions, menisci; cruciate and collateral ligaments; vessels from sub-pixel dots to the
popliteal artery and vein; a smooth shading field and the receive coil's coverage along the
readout. Edges mix sharp (bone, ligaments) and soft (muscle, fat) transitions. Two contrasts
mimic fastMRI's knee protocols (see ``TISSUES``).

Everything here is numpy (float32) and draws from an explicit ``numpy.random.Generator``;
the canvas and the random texture fields are in :mod:`mri_recon.data.synthetic.fields`.
"""

from __future__ import annotations

import numpy as np
import torch

from mri_recon.data.synthetic.fields import Canvas, blob_sum, gaussian_field

CONTRASTS = ("SYNTH_PD", "SYNTH_PDFS")

# Relative signal of each tissue in the two contrasts: (proton density, PD fat-suppressed).
# Fat and fatty marrow are bright in SYNTH_PD and dark in SYNTH_PDFS; fluid is bright in
# SYNTH_PDFS; cortex, ligaments and menisci are dark in both.
TISSUES: dict[str, tuple[float, float]] = {
    "fat": (1.00, 0.16),
    "skin": (0.62, 0.35),
    "muscle": (0.36, 0.30),
    "septum": (0.80, 0.14),
    "marrow": (0.84, 0.12),
    "cortex": (0.035, 0.03),
    "cartilage": (0.58, 0.50),
    "fluid": (0.50, 0.95),
    "meniscus": (0.06, 0.05),
    "ligament": (0.09, 0.08),
    "vessel": (0.62, 0.72),
    "flow_void": (0.05, 0.04),
}

Window = tuple[slice, slice, slice]
_ALL: Window = (slice(None), slice(None), slice(None))


def smoothstep(x: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, cubic Hermite ramp in between (same shape as x)."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _param(
    rng: np.random.Generator, lo: float, hi: float, drift: float, z: np.ndarray
) -> np.ndarray:
    """A value in [lo, hi] plus a smooth quadratic drift over slices: float32 (S, 1, 1)."""
    base = rng.uniform(lo, hi)
    a1, a2 = rng.normal(size=2)
    return (base + drift * (a1 * z + 0.5 * a2 * (z * z - 0.5))).astype(np.float32)


def _edge(d: np.ndarray, width_px: float, unit: float) -> np.ndarray:
    """Soft indicator of ``d > 0`` (d: signed distance in units, positive inside)."""
    return 0.5 + 0.5 * np.tanh(d * float(unit / max(width_px, 1e-3)))


def _ellipse(u: np.ndarray, v: np.ndarray, cu, cv, a, b) -> np.ndarray:
    """Approximate signed distance (units, positive inside) to an axis-aligned ellipse."""
    du, dv = (u - cu) / a, (v - cv) / b
    rho = np.sqrt(du * du + dv * dv) + 1e-6
    grad = np.sqrt((du / a) ** 2 + (dv / b) ** 2) / rho
    return (1.0 - rho) / (grad + 1e-6)


def _segment(u: np.ndarray, v: np.ndarray, p0: tuple, p1: tuple) -> np.ndarray:
    """Distance (units) from each pixel to the segment p0 -> p1 ((u, v) pairs)."""
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    t = np.clip(((u - p0[0]) * du + (v - p0[1]) * dv) / (du * du + dv * dv + 1e-9), 0.0, 1.0)
    eu, ev = u - p0[0] - t * du, v - p0[1] - t * dv
    return np.sqrt(eu * eu + ev * ev)


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth minimum (rounds the corner where two distance fields meet, radius ~k)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


class _Painter:
    """Painter's algorithm on an (S, h, w) float32 image: later layers cover earlier ones."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.image = np.zeros(shape, dtype=np.float32)

    def paint(self, mask: np.ndarray, value: float | np.ndarray, win: Window = _ALL) -> None:
        part = self.image[win]
        part += mask * (value - part)


def tissue_values(rng: np.random.Generator, contrast: str) -> dict[str, float]:
    """Per-volume tissue intensities: the ``TISSUES`` column of ``contrast``, jittered ~8%."""
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast {contrast!r} is not one of {CONTRASTS}")
    col = CONTRASTS.index(contrast)
    return {k: float(v[col] * np.exp(0.08 * rng.normal())) for k, v in TISSUES.items()}


def draw_knee(
    rng: np.random.Generator, canvas: Canvas, contrast: str
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one volume of the coronal knee-like phantom (magnitude, before noise).

    Args:
        rng: the volume's random generator.
        canvas: grid and slice positions.
        contrast: one of ``CONTRASTS``.

    Returns:
        ``(magnitude, support)``: float32 (S, h, w) non-negative image in relative units
        (SYNTH_PD fat ~ 1), and float32 (S, h, w) soft body mask in [0, 1] (times the coil
        coverage), exactly 0 in the top and bottom rows of the canvas.
    """
    tissue = tissue_values(rng, contrast)
    geo = _Geometry(rng, canvas)
    tex = _Textures(rng, canvas, geo.window((-geo.bone_reach, geo.bone_reach), (-4, 4))[2])
    pt = _Painter((canvas.num_slices, canvas.height, canvas.width))
    body = _soft_tissue(pt, rng, canvas, geo, tex, tissue, contrast)
    _vessels(pt, rng, canvas, geo, tissue, body)
    _joint(pt, rng, geo, tissue)
    _bones(pt, rng, geo, tex, tissue)
    shading = np.exp(
        0.12 * canvas.field(rng, freq=0.25, num_terms=6, z_freq=0.1) + 0.04 * tex.mottle[:, ::-1]
    )
    support = body * _coverage(rng, canvas)
    magnitude = np.maximum(pt.image, 0.0) * shading * support
    return magnitude, support


def _coverage(rng: np.random.Generator, canvas: Canvas) -> np.ndarray:
    """Receive coverage along the readout: 1 in the middle, a cos^2 taper to exactly 0 by
    |y| = 1.3 units, so the canvas holds the whole object. float32 (1, h, 1)."""
    a = rng.uniform(0.7, 0.9)
    b = a + rng.uniform(0.3, 0.4)
    t = np.clip((np.abs(canvas.y) - a) / (b - a), 0.0, 1.0)
    return 0.5 + 0.5 * np.cos(np.float32(np.pi) * t)


class _Geometry:
    """Rotated, joint-centred coordinates and the main dimensions of one volume's anatomy."""

    def __init__(self, rng: np.random.Generator, canvas: Canvas) -> None:
        z = canvas.z[:, None, None].astype(np.float32)
        P = lambda lo, hi, drift=0.0: _param(rng, lo, hi, drift, z)  # noqa: E731
        theta = P(-0.12, 0.12, 0.02)
        cx, cy = P(-0.07, 0.07, 0.02), P(-0.15, 0.15, 0.02)
        cos, sin = np.cos(theta), np.sin(theta)
        x, y = canvas.x - cx, canvas.y - cy
        self.z, self.canvas = z, canvas
        self.u = cos * x + sin * y  # (S, h, w) across the leg
        self.v = -sin * x + cos * y  # (S, h, w) along the leg, 0 at the joint line
        self._rot = tuple(a[:, :, 0] for a in (cx, cy, cos, sin))  # each (S, 1)
        self.leg_half = P(0.62, 0.8, 0.03) * np.sqrt(1.0 - (0.35 * z) ** 2)
        self.gap = P(0.022, 0.034)  # half the joint space incl. cartilage
        self.cond_half = P(0.38, 0.48, 0.02) * (1.0 - 0.08 * np.abs(z))
        self.tib_half = self.cond_half * P(0.96, 1.08)
        self.cart = P(0.014, 0.024)  # cartilage thickness
        self.notch = np.clip(0.55 + 0.7 * z + P(-0.2, 0.2), 0.0, 1.0)  # deeper posteriorly
        self.side = _sign(rng)  # the lateral side (fibula)
        self.bone_reach = float(max(self.cond_half.max(), self.tib_half.max())) + 0.08

    def to_xy(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates (units) of leg coordinates given per slice: (S, k) each."""
        cx, cy, cos, sin = self._rot
        return cx + cos * u - sin * v, cy + sin * u + cos * v

    def window(self, u_range: tuple[float, float], v_range: tuple[float, float]) -> Window:
        """The canvas index window holding the leg-coordinate box on every slice."""
        u = np.array([u_range[0], u_range[1], u_range[0], u_range[1]])[None]
        v = np.array([v_range[0], v_range[0], v_range[1], v_range[1]])[None]
        x, y = self.to_xy(u, v)
        c, m = self.canvas, 3
        rows = np.clip(
            [
                np.floor(y.min() * c.unit) + c.height // 2 - m,
                np.ceil(y.max() * c.unit) + c.height // 2 + m + 1,
            ],
            0,
            c.height,
        )
        cols = np.clip(
            [
                np.floor(x.min() * c.unit) + c.width // 2 - m,
                np.ceil(x.max() * c.unit) + c.width // 2 + m + 1,
            ],
            0,
            c.width,
        )
        return (slice(None), slice(*rows.astype(int)), slice(*cols.astype(int)))


class _Textures:
    """The volume's 3-D correlated texture fields, each float32 (S, h, w), unit variance."""

    def __init__(self, rng: np.random.Generator, canvas: Canvas, bone_cols: slice) -> None:
        S, h, w, unit = canvas.num_slices, canvas.height, canvas.width, canvas.unit
        # Striation is smooth along the rows: draw it 4x coarser there and interpolate.
        coarse = gaussian_field(rng, (S, -(-h // 4), w), (0.035 * unit, 0.012 * unit), 0.6)
        parts = torch.from_numpy(np.stack([coarse.real, coarse.imag], axis=1))
        muscle = torch.nn.functional.interpolate(
            parts, size=(h, w), mode="bilinear", align_corners=True
        ).numpy()
        self.striation, self.streaks = muscle[:, 0], muscle[:, 1]
        scale = max(0.016 * unit, 0.7)
        bone = gaussian_field(
            rng, (S, h, len(range(w)[bone_cols])), (scale, scale), 0.5, bandpass=True
        )
        self.trabecular = np.zeros((S, h, w), np.float32)
        self.trabecular_lines = np.ones((S, h, w), np.float32)
        self.trabecular[:, :, bone_cols] = bone.real
        self.trabecular_lines[:, :, bone_cols] = bone.imag
        self.warp_u = canvas.field(rng, freq=1.2, num_terms=10)
        self.warp_v = canvas.field(rng, freq=1.2, num_terms=10)
        self.mottle = canvas.field(rng, freq=2.5, num_terms=12)


def _soft_tissue(
    pt: _Painter,
    rng: np.random.Generator,
    canvas: Canvas,
    geo: _Geometry,
    tex: _Textures,
    tissue: dict[str, float],
    contrast: str,
) -> np.ndarray:
    """Leg contour, skin, subcutaneous fat with septa, and muscle; returns the body mask."""
    u, v, unit = geo.u, geo.v, canvas.unit
    wig = [
        canvas.field(rng, freq=0.8, num_terms=4, z_freq=0.1, rows_only=True) for _ in range(4)
    ]  # (S, h, 1) each
    half = geo.leg_half * (1.0 - rng.uniform(-0.05, 0.1) * np.clip(v, -1.3, 1.3))
    shift = rng.uniform(-0.06, 0.06)
    d_body = np.minimum(
        u - shift + half * (1 + 0.04 * wig[0]), half * (1 + 0.04 * wig[1]) + shift - u
    )  # (S, h, w), >0 inside
    body = _edge(d_body, rng.uniform(0.5, 0.9), unit)
    fat_t = np.where(
        u < shift,
        rng.uniform(0.04, 0.13) * (1 + 0.35 * wig[2]),
        rng.uniform(0.04, 0.13) * (1 + 0.35 * wig[3]),
    )
    fat: float | np.ndarray = tissue["fat"]
    if contrast == "SYNTH_PDFS":  # imperfect fat suppression varies smoothly in space
        fat = fat * np.exp(0.35 * canvas.field(rng, freq=0.5, num_terms=6, z_freq=0.1))
    pt.paint(body, fat * (1 + 0.04 * tex.striation))
    muscle = _edge(d_body - np.maximum(fat_t, 0.015), rng.uniform(0.8, 2.5), unit)
    septa = _edge(0.003 - np.abs(0.03 * tex.warp_u + 0.006 * tex.streaks), 0.8, unit)
    pt.paint(septa * (1 - muscle) * body * 0.7, tissue["ligament"] * 2)
    pt.paint(body * _edge(rng.uniform(1.2, 2.5) / unit - d_body, 0.6, unit), tissue["skin"])
    pt.paint(muscle, _muscle(rng, canvas, geo, tex, tissue))
    return body


def _muscle(
    rng: np.random.Generator,
    canvas: Canvas,
    geo: _Geometry,
    tex: _Textures,
    tissue: dict[str, float],
) -> np.ndarray:
    """Muscle signal (S, h, w): compartments of a warped Voronoi partition (computed at half
    resolution and upsampled) with fatty septa on their borders, striation, fat streaks."""
    k = int(rng.integers(6, 11))
    su = rng.uniform(-0.8, 0.8, size=k).astype(np.float32) * geo.leg_half  # (S, 1, k)
    sv = rng.uniform(-1.6, 1.6, size=k).astype(np.float32)
    drift = rng.normal(scale=0.08, size=(2, k)).astype(np.float32)
    wu = geo.u[:, ::2, ::2] + 0.12 * tex.warp_u[:, ::2, ::2]
    wv = geo.v[:, ::2, ::2] + 0.12 * tex.warp_v[:, ::2, ::2]
    d1 = np.full(wu.shape, np.inf, dtype=np.float32)
    d2, idx = d1.copy(), np.zeros(wu.shape, dtype=np.int8)
    for i in range(k):
        cu, cv = su[..., i : i + 1] + drift[0, i] * geo.z, sv[i] + drift[1, i] * geo.z
        d = (wu - cu) ** 2 + (0.55 * (wv - cv)) ** 2  # compartments elongated along the leg
        idx[d < d1] = i
        np.minimum(d2, np.maximum(d1, d), out=d2)
        np.minimum(d1, d, out=d1)
    gap = _upsample2(np.sqrt(d2) - np.sqrt(d1), canvas.height, canvas.width)
    level = np.exp(0.12 * rng.normal(size=k)).astype(np.float32)[idx]
    level = level.repeat(2, axis=1).repeat(2, axis=2)[:, : canvas.height, : canvas.width]
    septum = _edge(rng.uniform(0.0035, 0.006) - gap * 0.5, 0.7, canvas.unit)
    value = tissue["muscle"] * level * (1 + 0.1 * tex.striation)
    streaks = smoothstep(tex.streaks, 1.9, 2.7)
    return value + (tissue["septum"] - value) * np.maximum(septum, 0.5 * streaks)


def _upsample2(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Linear 2x upsampling of the last two axes of a[:, ::2, ::2]-sampled data to (h, w)."""
    a = a.repeat(2, axis=1)[:, :h]
    a[:, 1:-1:2] = 0.5 * (a[:, :-2:2] + a[:, 2::2])
    a = a.repeat(2, axis=2)[:, :, :w]
    a[:, :, 1:-1:2] = 0.5 * (a[:, :, :-2:2] + a[:, :, 2::2])
    return a


def _joint(
    pt: _Painter, rng: np.random.Generator, geo: _Geometry, tissue: dict[str, float]
) -> None:
    """Joint fluid, effusion pockets, menisci and the cruciate and collateral ligaments."""
    reach = float(geo.tib_half.max()) * 1.2 + 0.06
    win = geo.window((-reach, reach), (-0.75, 0.75))
    u, v, z, unit = geo.u[win], geo.v[win], geo.z, geo.canvas.unit
    g, ch = geo.gap, geo.cond_half
    span = _edge(ch * 1.04 - np.abs(u), 1.0, unit)
    pt.paint(span * _edge(g * 1.3 - np.abs(v), 0.8, unit), tissue["fluid"], win)
    for _ in range(int(rng.integers(0, 3))):  # effusions and recesses, bright in SYNTH_PDFS
        d = _ellipse(
            u,
            v,
            _sign(rng) * rng.uniform(0.7, 1.0) * ch,
            rng.uniform(-0.45, 0.1),
            rng.uniform(0.05, 0.12),
            rng.uniform(0.08, 0.2),
        )
        pt.paint(
            _edge(d, rng.uniform(0.8, 2.0), unit) * (1 - 0.2 * np.abs(z)), tissue["fluid"], win
        )
    # Menisci: wedges on the tibial plateau at both margins, apex pointing inwards.
    inner, outer = ch * rng.uniform(0.5, 0.65), ch * rng.uniform(1.0, 1.08)
    t = (np.abs(u) - inner) / (outer - inner)
    top = g - rng.uniform(0.05, 0.085) * np.clip(t, 0.0, 1.0)
    wedge = _edge(v - top, 0.6, unit) * _edge(g + 0.005 - v, 0.6, unit)
    ends = _edge(t * (outer - inner), 0.8, unit) * _edge((1.06 - t) * (outer - inner), 0.8, unit)
    pt.paint(wedge * ends, tissue["meniscus"], win)
    lig, thick = tissue["ligament"], rng.uniform(0.028, 0.042)
    acl = _segment(u, v, (0.06 * ch, -0.16 - g), (-0.05 * ch, 0.04 + g))
    pcl = _segment(u, v, (-0.1 * ch, -0.13 - g), (0.03 * ch, 0.1 + g))
    pt.paint(_edge(thick - acl, 0.7, unit) * np.clip(2.5 * geo.notch - 0.5, 0, 1), lig, win)
    pt.paint(_edge(1.2 * thick - pcl, 0.7, unit) * np.clip(2.5 * geo.notch - 1, 0, 1), lig, win)
    for side in (-1.0, 1.0):  # collateral ligaments hug the joint margins
        p0 = (side * (ch + 0.03), -0.32 + 0.05 * rng.normal())
        p1 = (side * (geo.tib_half + 0.02), 0.35 + 0.05 * rng.normal())
        pt.paint(_edge(rng.uniform(0.012, 0.022) - _segment(u, v, p0, p1), 0.6, unit), lig, win)


def _bones(
    pt: _Painter, rng: np.random.Generator, geo: _Geometry, tex: _Textures, tissue: dict[str, float]
) -> None:
    """Femur, tibia and fibula: cartilage caps, cortex, physeal scar, trabecular marrow."""
    g, th = geo.gap, geo.tib_half
    reach = geo.bone_reach
    femur = geo.window((-reach, reach), (-4.0, 0.06))
    tibia = geo.window((-reach, reach), (-0.12, 4.0))
    cortex = (rng.uniform(0.008, 0.014), rng.uniform(0.02, 0.035))  # at the joint, shafts
    for win, shape, level in (
        (femur, _femur, -g - rng.uniform(0.22, 0.32)),
        (tibia, _tibia, g + rng.uniform(0.18, 0.26)),
    ):
        u, v = geo.u[win], geo.v[win]
        d = shape(rng, u, v, geo)
        cap = v + g + 0.12 if shape is _femur else g + 0.05 - v  # articular side only
        pt.paint(
            _edge(d + geo.cart, 0.6, geo.canvas.unit) * _edge(cap, 2.0, geo.canvas.unit),
            tissue["cartilage"],
            win,
        )
        wave = 0.015 * np.sin(u * rng.uniform(6, 12) + rng.uniform(0, 6.3))
        physis = _edge(rng.uniform(0.003, 0.006) - np.abs(v - level - wave), 0.5, geo.canvas.unit)
        _bone(pt, geo, win, d, tex, tissue, cortex, physis)
    side = geo.side * float(th.mean())
    fibula = geo.window((side * 0.6, side * 1.15), (0.0, 0.7))
    u, v = geo.u[fibula], geo.v[fibula]
    gate = np.clip((geo.z - rng.uniform(-0.3, 0.3)) / 0.4, 0.0, 1.0)
    d = _ellipse(
        u,
        v,
        geo.side * th * rng.uniform(0.78, 0.9),
        g + rng.uniform(0.22, 0.32),
        0.09 * gate + 1e-3,
        0.15 * gate + 1e-3,
    )
    _bone(pt, geo, fibula, d, tex, tissue, cortex, 0.0)


def _bone(
    pt: _Painter,
    geo: _Geometry,
    win: Window,
    d: np.ndarray,
    tex: _Textures,
    tissue: dict[str, float],
    cortex: tuple[float, float],
    physis: float | np.ndarray,
) -> None:
    """Paint one bone from its distance field: a dark cortical rim (thicker along the shaft)
    around marrow with a trabecular texture that fades towards the fatty diaphysis."""
    unit = geo.canvas.unit
    shaft = smoothstep(np.abs(geo.v[win]), 0.25, 0.9)
    lines = smoothstep(0.25 - np.abs(tex.trabecular_lines[win]), 0.0, 0.2)
    trab = (1 + 0.06 * tex.trabecular[win]) * (1 - 0.2 * lines * (1 - 0.7 * shaft))
    marrow = tissue["marrow"] * trab * (1 + 0.08 * tex.mottle[win]) * (1 - 0.75 * physis)
    pt.paint(_edge(d, 0.5, unit), tissue["cortex"], win)
    pt.paint(_edge(d - (cortex[0] + cortex[1] * shaft), 0.6, unit), marrow, win)


def _femur(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Signed distance (units) of the distal femur: shaft, metaphyseal flare, two condyles
    and the intercondylar notch."""
    g, ch = geo.gap, geo.cond_half
    a, b = ch * rng.uniform(0.42, 0.52), rng.uniform(0.13, 0.2)
    vc = -g - b  # condyle centres
    left = _ellipse(u, v, -(ch - a), vc + rng.uniform(-0.02, 0.02), a, b)
    right = _ellipse(u, v, ch - a, vc + rng.uniform(-0.02, 0.02), a, b)
    shaft, flare = rng.uniform(0.2, 0.27), rng.uniform(0.3, 0.55)
    half = shaft + (ch - shaft) * smoothstep(v, vc - flare, vc)
    d = np.maximum(np.maximum(left, right), np.minimum(half - np.abs(u), vc - v))
    notch = _ellipse(u, v, 0.0, -g, ch * 0.22 * geo.notch + 1e-3, 0.22 * geo.notch + 1e-3)
    return np.minimum(d, -notch)


def _tibia(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Signed distance (units) of the proximal tibia: plateau, spines, flare and shaft."""
    g, th = geo.gap, geo.tib_half
    spine = rng.uniform(0.02, 0.05) * np.exp(-((u / (0.12 * th)) ** 2)) * (0.5 + 0.5 * geo.notch)
    top = g + rng.uniform(0.005, 0.025) * np.cos(np.pi * u / th) ** 2 - spine
    shaft, flare = rng.uniform(0.17, 0.24), rng.uniform(0.3, 0.5)
    half = shaft + (th - shaft) * smoothstep(-v, -(g + flare), -g - 0.05)
    return _smin(v - top, half - np.abs(u), 0.05)


def _vessels(
    pt: _Painter,
    rng: np.random.Generator,
    canvas: Canvas,
    geo: _Geometry,
    tissue: dict[str, float],
    body: np.ndarray,
) -> None:
    """Vessels at several scales: dots from sub-pixel to a few pixels wide (bright slow flow
    or dark flow voids), some only in a few slices, and the popliteal artery and vein (tubes
    along the leg, posterior slices)."""
    S, unit, z = canvas.num_slices, canvas.unit, geo.z[:, 0]  # z: (S, 1)
    k = int(rng.integers(20, 40))
    u0 = rng.uniform(-0.95, 0.95, size=k)[None] * geo.leg_half[:, 0]  # (S, k)
    v0 = rng.uniform(-1.3, 1.3, size=k)[None] + rng.normal(scale=0.06, size=k) * z
    x0, y0 = geo.to_xy(u0, v0)
    sigma = np.exp(rng.uniform(np.log(0.4), np.log(2.5), size=k)) / unit
    length = np.zeros(k)
    gate = np.where(rng.random(k) < 0.5, np.clip(1 - np.abs(z - rng.uniform(-1, 1, k)), 0, 1), 1.0)
    pop = np.clip((z - 0.3) / 0.3, 0.0, 1.0)  # (S, 1): posterior slices only
    px, py = geo.to_xy(rng.uniform(-0.25, 0.25) * geo.cond_half[:, 0], np.zeros((S, 1)))
    x0 = np.concatenate([x0, px, px + rng.uniform(0.06, 0.1)], axis=1)
    y0 = np.concatenate([y0, py, py], axis=1)
    sigma = np.concatenate([sigma, [rng.uniform(0.025, 0.04), rng.uniform(0.03, 0.05)]])
    length = np.concatenate([length, [3.0, 3.0]])
    bright = np.concatenate([rng.random(k) < 0.75, [False, True]])
    gate = np.concatenate([gate * np.ones((S, 1)), pop, pop], axis=1)
    y, x = canvas.y[0, :, 0], canvas.x[0, 0, :]
    for sel, name in ((bright, "vessel"), (~bright, "flow_void")):
        blobs = blob_sum(y, x, x0, y0, sigma, length, gate * sel)
        pt.paint(np.clip(2.0 * blobs - 0.5, 0.0, 1.0) * body, tissue[name])

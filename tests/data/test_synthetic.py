"""The embedded synthetic dataset (``mri_recon.data.synthetic``), on the ``tiny`` preset.

Targets are recomputed with fastMRI's own transforms, files are read back with fastMRI's own
``SliceDataset``, and the "looks like MRI" statistics are shown to reject flat ellipses.
"""

from __future__ import annotations

import dataclasses
import json
import random
import warnings
from pathlib import Path

import fastmri
import h5py
import numpy as np
import pytest
import torch
from fastmri.data import SliceDataset
from fastmri.data import transforms as fmt

from mri_recon.data import synthetic
from mri_recon.data.header import parse_ismrmrd_header
from mri_recon.data.synthetic import (
    PRESETS,
    SPLITS,
    TARGET_KEYS,
    ensure_dataset,
    generate_dataset,
    manifest_path,
    resolve_config,
)
from mri_recon.data.synthetic import build as synthetic_build
from mri_recon.data.synthetic import volume as synthetic_volume
from mri_recon.data.synthetic.phantoms import CONTRASTS, Canvas, draw_knee
from mri_recon.physics.masks import ColumnMaskFunc, file_seed

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, preset="tiny", challenge="both", seed=0, progress=False)
    return root


def _files(root: Path, challenge: str, split: str) -> list[Path]:
    return sorted((root / f"{challenge}_{split}").glob("*.h5"))


def _read(path: Path) -> dict:
    with h5py.File(path, "r") as hf:
        out = {key: hf[key][()] for key in hf}
        out["attrs"] = dict(hf.attrs)
    return out


def test_layout_keys_dtypes_shapes(tiny_root: Path) -> None:
    names = set()
    for challenge in ("singlecoil", "multicoil"):
        for split, (count, slices) in TINY.sizes(challenge).items():
            files = _files(tiny_root, challenge, split)
            assert len(files) == count
            names.update(f.name for f in files)
            for path in files:
                data = _read(path)
                k = data["kspace"]
                assert k.dtype == np.complex64
                expected = (
                    (slices, TINY.height)
                    if challenge == "singlecoil"
                    else (slices, TINY.num_coils, TINY.height)
                )
                assert k.shape[:-1] == expected and k.shape[-1] in TINY.widths
                assert {"acquisition", "patient_id"} <= set(data["attrs"])
                assert data["attrs"]["acquisition"] in CONTRASTS
                assert len(data["attrs"]["patient_id"]) == 64
                if split == "test":
                    continue
                target = data[TARGET_KEYS[challenge]]
                assert target.dtype == np.float32 and target.shape == (slices, 64, 64)
                if challenge == "singlecoil":
                    np.testing.assert_array_equal(data["reconstruction_rss"], target)
    total = sum(n for c in ("singlecoil", "multicoil") for n, _ in TINY.sizes(c).values())
    assert len(names) == total  # unique file names
    assert not list(tiny_root.glob(".*"))  # no temporary folders left behind
    manifest = json.loads(manifest_path(tiny_root, "singlecoil").read_text())
    assert manifest["generator"] == "mri_recon.data.synthetic"  # the public module's name
    assert (manifest["preset"], manifest["seed"]) == ("tiny", 0)
    assert manifest["config"]["widths"] == list(TINY.widths)


def test_public_names_resolve_to_their_modules() -> None:
    assert all(hasattr(synthetic, name) for name in synthetic.__all__)
    assert synthetic.generate_dataset is synthetic_build.generate_dataset
    assert synthetic.ensure_dataset is synthetic_build.ensure_dataset
    assert synthetic.synth_volume is synthetic_volume.synth_volume
    assert synthetic.SynthConfig is synthetic_volume.SynthConfig


def test_widths_and_contrasts_vary(tiny_root: Path) -> None:
    for challenge in ("singlecoil", "multicoil"):
        widths, contrasts = set(), set()
        for split in ("train", "val"):
            for path in _files(tiny_root, challenge, split):
                with h5py.File(path, "r") as hf:
                    widths.add(hf["kspace"].shape[-1])
                    contrasts.add(hf.attrs["acquisition"])
        assert widths == set(TINY.widths)
        assert contrasts == set(CONTRASTS)


def test_targets_match_fastmri_transforms(tiny_root: Path) -> None:
    for challenge in ("singlecoil", "multicoil"):
        for split in ("train", "val"):
            for path in _files(tiny_root, challenge, split):
                data = _read(path)
                image = fastmri.complex_abs(fastmri.ifft2c(fmt.to_tensor(data["kspace"])))
                if challenge == "multicoil":
                    image = fastmri.rss(image, dim=1)
                expected = fmt.center_crop(image, (64, 64)).numpy()
                target = data[TARGET_KEYS[challenge]]
                np.testing.assert_allclose(target, expected, rtol=1e-4, atol=1e-5 * target.max())
                assert data["attrs"]["max"] == pytest.approx(float(target.max()), rel=1e-6)
                assert data["attrs"]["norm"] == pytest.approx(
                    float(np.linalg.norm(target)), rel=1e-5
                )


def test_header_and_padding_columns(tiny_root: Path) -> None:
    padded = 0
    for challenge in ("singlecoil", "multicoil"):
        for split in SPLITS:
            for path in _files(tiny_root, challenge, split):
                data = _read(path)
                k = data["kspace"]
                header = parse_ismrmrd_header(data["ismrmrd_header"])
                assert header.encoded_size == (TINY.height, k.shape[-1], 1)
                assert header.recon_size == (64, 64, 1)
                left, right = header.padding_left, header.padding_right
                assert 0 <= left < right <= k.shape[-1]
                assert not k[..., :left].any() and not k[..., right:].any()
                if split != "test":  # acquired edge columns hold (at least) noise
                    assert np.abs(k[..., [left, right - 1]]).min(axis=-2).max() > 0
                padded += left > 0
    assert padded >= 2  # some volumes of each challenge carry scanner-style padding


def test_test_split_is_undersampled_with_stored_mask(tiny_root: Path) -> None:
    for challenge in ("singlecoil", "multicoil"):
        files = _files(tiny_root, challenge, "test")
        assert files
        for path in files:
            data = _read(path)
            attrs, mask, k = data["attrs"], data["mask"], data["kspace"]
            assert not {"reconstruction_esc", "reconstruction_rss"} & set(data)
            assert "max" not in attrs and "norm" not in attrs
            assert mask.dtype == bool and mask.shape == (k.shape[-1],)
            fraction = {4: 0.08, 8: 0.04}[int(attrs["acceleration"])]
            sample = ColumnMaskFunc("random", [fraction], [attrs["acceleration"]])(
                k.shape[-1], file_seed(path.name)
            )
            np.testing.assert_array_equal(mask, sample.mask.numpy())
            assert attrs["num_low_frequency"] == sample.num_low_frequencies
            assert not k[..., ~mask].any()
            assert (np.abs(k[..., mask]).reshape(-1, int(mask.sum())).max(axis=0) > 0).mean() > 0.8


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_readable_by_fastmri_slice_dataset(tiny_root: Path, challenge: str) -> None:
    for split in SPLITS:
        files = _files(tiny_root, challenge, split)
        dataset = SliceDataset(
            root=tiny_root / f"{challenge}_{split}", challenge=challenge, transform=None
        )
        assert len(dataset) == sum(h5py.File(f, "r")["kspace"].shape[0] for f in files)
        kspace, mask, target, attrs, fname, dataslice = dataset[len(dataset) - 1]
        header = parse_ismrmrd_header(
            h5py.File(tiny_root / f"{challenge}_{split}" / fname, "r")["ismrmrd_header"][()]
        )
        assert attrs["padding_left"] == header.padding_left
        assert attrs["padding_right"] == header.padding_right
        assert attrs["encoding_size"] == (TINY.height, kspace.shape[-1], 1)
        assert attrs["recon_size"] == (64, 64, 1)
        if split == "test":
            assert target is None and mask is not None and "acceleration" in attrs
        else:
            assert mask is None and target.shape == (64, 64) and attrs["max"] >= target.max()


def test_deterministic_and_global_rng_untouched(tmp_path: Path) -> None:
    kwargs = dict(
        preset="tiny",
        challenge="multicoil",
        progress=False,
        num_train=2,
        num_val=0,
        num_test=0,
        num_slices=2,
        num_coils=2,
    )
    np.random.seed(123)
    torch.manual_seed(123)
    random.seed(123)
    np_state, torch_state = np.random.get_state(), torch.get_rng_state()
    py_state = random.getstate()
    a = generate_dataset(tmp_path / "a", seed=5, workers=2, **kwargs)
    b = generate_dataset(tmp_path / "b", seed=5, workers=1, **kwargs)
    c = generate_dataset(tmp_path / "c", seed=6, **kwargs)
    assert not (tmp_path / "a" / "multicoil_val").exists()  # empty splits get no folder
    assert [p.name for p in a] == [p.name for p in b] != [p.name for p in c]
    for pa, pb in zip(a, b, strict=True):
        da, db = _read(pa), _read(pb)
        for key in ("kspace", "reconstruction_rss", "ismrmrd_header"):
            assert np.array_equal(da[key], db[key])
        assert da["attrs"] == db["attrs"]
    dc = _read(c[0])
    assert da["kspace"].shape != dc["kspace"].shape or not np.allclose(da["kspace"], dc["kspace"])
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state


def test_volume_independent_of_other_split_sizes(tmp_path: Path) -> None:
    kw = dict(preset="tiny", challenge="singlecoil", progress=False, num_test=0, seed=2)
    small = generate_dataset(tmp_path / "s", num_train=1, num_val=1, **kw)
    large = generate_dataset(tmp_path / "l", num_train=1, num_val=2, **kw)
    key = TARGET_KEYS["singlecoil"]
    np.testing.assert_array_equal(_read(small[0])[key], _read(large[0])[key])


def test_refuses_to_mix_or_overwrite(tmp_path: Path) -> None:
    kw = dict(
        preset="tiny", challenge="singlecoil", progress=False, num_train=1, num_val=1, num_test=0
    )
    first = generate_dataset(tmp_path, seed=0, **kw)
    with pytest.raises(ValueError, match="singlecoil_train.*already holds"):
        generate_dataset(tmp_path, seed=1, **kw)
    with pytest.raises(ValueError, match="singlecoil_val.*another build"):
        generate_dataset(tmp_path, seed=1, splits=("train",), overwrite=True, **kw)
    again = generate_dataset(tmp_path, seed=1, overwrite=True, **kw)
    assert sorted(p.name for p in tmp_path.rglob("*.h5")) == sorted(p.name for p in again)
    assert {p.name for p in first} != {p.name for p in again}
    assert not list(tmp_path.glob(".*"))


def test_ensure_dataset_builds_once_and_completes_partial(tmp_path: Path) -> None:
    tiny = resolve_config("tiny", num_train=1, num_val=1, num_test=1, num_slices=1)
    root = ensure_dataset(tmp_path / "d", "singlecoil", preset=tiny, seed=0, progress=False)
    files = sorted(root.rglob("*.h5"))
    assert len(files) == 3
    stamps = [f.stat().st_mtime_ns for f in files]
    ensure_dataset(root, "singlecoil", preset=tiny, seed=0, progress=False)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    val = _files(root, "singlecoil", "val")[0]
    reference = _read(val)["reconstruction_esc"]
    val.unlink()  # an interrupted build: one split missing
    ensure_dataset(root, "singlecoil", preset=tiny, seed=0, progress=False)
    np.testing.assert_array_equal(_read(val)["reconstruction_esc"], reference)
    with pytest.warns(UserWarning, match="preset 'custom' seed 0, not preset 'custom' seed 1"):
        ensure_dataset(root, "singlecoil", preset=tiny, seed=1, progress=False)
    assert sorted(root.rglob("*.h5")) == files  # used as is, not rebuilt
    # a single-coil build does not depend on the multi-coil sizes: no warning, not rebuilt
    other_mc = dataclasses.replace(tiny, multicoil_num_val=7)
    stamps = [f.stat().st_mtime_ns for f in files]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ensure_dataset(root, "singlecoil", preset=other_mc, seed=0, progress=False)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    foreign = tmp_path / "foreign" / "singlecoil_train"  # someone else's data: left alone
    foreign.mkdir(parents=True)
    (foreign / "file1.h5").write_bytes(b"")
    ensure_dataset(foreign.parent, "singlecoil", preset=tiny, seed=0, progress=False)
    assert sorted(p.name for p in foreign.parent.rglob("*.h5")) == ["file1.h5"]


def test_bad_arguments_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown synthetic preset 'huge'"):
        generate_dataset(tmp_path, preset="huge")
    with pytest.raises(ValueError, match="num_trian"):
        generate_dataset(tmp_path, preset="tiny", num_trian=3)
    with pytest.raises(ValueError, match=r"SynthConfig: need widths=\(60,\) >= the target width"):
        resolve_config("tiny", widths=(60,))
    with pytest.raises(ValueError, match="SynthConfig.num_slices"):
        resolve_config("tiny", num_slices=0)
    with pytest.raises(
        ValueError, match="challenge: must be one of singlecoil, multicoil, both, got 'knee'"
    ):
        generate_dataset(tmp_path, preset="tiny", challenge="knee")
    assert not list(tmp_path.iterdir())


def test_kspace_corners_hold_the_stated_noise() -> None:
    rng = np.random.default_rng(0)
    vol = synthetic.synth_volume(
        TINY, "singlecoil", rng, num_slices=4, width=72, acquisition="SYNTH_PD", padded=False
    )
    k = vol.kspace
    corners = np.concatenate([k[:, :8, :8], k[:, :8, -8:], k[:, -8:, :8], k[:, -8:, -8:]])
    assert np.std(corners.real) == pytest.approx(vol.noise_std, rel=0.15)
    assert np.std(corners.imag) == pytest.approx(vol.noise_std, rel=0.15)
    center = np.abs(k[:, 60:68, 32:40]).mean()
    assert center > 20 * vol.noise_std  # the signal dominates the centre of k-space


def test_coil_maps_are_smooth_and_normalised() -> None:
    rng = np.random.default_rng(1)
    canvas = Canvas(86, 72, 32.0, np.linspace(-0.8, 0.8, 2).astype(np.float32))
    _, support = draw_knee(rng, canvas, "SYNTH_PD")
    maps = synthetic.coil_maps(rng, canvas, 6, support)
    assert maps.shape == (2, 6, 86, 72) and maps.dtype == np.complex64
    rss = np.sqrt((np.abs(maps) ** 2).sum(axis=1))
    assert rss[support > 0.5].mean() == pytest.approx(1.0, rel=1e-4)
    inside = (support[:, None, :, 1:] > 0.5) & (support[:, None, :, :-1] > 0.5)
    step = np.abs(np.diff(maps, axis=-1))[np.broadcast_to(inside, maps[..., 1:].shape)]
    assert step.max() < 0.1 * np.abs(maps).max()  # smooth on the pixel scale
    magnitudes = np.abs(maps).reshape(2, 6, -1)
    assert np.corrcoef(magnitudes[0])[np.triu_indices(6, 1)].min() < 0.5  # coils see differently


def _structure(image: np.ndarray, inside: np.ndarray) -> dict[str, float]:
    """Statistics that separate textured anatomy from flat shapes and from pure noise."""
    top = np.percentile(image[inside], 99)
    gy, gx = np.gradient(image / top)
    grad = np.hypot(gy, gx)[inside]
    spectrum = np.abs(np.fft.fft2(image / top)) ** 2
    f = np.hypot(
        *np.meshgrid(np.fft.fftfreq(image.shape[0]), np.fft.fftfreq(image.shape[1]), indexing="ij")
    )
    bands = np.array([spectrum[(f >= 0.25 / s) & (f < 0.5 / s)].sum() for s in (1, 2, 4, 8)])
    return {
        "textured": float((grad > 2e-3).mean()),  # pixels with any local variation
        "edges": float((grad > 0.08).mean()),  # pixels on a strong edge
        "min_band": float(bands.min() / bands.sum()),  # detail at 1, 2, 4 and 8 px
        "levels": len(np.unique(np.round(image[inside] / top, 2))),
    }


def _looks_like_mri(image: np.ndarray, inside: np.ndarray) -> bool:
    stats = _structure(image, inside)
    return (
        stats["textured"] > 0.6
        and 0.03 < stats["edges"] < 0.5
        and stats["min_band"] > 0.002
        and stats["levels"] > 40
    )


def test_phantom_looks_like_mri_and_flat_ellipses_or_noise_do_not() -> None:
    unit, size = 64.0, 128
    canvas = Canvas(size + 40, size + 24, unit, np.linspace(-0.7, 0.7, 3).astype(np.float32))
    for contrast in CONTRASTS:
        magnitude, support = draw_knee(np.random.default_rng(7), canvas, contrast)
        for s in range(3):
            crop = magnitude[s, 20 : 20 + size, 12 : 12 + size]
            inside = support[s, 20 : 20 + size, 12 : 12 + size] > 0.5
            assert _looks_like_mri(crop, inside), _structure(crop, inside)
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    flat = np.zeros((size, size))
    for cy, cx, a, b, value in [
        (0, 0, 0.8, 0.9, 0.4),
        (-0.3, 0.1, 0.3, 0.2, 0.9),
        (0.4, -0.2, 0.2, 0.3, 0.1),
        (0.1, 0.4, 0.1, 0.1, 0.7),
    ]:
        flat[((y - cy) / b) ** 2 + ((x - cx) / a) ** 2 < 1] = value
    assert not _looks_like_mri(flat, flat > 0)
    noise = np.random.default_rng(0).random((size, size))
    assert not _looks_like_mri(noise, noise >= 0)


def test_slices_correlated_volumes_differ(tiny_root: Path) -> None:
    targets = [_read(p)["reconstruction_esc"] for p in _files(tiny_root, "singlecoil", "train")]
    a, b = targets[0], targets[1]
    within = np.corrcoef(a[0].ravel(), a[1].ravel())[0, 1]
    across = np.corrcoef(a[0].ravel(), b[0].ravel())[0, 1]
    assert within > 0.6 and within > across + 0.1

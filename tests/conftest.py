"""Shared fixtures: tiny fastMRI-layout volumes written with the project's own writer.

``fastmri_volume(path, **params)`` writes one file; ``fastmri_split(root, ...)`` writes a
``<challenge>_<split>/`` folder of volumes whose k-space widths differ. The data are
consistent the way fastMRI's are: the target is the center crop of |IFFT| (single-coil) or
of the RSS over coils (multi-coil) of the stored, fully sampled k-space, so a zero-filled
reconstruction of a full mask equals the target.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from mri_recon.data.header import make_ismrmrd_header
from mri_recon.data.writer import write_volume
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, file_seed

TARGET_KEYS = {"singlecoil": "reconstruction_esc", "multicoil": "reconstruction_rss"}


def _coil_images(
    rng: np.random.Generator, num_slices: int, num_coils: int, height: int, width: int
) -> np.ndarray:
    """complex64 (S, C, H, W): a textured ellipse with smooth phase, times smooth coil maps."""
    y, x = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    inside = (x / 0.8) ** 2 + (y / 0.9) ** 2 < 1
    texture = 0.5 + rng.random((num_slices, height, width))
    phase = np.exp(1j * np.pi * (0.3 * x + 0.2 * y + rng.uniform(-1, 1, (num_slices, 1, 1))))
    obj = (inside * texture * phase)[:, None]  # (S, 1, H, W)
    if num_coils == 1:
        return obj.astype(np.complex64)
    angles = 2 * np.pi * np.arange(num_coils) / num_coils
    cx, cy = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    sens = np.exp(-((x - cx) ** 2 + (y - cy) ** 2)) * np.exp(1j * angles[:, None, None])
    return (obj * sens[None]).astype(np.complex64)  # (S, C, H, W)


def _target(kspace: torch.Tensor, target_size: tuple[int, int]) -> np.ndarray:
    """float32 (S, h, w): crop of RSS(|IFFT(kspace)|), zero-padding images narrower than w."""
    image = rss(ifft2c(kspace), dim=1)  # (S, H, W)
    h, w = target_size
    pad_h, pad_w = max(h - image.shape[-2], 0), max(w - image.shape[-1], 0)
    image = torch.nn.functional.pad(
        image, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    )
    return center_crop(image, (h, w)).numpy().astype(np.float32)


def write_fastmri_volume(
    path: str | Path,
    *,
    challenge: str = "singlecoil",
    num_slices: int = 3,
    num_coils: int = 4,
    height: int = 64,
    width: int = 36,
    target_size: tuple[int, int] = (32, 32),
    padding_left: int = 0,
    padding_right: int | None = None,
    test_file: bool = False,
    acceleration: int = 4,
    center_fraction: float = 0.08,
    attrs: Mapping[str, Any] | None = None,
    encoded_size: tuple[int, int, int] | None = None,
    recon_size: tuple[int, int, int] | None = None,
    header: bytes | None = None,
    kspace_dtype: Any = np.complex64,
    seed: int = 0,
) -> Path:
    """Write one tiny fastMRI volume; see the module docstring.

    Args:
        path: the ``.h5`` file to write.
        challenge: "singlecoil" (kspace (S, H, W), also writes ``reconstruction_rss``) or
            "multicoil" (kspace (S, C, H, W)).
        padding_left, padding_right: acquired columns; columns outside are zeroed and the
            header's encoding limits say so.
        test_file: undersample with a random mask seeded by the file name, store ``mask``,
            attrs ``acceleration`` and ``num_low_frequency``, and no target.
        attrs: merged over the defaults (``max``, ``norm``, ``acquisition``, ``patient_id``);
            a value of None removes the attr.
        encoded_size, recon_size, header: header overrides (defaults: (H, W, 1), (h, w, 1)).

    Returns:
        The written path.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    coils = 1 if challenge == "singlecoil" else num_coils
    kspace = fft2c(torch.from_numpy(_coil_images(rng, num_slices, coils, height, width)))
    right = width - padding_left if padding_right is None else padding_right
    kspace[..., :padding_left] = 0
    kspace[..., right:] = 0
    target = _target(kspace, target_size)
    new_attrs: dict[str, Any] = {
        "max": float(target.max()),
        "norm": float(np.linalg.norm(target)),
        "acquisition": "CORPD_FBK",
        "patient_id": f"patient{seed:04d}",
    }
    mask = None
    if test_file:
        sample = ColumnMaskFunc("random", [center_fraction], [acceleration])(
            width, file_seed(path.name)
        )
        mask = sample.mask.numpy()
        kspace = kspace * sample.mask
        target = None
        new_attrs = {
            "acquisition": "CORPD_FBK",
            "patient_id": f"patient{seed:04d}",
            "acceleration": acceleration,
            "num_low_frequency": sample.num_low_frequencies,
        }
    new_attrs.update(attrs or {})
    if header is None:
        header = make_ismrmrd_header(
            encoded_size or (height, width, 1),
            recon_size or (*target_size, 1),
            padding_left=padding_left,
            padding_right=right,
            num_slices=num_slices,
        )
    kspace_np = kspace.numpy().astype(kspace_dtype)
    return write_volume(
        path,
        kspace_np[:, 0] if challenge == "singlecoil" else kspace_np,
        header=header,
        attrs={k: v for k, v in new_attrs.items() if v is not None},
        target=target,
        target_key=TARGET_KEYS[challenge] if target is not None else None,
        mask=mask,
        extra={"reconstruction_rss": target}
        if challenge == "singlecoil" and target is not None
        else None,
    )


@pytest.fixture(scope="session", autouse=True)
def prescan_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The prescan cache in a temporary folder for the whole session (subprocesses inherit it),
    never the user's ``~/.cache/mri_recon``."""
    saved = os.environ.get("MRI_RECON_CACHE")
    os.environ["MRI_RECON_CACHE"] = str(tmp_path_factory.mktemp("mri_recon_cache"))
    yield Path(os.environ["MRI_RECON_CACHE"])
    if saved is None:
        os.environ.pop("MRI_RECON_CACHE", None)
    else:
        os.environ["MRI_RECON_CACHE"] = saved


@pytest.fixture
def fastmri_volume() -> Callable[..., Path]:
    """Factory ``(path, **params) -> Path`` writing one volume (see ``write_fastmri_volume``)."""
    return write_fastmri_volume


@pytest.fixture
def fastmri_split() -> Callable[..., list[Path]]:
    """Factory writing ``<root>/<challenge>_<split>/file10000NN.h5``, one volume per width.

    ``(root, challenge="singlecoil", split="train", widths=(36, 40),
    acquisitions=("CORPD_FBK", "CORPDFS_FBK"), **params) -> list[Path]``; acquisitions
    cycle over the volumes, seeds are 0, 1, ...; test and challenge splits get test files.
    """

    def make(
        root: str | Path,
        challenge: str = "singlecoil",
        split: str = "train",
        widths: Sequence[int] = (36, 40),
        acquisitions: Sequence[str] = ("CORPD_FBK", "CORPDFS_FBK"),
        **params: Any,
    ) -> list[Path]:
        folder = Path(root) / f"{challenge}_{split}"
        params.setdefault("test_file", split in ("test", "challenge"))
        extra_attrs, paths = dict(params.pop("attrs", None) or {}), []
        for i, width in enumerate(widths):
            attrs = {"acquisition": acquisitions[i % len(acquisitions)], **extra_attrs}
            paths.append(
                write_fastmri_volume(
                    folder / f"file{1000001 + i}.h5",
                    challenge=challenge,
                    width=width,
                    seed=i,
                    attrs=attrs,
                    **params,
                )
            )
        return paths

    return make


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for a test module: the tensors in tests are tiny, and on a shared
    2-core machine OpenMP threads spinning against other processes make each op ~100x slower."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture
def hydra_config_reset() -> Iterator[None]:
    """Leave Hydra's global HydraConfig as found (other tests check HydraConfig.initialized())."""
    from hydra.core.hydra_config import HydraConfig

    saved = HydraConfig.instance().cfg
    yield
    HydraConfig.instance().cfg = saved


@pytest.fixture(scope="session")
def script_module() -> Callable[[str], ModuleType]:
    """``scripts/<name>.py`` imported as a module (scripts are not a package), e.g.
    ``script_module("compare_runs").main([...])``."""
    scripts = Path(__file__).resolve().parents[1] / "scripts"

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"scripts_{name}", scripts / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
        return module

    return load

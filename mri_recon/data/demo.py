"""Data for the notebooks and demos: the synthetic dataset, built on first use.

``MRI_RECON_SMALL=1`` switches to the ``tiny`` preset (a few small volumes, for the test
suite and quick looks); otherwise the ``default`` preset that ``make run`` uses. The data
root comes from the argument, else ``$MRI_RECON_DATA``, else ``data/synthetic`` (or
``data/synthetic_tiny``) in the checkout, the same default as ``configs/paths``.
"""

from __future__ import annotations

import os
from pathlib import Path

SMALL_ENV = "MRI_RECON_SMALL"
DATA_ENV = "MRI_RECON_DATA"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def is_small() -> bool:
    """Whether ``$MRI_RECON_SMALL`` asks for the small (fast) variant of a demo.

    Raises:
        ValueError: the variable holds something other than a yes/no value.
    """
    value = os.environ.get(SMALL_ENV, "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"${SMALL_ENV}={value!r}: expected one of {_TRUE + _FALSE}")
    return value in _TRUE


def demo_preset() -> str:
    """The synthetic preset of the demos: ``tiny`` under ``MRI_RECON_SMALL=1``, else ``default``."""
    return "tiny" if is_small() else "default"


def _checkout_root() -> Path:
    """The checkout root for an editable install (it holds pyproject.toml), else the cwd."""
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "pyproject.toml").is_file() and (candidate / "configs").is_dir():
        return candidate
    return Path.cwd()


def default_data_root() -> Path:
    """``$MRI_RECON_DATA``, else ``data/synthetic`` (``data/synthetic_tiny`` when small)."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return _checkout_root() / "data" / ("synthetic_tiny" if is_small() else "synthetic")


def demo_data_root(
    challenge: str = "singlecoil", root: str | os.PathLike | None = None, seed: int = 0
) -> Path:
    """The root of a fastMRI-layout synthetic dataset, generated if it is missing.

    Args:
        challenge: "singlecoil" or "multicoil".
        root: data root; default :func:`default_data_root`.
        seed: generator seed, used only when the dataset has to be built.

    Returns:
        The data root, holding ``<challenge>_train/`` and ``<challenge>_val/``.
    """
    from mri_recon.data.synthetic import ensure_dataset

    root = Path(root) if root is not None else default_data_root()
    ensure_dataset(root, challenge=challenge, preset=demo_preset(), seed=seed)
    return root


def center_out_slices(
    folder: str | os.PathLike, count: int
) -> list[tuple[Path, int, tuple[int, ...]]]:
    """Up to ``count`` slices of the ``.h5`` volumes in ``folder`` for benchmarks: each
    volume's centre slice first, then its neighbours alternately after and before, taken
    round-robin over the volumes (sorted by name). Each file is opened once.

    Returns:
        ``(path, slice index, kspace shape of the volume)`` triples, in that order.

    Raises:
        ValueError: ``folder`` holds no ``.h5`` file, or (a DataError naming it) a file is
            not a valid volume.
    """
    from mri_recon.data.fastmri import read_volume_info

    files = sorted(Path(folder).glob("*.h5"))
    if not files:
        raise ValueError(f"{folder}: no .h5 files")
    shapes = {path: read_volume_info(path).kspace_shape for path in files}
    picked: list[tuple[Path, int, tuple[int, ...]]] = []
    for offset in range(max(s[0] for s in shapes.values())):
        for path, shape in shapes.items():
            n = shape[0]
            index = n // 2 + (offset + 1) // 2 * (1 if offset % 2 else -1)
            if 0 <= index < n:
                picked.append((path, index, shape))
                if len(picked) == count:
                    return picked
    return picked

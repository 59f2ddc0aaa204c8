"""Where ``configs/`` is, and the OmegaConf resolvers every Hydra entry point shares."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def repo_root() -> str:
    """The checkout root for an editable install (it holds pyproject.toml), else the cwd."""
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "pyproject.toml").is_file() and (candidate / "configs").is_dir():
        return str(candidate)
    return str(Path.cwd())


def config_dir() -> str:
    """Absolute path of the ``configs/`` directory."""
    return str(Path(repo_root()) / "configs")


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("repo_root"):
        OmegaConf.register_new_resolver("repo_root", repo_root)


register_resolvers()

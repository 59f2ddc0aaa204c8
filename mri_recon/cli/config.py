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


def format_challenge(fmt: str, challenge: str | None) -> str | None:
    """``${format_challenge:${.format},singlecoil}``: the challenge of a multi-coil-only data
    format (``cc359``, ``m4raw``, ``cmrxrecon``), else ``challenge``."""
    from mri_recon.data.formats import format_challenge as challenge_of

    return challenge_of(str(fmt), challenge)


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("repo_root"):
        OmegaConf.register_new_resolver("repo_root", repo_root)
    if not OmegaConf.has_resolver("format_challenge"):
        OmegaConf.register_new_resolver("format_challenge", format_challenge)


register_resolvers()

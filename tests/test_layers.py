"""The layers point one way: physics <- data, models, baselines, metrics <- evaluation, viz
<- lit <- cli; fileio (atomic writes) serves every layer that writes. Lightning is imported only in mri_recon/lit/, Hydra and its OmegaConf only in
mri_recon/cli/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mri_recon"

# subpackage -> mri_recon subpackages it may import
ALLOWED = {
    "fileio": set(),
    "physics": set(),
    "data": {"fileio", "physics"},
    "models": {"physics", "baselines"},
    "baselines": {"physics"},
    "metrics": set(),
    "viz": {"fileio"},
    "evaluation": {"fileio", "physics", "data", "baselines", "metrics", "viz"},
    "lit": {"fileio", "physics", "data", "models", "baselines", "metrics", "viz"},
    "cli": {
        "fileio",
        "physics",
        "data",
        "models",
        "baselines",
        "metrics",
        "viz",
        "evaluation",
        "lit",
    },
}
THIRD_PARTY_ONLY_IN = {
    "pytorch_lightning": {"lit"},
    "lightning": {"lit"},
    "hydra": {"cli"},
    "omegaconf": {"cli"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            # relative import: resolve against the file's package
            base = path.relative_to(PKG.parent).with_suffix("").parts[: -node.level]
            names.add(".".join(base + ((node.module,) if node.module else ())))
    return names


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if p.parent != PKG)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_layering(path: Path) -> None:
    layer = path.relative_to(PKG).parts[0]
    assert layer in ALLOWED, f"new subpackage mri_recon/{layer}: add it to ALLOWED"
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "mri_recon":
            parts = name.split(".")
            if len(parts) > 1 and parts[1] != layer:
                assert parts[1] in ALLOWED[layer], f"{path.name} ({layer}) imports {name}"
        elif top in THIRD_PARTY_ONLY_IN:
            assert layer in THIRD_PARTY_ONLY_IN[top], f"{path.name} ({layer}) imports {top}"


def test_the_scan_sees_imports() -> None:
    # guard against a scan that silently finds nothing
    found = _imports(PKG / "physics" / "masks.py")
    assert "fastmri.data" in found and "torch" in found

"""Standing rules of issue 19 for the CLI: at most 230 lines per console script, and no
Hydra private module anywhere in the package."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
MAX_LINES_PER_SCRIPT = 230


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_module_is_small(script: str) -> None:
    module = SCRIPTS[script].split(":")[0]
    path = ROOT / (module.replace(".", "/") + ".py")
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES_PER_SCRIPT, f"{path.relative_to(ROOT)}: {lines} lines"


def test_no_hydra_private_module_is_imported() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "mri_recon").rglob("*.py")
        if "hydra._internal" in p.read_text()
    ]
    assert offenders == []

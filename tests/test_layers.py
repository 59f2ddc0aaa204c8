"""The layers point one way (docs/DESIGN.md draws them; ALLOWED is the rule); fileio (atomic
writes) serves every layer that writes; runinfo (framework-free run records) serves cli, and its
mask_hash evaluation and lit. Lightning is imported only in mri_recon/lit/, Hydra
and its OmegaConf only in mri_recon/cli/. No two modules of the package import each other,
directly or round a longer loop, at any level of a file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mri_recon"

# subpackage -> mri_recon subpackages it may import
ALLOWED = {
    "fileio": set(),
    "runinfo": {"fileio"},
    "physics": set(),
    "data": {"fileio", "physics"},
    "models": {"physics"},
    "baselines": {"physics"},
    "metrics": set(),
    "viz": {"fileio"},
    "evaluation": {"fileio", "runinfo", "physics", "data", "baselines", "metrics", "viz"},
    "lit": {"fileio", "runinfo", "physics", "data", "models", "metrics", "viz"},
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
        "runinfo",
    },
}
# framework-free top-level modules every layer may import (and that import no other module of
# the package): value checks, and the reconstructor and training contracts
NEUTRAL = {"checks", "contract"}
THIRD_PARTY_ONLY_IN = {
    "pytorch_lightning": {"lit"},
    "lightning": {"lit"},
    "hydra": {"cli"},
    "omegaconf": {"cli"},
}


def _module_name(path: Path, root: Path = PKG) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = PKG) -> set[str]:
    """Every name imported anywhere in the file (module level, in functions, lazily): for
    ``from a import b`` both ``a`` and ``a.b``; relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _module_name(path, root).split(".")
                if path.name != "__init__.py":
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
        elif (  # importlib.import_module("mri_recon....")
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
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
            if len(parts) > 1 and parts[1] != layer and parts[1] not in NEUTRAL:
                assert parts[1] in ALLOWED[layer], f"{path.name} ({layer}) imports {name}"
        elif top in THIRD_PARTY_ONLY_IN:
            assert layer in THIRD_PARTY_ONLY_IN[top], f"{path.name} ({layer}) imports {top}"


@pytest.mark.parametrize("name", sorted(NEUTRAL))
def test_neutral_modules_import_nothing_of_the_package(name: str) -> None:
    path = PKG / f"{name}.py"
    if not path.exists():
        pytest.skip(f"mri_recon/{name}.py not written yet")
    inside = {n for n in _imports(path) if n.split(".")[0] == "mri_recon"}
    assert not inside, f"{name}.py imports {inside}"
    third = {n.split(".")[0] for n in _imports(path)} & set(THIRD_PARTY_ONLY_IN)
    assert not third, f"{name}.py imports {third}"


def test_the_scan_sees_imports() -> None:
    # guard against a scan that silently finds nothing
    found = _imports(PKG / "physics" / "masks.py")
    assert "fastmri.data" in found and "torch" in found


def _import_graph(root: Path = PKG) -> dict[str, set[str]]:
    """module -> the package modules it imports (edges into its own parent packages, which
    Python loads first anyway, left out)."""
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        graph[name] = set()
        for target in _imports(path, root):
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop ``[a, b, ..., a]`` through each module that can reach itself."""
    cycles: list[list[str]] = []
    for start in sorted(graph):
        stack, visited = [(start, [start])], set()
        while stack and not any(start in c for c in cycles):
            node, route = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.append([*route, start])
                    break
                if nxt not in visited:
                    visited.add(nxt)
                    stack.append((nxt, route + [nxt]))
    return cycles


def test_no_import_cycles() -> None:
    cycles = _cycles(_import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_sees_lazy_and_relative_imports(tmp_path) -> None:
    pkg = tmp_path / "mri_recon"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import a\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from mri_recon.sub import b\n")
    (pkg / "sub" / "b.py").write_text("import importlib\nimportlib.import_module('mri_recon.c')\n")
    (pkg / "c.py").write_text("from .sub.a import f\n")
    graph = _import_graph(pkg)
    assert graph["mri_recon.sub"] == {"mri_recon.sub.a"}
    assert _cycles(graph) == [["mri_recon.c", "mri_recon.sub.a", "mri_recon.sub.b", "mri_recon.c"]]

"""The notebooks: committed without outputs, importing only from mri_recon (plus numpy,
matplotlib, torch and the standard library), and each one runs end to end under
``MRI_RECON_SMALL=1`` on the tiny synthetic dataset, in a temporary copy and directory."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = (
    "01_kspace_and_masks.ipynb",
    "02_baselines.ipynb",
    "03_train_and_compare.ipynb",
    "04_optimizers_and_norms.ipynb",
    "05_sampling.ipynb",
)
ALLOWED_IMPORTS = {"mri_recon", "numpy", "matplotlib", "torch"}
TIMEOUT_S = 600


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def test_the_numbered_notebooks_are_all_there():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == list(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name):
    nb = read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cells"
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{name}: code cells {dirty} carry outputs (strip them before committing)"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_imports_only_mri_recon_and_basics(name):
    imported = set()
    for cell in read(name).cells:
        if cell.cell_type != "code":
            continue
        python = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith("%")
        )  # IPython magics
        for node in ast.walk(ast.parse(python)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
    foreign = imported - ALLOWED_IMPORTS - set(sys.stdlib_module_names)
    assert not foreign, f"{name} imports {sorted(foreign)}"
    assert "mri_recon" in imported


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    from mri_recon.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("tiny_synthetic")
    generate_dataset(root, preset="tiny", challenge="singlecoil", seed=0, progress=False)
    return root


def execute(name: str, tmp_path: Path) -> nbformat.NotebookNode:
    """Run a temporary copy of the notebook with its working directory in ``tmp_path``."""
    from nbclient import NotebookClient

    copy = tmp_path / name
    shutil.copy(NOTEBOOK_DIR / name, copy)
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    return nb


def text_output(nb: nbformat.NotebookNode) -> str:
    return "".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream"
    )


def num_images(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )


@pytest.fixture
def small_env(monkeypatch, tiny_data_root):
    """The kernel inherits these: tiny data, small mode, one thread per op (2 shared cores)."""
    monkeypatch.setenv("MRI_RECON_SMALL", "1")
    monkeypatch.setenv("MRI_RECON_DATA", str(tiny_data_root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MRI_RECON_STUDY_DIR", raising=False)


# What each notebook must have printed and how many figures it must have drawn.
EXPECTED = {
    "01_kspace_and_masks.ipynb": (["random 4x", "random 8x", "largest sidelobe"], 4),
    "02_baselines.ipynb": (["best lam by SSIM", "zero_filled", "s/slice"], 3),
    "03_train_and_compare.ipynb": (["Paired differences", "unet", "trained in"], 2),
    "04_optimizers_and_norms.ipynb": (
        ["ranking at each optimizer", "bs=1", "group count study at lr"],
        3,
    ),
    "05_sampling.ipynb": (
        ["true acceleration", "largest sidelobe", "zero-filled SSIM", "perturbation scale:100"],
        5,
    ),
}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_small_mode(name, tmp_path, small_env):
    before = sorted(p.name for p in REPO.iterdir())
    nb = execute(name, tmp_path)
    out = text_output(nb)
    phrases, images = EXPECTED[name]
    for phrase in phrases:
        assert phrase in out, f"{name}: expected {phrase!r} in the output"
    assert num_images(nb) >= images
    assert sorted(p.name for p in REPO.iterdir()) == before, "the notebook wrote into the repo"
    if name.startswith(("03", "04")):
        assert (tmp_path / "outputs" / "notebooks").is_dir()  # runs land in the working dir


def test_demo_switches_and_data_root(monkeypatch, tmp_path):
    from mri_recon.data import demo

    for value, small in (("1", True), ("yes", True), ("", False), ("0", False)):
        monkeypatch.setenv("MRI_RECON_SMALL", value)
        assert demo.is_small() is small and demo.demo_preset() == ("tiny" if small else "default")
    monkeypatch.setenv("MRI_RECON_SMALL", "maybe")
    with pytest.raises(ValueError, match=r"\$MRI_RECON_SMALL='maybe'"):
        demo.is_small()
    monkeypatch.setenv("MRI_RECON_SMALL", "1")
    monkeypatch.delenv("MRI_RECON_DATA", raising=False)
    assert demo.default_data_root() == REPO / "data" / "synthetic_tiny"
    monkeypatch.setenv("MRI_RECON_DATA", str(tmp_path / "data"))
    assert demo.default_data_root() == tmp_path / "data"
    root = demo.demo_data_root("singlecoil")  # built on first use, tiny preset
    files = sorted(root.glob("singlecoil_val/*.h5"))
    assert root == tmp_path / "data" and len(files) == 2
    stamps = [f.stat().st_mtime_ns for f in files]
    assert demo.demo_data_root("singlecoil") == root  # reused, not rebuilt
    assert [f.stat().st_mtime_ns for f in files] == stamps

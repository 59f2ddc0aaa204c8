"""Code, versions, hardware and resources of a run: right where it matters, None (never a
crash) where the information does not exist."""

from __future__ import annotations

import hashlib
import subprocess
import time

import numpy as np
import pytest

from mri_recon.runinfo import ResourceMeter, git_state, hardware, package_versions


def _git(root, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, check=True, text=True
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    """A git checkout shaped like this one: pyproject.toml next to the package folder."""
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\n")
    (root / "pkg" / "a.py").write_text("x = 1\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    return root


def test_git_state_commit_dirty_and_diff_hash(checkout) -> None:
    clean = git_state(checkout / "pkg")
    assert clean["commit"] == _git(checkout, "rev-parse", "HEAD")
    assert clean["dirty"] is False and clean["diff_sha256"] is None
    (checkout / "pkg" / "a.py").write_text("x = 2\n")
    edited = git_state(checkout / "pkg")
    assert edited["dirty"] and edited["changed"] == [" M pkg/a.py"]
    diff = subprocess.run(
        ["git", "-C", str(checkout), "diff", "HEAD", "--binary"], capture_output=True
    ).stdout
    assert edited["diff_sha256"] == hashlib.sha256(diff).hexdigest()
    (checkout / "pkg" / "new.py").write_text("y = 1\n")  # an untracked file changes it too
    assert git_state(checkout / "pkg")["diff_sha256"] != edited["diff_sha256"]
    (checkout / "pkg" / "a.py").write_text("x = 3\n")
    assert git_state(checkout / "pkg")["diff_sha256"] != edited["diff_sha256"]


def test_git_state_is_none_outside_a_checkout_of_its_own(tmp_path, checkout) -> None:
    (tmp_path / "plain" / "pkg").mkdir(parents=True)
    assert git_state(tmp_path / "plain" / "pkg") is None  # installed, no git
    (checkout / "lib" / "pkg").mkdir(parents=True)  # inside someone else's repository
    assert git_state(checkout / "lib" / "pkg") is None


def test_versions_and_hardware() -> None:
    versions = package_versions()
    assert versions["numpy"] == np.__version__
    for key in ("python", "torch", "lightning", "hydra", "fastmri", "h5py"):
        assert versions[key], key
    hw = hardware()
    assert hw["cpu_cores"] >= hw["cpu_cores_usable"] >= 1 and hw["cpu_model"]
    assert isinstance(hw["gpus"], list)


def test_resource_meter_measures_wall_and_cpu_time() -> None:
    meter = ResourceMeter()
    t0 = time.process_time()
    while time.process_time() - t0 < 0.2:  # busy: CPU time accrues
        pass
    time.sleep(0.2)  # idle: wall time only
    used = meter.read(num_gpus=2, slices=10)
    assert 0.4 <= used["wall_seconds"] < 5
    assert 0.15 <= used["cpu_seconds"] < used["wall_seconds"]
    assert used["cpu_core_hours"] == pytest.approx(used["cpu_seconds"] / 3600, abs=1e-6)
    assert used["gpu_hours"] == pytest.approx(2 * used["wall_seconds"] / 3600, abs=1e-6)
    assert used["slices_per_second"] == pytest.approx(10 / used["wall_seconds"], rel=0.05)
    assert used["peak_host_memory_mib"] > 10
    assert meter.read()["gpu_hours"] is None

"""Content hashes of inputs: sha256 under 1 GiB, a parallel block hash above, and the check
that names the first missing or changed file."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mri_recon.runinfo import check_manifest, hash_file, hashing, manifest


def test_small_files_are_sha256_of_all_bytes(tmp_path) -> None:
    path = tmp_path / "a.h5"
    path.write_bytes(b"x" * 1000 + b"y")
    entry = hash_file(path)
    assert entry["name"] == "a.h5" and entry["size"] == 1001
    assert (entry["hash_method"], entry["hash"]) == (
        "sha256",
        hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def test_large_files_hash_every_block(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(hashing, "FULL_HASH_LIMIT", 100)
    monkeypatch.setattr(hashing, "BLOCK_SIZE", 64)
    data = bytearray(np.random.default_rng(0).bytes(1000))
    path = tmp_path / "big.h5"
    path.write_bytes(bytes(data))
    entry = hash_file(path)
    blocks = b"".join(hashlib.sha256(data[i : i + 64]).digest() for i in range(0, 1000, 64))
    assert entry["hash_method"].startswith("sha256-blocks")
    assert entry["hash"] == hashlib.sha256(blocks).hexdigest()
    for offset in (0, 500, 999):  # a change anywhere, the last partial block included
        changed = bytearray(data)
        changed[offset] ^= 1
        path.write_bytes(bytes(changed))
        assert hash_file(path)["hash"] != entry["hash"], offset


def test_check_manifest_names_the_changed_or_missing_file(tmp_path) -> None:
    files = [tmp_path / f"f{i}.h5" for i in range(3)]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * 50)
    entries = manifest(files)
    assert [e["path"] for e in entries] == [str(f) for f in files]
    check_manifest(entries)  # unchanged: passes
    files[1].write_bytes(bytes([9]) * 50)  # same size, other content
    with pytest.raises(ValueError, match=r"f1\.h5: changed since the run \(sha256"):
        check_manifest(entries)
    files[1].write_bytes(bytes([1]) * 51)
    with pytest.raises(ValueError, match=r"f1\.h5: changed since the run \(size 50 -> 51\)"):
        check_manifest(entries)
    files[2].unlink()
    with pytest.raises(ValueError, match=r"f2\.h5: missing"):
        check_manifest([entries[0], entries[2]])

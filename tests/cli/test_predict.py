"""mri-recon-predict, mri-recon-import and mri-recon-export from their command lines."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from fastmri.models import Unet as FastMRIUnet
from fastmri.models import VarNet as FastMRIVarNet

from mri_recon.cli import export, import_weights, predict, replay


def test_import_then_predict_a_folder_of_test_files(tmp_path, fastmri_split, capsys) -> None:
    pydicom = pytest.importorskip("pydicom")
    torch.manual_seed(0)
    torch.save(FastMRIUnet(1, 1, 4, 2).state_dict(), tmp_path / "unet.pt")
    ckpt = tmp_path / "fm.ckpt"
    import_weights.main(["fastmri-unet", str(tmp_path / "unet.pt"), str(ckpt)])
    assert f"fastmri-unet (multicoil) -> {ckpt}" in capsys.readouterr().out
    paths = fastmri_split(tmp_path / "data", challenge="multicoil", split="test", widths=(36, 41))
    out = tmp_path / "out"
    predict.main([
        f"input={paths[0].parent}", "methods=[zero_filled,fm]", f"+checkpoints.fm={ckpt}",
        "export=[nifti,dicom]", "device=cpu", "progress=false", f"hydra.run.dir={out}",
    ])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    for path in paths:
        assert any(line.startswith(f"{path.name}: 3 slices, stored mask R=") for line in lines)
        for method in ("zero_filled", "fm"):
            folder = out / "reconstructions" / method
            with h5py.File(folder / path.name) as hf:
                assert hf["reconstruction"].dtype == np.float32
                assert hf["reconstruction"].shape == (3, 32, 32)
            assert (folder / f"{path.stem}.nii.gz").is_file()
            series = [pydicom.dcmread(p) for p in sorted((folder / path.stem).glob("*.dcm"))]
            assert len(series) == 3
        assert "fm (fm.ckpt sha256" in series[0].SeriesDescription
    record = json.loads((out / "provenance.json").read_text())["segments"][-1]
    assert sorted(f["name"] for f in record["data"]["files"]) == [p.name for p in paths]
    assert [c["name"] for c in record["checkpoints"]] == ["fm.ckpt"]
    replay.main([str(out), "--out", str(tmp_path / "again")])  # exit 0: reproduced
    assert "replay:" in capsys.readouterr().out


def test_predict_errors_are_one_line(tmp_path, fastmri_split, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        predict.main([f"input={tmp_path / 'nothing'}", f"hydra.run.dir={tmp_path / 'o'}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: input: ") and "\n" not in err
    assert not (tmp_path / "o").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "file1000001.h5").write_bytes(b"not hdf5")
    with pytest.raises(SystemExit) as exc:
        predict.main([f"input={bad}", "device=cpu", f"hydra.run.dir={tmp_path / 'o1'}"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1 and "\n" not in err
    assert err.startswith(f"error: {bad / 'file1000001.h5'}: ")
    assert not (tmp_path / "o1/reconstructions").exists()
    torch.save(FastMRIUnet(1, 1, 4, 2).state_dict(), tmp_path / "unet.pt")
    import_weights.main(["fastmri-unet", str(tmp_path / "unet.pt"), str(tmp_path / "sc.ckpt"),
                         "--challenge", "singlecoil"])  # fmt: skip
    paths = fastmri_split(tmp_path / "data", challenge="multicoil", split="test", widths=(36,))
    with pytest.raises(SystemExit) as exc:
        predict.main([f"input={paths[0]}", "methods=[sc]", f"+checkpoints.sc={tmp_path / 'sc.ckpt'}",
                      "device=cpu", f"hydra.run.dir={tmp_path / 'o2'}"])  # fmt: skip
    assert exc.value.code == 2
    assert "a singlecoil model cannot reconstruct multicoil data" in capsys.readouterr().err


def test_export_command(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    torch.save(FastMRIVarNet(2, 4, 2, 4, 2).state_dict(), tmp_path / "v.pt")
    import_weights.main(["fastmri-varnet", str(tmp_path / "v.pt"), str(tmp_path / "v.ckpt")])
    with pytest.raises(SystemExit) as exc:
        export.main(
            [str(tmp_path / "v.ckpt"), "--format", "onnx", "--out", str(tmp_path / "v.onnx")]
        )
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1 and "\n" not in err
    assert err.startswith("error: ") and "cannot be exported to ONNX" in err
    export.main([str(tmp_path / "v.ckpt"), "--format", "torchscript", "--out",
                 str(tmp_path / "v.pt2"), "--kspace-shape", "3", "24", "29", "--crop-size", "16", "16"])  # fmt: skip
    module = torch.jit.load(str(tmp_path / "v.pt2"))
    mask = torch.zeros((1, 29), dtype=torch.bool)
    mask[:, ::2] = True
    kspace = torch.randn((1, 3, 24, 29), dtype=torch.complex64) * mask[:, None, None, :]
    assert module(kspace, mask).shape == (1, 16, 16)

"""scripts/bench_train.py on a tiny split: both pipelines train, the table, RSS per epoch and
the ratio line come out as specified."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_prints_both_pipelines_memory_per_epoch_and_the_ratio_last(
    tmp_path, fastmri_split, capsys, script_module
):
    fastmri_split(tmp_path, widths=(36, 40), height=40, target_size=(24, 24), num_slices=3)
    bench = script_module("bench_train")
    argv = ["--data", str(tmp_path), "--batch-size", "2", "--steps", "2", "--warmup", "1"]
    assert bench.main([*argv, "--epochs", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "target 24x24" in lines[0] and "batch 2" in lines[0] and "model unet" in lines[0]
    rows = {}
    for line in lines[3:5]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = [float(c) for c in cells[1:5]] + [cells[5]]
    assert set(rows) == {"ours", "fastMRI"}
    for name, (e2e, model, loader, rss, gpu) in rows.items():
        assert e2e > 0 and model > 0 and loader > 0 and rss > 100 and gpu == "-", name
    epochs = [
        float(m.group(1))
        for m in map(re.compile(r"epoch \d: host RSS (\d+) MiB").match, lines)
        if m
    ]
    assert len(epochs) == 2
    assert re.fullmatch(r"host RSS growth after epoch 1: [+-]\d+\.\d% \(limit \+5%\)", lines[-2])
    ratio = float(re.fullmatch(r"end-to-end ratio \(ours/fastMRI\): (\d+\.\d\d)", lines[-1])[1])
    assert ratio == pytest.approx(rows["ours"][0] / rows["fastMRI"][0], abs=0.01)


def test_bad_flags_and_roots_are_one_line_errors(tmp_path, capsys, script_module):
    bench = script_module("bench_train")
    assert bench.main(["--data", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bench_train: error: {tmp_path / 'absent'}") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        bench.main(["--data", str(tmp_path), "--steps", "0"])
    assert "--steps must be >= 1" in capsys.readouterr().err


def test_varnet_beside_fastmris_varnet_loop(tmp_path, fastmri_split, capsys, script_module):
    """``--model varnet``: both VarNets train on the multi-coil split, the same ratio line."""
    fastmri_split(tmp_path, challenge="multicoil", widths=(36, 36), height=40,
                  target_size=(24, 24), num_slices=2, num_coils=3)  # fmt: skip
    bench = script_module("bench_train")
    argv = ["--data", str(tmp_path), "--model", "varnet", "--steps", "2", "--warmup", "1"]
    assert bench.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "multicoil_train" in lines[0] and "model varnet (4 cascades" in lines[0], lines[0]
    assert "3 coils 40x36" in lines[0]
    rows = {}
    for line in lines[3:5]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = [float(c) for c in cells[1:4]]
    assert set(rows) == {"ours", "fastMRI"} and all(v > 0 for r in rows.values() for v in r)
    ratio = float(re.fullmatch(r"end-to-end ratio \(ours/fastMRI\): (\d+\.\d\d)", lines[-1])[1])
    assert ratio == pytest.approx(rows["ours"][0] / rows["fastMRI"][0], abs=0.01)
    with pytest.raises(SystemExit):
        bench.main([*argv, "--batch-size", "2"])
    assert "--model varnet: fastMRI's VarNet loop takes --batch-size 1" in capsys.readouterr().err

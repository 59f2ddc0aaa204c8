"""``mri-recon-robustness`` with perturbation axes and optional metrics, on tiny generated
data: no-effect perturbations reproduce the unperturbed cell exactly, the scale perturbation
leaves zero-filled, TV and the U-Net unchanged, a resumed perturbed grid equals the whole
one, bad specs are one line with nothing written, grid statistics."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from mri_recon.cli.robustness import main
from mri_recon.evaluation.grid import GRID_COLUMNS, grid_cells, grid_markdown
from tests.cli.test_evaluate import _fake_checkpoint

METRIC_COLUMNS = ("nmse", "psnr", "ssim", "hfen", "ssim_fg")


def _args(root: Path, out: Path, perturbations: str, *extra: str) -> list[str]:
    return [
        f"data.root={root}",
        "grid.masks=[random]",
        "grid.accelerations=[4]",
        f"grid.perturbations={perturbations}",
        "progress=false",
        "device=cpu",
        f"hydra.run.dir={out}",
        *extra,
    ]


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _cells(rows):
    out = {}
    for r in rows:
        label = r["perturbation"] + (f":{float(r['level']):g}" if r["level"] else "")
        out[(label, r["method"], r["fname"])] = r
    return out


def test_no_effect_cells_equal_the_unperturbed_one_and_scale_changes_no_ssim(
    tiny_data, tmp_path
) -> None:
    ckpt = _fake_checkpoint(tmp_path / "tiny.ckpt")
    out = tmp_path / "grid"
    main(_args(tiny_data, out, "[none,noise:0,scale:1,coils:1,noise:2,scale:100]",
               "methods=[zero_filled,tv,unet]", f"ckpt_path={ckpt}", "tv.max_iters=30",
               "metrics=[ssim,hfen,ssim_fg]"))  # fmt: skip
    rows = _read(out / "grid.csv")
    assert tuple(rows[0]) == (*GRID_COLUMNS, "hfen", "ssim_fg")
    cells = _cells(rows)
    keys = [k for k in cells if k[0] == "none"]
    assert len(keys) == 6  # 3 methods x 2 volumes
    for _, method, fname in keys:
        base = cells[("none", method, fname)]
        for label in ("noise:0", "scale:1", "coils:1"):
            row = cells[(label, method, fname)]
            assert [row[m] for m in METRIC_COLUMNS] == [base[m] for m in METRIC_COLUMNS], label
            assert row["mask_hash"] == base["mask_hash"]
            assert (row["perturbation_seed"] == "") == (label != "noise:0")  # random types only
        noisy = cells[("noise:2", method, fname)]
        assert float(noisy["ssim"]) < float(base["ssim"]) and int(noisy["perturbation_seed"]) >= 0
        scaled = cells[("scale:100", method, fname)]  # every method's output scales with it
        for m in ("ssim", "ssim_fg", "hfen"):
            assert float(scaled[m]) == pytest.approx(float(base[m]), abs=1e-4), (method, m)
    md = (out / "grid.md").read_text()
    assert "| random noise:2 | " in md and "## HFEN: unet - zero_filled (paired per volume)" in md
    assert re.search(r"\*\*tv vs zero_filled \(SSIM\): better in \d+ of 6 cells", md)
    assert "With 2 volumes and 6 cells no cell can pass (6 x 0.5 > 0.05)" in md
    assert (out / "figures" / "grid_ssim_vs_level.png").stat().st_size > 1000


def test_a_resumed_perturbed_grid_equals_the_whole_one(tiny_data, tmp_path) -> None:
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    args = ("[none,noise:2,motion:1.5]", "methods=[zero_filled]")
    main(_args(tiny_data, whole, *args))
    main(_args(tiny_data, resumed, *args))
    # what a kill during the last two cells leaves: the first cell's file only
    for name in ("random_4x_cf0.08_noise2", "random_4x_cf0.08_motion1.5"):
        (resumed / "cells" / f"{name}.csv").unlink()
        shutil.rmtree(resumed / "cells" / name)
    (resumed / "grid.csv").unlink()
    main(_args(tiny_data, resumed, *args))
    timing = GRID_COLUMNS.index("seconds_per_slice")
    a, b = _read(resumed / "grid.csv"), _read(whole / "grid.csv")
    assert len(a) == len(b) == 6
    for x, y in zip(a, b, strict=True):
        assert [v for i, v in enumerate(x.values()) if i != timing] == [
            v for i, v in enumerate(y.values()) if i != timing
        ]
    # another perturbation seed in the same directory is refused, not mixed
    with pytest.raises(SystemExit):
        main(_args(tiny_data, resumed, *args, "grid.seed=1"))


@pytest.mark.parametrize(
    ("spec", "message", "code"),
    [
        ("[none,blur:2]", r"error: grid\.perturbations: 'blur:2': unknown type 'blur'", 2),
        ("[noise:-1]", r"error: grid\.perturbations: 'noise:-1': must be a number in \[0", 2),
        ("[coils:2]", r"error: .*singlecoil_val/file\d+\.h5: perturbations: coils:2 asks for "
                      r"more coils than the data has \(1\)", 1),  # a data error
    ],
)  # fmt: skip
def test_bad_specs_are_one_line_and_write_nothing(
    tiny_data, tmp_path, capsys, spec, message, code
) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(_args(tiny_data, out, spec, "methods=[zero_filled]"))
    assert exc.value.code == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.match(message, err), err
    assert not out.exists()


def test_grid_statistics_p_values_and_holm_verdict() -> None:
    cells = grid_cells(["random"], [4, 8], perturbations=["none", "noise:2"])
    rows = [
        {"method": m, "mask_type": "random", "acceleration": r, "fname": f"f{i}", "ssim": v,
         "psnr": v, "perturbation": p.kind, "level": p.level}
        for c in cells for p, r in [(c.perturbation, c.acceleration)]
        for m in ("a", "b") for i in range(8)
        for v in [0.5 + 0.01 * i + (0.1 if m == "b" and r == 4 else 0.0)]
    ]  # fmt: skip
    md = grid_markdown(rows, cells, ["a", "b"], num_resamples=300, reference="a")
    # at 4x b is 0.1 better on all 8 volumes: exact p = 2 / 2^8; at 8x no difference (p = 1)
    assert "| random | +0.1000 [+0.1000, +0.1000] p=0.0078 | +0.0000 [+0.0000, +0.0000] p=1 |" in md
    # Holm over the 4 cells: 4 x 0.0078 = 0.031 <= 0.05 for both 4x cells
    assert (
        "**b vs a (SSIM): better in 2 of 4 cells, worse in 0, no detectable difference in 2" in md
    )


def test_eval_optional_metrics_in_csv_and_summary_and_acquisition_filter(
    tiny_data, tmp_path
) -> None:
    from mri_recon.cli.evaluate import main as eval_main

    out = tmp_path / "eval"
    eval_main([f"data.root={tiny_data}", "methods=[zero_filled,tv]", "tv.max_iters=20",
               "metrics=[ssim,hfen,haarpsi,vif,ssim_fg]", "data.acquisitions=[SYNTH_PDFS]",
               "num_figures=0", "progress=false", f"hydra.run.dir={out}"])  # fmt: skip
    rows = _read(out / "per_volume.csv")
    assert list(rows[0])[-4:] == ["hfen", "haarpsi", "vif", "ssim_fg"]
    assert {r["acquisition"] for r in rows} == {"SYNTH_PDFS"} and len(rows) == 2
    md = (out / "summary.md").read_text()
    head = next(line for line in md.splitlines() if line.startswith("| method"))
    assert head.endswith("| SSIM | HFEN | HaarPSI | VIF | SSIM (fg) | s/slice |")
    paired = md[md.index("## Paired differences") :]
    assert "| ΔHFEN | ΔHaarPSI | ΔVIF | ΔSSIM (fg) |" in paired
    assert re.search(r"\| tv \| 4 \| all \| 1 \| .*\|", paired)

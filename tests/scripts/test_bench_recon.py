"""scripts/bench_recon.py on a tiny split: one row per (method, device, batch), one-line errors."""

from __future__ import annotations

import pytest

# the scripts set torch's thread count; the fixture restores it after this module
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_table_has_a_row_per_method_and_batch(tmp_path, fastmri_split, capsys, script_module):
    folder = fastmri_split(tmp_path, "singlecoil", "val", widths=(36, 40), num_slices=3)[0].parent
    bench = script_module("bench_recon")
    assert (
        bench.main(
            [
                "--data",
                str(folder),
                "--batch-sizes",
                "1",
                "2",
                "--repeats",
                "1",
                "--devices",
                "cpu",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    rows = [
        line
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| method")
    ]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [(c[0], c[2], c[3], c[4]) for c in cells] == [
        (m, "cpu", p, b)
        for m in bench.METHODS
        for p in (("fp32", "bf16") if m.startswith("unet") else ("fp32",))
        for b in ("1", "2")
    ]
    params = {c[0]: int(c[1].replace(",", "")) for c in cells}
    assert params["zero_filled"] == params["tv"] == 0
    assert params["unet_fastmri"] == 7_762_945  # fastMRI's size with GroupNorm affine weights
    assert all(float(c[5]) > 0 and float(c[7]) >= 0 for c in cells)
    for c in cells:  # slices/s is 1000 / (ms per slice), to the 4 digits printed
        assert float(c[6]) == pytest.approx(1e3 / float(c[5]), rel=2e-3)
    # the U-Nets are one pass; TV iterates: more time per slice than zero-filled
    ms = {(c[0], c[4]): float(c[5]) for c in cells}
    assert ms[("tv", "1")] > ms[("zero_filled", "1")]


def test_bad_data_is_a_one_line_error(tmp_path, fastmri_split, capsys, script_module):
    bench = script_module("bench_recon")
    assert bench.main(["--data", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err
        == f"bench_recon: error: {tmp_path}: no .h5 files (make run builds the default)\n"
    )
    multi = fastmri_split(
        tmp_path / "m", "multicoil", "val", widths=(36,), num_slices=1, num_coils=2
    )[0].parent
    assert bench.main(["--data", str(multi)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a single-coil file" in err and ".h5" in err


def test_bench_tv_runs_ours_on_the_same_center_out_slices(
    tmp_path, fastmri_split, capsys, script_module
):
    """scripts/bench_tv.py without BART: a table per acceleration on tiny files."""
    from mri_recon.data.demo import center_out_slices

    paths = fastmri_split(tmp_path, "singlecoil", "val", widths=(36, 40), num_slices=3)
    picked = center_out_slices(paths[0].parent, 3)
    # centre slices of both volumes first, then the first volume's next neighbour
    assert [(p.name, i) for p, i, _ in picked] == [
        (paths[0].name, 1),
        (paths[1].name, 1),
        (paths[0].name, 2),
    ]
    bench = script_module("bench_tv")
    assert (
        bench.main(
            [
                "--data",
                str(tmp_path),
                "--no-bart",
                "--slices",
                "3",
                "--max-iters",
                "3",
                "--accelerations",
                "4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "file1000001.h5[1], file1000002.h5[1], file1000001.h5[2]" in out
    assert "4x" in out and "ours" in out


def test_bench_tv_multicoil_rows_and_ratio_lines(tmp_path, fastmri_split, capsys, script_module):
    """``--challenge multicoil --methods``: one row per (method, acceleration) and one closing
    line per method (the ratio line exactly, with BART; without it, ours only, said so)."""
    import re

    from mri_recon.baselines.bart import bart_available

    fastmri_split(tmp_path, "multicoil", "val", widths=(36,), num_slices=1, num_coils=2)
    bench = script_module("bench_tv")
    args = ["--data", str(tmp_path), "--challenge", "multicoil", "--slices", "1"]
    args += ["--methods", "cg_sense", "tv", "--max-iters", "2", "--accelerations", "4"]
    assert bench.main([*args, "--no-bart"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in out if ln.startswith(" 4x")] == [
        ["4x", "cg_sense"],
        ["4x", "tv"],
    ]
    assert out[-2:] == [
        ln for ln in out[-2:] if re.fullmatch(r"(cg_sense|tv) multicoil: ours .* \(no BART.*", ln)
    ]
    if bart_available():
        more = ["--methods", "cg_sense", "--bart-lams", "0.1", "--bart-maps", "ours"]
        assert bench.main([*args, *more]) == 0  # tiny: too small for ecalib's kernels
        last = capsys.readouterr().out.splitlines()[-1]
        assert re.fullmatch(r"cg_sense multicoil time ratio \(ours/BART\): \d+\.\d\d", last)
        # --grid: ours also at the best of BART's grid mapped by the measured lambda ratio
        more = ["--methods", "wavelet", "--bart-lams", "0.01", "0.03", "--bart-maps", "ours"]
        assert bench.main([*args, *more, "--grid"]) == 0
        out = capsys.readouterr().out
        ratio = float(re.search(r"4x: lam_BART = lam_ours x ([.0-9]+) ", out).group(1))
        assert ratio > 0
        rows = [ln.split() for ln in out.splitlines() if ln.startswith(" 4x  wavelet best ")]
        (best,) = [row for row in rows if "ours-BART:" not in row]
        assert any(abs(float(best[3]) * ratio / lam - 1) < 0.01 for lam in (0.01, 0.03)), best

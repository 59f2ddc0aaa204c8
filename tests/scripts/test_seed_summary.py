"""scripts/seed_summary.py end to end on a hand-built evaluation directory: per_volume.csv,
the eval's .hydra config naming each model's checkpoint, and the training runs' logs."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest
from omegaconf import OmegaConf

REGEX = r"^(?P<setting>.+)_s(?P<seed>\d+)$"
VOLUMES = [f"file{i}.h5" for i in range(4)]
# ssim per method and volume (one acceleration); psnr/nmse derived from it
SSIM = {
    "zero_filled": [0.60, 0.62, 0.58, 0.61],
    "g16_bs1_s0": [0.70, 0.72, 0.69, 0.71],
    "g16_bs1_s1": [0.71, 0.70, 0.68, 0.73],
    "g16_bs1_s2": [0.69, 0.74, 0.70, 0.70],
    "g8_bs1_s0": [0.72, 0.71, 0.66, 0.74],
    "g8_bs1_s1": [0.70, 0.73, 0.70, 0.69],
    "g8_bs1_s2": [0.73, 0.70, 0.72, 0.72],
}
VAL_SSIM = {"g16_bs1_s0": [0.5, 0.6, 0.55, 0.7], "g16_bs1_s1": [0.5, 0.4, 0.45]}


def write_run(run_dir: Path, val_ssim: list[float] | None) -> Path:
    """A training run: checkpoints/best.ckpt and (optionally) a CSVLogger metrics.csv."""
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "best.ckpt").write_bytes(b"")
    if val_ssim is not None:
        log = run_dir / "csv" / "version_0" / "metrics.csv"
        log.parent.mkdir(parents=True)
        with open(log, "w", newline="") as f:
            writer = csv.DictWriter(f, ["epoch", "step", "train/loss", "val/ssim"], restval="")
            writer.writeheader()
            for epoch, value in enumerate(val_ssim):
                writer.writerow({"epoch": epoch, "step": epoch, "train/loss": 1.0})
                writer.writerow({"epoch": epoch, "step": epoch, "val/ssim": value})
    return run_dir / "checkpoints" / "best.ckpt"


@pytest.fixture
def eval_dir(tmp_path: Path) -> Path:
    out = tmp_path / "eval"
    (out / ".hydra").mkdir(parents=True)
    with open(out / "per_volume.csv", "w", newline="") as f:
        columns = ["fname", "acquisition", "method", "mask", "acceleration", "center_fraction"]
        writer = csv.DictWriter(f, [*columns, "nmse", "psnr", "ssim", "challenge", "split"])
        writer.writeheader()
        for method, values in SSIM.items():
            for fname, ssim in zip(VOLUMES, values, strict=True):
                writer.writerow(
                    {"fname": fname, "acquisition": "CORPD_FBK", "method": method}
                    | {"mask": "random_4x", "acceleration": 4, "center_fraction": 0.08}
                    | {"nmse": 1 - ssim, "psnr": 40 * ssim, "ssim": ssim}
                    | {"challenge": "singlecoil", "split": "val"}
                )
    # s0 absolute; s1 relative to the eval's working directory; s2's run kept no log
    cwd = tmp_path / "repo"
    checkpoints = {
        "g16_bs1_s0": str(write_run(tmp_path / "runs" / "s0", VAL_SSIM["g16_bs1_s0"])),
        "g16_bs1_s1": str(write_run(cwd / "logs" / "s1", VAL_SSIM["g16_bs1_s1"]).relative_to(cwd)),
        "g16_bs1_s2": str(write_run(tmp_path / "runs" / "s2", None)),
    }
    config = {"methods": list(SSIM), "ckpt_path": None, "checkpoints": checkpoints}
    OmegaConf.save(OmegaConf.create(config), out / ".hydra" / "config.yaml")
    OmegaConf.save(
        OmegaConf.create({"hydra": {"runtime": {"cwd": str(cwd)}}}), out / ".hydra" / "hydra.yaml"
    )
    return out


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_main_writes_table_csv_and_stability(eval_dir, tmp_path, capsys, script_module):
    script = script_module("seed_summary")
    out = tmp_path / "out"
    argv = [str(eval_dir), "--setting-regex", REGEX, "--reference", "g16_bs1"]
    assert script.main([*argv, "--metrics", "ssim", "nmse", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert (out / "seed_summary.md").read_text() == printed.out
    assert (
        "no stability for g16_bs1_s2" in printed.err
        and str(tmp_path / "runs" / "s2") in printed.err
    )
    rows = read_rows(out / "seed_summary.csv")
    assert [r["setting"] for r in rows] == ["zero_filled", "g16_bs1", "g8_bs1"]
    g16, g8 = rows[1], rows[2]

    # independent: seed-averaged per volume, per-seed means, their sd, paired vs g16_bs1
    def avg(setting: str) -> list[float]:
        return [statistics.fmean(SSIM[f"{setting}_s{s}"][i] for s in range(3)) for i in range(4)]

    seed_means = [statistics.fmean(SSIM[f"g8_bs1_s{s}"]) for s in range(3)]
    diffs = [b - a for a, b in zip(avg("g16_bs1"), avg("g8_bs1"), strict=True)]
    assert float(g8["ssim"]) == pytest.approx(statistics.fmean(avg("g8_bs1")))
    assert [float(v) for v in g8["ssim_seed_means"].split(" / ")] == pytest.approx(seed_means)
    assert float(g8["ssim_seed_sd"]) == pytest.approx(statistics.stdev(seed_means))
    assert float(g8["ssim_diff"]) == pytest.approx(statistics.fmean(diffs))
    assert int(g8["ssim_wins"]) == sum(d > 0 for d in diffs) == 3
    assert int(g8["nmse_wins"]) == 3  # nmse = 1 - ssim: lower is better
    assert float(g8["nmse_diff"]) == pytest.approx(-statistics.fmean(diffs))
    assert g16["ssim_diff"] == "" and g16["ssim_wins"] == ""
    assert (g8["seeds"], g8["seed_labels"], g8["volumes"]) == ("3", "0 / 1 / 2", "4")

    # max drop of val SSIM: s0 0.05, s1 0.1, s2 no log; g8 and zero_filled no run
    drops = [float(v) for v in g16["max_drop_val/ssim_seeds"].split(" / ")[:2]]
    assert drops == pytest.approx([0.05, 0.1])
    assert g16["max_drop_val/ssim_seeds"].endswith(" / -")
    assert float(g16["max_drop_val/ssim_mean"]) == pytest.approx(0.075)
    assert float(g16["max_drop_val/ssim_max"]) == pytest.approx(0.1)
    assert (g8["max_drop_val/ssim_seeds"], g8["max_drop_val/ssim_mean"]) == ("- / - / -", "")

    # the Markdown row of g8_bs1
    line = next(x for x in printed.out.splitlines() if x.startswith("| g8_bs1 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[:4] == ["g8_bs1", "4", "3", "4"]
    assert cells[5] == " / ".join(f"{v:.4f}" for v in seed_means)
    assert cells[7].startswith(f"{statistics.fmean(diffs):+.4f} [") and cells[8] == "3/4"
    assert cells[-3:] == ["- / - / -", "-", "-"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no dir", "no such directory"),
        ("no rows", "per_volume.csv: no rows"),
        ("no csv", "per_volume.csv: no such file"),
        ("reference", "reference 'g4_bs1' is not a setting"),
        ("regex", "lacks the named groups ['seed']"),
        ("missing volume", "setting g8_bs1: seed 1 lacks volume file2.h5 at acceleration 4"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(eval_dir, capsys, script_module, change, message):
    script = script_module("seed_summary")
    path, regex, reference = eval_dir, REGEX, "g16_bs1"
    csv_path = eval_dir / "per_volume.csv"
    lines = csv_path.read_text().splitlines(keepends=True)
    if change == "no dir":
        path = eval_dir / "nope"
    elif change == "no rows":
        csv_path.write_text(lines[0])
    elif change == "no csv":
        csv_path.unlink()
    elif change == "reference":
        reference = "g4_bs1"
    elif change == "regex":
        regex = r"^(?P<setting>.+)_s\d+$"
    else:
        csv_path.write_text(
            "".join(x for x in lines if not x.startswith("file2.h5,CORPD_FBK,g8_bs1_s1,"))
        )
    assert script.main([str(path), "--setting-regex", regex, "--reference", reference]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seed_summary: error: ") and err.count("\n") == 1 and message in err
    assert not list(eval_dir.glob("seed_summary*"))

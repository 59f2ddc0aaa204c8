"""The classical-method registry through the CLI: ``mri-recon-tune-tv method=cg_sense|wavelet``
and ``mri-recon-eval methods=[...,cg_sense,wavelet]``, and their bad values as one line
before any output is written."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mri_recon.cli import evaluate as eval_cli
from mri_recon.cli.tune_tv import main as tune_main


def test_tune_cg_sense_writes_its_own_yaml_and_eval_runs_both(
    tmp_path, fastmri_split, capsys
) -> None:
    """The tuner sweeps ``cg_sense.lam`` (its own group, its own file names) and the printed
    override feeds ``mri-recon-eval`` with cg_sense and wavelet on multi-coil data."""
    fastmri_split(tmp_path / "data", challenge="multicoil", split="val", widths=(36,))
    tune_main(
        [
            f"data.root={tmp_path / 'data'}",
            "data.challenge=multicoil",
            "method=cg_sense",
            "lams=[0.01,0.3]",
            "cg_sense.max_iters=3",
            "progress=false",
            f"hydra.run.dir={tmp_path / 'tune'}",
        ]
    )
    out = capsys.readouterr().out
    chosen = OmegaConf.to_container(OmegaConf.load(tmp_path / "tune/cg_sense_lambda.yaml"))
    assert list(chosen) == ["cg_sense"] and chosen["cg_sense"]["lam"] in (0.01, 0.3)
    assert (tmp_path / "tune/cg_sense_lambda_curve.csv").is_file()
    assert "| cg_sense.lam |" in out and out.splitlines()[-1].startswith("use: cg_sense.lam=")
    assert not (tmp_path / "tune/tv_lambda.yaml").exists()
    eval_cli.main(
        [
            f"data.root={tmp_path / 'data'}",
            "data.challenge=multicoil",
            "methods=[zero_filled,cg_sense,wavelet]",
            f"cg_sense.lam={chosen['cg_sense']['lam']}",
            "cg_sense.max_iters=3",
            "wavelet.max_iters=3",
            "wavelet.levels=2",
            "num_figures=0",
            "progress=false",
            f"hydra.run.dir={tmp_path / 'eval'}",
        ]
    )
    table = (tmp_path / "eval/per_volume.csv").read_text()
    assert ",cg_sense," in table and ",wavelet," in table


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["method=wavelet", "wavelet.wavelet=db99"], "error: wavelet.wavelet: must be one of"),
        (["method=foo"], "error: method: must be one of tv, cg_sense, wavelet, got 'foo'"),
    ],
)
def test_bad_values_end_in_one_line_before_anything_is_written(
    tmp_path, fastmri_split, capsys, overrides, expected
) -> None:
    fastmri_split(tmp_path / "data", split="val", widths=(36,))
    with pytest.raises(SystemExit) as exc:
        tune_main(
            [
                f"data.root={tmp_path / 'data'}",
                "lams=[0.01]",
                *overrides,
                f"hydra.run.dir={tmp_path / 'run'}",
            ]
        )
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err and err.startswith(expected), err
    assert not list((tmp_path / "run").glob("*_lambda*"))


@pytest.mark.parametrize("command", ["eval", "tune"])
def test_wavelet_levels_too_deep_is_one_line_and_no_output(
    tmp_path, fastmri_split, capsys, command
):
    """An explicit wavelet.levels deeper than a volume's k-space allows ends in one line
    naming the file, before Hydra creates the run directory (the entry points' pre-flight
    reads the k-space shapes from the headers)."""
    (path,) = fastmri_split(tmp_path / "data", split="val", widths=(36,))
    common = [f"data.root={tmp_path / 'data'}", "wavelet.levels=4", "progress=false"]
    common.append(f"hydra.run.dir={tmp_path / 'run'}")
    with pytest.raises(SystemExit) as exc:
        if command == "eval":
            eval_cli.main(["methods=[zero_filled,wavelet]", *common])
        else:
            tune_main(["method=wavelet", "lams=[0.01]", *common])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1 and "\n" not in err
    assert err.startswith(f"error: {path}: wavelet: levels 4 is too deep for a "), err
    assert not (tmp_path / "run").exists()

"""``run_hydra_main`` reads the command line as Hydra does: flags that take a value are not
mistaken for overrides, and a bad override is one line even next to a flag; pre-composition
tries every value of a sweep."""

from __future__ import annotations

import pytest

from mri_recon.cli.errors import (
    CONFIG_EXIT,
    ConfigError,
    parse_command_line,
    precompose,
    run_hydra_main,
)

pytestmark = pytest.mark.usefixtures("hydra_config_reset")


def _never(cfg) -> None:
    raise AssertionError("--cfg prints the config; the task must not run")


def test_flag_values_are_not_overrides(capsys: pytest.CaptureFixture) -> None:
    run_hydra_main(_never, "eval", ["--cfg", "job", "batch_size=3"])
    assert "batch_size: 3" in capsys.readouterr().out


def test_bad_override_next_to_a_flag_is_one_line(capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_hydra_main(_never, "eval", ["--cfg=job", "-p", "stats", "nope=1"])
    assert exit_info.value.code == CONFIG_EXIT
    assert capfd.readouterr().err.splitlines() == [
        "error: nope: unknown key (Key 'nope' is not in struct)"
    ]


# the command lines the CLIs' docs and tests use; Hydra's own parser is the reference
COMMAND_LINES = [
    [],
    ["batch_size=3", "mask=random_8x"],
    ["-m", "optim=adam,sgd", "hydra.sweep.dir=/tmp/s"],
    ["--multirun", "seed=0,1"],
    ["--cfg", "job", "batch_size=3"],
    ["--cfg=job", "-p", "stats", "nope=1"],
    ["-c", "hydra", "--resolve"],
    ["--info"],
    ["-i", "defaults"],
    ["--help"],
    ["--hydra-help"],
    ["-cn", "eval", "-cd", "/tmp", "x=1"],
    ["--config-path", "conf", "--config-name=train"],
    ["-sc", "install=bash"],
    ["--experimental-rerun", "pickle", "a=1"],
]
READ = ("overrides", "multirun", "cfg", "package", "info", "help", "hydra_help",
        "config_path", "config_name", "config_dir", "shell_completion", "resolve")  # fmt: skip


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=" ".join)
def test_command_line_is_read_as_the_installed_hydra_reads_it(argv: list[str]) -> None:
    """``parse_command_line`` replaces Hydra's private parser: it must agree with it (a new
    Hydra release that adds or renames a flag fails here first)."""
    import hydra
    from hydra._internal.utils import get_args_parser  # the reference, in this test only

    assert hydra.__version__.startswith("1.3."), hydra.__version__
    ours, hydras = parse_command_line(argv), get_args_parser().parse_args(argv)
    assert {k: getattr(ours, k) for k in READ} == {k: getattr(hydras, k) for k in READ}


def test_precompose_tries_every_sweep_value_and_returns_the_first_job() -> None:
    cfg = precompose("eval", ["batch_size=2,5", "mask=random_8x,random_4x"], multirun=True)
    assert cfg.batch_size == 2 and cfg.hydra.runtime.choices.mask == "random_8x"
    with pytest.raises(ConfigError) as err:
        precompose("eval", ["batch_size=2", "mask=random_4x,nope"], multirun=True)
    assert err.value.field == "mask" and "Could not find 'mask/nope'" in err.value.reason
    with pytest.raises(ConfigError) as err:  # a sweep without -m
        precompose("eval", ["batch_size=2", "mask=random_4x,random_8x"])
    assert err.value.field == "mask" and "add -m" in err.value.reason

"""``run_hydra_main`` reads the command line with Hydra's own parser: flags that take a value
are not mistaken for overrides, and a bad override is one line even next to a flag."""

from __future__ import annotations

import pytest

from mri_recon.cli.errors import CONFIG_EXIT, run_hydra_main

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

"""The one builder: a constructor names its own argument, the builder names the config key the
user set (``group.arg``, or the key an interpolation reads)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mri_recon import checks
from mri_recon.cli.errors import ConfigError
from mri_recon.cli.validate import build_group


class Mask:
    """A fake constructor that checks its arguments as the package's constructors do."""

    def __init__(self, accelerations: list[float], seed: int = 0) -> None:
        for r in accelerations:
            checks.number("accelerations", r, 1)
        self.seed = checks.integer("seed", seed, 0)


class Module:
    def __init__(self, optimizer: object, crop: int | None = None) -> None:
        if optimizer == "bad":
            raise ValueError("optimizer: Invalid weight_decay value: -1.0")
        if crop == 1:
            raise ValueError("crop and seed cannot both be set")
        checks.positive_int("crop", crop, optional=True)


class Data:
    """Checks a key inside a mapping argument as a format reader checks its options."""

    def __init__(self, format_options: dict | None = None) -> None:
        checks.one_of("format_options.target", (format_options or {}).get("target"), (None, "mean"))


def _cfg(**values: object):
    return OmegaConf.create(
        {
            "seed": 0,
            "mask": {"_target_": f"{__name__}.Mask", "accelerations": [4], "seed": "${seed}"},
            "module": {"_target_": f"{__name__}.Module", "crop": None},
            "optim": {"lr": 1.0},
            **values,
        }
    )


def _error(cfg, group: str, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as err:
        build_group(cfg, group, **kwargs)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_message_naming_a_key_of_the_node_names_group_dot_key() -> None:
    cfg = _cfg()
    cfg.mask.accelerations = [4, 0.5]
    assert _error(cfg, "mask") == "mask.accelerations: must be a number in [1, inf), got 0.5"
    cfg.module.crop = 0
    assert (
        _error(cfg, "module", optimizer=None) == "module.crop: must be an int >= 1 or null, got 0"
    )


def test_a_key_inside_a_mapping_argument_leads_with_the_full_key() -> None:
    """``format_options.target: ...`` from ``data`` is ``data.format_options.target: ...``
    (not ``data: format_options.target: ...``)."""
    cfg = _cfg(data={"_target_": f"{__name__}.Data", "format_options": {"target": "max"}})
    assert _error(cfg, "data").startswith("data.format_options.target: must be one of")


def test_an_interpolated_value_names_the_key_it_reads() -> None:
    cfg = _cfg(seed=-1)
    assert _error(cfg, "mask") == "seed: must be an int >= 0, got -1"


def test_an_argument_built_from_another_group_names_that_group() -> None:
    cfg = _cfg()
    message = _error(cfg, "module", groups={"optimizer": "optim"}, optimizer="bad")
    assert message == "optim: Invalid weight_decay value: -1.0"


def test_any_other_message_names_the_group() -> None:
    cfg = _cfg()
    cfg.module.crop = 1
    assert _error(cfg, "module", optimizer=None) == "module: crop and seed cannot both be set"
    # an argument that is not a key of the node (a keyword the CLI passes) names the group
    assert _error(cfg, "module", optimizer="bad").startswith("module: optimizer: Invalid")


def test_unknown_argument_and_target() -> None:
    cfg = _cfg()
    cfg.mask.sigma = 2
    assert _error(cfg, "mask") == "mask.sigma: unknown key (not an argument of its _target_)"
    cfg.mask._target_ = "no_such_module.Mask"
    assert _error(cfg, "mask").startswith("mask._target_: ")


def test_a_good_node_is_built() -> None:
    mask = build_group(_cfg(seed=3), "mask")
    assert isinstance(mask, Mask) and mask.seed == 3

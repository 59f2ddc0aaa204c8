"""Every training config composes, passes the start-up checks, mirrors its constructor and
builds; bad values fail with a ConfigError naming the field, before any training."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class
from omegaconf import DictConfig

from mri_recon.cli.config import config_dir
from mri_recon.cli.errors import ConfigError
from mri_recon.cli.train import build_group, build_list, build_module, train
from mri_recon.cli.validate import check_train_config
from mri_recon.contract import LossTerms
from mri_recon.lit.datamodule import FastMRIDataModule
from mri_recon.lit.training import torch_flags_restored
from mri_recon.models.reconstructor import ImageReconstructor

CONFIGS = Path(config_dir())
TRAIN_GROUPS = (
    "data",
    "mask",
    "model",
    "optim",
    "scheduler",
    "loss",
    "training",
    "trainer",
    "logger",
    "callbacks",
    "experiment",
    "debug",
)
NOT_TRAIN = {("data", "eval")}  # configs/data/eval.yaml is eval.yaml's data node
# options that only build with others: SSDU trains a model with data consistency, loss=ssdu
# reads the k-space terms only SSDU gives
COMPANIONS = {
    ("training", "ssdu"): ("model=varnet",),
    ("loss", "ssdu"): ("training=ssdu", "model=varnet"),
}
OPTIONS = [
    (group, path.stem)
    for group in TRAIN_GROUPS
    for path in sorted((CONFIGS / group).glob("*.yaml"))
    if (group, path.stem) not in NOT_TRAIN
]


pytestmark = pytest.mark.usefixtures("one_torch_thread", "hydra_config_reset")


def compose_train(root: Path, *overrides: str) -> DictConfig:
    """``train.yaml`` composed with Hydra's own node, which is then made current so that
    ``${hydra:runtime.choices.*}`` resolves as in a real run."""
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"data.root={root}", f"paths.output_dir={root}", *overrides],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    return cfg


def assert_mirrors_constructor(node: Any, where: str) -> int:
    """Every key of every ``_target_`` node under ``node`` is an argument of its target.

    Returns:
        The number of ``_target_`` nodes checked.
    """
    if not isinstance(node, DictConfig):
        return 0
    checked = 0
    if "_target_" in node:
        target = get_class(node["_target_"])
        params = inspect.signature(target).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            extra = [k for k in node if not str(k).startswith("_") and k not in params]
            assert not extra, f"{where}: {node['_target_']} has no argument(s) {extra}"
        checked += 1
    for key, child in node.items_ex(resolve=False):
        checked += assert_mirrors_constructor(child, f"{where}.{key}")
    return checked


def build_everything(cfg: DictConfig) -> None:
    """Instantiate every group (the trainer only where the hardware allows) and use it once."""
    mask = build_group(cfg, "mask")
    sample = mask(37, seed=0)
    assert sample.mask.shape == (37,) and sample.mask[37 // 2]
    datamodule = build_group(cfg, "data", mask_func=mask)
    assert isinstance(datamodule, FastMRIDataModule)
    assert datamodule.challenge == cfg.data.challenge
    module = build_module(cfg)
    image = torch.rand(1, 1, 16, 20)
    if isinstance(module.reconstructor, ImageReconstructor):  # an image network
        # .forward: eager even where module.compile is set (compiling takes minutes on CPU)
        assert module.reconstructor.net.forward(image).shape == image.shape
    else:  # a reconstructor of its own (VarNet): k-space of the data's coil count in
        coils = 3 if cfg.data.challenge == "multicoil" else 1
        masked_kspace = torch.randn(1, coils, 32, 36, dtype=torch.complex64)
        mask = torch.zeros(1, 36, dtype=torch.bool)
        mask[:, 15:21] = True
        assert module(masked_kspace * mask, mask, None, (16, 20)).shape == (1, 16, 20)
    kspace_terms = (None, None, None)  # a loss on k-space (loss=ssdu) gets k-space terms
    if hasattr(module.loss, "reads_kspace"):
        y = torch.randn(1, 2, 8, 8, dtype=torch.complex64)
        kspace_terms = (0.5 * y, y, torch.rand(1, 1, 8, 8) < 0.5)
    terms = LossTerms(image[:, 0], torch.rand(1, 16, 20), torch.ones(1), None, *kspace_terms)
    loss = module.loss(terms)
    assert loss.ndim == 0 and torch.isfinite(loss)
    optimizers = module.configure_optimizers()
    optimizer = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers
    assert type(optimizer) is get_class(cfg.optim._target_)
    assert optimizer.param_groups[0]["lr"] == cfg.optim.lr
    loggers, callbacks = build_list(cfg, "logger"), build_list(cfg, "callbacks")
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        return  # composes and checks; the Trainer needs a GPU
    with torch_flags_restored():
        trainer = build_group(cfg, "trainer", logger=loggers or False, callbacks=callbacks)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert len(trainer.loggers) == len(loggers)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_config_composes_checks_mirrors_and_builds(
    group: str, option: str, tmp_path: Path
) -> None:
    if (group, option) == ("logger", "wandb"):
        pytest.importorskip("wandb")  # not among make install's packages
    cfg = compose_train(tmp_path, f"{group}={option}", *COMPANIONS.get((group, option), ()))
    assert HydraConfig.get().runtime.choices[group] == option
    check_train_config(cfg)
    nodes = sum(assert_mirrors_constructor(cfg[g], g) for g in TRAIN_GROUPS[:-2] + ("module",))
    assert nodes >= 9  # data, its mask_func, mask, model, optim, loss, trainer, module, ...
    build_everything(cfg)


def test_every_group_has_options() -> None:
    found = {group for group, _ in OPTIONS}
    assert found == set(TRAIN_GROUPS)
    assert {"adam", "adamw", "rmsprop", "sgd", "sgd_momentum"} <= {
        o for g, o in OPTIONS if g == "optim"
    }


def test_ddp_trainer_uses_gloo_on_cpu(tmp_path: Path) -> None:
    cfg = compose_train(
        tmp_path, "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "logger=none"
    )
    with torch_flags_restored():
        trainer = build_group(cfg, "trainer", logger=False, callbacks=[])
    assert trainer.world_size == 2 and trainer.num_devices == 2
    assert trainer.strategy._get_process_group_backend() == "gloo"
    assert trainer._accelerator_connector.use_distributed_sampler is False


def test_callbacks_write_best_and_last_by_val_ssim(tmp_path: Path) -> None:
    from pytorch_lightning.callbacks import ModelCheckpoint

    cfg = compose_train(tmp_path)
    (checkpoint,) = [c for c in build_list(cfg, "callbacks") if isinstance(c, ModelCheckpoint)]
    assert checkpoint.dirpath == str(tmp_path / "checkpoints")
    assert checkpoint.monitor == "val/ssim" and checkpoint.mode == "max"
    assert checkpoint.save_last and checkpoint.CHECKPOINT_NAME_LAST == "last"
    assert checkpoint.format_checkpoint_name({"val/ssim": 0.5}) == str(
        tmp_path / "checkpoints" / "best.ckpt"
    )


def test_common_overrides_reach_the_objects(tmp_path: Path) -> None:
    cfg = compose_train(
        tmp_path,
        "data.batch_size=4",
        "optim.lr=0.01",
        "seed=3",
        "trainer.max_epochs=7",
        "model.norm=batch",
        "optim=rmsprop",
        "mask=random_8x",
    )
    datamodule = build_group(cfg, "data", mask_func=build_group(cfg, "mask"))
    assert datamodule.batch_size == 4 and datamodule.seed == 3
    assert datamodule.mask_func.accelerations == [8.0]
    module = build_module(cfg)
    assert module.hparams.seed == 3 and module.hparams.net_spec["norm"] == "batch"
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.RMSprop)
    # an override after optim=... still applies to the chosen optimizer
    assert optimizer.param_groups[0]["lr"] == 0.01
    assert cfg.trainer.max_epochs == 7


def test_unknown_key_fails_composition(tmp_path: Path) -> None:
    with pytest.raises(ConfigCompositionException, match="data.foo"):
        compose_train(tmp_path, "data.foo=1")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["mask.accelerations=[0.5]"], "mask.accelerations"),
        (["mask.center_fractions=[0.0]"], "mask.center_fractions"),
        (["mask.center_fractions=[1.0]"], "mask.center_fractions"),
        (["mask.center_fractions=[0.3]"], "mask.center_fractions"),  # 0.3 * 4 >= 1
        (["mask=variable_density_4x", "mask.p=0"], "mask.p"),
        (["mask=poisson_4x", "mask.accelerations=[1]"], "mask.accelerations"),
        (["mask=poisson_4x", "mask.min_gap=6"], "mask.min_gap"),
        (["mask=magic_4x", "mask.accelerations=[4.5]"], "mask.accelerations"),
        (["+mask.p=2"], "mask.p"),
        (["model.norm=foo"], "model.norm"),
        (["model.chans=0"], "model.chans"),
        # ReconModule builds the optimizer: its message names optim (or optim._target_)
        (["optim._target_=torch.nn.Linear"], "optim._target_|optim"),
        (["optim._target_=torch.optim.NoSuchOptimizer"], "optim._target_"),
        (["optim.lr=0"], "optim.lr"),
        # torch's own messages ("Invalid weight_decay value: -1.0") name the group
        (["optim.weight_decay=-1"], "optim"),
        (["optim=sgd_momentum", "optim.momentum=-1"], "optim"),
        (["scheduler=step", "scheduler._target_=torch.optim.SGD"], "scheduler._target_|scheduler"),
        (["scheduler=step", "scheduler.step_size=0"], "scheduler.step_size"),
        (["scheduler=step", "scheduler.gamma=0"], "scheduler.gamma"),
        (["data.batch_size=0"], "data.batch_size"),
        (["data.batch_size=two"], "data.batch_size"),
        (["data.val_batch_size=0"], "data.val_batch_size"),
        (["data.num_workers=-1"], "data.num_workers"),
        (["data.sample_rate=0"], "data.sample_rate"),
        (["data.challenge=knee"], "data.challenge"),
        (["data.root=/no/such/dir"], "data.root"),
        (["torch_threads=0"], "torch_threads"),
        (["seed=-1"], "seed"),
        (["trainer.max_epochs=0"], "trainer.max_epochs"),
        (["trainer.use_distributed_sampler=true"], "trainer.use_distributed_sampler"),
        (["module.train_crop_size=0"], "module.train_crop_size"),
        (["module.compile=fast"], "module.compile"),
        (["module.channels_last=maybe"], "module.channels_last"),
        (["trainer.precision=bf17"], "trainer.precision"),
        (["trainer.precision=16-true"], "trainer.precision"),
        (["validate_ckpt=worst"], "validate_ckpt"),
        (["ckpt_path=/no/such/last.ckpt"], "ckpt_path"),
    ],
)
def test_bad_value_is_a_config_error_naming_the_field(
    overrides: list[str], field: str, tmp_path: Path
) -> None:
    # tmp_path holds no data: a value that slipped through would fail later with DataError
    cfg = compose_train(tmp_path, *overrides)
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert err.value.field in field.split("|")
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{err.value.field}: ")


def test_lightning_precision_error_names_the_field(tmp_path: Path) -> None:
    """Lightning's own ValueError for a precision it does not know is one line naming
    the trainer group (the check_train_config check, naming trainer.precision, comes first)."""
    cfg = compose_train(tmp_path, "trainer.precision=bf17", "logger=none")
    with pytest.raises(ConfigError) as err, torch_flags_restored():
        build_group(cfg, "trainer", logger=False)
    assert err.value.field == "trainer" and "\n" not in str(err.value)
    assert "bf17" in err.value.reason

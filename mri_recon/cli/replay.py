"""``mri-recon-replay RUN_DIR [--out DIR]``: re-run a recorded run from its ``provenance.json``
and diff its per-volume table against the recorded one.

From the record alone (its last completed segment): every input file (data, checkpoints, a
training run's validated checkpoint) is checked against the manifest; then an evaluation is
re-run with the recorded resolved config, or a training run's final validation on its
validated checkpoint (one device, no loggers or callbacks), into ``RUN_DIR/replay`` (or
``--out``); a run recorded on a GPU is replayed on the CPU when there is none. The new table
is compared with the recorded one by :func:`mri_recon.runinfo.compare.compare_tables`.

Exit status: 0 reproduced; 1 an input file missing or changed (or another data error); 2 no
usable record or bad arguments; 3 the tables differ past the tolerance.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from mri_recon import runinfo
from mri_recon.cli.config import config_dir
from mri_recon.cli.errors import CONFIG_EXIT, DATA_EXIT, ConfigError, fail
from mri_recon.runinfo import RECORD_NAME, RecordError
from mri_recon.runinfo.compare import KEYS, TABLES, compare_tables

DIFFERS_EXIT = 3


def _cpu_if_no_cuda(value: Any, cpu: str) -> Any:
    if str(value).startswith(("cuda", "gpu")) and not torch.cuda.is_available():
        print(f"replay: recorded on {value}, replaying on the CPU (no CUDA here)", flush=True)
        return cpu
    return value


def replay_eval(segment: dict[str, Any], out: Path) -> None:
    """Re-run a recorded evaluation (or prediction) into ``out``."""
    from mri_recon.cli.evaluate import evaluate
    from mri_recon.cli.predict import predict

    cfg = OmegaConf.create(segment["config"])
    if cfg.get("task_name") == "predict":  # its evaluation node is completed from its files
        cfg.paths.output_dir = str(out)
        cfg.device = _cpu_if_no_cuda(cfg.device, "cpu")
        predict(cfg)
        return
    if "evaluation" not in cfg:  # recorded before eval.yaml had it: today's, on the record
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg.evaluation = OmegaConf.to_container(compose("eval").evaluation)
        cfg.evaluation.mask_name = segment["hydra"]["choices"]["mask"]
    cfg.paths.output_dir = str(out)
    cfg.data.root = cfg.evaluation.root = runinfo.resolved_root(segment)
    cfg.device = _cpu_if_no_cuda(cfg.device, "cpu")
    evaluate(cfg)  # resolved: the mask's name (Hydra's choice) is recorded as it was


def replay_train(segment: dict[str, Any], out: Path) -> None:
    """Re-run a training run's final validation on its validated checkpoint into ``out``
    (``val_volumes.csv`` and ``metrics.json``)."""
    from mri_recon.cli.train import build_module
    from mri_recon.cli.validate import build_group, set_torch_threads
    from mri_recon.lit.training import RunResult, torch_flags_restored

    ckpt = (segment.get("outputs") or {}).get("validated_checkpoint")
    if not ckpt:
        raise RecordError("the run validated in-memory weights, no checkpoint: nothing to replay")
    cfg: DictConfig = OmegaConf.create(segment["config"])
    cfg.paths.output_dir = str(out)
    cfg.data.root = runinfo.resolved_root(segment)
    path = runinfo.replay_inputs("train", segment)[-1]["path"]  # relative to the recorded cwd
    set_torch_threads(cfg)
    datamodule = build_group(cfg, "data", mask_func=build_group(cfg, "mask"))
    module = build_module(cfg)
    accelerator = _cpu_if_no_cuda(cfg.trainer.get("accelerator", "auto"), "cpu")
    with torch_flags_restored():
        trainer = build_group(
            cfg, "trainer", logger=False, callbacks=[], devices=1, num_nodes=1,
            strategy="auto", accelerator=accelerator, default_root_dir=str(out),
            enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        results = trainer.validate(module, datamodule=datamodule, ckpt_path=path, verbose=False)
    metrics = {k: float(v) for r in results for k, v in r.items()}
    volumes = list(getattr(module, "last_val_table", []) or [])
    RunResult(metrics, volumes, checkpoint=path).write(out)


def replay(run_dir: Path, out: Path | None = None) -> tuple[list[str], bool]:
    """Check the inputs of ``run_dir``'s record, re-run it into ``out`` (default
    ``run_dir/replay``) and compare the tables: (report lines, whether it reproduces).

    Raises:
        RecordError: no usable record (exit 2 from the CLI).
        ValueError: an input file missing or changed, or a data error (exit 1).
    """
    out = Path(out) if out is not None else run_dir / "replay"
    try:
        kind, segment = runinfo.replay_segment(run_dir, out)
        if not (recorded := run_dir / TABLES[kind]).is_file():
            raise RecordError(f"{recorded}: the recorded table is missing")
        (replay_eval if kind == "eval" else replay_train)(segment, out)
    except (KeyError, AttributeError, TypeError) as err:  # a tampered record
        raise RecordError(
            f"{run_dir / RECORD_NAME}: malformed ({type(err).__name__} {err})"
        ) from None
    return compare_tables(recorded, out / TABLES[kind], KEYS[kind])


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-replay RUN_DIR [--out DIR]``."""
    parser = argparse.ArgumentParser("mri-recon-replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory with provenance.json")
    parser.add_argument("--out", type=Path, default=None, help="where to re-run (RUN_DIR/replay)")
    args = parser.parse_args(argv)
    try:
        lines, ok = replay(args.run_dir, args.out)
    except (RecordError, ConfigError) as err:
        fail(err, CONFIG_EXIT)
    except ValueError as err:  # a changed input file, a DataError
        fail(err, DATA_EXIT)
    except OSError as err:  # disk full
        fail(f"{err.filename or args.out}: {err.strerror or err}", DATA_EXIT)
    for line in lines:
        print(f"replay: {line}", flush=True)
    if not ok:
        fail(f"{args.run_dir}: the replay differs from the record past the tolerance", DIFFERS_EXIT)


if __name__ == "__main__":
    main()

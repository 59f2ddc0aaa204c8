"""Read training runs' CSV logs: curves, labels and a final-metrics table.

A *run directory* is what ``mri-recon-train`` writes: Hydra's ``.hydra/`` (``config.yaml``,
``hydra.yaml``, ``overrides.yaml``) and, somewhere below it, the ``metrics.csv`` of
Lightning's ``CSVLogger`` (``<logger dir>/version_<n>/metrics.csv``). A *multirun directory*
holds one numbered job sub-directory per run. The CSV is sparse: every ``log_metrics`` call
writes one row (``epoch``, ``step`` and the keys it logged), so training-loss rows and
validation rows alternate with empty cells.

No Lightning, Hydra or OmegaConf: run *configs* (Hydra's ``.hydra/config.yaml``, whose
interpolations need OmegaConf to resolve) are read in :mod:`mri_recon.cli.run_configs`, which passes
the values that label the runs in here as a function. The plots are in
:mod:`mri_recon.viz.convergence`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

# Lightning names a metric logged with on_step and on_epoch "<key>_step" / "<key>_epoch",
# and "<key>" when logged at one of the two only; the first present is the training curve.
TRAIN_LOSS_KEYS = ("train/loss_step", "train/loss", "train/loss_epoch")
VAL_KEYS = ("val/ssim", "val/psnr", "val/nmse")
_HIGHER_IS_BETTER = {"val/ssim": True, "val/psnr": True, "val/nmse": False}
_FINAL_LOSS_FRACTION = 0.1  # final train loss = mean over the last 10% of its logged points

TABLE_COLUMNS = (
    "label",
    "steps",
    "final_val/ssim",
    "best_val/ssim",
    "final_val/psnr",
    "best_val/psnr",
    "final_val/nmse",
    "best_val/nmse",
    "final_train/loss",
    "checkpoint_val/ssim",
    "max_drop_val/ssim",
    "run_dir",
)


class MissingLogError(ValueError):
    """A run directory without a ``metrics.csv`` below it."""


@dataclass(frozen=True)
class Curve:
    """One logged metric against the global step.

    Attributes:
        step: int64 (N,), increasing global steps.
        value: float64 (N,), the metric at each step (NaN where the run diverged).
        epoch: float64 (N,), the row's epoch (NaN where the row had none).
    """

    step: np.ndarray
    value: np.ndarray
    epoch: np.ndarray

    def select(self, keep: np.ndarray) -> Curve:
        """The points where the bool (N,) ``keep`` is True."""
        return Curve(self.step[keep], self.value[keep], self.epoch[keep])


@dataclass
class RunLog:
    """A run's logged curves and the Hydra metadata that identifies it.

    Attributes:
        run_dir: the run directory.
        curves: metric key -> :class:`Curve`, training-time points only.
        post_fit: ``val/*`` of a validation logged after the last training epoch (what
            ``train()`` logs when it re-validates the best or last checkpoint), else {}.
        overrides: the run's command-line overrides (``.hydra/overrides.yaml``), or ().
        label: the name used in plots and tables (set by :func:`load_runs`).
    """

    run_dir: Path
    curves: dict[str, Curve]
    post_fit: dict[str, float] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    label: str = field(default="")

    def train_loss(self) -> Curve | None:
        """The training-loss curve under the first present name of ``TRAIN_LOSS_KEYS``."""
        return next((self.curves[k] for k in TRAIN_LOSS_KEYS if k in self.curves), None)

    def num_steps(self) -> int:
        """Optimizer steps taken: the last logged training step + 1 (0 without a loss)."""
        loss = self.train_loss()
        return int(loss.step[-1]) + 1 if loss is not None and loss.step.size else 0


def _is_run_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir()


def _natural_key(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def discover_runs(paths: Sequence[str | Path]) -> list[tuple[Path, bool]]:
    """Expand run and multirun directories into run directories.

    Args:
        paths: run directories (holding ``.hydra/``), multirun directories (holding job
            sub-directories with ``.hydra/``), or plain directories holding a ``metrics.csv``.

    Returns:
        (run_dir, explicit) pairs in the given order, multirun jobs in numeric order;
        ``explicit`` is False for jobs found inside a multirun directory.

    Raises:
        ValueError: a path that does not exist or holds no run.
    """
    found: list[tuple[Path, bool]] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise ValueError(f"{path}: not a directory (expected a run or multirun directory)")
        if _is_run_dir(path):
            found.append((path, True))
            continue
        jobs = sorted(
            (p for p in path.iterdir() if p.is_dir() and _is_run_dir(p)), key=_natural_key
        )
        if jobs:
            found.extend((job, False) for job in jobs)
        elif find_metrics_csvs(path):
            found.append((path, True))
        else:
            raise ValueError(
                f"{path}: holds no run (no .hydra/ directory, no job sub-directories with "
                f".hydra/, no metrics.csv below it)"
            )
    return found


def find_metrics_csvs(run_dir: str | Path) -> list[Path]:
    """All ``metrics.csv`` files below ``run_dir``, ordered by logger version (resumes last)."""

    def version(path: Path) -> tuple:
        match = re.fullmatch(r"version_(\d+)", path.parent.name)
        return (str(path.parent.parent), int(match.group(1)) if match else -1, str(path))

    return sorted(Path(run_dir).rglob("metrics.csv"), key=version)


def _read_log(path: Path) -> pd.DataFrame:
    """One ``metrics.csv`` in long form: a (key, step, epoch, value) row per non-empty cell
    of a metric column (``value`` NaN where the logged value was ``nan``)."""
    try:
        text = pd.read_csv(path, dtype=str, keep_default_na=False)  # "" = not logged
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path}: {' '.join(str(err).split())}") from None
    if "step" not in text:
        raise ValueError(f"{path}: no 'step' column (columns: {list(text.columns)})")
    text = text.assign(line=text.index + 2, epoch=text.get("epoch", ""))
    cells = text.melt(id_vars=["line", "step", "epoch"], var_name="key")
    cells = cells[cells["value"] != ""]
    raw = cells[["step", "epoch", "value"]]
    numbers = raw.apply(pd.to_numeric, errors="coerce")
    blank = raw.apply(lambda column: column.str.lower().isin(["", "nan"])).assign(step=False)
    bad = (numbers.isna() & ~blank).any(axis=1)
    if bad.any():
        first = cells[bad].iloc[0]
        raise ValueError(
            f"{path}: line {first.line}: not a number among step={first.step!r}, "
            f"epoch={first.epoch!r}, {first.key}={first.value!r}"
        )
    return numbers.assign(key=cells["key"], step=numbers["step"].astype(np.int64))


def _curves(cells: pd.DataFrame) -> dict[str, Curve]:
    """:class:`Curve` per key of :func:`_read_log` rows (a step logged twice: last wins)."""
    cells = cells.drop_duplicates(["key", "step"], keep="last").sort_values("step", kind="stable")
    return {
        key: Curve(
            rows["step"].to_numpy(np.int64),
            rows["value"].to_numpy(np.float64),
            rows["epoch"].to_numpy(np.float64),
        )
        for key, rows in cells.groupby("key", sort=False)
    }


def read_metrics_csv(path: str | Path) -> dict[str, Curve]:
    """Per-metric :class:`Curve` of one Lightning ``CSVLogger`` file (``step`` column required,
    ``epoch`` optional; neither is a metric): empty cells (metrics not logged in that row)
    are skipped, and a metric logged twice at one step keeps its last value.

    Raises:
        ValueError: no ``step`` column, or a cell that is not a number.
    """
    return _curves(_read_log(Path(path)))


def _split_post_fit(curves: dict[str, Curve]) -> tuple[dict[str, Curve], dict[str, float]]:
    """Separate validation rows logged after the last training epoch (a post-fit
    ``trainer.validate``) from the training-time curves."""
    loss = next((curves[k] for k in TRAIN_LOSS_KEYS if k in curves), None)
    if loss is None or not np.isfinite(loss.epoch).any():
        return curves, {}
    last_epoch = np.nanmax(loss.epoch)
    kept, post_fit = dict(curves), {}
    for key, curve in curves.items():
        after = curve.epoch > last_epoch  # NaN epochs compare False: kept
        if key.startswith("val/") and after.any():
            post_fit[key] = float(curve.value[after][-1])
            kept[key] = curve.select(~after)
    return {k: c for k, c in kept.items() if c.step.size}, post_fit


def read_overrides(run_dir: str | Path) -> tuple[str, ...]:
    """The run's overrides from ``.hydra/overrides.yaml`` (a YAML list of strings), or ()."""
    path = Path(run_dir) / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return ()
    try:
        overrides = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if overrides is None:
        return ()
    if not isinstance(overrides, list):
        raise ValueError(f"{path}: expected a YAML list of override strings")
    return tuple(str(o) for o in overrides)


ConfigValues = Callable[[Path], dict[str, object]]
"""A run directory -> ``{key: value}`` of the config keys that label it (in order), e.g.
:func:`mri_recon.cli.run_configs.config_values_reader` of ``["optim", "optim.lr"]``."""


def _override_key(override: str) -> str:
    """The key an override sets: ``optim`` of ``optim=sgd``, ``a.b`` of ``+a.b=1`` or ``~a.b``."""
    return override.partition("=")[0].lstrip("+~")


def label_runs(runs: Sequence[RunLog], config_values: ConfigValues | None = None) -> list[str]:
    """Name each run for plots and tables.

    With ``config_values`` (a run directory -> ``{key: value}``, e.g. the values of
    ``optim optim.lr`` in each run's config) the label is ``key=value ...``. Otherwise it
    lists the overrides that differ between the runs (e.g. ``optim=sgd optim.lr=0.01``); a
    lone run lists all its overrides, and a run without overrides is named by its directory.
    Duplicate labels get their directory name appended.
    """
    if config_values is not None:
        labels = [
            " ".join(f"{k}={v}" for k, v in config_values(run.run_dir).items()) for run in runs
        ]
    else:
        parsed = [{_override_key(o): o for o in run.overrides} for run in runs]  # key -> text
        keys = list(dict.fromkeys(k for p in parsed for k in p if not k.startswith("hydra.")))
        varying = [k for k in keys if len({p.get(k) for p in parsed}) > 1] or keys
        labels = [
            " ".join(p[k] for k in varying if k in p) or run.run_dir.name
            for run, p in zip(runs, parsed, strict=True)
        ]
    counts = {lab: labels.count(lab) for lab in labels}
    return [
        f"{lab} [{run.run_dir.name}]" if counts[lab] > 1 else lab
        for lab, run in zip(labels, runs, strict=True)
    ]


def load_run(run_dir: str | Path) -> RunLog:
    """Read one run directory's CSV logs (all versions, merged) and overrides.

    Raises:
        MissingLogError: the run has no ``metrics.csv`` below it.
        ValueError: an unreadable log or overrides file.
    """
    run_dir = Path(run_dir)
    csvs = find_metrics_csvs(run_dir)
    if not csvs:
        raise MissingLogError(f"{run_dir}: no metrics.csv below it (was a CSVLogger configured?)")
    # a resumed run: later logs win per step
    curves, post_fit = _split_post_fit(_curves(pd.concat([_read_log(p) for p in csvs])))
    return RunLog(run_dir, curves, post_fit, read_overrides(run_dir))


def load_runs(
    paths: Sequence[str | Path], config_values: ConfigValues | None = None
) -> tuple[list[RunLog], list[str]]:
    """Load and label every run under ``paths`` (see :func:`discover_runs`; labels as in
    :func:`label_runs`).

    A multirun job without a ``metrics.csv`` (e.g. one that crashed at start) is skipped and
    reported; an explicitly named run without one is an error.

    Returns:
        (runs, skipped): the labelled runs and one message per skipped job.

    Raises:
        ValueError: bad paths, unreadable logs, or no run left to compare.
    """
    runs, skipped = [], []
    for run_dir, explicit in discover_runs(paths):
        try:
            runs.append(load_run(run_dir))
        except MissingLogError as err:
            if explicit:
                raise
            skipped.append(str(err))
    if not runs:
        raise ValueError(f"no run with a metrics.csv under {[str(p) for p in paths]}")
    for run, label in zip(runs, label_runs(runs, config_values), strict=True):
        run.label = label
    return runs, skipped


def final_metrics(run: RunLog) -> dict[str, object]:
    """One table row: steps, final and best validation metrics, final train loss.

    ``steps`` is :meth:`RunLog.num_steps`; final is the last validation during training and
    best the maximum for SSIM and PSNR, the minimum for NMSE (NaN ignored); the final train
    loss is the mean of the last 10% (at least one) of the training-loss points;
    ``checkpoint_val/ssim`` is the post-fit validation of the checkpoint ``train()`` keeps
    (``validate_ckpt``, best by default); ``max_drop_val/ssim`` is the largest fall of
    validation SSIM from one validation to the next (0 for a curve that never falls; NaN
    points skipped), a measure of how unstably the run trains. Metrics the run never logged
    are NaN.
    """
    row: dict[str, object] = {"label": run.label, "run_dir": str(run.run_dir)}
    row["steps"] = run.num_steps()
    for key in VAL_KEYS:
        curve = run.curves.get(key)
        values = curve.value if curve is not None else np.array([math.nan])
        finite = values[np.isfinite(values)]
        best = (
            (finite.max() if _HIGHER_IS_BETTER[key] else finite.min()) if finite.size else math.nan
        )
        row[f"final_{key}"], row[f"best_{key}"] = float(values[-1]), float(best)
    loss = run.train_loss()
    if loss is None:
        row["final_train/loss"] = math.nan
    else:
        tail = max(1, int(math.ceil(_FINAL_LOSS_FRACTION * loss.value.size)))
        row["final_train/loss"] = float(np.mean(loss.value[-tail:]))
    row["checkpoint_val/ssim"] = run.post_fit.get("val/ssim", math.nan)
    row["max_drop_val/ssim"] = max_drop(run.curves.get("val/ssim"))
    return row


def max_drop(curve: Curve | None) -> float:
    """The largest decrease between consecutive finite points of ``curve`` (0 if it never
    decreases), NaN with fewer than two finite points."""
    if curve is None:
        return math.nan
    values = curve.value[np.isfinite(curve.value)]
    if values.size < 2:
        return math.nan
    return float(max(0.0, np.max(values[:-1] - values[1:])))


def _format_cell(column: str, value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.2f}" if "psnr" in column else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def metrics_table_markdown(rows: Sequence[dict[str, object]]) -> str:
    """A GitHub-Markdown table of :func:`final_metrics` rows (without ``run_dir``)."""
    columns = [c for c in TABLE_COLUMNS if c != "run_dir"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_format_cell(c, r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def latest_multirun(parent: str | Path) -> Path | None:
    """The newest multirun directory directly under ``parent`` (names are timestamps, so the
    last in sorted order), counting only those with at least one job; None if there is none.
    """
    parent = Path(parent)
    if not parent.is_dir():
        return None
    candidates = sorted(
        p
        for p in parent.iterdir()
        if p.is_dir() and any(_is_run_dir(job) for job in p.iterdir() if job.is_dir())
    )
    return candidates[-1] if candidates else None

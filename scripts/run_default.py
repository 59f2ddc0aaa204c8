"""`make run`: the main job on the embedded synthetic dataset, end to end.

1. build the single-coil synthetic dataset if it is missing (data root: $MRI_RECON_DATA,
   else data/synthetic/ in the checkout);
2. train the GroupNorm U-Net with Adam for a short CPU budget (`experiment=default_cpu`);
3. evaluate zero-filled, TV and the trained U-Net on the validation split at 4x in one
   `mri-recon-eval` run, which prints the summary table and writes figures.

Everything lands in outputs/make_run/<timestamp>/{train,eval}.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(cmd: list[str]) -> None:
    print("+ " + " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"make run: step failed (exit {result.returncode}): {' '.join(cmd)}")


def _mean_ssim(per_volume_csv: Path) -> dict[str, float]:
    from mri_recon.fileio import read_csv

    sums: dict[str, list[float]] = {}
    for row in read_csv(per_volume_csv, {"ssim": float}):
        sums.setdefault(row["method"], []).append(row["ssim"])
    return {m: sum(v) / len(v) for m, v in sums.items()}


def main() -> None:
    from mri_recon.data.synthetic import ensure_dataset

    start = time.time()
    data_root = Path(os.environ.get("MRI_RECON_DATA", ROOT / "data" / "synthetic"))
    ensure_dataset(data_root, challenge="singlecoil", preset="default", seed=0)
    print(f"[make run] data ready in {time.time() - start:.0f} s: {data_root}", flush=True)

    out = ROOT / "outputs" / "make_run" / time.strftime("%Y-%m-%d_%H-%M-%S")
    train_dir, eval_dir = out / "train", out / "eval"
    t0 = time.time()
    _run(
        [
            str(BIN / "mri-recon-train"),
            "experiment=default_cpu",
            f"data.root={data_root}",
            f"hydra.run.dir={train_dir}",
        ]
    )
    t_train = time.time() - t0
    ckpt = train_dir / "checkpoints" / "best.ckpt"

    t0 = time.time()
    _run(
        [
            str(BIN / "mri-recon-eval"),
            f"data.root={data_root}",
            "data.challenge=singlecoil",
            "data.split=val",
            "mask=random_4x",
            "methods=[zero_filled,tv,unet]",
            f"ckpt_path={ckpt}",
            f"hydra.run.dir={eval_dir}",
        ]
    )
    t_eval = time.time() - t0

    ssim = _mean_ssim(eval_dir / "per_volume.csv")
    order_ok = ssim["unet"] > ssim["tv"] > ssim["zero_filled"]
    print(
        f"\n[make run] wall time {time.time() - start:.0f} s "
        f"(train {t_train:.0f} s, eval {t_eval:.0f} s); outputs in {out}\n"
        f"[make run] mean SSIM: U-Net {ssim['unet']:.4f}, TV {ssim['tv']:.4f}, "
        f"zero-filled {ssim['zero_filled']:.4f} -> "
        + ("U-Net > TV > zero-filled" if order_ok else "ORDER NOT AS EXPECTED"),
        flush=True,
    )


if __name__ == "__main__":
    main()

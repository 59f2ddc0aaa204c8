"""``mri-recon-import``: fastMRI's released weights as a checkpoint of this project.

    mri-recon-import fastmri-unet knee_sc_leaderboard_state_dict.pt unet_knee_sc.ckpt \\
        --challenge singlecoil
    mri-recon-import fastmri-varnet knee_leaderboard_state_dict.pt varnet_knee.ckpt

The checkpoint runs wherever a trained one does (``mri-recon-eval``, ``mri-recon-predict``,
``mri-recon-robustness``: ``+checkpoints.NAME=OUT.ckpt 'methods=[...,NAME]'``); see
:mod:`mri_recon.lit.fastmri_weights` for what is converted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mri_recon.cli.errors import guarded
from mri_recon.physics.coils import CHALLENGES

KINDS = ("fastmri-unet", "fastmri-varnet")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mri-recon-import", description="Convert fastMRI's released state dicts."
    )
    parser.add_argument("kind", choices=KINDS, help="the network the state dict belongs to")
    parser.add_argument("state_dict", help="fastMRI's .pt file")
    parser.add_argument("out", help="the checkpoint to write (.ckpt)")
    parser.add_argument(
        "--challenge",
        choices=CHALLENGES,
        default="multicoil",
        help="the data it reconstructs (knee_sc U-Net: singlecoil; default multicoil)",
    )
    return parser.parse_args(argv)


@guarded
def run(args: argparse.Namespace) -> None:
    from mri_recon.lit.fastmri_weights import convert  # lazily: torch and the models

    out = convert(args.kind, args.state_dict, args.out, args.challenge)
    print(f"{args.kind} ({args.challenge}) -> {out}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-import``."""
    run(parse_args(argv))


if __name__ == "__main__":
    main()

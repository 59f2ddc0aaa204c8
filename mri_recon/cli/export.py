"""``mri-recon-export``: a checkpoint as a TorchScript or ONNX file for deployment.

    mri-recon-export RUN/checkpoints/best.ckpt --format onnx --out unet.onnx
    mri-recon-export varnet.ckpt --format torchscript --out varnet.pt --kspace-shape 15 640 368

U-Nets export to both formats with dynamic height and width (the normalisation inside);
VarNets to TorchScript, traced at ``--kspace-shape`` (coils, H, W) and ``--crop-size``; see
:mod:`mri_recon.lit.export` for the inputs and outputs each file documents.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mri_recon.cli.errors import guarded

FORMATS = ("torchscript", "onnx")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mri-recon-export", description=__doc__.split("\n")[0])
    parser.add_argument("ckpt", help="a mri_recon checkpoint (trained or imported)")
    parser.add_argument("--format", choices=FORMATS, required=True, dest="fmt")
    parser.add_argument("--out", required=True, help="the file to write")
    parser.add_argument(
        "--kspace-shape", type=int, nargs=3, default=(1, 640, 368), metavar=("C", "H", "W"),
        help="VarNet only: the k-space shape it is traced at (default 1 640 368)",
    )  # fmt: skip
    parser.add_argument(
        "--crop-size", type=int, nargs=2, default=(320, 320), metavar=("h", "w"),
        help="VarNet only: the output size (default 320 320)",
    )  # fmt: skip
    return parser.parse_args(argv)


@guarded
def run(args: argparse.Namespace) -> None:
    from mri_recon.lit.export import export_checkpoint  # lazily: torch and onnx

    try:
        out = export_checkpoint(
            args.ckpt, args.fmt, args.out, tuple(args.kspace_shape), tuple(args.crop_size)
        )
    except FileNotFoundError as err:
        raise ValueError(str(err)) from None
    print(f"{args.ckpt} -> {out} ({args.fmt})", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-export``."""
    run(parse_args(argv))


if __name__ == "__main__":
    main()

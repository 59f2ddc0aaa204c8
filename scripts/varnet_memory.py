"""Peak memory of one VarNet (or MoDL) training step on one multi-coil slice, with and without
activation checkpointing per cascade (``model.checkpoint_cascades``; MoDL: per unroll,
``model.checkpoint_unrolls``).

Each setting runs in a fresh subprocess and reports its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) minus the size after building the model and
the input, i.e. what the forward and backward pass add, and the step's seconds; on a GPU
(``--device cuda``) ``torch.cuda.max_memory_allocated`` instead.

    python scripts/varnet_memory.py                    # fastMRI's size, 15 coils 640 x 368
    python scripts/varnet_memory.py --coils 8 --width 372 --cascades 12 --chans 18
    python scripts/varnet_memory.py --model modl       # the paper's MoDL: 10 unrolls, 64 chans

MoDL (``--cascades`` = its unrolls, ``--norm`` its denoiser's, default batch; the ACS ratio
maps of the input, as in training; ``--cg-iterations``, default 10) keeps the CG's
activations out of the graph by its implicit gradient (``--dc-gradient unrolled``: through
the CG iterations).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from mri_recon.contract import LossTerms
from mri_recon.models.losses import SSIMLoss
from mri_recon.models.modl import MoDL
from mri_recon.models.varnet import VarNet

# --cascades, --chans, --norm when not given: fastMRI's VarNet, the MoDL paper's sizes
DEFAULTS = {"varnet": (12, 18, "instance"), "modl": (10, 64, "batch")}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def step(args: argparse.Namespace, checkpointed: bool) -> dict:
    """One forward/backward pass of 1 - SSIM on one slice: peak memory and seconds."""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.model == "modl":
        net = MoDL(
            num_unrolls=args.cascades, chans=args.chans, norm=args.norm,
            cg_iterations=args.cg_iterations, dc_gradient=args.dc_gradient,
            checkpoint_unrolls=checkpointed,
        ).to(device).train()  # fmt: skip
    else:
        net = VarNet(
            num_cascades=args.cascades, chans=args.chans, pools=4, sens_chans=8, sens_pools=4,
            norm=args.norm, checkpoint_cascades=checkpointed,
        ).to(device).train()  # fmt: skip
    kspace = torch.randn((1, args.coils, args.height, args.width), dtype=torch.complex64)
    mask = torch.zeros((1, args.width), dtype=torch.bool)
    mask[:, :: args.acceleration] = True
    c = args.width // 2
    mask[:, c - 13 : c + 13] = True
    kspace, mask = (kspace * mask[:, None, None]).to(device), mask.to(device)
    crop = (min(320, args.height), min(320, args.width))
    target = torch.rand((1, *crop), device=device)
    base = _rss_mib() if device.type == "cpu" else 0.0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
        out = net(kspace, mask, None, crop)
    SSIMLoss()(LossTerms(out.float(), target, torch.ones(1, device=device), None)).backward()
    seconds = time.perf_counter() - start
    peak = _rss_mib() - base if device.type == "cpu" else torch.cuda.max_memory_allocated() / 2**20
    key = "checkpoint_unrolls" if args.model == "modl" else "checkpoint_cascades"
    return {key: checkpointed, "peak_mib": round(peak), "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(DEFAULTS), default="varnet")
    parser.add_argument("--cascades", type=int, default=None, help="VarNet 12, MoDL 10")
    parser.add_argument("--chans", type=int, default=None, help="VarNet 18, MoDL 64")
    parser.add_argument("--coils", type=int, default=15)
    parser.add_argument("--height", type=int, default=640)
    parser.add_argument("--width", type=int, default=368)
    parser.add_argument("--acceleration", type=int, default=4)
    parser.add_argument("--norm", default=None, help="VarNet instance, MoDL batch")
    parser.add_argument("--cg-iterations", type=int, default=10, help="MoDL only")
    parser.add_argument("--dc-gradient", default="implicit", help="MoDL only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    parser.add_argument("--one", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, default in zip(("cascades", "chans", "norm"), DEFAULTS[args.model], strict=True):
        setattr(args, name, default if getattr(args, name) is None else getattr(args, name))
    if args.one:  # the child: one setting, one JSON line
        print(json.dumps({**vars(args), **step(args, args.one == "on")}))
        return
    forwarded = list(argv if argv is not None else sys.argv[1:])
    for setting in ("off", "on"):
        cmd = [sys.executable, __file__, *forwarded, "--one", setting]
        print(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip())


if __name__ == "__main__":
    main()

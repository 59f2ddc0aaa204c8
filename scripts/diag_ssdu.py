"""Why SSDU learns slowly here: how much signal its loss set carries, and how well a network
trained *with* targets predicts it (docs/RESULTS.md, the SSDU section).

For one slice of a multi-coil training file, under a random 4x column mask (8% centre band),
prints the SSDU loss (rho 0.4, Gaussian selection) of: zero on the loss set (2 by
construction), a trained VarNet's k-space estimate from the network's set, an untrained
VarNet's; the same for a held-out set of whole outer columns (what a supervised network is
trained to fill); and the mean power on the loss set against the noise floor (the 16
outermost columns of the fully sampled k-space).

    python scripts/diag_ssdu.py --ckpt RUN/checkpoints/last.ckpt --data /work/data/synthetic
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import torch

from mri_recon.contract import LossTerms, TrainingBatch
from mri_recon.lit.checkpoint import CHECKPOINT_KEY, build_from_spec, read_checkpoint
from mri_recon.models.losses import SSDULoss
from mri_recon.models.ssdu import SSDU


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", type=Path, required=True, help="a multi-coil VarNet checkpoint")
    ap.add_argument("--data", type=Path, required=True, help="root with multicoil_train/")
    ap.add_argument("--slice", type=int, default=1)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ckpt = read_checkpoint(args.ckpt)
    trained = build_from_spec(ckpt[CHECKPOINT_KEY]["net_spec"])
    trained.load_state_dict({k.split(".", 1)[1]: v for k, v in ckpt["state_dict"].items()})
    fresh = build_from_spec(ckpt[CHECKPOINT_KEY]["net_spec"])
    path = sorted((args.data / "multicoil_train").glob("*.h5"))[0]
    with h5py.File(path, "r") as hf:
        kspace = torch.from_numpy(hf["kspace"][args.slice]).to(torch.complex64)[None]
        target = torch.from_numpy(hf["reconstruction_rss"][args.slice])[None]
    width = kspace.shape[-1]
    g = torch.Generator().manual_seed(0)
    columns = torch.zeros(1, width, dtype=torch.bool)
    centre = round(0.08 * width)
    c0 = (width - centre) // 2
    columns[0, c0 : c0 + centre] = True
    columns[0, torch.randperm(width, generator=g)[: width // 4 - centre]] = True
    masked = kspace * columns[:, None, None, :]
    crop = tuple(target.shape[-2:])
    loss = SSDULoss()
    batch = TrainingBatch(
        columns, target, target.amax()[None], masked, sample_seed=torch.tensor([1])
    )
    measured = trained.measurement_grid(masked, crop)
    outer = torch.tensor(
        [c for c in torch.nonzero(columns[0]).flatten().tolist() if not c0 <= c < c0 + centre]
    )
    held_cols = outer[torch.randperm(len(outer), generator=g)[: int(0.4 * len(outer))]]
    dc_cols = columns.clone()
    dc_cols[0, held_cols] = False
    held = torch.zeros(1, 1, measured.shape[-2], width, dtype=torch.bool)
    held[..., held_cols] = True
    print(f"{path.name} slice {args.slice}")
    for name, net in (("trained", trained), ("untrained", fresh)):
        with torch.no_grad():
            terms = SSDU(net, rho=0.4).eval().loss_terms(batch)
            estimate = net.eval().kspace_estimate(measured * dc_cols[:, None, None, :], dc_cols)
        zero = LossTerms(
            terms.pred,
            terms.ref,
            terms.data_range,
            None,
            torch.zeros_like(terms.pred_kspace),
            terms.ref_kspace,
            terms.kspace_mask,
        )
        cols = LossTerms(target, target, target.amax()[None], None, estimate, measured, held)
        print(
            f"{name:9s}: SSDU loss {float(loss(terms)):.3f} (zero: {float(loss(zero)):.3f}); whole outer columns held out: {float(loss(cols)):.3f}"
        )
    full = trained.measurement_grid(kspace, crop)
    noise = torch.cat([full[..., :8], full[..., -8:]], -1).abs().pow(2).mean()
    on_set = terms.ref_kspace[terms.kspace_mask.expand_as(terms.ref_kspace)].abs().pow(2)
    print(
        f"loss-set mean power / noise power: {float(on_set.mean() / noise):.2f} (median {float((on_set / noise).median()):.2f})"
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the official CA-only orientation features of the stress structures, edge by edge.

Runs the official ProteinMPNN featurization (`parse_PDB(ca_only=True)`, `tied_featurize`,
`CA_ProteinFeatures._dist` and `_orientations_coarse`) on every `stress/*.pdb` and stores, per
structure, the neighbour indices and the 7 orientation features of each edge (direction in the
node's frame, then the quaternion of the relative rotation). `tests/stress_parity.rs` compares
mpnn's features with them edge by edge and counts quaternion disagreements.

    python scripts/official_ca_orientations.py OFFICIAL_DIR STRESS_DIR OUT.npz [--noisy-only]

Needs PyTorch (CPU) and numpy. The committed `tests/data/ca_orientations.npz` was written with
PyTorch 2.15 (AVX-512 kernels) from ../shared/reference/official and ../shared/parity/stress.
"""
import os
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")  # torch.cross without dim (the official code's own call)


def main():
    official, stress, out = sys.argv[1:4]
    noisy_only = "--noisy-only" in sys.argv
    sys.path.insert(0, official)
    from protein_mpnn_utils import CA_ProteinFeatures, parse_PDB, tied_featurize

    torch.set_num_threads(1)
    arrays = {}
    names = sorted(f[:-4] for f in os.listdir(stress) if f.endswith(".pdb"))
    for name in names:
        if noisy_only and not name.endswith("_noisy"):
            continue
        pdl = parse_PDB(os.path.join(stress, name + ".pdb"), ca_only=True)
        chains = sorted(k[len("seq_chain_"):] for k in pdl[0] if k.startswith("seq_chain_"))
        r = tied_featurize(pdl, "cpu", {pdl[0]["name"]: (chains, [])}, ca_only=True)
        X, mask = r[0], r[2]
        feats = CA_ProteinFeatures(128, 128, top_k=48)
        with torch.no_grad():
            _, e_idx, _ = feats._dist(X, mask)
            _, o = feats._orientations_coarse(X, e_idx)
        arrays[name + "/E_idx"] = e_idx[0].numpy().astype(np.int64)
        arrays[name + "/O"] = o[0].numpy().astype(np.float32)
        arrays[name + "/mask"] = mask[0].numpy().astype(np.float32)
        print(name, X.shape[1])
    np.savez_compressed(out, **arrays)


if __name__ == "__main__":
    main()

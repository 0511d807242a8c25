#!/usr/bin/env python3
"""Writes torch's CPU `topk(largest=False)` choices on tie-heavy rows, for src/model/topk.rs.

Each case is a row of `n` float32 values made by a small integer hash (`value()` below, mirrored
in the Rust test), so the file holds only the parameters and torch's chosen indices:

    python scripts/torch_topk_cases.py OUT.json

Needs PyTorch (CPU). The committed `tests/data/torch_topk.json` was written with PyTorch 2.15.
"""
import json
import sys

import torch

MASK64 = (1 << 64) - 1


def splitmix(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def row(n, distinct, masked, seed):
    """`distinct` > 0: values in 0..distinct; else distances in 0..1000 with every `masked`-th
    hash sending the column to the row maximum (the k-NN's masked residues)."""
    h = [splitmix(seed * 1_000_003 + j) for j in range(n)]
    if distinct > 0:
        return [float(x % distinct) for x in h]
    v = [float(x % 100_000) / 100.0 for x in h]
    top = max(v)
    return [top if (x >> 40) % masked == 0 else y for x, y in zip(h, v)]


def main():
    cases = []
    seed = 0
    for n in [1, 2, 3, 5, 6, 10, 13, 17, 18, 21, 33, 46, 48, 49, 64, 100, 132, 300, 511, 512, 1023, 1024, 2000, 3072]:
        for k in sorted({min(k, n) for k in [1, 8, 16, 30, 48]}):
            for distinct, masked in [(1, 0), (3, 0), (40, 0), (0, 2), (0, 5)]:
                seed += 1
                v = torch.tensor(row(n, distinct, masked, seed), dtype=torch.float32)
                _, idx = torch.topk(v[None], k, dim=-1, largest=False)
                cases.append({"n": n, "k": k, "distinct": distinct, "masked": masked, "seed": seed,
                              "idx": idx[0].tolist()})
    with open(sys.argv[1], "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))


if __name__ == "__main__":
    main()

"""Running the `mpnn` command line and reading what it writes."""

import os
import subprocess

import numpy as np


def run_cli(mpnn_bin, *args):
    """Runs `mpnn ARGS` offline; fails the test with its output when it fails."""
    env = dict(os.environ, MPNN_OFFLINE="1")
    env.pop("MPNN_WEIGHTS", None)
    p = subprocess.run([str(mpnn_bin), *map(str, args)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, f"mpnn {' '.join(map(str, args))} failed:\n{p.stdout}\n{p.stderr}"
    return p


def read_fasta(path):
    """(header, sequence) records of a FASTA file."""
    records = []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            records.append([line[1:], ""])
        elif records:
            records[-1][1] += line.strip()
    return [tuple(r) for r in records]


def header_fields(header):
    """`T=0.1, sample=1, score=0.4323` → {"T": "0.1", "sample": "1", "score": "0.4323"}."""
    out = {}
    for part in header.split(", "):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}

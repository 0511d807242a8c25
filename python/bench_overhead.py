"""Calling overhead of mpnn_rs against the `mpnn` command line.

Designs 8 sequences for 5L33 (full_k48.pt, T = 0.1, seed 37) from Python with the model loaded
once, and with the command line, whose per-structure time is measured without its start-up
and model load: `mpnn design` on N copies of the structure minus `mpnn design` on 1 copy,
divided by N - 1.

    python python/bench_overhead.py [--parity DIR] [--bin target/release/mpnn] [--copies 9] [--repeats 5]

Prints one line per measurement and a summary; see BENCHMARKS.md ("Calling overhead").
"""

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
# This folder holds the package's sources (python/mpnn_rs without the compiled module): import
# the installed package instead.
sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != HERE]
import mpnn_rs  # noqa: E402


def cli_seconds(binary, weights, inputs, out):
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, MPNN_OFFLINE="1")
    args = [str(binary), "design", *map(str, inputs), "--weights", str(weights), "--out", str(out)]
    args += ["--num_seq_per_target", "8", "--sampling_temp", "0.1", "--seed", "37", "--suppress_print", "1"]
    start = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parity", default=os.environ.get("MPNN_PARITY", str(REPO.parent / "shared" / "parity")))
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "mpnn"))
    ap.add_argument("--copies", type=int, default=9, help="structures in the long command-line run")
    ap.add_argument("--repeats", type=int, default=5, help="runs of each measurement (the median is kept)")
    a = ap.parse_args()
    parity = pathlib.Path(a.parity)
    weights = parity / "weights" / "full_k48.pt"
    pdb = parity / "structures" / "5L33.pdb"

    # Python: the model loaded once, the structure read once, then design calls.
    model = mpnn_rs.Model.load(weights)
    s = mpnn_rs.Structure.from_file(pdb)
    model.design(s, num_seqs=8, temperature=0.1, seed=37)  # warm-up

    def python_seconds():
        start = time.perf_counter()
        model.design(s, num_seqs=8, temperature=0.1, seed=37)
        return time.perf_counter() - start

    # Command line: N copies (distinct names, so N structures) minus one copy. Python and the
    # command line are measured in turn, round after round, so both see the same machine load.
    py_times, one, many, ratios = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        copies = []
        for i in range(a.copies):
            p = tmp / f"5L33_{i}.pdb"
            shutil.copyfile(pdb, p)
            copies.append(p)
        cli_seconds(a.bin, weights, copies[:1], tmp / "warm")  # warm-up (page cache)
        for _ in range(a.repeats):
            round_py = [python_seconds() for _ in range(a.copies - 1)]
            t1 = cli_seconds(a.bin, weights, copies[:1], tmp / "one")
            tn = cli_seconds(a.bin, weights, copies, tmp / "many")
            py_times += round_py
            one.append(t1)
            many.append(tn)
            ratios.append(sum(round_py) / (tn - t1))
    py = statistics.median(py_times)
    t1, tn = statistics.median(one), statistics.median(many)
    cli = (tn - t1) / (a.copies - 1)
    print(f"python: model.design(5L33, num_seqs=8): median {py * 1e3:.1f} ms over {len(py_times)} calls")
    print(f"cli: mpnn design x1: median {t1 * 1e3:.1f} ms; x{a.copies}: median {tn * 1e3:.1f} ms ({a.repeats} runs each)")
    print(f"cli: per structure (x{a.copies} - x1) / {a.copies - 1}: {cli * 1e3:.1f} ms")
    print(f"overhead of the Python call (median of {a.repeats} rounds): {(statistics.median(ratios) - 1) * 100:+.1f} %")
    print(f"  rounds: {' '.join(f'{(r - 1) * 100:+.1f}%' for r in ratios)}")


if __name__ == "__main__":
    main()

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
import resource
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


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cli_seconds(binary, weights, inputs, out):
    """Wall and CPU seconds of one `mpnn design` run."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, MPNN_OFFLINE="1")
    args = [str(binary), "design", *map(str, inputs), "--weights", str(weights), "--out", str(out)]
    args += ["--num_seq_per_target", "8", "--sampling_temp", "0.1", "--seed", "37", "--suppress_print", "1"]
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, children_cpu() - cpu


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
        """Wall and CPU (all threads of this process) seconds of one design call."""
        start, cpu = time.perf_counter(), time.process_time()
        model.design(s, num_seqs=8, temperature=0.1, seed=37)
        return time.perf_counter() - start, time.process_time() - cpu

    # Command line: N copies (distinct names, so N structures) minus one copy. Python and the
    # command line are measured in turn, round after round, so both see the same machine load.
    py_times, one, many = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        copies = []
        for i in range(a.copies):
            p = tmp / f"5L33_{i}.pdb"
            shutil.copyfile(pdb, p)
            copies.append(p)
        cli_seconds(a.bin, weights, copies[:1], tmp / "warm")  # warm-up (page cache)
        for _ in range(a.repeats):
            py_times.append([python_seconds() for _ in range(a.copies - 1)])
            one.append(cli_seconds(a.bin, weights, copies[:1], tmp / "one"))
            many.append(cli_seconds(a.bin, weights, copies, tmp / "many"))
    n = a.copies - 1
    for k, what in ((0, "wall"), (1, "CPU")):
        py = statistics.median(t[k] for r in py_times for t in r)
        t1, tn = statistics.median(t[k] for t in one), statistics.median(t[k] for t in many)
        cli = (tn - t1) / n
        ratios = [sum(t[k] for t in r) / (m[k] - o[k]) for r, o, m in zip(py_times, one, many)]
        print(f"{what} time, medians over {a.repeats} rounds:")
        print(f"  python: model.design(5L33, num_seqs=8): {py * 1e3:.1f} ms per call ({n} calls a round)")
        print(f"  cli: mpnn design on 1 copy: {t1 * 1e3:.1f} ms; on {a.copies} copies: {tn * 1e3:.1f} ms")
        print(f"  cli: per structure, ({a.copies} copies - 1 copy) / {n}: {cli * 1e3:.1f} ms")
        print(f"  python / cli - 1, median of the rounds: {(statistics.median(ratios) - 1) * 100:+.1f} %")
        print(f"    rounds: {' '.join(f'{(r - 1) * 100:+.1f}%' for r in ratios)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The GPU check of issue 11 for a lent device machine (the `device` tool; see
# ../.library/device/README.md): what to gather here, and the one command to run there.
#
#   scripts/gpu-lease.sh prepare   # here: build, gather everything into .lease/ (git-ignored)
#   scripts/gpu-lease.sh run       # there (or here, as a dry run): checks, then gpu-bench.sh
#   scripts/gpu-lease.sh check     # the correctness checks alone
#
# Why a separate step: the device machine has PyTorch and a GPU but no Rust toolchain, no
# ../shared beside the repo and possibly no Vulkan loader, and only the working tree plus the
# carried paths (64 MiB in all) travel. `prepare` puts into .lease/: the stripped release binary
# (~14 MiB), the full_k48 checkpoint and three structures from ../shared/parity, the official
# ProteinMPNN code, and the Vulkan loader packages (Debian's libvulkan1 and the GL/EGL libraries
# the NVIDIA ICD needs, unpacked over / there). Then, with the device tool, in one call:
#
#   run(command="bash scripts/gpu-lease.sh run", carry=[".lease"], timeout_s=540)
#
# `run` writes lease.log and mpnn-gpu.json to $OUT (its outputs stay in /tmp/gpu-lease-work) and
# prints:
#   1. the GPU's name, driver and the adapter mpnn chose (`device: GPU NVIDIA H100 ...`);
#   2. correctness on the real GPU: mpnn's GPU against its CPU (float32) on 5L33, 4GYT and 6EHB
#      (960 residues): unconditional probabilities and scores, conditional probabilities (5L33,
#      4GYT), the official script's unconditional probabilities (PyTorch on the same GPU) against
#      mpnn's GPU ones, and `mpnn design` FASTA files GPU vs CPU with the same seed
#      (5L33, 4GYT). Each line ends `ok` (max |Δ| ≤ 1e-4, or identical FASTA) or `FAIL`;
#      expected: every line `ok` (lavapipe gives ≤ 2e-5 and identical FASTA);
#   3. scripts/gpu-bench.sh: official model.sample() and mpnn's GPU sampler side by side (goals:
#      ≥ 4,000 seq/s for 4GYT at batch 512, ≥ 20× the official default job), see its header.
# Dry run here (CPU PyTorch in a venv, lavapipe, small shapes, ~3 min on 2 cores):
#   MPNN_ALLOW_SOFTWARE_GPU=1 GPU_BENCH_QUICK=1 PYTHON=venv/bin/python scripts/gpu-lease.sh run
set -uo pipefail
cd "$(dirname "$0")/.."
lease=.lease

prepare() {
    set -e
    local shared=${MPNN_SHARED:-../shared}
    cargo build --release
    rm -rf "$lease"
    mkdir -p "$lease/parity/weights" "$lease/parity/structures" "$lease/gl"
    strip -o "$lease/mpnn" target/release/mpnn
    cp "$shared/parity/weights/full_k48.pt" "$lease/parity/weights/"
    for s in 5L33 4GYT 6EHB; do cp "$shared/parity/structures/$s.pdb" "$lease/parity/structures/"; done
    cp -r "$shared/reference/official" "$lease/official"
    # The loader packages for amd64 (the device machine is x86-64), as the device README says.
    local lists=/tmp/lease-apt-amd64
    mkdir -p "$lists/partial"
    local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
    apt-get "${o[@]}" update -qq
    (cd "$lease/gl" && apt-get "${o[@]}" download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    local tree carried
    tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
    carried=$(du -sb "$lease" | cut -f1)
    echo "prepared $lease: $((carried / 1048576)) MiB carried + $((tree / 1048576)) MiB tracked (limit 64 MiB)"
    echo 'now: run(command="bash scripts/gpu-lease.sh run", carry=[".lease"], timeout_s=540)'
}

# The Vulkan loader and the NVIDIA ICD, where the machine lacks them.
vulkan_setup() {
    if ! ldconfig -p | grep -q 'libvulkan\.so\.1' && ls "$lease"/gl/*.deb >/dev/null 2>&1; then
        for f in "$lease"/gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
        echo "vulkan: loader unpacked from $lease/gl"
    fi
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -f "$icd" ] && ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
        export VK_DRIVER_FILES=$icd
        export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
        echo "vulkan: VK_DRIVER_FILES=$icd"
    fi
    export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
}

# compare KIND A B: the largest |Δ| of the float arrays in two .npz trees (the masked rows of
# `log_p`), `ok` at ≤ 1e-4.
compare() {
    "$python" - "$@" <<'PY'
import glob, os, sys
import numpy as np
label, a_dir, b_dir = sys.argv[1:4]
worst, n = 0.0, 0
for a_path in sorted(glob.glob(f"{a_dir}/**/*.npz", recursive=True)):
    b_path = os.path.join(b_dir, os.path.relpath(a_path, a_dir))
    if not os.path.exists(b_path):
        print(f"{label}: {b_path} missing FAIL"); sys.exit(0)
    a, b = np.load(a_path), np.load(b_path)
    for k in a.files:
        if a[k].dtype.kind != "f" or k not in b.files:
            continue
        x, y = a[k], b[k]
        if x.shape != y.shape:
            print(f"{label}: {k} shapes {x.shape} vs {y.shape} FAIL"); sys.exit(0)
        if k == "log_p" and "mask" in a.files:
            keep = a["mask"].reshape(-1) > 0
            x, y = x[..., keep, :], y[..., keep, :]
        worst, n = max(worst, float(np.abs(x - y).max())), n + 1
print(f"{label}: {n} arrays, max |Δ| {worst:.2e} {'ok' if n and worst <= 1e-4 else 'FAIL'}")
PY
}

checks() {
    local w="$parity/weights/full_k48.pt" d="$work/checks" s
    local structures="5L33 4GYT 6EHB" conditional="5L33 4GYT" designs="5L33 4GYT"
    [ "${GPU_BENCH_QUICK:-0}" = 1 ] && structures=5L33 conditional=5L33 designs=5L33
    rm -rf "$d"
    mkdir -p "$d/logs"
    for s in $structures; do
        local p="$parity/structures/$s.pdb"
        for dev in gpu cpu; do
            mpnn_on $dev "$d/logs/u-$s-$dev" probs --unconditional --weights "$w" "$p" --out "$d/$dev/u/$s"
            mpnn_on $dev "$d/logs/s-$s-$dev" score --weights "$w" "$p" --out "$d/$dev/s/$s" --seed 7
        done
        grep -h -m1 '^device' "$d/logs/u-$s-gpu" || true
        compare "unconditional $s GPU vs CPU" "$d/gpu/u/$s" "$d/cpu/u/$s"
        compare "score $s GPU vs CPU" "$d/gpu/s/$s" "$d/cpu/s/$s"
        "$python" "$official/protein_mpnn_run.py" --pdb_path "$p" --out_folder "$d/official/u/$s" \
            --unconditional_probs_only 1 --path_to_model_weights "$parity/weights" --model_name full_k48 \
            --seed 1 >"$d/logs/official-$s" 2>&1 || echo "official $s: failed, see $d/logs/official-$s FAIL"
        compare "unconditional $s mpnn GPU vs official (PyTorch, same GPU)" "$d/official/u/$s" "$d/gpu/u/$s"
    done
    for s in $conditional; do
        for dev in gpu cpu; do
            # The same seed: the decoding order is random (as in the official script).
            mpnn_on $dev "$d/logs/c-$s-$dev" probs --conditional --weights "$w" "$parity/structures/$s.pdb" \
                --out "$d/$dev/c/$s" --seed 7
        done
        compare "conditional $s GPU vs CPU" "$d/gpu/c/$s" "$d/cpu/c/$s"
    done
    for s in $designs; do
        for dev in gpu cpu; do
            mpnn_on $dev "$d/logs/d-$s-$dev" design --weights "$w" "$parity/structures/$s.pdb" --out "$d/$dev/d/$s" \
                --num_seq_per_target 8 --sampling_temp 0.1 --seed 3
        done
        if cmp -s "$d/gpu/d/$s/seqs/$s.fa" "$d/cpu/d/$s/seqs/$s.fa" && [ -s "$d/cpu/d/$s/seqs/$s.fa" ]; then
            echo "design $s 8 seqs GPU vs CPU FASTA: identical ok"
        else
            echo "design $s 8 seqs GPU vs CPU FASTA: differ FAIL (near-ties? see $d/{gpu,cpu}/d/$s/seqs)"
            diff "$d/gpu/d/$s/seqs/$s.fa" "$d/cpu/d/$s/seqs/$s.fa" | head -20
        fi
    done
}

# mpnn_on DEV LOG ARGS...: one mpnn run on DEV, its messages in LOG. A GPU run that went to the
# CPU (a job too big for the device's buffers, a GPU failure mid-job) says so in its warning: a
# check on such a run would compare the CPU with itself, so it is reported as a failure.
mpnn_on() {
    local dev=$1 log=$2
    shift 2
    "$mpnn" "$@" --device "$dev" >"$log" 2>&1 || echo "mpnn $1 --device $dev: exit status $?, see $log FAIL"
    if [ "$dev" = gpu ] && grep -q "on the CPU" "$log"; then
        echo "mpnn $1 --device gpu ran on the CPU: $(grep -m1 'on the CPU' "$log") FAIL"
    fi
}

setup() {
    out=${OUT:-/tmp/gpu-lease-out} work=/tmp/gpu-lease-work
    mkdir -p "$out" "$work"
    mpnn=${MPNN:-$lease/mpnn}
    [ -x "$mpnn" ] || mpnn=target/release/mpnn
    parity=$lease/parity official=$lease/official
    [ -d "$parity" ] || parity=${MPNN_SHARED:-../shared}/parity official=${MPNN_SHARED:-../shared}/reference/official
    python=${PYTHON:-python3}
    vulkan_setup
}

run() {
    setup
    {
        echo "== machine"
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
        nproc
        "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
        echo "== correctness on this GPU (mpnn GPU vs mpnn CPU vs official PyTorch)"
        SECONDS=0
        checks
        echo "(checks took ${SECONDS} s)"
        echo "== scripts/gpu-bench.sh"
        MPNN=$mpnn PYTHON=$python GPU_BENCH_OUT=$work/bench scripts/gpu-bench.sh "$parity" "$official"
        echo "rc=$?"
    } 2>&1 | tee "$out/lease.log"
    cp "$work/bench/mpnn-gpu.json" "$out/" 2>/dev/null || true
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    check) setup && checks ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
esac

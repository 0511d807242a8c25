#!/usr/bin/env bash
# GPU side by side (issue 11): the official PyTorch ProteinMPNN and mpnn on the same GPU.
#
#   scripts/gpu-bench.sh [PARITY_DIR] [OFFICIAL_DIR]
#
# Environment: MPNN (the binary, default target/release/mpnn), PYTHON (the Python with torch,
# default python3), GPU_BENCH_OUT (a folder that keeps mpnn's JSON table and the FASTA files;
# default: a temporary folder, removed), GPU_BENCH_QUICK=1 (a dry run of every step at small
# shapes, for checking the script without a GPU: CPU PyTorch and lavapipe with
# MPNN_ALLOW_SOFTWARE_GPU=1; 5L33 only, batches of 2, 2 backbones). On a lent device machine,
# scripts/gpu-lease.sh runs this script (with its correctness checks first).
#
# Needs: a GPU with a Vulkan driver (NVIDIA: the proprietary driver ships it), PyTorch with CUDA
# for the official code, and mpnn built with the `gpu` feature (the default):
#   cargo build --release
# PARITY_DIR defaults to ../shared/parity (structures/ and weights/full_k48.pt, the official
# v_48_020 shapes), OFFICIAL_DIR to ../shared/reference/official.
#
# What it measures (sampling temperature 0.1, the full k=48 model):
#   1. the official `model.sample()` timed on the GPU (after a warm-up, torch.cuda.synchronize):
#      8 sequences of 5L33 (106 residues), 8 and 512 sequences of 4GYT (354 residues, two chains),
#      each as one batch of clones like protein_mpnn_run.py --batch_size N;
#   2. the official default job end to end: protein_mpnn_run.py on 5L33, 8 sequences,
#      --batch_size 1 (wall clock, Python and CUDA start-up included);
#   3. `mpnn bench --device gpu --precision f32,f16`: the same designs (whole sampler on the
#      GPU, seeded draws) and scoring passes, with the GPU batch the device's memory allows and
#      the CPU beside, in float32 and (where the GPU has f16 shaders, SHADER_F16) in f16; the
#      f16 score rows also give the top-1 agreement and max |Δ log-prob| against float32 on the
#      GPU. Without SHADER_F16 the f16 rows are not measured and the f32 run repeats alone;
#   4. `mpnn design --device gpu` on 5L33, 8 sequences, end to end (wall clock);
#   5. the many-backbones job: 64 copies of 5L33 under different names, 8 sequences each, with
#      protein_mpnn_run.py (--pdb_path per structure, i.e. one process each, the way a loop over
#      backbones runs it; only the first 8 are run and the time scaled by 8) and with one
#      `mpnn design --device gpu` over the folder (structures sampled together, up to 64 per
#      command buffer); the line reports sequences/s for both.
#
# Expected output: one line per official measurement, e.g.
#   official sample(): 5L33 L=106 batch=8: 1.234 s, 6.5 seq/s
#   official sample(): 4GYT L=354 batch=512: 0.53 s, 968 seq/s
#   official protein_mpnn_run.py 5L33 8 seqs batch 1: 9.8 s wall
#   official protein_mpnn_run.py, 8 of 64 backbones x 8 seqs: 78 s wall (x8: 624 s, 0.8 seq/s)
# then mpnn's table (task, structure, L, bucket, checkpoint, precision, batch, GPU batch, GPU ms,
# GPU seq/s, GPU res/s, GPU MiB, CPU ms, CPU seq/s, GPU/CPU, top-1 vs f32, max |Δ log-prob| vs
# f32; one row per precision, f32 first), the mpnn end-to-end wall time and
#   mpnn design --device gpu, 64 backbones x 8 seqs: 3.1 s wall (165 seq/s)
# The goals:
# >= 4,000 sequences/s for 4GYT at batch 512 (published H100 anchors for a 311-residue protein:
# official ~968 seq/s, JAX ~3,879 seq/s) and >= 20x the official default job.
set -euo pipefail
cd "$(dirname "$0")/.."
parity="${1:-../shared/parity}"
official="${2:-../shared/reference/official}"
mpnn="${MPNN:-target/release/mpnn}"
python="${PYTHON:-python3}"
weights="$parity/weights/full_k48.pt"
if [ -n "${GPU_BENCH_OUT:-}" ]; then
    out="$GPU_BENCH_OUT"
    mkdir -p "$out"
else
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi
# calc EXPR: floating-point arithmetic with awk (bc is not on every image); elapsed START: seconds since START.
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
elapsed() { calc "$(date +%s.%N) - $1"; }
# The shapes: the real ones, or GPU_BENCH_QUICK's small ones (a dry run of the script).
if [ "${GPU_BENCH_QUICK:-0}" = 1 ]; then
    sample_jobs="5L33:2" big= bench_batches=2 backbones=2 official_backbones=1 seqs=2
else
    sample_jobs="5L33:8 4GYT:8,512" big=4GYT bench_batches=8,512 backbones=64 official_backbones=8 seqs=8
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

echo "== official model.sample() on the GPU"
"$python" - "$official" "$parity" "$weights" "$sample_jobs" <<'PY'
import sys, time, copy
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from protein_mpnn_utils import parse_PDB, tied_featurize, ProteinMPNN
official, parity, weights, jobs = sys.argv[1:5]
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
ck = torch.load(weights, map_location=dev)
model = ProteinMPNN(ca_only=False, num_letters=21, node_features=128, edge_features=128, hidden_dim=128,
                    num_encoder_layers=3, num_decoder_layers=3, augment_eps=0.0, k_neighbors=ck["num_edges"])
model.load_state_dict(ck["model_state_dict"]); model.to(dev).eval()
for job in jobs.split():
    name, batches = job.split(":")
    batches = [int(b) for b in batches.split(",")]
    pdb = parse_PDB(f"{parity}/structures/{name}.pdb")[0]
    chains = [k[-1] for k in pdb if k.startswith("seq_chain_")]
    for b in batches:
        clones = [copy.deepcopy(pdb) for _ in range(b)]
        f = tied_featurize(clones, dev, {pdb["name"]: (chains, [])}, None, None, None, None, None)
        X, S, mask, lengths, chain_M, chain_enc = f[0], f[1], f[2], f[3], f[4], f[5]
        chain_M_pos, omit_AA_mask, residue_idx = f[10], f[11], f[12]
        pssm_coef, pssm_bias, pssm_log_odds, bias_by_res = f[15], f[16], f[17], f[18]
        omit = np.array([c in "X" for c in "ACDEFGHIKLMNPQRSTVWYX"]).astype(np.float32)
        bias = np.zeros(21, np.float32)
        def run():
            randn = torch.randn(chain_M.shape, device=dev)
            with torch.no_grad():
                model.sample(X, randn, S, chain_M, chain_enc, residue_idx, mask=mask, temperature=0.1,
                             omit_AAs_np=omit, bias_AAs_np=bias, chain_M_pos=chain_M_pos, omit_AA_mask=omit_AA_mask,
                             pssm_coef=pssm_coef, pssm_bias=pssm_bias, pssm_multi=0.0, pssm_log_odds_flag=False,
                             pssm_log_odds_mask=(pssm_log_odds > 0.0).float(), pssm_bias_flag=False,
                             bias_by_res=bias_by_res)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        run()
        times = []
        for _ in range(3):
            t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
        t = sorted(times)[1]
        print(f"official sample(): {name} L={X.shape[1]} batch={b}: {t:.3f} s, {b / t:.1f} seq/s", flush=True)
PY

echo "== official default job (protein_mpnn_run.py, 5L33, $seqs sequences, --batch_size 1)"
start=$(date +%s.%N)
"$python" "$official/protein_mpnn_run.py" --pdb_path "$parity/structures/5L33.pdb" --out_folder "$out/official" \
    --num_seq_per_target "$seqs" --batch_size 1 --sampling_temp 0.1 --seed 1 \
    --path_to_model_weights "$parity/weights" --model_name full_k48 >/dev/null
echo "official protein_mpnn_run.py 5L33 $seqs seqs batch 1: $(elapsed "$start") s wall"

echo "== mpnn bench --device gpu (f32 and f16)"
bench_gpu() {
    "$mpnn" bench --device gpu --precision "$1" --weights "full_k48=$weights" --parity-dir "$parity" \
        --structure "$parity/structures/5L33.pdb" ${big:+--structure "$parity/structures/$big.pdb"} --no-synthetic \
        --batch "$bench_batches" --repeats 3 --json "$out/mpnn-gpu.json"
}
# f16 needs SHADER_F16; a GPU without it says so (a clear error), and f32 runs alone.
bench_gpu f32,f16 || { echo "(no f16 on this GPU: f32 only)"; bench_gpu f32; }

echo "== mpnn design --device gpu (5L33, $seqs sequences, end to end)"
start=$(date +%s.%N)
"$mpnn" design --device gpu --weights "$weights" "$parity/structures/5L33.pdb" --out "$out/mpnn" \
    --num_seq_per_target "$seqs" --sampling_temp 0.1 --seed 1 >/dev/null
echo "mpnn design --device gpu 5L33 $seqs seqs: $(elapsed "$start") s wall"

echo "== many backbones: $backbones copies of 5L33, $seqs sequences each"
mkdir -p "$out/many"
for i in $(seq 1 "$backbones"); do cp "$parity/structures/5L33.pdb" "$out/many/bb$(printf %03d "$i").pdb"; done
start=$(date +%s.%N)
for i in $(seq 1 "$official_backbones"); do
    "$python" "$official/protein_mpnn_run.py" --pdb_path "$out/many/bb$(printf %03d "$i").pdb" --out_folder "$out/official-many" \
        --num_seq_per_target "$seqs" --batch_size "$seqs" --sampling_temp 0.1 --seed 1 \
        --path_to_model_weights "$parity/weights" --model_name full_k48 >/dev/null
done
t=$(elapsed "$start")
n=$((backbones * seqs))
scale=$(calc "$backbones / $official_backbones")
printf 'official protein_mpnn_run.py, %s of %s backbones x %s seqs: %.1f s wall (x%.0f: %.1f s, %.2f seq/s)\n' \
    "$official_backbones" "$backbones" "$seqs" "$t" "$scale" "$(calc "$t * $scale")" "$(calc "$n / ($t * $scale)")"
start=$(date +%s.%N)
"$mpnn" design --device gpu --weights "$weights" "$out/many" --out "$out/mpnn-many" \
    --num_seq_per_target "$seqs" --sampling_temp 0.1 --seed 1 >/dev/null
t=$(elapsed "$start")
echo "mpnn design --device gpu, $backbones backbones x $seqs seqs: $t s wall ($(calc "$n / $t") seq/s)"

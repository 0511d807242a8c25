#!/usr/bin/env bash
# Whole-process timings of the official scripts and mpnn side by side, on this machine, with the
# same checkpoint and flags: the figures behind BENCHMARKS.md's "against the official code" tables.
#
#   OFFICIAL_PY=/path/to/python scripts/vs-official.sh [protein|ligand|all] [REPEATS]
#
# OFFICIAL_PY: a Python with torch (CPU is enough), numpy and, for `ligand`, prody
# (`python3 -m venv v && v/bin/pip install torch numpy prody`). The official code is read from
# ../shared/reference/{official,ligandmpnn}; the checkpoints are the parity fixtures'. LigandMPNN's
# run.py imports its side-chain packer (openfold) at start-up even when packing is off; where openfold
# is missing, this script puts an empty stand-in on PYTHONPATH (packing is never called).
#
# Each row runs every command REPEATS times (default 3; alternating official and mpnn) and takes the
# median wall time of the whole process. "Per additional sequence / pass" is the difference of two
# runs that differ only in the count, divided by the difference in count: start-up, model load and
# parsing cancel. Expected output: a Markdown table per family, e.g.
#   | work | official | mpnn | ratio |
#   | design, per additional sequence (5L33, batch 8, T = 0.1) | 345.1 ms | 4.9 ms | 70.4x |
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
shared=${MPNN_SHARED:-$here/../shared}
family=${1:-all}
repeats=${2:-3}
py=${OFFICIAL_PY:?set OFFICIAL_PY to a python with torch, numpy (and prody for ligand)}
mpnn=${MPNN_BIN:-$here/target/release/mpnn}
[ -x "$mpnn" ] || (cd "$here" && cargo build --release --quiet)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

# median wall and CPU (user + system) seconds of REPEATS runs of "$@" (output discarded; a
# failure stops the script). CPU seconds are the steadier figure on a shared machine.
declare -A median cpu
time_cmd() {
    local key=$1
    shift
    local walls=() cpus=() i
    for ((i = 0; i < repeats; i++)); do
        rm -rf "$work/out"
        if ! /usr/bin/time -f '%e %U %S' -o "$work/time" "$@" >"$work/log" 2>&1; then
            echo "failed: $*" >&2
            tail -20 "$work/log" >&2
            exit 1
        fi
        walls+=("$(awk '{print $1}' "$work/time")")
        cpus+=("$(awk '{print $2 + $3}' "$work/time")")
    done
    median[$key]=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    cpu[$key]=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "  $key: wall ${median[$key]} s (runs: ${walls[*]}), cpu ${cpu[$key]} s (runs: ${cpus[*]})" >&2
}

# label official_wall mpnn_wall unit(ms|s) official_cpu mpnn_cpu
row() {
    awk -v l="$1" -v o="$2" -v m="$3" -v u="$4" -v oc="$5" -v mc="$6" 'BEGIN {
        f = (u == "ms") ? 1000 : 1
        printf "| %s | %.1f %s | %.1f %s | %.1fx | %.1fx |\n", l, o * f, u, m * f, u, o / m, oc / mc }'
}
per() { echo "($1 - $2) / $3" | bc -l; }

protein() {
    local off=$shared/reference/official/protein_mpnn_run.py
    local w=$shared/parity/weights s=$shared/parity/structures
    local common=(--path_to_model_weights "$w" --model_name full_k48 --seed 37 --out_folder "$work/out")
    echo "ProteinMPNN (full_k48.pt, k = 48), $(nproc) threads" >&2
    for who in official mpnn; do
        local cmd=("$py" "$off")
        [ $who = mpnn ] && cmd=("$mpnn")
        time_cmd "$who.d8" "${cmd[@]}" "${common[@]}" --pdb_path "$s/5L33.pdb" --num_seq_per_target 8 --batch_size 8 --sampling_temp 0.1
        time_cmd "$who.d40" "${cmd[@]}" "${common[@]}" --pdb_path "$s/5L33.pdb" --num_seq_per_target 40 --batch_size 8 --sampling_temp 0.1
        time_cmd "$who.s1" "${cmd[@]}" "${common[@]}" --pdb_path "$s/5L33.pdb" --score_only 1 --num_seq_per_target 1 --batch_size 1
        time_cmd "$who.s33" "${cmd[@]}" "${common[@]}" --pdb_path "$s/5L33.pdb" --score_only 1 --num_seq_per_target 33 --batch_size 1
        time_cmd "$who.u" "${cmd[@]}" "${common[@]}" --pdb_path "$s/6EHB.pdb" --unconditional_probs_only 1
    done
    echo "| work (ProteinMPNN) | official | mpnn | wall ratio | CPU ratio |"
    echo "| --- | --- | --- | --- | --- |"
    row "design, per additional sequence (5L33, batch 8, T = 0.1)" \
        "$(per "${median[official.d40]}" "${median[official.d8]}" 32)" "$(per "${median[mpnn.d40]}" "${median[mpnn.d8]}" 32)" ms \
        "$(per "${cpu[official.d40]}" "${cpu[official.d8]}" 32)" "$(per "${cpu[mpnn.d40]}" "${cpu[mpnn.d8]}" 32)"
    row "design 8 sequences, whole process (5L33)" "${median[official.d8]}" "${median[mpnn.d8]}" s \
        "${cpu[official.d8]}" "${cpu[mpnn.d8]}"
    row "scoring, per additional pass (5L33, --score_only 1, batch 1)" \
        "$(per "${median[official.s33]}" "${median[official.s1]}" 32)" "$(per "${median[mpnn.s33]}" "${median[mpnn.s1]}" 32)" ms \
        "$(per "${cpu[official.s33]}" "${cpu[official.s1]}" 32)" "$(per "${cpu[mpnn.s33]}" "${cpu[mpnn.s1]}" 32)"
    row "unconditional probabilities, whole process (6EHB, 960 residues)" "${median[official.u]}" "${median[mpnn.u]}" s \
        "${cpu[official.u]}" "${cpu[mpnn.u]}"
}

ligand() {
    local ref=$shared/reference/ligandmpnn l=$shared/parity/ligand
    local ck=(--model_type ligand_mpnn --checkpoint_ligand_mpnn "$l/weights/ligand_k32_a25.pt" --seed 111 --out_folder "$work/out")
    if ! PYTHONPATH=$ref "$py" -c 'import openfold' 2>/dev/null; then
        mkdir -p "$work/stub/openfold/data" "$work/stub/openfold/np" "$work/stub/openfold/utils"
        touch "$work/stub/openfold/__init__.py" "$work/stub/openfold/data/__init__.py" "$work/stub/openfold/np/__init__.py"
        echo 'atom37_to_torsion_angles = make_atom14_masks = None' >"$work/stub/openfold/data/data_transforms.py"
        echo 'def __getattr__(name): return None' >"$work/stub/openfold/np/residue_constants.py"
        echo 'feats = None' >"$work/stub/openfold/utils/__init__.py"
        echo 'Rigid = None' >"$work/stub/openfold/utils/rigid_utils.py"
    fi
    export PYTHONPATH=$work/stub
    echo "LigandMPNN (ligand_k32_a25.pt: hidden 128, 3 + 3 layers, k = 32, 25 context atoms), $(nproc) threads" >&2
    for who in official mpnn; do
        local run=("$py" "$ref/run.py") score=("$py" "$ref/score.py")
        [ $who = mpnn ] && run=("$mpnn" ligandmpnn run) && score=("$mpnn" ligandmpnn score)
        time_cmd "$who.r1" "${run[@]}" "${ck[@]}" --pdb_path "$l/structures/7v11.pdb" --batch_size 1 --number_of_batches 1
        time_cmd "$who.r9" "${run[@]}" "${ck[@]}" --pdb_path "$l/structures/7v11.pdb" --batch_size 1 --number_of_batches 9
        time_cmd "$who.sd" "${score[@]}" "${ck[@]}" --pdb_path "$l/structures/7v11.pdb" --single_aa_score 1 --use_sequence 1
        time_cmd "$who.sb" "${score[@]}" "${ck[@]}" --pdb_path "$l/structures/1BC8.pdb" --single_aa_score 1 --use_sequence 0
        time_cmd "$who.sa" "${score[@]}" "${ck[@]}" --pdb_path "$l/structures/7v11.pdb" --autoregressive_score 1 --single_aa_score 0 --number_of_batches 9
    done
    echo "| work (LigandMPNN) | official | mpnn | wall ratio | CPU ratio |"
    echo "| --- | --- | --- | --- | --- |"
    row "ligand_mpnn design, per additional sequence (7v11, 236 residues)" \
        "$(per "${median[official.r9]}" "${median[official.r1]}" 8)" "$(per "${median[mpnn.r9]}" "${median[mpnn.r1]}" 8)" ms \
        "$(per "${cpu[official.r9]}" "${cpu[official.r1]}" 8)" "$(per "${cpu[mpnn.r9]}" "${cpu[mpnn.r1]}" 8)"
    row "score.py default (--single_aa_score 1 --use_sequence 1), whole process (7v11)" "${median[official.sd]}" "${median[mpnn.sd]}" s \
        "${cpu[official.sd]}" "${cpu[mpnn.sd]}"
    row "--single_aa_score 1 --use_sequence 0, whole process (1BC8, 93 residues)" "${median[official.sb]}" "${median[mpnn.sb]}" s \
        "${cpu[official.sb]}" "${cpu[mpnn.sb]}"
    row "--autoregressive_score 1, 9 batches, whole process (7v11)" "${median[official.sa]}" "${median[mpnn.sa]}" s \
        "${cpu[official.sa]}" "${cpu[mpnn.sa]}"
}

lscpu | grep -m1 'Model name' >&2 || true
case $family in
protein) protein ;;
ligand) ligand ;;
all) protein && ligand ;;
*) echo "usage: $0 [protein|ligand|all] [REPEATS]" >&2 && exit 2 ;;
esac

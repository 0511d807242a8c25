#!/usr/bin/env bash
# The Slurm test (issue 13): `mpnn design` as a real Slurm job array gives the same files, byte for
# byte, as one process; a task killed mid-run and resubmitted completes the set with nothing
# duplicated or stale.
#
# It starts a one-node Slurm cluster on 127.0.0.1 (slurmctld + slurmd, and munged unless one is
# running) in a scratch folder, runs the checks, and stops what it started (by PID). It needs
# root and Debian's slurmctld, slurmd, slurm-client and munge. It installs nothing unless given
# --install (what .ci/run does): then, as root with apt-get, it runs
# `apt-get install -y slurmctld slurmd slurm-client munge`. Where it cannot run it prints one
# `skipped: REASON` line and exits 0.
#
# Usage: scripts/slurm-test.sh [--install]
#   MPNN             the mpnn binary (default: target/release/mpnn, else target/debug/mpnn)
#   MPNN_PARITY_DIR  the fixtures (default: ../shared/parity)
#   KEEP=1           keep the scratch folder (it is kept anyway when a check fails)
#
# The checks (15 structures: the 7 parity PDBs and 8 small stress ones, 4 designs each):
#   1. a one-process reference run (--table);
#   2. `mpnn slurm --tasks 4 --parallel 2` → sbatch; every task COMPLETED; `mpnn status` says
#      complete (exit 0); the folder equals the reference byte for byte (but for slurm/, which
#      holds the script, the logs and the shards' tables, and .mpnn-run.json, which records the
#      4-shard split); `mpnn merge-tables` of the shards' tables equals the reference table;
#   3. a 0-based hand-written array (--array=0-1) with no --shard: each task says it takes its
#      shard from SLURM_ARRAY_TASK_ID; the same bytes again;
#   4. the array again into a fresh folder, task 1 cancelled (scancel) after it wrote its first
#      structure: `mpnn status` exits 2 and names shard 1; the rerun command it prints is run; then
#      status exits 0, no temporary file is left, and folder and merged table equal the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export LC_ALL=C
T0=$(date +%s%N)

skip() { echo "skipped: slurm test: $*"; exit 0; }
fail() { echo "FAILED: slurm test: $*" >&2; exit 1; }
say() { local ms=$((($(date +%s%N) - T0) / 1000000)); printf '[slurm-test %4d.%ds] %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$*"; }

INSTALL=0
[ "${1:-}" = "--install" ] && INSTALL=1

PARITY=${MPNN_PARITY_DIR:-$ROOT/../shared/parity}
if [ ! -f "$PARITY/weights/full_k48.pt" ]; then
    [ "${CI:-}" = "true" ] && fail "no fixtures at $PARITY (MPNN_PARITY_DIR)"
    skip "no fixtures at $PARITY (set MPNN_PARITY_DIR)"
fi
MPNN=${MPNN:-}
if [ -z "$MPNN" ]; then
    for m in target/release/mpnn target/debug/mpnn; do
        [ -x "$m" ] && { MPNN=$ROOT/$m; break; }
    done
fi
[ -n "$MPNN" ] && [ -x "$MPNN" ] || fail "no mpnn binary (build it, or set MPNN=path)"
[ "$(id -u)" = 0 ] || skip "needs root to start slurmctld, slurmd and munged (running as $(id -un))"

need=(slurmctld slurmd sbatch squeue sinfo scancel scontrol munged)
missing() { for b in "${need[@]}"; do command -v "$b" >/dev/null || PATH=$PATH:/usr/sbin command -v "$b" >/dev/null || echo "$b"; done; }
export PATH=$PATH:/usr/sbin
if [ -n "$(missing)" ]; then
    if [ $INSTALL = 1 ] && command -v apt-get >/dev/null; then
        say "installing slurmctld slurmd slurm-client munge"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y slurmctld slurmd slurm-client munge >/tmp/slurm-test-apt.log 2>&1 ||
            { apt-get update >>/tmp/slurm-test-apt.log 2>&1 &&
              apt-get install -y slurmctld slurmd slurm-client munge >>/tmp/slurm-test-apt.log 2>&1; } ||
            skip "apt-get install slurmctld slurmd slurm-client munge failed (see /tmp/slurm-test-apt.log)"
    elif [ $INSTALL = 1 ]; then
        skip "Slurm is not installed ($(missing | tr '\n' ' ')) and there is no apt-get to install it"
    else
        skip "Slurm is not installed ($(missing | tr '\n' ' ')); run with --install (as .ci/run does) or install slurmctld slurmd slurm-client munge"
    fi
fi
[ -z "$(missing)" ] || skip "still missing after the install: $(missing | tr '\n' ' ')"

# ---------------------------------------------------------------- the one-node cluster
D=$(mktemp -d /tmp/mpnn-slurm-test.XXXXXX)
chmod 755 "$D"
PIDS=()
HOSTS_LINE=""
OK=0
cleanup() {
    set +e
    if [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ]; then
        for j in "${JOBS[@]:-}"; do [ -n "$j" ] && scancel "$j" 2>/dev/null; done
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[$i]}" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] || continue
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    [ -n "$HOSTS_LINE" ] && sed -i "\|^$HOSTS_LINE\$|d" /etc/hosts
    if [ $OK = 1 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$D"; else echo "scratch folder kept: $D" >&2; fi
}
JOBS=()
trap cleanup EXIT

H=$(hostname -s)
if ! getent hosts "$H" >/dev/null; then
    HOSTS_LINE="127.0.0.1 $H # mpnn slurm-test"
    echo "$HOSTS_LINE" >>/etc/hosts
fi

# munged: reuse a running one, else start one as the munge user.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    [ -f /etc/munge/munge.key ] || runuser -u munge -- mungekey -c
    # setpriv runs munged in its own process (runuser would stand between it and our kill)
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground >"$D/munged.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || fail "munged did not start (see $D/munged.log)"
fi

# Ports of our own, so a Slurm already on this machine is not disturbed.
mkdir -p "$D/state" "$D/spool"
cat >"$D/slurm.conf" <<EOF
ClusterName=mpnntest
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=${SLURM_TEST_PORT:-6917}
SlurmdPort=$((${SLURM_TEST_PORT:-6917} + 1))
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName=$H NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$D/slurm.conf
slurmctld -D -i >"$D/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D >"$D/slurmd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 150); do
    [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && break
    sleep 0.2
done
[ "$(sinfo -h -o %t 2>/dev/null)" = idle ] || fail "the node did not come up (see $D/slurmctld.log, $D/slurmd.log)"
say "one-node cluster up ($(sinfo -h -o '%N %c CPUs %t'))"

# ---------------------------------------------------------------- helpers
# Waits until job $1 has left the queue; prints each task's final state ("1 COMPLETED" ...).
wait_job() {
    local j=$1
    for _ in $(seq 1800); do
        [ -z "$(squeue -h -j "$j" 2>/dev/null)" ] && break
        sleep 0.2
    done
    [ -z "$(squeue -h -j "$j" 2>/dev/null)" ] || fail "job $j did not finish in 6 minutes"
    scontrol show job -o "$j" | sed -n 's/.*ArrayTaskId=\([0-9]*\) .*JobState=\([A-Z_]*\) .*/\1 \2/p' | sort -n
}
submit() { local j; j=$(sbatch --parsable "$@") || fail "sbatch $* failed"; j=${j%%;*}; JOBS+=("$j"); echo "$j"; }
# The folder equals the reference, byte for byte, but for slurm/ and the run file.
same_as_ref() {
    diff -r --exclude=slurm --exclude=.mpnn-run.json "$D/ref" "$1" >"$D/diff.txt" ||
        fail "$1 differs from the one-process run: $(head -20 "$D/diff.txt")"
    [ -z "$(find "$1" -name '.*.tmp-*')" ] || fail "temporary files left in $1: $(find "$1" -name '.*.tmp-*')"
}
all_completed() {
    local states=$1 n=$2
    [ "$(echo "$states" | grep -c ' COMPLETED$')" = "$n" ] || fail "not every task COMPLETED: $states"
}

# ---------------------------------------------------------------- inputs and the reference
S=$PARITY/structures
X=$PARITY/stress
{
    for f in 3HTN 4GYT 4YOW 5L33 6EHB 6MRR quirks; do echo "$S/$f.pdb"; done
    for f in gm_5e5z bp_disordered gm_4hhh_frag gm_4oz7 rf_nickel_symmetric_motif bp_2n0n_M1 gm_rnase_frag gm_1orc; do
        echo "$X/$f.pdb"
    done
} | awk -F/ '{ n = $NF; sub(/\.pdb$/, "", n); print n "\t" $0 }' | sort | cut -f2 >"$D/list.txt"
N=$(wc -l <"$D/list.txt")
[ "$N" -ge 12 ] || fail "only $N structures"
for f in $(cat "$D/list.txt"); do [ -f "$f" ] || fail "missing fixture $f"; done
DESIGN=(design --list "$D/list.txt" --weights "$PARITY/weights/full_k48.pt" --num_seq_per_target 4
    --sampling_temp "0.1 0.3" --batch_size 2 --seed 37 --save_score 1 --save_probs 1)
cd "$D"
"$MPNN" "${DESIGN[@]}" --out ref --table ref.csv >ref.log 2>&1 || fail "the one-process run failed: $(tail ref.log)"
[ "$(ls ref/seqs | wc -l)" = "$N" ] || fail "the reference has $(ls ref/seqs | wc -l) designs, not $N"
say "one-process reference: $N structures"

# ---------------------------------------------------------------- 2. the generated job array
"$MPNN" slurm --tasks 4 --parallel 2 --cpus-per-task 1 --time 10:00 -- "${DESIGN[@]}" --out arr \
    --table arr.csv >slurm-arr.log 2>&1 || fail "mpnn slurm failed: $(cat slurm-arr.log)"
grep -q '^#SBATCH --array=1-4%2$' arr/slurm/mpnn.sbatch || fail "no --array=1-4%2 line"
J=$(submit arr/slurm/mpnn.sbatch)
states=$(wait_job "$J")
all_completed "$states" 4
"$MPNN" status arr >status-arr.txt || fail "mpnn status says the array is incomplete: $(cat status-arr.txt)"
grep -q "all $N structures complete (4 shards)" status-arr.txt || fail "status: $(cat status-arr.txt)"
"$MPNN" merge-tables arr/slurm/tables/shard-*.csv --out arr.csv >/dev/null
same_as_ref arr
cmp ref.csv arr.csv || fail "the merged table differs from the one-process table"
say "4-task array (job $J): all COMPLETED, status complete, files and merged table identical"

# ---------------------------------------------------------------- 3. --shard from the environment, 0-based array
cat >auto.sbatch <<EOF
#!/bin/bash
#SBATCH --array=0-1
#SBATCH --cpus-per-task=1
#SBATCH --output=$D/auto-%a.out
$(printf '%q ' "$MPNN" "${DESIGN[@]}") --out auto
EOF
J=$(submit auto.sbatch)
states=$(wait_job "$J")
all_completed "$states" 2
for i in 0 1; do
    grep -q "SLURM_ARRAY_TASK_ID is set and --shard is not given: this task designs shard $((i + 1))/2 (SLURM_ARRAY_TASK_ID=$i in the array 0-1)" auto-$i.out ||
        fail "task $i did not say which shard it took: $(head -3 auto-$i.out)"
done
"$MPNN" status auto >/dev/null || fail "status: auto incomplete"
same_as_ref auto
say "0-based array without --shard (job $J): shards 1/2 and 2/2 from SLURM_ARRAY_TASK_ID, files identical"

# ---------------------------------------------------------------- 4. a task killed mid-run, then rerun
"$MPNN" slurm --tasks 4 --parallel 2 --cpus-per-task 1 --time 10:00 -- "${DESIGN[@]}" --out kill \
    --table kill.csv >slurm-kill.log 2>&1 || fail "mpnn slurm failed: $(cat slurm-kill.log)"
# Shard 1 holds sorted structures 1, 5, 9, 13.
mapfile -t SHARD1 < <(awk -F/ 'NR % 4 == 1 { n = $NF; sub(/\.pdb$/, "", n); print n }' list.txt)
J=$(submit kill/slurm/mpnn.sbatch)
for _ in $(seq 600); do
    [ -f "kill/seqs/${SHARD1[0]}.fa" ] && break
    sleep 0.05
done
[ -f "kill/seqs/${SHARD1[0]}.fa" ] || fail "task 1 wrote nothing in 30 s"
scancel "${J}_1"
states=$(wait_job "$J")
echo "$states" | grep -q '^1 CANCELLED$' || fail "task 1 was not cancelled: $states"
done1=0
for s in "${SHARD1[@]}"; do [ -f "kill/seqs/$s.fa" ] && done1=$((done1 + 1)); done
[ $done1 -lt ${#SHARD1[@]} ] || fail "task 1 finished before it was killed; nothing to rerun"
[ "$(echo "$states" | grep -c ' COMPLETED$')" = 3 ] || fail "the other tasks did not complete: $states"
rc=0
"$MPNN" status kill >status-kill.txt || rc=$?
[ $rc = 2 ] || fail "mpnn status exited $rc after the kill, not 2: $(cat status-kill.txt)"
grep -q "^  shard 1/4: $((${#SHARD1[@]} - done1)) missing" status-kill.txt || fail "status: $(cat status-kill.txt)"
rerun=$(grep '^  sbatch --array=' status-kill.txt) || fail "status printed no rerun command: $(cat status-kill.txt)"
[ "$(echo $rerun)" = "sbatch --array=1 $D/kill/slurm/mpnn.sbatch" ] || fail "rerun command: $rerun"
say "task 1 of job $J cancelled after $done1 of ${#SHARD1[@]} structures; status: $(head -1 status-kill.txt)"
J=$(submit --array=1 kill/slurm/mpnn.sbatch)
states=$(wait_job "$J")
all_completed "$states" 1
"$MPNN" status kill >status-kill2.txt || fail "status after the rerun: $(cat status-kill2.txt)"
grep -q "Skipping ${SHARD1[0]}:" kill/slurm/logs/mpnn-"${J}"_1.out || fail "the rerun did not resume: $(head kill/slurm/logs/mpnn-"${J}"_1.out)"
"$MPNN" merge-tables kill/slurm/tables/shard-*.csv --out kill.csv >/dev/null
same_as_ref kill
cmp ref.csv kill.csv || fail "the merged table differs after the rerun"
cmp arr/.mpnn-run.json kill/.mpnn-run.json || fail "the run files of two 4-task runs differ"
say "rerun (job $J, --array=1): status complete, files and merged table identical, no temporary files"

OK=1
say "passed"

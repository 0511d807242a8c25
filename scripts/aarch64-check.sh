#!/usr/bin/env bash
# The aarch64 check (issue 10): the portable kernel path, as it is compiled for aarch64 (NEON,
# where Apple Silicon and AWS Graviton run it), gives the same bytes as the x86-64 build on this
# machine, whichever path that takes (AVX-512, AVX2).
#
# It cross-builds the CPU-only `mpnn` for aarch64-unknown-linux-gnu (`--no-default-features`:
# the GPU backend is not what this checks), runs it under qemu's user-mode emulation and compares
# its output folders with the host binary's, byte for byte:
#   - unconditional `probs` (the .npz) and a seeded `design` (FASTA, 4 sequences) of 5L33 with
#     full_k48, in float32 and in int8;
#   - with --full, also bf16 and f16, and quirks.pdb and the Cα model (ca_k48): 12 pairs in all;
#   - with --unit, first the library's unit tests for aarch64 under qemu (the kernels' plain
#     twins and their checks).
# int8 on a CPU without VNNI (every aarch64 CPU here) is the W8A16 algorithm, so the host runs
# with MPNN_INT8=w8a16 for that comparison.
#
# Speed under emulation means nothing; this checks bits only. It needs Debian's
# gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user, and rustup's
# aarch64-unknown-linux-gnu target. It installs nothing unless given --install (what .ci/run
# does): then, as root with apt-get, it installs those packages, and adds the target with rustup.
# Where it cannot run it prints one `skipped: REASON` line and exits 0.
#
# Usage: scripts/aarch64-check.sh [--install] [--full] [--unit]
#   MPNN             the host binary (default: target/release/mpnn; built if missing)
#   MPNN_PARITY_DIR  the fixtures (default: ../shared/parity)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export LC_ALL=C
T0=$(date +%s)

skip() { echo "skipped: aarch64 check: $*"; exit 0; }
fail() { echo "FAILED: aarch64 check: $*" >&2; exit 1; }
say() { printf '[aarch64-check %4ds] %s\n' $(($(date +%s) - T0)) "$*"; }

INSTALL=0 FULL=0 UNIT=0
for a in "$@"; do
    case $a in
        --install) INSTALL=1 ;;
        --full) FULL=1 ;;
        --unit) UNIT=1 ;;
        *) fail "unknown argument $a (use --install, --full, --unit)" ;;
    esac
done

PARITY=${MPNN_PARITY_DIR:-$ROOT/../shared/parity}
if [ ! -f "$PARITY/weights/full_k48.pt" ]; then
    [ "${CI:-}" = "true" ] && fail "no fixtures at $PARITY (MPNN_PARITY_DIR)"
    skip "no fixtures at $PARITY (set MPNN_PARITY_DIR)"
fi
[ "$(uname -m)" = x86_64 ] || skip "the host is $(uname -m); this compares an aarch64 build with an x86-64 one"

TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu
have_tools() { command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null && [ -d "$SYSROOT/lib" ]; }
if ! have_tools; then
    if [ $INSTALL = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user"
        pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                --no-install-recommends "${pkgs[@]}" >/dev/null; } \
            || skip "apt-get could not install ${pkgs[*]}"
    else
        skip "needs aarch64-linux-gnu-gcc and qemu-aarch64 (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user, or run with --install as root)"
    fi
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    if [ $INSTALL = 1 ] && command -v rustup >/dev/null; then
        say "adding the $TARGET target"
        rustup target add "$TARGET" >/dev/null 2>&1 || skip "rustup could not add $TARGET"
    else
        skip "needs the $TARGET target (rustup target add $TARGET, or run with --install)"
    fi
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $SYSROOT"

MPNN=${MPNN:-$ROOT/target/release/mpnn}
if [ ! -x "$MPNN" ]; then
    say "building the host binary"
    cargo build --release --bin mpnn
fi

if [ $UNIT = 1 ]; then
    say "the library's unit tests for $TARGET, under qemu"
    log=$(mktemp)
    if ! CARGO_PROFILE_RELEASE_DEBUG=false cargo test --release --target "$TARGET" --no-default-features --lib >"$log" 2>&1; then
        tail -40 "$log" >&2
        fail "the unit tests for $TARGET"
    fi
    grep -E "^test result" "$log"
    rm -f "$log"
fi

say "building mpnn for $TARGET (CPU only)"
# Without debug information (the same code, a fifth less compile time); the host build is untouched.
CARGO_PROFILE_RELEASE_DEBUG=false cargo build --release --target "$TARGET" --no-default-features --bin mpnn
ARM=(qemu-aarch64 -L "$SYSROOT" "$ROOT/target/$TARGET/release/mpnn")
"${ARM[@]}" --version >/dev/null || fail "the $TARGET binary does not start under qemu"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
S=$PARITY/structures W=$PARITY/weights
cases=("5L33 full_k48")
precisions=(f32 int8)
if [ $FULL = 1 ]; then
    cases+=("quirks full_k48" "5L33 ca_k48")
    precisions+=(bf16 f16)
fi
n=0
for c in "${cases[@]}"; do
    read -r st w <<<"$c"
    ca=()
    [ "$w" = ca_k48 ] && ca=(--ca_only)
    for p in "${precisions[@]}"; do
        for side in arm host; do
            if [ $side = arm ]; then bin=("${ARM[@]}") env=(); else bin=("$MPNN") env=(MPNN_INT8=w8a16); fi
            out=$WORK/$side/$p-$st-$w
            env "${env[@]}" "${bin[@]}" probs --unconditional "$S/$st.pdb" "${ca[@]}" --weights "$W/$w.pt" \
                --precision "$p" --out "$out/probs" >"$WORK/log" 2>&1 || { cat "$WORK/log" >&2; fail "$side probs $p $st $w"; }
            env "${env[@]}" "${bin[@]}" design "$S/$st.pdb" "${ca[@]}" --weights "$W/$w.pt" --precision "$p" \
                --num_seq_per_target 4 --seed 5 --out "$out/design" >"$WORK/log" 2>&1 \
                || { cat "$WORK/log" >&2; fail "$side design $p $st $w"; }
        done
        diff -r "$WORK/arm/$p-$st-$w" "$WORK/host/$p-$st-$w" >&2 \
            || fail "$st ($w, $p): the $TARGET output differs from the host's"
        files=$(find "$WORK/arm/$p-$st-$w" -type f | wc -l)
        [ "$files" -ge 2 ] || fail "$st ($w, $p): only $files output files"
        n=$((n + 1))
        say "ok: $st $w $p: probs and design identical ($files files)"
    done
done
say "passed: $n structure/precision pairs, $TARGET (qemu) = $(uname -m) host, byte for byte"

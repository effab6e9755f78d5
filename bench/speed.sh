#!/usr/bin/env bash
# bench/speed.sh - ffrun against the PyTorch reference (bench/ff_ref.py): training and
# evaluation images/s, achieved GFLOP/s, the GEMM-only bound, where ffrun's time goes,
# and a check that both compute the same losses, gradients and updates. A missed 2x is
# set against this machine's fastest square sgemm (ff-bench peak, before and after).
#
#   make bench-speed              installs python3-torch (tools/deps.sh --bench), builds
#                                 $(BUILD)/ff-bench and runs this script
#   BUILD=build bench/speed.sh    the same without the install and build steps
#
# Environment (defaults): REPS (3) repetitions; SECS (3) seconds per timed loop;
# NETS ("fc cnn local deep"; deep: padded 3x3 convs, 32/64/128 channels, with 2x2 max
# pools between them); BATCHES ("100 1000"); CONFIGS ("configs/supervised.yaml
# configs/supervised_fc.yaml configs/supervised_deep.yaml", and configs/cifar_deep.yaml
# on data/cifar10 when it is there: timed as users run them, at their own batch size and
# data, on 1 and on 2 threads); TORCH_CONFIGS (configs/supervised_deep.yaml
# configs/cifar_deep.yaml: those of CONFIGS also timed in PyTorch doing the same step,
# bench/ff_ref.py bench --config); OUT (docs/RESULTS.md). Also the Adam
# step alone on 13.6M parameters (ff-bench stream), on 1 and 2 threads.
# ffrun and PyTorch run alternately (ABBA order over repetitions) so slow drifts of
# the machine hit both; the report takes medians over repetitions. Raw results stay
# in $BUILD/bench-speed/results.jsonl. Only the part of $OUT between
# <!-- speed:begin --> and <!-- speed:end --> is rewritten.
# Exit status: 0, or 1 if a run failed or the correctness check did not pass.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
REPS=${REPS:-3}
SECS=${SECS:-3}
NETS=${NETS:-fc cnn local deep}
BATCHES=${BATCHES:-100 1000}
OUT=${OUT:-docs/RESULTS.md}
PY=/usr/bin/python3
BIN=$BUILD/ff-bench
DIR=$BUILD/bench-speed
RESULTS=$DIR/results.jsonl

if [ -z "${CONFIGS:-}" ]; then
    CONFIGS="configs/supervised.yaml configs/supervised_fc.yaml configs/supervised_deep.yaml"
    # the colour competition net on CIFAR-10 when its data is here (make data-cifar10)
    [ -f data/cifar10/SHA256SUMS ] && CONFIGS="$CONFIGS configs/cifar_deep.yaml"
fi
# the channel-wise competition configs also against PyTorch doing the same step
# (ff_ref.py bench --config: nn.Conv2d on oneDNN, the same loss, head and Adam steps),
# the two alternating (ffrun first on odd repetitions)
TORCH_CONFIGS=${TORCH_CONFIGS:-configs/supervised_deep.yaml configs/cifar_deep.yaml}

[ -x "$BIN" ] || { echo "speed.sh: $BIN missing; run 'make bench-speed'" >&2; exit 1; }
"$PY" -c 'import torch' 2>/dev/null ||
    { echo "speed.sh: python3-torch missing; run 'tools/deps.sh --bench'" >&2; exit 1; }
mkdir -p "$DIR" "$(dirname "$OUT")"
# PyTorch (Debian's, on the system OpenBLAS) falls back to the same slow kernels as
# ffrun would on a CPU newer than the library: give both the kernels ffrun picks
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$("$BIN" core)}
export OPENBLAS_CORETYPE
echo "speed.sh: OpenBLAS kernels $OPENBLAS_CORETYPE for ffrun and PyTorch" >&2
: >"$RESULTS"
status=0
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- same work: losses, gradients and updates from the same state (batch 100)
# warm 0: the first Adam step (zero moments); warm 2: moments already filled
# check NAME WARM REF_ARGS...: ff-bench ref's step after WARM steps, replayed by PyTorch
check() {
    local name=$1 warm=$2 ref=$DIR/$(basename "$1" .yaml)-warm$2.ref
    shift 2
    "$BIN" ref "$@" --warm "$warm" --out "$ref"
    if ! "$PY" bench/ff_ref.py check "$ref" >>"$RESULTS"; then
        echo "speed.sh: $name (warm $warm): PyTorch and ffrun disagree" >&2
        status=1
    fi
    rm -f "$ref"
}
for net in $NETS; do
    for warm in 0 2; do check "$net" $warm --net "$net" --batch 100; done
done
# the competition configs' step (ff-bench ref --config), where their data is here
for cfg in $TORCH_CONFIGS; do
    [[ " $CONFIGS " == *" $cfg "* ]] || continue
    for warm in 0 3; do check "$cfg" $warm --config "$cfg"; done
done

# ---- the machine's yardstick: its fastest square sgemm, before and after the runs
run_peak() {
    echo "speed.sh: sgemm peak" >&2
    "$BIN" peak --seconds "$SECS" >>"$RESULTS" || { echo "speed.sh: ff-bench peak failed" >&2; status=1; }
}
run_peak

# ---- throughput, alternating
run_ffrun() { "$BIN" run --net "$1" --batch "$2" --seconds "$SECS"; }
run_pytorch() { "$PY" bench/ff_ref.py bench --net "$1" --batch "$2" --seconds "$SECS"; }
for rep in $(seq "$REPS"); do
    for net in $NETS; do
        for b in $BATCHES; do
            if [ $((rep % 2)) -eq 1 ]; then order="ffrun pytorch"; else order="pytorch ffrun"; fi
            for impl in $order; do
                echo "speed.sh: rep $rep/$REPS $net batch $b $impl" >&2
                if ! "run_$impl" "$net" "$b" >>"$RESULTS"; then
                    echo "speed.sh: $impl $net batch $b failed" >&2
                    status=1
                fi
            done
        done
    done
done

# ---- the shipped configs' own path (joint passes, pairwise loss, hard negatives with
# their ten labelled scoring passes, the softmax head), on 1 and 2 threads: ffrun, and
# PyTorch doing the same step for TORCH_CONFIGS
for rep in $(seq "$REPS"); do
    for cfg in $CONFIGS; do
        for th in 1 2; do
            echo "speed.sh: rep $rep/$REPS $cfg $th thread(s)" >&2
            order="ffrun torch"
            [ $((rep % 2)) -eq 0 ] && order="torch ffrun"
            for impl in $order; do
                if [ "$impl" = ffrun ]; then
                    "$BIN" run --config "$cfg" --threads "$th" --seconds "$SECS" >>"$RESULTS" ||
                        { echo "speed.sh: ffrun $cfg on $th thread(s) failed" >&2; status=1; }
                elif [[ " $TORCH_CONFIGS " == *" $cfg "* ]]; then
                    "$PY" bench/ff_ref.py bench --config "$cfg" \
                        --threads "$th" --seconds "$SECS" >>"$RESULTS" ||
                        { echo "speed.sh: PyTorch $cfg on $th thread(s) failed" >&2; status=1; }
                fi
            done
        done
    done
done

# ---- memory bandwidth as the optimiser sees it (13.6M floats: the FC config's weights)
for th in 1 2; do
    "$BIN" stream --size 3685 --pool "$th" --seconds "$SECS" >>"$RESULTS" ||
        { echo "speed.sh: ff-bench stream failed" >&2; status=1; }
done

run_peak

# ---- report
meta=$DIR/meta.json
dirty=false
# the code the benchmark measures; other files (configs, results) do not count
git diff --quiet HEAD -- src include bench Makefile 2>/dev/null || dirty=true
"$PY" - "$meta" <<EOF
import json, subprocess, sys, time
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"
rows = [json.loads(l) for l in open("$RESULTS") if l.startswith("{")]
blas = next((r["blas"] for r in rows if "blas" in r), "OpenBLAS")
torch = next((r["torch"] for r in rows if "torch" in r), "?")
omp = next((r.get("omp_wait_policy") for r in rows if "torch" in r), "?")
load_end = open("/proc/loadavg").read().split()[:3]
def nominal_peak_gflops():
    """cores x clock x FP32 FLOP per cycle of two FMA pipes of the widest vector ISA in the
    CPU flags (AVX-512: 64, AVX2 + FMA: 32, else 16). The clock is the one /proc/cpuinfo
    reports, which cores that boost exceed: the report's yardstick is ff-bench peak"""
    try:
        info = open("/proc/cpuinfo").read()
        flags = set(next(l for l in info.splitlines() if l.startswith("flags")).split())
        mhz = float(next(l for l in info.splitlines() if l.startswith("cpu MHz")).split(":")[1])
        per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 16
        cores = int(sh("nproc"))  # the same count as the report's "cores"
        return {"gflops": cores * mhz * per_cycle / 1e3, "mhz": mhz,
                "flop_per_cycle": per_cycle, "cores": cores}
    except Exception:
        return None
json.dump({
    "command": "make bench-speed" if "${MAKELEVEL:-}" else "bench/speed.sh",
    "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    "cpu": sh("lscpu | sed -n 's/^Model name: *//p' | head -1"),
    "cores": sh("nproc"),
    "blas": blas + " (" + sh("dpkg-query -W -f='\${Version}' libopenblas0-pthread") + ")",
    "commit": sh("git rev-parse --short HEAD") or "?",
    "dirty": "$dirty" == "true",
    "reps": $REPS, "torch": torch, "peak": nominal_peak_gflops(),
    # the benchmark itself keeps both cores busy, so only the load before it says
    # whether other work ran (just before, or still alongside)
    "note": "PyTorch with OMP_WAIT_POLICY=%s, both on OpenBLAS's %s kernels (OPENBLAS_CORETYPE; "
            "without it this OpenBLAS falls back to Prescott kernels here, about 4x slower). "
            "Load average at start %s, at end %s%s." % (
        omp, "$OPENBLAS_CORETYPE", "$load_start", " ".join(load_end),
        " (the 1-minute load at the start was above 0.5: other work ran just before or "
        "alongside, so figures may be noisy)" if float("$load_start".split()[0]) > 0.5 else ""),
}, open(sys.argv[1], "w"))
EOF
"$PY" bench/ff_ref.py report "$RESULTS" "$OUT" --meta "$meta"
echo "speed.sh: wrote $OUT (raw results: $RESULTS)" >&2
exit $status

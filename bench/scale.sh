#!/usr/bin/env bash
# bench/scale.sh - training images/s of one experiment on 1 process with N BLAS
# threads (the baseline) and with 1, and under mpirun on N processes with
# parallel.mode data and pipeline (one BLAS thread per process), on this machine. `make bench-scale` builds and runs it; the table goes between
# <!-- scale:begin --> and <!-- scale:end --> of $OUT (docs/RESULTS.md).
# Environment (defaults): CONFIG (configs/supervised_fc.yaml), NP (2), STEPS (40)
# batches per timed run, OUT (docs/RESULTS.md). The model of 8-64 nodes is docs/SCALING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CONFIG=${CONFIG:-configs/supervised_fc.yaml}
NP=${NP:-2}
STEPS=${STEPS:-40}
OUT=${OUT:-docs/RESULTS.md}
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
tmp=$(mktemp -d /tmp/ff_scale.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
ln -s "$PWD/data" "$tmp/data"
common=(--quiet --max-steps "$STEPS" --set train.epochs=1 --set log.histograms=0
        --set log.images=0 --set eval.softmax=false --set train.negatives=random
        --set train.hard_scores=goodness --set train.hard_candidates=0
        --set log.dir="$tmp/runs" --set checkpoint.dir="$tmp/models")
batch=$("$BUILD/ffrun" "$CONFIG" --dry-run | awk '/^  batch_size:/ {print $2; exit}')
# training images/s of a run of STEPS batches (it stops at --max-steps: exit 130), from
# the "training:" line rank 0 prints: the time in training batches, without start-up,
# data loading or the model write
ips() {
    "$@" > "$tmp/out" 2>&1 || [ $? -eq 130 ] || { cat "$tmp/out" >&2; return 1; }
    sed -n 's/^training: .* \([0-9.]*\) images\/s$/\1/p' "$tmp/out" | tail -1
}
one2=$(OPENBLAS_NUM_THREADS=$NP ips "$BUILD/ffrun" "$CONFIG" "${common[@]}")
one1=$(ips "$BUILD/ffrun" "$CONFIG" "${common[@]}")
data=$(ips mpirun --oversubscribe -np "$NP" "$BUILD/ffrun" "$CONFIG" "${common[@]}" --set parallel.mode=data)
pipe=$(ips mpirun --oversubscribe -np "$NP" "$BUILD/ffrun" "$CONFIG" "${common[@]}" --set parallel.mode=pipeline)
row() { printf '| %s | %s | %.0f | %.2f |\n' "$1" "$2" "$3" "$(echo "$3 / $one2" | bc -l)"; }
table=$(
    echo "$CONFIG, $STEPS batches of $batch (random negatives, no softmax head), $(nproc) cores, OpenBLAS kernels ${OPENBLAS_CORETYPE:-as ffrun picks}; images/s over the training batches only (start-up, data loading and the model write excluded). Target: $NP ranks x 1 thread within 10% of 1 process x $NP threads."
    echo
    echo "| run | processes x BLAS threads | images/s | vs 1 process x $NP threads |"
    echo "|---|---|---|---|"
    row "one process" "1 x $NP" "$one2"
    row "one process" "1 x 1" "$one1"
    row "data parallel" "$NP x 1" "$data"
    row "layer pipeline" "$NP x 1" "$pipe"
)
echo "$table"
if grep -q '<!-- scale:begin -->' "$OUT"; then
    /usr/bin/python3 - "$OUT" "$table" <<'PY'
import sys
p, t = sys.argv[1], sys.argv[2]
s = open(p).read()
a, b = s.index("<!-- scale:begin -->"), s.index("<!-- scale:end -->")
open(p, "w").write(s[:a] + "<!-- scale:begin -->\n" + t + "\n" + s[b:])
PY
fi

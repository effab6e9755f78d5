#!/usr/bin/env bash
# bench/scale.sh - images/s of one experiment on 1 process, and under mpirun on N
# processes with parallel.mode data and pipeline (one BLAS thread per process), on
# this machine. `make bench-scale` builds and runs it; the table goes between
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
# seconds of STEPS batches (the run stops at --max-steps: exit 130)
timed() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > "$tmp/out" 2>&1 || [ $? -eq 130 ] || { cat "$tmp/out" >&2; return 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
one=$(timed "$BUILD/ffrun" "$CONFIG" "${common[@]}")
data=$(timed mpirun --oversubscribe -np "$NP" "$BUILD/ffrun" "$CONFIG" "${common[@]}" --set parallel.mode=data)
pipe=$(timed mpirun --oversubscribe -np "$NP" "$BUILD/ffrun" "$CONFIG" "${common[@]}" --set parallel.mode=pipeline)
row() { printf '| %s | %d | %.1f | %.0f | %.2f |\n' "$1" "$2" "$3" "$(echo "$STEPS * $batch / $3" | bc -l)" "$(echo "$one / $3" | bc -l)"; }
table=$(
    echo "$CONFIG, $STEPS batches of $batch (random negatives, no softmax head), one BLAS thread per process, $(nproc) cores; wall time includes start-up and the model write."
    echo
    echo "| run | processes | seconds | images/s | speed-up |"
    echo "|---|---|---|---|---|"
    row "one process" 1 "$one"
    row "data parallel" "$NP" "$data"
    row "layer pipeline" "$NP" "$pipe"
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

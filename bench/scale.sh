#!/usr/bin/env bash
# bench/scale.sh - training images/s of one experiment on 1 process with NP BLAS threads
# (the baseline) against mpirun on NP processes with one BLAS thread each, in
# parallel.mode data and pipeline, for the FC 4x2000 net (configs/supervised_fc.yaml),
# the CNN (configs/supervised.yaml) and the local receptive fields
# (configs/unsupervised_backbone.yaml), each at batch 100 and 1000, with the bytes each
# mode moves per batch (from --dry-run). `make bench-scale` builds and runs it; the
# table goes between <!-- scale:begin --> and <!-- scale:end --> of $OUT
# (docs/RESULTS.md). Runs of one row are interleaved (baseline, data, pipeline). The
# model of 8-64 nodes is docs/SCALING.md.
# Environment (defaults): NP (2); STEPS100 (30) and STEPS1000 (5) batches per timed run
# at batch 100 and 1000 (about 3 minutes in all on 2 cores); CONFIGS (the three above);
# BATCHES ("100 1000"); OUT (docs/RESULTS.md; OUT=- prints only).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
NP=${NP:-2}
STEPS100=${STEPS100:-30}
STEPS1000=${STEPS1000:-5}
CONFIGS=${CONFIGS:-configs/supervised_fc.yaml configs/supervised.yaml configs/unsupervised_backbone.yaml}
BATCHES=${BATCHES:-100 1000}
OUT=${OUT:-docs/RESULTS.md}
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
if ! ldd "$BUILD/ffrun" | grep -q libmpi || ! command -v mpirun > /dev/null; then
    echo "bench/scale.sh: $BUILD/ffrun has no Open MPI or mpirun is missing (tools/deps.sh)" >&2
    exit 1
fi
tmp=$(mktemp -d /tmp/ff_scale.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
ln -s "$PWD/data" "$tmp/data"
# random negatives and no softmax head: what both modes can run (a pipeline refuses hard
# negatives and the per-batch head)
common=(--quiet --set train.epochs=1 --set log.histograms=0 --set log.images=0
        --set eval.softmax=false --set train.negatives=random --set train.hard_candidates=0
        --set log.dir="$tmp/runs" --set checkpoint.dir="$tmp/models")
# training images/s of a run (it stops at --max-steps: exit 130), from the "training:"
# line rank 0 prints: the time in training batches, without start-up, data loading or
# the model write
ips() {
    "$@" > "$tmp/out" 2>&1 || [ $? -eq 130 ] || { cat "$tmp/out" >&2; return 1; }
    sed -n 's/^training: .* \([0-9.]*\) images\/s$/\1/p' "$tmp/out" | tail -1
}
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
mpi=(mpirun --oversubscribe -np "$NP")
rows=()
for cfg in $CONFIGS; do
    for batch in $BATCHES; do
        steps=$STEPS100
        [ "$batch" -ge 1000 ] && steps=$STEPS1000
        run=("${common[@]}" --max-steps "$steps" --set train.batch_size="$batch")
        dmb=$("$BUILD/ffrun" "$cfg" "${run[@]}" --dry-run --set parallel.mode=data |
              sed -n 's/^data parallel: \([0-9.]*\) MB.*/\1/p')
        pmb=$("$BUILD/ffrun" "$cfg" "${run[@]}" --dry-run --set parallel.mode=pipeline |
              sed -n "s/^pipeline on $NP ranks:.*; \([0-9.]*\) MB handed on.*/\1/p")
        one=$(OPENBLAS_NUM_THREADS=$NP ips "$BUILD/ffrun" "$cfg" "${run[@]}")
        data=$(OPENBLAS_NUM_THREADS=1 ips "${mpi[@]}" "$BUILD/ffrun" "$cfg" "${run[@]}" --set parallel.mode=data)
        pipe=$(OPENBLAS_NUM_THREADS=1 ips "${mpi[@]}" "$BUILD/ffrun" "$cfg" "${run[@]}" --set parallel.mode=pipeline)
        row="| $(basename "$cfg" .yaml) | $batch | $steps | $(printf '%.0f' "$one") | $(printf '%.0f' "$data") ($(ratio "$data" "$one")) | $(printf '%.0f' "$pipe") ($(ratio "$pipe" "$one")) | $dmb | $pmb |"
        echo "$row" >&2
        rows+=("$row")
    done
done
table=$(
    echo "$(nproc) cores, OpenBLAS kernels ${OPENBLAS_CORETYPE:-as ffrun picks}, random negatives, no softmax head; training images/s over the timed batches only (start-up, data loading and the model write excluded; a pipeline's fill and drain included). Data parallel on one node sums gradients in shared memory (each rank reads the others' gradient shard in place); the MB column is the gradient volume an allreduce would move across nodes. Target: $NP ranks x 1 thread within 10% of 1 process x $NP threads (ratio >= 0.90)."
    echo
    echo "| net | batch | batches timed | 1 process x $NP threads | data, $NP x 1 (ratio) | pipeline, $NP x 1 (ratio) | data MB/batch | pipeline MB/batch |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
)
echo "$table"
if [ "$OUT" != - ] && grep -q '<!-- scale:begin -->' "$OUT"; then
    /usr/bin/python3 - "$OUT" "$table" <<'PY'
import sys
p, t = sys.argv[1], sys.argv[2]
s = open(p).read()
a, b = s.index("<!-- scale:begin -->"), s.index("<!-- scale:end -->")
open(p, "w").write(s[:a] + "<!-- scale:begin -->\n" + t + "\n" + s[b:])
PY
fi

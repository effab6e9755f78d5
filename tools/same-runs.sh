#!/usr/bin/env bash
# same-runs.sh OLD_FFRUN NEW_FFRUN - a refactoring changed no output: the same short runs
# made by two ffrun binaries give bit-identical models (tests/ffm.py same-weights: weights,
# optimiser state, step, RNG, head) and the same event-file records (tools/same-events.py:
# everything but wall times and the run record), file by file.
#
# Runs (configs/quick.yaml and the unsupervised configs cut to seconds, one BLAS thread):
#   ff        supervised, validation split, softmax head, histograms and images, epoch models
#   competition supervised_deep cut short: the competition loss, batch-norm statistics
#   resume    the same stopped by --max-steps and resumed
#   backbone  unsupervised_backbone, then clf: unsupervised_clf on that backbone
#   clfstop   the classifier stopped by --max-steps and resumed
#   pipeline  2 ranks of Open MPI, parallel.mode pipeline (skipped without mpirun)
#   sweep     `ffrun sweep` of 2 points
# Each binary runs in its own scratch directory with the same relative paths, so the
# configs they record are equal. Exit 0 if all are the same, 1 otherwise.
set -u
[ $# -eq 2 ] || { echo "usage: $0 OLD_FFRUN NEW_FFRUN" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
old=$(realpath "$1") new=$(realpath "$2")
tmp=$(mktemp -d /tmp/same-runs.XXXXXX)
[ -n "${SAME_RUNS_KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1 HWLOC_COMPONENTS=-gl OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=/usr/bin/python3
bad=0
short=(--quiet --set data.train_limit=1000 --set data.test_limit=300 --set log.every=5)

# in_both NAME CMD...: CMD run in $tmp/A/NAME and $tmp/B/NAME, $FFRUN the binary
in_both() {
    local name=$1 side bin
    shift
    for side in A B; do
        [ $side = A ] && bin=$old || bin=$new
        mkdir -p "$tmp/$side/$name"
        ln -sfn "$root/data" "$tmp/$side/$name/data"
        ln -sfn "$root/configs" "$tmp/$side/$name/configs"
        (cd "$tmp/$side/$name" && FFRUN=$bin bash -c "$*") > "$tmp/$side/$name.out" 2>&1
        echo "$?" > "$tmp/$side/$name.rc"
    done
}

# compare NAME: exit codes, model files by their names after the run prefix, event files
compare() {
    local name=$1 a=$tmp/A/$1 b=$tmp/B/$1 ma mb
    local ra rb
    ra=$(cat "$a.rc") rb=$(cat "$b.rc")
    if [ "$ra" != "$rb" ]; then
        echo "FAIL $name: exit $ra vs $rb"; tail -3 "$a.out" "$b.out"; bad=1; return
    fi
    ma=$(cd "$a" && find . -name '*.ffm' | sed 's/[0-9]\{8\}-[0-9]\{6\}/STAMP/g' | sort)
    mb=$(cd "$b" && find . -name '*.ffm' | sed 's/[0-9]\{8\}-[0-9]\{6\}/STAMP/g' | sort)
    if [ "$ma" != "$mb" ] || [ -z "$ma" ]; then
        echo "FAIL $name: model files differ:"; diff <(echo "$ma") <(echo "$mb"); bad=1; return
    fi
    local f fa fb n=0
    for f in $ma; do
        fa=$(cd "$a" && find . -name '*.ffm' | while read -r x; do
            [ "$(echo "$x" | sed 's/[0-9]\{8\}-[0-9]\{6\}/STAMP/g')" = "$f" ] && echo "$x"; done)
        fb=$(cd "$b" && find . -name '*.ffm' | while read -r x; do
            [ "$(echo "$x" | sed 's/[0-9]\{8\}-[0-9]\{6\}/STAMP/g')" = "$f" ] && echo "$x"; done)
        if ! $py "$root/tests/ffm.py" same-weights "$a/$fa" "$b/$fb" > "$tmp/ffm.out"; then
            echo "FAIL $name: $f: $(cat "$tmp/ffm.out")"; bad=1; return
        fi
        n=$((n + 1))
    done
    if ! $py "$root/tools/same-events.py" "$a" "$b" > "$tmp/ev.out" 2>&1; then
        echo "FAIL $name: event files: $(head -40 "$tmp/ev.out")"; bad=1; return
    fi
    echo "same $name: exit $ra, $n model files bit-identical, $(cat "$tmp/ev.out")"
}

in_both ff "\$FFRUN configs/quick.yaml ${short[*]} --set data.validation=200 --set train.epochs=3 \
    --set checkpoint.every=1 --set log.histograms=1 --set log.images=1 --set eval.softmax=true"
compare ff
in_both competition "\$FFRUN configs/supervised_deep.yaml ${short[*]} --set data.train_limit=500 \
    --set data.test_limit=200 --set data.validation=100 --set train.epochs=2"
compare competition
in_both resume "\$FFRUN configs/quick.yaml ${short[*]} --set train.epochs=2 --max-steps 13; \
    \$FFRUN --resume --quiet"
compare resume
in_both backbone "\$FFRUN configs/unsupervised_backbone.yaml ${short[*]} --set train.epochs=1 \
    --set log.images=1 --set log.histograms=1 --name bb && \
    \$FFRUN configs/unsupervised_clf.yaml ${short[*]} --set clf.epochs=2 --name clf"
compare backbone
in_both clfstop "\$FFRUN configs/unsupervised_backbone.yaml ${short[*]} --set train.epochs=1 \
    --name bb && \$FFRUN configs/unsupervised_clf.yaml ${short[*]} --set clf.epochs=2 \
    --max-steps 7 --name clf; \$FFRUN --resume \$(ls models/unsupervised_clf_*_step*.ffm) --quiet"
compare clfstop
if command -v mpirun > /dev/null; then
    in_both pipeline "timeout -k 10 600 mpirun --oversubscribe -np 2 \$FFRUN configs/quick.yaml \
        ${short[*]} --set train.epochs=2 --set eval.softmax=false --set parallel.mode=pipeline"
    compare pipeline
else
    echo "(no mpirun: the pipeline run is not compared)"
fi
cat > "$tmp/sweep.yaml" <<'Y'
config: configs/quick.yaml
name: grid
set:
  data.train_limit: 500
  data.test_limit: 300
  data.validation: 100
  train.epochs: 2
  log.every: 5
axes:
  optimizer.lr: [0.001, 0.002]
jobs: 1
Y
in_both sweep "\$FFRUN sweep $tmp/sweep.yaml --threads 1"
compare sweep
exit $bad

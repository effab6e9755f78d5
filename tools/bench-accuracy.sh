#!/usr/bin/env bash
# tools/bench-accuracy.sh [CONFIG...] - train and evaluate the reference configs on MNIST
# (and Fashion-MNIST for the supervised FC and CNN nets, CIFAR-10 for the cifar_* ones:
# make data-cifar10), then rewrite the accuracy table
# of docs/RESULTS.md (between the accuracy markers). Long: run it in the background.
# Resumable: a finished config leaves bench/results/accuracy/<name>.txt and is skipped; an
# interrupted one (Ctrl-C, or a killed machine: checkpoint.minutes) resumes from the newest
# model it wrote and appends to its log.
# Usage: tools/bench-accuracy.sh             all reference configs
#        tools/bench-accuracy.sh NAME...     some of them (names below)
#        EPOCHS=N tools/bench-accuracy.sh    shortened runs (N epochs instead of the
#                                            configs' defaults; the table says so)
set -u
cd "$(dirname "$0")/.." || exit 1
ffrun=${FFRUN:-build/ffrun}
out=bench/results/accuracy
mkdir -p "$out"
fashion=/usr/share/datasets/fashion-mnist

# name | config | extra --set options
runs=(
  "supervised_fc|configs/supervised_fc.yaml|"
  "supervised_cnn|configs/supervised.yaml|"
  "unsupervised_backbone|configs/unsupervised_backbone.yaml|"
  "unsupervised_clf|configs/unsupervised_clf.yaml|"
  "fashion_supervised_fc|configs/supervised_fc.yaml|--set data.dir=$fashion"
  "fashion_supervised_cnn|configs/supervised.yaml|--set data.dir=$fashion"
  "hinton_ffcode|configs/hinton_ffcode.yaml|"
  "paper_fc|configs/paper_fc.yaml|"
  "supervised_deep|configs/supervised_deep.yaml|"
  "fashion_deep|configs/fashion_deep.yaml|"
  "supervised_competition|configs/supervised_competition.yaml|"
  "fashion_competition|configs/supervised_competition.yaml|--set data.dir=$fashion"
  "cifar_deep|configs/cifar_deep.yaml|"
  "paper_cifar|configs/paper_cifar.yaml|"
  "cifar_unsupervised_backbone|configs/cifar_unsupervised_backbone.yaml|"
  "cifar_unsupervised_clf|configs/cifar_unsupervised_clf.yaml|"
)
want=("$@")

selected() {
    [ ${#want[@]} -eq 0 ] && return 0
    local w
    for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done
    return 1
}

run_one() { # name config extra...
    local name=$1 cfg=$2; shift 2
    local log=$out/$name.log
    [ -f "$out/$name.txt" ] && { echo "$name: done before ($out/$name.txt)"; return 0; }
    local extra=("$@")
    [ -n "${EPOCHS:-}" ] && [[ $name != *unsupervised_clf ]] && extra+=(--set "train.epochs=$EPOCHS")
    # a classifier on its own backbone row's final model (cifar_: the CIFAR-10 backbone)
    [[ $name == *unsupervised_clf ]] && extra+=(--set checkpoint.backbone="$(ls -t models/unsupervised_backbone_*_bench_${name%unsupervised_clf}unsupervised_backbone_epoch*.ffm 2>/dev/null | head -1)")
    # an interrupted run left $out/$name.running (its start time): resume from the newest
    # model it wrote since (a signalled stop's, or after a kill the last periodic or epoch one)
    local running=$out/$name.running resume="" start
    if [ -f "$running" ]; then
        start=$(cat "$running")
        resume=$(find models -maxdepth 1 -name "*_bench_${name}_*.ffm" ! -name '*_best.ffm' \
                     -newer "$running" -printf '%T@ %p\n' 2>/dev/null | sort -rn | head -1 | cut -d' ' -f2-)
    fi
    [ -z "$resume" ] && { start=$(date +%s); echo "$start" > "$running"; }
    # the code that trains: HEAD now (+changes if the working tree differs)
    local commit
    commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src include configs 2>/dev/null || echo +changes)"
    echo "$name: training ($cfg ${extra[*]}) -> $log"
    if [ -n "$resume" ]; then
        echo "$name: resuming from $resume"
        echo "--- resumed from $resume ($(date -u '+%F %T'))" >> "$log"
        "$ffrun" --resume "$resume" --verbose >> "$log" 2>&1
    else
        "$ffrun" "$cfg" --name "bench_$name" "${extra[@]}" --verbose > "$log" 2>&1
    fi
    local rc=$?
    # a finished run must not be resumed by the next one: drop its interruption models
    [ $rc -eq 0 ] && rm -f models/*_bench_"${name}"_step*.ffm "$running"
    [ $rc -eq 0 ] || { echo "$name: ffrun exited $rc (see $log)"; return 1; }
    # supervised runs without the per-batch softmax head: a head trained for one epoch on
    # the finished, frozen net (ffrun eval) gives the softmax readout
    local posthoc=""
    if ! grep -q '^test error (softmax readout)' "$log" && grep -q '^test error (goodness readout)' "$log"; then
        local model
        model=$(sed -n 's/^model: *//p' "$log" | tail -1)
        [ -n "$model" ] && posthoc=$("$ffrun" eval "$model" --softmax-epochs 1 2>&1 |
            sed -n 's/^test error (softmax readout, head trained 1 epoch(s) now): \([0-9.]*%\)$/\1/p')
    fi
    {
        echo "config=$cfg ${extra[*]}"
        [ -n "$posthoc" ] && echo "test error (softmax readout): final $posthoc (head trained 1 epoch on the finished net)"
        echo "commit=$commit"
        echo "date=$(date -u +%Y-%m-%d)"
        echo "threads=${OPENBLAS_NUM_THREADS:-$(nproc)}"
        echo "cpu=$(tools/cpu-name.sh)"
        grep -E '^test error' "$log"
        grep -E '^finished after' "$log"
        # training time per epoch over the epoch lines of every process (a resumed run's too)
        awk '/^epoch [0-9]+\/[0-9]+  [0-9.]+s / {s += $3; n++}
             END {if (n) printf "train_seconds_per_epoch=%.2f\n", s / n}' "$log"
        echo "wall_seconds=$(( $(date +%s) - start ))"
        grep -q '^--- resumed from' "$log" &&
            echo "resumed=$(grep -c '^--- resumed from' "$log") (wall_seconds includes the interruptions)"
    } > "$out/$name.txt"
    return 0 # (the block's last test fails for a run never resumed: not a failure)
}

for r in "${runs[@]}"; do
    IFS='|' read -r name cfg extra <<< "$r"
    selected "$name" || continue
    [[ $name == fashion_* ]] && [ ! -d "$fashion" ] && { echo "$name: skipped, $fashion missing (tools/deps.sh --bench)"; continue; }
    [[ $name == cifar_* ]] && [ ! -f data/cifar10/SHA256SUMS ] && { echo "$name: skipped, data/cifar10 missing (make data-cifar10)"; continue; }
    # shellcheck disable=SC2086
    run_one "$name" "$cfg" $extra || exit 1
done
tools/results-accuracy.sh

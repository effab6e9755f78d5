#!/usr/bin/env bash
# tools/choose-on-validation.sh MODEL.ffm [FFRUN] - settings of the readouts chosen on the
# model's validation images (a model trained with data.validation), then the test set
# read once with each chosen setting:
#   the softmax head's clf.weight_decay (0, 5e-4, 2e-3): a fresh head, 13 epochs, lr
#     decaying, cached features;
#   the goodness readout's layers (1,2,3 / 2,3 / 3: the default sum and the top layers).
# Prints each candidate's validation error, the choice and its test error. Used for
# docs/RESULTS.md "cifar_deep with a validation split" (a 4-layer net; other nets: edit
# the layer lists).
set -u
model=${1:?usage: tools/choose-on-validation.sh MODEL.ffm [FFRUN]}
ffrun=${2:-build/ffrun}
head=(--set clf.cache_features=true --set clf.lr_schedule=true --softmax-epochs 13)
val() { sed -n "s/^validation error ($1.*): \([0-9.]*\)%$/\1/p"; }
less() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a < b)}'; }

# the eval options of candidate V of a setting (wd: the head's weight decay, layers: the
# goodness readout's layers), one per line
eval_args() {
    case $1 in
    wd) printf '%s\n' "${head[@]}" --set "clf.weight_decay=$2" ;;
    layers) printf '%s\n' --layers "$2" --softmax-epochs 0 ;;
    esac
}

# choose SETTING READOUT V...: each candidate's validation error, the best one, then the
# test set read once with it
choose() {
    local what=$1 readout=$2 best=999 chosen= e v a
    shift 2
    for v in "$@"; do
        mapfile -t a < <(eval_args "$what" "$v")
        e=$("$ffrun" eval "$model" --on validation "${a[@]}" 2>&1 | val "$readout")
        echo "$what $v: validation $readout ${e:-?}%"
        if [ -n "$e" ] && less "$e" "$best"; then best=$e chosen=$v; fi
    done
    if [ -z "$chosen" ]; then
        echo "$what: no candidate could be evaluated on validation (no data.validation, no" \
             "head, fewer layers?)"
        return
    fi
    echo "chosen on validation: $what $chosen ($best%)"
    mapfile -t a < <(eval_args "$what" "$chosen")
    "$ffrun" eval "$model" "${a[@]}" 2>&1 | grep "^test error ($readout"
}

choose wd "softmax readout" 0 0.0005 0.002
choose layers "goodness readout" 1,2,3 2,3 3

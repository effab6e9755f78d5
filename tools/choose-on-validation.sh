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

best=999 bestwd=
for wd in 0 0.0005 0.002; do
    e=$("$ffrun" eval "$model" --on validation "${head[@]}" --set clf.weight_decay=$wd 2>&1 |
        val "softmax readout")
    echo "clf.weight_decay $wd: validation softmax ${e:-?}%"
    if [ -n "$e" ] && less "$e" "$best"; then best=$e bestwd=$wd; fi
done
if [ -n "$bestwd" ]; then
    echo "chosen on validation: clf.weight_decay $bestwd ($best%)"
    "$ffrun" eval "$model" "${head[@]}" --set clf.weight_decay=$bestwd 2>&1 | grep '^test error (softmax'
else
    echo "no head setting could be evaluated on validation (no data.validation? no head?)"
fi

best=999 bestl=
for layers in 1,2,3 2,3 3; do
    e=$("$ffrun" eval "$model" --on validation --layers $layers --softmax-epochs 0 2>&1 |
        val "goodness readout")
    echo "goodness readout --layers $layers: validation ${e:-?}%"
    if [ -n "$e" ] && less "$e" "$best"; then best=$e bestl=$layers; fi
done
if [ -n "$bestl" ]; then
    echo "chosen on validation: --layers $bestl ($best%)"
    "$ffrun" eval "$model" --layers $bestl --softmax-epochs 0 2>&1 | grep '^test error'
else
    echo "no layer list could be evaluated on validation (a net of fewer than 4 layers?)"
fi

#!/usr/bin/env bash
# t_e2e_configs.sh - every shipped config in configs/ runs end to end, shortened (500
# training images, 200 test images, 1 epoch): exit 0, a final test error is printed, a
# model file is written. unsupervised_clf.yaml runs on the backbone that
# unsupervised_backbone.yaml just wrote. The figures of the full runs are in docs/RESULTS.md.
set -u
source "$(dirname "$0")/script_lib.sh"

short=(--set data.train_limit=500 --set data.test_limit=200 --set data.cache="$tmp/cache"
       --set log.dir="$tmp/runs" --set checkpoint.dir="$tmp/models" --quiet)
run_config() { # config extra...
    local cfg=$1 name; shift
    name=$(basename "$cfg" .yaml)
    local epochs=(--set train.epochs=1)
    [ "$name" = unsupervised_clf ] && epochs=(--set clf.epochs=1)
    "$build/ffrun" "$cfg" "${short[@]}" "${epochs[@]}" --name "cfg_$name" "$@" > "$tmp/$name.out" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then
        fail "$cfg exited $rc"; cat "$tmp/$name.out"; return
    fi
    local err
    err=$(sed -n 's/^test error ([a-z ]*readout): final \([0-9.]*%\).*/\1/p' "$tmp/$name.out" | head -1)
    [ -n "$err" ] || { fail "$cfg printed no final test error"; cat "$tmp/$name.out"; return; }
    ls "$tmp"/models/*_cfg_"${name}"_*.ffm > /dev/null 2>&1 \
        || { fail "$cfg wrote no model"; return; }
    ok "$cfg: 1 epoch on 500 images, test error $err, model written"
}

n=0
for cfg in configs/*.yaml; do
    [ "$(basename "$cfg")" = unsupervised_clf.yaml ] && continue
    run_config "$cfg"; n=$((n + 1))
done
backbone=$(ls -t "$tmp"/models/unsupervised_backbone_*_cfg_unsupervised_backbone_*.ffm 2>/dev/null | head -1)
if [ -n "$backbone" ]; then
    run_config configs/unsupervised_clf.yaml --set checkpoint.backbone="$backbone"; n=$((n + 1))
else
    fail "no backbone model for configs/unsupervised_clf.yaml"
fi
[ "$n" -eq "$(ls configs/*.yaml | wc -l)" ] || fail "ran $n configs of $(ls configs/*.yaml | wc -l)"

finish t_e2e_configs "$n configs"

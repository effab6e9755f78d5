#!/usr/bin/env bash
# t_e2e_configs.sh - every shipped config in configs/ runs end to end, shortened (500
# training images, 200 test images, 1 epoch): exit 0; a finite final test error (0..100%)
# is printed; the event file passes tfevents-dump with the tags the config's mode and
# eval.softmax call for; the model file is written and `ffrun eval` reads it (on a 200-image
# copy of the test set) and prints a finite test error (an unsupervised backbone has no
# classifier: eval must say so). unsupervised_clf.yaml runs on the backbone that
# unsupervised_backbone.yaml just wrote. CIFAR-10 configs (data.format cifar10) run on a
# small generated set in CIFAR-10's binary format (tests/make_cifar_fixture.py), never the
# real data, and their image summaries must be colour (RGB) images. The figures of the full runs are in docs/RESULTS.md.
set -u
source "$(dirname "$0")/script_lib.sh"

# a small copy of MNIST (raw IDX): ffrun eval reads the whole test set of --data
small=$tmp/small
/usr/bin/python3 - "$root/data/mnist" "$small" <<'PY2' || fail "cannot make the small data set"
import gzip, os, sys
src, dst = sys.argv[1:]
os.makedirs(dst)
for prefix, n in (("train", 500), ("t10k", 200)):
    for kind, hdr, rec in (("images-idx3-ubyte", 16, 784), ("labels-idx1-ubyte", 8, 1)):
        b = gzip.open(os.path.join(src, "%s-%s.gz" % (prefix, kind))).read()
        out = bytearray(b[:hdr + n * rec])
        out[4:8] = n.to_bytes(4, "big")
        open(os.path.join(dst, "%s-%s" % (prefix, kind)), "wb").write(out)
PY2

# a small colour set in CIFAR-10's format: 500 training and 200 test images
cifar=$tmp/cifar
/usr/bin/python3 tests/make_cifar_fixture.py "$cifar" 100 200 || fail "cannot make the CIFAR fixture"
eval_data=$small

# a percentage printed by ffrun is finite and within 0..100
finite_pct() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]] && /usr/bin/python3 -c \
    "import sys; sys.exit(0 if 0 <= float(sys.argv[1]) <= 100 else 1)" "$1"; }

# the tags a run of this mode must write (test/error_softmax: when eval.softmax is on; a
# recurrent net: each layer's goodness per iteration, and no negative inputs or goodness
# histograms, as its label is not in the image)
expected_tags() { # expected_tags MODE SOFTMAX RECURRENT_ITERATIONS
    local t="config _hparams_/session_start_info _hparams_/session_end_info"
    case $1 in
    unsupervised_clf) t="$t clf/loss clf/lr test/error_softmax" ;;
    *) t="$t layer0/loss layer0/goodness_pos layer0/goodness_neg loss/total train/learning_rate"
       t="$t layer0/weights layer0/biases inputs/positive"
       if [ "${3:-0}" -gt 0 ]; then
           t="$t layer0/goodness_pos_iter0 layer0/goodness_neg_iter$3"
       else
           t="$t layer0/goodness_pos_hist inputs/negative"
       fi
       [ "$1" = supervised ] && t="$t test/error_goodness"
       [ "$1" = unsupervised_backbone ] && t="$t inputs/masks"
       [ "$2" = true ] && t="$t test/error_softmax" ;;
    esac
    echo "$t"
}

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
    err=$(sed -n 's/^test error ([a-z ]*readout): final \([^%]*\)%.*/\1/p' "$tmp/$name.out" | head -1)
    finite_pct "$err" || { fail "$cfg printed no finite final test error ('$err')"; cat "$tmp/$name.out"; return; }
    ok "$cfg: 1 epoch on 500 images, test error $err%"
    check_events "$cfg" "$name" "$@"
    check_model "$cfg" "$name"
}

# the event file the run names is intact and holds the expected tags
check_events() { # check_events CONFIG NAME EXTRA...
    local cfg=$1 name=$2; shift 2
    local ev mode softmax iters missing=""
    ev=$(sed -n 's/^event file: *//p' "$tmp/$name.out")
    [ -f "$ev" ] || { fail "$cfg: no event file ('$ev')"; return; }
    "$build/ffrun" "$cfg" "${short[@]}" "$@" --dry-run > "$tmp/$name.resolved" 2>&1
    mode=$(sed -n 's/^mode: *//p' "$tmp/$name.resolved" | head -1)
    softmax=$(sed -n '/^eval:/,/^[a-z]/s/^ *softmax: *//p' "$tmp/$name.resolved" | head -1)
    [ -n "$mode" ] && [ -n "$softmax" ] || { fail "$cfg: no mode/eval.softmax in --dry-run"; return; }
    iters=$(sed -n 's/^ *recurrent.iterations: *//p' "$tmp/$name.resolved" | head -1)
    "$build/tfevents-dump" "$ev" > "$tmp/$name.dump" 2>&1 \
        || { fail "$cfg: tfevents-dump rejects $ev"; cat "$tmp/$name.dump"; return; }
    for tag in $(expected_tags "$mode" "$softmax" "${iters:-0}"); do
        grep -qE "^  $tag +" "$tmp/$name.dump" || missing="$missing $tag"
    done
    [ -z "$missing" ] && ok "$cfg: event file verified, $(expected_tags "$mode" "$softmax" "${iters:-0}" | wc -w) expected tags" \
        || { fail "$cfg: event file lacks$missing"; cat "$tmp/$name.dump"; }
    if [ "$eval_data" = "$cifar" ] && [ "$mode" != unsupervised_clf ]; then # colour: RGB summaries
        /usr/bin/python3 tests/tb_reader.py "$ev" > "$tmp/$name.tb" 2>&1 || fail "$cfg: tb_reader"
        local grey
        grey=$(grep -E "^  (inputs/positive|inputs/negative|layer0/receptive_fields) " "$tmp/$name.tb" \
               | grep -cv "colorspace 3 (colour)")
        [ "$grey" -eq 0 ] && [ "$(grep -cE '^  inputs/positive ' "$tmp/$name.tb")" -eq 1 ] \
            && ok "$cfg: inputs and first-layer filters are colour (RGB) images" \
            || { fail "$cfg: image summaries not in colour"; grep -E "images" "$tmp/$name.tb"; }
    fi
}

# the model the run names exists and ffrun eval reads it
check_model() { # check_model CONFIG NAME
    local cfg=$1 name=$2 model rc err
    model=$(sed -n 's/^model: *//p' "$tmp/$name.out")
    [ -f "$model" ] || { fail "$cfg wrote no model ('$model')"; return; }
    timeout 120 "$build/ffrun" eval "$model" --data "$eval_data" > "$tmp/$name.eval" 2>&1
    rc=$?
    if [[ $name == *unsupervised_backbone ]]; then # read, but it has no classifier
        [ $rc -eq 2 ] && grep -q "is an unsupervised backbone: it has no classifier" "$tmp/$name.eval" \
            && ok "$cfg: ffrun eval reads the model (a backbone: exit 2, no classifier)" \
            || { fail "$cfg: ffrun eval $model -> $rc"; cat "$tmp/$name.eval"; }
        return
    fi
    err=$(sed -n 's/^test error ([a-z ]*readout, 200 images): \([^%]*\)%$/\1/p' "$tmp/$name.eval" | head -1)
    if [ $rc -eq 0 ] && finite_pct "$err"; then
        ok "$cfg: ffrun eval reads the model: test error $err% on 200 images"
    else
        fail "$cfg: ffrun eval $model -> $rc, test error '$err'"; cat "$tmp/$name.eval"
    fi
}

n=0
for cfg in configs/*.yaml; do
    case $(basename "$cfg") in *unsupervised_clf.yaml) continue ;; esac # after their backbones
    # a config for another data set (fashion_*.yaml) runs on MNIST where that data is missing
    dir=$(sed -n 's/^ *dir: *\([^ #]*\).*/\1/p' "$cfg" | head -1)
    eval_data=$small
    if grep -qE '^ *(format: *cifar10|dir: *data/cifar10)' "$cfg"; then
        eval_data=$cifar
        run_config "$cfg" --set data.dir="$cifar"
    elif [ -n "$dir" ] && [ ! -d "$dir" ]; then
        echo "  ($cfg: $dir missing, run on data/mnist)"
        run_config "$cfg" --set data.dir=data/mnist
    else
        run_config "$cfg"
    fi
    eval_data=$small
    n=$((n + 1))
done
# each classifier config on the backbone its backbone config just wrote (MNIST, CIFAR-10)
for pre in "" cifar_; do
    backbone=$(ls -t "$tmp"/models/unsupervised_backbone_*_cfg_${pre}unsupervised_backbone_*.ffm 2>/dev/null | head -1)
    eval_data=$small
    extra=()
    [ -n "$pre" ] && { eval_data=$cifar; extra=(--set data.dir="$cifar"); }
    if [ -n "$backbone" ]; then
        run_config "configs/${pre}unsupervised_clf.yaml" --set checkpoint.backbone="$backbone" "${extra[@]}"
        n=$((n + 1))
    else
        fail "no backbone model for configs/${pre}unsupervised_clf.yaml"
    fi
done
[ "$n" -eq "$(ls configs/*.yaml | wc -l)" ] || fail "ran $n configs of $(ls configs/*.yaml | wc -l)"

finish t_e2e_configs "$n configs"

#!/usr/bin/env bash
# t_hostile.sh [BUILD] - hostile input (issue 20): config strings that are not UTF-8 text,
# empty directories, deep nesting, odd numbers and options; train and test images of
# different sizes or too small for the label; model files with a valid CRC but counters and
# a sample order that would index out of bounds on --resume (crafted by tests/ffm.py patch).
# Every case: the exit status, the message, and no sanitizer report (make check-asan runs
# this script on build-asan too). BUILD defaults to $FF_BUILD, then build.
set -u
FF_BUILD=${1:-${FF_BUILD:-build}}
source "$(dirname "$0")/script_lib.sh"
case $build in /*) ffrun=$build/ffrun ;; *) ffrun=$root/$build/ffrun ;; esac
py=/usr/bin/python3
ffm=$root/tests/ffm.py
cd "$tmp" && ln -s "$root/data" data
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

expect() { # expect STATUS PATTERN CMD... : exit status, a line matching PATTERN, no sanitizer
    local want=$1 pat=$2; shift 2 # report, within 30 s (a bad resume used to loop for ever)
    timeout -k 5 30 "$@" > out 2>&1
    local rc=$?
    if [ $rc -eq "$want" ] && grep -qE -- "$pat" out && ! grep -qE 'Sanitizer|runtime error' out; then
        ok "-> $rc, /$pat/"
    else
        fail "$(printf '%q ' "$@" | cut -c1-200)-> $rc (want $want, /$pat/), output:"; head -8 out
    fi
}

# a small supervised fc net that trains in a fraction of a second
cat > base.yaml <<'Y'
seed: 3
data: {dir: data/mnist, train_limit: 200, test_limit: 100}
model: {layers: [{type: fc, units: 8}, {type: fc, units: 8}]}
train: {epochs: 1, batch_size: 50}
log: {every: 10, histograms: 0, images: 0}
Y
# IDX datasets: DIR PREFIX N ROWS COLS
mkidx() {
    mkdir -p "$1" && $py - "$@" <<'P'
import struct, sys
d, prefix, n, rows, cols = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
with open("%s/%s-images-idx3-ubyte" % (d, prefix), "wb") as f:
    f.write(struct.pack(">IIII", 0x803, n, rows, cols) + bytes((i * 7) % 256 for i in range(n * rows * cols)))
with open("%s/%s-labels-idx1-ubyte" % (d, prefix), "wb") as f:
    f.write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
P
}
mkidx mix train 200 28 28; mkidx mix t10k 100 20 20
mkidx px3 train 100 3 3; mkidx px3 t10k 50 3 3
mkidx px1 train 100 1 1; mkidx px1 t10k 50 1 1

echo "-- item 2: config strings are UTF-8 text without control characters or noncharacters"
expect 2 "^ffrun: --set log.dir=\.\.\.: expected UTF-8 text without control characters or noncharacters for log.dir, got an invalid UTF-8 byte 0xff at byte 5$" \
    "$ffrun" base.yaml --set $'log.dir=runs\xff'
expect 2 "for data.dir, got the control character U\+0085 at byte 11$" "$ffrun" base.yaml --set $'data.dir=data/mnist\xc2\x85'
expect 2 "for checkpoint.dir, got the noncharacter U\+FFFE at byte 2$" "$ffrun" base.yaml --set $'checkpoint.dir=m\xef\xbf\xbe'
printf 'checkpoint: {dir: "models\\x85"}\n' | cat base.yaml - > nel.yaml
expect 2 "^ffrun: nel.yaml:6:19: expected UTF-8 text .* for checkpoint.dir, got the control character U\+0085 at byte 7$" "$ffrun" nel.yaml
# what the config accepts round-trips into the model file: train, then load it back
odd_log=$'runs/ünï #: "q" \'s\'' odd_ckpt=$'mödels: [x] #1'
expect 0 "^finished after 1 epoch" "$ffrun" base.yaml --quiet --set "log.dir=$odd_log" --set "checkpoint.dir=$odd_ckpt"
model=$(ls "$odd_ckpt"/*_epoch001.ffm 2>/dev/null)
expect 0 "^test error \(goodness readout, 10000 images\)" "$ffrun" eval "$model" --softmax-epochs 0
# eval --layers: the 2-layer net's default readout is layer 1 alone; bad lists exit 2
grep "^test error (goodness" out > default.err
expect 0 "^test error \(goodness readout" "$ffrun" eval "$model" --softmax-epochs 0 --layers 1
grep "^test error (goodness" out | cmp -s default.err - && ok "eval --layers 1: the default readout" \
    || fail "eval --layers 1 differs from the default readout: $(cat default.err; grep '^test' out)"
expect 2 "^ffrun: eval.layers.0 is 2, but the net has 2 trainable layers" \
    "$ffrun" eval "$model" --softmax-epochs 0 --layers 2
expect 2 "^ffrun: eval: --layers needs distinct trainable-layer indices \(0-based\), comma-separated, got '1,1'" \
    "$ffrun" eval "$model" --softmax-epochs 0 --layers 1,1
# eval --set: the new head's clf.* keys, validated against the model's config
expect 0 "^test error \(softmax readout, head trained 1 epoch\(s\) now\)" \
    "$ffrun" eval "$model" --set clf.lr=0.01
expect 2 "^ffrun: clf.layers.0 is 5, but model.layers has only 2 layers" \
    "$ffrun" eval "$model" --set 'clf.layers=[5]'
expect 2 "^ffrun: clf.norm batch reads the competition loss's channel statistics: it needs model.hand_on batch" \
    "$ffrun" eval "$model" --set clf.norm=batch
expect 2 "^ffrun: eval: --set takes the new softmax head's clf.\* keys only \(the net is the model's\), got 'model.layers=\[\]'" \
    "$ffrun" eval "$model" --set 'model.layers=[]'
$py "$ffm" info "$model" > info
grep -qF "run_dir: $odd_log/supervised/" info && ok "the odd log.dir is the model's run directory" \
    || fail "run directory of $model"

echo "-- item 5: train and test images of different sizes"
# a conv net has the same parameters for 28x28 and 20x20 inputs: eval gets as far as the
# softmax head, which it trains on the training set
expect 0 "^finished" "$ffrun" base.yaml --quiet --name conv --set checkpoint.dir=conv \
    --set 'model.layers=[{type: conv, channels: 4, kernel: 5, stride: 3}, {type: conv, channels: 4, kernel: 2}]'
expect 1 "^ffrun: mix/train-images-idx3-ubyte has 1x28x28 images but mix/t10k-images-idx3-ubyte has 1x20x20; both sets must hold images of one shape \(channels x height x width\)$" \
    "$ffrun" eval conv/supervised_*_conv_epoch001.ffm --data mix
# training and the classifier check it when they load the data (no assertion, no overflow)
timeout -k 5 30 "$ffrun" base.yaml --quiet --set data.dir=mix > out 2>&1
rc=$?
if grep -qE 'Sanitizer|runtime error' out; then
    fail "training on mix: sanitizer report"; head -8 out
elif [ $rc -eq 1 ] && grep -q "has 1x28x28 images but mix/t10k-images-idx3-ubyte has 1x20x20" out; then
    ok "training on mix -> 1, train and test sizes differ"
else
    fail "training on mix -> $rc"; head -8 out
fi

echo "-- item 6: images too small for the overlay label"
expect 2 "^ffrun: model.label_embedding overlay writes the label into the first 10 pixels, but the images are 3x3; use channels or pattern$" \
    "$ffrun" base.yaml --set data.dir=px3
expect 2 "but the images are 1x1; use channels or pattern$" "$ffrun" base.yaml --set data.dir=px1
expect 2 "but the images are 3x3" "$ffrun" eval "$model" --data px3 --softmax-epochs 0
expect 0 "^finished" "$ffrun" base.yaml --set data.dir=px3 --set model.label_embedding=pattern --set checkpoint.dir=p3
expect 0 "^finished" "$ffrun" base.yaml --set data.dir=px1 --set model.label_embedding=channels --set checkpoint.dir=c1

echo "-- item 7: --resume validates a CRC-valid header like untrusted input"
expect 130 "interrupted at step 2" "$ffrun" base.yaml --quiet --name cut --set checkpoint.dir=cut --max-steps 2
cut=$(ls cut/*_cut_step0000002.ffm 2>/dev/null)
craft() { $py "$ffm" patch "$cut" "$1" "${@:2}" || fail "ffm.py patch $*"; }
craft same.ffm batch=2
expect 0 "^finished after 1 epoch" "$ffrun" --resume same.ffm --quiet   # the generator's files are valid
craft neg.ffm batch=-1
expect 1 "^ffrun: neg.ffm: corrupt model file: batch is -1, must be >= 0$" "$ffrun" --resume neg.ffm
craft past.ffm batch=4
expect 1 "^ffrun: past.ffm: corrupt model file: batch is 4, past the end of an epoch" "$ffrun" --resume past.ffm
craft oob.ffm order.3=200
expect 1 "^ffrun: oob.ffm: corrupt model file: sample order entry 3 is 200, past the training set" "$ffrun" --resume oob.ffm
craft neg_order.ffm order.5=-7
expect 1 "sample order entry 5 is -7, past the training set" "$ffrun" --resume neg_order.ffm
craft twice.ffm order.0=0 order.1=0
expect 1 "sample order entry 1 is 0, given twice \(the order must be a permutation\)" "$ffrun" --resume twice.ffm
craft epoch.ffm epoch=2147483647
expect 1 "^ffrun: epoch.ffm: corrupt model file: epoch is 2147483647, must be 0 to 1000000$" "$ffrun" --resume epoch.ffm
craft step.ffm step=-1
expect 1 "step is -1, must be 0 to 2\^53" "$ffrun" --resume step.ffm
craft optt.ffm opt_t=-5
expect 1 "optimiser step count is -5" "$ffrun" --resume optt.ffm
craft rng.ffm rng=0
expect 1 "the RNG state is all zero" "$ffrun" --resume rng.ffm
expect 1 "^ffrun: neg.ffm: corrupt model file: batch is -1" "$ffrun" eval neg.ffm

echo "-- item 9: nesting depth is bounded while parsing"
$py -c "print('a: ' + '[' * 1000000)" > deep.yaml
start=$(date +%s%N)
expect 2 "^ffrun: deep.yaml:1:67: lists and mappings nested deeper than 64 levels" "$ffrun" deep.yaml
ms=$((($(date +%s%N) - start) / 1000000))
[ $ms -lt 1000 ] && ok "a million nested '[' rejected in $ms ms" || fail "a million nested '[' took $ms ms"

echo "-- item 14: empty directories, unreadable configs, --name, eval options, tiny numbers"
expect 2 "^ffrun: --set log.dir=: log.dir must not be empty" "$ffrun" base.yaml --set log.dir=
expect 2 "^ffrun: --set checkpoint.dir=: checkpoint.dir must not be empty" "$ffrun" base.yaml --set checkpoint.dir=
printf 'checkpoint:\n  dir:\n' | cat base.yaml - > nodir.yaml
expect 2 "^ffrun: nodir.yaml:7:7: checkpoint.dir must not be empty" "$ffrun" nodir.yaml
[ ! -e /supervised ] && ok "nothing written at /supervised" || fail "/supervised exists"
expect 2 "^ffrun: nope.yaml: cannot open: No such file" "$ffrun" nope.yaml
expect 2 "^ffrun: mix: not a regular file \(a directory\)" "$ffrun" mix
expect 2 "^ffrun: --name is too long \(70 characters, at most 63\)" "$ffrun" base.yaml --name "$(printf 'n%.0s' {1..70})"
expect 2 "^ffrun: eval: --softmax-epochs needs an integer from 0 to 1000, got 'abc'" \
    "$ffrun" eval "$model" --softmax-epochs abc
expect 2 "^ffrun: --set optimizer.lr=1e-50: optimizer.lr: 1e-50 is too small for a 32-bit float" \
    "$ffrun" base.yaml --set optimizer.lr=1e-50
echo "-- issue 38 item 5: --resume of a finished run's final model changes nothing"
# (main: exit 0 after appending a second _hparams_/session_end_info at the same step, which
# tfevents-dump and tb_reader then rejected); more epochs asked for continue it correctly
"$ffrun" base.yaml --quiet --name fin > fin.out 2>&1 || fail "training for the resume: $(tail -2 fin.out)"
fin=$(ls models/*_fin_epoch001.ffm 2>/dev/null)
fin_dir=$(ls -d runs/supervised/*_fin 2>/dev/null)
before=$(cat "$fin_dir"/events.* models/*_fin* 2>/dev/null | cksum)
expect 0 "is the final model of a finished run \(epoch 1 of 1\): nothing to resume, nothing changed" \
    "$ffrun" --resume "$fin"
[ "$(cat "$fin_dir"/events.* models/*_fin* 2>/dev/null | cksum)" = "$before" ] &&
    [ "$(ls "$fin_dir" | grep -c events)" -eq 1 ] &&
    ok "the finished run's event file and models are untouched" || fail "the finished run changed: $(ls "$fin_dir" models)"
expect 0 "^finished after 2 epoch" "$ffrun" --resume "$fin" --quiet --set train.epochs=2
"$(dirname "$ffrun")/tfevents-dump" "$fin_dir"/events.* > /dev/null 2> dump.err &&
    $py "$root/tests/tb_reader.py" "$fin_dir" > /dev/null 2> reader.err &&
    [ -n "$(ls models/*_fin_epoch002.ffm 2>/dev/null)" ] &&
    ok "continued for a second epoch: epoch002 model, tfevents-dump and tb_reader accept the run" ||
    fail "continuing a finished run: $(head -3 dump.err reader.err)"

echo "-- issue 38 items 6-7: the sweep file: nesting, its name, duplicates, seeds; raw bytes escaped"
$py -c "print('config: base.yaml\naxes: ' + '[' * 1000000)" > deepsweep.yaml
start=$(date +%s%N)
expect 2 "^ffrun: deepsweep.yaml:2:70: lists and mappings nested deeper than 64 levels" "$ffrun" sweep deepsweep.yaml --dry-run
ms=$((($(date +%s%N) - start) / 1000000))
[ $ms -lt 1000 ] && ok "a sweep file of a million nested '[' rejected in $ms ms" || fail "a million nested '[' in a sweep file took $ms ms"
mkdir -p sweepdir
expect 2 "^ffrun: sweepdir/: not a regular file \(a directory\)" "$ffrun" sweep sweepdir/
printf 'config: base.yaml\nname: ../../../x\naxes:\n  optimizer.lr: [0.1, 0.2]\n' > up.yaml
expect 2 "^ffrun: up.yaml:2:7: name: expected one plain directory name .*, got '\.\./\.\./\.\./x'$" "$ffrun" sweep up.yaml --dry-run
printf 'config: base.yaml\naxes:\n  optimizer.lr: [0.1, 0.2]\n  optimizer.lr: [0.3]\n' > dup.yaml
expect 2 "^ffrun: dup.yaml:4:3: duplicate key 'optimizer.lr' \(first at 3:3\)" "$ffrun" sweep dup.yaml --dry-run
expect 2 "^ffrun: --sweep: axis optimizer.lr is given twice" "$ffrun" base.yaml --sweep optimizer.lr=0.1 --sweep optimizer.lr=0.2 --dry-run
expect 2 "^ffrun: --sweep: an axis on seed and seeds: 2 both set the seed" "$ffrun" base.yaml --sweep seed=1,2 --seeds 2 --dry-run
printf 'config: base.yaml\nseeds: 2\naxes:\n  seed: [1, 2]\n' > seedaxis.yaml
expect 2 "^ffrun: seedaxis.yaml:4:3: an axis on seed and seeds" "$ffrun" sweep seedaxis.yaml --dry-run
expect 2 "^ffrun: --sweep optimizer.lr=0\.1\\\\xff: .*got '0\.1\\\\xff'$" "$ffrun" base.yaml --sweep $'optimizer.lr=0.1\xff' --dry-run
! LC_ALL=C grep -q $'\xff' out && ok "no raw 0xff byte echoed" || fail "a raw 0xff byte in: $(od -c out | head -3)"

echo "-- issue 38 item 7: eval --data '', eval of a model its config does not fit, stale step models"
expect 2 "^ffrun: eval: --data needs a directory, got ''" "$ffrun" eval "$fin" --data ''
$py "$ffm" patch "$fin" unfit.ffm 'config=units: 8->units: 9' || fail "ffm.py patch config"
expect 1 "^ffrun: unfit.ffm: cannot evaluate: the model has [0-9]+ parameters" "$ffrun" eval unfit.ffm
! grep -q "cannot resume" out && ok "eval does not speak of resuming" || fail "eval says: $(cat out)"
# a run resumed from its own step model replaces it with the next one (main: each kill and
# resume cycle left one more stale step model)
"$ffrun" base.yaml --quiet --name cyc --set train.epochs=2 --max-steps 3 > cyc.out 2>&1
s3=$(ls models/*_cyc_step0000003.ffm 2>/dev/null)
"$ffrun" --resume "$s3" --quiet --max-steps 6 > cyc2.out 2>&1
[ -n "$s3" ] && [ ! -e "$s3" ] && [ "$(ls models/*_cyc_step*.ffm 2>/dev/null | wc -l)" -eq 1 ] &&
    ok "resumed from step 3, stopped at 6: only the step-6 model is left" ||
    fail "step models after one resume: $(ls models/*_cyc_* | tr '\n' ' ')"
"$ffrun" --resume models/*_cyc_step0000006.ffm --quiet > cyc3.out 2>&1
[ "$(ls models/*_cyc_step*.ffm 2>/dev/null | wc -l)" -eq 0 ] && [ -n "$(ls models/*_cyc_epoch002.ffm 2>/dev/null)" ] &&
    ok "resumed to the end: no step model left beside the final one" ||
    fail "step models after the end: $(ls models/*_cyc_* | tr '\n' ' ')"

finish t_hostile "on $build"

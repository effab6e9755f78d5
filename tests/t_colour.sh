#!/usr/bin/env bash
# t_colour.sh - 3-channel (colour) data end to end, on a small generated set in CIFAR-10's
# binary format (tests/make_cifar_fixture.py; never the real data, no network):
#   --dry-run names the detected format and the 3x32x32 shape;
#   supervised CNN (standardised channels, jitter 4 + flip, label planes): learns (test
#     error far below chance), writes RGB image summaries holding colour; stopped with
#     --max-steps and resumed, it ends bit-identical to the uninterrupted run;
#     ffrun eval reads its model and reports the run's final goodness error;
#   channel-wise competition net (cifar_deep's recipe, shortened) trains and evaluates;
#   unsupervised_backbone on colour hybrids (cached with their shape, loaded again) and
#     unsupervised_clf on it beat chance;
#   data parallel and pipeline under mpirun on the colour net (pipeline: bit-identical
#     to one process; data parallel: ranks bit-identical after every step);
#   a sweep's --dry-run sizes its runs from the colour data;
#   bad data: a truncated batch, a label byte over 9, a missing batch file, a folder of
#     two formats: exit 2, the file named.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1
cd "$tmp" || exit 1
$py "$root/tests/make_cifar_fixture.py" cifar 120 300 || fail "fixture"
common=(--set data.dir=cifar --set log.dir=runs --set checkpoint.dir=models --set data.cache=cache)

cat > cnn.yaml <<'Y'
mode: supervised
data: {normalize: channel}
model:
  label_embedding: channels
  layers:
    - {type: conv, channels: 16, kernel: 5, stride: 2, padding: 2}
    - {type: pool, kind: max, kernel: 2, stride: 2}
    - {type: conv, channels: 24, kernel: 3, stride: 1, padding: 1}
train: {epochs: 3, batch_size: 25, jitter: 4, flip: true, passes: joint, loss: pairwise, logit_scale: 10}
eval: {every: 1, softmax: true}
log: {every: 6, images: 1, histograms: 1}
Y

# -- the data is recognised
"$ffrun" cnn.yaml "${common[@]}" --dry-run > dry.out 2>&1 || fail "--dry-run: $(tail -2 dry.out)"
grep -q "^# data: cifar, format cifar10 (detected), 600 training images of 3x32x32" dry.out &&
    grep -q "^# model (input 13x32x32)" dry.out && ok "--dry-run: cifar10 detected, 3x32x32 images, 13x32x32 inputs with the label planes" ||
    { fail "--dry-run"; grep "^#" dry.out; }

# -- supervised CNN: learns, colour summaries, resume bit for bit, eval
"$ffrun" cnn.yaml "${common[@]}" --name full > full.out 2>&1 || fail "cnn run: $(tail -3 full.out)"
err=$(sed -n 's/^test error (goodness readout): final \([0-9.]*\)%.*/\1/p' full.out)
sm=$(sed -n 's/^test error (softmax readout): final \([0-9.]*\)%.*/\1/p' full.out)
awk -v e="$err" -v s="$sm" 'BEGIN {exit !(e != "" && s != "" && e < 60 && s < 45)}' &&
    ok "colour CNN learns: goodness $err%, softmax $sm% (chance 90%)" || { fail "cnn error '$err' '$sm'"; tail -5 full.out; }
$py "$root/tests/tb_reader.py" runs/supervised/*_full > tb.out 2>&1 || { fail "tb_reader"; tail -5 tb.out; }
n_rgb=$(grep -cE "^  (inputs/positive|inputs/negative|layer0/receptive_fields) .*colorspace 3 \(colour\)" tb.out)
[ "$n_rgb" -eq 3 ] && ok "inputs, negatives and first-layer filters are RGB images holding colour" ||
    { fail "colour images: $n_rgb of 3"; grep images tb.out; }
"$ffrun" cnn.yaml "${common[@]}" --name part --max-steps 30 > part.out 2>&1
rc=$?
step=$(ls models/*_part_step0000030.ffm 2>/dev/null)
[ $rc -eq 130 ] && [ -n "$step" ] || fail "--max-steps 30: exit $rc, model '$step'"
"$ffrun" --resume "$step" > res.out 2>&1 || fail "resume: $(tail -3 res.out)"
$py "$root/tests/ffm.py" same-weights models/*_full_epoch003.ffm models/*_part_epoch003.ffm > same.out 2>&1 &&
    ok "stopped at step 30 and resumed: bit-identical to the uninterrupted run ($(cat same.out))" ||
    { fail "resumed run differs"; cat same.out; }
"$ffrun" eval models/*_full_epoch003.ffm > eval.out 2>&1 || fail "eval: $(tail -3 eval.out)"
ev=$(sed -n 's/^test error (goodness readout, 300 images): \([0-9.]*\)%$/\1/p' eval.out)
[ -n "$ev" ] && [ "$ev" = "$err" ] && ok "ffrun eval: $ev%, the run's final goodness error" ||
    { fail "eval '$ev' vs run '$err'"; cat eval.out; }

# -- the channel-wise competition recipe of configs/cifar_deep.yaml, shortened
"$ffrun" "$root/configs/cifar_deep.yaml" "${common[@]}" --name deep --set train.epochs=2 \
    --set 'model.layers.0.train_epochs=1' --set 'model.layers.1.train_epochs=1' \
    --set 'model.layers.3.train_epochs=2' --set 'model.layers.4.train_epochs=2' > deep.out 2>&1 ||
    fail "cifar_deep recipe: $(tail -3 deep.out)"
sm=$(sed -n 's/^test error (softmax readout): final \([0-9.]*\)%.*/\1/p' deep.out)
awk -v s="$sm" 'BEGIN {exit !(s != "" && s < 45)}' && ok "competition net on colour: softmax $sm%" ||
    { fail "competition net '$sm'"; tail -4 deep.out; }

# -- unsupervised: colour hybrids (cached with their shape), then the classifier
cat > bb.yaml <<'Y'
mode: unsupervised_backbone
data: {normalize: channel}
model:
  layers:
    - {type: local, channels: 4, kernel: 7, stride: 3}
    - {type: fc, units: 100}
train: {epochs: 2, batch_size: 25, peer_norm: 0.03}
log: {every: 6, images: 1}
Y
"$ffrun" bb.yaml "${common[@]}" --name bb > bb.out 2>&1 || fail "backbone: $(tail -3 bb.out)"
grep -q "negatives: 600 hybrid images generated and cached" bb.out || { fail "no hybrid cache"; cat bb.out; }
"$ffrun" bb.yaml "${common[@]}" --name bb2 --set train.epochs=1 > bb2.out 2>&1
grep -q "negatives: 600 hybrid images loaded from cache" bb2.out && ok "colour hybrids cached and loaded again" ||
    { fail "hybrid cache not reused"; cat bb2.out; }
$py "$root/tests/tb_reader.py" runs/unsupervised_backbone/*_bb > tbu.out 2>&1 || fail "tb_reader (backbone)"
grep -qE "^  inputs/negative .*colorspace 3 \(colour\)" tbu.out && grep -qE "^  inputs/masks .*colorspace 1" tbu.out &&
    ok "hybrid negatives shown in colour, their masks in grey" || { fail "backbone images"; grep images tbu.out; }
backbone=$(ls models/unsupervised_backbone_*_bb_epoch002.ffm)
cat > clf.yaml <<'Y'
mode: unsupervised_clf
train: {batch_size: 25}
clf: {epochs: 3, lr: 0.003}
Y
"$ffrun" clf.yaml "${common[@]}" --name clf --set checkpoint.backbone="$backbone" > clf.out 2>&1 ||
    fail "classifier: $(tail -3 clf.out)"
ce=$(sed -n 's/^test error (softmax readout): final \([0-9.]*\)%.*/\1/p' clf.out)
awk -v e="$ce" 'BEGIN {exit !(e != "" && e < 60)}' && ok "linear classifier on the colour backbone: $ce%" ||
    { fail "classifier error '$ce'"; tail -4 clf.out; }

# -- under Open MPI: pipeline bit-identical to one process, data parallel consistent
if command -v mpirun > /dev/null && ldd "$ffrun" | grep -q libmpi; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
    export OMPI_MCA_rmaps_base_oversubscribe=1 HWLOC_COMPONENTS=-gl
    mp=("${common[@]}" --quiet --set train.epochs=1 --set eval.softmax=false --set log.images=0
        --set log.histograms=0)
    "$ffrun" cnn.yaml "${mp[@]}" --name p1 > p1.out 2>&1 || fail "one process: $(tail -2 p1.out)"
    timeout -k 5 300 mpirun --oversubscribe -np 2 "$ffrun" cnn.yaml "${mp[@]}" --name p2 \
        --set parallel.mode=pipeline > p2.out 2>&1 || fail "pipeline: $(tail -3 p2.out)"
    $py "$root/tests/ffm.py" same-weights models/*_p1_epoch001.ffm models/*_p2_epoch001.ffm > /dev/null &&
        ok "pipeline on 2 ranks, colour net: bit-identical to one process" || fail "pipeline differs"
    FF_PARALLEL_CHECK=1 timeout -k 5 300 mpirun --oversubscribe -np 2 "$ffrun" cnn.yaml "${mp[@]}" \
        --name d2 --set parallel.mode=data > d2.out 2>&1 &&
        ok "data parallel on 2 ranks, colour net: ranks bit-identical after every step" ||
        fail "data parallel: $(tail -3 d2.out)"
else
    fail "mpirun or an MPI build is missing (tools/deps.sh installs Open MPI)"
fi

# -- a sweep sizes its runs from the colour data
cat > sw.yaml <<Y
config: cnn.yaml
set: {data.dir: cifar}
axes: {train.jitter: [0, 4]}
Y
"$ffrun" sweep sw.yaml --dry-run > sw.out 2>&1 && grep -q "^total about [0-9.e+]* multiply-adds" sw.out &&
    ! grep -qE "^[0-9]+ +- " sw.out && ok "sweep --dry-run sizes colour runs" || { fail "sweep dry-run"; cat sw.out; }

# -- bad data: exit 2 and the file named
bad() { # bad NAME MUTATION PATTERN
    rm -rf "$1" && cp -r cifar "$1" && rm "$1/SHA256SUMS" && eval "$2"
    "$ffrun" cnn.yaml --set data.dir="$1" --set log.dir=runs_bad --quiet > "$1.out" 2>&1
    local rc=$?
    [ $rc -eq 2 ] && grep -qE "$3" "$1.out" && ok "$1: exit 2, $(head -c 110 "$1.out")" ||
        { fail "$1: exit $rc"; cat "$1.out"; }
}
bad trunc 'head -c 100000 cifar/data_batch_2.bin > trunc/data_batch_2.bin' "trunc/data_batch_2.bin: 100000 bytes is not a whole number"
bad label "$py -c \"import sys; b = bytearray(open('cifar/test_batch.bin','rb').read()); b[3073 * 5] = 11; open('label/test_batch.bin','wb').write(b)\"" \
    "label/test_batch.bin: record 5 .* has label 11"
bad missing 'rm missing/data_batch_4.bin' "missing/data_batch_4.bin: no such file"
bad mixed 'cp "$root"/data/mnist/train-images-idx3-ubyte.gz mixed/' "mixed holds files of two data set formats"
finish t_colour

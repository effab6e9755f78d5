#!/usr/bin/env bash
# t_recurrent.sh - the recurrent net (model.recurrent) end to end on a small net: it
# learns (random and hard negatives), --dry-run describes it, a run stopped mid-epoch and
# resumed ends bit-identical to the uninterrupted one, `ffrun eval` and `ffrun predict`
# read its model as the run did, its export rebuilt in PyTorch (tools/ffm_torch.py) scores
# as ffrun predict does, a sweep runs over it,
# the event file passes the independent reader, and (with Open MPI) data parallel on 2
# ranks matches one process. A small locally connected recurrent net on the CIFAR-10
# fixture (400 + 200 images): --dry-run, it learns, resumes bit-identically, `ffrun eval` agrees,
# export refuses it.
set -u
source "$(dirname "$0")/script_lib.sh"
py=/usr/bin/python3
ffrun=$root/$build/ffrun
[ -x "$ffrun" ] || ffrun=$build/ffrun

cat > "$tmp/rec.yaml" <<EOF
mode: supervised
seed: 3
data: {dir: $root/data/mnist, train_limit: 2000, test_limit: 500}
model:
  label_embedding: none
  layers:
    - {type: fc, units: 120}
    - {type: fc, units: 100}
  recurrent: {iterations: 4, damping: 0.3, eval_first: 2, eval_last: 3}
train: {epochs: 3, batch_size: 50, passes: joint, loss: threshold}
optimizer: {type: adam, lr: 0.002}
log: {every: 10, dir: $tmp/runs}
checkpoint: {dir: $tmp/models, minutes: 0}
EOF
cfg=$tmp/rec.yaml

# --dry-run describes the iterations, the top-down weights and the readout
"$ffrun" "$cfg" --dry-run > "$tmp/dry" 2>&1 || fail "--dry-run exited $?"
if grep -q "then 4 synchronous iterations" "$tmp/dry" &&
   grep -q "layer 0 <- layer 1 \[120 x 100\]; layer 1 <- label \[100 x 10\]" "$tmp/dry" &&
   grep -q "mean over iterations 2-3 of the summed goodness of layers 0,1" "$tmp/dry" &&
   grep -qE "^0 +fc +120x1x1 +106200 " "$tmp/dry"; then
    ok "--dry-run describes the recurrent net (top-down weights counted in the params)"
else
    fail "--dry-run: $(grep '^#\|^0 ' "$tmp/dry")"
fi

# it learns: test error well below chance after 3 epochs, loss falling
"$ffrun" "$cfg" --name whole > "$tmp/whole.out" 2>&1 || { fail "training exited $?"; cat "$tmp/whole.out"; }
err=$(sed -n 's/^epoch 3\/3 .*test error \([0-9.]*\)%.*/\1/p' "$tmp/whole.out")
if $py -c "import sys; sys.exit(0 if float(sys.argv[1]) < 40 else 1)" "${err:-100}"; then
    ok "recurrent net learns: test error $err% after 3 epochs on 2,000 images (chance 90%)"
else
    fail "recurrent net did not learn: test error ${err:-?}%"; cat "$tmp/whole.out"
fi
final=$(ls "$tmp"/models/*_whole_epoch003.ffm 2>/dev/null | head -1)
[ -n "$final" ] && ok "final model written" || fail "no final model"

# the event file: the usual tags and how each layer settles (goodness per iteration, 0 the
# bottom-up pass, for positives and negatives), every record valid; the per-iteration
# no inputs/negative (the label is clamped at the top, not in the image)
tags=layer0/loss,layer0/goodness_pos,layer1/goodness_neg,loss/total,test/error_goodness
tags=$tags,train/learning_rate,config,layer0/goodness_pos_iter0,layer0/goodness_neg_iter4
tags=$tags,layer1/goodness_pos_iter4,layer1/goodness_neg_iter2,inputs/positive
if $py tests/tb_reader.py --expect-tags "$tags" --scalars "$tmp/sc.txt" "$tmp/runs" > "$tmp/tb" 2>&1; then
    ok "tb_reader accepts the run, with each layer's goodness at iterations 0-4"
else
    fail "tb_reader: $(tail -3 "$tmp/tb")"
fi
# after training, positives settle to a higher goodness than negatives at the last iteration
if awk '$2 == "layer1/goodness_pos_iter4" {p = $4} $2 == "layer1/goodness_neg_iter4" {n = $4}
        END {exit !(p != "" && n != "" && p > n)}' "$tmp/sc.txt" &&
   grep -q "inputs/positive" "$tmp/tb" && ! grep -q "inputs/negative" "$tmp/tb"; then
    ok "layer 1's positives end above its negatives at iteration 4; no inputs/negative image"
else
    fail "per-iteration goodness or images: $(grep 'iter4\|inputs/' "$tmp/tb" | head -4)"
fi

# stopped mid-epoch (step 50 of 120) and resumed: bit-identical to the whole run; with
# hard negatives (scored by the recurrent readout) so the RNG's path goes through them
hard=(--set train.negatives=hard --set train.epochs=3)
"$ffrun" "$cfg" "${hard[@]}" --name hwhole > "$tmp/hwhole.out" 2>&1 || fail "hard run exited $?"
"$ffrun" "$cfg" "${hard[@]}" --name hcut --max-steps 50 > "$tmp/hcut.out" 2>&1
rc=$?
[ $rc -eq 130 ] || [ $rc -eq 0 ] || fail "--max-steps run exited $rc"
step=$(ls "$tmp"/models/*_hcut_step0000050.ffm 2>/dev/null | head -1)
if [ -n "$step" ] && "$ffrun" --resume "$step" > "$tmp/hres.out" 2>&1; then
    a=$(ls "$tmp"/models/*_hwhole_epoch003.ffm | head -1)
    b=$(ls "$tmp"/models/*_hcut_epoch003.ffm | head -1)
    if $py tests/ffm.py same-weights "$a" "$b" > "$tmp/same" 2>&1; then
        ok "hard negatives: stopped at step 50 and resumed, bit-identical to the whole run"
    else
        fail "resumed model differs: $(cat "$tmp/same")"
    fi
    herr=$(sed -n 's/^epoch 3\/3 .*test error \([0-9.]*\)%.*/\1/p' "$tmp/hwhole.out")
    $py -c "import sys; sys.exit(0 if float(sys.argv[1]) < 40 else 1)" "${herr:-100}" &&
        ok "hard negatives learn: test error $herr%" || fail "hard negatives: test error ${herr:-?}%"
else
    fail "no step model or resume failed: $(tail -3 "$tmp/hres.out" 2>/dev/null)"
fi

# ffrun predict: its classes of the first 500 test images give the run's test error, and
# of all 10,000 the error `ffrun eval` reports (it reads the whole test set)
"$ffrun" predict "$final" data/mnist/t10k-images-idx3-ubyte.gz > "$tmp/pred" 2> "$tmp/pred.err" ||
    fail "ffrun predict exited $?: $(head -2 "$tmp/pred.err")"
"$ffrun" eval "$final" --softmax-epochs 0 > "$tmp/eval.out" 2>&1 || fail "ffrun eval exited $?"
eerr=$(sed -n 's/^test error (goodness readout, 10000 images): \([0-9.]*\)%/\1/p' "$tmp/eval.out")
if $py - "$tmp/pred" "$err" "${eerr:-100}" <<'PY'; then
import gzip, sys
lab = gzip.open("data/mnist/t10k-labels-idx1-ubyte.gz").read()[8:]
pred = [int(l.split("\t")[1]) for l in open(sys.argv[1])]
e500 = 100.0 * sum(p != t for p, t in zip(pred[:500], lab[:500])) / 500
e = 100.0 * sum(p != t for p, t in zip(pred, lab)) / len(lab)
print("    predict: %.2f%% on the first 500 test images (run: %s%%), %.2f%% on all (eval: %s%%)"
      % (e500, sys.argv[2], e, sys.argv[3]))
sys.exit(abs(e500 - float(sys.argv[2])) > 1e-9 or abs(e - float(sys.argv[3])) > 0.0051
         or len(pred) != 10000)
PY
    ok "ffrun predict and ffrun eval read the model as the run did"
else
    fail "ffrun predict / eval disagree with the run: $(cat "$tmp/eval.out")"
fi

# the softmax head on the states at the readout's iteration (neutral label): it learns,
# and predict --readout softmax gives its classes
"$ffrun" "$cfg" --set eval.softmax=true --set train.epochs=2 --name soft > "$tmp/soft.out" 2>&1 ||
    fail "eval.softmax run exited $?: $(tail -3 "$tmp/soft.out")"
serr=$(sed -n 's/^test error (softmax readout): final \([0-9.]*\)%.*/\1/p' "$tmp/soft.out")
smodel=$(ls "$tmp"/models/*_soft_epoch002.ffm 2>/dev/null | head -1)
if [ -n "$smodel" ] && $py -c "import sys; sys.exit(0 if float(sys.argv[1]) < 50 else 1)" "${serr:-100}" &&
   "$ffrun" predict "$smodel" --readout softmax data/mnist/t10k-images-idx3-ubyte.gz > "$tmp/spred" 2>&1 &&
   [ "$(wc -l < "$tmp/spred")" -eq 10000 ]; then
    ok "softmax head on the recurrent states learns ($serr%); predict --readout softmax reads it"
else
    fail "softmax head: ${serr:-?}% $(grep -i "error" "$tmp/soft.out" | tail -3)"
fi

# export: the .npz (manifest version 2, top-down weights) rebuilt in PyTorch by
# tools/ffm_torch.py alone reproduces ffrun predict on 200 test images, both readouts
if [ -n "$smodel" ] && "$ffrun" export "$smodel" "$tmp/rec.npz" > "$tmp/exp.out" 2>&1 &&
   $py -c "import numpy, torch" 2>/dev/null; then
    $py -c "
import gzip, struct
raw = gzip.open('data/mnist/t10k-images-idx3-ubyte.gz').read()
open('$tmp/t200.idx', 'wb').write(struct.pack('>IIII', 0x803, 200, 28, 28) + raw[16:16 + 200 * 784])"
    for r in goodness softmax; do
        "$ffrun" predict "$smodel" "$tmp/t200.idx" --json --readout $r > "$tmp/exp.$r.c" 2>&1 &&
            $py tools/ffm_torch.py "$tmp/rec.npz" "$tmp/t200.idx" --json --readout $r > "$tmp/exp.$r.t" 2>&1
        if res=$($py - "$tmp/exp.$r.c" "$tmp/exp.$r.t" "$tmp/rec.npz" <<'PY'
import json, sys, zipfile
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
m = json.loads(zipfile.ZipFile(sys.argv[3]).read("manifest.json"))
assert m["version"] == 2 and m["recurrent"]["iterations"] == 4 and m["layers"][1]["topdown"] == "layer1_topdown", m
assert len(a) == len(b) == 200, (len(a), len(b))
rel = max(abs(x - y) / max(abs(x), abs(y), 1e-30) for r, s in zip(a, b) for x, y in zip(r["scores"], s["scores"]))
same = sum(r["class"] == s["class"] for r, s in zip(a, b))
print("%.2g %d" % (rel, same))
sys.exit(0 if rel < 1e-4 else 1)
PY
        ); then
            ok "export, $r readout: PyTorch from the .npz reproduces ffrun predict (max rel. error, same classes of 200: $res)"
        else
            fail "export, $r readout: $res $(tail -3 "$tmp/exp.$r.t")"
        fi
    done
else
    fail "export of the recurrent net: $(cat "$tmp/exp.out" 2>/dev/null)"
fi

# config refusals name the place in the file
cat > "$tmp/bad.yaml" <<EOF
model:
  layers:
    - {type: fc, units: 10}
  recurrent: {iterations: 8}
EOF
"$ffrun" "$tmp/bad.yaml" --dry-run > "$tmp/bad.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "bad.yaml:4:27: model.recurrent clamps the label at the top" "$tmp/bad.out" &&
    ok "label in the image refused with file:line:col" || fail "refusal: exit $rc, $(cat "$tmp/bad.out")"

# a sweep over the damping: both points run
"$ffrun" "$cfg" --sweep model.recurrent.damping=0.2,0.5 --set train.epochs=1 --set log.dir="$tmp/sweep" \
    --name sw > "$tmp/sweep.out" 2>&1 || fail "sweep exited $?: $(tail -3 "$tmp/sweep.out")"
summary=$(find "$tmp/sweep" -name SUMMARY.md | head -1)
[ -n "$summary" ] && grep -q "damping=0.2" "$summary" && grep -q "damping=0.5" "$summary" &&
    ok "sweep over model.recurrent.damping: both points in SUMMARY.md" ||
    fail "sweep: $(tail -3 "$tmp/sweep.out")"

# locally connected recurrent layers (the paper's CIFAR-10 nets, small): the CIFAR-10
# fixture (tests/make_cifar_fixture.py: CIFAR-10's format, no real data needed) of 400
# training and 200 test images, two local 5x5 layers of 2 units per location over the
# 32x32 grid, the lower one's top-down input through a local 5x5 map from the upper one
lcifar=$tmp/lcifar
$py "$root/tests/make_cifar_fixture.py" "$lcifar" 80 200 || fail "the CIFAR-10 fixture"
cat > "$tmp/lrec.yaml" <<EOF
mode: supervised
seed: 3
data: {dir: $lcifar, format: cifar10, normalize: channel}
model:
  label_embedding: none
  layers:
    - {type: local, channels: 2, kernel: 5, stride: 1, padding: 2}
    - {type: local, channels: 2, kernel: 5, stride: 1, padding: 2}
  recurrent: {iterations: 3, damping: 0.3, eval_first: 2, eval_last: 3}
train: {epochs: 4, batch_size: 50, passes: joint, loss: threshold}
optimizer: {type: adam, lr: 0.003}
log: {every: 2, dir: $tmp/lruns}
checkpoint: {dir: $tmp/lmodels, minutes: 0}
EOF
lcfg=$tmp/lrec.yaml
"$ffrun" "$lcfg" --dry-run > "$tmp/ldry" 2>&1 || fail "local --dry-run exited $?"
if grep -q "layer 0 <- layer 1 \[local 5x5, padding 2: 2x32x32 -> 2x32x32\]; layer 1 <- label \[2048 x 10\]" "$tmp/ldry" &&
   grep -qE "^0 +local +2x32x32 +258048 " "$tmp/ldry"; then
    ok "local --dry-run: a local 5x5 top-down map under the label's dense one, counted in the params"
else
    fail "local --dry-run: $(grep '^#\|^0 ' "$tmp/ldry")"
fi
"$ffrun" "$lcfg" --name lwhole > "$tmp/lwhole.out" 2>&1 || { fail "local training exited $?"; cat "$tmp/lwhole.out"; }
l1=$(sed -n 's/^epoch 1\/4 .* loss \([0-9.]*\) .*/\1/p' "$tmp/lwhole.out")
l4=$(sed -n 's/^epoch 4\/4 .* loss \([0-9.]*\) .*/\1/p' "$tmp/lwhole.out")
lerr=$(sed -n 's/^epoch 4\/4 .*test error \([0-9.]*\)%.*/\1/p' "$tmp/lwhole.out")
$py tests/tb_reader.py --scalars "$tmp/lsc.txt" "$tmp/lruns" > /dev/null 2>&1 || fail "tb_reader on the local run"
if $py -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.7 * float(sys.argv[2]) else 1)" "${l4:-1e9}" "${l1:-0}" &&
   awk '$2 == "layer1/goodness_pos_iter3" {p = $4} $2 == "layer1/goodness_neg_iter3" {n = $4}
        END {exit !(p != "" && n != "" && p > n)}' "$tmp/lsc.txt"; then
    ok "local recurrent net learns: loss $l1 -> $l4 over 4 epochs, layer 1's positives above its negatives at iteration 3 (test error $lerr% on 200 images)"
else
    fail "local recurrent net did not learn: loss $l1 -> $l4, $(grep 'layer1/goodness_.*_iter3' "$tmp/lsc.txt" | tail -2)"
fi
# stopped at step 13 of 32 and resumed: bit-identical to the whole run
"$ffrun" "$lcfg" --name lcut --max-steps 13 > "$tmp/lcut.out" 2>&1
rc=$?
[ $rc -eq 130 ] || [ $rc -eq 0 ] || fail "local --max-steps run exited $rc"
lstep=$(ls "$tmp"/lmodels/*_lcut_step0000013.ffm 2>/dev/null | head -1)
lfinal=$(ls "$tmp"/lmodels/*_lwhole_epoch004.ffm 2>/dev/null | head -1)
if [ -n "$lstep" ] && [ -n "$lfinal" ] && "$ffrun" --resume "$lstep" > "$tmp/lres.out" 2>&1 &&
   $py tests/ffm.py same-weights "$lfinal" "$(ls "$tmp"/lmodels/*_lcut_epoch004.ffm | head -1)" > "$tmp/lsame" 2>&1; then
    ok "local: stopped at step 13 and resumed, bit-identical to the whole run"
else
    fail "local resume: $(tail -2 "$tmp/lres.out" 2>/dev/null) $(cat "$tmp/lsame" 2>/dev/null)"
fi
# ffrun eval reads the 200 test images of the fixture: the run's final test error
"$ffrun" eval "$lfinal" --softmax-epochs 0 > "$tmp/leval.out" 2>&1 || fail "local ffrun eval exited $?"
leerr=$(sed -n 's/^test error (goodness readout, 200 images): \([0-9.]*\)%/\1/p' "$tmp/leval.out")
if [ -n "$leerr" ] && $py -c "import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 1e-9)" "$leerr" "${lerr:-x}"; then
    ok "local: ffrun eval gives the run's test error ($leerr%)"
else
    fail "local ffrun eval: ${leerr:-?}% against the run's ${lerr:-?}%: $(head -3 "$tmp/leval.out")"
fi
# export supports recurrent nets of fc layers only: a local one is refused, saying why
"$ffrun" export "$lfinal" "$tmp/l.npz" > "$tmp/lexp.out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "export supports recurrent nets (model.recurrent) of fc layers only; layer 0 is local" "$tmp/lexp.out" &&
   [ ! -e "$tmp/l.npz" ]; then
    ok "local: export refuses a recurrent net of local layers (exit 2, message, no file)"
else
    fail "local export: exit $rc, $(cat "$tmp/lexp.out")"
fi

# data parallel on 2 ranks: per-layer losses of one process within 1e-4, replicas identical
if command -v mpirun > /dev/null && ldd "$ffrun" | grep -q libmpi; then
    export OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1 HWLOC_COMPONENTS=-gl
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
    dp=(--quiet --set train.epochs=1 --set data.train_limit=500 --set log.every=1
        --set log.histograms=0 --set log.images=0)
    for c in fc local; do # the fc net, and the local one (two 5x5 local maps per step)
        f=$cfg; [ $c = local ] && f=$lcfg
        "$ffrun" "$f" "${dp[@]}" --set log.dir="$tmp/one$c" > "$tmp/one$c.out" 2>&1 || fail "one process ($c)"
        FF_PARALLEL_CHECK=1 timeout -k 10 600 mpirun --oversubscribe -np 2 "$ffrun" "$f" "${dp[@]}" \
            --set parallel.mode=data --set log.dir="$tmp/two$c" > "$tmp/two$c.out" 2>&1
        rc=$?
        $py tests/tb_reader.py --scalars "$tmp/one$c.csv" "$tmp/one$c" > /dev/null 2>&1
        $py tests/tb_reader.py --scalars "$tmp/two$c.csv" "$tmp/two$c" > /dev/null 2>&1
        if [ $rc -eq 0 ] && $py - "$tmp/one$c.csv" "$tmp/two$c.csv" <<'PY'; then
import sys
def read(p):
    return {(l.split()[1], l.split()[2]): float(l.split()[3]) for l in open(p)
            if l.split()[1].endswith("/loss") and l.split()[1].startswith("layer")}
a, b = read(sys.argv[1]), read(sys.argv[2])
assert a and a.keys() == b.keys(), (len(a), len(b))
worst = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in a)
print("    %d per-layer losses, worst relative difference %.2e" % (len(a), worst))
sys.exit(worst > 1e-4)
PY
            ok "data parallel on 2 ranks ($c): replicas identical, per-layer losses within 1e-4 of one process"
        else
            fail "data parallel ($c, exit $rc): $(tail -3 "$tmp/two$c.out")"
        fi
    done
elif [ "${FF_EXPECT_MPI:-0}" = 1 ] || pkg-config --exists ompi-c 2>/dev/null; then
    fail "Open MPI expected but missing (mpirun or libmpi in $ffrun): the data-parallel check cannot run"
else
    echo "SKIPPED: no Open MPI, the data-parallel check did not run"
fi

finish t_recurrent

#!/usr/bin/env bash
# t_validation.sh - a validation split chooses, the test set is read once (issue 33 items
# 1 and 3), end to end through ffrun:
#   data.validation holds images out of the training split: the run says how many and
#     which (digest, also in run.json), trains on the rest, and reads val/ errors at
#     every evaluation but the test set only at the end (eval.test every: every time);
#   the best model is the one with the lowest validation error;
#   every layer's own goodness readout error (<set>/layer<K>/error) equals
#     `ffrun eval MODEL --layers K` on the same model (test set; --on validation: the
#     validation images; a model without a split: exit 2);
#   a run stopped mid-epoch and resumed ends with the same errors as the whole run;
#   under mpirun (data parallel, 2 ranks) the ranks draw the split of one process, and
#     ranks asked for different splits stop before training;
#   a split that leaves nothing to train on: exit 2 with the reason.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1
cd "$tmp" && ln -s "$root/data" data
q=(--quiet --set data.train_limit=2000 --set data.test_limit=0 --set train.epochs=3
   --set data.validation=200 --set eval.softmax=true --set log.every=10
   --set log.histograms=0 --set log.images=0)

"$ffrun" "$root/configs/quick.yaml" "${q[@]}" --name v > v.out 2>&1 || fail "run: $(tail -3 v.out)"
run=$(ls -d runs/supervised/*_v)
grep -q '^validation error (goodness readout): final [0-9.]*%, best [0-9.]*% at epoch [0-9] (chose the best model)$' v.out &&
    grep -q "^test error (goodness readout): final [0-9.]*% (the last epoch's model)$" v.out &&
    ok "the summary names the validation error that chose and the test error read at the end" ||
    { fail "summary lines"; cat v.out; }

"$ffrun" "$root/configs/quick.yaml" "${q[@]:1}" --set train.epochs=1 --name n > n.out 2>&1 && # not --quiet
    grep -q 'validation: 200 images held out of the training split ([0-9]*-[0-9]* per class, data.validation_seed 1, split [0-9a-f]\{16\}); 1800 train' n.out &&
    ok "the run notes the split: $(grep -o 'split [0-9a-f]\{16\}' n.out)" || { fail "split note"; cat n.out; }
digest=$(sed -n 's/.*split \([0-9a-f]\{16\}\)).*/\1/p' n.out)

/usr/bin/python3 "$root/tests/tb_reader.py" --scalars s.csv "$run" > /dev/null || fail "tb_reader rejects $run"
best=$(sed -n 's/^best model: *//p' v.out)
if $py - s.csv "$run/run.json" "$digest" "$(grep -o 'at epoch [0-9]' v.out | grep -o '[0-9]$')" <<'PY'; then
import json, sys
rows = [l.split() for l in open(sys.argv[1])]
series = {}
for run, tag, step, val in rows:
    series.setdefault(tag, []).append((int(step), float(val)))
steps = sorted({s for s, _ in series["val/error_goodness"]})
assert len(steps) == 3, steps                                  # every epoch
for t in ("val/error_softmax", "val/layer0/error", "val/layer1/error"):
    assert [s for s, _ in series[t]] == steps, t
for t in ("test/error_goodness", "test/error_softmax", "test/layer0/error", "test/layer1/error"):
    assert [s for s, _ in series[t]] == steps[-1:], (t, series[t])   # once, at the end
# the 2-layer net's goodness readout reads layer 1 only: the same error
assert series["val/error_goodness"] == series["val/layer1/error"]
vals = [v for _, v in series["val/error_goodness"]]
best_epoch = min(range(3), key=lambda i: (vals[i], i)) + 1
assert best_epoch == int(sys.argv[4]), (vals, sys.argv[4])
rec = json.load(open(sys.argv[2]))
assert rec["validation"] == {"images": 200, "split": sys.argv[3]}, rec["validation"]
print("    val/ at steps %s, test/ at %d only; best epoch %d = argmin of %s" % (steps, steps[-1], best_epoch, vals))
PY
    ok "val/ errors every epoch, test/ once at the end, the best model by validation, the split in run.json"
else
    fail "event file / run.json"
fi

# each layer's own error in the event file = ffrun eval --layers K on the final model
model=$(sed -n 's/^model: *//p' v.out)
for k in 0 1; do
    want=$(awk -v t="test/layer$k/error" '$2 == t {print $4}' s.csv | tail -1)
    got=$("$ffrun" eval "$model" --layers $k --softmax-epochs 0 2>&1 | sed -n 's/^test error (goodness readout, 10000 images): \([0-9.]*\)%$/\1/p')
    $py -c "import sys; sys.exit(0 if abs(float('$want') - float('$got')) < 1e-3 else 1)" 2>/dev/null &&
        ok "test/layer$k/error $want% = ffrun eval --layers $k ($got%)" ||
        fail "test/layer$k/error '$want' vs ffrun eval --layers $k '$got'"
done

# ffrun eval --on validation: the run's final validation errors, whole and per layer
vgot=$("$ffrun" eval "$model" --on validation --softmax-epochs 0 2>&1 | sed -n 's/^validation error (goodness readout, 200 images): \([0-9.]*\)%$/\1/p')
vwant=$(awk '$2 == "val/error_goodness" {print $4}' s.csv | tail -1)
l0=$("$ffrun" eval "$model" --on val --layers 0 --softmax-epochs 0 2>&1 | sed -n 's/^validation error (goodness readout, 200 images): \([0-9.]*\)%$/\1/p')
l0want=$(awk '$2 == "val/layer0/error" {print $4}' s.csv | tail -1)
$py -c "import sys; sys.exit(0 if abs(float('$vwant') - float('$vgot')) < 1e-3 and abs(float('$l0want') - float('$l0')) < 1e-3 else 1)" 2>/dev/null &&
    ok "ffrun eval --on validation: $vgot% (the run's val/error_goodness $vwant%), --layers 0: $l0% (val/layer0/error)" ||
    fail "eval --on validation '$vgot' vs '$vwant', layer 0 '$l0' vs '$l0want'"
"$ffrun" "$root/configs/quick.yaml" --quiet --set data.train_limit=300 --set data.test_limit=100 --set train.epochs=1 --name p > p.out 2>&1
"$ffrun" eval "$(ls models/*_p_epoch001.ffm)" --on validation > pe.out 2>&1
rc=$?
[ $rc = 2 ] && grep -q 'eval --on validation: the model holds out no validation images' pe.out &&
    ok "eval --on validation of a model without a split: exit 2, said" || { fail "eval --on validation without split: exit $rc"; cat pe.out; }

# ffrun predict and export open a model trained with a split (they read only a batch of
# its training images, which must not be split again)
"$ffrun" predict "$model" data/mnist/t10k-images-idx3-ubyte.gz --top 1 > pred.out 2> pred.err &&
    [ "$(wc -l < pred.out)" = 10000 ] && "$ffrun" export "$model" v.npz > /dev/null 2>&1 &&
    ok "ffrun predict (10000 lines) and export read a model with a validation split" ||
    { fail "predict/export of a validation model"; tail -3 pred.err; }

# eval.test every: the test set at every evaluation as well
"$ffrun" "$root/configs/quick.yaml" "${q[@]}" --set train.epochs=2 --set eval.test=every --name e > e.out 2>&1 ||
    fail "eval.test every: $(tail -2 e.out)"
$py "$root/tests/tb_reader.py" --scalars e.csv runs/supervised/*_e > /dev/null
[ "$(awk '$2 == "test/error_goodness"' e.csv | wc -l)" = 2 ] &&
    [ "$(awk '$2 == "val/error_goodness"' e.csv | wc -l)" = 2 ] &&
    ok "eval.test every: test/ and val/ at both epochs" || { fail "eval.test every"; cat e.csv; }

# stopped mid-epoch 2 and resumed: the same final errors as the whole run
"$ffrun" "$root/configs/quick.yaml" "${q[@]}" --name r --max-steps 50 > r1.out 2>&1
step=$(sed -n 's/.*resume with ffrun --resume \(.*\.ffm\).*/\1/p' r1.out | head -1)
if [ -n "$step" ] && "$ffrun" --resume "$step" --quiet > r2.out 2>&1; then
    a=$(grep -E '^(validation|test) error' v.out) b=$(grep -E '^(validation|test) error' r2.out)
    [ "$a" = "$b" ] && ok "resumed at step 50: the same validation and test errors as the whole run" ||
        { fail "resume changed the errors"; echo "$a"; echo "$b"; }
else
    fail "interrupt/resume: $(tail -2 r1.out) $(tail -2 r2.out 2>/dev/null)"
fi

# --dry-run says what is held out, and refuses a split that leaves nothing to train on
"$ffrun" "$root/configs/quick.yaml" --dry-run --set data.validation=0.1 > dry.out 2>&1 &&
    grep -q '^# data: data/mnist, format idx (detected), 9000 training images (1000 more held out for validation, data.validation_seed 1) of 1x28x28' dry.out &&
    ok "--dry-run: 9000 training images, 1000 held out" || { fail "dry run"; grep '^# data' dry.out; }
"$ffrun" "$root/configs/quick.yaml" --dry-run --set data.validation=10000 > dry2.out 2>&1
[ $? = 2 ] && grep -q 'data.validation: 10000 of the 10000 training images leaves none to train on' dry2.out &&
    ok "--dry-run of a split that leaves nothing: exit 2" || { fail "dry run bad split"; tail -2 dry2.out; }

# nothing left to train on
"$ffrun" "$root/configs/quick.yaml" --quiet --set data.train_limit=300 --set data.validation=300 > bad.out 2>&1
rc=$?
[ $rc = 2 ] && grep -q 'data.validation: 300 of the 300 training images .* leaves none to train on' bad.out &&
    ok "a split that leaves no training image: exit 2 ($(tail -1 bad.out))" || { fail "bad split: exit $rc"; cat bad.out; }

# under mpirun: both ranks hold the single process's split
if command -v mpirun >/dev/null && ldd "$ffrun" | grep -q libmpi; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HWLOC_COMPONENTS=-gl
    timeout 120 mpirun --oversubscribe -np 2 "$ffrun" "$root/configs/quick.yaml" "${q[@]}" \
        --set train.epochs=1 --set parallel.mode=data --name m > m.out 2>&1 || fail "mpirun: $(tail -3 m.out)"
    mrun=$(ls -d runs/supervised/*_m 2>/dev/null)
    grep -q "\"validation\": {\"images\": 200, \"split\": \"$digest\"}" "$mrun/run.json" 2>/dev/null &&
        grep -q '^validation error (goodness readout)' m.out &&
        ok "data parallel on 2 ranks: the same split ($digest), validation errors summed over the ranks" ||
        { fail "mpirun split"; cat m.out; }
    timeout 120 mpirun --oversubscribe -np 1 "$ffrun" "$root/configs/quick.yaml" "${q[@]}" --set parallel.mode=data \
        --set train.epochs=1 --name d : -np 1 "$ffrun" "$root/configs/quick.yaml" "${q[@]}" --set parallel.mode=data \
        --set train.epochs=1 --set data.validation_seed=2 --name d > d.out 2>&1
    rc=$?
    [ $rc = 2 ] && grep -q 'data.validation_seed (rank 0: 1, rank 1: 2)' d.out &&
        ok "ranks asked for different splits stop at once, naming the key (exit 2)" ||
        { fail "different splits: exit $rc"; cat d.out; }
else
    fail "mpirun or an MPI build of ffrun is missing"
fi
finish t_validation

#!/usr/bin/env bash
# t_e2e_quick.sh - end to end: ffrun trains configs/quick.yaml; the loss falls, the test
# error beats chance (90%) by a wide margin, the model file is written, and
# the event file passes the independent Python reader and tfevents-dump with every expected tag;
# then three short runs with hard negatives (goodness, softmax and candidate scoring) learn and
# make harder negatives than random wrong labels.
set -u
source "$(dirname "$0")/script_lib.sh"

if "$build/ffrun" configs/quick.yaml --set log.dir="$tmp/runs" --set checkpoint.dir="$tmp/models" \
        --name e2e > "$tmp/out" 2>&1; then
    ok "ffrun configs/quick.yaml exits 0"
else
    fail "ffrun configs/quick.yaml exited $?"; cat "$tmp/out"; exit 1
fi
cat "$tmp/out"

# the run directory and the model are where the summary says
run=$(ls -d "$tmp"/runs/supervised/*_e2e 2>/dev/null | head -1)
[ -n "$run" ] && ok "run directory $run" || fail "no runs/supervised/<time>_e2e directory"
ls "$tmp"/models/supervised_*_e2e_epoch006.ffm > /dev/null 2>&1 && ok "model saved" \
    || fail "no models/supervised_<run>_epoch006.ffm"
grep -q "tensorboard --logdir $tmp/runs/supervised" "$tmp/out" && ok "summary names the logdir" \
    || fail "summary does not print the tensorboard command"

# independent reader: every record valid, expected tags present, scalar values out
tags=layer0/loss,layer0/goodness_pos,layer0/goodness_neg,layer1/loss,layer1/goodness_pos
tags=$tags,layer1/goodness_neg,loss/total,train/learning_rate,test/error_goodness,config
tags=$tags,test/error_softmax,clf/loss
tags=$tags,_hparams_/session_start_info,_hparams_/session_end_info
tags=$tags,custom_scalars__config__,layer0/weights,layer1/biases,layer0/goodness_pos_hist
tags=$tags,layer1/goodness_neg_hist,inputs/positive,inputs/negative,layer0/receptive_fields
if /usr/bin/python3 tests/tb_reader.py --expect-tags "$tags" --scalars "$tmp/scalars" \
        "$tmp/runs" > "$tmp/py" 2>&1; then
    ok "tb_reader accepts the run"
else
    fail "tb_reader rejects the run"; cat "$tmp/py"
fi
"$build/tfevents-dump" "$tmp/runs" > "$tmp/dump" 2>&1 && ok "tfevents-dump accepts the run" \
    || { fail "tfevents-dump rejects the run"; cat "$tmp/dump"; }

# the loss falls: mean of the last 3 points well below the mean of the first 3
/usr/bin/python3 - "$tmp/scalars" > "$tmp/check" 2>&1 <<'PY'
import sys
pts = {}
for line in open(sys.argv[1]):
    run, tag, step, val = line.split()
    pts.setdefault(tag, []).append((int(step), float(val)))
loss = [v for _, v in sorted(pts["loss/total"])]
err = [v for _, v in sorted(pts["test/error_goodness"])]
soft = [v for _, v in sorted(pts["test/error_softmax"])]
first, last = sum(loss[:3]) / 3, sum(loss[-3:]) / 3
print("loss/total first3 %.3f last3 %.3f; test error per epoch %s; softmax %s" % (first, last, err, soft))
ok = len(loss) >= 6 and last < 0.7 * first and len(err) == 6 and err[-1] < 30.0 and err[-1] < err[0]
ok = ok and len(soft) == 6 and soft[-1] < 30.0
sys.exit(0 if ok else 1)
PY
rc=$?
cat "$tmp/check"
[ $rc -eq 0 ] && ok "loss falls; goodness and softmax test errors < 30% (chance 90%)" || fail "training did not learn"

# hard negatives, each way of scoring the wrong labels: the run trains and learns, and its
# negatives are harder than random wrong labels (the final epoch's loss is clearly higher
# on the same data, seed and schedule). A scoring that fell back to random labels fails.
final_loss() { sed -n 's/^epoch 3\/3 .* loss \([0-9.]*\) .*test error \([0-9.]*\)%.*/\1 \2/p' "$1"; }
short=(--set train.epochs=3 --set log.dir="$tmp/hard_runs" --set checkpoint.dir="$tmp/hard_models")
"$build/ffrun" configs/quick.yaml "${short[@]}" --name rand > "$tmp/rand.out" 2>&1 \
    || fail "random negatives run exited $?"
read -r rand_loss rand_err < <(final_loss "$tmp/rand.out")
for v in "goodness|" "softmax|--set train.hard_scores=softmax" "candidates|--set train.hard_candidates=3"; do
    n=${v%%|*}; read -ra opt <<< "${v#*|}"
    "$build/ffrun" configs/quick.yaml "${short[@]}" --set train.negatives=hard "${opt[@]}" \
        --name "hard_$n" > "$tmp/hard_$n.out" 2>&1
    rc=$?
    [ $rc -eq 0 ] || { fail "hard negatives ($n) exited $rc"; cat "$tmp/hard_$n.out"; continue; }
    read -r loss err < <(final_loss "$tmp/hard_$n.out")
    if /usr/bin/python3 -c "import sys; l,e,r=map(float,sys.argv[1:]); sys.exit(0 if e < 30 and l > 1.2*r else 1)" \
            "${loss:-0}" "${err:-100}" "${rand_loss:-1e9}"; then
        ok "hard negatives ($n): test error $err% < 30%, loss $loss > 1.2 x random's $rand_loss"
    else
        fail "hard negatives ($n): test error ${err:-?}%, loss ${loss:-?} (random negatives: loss ${rand_loss:-?})"
        cat "$tmp/hard_$n.out"
    fi
done

finish t_e2e_quick

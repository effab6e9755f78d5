#!/usr/bin/env bash
# t_e2e_unsup.sh - the unsupervised modes end to end on a small slice of MNIST:
# unsupervised_backbone trains on cached hybrid negatives (made once, then loaded; made
# again when the settings change), unsupervised_clf picks the newest backbone by
# modification time (not by name), trains a softmax head on the frozen backbone and beats
# chance; the event files pass the strict reader; ffrun eval reads the classifier model.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
cd "$tmp" && ln -s "$root/data" data
cat > backbone.yaml <<'Y'
mode: unsupervised_backbone
data: {train_limit: 3000, test_limit: 1000}
model:
  layers:
    - {type: local, channels: 16, kernel: 10, stride: 6}
    - {type: fc, units: 100}
    - {type: fc, units: 100}
train: {epochs: 2, batch_size: 50, peer_norm: 0.03}
log: {every: 10}
Y
cat > clf.yaml <<'Y'
mode: unsupervised_clf
data: {train_limit: 3000, test_limit: 1000}
train: {batch_size: 50}
clf: {epochs: 3, lr: 0.003}
Y

"$ffrun" backbone.yaml --name first > b1.out 2>&1 || { fail "backbone run 1"; cat b1.out; }
grep -q "negatives: 3000 hybrid images generated and cached (cache/hybrid-" b1.out \
    && ok "hybrid negatives generated and cached" || { fail "no cache message"; cat b1.out; }
"$ffrun" backbone.yaml --name second > b2.out 2>&1 || fail "backbone run 2"
grep -q "negatives: 3000 hybrid images loaded from cache" b2.out && ok "second run loads the cache" \
    || { fail "cache not reused"; cat b2.out; }
"$ffrun" backbone.yaml --name third --set data.hybrid_blur=8 --set train.epochs=1 > b3.out 2>&1
grep -q "generated and cached" b3.out && [ "$(ls cache | wc -l)" -eq 2 ] \
    && ok "other settings make (and cache) another set" || fail "settings change did not regenerate"

# newest by modification time, not by name: make the 'first' backbone the newest
first=$(ls models/unsupervised_backbone_*_first_epoch002.ffm)
sleep 1.1 && touch "$first"
"$ffrun" clf.yaml --name clf > c.out 2>&1 || { fail "clf run"; cat c.out; }
grep -q "backbone: $first" c.out && ok "unsupervised_clf uses the newest backbone by mtime ($first)" \
    || { fail "wrong backbone chosen"; cat c.out; }
err=$(sed -n 's/^test error (softmax readout): final \([0-9.]*\)%.*/\1/p' c.out)
awk -v e="$err" 'BEGIN {exit !(e != "" && e < 40)}' && ok "classifier test error $err% (chance 90%)" \
    || fail "classifier error '$err'"
clf_model=$(ls models/unsupervised_clf_*_clf_epoch003.ffm 2>/dev/null)
"$ffrun" eval "$clf_model" > e.out 2>&1 && grep -q "softmax readout" e.out \
    && ok "ffrun eval reads the classifier model" || { fail "eval of classifier"; cat e.out; }
# the one run loop gives the classifier the FF modes' model files: the best by the
# choosing error (the test set here, no validation split), and the summary names it
best_model=$(ls models/unsupervised_clf_*_clf_best.ffm 2>/dev/null)
best_line=$(grep "^best model:" c.out)
[ -n "$best_model" ] && [ "$best_line" = "best model:  $best_model" ] &&
    "$ffrun" eval "$best_model" > eb.out 2>&1 && grep -q "softmax readout" eb.out &&
    ok "the classifier writes its best model ($best_model), named in the summary; ffrun eval reads it" ||
    { fail "classifier best model: '$best_model', '$best_line'"; cat eb.out 2>/dev/null | tail -3; }
"$ffrun" eval "$first" > e2.out 2>&1
[ $? -eq 2 ] && grep -q "no classifier" e2.out && ok "eval of a bare backbone explains itself" \
    || fail "eval of a backbone"

# the classifier resumes like the FF modes: --max-steps stops it mid-epoch (exit 130, a
# step model), --resume continues it to the same weights as the uninterrupted run
"$ffrun" clf.yaml --name part --set checkpoint.backbone="$first" --max-steps 70 > p.out 2>&1
rc=$?
step_model=$(ls models/unsupervised_clf_*_part_step0000070.ffm 2>/dev/null)
[ $rc -eq 130 ] && [ -n "$step_model" ] && ok "classifier --max-steps 70: exit 130, $step_model"     || { fail "classifier --max-steps: exit $rc"; cat p.out; }
"$ffrun" --resume "$step_model" > pr.out 2>&1 || { fail "classifier --resume"; cat pr.out; }
[ -n "$step_model" ] && [ ! -e "$step_model" ] &&
    ok "the finished resumed classifier replaced the step model it was resumed from" ||
    fail "the classifier's resumed step model is still there: $step_model"
"$ffrun" clf.yaml --name whole --set checkpoint.backbone="$first" > w.out 2>&1 || fail "clf whole"
resumed=$(ls models/unsupervised_clf_*_part_epoch003.ffm 2>/dev/null)
whole=$(ls models/unsupervised_clf_*_whole_epoch003.ffm 2>/dev/null)
if [ -n "$resumed" ] && [ -n "$whole" ] && $py "$root/tests/ffm.py" same-weights "$resumed" "$whole" >sw.out 2>&1; then
    ok "resumed classifier is bit-identical to the uninterrupted one"
else
    fail "resumed classifier differs ($resumed vs $whole)"; cat sw.out 2>/dev/null
fi
$py "$root/tests/tb_reader.py" --scalars sc.txt runs/unsupervised_clf >/dev/null 2>&1
awk '$2 == "clf/loss" {n++; if ($3 <= 3) small++} END {exit !(n > 3 && small == 0)}' sc.txt \
    && ok "clf/loss is logged at batch steps (60 batches per epoch), not epochs" \
    || fail "clf/loss steps: $(awk '$2 == "clf/loss"' sc.txt | head -3)"

tags=inputs/positive,inputs/negative,inputs/masks,layer0/receptive_fields,layer2/goodness_neg
tags=$tags,test/error_softmax,clf/loss,config,_hparams_/session_start_info
if $py "$root/tests/tb_reader.py" --expect-tags "$tags" runs > r.out 2>&1; then
    ok "event files of both modes pass the strict reader"
else
    fail "strict reader"; cat r.out
fi
# one logdir, two modes: no run writes an HParams experiment summary (TensorBoard would
# take the first one for all runs and hide the other mode's keys and metrics); each run
# has its own session_start_info, from which TensorBoard derives the view
"$root/$build/tfevents-dump" runs > dump.out 2>&1
n_exp=$(grep -c "_hparams_/experiment" dump.out)
n_start=$(grep -c "_hparams_/session_start_info" dump.out)
n_runs=$(find runs -name 'events.out.tfevents.*' -printf '%h\n' | sort -u | wc -l)
[ "$n_exp" -eq 0 ] && [ "$n_start" -eq "$n_runs" ] &&
    ok "no experiment summary; a session_start_info in each of the $n_runs runs of both modes" ||
    fail "hparams records: $n_exp experiments, $n_start session starts for $n_runs runs"
finish t_e2e_unsup

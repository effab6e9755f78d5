#!/usr/bin/env bash
# t_bench_resume.sh - tools/bench-accuracy.sh picks an interrupted run up where it stopped:
# it resumes from the newest model that run wrote (not a best model, not an older run's),
# appends to its log, and its results file says resumed=N and the training time per epoch
# over every process's epoch lines; a finished config is skipped; an interrupted run that
# wrote no model starts again. The script runs from a scratch tree (tools/ holding links to
# the project's bench-accuracy.sh and cpu-name.sh, so nothing of the project's results is
# touched) against a stand-in ffrun (FFRUN) that writes model files and epoch lines as
# ffrun does, and dies or finishes as the test tells it.
source "$(dirname "$0")/script_lib.sh"
w=$tmp/tree
mkdir -p "$w/tools" "$w/models" "$w/bench/results/accuracy"
ln -s "$root/tools/bench-accuracy.sh" "$w/tools/bench-accuracy.sh"
ln -s "$root/tools/cpu-name.sh" "$w/tools/cpu-name.sh"
# the table rewrite is another test's business: here it only says it ran
printf '#!/bin/sh\necho table >> "%s/table.calls"\n' "$tmp" > "$w/tools/results-accuracy.sh"
chmod +x "$w/tools/results-accuracy.sh"
out=$w/bench/results/accuracy

# the stand-in: records its arguments; FAKE_MODE die (two epochs, a step model, exit 137)
# or finish (two epochs, an epoch model, the summary lines)
cat > "$tmp/fake-ffrun" <<'EOF'
#!/usr/bin/env bash
echo "$*" >> "$FAKE_CALLS"
p=models/supervised_20261202-000000_bench_supervised_fc
case $FAKE_MODE in
die)
    echo "epoch 1/4  10.0s  100 img/s  loss 1.0000  (+0.1s logs, files)"
    echo "epoch 2/4  20.0s  100 img/s  loss 0.9000  (+0.1s logs, files)"
    touch "${p}_epoch002.ffm"; sleep 1.1
    touch "${p}_best.ffm"; sleep 1.1
    touch "${p}_step0000250.ffm"; sleep 1.1
    touch "${p}_best.ffm" # newer than the step model: must not be taken
    exit 137 ;;
nomodel)
    echo "epoch 1/4  10.0s  100 img/s  loss 1.0000  (+0.1s logs, files)"
    exit 137 ;;
finish)
    echo "epoch 3/4  40.0s  100 img/s  loss 0.8000  (+0.1s logs, files)"
    echo "epoch 4/4  50.0s  100 img/s  loss 0.7000  test error 1.50%  (+1.0s evaluation, logs, files)"
    touch "${p}_epoch004.ffm"
    echo "test error (goodness readout): final 1.50%, best 1.50% at epoch 4"
    echo "test error (softmax readout): final 1.60%"
    echo "finished after 4 epoch(s) in 120.0s (30.00s per epoch of training)"
    echo "model: ${p}_epoch004.ffm" ;;
esac
EOF
chmod +x "$tmp/fake-ffrun"
export FFRUN=$tmp/fake-ffrun FAKE_CALLS=$tmp/calls
bench() { (cd "$w" && tools/bench-accuracy.sh supervised_fc) > "$tmp/bench.out" 2>&1; }

# an older run's step model, before this run began: never resumed
touch -d '2026-01-01' "$w/models/supervised_20260101-000000_bench_supervised_fc_step0000900.ffm"

# 1. the first attempt dies after two epochs
FAKE_MODE=die bench
rc=$?
[ $rc -ne 0 ] && [ -f "$out/supervised_fc.running" ] && [ ! -f "$out/supervised_fc.txt" ] &&
    ok "a killed run: exit $rc, the marker stays, no results file" ||
    fail "a killed run: exit $rc, $(ls "$out")"
sed -n 1p "$tmp/calls" | grep -q -- '--name bench_supervised_fc' &&
    ok "the first attempt trains the config afresh" || fail "first call: $(sed -n 1p "$tmp/calls")"

# 2. the second attempt resumes from the step model and finishes
FAKE_MODE=finish bench
rc=$?
want=models/supervised_20261202-000000_bench_supervised_fc_step0000250.ffm
[ "$(sed -n 2p "$tmp/calls")" = "--resume $want --verbose" ] &&
    ok "resumed from the newest model of the run (the step model, not the newer best model)" ||
    fail "second call: '$(sed -n 2p "$tmp/calls")', want '--resume $want --verbose'"
log=$out/supervised_fc.log
[ $rc -eq 0 ] && grep -q '^epoch 1/4 ' "$log" && grep -q "^--- resumed from $want" "$log" &&
    grep -q '^epoch 4/4 ' "$log" &&
    ok "the log holds both processes' lines and the resume" || fail "log: $(cat "$log")"
txt=$out/supervised_fc.txt
# epoch lines 10, 20, 40, 50 s: mean 30
grep -qx 'train_seconds_per_epoch=30.00' "$txt" && grep -q '^resumed=1 ' "$txt" &&
    grep -qx 'test error (goodness readout): final 1.50%, best 1.50% at epoch 4' "$txt" &&
    grep -qx "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$txt" &&
    ok "results: resumed=1, 30.00 s per epoch over both processes' epochs, the CPU" ||
    fail "results file: $(cat "$txt")"
[ ! -f "$out/supervised_fc.running" ] && [ ! -e "$w/$want" ] &&
    [ -e "$w/models/supervised_20261202-000000_bench_supervised_fc_epoch004.ffm" ] &&
    ok "finished: the marker and the run's step models are gone, its epoch model stays" ||
    fail "after the finish: $(ls "$out" "$w/models")"
[ "$(cat "$tmp/table.calls" 2>/dev/null)" = table ] && ok "the table was rewritten once (after the finish)" ||
    fail "results-accuracy.sh calls: $(cat "$tmp/table.calls" 2>/dev/null)"

# 3. a finished config is skipped
FAKE_MODE=finish bench
[ "$(wc -l < "$tmp/calls")" -eq 2 ] && grep -q 'supervised_fc: done before' "$tmp/bench.out" &&
    ok "a finished config is not trained again" || fail "third attempt: $(cat "$tmp/bench.out")"

# 4. a run that died before writing any model starts again under a new marker
rm -f "$txt" "$w"/models/*.ffm "$FAKE_CALLS"
touch -d '2026-01-01' "$w/models/supervised_20260101-000000_bench_supervised_fc_step0000900.ffm"
FAKE_MODE=nomodel bench
sleep 1.1
tables=$(grep -c table "$tmp/table.calls" 2>/dev/null)
FAKE_MODE=finish bench
rc=$?
# a run never resumed finishes like a resumed one: exit 0, the table rewritten (the
# results block ended on the failed 'resumed' test, and the script stopped there)
[ $rc -eq 0 ] && [ "$(grep -c table "$tmp/table.calls" 2>/dev/null)" -eq $((tables + 1)) ] &&
    ok "a run finished without a resume: exit 0 and the table rewritten" ||
    fail "finish without resume: exit $rc, table calls '$(cat "$tmp/table.calls" 2>/dev/null)'"
sed -n 2p "$tmp/calls" | grep -q -- '--name bench_supervised_fc' && ! grep -q '^--- resumed' "$log" &&
    ! grep -q '^resumed=' "$txt" &&
    ok "no model written before the kill: the next attempt starts afresh (not from an older run's model)" ||
    fail "after a model-less kill: calls $(cat "$tmp/calls"), results $(cat "$txt")"
finish t_bench_resume

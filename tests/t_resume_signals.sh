#!/usr/bin/env bash
# t_resume_signals.sh - runs that stop early: a resumed run ends bit-identical to an
# uninterrupted one; SIGINT finishes the batch, writes a model and closes the event file
# with a failure status; SIGKILL at random moments never leaves an unreadable model or a
# corrupt complete record; `ffrun eval` reads a model back.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
cd "$tmp" && ln -s "$root/data" data
cfg=$root/configs/quick.yaml

# 1. resume equals an uninterrupted run (same seed), bit for bit
"$ffrun" "$cfg" --set train.epochs=3 --name full --quiet > full.out 2>&1 || fail "full run failed"
"$ffrun" "$cfg" --set train.epochs=3 --name part --quiet --max-steps 250 > part.out 2>&1
rc=$?
[ $rc -eq 130 ] && ok "--max-steps stops like an interrupt (exit 130)" || fail "--max-steps exit $rc"
step_model=$(ls models/*_part_step0000250.ffm 2>/dev/null)
[ -n "$step_model" ] && ok "interrupted run saved $step_model" || fail "no step model"
# quick.yaml trains the softmax head (eval.softmax): the step model carries it (read now:
# the resumed run replaces the step model it resumed from with its next one)
n_head=$($py "$root/tests/ffm.py" info "$step_model" | awk '/^n_head:/ {print $2}')
"$ffrun" --resume "$step_model" --quiet > resume.out 2>&1 || { fail "resume failed"; cat resume.out; }
[ ! -e "$step_model" ] && ok "the finished resumed run removed the step model it resumed from" ||
    fail "the step model resumed from is still there"
if $py "$root/tests/ffm.py" same-weights models/*_full_epoch003.ffm models/*_part_epoch003.ffm; then
    ok "resumed run is bit-identical to the uninterrupted one (softmax head included)"
else
    fail "resumed weights differ"
fi
# the resumed process's time per epoch is over the 1.75 epochs it trained (350 of 600
# steps, 17,500 images), not the 3 the run has done
per=$(sed -n 's/.*(\([0-9.]*\)s per epoch of training).*/\1/p' resume.out)
read -r imgs secs < <(sed -n 's/^training: *\([0-9]*\) images in \([0-9.]*\)s.*/\1 \2/p' resume.out)
if [ "${imgs:-}" = 17500 ] && $py -c "import sys; p, s = map(float, sys.argv[1:]); sys.exit(abs(p * 1.75 - s) > 0.07)" \
        "${per:-x}" "${secs:-x}" 2> /dev/null; then
    ok "a resumed run's time per epoch counts the epochs it trained (${per}s x 1.75 = ${secs}s)"
else
    fail "resumed run's time per epoch: '$per' s, $imgs images in $secs s"; cat resume.out
fi
sm_full=$(grep '^test error (softmax readout): final' full.out)
sm_resumed=$(grep '^test error (softmax readout): final' resume.out)
[ -n "$sm_full" ] && [ "$sm_full" = "$sm_resumed" ] && ok "resumed run ends with the same softmax readout ($sm_full)" \
    || fail "softmax readout: '$sm_full' uninterrupted, '$sm_resumed' resumed"
[ "${n_head:-0}" -eq 2010 ] && ok "the step model holds the softmax head (2010 weights: layer 1's 200 features x 10 + 10)" \
    || fail "step model head: '${n_head:-}' weights, want 2010"
[ "$(ls -d runs/supervised/*_part | wc -l)" -eq 1 ] && ok "resume kept the run directory" \
    || fail "resume made a new run directory"
[ "$(ls runs/supervised/*_part/events.out.tfevents.* | wc -l)" -eq 2 ] \
    && ok "resume appended a second event file to the run" || fail "event files of the resumed run"
if $py "$root/tests/tb_reader.py" runs/supervised > reader.out 2>&1; then
    ok "event files of both halves pass the strict reader (steps increase across files)"
else
    fail "strict reader rejects the resumed run"; cat reader.out
fi

# 2. ffrun eval reads the model back: its goodness readout and its own softmax head
if "$ffrun" eval models/*_full_epoch003.ffm > eval.out 2>&1 && grep -q "test error (goodness" eval.out &&
        grep -q "test error (softmax readout, the model's head)" eval.out; then
    total=$(awk '/^ +[0-9]( |$)/ && NF == 11 {for (i = 2; i <= 11; i++) s += $i} END {print s}' eval.out)
    [ "$total" = 10000 ] && ok "ffrun eval: both readouts and a 10x10 confusion matrix over 10000 images" \
        || fail "confusion matrix sums to $total"
else
    fail "ffrun eval failed"; cat eval.out
fi
"$ffrun" eval models/*_full_epoch003.ffm --softmax-epochs 1 > eval1.out 2>&1 &&
    grep -q "test error (softmax readout, head trained 1 epoch" eval1.out &&
    ! grep -q "the model's head" eval1.out && ok "ffrun eval --softmax-epochs 1 trains a new head instead" \
    || { fail "eval --softmax-epochs 1"; cat eval1.out; }
"$ffrun" eval nope.ffm > /dev/null 2>&1; [ $? -eq 1 ] && ok "eval of a missing model exits 1" || fail "eval missing model"

# 3. SIGINT mid-epoch: exit 130, model written, event file closed with status failure
"$ffrun" "$cfg" --set train.epochs=200 --name sigint --quiet > sigint.out 2>&1 &
pid=$!
# wait until training runs (the first epoch's scalars are in the event file), then interrupt
for _ in $(seq 100); do
    ls runs/supervised/*_sigint/events.* > /dev/null 2>&1 &&
        [ "$(stat -c %s runs/supervised/*_sigint/events.* | head -1)" -gt 20000 ] && break
    sleep 0.1
done
sleep 0.3
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] && ok "SIGINT: exit 130" || fail "SIGINT: exit $rc"
m=$(ls models/*_sigint_step*.ffm 2>/dev/null | head -1)
[ -n "$m" ] && $py "$root/tests/ffm.py" info "$m" > /dev/null && ok "SIGINT: model $m verifies" \
    || fail "SIGINT: no valid step model"
# an interrupted run that can be resumed writes no end record (TensorBoard keeps the first
# one it meets, so "failure" would stick); resuming it to its end writes "success"
if $py "$root/tests/tb_reader.py" --expect-session-status none runs/supervised/*_sigint > r.out 2>&1; then
    ok "SIGINT: event file valid, no session_end_info (the run is resumable)"
else
    fail "SIGINT: event file"; cat r.out
fi
ep=$($py "$root/tests/ffm.py" info "$m" 2>/dev/null | sed -n 's/^epoch: //p')
if [ -n "$ep" ] && "$ffrun" --resume "$m" --set train.epochs=$((ep + 1)) --quiet > sr.out 2>&1 &&
    $py "$root/tests/tb_reader.py" --expect-session-status success runs/supervised/*_sigint > r2.out 2>&1 &&
    "$root/${FF_BUILD:-build}/tfevents-dump" runs/supervised/*_sigint | grep -q "session_end_info: status 1"; then
    ok "SIGINT, then --resume to the end: TensorBoard's status is success, each step once"
else
    fail "resume after SIGINT: status"; cat sr.out r2.out 2>/dev/null
fi

# 3b. a hang-up (the terminal closed) stops the run like Ctrl-C, with a step model; under
# nohup (SIGHUP ignored when ffrun starts) it is ignored and the run goes on. The first
# run starts with SIGHUP at its default whatever this shell inherited.
wait_training() { # NAME: until the run's first scalars are in its event file
    for _ in $(seq 100); do
        ls runs/supervised/*_"$1"/events.* > /dev/null 2>&1 &&
            [ "$(stat -c %s runs/supervised/*_"$1"/events.* | head -1)" -gt 20000 ] && break
        sleep 0.1
    done
    sleep 0.3
}
$py -c 'import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$ffrun" "$cfg" --set train.epochs=200 --name hup --quiet > hup.out 2>&1 &
pid=$!
wait_training hup
kill -HUP $pid
wait $pid
rc=$?
m=$(ls models/*_hup_step*.ffm 2>/dev/null | head -1)
[ $rc -eq 130 ] && [ -n "$m" ] && $py "$root/tests/ffm.py" info "$m" > /dev/null &&
    ok "SIGHUP: exit 130 and a step model that verifies" || { fail "SIGHUP: exit $rc, model '$m'"; cat hup.out; }
nohup "$ffrun" "$cfg" --set train.epochs=200 --name nohup --quiet > nohup.out 2>&1 &
pid=$!
wait_training nohup
kill -HUP $pid
sleep 1
if kill -0 $pid 2> /dev/null; then
    ok "under nohup SIGHUP is ignored: the run goes on"
    kill -INT $pid
else
    fail "under nohup SIGHUP stopped the run"; cat nohup.out
fi
wait $pid

# 4. SIGKILL at random moments while models are written (a checkpoint every epoch of
#    2,000 images, so several per second)
for i in 1 2 3 4 5; do
    "$ffrun" "$cfg" --set train.epochs=10000 --set checkpoint.every=1 --set log.every=5 \
        --set data.train_limit=2000 --set data.test_limit=200 --name kill$i --quiet > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        ls models/*_kill${i}_epoch*.ffm > /dev/null 2>&1 && break
        sleep 0.1
    done
    sleep "$(awk -v s=$RANDOM 'BEGIN {print (s % 1000) / 1000}')"
    kill -KILL $pid
    wait $pid 2> /dev/null
done
bad=0
shopt -s nullglob
kill_models=(models/*_kill*.ffm)
[ ${#kill_models[@]} -gt 0 ] || { echo "no model written before the kills (machine too slow?)"; bad=1; }
for m in "${kill_models[@]}"; do
    $py "$root/tests/ffm.py" info "$m" > /dev/null 2>&1 || { echo "unreadable: $m"; bad=1; }
done
[ $bad -eq 0 ] && ok "SIGKILL x5: every model file verifies (${#kill_models[@]} files)" \
    || fail "SIGKILL left an unreadable model"
if $py "$root/tests/tb_reader.py" --allow-truncated-tail runs/supervised/*_kill* > k.out 2>&1; then
    ok "SIGKILL x5: every complete event record verifies"
else
    fail "SIGKILL: event files"; cat k.out
fi

finish t_resume_signals

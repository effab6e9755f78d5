#!/usr/bin/env bash
# t_tb_sessions.sh - both verifiers (tfevents-dump, tests/tb_reader.py) read runs with
# TensorBoard's session semantics (docs/tensorboard-format.md section 9), on event files
# crafted by tests/tb_craft.py: a later SessionLog START at step s purges every tag's
# points at steps >= s (scalars, histograms, images) and steps must then increase again;
# the run's first START purges nothing (a resume whose START is the run's only one shows
# duplicates: rejected, with a hint); the hparams status is the run's first
# session_end_info (a later, different one is a warning). G: the records ffrun's writer
# makes for run -> kill -9 at step 80 -> resume from the model at step 50 -> finish
# (test_summary --write-resume-sample) show each step once per tag and status success.
set -u
source "$(dirname "$0")/script_lib.sh"
dump=$build/tfevents-dump
py=/usr/bin/python3
[ -x "$dump" ] || { echo "t_tb_sessions: $dump not built (make BUILD=$build all)"; exit 1; }

craft() { # craft NAME < SCRIPT: files $tmp/NAME/events.out.tfevents.000000000{1,2}.h
    sed "s|@|$tmp/$1/events.out.tfevents.000000000|" | $py tests/tb_craft.py || fail "tb_craft $1"
}
# verify NAME: runs both verifiers on $tmp/NAME, output in $tmp/NAME.{dump,py}{,.err}, exit codes
verify() {
    "$dump" "$tmp/$1" > "$tmp/$1.dump" 2> "$tmp/$1.dump.err"; drc=$?
    $py tests/tb_reader.py ${2:+"$2"} --scalars "$tmp/$1.points" "$tmp/$1" > "$tmp/$1.py" 2> "$tmp/$1.py.err"; prc=$?
}
row() { # row NAME TAG COUNT FIRST LAST: that row in both outputs
    grep -Eq "^  $2 +[a-z_]+ +$3 +$4 +$5 " "$tmp/$1.dump" \
        && grep -Eq "^  $2 +[a-z_]+ +$3  steps $4\.\.$5 " "$tmp/$1.py"
}

# A. run -> crash at 80 -> resume from the model at step 50 (START at 51) -> finish at 100
craft resumed <<'S'
file @1.h
start 0
hparams_start
scalars loss 0 80
histo weights 40
histo weights 80
image inputs 50
image inputs 70
file @2.h
start 51
scalars loss 51 100
histo weights 90
image inputs 100
end 1 100
S
verify resumed
[ $drc -eq 0 ] && [ $prc -eq 0 ] && ok "A: a resumed run whose START follows the run's first START passes both" \
    || { fail "A: tfevents-dump exit $drc, tb_reader exit $prc"; cat "$tmp/resumed.dump.err" "$tmp/resumed.py.err"; }
row resumed loss 101 0 100 && ok "A: loss keeps steps 0..100 once each (101 points) in both" \
    || { fail "A: loss row"; cat "$tmp/resumed.dump" "$tmp/resumed.py"; }
row resumed weights 2 40 90 && row resumed inputs 2 50 100 \
    && ok "A: the START purges histograms and images too (weights 40, 90; inputs 50, 100)" || fail "A: histogram/image rows"
grep -q 'first SessionLog START at step 0, 1 restart purging 32 points' "$tmp/resumed.dump" \
    && grep -q 'first SessionLog START at step 0, 1 restart(s) purging 32 point(s)' "$tmp/resumed.py" \
    && ok "A: one restart purging 32 points (loss 51..80, weights 80, inputs 70)" || fail "A: purge summary"
[ "$(grep -c '^\. loss ' "$tmp/resumed.points")" -eq 101 ] && [ "$(awk '$2 == "loss" {print $3}' "$tmp/resumed.points" | sort -n | uniq -d | wc -l)" -eq 0 ] \
    && ok "A: tb_reader --scalars lists each loss step once" || fail "A: --scalars points"
grep -q 'hparams status: STATUS_SUCCESS' "$tmp/resumed.dump" && grep -q 'hparams status: STATUS_SUCCESS' "$tmp/resumed.py" \
    && $py tests/tb_reader.py --expect-session-status success "$tmp/resumed" > /dev/null 2>&1 \
    && ok "A: hparams status success" || fail "A: hparams status"

# B. the resumed file's START is the run's first: TensorBoard purges nothing, loss 51..80 twice
craft nostart <<'S'
file @1.h
scalars loss 0 80
file @2.h
start 51
scalars loss 51 100
S
verify nostart
msg="tag 'loss':? step 51 does not increase \(previous 80\); the run's only SessionLog START \(step 51\) is its first"
[ $drc -eq 1 ] && [ $prc -eq 1 ] && grep -Eq "offset [0-9]+: $msg" "$tmp/nostart.dump.err" && grep -Eq "offset [0-9]+: $msg" "$tmp/nostart.py.err" \
    && ok "B: a resume START that is the run's first START: both reject step 51 and say why" \
    || { fail "B: tfevents-dump exit $drc, tb_reader exit $prc"; cat "$tmp/nostart.dump.err" "$tmp/nostart.py.err"; }

# C. a START at exactly the model step also drops that step's points
craft atmodel <<'S'
file @1.h
start 0
scalars loss 0 80
file @2.h
start 50
scalars loss 51 100
S
verify atmodel
[ $drc -eq 0 ] && [ $prc -eq 0 ] && row atmodel loss 100 0 100 && ! grep -q '^\. loss 50 ' "$tmp/atmodel.points" \
    && ok "C: START at step 50 purges step 50 itself (100 points, no step 50)" || fail "C: START at the model step"

# D. an interrupted process that wrote failure, then a resumed success: TensorBoard shows failure
craft twoends <<'S'
file @1.h
start 0
hparams_start
scalars loss 0 60
end 2 60
file @2.h
start 61
scalars loss 61 100
end 1 100
S
verify twoends
[ $drc -eq 0 ] && [ $prc -eq 0 ] && grep -q 'hparams status: STATUS_FAILURE' "$tmp/twoends.dump" \
    && grep -q 'hparams status: STATUS_FAILURE' "$tmp/twoends.py" \
    && grep -q 'warning: session_end_info STATUS_SUCCESS at step 100 is ignored by TensorBoard' "$tmp/twoends.dump.err" \
    && grep -q 'warning: session_end_info STATUS_SUCCESS at step 100 is ignored by TensorBoard' "$tmp/twoends.py.err" \
    && ok "D: the first session_end_info (failure) wins, the later success is a warning" \
    || { fail "D: two end records"; cat "$tmp/twoends.dump" "$tmp/twoends.dump.err" "$tmp/twoends.py.err"; }
$py tests/tb_reader.py --expect-session-status success "$tmp/twoends" > /dev/null 2> "$tmp/d.err" \
    && fail "D: --expect-session-status success accepts a failed run" \
    || { grep -q 'hparams status STATUS_FAILURE, expected success' "$tmp/d.err" && ok "D: --expect-session-status success rejects it"; }

# E. after a purge steps must increase again; F. several restarts in one file
craft again <<'S'
file @1.h
start 0
scalars loss 0 80
start 51
scalars loss 51 52
scalar loss 52 0.5
S
verify again
[ $drc -eq 1 ] && [ $prc -eq 1 ] && grep -Eq "tag 'loss':? step 52 does not increase \(previous 52\)$" "$tmp/again.dump.err" \
    && grep -Eq "tag 'loss':? step 52 does not increase \(previous 52\)$" "$tmp/again.py.err" \
    && ok "E: after a restart a repeated step is still an error" || fail "E: exits $drc/$prc"
craft restarts <<'S'
file @1.h
start 0
scalars loss 0 10
start 5
scalars loss 5 10
start 8
scalars loss 8 12
S
verify restarts
[ $drc -eq 0 ] && [ $prc -eq 0 ] && row restarts loss 13 0 12 && grep -q '2 restarts purging 9 points' "$tmp/restarts.dump" \
    && ok "F: two restarts in one file (13 points kept, 9 purged)" || fail "F: exits $drc/$prc"

# G. the writer's own records for run -> crash at 80 -> resume from the model at 50 -> finish
writer=$build/tests/test_summary
if [ -x "$writer" ] && "$writer" --write-resume-sample "$tmp/writer/run" > "$tmp/writer.files"; then
    [ "$(wc -l < "$tmp/writer.files")" -eq 2 ] || fail "G: $(wc -l < "$tmp/writer.files") files, want 2"
    verify writer --expect-session-status=success
    [ $drc -eq 0 ] && [ $prc -eq 0 ] && ok "G: both verifiers accept the writer's crash/resume run, status success" \
        || { fail "G: tfevents-dump exit $drc, tb_reader exit $prc"; cat "$tmp/writer.dump.err" "$tmp/writer.py.err"; }
    row writer 'loss/total' 100 1 100 && row writer 'layer0/goodness_pos' 100 1 100 \
        && row writer 'layer0/weights' 10 10 100 && row writer 'inputs/positive' 4 25 100 \
        && ok "G: every tag keeps each step once (scalars 1..100, histograms every 10, images every 25)" \
        || { fail "G: tag rows"; cat "$tmp/writer.dump" "$tmp/writer.py"; }
    grep -q 'first SessionLog START at step 0, 1 restart purging 64 points' "$tmp/writer.dump" \
        && grep -q 'hparams status: STATUS_SUCCESS' "$tmp/writer.dump" \
        && ok "G: the resume's START purges the 64 points logged after the model (steps 51..80)" \
        || fail "G: $(grep -E 'sessions|status' "$tmp/writer.dump")"
else
    fail "G: test_summary --write-resume-sample failed (built with make unit-bins?)"
fi

# H (issue 38 items 6-7). 100,000 distinct tags in one valid file: tags are found by a hash
# table (main's linear search: 40,000 tags 21 s, 200,000 over 120 s); and a tag holding an
# escape sequence is printed escaped, never raw to the terminal
{ echo "file @1"
  for i in $(seq 100000); do echo "scalar t$i 1 0.5"; done
  printf 'scalar red\033[31mtag 1 0.5\n'; } | craft many
t0=$(date +%s%N)
timeout 60 "$dump" "$tmp/many" > "$tmp/many.dump" 2> "$tmp/many.dump.err"
rc=$? ms=$((($(date +%s%N) - t0) / 1000000))
[ $rc -eq 0 ] && [ $ms -lt 10000 ] && grep -q "100001 tags" "$tmp/many.dump" &&
    ok "H: 100,001 distinct tags dumped in $ms ms" || fail "H: 100,001 tags: exit $rc in $ms ms (124: over 60 s)"
grep -q 'red\\x1b\[31mtag' "$tmp/many.dump" && ! grep -q $'\033' "$tmp/many.dump" &&
    "$dump" --csv "$tmp/many" 2>/dev/null | grep -q '^\.,red\\x1b\[31mtag,1,' &&
    ! "$dump" --records "$tmp/many" 2>&1 | grep -q $'\033' &&
    ok "H: a tag holding an escape sequence is printed escaped (summary, CSV, records)" ||
    fail "H: the escape sequence tag: $(grep red "$tmp/many.dump" | od -c | head -2)"

finish t_tb_sessions

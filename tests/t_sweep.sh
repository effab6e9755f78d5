#!/usr/bin/env bash
# t_sweep.sh - `ffrun sweep`: a 2x2 grid x 2 seeds of configs/quick.yaml cut to seconds.
# A bad axis is one exit-2 error naming file:line:col before anything runs; a sweep
# stopped mid-way (--max-steps, as an interrupt) is resumed by the same command; every
# run directory, event file and summary row exists; the summary's mean/std match the
# runs' final metrics read back by tests/tb_reader.py; the sweep writes the only HParams
# experiment (swept keys first, differs); a third invocation skips everything.
# scheduler: asha on real tiny runs whose order is forced (lr 1e-9 cannot learn): the runs
# it should stop are stopped at the right rung with resumable models, the metric it decided
# on is the runs' own (tb_reader), a stopped sweep resumes with its decisions kept and no
# stopped run comes back. Under mpirun -np 2 (when built with Open MPI) the runs are
# spread over both ranks and one summary is written. tools/sweep-timing.sh on a tiny sweep
# writes its table between the markers of a copy of docs/RESULTS.md.
set -u
source "$(dirname "$0")/script_lib.sh"
# (every sweep runs in a timeout: a hang fails the test with 124 instead of stopping the suite)
ffrun=$root/$build/ffrun
py=/usr/bin/python3
cd "$tmp" && ln -s "$root/data" data && ln -s "$root/configs" configs

cat > bad.yaml <<'Y'
config: configs/quick.yaml
axes:
  optimizer.lrr: [0.001, 0.002]
  train.jitter: [0, x]
Y
timeout -k 10 600 "$ffrun" sweep bad.yaml > bad.out 2> bad.err
rc=$?
[ $rc -eq 2 ] && ok "bad axes: exit 2" || fail "bad axes: exit $rc"
grep -q "^ffrun: bad.yaml:3:3: axis optimizer.lrr: unknown key 'optimizer.lrr'; did you mean 'optimizer.lr'?" bad.err \
    && ok "bad key named at bad.yaml:3:3 with the did-you-mean" || { fail "bad key message"; cat bad.err; }
grep -q "^bad.yaml:4:21: axis train.jitter: " bad.err && ok "bad value named at bad.yaml:4:21, in the same error" \
    || { fail "bad value message"; cat bad.err; }
[ "$(wc -l < bad.err)" -eq 2 ] && ok "one line per distinct problem (not one per point)" || fail "$(wc -l < bad.err) error lines"
[ ! -e runs ] && ok "nothing started" || fail "a bad sweep created runs/"

timeout -k 10 600 "$ffrun" configs/quick.yaml --sweep optimizer.lr=0.001,0.002 --seeds 2 --dry-run > dry.out 2>&1
grep -q "^0 .* lr=0.001,seed=2$" dry.out && grep -q "4 run(s)" dry.out && grep -q "e+" dry.out \
    && ok "--sweep/--seeds --dry-run lists the runs and multiply-adds" || { fail "dry run"; cat dry.out; }

# every shipped sweep file is valid (its points, runs and multiply-adds listed)
for f in configs/sweeps/*.yaml; do
    timeout -k 10 600 "$ffrun" sweep "$f" --dry-run > sd.out 2>&1 && grep -q "total about .* multiply-adds" sd.out \
        && ok "shipped $f: --dry-run is valid" || { fail "shipped $f"; cat sd.out; }
done

cat > s.yaml <<'Y'
config: configs/quick.yaml
name: grid
set:
  data.train_limit: 500
  data.test_limit: 500
  train.epochs: 1
  log.every: 2
  log.histograms: 0
  log.images: 0
axes:
  optimizer.lr: [0.001, 0.002]
  train.jitter: [0, 1]
seeds: 2
jobs: 2
Y
timeout -k 10 600 "$ffrun" sweep s.yaml --max-steps 4 > s1.out 2> s1.err
rc=$?
[ $rc -eq 130 ] && ok "a sweep stopped mid-way exits 130" || { fail "first invocation exit $rc"; cat s1.err; }
sd=$(ls -d runs/supervised/*_grid)
[ "$(ls "$sd"/models/*_step0000004.ffm | wc -l)" -eq 8 ] && ok "every run left a step model" || fail "step models"
grep -q "interrupted (resumable), exit status 130" "$sd/SUMMARY.md" && ok "SUMMARY.md lists interrupted runs" \
    || fail "SUMMARY.md after the stop"

timeout -k 10 600 "$ffrun" sweep s.yaml > s2.out 2> s2.err
rc=$?
[ $rc -eq 0 ] && ok "second invocation finishes (exit 0)" || { fail "second invocation exit $rc"; cat s2.err; }
[ "$(grep -c 'start .*(resuming .*_step0000004.ffm)' s2.err)" -eq 8 ] && ok "it resumed all 8 runs from their step models" \
    || { fail "resume lines"; cat s2.err; }
[ "$(ls -d runs/supervised/*_grid | wc -l)" -eq 1 ] && ok "the same sweep directory" || fail "a second sweep directory"
n=0
for lr in 0.001 0.002; do for j in 0 1; do for s in 1 2; do
    d="$sd/lr=$lr,jitter=$j,seed=$s"
    [ -f "$d/ffrun.log" ] && ls "$d"/events.out.tfevents.* > /dev/null 2>&1 && n=$((n + 1))
done; done; done
[ $n -eq 8 ] && ok "8 run directories named by their values, each with event files and ffrun.log" || fail "$n run dirs"
[ "$(tail -n +2 "$sd/summary.csv" | wc -l)" -eq 4 ] && ok "summary.csv: 4 points" || fail "summary.csv rows"
grep -q "ffrun configs/quick.yaml .*--set 'optimizer.lr=0.00[12]' --set 'train.jitter=[01]' --set 'seed=1'" "$sd/SUMMARY.md" \
    && ok "SUMMARY.md: the best point's command" || fail "best command"
grep -q "^| 1 | lr=" s2.out && ok "the summary is printed" || fail "summary not printed"

if $py "$root/tests/tb_reader.py" --scalars scalars.txt "$sd" > reader.out 2>&1; then
    ok "the sweep's event files pass the strict reader"
else
    fail "tb_reader"; tail -5 reader.out
fi
$py - "$sd" <<'P' && ok "summary mean/std/min/max = the runs' final metrics (tb_reader), sorted by test/error_goodness" || fail "summary stats"
import csv, statistics, sys
last = {}
for line in open("scalars.txt"):
    run, tag, step, val = line.split()
    if "," in run and (run, tag) not in last or int(step) >= last[(run, tag)][0]:
        last[(run, tag)] = (int(step), float(val))
rows = list(csv.DictReader(open(sys.argv[1] + "/summary.csv")))
assert len(rows) == 4, rows
prev = -1
for row in rows:
    for tag in ("test/error_goodness", "test/error_softmax", "loss/total"):
        vals = [last[(row["point"] + ",seed=%d" % s, tag)][1] for s in (1, 2)]
        want = (statistics.mean(vals), statistics.stdev(vals), min(vals), max(vals))
        got = [float(row["%s %s" % (tag, k)]) for k in ("mean", "std", "min", "max")]
        for w, g in zip(want, got):
            assert abs(w - g) <= 1e-5 * max(1, abs(w)), (row["point"], tag, want, got)
    m = float(row["test/error_goodness mean"])
    assert m >= prev, "not sorted"
    prev = m
print("checked", len(rows), "points")
P
$py - "$sd" "$root/tests" <<'P' && ok "one HParams experiment, in the sweep's root: swept keys first with differs, metrics of all runs" || fail "experiment"
import glob, os, struct, sys
sys.path.insert(0, sys.argv[2])
import tb_reader
event_pb2, summary_pb2, _, hparams_pb2, _ = tb_reader.load_protos(tb_reader.PROTO_DIR)
found = []
for path in glob.glob(sys.argv[1] + "/**/*tfevents*", recursive=True):
    data = open(path, "rb").read()
    pos = 0
    while pos + 12 <= len(data):
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        ev = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
        pos += 16 + n
        for v in ev.summary.value:
            if v.tag == "_hparams_/experiment":
                found.append((path, hparams_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content).experiment))
assert len(found) == 1, [p for p, _ in found]
path, x = found[0]
assert os.path.dirname(path) == sys.argv[1], path
names = [h.name for h in x.hparam_infos]
assert set(names[:3]) == {"optimizer.lr", "train.jitter", "seed"}, names[:5]
assert all(h.differs for h in x.hparam_infos[:3]) and not any(h.differs for h in x.hparam_infos[3:])
strings = [h for h in x.hparam_infos if h.type == hparams_pb2.DATA_TYPE_STRING]
assert strings and all(len(h.domain_discrete.values) >= 1 for h in strings)
lr = x.hparam_infos[names.index("optimizer.lr")]
assert sorted(v.number_value for v in lr.domain_discrete.values) == [0.001, 0.002]
tags = {m.name.tag for m in x.metric_infos}
assert {"test/error_goodness", "test/error_softmax", "clf/loss", "loss/total", "sweep/images_per_sec"} <= tags, tags
P

before=$(find "$sd" -name '*tfevents*' | wc -l)
timeout -k 10 600 "$ffrun" sweep s.yaml > s3.out 2> s3.err
rc=$?
[ $rc -eq 0 ] && grep -q "8 run(s) already finished: skipped" s3.err && ! grep -q "start " s3.err \
    && ok "a third invocation skips every run" || { fail "re-run exit $rc"; cat s3.err; }
[ "$(find "$sd" -name '*tfevents*' | wc -l)" -eq "$before" ] && ok "and writes no event file" || fail "re-run wrote event files"

# ---------------------------------------------------------------- asha
cat > asha.yaml <<'Y'
config: configs/quick.yaml
name: asha
set: {data.train_limit: 1000, data.test_limit: 500, train.epochs: 4, log.every: 10,
      log.histograms: 0, log.images: 0}
axes:
  optimizer.lr: [0.005, 1e-9]
seeds: 2
jobs: 1
threads: 1
scheduler: asha
asha: {min_epochs: 1, eta: 2, metric: loss/total}
Y
timeout -k 10 600 "$ffrun" sweep asha.yaml --dry-run > ad.out 2>&1
grep -q "scheduler asha: eta 2, metric loss/total (lower is better); rungs at epoch 1, 2 of 4" ad.out \
    && ok "asha: --dry-run shows the rungs" || { fail "asha dry run"; cat ad.out; }
# 1000 images, batch 50: 20 steps an epoch; --max-steps 60 interrupts the run that goes on
# past both rungs (at epoch 3), so the first invocation ends unfinished
timeout -k 10 600 "$ffrun" sweep asha.yaml --max-steps 60 > a1.out 2> a1.err
rc=$?
[ $rc -eq 130 ] && ok "asha: the first invocation stops with one run interrupted (exit 130)" || { fail "asha 1: exit $rc"; cat a1.err; }
ad=$(ls -d runs/supervised/*_asha)
[ "$(grep -c "waiting at epoch" "$ad/SUMMARY.md")" -eq 3 ] && ! grep -q "stopped by asha at" "$ad/SUMMARY.md" \
    && ok "asha: an unfinished sweep stops nobody yet: 3 runs wait at their rung" || { fail "asha 1 summary"; cat "$ad/SUMMARY.md"; }
timeout -k 10 600 "$ffrun" sweep asha.yaml > a2.out 2> a2.err
rc=$?
[ $rc -eq 0 ] && ok "asha: the second invocation completes the sweep (exit 0)" || { fail "asha 2: exit $rc"; cat a2.err; }
[ "$(grep -c '^ffrun sweep: start ' a2.err)" -eq 1 ] && grep -q "^ffrun sweep: start  lr=0.005,seed=[12] (resuming .*_step0000060.ffm)$" a2.err \
    && ok "asha: it resumed only the interrupted run (the promoted one), to the end" || { fail "asha 2 starts"; cat a2.err; }
grep -q "asha stopped 3 run(s) at their rung" a2.err && ok "asha: then stopped the 3 runs still waiting" || fail "asha stop note"
good=true
for s in 1 2; do
    grep -q "^| lr=1e-9,seed=$s | stopped by asha at epoch 1 (rung 0) |" "$ad/SUMMARY.md" &&
        grep -q "lr=1e-9,seed=$s: stopped by asha at epoch 1 (rung 0)" "$ad/summary.csv" &&
        grep -q "^| lr=1e-9,seed=$s | stopped by asha at epoch 1 (rung 0) |" a2.out || good=false
done
$good && ok "asha: both runs that cannot learn stopped at epoch 1 (rung 0), said in SUMMARY.md, summary.csv, terminal" ||
    { fail "lr=1e-9 runs not stopped at rung 0 in SUMMARY.md, summary.csv and the terminal"; cat "$ad/SUMMARY.md" "$ad/summary.csv"; }
nf=$(grep -c "^| lr=0.005,seed=[12] | finished (epoch 4) |" "$ad/SUMMARY.md")
ns=$(grep -c "^| lr=0.005,seed=[12] | stopped by asha at epoch 2 (rung 1) |" "$ad/SUMMARY.md")
[ "$nf" -eq 1 ] && [ "$ns" -eq 1 ] && ok "asha: of the two that learn, the better at epoch 2 finished, the other stopped at epoch 2 (rung 1)" \
    || { fail "asha lr=0.005 outcomes: $nf finished, $ns stopped at rung 1"; cat "$ad/SUMMARY.md"; }
grep -q "4 run(s) of .*: 1 finished, 0 failed, 0 interrupted, 0 not run yet, 3 stopped by asha, 0 waiting" "$ad/SUMMARY.md" &&
    ok "asha: SUMMARY.md counts 1 finished, 3 stopped by asha" || fail "asha counts: $(grep 'run(s) of' "$ad/SUMMARY.md")"
# the stopped runs: a step model at their rung, nothing trained after it
good=true
for m in "lr=1e-9,seed=1:20:1" "lr=1e-9,seed=2:20:1"; do
    run=${m%%:*} rest=${m#*:}; step=${rest%%:*} ep=${rest#*:}
    f="$ad/models/supervised_${run}_step00000$step.ffm"
    [ "$($py "$root/tests/ffm.py" info "$f" 2>/dev/null | sed -n 's/^epoch: //p')" = "$ep" ] || { good=false; echo "  no step model $f at epoch $ep"; }
done
$good && ok "asha: stopped runs keep a resumable step model at their rung" || fail "asha step models"
$py "$root/tests/tb_reader.py" --scalars as.txt "$ad" > /dev/null 2>&1 || fail "asha event files: tb_reader"
if $py - "$ad/asha.tsv" as.txt <<'P'; then
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if not l.startswith(("#", "run\t"))]
sc = {}
for line in open(sys.argv[2]):
    run, tag, step, val = line.split()
    sc.setdefault((run, tag), {})[int(step)] = float(val)
assert len(rows) == 6, rows   # 2 + 2 rungs for lr=0.005, 1 each for lr=1e-9
for run, rung, epoch, metric, decision in rows:
    loss = sc[(run, "loss/total")]
    want = loss[20 * int(epoch)]
    assert abs(float(metric) - want) <= 1e-4 * abs(want), (run, epoch, metric, want)
    if run.startswith("lr=1e-9"):
        assert decision == "stopped" and max(loss) == 20, (run, decision, max(loss))
dec = {(r[0], r[1]): r[4] for r in rows}
assert sorted(d for (run, k), d in dec.items() if run.startswith("lr=0.005")) == \
    ["promoted", "promoted", "promoted", "stopped"], dec
at1 = {r[4]: float(r[3]) for r in rows if r[0].startswith("lr=0.005") and r[1] == "1"}
assert at1["promoted"] < at1["stopped"], at1   # the better one at epoch 2 went on
print("    asha.tsv: %d decisions; rung metrics = the runs' loss/total at the rung's step (tb_reader)" % len(rows))
P
    ok "asha: decided on the runs' own metric at each rung; stopped runs trained no further"
else
    fail "asha.tsv against the event files"; cat "$ad/asha.tsv"
fi
before=$(find "$ad" -name '*tfevents*' | wc -l)
cp "$ad/asha.tsv" asha.before
timeout -k 10 600 "$ffrun" sweep asha.yaml > a3.out 2> a3.err
rc=$?
[ $rc -eq 0 ] && ! grep -q "start " a3.err && grep -q "3 run(s) stopped by asha earlier: not resumed" a3.err &&
    [ "$(find "$ad" -name '*tfevents*' | wc -l)" -eq "$before" ] && cmp -s asha.before "$ad/asha.tsv" &&
    ok "asha: a third invocation starts nothing, resurrects no stopped run, keeps the decisions" ||
    { fail "asha 3: exit $rc"; cat a3.err; }

# ---------------------------------------------------------------- one sweep per directory
# (issue 38 item 4) a second `ffrun sweep` of the same file says who holds the directory and
# exits 1 (main: both worked in it); kill -9 of the sweep ends its runs within seconds (main:
# orphans went on); an immediate re-run waits for nothing stale: no FAILED run, each log kept
cat > own.yaml <<'Y'
config: configs/quick.yaml
name: own
set: {data.train_limit: 1000, data.test_limit: 200, train.epochs: 100, log.histograms: 0,
      log.images: 0, eval.softmax: false}
axes:
  optimizer.lr: [0.001, 0.002]
jobs: 1
threads: 1
Y
(timeout 300 "$ffrun" sweep own.yaml > o1.out 2> o1.err; true) 2> /dev/null & # (no "Killed" notice)
o1=$!
od=
for _ in $(seq 300); do # until the first run has started training (at most 30 s)
    od=$(ls -d runs/supervised/*_own 2>/dev/null)
    [ -n "$od" ] && [ -s "$od/lr=0.001/ffrun.log" ] && ls "$od"/lr=0.001/*tfevents* > /dev/null 2>&1 &&
        break
    sleep 0.1
done
sleep 1
timeout 30 "$ffrun" sweep own.yaml > o2.out 2> o2.err
rc=$?
sweep_pid=$(pgrep -f "^$ffrun sweep own.yaml")
[ $rc -eq 1 ] && [ -n "$sweep_pid" ] && grep -q "is in use by another sweep (pid $sweep_pid host " o2.err &&
    [ "$(ls -d runs/supervised/*_own | wc -l)" -eq 1 ] &&
    ok "a second sweep of the same file: exit 1, names the holder's pid" ||
    fail "second sweep at once: exit $rc: $(cat o2.err | head -3)"
run_log=$(ls "$od"/*/ffrun.log 2>/dev/null | head -1)
first_line=$(head -1 "$run_log" 2>/dev/null)
kill -9 "$sweep_pid"
t0=$SECONDS
while pgrep -f -- "--sweep-run $od" > /dev/null && [ $((SECONDS - t0)) -lt 20 ]; do sleep 0.2; done
if pgrep -f -- "--sweep-run $od" > /dev/null; then
    fail "kill -9 of the sweep: its runs still run after 20 s"
    pkill -KILL -f -- "--sweep-run $od"
else
    ok "kill -9 of the sweep: its runs ended within $((SECONDS - t0)) s"
fi
wait $o1
timeout 300 "$ffrun" sweep own.yaml > o3.out 2> o3.err
rc=$?
[ $rc -eq 0 ] && ! grep -q FAILED o3.err "$od/SUMMARY.md" && grep -q "resuming" o3.err &&
    [ "$(head -1 "$run_log")" = "$first_line" ] && [ "$(ls "$od"/models/*_epoch100.ffm | wc -l)" -eq 2 ] &&
    ok "an immediate re-run: exit 0, resumed the killed run, nothing FAILED, its log kept" ||
    { fail "re-run after kill -9: exit $rc"; cat o3.err | tail -5; }

# ---------------------------------------------------------------- tools/sweep-timing.sh
cat > tiny.yaml <<'Y'
config: configs/quick.yaml
name: tiny
set: {data.train_limit: 300, data.test_limit: 300, train.epochs: 1, log.histograms: 0, log.images: 0}
axes:
  optimizer.lr: [0.001, 0.002]
Y
cp "$root/docs/RESULTS.md" R.md
if RESULTS=$PWD/R.md OUT=$PWD/timing FFRUN=$root/$build/ffrun "$root/tools/sweep-timing.sh" "$PWD/tiny.yaml" > st.out 2>&1 &&
    grep -q '^| two runs at once | 2 x 1 | [0-9.]* | [0-9.]* | [0-9.]*x the time |$' R.md &&
    grep -q '^| one after another | 1 x 2 | [0-9.]* | [0-9.]* | 1.00 |$' R.md &&
    [ "$(sed -n '/sweep:begin/,/sweep:end/p' R.md | grep -c '^| [12] | lr=0.00[12] | 1/1 |')" -eq 2 ] &&
    diff <(sed '/<!-- sweep:begin -->/,/<!-- sweep:end -->/d' R.md) \
         <(sed '/<!-- sweep:begin -->/,/<!-- sweep:end -->/d' "$root/docs/RESULTS.md") > /dev/null &&
    [ "$(ls -d timing/*/rep1-jobs2x1/runs/supervised/*_tiny timing/*/rep1-jobs1x2/runs/supervised/*_tiny | wc -l)" -eq 2 ]; then
    ok "tools/sweep-timing.sh: both ways in fresh sweep directories, times and SUMMARY table between the markers only"
else
    fail "tools/sweep-timing.sh"; cat st.out; sed -n '/sweep:begin/,/sweep:end/p' R.md
fi

# ---------------------------------------------------------------- mpirun
if command -v mpirun > /dev/null && ldd "$ffrun" | grep -q libmpi; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
    cat > m.yaml <<'Y'
config: configs/quick.yaml
name: mpi
set: {data.train_limit: 500, data.test_limit: 500, train.epochs: 1, log.every: 5,
      log.histograms: 0, log.images: 0}
axes:
  optimizer.lr: [0.001, 0.002]
seeds: 2
jobs: 1
threads: 1
Y
    timeout 300 mpirun --oversubscribe -np 2 "$ffrun" sweep m.yaml > m.out 2> m.err
    rc=$?
    md=$(ls -d runs/supervised/*_mpi 2>/dev/null)
    [ $rc -eq 0 ] && [ "$(echo "$md" | wc -l)" -eq 1 ] && ok "mpirun -np 2 ffrun sweep: exit 0, one sweep directory" \
        || { fail "mpirun sweep: exit $rc"; cat m.err; }
    r0=$(grep -l "^ffrun sweep: rank 0 of 2 starts this run" "$md"/*/ffrun.log | wc -l)
    r1=$(grep -l "^ffrun sweep: rank 1 of 2 starts this run" "$md"/*/ffrun.log | wc -l)
    [ "$r0" -ge 1 ] && [ "$r1" -ge 1 ] && [ $((r0 + r1)) -eq 4 ] &&
        ok "mpirun: the 4 runs were spread over both ranks ($r0 on rank 0, $r1 on rank 1), each once" ||
        fail "mpirun spread: $r0 on rank 0, $r1 on rank 1"
    [ "$(ls "$md"/models/*_epoch001.ffm | wc -l)" -eq 4 ] && [ "$(tail -n +2 "$md/summary.csv" | wc -l)" -eq 2 ] &&
        grep -q "4 finished" "$md/SUMMARY.md" && [ "$(grep -c '^# Sweep mpi' m.out)" -eq 1 ] &&
        [ "$(find "$md" -maxdepth 1 -name '*tfevents*' | wc -l)" -eq 1 ] &&
        ok "mpirun: 4 finished runs, one summary (printed once), one experiment summary" ||
        { fail "mpirun summary"; cat "$md/SUMMARY.md"; }
else
    echo "    (mpirun sweep: skipped, no Open MPI in this build)"
fi
finish t_sweep.sh

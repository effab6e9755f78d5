#!/usr/bin/env bash
# t_sweep.sh - `ffrun sweep`: a 2x2 grid x 2 seeds of configs/quick.yaml cut to seconds.
# A bad axis is one exit-2 error naming file:line:col before anything runs; a sweep
# stopped mid-way (--max-steps, as an interrupt) is resumed by the same command; every
# run directory, event file and summary row exists; the summary's mean/std match the
# runs' final metrics read back by tests/tb_reader.py; the sweep writes the only HParams
# experiment (swept keys first, differs); a third invocation skips everything.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
cd "$tmp" && ln -s "$root/data" data && ln -s "$root/configs" configs

cat > bad.yaml <<'Y'
config: configs/quick.yaml
axes:
  optimizer.lrr: [0.001, 0.002]
  train.jitter: [0, x]
Y
"$ffrun" sweep bad.yaml > bad.out 2> bad.err
rc=$?
[ $rc -eq 2 ] && ok "bad axes: exit 2" || fail "bad axes: exit $rc"
grep -q "^ffrun: bad.yaml:3:3: axis optimizer.lrr: unknown key 'optimizer.lrr'; did you mean 'optimizer.lr'?" bad.err \
    && ok "bad key named at bad.yaml:3:3 with the did-you-mean" || { fail "bad key message"; cat bad.err; }
grep -q "^bad.yaml:4:21: axis train.jitter: " bad.err && ok "bad value named at bad.yaml:4:21, in the same error" \
    || { fail "bad value message"; cat bad.err; }
[ "$(wc -l < bad.err)" -eq 2 ] && ok "one line per distinct problem (not one per point)" || fail "$(wc -l < bad.err) error lines"
[ ! -e runs ] && ok "nothing started" || fail "a bad sweep created runs/"

"$ffrun" configs/quick.yaml --sweep optimizer.lr=0.001,0.002 --seeds 2 --dry-run > dry.out 2>&1
grep -q "^0 .* lr=0.001,seed=2$" dry.out && grep -q "4 run(s)" dry.out && grep -q "e+" dry.out \
    && ok "--sweep/--seeds --dry-run lists the runs and multiply-adds" || { fail "dry run"; cat dry.out; }

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
"$ffrun" sweep s.yaml --max-steps 4 > s1.out 2> s1.err
rc=$?
[ $rc -eq 130 ] && ok "a sweep stopped mid-way exits 130" || { fail "first invocation exit $rc"; cat s1.err; }
sd=$(ls -d runs/supervised/*_grid)
[ "$(ls "$sd"/models/*_step0000004.ffm | wc -l)" -eq 8 ] && ok "every run left a step model" || fail "step models"
grep -q "interrupted (resumable), exit status 130" "$sd/SUMMARY.md" && ok "SUMMARY.md lists interrupted runs" \
    || fail "SUMMARY.md after the stop"

"$ffrun" sweep s.yaml > s2.out 2> s2.err
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
assert {"test/error_goodness", "test/error_softmax", "loss/total", "sweep/images_per_sec"} <= tags, tags
P

before=$(find "$sd" -name '*tfevents*' | wc -l)
"$ffrun" sweep s.yaml > s3.out 2> s3.err
rc=$?
[ $rc -eq 0 ] && grep -q "8 run(s) already finished: skipped" s3.err && ! grep -q "start " s3.err \
    && ok "a third invocation skips every run" || { fail "re-run exit $rc"; cat s3.err; }
[ "$(find "$sd" -name '*tfevents*' | wc -l)" -eq "$before" ] && ok "and writes no event file" || fail "re-run wrote event files"
finish t_sweep.sh

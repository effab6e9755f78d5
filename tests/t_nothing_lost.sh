#!/usr/bin/env bash
# t_nothing_lost.sh - once training has started, nothing is lost (issue 20, items 1, 3, 4):
# two runs started in the same second with different log dirs and one checkpoint dir
# keep their own models; a failed event-file write (file size limit) still leaves a
# resumable step model, and the resumed run finishes; a diverging run stops with exit 1
# and a clear message and never writes a model holding NaN; diverging after a good model
# exists (a resumed run), the message names that model and it is still there and loads;
# a run killed with kill -9 resumes from the last model checkpoint.minutes wrote.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
cd "$tmp" && ln -s "$root/data" data
cat > tiny.yaml <<'Y'
mode: supervised
data: {train_limit: 1000, test_limit: 200}
model:
  layers:
    - {type: fc, units: 16}
    - {type: fc, units: 16}
train: {epochs: 30, batch_size: 50}
log: {every: 1, histograms: 1, images: 1}
Y

# 1. same second, same checkpoint.dir, different log.dir: each run's models hold its config
q=(--set data.train_limit=2000 --set train.epochs=2 --set checkpoint.dir=scratch/m)
"$ffrun" "$root/configs/quick.yaml" "${q[@]}" --set log.dir=scratch/A > a.out 2>&1 &
pa=$!
"$ffrun" "$root/configs/quick.yaml" "${q[@]}" --set log.dir=scratch/B --set seed=99 > b.out 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
# the seed in a model's embedded config (the YAML after the header)
model_seed() {
    $py - "$1" "$root/tests" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import ffm  # the independent model-file reader
for line in ffm.read(sys.argv[1])["config"].splitlines():
    if line.startswith("seed:"):
        print(line.split()[1])
PY
}
ma=$(sed -n 's/^model: *//p' a.out); mb=$(sed -n 's/^model: *//p' b.out)
seed_a=$(model_seed "$ma" 2>/dev/null); seed_b=$(model_seed "$mb" 2>/dev/null)
if [ $ra -eq 0 ] && [ $rb -eq 0 ] && [ -n "$ma" ] && [ "$ma" != "$mb" ] && [ "$seed_a" = 7 ] &&
    [ "$seed_b" = 99 ]; then
    ok "two runs in one checkpoint.dir keep their own models ($(basename "$ma"), $(basename "$mb"))"
else
    fail "concurrent runs: exit $ra/$rb, models '$ma' '$mb', seeds $seed_a/$seed_b"
    cat a.out b.out
fi

# 3. the event file cannot grow (RLIMIT_FSIZE 400 KB; models are 160 KB): exit 1, a step
# model named in the message, and --resume from it finishes the run
(trap '' XFSZ; ulimit -f 400; exec "$ffrun" tiny.yaml --quiet --name full > f.out 2>&1)
rc=$?
step=$(grep -o 'models/[^ ]*_step[0-9]*\.ffm' f.out | head -1)
if [ $rc -eq 1 ] && grep -q "write failed" f.out && [ -n "$step" ] && [ -f "$step" ]; then
    ok "a failed event-file write still saves a resumable model ($step)"
else
    fail "event-file write failure: exit $rc, step model '$step'"; cat f.out
fi
if [ -n "$step" ] && "$ffrun" --resume "$step" --quiet > r.out 2>&1 &&
    ls models/*_full_epoch030.ffm > /dev/null 2>&1; then
    ok "the run resumes from that model and finishes"
else
    fail "resume after the write failure"; cat r.out
fi

# 4. divergence: exit 1, "diverged", and every model on disk is finite
"$ffrun" "$root/configs/quick.yaml" --quiet --set data.train_limit=2000 --set train.epochs=3 \
    --set optimizer.lr=10 --set optimizer.eps=1.2e-38 --set optimizer.beta2=0 \
    --set checkpoint.dir=nan > n.out 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "training diverged" n.out; then
    ok "divergence stops the run: $(head -c 120 n.out)..."
else
    fail "divergence: exit $rc"; cat n.out
fi
bad=0
for m in nan/*.ffm; do
    [ -f "$m" ] || continue
    $py - "$m" "$root/tests" <<'PY' || bad=1
import math, struct, sys
sys.path.insert(0, sys.argv[2])
import ffm  # the independent model-file reader
m = ffm.read(sys.argv[1])
vals = struct.unpack("<%df" % m["n_params"], m["params"])
sys.exit(0 if all(math.isfinite(v) for v in vals) else 1)
PY
done
[ $bad -eq 0 ] && ok "no saved model holds a NaN" || fail "a saved model holds NaN"
# 4b. divergence after a good model exists: the message names that model, it is still on
# disk, finite, and ffrun eval reads it (a resumed run whose lr is raised to diverge)
"$ffrun" "$root/configs/quick.yaml" --quiet --set data.train_limit=1000 --set data.test_limit=200 \
    --set train.epochs=1 --set checkpoint.dir=nan2 > g.out 2>&1
good=$(ls nan2/*_epoch001.ffm 2>/dev/null | head -1)
"$ffrun" --resume "$good" --quiet --set train.epochs=3 --set optimizer.lr=10 \
    --set optimizer.eps=1.2e-38 --set optimizer.beta2=0 > n2.out 2>&1
rc=$?
last=$(sed -nE 's/.*the last good model is ([^ ]+\.ffm).*/\1/p' n2.out | head -1)
if [ -n "$good" ] && [ $rc -eq 1 ] && [ -n "$last" ] && [ -f "$last" ] &&
    "$ffrun" eval "$last" > e2.out 2>&1 && grep -q "test error" e2.out; then
    ok "divergence after epoch 1 keeps the last good model ($last), and eval reads it"
else
    fail "divergence after a good model: exit $rc, good '$good', named '$last'"; cat g.out n2.out e2.out 2>/dev/null
fi
# kill -9 during a save leaves <model>.tmp.<pid>.<n>; the next run removes it and says so
mkdir -p stale && : > stale/supervised_x_best.ffm.tmp.4194000.1 && : > stale/keep.ffm.tmp
"$ffrun" "$root/configs/quick.yaml" --set data.train_limit=500 --set train.epochs=1 \
    --set checkpoint.dir=stale > s.out 2>&1
if grep -q "removed 1 temporary model file" s.out && [ ! -e stale/supervised_x_best.ffm.tmp.4194000.1 ] &&
    [ -e stale/keep.ffm.tmp ]; then
    ok "a killed writer's temporary model file is removed at start (and said)"
else
    fail "stale temporary files"; cat s.out; ls stale
fi
# 5. checkpoint.minutes: kill -9 (no chance to save) leaves the last periodic step model,
# the earlier ones removed; --resume from it ends bit-identical to an uninterrupted run,
# and the resumed process's own periodic models go once its final model is written
q5=(--quiet --set data.train_limit=1000 --set data.test_limit=200 --set train.epochs=60
    --set checkpoint.dir=auto --set log.every=5 --set log.dir=auto_runs)
"$ffrun" "$root/configs/quick.yaml" "${q5[@]}" --set checkpoint.minutes=0 --name whole > w.out 2>&1 ||
    { fail "uninterrupted run"; cat w.out; }
"$ffrun" "$root/configs/quick.yaml" "${q5[@]}" --set checkpoint.minutes=0.003 --name cut > c.out 2>&1 &
pid=$!
declare -A seen=()
for _ in $(seq 600); do # until three different periodic models were seen (at most 60 s)
    for m in auto/*_cut_step*.ffm; do [ -f "$m" ] && seen[$m]=1; done
    [ ${#seen[@]} -ge 3 ] && break
    kill -0 $pid 2> /dev/null || break
    sleep 0.1
done
kill -KILL $pid 2> /dev/null; wait $pid 2> /dev/null
left=(auto/*_cut_step*.ffm)
[ -f "${left[0]}" ] || left=()
last=$(printf '%s\n' "${left[@]}" | sort | tail -1)
if [ ${#seen[@]} -ge 3 ] && [ ${#left[@]} -ge 1 ] && [ ${#left[@]} -le 2 ] && ! ls auto/*_cut_epoch060.ffm > /dev/null 2>&1; then
    ok "periodic step models replace each other: ${#seen[@]} written, ${#left[@]} left after kill -9 ($(basename "$last"))"
else
    fail "periodic models: ${#seen[@]} seen, ${#left[@]} left (${left[*]})"; cat c.out
fi
if [ -n "$last" ] && "$ffrun" --resume "$last" --quiet > cr.out 2>&1 &&
    $py "$root/tests/ffm.py" same-weights auto/*_whole_epoch060.ffm auto/*_cut_epoch060.ffm; then
    ok "resumed from the periodic model, the run ends bit-identical to an uninterrupted one"
else
    fail "resume from the periodic model"; cat cr.out
fi
# TensorBoard shows the resumed run as the uninterrupted one: the same scalars at the same
# steps (the periodic models are written at steps whose scalars were just logged)
if $py "$root/tests/tb_reader.py" --scalars pts auto_runs > tbr.out 2>&1 &&
    diff <(awk '$1 ~ /_whole$/ {$1 = ""; print}' pts) <(awk '$1 ~ /_cut$/ {$1 = ""; print}' pts) > pts.diff &&
    [ "$(awk '$1 ~ /_cut$/' pts | wc -l)" -gt 100 ]; then
    ok "TensorBoard reads the killed and resumed run's scalars as the uninterrupted run's ($(awk '$1 ~ /_cut$/' pts | wc -l) points)"
else
    fail "scalars of the resumed run differ"; head -5 pts.diff tbr.out
fi
# tfevents-dump --csv gives the same kept points as the strict reader: each step of the
# killed-and-resumed run once (the interrupted process's later points purged), values equal
if "$root/$build/tfevents-dump" --csv auto_runs > dump.csv 2> dump.err &&
    $py - pts dump.csv <<'PY'; then
import csv, sys
ref = {}
for line in open(sys.argv[1]):
    run, tag, step, val = line.split()
    ref[(run, tag, int(step))] = float(val)
rows = list(csv.reader(open(sys.argv[2])))
assert rows[0] == ["run", "tag", "step", "wall_time", "value"], rows[0]
got = {}
for run, tag, step, wall, val in rows[1:]:
    key = (run, tag, int(step))
    assert key not in got, "step given twice: %r" % (key,)
    assert float(wall) > 1.7e9
    got[key] = float(val)
assert set(got) == set(ref), (len(got), len(ref))
bad = [k for k in ref if abs(got[k] - ref[k]) > 1e-6 * max(1.0, abs(ref[k]))]
assert not bad, bad[:3]
assert sum(1 for k in got if k[0].endswith("_cut")) > 100
PY
    ok "tfevents-dump --csv: the kept scalar points of both runs, each step once, values as the strict reader reads them"
else
    fail "tfevents-dump --csv"; head -3 dump.csv dump.err
fi
# (issue 38 item 7) and the one it was resumed from: only an older one left by kill -9
# between writing a step model and removing the one before may stay
after=$(ls auto/*_cut_step*.ffm 2>/dev/null | sort | tr '\n' ' ')
[ "$after" = "$(printf '%s\n' "${left[@]}" | grep -vxF "$last" | sort | tr '\n' ' ')" ] &&
    ok "the finished run removed its own periodic models and the one it was resumed from" ||
    fail "step models after the resumed run: '$after', before: '${left[*]}', resumed from $last"
finish t_nothing_lost

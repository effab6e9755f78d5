#!/usr/bin/env bash
# t_mpi.sh - one experiment on 2 processes under Open MPI (mpirun --oversubscribe -np 2)
# against one process, same config and seed:
#   data parallel: per-layer losses of the first 10 steps within 1e-4 relative, the
#     ranks' weights bit-identical after every step (FF_PARALLEL_CHECK), the test error
#     within the spread one process shows between 1 and 2 BLAS threads (measured here);
#   pipeline: final weights and optimiser state bit-identical to one process, and so is a
#     run resumed from a periodic model (checkpoint.minutes) after kill -9 of every rank;
#   resume of a 2-rank run by one process (same run directory, steps continue);
#   a killed rank ends the job within seconds, naming the rank; bad settings exit 2 once;
#   plain ffrun makes no MPI call (parallel.mode data alone trains as one process);
#   Ctrl-C / SIGTERM: tools/ffmpirun and `kill -USR1 mpirun` give exit 130, plain mpirun 1.
# Without Open MPI (no mpirun, or ffrun built without libmpi) it FAILS when MPI is
# expected: under `make test` (FF_EXPECT_MPI=1; tools/deps.sh installs Open MPI) or
# when libopenmpi-dev is installed (the build is stale: rebuild). Otherwise it prints
# a loud SKIPPED banner and passes.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
if ! command -v mpirun >/dev/null || ! ldd "$ffrun" | grep -q libmpi; then
    why="mpirun is missing"
    command -v mpirun >/dev/null && why="$build/ffrun was built without Open MPI"
    expected=${FF_EXPECT_MPI:-0}
    pkg-config --exists ompi-c 2>/dev/null && expected=1
    echo "################################################################"
    if [ "$expected" = 1 ]; then
        echo "# t_mpi: FAIL: $why, but Open MPI is expected (tools/deps.sh"
        echo "# installs openmpi-bin and libopenmpi-dev; then make clean all)"
        echo "################################################################"
        exit 1
    fi
    echo "# t_mpi: SKIPPED, NOTHING UNDER MPI WAS TESTED: $why"
    echo "# (tools/deps.sh installs Open MPI; make test requires it)"
    echo "################################################################"
    exit 0
fi
# Open MPI refuses root unless told: set here for the test only
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_btl=self,vader OMPI_MCA_rmaps_base_oversubscribe=1
# Open MPI 4.1's hwloc GL plugin probes X displays :0-:9 over TCP: with anything on ports
# 6000-6009 (TensorBoard's 6006) mpirun hangs at launch; -gl leaves that plugin out
export HWLOC_COMPONENTS=-gl
# every mpirun in a timeout: a hang fails the test (124) instead of stopping the suite
mpi=(timeout -k 10 600 mpirun --oversubscribe -np 2)
cd "$tmp" && ln -s "$root/data" data
cfg=$root/configs/quick.yaml
short=(--quiet --set data.train_limit=500 --set data.test_limit=500 --set train.epochs=1
       --set log.every=1 --set log.histograms=0 --set log.images=0)

# loss CSV of a run: tag step value for layer*/loss
losses() { $py "$root/tests/tb_reader.py" --scalars "$1.csv" "runs/$2" >/dev/null &&
           awk '$2 ~ /^layer[0-9]+\/loss$/ {print $2, $3, $4}' "$1.csv" | sort > "$1.loss"; }

# 1. data parallel vs one process: 10 steps (500 images, batch 50), peer norm and jitter on
dp=("${short[@]}" --set train.peer_norm=0.03 --set train.jitter=2)
"$ffrun" "$cfg" "${dp[@]}" --set log.dir=runs/one > one.out 2>&1 || fail "one process: $(tail -2 one.out)"
FF_PARALLEL_CHECK=1 "${mpi[@]}" "$ffrun" "$cfg" "${dp[@]}" --set parallel.mode=data \
    --set log.dir=runs/two > two.out 2>&1
rc=$?
[ $rc -eq 0 ] && ok "data parallel on 2 ranks: weights bit-identical across ranks after every step" \
    || fail "data parallel run (exit $rc): $(tail -3 two.out)"
losses one one && losses two two
if $py - one.loss two.loss <<'PY'; then
import sys
a = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[1])}
b = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[2])}
steps = {int(k[1]) for k in a}
assert steps == set(range(1, 11)) and a.keys() == b.keys(), (sorted(steps), len(a), len(b))
worst = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in a)
print("    worst relative difference of %d per-layer losses: %.2e" % (len(a), worst))
sys.exit(worst > 1e-4)
PY
    ok "data parallel: per-layer losses of the first 10 steps within 1e-4 of one process"
else
    fail "data parallel: per-layer losses differ from one process"
fi
[ "$(ls runs/two/supervised | wc -l)" -eq 1 ] && ok "only rank 0 made a run directory" \
    || fail "run directories: $(ls runs/two/supervised)"
# the same on the message path (what ranks on several nodes use): MPI_Iallreduce per
# layer, every rank steps all weights; replicas compared after every step
FF_PARALLEL_SHM=0 FF_PARALLEL_CHECK=1 FF_PARALLEL_PROFILE=1 "${mpi[@]}" -x FF_PARALLEL_SHM \
    -x FF_PARALLEL_PROFILE "$ffrun" "$cfg" "${dp[@]}" --set parallel.mode=data \
    --set log.dir=runs/msg > msg.out 2>&1
rc=$?
losses msg msg 2>/dev/null
if [ $rc -eq 0 ] && grep -q "rank 1 profile (messages" msg.out && $py - one.loss msg.loss <<'PY'; then
import sys
a = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[1])}
b = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[2])}
assert a.keys() == b.keys()
sys.exit(max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in a) > 1e-4)
PY
    ok "data parallel by messages (FF_PARALLEL_SHM=0): replicas identical, losses within 1e-4"
else
    fail "data parallel by messages (exit $rc): $(tail -3 msg.out)"
fi
# and the default on one node is the shared-memory step
FF_PARALLEL_PROFILE=1 "${mpi[@]}" -x FF_PARALLEL_PROFILE "$ffrun" "$cfg" "${short[@]}" \
    --set parallel.mode=data --set log.dir=runs/prof > prof.out 2>&1
[ "$(grep -c 'profile (shared memory' prof.out)" -eq 2 ] &&
    ok "data parallel on one node steps in shared memory (FF_PARALLEL_PROFILE names it on both ranks)" ||
    fail "no shared-memory profile: $(grep profile prof.out | head -2)"

# a /dev/shm too small for the windows (a container's tmpfs): a note, then the message
# path, not a SIGBUS at the first touch (needs root to mount a 1 MB tmpfs; else skipped)
mkdir -p small_shm
if mount -t tmpfs -o size=1m tmpfs small_shm 2>/dev/null; then
    OMPI_MCA_osc_sm_backing_directory=$tmp/small_shm FF_PARALLEL_PROFILE=1 "${mpi[@]}" \
        -x FF_PARALLEL_PROFILE "$ffrun" "$cfg" "${short[@]}" --set parallel.mode=data \
        --set log.dir=runs/small > small.out 2>&1
    rc=$?
    umount small_shm
    [ $rc -eq 0 ] && [ "$(grep -c 'shared-memory step needs .* by messages instead' small.out)" -eq 1 ] &&
        [ "$(grep -c 'profile (messages' small.out)" -eq 2 ] &&
        ok "a 1 MB shared-memory directory: one note, gradients summed by messages" ||
        fail "small shared-memory directory (exit $rc): $(tail -3 small.out)"
else
    echo "    (a small tmpfs could not be mounted here: the shared-memory size check is not tested)"
fi

# 2. test error of a short run: 2 ranks vs 1 process, within the 1-vs-2 BLAS-thread spread
ev=(--quiet --set data.train_limit=3000 --set data.test_limit=1000 --set train.epochs=2
    --set optimizer.lr=0.003 --set log.histograms=0 --set log.images=0)
err_of() { awk '/^test error \(goodness/ {sub("%,", "", $6); print $6}' "$1"; }
"$ffrun" "$cfg" "${ev[@]}" > e1.out 2>&1
OPENBLAS_NUM_THREADS=2 "$ffrun" "$cfg" "${ev[@]}" > e2.out 2>&1
"${mpi[@]}" "$ffrun" "$cfg" "${ev[@]}" --set parallel.mode=data > ed.out 2>&1
e1=$(err_of e1.out) e2=$(err_of e2.out) ed=$(err_of ed.out)
if $py -c "import sys; e1, e2, ed = map(float, sys.argv[1:]); s = max(abs(e1 - e2), 0.5); \
d = min(abs(ed - e1), abs(ed - e2)); \
print('    test error %%: 1 thread %.2f, 2 threads %.2f, 2 ranks %.2f: %.2f from the nearer, spread %.2f' \
      % (e1, e2, ed, d, abs(e1 - e2))); sys.exit(d > s)" "${e1:-x}" "${e2:-x}" "${ed:-x}"; then
    ok "data parallel: test error within the 1-vs-2-thread spread of one process (floor 0.5 points)"
else
    fail "data parallel test error: 1 thread '$e1', 2 threads '$e2', 2 ranks '$ed'"
fi

# 3. pipeline on 2 ranks vs one process: bit-identical final weights (layer 0 | layer 1)
pp=(--quiet --set data.train_limit=1000 --set data.test_limit=200 --set train.epochs=2
    --set eval.softmax=false --set train.peer_norm=0.03 --set log.histograms=0
    --set log.images=0)
"$ffrun" "$cfg" "${pp[@]}" --name p1 > p1.out 2>&1 || fail "one process: $(tail -2 p1.out)"
"${mpi[@]}" "$ffrun" "$cfg" "${pp[@]}" --name p2 --set parallel.mode=pipeline > p2.out 2>&1 ||
    fail "pipeline run: $(tail -3 p2.out)"
if $py "$root/tests/ffm.py" same-weights models/*_p1_epoch002.ffm models/*_p2_epoch002.ffm; then
    ok "pipeline on 2 ranks: final weights bit-identical to one process"
else
    fail "pipeline weights differ from one process"
fi

# 3a. periodic models in a pipeline (checkpoint.minutes): the ranks agree when to save and
# gather the layers first; each replaces the one before, the stop's model the last one,
# and one process resumed from it ends bit-identical to the uninterrupted run (not quiet:
# the notes say what was saved). checkpoint.minutes 1e-7 (6 us): due at every log step; with
# 0.0001 (6 ms) the 5 steps after the first save took less on a quiet machine, and the
# save at step 10 did not happen
"${mpi[@]}" "$ffrun" "$cfg" "${pp[@]:1}" --name pa --set parallel.mode=pipeline --set log.every=5 \
    --set checkpoint.minutes=1e-7 --max-steps 12 > pa.out 2>&1
rc=$?
pa_models=$(ls models/*_pa_step*.ffm 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/.*_pa_//' | tr '\n' ' ')
if [ $rc -eq 130 ] && grep -q '^ffrun: saved models/.*_pa_step0000005.ffm' pa.out &&
    grep -q '^ffrun: saved models/.*_pa_step0000010.ffm' pa.out && [ "$pa_models" = "step0000012.ffm " ] &&
    "$ffrun" --resume models/*_pa_step0000012.ffm --quiet > pa2.out 2>&1 &&
    $py "$root/tests/ffm.py" same-weights models/*_p1_epoch002.ffm models/*_pa_epoch002.ffm; then
    ok "pipeline: periodic models at steps 5 and 10, replaced by the stop's at 12; resumed, bit-identical"
else
    fail "pipeline periodic models: exit $rc, left '$pa_models'"; cat pa.out pa2.out 2>/dev/null | tail -8
fi
# 3a'. the periodic model itself (above, the stop's replaced it): kill -9 every process of
# a pipeline run once one exists (no chance to save); one process resumed from the last
# one ends bit-identical to an uninterrupted one-process run
pk=("${pp[@]}" --set train.epochs=30 --set log.every=5)
"$ffrun" "$cfg" "${pk[@]}" --name pkw > pkw.out 2>&1 || fail "one process, 30 epochs: $(tail -2 pkw.out)"
"${mpi[@]}" "$ffrun" "$cfg" "${pk[@]}" --name pkc --set parallel.mode=pipeline \
    --set checkpoint.minutes=1e-7 > pkc.out 2>&1 &
pid=$!
for _ in $(seq 1200); do # until a periodic model exists (at most 60 s)
    ls models/*_pkc_step*.ffm > /dev/null 2>&1 && break
    kill -0 $pid 2> /dev/null || break
    sleep 0.05
done
{ pkill -KILL -f -- '--name pkc '; wait $pid; } 2> /dev/null # (no 'Killed' notice)
pk_last=$(ls models/*_pkc_step*.ffm 2> /dev/null | sort | tail -1)
if [ -n "$pk_last" ] && ! ls models/*_pkc_epoch030.ffm > /dev/null 2>&1 &&
    "$ffrun" --resume "$pk_last" --quiet > pkr.out 2>&1 &&
    $py "$root/tests/ffm.py" same-weights models/*_pkw_epoch030.ffm models/*_pkc_epoch030.ffm; then
    ok "pipeline killed (-9) after a periodic model ($(basename "$pk_last" .ffm | sed 's/.*_//')): resumed from it, bit-identical to one process"
else
    fail "pipeline periodic model after kill -9: '$pk_last'"; tail -5 pkc.out pkr.out 2> /dev/null
fi

# 3b. the competition loss with channels standardised over the batch (batch; affine: then
# scaled and shifted by learned per-channel parameters): data parallel sums every
# channel's statistics over the ranks (replicas identical, losses as one process); a
# pipeline stage hands back its layers' running statistics with the weights
# (affine with plain SGD: Adam's step hardly changes if a gradient is scaled, so a scale
# and shift gradient counted once per rank would pass under Adam; under SGD it moves the
# losses by 5%, so 1e-3 still tells them apart: one process and 2 ranks differ by 7e-5).
# pooled: affine on a conv net in CwComp's order (model.hand_on batch, the loss after each
# pool: model.loss_after_pool; data parallel only, as hand_on batch; measured 1e-7).
for norm in batch affine pooled; do
    tol=1e-4
    cw=(--quiet --set data.train_limit=1000 --set data.test_limit=200 --set train.epochs=1
        --set log.every=1 --set log.histograms=0 --set log.images=0 --set eval.softmax=false
        --set train.loss=competition --set model.label_embedding=none
        --set train.competition_norm=${norm/pooled/affine} --set train.logit_scale=10)
    [ "$norm" != batch ] && tol=1e-3 && cw+=(--set optimizer.type=sgd --set optimizer.lr=0.05
                                             --set optimizer.momentum=0)
    what="competition_norm $norm"
    [ "$norm" = pooled ] && what="competition_norm affine after the pools (loss_after_pool)" &&
        cw+=(--set model.hand_on=batch --set model.loss_after_pool=true
        --set "model.layers=[{type: conv, channels: 10, kernel: 3, padding: 1},
            {type: pool, kind: max, kernel: 2, stride: 2},
            {type: conv, channels: 20, kernel: 3, padding: 1, groups: 10},
            {type: pool, kind: max, kernel: 2, stride: 2}]")
    "$ffrun" "$cfg" "${cw[@]}" --set log.dir=runs/cw1$norm --name cw1$norm > cw1$norm.out 2>&1 ||
        fail "competition ($norm), one process: $(tail -2 cw1$norm.out)"
    FF_PARALLEL_CHECK=1 "${mpi[@]}" "$ffrun" "$cfg" "${cw[@]}" --set parallel.mode=data \
        --set log.dir=runs/cw2$norm --name cw2$norm > cw2$norm.out 2>&1
    rc=$?
    losses cw1$norm cw1$norm && losses cw2$norm cw2$norm
    if [ $rc -eq 0 ] && $py - cw1$norm.loss cw2$norm.loss "$norm" "$tol" <<'PY'; then
import sys
a = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[1])}
b = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[2])}
assert len(a) == 2 * 20 and a.keys() == b.keys(), (len(a), len(b))
worst = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in a)
print("    competition loss, %s statistics: worst relative difference %.2e" % (sys.argv[3], worst))
sys.exit(worst > float(sys.argv[4]))
PY
        ok "data parallel, $what: replicas identical, losses within $tol of one process"
    else
        fail "data parallel with $what (exit $rc): $(tail -3 cw2$norm.out)"
    fi
    [ "$norm" = pooled ] && continue
    "${mpi[@]}" "$ffrun" "$cfg" "${cw[@]}" --set parallel.mode=pipeline --set log.dir=runs/cw3$norm \
        --name cw3$norm > cw3$norm.out 2>&1 ||
        fail "pipeline with competition_norm $norm: $(tail -3 cw3$norm.out)"
    if $py "$root/tests/ffm.py" same-weights models/*_cw1${norm}_epoch001.ffm \
        models/*_cw3${norm}_epoch001.ffm; then
        ok "pipeline, competition_norm $norm: weights and running statistics bit-identical to one process"
    else
        fail "pipeline with competition_norm $norm differs from one process"
    fi
done

# 3c. a layer that stops learning (train_epochs) under data parallel: every process
# freezes layer 0 after epoch 1 (its update skipped in each process's shard of the
# shared-memory step, and on the message path); had it moved in epoch 2, layer 1's
# losses there would part from one process's (20 steps, both paths)
te=(--quiet --set data.train_limit=500 --set data.test_limit=200 --set train.epochs=2
    --set log.every=1 --set log.histograms=0 --set log.images=0 --set eval.softmax=false
    --set model.layers.0.train_epochs=1)
"$ffrun" "$cfg" "${te[@]}" --set log.dir=runs/te1 > te1.out 2>&1 || fail "train_epochs, one process: $(tail -2 te1.out)"
FF_PARALLEL_CHECK=1 "${mpi[@]}" "$ffrun" "$cfg" "${te[@]}" --set parallel.mode=data \
    --set log.dir=runs/te2 > te2.out 2>&1 || fail "train_epochs, data parallel: $(tail -3 te2.out)"
FF_PARALLEL_SHM=0 FF_PARALLEL_CHECK=1 "${mpi[@]}" -x FF_PARALLEL_SHM "$ffrun" "$cfg" "${te[@]}" \
    --set parallel.mode=data --set log.dir=runs/te3 > te3.out 2>&1 ||
    fail "train_epochs, data parallel by messages: $(tail -3 te3.out)"
losses te1 te1 && losses te2 te2 && losses te3 te3
for path in te2 te3; do
    if $py - te1.loss $path.loss <<'PY'; then
import sys
a = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[1])}
b = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[2])}
l1 = {int(k[1]) for k in a if k[0] == "layer1/loss"}
assert l1 == set(range(1, 21)) and a.keys() == b.keys(), (sorted(l1), len(a), len(b))
assert all(a[k] == 0.0 for k in a if k[0] == "layer0/loss" and int(k[1]) > 10)
worst = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in a)
print("    layer 0 frozen after epoch 1: worst relative difference %.2e" % worst)
sys.exit(worst > 1e-4)
PY
        ok "data parallel ($path) with train_epochs: replicas identical, losses within 1e-4 of one process"
    else
        fail "data parallel ($path) with train_epochs differs from one process"
    fi
done

# 4. resume across a change of N: 2 ranks stop at step 5 (exit 130), one process finishes
"${mpi[@]}" "$ffrun" "$cfg" "${short[@]}" --set parallel.mode=data --name rs --max-steps 5 \
    > rs.out 2>&1
rc=$?
[ $rc -eq 130 ] && ok "2 ranks stopped by --max-steps: exit 130" || fail "2-rank stop: exit $rc $(tail -2 rs.out)"
step_model=$(ls models/*_rs_step0000005.ffm 2>/dev/null)
[ -n "$step_model" ] && ok "rank 0 wrote the step model" || fail "no step model"
"$ffrun" --resume "$step_model" --quiet > rs2.out 2>&1 || fail "resume by one process: $(tail -2 rs2.out)"
[ "$(ls runs/supervised/*_rs/events.out.tfevents.* 2>/dev/null | wc -l)" -eq 2 ] &&
    [ -n "$(ls models/*_rs_epoch001.ffm 2>/dev/null)" ] &&
    ok "one process resumed the 2-rank run (same run directory, finished epoch 1)" ||
    fail "resume across N: $(ls runs/supervised models)"
# and the other way: one process stops at step 5, 2 ranks (shared-memory step) finish the
# epoch; steps 6-10 match an uninterrupted one-process run within 1e-4
"$ffrun" "$cfg" "${short[@]}" --name r1 --max-steps 5 > r1.out 2>&1
step_model=$(ls models/*_r1_step0000005.ffm 2>/dev/null)
"${mpi[@]}" "$ffrun" --resume "$step_model" --quiet --set parallel.mode=data > r2.out 2>&1
rc=$?
"$ffrun" "$cfg" "${short[@]}" --set log.dir=runs/whole > whole.out 2>&1
losses r1 "supervised/$(basename "$(ls -d runs/supervised/*_r1)")" && losses whole whole
if [ $rc -eq 0 ] && [ -n "$(ls models/*_r1_epoch001.ffm 2>/dev/null)" ] &&
    $py - whole.loss r1.loss <<'PY'; then
import sys
a = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[1])}
b = {tuple(l.split()[:2]): float(l.split()[2]) for l in open(sys.argv[2])}
late = [k for k in a if int(k[1]) > 5]
assert len(late) == 10 and all(k in b for k in late), (sorted(a), sorted(b))
sys.exit(max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-12) for k in late) > 1e-4)
PY
    ok "2 ranks resumed a one-process run: steps 6-10 within 1e-4 of one uninterrupted process"
else
    fail "resume 1 -> 2 ranks (exit $rc): $(tail -2 r2.out)"
fi

# 5. a killed rank ends the job within seconds and is named
"${mpi[@]}" "$ffrun" "$cfg" --quiet --set parallel.mode=data --set train.epochs=50 --name kill \
    > kill.out 2>&1 &
job=$!
victim=
for _ in $(seq 100); do
    for p in $(pgrep -f "ffrun $cfg --quiet --set parallel.mode=data --set train.epochs=50"); do
        grep -qz '^OMPI_COMM_WORLD_RANK=1$' "/proc/$p/environ" 2>/dev/null && victim=$p
    done
    [ -n "$victim" ] && [ -n "$(ls models/*_kill.run 2>/dev/null)" ] && break
    sleep 0.1
done
sleep 1
if [ -n "$victim" ]; then
    kill -9 "$victim"
    t0=$SECONDS
    while kill -0 $job 2>/dev/null && [ $((SECONDS - t0)) -lt 20 ]; do sleep 0.2; done
    if kill -0 $job 2>/dev/null; then
        fail "the job still runs 20 s after rank 1 was killed"
        kill $job
    else
        wait $job
        rc=$?
        [ $rc -ne 0 ] && grep -qi "rank 1" kill.out &&
            ok "killed rank 1: the job ended in $((SECONDS - t0)) s, exit $rc, naming rank 1" ||
            fail "killed rank: exit $rc, output: $(tail -3 kill.out)"
    fi
    for m in models/*_kill*.ffm; do
        [ -e "$m" ] || continue
        $py "$root/tests/ffm.py" info "$m" >/dev/null || fail "torn model $m"
    done
else
    fail "could not find rank 1 of the job"
    kill $job 2>/dev/null
fi

# 6. bad settings: exit 2, reported once
timeout -k 10 600 mpirun --oversubscribe -np 3 "$ffrun" "$cfg" --quiet --set parallel.mode=pipeline \
    --set eval.softmax=false > bad3.out 2>&1
rc3=$?
n3=$(grep -c "only 2 layers" bad3.out)
[ $rc3 -eq 2 ] && [ "$n3" -eq 1 ] &&
    ok "3 ranks for a 2-layer pipeline: exit 2, one message" ||
    fail "bad pipeline: exit $rc3, $n3 messages: $(head -3 bad3.out)"
"${mpi[@]}" "$ffrun" "$cfg" --quiet --set parallel.mode=pipeline > bad4.out 2>&1
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c 'parallel.mode pipeline cannot be used with eval.softmax' bad4.out)" -eq 1 ] &&
    ok "pipeline with eval.softmax: exit 2, one message" || fail "pipeline + softmax: exit $rc $(head -2 bad4.out)"
"${mpi[@]}" "$ffrun" "$cfg" --quiet --set data.train_limit=200 > bad5.out 2>&1
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c 'parallel.mode none' bad5.out)" -eq 1 ] &&
    ok "2 ranks with parallel.mode none: exit 2, one message" || fail "mode none on 2 ranks: exit $rc"

# 6b. ranks that disagree (issue 38; Open MPI's MPMD syntax `-np 1 A : -np 1 B`): before any
# allocation or collective the ranks compare their resolved configs and run options; any
# difference or any rank's start-up error ends every rank within seconds, exit 2, the
# message (naming the keys, or the failing rank) printed once. On the old main these hung
# in collectives for ever, overflowed the heap or trained a 94.6%-error model and exit 0.
q=(--quiet --set data.train_limit=1000 --set data.test_limit=200 --set train.epochs=2
   --set train.negatives=random --set log.histograms=0 --set log.images=0 --set parallel.mode=data)
# mpmd NAME PATTERN WHAT ARGS_OF_RANK_0 -- ARGS_OF_RANK_1
mpmd() {
    local name=$1 pattern=$2 what=$3 a=() b=()
    shift 3
    while [ "$1" != -- ]; do a+=("$1"); shift; done
    shift
    b=("$@")
    local t0=$SECONDS w=()
    [ -n "${WDIR1:-}" ] && w=(-wdir "$WDIR1") # rank 1's working directory
    timeout 60 mpirun --oversubscribe -np 1 "$ffrun" "${a[@]}" : -np 1 "${w[@]}" "$ffrun" "${b[@]}" \
        > "$name.out" 2>&1
    local rc=$? n
    n=$(grep -c -- "$pattern" "$name.out")
    [ $rc -eq 2 ] && [ "$n" -eq 1 ] && [ $((SECONDS - t0)) -le 30 ] &&
        ! ls models/*_"$name"_* > /dev/null 2>&1 &&
        ok "ranks disagree ($what): exit 2 in $((SECONDS - t0)) s, one message, no model" ||
        fail "ranks disagree ($what): exit $rc ($((SECONDS - t0)) s, 124 = hung), $n messages: $(head -3 "$name.out")"
}
mpmd dg1 "model.layers.1.units (rank 0: 300, rank 1: 200)" "layer sizes" \
    "$cfg" "${q[@]}" --name dg1 --set model.layers.1.units=300 -- "$cfg" "${q[@]}" --name dg1
mpmd dg2 "rank 1 of 2: /nonexistent.yaml" "rank 1's config missing" \
    "$cfg" "${q[@]}" --name dg2 -- /nonexistent.yaml "${q[@]}" --name dg2
mpmd dg3 "train.epochs (rank 0: 2, rank 1: 3); --max-steps (rank 0: none, rank 1: 5)" \
    "epochs and --max-steps" "$cfg" "${q[@]}" --name dg3 -- "$cfg" "${q[@]}" --name dg3 \
    --set train.epochs=3 --max-steps 5
mpmd dg4 "seed (rank 0: 7, rank 1: 8); optimizer.lr" "seed and lr" "$cfg" "${q[@]}" --name dg4 \
    -- "$cfg" "${q[@]}" --name dg4 --set seed=8 --set optimizer.lr=0.1
mpmd dg5 "data.train_limit (rank 0: 1000, rank 1: 500)" "pipeline, train_limit" \
    "$cfg" "${q[@]}" --name dg5 --set parallel.mode=pipeline --set eval.softmax=false -- \
    "$cfg" "${q[@]}" --name dg5 --set parallel.mode=pipeline --set eval.softmax=false \
    --set data.train_limit=500
mpmd dg6 "rank 1 of 2: unknown option '--bogus'" "an unknown option on rank 1" \
    "$cfg" "${q[@]}" --name dg6 -- "$cfg" "${q[@]}" --name dg6 --bogus
# one rank's data missing though the configs agree (a node without the files): the same
mkdir -p nodata
WDIR1=$tmp/nodata mpmd dg7 "rank 1 of 2: data.dir data/mnist" "rank 1 without its data" \
    "$cfg" "${q[@]}" --name dg7 -- "$cfg" "${q[@]}" --name dg7
# 7. plain ffrun: no MPI even with a parallel mode (one process trains)
"$ffrun" "$cfg" "${short[@]}" --set parallel.mode=pipeline --set eval.softmax=false \
    --name alone > alone.out 2>&1 && ok "plain ffrun with parallel.mode pipeline trains alone" ||
    fail "plain ffrun: $(tail -2 alone.out)"
# 8. Ctrl-C / SIGTERM. The ranks finish their batch, rank 0 writes a resumable step
# model and says so. Open MPI 4's mpirun returns 1 after SIGINT/SIGTERM whatever the
# ranks return (it sets its status before it terminates them); it forwards SIGUSR1,
# which ffrun takes as a stop, and then returns the ranks' 130. tools/ffmpirun turns
# Ctrl-C and SIGTERM into that SIGUSR1. Jobs start with job control (set -m) so that a
# background job does not ignore SIGINT and "kill -INT -- -PGID" is a terminal's Ctrl-C.
long=(--quiet --set data.train_limit=2000 --set data.test_limit=200 --set train.epochs=500
      --set log.histograms=0 --set log.images=0 --set parallel.mode=data)
# stop_job NAME SIGNAL TARGET LAUNCHER...: starts LAUNCHER... ffrun NAME, sends SIGNAL once
# the run has started (to the job's process group if TARGET is pgrp, else to the
# launcher), waits; sets $rc and $step_model
stop_job() {
    local name=$1 sig=$2 target=$3
    shift 3
    set -m
    "$@" "$ffrun" "$cfg" "${long[@]}" --name "$name" > "$name.out" 2>&1 &
    local job=$!
    set +m
    for _ in $(seq 300); do
        [ -n "$(ls models/*_"$name".run 2>/dev/null)" ] && break
        sleep 0.1
    done
    sleep 1
    if [ "$target" = pgrp ]; then kill -"$sig" -- -"$job"; else kill -"$sig" "$job"; fi
    wait "$job"
    rc=$?
    step_model=$(ls models/*_"$name"_step*.ffm 2>/dev/null | head -1)
}
stop_job sigint INT launcher mpirun --oversubscribe -np 2 # signals to mpirun itself: no timeout
if [ -n "$step_model" ] && grep -q "interrupted at step .* resume with" sigint.out &&
    "$ffrun" --resume "$step_model" --set train.epochs=$(( $($py "$root/tests/ffm.py" info "$step_model" | sed -n 's/^epoch: //p') + 1 )) \
        --quiet > sigr.out 2>&1; then
    ok "SIGINT to plain mpirun: a resumable step model ($(basename "$step_model")), resumed alone to the end (mpirun's exit status: $rc)"
else
    fail "SIGINT to mpirun: step model '$step_model'"; tail -3 sigint.out sigr.out
fi
# a shell started in the background without job control ignores SIGINT, and so does every
# shell it starts (a signal ignored on entry cannot be trapped): no Ctrl-C reaches the job
if (( 0x$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status) & 2 )); then
    fail "Ctrl-C to tools/ffmpirun: this shell ignores SIGINT (inherited from a background start without job control): run the tests from a shell that does not"
else
    stop_job ctrlc INT pgrp "$root/tools/ffmpirun" --oversubscribe -np 2
    [ $rc -eq 130 ] && [ -n "$step_model" ] && grep -q "interrupted at step .* resume with" ctrlc.out &&
        ok "Ctrl-C (SIGINT to the process group) to tools/ffmpirun: exit 130, step model written" ||
        fail "Ctrl-C to tools/ffmpirun: exit $rc, model '$step_model': $(tail -3 ctrlc.out)"
fi
stop_job sigterm TERM launcher "$root/tools/ffmpirun" --oversubscribe -np 2
[ $rc -eq 130 ] && [ -n "$step_model" ] &&
    ok "SIGTERM to tools/ffmpirun: exit 130, step model written" ||
    fail "SIGTERM to tools/ffmpirun: exit $rc, model '$step_model': $(tail -3 sigterm.out)"
stop_job usr1 USR1 launcher mpirun --oversubscribe -np 2
[ $rc -eq 130 ] && [ -n "$step_model" ] &&
    ok "SIGUSR1 to plain mpirun: exit 130, step model written" ||
    fail "SIGUSR1 to mpirun: exit $rc, model '$step_model': $(tail -3 usr1.out)"
# 8b. a second Ctrl-C to tools/ffmpirun (issue 38 item 3): the ranks leave at once, exit 130,
# no Open MPI backtrace (main passed it on as SIGTERM: mpirun segfaulted in PMIx_Finalize,
# exit 139, 4 of 4 tries)
if ! (( 0x$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status) & 2 )); then
    set -m
    "$root/tools/ffmpirun" --oversubscribe -np 2 "$ffrun" "$cfg" "${long[@]}" --name twice > twice.out 2>&1 &
    job=$!
    set +m
    for _ in $(seq 300); do
        [ -n "$(ls models/*_twice.run 2>/dev/null)" ] && break
        sleep 0.1
    done
    sleep 1
    kill -INT -- -"$job"
    sleep 0.2
    kill -INT -- -"$job"
    t0=$SECONDS
    while kill -0 "$job" 2>/dev/null && [ $((SECONDS - t0)) -lt 30 ]; do sleep 0.2; done
    if kill -0 "$job" 2>/dev/null; then
        fail "a second Ctrl-C to tools/ffmpirun: still running after 30 s"
        kill -KILL -- -"$job" 2>/dev/null
    fi
    wait "$job"
    rc=$?
    [ $rc -eq 130 ] && ! grep -qiE "segmentation|backtrace|signal 11|\[ *[0-9]+\] " twice.out &&
        ok "a second Ctrl-C to tools/ffmpirun: exit 130 in $((SECONDS - t0)) s, no backtrace" ||
        fail "a second Ctrl-C to tools/ffmpirun: exit $rc: $(grep -iE 'segm|signal|\[' twice.out | head -3)"
fi

# 9. mpirun beside TensorBoard (issue 38 item 2): with something listening on 127.0.0.1 in
# 6000-6009 (TensorBoard's 6006), Open MPI 4.1's hwloc GL plugin made mpirun hang at launch;
# tools/ffmpirun sets HWLOC_COMPONENTS=-gl itself (tested without it in the environment).
# The only listener on those ports in the tests; killed right after.
$py - > listen.out 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket()
for port in range(6006, 6010):
    try:
        s.bind(("127.0.0.1", port)); s.listen(); break
    except OSError:
        continue
else:
    print("no free port: something listens already"); sys.stdout.flush()
print("listening", flush=True)
time.sleep(120)
PY
listener=$!
for _ in $(seq 50); do grep -q listening listen.out 2>/dev/null && break; sleep 0.1; done
t0=$SECONDS
env -u HWLOC_COMPONENTS timeout -s KILL 60 "$root/tools/ffmpirun" --oversubscribe -np 2 "$ffrun" \
    --version > tb.out 2>&1
rc=$?
kill "$listener" 2>/dev/null
wait "$listener" 2>/dev/null
[ $rc -eq 0 ] && grep -q "^ffrun " tb.out &&
    ok "tools/ffmpirun with a listener on 127.0.0.1:6006: exit 0 in $((SECONDS - t0)) s" ||
    fail "tools/ffmpirun beside a listener on 6006: exit $rc (137: hung, killed after 60 s)"

finish t_mpi

#!/usr/bin/env bash
# t_run_record.sh - a run directory says what produced it (issue 33 item 2):
#   config.yaml, the resolved config: `ffrun config.yaml` runs it again to bit-identical
#     weights (a supervised run with jitter; the classifier's names its backbone);
#   run.json: every field present and right (version, git commit and dirty flag as the
#     tree that built ffrun, compiler, flags, BLAS and kernel, threads, ranks, CPU, host,
#     command line, start time), also in TensorBoard's text tab (tag "run");
#   tools/build-info.sh: the dirty flag flips with a modified tracked file, and a build
#     outside git says "unknown";
#   a resumed run writes no second record.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1
cd "$tmp" && ln -s "$root/data" data
q=(--quiet --set data.train_limit=500 --set data.test_limit=200 --set train.epochs=2
   --set train.jitter=1 --set log.every=5)

"$ffrun" "$root/configs/quick.yaml" "${q[@]}" --name first > a.out 2>&1 || fail "run: $(tail -2 a.out)"
dir=$(ls -d runs/supervised/*_first)
[ -f "$dir/config.yaml" ] && [ -f "$dir/run.json" ] && ok "config.yaml and run.json in $dir" ||
    fail "no record files in '$dir'"

# config.yaml runs again as it is: the same weights
"$ffrun" "$dir/config.yaml" --quiet > b.out 2>&1 || fail "re-run of config.yaml: $(tail -2 b.out)"
m1=$(ls -tr models/supervised_*_first_epoch002.ffm | head -1) m2=$(ls -t models/supervised_*_first_epoch002.ffm | head -1)
[ "$m1" != "$m2" ] && $py "$root/tests/ffm.py" same-weights "$m1" "$m2" > same.out 2>&1 &&
    ok "ffrun config.yaml re-runs the run bit for bit ($(cat same.out))" || { fail "re-run differs: $m1 $m2"; cat same.out; }

# run.json: the fields, and what they must say here
# the commit the binary was built from: HEAD, or (a tree committed to since the build)
# one of HEAD's ancestors; "unknown" outside git
commit=$(sed -n 's/^#define FF_BUILD_COMMIT "\(.*\)"$/\1/p' "$root/$build/gen/ff_build_info.h")
if [ "$commit" != unknown ]; then
    git -C "$root" merge-base --is-ancestor "$commit" HEAD 2>/dev/null &&
        ok "built from commit $commit of this checkout (HEAD or an ancestor)" ||
        fail "build header commit '$commit' is not this checkout's HEAD or an ancestor"
fi
if $py - "$dir/run.json" "$commit" "$ffrun" <<'PY'; then
import json, socket, sys, re
r = json.load(open(sys.argv[1]))
want = ["version", "git_commit", "git_dirty", "compiler", "cflags", "blas", "blas_kernel",
        "threads", "ranks", "cpu", "host", "command_line", "start_time", "validation"]
assert sorted(r) == sorted(want), sorted(r)
assert r["git_commit"] == sys.argv[2], (r["git_commit"], sys.argv[2])
assert r["git_dirty"] in (True, False) or sys.argv[2] == "unknown"
assert r["threads"] == 1 and r["ranks"] == 1, (r["threads"], r["ranks"])
assert r["host"] == socket.gethostname(), r["host"]
assert r["command_line"].startswith(sys.argv[3] + " ") and "--name first" in r["command_line"]
assert "OpenBLAS" in r["blas"] and r["blas_kernel"] and r["blas_kernel"] in r["blas"] or r["blas_kernel"]
assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", r["start_time"]), r["start_time"]
assert "-std=c11" in r["cflags"] and r["compiler"] and r["cpu"] and r["version"]
assert r["validation"] is None, r["validation"]   # no data.validation
PY
    ok "run.json: every field present, commit $commit, host, threads, ranks, command line"
else
    fail "run.json"; cat "$dir/run.json"
fi
$py "$root/tests/tb_reader.py" --expect-tags run,config "$dir" > tb.out 2>&1 &&
    ok "the record is in TensorBoard's text tab (tag run)" || { fail "text tag run"; tail -3 tb.out; }

# the dirty flag follows the tree that builds: a scratch repository with the script
mkdir -p repo/tools && cp "$root/tools/build-info.sh" repo/tools/ && echo a > repo/file
(cd repo && git init -q && git add . && git -c user.email=t@t -c user.name=t commit -qm x) || fail "git repo"
repo/tools/build-info.sh h1 cc "-O2" && grep -q "^#define FF_BUILD_DIRTY 0$" h1 &&
    grep -q "^#define FF_BUILD_COMMIT \"$(git -C repo rev-parse HEAD)\"$" h1 &&
    grep -q '^#define FF_BUILD_CFLAGS "-O2"$' h1 || { fail "clean tree"; cat h1; }
echo b > repo/file
repo/tools/build-info.sh h2 cc "-O2" && grep -q "^#define FF_BUILD_DIRTY 1$" h2 || { fail "dirty tree"; cat h2; }
before=$(stat -c %Y h2); sleep 1.1
repo/tools/build-info.sh h2 cc "-O2" && [ "$(stat -c %Y h2)" = "$before" ] || fail "unchanged header rewritten"
mkdir -p nogit/tools && cp "$root/tools/build-info.sh" nogit/tools/
GIT_CEILING_DIRECTORIES=$tmp nogit/tools/build-info.sh h3 cc "" && grep -q '"unknown"' h3 &&
    grep -q "^#define FF_BUILD_DIRTY -1$" h3 || { fail "outside git"; cat h3; }
[ $fails -eq 0 ] && ok "build-info: dirty 0 on a clean tree, 1 once a tracked file changes, unknown outside git; unchanged: not rewritten"

# the model files carry the record of the process that wrote them (model format 3)
# (each of the two first-named runs' final model against its own run directory's run.json)
finals=(models/supervised_*_first_epoch002.ffm)
[ ${#finals[@]} = 2 ] && [ -f "${finals[0]}" ] || fail "two final models of the first runs: ${finals[*]}"
for m1 in "${finals[@]}"; do
$py "$root/tests/ffm.py" info "$m1" > info.out 2>&1
if $py - info.out <<'PY'; then
import json, sys
info = dict(l.rstrip("\n").split(": ", 1) for l in open(sys.argv[1]) if ": " in l)
rec = json.loads(info["record"])
assert rec == json.load(open(info["run_dir"] + "/run.json")), "model record differs from run.json"
PY
    ok "$(basename "$m1") holds its run's record (= its run.json, read by tests/ffm.py)"
else
    fail "record in the model file $m1"; head -20 info.out
fi
done

# a resumed run keeps its first record
"$ffrun" "$root/configs/quick.yaml" "${q[@]}" --name cut --max-steps 15 > c.out 2>&1
step=$(ls models/*_cut_step*.ffm 2>/dev/null | head -1)
cdir=$(ls -d runs/supervised/*_cut)
before=$(md5sum < "$cdir/run.json")
cp "$step" models/again_step.ffm
"$ffrun" --resume "$step" > r.out 2>&1 || fail "resume: $(tail -2 r.out)"
[ "$(md5sum < "$cdir/run.json")" = "$before" ] && ok "a resumed run keeps the record of its start" ||
    fail "resume rewrote run.json"
! grep -q 'already ended' r.out && ok "resuming a run that never ended: no HParams warning" ||
    { fail "HParams warning for an open run"; cat r.out; }
# the run has ended (SUCCESS); resumed again from its older step model, TensorBoard keeps
# the first end: said
"$ffrun" --resume models/again_step.ffm > a2.out 2>&1 || fail "second resume: $(tail -2 a2.out)"
grep -q "warning: $cdir already ended (SUCCESS at [0-9-]* [0-9:]* UTC): TensorBoard's HParams tab keeps that first end" a2.out &&
    ok "resuming an older model of a finished run: $(grep -o 'already ended ([A-Z]* at [^)]*)' a2.out), said" ||
    { fail "no warning for a finished run"; cat a2.out; }

# --resume says when the model was written by other code (or by a modified tree)
"$ffrun" "$root/configs/quick.yaml" "${q[@]}" --name v --max-steps 15 > v.out 2>&1
vstep=$(ls models/*_v_step*.ffm 2>/dev/null | head -1)
$py "$root/tests/ffm.py" patch "$vstep" models/other_step.ffm \
    'record={"version": "0.0.1", "git_commit": "0123abc", "git_dirty": false}' || fail "patch record"
"$ffrun" --resume models/other_step.ffm --max-steps 16 > o.out 2>&1
grep -q 'warning: the model was written by ffrun 0.0.1, commit 0123abc and is resumed by ffrun [0-9.]*, commit ' o.out &&
    ok "resuming another version's model: $(grep -o 'warning: the model was written by ffrun 0.0.1, commit 0123abc' o.out) ..." ||
    { fail "no version warning"; cat o.out; }
$py "$root/tests/ffm.py" patch "$vstep" models/old_step.ffm version=2 || fail "patch version"
"$ffrun" --resume models/old_step.ffm --max-steps 16 > f2.out 2>&1
grep -q 'warning: the model records no code version (written before model format 3)' f2.out &&
    ok "resuming a format 2 model: the version is unknown, said" || { fail "format 2 warning"; cat f2.out; }
"$ffrun" --resume "$vstep" --max-steps 16 > s.out 2>&1
dirty=$(sed -n 's/^#define FF_BUILD_DIRTY \(.*\)$/\1/p' "$root/$build/gen/ff_build_info.h")
if [ "$dirty" = 0 ]; then
    ! grep -q 'warning: the model' s.out && ok "resuming this build's model (clean tree): no warning" ||
        { fail "warning for the same code"; cat s.out; }
else
    grep -q 'warning: the model was written by .*(modified tree)' s.out &&
        ok "resuming this build's model from a modified tree: warned (the code may differ)" ||
        { fail "no warning for a modified tree"; cat s.out; }
fi
finish t_run_record

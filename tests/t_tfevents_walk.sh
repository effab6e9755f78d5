#!/usr/bin/env bash
# t_tfevents_walk.sh - log-dir discovery of tfevents-dump and tests/tb_reader.py: symlinks
# are followed like TensorBoard's data server does (walkdir follow_links), so symlink loops
# (`ln -s . a; ln -s . b`, a self-link inside a run, a link to the parent) finish quickly,
# are warned about and report every file once; a link to a sibling run is a run of its own
# (as in TensorBoard). A log dir with no event files or a run without tags does not make
# tfevents-dump call qsort(NULL, 0) (checked with the tool built under UBSan).
set -u
source "$(dirname "$0")/script_lib.sh"
dump=$build/tfevents-dump
writer=$build/tests/test_summary
py=/usr/bin/python3
for f in "$dump" "$writer"; do
    [ -x "$f" ] || { echo "t_tfevents_walk: $f not built (make BUILD=$build all unit-bins)"; exit 1; }
done
"$writer" --write-sample "$tmp/logs" > /dev/null || { echo "FAIL: sample writer"; exit 1; }

# 1. loops: two self-links at the root, one inside a run, one to the parent
ln -s . "$tmp/logs/a"
ln -s . "$tmp/logs/b"
ln -s . "$tmp/logs/runA/self"
ln -s .. "$tmp/logs/group/up"
timeout 30 "$dump" "$tmp/logs" > "$tmp/dump.out" 2> "$tmp/dump.err"; rc=$?
[ $rc -eq 0 ] && ok "tfevents-dump finishes on symlink loops (exit 0)" || fail "tfevents-dump on loops: exit $rc"
runs=$(grep -c '^run ' "$tmp/dump.out")
[ "$runs" -eq 2 ] && grep -q '^run runA: 1 file,' "$tmp/dump.out" && grep -q '^run group/runB: 1 file,' "$tmp/dump.out" \
    && ok "tfevents-dump reports each file once (2 runs, 1 file each)" \
    || { fail "tfevents-dump reports $runs runs"; grep '^run' "$tmp/dump.out"; }
[ "$(grep -c 'symlink loop' "$tmp/dump.err")" -eq 4 ] && ok "tfevents-dump warns about the 4 loops" \
    || fail "tfevents-dump loop warnings: $(cat "$tmp/dump.err")"
timeout 60 $py tests/tb_reader.py "$tmp/logs" > "$tmp/py.out" 2> "$tmp/py.err"; rc=$?
[ $rc -eq 0 ] && [ "$(grep -c '^run ' "$tmp/py.out")" -eq 2 ] && grep -q '^run runA (1 file)' "$tmp/py.out" \
    && [ "$(grep -c 'symlink loop' "$tmp/py.err")" -eq 4 ] \
    && ok "tb_reader finishes on symlink loops, 2 runs of 1 file, 4 warnings" \
    || { fail "tb_reader on loops: exit $rc"; cat "$tmp/py.out" "$tmp/py.err"; }

# 2. a link to a sibling run is not a loop: TensorBoard shows it as another run
ln -s runA "$tmp/logs/alias"
timeout 30 "$dump" "$tmp/logs" > "$tmp/dump.out" 2> /dev/null
grep -q '^run alias: 1 file,' "$tmp/dump.out" && [ "$(grep -c '^run ' "$tmp/dump.out")" -eq 3 ] \
    && ok "a symlink to a sibling run is a run of its own" || fail "sibling link: $(grep '^run' "$tmp/dump.out")"
rm "$tmp/logs/alias"

# 3. no qsort(NULL, 0): an empty log dir and a run without tags, tool built under UBSan
mkdir -p "$tmp/empty" "$tmp/notags"
$py - "$tmp/notags/events.out.tfevents.0000000001.test" <<'PY'
import struct, sys
sys.path.insert(0, "tests")
from tb_reader import masked_crc32c
payload = bytes.fromhex("0900000040fc54d9411a0d627261696e2e4576656e743a32")  # file_version
head = struct.pack("<Q", len(payload))
rec = head + struct.pack("<I", masked_crc32c(head)) + payload + struct.pack("<I", masked_crc32c(payload))
open(sys.argv[1], "wb").write(rec)
PY
ubsan=$tmp/tfevents-dump-ubsan
# shellcheck disable=SC2046
if cc -std=c11 -D_GNU_SOURCE -g -fsanitize=undefined -fno-sanitize-recover=all -Iinclude -I"$build/gen" \
        $(pkg-config --cflags libprotobuf-c 2>/dev/null) -o "$ubsan" tools/tfevents-dump.c "$build/libff.a" \
        $(pkg-config --libs libprotobuf-c yaml-0.1 zlib openblas 2>/dev/null || echo -lprotobuf-c -lyaml -lz -lopenblas) \
        -lm -lpthread 2> "$tmp/cc.err"; then
    "$ubsan" "$tmp/empty" > /dev/null 2> "$tmp/ub1.err"; rc1=$?
    "$ubsan" "$tmp/notags" > "$tmp/ub2.out" 2> "$tmp/ub2.err"; rc2=$?
    if [ $rc1 -eq 1 ] && grep -q 'no event files found' "$tmp/ub1.err" && ! grep -q 'runtime error' "$tmp/ub1.err"; then
        ok "UBSan: empty log dir (exit 1, no runtime error)"
    else
        fail "UBSan: empty log dir: exit $rc1: $(cat "$tmp/ub1.err")"
    fi
    if [ $rc2 -eq 0 ] && grep -q '^run \.: 1 file, 1 records, 0 tags' "$tmp/ub2.out" && ! grep -q 'runtime error' "$tmp/ub2.err"; then
        ok "UBSan: a run without tags (exit 0, no runtime error)"
    else
        fail "UBSan: run without tags: exit $rc2: $(cat "$tmp/ub2.out" "$tmp/ub2.err")"
    fi
else
    fail "could not build tfevents-dump with UBSan: $(head -5 "$tmp/cc.err")"
fi

finish t_tfevents_walk

#!/usr/bin/env bash
# t_tensorboard.sh - event files with every summary kind pass tests/tb_reader.py and
# tfevents-dump; copies with a flipped data bit, a bad length CRC and a truncated tail
# are rejected (tfevents-dump: exit 1 naming file and offset; truncated tail: warning, exit 0).
set -u
source "$(dirname "$0")/script_lib.sh"
dump=$build/tfevents-dump
writer=$build/tests/test_summary
py=/usr/bin/python3
for f in "$dump" "$writer"; do
    [ -x "$f" ] || { echo "t_tensorboard: $f not built (make BUILD=$build all unit-bins)"; exit 1; }
done

"$writer" --write-sample "$tmp/logs" > "$tmp/files" || { echo "FAIL: sample writer"; exit 1; }
[ "$(wc -l < "$tmp/files")" -eq 2 ] || fail "sample writer made $(wc -l < "$tmp/files") files, want 2"
tags=loss,layer0/goodness_pos,layer2/goodness_neg,layer0/weights,inputs/grey,inputs/rgb,notes
tags=$tags,_hparams_/session_start_info,_hparams_/session_end_info
tags=$tags,custom_scalars__config__,test/accuracy

# 1. the clean files pass both readers
if $py tests/tb_reader.py --expect-tags "$tags" "$tmp/logs" > "$tmp/py.out" 2>&1; then
    ok "tb_reader accepts the sample"
else
    fail "tb_reader rejects the sample"; cat "$tmp/py.out"
fi
grep -q '^run group/runB' "$tmp/py.out" && grep -q '^run runA' "$tmp/py.out" \
    || fail "tb_reader did not name both runs"
$py tests/tb_reader.py --expect-tags no_such_tag "$tmp/logs" > /dev/null 2>&1 \
    && fail "tb_reader accepts a missing expected tag" || ok "tb_reader --expect-tags"

if "$dump" "$tmp/logs" > "$tmp/dump.out" 2> "$tmp/dump.err"; then
    ok "tfevents-dump accepts the sample"
else
    fail "tfevents-dump rejects the sample"; cat "$tmp/dump.err"
fi
for want in 'run group/runB: 1 file' 'run runA: 1 file' \
    '^  loss  *scalars  *3  *0  *2 ' '^  layer0/weights  *histograms  *5 ' \
    '^  inputs/grey  *images ' '^  notes  *text ' '^  _hparams_/session_start_info  *hparams  *1 ' \
    '^  custom_scalars__config__  *custom_scalars  *1 '; do
    grep -q -- "$want" "$tmp/dump.out" || fail "tfevents-dump output lacks /$want/"
done
"$dump" --records "$(head -1 "$tmp/files")" > "$tmp/records.out" 2>&1 || fail "tfevents-dump --records"
grep -q '^  offset 0 .* file_version brain.Event:2' "$tmp/records.out" \
    || fail "--records does not show the file_version record at offset 0"
"$dump" > /dev/null 2>&1; [ $? -eq 2 ] || fail "tfevents-dump without paths: want exit 2"
"$dump" --nope "$tmp/logs" > /dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option: want exit 2"
"$dump" --help | grep -q '^usage: tfevents-dump' || fail "tfevents-dump --help"

# 2. damaged copies of the runA file: record offsets from the framing itself
src=$(head -1 "$tmp/files")
offsets=$($py - "$src" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
pos, offs = 0, []
while pos < len(d):
    offs.append(pos)
    pos += 16 + struct.unpack("<Q", d[pos:pos + 8])[0]
print(" ".join(map(str, offs)))
PY
)
read -r -a off <<< "$offsets"
[ "${#off[@]}" -gt 10 ] || { fail "could not frame $src"; exit 1; }
mid=${off[5]} last=${off[${#off[@]} - 1]}
damage() { # damage NAME OFFSET_OF_BYTE XOR | damage NAME truncate LENGTH
    mkdir -p "$tmp/bad/$1"
    cp "$src" "$tmp/bad/$1/events.out.tfevents.0000000000.test"
    local f=$tmp/bad/$1/events.out.tfevents.0000000000.test
    if [ "$2" = truncate ]; then
        truncate -s "$3" "$f"
    else
        $py -c "import sys; p,o,x=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]); b=bytearray(open(p,'rb').read()); b[o]^=x; open(p,'wb').write(b)" "$f" "$2" "$3"
    fi
    echo "$f"
}
flip=$(damage flip $((mid + 12 + 3)) 16)      # payload byte of record 5
badlen=$(damage badlen $((mid + 8)) 1)        # stored length CRC of record 5
trunc=$(damage trunc truncate $((last + 20))) # cut inside the last record

check_dump_error() { # FILE WHAT
    "$dump" "$1" > /dev/null 2> "$tmp/err"; rc=$?
    if [ $rc -eq 1 ] && grep -q "$1: offset $mid: $2" "$tmp/err"; then
        ok "tfevents-dump: $2 at offset $mid (exit 1)"
    else
        fail "tfevents-dump on $2: exit $rc, stderr: $(cat "$tmp/err")"
    fi
}
check_dump_error "$flip" "bad data crc"
check_dump_error "$badlen" "bad length crc"
"$dump" "$trunc" > /dev/null 2> "$tmp/err"; rc=$?
if [ $rc -eq 0 ] && grep -q "$trunc: warning: offset $last: truncated record" "$tmp/err"; then
    ok "tfevents-dump: truncated tail is a warning (exit 0)"
else
    fail "tfevents-dump on truncated tail: exit $rc, stderr: $(cat "$tmp/err")"
fi

for f in "$flip" "$badlen" "$trunc"; do
    if $py tests/tb_reader.py "$f" > /dev/null 2> "$tmp/err"; then
        fail "tb_reader accepts $f"
    else
        grep -q "offset" "$tmp/err" && ok "tb_reader rejects $(basename "$(dirname "$f")")" \
            || fail "tb_reader message lacks the offset: $(cat "$tmp/err")"
    fi
done
$py tests/tb_reader.py --allow-truncated-tail "$trunc" > /dev/null 2>&1 \
    || fail "tb_reader --allow-truncated-tail rejects the truncated tail"

finish t_tensorboard

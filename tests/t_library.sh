#!/usr/bin/env bash
# t_library.sh - libffrun from outside the tree: `make install` into a temporary DESTDIR
# installs libffrun.a, libffrun.so (soname libffrun.so.MAJOR, only ff_ symbols exported),
# include/ff/*.h and ffrun.pc; examples/train.c and examples/predict.c, copied out of the
# tree, build against it with `pkg-config --cflags --libs ffrun` alone and run: train.c
# trains a small net and saves a model that learns and that `ffrun predict` reads;
# predict.c classifies an IDX file as `ffrun predict` does (same classes and scores);
# predict.c linked statically (pkg-config --static) gives the same output.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1
dest=$tmp/dest
prefix=/opt/ffrun-test
make -s --no-print-directory -C "$root" install BUILD="$build" DESTDIR="$dest" PREFIX="$prefix" \
    > "$tmp/install.out" 2>&1 || { fail "make install: $(tail -5 "$tmp/install.out")"; finish t_library; }
lib=$dest$prefix/lib
so=$(cd "$lib" && ls libffrun.so.*.*.* 2>/dev/null)
for f in libffrun.a libffrun.so "$so" pkgconfig/ffrun.pc; do
    [ -e "$lib/$f" ] || fail "not installed: lib/$f"
done
[ -f "$dest$prefix/include/ff/trainer.h" ] && [ -f "$dest$prefix/include/ff/model.h" ] || fail "headers not installed"
soname=$(readelf -d "$lib/$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libffrun.so.${so#libffrun.so.}" ] && fail "soname $soname is not versioned by major only"
[[ "$soname" =~ ^libffrun\.so\.[0-9]+$ ]] && [ -L "$lib/$soname" ] &&
    ok "installed $so, soname $soname (linked), libffrun.a, headers, ffrun.pc" || fail "soname '$soname'"
others=$(nm -D --defined-only "$lib/$so" | awk '{print $3}' | grep -v '^ff_' | grep -v '^$' | head -5)
n_ff=$(nm -D --defined-only "$lib/$so" | awk '{print $3}' | grep -c '^ff_')
[ -z "$others" ] && [ "$n_ff" -gt 100 ] && ok "libffrun.so exports $n_ff symbols, all ff_*" ||
    fail "exports other than ff_*: $others (ff_: $n_ff)"

export PKG_CONFIG_PATH=$lib/pkgconfig
pc() { pkg-config --define-variable=prefix="$dest$prefix" "$@" ffrun; }
flags=$(pc --cflags --libs) || fail "pkg-config ffrun"
cd "$tmp" || exit 1
cp "$root/examples/train.c" "$root/examples/predict.c" .
# shellcheck disable=SC2086
cc -std=c11 -O2 -Wall -Werror train.c $flags -o train 2> cc.err && cc -std=c11 -O2 -Wall -Werror predict.c $flags -o predict 2>> cc.err &&
    ok "examples build with: cc X.c \$(pkg-config --cflags --libs ffrun) = $flags" || fail "examples: $(cat cc.err)"
export LD_LIBRARY_PATH=$lib
ldd ./predict | grep -q "$soname => $lib/" && ok "predict runs on the installed $soname" || fail "ldd: $(ldd ./predict | grep ffrun)"

mnist=$root/data/mnist
./train "$root/configs/quick.yaml" model.ffm data.dir="$mnist" data.train_limit=5000 data.test_limit=500 \
    train.epochs=2 > train.out 2>&1 || fail "examples/train.c: $(tail -3 train.out)"
e=$(sed -n 's/^epoch 2: test error \([0-9.]*\)%/\1/p' train.out)
awk -v e="$e" 'BEGIN {exit !(e != "" && e < 60)}' && [ -f model.ffm ] &&
    ok "examples/train.c: 2 epochs, test error $e% (chance 90%), model saved" || { fail "train.c: '$e'"; cat train.out; }
$py -c "
import gzip, struct
raw = gzip.open('$mnist/t10k-images-idx3-ubyte.gz').read()
open('t100.idx', 'wb').write(struct.pack('>IIII', 0x803, 100, 28, 28) + raw[16:16 + 100 * 784])"
./predict model.ffm t100.idx > ex.out 2> ex.err || fail "examples/predict.c: $(cat ex.err)"
"$ffrun" predict model.ffm t100.idx --json > ff.json || fail "ffrun predict on train.c's model"
$py - <<'P' && ok "examples/predict.c: ffrun predict's classes and scores for 100 images" || fail "predict.c vs ffrun predict"
import json
a = [l.split() for l in open("ex.out")]; b = [json.loads(l) for l in open("ff.json")]
assert len(a) == len(b) == 100, (len(a), len(b))
for (name, k, s), r in zip(a, b):
    assert name == r["input"] and int(k) == r["class"], (name, k, r["input"], r["class"])
    assert abs(float(s) - r["scores"][r["class"]]) <= 1e-5 * abs(float(s)), (s, r["scores"])
P
static=$(pc --cflags)
# shellcheck disable=SC2086
cc -std=c11 -O2 predict.c $static "$lib/libffrun.a" $(pc --static --libs | sed "s/-lffrun //") \
    -o predict_static 2> cc.err && ./predict_static model.ffm t100.idx > st.out && cmp -s st.out ex.out &&
    ! ldd ./predict_static | grep -q libffrun && ok "predict.c against libffrun.a (pkg-config --static): the same output" ||
    fail "static: $(head -3 cc.err)"
finish t_library

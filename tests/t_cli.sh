#!/usr/bin/env bash
# t_cli.sh - the command line as a user meets it: --help, --version, --help-config,
# --dry-run, exit codes and messages for usage and config errors, make install.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$build/ffrun
expect() { # expect STATUS PATTERN CMD... : exit status and a line matching PATTERN
    local want=$1 pat=$2; shift 2
    "$@" > "$tmp/out" 2>&1
    local rc=$?
    if [ $rc -eq "$want" ] && grep -qE -- "$pat" "$tmp/out"; then
        ok "$* -> $rc, /$pat/"
    else
        fail "$* -> $rc (want $want), output:"; head -5 "$tmp/out"
    fi
}

expect 0 '^usage: ffrun \[OPTIONS\] CONFIG.yaml' "$ffrun" --help
expect 0 '^ffrun [0-9]+\.[0-9]+\.[0-9]+$' "$ffrun" --version
expect 0 'train\.epochs +int' "$ffrun" --help-config
expect 2 "unknown option '--frobnicate'" "$ffrun" --frobnicate configs/quick.yaml
expect 2 'no config file given' "$ffrun"
expect 2 'nope\.yaml: cannot open' "$ffrun" nope.yaml
expect 2 "^ffrun: tests/fixtures/config/unknown_key.yaml:6:3: unknown key 'train.epohcs'; did you mean 'train.epochs'\?" \
    "$ffrun" tests/fixtures/config/unknown_key.yaml
expect 2 'expected an integer for train.epochs' "$ffrun" configs/quick.yaml --set train.epochs=abc
expect 2 '--set train.lr=1: unknown key .train.lr.; did you mean .optimizer.lr.' \
    "$ffrun" configs/quick.yaml --set train.lr=1
# sweeps' --jobs/--threads: also in the short form, whole positive integers, not alone
expect 0 '^runs at once: 1; BLAS threads per run: 2$' \
    "$ffrun" configs/quick.yaml --seeds 2 --jobs 1 --threads 2 --dry-run
expect 0 '^runs at once: one per core; BLAS threads per run: cores / jobs$' \
    "$ffrun" configs/quick.yaml --seeds 2 --dry-run
expect 2 '--jobs and --threads go with --sweep or --seeds' "$ffrun" configs/quick.yaml --jobs 2
expect 2 '--threads needs a positive integer' "$ffrun" configs/quick.yaml --seeds 2 --threads 2x
expect 2 'sweep: --jobs needs a positive integer' \
    "$ffrun" sweep configs/sweeps/quick_lr_jitter.yaml --jobs 0 --dry-run
# the epoch line: training time, then what the end of the epoch took (evaluation or not)
expect 0 '^epoch 2/2  [0-9.]+s  [0-9]+ img/s  loss [0-9.]+  head [0-9.]+  test error [0-9.]+%(  softmax [0-9.]+%)?  \(\+[0-9.]+s evaluation, logs, files\)$' \
    "$ffrun" configs/quick.yaml --set train.epochs=2 --set eval.every=2 --set data.train_limit=500 \
    --set data.test_limit=200 --set log.dir="$tmp/runs" --set checkpoint.dir="$tmp/models" --verbose
grep -qE '^epoch 1/2  [0-9.]+s  [0-9]+ img/s  loss [0-9.]+  head [0-9.]+  \(\+[0-9.]+s logs, files\)$' "$tmp/out" &&
    ok "an epoch without evaluation says so" || fail "epoch 1's line: $(grep '^epoch 1/2  ' "$tmp/out")"
# once every layer has stopped learning (train_epochs), the line and TensorBoard show the
# softmax head's loss alone: no FF loss (it was 0.0000), no loss/total points after epoch 1
expect 0 '^epoch 2/2  [0-9.]+s  [0-9]+ img/s  head [0-9.]+  test error' \
    "$ffrun" configs/quick.yaml --set train.epochs=2 --set data.train_limit=500 \
    --set data.test_limit=200 --set log.dir="$tmp/frozen" --set checkpoint.dir="$tmp/models" \
    --set model.layers.0.train_epochs=1 --set model.layers.1.train_epochs=1 --set log.every=1
if /usr/bin/python3 tests/tb_reader.py --scalars "$tmp/frozen.csv" "$tmp/frozen" > /dev/null &&
    awk '$2 == "loss/total" { n++; if ($3 > 10) bad++ } $2 == "clf/loss" { h++ }
         END { exit !(n == 10 && !bad && h == 20) }' "$tmp/frozen.csv"; then
    ok "frozen layers: loss/total at steps 1-10 (epoch 1) only, clf/loss at all 20 steps"
else
    fail "frozen layers: $(awk '$2 == "loss/total" || $2 == "clf/loss" {print $2, $3}' "$tmp/frozen.csv" | tr '\n' ' ')"
fi
# every layer's output shape, parameters and cost, without training
expect 0 '^1 +fc +200x1x1 +40200 ' "$ffrun" configs/quick.yaml --dry-run
# which conv layers run on the direct loops (thin groups) and which on im2col + GEMM
expect 0 '^1 +conv +80x28x28 +1680 +[0-9]+ +- +\(groups 10; direct loops\)$' \
    "$ffrun" configs/supervised_deep.yaml --dry-run
expect 0 '^2 +conv +240x14x14 +173520 +[0-9]+ +-$' "$ffrun" configs/supervised_deep.yaml --dry-run
[ ! -d runs ] || [ -z "$(find runs -newer "$tmp" 2>/dev/null)" ] && ok "--dry-run wrote no run" \
    || fail "--dry-run created a run"
# a layer geometry that does not fit its input
cat > "$tmp/geom.yaml" <<'Y'
model:
  layers:
    - {type: conv, channels: 8, kernel: 10, stride: 6}
    - {type: conv, channels: 8, kernel: 5, stride: 1}
Y
expect 2 'geom.yaml:4:7: layer 1: conv kernel 5 does not fit input 8x4x4' "$ffrun" "$tmp/geom.yaml" --dry-run
expect 2 'geom.yaml:4:7: layer 1: conv kernel 5 does not fit' "$ffrun" "$tmp/geom.yaml"

# make install honours PREFIX and DESTDIR
if make --no-print-directory BUILD="$build" install DESTDIR="$tmp/dest" PREFIX=/usr > "$tmp/inst" 2>&1 &&
    [ -x "$tmp/dest/usr/bin/ffrun" ] && [ -x "$tmp/dest/usr/bin/tfevents-dump" ] &&
    [ -f "$tmp/dest/usr/share/man/man1/ffrun.1" ]; then
    ok "make install DESTDIR=... PREFIX=/usr"
else
    fail "make install"; cat "$tmp/inst"
fi
finish t_cli

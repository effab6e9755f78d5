#!/usr/bin/env bash
# t_fifo.sh - a FIFO wherever ffrun reads a file (config, raw IDX, .gz, SHA256SUMS, a model
# for eval, --resume or checkpoint.backbone) used to block open(2) forever (issue 20 item
# 8). Each must now exit at once with the right status (2 for the config, 1 otherwise) and
# a message naming the file; timeout turns a regression into a failure (status 124).
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$build/ffrun
short=(--set data.train_limit=100 --set data.test_limit=100 --set train.epochs=1
       --set log.dir="$tmp/runs" --set checkpoint.dir="$tmp/models" --quiet)

expect_fifo() { # expect_fifo STATUS FIFO CMD... : exit status and "FIFO: not a regular file (a FIFO)"
    local want=$1 fifo=$2; shift 2
    timeout 10 "$@" > "$tmp/out" 2>&1 < /dev/null
    local rc=$?
    if [ $rc -eq "$want" ] && grep -qF -- "$fifo: not a regular file (a FIFO)" "$tmp/out"; then
        ok "${fifo#"$tmp"/} -> $rc, names the FIFO"
    else
        fail "${fifo#"$tmp"/}: $* -> $rc (want $want; 124 = hung), output:"; head -5 "$tmp/out"
    fi
}

# a data directory: links to the real MNIST files, with one of them replaced by a FIFO
data_dir() { # data_dir NAME FIFO-FILE [REMOVE-FILE]
    local d=$tmp/$1
    mkdir -p "$d"
    for f in "$root"/data/mnist/*; do ln -s "$f" "$d/$(basename "$f")"; done
    rm -f "$d/$2" "$d/${3:-/nonexistent}"
    mkfifo "$d/$2"
    echo "$d"
}

mkfifo "$tmp/config.yaml"
expect_fifo 2 "$tmp/config.yaml" "$ffrun" "$tmp/config.yaml"

d=$(data_dir idx train-images-idx3-ubyte train-images-idx3-ubyte.gz)
expect_fifo 1 "$d/train-images-idx3-ubyte" "$ffrun" configs/quick.yaml "${short[@]}" --set data.dir="$d"
d=$(data_dir gz train-labels-idx1-ubyte.gz)
expect_fifo 1 "$d/train-labels-idx1-ubyte.gz" "$ffrun" configs/quick.yaml "${short[@]}" --set data.dir="$d"
d=$(data_dir sums SHA256SUMS)
expect_fifo 1 "$d/SHA256SUMS" "$ffrun" configs/quick.yaml "${short[@]}" --set data.dir="$d"

mkfifo "$tmp/model.ffm"
expect_fifo 1 "$tmp/model.ffm" "$ffrun" eval "$tmp/model.ffm"
expect_fifo 1 "$tmp/model.ffm" "$ffrun" --resume "$tmp/model.ffm"
expect_fifo 1 "$tmp/model.ffm" "$ffrun" configs/unsupervised_clf.yaml "${short[@]}" \
    --set checkpoint.backbone="$tmp/model.ffm"

finish t_fifo

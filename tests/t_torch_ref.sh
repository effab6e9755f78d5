#!/usr/bin/env bash
# t_torch_ref.sh - one training step of configs/supervised_deep.yaml (the channel-wise
# competition net: 3x3 convs with padding 1, groups 10 on layers 1 and 3, max pools, the
# affine batch-norm competition loss after the pools, one Adam step, the softmax head on
# layer 3) against an independent implementation of the same step in PyTorch
# (bench/ff_ref.py, nn.Conv2d on oneDNN, contiguous tensors). `ff-bench ref --config`
# writes ffrun's weights, Adam state, running statistics, head and batch before the step
# and its losses, gradients and weights after it; `ff_ref.py check` replays the step and
# compares: losses to 1e-4 relative, every gradient to 1e-3 of its largest, updates to
# 0.01 lr. Layers 0 and 1 run on the conv layer's direct loops, layers 2 and 3 on im2col
# + GEMM. Checked on the first step and after 3 steps (Adam's moments and the running
# statistics no longer at their start).
source "$(dirname "$0")/script_lib.sh"
export OPENBLAS_NUM_THREADS=1
for warm in 0 3; do
    if ! "$build/ff-bench" ref --config configs/supervised_deep.yaml --out "$tmp/ref$warm.bin" \
            --warm $warm >"$tmp/ref$warm.log" 2>&1; then
        fail "ff-bench ref --warm $warm: $(tail -2 "$tmp/ref$warm.log")"
        continue
    fi
    if /usr/bin/python3 bench/ff_ref.py check "$tmp/ref$warm.bin" >"$tmp/check$warm.json"; then
        ok "step after $warm steps: ffrun and PyTorch agree ($(/usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("worst weight gradient %.1e of its largest" %
      max(L["weights"]["grad_rel_max"] for L in r["layers"]))' "$tmp/check$warm.json"))"
    else
        fail "step after $warm steps: $(head -c 600 "$tmp/check$warm.json")"
    fi
done
# a cut reference file: a one-line message, not a traceback
if [ -f "$tmp/ref3.bin" ]; then
    head -c 5001 "$tmp/ref3.bin" > "$tmp/cut.bin"
    if ! /usr/bin/python3 bench/ff_ref.py check "$tmp/cut.bin" >/dev/null 2>"$tmp/cut.err" &&
        grep -q "cut.bin is truncated" "$tmp/cut.err" && ! grep -q Traceback "$tmp/cut.err"; then
        ok "a truncated reference file: $(head -1 "$tmp/cut.err")"
    else
        fail "a truncated reference file: $(head -3 "$tmp/cut.err")"
    fi
fi
finish t_torch_ref

#!/usr/bin/env bash
# t_export.sh - `ffrun export` to .npz, and tools/ffm_torch.py rebuilding the net from the
# .npz alone in PyTorch (float64, its own code for every layer, embedding, normalisation
# and readout): on 200 test images its scores must match `ffrun predict --json`'s to 1e-4
# relative, for each readout the model has, on briefly trained nets:
#   fc          configs/quick.yaml (overlay label, fc layers); fc_labels: the label also
#               handed to every later layer (label_every_layer)
#   paper_cnn   configs/supervised.yaml (pattern label, strided conv 10/2/2, hard negatives; fewer channels)
#   local       local receptive fields, padded, label planes at every layer (channels)
#   comp_deep   supervised_deep's recipe shrunk: padded grouped convs, max pools read by the
#               loss (loss_after_pool), batch norm + affine handed on, head on batch norm
#   comp_pool   supervised_competition: pools before layers, batch-standardised groups
#   unsup_clf   unsupervised_backbone (local, strided; fewer channels) + its linear classifier
#   colour      paper_cifar on the CIFAR-10 fixture (3 channels standardised, local 11x11, 5x5)
# Also: the .npz opens in NumPy (np.load) with PyTorch's layouts and a manifest.json; bad
# arguments exit 2.
set -u
source "$(dirname "$0")/script_lib.sh"
ffrun=$root/$build/ffrun
py=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1
cd "$tmp" || exit 1
$py -c "import numpy, torch" 2>/dev/null || { fail "python3-numpy / python3-torch missing (tools/deps.sh)"; finish t_export; }
mnist=$root/data/mnist
# the first 200 test images as an IDX file
$py -c "
import gzip, struct
raw = gzip.open('$mnist/t10k-images-idx3-ubyte.gz').read()
open('t200.idx', 'wb').write(struct.pack('>IIII', 0x803, 200, 28, 28) + raw[16:16 + 200 * 784])"
$py "$root/tests/make_cifar_fixture.py" cifar 100 200 || fail "fixture"
common=(--set data.train_limit=1000 --set data.test_limit=200 --set train.epochs=1
        --set log.dir=runs --set checkpoint.dir=models --set data.cache=cache --quiet)

cat > cmp.py <<'P'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 200, (len(a), len(b))
rel = max(abs(x - y) / max(abs(x), abs(y), 1e-30) for r, s in zip(a, b) for x, y in zip(r["scores"], s["scores"]))
same = sum(r["class"] == s["class"] for r, s in zip(a, b))
print("%.2g %d" % (rel, same))
P

# train NAME CONFIG ARGS...: the model file of a one-epoch run
train() {
    local name=$1 cfg=$2; shift 2
    "$ffrun" "$cfg" "${common[@]}" --name "$name" "$@" > "$name.train" 2>&1 ||
        { fail "$name: training: $(tail -3 "$name.train")"; return 1; }
    ls models/*_"$name"_epoch001.ffm
}

# agree NAME MODEL INPUT READOUT...: export, then predict vs ffm_torch per readout
agree() {
    local name=$1 model=$2 input=$3; shift 3
    "$ffrun" export "$model" "$name.npz" > "$name.export" 2>&1 || { fail "$name: export: $(cat "$name.export")"; return; }
    for r in "$@"; do
        "$ffrun" predict "$model" "$input" --json --readout "$r" > "$name.$r.c" 2> "$name.err" ||
            { fail "$name: predict --readout $r: $(cat "$name.err")"; continue; }
        "$py" "$root/tools/ffm_torch.py" "$name.npz" "$input" --json --readout "$r" > "$name.$r.t" 2> "$name.err" ||
            { fail "$name: ffm_torch --readout $r: $(tail -3 "$name.err")"; continue; }
        read -r rel same < <($py cmp.py "$name.$r.c" "$name.$r.t")
        awk -v d="$rel" 'BEGIN {exit !(d != "" && d < 1e-4)}' &&
            ok "$name, $r readout: PyTorch from the .npz reproduces ffrun predict, max rel. error $rel ($same/200 same class)" ||
            fail "$name, $r readout: max rel. error '$rel' ($same/200 same class)"
    done
}

m=$(train fc "$root/configs/quick.yaml" --set data.dir="$mnist") && agree fc "$m" t200.idx goodness softmax
m=$(train fc_labels "$root/configs/quick.yaml" --set data.dir="$mnist" --set model.label_every_layer=true) &&
    agree fc_labels "$m" t200.idx goodness softmax

m=$(train paper_cnn "$root/configs/supervised.yaml" --set data.dir="$mnist" --set model.layers.0.channels=32 \
      --set model.layers.1.channels=48 --set model.layers.2.channels=64) &&
    agree paper_cnn "$m" t200.idx goodness softmax

cat > local.yaml <<'Y'
mode: supervised
model:
  label_embedding: channels
  label_every_layer: true
  layers:
    - {type: local, channels: 4, kernel: 7, stride: 1, padding: 3}
    - {type: local, channels: 4, kernel: 5, stride: 2, padding: 2}
    - {type: local, channels: 6, kernel: 3, stride: 1}
train: {batch_size: 50, passes: joint, loss: pairwise, logit_scale: 30}
eval: {softmax: true}
Y
m=$(train local local.yaml --set data.dir="$mnist") && agree local "$m" t200.idx goodness softmax

cat > comp_deep.yaml <<'Y'
mode: supervised
model:
  label_embedding: none
  hand_on: batch
  loss_after_pool: true
  layers:
    - {type: conv, channels: 20, kernel: 3, stride: 1, padding: 1}
    - {type: conv, channels: 40, kernel: 3, stride: 1, padding: 1, groups: 10}
    - {type: pool, kind: max, kernel: 2, stride: 2}
    - {type: conv, channels: 40, kernel: 3, stride: 1, padding: 1}
    - {type: conv, channels: 80, kernel: 3, stride: 2, padding: 1, groups: 10}
    - {type: pool, kind: avg, kernel: 2, stride: 2}
train: {batch_size: 100, loss: competition, competition_norm: affine, logit_scale: 10}
optimizer: {lr: 0.01}
eval: {softmax: true, layers: [3]}
clf: {layers: [2, 3], norm: batch}
Y
m=$(train comp_deep comp_deep.yaml --set data.dir="$mnist") && agree comp_deep "$m" t200.idx goodness softmax

m=$(train comp_pool "$root/configs/supervised_competition.yaml" --set data.dir="$mnist") &&
    agree comp_pool "$m" t200.idx goodness softmax

if bb=$(train bb "$root/configs/unsupervised_backbone.yaml" --set data.dir="$mnist" \
       --set model.layers.0.channels=16 --set model.layers.1.channels=24 --set model.layers.2.channels=32); then
    "$ffrun" "$root/configs/unsupervised_clf.yaml" --set data.dir="$mnist" --set checkpoint.backbone="$bb" \
        --set clf.epochs=1 --set data.train_limit=1000 --set data.test_limit=200 --set log.dir=runs \
        --set checkpoint.dir=models --name clf --quiet > clf.train 2>&1 || fail "clf: $(tail -3 clf.train)"
    agree unsup_clf "$(ls models/unsupervised_clf_*_clf_epoch001.ffm)" t200.idx softmax
fi

m=$(train colour "$root/configs/paper_cifar.yaml" --set data.dir=cifar --set model.layers.1.kernel=5 \
      --set model.layers.1.padding=2 --set model.layers.2.kernel=5 --set model.layers.2.padding=2) &&
    agree colour "$m" cifar/test_batch.bin goodness softmax

# -- the .npz in NumPy: PyTorch's layouts, the manifest
$py - <<'P' && ok "NumPy reads the .npz: Conv2d/Linear/local layouts, statistics, manifest.json" || fail "npz layout"
import json, numpy as np
z = np.load("comp_deep.npz"); m = json.loads(z["manifest.json"])
assert m["format"] == "ffrun-npz" and m["label_embedding"]["kind"] == "none", m
assert z["layer1_weight"].shape == (40, 2, 3, 3) and z["layer1_weight"].dtype == np.float32  # groups 10
assert z["layer0_bn_scale"].shape == (20,) and z["layer3_bn_var"].shape == (80,)
assert m["layers"][1]["pool_after"]["kind"] == "max" and m["readouts"]["softmax"]["last_norm"] == "batch"
assert z["head_weight"].shape == (10, 40 * 14 * 14 + 80 * 3 * 3), z["head_weight"].shape
z = np.load("local.npz"); m = json.loads(z["manifest.json"])
assert z["layer0_weight"].shape == (28, 28, 4, 11, 7, 7) and z["layer0_bias"].shape == (4, 28, 28)
assert m["layers"][1]["label_planes"] == 10 and m["label_every_layer"]
z = np.load("fc.npz"); assert z["layer0_weight"].shape == (200, 784) and z["layer1_bias"].shape == (200,)
z = np.load("colour.npz"); m = json.loads(z["manifest.json"])
assert m["image"]["normalize"] == "channel" and z["input_mean"].shape == (3,) and m["class_names"][3] == "cat"
z = np.load("paper_cnn.npz"); assert z["embed_pattern"].shape == (11, 6, 6) and set(np.unique(z["embed_pattern"][:10])) <= {0.0, 1.0}
P
"$ffrun" export models/*_fc_epoch001.ffm out.txt > bad.out 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "must end in .npz" bad.out && ok "export to a name without .npz: exit 2" || fail "export out.txt: exit $rc"
"$ffrun" export models/*_bb_epoch001.ffm bb.npz > bad.out 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "unsupervised backbone" bad.out && ok "export of a backbone alone: exit 2, $(head -c 80 bad.out)" || fail "export backbone: exit $rc"
finish t_export

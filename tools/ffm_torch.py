#!/usr/bin/python3
"""ffm_torch.py - a model exported by `ffrun export MODEL.ffm OUT.npz` as a PyTorch module.

    tools/ffm_torch.py OUT.npz INPUT... [--readout goodness|softmax] [--limit N]
                       [--dtype float32|float64] [--json]

builds the net from the .npz alone (its manifest.json and arrays, see include/ff/export.h)
and prints, for every image of the INPUTs (IDX image files, gzipped or not, and CIFAR-10
batch files), what `ffrun predict --json` prints: the input (FILE#I), the predicted class
and the readout's ten scores. Computed in float64 by default, independently of ffrun's C
code: tests/t_export.sh checks that both agree.

As a library:
    net = FFNet.from_npz("out.npz")                 # a torch.nn.Module
    scores = net.scores(images, "goodness")         # images: [B, C, H, W], pixel / 255
    x = net.embed(net.normalize_input(images), label)   # label 0..9, "neutral" or None
    ins, outs, loss_outs = net(x, label_values)     # every layer's input and outputs
    h, g = net.recurrent_steps(x, label, steps)     # a recurrent net (manifest version 2)
Every weight is an nn.Parameter (named as in the .npz), so the net can be fine-tuned
with PyTorch's optimisers.

Debian: python3-torch, python3-numpy (tools/deps.sh)."""
import argparse
import gzip
import json
import sys
import zipfile

import numpy as np
import torch
import torch.nn.functional as F

CLASSES = 10


def load_npz(path):
    """The manifest and the arrays of an exported model."""
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
    arrays = dict(np.load(path, allow_pickle=False))
    arrays.pop("manifest.json", None)
    return manifest, arrays


def rms_normalize(x, eps):
    """x / sqrt(mean(x^2) + eps) over each sample's whole vector (ffrun's normalisation)."""
    flat = x.reshape(x.shape[0], -1)
    return x / torch.sqrt((flat * flat).mean(1) + eps).reshape((-1,) + (1,) * (x.dim() - 1))


def as_maps(x, shape):
    return x.reshape(x.shape[0], *shape)


class FFLayer(torch.nn.Module):
    """One trainable layer: fc, conv (grouped, padded) or local (unshared weights), ReLU.
    Label planes (the channels embedding at layer 0, label_every_layer above) are the
    last `label_planes` input channels: each adds its value times the sum of its kernel
    weights (padding never reaches them, as in ffrun)."""

    def __init__(self, spec, arrays, dtype):
        super().__init__()
        self.spec = spec
        t = lambda name: torch.nn.Parameter(torch.tensor(arrays[name], dtype=dtype))
        self.weight, self.bias = t(spec["weight"]), t(spec["bias"])
        for key in ("bn_mean", "bn_var", "bn_scale", "bn_shift"):
            setattr(self, key, t(spec[key]) if spec[key] else None)
        self.topdown = t(spec["topdown"]) if spec.get("topdown") else None

    def forward(self, x):
        s = self.spec
        if s["type"] == "fc":
            return F.relu(x.reshape(x.shape[0], -1) @ self.weight.T + self.bias).reshape(
                x.shape[0], *s["out"])
        nc = s["label_planes"]
        img, planes = (x[:, :x.shape[1] - nc], x[:, x.shape[1] - nc:, 0, 0]) if nc else (x, None)
        k, st, pad = s["kernel"], s["stride"], s["padding"]
        if s["type"] == "conv":
            w = self.weight[:, :self.weight.shape[1] - nc]
            y = F.conv2d(img, w, self.bias, stride=st, padding=pad, groups=s["groups"])
            if nc:
                y = y + (planes @ self.weight[:, -nc:].sum((2, 3)).T)[:, :, None, None]
            return F.relu(y)
        oh, ow = s["out"][1], s["out"][2]
        cols = F.unfold(img, k, padding=pad, stride=st)           # [B, Cimg k k, P]
        w = self.weight[:, :, :, :self.weight.shape[3] - nc]       # [oh, ow, out, Cimg, k, k]
        w = w.reshape(oh * ow, s["out"][0], -1)                    # [P, out, Cimg k k]
        y = torch.einsum("bkp,pck->bcp", cols, w).reshape(x.shape[0], -1, oh, ow) + self.bias
        if nc:
            ps = self.weight[:, :, :, -nc:].sum((4, 5))            # [oh, ow, out, nc]
            y = y + torch.einsum("bj,hwcj->bchw", planes, ps)
        return F.relu(y)

    def standardise(self, y, eps):
        """Each channel by its evaluation statistics, then the affine part if any."""
        sh = (1, -1, 1, 1)
        z = (y - self.bn_mean.reshape(sh)) / torch.sqrt(self.bn_var.reshape(sh) + eps)
        if self.bn_scale is not None:
            z = z * self.bn_scale.reshape(sh) + self.bn_shift.reshape(sh)
        return z


def pool(y, p):
    if p is None:
        return y
    f = F.max_pool2d if p["kind"] == "max" else F.avg_pool2d
    return f(y, p["kernel"], p["stride"])


class FFNet(torch.nn.Module):
    """The whole net: input normalisation, label embedding, layers, readouts."""

    def __init__(self, manifest, arrays, dtype=torch.float64):
        super().__init__()
        if manifest.get("format") != "ffrun-npz" or manifest.get("version") not in (1, 2):
            sys.exit("ffm_torch: not an ffrun-npz export of version 1 or 2: %s %s"
                     % (manifest.get("format"), manifest.get("version")))
        self.m, self.dtype = manifest, dtype
        self.rec = manifest.get("recurrent")
        self.layers = torch.nn.ModuleList(FFLayer(s, arrays, dtype) for s in manifest["layers"])
        a = lambda n: torch.tensor(arrays[n], dtype=dtype)
        img = manifest["image"]
        self.mean = a(img["mean"]) if img["normalize"] == "channel" else None
        self.std = a(img["std"]) if img["normalize"] == "channel" else None
        emb = manifest["label_embedding"]
        self.pattern = a(emb["pattern"]) if emb["kind"] == "pattern" else None
        sm = manifest["readouts"]["softmax"]
        self.head_weight = torch.nn.Parameter(a(sm["weight"])) if sm else None
        self.head_bias = torch.nn.Parameter(a(sm["bias"])) if sm else None

    @classmethod
    def from_npz(cls, path, dtype=torch.float64):
        return cls(*load_npz(path), dtype=dtype)

    # -- input
    def normalize_input(self, images):
        x = images.to(self.dtype)
        if self.mean is None:
            return x
        std = torch.where(self.std > 0, self.std, torch.ones_like(self.std))
        return (x - self.mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)

    @staticmethod
    def label_values(label, n, dtype):
        """The 10 values a label puts into the input: one-hot, 0.1 each for "neutral"."""
        v = torch.full((n, CLASSES), 0.1, dtype=dtype)
        if label != "neutral":
            v = F.one_hot(torch.full((n,), label), CLASSES).to(dtype)
        return v

    def embed(self, x, label):
        kind = self.m["label_embedding"]["kind"]
        if label is None or kind == "none":
            return x
        b, c, h, w = x.shape
        v = self.label_values(label, b, self.dtype)
        if kind == "channels":
            return torch.cat([x, v[:, :, None, None].expand(b, CLASSES, h, w)], 1)
        if kind == "overlay":
            flat = x.reshape(b, c, h * w).clone()
            flat[:, :, :CLASSES] = v[:, None, :]
            return flat.reshape(b, c, h, w)
        tile = self.pattern[CLASSES if label == "neutral" else label]
        full = tile.repeat((h + 5) // 6, (w + 5) // 6)[:h, :w]
        return 0.5 * x + 0.5 * full

    # -- the forward pass
    def forward(self, x, label_values=None):
        """Every layer's input (as its weights see it), ReLU output and loss output
        (pooled if a pool follows with loss_after_pool)."""
        m, eps = self.m, self.m["norm_eps"]
        ins, outs, loss_outs = [], [], []
        src = x
        for l, (layer, s) in enumerate(zip(self.layers, m["layers"])):
            src = pool(src, s["pool_before"])
            if l > 0 and m["label_every_layer"]:
                h, w = s["in"][1], s["in"][2]
                v = label_values[:, :, None, None].expand(-1, CLASSES, h, w)
                inp = torch.cat([as_maps(rms_normalize(src, eps), [-1, h, w]), v], 1)
            elif l > 0 and m["hand_on"] == "batch":
                inp = self.layers[l - 1].standardise(src, m["bn_eps"])
            else:
                inp = rms_normalize(src, eps)
            inp = as_maps(inp, s["in"])
            y = layer(inp)
            lo = pool(y, s["pool_after"])
            ins.append(inp)
            outs.append(y)
            loss_outs.append(lo)
            src = lo
        return ins, outs, loss_outs

    # -- the recurrent net (manifest "recurrent": fc layers with top-down weights)
    def recurrent_steps(self, x, label, steps, window=None):
        """The bottom-up pass, then `steps` synchronous steps: every layer's new state is
        damping x its old + (1 - damping) x relu(W n(state below) + Wtd n(state above) + b),
        all from the step before, the label (0..9 or "neutral") clamped above the top
        layer as n(its 10 values). Returns the states and, with window = (first, last),
        the goodness of the goodness readout's layers summed over those steps."""
        eps, d, L, b = self.m["norm_eps"], self.rec["damping"], len(self.layers), x.shape[0]
        x0 = rms_normalize(x.reshape(b, -1), eps)
        top = rms_normalize(self.label_values(label, b, self.dtype), eps)

        def pre(l, below, above):
            layer = self.layers[l]
            y = below @ layer.weight.T + layer.bias
            return y if above is None else y + above @ layer.topdown.T

        h = []
        for l in range(L):  # the bottom-up pass: no top-down input yet
            h.append(F.relu(pre(l, x0 if l == 0 else rms_normalize(h[l - 1], eps), None)))
        total = torch.zeros(b, dtype=self.dtype)
        evaluated = self.m["readouts"]["goodness"]["layers"] if window else []
        for t in range(1, steps + 1):
            hn = [rms_normalize(v, eps) for v in h]
            y = [F.relu(pre(l, x0 if l == 0 else hn[l - 1], hn[l + 1] if l + 1 < L else top))
                 for l in range(L)]
            h = [d * h[l] + (1.0 - d) * y[l] for l in range(L)]
            if window and window[0] <= t <= window[1]:
                for l in evaluated:
                    total = total + (h[l] ** 2).sum(1)
        return h, total

    # -- readouts
    def goodness_scores(self, x):
        g = self.m["readouts"]["goodness"]
        if self.rec:  # each label clamped in turn: the mean over the window's steps
            a, z = self.rec["eval_first"], self.rec["eval_last"]
            return torch.stack([self.recurrent_steps(x, k, z, (a, z))[1] / (z - a + 1)
                                for k in range(CLASSES)], 1)
        if g["kind"] == "label":
            cols = []
            for k in range(CLASSES):
                xk = self.embed(x, k)
                _, outs, _ = self(xk, self.label_values(k, x.shape[0], self.dtype))
                cols.append(sum((outs[l] ** 2).reshape(x.shape[0], -1).sum(1) for l in g["layers"]))
            return torch.stack(cols, 1)
        _, _, los = self(x)
        score = 0
        for l in g["layers"]:
            y = los[l]
            if g["of"] == "bn":
                z = self.layers[l].standardise(y, self.m["bn_eps"]) ** 2
                score = score + z.reshape(z.shape[0], CLASSES, -1).sum(2)
            else:
                flat = y.reshape(y.shape[0], CLASSES, -1)
                gk = (flat ** 2).sum(2)
                score = score + flat.shape[1] * flat.shape[2] * gk / (gk.sum(1, keepdim=True) + 1e-30)
        return score

    def softmax_scores(self, x):
        sm, m = self.m["readouts"]["softmax"], self.m
        label = "neutral" if sm["input"] == "neutral_label" else None
        if self.rec:  # the states at readout_iteration with the neutral label, as the layers' outputs
            h, _ = self.recurrent_steps(x, "neutral", self.rec["readout_iteration"])
            ins = [None] + [rms_normalize(v, m["norm_eps"]) for v in h[:-1]]
            los = h
        else:
            xe = self.embed(x, label)
            ins, _, los = self(xe, self.label_values("neutral", x.shape[0], self.dtype))
        feats = []
        for l in sm["layers"]:
            dim = los[l][0].numel()
            if l + 1 < len(self.layers) and m["layers"][l + 1]["pool_before"] is None:
                f = ins[l + 1].reshape(x.shape[0], -1)[:, :dim]
            elif sm["last_norm"] == "batch":
                f = self.layers[l].standardise(los[l], m["bn_eps"]).reshape(x.shape[0], -1)
            else:
                f = rms_normalize(los[l], m["norm_eps"]).reshape(x.shape[0], -1)
            feats.append(f)
        logits = torch.cat(feats, 1) @ self.head_weight.T + self.head_bias
        return torch.softmax(logits, 1)

    def scores(self, images, readout=None):
        """[B, 10] scores of images ([B, C, H, W], pixel / 255) as `ffrun predict`."""
        readout = readout or self.m["readouts"]["default"]
        x = self.normalize_input(images)
        with torch.no_grad():
            if readout == "goodness":
                return self.goodness_scores(x)
            return self.softmax_scores(x)


def read_images(path, shape):
    """[N, C, H, W] pixel / 255 from an IDX image file (gzipped or not) or CIFAR records."""
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    c, h, w = shape
    if raw[:4] == b"\x00\x00\x08\x03":
        n, rows, cols = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        px = np.frombuffer(raw, np.uint8, n * rows * cols, 16).reshape(n, 1, rows, cols)
    else:
        rec = np.frombuffer(raw, np.uint8).reshape(-1, 1 + c * h * w)
        px = rec[:, 1:].reshape(-1, c, h, w)
    if px.shape[1:] != (c, h, w):
        sys.exit("ffm_torch: %s: images of %s, the model takes %s" % (path, px.shape[1:], shape))
    return torch.tensor(px.astype(np.float32) / np.float32(255.0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("npz")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--readout", choices=("goodness", "softmax"))
    ap.add_argument("--limit", type=int, default=0, help="first N images of each input")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    net = FFNet.from_npz(a.npz, getattr(torch, a.dtype))
    names = net.m["class_names"]
    readout = a.readout or net.m["readouts"]["default"]
    if not net.m["readouts"][readout]:
        sys.exit("ffm_torch: %s has no %s readout" % (a.npz, readout))
    for path in a.inputs:
        images = read_images(path, net.m["image"]["shape"])
        if a.limit > 0:
            images = images[:a.limit]
        for s0 in range(0, len(images), 100):
            sc = net.scores(images[s0:s0 + 100], readout)
            for i, row in enumerate(sc.tolist()):
                k = int(np.argmax(row))
                name = "%s#%d" % (path, s0 + i)
                if a.json:
                    print(json.dumps({"input": name, "class": k, "name": names[k] if names else None,
                                      "readout": readout, "scores": row}))
                else:
                    print("%s\t%s\t%s" % (name, names[k] if names else k,
                                          " ".join("%.6g" % v for v in row)))


if __name__ == "__main__":
    main()

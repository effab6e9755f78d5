#!/usr/bin/python3
"""ff_ref.py - PyTorch reference of ffrun's Forward-Forward training step, for
the speed comparison (bench/speed.sh, `make bench-speed`).

It implements the same work as ffrun (tools/ff-bench.c drives ffrun's side):
  - nets: fc 784-2000x4; cnn conv 1->128 k10 s6, 128->220 k2 s1, 220->512 k2 s1;
    local: the same geometry with unshared weights per output location
    (weights [P, C, K], bias [C*P], K in (channel, row, col) order as ffrun);
    deep: conv 1->32, 32->64, 64->128, all k3 s1 zero padding 1, with 2x2 max pools
    (stride 2) before the second and third layers;
  - a pool has no goodness: the next layer's input is its pooled output below;
  - each layer's input is the previous output (the image for layer 0), detached,
    divided by sqrt(mean(x^2) + 1e-8) over the whole vector; y = relu(layer(x));
  - goodness g = sum(y^2) per sample; loss softplus(theta - g) for positive and
    softplus(g - theta) for negative data, mean over the batch, theta = units of
    the layer; all layers step on every batch;
  - alternate passes: embed true labels (one-hot in the first 10 pixels), pass,
    Adam step, embed a uniformly drawn wrong label, pass, Adam step;
    Adam lr 1e-3, betas 0.9/0.999, eps 1e-8;
  - evaluation: the 10 labelled copies of a chunk of images in one batch,
    goodness summed over layers 1.., argmax.
torch.set_num_threads(2) (bench --threads T) and torch.set_flush_denormal(True) (Adam's
moments decay into subnormals otherwise).

  ff_ref.py bench --net fc|cnn|local|deep --batch B [--seconds S]   one JSON line
  ff_ref.py bench --config configs/cifar_deep.yaml|configs/supervised_deep.yaml
            [--threads T] [--seconds S] [--memory-format channels_last|contiguous]
            [--backward once|per-layer] [--random-data] [--images N]   one JSON line
  ff_ref.py check FILE                  compare with `ff-bench ref` output (--net, or
                                        --config for the competition configs); exit 1 on
                                        mismatch

bench --config: ffrun's training step (src/trainer.c ff_trainer_step) for a channel-wise
competition config (train.loss competition, competition_norm affine, hand_on batch,
loss_after_pool, eval.softmax with the head on the last layer, clf.norm batch), as
`ff-bench run --config FILE` times it in the early epochs where every layer learns:
  - data: the config's data set (its first --images training images; CIFAR-10 with
    data.normalize channel standardised per channel over them), or with --random-data
    random normal images and uniform labels (the same work: nothing depends on the values
    but the max pools' choices and the ReLUs' zeros);
  - layer 0's input: each image scaled to mean square 1 (x / sqrt(mean(x^2) + norm_eps));
  - each layer: y = relu(nn.Conv2d(h)) (3x3, padding 1, groups as configured), the 2x2
    max pool after it if one follows (the loss on the pooled output); o = batch norm of y
    with the batch's statistics per channel (biased variance, eps 1e-4) times the layer's
    learned scale plus its shift (F.batch_norm, training; the running statistics follow
    as ffrun's: decay 0.9, a plain average over the first batches); per-class-group
    goodness G_k = sum of o^2 over the group's channels; logits logit_scale / dim * G;
    loss cross-entropy, mean over the batch. The next layer's input is o detached (no
    gradient between layers; inputs never require gradients, so no input gradients);
  - one Adam step (the config's lr, betas, eps) on every layer's weights, biases, scales
    and shifts;
  - the softmax head (nn.Linear, from zero, Adam clf.lr): its features are the last
    layer's pooled output of the pass standardised with the running statistics and the
    layer's (updated) scale and shift, no gradient into the net; one Adam step.
  train_ips = batch / median wall time of whole steps; train_cpu_ms the median CPU time;
  train_flop_per_img the GEMM FLOPs per image as ff-bench counts them (convs' forward and
  weight gradients, the head's logits and weight gradient). channels_last is the default
  layout: faster here on 1 thread (see --memory-format).
  Checked against ffrun: `ff-bench ref --config FILE --out F [--warm N]` then
  `ff_ref.py check F` (same weights, Adam state, running statistics, head and batch:
  per-layer losses, gradients and updates, the head's loss and gradients). With
  contiguous tensors they agree to float rounding (losses ~1e-7, gradients ~1e-6 of the
  largest; the last layers' weight gradients to ~5e-4 at most: against the same step in
  float64 ffrun's are up to ~4e-4 off in L2 norm, torch's ~1e-6, rounding in ffrun's
  long float32 sums, it seems). channels_last, the timed layout, is as fast a path to the same results but
  torch 1.13's channels-last CPU batch norm sums in float32 (its output ~5e-5 off float64
  against ~1e-7 contiguous): gradients differ from both by ~1e-3; check
  --memory-format channels_last shows it.
  ff_ref.py report RESULTS.jsonl OUT.md  speed table into OUT.md between
                                         <!-- speed:begin --> and <!-- speed:end -->
"""
import argparse
import gzip
import json
import math
import os
import resource
import statistics
import sys
import time

import numpy as np

THREADS = 2

NETS = {
    "fc": [("fc", 2000, 0, 0)] * 4,
    "cnn": [("conv", 128, 10, 6), ("conv", 220, 2, 1), ("conv", 512, 2, 1)],
    "local": [("local", 128, 10, 6), ("local", 220, 2, 1), ("local", 512, 2, 1)],
    # padded 3x3 convs (padding 1) with 2x2 max pools between them (no goodness of
    # their own: the next layer's input is normalise(maxpool(output below)))
    "deep": [("conv", 32, 3, 1, 1), ("pool", "max", 2, 2), ("conv", 64, 3, 1, 1),
             ("pool", "max", 2, 2), ("conv", 128, 3, 1, 1)],
}


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------- the net

def make_torch(omp_wait="PASSIVE", threads=THREADS):
    # OpenMP threads that spin-wait fight OpenBLAS's threads (and anything else
    # running) for the 2 cores; passive waiting was up to 5x faster here under load.
    if omp_wait and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = omp_wait
    import torch
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    return torch


class Layer:
    """One FF layer; in_shape and out are (c, h, w)."""

    def __init__(self, torch, kind, in_shape, out, k, s, theta, pad=0, pool=None):
        self.kind, self.in_shape, self.out, self.k, self.s = kind, in_shape, out, k, s
        self.theta, self.pad = float(theta), pad
        self.pool = pool        # (kind, kernel, stride, (c, h, w) of the output below) or None
        c, h, w = in_shape
        C, oh, ow = out
        K, P = c * k * k, oh * ow
        if kind == "fc":
            self.wshape, self.bshape, fan_in = (C, c * h * w), (C,), c * h * w
        elif kind == "conv":
            self.wshape, self.bshape, fan_in = (C, c, k, k), (C,), K
        elif kind == "local":
            self.wshape, self.bshape, fan_in = (P, C, K), (C * P,), K
        else:
            raise ValueError("unknown layer kind " + kind)
        self.W = torch.nn.Parameter(torch.randn(self.wshape) / math.sqrt(fan_in))
        self.b = torch.nn.Parameter(torch.zeros(self.bshape))

    def pre(self, torch, x):
        """pre-activation [B, out dim] of the normalised input x [B, in dim]"""
        F = torch.nn.functional
        B = x.shape[0]
        if self.kind == "fc":
            return F.linear(x, self.W, self.b)
        x4 = x.view(B, *self.in_shape)
        if self.kind == "conv":
            return F.conv2d(x4, self.W, self.b, stride=self.s, padding=self.pad).flatten(1)
        cols = F.unfold(x4, self.k, stride=self.s, padding=self.pad)  # [B, K, P]
        t = torch.bmm(cols.permute(2, 0, 1), self.W.transpose(1, 2))  # [P, B, C]
        return t.permute(1, 2, 0).reshape(B, -1) + self.b           # CHW order


def build_layers(torch, spec, in_shape=(1, 28, 28)):
    layers, shape, pool = [], in_shape, None
    for kind, units, k, s, *rest in spec:
        pad = rest[0] if rest else 0
        if kind == "pool":      # folded into the next layer's input
            pool = (units, k, s, shape)
            shape = (shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1)
            continue
        if kind == "fc":
            out = (units, 1, 1)
        else:
            out = (units, (shape[1] + 2 * pad - k) // s + 1, (shape[2] + 2 * pad - k) // s + 1)
        layers.append(Layer(torch, kind, shape, out, k, s, out[0] * out[1] * out[2], pad, pool))
        shape, pool = out, None
    return layers


def pooled(torch, L, h):
    """the layer below's output h [B, dim] through L's pool, if it has one"""
    if L.pool is None:
        return h
    kind, k, s, src = L.pool
    F = torch.nn.functional
    x4 = h.reshape(h.shape[0], *src)
    return (F.max_pool2d if kind == "max" else F.avg_pool2d)(x4, k, stride=s).flatten(1)


def params_of(layers):
    return [p for L in layers for p in (L.W, L.b)]


def normalize(torch, x, eps):
    return x / torch.sqrt(x.pow(2).mean(1, keepdim=True) + eps)


def ff_pass(torch, layers, opt, x, sign, eps=1e-8):
    """One FF pass (sign +1 positive, -1 negative) and the optimiser step;
    returns the per-layer losses (tensors)."""
    F = torch.nn.functional
    losses, h = [], x
    for L in layers:
        y = torch.relu(L.pre(torch, normalize(torch, pooled(torch, L, h.detach()), eps)))
        g = y.pow(2).sum(1)
        losses.append(F.softplus(sign * (L.theta - g)).mean())
        h = y
    opt.zero_grad(set_to_none=True)
    sum(losses).backward()
    opt.step()
    return losses


def goodness_scores(torch, layers, x, m, eps=1e-8):
    """x: 10*m rows, row k*m + j = image j with label k; returns [m, 10] scores."""
    h, score = x, 0
    for i, L in enumerate(layers):
        y = torch.relu(L.pre(torch, normalize(torch, pooled(torch, L, h), eps)))
        if i >= (1 if len(layers) > 1 else 0):
            score = score + y.pow(2).sum(1)
        h = y
    return score.view(10, m).t()


def make_adam(torch, layers, foreach):
    return torch.optim.Adam(params_of(layers), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0, foreach=foreach)


# ---------------------------------------------------------------- data

def load_mnist(d, limit):
    with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    n = min(n, limit)
    images = np.frombuffer(raw, np.uint8, n * rows * cols, 16).reshape(n, rows * cols)
    with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, n, 8)
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)


# ---------------------------------------------------------------- bench

def time_loop(fn, warm, min_iters, seconds, ts=None, cpu=None):
    """median seconds per call of fn and the number of timed calls (their wall times
    into ts, their CPU times (all threads of the process) into cpu)"""
    for _ in range(warm):
        fn()
    ts = [] if ts is None else ts
    start = time.perf_counter()
    while len(ts) < min_iters or time.perf_counter() - start < seconds:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return statistics.median(ts), len(ts)


def cmd_bench(a):
    if a.config:
        return cmd_bench_config(a)
    a.batch, a.data = a.batch or 100, a.data or "data/mnist"
    torch = make_torch(a.omp_wait, a.threads)
    rss_import = peak_rss_mb()
    torch.manual_seed(a.seed)
    gen = np.random.default_rng(a.seed)
    images_np, labels_np = load_mnist(a.data, a.images)
    images, labels = torch.from_numpy(images_np), torch.from_numpy(labels_np)
    n, B = images.shape[0], a.batch
    layers = build_layers(torch, NETS[a.net])
    opt = make_adam(torch, layers, a.foreach)
    order = {"perm": torch.from_numpy(gen.permutation(n)), "cursor": 0}

    def next_idx(m):
        if order["cursor"] + m > n:
            order["perm"], order["cursor"] = torch.from_numpy(gen.permutation(n)), 0
        i = order["perm"][order["cursor"]:order["cursor"] + m]
        order["cursor"] += m
        return i

    def embed(idx, lab):
        x = images[idx]                      # a copy
        x[:, :10] = torch.nn.functional.one_hot(lab, 10).to(x.dtype)
        return x

    last = {}

    def train_batch():
        idx = next_idx(B)
        pos = labels[idx]
        neg = (pos + torch.randint(1, 10, (B,))) % 10   # uniform over the 9 wrong labels
        lp = ff_pass(torch, layers, opt, embed(idx, pos), 1.0)
        ln = ff_pass(torch, layers, opt, embed(idx, neg), -1.0)
        last["loss"] = [float(p + q) for p, q in zip(lp, ln)]

    # as ffrun's trainer: a net for max(2B, 1000) rows, eval chunks of a tenth of it
    chunk = max(2 * B, 1000) // 10
    k_rows = torch.arange(10).repeat_interleave(chunk)

    def eval_chunk():
        idx = next_idx(chunk)
        x = images[idx].repeat(10, 1)
        x[:, :10] = torch.nn.functional.one_hot(k_rows, 10).to(x.dtype)
        with torch.inference_mode():
            goodness_scores(torch, layers, x, chunk).argmax(1)

    t_train, n_train = time_loop(train_batch, 2, 3, a.seconds)
    t_eval, n_eval = time_loop(eval_chunk, 1, 3, a.seconds * 0.5)
    out = {
        "impl": "pytorch", "net": a.net, "batch": B, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "adam_foreach": bool(a.foreach),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "params": sum(p.numel() for p in params_of(layers)),
        "train_ips": B / t_train, "train_batches": n_train,
        "eval_ips": chunk / t_eval, "eval_chunk": chunk, "eval_chunks": n_eval,
        "rss_import_mb": rss_import, "peak_rss_mb": peak_rss_mb(),
        "loss_last": last.get("loss"),
    }
    print(json.dumps(out))


# ---------------------------------------------------------------- competition configs

def load_cwc_config(path):
    """The parts of a channel-wise competition config (configs/cifar_deep.yaml,
    configs/supervised_deep.yaml) the step needs; refuses anything this reference does
    not implement rather than timing other work."""
    import yaml
    with open(path) as f:
        c = yaml.safe_load(f)
    model, train, opt = c.get("model", {}), c.get("train", {}), c.get("optimizer", {})
    clf, data, ev = c.get("clf", {}), c.get("data", {}), c.get("eval", {})
    need = [(train.get("loss"), "competition", "train.loss"),
            (train.get("competition_norm"), "affine", "train.competition_norm"),
            (model.get("hand_on"), "batch", "model.hand_on"),
            (model.get("loss_after_pool"), True, "model.loss_after_pool"),
            (model.get("label_embedding"), "none", "model.label_embedding"),
            (opt.get("type", "adam"), "adam", "optimizer.type"),
            (clf.get("norm"), "batch", "clf.norm"), (ev.get("softmax"), True, "eval.softmax")]
    for got, want, key in need:
        if got != want:
            sys.exit("ff_ref.py: %s: %s is %r; this reference does only %r" % (path, key, got, want))
    for k in ("jitter", "flip", "peer_norm"):
        if train.get(k):
            sys.exit("ff_ref.py: %s: train.%s is not implemented here" % (path, k))
    cifar = data.get("format") == "cifar10"
    return {
        "path": path, "layers": model["layers"], "batch": int(train.get("batch_size", 100)),
        "logit_scale": float(train.get("logit_scale", 0)), "lr": float(opt.get("lr", 1e-3)),
        "beta1": float(opt.get("beta1", 0.9)), "beta2": float(opt.get("beta2", 0.999)),
        "eps": float(opt.get("eps", 1e-8)), "weight_decay": float(opt.get("weight_decay", 0)),
        "norm_eps": float(model.get("norm_eps", 1e-8)), "clf_layers": list(clf.get("layers", [])),
        "clf_lr": float(clf.get("lr", 1e-3)), "data_dir": data.get("dir", "data/mnist"),
        "cifar": cifar, "channel_norm": data.get("normalize") == "channel",
        "input": (3, 32, 32) if cifar else (1, 28, 28),
    }


def load_cifar10(d, limit):
    """the first `limit` training images of CIFAR-10's binary batches, [n, 3072] in [0, 1]"""
    xs, ys, n = [], [], 0
    for b in range(1, 6):
        if n >= limit:
            break
        raw = np.fromfile(os.path.join(d, "data_batch_%d.bin" % b), np.uint8).reshape(-1, 3073)
        raw = raw[:limit - n]
        ys.append(raw[:, 0].astype(np.int64))
        xs.append(raw[:, 1:].astype(np.float32) / 255.0)
        n += raw.shape[0]
    return np.concatenate(xs), np.concatenate(ys)


class CwcNet:
    """ffrun's channel-wise competition net (competition_norm affine, hand_on batch,
    loss_after_pool) as torch modules: nn.Conv2d layers (oneDNN), each with the scale
    and shift of its batch norm and the batch norm's running statistics."""

    BN_EPS, BN_DECAY, GROUPS = 1e-4, 0.9, 10      # FF_COMP_BN_EPS, FF_COMP_BN_DECAY

    def __init__(self, torch, cfg, batch, memory_format):
        nn = torch.nn
        self.torch, self.cfg, self.B, self.mf = torch, cfg, batch, memory_format
        self.per_layer_backward = False
        self.layers = []            # dicts: conv, pool after it, shape of the loss output, ...
        c, h, w = cfg["input"]
        for e in cfg["layers"]:
            if e["type"] == "pool":
                if not self.layers or self.layers[-1]["pool"]:
                    sys.exit("ff_ref.py: a pool must follow a conv layer")
                if e.get("kind", "max") != "max":
                    sys.exit("ff_ref.py: only max pools here")
                k, s = e["kernel"], e.get("stride", e["kernel"])
                self.layers[-1]["pool"] = (k, s)
                h, w = (h - k) // s + 1, (w - k) // s + 1
                self.layers[-1]["loss_shape"] = (c, h, w)
                continue
            if e["type"] != "conv":
                sys.exit("ff_ref.py: layer type %s is not implemented here" % e["type"])
            k, s, p, g = e["kernel"], e.get("stride", 1), e.get("padding", 0), e.get("groups", 1)
            C = e["channels"]
            conv = nn.Conv2d(c, C, k, stride=s, padding=p, groups=g, bias=True)
            with torch.no_grad():   # as ffrun: randn / sqrt(fan-in), zero bias
                conv.weight.copy_(torch.randn(conv.weight.shape) / math.sqrt(c // g * k * k))
                conv.bias.zero_()
            conv = conv.to(memory_format=memory_format)
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            c = C
            self.layers.append({
                "conv": conv, "pool": None, "loss_shape": (c, h, w), "out_hw": h * w,
                "gamma": nn.Parameter(torch.ones(C)), "beta": nn.Parameter(torch.zeros(C)),
                "groups": g, "kernel": k, "in_c": conv.in_channels})
        for L in self.layers:
            C, h, w = L["loss_shape"]
            L["dim"] = C * h * w
            L["slope"] = cfg["logit_scale"] / L["dim"] if cfg["logit_scale"] > 0 else 1.0
            # running statistics (evaluation, the head's features). torch's batch norm
            # updates the running variance with the unbiased batch variance (n / (n - 1)
            # times ffrun's biased one, n = batch * h * w); running_var holds ffrun's
            # running variance times n / (n - 1), which that update keeps exact
            L["n_stat"] = batch * h * w
            L["unbias"] = L["n_stat"] / (L["n_stat"] - 1.0)
            L["running_mean"] = torch.zeros(C)
            L["running_var"] = torch.full((C,), L["unbias"])
            L["seen"] = 0.0
        if not (0 <= max(cfg["clf_layers"] or [-1]) < len(self.layers)) or len(cfg["clf_layers"]) != 1:
            sys.exit("ff_ref.py: clf.layers must name one layer")
        self.head_layer = cfg["clf_layers"][0]
        HL = self.layers[self.head_layer]
        if self.head_layer + 1 < len(self.layers):
            sys.exit("ff_ref.py: the head on the last layer only here")
        self.features = HL["dim"]
        self.head = nn.Linear(self.features, 10)
        with torch.no_grad():   # ffrun's head starts at zero
            self.head.weight.zero_()
            self.head.bias.zero_()

    def net_params(self):
        return [p for L in self.layers
                for p in (L["conv"].weight, L["conv"].bias, L["gamma"], L["beta"])]

    def flop_per_img(self):
        """GEMM FLOPs per image of one step as ff-bench counts them (train_flop_per_img):
        each conv's forward and weight gradient (no input gradient), the head's logits
        and weight gradient"""
        f = 0.0
        for L in self.layers:
            k = L["kernel"]
            macs = L["conv"].out_channels * (L["in_c"] // L["groups"]) * k * k * L["out_hw"]
            f += 2 * 2.0 * macs
        return f + 2 * 2.0 * self.features * 10

    def step(self, x, labels, opt, head_opt):
        """One training step as ffrun's (src/trainer.c ff_trainer_step with train.loss
        competition, every layer learning): returns the per-layer losses and the head's."""
        torch, F = self.torch, self.torch.nn.functional
        opt.zero_grad(set_to_none=True)
        losses = self.ff_losses(x, labels, self.per_layer_backward)
        if not self.per_layer_backward:
            sum(losses).backward()
        opt.step()
        # the softmax head on the last layer's pass output (before the update) standardised
        # with the running statistics and the layer's (updated) scale and shift, as
        # ff_readout_features with clf.norm batch does after the net's step
        HL = self.layers[self.head_layer]
        with torch.no_grad():
            rv = HL["running_var"] / HL["unbias"]
            feat = F.batch_norm(HL["post"], HL["running_mean"], rv, HL["gamma"], HL["beta"],
                                training=False, eps=self.BN_EPS).flatten(1)
        head_loss = F.cross_entropy(self.head(feat), labels)
        head_opt.zero_grad(set_to_none=True)
        head_loss.backward()
        head_opt.step()
        for L in self.layers:
            L["post"] = None
        return losses, head_loss

    def ff_losses(self, x, labels, backward=False):
        """The FF pass of ffrun's ff_net_ff_grads (hand_on batch: layer by layer): the
        per-layer loss tensors, each depending only on its own layer's parameters (with
        backward: each layer's gradients computed right after its forward pass, as ffrun
        does, instead of by the caller's one backward pass over their sum)."""
        torch, F = self.torch, self.torch.nn.functional
        B = x.shape[0]
        # layer 0's input: each image scaled to mean square 1 (ff_objective_normalize)
        h = x / torch.sqrt(x.pow(2).mean((1, 2, 3), keepdim=True) + self.cfg["norm_eps"])
        h = h.contiguous(memory_format=self.mf)
        losses = []
        for L in self.layers:
            y = torch.relu(L["conv"](h))                    # h: requires_grad off (detached)
            if L["pool"]:                                   # model.loss_after_pool
                y = F.max_pool2d(y, L["pool"][0], L["pool"][1])
            # batch statistics of each channel over batch x h x w (biased variance), the
            # running ones following them (decay 0.9, a plain average over the first batches)
            d = min(self.BN_DECAY, L["seen"] / (L["seen"] + 1.0))
            L["seen"] = min(L["seen"] + 1.0, 1e6)
            o = F.batch_norm(y, L["running_mean"], L["running_var"], L["gamma"], L["beta"],
                             training=True, momentum=1.0 - d, eps=self.BN_EPS)
            # goodness of each class group (its channels' o^2 summed), logits slope * G
            G = o.pow(2).sum((2, 3)).view(B, self.GROUPS, -1).sum(2)
            losses.append(F.cross_entropy(L["slope"] * G, labels))   # mean over the batch
            if backward:
                losses[-1].backward()
                losses[-1] = losses[-1].detach()
            L["post"] = y
            h = o.detach()                                  # hand_on batch; no backprop between layers
        return losses


def cmd_bench_config(a):
    cfg = load_cwc_config(a.config)
    torch = make_torch(a.omp_wait, a.threads)
    rss_import = peak_rss_mb()
    torch.manual_seed(a.seed)
    gen = np.random.default_rng(a.seed)
    data_dir = a.data or cfg["data_dir"]
    if a.random_data:
        n = a.images
        images_np = gen.standard_normal((n, int(np.prod(cfg["input"]))), dtype=np.float32)
        labels_np = gen.integers(0, 10, n)
    elif cfg["cifar"]:
        images_np, labels_np = load_cifar10(data_dir, a.images)
    else:
        images_np, labels_np = load_mnist(data_dir, a.images)
    if cfg["channel_norm"] and not a.random_data:   # data.normalize channel
        v = images_np.reshape(images_np.shape[0], cfg["input"][0], -1)
        mean = v.mean((0, 2), dtype=np.float64)
        std = v.std((0, 2), dtype=np.float64)
        v -= mean[None, :, None].astype(np.float32)
        v /= std[None, :, None].astype(np.float32)
    images = torch.from_numpy(images_np).view(-1, *cfg["input"])
    labels = torch.from_numpy(labels_np)
    n, B = images.shape[0], a.batch or cfg["batch"]
    # channels_last by default: on 1 thread (busy machine) 437 against 565 ms CPU per
    # cifar_deep step and 337 against 490 ms per supervised_deep step (oneDNN's convolutions
    # and max pools without layout reorders; contiguous max_pool2d alone took ~95 ms a step)
    mf = torch.channels_last if a.memory_format == "channels_last" else torch.contiguous_format
    net = CwcNet(torch, cfg, B, mf)
    net.per_layer_backward = a.backward == "per-layer"
    opt = torch.optim.Adam(net.net_params(), lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]),
                           eps=cfg["eps"], weight_decay=cfg["weight_decay"], foreach=a.foreach)
    head_opt = torch.optim.Adam(net.head.parameters(), lr=cfg["clf_lr"], betas=(0.9, 0.999),
                                eps=1e-8, weight_decay=0.0, foreach=a.foreach)
    order = {"perm": torch.from_numpy(gen.permutation(n)), "cursor": 0}

    def next_idx(m):
        if order["cursor"] + m > n:
            order["perm"], order["cursor"] = torch.from_numpy(gen.permutation(n)), 0
        i = order["perm"][order["cursor"]:order["cursor"] + m]
        order["cursor"] += m
        return i

    last = {}

    def train_batch():
        idx = next_idx(B)
        losses, head_loss = net.step(images[idx], labels[idx], opt, head_opt)
        last["loss"] = [float(l) for l in losses]
        last["head"] = float(head_loss)

    ts, cpu = [], []
    t_train, n_train = time_loop(train_batch, 2, 3, a.seconds, ts, cpu)
    out = {
        "impl": "pytorch", "net": "cwc", "config": a.config, "batch": B,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "memory_format": a.memory_format, "backward": a.backward,
        "adam_foreach": bool(a.foreach),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "data": "random" if a.random_data else data_dir, "images": n,
        "params": sum(p.numel() for p in net.net_params()),
        "head_params": sum(p.numel() for p in net.head.parameters()),
        "train_flop_per_img": net.flop_per_img(),
        "train_ips": B / t_train, "train_batches": n_train, "step_ms_median": 1e3 * t_train,
        "step_ms_min": 1e3 * min(ts), "step_ms_max": 1e3 * max(ts),
        # CPU time per step (all threads; ff-bench's train_cpu_ms): on a busy machine the
        # 1-thread ratio of these is nearer what the wall-time ratio would be on a quiet one
        "train_cpu_ms": 1e3 * statistics.median(cpu),
        "rss_import_mb": rss_import, "peak_rss_mb": peak_rss_mb(),
        "loss_last": last.get("loss"), "head_loss_last": last.get("head"),
    }
    print(json.dumps(out))


# ---------------------------------------------------------------- check

def flat_param_views(torch, params, vec):
    """vec (ffrun's flat parameter buffer, a float32 array) cut into tensors shaped as
    params, in order (copies)"""
    out, off = [], 0
    for p in params:
        out.append(torch.from_numpy(vec[off:off + p.numel()].copy()).view(p.shape))
        off += p.numel()
    return out


def array_reader(blob, path):
    """take(count): the next count floats of a reference file's arrays, in order; exits
    with a message if the file ends first"""
    pos = [0]

    def take(count):
        v = blob[pos[0]:pos[0] + count]
        if v.size != count:
            sys.exit("ff_ref.py: %s is truncated" % path)
        pos[0] += count
        return v
    return take


def cmd_check_cwc(a, torch, hdr, blob):
    """`ff-bench ref --config FILE` (a competition config): the same step from ffrun's
    weights, Adam state and batch; per-layer loss, gradients and updates compared."""
    cfg = load_cwc_config(hdr["config"])
    B, n = hdr["batch"], hdr["n_params"]
    in_dim = int(np.prod(hdr["input"]))
    take = array_reader(blob, a.file)
    p0, m0, v0 = take(n), take(n), take(n)
    stats = [take(2 * d["out"][0] + 1) for d in hdr["layers"]]
    head_n = hdr["head_n"]
    head0 = take(head_n)
    x, labels = take(B * in_dim), take(B)
    nl = len(hdr["layers"])
    loss_f, grads_f, after_f = take(nl), take(n), take(n)
    head_loss_f, head_grads_f = float(take(1)[0]), take(head_n)
    net = CwcNet(torch, cfg, B, torch.channels_last if a.memory_format == "channels_last"
                 else torch.contiguous_format)
    params = net.net_params()
    assert sum(p.numel() for p in params) == n, (sum(p.numel() for p in params), n)
    for L, d in zip(net.layers, hdr["layers"]):
        assert L["conv"].weight.numel() == d["n_weights"] and L["conv"].bias.numel() == d["n_bias"]
        assert 2 * L["gamma"].numel() == d["n_affine"]

    def flat_views(vec):
        return flat_param_views(torch, params, vec)

    with torch.no_grad():
        for p, w in zip(params, flat_views(p0)):
            p.copy_(w)
        for L, st in zip(net.layers, stats):   # the evaluation statistics (the head's features)
            C = L["gamma"].numel()
            L["running_mean"].copy_(torch.from_numpy(st[:C].copy()))
            L["running_var"].copy_(torch.from_numpy(st[C:2 * C].astype(np.float64) * L["unbias"]))
            L["seen"] = float(st[2 * C])
        F_ = net.features
        net.head.weight.copy_(torch.from_numpy(head0[:10 * F_].copy()).view(10, F_))
        net.head.bias.copy_(torch.from_numpy(head0[10 * F_:].copy()))
    opt = torch.optim.Adam(params, lr=hdr["lr"], betas=(hdr["beta1"], hdr["beta2"]),
                           eps=hdr["eps"], weight_decay=0.0, foreach=False)
    if hdr["t"] > 0:
        for p, m, v in zip(params, flat_views(m0), flat_views(v0)):
            opt.state[p] = {"step": torch.tensor(float(hdr["t"])), "exp_avg": m, "exp_avg_sq": v}
    # the head's Adam state does not change its gradients: a fresh optimiser will do
    head_opt = torch.optim.Adam(net.head.parameters(), lr=hdr["head_lr"], foreach=False)
    xt = torch.from_numpy(x.copy()).view(B, *hdr["input"])
    lt = torch.from_numpy(labels.astype(np.int64))
    losses, head_loss = net.step(xt, lt, opt, head_opt)   # the whole step, the head's included
    head_grads = np.concatenate([net.head.weight.grad.reshape(-1).numpy(),
                                 net.head.bias.grad.numpy()])
    grads = np.concatenate([p.grad.reshape(-1).numpy() for p in params])
    after = np.concatenate([p.detach().reshape(-1).numpy() for p in params])
    lr, ok, report, off = hdr["lr"], True, [], 0
    for l, L in enumerate(net.layers):
        parts = {"weights": L["conv"].weight.numel(), "bias": L["conv"].bias.numel(),
                 "affine": 2 * L["gamma"].numel()}
        layer = {"layer": l, "loss_torch": float(losses[l]), "loss_ffrun": float(loss_f[l])}
        layer["loss_rel"] = abs(layer["loss_torch"] - layer["loss_ffrun"]) / max(
            abs(layer["loss_torch"]), 1e-6)
        good = layer["loss_rel"] <= a.loss_tol
        for name, cnt in parts.items():
            sl = slice(off, off + cnt)
            off += cnt
            gscale = float(np.abs(grads[sl]).max()) or 1.0
            gerr = float(np.abs(grads[sl] - grads_f[sl]).max()) / gscale
            upd = np.abs((after[sl] - p0[sl]) - (after_f[sl] - p0[sl])) / lr
            gl2 = float(np.linalg.norm(grads[sl] - grads_f[sl]) /
                        (np.linalg.norm(grads_f[sl]) or 1.0))
            layer[name] = {"grad_rel_max": gerr, "grad_rel_l2": gl2,
                           "update_diff_max_lr": float(upd.max()),
                           "update_frac_over_tol": float((upd > a.upd_tol).mean())}
            good &= gerr <= a.grad_tol and layer[name]["update_frac_over_tol"] <= a.upd_frac
        layer["ok"] = bool(good)
        ok &= good
        report.append(layer)
    hl = float(head_loss)
    hscale = float(np.abs(head_grads_f).max()) or 1.0
    head = {"loss_torch": hl, "loss_ffrun": head_loss_f,
            "loss_rel": abs(hl - head_loss_f) / max(abs(hl), 1e-6),
            "grad_rel_max": float(np.abs(head_grads - head_grads_f).max()) / hscale,
            "grad_rel_l2": float(np.linalg.norm(head_grads - head_grads_f) /
                                 (np.linalg.norm(head_grads_f) or 1.0))}
    head["ok"] = head["loss_rel"] <= a.loss_tol and head["grad_rel_max"] <= a.grad_tol
    ok &= head["ok"]
    tol = {"loss_rel": a.loss_tol, "grad_rel_max": a.grad_tol,
           "update_diff_lr": a.upd_tol, "update_frac_over_tol": a.upd_frac}
    print(json.dumps({"check": hdr["config"], "batch": B, "steps_before": hdr["t"], "ok": ok,
                      "memory_format": a.memory_format, "tolerance": tol, "layers": report,
                      "head": head}))
    return 0 if ok else 1


def cmd_check(a):
    torch = make_torch()
    with open(a.file, "rb") as f:
        try:
            hdr = json.loads(f.readline())
        except ValueError:
            sys.exit("ff_ref.py: %s does not start with an ffrun-ref JSON header line" % a.file)
        data = f.read()
    if len(data) % 4:
        sys.exit("ff_ref.py: %s is truncated (%d bytes of float32 arrays)" % (a.file, len(data)))
    blob = np.frombuffer(data, np.float32)
    if hdr.get("format") == "ffrun-ref-cwc" and hdr.get("version") == 1:
        return cmd_check_cwc(a, torch, hdr, blob)
    if hdr.get("format") != "ffrun-ref" or hdr.get("version") != 1:
        sys.exit("ff_ref.py: %s is not an ffrun-ref version 1 file" % a.file)
    n, B, nl = hdr["n_params"], hdr["batch"], len(hdr["layers"])
    in_dim = int(np.prod(hdr["input"]))
    take = array_reader(blob, a.file)
    p0, m0, v0 = take(n), take(n), take(n)
    xs = [take(B * in_dim).reshape(B, in_dim) for _ in range(2)]
    ref = [{"loss": take(nl), "grads": take(n), "params": take(n)} for _ in range(2)]

    layers, below = [], tuple(hdr["input"])
    for d in hdr["layers"]:
        p = d.get("pool")
        L = Layer(torch, d["kind"], tuple(d["in"]), tuple(d["out"]), d["kernel"], d["stride"],
                  d["threshold"], d.get("pad", 0),
                  (p["kind"], p["kernel"], p["stride"], below) if p else None)
        below = tuple(d["out"])
        assert L.W.numel() == d["n_weights"] and L.b.numel() == d["n_bias"], d
        layers.append(L)
    params = params_of(layers)
    assert sum(p.numel() for p in params) == n

    def flat_views(vec):
        return flat_param_views(torch, params, vec)

    with torch.no_grad():
        for p, w in zip(params, flat_views(p0)):
            p.copy_(w)
    opt = torch.optim.Adam(params, lr=hdr["lr"], betas=(hdr["beta1"], hdr["beta2"]),
                           eps=hdr["eps"], weight_decay=0.0, foreach=False)
    for p, m, v in zip(params, flat_views(m0), flat_views(v0)):
        opt.state[p] = {"step": torch.tensor(float(hdr["t"])), "exp_avg": m, "exp_avg_sq": v}

    def flat(ts):
        return np.concatenate([t.detach().reshape(-1).numpy() for t in ts])

    lr, ok, report = hdr["lr"], True, []
    prev = p0
    for pass_, sign in ((0, 1.0), (1, -1.0)):
        losses = ff_pass(torch, layers, opt, torch.from_numpy(xs[pass_].copy()), sign,
                         hdr["norm_eps"])
        r = ref[pass_]
        grads, after = flat([p.grad for p in params]), flat(params)
        off = 0
        for l, L in enumerate(layers):
            cnt = L.W.numel() + L.b.numel()
            sl = slice(off, off + cnt)
            off += cnt
            lt, lf = float(losses[l]), float(r["loss"][l])
            loss_rel = abs(lt - lf) / max(abs(lt), 1e-6)
            gscale = float(np.abs(grads[sl]).max()) or 1.0
            grad_err = float(np.abs(grads[sl] - r["grads"][sl]).max()) / gscale
            du_t, du_f = after[sl] - prev[sl], r["params"][sl] - prev[sl]
            upd = np.abs(du_t - du_f) / lr          # update difference in units of lr
            upd_max = float(upd.max())
            upd_frac = float((upd > a.upd_tol).mean())
            good = (loss_rel <= a.loss_tol and grad_err <= a.grad_tol
                    and upd_frac <= a.upd_frac)
            ok &= good
            report.append({"pass": "pos" if pass_ == 0 else "neg", "layer": l,
                           "loss_torch": lt, "loss_ffrun": lf, "loss_rel": loss_rel,
                           "grad_rel_max": grad_err, "update_diff_max_lr": upd_max,
                           "update_frac_over_tol": upd_frac, "ok": bool(good)})
        # the next pass starts from ffrun's weights so the passes are checked separately
        with torch.no_grad():
            for p, w in zip(params, flat_views(r["params"])):
                p.copy_(w)
        prev = r["params"]
    tol = {"loss_rel": a.loss_tol, "grad_rel_max": a.grad_tol,
           "update_diff_lr": a.upd_tol, "update_frac_over_tol": a.upd_frac}
    print(json.dumps({"check": hdr["net"], "batch": B, "steps_before": hdr["t"], "ok": ok,
                      "tolerance": tol, "layers": report}))
    return 0 if ok else 1


# ---------------------------------------------------------------- report

def fmt(v, nd=0):
    return "-" if v is None or v != v else ("{:,.%df}" % nd).format(v)


def cmd_report(a):
    rows = [json.loads(l) for l in open(a.results) if l.startswith("{")]
    meta = json.loads(open(a.meta).read()) if a.meta else {}
    runs = [r for r in rows if "impl" in r and not r.get("config")]
    cfg_runs = [r for r in rows if r.get("impl") == "ffrun" and r.get("config")]
    cfg_torch = [r for r in rows if r.get("impl") == "pytorch" and r.get("config")]
    checks = [r for r in rows if "check" in r]
    key = lambda r: (["fc", "cnn", "local", "deep"].index(r["net"]), r["batch"])
    combos = sorted({(r["net"], r["batch"]) for r in runs}, key=lambda c: key(
        {"net": c[0], "batch": c[1]}))

    def med(impl, net, batch, field, sub=None):
        vals = []
        for r in runs:
            if r["impl"] == impl and r["net"] == net and r["batch"] == batch:
                v = r.get(field)
                if sub is not None and isinstance(v, dict):
                    v = v.get(sub)
                if isinstance(v, (int, float)):
                    vals.append(float(v))
        return statistics.median(vals) if vals else None

    def median_run(net, batch, field):
        """ffrun's breakdown `field` of the repetition whose total is the median
        (so the parts of one row add up)"""
        bds = sorted((r[field] for r in runs if r["impl"] == "ffrun" and r["net"] == net
                      and r["batch"] == batch and field in r), key=lambda d: d["total_ms"])
        return bds[(len(bds) - 1) // 2] if bds else {}

    names = {"fc": "FC 784-2000x4", "cnn": "CNN 128-220-512", "local": "local RF 128-220-512",
             "deep": "padded CNN 32-64-128, max pools"}
    L = []
    L.append("## Speed (`make bench-speed`)")
    L.append("")
    L.append("Generated by `%s` on %s. Machine: %s, %s CPU(s); %s. Commit `%s`%s." % (
        meta.get("command", "bench/speed.sh"), meta.get("date", "?"), meta.get("cpu", "?"),
        meta.get("cores", "?"), meta.get("blas", "OpenBLAS"), meta.get("commit", "?"),
        " (working tree had uncommitted changes)" if meta.get("dirty") else ""))
    L.append("%s repetitions, ffrun and PyTorch %s (CPU) alternating; medians over "
             "repetitions of each run's median batch time; 2 threads each. %s" % (
                 meta.get("reps", "?"), meta.get("torch", "?"), meta.get("note", "")))
    L.append("")
    L.append("Training images/s (one image = its positive and its negative pass, both Adam "
             "steps included):")
    L.append("")
    L.append("| net | batch | ffrun | PyTorch | ffrun / PyTorch | GEMM-only bound | "
             "ffrun / bound | ffrun GFLOP/s | PyTorch GFLOP/s |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for net, b in combos:
        f, p = med("ffrun", net, b, "train_ips"), med("pytorch", net, b, "train_ips")
        g = med("ffrun", net, b, "gemm_bound_train_ips")
        flop = med("ffrun", net, b, "train_flop_per_img")
        L.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            names[net], b, fmt(f), fmt(p), fmt(f / p if f and p else None, 2), fmt(g),
            fmt(f / g if f and g else None, 2), fmt(f * flop / 1e9 if f and flop else None),
            fmt(p * flop / 1e9 if p and flop else None)))
    L.append("")
    L.append("Evaluation images/s (goodness per label: the 10 labelled copies of a chunk of "
             "max(2*batch, 1000)/10 images in one forward batch, as ffrun's trainer does):")
    L.append("")
    L.append("| net | batch | chunk | ffrun | PyTorch | ffrun / PyTorch | GEMM-only bound | "
             "ffrun GFLOP/s |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for net, b in combos:
        f, p = med("ffrun", net, b, "eval_ips"), med("pytorch", net, b, "eval_ips")
        g, flop = med("ffrun", net, b, "gemm_bound_eval_ips"), med("ffrun", net, b,
                                                                   "eval_flop_per_img")
        L.append("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
            names[net], b, fmt(med("ffrun", net, b, "eval_chunk")), fmt(f), fmt(p),
            fmt(f / p if f and p else None, 2), fmt(g),
            fmt(f * flop / 1e9 if f and flop else None)))
    L.append("")
    L.append("Targets: ffrun / PyTorch >= 2 and ffrun / bound >= 0.5 (within 2x of the "
             "time the same sgemm calls take alone).")
    if cfg_runs:
        L.append("")
        L.append("The shipped configs as users run them (`ff-bench run --config FILE`: the "
                 "trainer's own batch step at the config's batch size, with its joint passes, "
                 "pairwise loss, hard negatives scored by ten labelled passes and the softmax "
                 "head's step; the GEMM-only bound replays every sgemm of a batch, the scoring "
                 "passes' included). Target: ffrun / bound >= 0.9 on 1 and on 2 threads. "
                 "The Adam ceiling is the most ffrun / bound can be with the step's Adam update "
                 "at its best: bound time / (bound time + the Adam step alone on as many "
                 "parameters and threads, from `ff-bench stream` below); Adam GB/s: the 28 "
                 "bytes per parameter of the update (p, g, m, v read; p, m, v written) over "
                 "its time in place.")
        L.append("")
        L.append("| config | batch | threads | images/s | GEMM-only bound | ffrun / bound | "
                 "Adam ceiling | Adam GB/s | sgemm ms | non-sgemm ms (embedding + labels, "
                 "normalisation, loss, Adam, layer work, rest) |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        streams = [r["stream"] for r in rows if "stream" in r]
        for cfg, th in sorted({(r["config"], r["threads"]) for r in cfg_runs}):
            sel = [r for r in cfg_runs if r["config"] == cfg and r["threads"] == th]
            ips = statistics.median(r["train_ips"] for r in sel)
            bound = statistics.median(r["gemm_bound_train_ips"] for r in sel)
            bd = sorted((r["bd_train"] for r in sel), key=lambda d: d["total_ms"])[
                (len(sel) - 1) // 2]
            rest = ", ".join("%s %.1f" % (n, bd[k]) for k, n in (
                ("data_ms", "data"), ("normalize_ms", "norm"), ("loss_ms", "loss"),
                ("optim_ms", "Adam"), ("layer_other_ms", "layer"), ("im2col_ms", "im2col"),
                ("rest_ms", "rest")))
            bound_ms = 1e3 * sel[0]["batch"] / bound
            alone = [s for s in streams if s["pool"] == th]
            ceiling = "-"
            if alone:
                adam_ms = min(s["adam_ms"] for s in alone) * sel[0]["params"] / alone[0]["floats"]
                ceiling = fmt(bound_ms / (bound_ms + adam_ms), 2)
            adam_gbs = 28e-6 * sel[0]["params"] / bd["optim_ms"] if bd["optim_ms"] > 0 else 0
            L.append("| `%s` | %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                cfg, sel[0]["batch"], th, fmt(ips), fmt(bound), fmt(ips / bound, 2),
                ceiling, fmt(adam_gbs, 1), fmt(bd["gemm_ms"], 1), rest))
        torch_pairs = sorted({(r["config"], r["threads"]) for r in cfg_torch})
        if torch_pairs:
            L.append("")
            L.append("The channel-wise competition configs against PyTorch doing the same "
                     "step (`ff_ref.py bench --config`: nn.Conv2d on oneDNN in the faster "
                     "memory format, the same batch-norm competition loss per layer, detached "
                     "layer inputs, one Adam step, the softmax head's step; `ff_ref.py check` "
                     "shows the same losses and gradients). Medians over repetitions, range "
                     "in brackets. Target: ffrun / PyTorch >= 2.")
            L.append("")
            L.append("| config | threads | ffrun images/s | PyTorch images/s | "
                     "ffrun / PyTorch |")
            L.append("| --- | ---: | ---: | ---: | ---: |")
            for cfg, th in torch_pairs:
                f = [r["train_ips"] for r in cfg_runs
                     if r["config"] == cfg and r["threads"] == th]
                p = [r["train_ips"] for r in cfg_torch
                     if r["config"] == cfg and r["threads"] == th]
                if not f or not p:
                    continue
                span = lambda v: "%s (%s-%s)" % (fmt(statistics.median(v)), fmt(min(v)),
                                                 fmt(max(v)))
                L.append("| `%s` | %d | %s | %s | %s |" % (
                    cfg, th, span(f), span(p),
                    fmt(statistics.median(f) / statistics.median(p), 2)))
        if streams:
            L.append("")
            L.append("Memory bandwidth (`ff-bench stream`, %s floats: the FC config's "
                     "parameter count): %s." % (
                         fmt(streams[0]["floats"]), "; ".join(
                             "%d thread(s): copy %.1f GB/s, the Adam step alone %.1f ms "
                             "(%.1f GB/s)" % (s["pool"], s["copy_gbs"], s["adam_ms"],
                                             s["adam_gbs"]) for s in streams)))
    peak = meta.get("peak")
    measured = [r["peak_sgemm"] for r in rows if "peak_sgemm" in r]
    best = max(measured, key=lambda m: m["gflops"]) if measured else None
    if best:
        L.append("")
        L.append("Fastest sgemm measured on this machine: %.0f GFLOP/s (square %d x %d x %d "
                 "products on %d threads; the better of the `ff-bench peak` runs before and "
                 "after the nets)." % (best["gflops"], best["size"], best["size"], best["size"],
                                       best["threads"]))
    if peak:
        L.append("")
        L.append("FP32 peak at the clock /proc/cpuinfo reports: %.0f GFLOP/s (%d cores x %.0f "
                 "MHz x %d FLOP per cycle: two FMA pipes of its widest vector instructions). "
                 "The cores can boost above that clock, so measured rates may exceed it." % (
                     peak["gflops"], peak["cores"], peak["mhz"], peak["flop_per_cycle"]))
    L.append("")
    misses = []
    for net, b in combos:
        f, p = med("ffrun", net, b, "train_ips"), med("pytorch", net, b, "train_ips")
        g = med("ffrun", net, b, "gemm_bound_train_ips")
        if not (f and p and g):
            continue
        if f / p < 2:
            # PyTorch's whole batch against the same sgemm calls alone: no implementation
            # of this work on these GEMMs can beat PyTorch by more than g / p
            misses.append("%s, batch %d: %.2fx PyTorch, short of 2x. The sgemm calls alone "
                          "take %.0f ms per batch, PyTorch's whole batch %.0f ms, so the same "
                          "work on the same GEMMs can be at most %.2fx PyTorch." % (
                              names[net], b, f / p, 1e3 * b / g, 1e3 * b / p, g / p))
            flop = med("ffrun", net, b, "train_flop_per_img")
            if best and flop:
                misses[-1] += (" Those sgemm calls alone run at %.0f GFLOP/s, %.0f%% of the "
                               "fastest sgemm measured here, so a faster GEMM library could "
                               "gain at most the rest." % (
                                   g * flop / 1e9, 100 * g * flop / 1e9 / best["gflops"]))
        if f / g < 0.5:
            misses.append("%s, batch %d: %.2f of the GEMM-only bound, short of 0.5." % (
                names[net], b, f / g))
    if misses:
        L.append("Targets missed:")
        L.append("")
        L.extend("- " + m for m in misses)
    else:
        L.append("Every net and batch size meets both targets.")
    L.append("")
    L.append("Where ffrun's training time goes (ms per batch, from the repetition with the "
             "median total; timed in place by wrapping the "
             "library calls, wall time of each call with the loops between the GEMMs "
             "split over as many threads as BLAS runs (src/pool.c); `im2col` includes the "
             "layout changes of the GEMM operands (per-sample transposes, conv gradients' "
             "[C, n*P] runs), `other layer work` is bias, ReLU (conv: with the [C, n*P] "
             "product put into CHW rows) and bias gradients; `data` = labels and embedding; the last "
             "column is the time of the same sgemm calls replayed back to back, on the same "
             "operands, with nothing in between):")
    L.append("")
    parts = [("gemm_ms", "sgemm"), ("im2col_ms", "im2col"),
             ("layer_other_ms", "other layer work"), ("normalize_ms", "normalisation"),
             ("loss_ms", "goodness + loss"), ("optim_ms", "Adam"), ("data_ms", "data"),
             ("rest_ms", "rest")]
    L.append("| net | batch | total | " + " | ".join(p[1] for p in parts) +
             " | sgemm replayed alone |")
    L.append("| --- | ---: | ---: |" + " ---: |" * (len(parts) + 1))
    for net, b in combos:
        bd = median_run(net, b, "bd_train")
        tot = bd.get("total_ms")
        g = med("ffrun", net, b, "gemm_bound_train_ips")
        cells = []
        for k, _ in parts:
            v = bd.get(k)
            cells.append("%s (%s%%)" % (fmt(v, 1), fmt(100 * v / tot if v is not None and tot
                                                       else None)))
        L.append("| %s | %d | %s | %s | %s |" % (names[net], b, fmt(tot, 1), " | ".join(cells),
                                                  fmt(1e3 * b / g if g else None, 1)))
    L.append("")
    L.append("Evaluation time per chunk (ms, same method):")
    L.append("")
    eparts = [("gemm_ms", "sgemm"), ("im2col_ms", "im2col"),
              ("layer_other_ms", "other layer work"),
              ("normalize_ms", "normalisation"), ("goodness_ms", "goodness"),
              ("data_ms", "embedding"), ("rest_ms", "rest")]
    L.append("| net | batch | total | " + " | ".join(p[1] for p in eparts) + " |")
    L.append("| --- | ---: | ---: |" + " ---: |" * len(eparts))
    for net, b in combos:
        L.append("| %s | %d | %s | %s |" % (
            names[net], b, fmt(median_run(net, b, "bd_eval").get("total_ms"), 1),
            " | ".join(fmt(median_run(net, b, "bd_eval").get(k), 1) for k, _ in eparts)))
    L.append("")
    L.append("Peak resident memory (MB; PyTorch's includes about %s MB for importing torch):" %
             fmt(statistics.median([r["rss_import_mb"] for r in runs if "rss_import_mb" in r])
                 if any("rss_import_mb" in r for r in runs) else None))
    L.append("")
    L.append("| net | batch | ffrun | PyTorch |")
    L.append("| --- | ---: | ---: | ---: |")
    for net, b in combos:
        L.append("| %s | %d | %s | %s |" % (names[net], b, fmt(med("ffrun", net, b,
                                                                     "peak_rss_mb")),
                                             fmt(med("pytorch", net, b, "peak_rss_mb"))))
    L.append("")
    if checks:
        t = checks[0]["tolerance"]
        L.append("Same work: from the same weights, Adam state and batch, PyTorch and ffrun "
                 "compute per-layer losses within %.0e relative, gradients within %.0e of "
                 "the layer's largest gradient, and updates within %s lr (allowed on at most "
                 "%s of the parameters):" % (t["loss_rel"], t["grad_rel_max"],
                                             t["update_diff_lr"], t["update_frac_over_tol"]))
        L.append("")
        L.append("| net | batch | Adam steps before | result | max loss rel. diff | "
                 "max grad rel. diff | max update diff (lr) | share of updates over tol. |")
        L.append("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
        def worst(ls, key):  # a --net layer holds the figures, a --config layer per tensor
            return max(x[key] if key in x else
                       max(x[t][key] for t in ("weights", "bias", "affine") if t in x)
                       for x in ls)

        for c in checks:
            ls = c["layers"]
            L.append("| %s | %d | %d | %s | %.1e | %.1e | %.1e | %.1e |" % (
                names.get(c["check"], c["check"]), c["batch"], c["steps_before"],
                "pass" if c["ok"] else "FAIL",
                worst(ls, "loss_rel"), worst(ls, "grad_rel_max"),
                worst(ls, "update_diff_max_lr"), worst(ls, "update_frac_over_tol")))
        L.append("")
        L.append("Adam's first step (zero moments) moves every weight by about lr * sign(g), "
                 "so a gradient that is zero up to rounding can move its weight either way "
                 "in the two implementations: those few updates are the ones over "
                 "tolerance.")
        L.append("")
    text = "\n".join(L)
    begin, end = "<!-- speed:begin -->", "<!-- speed:end -->"
    old = open(a.out).read() if os.path.exists(a.out) else (
        "# ffrun results\n\n<!-- accuracy:begin -->\n<!-- accuracy:end -->\n\n"
        "<!-- speed:begin -->\n<!-- speed:end -->\n")
    block = begin + "\n" + text + end
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    with open(a.out + ".tmp", "w") as f:
        f.write(new)
    os.replace(a.out + ".tmp", a.out)
    print(text)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--net", choices=sorted(NETS), default="fc")
    b.add_argument("--config", help="a channel-wise competition config (configs/cifar_deep.yaml, "
                   "configs/supervised_deep.yaml): its training step instead of --net's")
    b.add_argument("--batch", type=int, default=None,
                   help="default 100, or the config's train.batch_size")
    b.add_argument("--threads", type=int, default=THREADS)
    b.add_argument("--seconds", type=float, default=3.0)
    b.add_argument("--images", type=int, default=10000)
    b.add_argument("--data", default=None, help="default data/mnist, or the config's data.dir")
    b.add_argument("--random-data", action="store_true",
                   help="--config: random normal images and uniform labels instead of the data")
    b.add_argument("--memory-format", choices=("contiguous", "channels_last"),
                   default="channels_last",
                   help="--config: the conv layers' tensor layout (channels_last: measured "
                   "faster, 1 thread: 437 against 565 ms CPU per cifar_deep step, 337 against "
                   "490 ms per supervised_deep step)")
    b.add_argument("--backward", choices=("once", "per-layer"), default="once",
                   help="--config: one backward pass over the summed layer losses, or each "
                   "layer's right after its forward pass")
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--foreach", type=int, default=1, help="Adam foreach implementation")
    b.add_argument("--omp-wait", default="PASSIVE",
                   help="OMP_WAIT_POLICY unless set in the environment ('' = library default)")
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("--loss-tol", type=float, default=1e-4)
    c.add_argument("--grad-tol", type=float, default=1e-3)
    c.add_argument("--upd-tol", type=float, default=1e-2)
    c.add_argument("--upd-frac", type=float, default=1e-4)
    c.add_argument("--memory-format", choices=("contiguous", "channels_last"),
                   default="contiguous",
                   help="ffrun-ref-cwc files: the layout to check (contiguous: torch's float "
                   "reductions as accurate as ffrun's; channels_last, the timed layout, differs "
                   "from both by ~1e-3 in gradients: torch 1.13's channels-last CPU batch norm "
                   "sums in float32)")
    r = sub.add_parser("report")
    r.add_argument("results")
    r.add_argument("out")
    r.add_argument("--meta")
    a = ap.parse_args()
    if a.cmd == "bench":
        return cmd_bench(a)
    if a.cmd == "check":
        return cmd_check(a)
    return cmd_report(a)


if __name__ == "__main__":
    sys.exit(main() or 0)

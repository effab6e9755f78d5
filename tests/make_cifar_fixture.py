#!/usr/bin/python3
"""make_cifar_fixture.py DIR PER_BATCH N_TEST [SEED] - a small data set in CIFAR-10's
official binary format for the tests (no network, no real data): data_batch_1..5.bin
of PER_BATCH records each, test_batch.bin of N_TEST, batches.meta.txt and SHA256SUMS.

A record is a label byte and 3 x 32 x 32 pixel bytes (R, G, B planes, row-major).
Class k's images are learnable but not trivial: a colour of the class (hue k/10) in a
square whose place and size vary, over noise, so both colour and shape carry the label
and a net has to use every channel."""
import colorsys
import hashlib
import os
import random
import sys


def image(rng, k):
    r, g, b = colorsys.hsv_to_rgb(k / 10.0, 0.9, 0.9)
    planes = [bytearray(1024) for _ in range(3)]
    x0, y0 = rng.randrange(0, 16), rng.randrange(0, 16)
    side = rng.randrange(10, 17)
    for c, level in enumerate((r, g, b)):
        p = planes[c]
        for y in range(32):
            for x in range(32):
                v = rng.randrange(0, 60)
                if x0 <= x < x0 + side and y0 <= y < y0 + side:
                    v += int(190 * level)
                p[y * 32 + x] = min(v, 255)
    return bytes(planes[0] + planes[1] + planes[2])


def batch(rng, n, first):
    out = bytearray()
    for i in range(n):
        k = (first + i) % 10
        out.append(k)
        out += image(rng, k)
    return bytes(out)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    d, per, n_test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) == 5 else 1)
    os.makedirs(d, exist_ok=True)
    files = {}
    for b in range(1, 6):
        files["data_batch_%d.bin" % b] = batch(rng, per, (b - 1) * per)
    files["test_batch.bin"] = batch(rng, n_test, 3)
    files["batches.meta.txt"] = ("\n".join(["airplane", "automobile", "bird", "cat", "deer",
                                            "dog", "frog", "horse", "ship", "truck"]) + "\n").encode()
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    with open(os.path.join(d, "SHA256SUMS"), "w") as f:
        for name in sorted(files):
            f.write("%s  %s\n" % (hashlib.sha256(files[name]).hexdigest(), name))


main()

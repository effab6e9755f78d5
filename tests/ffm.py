#!/usr/bin/python3
"""ffm.py - an independent reader of ffrun model files (.ffm), for tests.

Usage: ffm.py info MODEL            print the header fields
       ffm.py same-weights A B      exit 0 iff A and B hold bit-identical parameters
                                    and optimiser state
Checks the magic, version, sizes and the CRC-32C trailer (pure Python) of
every file it reads; exits 1 with a message on any defect.
"""
import struct
import sys


def crc32c(data):
    table = crc32c.table
    if table is None:
        table = crc32c.table = []
        for b in range(256):
            c = b
            for _ in range(8):
                c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
            table.append(c)
    c = 0xFFFFFFFF
    for byte in data:
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


crc32c.table = None


def read(path):
    data = open(path, "rb").read()
    if data[:8] != b"FFRUNMDL":
        sys.exit("%s: bad magic" % path)
    (version, cfg_len, n_params, n_state, epoch, batch, step, opt_t) = struct.unpack_from("<IIQQIIQQ", data, 8)
    rng = struct.unpack_from("<4Q", data, 56)
    dir_len, n_order, n_aux = struct.unpack_from("<IIQ", data, 88)
    want = 104 + cfg_len + dir_len + 4 * (n_params + n_state + n_aux + n_order) + 4
    if version != 1 or len(data) != want:
        sys.exit("%s: version %d, %d bytes, header says %d" % (path, version, len(data), want))
    if struct.unpack_from("<I", data, len(data) - 4)[0] != crc32c(data[:-4]):
        sys.exit("%s: CRC-32C mismatch" % path)
    off = 104
    cfg = data[off:off + cfg_len].decode()
    off += cfg_len
    run_dir = data[off:off + dir_len].decode()
    off += dir_len
    params = data[off:off + 4 * n_params]
    state = data[off + 4 * n_params:off + 4 * (n_params + n_state + n_aux)]
    return dict(version=version, epoch=epoch, batch=batch, step=step, opt_t=opt_t, rng=rng,
                run_dir=run_dir, n_params=n_params, n_state=n_state, n_order=n_order,
                config=cfg, params=params, state=state)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "info":
        m = read(sys.argv[2])
        for k in ("version", "epoch", "batch", "step", "opt_t", "run_dir", "n_params", "n_state", "n_order"):
            print("%s: %s" % (k, m[k]))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "same-weights":
        a, b = read(sys.argv[2]), read(sys.argv[3])
        if a["params"] != b["params"]:
            diff = sum(x != y for x, y in zip(a["params"], b["params"]))
            print("parameters differ (%d of %d bytes)" % (diff, len(a["params"])))
            return 1
        if a["state"] != b["state"] or a["step"] != b["step"] or a["rng"] != b["rng"]:
            print("optimiser state, step or RNG state differ")
            return 1
        print("bit-identical: %d parameters, %d optimiser values, step %d" % (a["n_params"], a["n_state"], a["step"]))
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())

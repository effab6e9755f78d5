#!/usr/bin/python3
"""ffm.py - an independent reader of ffrun model files (.ffm), for tests.

Usage: ffm.py info MODEL            print the header fields (and the run record)
       ffm.py same-weights A B      exit 0 iff A and B hold bit-identical parameters,
                                    optimiser state and softmax head (with its state)
       ffm.py patch IN OUT FIELD=VALUE...
                                    write IN with header fields or sample-order entries
                                    replaced and a correct CRC (crafted files for tests):
                                    epoch, batch (u32), step, opt_t, head_t (u64; negative
                                    values as two's complement), rng=0 (all-zero state),
                                    order.I=V (entry I of the sample order),
                                    record=TEXT (the run record, "" for none), version=2
                                    (rewritten as format 2: no record field),
                                    config=OLD->NEW (the first OLD in the stored config
                                    text replaced by NEW: a config the weights do not fit)
Reads format versions 1 (104-byte header, no head), 2 (128-byte header: n_head,
n_head_state, head_t after n_aux; the head's floats after the aux state) and 3 (136-byte
header: record_len and a reserved u32 after head_t; the run record, JSON, after the run
directory).
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
    return read_bytes(open(path, "rb").read(), path)


def read_bytes(data, path):
    if data[:8] != b"FFRUNMDL":
        sys.exit("%s: bad magic" % path)
    (version, cfg_len, n_params, n_state, epoch, batch, step, opt_t) = struct.unpack_from("<IIQQIIQQ", data, 8)
    rng = struct.unpack_from("<4Q", data, 56)
    dir_len, n_order, n_aux = struct.unpack_from("<IIQ", data, 88)
    if version not in (1, 2, 3):
        sys.exit("%s: unknown version %d" % (path, version))
    header, n_head, n_head_state, head_t, rec_len = 104, 0, 0, 0, 0
    if version >= 2:
        header = 128
        n_head, n_head_state, head_t = struct.unpack_from("<QQQ", data, 104)
    if version == 3:
        header = 136
        rec_len, reserved = struct.unpack_from("<II", data, 128)
        if reserved:
            sys.exit("%s: reserved header field is %d" % (path, reserved))
    want = header + cfg_len + dir_len + rec_len + 4 * (n_params + n_state + n_aux + n_head + n_head_state + n_order) + 4
    if len(data) != want:
        sys.exit("%s: version %d, %d bytes, header says %d" % (path, version, len(data), want))
    if struct.unpack_from("<I", data, len(data) - 4)[0] != crc32c(data[:-4]):
        sys.exit("%s: CRC-32C mismatch" % path)
    off = header
    cfg = data[off:off + cfg_len].decode()
    off += cfg_len
    run_dir = data[off:off + dir_len].decode()
    off += dir_len
    record = data[off:off + rec_len].decode()
    off += rec_len
    rest = off
    params = data[off:off + 4 * n_params]
    off += 4 * n_params
    state = data[off:off + 4 * (n_state + n_aux)]
    off += 4 * (n_state + n_aux)
    head = data[off:off + 4 * (n_head + n_head_state)]
    return dict(version=version, epoch=epoch, batch=batch, step=step, opt_t=opt_t, rng=rng,
                run_dir=run_dir, n_params=n_params, n_state=n_state, n_order=n_order,
                n_head=n_head, n_head_state=n_head_state, head_t=head_t,
                config=cfg, params=params, state=state, head=head, record=record,
                header=header, cfg_len=cfg_len, dir_len=dir_len, rest=rest)


FIELDS = {"epoch": (32, "<I"), "batch": (36, "<I"), "step": (40, "<Q"), "opt_t": (48, "<Q"),
          "head_t": (120, "<Q")}


def patch(src, dst, assignments):
    m = read(src)  # checks the input
    data = bytearray(open(src, "rb").read())
    for a in assignments:
        key, _, value = a.partition("=")
        v = int(value, 0) if key not in ("record", "config") else 0
        order_off = len(data) - 4 - 4 * m["n_order"]
        body = m["header"] + m["cfg_len"] + m["dir_len"]  # where the record starts
        if key in FIELDS:
            off, fmt = FIELDS[key]
            struct.pack_into(fmt, data, off, v % (1 << (8 * struct.calcsize(fmt))))
        elif key == "rng" and v == 0:
            struct.pack_into("<4Q", data, 56, 0, 0, 0, 0)
        elif key.startswith("order.") and int(key[6:]) < m["n_order"]:
            struct.pack_into("<I", data, order_off + 4 * int(key[6:]), v % (1 << 32))
        elif key == "config" and "->" in value:
            old, new = (x.encode() for x in value.split("->", 1))
            header, cfg_len = m["header"], m["cfg_len"]
            cfg = bytes(data[header:header + cfg_len])
            if old not in cfg:
                sys.exit("ffm.py patch: %r not in the config" % old)
            cfg = cfg.replace(old, new, 1)
            data[header:header + cfg_len] = cfg
            struct.pack_into("<I", data, 12, len(cfg))
        elif key == "record" and m["version"] == 3:
            data = (data[:128] + struct.pack("<I", len(value.encode())) + data[132:body] +
                    value.encode() + data[m["rest"]:])
        elif key == "version" and v == 2 and m["version"] == 3:
            data = (data[:8] + struct.pack("<I", 2) + data[12:128] + data[136:body] +
                    data[m["rest"]:])
        else:
            sys.exit("ffm.py patch: cannot set %s" % a)
        struct.pack_into("<I", data, len(data) - 4, crc32c(bytes(data[:-4])))
        m = read_bytes(bytes(data), src)
    open(dst, "wb").write(bytes(data))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "patch":
        patch(sys.argv[2], sys.argv[3], sys.argv[4:])
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "info":
        m = read(sys.argv[2])
        for k in ("version", "epoch", "batch", "step", "opt_t", "run_dir", "n_params", "n_state",
                  "n_head", "n_head_state", "head_t", "n_order", "record"):
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
        if a["head"] != b["head"] or a["head_t"] != b["head_t"]:
            print("softmax heads differ (%d and %d floats, %d and %d steps)" %
                  (a["n_head"], b["n_head"], a["head_t"], b["head_t"]))
            return 1
        print("bit-identical: %d parameters, %d optimiser values, %d head values, step %d" %
              (a["n_params"], a["n_state"], a["n_head"] + a["n_head_state"], a["step"]))
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())

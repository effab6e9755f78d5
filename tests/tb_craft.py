#!/usr/bin/python3
"""tb_craft.py - writes hand-made TensorBoard event files from a line script, for
the verifier tests (tests/t_tb_sessions.sh). Independent of the C code: Python
protobuf classes generated from proto/*.proto and the CRC of tests/tb_reader.py.

Usage: tb_craft.py < SCRIPT    one command per line, '#' starts a comment:
  file PATH               start a new event file (parents created), whose first
                          record is Event{file_version "brain.Event:2"}
  start STEP              Event{step, session_log{status START}}
  scalars TAG FROM TO     simple_value points at steps FROM..TO (inclusive)
  scalar TAG STEP VALUE   one simple_value point
  histo TAG STEP          a small legacy histogram
  image TAG STEP          a 2x2 grey PNG
  hparams_start           _hparams_/session_start_info {lr: 0.1} at step 0
  end STATUS STEP         _hparams_/session_end_info (1 success, 2 failure)
"""
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tb_reader import PROTO_DIR, load_protos, masked_crc32c  # noqa: E402

event_pb2, summary_pb2, tensor_pb2, hparams_pb2, _ = load_protos(PROTO_DIR)


def frame(payload):
    head = struct.pack("<Q", len(payload))
    return head + struct.pack("<I", masked_crc32c(head)) + payload + struct.pack("<I", masked_crc32c(payload))


def png_grey(w, h):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(range(w)) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def hparams_value(tag, data):
    v = summary_pb2.Summary.Value(tag=tag)
    v.metadata.plugin_data.plugin_name = "hparams"
    v.metadata.plugin_data.content = data.SerializeToString()
    v.tensor.dtype = tensor_pb2.DT_FLOAT
    v.tensor.tensor_shape.dim.add(size=0)
    return v


def main():
    out = None
    wall = 1700000000.0

    def emit(ev):
        nonlocal wall
        wall += 1.0
        ev.wall_time = wall
        out.write(frame(ev.SerializeToString()))

    def value_event(step, v):
        ev = event_pb2.Event(step=step)
        ev.summary.value.append(v)
        emit(ev)

    for lineno, line in enumerate(sys.stdin, 1):
        words = line.split("#")[0].split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        if cmd == "file":
            if out:
                out.close()
            os.makedirs(os.path.dirname(args[0]) or ".", exist_ok=True)
            out = open(args[0], "wb")
            emit(event_pb2.Event(file_version="brain.Event:2"))
        elif cmd == "start":
            ev = event_pb2.Event(step=int(args[0]))
            ev.session_log.status = event_pb2.SessionLog.START
            emit(ev)
        elif cmd == "scalars":
            for s in range(int(args[1]), int(args[2]) + 1):
                value_event(s, summary_pb2.Summary.Value(tag=args[0], simple_value=1.0 / (s + 1)))
        elif cmd == "scalar":
            value_event(int(args[1]), summary_pb2.Summary.Value(tag=args[0], simple_value=float(args[2])))
        elif cmd == "histo":
            v = summary_pb2.Summary.Value(tag=args[0])
            v.histo.min, v.histo.max, v.histo.num, v.histo.sum = 0.0, 2.0, 3.0, 3.0
            v.histo.bucket_limit.extend([1.0, 2.0])
            v.histo.bucket.extend([2.0, 1.0])
            value_event(int(args[1]), v)
        elif cmd == "image":
            v = summary_pb2.Summary.Value(tag=args[0])
            v.image.height, v.image.width, v.image.colorspace = 2, 2, 1
            v.image.encoded_image_string = png_grey(2, 2)
            value_event(int(args[1]), v)
        elif cmd == "hparams_start":
            d = hparams_pb2.HParamsPluginData(version=0)
            d.session_start_info.hparams["lr"].number_value = 0.1
            d.session_start_info.start_time_secs = wall
            value_event(0, hparams_value("_hparams_/session_start_info", d))
        elif cmd == "end":
            d = hparams_pb2.HParamsPluginData(version=0)
            d.session_end_info.status = int(args[0])
            d.session_end_info.end_time_secs = wall
            value_event(int(args[1]), hparams_value("_hparams_/session_end_info", d))
        else:
            sys.exit("tb_craft: line %d: unknown command %r" % (lineno, cmd))
    if out:
        out.close()


if __name__ == "__main__":
    main()

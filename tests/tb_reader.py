#!/usr/bin/python3
"""tb_reader.py - an independent, strict reader of TensorBoard event files.

Usage: tb_reader.py [--expect-tags TAG,...] [--allow-truncated-tail] [--scalars FILE]
                    LOGDIR_OR_FILE...

Written separately from the C code (pure-Python CRC-32C, Python protobuf, zlib
for PNG) to cross-check ffrun's writer. Python modules for proto/*.proto are
generated with protoc into a temporary directory at start-up. Checks:
  * both masked CRC-32C of every TFRecord; a truncated final record is an error
    unless --allow-truncated-tail;
  * every payload parses as tensorboard.Event with no unknown fields;
  * the first record of each file is file_version "brain.Event:2";
  * wall_time is finite; steps strictly increase per tag within a run, read
    with TensorBoard's session semantics (docs/tensorboard-format.md section 9):
    a run's files in name order; its first SessionLog START purges nothing,
    each later START at step s drops the points of every tag with step >= s,
    then steps must increase again; counts and --scalars are the kept points;
  * tensor values carry plugin metadata on the first occurrence of their tag;
  * every summary kind decodes: scalars, histograms (equal bucket/limit lengths,
    counts sum to num), images (complete PNG whose IHDR matches
    width/height/colorspace), text (DT_STRING with a shape, UTF-8),
    hparams (HParamsPluginData version 0, google.protobuf.Value hparams),
    custom_scalars (Layout with compilable regexes).
Runs are directories holding files whose basename contains "tfevents", named
relative to the given log dir (symlinks followed; a loop back to a parent
directory is skipped with a warning, as TensorBoard's data server does).
The hparams status of a run is its first session_end_info (the one TensorBoard
shows; a later one with another status is a warning); --expect-session-status
requires it in every run holding a session_start_info. --expect-tags: each tag must occur in at least
one run. Prints a per-tag summary; exits 1 on any problem, 2 on usage errors.
"""
import argparse
import atexit
import math
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "proto")


def load_protos(proto_dir):
    """Generates *_pb2.py for the top-level proto/*.proto files and imports them."""
    out = tempfile.mkdtemp(prefix="tb_reader_pb2_")
    atexit.register(shutil.rmtree, out, True)
    files = sorted(os.path.join(proto_dir, f) for f in os.listdir(proto_dir) if f.endswith(".proto"))
    subprocess.run(["protoc", "--python_out=" + out, "-I" + proto_dir] + files, check=True)
    sys.path.insert(0, out)
    import event_pb2, summary_pb2, tensor_pb2, hparams_pb2, custom_scalars_pb2  # noqa: E401
    return event_pb2, summary_pb2, tensor_pb2, hparams_pb2, custom_scalars_pb2


# ---------------------------------------------------------------- CRC-32C

def _crc_table():
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = CRC_TABLE
    for b in data:
        c = (c >> 8) ^ t[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283
assert masked_crc32c(b"\x1a\x11CRC test, one two") == 0x5794D08A


class Problems:
    def __init__(self):
        self.errors = 0
        self.warnings = 0

    def error(self, where, msg):
        self.errors += 1
        print("%s: %s" % (where, msg), file=sys.stderr)

    def warn(self, where, msg):
        self.warnings += 1
        print("%s: warning: %s" % (where, msg), file=sys.stderr)


def records(path, data, problems, allow_truncated):
    """Yields (offset, payload) of every record with both CRCs checked."""
    pos = 0
    while pos < len(data):
        where = "%s: offset %d" % (path, pos)
        if len(data) - pos < 12:
            (problems.warn if allow_truncated else problems.error)(
                where, "truncated record header (%d bytes)" % (len(data) - pos))
            return
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (stored,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if stored != masked_crc32c(header):
            problems.error(where, "bad length crc (stored 0x%08x, computed 0x%08x)"
                           % (stored, masked_crc32c(header)))
            return
        end = pos + 12 + length + 4
        if end > len(data):
            (problems.warn if allow_truncated else problems.error)(
                where, "truncated record (needs %d bytes, %d left)" % (16 + length, len(data) - pos))
            return
        payload = data[pos + 12:pos + 12 + length]
        (stored,) = struct.unpack("<I", data[end - 4:end])
        if stored != masked_crc32c(payload):
            problems.error(where, "bad data crc (stored 0x%08x, computed 0x%08x)"
                           % (stored, masked_crc32c(payload)))
        else:
            yield pos, payload
        pos = end


# ---------------------------------------------------------------- checks

def unknown_fields(msg, prefix=""):
    """Names of (sub)messages of msg that carry fields unknown to our protos."""
    found = []
    try:
        from google.protobuf import unknown_fields as uf
        n = len(uf.UnknownFieldSet(msg))
    except (ImportError, AttributeError):
        n = len(msg.UnknownFields())
    if n:
        found.append(prefix or msg.DESCRIPTOR.full_name)
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if field.label == field.LABEL_REPEATED:
            if field.message_type.GetOptions().map_entry:  # check the map's message values
                has_msg = field.message_type.fields_by_name["value"].message_type is not None
                value = list(value.values()) if has_msg else []
            for i, v in enumerate(value):
                found += unknown_fields(v, "%s.%s[%d]" % (prefix, field.name, i))
        else:
            found += unknown_fields(value, "%s.%s" % (prefix, field.name))
    return found


def check_png(img):
    """Checks a complete PNG (chunk CRCs, IHDR, IDAT size) against Summary.Image."""
    b = img.encoded_image_string
    if b[:2] == b"\xff\xd8" or b[:3] == b"GIF":
        return None
    if b[:8] != b"\x89PNG\r\n\x1a\n":
        return "image bytes are not PNG/JPEG/GIF"
    pos, ihdr, idat, seen_end = 8, None, b"", False
    while pos + 12 <= len(b):
        (n,) = struct.unpack(">I", b[pos:pos + 4])
        kind, body = b[pos + 4:pos + 8], b[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(b):
            return "PNG chunk %r truncated" % kind
        (crc,) = struct.unpack(">I", b[pos + 8 + n:pos + 12 + n])
        if crc != zlib.crc32(kind + body) & 0xFFFFFFFF:
            return "PNG chunk %r has a bad CRC" % kind
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            seen_end = True
        pos += 12 + n
    if ihdr is None or not seen_end:
        return "PNG lacks IHDR or IEND"
    w, h, depth, ctype = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    if (w, h) != (img.width, img.height):
        return "PNG is %dx%d but the summary says %dx%d" % (w, h, img.width, img.height)
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(ctype)
    if channels is None or channels != img.colorspace or depth != 8:
        return "PNG colour type %d depth %d does not match colorspace %d" % (ctype, depth, img.colorspace)
    try:
        raw = zlib.decompress(idat)
    except zlib.error as e:
        return "PNG IDAT does not inflate: %s" % e
    if len(raw) != h * (1 + w * channels):
        return "PNG holds %d raw bytes, want %d" % (len(raw), h * (1 + w * channels))
    return None


def png_tint(img):
    """For an RGB PNG whose rows are all unfiltered (filter 0): " (colour)" if some pixel
    has R, G, B not all equal, " (grey)" if none has; "" otherwise."""
    b = img.encoded_image_string
    if img.colorspace != 3 or b[:8] != b"\x89PNG\r\n\x1a\n":
        return ""
    pos, idat = 8, b""
    while pos + 12 <= len(b):
        (n,) = struct.unpack(">I", b[pos:pos + 4])
        if b[pos + 4:pos + 8] == b"IDAT":
            idat += b[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw, stride = zlib.decompress(idat), 1 + 3 * img.width
    if any(raw[r * stride] != 0 for r in range(img.height)):
        return ""
    for r in range(img.height):
        row = raw[r * stride + 1:(r + 1) * stride]
        if row[0::3] != row[1::3] or row[1::3] != row[2::3]:
            return " (colour)"
    return " (grey)"


class Reader:
    def __init__(self, pb, problems):
        (self.event_pb2, self.summary_pb2, self.tensor_pb2, self.hparams_pb2,
         self.layout_pb2) = pb
        self.problems = problems
        self.DT_STRING = self.tensor_pb2.DT_STRING
        self.DT_FLOAT = self.tensor_pb2.DT_FLOAT

    # each check_* returns (plugin, rendering of the value) or raises ValueError

    def check_histo(self, h):
        if len(h.bucket) != len(h.bucket_limit):
            raise ValueError("histogram has %d buckets but %d limits" % (len(h.bucket), len(h.bucket_limit)))
        if any(c < 0 or not math.isfinite(c) for c in h.bucket):
            raise ValueError("histogram has a negative or non-finite count")
        if any(b < a for a, b in zip(h.bucket_limit, h.bucket_limit[1:])):
            raise ValueError("histogram limits decrease")
        if abs(sum(h.bucket) - h.num) > 0.5:
            raise ValueError("histogram counts sum to %g, num is %g" % (sum(h.bucket), h.num))
        if h.num > 0 and not h.min <= h.max:
            raise ValueError("histogram min %g > max %g" % (h.min, h.max))
        return "histograms", "n=%g [%g, %g] %d buckets" % (h.num, h.min, h.max, len(h.bucket))

    def check_text(self, t):
        if t.dtype != self.DT_STRING or not t.HasField("tensor_shape"):
            raise ValueError("text is not a DT_STRING tensor with a shape")
        n = 1
        for d in t.tensor_shape.dim:
            n *= d.size
        if len(t.string_val) != n:
            raise ValueError("text tensor has %d strings for shape of %d" % (len(t.string_val), n))
        texts = [s.decode("utf-8") for s in t.string_val]
        return "text", repr(texts[0][:40]) if texts else "[]"

    def check_hparams(self, md):
        d = self.hparams_pb2.HParamsPluginData()
        d.ParseFromString(md.plugin_data.content)
        bad = unknown_fields(d)
        if bad:
            raise ValueError("hparams content has unknown fields in %s" % bad)
        if d.version != 0:
            raise ValueError("hparams plugin data version %d (want 0)" % d.version)
        kind = d.WhichOneof("data")
        if kind == "session_start_info":
            for k, v in d.session_start_info.hparams.items():
                if v.WhichOneof("kind") not in ("number_value", "string_value", "bool_value"):
                    raise ValueError("hparam %s is not a number/string/bool" % k)
            return "hparams", "session_start_info: %d hparams" % len(d.session_start_info.hparams), None
        if kind == "experiment":
            x = d.experiment
            for h in x.hparam_infos:
                if not h.name or h.type == self.hparams_pb2.DATA_TYPE_UNSET:
                    raise ValueError("experiment hparam %r lacks name or type" % h.name)
            for m in x.metric_infos:
                if not m.name.tag:
                    raise ValueError("experiment metric without a tag")
            return "hparams", "experiment: %d hparams, %d metrics" % (len(x.hparam_infos), len(x.metric_infos)), None
        if kind == "session_end_info":
            s = d.session_end_info
            if s.status not in (1, 2, 3) or not math.isfinite(s.end_time_secs):
                raise ValueError("session_end_info status %d end %r" % (s.status, s.end_time_secs))
            return "hparams", "session_end_info: status %d" % s.status, s.status
        raise ValueError("hparams plugin data holds nothing")

    def check_layout(self, t):
        if t.dtype != self.DT_STRING or not t.HasField("tensor_shape") or t.tensor_shape.dim \
                or len(t.string_val) != 1:
            raise ValueError("custom_scalars value is not a DT_STRING rank-0 tensor")
        layout = self.layout_pb2.Layout()
        layout.ParseFromString(t.string_val[0])
        if unknown_fields(layout):
            raise ValueError("layout has unknown fields")
        charts = 0
        for cat in layout.category:
            for chart in cat.chart:
                charts += 1
                for rx in chart.multiline.tag:
                    re.compile(rx)
        return "custom_scalars", "layout: %d categories, %d charts" % (len(layout.category), charts)

    def check_value(self, v):
        """Returns (plugin, is_tensor, has_metadata, rendering)."""
        md = v.metadata if v.HasField("metadata") else None
        has_md = md is not None and md.HasField("plugin_data") and md.plugin_data.plugin_name != ""
        plugin = md.plugin_data.plugin_name if has_md else ""
        kind = v.WhichOneof("value")
        if kind == "simple_value":
            return plugin or "scalars", False, has_md, "%.9g" % v.simple_value
        if kind == "histo":
            p, text = self.check_histo(v.histo)
            return plugin or p, False, has_md, text
        if kind == "image":
            err = check_png(v.image)
            if err:
                raise ValueError(err)
            im = v.image
            return plugin or "images", False, has_md, "%dx%d colorspace %d%s" % (
                im.width, im.height, im.colorspace, png_tint(im))
        if kind == "audio":
            return plugin or "audio", False, has_md, "%d bytes" % len(v.audio.encoded_audio_string)
        if kind == "tensor" or (kind is None and plugin == "hparams"):
            t = v.tensor
            if plugin == "hparams":
                return ("hparams", True, has_md, self.check_hparams(md)[1])
            if plugin == "text":
                return ("text", True, has_md, self.check_text(t)[1])
            if plugin == "custom_scalars":
                return ("custom_scalars", True, has_md, self.check_layout(t)[1])
            if plugin == "scalars":
                if t.dtype != self.DT_FLOAT or t.tensor_shape.dim:
                    raise ValueError("scalars tensor is not DT_FLOAT rank 0")
                return ("scalars", True, has_md, "%r" % (list(t.float_val) or t.tensor_content))
            return (plugin, True, has_md, "tensor dtype %d" % t.dtype)
        raise ValueError("value holds no data")

    def read_file(self, path, run, allow_truncated):
        """Checks one event file, updating the Run state in place."""
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            self.problems.error(path, "empty event file (no file_version record)")
        for index, (off, payload) in enumerate(records(path, data, self.problems, allow_truncated)):
            where = "%s: offset %d" % (path, off)
            ev = self.event_pb2.Event()
            try:
                ev.ParseFromString(payload)
            except Exception as e:  # DecodeError
                self.problems.error(where, "payload is not an Event: %s" % e)
                continue
            bad = unknown_fields(ev)
            if bad:
                self.problems.error(where, "unknown fields in %s" % bad)
            if index == 0 and (ev.WhichOneof("what") != "file_version" or ev.file_version != "brain.Event:2"):
                self.problems.error(where, "first record is not file_version \"brain.Event:2\"")
            if not math.isfinite(ev.wall_time):
                self.problems.error(where, "wall_time %r is not finite" % ev.wall_time)
            if ev.WhichOneof("what") == "session_log" and ev.session_log.status == self.event_pb2.SessionLog.START:
                run.session_start(ev.step)
            if ev.WhichOneof("what") == "summary":
                for v in ev.summary.value:
                    self.account(where, ev.step, v, run)

    def account(self, where, step, v, run):
        try:
            plugin, is_tensor, has_md, text = self.check_value(v)
        except Exception as e:  # ValueError, UnicodeDecodeError, re.error, DecodeError
            self.problems.error(where, "tag %r: %s" % (v.tag, e))
            return
        st = run.tags.get(v.tag)
        if st is None:
            if is_tensor and not has_md:
                self.problems.error(where, "tensor tag %r has no plugin metadata on its first occurrence" % v.tag)
            st = run.tags[v.tag] = {"plugin": plugin, "steps": [], "points": [], "value": ""}
        elif st["steps"] and step <= st["steps"][-1]:
            prev = st["steps"][-1]
            msg = "tag %r: step %d does not increase (previous %d)" % (v.tag, step, prev)
            if run.first_start is not None and run.restarts == 0 and 0 < run.first_start <= prev:
                msg += ("; the run's only SessionLog START (step %d) is its first, which purges "
                        "nothing: a new run writes START at step 0 so that a resumed run's START "
                        "purges" % run.first_start)
            self.problems.error(where, msg)
        st["steps"].append(step)
        if plugin == "scalars" and v.WhichOneof("value") == "simple_value":
            st["points"].append((step, v.simple_value))
        st["value"] = text
        if plugin == "hparams" and v.tag == "_hparams_/session_start_info":
            run.is_session = True
        if plugin == "hparams" and v.tag == "_hparams_/session_end_info":
            status = self.check_hparams(v.metadata)[2]
            if run.end_status is None:
                run.end_status = status
            elif status != run.end_status:
                self.problems.warn(where, "session_end_info %s at step %d is ignored by TensorBoard, "
                                   "which shows the run's first (%s)"
                                   % (STATUS_NAMES.get(status), step, STATUS_NAMES.get(run.end_status)))


STATUS_NAMES = {0: "STATUS_UNKNOWN", 1: "STATUS_SUCCESS", 2: "STATUS_FAILURE", 3: "STATUS_RUNNING"}


class Run:
    """What TensorBoard keeps of one run: per tag the kept steps (and scalar
    points), the SessionLog START history and the first session_end_info."""

    def __init__(self):
        self.tags = {}
        self.first_start = None  # step of the run's first START (purges nothing)
        self.restarts = 0        # later STARTs: each purges
        self.purged = 0
        self.end_status = None
        self.is_session = False  # holds a session_start_info

    def session_start(self, step):
        if self.first_start is None:
            self.first_start = step
            return
        self.restarts += 1
        for st in self.tags.values():
            kept = [s for s in st["steps"] if s < step]
            if len(kept) < len(st["steps"]):
                self.purged += len(st["steps"]) - len(kept)
                st["steps"] = kept
                st["points"] = [p for p in st["points"] if p[0] < step]
                st["value"] = "(newest point purged by the START at step %d)" % step


def walk_logdir(top, problems):
    """Yields (dirpath, filenames) below top, following symlinks as TensorBoard's
    data server does (walkdir, follow_links): a directory that is one of its own
    ancestors (same st_dev and st_ino) is a loop, skipped with a warning.
    (os.walk(followlinks=True) recurses forever on `ln -s . a`.)"""
    def rec(path, ancestors):
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            problems.error(path, "cannot list: %s" % e)
            return
        files, subdirs = [], []
        for name in names:
            full = os.path.join(path, name)
            try:
                st = os.stat(full)
            except OSError:
                continue  # dangling symlink
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((full, (st.st_dev, st.st_ino)))
            elif stat.S_ISREG(st.st_mode):
                files.append(name)
        yield path, files
        for full, ident in subdirs:
            if ident in ancestors:
                problems.warn(full, "symlink loop (the directory contains itself), skipped")
            else:
                yield from rec(full, ancestors + [ident])
    st = os.stat(top)
    yield from rec(top, [(st.st_dev, st.st_ino)])


def find_runs(arg, problems):
    """{run name: [event file paths in lexicographic order]}."""
    if os.path.isfile(arg):
        return {os.path.dirname(arg) or ".": [arg]}
    if not os.path.isdir(arg):
        problems.error(arg, "no such file or directory")
        return {}
    runs = {}
    for dirpath, files in walk_logdir(arg, problems):
        ev = sorted(f for f in files if "tfevents" in f and not f.endswith(".profile-empty"))
        if ev:
            rel = os.path.relpath(dirpath, arg)
            runs[rel] = [os.path.join(dirpath, f) for f in ev]
    if not runs:
        problems.error(arg, "no event files found")
    return runs


def main():
    ap = argparse.ArgumentParser(description="Strict TensorBoard event-file reader.")
    ap.add_argument("--expect-tags", default="", help="comma-separated tags that must occur")
    ap.add_argument("--allow-truncated-tail", action="store_true",
                    help="treat a truncated final record as a warning")
    ap.add_argument("--proto-dir", default=PROTO_DIR, help="directory with the .proto files")
    ap.add_argument("--scalars", metavar="FILE",
                    help="also write every scalar point as 'run tag step value' lines to FILE")
    ap.add_argument("--expect-session-status", metavar="STATUS",
                    choices=["unknown", "success", "failure", "running", "none"],
                    help="every run with a session_start_info must show this hparams status "
                         "(its first session_end_info; none: it has no session_end_info)")
    ap.add_argument("paths", nargs="+", metavar="LOGDIR_OR_FILE")
    args = ap.parse_args()
    problems = Problems()
    reader = Reader(load_protos(args.proto_dir), problems)
    seen = set()
    points = []
    for arg in args.paths:
        for run, files in sorted(find_runs(arg, problems).items()):
            state = Run()
            for path in files:
                reader.read_file(path, state, args.allow_truncated_tail)
            print("run %s (%d file%s)" % (run, len(files), "" if len(files) == 1 else "s"))
            if state.first_start is not None:
                print("  sessions: first SessionLog START at step %d, %d restart(s) purging %d point(s)"
                      % (state.first_start, state.restarts, state.purged))
            status = "none" if state.end_status is None else STATUS_NAMES.get(state.end_status, "?")
            if state.is_session or state.end_status is not None:
                print("  hparams status: %s (the run's first session_end_info)" % status)
            for tag, st in sorted(state.tags.items(), key=lambda kv: (kv[1]["plugin"], kv[0])):
                steps = "steps %d..%d" % (st["steps"][0], st["steps"][-1]) if st["steps"] else "no steps"
                print("  %-40s %-15s %6d  %s  %s" % (tag, st["plugin"], len(st["steps"]), steps, st["value"]))
            seen.update(state.tags)
            for tag, st in sorted(state.tags.items()):
                points.extend("%s %s %d %r" % (run, tag, step, val) for step, val in st["points"])
            want = args.expect_session_status
            if want and state.is_session and status.replace("STATUS_", "").lower() != want:
                problems.error("run %s" % run, "hparams status %s, expected %s" % (status, want))
    if args.scalars:
        with open(args.scalars, "w") as f:
            f.write("".join(line + "\n" for line in points))
    for tag in filter(None, args.expect_tags.split(",")):
        if tag not in seen:
            problems.error("expect-tags", "tag %r not found" % tag)
    if problems.errors:
        print("tb_reader: %d problem(s)" % problems.errors, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

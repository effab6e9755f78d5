#!/usr/bin/python3
"""same-events.py - two runs' TensorBoard event files hold the same records.

Usage: same-events.py RUN_DIR_A RUN_DIR_B

Both directories are walked for runs (directories holding files whose name
contains "tfevents"; time stamps in their names blanked); each run must have as many
event files in both, each file of A matching one of B (a sweep's run directory
holds the sweep's file and the run's): read record by record with
tests/tb_reader.py's CRC checks and the project's proto/*.proto, every Event field
must be equal, in order, except what depends on when or by what code the run was
made: wall_time, the HParams experiment's and sessions' times, the run-record text
(tag "run": commit, host, time), speeds and durations (sweep/images_per_sec) and the
time stamps of run directories named in texts; run both in directories with the same
relative paths. Used to show that a refactoring changed no output
(tools/same-runs.sh). Exit 0 when equal, 1 with the first difference printed, 2 on
usage errors.
"""
import difflib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import tb_reader  # noqa: E402

event_pb2, summary_pb2, tensor_pb2, hparams_pb2, _ = tb_reader.load_protos(tb_reader.PROTO_DIR)
VOLATILE_TEXT = {"run"}  # the run record (commit, host, times)
STAMP = re.compile(rb"[0-9]{8}-[0-9]{6}")  # run directories: <YYYYmmdd-HHMMSS>[_name]
NO_STAMP = b"00000000-000000"
TIMED = re.compile(r"per_sec|seconds")  # speeds and durations: the clock's, not the run's


def runs_of(top):
    """{run directory relative to top, time stamps blanked: [event files]}"""
    runs = {}
    for d, _, files in os.walk(top):
        rel = STAMP.sub(NO_STAMP, os.path.relpath(d, top).encode()).decode()
        runs.setdefault(rel, []).extend(os.path.join(d, f) for f in sorted(files) if "tfevents" in f)
    return {k: v for k, v in runs.items() if v}


def normalised(payload):
    ev = event_pb2.Event()
    ev.ParseFromString(payload)
    ev.wall_time = 0
    for v in ev.summary.value:
        if v.tag in VOLATILE_TEXT:
            v.ClearField("tensor")
        if TIMED.search(v.tag):
            v.simple_value = 0
        for i, sv in enumerate(v.tensor.string_val):  # run directories' time stamps
            v.tensor.string_val[i] = STAMP.sub(NO_STAMP, sv)
        if v.metadata.plugin_data.plugin_name == "hparams" and v.metadata.plugin_data.content:
            d = hparams_pb2.HParamsPluginData()
            d.ParseFromString(v.metadata.plugin_data.content)
            if d.HasField("session_start_info"):
                d.session_start_info.start_time_secs = 0
            if d.HasField("experiment"):
                d.experiment.time_created_secs = 0
            if d.HasField("session_end_info"):
                d.session_end_info.end_time_secs = 0
            # a stamp in a string value: the same length, so the encoding stays valid
            v.metadata.plugin_data.content = STAMP.sub(NO_STAMP, d.SerializeToString(deterministic=True))
    return ev


def text_of(ev):
    """ev as text, with the HParams plugin data decoded (so a diff shows the field)"""
    out = [str(ev)]
    for v in ev.summary.value:
        if v.metadata.plugin_data.plugin_name == "hparams":
            d = hparams_pb2.HParamsPluginData()
            d.ParseFromString(v.metadata.plugin_data.content)
            out.append(str(d))
    return "".join(out)


def records_of(path):
    problems = tb_reader.Problems()
    data = open(path, "rb").read()
    out = [(off, normalised(payload)) for off, payload in tb_reader.records(path, data, problems, False)]
    if problems.errors:
        sys.exit("%s: %d broken records" % (path, problems.errors))
    return out


def first_difference(a, b):
    """None if event files a and b hold the same records, else what differs"""
    ra, rb = records_of(a), records_of(b)
    for i, (x, y) in enumerate(zip(ra, rb)):
        if x[1] != y[1]:
            return "record %d (offset %d vs %d) differs:\n%s" % (i, x[0], y[0], "".join(list(
                difflib.unified_diff(text_of(x[1]).splitlines(True), text_of(y[1]).splitlines(True),
                                     "A", "B", n=1))[:40]))
    if len(ra) != len(rb):
        return "%d records against %d (the first %d equal)" % (len(ra), len(rb), min(len(ra), len(rb)))
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    a, b = runs_of(sys.argv[1]), runs_of(sys.argv[2])
    if sorted(a) != sorted(b):
        print("runs differ: %s against %s" % (sorted(a), sorted(b)))
        return 1
    files = records = 0
    for run in sorted(a):
        if len(a[run]) != len(b[run]):
            print("%s: %d event files against %d" % (run, len(a[run]), len(b[run])))
            return 1
        left = list(b[run])  # several writers (a sweep and its run): match each file
        for fa in a[run]:
            diffs = [(first_difference(fa, fb), fb) for fb in left]
            same = [fb for d, fb in diffs if d is None]
            if not same:
                print("%s: no event file of B matches %s; against %s:\n%s" %
                      (run, os.path.basename(fa), os.path.basename(diffs[0][1]), diffs[0][0]))
                return 1
            left.remove(same[0])
            files += 1
            records += len(records_of(fa))
    print("same: %d records in %d event files of %d runs" % (records, files, len(a)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""TensorBoard event files of trainer/tensorboard.h read back by tools outside our code.

The writer (write_events, $RL_WRITE_EVENTS) turns metrics.jsonl lines into an event file as a
run with run.tensorboard does. The file is read here twice, independently of the C++ code:
  * TFRecord framing with Python's struct and a CRC-32C written from its definition
    (Castagnoli, reflected polynomial 0x82F63B78; masked as TFRecord masks it), and the Event
    protobuf walked with a wire-format decoder of our own;
  * the Event through Google's protobuf runtime (Debian's python3-protobuf), its message types
    built from the field numbers and types of TensorBoard's tensorboard/compat/proto/event.proto
    and summary.proto (Apache-2.0): only the fields the writer uses.
The file must start with the file_version and a SessionLog START at the first line's step; every
number of every line must then come back as that number rounded to float32, tagged
"train/<key>" ("eval/<key>" kept), at the line's step.
"""

import json
import math
import os
import pathlib
import struct
import subprocess

import pytest

FIXTURE = pathlib.Path(__file__).resolve().parent.parent / "cli" / "plot_run" / "metrics.jsonl"


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_events(tmp_path, lines):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    out = subprocess.run([os.environ["RL_WRITE_EVENTS"], str(metrics), str(tmp_path / "tb")],
                         check=True, capture_output=True, text=True)
    path = pathlib.Path(out.stdout.strip())
    assert path.parent == tmp_path / "tb"
    assert path.name.startswith("events.out.tfevents.")
    return path


def records(path):
    """The data of every TFRecord, both CRCs checked."""
    data = path.read_bytes()
    pos, out = 0, []
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert length_crc == masked_crc32c(header), f"record {len(out)}: length CRC"
        body = data[pos + 12:pos + 12 + length]
        (body_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert body_crc == masked_crc32c(body), f"record {len(out)}: data CRC"
        out.append(body)
        pos += 16 + length
    assert pos == len(data)
    return out


def fields(data):
    """(field number, wire type, value) of a protobuf message, values raw."""
    pos = 0

    def varint():
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire == 1:
            yield number, wire, data[pos:pos + 8]
            pos += 8
        elif wire == 2:
            n = varint()
            yield number, wire, data[pos:pos + n]
            pos += n
        elif wire == 5:
            yield number, wire, data[pos:pos + 4]
            pos += 4
        else:
            raise AssertionError(f"wire type {wire}")


def decode_with_struct(body):
    """An Event as (wall_time, step, file_version, [(tag, value)], session_log status)."""
    wall_time, step, version, values, status = None, 0, None, [], None
    for number, wire, raw in fields(body):
        if (number, wire) == (1, 1):
            (wall_time,) = struct.unpack("<d", raw)
        elif (number, wire) == (2, 0):
            step = raw
        elif (number, wire) == (3, 2):
            version = raw.decode("utf-8")
        elif (number, wire) == (5, 2):
            for n, w, value in fields(raw):
                assert (n, w) == (1, 2)
                tag, scalar = None, None
                for vn, vw, vraw in fields(value):
                    if (vn, vw) == (1, 2):
                        tag = vraw.decode("utf-8")
                    elif (vn, vw) == (2, 5):
                        (scalar,) = struct.unpack("<f", vraw)
                values.append((tag, scalar))
        elif (number, wire) == (7, 2):
            for n, w, value in fields(raw):
                assert (n, w) == (1, 0)
                status = value
        else:
            raise AssertionError(f"unexpected field {number} (wire type {wire})")
    return wall_time, step, version, values, status


def event_class():
    pytest.importorskip("google.protobuf", reason="python3-protobuf (scripts/setup) is not installed")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    T = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name="rl_test_event.proto", package="tensorboard", syntax="proto3")
    summary = f.message_type.add(name="Summary")
    value = summary.nested_type.add(name="Value")
    value.field.add(name="tag", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=T.TYPE_FLOAT, label=T.LABEL_OPTIONAL)
    summary.field.add(name="value", number=1, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                      type_name=".tensorboard.Summary.Value")
    session_log = f.message_type.add(name="SessionLog")
    status = session_log.enum_type.add(name="SessionStatus")
    for name, number in [("STATUS_UNSPECIFIED", 0), ("START", 1), ("STOP", 2), ("CHECKPOINT", 3)]:
        status.value.add(name=name, number=number)
    session_log.field.add(name="status", number=1, type=T.TYPE_ENUM, label=T.LABEL_OPTIONAL,
                          type_name=".tensorboard.SessionLog.SessionStatus")
    event = f.message_type.add(name="Event")
    event.field.add(name="wall_time", number=1, type=T.TYPE_DOUBLE, label=T.LABEL_OPTIONAL)
    event.field.add(name="step", number=2, type=T.TYPE_INT64, label=T.LABEL_OPTIONAL)
    event.field.add(name="file_version", number=3, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    event.field.add(name="summary", number=5, type=T.TYPE_MESSAGE, label=T.LABEL_OPTIONAL,
                    type_name=".tensorboard.Summary")
    event.field.add(name="session_log", number=7, type=T.TYPE_MESSAGE, label=T.LABEL_OPTIONAL,
                    type_name=".tensorboard.SessionLog")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    descriptor = pool.FindMessageTypeByName("tensorboard.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def decode_with_protobuf(body):
    event = event_class()()
    event.ParseFromString(body)
    return event.wall_time, event.step, event.file_version or None, [
        (v.tag, v.simple_value) for v in event.summary.value], (
        event.session_log.status if event.HasField("session_log") else None)


def expected_scalars(lines):
    out = []
    for line in lines:
        for key, value in line.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            tag = key if key.startswith("eval/") else "train/" + key
            out.append((line["step"], tag, struct.unpack("<f", struct.pack("<f", value))[0]))
    return out


def check_events(events, lines):
    wall_time, step, version, values, status = events[0]
    assert version == "brain.Event:2" and values == [] and status is None
    _, step, version, values, status = events[1]
    assert (step, version, values, status) == (lines[0]["step"], None, [], 1)  # SessionLog.START
    got = []
    for wall, step, version, values, status in events[2:]:
        assert version is None and len(values) == 1 and status is None
        assert wall >= wall_time
        got.append((step, values[0][0], values[0][1]))
    assert got == expected_scalars(lines)


def lines_with_edges():
    return [{"step": 1, "reward": -0.125, "flag": True, "note": "text", "missing": None, "unscorable": 3},
            {"step": 2**40, "eval/accuracy": 1e30, "rewards/accuracy.math/mean": 0.1, "ünïcode/key": 2.5}]


def test_crc32c_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # CRC-32/ISCSI's catalogue check value


@pytest.mark.parametrize("source", ["fixture", "edges"])
def test_events_through_struct_and_our_wire_decoder(tmp_path, source):
    lines = [json.loads(l) for l in FIXTURE.read_text().splitlines()] if source == "fixture" else lines_with_edges()
    events = [decode_with_struct(r) for r in records(write_events(tmp_path, lines))]
    check_events(events, lines)


@pytest.mark.parametrize("source", ["fixture", "edges"])
def test_events_through_google_protobuf(tmp_path, source):
    lines = [json.loads(l) for l in FIXTURE.read_text().splitlines()] if source == "fixture" else lines_with_edges()
    events = [decode_with_protobuf(r) for r in records(write_events(tmp_path, lines))]
    check_events(events, lines)
    assert not math.isnan(events[0][0])

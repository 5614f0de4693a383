"""The worker's two parsers of untrusted bytes, fuzzed: the frame reader
(pinfer.serve.protocol.read_frame) and the KServe v2 request parser with its binary tensor
extension (pinfer.serve.tensors.parse_v2).

Each case draws a valid input, checks that it reads back exactly (frames: kinds, JSON and
data; v2: every input's name, datatype, shape and values, in JSON and binary form, flat and
nested), then mutates it (bytes flipped, inserted, dropped, cut short; lengths and header
values changed; JSON fields deleted, retyped, reshaped) and checks the only outcomes the
parsers promise: a result that is self-consistent, or ProtocolError / TensorError with a
message, never another exception and never a hang (HANG_SECONDS).

Bounded by time and count: PF_FUZZ_SECONDS (default 2 s) and PF_FUZZ_CASES (default
1000000) for each of the two targets.  Case i of seed S draws from random.Random("S:i"):
PF_FUZZ_SEED=S sets the seed (by default a new one each run), PF_FUZZ_CASE=i replays one
case, as a failure's message says.
"""
import io
import json
import math
import os
import random
import signal
import struct
import time
import traceback

import pytest

from conftest import import_pinfer

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

import_pinfer()
from pinfer.serve import protocol, tensors  # noqa: E402

SECONDS = float(os.environ.get("PF_FUZZ_SECONDS") or 2)
MAX_CASES = int(os.environ.get("PF_FUZZ_CASES") or 1000000)
HANG_SECONDS = 10


class CaseHung(Exception):
    pass


# ---------------------------------------------------------------------------
# Drawing values


def random_json(rng, depth=0):
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice([None, True, False, rng.randint(-2 ** 40, 2 ** 40), rng.random(),
                           "", "text", "\u00e9\u4e2d\U0001f600", rng.randint(0, 9)])
    if roll < 0.7:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["a", "b", "seq", "cpus", "batch", "\u00fc"]) + str(i):
            random_json(rng, depth + 1) for i in range(rng.randint(0, 4))}


def mutate_bytes(rng, raw, log):
    """One to three byte-level changes to `raw`."""
    raw = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["flip", "insert", "delete", "cut", "byte"])
        pos = rng.randint(0, max(len(raw) - 1, 0))
        if op == "flip" and raw:
            raw[pos] ^= 1 << rng.randint(0, 7)
        elif op == "byte" and raw:
            raw[pos] = rng.randint(0, 255)
        elif op == "insert":
            raw[pos:pos] = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 8)))
        elif op == "delete" and raw:
            del raw[pos:pos + rng.randint(1, 8)]
        elif op == "cut":
            del raw[pos:]
        log.append("bytes: %s at %d" % (op, pos))
    return bytes(raw)


# ---------------------------------------------------------------------------
# Frames


def frames_case(rng, log):
    frames = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(sorted(protocol.KIND_NAMES))
        obj = random_json(rng)
        if not isinstance(obj, dict):
            obj = {"value": obj}
        data = bytes(rng.randint(0, 255) for _ in range(rng.choice([0, 0, 1, 7, 300])))
        frames.append((kind, obj, data))
    stream = b"".join(b"".join(protocol.encode_frame(*f)) for f in frames)
    log.append("frames: %r" % ([(k, len(json.dumps(o)), len(d)) for k, o, d in frames],))
    reader = io.BytesIO(stream)
    for expected in frames:
        assert protocol.read_frame(reader) == expected
    assert protocol.read_frame(reader) is None

    # Mutations: bytes anywhere, or a header field set to something else.
    if rng.random() < 0.5:
        stream = mutate_bytes(rng, stream, log)
    else:
        stream = bytearray(stream)
        field = rng.choice([0, 4, 8, 12])
        value = rng.choice([0, 1, 6, 7, 2 ** 24, 2 ** 24 + 1, 2 ** 30, 2 ** 30 + 1,
                            2 ** 32 - 1, rng.randint(0, 2 ** 32 - 1)])
        stream[field:field + 4] = struct.pack("<I", value) if field else b"PFW2"
        log.append("header field %d = %d" % (field, value))
        stream = bytes(stream)
    kinds = rng.choice([None, protocol.FROM_FRONT_END, protocol.FROM_WORKER])
    reader = io.BytesIO(stream)
    for _ in range(10):
        try:
            got = protocol.read_frame(reader, kinds)
        except protocol.ProtocolError as error:
            assert str(error) and "\n" not in str(error)
            return "refused"
        if got is None:
            return "ended"
        kind, obj, data = got
        assert kind in protocol.KIND_NAMES and (kinds is None or kind in kinds)
        assert isinstance(obj, dict) and isinstance(data, bytes)
        assert len(data) <= protocol.MAX_DATA
    return "read"


# ---------------------------------------------------------------------------
# v2 requests

VALUES = {
    "BOOL": lambda rng, n: [rng.random() < 0.5 for _ in range(n)],
    "UINT8": lambda rng, n: [rng.randint(0, 255) for _ in range(n)],
    "UINT16": lambda rng, n: [rng.randint(0, 65535) for _ in range(n)],
    "UINT32": lambda rng, n: [rng.randint(0, 2 ** 32 - 1) for _ in range(n)],
    "UINT64": lambda rng, n: [rng.randint(0, 2 ** 63 - 1) for _ in range(n)],
    "INT8": lambda rng, n: [rng.randint(-128, 127) for _ in range(n)],
    "INT16": lambda rng, n: [rng.randint(-2 ** 15, 2 ** 15 - 1) for _ in range(n)],
    "INT32": lambda rng, n: [rng.randint(-2 ** 31, 2 ** 31 - 1) for _ in range(n)],
    "INT64": lambda rng, n: [rng.randint(-2 ** 63, 2 ** 63 - 1) for _ in range(n)],
    "FP16": lambda rng, n: [float(np.float16(rng.uniform(-100, 100))) for _ in range(n)],
    "FP32": lambda rng, n: [float(np.float32(rng.uniform(-1e6, 1e6))) for _ in range(n)],
    "FP64": lambda rng, n: [rng.uniform(-1e300, 1e300) for _ in range(n)],
    "BYTES": lambda rng, n: [bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 5)))
                             .decode("latin-1") for _ in range(n)],
}


def nest(flat, shape):
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def binary_of(datatype, flat):
    if datatype == "BYTES":
        items = [s.encode("utf-8") for s in flat]
        return b"".join(struct.pack("<I", len(s)) + s for s in items)
    np_type = tensors.DATATYPES[datatype][0]
    return np.array(flat, dtype=np_type).tobytes()


def v2_case(rng, log):
    specs, blobs, expected = [], [], []
    binary = rng.random() < 0.5
    for i in range(rng.randint(1, 3)):
        datatype = rng.choice(sorted(VALUES))
        shape = [rng.randint(0, 3) for _ in range(rng.randint(0, 3))]
        flat = VALUES[datatype](rng, math.prod(shape))
        spec = {"name": "in%d" % i, "datatype": datatype, "shape": shape}
        if binary and rng.random() < 0.8:
            raw = binary_of(datatype, flat)
            spec["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            spec["data"] = nest(flat, shape) if rng.random() < 0.5 else flat
        specs.append(spec)
        expected.append((spec["name"], datatype, shape, flat))
    request = {"inputs": specs}
    if rng.random() < 0.3:
        request["id"] = "req%d" % rng.randint(0, 99)
    text = json.dumps(request).encode()
    body = text + b"".join(blobs)
    headers = {"Inference-Header-Content-Length": str(len(text))} if binary else {}
    log.append("v2: %s, %d bytes of binary" % ([(s["datatype"], s["shape"], "data" in s)
                                                 for s in specs], len(body) - len(text)))
    parsed = tensors.parse_v2(body, headers)
    for tensor, (name, datatype, shape, flat) in zip(parsed.inputs, expected):
        assert (tensor.name, tensor.datatype, tensor.shape) == (name, datatype, shape)
        if datatype == "BYTES":
            assert tensor.value == [s.encode("utf-8") for s in flat]
        else:
            assert list(tensor.value.shape) == shape
            assert tensor.value.dtype == tensors.DATATYPES[datatype][1]
            got = tensor.value.reshape(-1).tolist()
            if datatype.startswith("FP"):
                want = np.array(flat, dtype=tensors.DATATYPES[datatype][0]).tolist()
                assert got == want
            else:
                assert got == flat

    # Mutations: of the JSON (a field removed or changed), of the bytes, of the header.
    roll = rng.random()
    if roll < 0.4:
        spec = rng.choice(specs)
        key = rng.choice(["name", "datatype", "shape", "data", "parameters"])
        change = rng.choice(["delete", "json", "shape"])
        if change == "delete":
            spec.pop(key, None)
        elif change == "json":
            spec[key] = random_json(rng)
        else:
            spec["shape"] = [rng.randint(-1, 4) for _ in range(rng.randint(0, 4))]
        log.append("json: %s %s" % (change, key))
        text = json.dumps(request).encode()
        body = text + b"".join(blobs)
        if binary:
            headers = {"Inference-Header-Content-Length": str(len(text))}
    elif roll < 0.8:
        body = mutate_bytes(rng, body, log)
    else:
        value = rng.choice(["0", "-1", "abc", "", str(len(body) + 1), " 12 ", "1e3",
                            str(rng.randint(0, len(body)))])
        headers = {rng.choice(["Inference-Header-Content-Length",
                               "inference-header-content-length"]): value}
        log.append("header: %r" % value)
    try:
        parsed = tensors.parse_v2(body, headers)
    except tensors.TensorError as error:
        assert str(error) and "\n" not in str(error)
        return "refused"
    for tensor in parsed.inputs:
        count = math.prod(tensor.shape)
        if tensor.datatype == "BYTES":
            assert len(tensor.value) == count
        else:
            assert tensor.value.numel() == count
            assert tensor.value.dtype == tensors.DATATYPES[tensor.datatype][1]
    return "parsed"


# ---------------------------------------------------------------------------
# Running cases


def run_case(target, seed, index, tally):
    log = []

    def hung(signum, frame):
        raise CaseHung("the case ran for more than %d s" % HANG_SECONDS)

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        outcome = target(random.Random("%d:%d" % (seed, index)), log)
        tally[outcome] = tally.get(outcome, 0) + 1
        return
    except Exception:
        failure = traceback.format_exc(limit=-6)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    pytest.fail("%s case %d of seed %d failed:\n  %s\n%s\nreplay it: PF_FUZZ_SEED=%d "
                "PF_FUZZ_CASE=%d /usr/bin/python3 -m pytest -q -p no:cacheprovider "
                "tests/python/test_serve_fuzz.py -k %s"
                % (target.__name__, index, seed, "\n  ".join(log), failure, seed, index,
                   target.__name__), pytrace=False)


@pytest.mark.parametrize("target", [frames_case, v2_case], ids=["frames_case", "v2_case"])
def test_the_parsers_keep_their_promises(target, capsys):
    seed = os.environ.get("PF_FUZZ_SEED")
    seed = int(seed) if seed else random.SystemRandom().randrange(1 << 32)
    tally = {}
    only = os.environ.get("PF_FUZZ_CASE")
    if only:
        run_case(target, seed, int(only), tally)
        return
    deadline = time.monotonic() + SECONDS
    count = 0
    while count < MAX_CASES and (count == 0 or time.monotonic() < deadline):
        run_case(target, seed, count, tally)
        count += 1
    with capsys.disabled():
        print("\nserve fuzz %s: %d cases of seed %d in %.1f s: %s" % (
            target.__name__, count, seed, SECONDS,
            ", ".join("%s %d" % item for item in sorted(tally.items()))))


# ---------------------------------------------------------------------------
# What the fuzzing found, one case each (none yet beyond the checks above)


def test_a_frame_over_the_limits_is_refused_before_its_body_is_read():
    class Reader(io.BytesIO):
        asked = []

        def read(self, n=-1):
            self.asked.append(n)
            return super().read(n)

    for json_len, data_len in ((protocol.MAX_JSON + 1, 0), (2, protocol.MAX_DATA + 1)):
        reader = Reader(struct.pack("<4sIII", b"PFW1", protocol.BATCH, json_len, data_len))
        with pytest.raises(protocol.ProtocolError, match="the limit is"):
            protocol.read_frame(reader)
        assert reader.asked[-1] == 16
        Reader.asked = []

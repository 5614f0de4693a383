"""The frames of the worker protocol (docs/worker-protocol.md), read and written.

A frame is a 16-byte header (magic ``PFW1``, kind, JSON length, data length; the integers
u32 little-endian), a JSON object in UTF-8, and raw data the JSON refers to by offset and
length.  Both ends use this module: the worker (pinfer.serve.worker) and the tests, which
play the front end.  Nothing here knows what a batch means; it only keeps the framing and
its limits, and says what is wrong with a frame in one line (ProtocolError).
"""
import json
import os
import socket
import struct
import time

MAGIC = b"PFW1"
HEADER = struct.Struct("<4sIII")  # magic, kind, json_len, data_len
MAX_JSON = 16 << 20  # 16 MiB
MAX_DATA = 1 << 30  # 1 GiB

READY, BATCH, RESULT, PIN, PINNED, STOP = 1, 2, 3, 4, 5, 6
KIND_NAMES = {READY: "READY", BATCH: "BATCH", RESULT: "RESULT", PIN: "PIN", PINNED: "PINNED",
              STOP: "STOP"}
FROM_FRONT_END = frozenset((BATCH, PIN, STOP))
FROM_WORKER = frozenset((READY, RESULT, PINNED))


class ProtocolError(Exception):
    """A frame that breaks the protocol; str() is the one-line reason."""


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)


def decode_json(raw):
    """The JSON object of a frame (bytes) as a dict; ProtocolError if it is not one."""
    try:
        obj = json.loads(bytes(raw).decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ProtocolError("the JSON of the frame is not UTF-8") from None
    except RecursionError:
        raise ProtocolError("the JSON of the frame is nested too deeply") from None
    except ValueError as error:
        raise ProtocolError("the JSON of the frame is not valid: %s" % error) from None
    if not isinstance(obj, dict):
        raise ProtocolError("the JSON of the frame is a %s, not an object" % type(obj).__name__)
    return obj


def _read_exact(stream, n, what):
    """n bytes from `stream` (whose read(n) returns fewer only at the end of the stream)."""
    if n == 0:
        return b""
    got = stream.read(n)
    if got is None:  # a non-blocking stream with nothing to read: not ours to handle
        raise ProtocolError("the stream is non-blocking")
    if len(got) != n:
        raise ProtocolError("the connection closed inside a frame (%s: %d of %d bytes)"
                            % (what, len(got), n))
    return got


def read_frame(stream, kinds=None, arrived=None):
    """The next frame of `stream` as (kind, obj, data), or None at the end of the stream
    (no byte of a new frame).  `stream` is a binary file whose read(n) returns n bytes, or
    fewer only at the end (a buffered file: Channel.reader, io.BytesIO).  `kinds` is the
    set of kinds this end may receive (None: every kind of the protocol).  A bad magic, an
    unknown or unexpected kind, a length over the limits, a frame cut short, or JSON that
    is not an object is a ProtocolError; nothing after the bad part is read.  `arrived`, a
    list, gets time.perf_counter_ns() of the moment the header was read (the frame's
    arrival, before its JSON is decoded)."""
    head = stream.read(HEADER.size)
    if not head:
        return None
    if arrived is not None:
        arrived.append(time.perf_counter_ns())
    if len(head) != HEADER.size:
        raise ProtocolError("the connection closed inside a frame header (%d of %d bytes)"
                            % (len(head), HEADER.size))
    magic, kind, json_len, data_len = HEADER.unpack(head)
    if magic != MAGIC:
        raise ProtocolError("bad magic %r (expected %r)" % (magic, MAGIC))
    if kind not in KIND_NAMES:
        raise ProtocolError("unknown frame kind %d" % kind)
    if kinds is not None and kind not in kinds:
        raise ProtocolError("unexpected %s frame" % KIND_NAMES[kind])
    if json_len > MAX_JSON:
        raise ProtocolError("JSON of %d bytes (the limit is %d)" % (json_len, MAX_JSON))
    if data_len > MAX_DATA:
        raise ProtocolError("data of %d bytes (the limit is %d)" % (data_len, MAX_DATA))
    obj = decode_json(_read_exact(stream, json_len, "JSON"))
    data = _read_exact(stream, data_len, "data")
    return kind, obj, data


def encode_frame(kind, obj, data=b""):
    """The frame's bytes as a list of buffers (header and JSON, data); ValueError when it
    would break the limits or the JSON cannot be written (NaN, a non-string key...)."""
    if kind not in KIND_NAMES:
        raise ValueError("unknown frame kind %r" % (kind,))
    if not isinstance(obj, dict):
        raise ValueError("the JSON of a frame must be an object")
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    raw = text.encode("utf-8")
    if len(raw) > MAX_JSON:
        raise ValueError("JSON of %d bytes (the limit is %d)" % (len(raw), MAX_JSON))
    if len(data) > MAX_DATA:
        raise ValueError("data of %d bytes (the limit is %d)" % (len(data), MAX_DATA))
    return [HEADER.pack(MAGIC, kind, len(raw), len(data)) + raw, data]


class Channel(object):
    """One end of the connection: a connected socket or a file descriptor (fd 3 in the
    worker), read through a buffered reader and written whole with writev.  The channel
    does not own the descriptor unless `own` is true."""

    def __init__(self, endpoint, own=False):
        self.sock = endpoint if isinstance(endpoint, socket.socket) else None
        self.fd = endpoint.fileno() if self.sock is not None else int(endpoint)
        self.reader = open(self.fd, "rb", buffering=1 << 16, closefd=False)
        self.own = own

    def read(self, kinds=None, arrived=None):
        """read_frame() on this channel."""
        return read_frame(self.reader, kinds, arrived)

    def write(self, kind, obj, data=b""):
        """Write one frame whole (the kernel may take it in pieces: every byte is sent)."""
        buffers = [memoryview(b).cast("B") for b in encode_frame(kind, obj, data) if len(b)]
        while buffers:
            sent = os.writev(self.fd, buffers)
            while buffers and sent >= len(buffers[0]):
                sent -= len(buffers[0])
                buffers.pop(0)
            if buffers and sent:
                buffers[0] = buffers[0][sent:]

    def close(self):
        self.reader.close()
        if self.own:
            if self.sock is not None:
                self.sock.close()
            else:
                os.close(self.fd)

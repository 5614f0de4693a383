"""Tensors in and out of request bodies: the Open Inference Protocol (KServe v2) JSON
tensor format and its binary tensor extension, KServe v1 ``instances``, and the plain JSON
bodies of ``/predictions``.

Decoding is strict: a body that does not say exactly one tensor per input (a shape that
disagrees with the data, a datatype the data does not fit, an unknown datatype, binary
sizes that do not add up) is a TensorError, whose message the front end returns with
status 400.  Encoding names and shapes the outputs as the model returns them.

Datatypes and torch: BOOL, UINT8, INT8..INT64, FP16, FP32, FP64 are torch's own types;
torch 1.13 has no unsigned 16-, 32- or 64-bit type, so UINT16 becomes int32, UINT32 and
UINT64 int64 (a UINT64 value over 2**63-1 is a TensorError).  BYTES tensors are lists of
bytes objects, for handlers; they cannot be a model's input.
"""
import json
import math
import struct

import numpy as np
import torch

# datatype -> (numpy dtype of its data, little-endian; torch dtype it becomes)
DATATYPES = {
    "BOOL": (np.dtype("?"), torch.bool),
    "UINT8": (np.dtype("u1"), torch.uint8),
    "UINT16": (np.dtype("<u2"), torch.int32),
    "UINT32": (np.dtype("<u4"), torch.int64),
    "UINT64": (np.dtype("<u8"), torch.int64),
    "INT8": (np.dtype("i1"), torch.int8),
    "INT16": (np.dtype("<i2"), torch.int16),
    "INT32": (np.dtype("<i4"), torch.int32),
    "INT64": (np.dtype("<i8"), torch.int64),
    "FP16": (np.dtype("<f2"), torch.float16),
    "FP32": (np.dtype("<f4"), torch.float32),
    "FP64": (np.dtype("<f8"), torch.float64),
    "BYTES": (None, None),
}
# torch dtype of an output -> (datatype, numpy dtype of its data)
OUTPUT_TYPES = {
    torch.bool: ("BOOL", np.dtype("?")),
    torch.uint8: ("UINT8", np.dtype("u1")),
    torch.int8: ("INT8", np.dtype("i1")),
    torch.int16: ("INT16", np.dtype("<i2")),
    torch.int32: ("INT32", np.dtype("<i4")),
    torch.int64: ("INT64", np.dtype("<i8")),
    torch.float16: ("FP16", np.dtype("<f2")),
    torch.float32: ("FP32", np.dtype("<f4")),
    torch.float64: ("FP64", np.dtype("<f8")),
}
HEADER_LENGTH = "inference-header-content-length"
MAX_DIMS = 64
MAX_ELEMENTS = 1 << 31


class TensorError(ValueError):
    """A request body that does not decode to tensors; the message goes to the client."""


class OutputError(Exception):
    """Outputs that cannot be written in the request's format (the model's fault: 500)."""


class Tensor(object):
    """A decoded input: ``name``, ``datatype``, ``shape`` (a list) and ``value`` (a torch
    tensor, or for BYTES a flat list of bytes objects)."""

    __slots__ = ("name", "datatype", "shape", "value")

    def __init__(self, name, datatype, shape, value):
        self.name, self.datatype, self.shape, self.value = name, datatype, shape, value

    def __repr__(self):
        return "Tensor(%r, %s, %s)" % (self.name, self.datatype, self.shape)


def header(headers, name):
    """A request header by name, whatever the case the client wrote it in (None if absent)."""
    if not headers:
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _json(raw, what):
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except UnicodeDecodeError:
        raise TensorError("%s is not UTF-8" % what) from None
    except RecursionError:
        raise TensorError("%s is nested too deeply" % what) from None
    except ValueError as error:
        raise TensorError("%s is not JSON: %s" % (what, error)) from None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_shape(shape, where):
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or \
            not all(_is_int(d) and d >= 0 for d in shape):
        raise TensorError("%s: \"shape\" must be a list of at most %d non-negative ints, not %s"
                          % (where, MAX_DIMS, _short(shape)))
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise TensorError("%s: shape %s has %d elements (the limit is %d)"
                          % (where, shape, count, MAX_ELEMENTS))
    return count


def _short(value):
    text = json.dumps(value) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------
# Decoding data


def _nested_shape(data, where):
    """The shape of nested lists `data` (rectangular), or TensorError."""
    shape, level = [], data
    while isinstance(level, list):
        shape.append(len(level))
        if not level:
            break
        level = level[0]
    if len(shape) > MAX_DIMS:
        raise TensorError("%s: \"data\" is nested more than %d deep" % (where, MAX_DIMS))
    return shape


def _flatten_bytes(data, shape, where):
    """BYTES data given in JSON: strings, flat or nested as the shape says."""
    out = []

    def walk(level, dims):
        if dims and isinstance(level, list):
            if len(level) != dims[0]:
                raise TensorError("%s: \"data\" does not have the shape %s" % (where, shape))
            for item in level:
                walk(item, dims[1:])
        elif not dims and isinstance(level, str):
            out.append(level.encode("utf-8"))
        else:
            raise TensorError("%s: BYTES \"data\" must hold strings, shaped as %s"
                              % (where, shape))

    count = math.prod(shape)
    if isinstance(data, list) and len(data) == count and \
            all(isinstance(item, str) for item in data):
        return [item.encode("utf-8") for item in data]
    walk(data, list(shape))
    return out


def tensor_from_json(data, datatype, shape, where):
    """The value of a JSON tensor (KServe v2 "data"): a torch tensor of `shape`, or for
    BYTES a flat list of bytes.  `data` may be flat (row-major) or nested as the shape."""
    count = _check_shape(shape, where)
    if datatype == "BYTES":
        return _flatten_bytes(data, shape, where)
    np_type, torch_type = DATATYPES[datatype]
    if not isinstance(data, list) and shape:
        raise TensorError("%s: \"data\" must be a list" % where)
    try:
        array = np.asarray(data)
    except (ValueError, OverflowError):
        raise TensorError("%s: \"data\" is not a rectangular array of numbers" % where) from None
    if array.dtype == object:
        raise TensorError("%s: \"data\" is not a rectangular array of %s numbers"
                          % (where, datatype))
    if array.size != count:
        raise TensorError("%s: \"data\" has %d elements, shape %s has %d"
                          % (where, array.size, shape, count))
    # Nested data has the shape exactly; without elements, as deep as it goes ([[], []] is
    # [2, 0] or [2, 0, 5]).
    if array.ndim > 1 and list(array.shape) != (list(shape) if array.size
                                                else list(shape)[:array.ndim]):
        raise TensorError("%s: \"data\" has the shape %s, \"shape\" says %s"
                          % (where, list(array.shape), shape))
    kind = array.dtype.kind
    if array.size:
        if datatype == "BOOL" and kind != "b":
            raise TensorError("%s: BOOL \"data\" must be true or false" % where)
        if datatype.startswith(("INT", "UINT")):
            if kind not in "iu":
                raise TensorError("%s: %s \"data\" must be integers" % (where, datatype))
            info = np.iinfo(np_type)
            low, high = int(array.min()), int(array.max())
            if low < info.min or high > info.max:
                raise TensorError("%s: a value of %s is out of the range of %s"
                                  % (where, _short(low if low < info.min else high), datatype))
            if datatype == "UINT64" and high > np.iinfo(np.int64).max:
                raise TensorError("%s: UINT64 value %d is over 2**63-1 (torch has no uint64)"
                                  % (where, high))
        if datatype.startswith("FP") and kind not in "iuf":
            raise TensorError("%s: %s \"data\" must be numbers" % (where, datatype))
    try:
        with np.errstate(over="ignore"):  # a float beyond FP16/FP32 becomes inf, as in C
            converted = array.astype(np_type).reshape(shape)
    except (ValueError, OverflowError, TypeError) as error:
        raise TensorError("%s: %s" % (where, error)) from None
    return _torch_of(converted, torch_type)


def tensor_from_binary(raw, datatype, shape, where):
    """The value of a binary tensor (the binary tensor extension): row-major little-endian
    elements, BOOL one byte each (0 or 1), BYTES each a u32 LE length and its bytes."""
    count = _check_shape(shape, where)
    if datatype == "BYTES":
        out, pos, raw = [], 0, bytes(raw)
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise TensorError("%s: BYTES binary data cut inside a length" % where)
            (size,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if size > len(raw) - pos:
                raise TensorError("%s: a BYTES element of %d bytes runs past the data"
                                  % (where, size))
            out.append(raw[pos:pos + size])
            pos += size
        if len(out) != count:
            raise TensorError("%s: %d BYTES elements, shape %s has %d"
                              % (where, len(out), shape, count))
        return out
    np_type, torch_type = DATATYPES[datatype]
    if len(raw) != count * np_type.itemsize:
        raise TensorError("%s: %d bytes of binary data, shape %s of %s needs %d"
                          % (where, len(raw), shape, datatype, count * np_type.itemsize))
    if datatype == "BOOL":
        array = np.frombuffer(raw, dtype=np.uint8)
        if array.size and int(array.max()) > 1:
            raise TensorError("%s: BOOL binary data must be bytes 0 or 1" % where)
        array = array.astype(np.bool_)
    else:
        array = np.frombuffer(raw, dtype=np_type)
        if datatype == "UINT64" and array.size and int(array.max()) > np.iinfo(np.int64).max:
            raise TensorError("%s: UINT64 value %d is over 2**63-1 (torch has no uint64)"
                              % (where, int(array.max())))
    return _torch_of(array.reshape(shape), torch_type)


def _torch_of(array, torch_type):
    """A torch tensor of `torch_type` holding `array` (a copy in native byte order: numpy's
    unsigned 16-, 32- and 64-bit arrays, which torch cannot take, are widened first)."""
    native = np.dtype(torch.empty((), dtype=torch_type).numpy().dtype)
    return torch.from_numpy(np.array(array, dtype=native, order="C", copy=True))


# ---------------------------------------------------------------------------
# Requests


class V2Request(object):
    """A decoded KServe v2 inference request: ``id`` (the request's "id" or None),
    ``inputs`` (Tensors in request order), ``outputs`` (the names asked for, or None: all),
    ``binary`` ({name: True} for outputs asked in binary form), ``binary_all`` (the
    request's binary_data_output parameter)."""

    def __init__(self, id, inputs, outputs, binary, binary_all):
        self.id, self.inputs, self.outputs = id, inputs, outputs
        self.binary, self.binary_all = binary, binary_all


def _parameters(obj, where):
    params = obj.get("parameters", {})
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise TensorError("%s: \"parameters\" must be an object" % where)
    return params


def split_v2_body(body, header_length):
    """(JSON bytes, binary bytes) of a v2 body, from its Inference-Header-Content-Length
    value (None: the whole body is JSON)."""
    if header_length is None:
        return body, b""
    text = str(header_length).strip()
    if not text.isdigit():
        raise TensorError("Inference-Header-Content-Length: %r is not a length" % header_length)
    n = int(text)
    if n == 0 or n > len(body):
        raise TensorError("Inference-Header-Content-Length: %d, but the body has %d bytes"
                          % (n, len(body)))
    return body[:n], body[n:]


def parse_v2(body, headers=None):
    """A V2Request from a /v2/.../infer body and its headers: the JSON tensor format, with
    the binary tensor extension when Inference-Header-Content-Length is given."""
    json_part, binary = split_v2_body(body, header(headers, HEADER_LENGTH))
    request = _json(json_part, "the inference request")
    if not isinstance(request, dict):
        raise TensorError("the inference request must be a JSON object")
    return v2_from_json(request, binary, binary_allowed=header(headers, HEADER_LENGTH) is not None)


def v2_from_json(request, binary=b"", binary_allowed=False):
    """A V2Request from the JSON object of a request and the binary data after it."""
    params = _parameters(request, "the request")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise TensorError("the request needs \"inputs\": a non-empty list")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise TensorError("\"id\" must be a string")
    decoded, names, pos = [], set(), 0
    binary = memoryview(binary)
    for index, spec in enumerate(inputs):
        where = "inputs[%d]" % index
        if not isinstance(spec, dict):
            raise TensorError("%s must be an object" % where)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise TensorError("%s: \"name\" must be a non-empty string" % where)
        where = "input %r" % name
        if name in names:
            raise TensorError("%s is given twice" % where)
        names.add(name)
        datatype = spec.get("datatype")
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise TensorError("%s: unknown datatype %s (one of %s)"
                              % (where, _short(datatype), ", ".join(DATATYPES)))
        shape = spec.get("shape")
        _check_shape(shape, where)
        size = _parameters(spec, where).get("binary_data_size")
        if size is not None:
            if not _is_int(size) or size < 0:
                raise TensorError("%s: binary_data_size must be a non-negative int" % where)
            if not binary_allowed:
                raise TensorError("%s: binary_data_size without an Inference-Header-Content-"
                                  "Length header" % where)
            if "data" in spec:
                raise TensorError("%s: both \"data\" and binary_data_size" % where)
            if size > len(binary) - pos:
                raise TensorError("%s: binary_data_size %d runs past the %d bytes of binary "
                                  "data" % (where, size, len(binary)))
            value = tensor_from_binary(binary[pos:pos + size], datatype, shape, where)
            pos += size
        elif "data" in spec:
            value = tensor_from_json(spec["data"], datatype, shape, where)
        else:
            raise TensorError("%s: no \"data\" and no binary_data_size" % where)
        decoded.append(Tensor(name, datatype, shape, value))
    if pos != len(binary):
        raise TensorError("%d bytes of binary data after the last input's" % (len(binary) - pos))
    outputs, binary_outputs = None, {}
    wanted = request.get("outputs")
    if wanted is not None:
        if not isinstance(wanted, list):
            raise TensorError("\"outputs\" must be a list")
        outputs = []
        for index, spec in enumerate(wanted):
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise TensorError("outputs[%d] must be an object with a \"name\"" % index)
            outputs.append(spec["name"])
            flag = _parameters(spec, "outputs[%d]" % index).get("binary_data", False)
            if not isinstance(flag, bool):
                raise TensorError("outputs[%d]: binary_data must be true or false" % index)
            binary_outputs[spec["name"]] = flag
    binary_all = params.get("binary_data_output", False)
    if not isinstance(binary_all, bool):
        raise TensorError("binary_data_output must be true or false")
    return V2Request(request_id, decoded, outputs, binary_outputs, binary_all)


def _plain_tensor(value, where):
    """A tensor from plain JSON (a number or nested lists): bools -> bool, ints -> int64,
    floats -> float32 (torch's default), as torch.tensor would type them."""
    if isinstance(value, list):
        _nested_shape(value, where)
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):
        raise TensorError("%s is not a rectangular array of numbers" % where) from None
    kind = array.dtype.kind
    if kind == "b":
        return torch.from_numpy(array.copy())
    if kind in "iu":
        if kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
            raise TensorError("%s: a value is over 2**63-1" % where)
        return torch.from_numpy(array.astype(np.int64))
    if kind == "f":
        return torch.from_numpy(array.astype(np.float32))
    raise TensorError("%s is not a rectangular array of numbers (true/false, ints or floats)"
                      % where)


def parse_v1(body):
    """The inputs of a KServe v1 request, {"instances": [...]}: one batch of len(instances)
    items, as Tensors named "input__0" (instances of plain values) or by the instances'
    keys (instances that are objects, one entry per input)."""
    request = _json(body, "the request")
    if not isinstance(request, dict) or "instances" not in request:
        raise TensorError("a v1 request is an object with \"instances\"")
    instances = request["instances"]
    if not isinstance(instances, list) or not instances:
        raise TensorError("\"instances\" must be a non-empty list")
    if all(isinstance(i, dict) for i in instances):
        keys = list(instances[0])
        if not keys or any(list(i) != keys for i in instances):
            raise TensorError("every instance must have the same keys")
        columns = [(k, [i[k] for i in instances]) for k in keys]
    elif any(isinstance(i, dict) for i in instances):
        raise TensorError("instances mix objects and values")
    else:
        columns = [("input__0", instances)]
    out = []
    for name, values in columns:
        tensors = [_plain_tensor(v, "instances[%d]" % n) for n, v in enumerate(values)]
        first = tensors[0]
        for n, t in enumerate(tensors):
            if t.shape != first.shape:
                raise TensorError("instances[%d] has the shape %s, instances[0] %s"
                                  % (n, list(t.shape), list(first.shape)))
        dtype = torch.float32 if any(t.is_floating_point() for t in tensors) else first.dtype
        value = torch.stack([t.to(dtype) for t in tensors])
        out.append(Tensor(name, OUTPUT_TYPES[value.dtype][0], list(value.shape), value))
    return out


def parse_plain(body):
    """The inputs of a /predictions body for the tensor handler: a JSON number or list (one
    tensor), {"data": ..., "shape": ..., "datatype": ...} (one tensor, "shape" and
    "datatype" optional), or {"inputs": [...]} in the v2 JSON format."""
    value = _json(body, "the body")
    if isinstance(value, dict):
        if "inputs" in value:
            return v2_from_json(value).inputs
        if "data" in value:
            datatype = value.get("datatype")
            if datatype is None:
                tensor = _plain_tensor(value["data"], "\"data\"")
                if "shape" in value:
                    shape = value["shape"]
                    count = _check_shape(shape, "the body")
                    if count != tensor.numel():
                        raise TensorError("\"data\" has %d elements, shape %s has %d"
                                          % (tensor.numel(), shape, count))
                    tensor = tensor.reshape(shape)
                return [Tensor("input__0", OUTPUT_TYPES[tensor.dtype][0], list(tensor.shape),
                               tensor)]
            if not isinstance(datatype, str) or datatype not in DATATYPES:
                raise TensorError("unknown datatype %s (one of %s)"
                                  % (_short(datatype), ", ".join(DATATYPES)))
            shape = value.get("shape")
            if shape is None:
                shape = _nested_shape(value["data"], "the body")
            v = tensor_from_json(value["data"], datatype, shape, "the body")
            return [Tensor("input__0", datatype, shape, v)]
        raise TensorError("a JSON object body needs \"data\" or \"inputs\"")
    tensor = _plain_tensor(value, "the body")
    return [Tensor("input__0", OUTPUT_TYPES[tensor.dtype][0], list(tensor.shape), tensor)]


# ---------------------------------------------------------------------------
# Outputs


def name_outputs(result):
    """The model's return value as [(name, value)]: a tensor is "output__0", the items of a
    tuple or list "output__<i>", a dict's entries keep their keys; a list of strings is
    one BYTES output; Python numbers become 0-d tensors.  OutputError otherwise."""
    def value_of(item, where):
        if isinstance(item, torch.Tensor):
            return item
        if isinstance(item, (bool, int, float)):
            return torch.tensor(item)
        if isinstance(item, (list, tuple)) and item and \
                all(isinstance(s, (str, bytes)) for s in item):
            return [s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in item]
        raise OutputError("the model returned %s at %s; the tensor handler needs tensors"
                          % (type(item).__name__, where))

    if isinstance(result, dict):
        return [(str(k), value_of(v, "[%r]" % (k,))) for k, v in result.items()]
    if isinstance(result, (list, tuple)):
        if result and all(isinstance(s, (str, bytes)) for s in result):
            return [("output__0", value_of(list(result), "the output"))]
        return [("output__%d" % i, value_of(v, "[%d]" % i)) for i, v in enumerate(result)]
    return [("output__0", value_of(result, "the output"))]


def plain(value):
    """An output as plain JSON: nested lists (a float16 or bfloat16 tensor as floats), BYTES
    as strings (UTF-8, else latin-1 so that every byte survives)."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.tolist()
    return [_text(b) for b in value]


def _text(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def v2_output(name, value, binary):
    """(the JSON of one v2 output, its binary data or b"")."""
    if isinstance(value, list):  # BYTES
        out = {"name": name, "datatype": "BYTES", "shape": [len(value)]}
        if binary:
            raw = b"".join(struct.pack("<I", len(b)) + b for b in value)
            out["parameters"] = {"binary_data_size": len(raw)}
            return out, raw
        out["data"] = [_text(b) for b in value]
        return out, b""
    tensor = value.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    if tensor.dtype not in OUTPUT_TYPES:
        raise OutputError("output %r: torch type %s has no v2 datatype" % (name, tensor.dtype))
    datatype, np_type = OUTPUT_TYPES[tensor.dtype]
    out = {"name": name, "datatype": datatype, "shape": list(tensor.shape)}
    if binary:
        raw = tensor.contiguous().numpy().astype(np_type, copy=False).tobytes()
        out["parameters"] = {"binary_data_size": len(raw)}
        return out, raw
    out["data"] = tensor.reshape(-1).tolist()
    return out, b""


def encode_v2(model_name, model_version, request, request_id, outputs):
    """The body of a v2 response and its extra headers: (body, content_type, headers).
    `outputs` are [(name, value)]; those the request asked for are written (all when it
    named none), each in binary form when it asked so.  TensorError for an output name the
    model does not have."""
    available = dict(outputs)
    if request.outputs is not None:
        missing = [n for n in request.outputs if n not in available]
        if missing:
            raise TensorError("unknown output %r (the model's outputs: %s)"
                              % (missing[0], ", ".join(available)))
        chosen = [(n, available[n]) for n in request.outputs]
    else:
        chosen = outputs
    written, blobs = [], []
    for name, value in chosen:
        binary = request.binary.get(name, request.binary_all)
        out, raw = v2_output(name, value, binary)
        written.append(out)
        if raw or binary:
            blobs.append(raw)
    body = {"model_name": model_name, "model_version": model_version, "outputs": written}
    if request_id is not None:
        body["id"] = request_id
    text = json.dumps(body, separators=(",", ":")).encode("utf-8")
    if not blobs:
        return text, "application/json", {}
    return (text + b"".join(blobs), "application/octet-stream",
            {"Inference-Header-Content-Length": str(len(text))})

"""The serving worker (python -m pinfer.serve.worker) as the front end sees it.

Each test starts real worker processes, their fd 3 one end of a socketpair, and speaks
docs/worker-protocol.md to them from here: READY, BATCH -> RESULT, PIN -> PINNED, STOP,
and what a broken front end would send.  Models are made here: small traced and scripted
nets, a torchvision ResNet-18 with random weights, TorchServe archives zipped by the test
(manifest, index_to_name.json, handler files, an eager model file with a state dict) and
the same layout unpacked.  Results are compared with the model run directly
(torch.allclose).  Every wait is bounded (DEADLINE); CPUs come from os.sched_getaffinity.
"""
import base64
import contextlib
import io
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import warnings
import zipfile

import pytest

from conftest import ROOT, allowed_cpus, import_pinfer

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

pinfer = import_pinfer()
from pinfer.serve import protocol  # noqa: E402
from pinfer.serve import models as serve_models  # noqa: E402

DEADLINE = 120  # seconds any one exchange with a worker may take (model loads included)
PYTHON = "/usr/bin/python3"


# ---------------------------------------------------------------------------
# Speaking to a worker


class Timeout(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds=DEADLINE):
    def expire(signum, frame):
        raise Timeout("no answer within %d s" % seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class Worker(object):
    """A worker process and the front end's end of its socket."""

    def __init__(self, config, cpus=None, env=None):
        self.sock, child = socket.socketpair()
        fd = child.fileno()

        def setup():
            os.dup2(fd, 3)
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        environment = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"),
                           PINFER_WORKER_CONFIG=json.dumps(config)
                           if not isinstance(config, str) else config)
        environment.update(env or {})
        self.proc = subprocess.Popen([PYTHON, "-u", "-m", "pinfer.serve.worker"],
                                     env=environment, close_fds=False, preexec_fn=setup,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        child.close()
        self.channel = protocol.Channel(self.sock)
        self.pid = self.proc.pid
        self.next_batch = 0

    def read(self):
        with deadline():
            return self.channel.read(protocol.FROM_WORKER)

    def ready(self):
        kind, obj, data = self.read()
        assert kind == protocol.READY and data == b""
        assert obj["pid"] == self.pid
        return obj

    def send(self, kind, obj, data=b""):
        self.channel.write(kind, obj, data)

    def batch(self, requests):
        """Send one BATCH of (api, body[, content_type[, headers]]) tuples; the responses as
        dicts with "status", and "body", "content_type", "headers" or "error"."""
        entries, chunks, offset = [], [], 0
        for n, request in enumerate(requests):
            api, body = request[0], request[1]
            content_type = request[2] if len(request) > 2 else "application/json"
            headers = request[3] if len(request) > 3 else {}
            entries.append({"id": "r%d" % n, "api": api, "content_type": content_type,
                            "headers": headers, "offset": offset, "length": len(body)})
            chunks.append(body)
            offset += len(body)
        self.next_batch += 1
        self.send(protocol.BATCH, {"batch": self.next_batch, "requests": entries},
                  b"".join(chunks))
        kind, obj, data = self.read()
        assert kind == protocol.RESULT and obj["batch"] == self.next_batch
        assert [r["id"] for r in obj["responses"]] == [e["id"] for e in entries]
        out = []
        for r in obj["responses"]:
            item = {"status": r["status"]}
            if "error" in r:
                assert r["status"] >= 400 and "offset" not in r
                item["error"] = r["error"]
            else:
                item["body"] = data[r["offset"]:r["offset"] + r["length"]]
                item["content_type"] = r["content_type"]
                item["headers"] = r.get("headers", {})
            out.append(item)
        return out

    def one(self, api, body, content_type="application/json", headers=None):
        return self.batch([(api, body, content_type, headers or {})])[0]

    def pin(self, cpus, nodes, seq=1):
        self.send(protocol.PIN, {"seq": seq, "cpus": cpus, "nodes": nodes})
        kind, obj, data = self.read()
        assert kind == protocol.PINNED and obj["seq"] == seq
        return obj

    def stop(self):
        self.send(protocol.STOP, {})
        return self.wait()

    def wait(self):
        try:
            self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.stderr = self.proc.stderr.read().decode()
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()
        self.channel.close()
        self.sock.close()


@pytest.fixture
def workers():
    started = []

    def start(config, **kwargs):
        worker = Worker(config, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def j(value):
    return json.dumps(value).encode()


def v2_body(inputs, outputs=None, binary=False, **extra):
    """A v2 request body and its headers: inputs as (name, datatype, tensor or list)."""
    specs, blobs = [], []
    for name, datatype, value in inputs:
        spec = {"name": name, "datatype": datatype}
        if isinstance(value, torch.Tensor):
            spec["shape"] = list(value.shape)
            if binary:
                raw = value.contiguous().numpy().tobytes()
                spec["parameters"] = {"binary_data_size": len(raw)}
                blobs.append(raw)
            else:
                spec["data"] = value.reshape(-1).tolist()
        else:
            spec["shape"] = [len(value)]
            if binary:
                raw = b"".join(struct.pack("<I", len(s)) + s for s in value)
                spec["parameters"] = {"binary_data_size": len(raw)}
                blobs.append(raw)
            else:
                spec["data"] = [s.decode() for s in value]
        specs.append(spec)
    request = dict(extra, inputs=specs)
    if outputs is not None:
        request["outputs"] = outputs
    text = j(request)
    if not binary:
        return text, {}
    return text + b"".join(blobs), {"Inference-Header-Content-Length": str(len(text))}


def v2_outputs(response):
    """{name: (datatype, shape, tensor or list)} of a v2 response (JSON or binary)."""
    body, headers = response["body"], response["headers"]
    size = headers.get("Inference-Header-Content-Length")
    head, blob = (body, b"") if size is None else (body[:int(size)], body[int(size):])
    doc = json.loads(head)
    out, pos = {}, 0
    types = {"BOOL": np.bool_, "UINT8": np.uint8, "INT8": np.int8, "INT16": np.int16,
             "INT32": np.int32, "INT64": np.int64, "FP16": np.float16, "FP32": np.float32,
             "FP64": np.float64}
    for o in doc["outputs"]:
        if "data" in o:
            data = o["data"]
            value = data if o["datatype"] == "BYTES" else \
                torch.from_numpy(np.array(data, dtype=types[o["datatype"]]).reshape(o["shape"]))
        else:
            n = o["parameters"]["binary_data_size"]
            raw, pos = blob[pos:pos + n], pos + n
            value = torch.from_numpy(np.frombuffer(raw, dtype=types[o["datatype"]])
                                     .reshape(o["shape"]).copy())
        out[o["name"]] = (o["datatype"], o["shape"], value)
    assert pos == len(blob)
    return doc, out


# ---------------------------------------------------------------------------
# Models


class Identity(torch.nn.Module):
    def forward(self, x):
        return x


class Raiser(torch.nn.Module):
    def forward(self, x):
        if bool(x.sum() < 0):
            raise ValueError("negative input")
        return x * 2


class SmallNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class TwoOutputs(torch.nn.Module):
    def forward(self, x, y):
        return x + y, (x * y).sum(dim=1)


class DictOutputs(torch.nn.Module):
    def forward(self, x):
        return {"double": x * 2, "negative": -x}


def save_script(module, path, example=None):
    module.eval()
    scripted = torch.jit.trace(module, example) if example is not None else \
        torch.jit.script(module)
    scripted.save(str(path))
    return scripted


# ---------------------------------------------------------------------------
# TorchScript files and the tensor handler


def test_torchscript_identity_round_trips_every_datatype(tmp_path, workers):
    save_script(Identity(), tmp_path / "identity.pt")
    w = workers({"path": str(tmp_path / "identity.pt"), "batch_size": 8})
    ready = w.ready()
    assert ready["model"] == "identity" and ready["version"] == "1.0"
    assert ready["handler"] == "tensor" and ready["batch_size"] == 8
    assert ready["platform"] == "pytorch_torchscript" and ready["threads"] >= 1
    tensors_in = [
        ("BOOL", torch.tensor([[True, False, True]])),
        ("UINT8", torch.tensor([[0, 7, 255]], dtype=torch.uint8)),
        ("INT8", torch.tensor([[-128, 0, 127]], dtype=torch.int8)),
        ("INT16", torch.tensor([[-32768, 1, 32767]], dtype=torch.int16)),
        ("INT32", torch.tensor([[-2 ** 31, 5, 2 ** 31 - 1]], dtype=torch.int32)),
        ("INT64", torch.tensor([[-2 ** 63, 9, 2 ** 63 - 1]], dtype=torch.int64)),
        ("FP16", torch.tensor([[0.5, -1.25, 3.0]], dtype=torch.float16)),
        ("FP32", torch.rand(2, 3)),
        ("FP64", torch.rand(1, 3, dtype=torch.float64)),
    ]
    for binary in (False, True):
        requests = []
        for datatype, value in tensors_in:
            body, headers = v2_body([("x", datatype, value)], binary=binary,
                                    parameters={"binary_data_output": binary})
            requests.append(("v2", body, "application/json", headers))
        for (datatype, value), response in zip(tensors_in, w.batch(requests)):
            assert response["status"] == 200, response
            doc, outputs = v2_outputs(response)
            assert doc["model_name"] == "identity" and doc["model_version"] == "1.0"
            assert response["content_type"] == ("application/octet-stream" if binary
                                                else "application/json")
            got_type, shape, got = outputs["output__0"]
            assert got_type == datatype and shape == list(value.shape)
            assert torch.equal(got, value)
    # UINT16/32 arrive as the nearest torch type; nested data as well as flat.
    body = j({"id": "mine", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "UINT16",
                                        "data": [[1, 65535], [3, 4]]}]})
    doc, outputs = v2_outputs(w.one("v2", body))
    assert doc["id"] == "mine" and outputs["output__0"][0] == "INT32"
    assert outputs["output__0"][2].tolist() == [[1, 65535], [3, 4]]
    # KServe v1 and plain /predictions JSON
    response = w.one("v1", j({"instances": [[1.5, 2.0], [3.0, 4.0]]}))
    assert json.loads(response["body"]) == {"predictions": [[1.5, 2.0], [3.0, 4.0]]}
    assert json.loads(w.one("predictions", j([[1, 2], [3, 4]]))["body"]) == [[1, 2], [3, 4]]
    assert json.loads(w.one("predictions", j({"data": [1.0, 2.0, 3.0, 4.0], "shape": [2, 2]}))
                      ["body"]) == [[1.0, 2.0], [3.0, 4.0]]
    assert w.stop() == 0


def test_small_nets_equal_the_model_run_directly(tmp_path, workers):
    torch.manual_seed(0)
    net = SmallNet().eval()
    scripted = save_script(net, tmp_path / "net.pt", torch.rand(2, 3, 8, 8))
    two = save_script(TwoOutputs(), tmp_path / "two.pt")
    save_script(DictOutputs(), tmp_path / "dict.pt")
    w = workers({"path": str(tmp_path / "net.pt"), "model": "small", "version": "3",
                 "batch_size": 4})
    assert w.ready()["model"] == "small"
    xs = [torch.rand(n, 3, 8, 8) for n in (1, 3, 2)]
    requests = []
    for n, x in enumerate(xs):
        body, headers = v2_body([("x", "FP32", x)], binary=n % 2 == 1)
        requests.append(("v2", body, "application/json", headers))
    requests.append(("v1", j({"instances": xs[0].tolist() + xs[2].tolist()})))
    requests.append(("predictions", j(xs[1].tolist())))
    responses = w.batch(requests)
    with torch.no_grad():
        for x, response in zip(xs, responses):
            doc, outputs = v2_outputs(response)
            assert doc["model_version"] == "3"
            assert torch.allclose(outputs["output__0"][2], scripted(x), atol=1e-5)
        predictions = json.loads(responses[3]["body"])["predictions"]
        assert torch.allclose(torch.tensor(predictions), scripted(torch.cat([xs[0], xs[2]])),
                              atol=1e-5)
        assert torch.allclose(torch.tensor(json.loads(responses[4]["body"])), scripted(xs[1]),
                              atol=1e-5)
    assert w.stop() == 0

    # Two inputs by name, two outputs; a dict of outputs keeps its names.
    w = workers({"path": str(tmp_path / "two.pt")})
    w.ready()
    x, y = torch.rand(3, 4), torch.rand(3, 4)
    body, headers = v2_body([("y", "FP32", y), ("x", "FP32", x)])  # by name, not by order
    doc, outputs = v2_outputs(w.one("v2", body, headers=headers))
    expected = two(x, y)
    assert sorted(outputs) == ["output__0", "output__1"]
    assert torch.allclose(outputs["output__0"][2], expected[0])
    assert torch.allclose(outputs["output__1"][2], expected[1])
    body, headers = v2_body([("x", "FP32", x), ("y", "FP32", y)],
                            outputs=[{"name": "output__1", "parameters": {"binary_data": True}}])
    doc, outputs = v2_outputs(w.one("v2", body, headers=headers))
    assert list(outputs) == ["output__1"] and torch.allclose(outputs["output__1"][2],
                                                             expected[1])
    response = w.one("v2", v2_body([("x", "FP32", x), ("y", "FP32", y)],
                                   outputs=[{"name": "nope"}])[0])
    assert response["status"] == 400 and "nope" in response["error"]
    assert w.stop() == 0

    w = workers({"path": str(tmp_path / "dict.pt")})
    w.ready()
    x = torch.rand(2, 3)
    doc, outputs = v2_outputs(w.one("v2", v2_body([("x", "FP32", x)])[0]))
    assert torch.allclose(outputs["double"][2], x * 2)
    assert torch.allclose(outputs["negative"][2], -x)
    assert json.loads(w.one("predictions", j(x.tolist()))["body"]).keys() == {"double",
                                                                              "negative"}
    assert w.stop() == 0


def test_bad_requests_get_400_and_a_failing_model_500_and_the_worker_keeps_serving(
        tmp_path, workers):
    save_script(Raiser(), tmp_path / "raiser.pt")
    w = workers({"path": str(tmp_path / "raiser.pt"), "batch_size": 16})
    w.ready()
    good = v2_body([("x", "FP32", torch.ones(1, 2))])[0]
    x = torch.ones(2, 2)
    raw = x.numpy().tobytes()
    bad = [
        (j({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}),
         {}, "3 elements"),
        (j({"inputs": [{"name": "x", "shape": [3, 2], "datatype": "FP32",
                        "data": [[1, 2], [3, 4]]}]}), {}, "4 elements"),
        (j({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
                        "data": [[1, 2, 3], [4]]}]}), {}, "rectangular"),
        (j({"inputs": [{"name": "x", "shape": [2], "datatype": "FP8", "data": [1, 2]}]}), {},
         "unknown datatype"),
        (j({"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1.5, 2]}]}), {},
         "integers"),
        (j({"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}]}), {},
         "range"),
        (j({"inputs": [{"name": "x", "shape": [2], "datatype": "BOOL", "data": [1, 0]}]}), {},
         "true or false"),
        (j({"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["abc"]}]}), {},
         "BYTES"),
        (j({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": []}]}), {},
         "non-negative"),
        (j({"inputs": []}), {}, "non-empty"),
        (b"{not json", {}, "not JSON"),
        (b"\xff\xfe", {}, "UTF-8"),
        (j({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
                        "parameters": {"binary_data_size": 16}}]}), {},
         "Inference-Header-Content-Length"),
    ]
    head = j({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
                          "parameters": {"binary_data_size": 16}}]})
    bad += [
        (head + raw[:12], {"Inference-Header-Content-Length": str(len(head))}, "runs past"),
        (head + raw + b"x", {"Inference-Header-Content-Length": str(len(head))}, "after"),
        (head + raw, {"Inference-Header-Content-Length": "9999"}, "body has"),
        (head + raw, {"Inference-Header-Content-Length": "abc"}, "not a length"),
    ]
    requests = [("v2", body, "application/json", headers) for body, headers, _ in bad]
    requests += [("v2", good), ("v1", j({"instances": "x"})), ("v1", j([1])),
                 ("predictions", j({"nothing": 1})), ("predictions", j("text")),
                 ("graphql", good)]
    responses = w.batch(requests)
    for (body, headers, words), response in zip(bad, responses):
        assert response["status"] == 400, (body, response)
        assert words in response["error"], (words, response["error"])
    assert responses[len(bad)]["status"] == 200
    assert [r["status"] for r in responses[len(bad) + 1:]] == [400] * 5
    assert "unknown api" in responses[-1]["error"]
    # The model raises for one request of a batch: that request gets 500, the others run.
    ok = v2_body([("x", "FP32", torch.ones(1, 2))])[0]
    negative = v2_body([("x", "FP32", -10 * torch.ones(1, 2))])[0]  # the batch sums < 0
    responses = w.batch([("v2", ok), ("v2", negative), ("v2", ok)])
    assert [r["status"] for r in responses] == [200, 500, 200]
    assert "negative input" in responses[1]["error"]
    assert torch.equal(v2_outputs(responses[2])[1]["output__0"][2], 2 * torch.ones(1, 2))
    assert w.one("v2", ok)["status"] == 200
    assert w.stop() == 0


# ---------------------------------------------------------------------------
# TorchServe archives and custom handlers

CLASS_HANDLER = '''
import json
import os

import torch

from pinfer.serve import BaseHandler


class JsonRowsHandler(BaseHandler):
    """TorchServe style: preprocess, inference, postprocess; labels from self.mapping."""

    def initialize(self, context):
        super().initialize(context)
        with open("extra.txt") as f:  # an extra file, read from the model's folder
            self.extra = f.read().strip()

    def preprocess(self, data):
        rows = []
        for row in data:
            value = row.get("data") or row.get("body")
            if isinstance(value, (bytes, bytearray)):
                value = json.loads(value)
            rows.append(torch.tensor(value, dtype=torch.float32))
        return torch.stack(rows)

    def postprocess(self, out):
        results = []
        for i, scores in enumerate(out.tolist()):
            best = max(range(len(scores)), key=scores.__getitem__)
            tag = self.context.get_request_header(i, "x-tag")
            if tag == "csv":
                self.context.set_response_content_type(i, "text/csv")
                results.append(",".join("%.6f" % s for s in scores))
                continue
            results.append({"label": self.mapping[str(best)], "scores": scores, "tag": tag,
                            "rows": len(out), "extra": self.extra,
                            "gpu_id": self.context.system_properties["gpu_id"],
                            "batch_size": self.context.system_properties["batch_size"],
                            "name": self.manifest["model"]["modelName"],
                            "device": str(self.device)})
        return results
'''

MODEL_FILE = '''
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.tanh(self.fc(x))
'''

FUNCTION_HANDLER = '''
import os

import torch

_model = None


def handle(data, context):
    global _model
    if data is None:  # TorchServe calls it once with no data to initialize
        model_dir = context.system_properties["model_dir"]
        _model = torch.jit.load(os.path.join(model_dir, "net.pt"))
        return None
    out = []
    for i, row in enumerate(data):
        body = row["body"]
        if body == b"boom":
            raise RuntimeError("boom asked")
        if body == b"teapot":
            context.set_response_status(418, "I am a teapot", i)
            out.append("short and stout")
            continue
        if body == b"text":
            out.append("plain text")
            continue
        if isinstance(body, list):  # JSON arrives parsed, as TorchServe decodes it
            with torch.no_grad():
                out.append(_model(torch.tensor(body, dtype=torch.float32)).tolist())
            continue
        out.append(bytes(reversed(body)))
    return out
'''


def manifest(name, serialized, handler, model_file=None, version="2.0"):
    model = {"modelName": name, "serializedFile": serialized, "handler": handler,
             "modelVersion": version}
    if model_file:
        model["modelFile"] = model_file
    return {"createdOn": "01/01/2025 00:00:00", "runtime": "python",
            "model": model, "archiverVersion": "0.9.0"}


def make_mar(path, files):
    """A zip archive as torch-model-archiver writes one: {name: bytes or str}."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content if isinstance(content, bytes) else content.encode())
    return str(path)


def test_model_archive_with_a_class_handler_and_an_eager_model(tmp_path, workers):
    torch.manual_seed(1)
    namespace = {}
    exec(compile(MODEL_FILE, "model_def.py", "exec"), namespace)
    net = namespace["Net"]().eval()
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    labels = {"0": ["n0", "zero"], "1": "one", "2": "two"}
    mar = make_mar(tmp_path / "rows.mar", {
        "MAR-INF/MANIFEST.json": j(manifest("rows", "net_state.pth", "my_handler.py",
                                            model_file="model_def.py")),
        "net_state.pth": buffer.getvalue(),
        "model_def.py": MODEL_FILE,
        "my_handler.py": CLASS_HANDLER,
        "index_to_name.json": j(labels),
        "extra.txt": "extra file here\n",
    })
    unpack_dir = tmp_path / "unpacked"
    unpack_dir.mkdir()
    w = workers({"path": mar, "batch_size": 3, "unpack_dir": str(unpack_dir)})
    ready = w.ready()
    assert ready["model"] == "rows" and ready["version"] == "2.0"
    assert ready["handler"] == "my_handler.py"
    model_dir = ready["model_dir"]
    assert os.path.dirname(model_dir) == str(unpack_dir)
    assert stat.S_IMODE(os.stat(model_dir).st_mode) == 0o700
    xs = [torch.rand(4) for _ in range(3)]
    responses = w.batch([("predictions", j(xs[0].tolist()), "application/json", {"X-Tag": "a"}),
                         ("predictions", j(xs[1].tolist()), "application/octet-stream", {}),
                         ("predictions", j(xs[2].tolist()), "application/json",
                          {"x-tag": "csv"})])
    with torch.no_grad():
        expected = net(torch.stack(xs))
    names = {"0": "zero", "1": "one", "2": "two"}
    for n in range(2):
        body = json.loads(responses[n]["body"])
        assert responses[n]["status"] == 200
        assert responses[n]["content_type"] == "application/json"
        assert torch.allclose(torch.tensor(body["scores"]), expected[n], atol=1e-6)
        assert body["label"] == names[str(int(expected[n].argmax()))]
        assert body["rows"] == 3 and body["extra"] == "extra file here"
        assert body["gpu_id"] is None and body["batch_size"] == 3
        assert body["name"] == "rows" and body["device"] == "cpu"
    assert json.loads(responses[0]["body"])["tag"] == "a"  # header names in any case
    assert json.loads(responses[1]["body"])["tag"] is None
    assert responses[2]["content_type"] == "text/csv"
    assert [float(v) for v in responses[2]["body"].decode().split(",")] == \
        pytest.approx(expected[2].tolist(), abs=1e-5)
    # v1 instances are rows of one handle() call; v2 goes to the handler's model as tensors.
    response = w.one("v1", j({"instances": [xs[0].tolist(), xs[1].tolist()]}))
    predictions = json.loads(response["body"])["predictions"]
    assert [p["rows"] for p in predictions] == [2, 2]
    doc, outputs = v2_outputs(w.one("v2", v2_body([("x", "FP32", torch.stack(xs))])[0]))
    assert torch.allclose(outputs["output__0"][2], expected, atol=1e-6)
    assert w.stop() == 0
    assert not os.path.exists(model_dir), "the unpacked archive is removed at exit"


def test_unpacked_layout_with_a_function_handler(tmp_path, workers):
    torch.manual_seed(2)
    folder = tmp_path / "fn_model"
    (folder / "MAR-INF").mkdir(parents=True)
    scripted = save_script(torch.nn.Linear(2, 2), folder / "net.pt", torch.rand(1, 2))
    (folder / "MAR-INF" / "MANIFEST.json").write_bytes(j(manifest("fn", "net.pt", "handler")))
    (folder / "handler.py").write_text(FUNCTION_HANDLER)
    w = workers({"path": str(folder), "batch_size": 8})
    ready = w.ready()
    assert ready["model"] == "fn" and ready["handler"] == "handler"
    assert ready["platform"] == "torchserve_handler"
    responses = w.batch([("predictions", b"abc", "application/octet-stream"),
                         ("predictions", j([[1.0, 2.0]])),
                         ("predictions", b"text", "application/octet-stream"),
                         ("predictions", b"teapot", "application/octet-stream")])
    assert responses[0] == {"status": 200, "body": b"cba", "headers": {},
                            "content_type": "application/octet-stream"}
    with torch.no_grad():
        assert torch.allclose(torch.tensor(json.loads(responses[1]["body"])),
                              scripted(torch.tensor([[1.0, 2.0]])))
    assert responses[2]["body"] == b"plain text"
    assert responses[2]["content_type"].startswith("text/plain")
    assert responses[3] == {"status": 418, "error": "I am a teapot"}
    # A handler that raises: 500 for the whole batch it was given, and the worker goes on.
    responses = w.batch([("predictions", b"xyz", "application/octet-stream"),
                         ("predictions", b"boom", "application/octet-stream")])
    assert [r["status"] for r in responses] == [500, 500]
    assert "boom asked" in responses[1]["error"]
    assert w.one("predictions", b"ok", "application/octet-stream")["body"] == b"ko"
    assert w.stop() == 0


# ---------------------------------------------------------------------------
# image_classifier


def image_bytes(image, fmt):
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_image_classifier_on_resnet18_with_random_weights(tmp_path, workers):
    from PIL import Image
    from torchvision import models, transforms
    torch.manual_seed(3)
    net = models.resnet18(weights=None).eval()
    scripted = save_script(net, tmp_path / "resnet18.pt", torch.rand(1, 3, 224, 224))
    labels = {str(i): ["n%08d" % i, "class %d" % i] for i in range(1000)}
    mar = make_mar(tmp_path / "resnet18.mar", {
        "MAR-INF/MANIFEST.json": j(manifest("resnet-18", "resnet18.pt", "image_classifier",
                                            version="1.0")),
        "resnet18.pt": (tmp_path / "resnet18.pt").read_bytes(),
        "index_to_name.json": j(labels),
    })
    w = workers({"path": mar, "batch_size": 8})
    ready = w.ready()
    assert ready["model"] == "resnet-18" and ready["handler"] == "image_classifier"
    rng = np.random.RandomState(0)
    images = [
        image_bytes(Image.fromarray(rng.randint(0, 255, (200, 300, 3), dtype=np.uint8)), "JPEG"),
        image_bytes(Image.fromarray(rng.randint(0, 255, (80, 64, 4), dtype=np.uint8)), "PNG"),
        image_bytes(Image.fromarray(rng.randint(0, 255, (256, 256), dtype=np.uint8)), "PNG"),
        image_bytes(Image.fromarray(rng.randint(0, 255, (10, 12, 3), dtype=np.uint8)), "JPEG"),
    ]
    processing = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                                     transforms.ToTensor(),
                                     transforms.Normalize([0.485, 0.456, 0.406],
                                                          [0.229, 0.224, 0.225])])
    batch = torch.stack([processing(Image.open(io.BytesIO(b)).convert("RGB")) for b in images])
    with torch.no_grad():
        probabilities = torch.softmax(scripted(batch), dim=1)
    requests = [("predictions", b, "image/jpeg" if n % 3 == 0 else "image/png")
                for n, b in enumerate(images)]
    requests.insert(2, ("predictions", b"\x89PNG\r\n\x1a\nnot really", "image/png"))
    requests.append(("v1", j({"instances": [{"data": base64.b64encode(images[0]).decode()},
                                            base64.b64encode(images[3]).decode()]})))
    responses = w.batch(requests)
    assert responses[2]["status"] == 400 and "undecodable image" in responses[2]["error"]
    del responses[2]

    def check(top, row):
        assert len(top) == 5
        expected_p, expected_i = torch.topk(probabilities[row], 5)
        assert list(top) == ["class %d" % i for i in expected_i.tolist()]
        assert torch.allclose(torch.tensor(list(top.values())), expected_p, atol=1e-5)

    for n in range(4):
        assert responses[n]["status"] == 200, responses[n]
        check(json.loads(responses[n]["body"]), n)
    predictions = json.loads(responses[4]["body"])["predictions"]
    check(predictions[0], 0)
    check(predictions[1], 3)
    # v2 reaches the same model as tensors: logits in, logits out.
    body, headers = v2_body([("input", "FP32", batch[:2])], binary=True,
                            parameters={"binary_data_output": True})
    doc, outputs = v2_outputs(w.one("v2", body, headers=headers))
    with torch.no_grad():
        assert torch.allclose(outputs["output__0"][2], scripted(batch[:2]), atol=1e-4)
    assert w.stop() == 0


def test_image_classifier_without_labels_answers_class_indices(tmp_path, workers):
    from PIL import Image
    torch.manual_seed(4)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(3, 3))
    save_script(net, tmp_path / "tiny.pt", torch.rand(1, 3, 224, 224))
    mar = make_mar(tmp_path / "tiny.mar", {
        "MAR-INF/MANIFEST.json": j(manifest("tiny", "tiny.pt", "image_classifier")),
        "tiny.pt": (tmp_path / "tiny.pt").read_bytes(),
    })
    w = workers({"path": mar})
    w.ready()
    image = image_bytes(Image.new("RGB", (240, 240), (200, 10, 10)), "PNG")
    top = json.loads(w.one("predictions", image, "image/png")["body"])
    assert sorted(top) == ["0", "1", "2"]  # 3 classes: top 5 is all of them
    assert sum(top.values()) == pytest.approx(1.0, abs=1e-5)
    assert w.stop() == 0


# ---------------------------------------------------------------------------
# Archives that must not load


def zip_with(path, entries):
    """A zip archive with entries given as (ZipInfo or name, bytes)."""
    with zipfile.ZipFile(path, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": what one test wants
        for info, content in entries:
            z.writestr(info, content)
    return str(path)


def symlink_entry(name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


@pytest.mark.parametrize("bad", ["dotdot", "absolute", "symlink"])
def test_unsafe_archives_answer_ready_with_an_error(tmp_path, workers, bad):
    good = [("MAR-INF/MANIFEST.json", j(manifest("m", "m.pt", "tensor"))), ("m.pt", b"x")]
    store = tmp_path / "store"
    store.mkdir()
    entry = {"dotdot": ("../escaped.txt", b"out"),
             "absolute": (str(tmp_path / "absolute.txt"), b"out"),
             "symlink": symlink_entry("link", str(tmp_path / "target"))}[bad]
    mar = zip_with(store / "bad.mar", good + [entry])
    unpack_dir = tmp_path / "unpack"
    unpack_dir.mkdir()
    w = workers({"path": mar, "unpack_dir": str(unpack_dir)})
    ready = w.ready()
    assert set(ready) == {"pid", "error"}
    assert {"dotdot": "'..'", "absolute": "absolute", "symlink": "symbolic link"}[bad] in \
        ready["error"]
    assert w.wait() == 1
    assert not os.path.exists(tmp_path / "escaped.txt")
    assert not os.path.exists(store / "escaped.txt")
    assert not os.path.exists(tmp_path / "absolute.txt")
    assert os.listdir(unpack_dir) == [], "the private folder is removed"


@pytest.mark.parametrize("entries, words", [
    ([("MAR-INF/MANIFEST.json", None), ("a/../../x", b"")], "'..'"),
    ([("MAR-INF/MANIFEST.json", None), ("C:/x", b"")], "absolute"),
    ([("MAR-INF/MANIFEST.json", None), ("a\\..\\x", b"")], "backslash"),
    ([("MAR-INF/MANIFEST.json", None), ("x", b"1"), ("x", b"2")], "twice"),
    ([("MAR-INF/MANIFEST.json", None), ("big", b"\0" * 5000)], "more than 4096 bytes"),
])
def test_unpack_archive_refuses(tmp_path, entries, words):
    body = j(manifest("m", "m.pt", "tensor"))
    path = zip_with(tmp_path / "a.mar", [(n, body if c is None else c) for n, c in entries])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(serve_models.ModelError, match=words):
        serve_models.unpack_archive(path, str(dest), max_bytes=4096)


def test_manifest_files_outside_the_model_folder_are_refused(tmp_path, workers):
    (tmp_path / "secret.pt").write_bytes(b"x")
    mar = make_mar(tmp_path / "store.mar", {
        "MAR-INF/MANIFEST.json": j(manifest("m", "../secret.pt", "tensor")),
    })
    w = workers({"path": mar})
    assert "serializedFile '../secret.pt'" in w.ready()["error"]
    assert w.wait() == 1
    assert w.stderr.count("\n") == 1 and w.stderr.startswith("pinfer-worker: error:")

    w = workers({"path": str(tmp_path / "missing.pt")})
    assert "no such file" in w.ready()["error"]
    assert w.wait() == 1

    mar = make_mar(tmp_path / "ts.mar", {
        "MAR-INF/MANIFEST.json": j(manifest("m", "m.pt", "object_detector")),
        "m.pt": b"x"})
    w = workers({"path": mar})
    assert "TorchServe's built-in handler" in w.ready()["error"]
    assert w.wait() == 1


# ---------------------------------------------------------------------------
# PIN


def cpus_of_threads(pid):
    """{tid: set of CPUs} of every thread of process `pid`."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("Cpus_allowed_list:"):
                        out[int(tid)] = parse_list(line.split(":", 1)[1].strip())
        except FileNotFoundError:
            continue
    return out


def parse_list(text):
    cpus = set()
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            cpus.update(range(int(lo), int(hi) + 1))
        elif part:
            cpus.add(int(part))
    return cpus


def node_of(cpu):
    for entry in os.listdir("/sys/devices/system/cpu/cpu%d" % cpu):
        if entry.startswith("node") and entry[4:].isdigit():
            return int(entry[4:])
    return 0


def memory_policy(pid, tid):
    with open("/proc/%d/task/%d/numa_maps" % (pid, tid)) as f:
        return f.readline().split()[1]


def test_pin_moves_every_thread_and_the_memory_policy(tmp_path, workers):
    """The worker starts on one CPU; PIN moves it to another (outside the CPUs pinfer's
    pools accept in that process: each team thread binds itself), back (pinfer.pin), then
    over two CPUs in reverse order (team thread 0, the main thread, on the first)."""
    cpus = allowed_cpus()
    torch.manual_seed(5)
    save_script(SmallNet(), tmp_path / "net.pt", torch.rand(2, 3, 8, 8))
    w = workers({"path": str(tmp_path / "net.pt")}, cpus=cpus[:1])
    w.ready()
    x = v2_body([("x", "FP32", torch.rand(4, 3, 8, 8))])[0]
    assert w.one("v2", x)["status"] == 200
    assert all(c <= set(cpus[:1]) for c in cpus_of_threads(w.pid).values())
    for seq, target in enumerate([cpus[-1:], cpus[:1], cpus[:2][::-1]], start=1):
        nodes = sorted({node_of(c) for c in target})
        reply = w.pin(target, nodes, seq=seq)
        assert reply == {"seq": seq, "cpus": target, "nodes": nodes, "threads": len(target)}
        for _ in range(3):  # let the team run at its new size
            assert w.one("v2", x)["status"] == 200
        masks = cpus_of_threads(w.pid)
        assert all(mask and mask <= set(target) for mask in masks.values()), (target, masks)
        assert masks[w.pid] == {target[0]}
        assert {min(m) for m in masks.values() if len(m) == 1} == set(target)
        policy = "bind:" + ",".join(str(n) for n in nodes)
        for tid, mask in masks.items():
            if len(mask) == 1:  # the OpenMP team: each thread set its own policy
                assert memory_policy(w.pid, tid) == policy
    # A PIN that cannot be applied says why; the worker keeps serving.
    reply = w.pin("0", [0], seq=9)
    assert reply["seq"] == 9 and "cpus must be a list" in reply["error"]
    reply = w.pin([max(cpus) + 4096], [0], seq=10)
    assert "error" in reply
    assert w.one("v2", x)["status"] == 200
    masks = cpus_of_threads(w.pid)  # back where it was
    assert masks[w.pid] == {target[0]} and all(m <= set(target) for m in masks.values())
    # nodes [] is the default memory policy
    reply = w.pin(cpus[:1], [], seq=11)
    assert reply["nodes"] == [] and memory_policy(w.pid, w.pid) == "default"
    assert w.stop() == 0


def test_a_worker_pins_itself_when_the_configuration_gives_cpus(tmp_path, workers):
    cpus = allowed_cpus()
    save_script(Identity(), tmp_path / "id.pt")
    target = cpus[-1:]
    w = workers({"path": str(tmp_path / "id.pt"), "cpus": target,
                 "nodes": [node_of(target[0])]})
    ready = w.ready()
    assert ready["cpus"] == target and ready["threads"] == 1
    assert all(mask <= set(target) for mask in cpus_of_threads(w.pid).values())
    assert w.stop() == 0


# ---------------------------------------------------------------------------
# The end of a worker, and a front end that breaks the protocol


@pytest.fixture(scope="module")
def identity_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("identity") / "identity.pt"
    save_script(Identity(), path)
    return str(path)


def test_stop_and_end_of_connection_exit_0(identity_file, workers):
    w = workers({"path": identity_file})
    w.ready()
    assert w.stop() == 0 and w.stderr == ""
    w = workers({"path": identity_file})
    w.ready()
    w.sock.shutdown(socket.SHUT_WR)
    assert w.wait() == 0


def test_sigterm_exits_143_and_removes_the_unpacked_archive(identity_file, workers, tmp_path):
    with open(identity_file, "rb") as f:
        mar = make_mar(tmp_path / "identity.mar", {
            "MAR-INF/MANIFEST.json": j(manifest("identity", "identity.pt", "tensor")),
            "identity.pt": f.read()})
    unpack_dir = tmp_path / "unpack"
    unpack_dir.mkdir()
    w = workers({"path": mar, "unpack_dir": str(unpack_dir)})
    model_dir = w.ready()["model_dir"]
    assert os.listdir(unpack_dir) == [os.path.basename(model_dir)]
    w.proc.terminate()
    assert w.wait() == 143
    assert os.listdir(unpack_dir) == []


def raw_frame(kind, text, data=b""):
    return struct.pack("<4sIII", b"PFW1", kind, len(text), len(data)) + text + data


def frame(kind, obj, data=b"", magic=b"PFW1"):
    raw = j(obj)
    return struct.pack("<4sIII", magic, kind, len(raw), len(data)) + raw + data


@pytest.mark.parametrize("garbage, words", [
    (b"GET / HTTP/1.1\r\n\r\n", "bad magic"),
    (frame(protocol.READY, {}), "unexpected READY"),
    (frame(protocol.BATCH, {"batch": 1, "requests": []}, b"abcdef")[:-3],
     "closed inside a frame"),
    (frame(protocol.BATCH, {"batch": 1, "requests": [{"id": "a", "offset": 0, "length": 9}]},
           b"abc"), "not inside"),
])
def test_protocol_garbage_exits_nonzero_with_one_line(identity_file, workers, garbage, words):
    w = workers({"path": identity_file})
    w.ready()
    w.sock.sendall(garbage)
    w.sock.shutdown(socket.SHUT_WR)
    assert w.wait() == 2
    assert w.stderr.count("\n") == 1 and w.stderr.startswith("pinfer-worker: error: protocol:")
    assert words in w.stderr


@pytest.mark.parametrize("garbage, words", [
    (frame(9, {}), "unknown frame kind 9"),
    (b"PFW1\x02\x00", "inside a frame header"),
    (struct.pack("<4sIII", b"PFW1", protocol.BATCH, (16 << 20) + 1, 0), "limit"),
    (struct.pack("<4sIII", b"PFW1", protocol.BATCH, 2, (1 << 30) + 1), "limit"),
    (raw_frame(protocol.PIN, b"[]"), "not an object"),
    (raw_frame(protocol.PIN, b"{x"), "not valid"),
    (raw_frame(protocol.PIN, b"\xff}"), "not UTF-8"),
    (raw_frame(protocol.PIN, b"{}}"), "not valid"),
    (raw_frame(protocol.PIN, b'{"a": NaN}'), "NaN"),
    (raw_frame(protocol.PIN, b"[" * 100000), "nested too deeply|not valid"),
])
def test_the_frame_reader_refuses(garbage, words):
    """What the worker's reader refuses (the worker exits 2 on each, as above)."""
    with pytest.raises(protocol.ProtocolError, match=words):
        protocol.read_frame(io.BytesIO(garbage), protocol.FROM_FRONT_END)


def test_the_worker_refuses_a_batch_it_cannot_read():
    from pinfer.serve import worker
    for obj, data, words in [({"batch": 1}, b"", "requests"),
                             ({"batch": 1, "requests": [1]}, b"", "not an object"),
                             ({"batch": 1, "requests": [{"offset": -1, "length": 1}]}, b"a",
                              "not inside"),
                             ({"batch": 1, "requests": [{"offset": True, "length": 1}]}, b"a",
                              "not inside"),
                             ({"batch": 1, "requests": [{"headers": {"a": 1}}]}, b"",
                              "headers")]:
        with pytest.raises(protocol.ProtocolError, match=words):
            worker.parse_batch(obj, data)


def test_no_fd_3_and_a_bad_configuration(identity_file, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"),
               PINFER_WORKER_CONFIG=json.dumps({"path": identity_file}))
    proc = subprocess.run([PYTHON, "-m", "pinfer.serve.worker"], env=env, capture_output=True,
                          text=True, timeout=DEADLINE)
    assert proc.returncode == 2 and "no connection on fd 3" in proc.stderr
    w = Worker("{not json")
    try:
        assert "error" in w.ready()
        assert w.wait() == 1
    finally:
        w.close()


def test_a_large_batch_travels_whole(identity_file, workers):
    """A frame bigger than the socket buffers, both ways (partial writes and reads)."""
    w = workers({"path": identity_file, "batch_size": 4})
    w.ready()
    x = torch.rand(4, 256, 1024)  # 4 MiB of FP32 per request, binary both ways
    body, headers = v2_body([("x", "FP32", x)], binary=True,
                            parameters={"binary_data_output": True})
    responses = w.batch([("v2", body, "application/json", headers)] * 3)
    for response in responses:
        assert torch.equal(v2_outputs(response)[1]["output__0"][2], x)
    assert w.stop() == 0


def test_the_package_installs_the_serve_subpackage():
    with open(os.path.join(ROOT, "setup.py")) as f:
        assert '"pinfer.serve"' in f.read()

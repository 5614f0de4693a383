"""`pinfer serve` end to end: a real server on port 0, real clients (requests, curl, ab).

Models are made here in tmp: a traced Linear+ReLU, a scripted double, a TorchServe archive
(.mar zipped here, MAR-INF/MANIFEST.json, index_to_name.json) on the built-in
image_classifier with a tiny conv net, the same layout unpacked with a custom handler file,
a slow custom handler, and an archive with an entry escaping its folder.  Answers are
compared with the model run here (torch.allclose).

Servers: one shared unbound server for the routes, results, errors, management and load;
one pinned server with two workers and a management token for CPU sets, re-pinning on
scale and a worker killed under load; one with a queue of 1 and a 1 s response timeout;
small ones for --pinning none/threads and for shutdown.  Each is stopped with SIGTERM and
must exit 0, leaving no worker process (every worker seen, and any process whose
configuration points into the server's private folder) and no /tmp/pinfer-serve-* folder.
Every wait is bounded; CPUs come from os.sched_getaffinity, never by number.
"""
import io
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import zipfile

import pytest

from conftest import ROOT, allowed_cpus, cpulist, live_topology, pinfer_path

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
requests = pytest.importorskip("requests")

PYTHON = "/usr/bin/python3"
START_TIMEOUT = 120  # seconds for a server to say "ready"
STOP_TIMEOUT = 60  # seconds for it to exit after SIGTERM
HTTP_TIMEOUT = 60  # seconds any one request may take
JSON = {"Content-Type": "application/json"}


# ---------------------------------------------------------------------------
# Processes


def parse_list(text):
    """A kernel CPU list ("0-2,5") as a set."""
    out = set()
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


def proc_cpus(pid, tid=None):
    path = "/proc/%d/task/%d/status" % (pid, tid) if tid else "/proc/%d/status" % pid
    with open(path) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return parse_list(line.split(":", 1)[1])
    raise AssertionError("no Cpus_allowed_list in " + path)


def thread_cpus(pid):
    """{tid: CPU set} of every thread of the process."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            out[int(tid)] = proc_cpus(pid, int(tid))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def alive(pid):
    """The process exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return out


def processes_using(folder):
    """Processes whose worker configuration names a folder under `folder`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            config = environ(int(entry)).get("PINFER_WORKER_CONFIG", "")
            if folder + "/" in config and alive(int(entry)):
                found.append(int(entry))
    return found


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll until predicate() is truthy (its value is returned), else fail naming `what`."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("not within %.0f s: %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# A server


class Server(object):
    """`pinfer serve` on port 0 with its three addresses; stop() checks a clean exit."""

    def __init__(self, folder, store, args, management_host="127.0.0.1", token=None):
        self.folder = str(folder)
        self.token = token
        self.pids = set()
        self.workdir = None
        self.stopped = False
        self.stderr_path = os.path.join(self.folder, "server.stderr")
        command = [pinfer_path(), "serve", "--model-store", str(store),
                   "--inference-address", "http://127.0.0.1:0",
                   "--management-address", "http://%s:0" % management_host,
                   "--metrics-address", "http://127.0.0.1:0"] + list(args)
        if token:
            token_file = os.path.join(self.folder, "token")
            with open(token_file, "w") as f:
                f.write(token + "\n")
            command += ["--management-token-file", token_file]
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), PINFER_PYTHON=PYTHON)
        env.pop("TMPDIR", None)  # the private folder is /tmp/pinfer-serve-*
        self.stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     stdin=subprocess.DEVNULL, env=env, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.ports = {}
        try:
            end = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    line = self.lines.get(timeout=max(0.0, end - time.monotonic()))
                except queue.Empty:
                    raise AssertionError("no 'ready' within %d s" % START_TIMEOUT)
                if line is None:
                    raise AssertionError("the server exited %s before 'ready'"
                                         % self.proc.wait())
                m = re.match(r"(inference|management|metrics): http://[^:]+:(\d+)$", line)
                if m:
                    self.ports[m.group(1)] = int(m.group(2))
                elif line == "ready":
                    break
            assert sorted(self.ports) == ["inference", "management", "metrics"]
            self.track()
        except BaseException:
            self.kill()
            raise AssertionError("server did not start:\n" + self.stderr())

    def _read_stdout(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def url(self, path, which="inference", host="127.0.0.1"):
        return "http://%s:%d%s" % (host, self.ports[which], path)

    # -- clients

    def get(self, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.get(self.url(path), **kw)

    def post(self, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return requests.post(self.url(path), **kw)

    def manage(self, method, path, token=True, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        headers = dict(kw.pop("headers", {}))
        if self.token and token:
            headers["Authorization"] = "Bearer " + self.token
        return requests.request(method, self.url(path, "management"), headers=headers, **kw)

    def metrics(self):
        r = requests.get(self.url("/metrics", "metrics"), timeout=HTTP_TIMEOUT)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        return parse_metrics(r.text)

    def describe(self, name):
        r = self.manage("GET", "/models/" + name)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert len(doc) == 1
        for w in doc[0]["workers"]:
            if w["pid"] > 0:
                self.pids.add(w["pid"])
        self.track()
        return doc[0]

    def ready_workers(self, name, count):
        """The model's description once `count` workers are READY (bounded wait)."""
        def check():
            d = self.describe(name)
            ready = [w for w in d["workers"] if w["status"] == "READY" and w["pid"] > 0]
            return d if len(ready) == count and len(d["workers"]) == count else None
        return wait_until(check, START_TIMEOUT, "%d READY workers of %s" % (count, name),
                          interval=0.2)

    def track(self):
        """Remember the server's workers and its private folder."""
        for pid in children(self.proc.pid):
            config = environ(pid).get("PINFER_WORKER_CONFIG")
            if not config:
                continue
            self.pids.add(pid)
            unpack = json.loads(config).get("unpack_dir")
            if unpack and not self.workdir:
                self.workdir = os.path.dirname(unpack)
                assert os.path.basename(self.workdir).startswith("pinfer-serve-"), self.workdir

    # -- stopping

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self):
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the server did not exit within %d s of SIGTERM:\n%s"
                                 % (STOP_TIMEOUT, self.stderr()))

    def stop(self, already_signalled=False):
        """SIGTERM; exit 0, no worker left, no private folder left."""
        if self.stopped:
            return
        self.stopped = True
        self.track()
        if not already_signalled:
            self.signal(signal.SIGTERM)
        status = self.wait_exit()
        self.stderr_file.close()
        text = self.stderr()
        assert status == 0, "exit status %s:\n%s" % (status, text)
        for bad in ("AddressSanitizer", "free():", "double free", "Segmentation", "corrupted"):
            assert bad not in text, text
        self.check_nothing_left()

    def ours(self, pid):
        """The process is alive and one of this server's workers (not a reused pid)."""
        config = environ(pid).get("PINFER_WORKER_CONFIG", "")
        return alive(pid) and bool(self.workdir) and self.workdir + "/" in config

    def check_nothing_left(self):
        assert self.pids, "no worker was ever seen"
        assert self.workdir, "the server's private folder was never seen"
        wait_until(lambda: not [p for p in self.pids if self.ours(p)], 10,
                   "workers %s gone" % sorted(p for p in self.pids if self.ours(p)))
        assert not processes_using(self.workdir)
        assert not os.path.exists(self.workdir), os.listdir(self.workdir)

    def kill(self):
        """After a failure: the server, then whatever worker of its own is left."""
        if self.proc.poll() is None:
            self.track()
            self.proc.kill()
            self.proc.wait()
        if self.workdir:
            for pid in processes_using(self.workdir):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def start(tmp_path):
    """Servers for one test, killed if the test did not stop them."""
    servers = []

    def make(store, args, **kw):
        folder = tmp_path / ("server%d" % len(servers))
        folder.mkdir()
        server = Server(folder, store, args, **kw)
        servers.append(server)
        return server

    yield make
    for server in servers:
        if not server.stopped:
            server.kill()


def module_server(tmp_path_factory, store, args, **kw):
    folder = tmp_path_factory.mktemp("server")
    server = Server(folder, store, args, **kw)
    return server


def finish(server):
    """A module server's teardown: stopped cleanly (unless a test did), else killed."""
    try:
        server.stop()
    finally:
        server.kill()


# ---------------------------------------------------------------------------
# Metrics, tensors, bodies

METRIC_LINE = re.compile(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$')


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        assert m, "not a Prometheus line: %r" % line
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(metrics, name, **labels):
    want = set(labels.items())
    found = [v for (n, ls), v in metrics.items() if n == name and want <= set(ls)]
    assert found, "no %s %s in the metrics" % (name, labels)
    return sum(found)


def batches_over_one(metrics, model):
    """Batches of more than one request the model has run."""
    return (metric(metrics, "pinfer_batch_size_count", model_name=model)
            - metric(metrics, "pinfer_batch_size_bucket", model_name=model, le="1"))


NP_TYPES = {"BOOL": "?", "UINT8": "u1", "INT8": "i1", "INT16": "<i2", "INT32": "<i4",
            "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


def v2_json(name, datatype, tensor, **extra):
    doc = dict(extra, inputs=[{"name": name, "shape": list(tensor.shape), "datatype": datatype,
                               "data": tensor.reshape(-1).tolist()}])
    return json.dumps(doc).encode()


def v2_binary(name, datatype, tensor, binary_output=True):
    """A v2 body with the binary tensor extension, built by hand: the JSON header, then the
    tensor's raw little-endian bytes; and its headers."""
    raw = tensor.contiguous().numpy().astype(np.dtype(NP_TYPES[datatype])).tobytes()
    head = json.dumps({"inputs": [{"name": name, "shape": list(tensor.shape),
                                   "datatype": datatype,
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "parameters": {"binary_data_output": binary_output}}).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head)),
                        "Content-Type": "application/octet-stream"}


def v2_outputs(response):
    """{name: tensor} of a v2 answer, JSON or binary."""
    size = response.headers.get("Inference-Header-Content-Length")
    body = response.content
    head, blob = (body, b"") if size is None else (body[:int(size)], body[int(size):])
    doc = json.loads(head)
    out, pos = {}, 0
    for o in doc["outputs"]:
        dtype = np.dtype(NP_TYPES[o["datatype"]])
        if "data" in o:
            value = np.array(o["data"], dtype=dtype).reshape(o["shape"])
        else:
            n = o["parameters"]["binary_data_size"]
            value = np.frombuffer(blob[pos:pos + n], dtype=dtype).reshape(o["shape"]).copy()
            pos += n
        out[o["name"]] = torch.from_numpy(value)
    assert pos == len(blob)
    return doc, out


def image_bytes(seed, size=(300, 200), fmt="JPEG"):
    from PIL import Image
    rng = np.random.RandomState(seed)
    image = Image.fromarray(rng.randint(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def check_timing_headers(response):
    """A worker's answer says the worker's time on its batch and the front end's time from
    the request's headers to the answer; the second spans the first."""
    handler = int(response.headers["Pinfer-Handler-Us"])
    server = int(response.headers["Pinfer-Server-Us"])
    assert 0 <= handler <= server + 1, (handler, server)


def error_message(response):
    """The message of an error answer: TorchServe's object or {"error": ...}."""
    doc = response.json()
    message = doc.get("message") or doc.get("error")
    assert isinstance(message, str) and message.strip(), doc
    return message


# ---------------------------------------------------------------------------
# Models


class Double(torch.nn.Module):
    def forward(self, x):
        return x * 2


class TinyConv(torch.nn.Module):
    """3x224x224 -> 6 classes, cheap."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 8, stride=8)
        self.fc = torch.nn.Linear(4, 6)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


FUNCTION_HANDLER = '''
import os

import torch

_model = None


def handle(data, context):
    """JSON lists through the model, other bodies reversed."""
    global _model
    if data is None:
        _model = torch.jit.load(os.path.join(context.system_properties["model_dir"], "net.pt"))
        return None
    out = []
    for row in data:
        body = row.get("data") if row.get("data") is not None else row.get("body")
        if isinstance(body, list):
            with torch.no_grad():
                out.append(_model(torch.tensor(body, dtype=torch.float32)).tolist())
        else:
            out.append(bytes(reversed(bytes(body))))
    return out
'''

SLOW_HANDLER = '''
import json
import os
import time


def handle(data, context):
    """{"sleep": seconds, "value": v} -> {"value": v, "pid": the worker's pid}."""
    if data is None:
        return None
    out = []
    for row in data:
        body = row.get("data") if row.get("data") is not None else row.get("body")
        if isinstance(body, (bytes, bytearray)):
            body = json.loads(body)
        time.sleep(float(body.get("sleep", 0)))
        out.append({"value": body.get("value"), "pid": os.getpid()})
    return out
'''


def manifest(name, handler, serialized=None, version="1.0"):
    model = {"modelName": name, "handler": handler, "modelVersion": version}
    if serialized:
        model["serializedFile"] = serialized
    return json.dumps({"createdOn": "01/01/2025 00:00:00", "runtime": "python",
                       "model": model, "archiverVersion": "0.9.0"}).encode()


class Store(object):
    """The model store, and the models to compare with."""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    subprocess.run(["make", "-C", ROOT, "-s", "python"], check=True, timeout=600)
    pinfer_path()
    folder = tmp_path_factory.mktemp("store")
    s = Store()
    s.path = str(folder)
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    torch.jit.trace(lin, torch.rand(2, 4)).save(str(folder / "lin.pt"))
    s.lin = torch.jit.load(str(folder / "lin.pt"))
    torch.jit.script(Double()).save(str(folder / "double.pt"))
    # image_classifier: a .mar zipped here, labels in both of TorchServe's forms
    torch.manual_seed(1)
    conv = TinyConv().eval()
    traced = torch.jit.trace(conv, torch.rand(1, 3, 224, 224))
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    s.labels = {str(i): ["n%08d" % i, "class %d" % i] for i in range(5)}
    s.labels["5"] = "class 5"
    with zipfile.ZipFile(str(folder / "img.mar"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("MAR-INF/MANIFEST.json", manifest("img", "image_classifier", "tiny.pt"))
        z.writestr("tiny.pt", buffer.getvalue())
        z.writestr("index_to_name.json", json.dumps(s.labels))
    s.conv = traced
    # the unpacked layout with a custom handler file
    fn = folder / "fn"
    (fn / "MAR-INF").mkdir(parents=True)
    torch.manual_seed(2)
    torch.jit.trace(torch.nn.Linear(2, 2).eval(), torch.rand(1, 2)).save(str(fn / "net.pt"))
    s.fn_net = torch.jit.load(str(fn / "net.pt"))
    (fn / "MAR-INF" / "MANIFEST.json").write_bytes(manifest("fn", "handler.py", "net.pt"))
    (fn / "handler.py").write_text(FUNCTION_HANDLER)
    # a slow custom handler
    slow = folder / "slow"
    (slow / "MAR-INF").mkdir(parents=True)
    (slow / "MAR-INF" / "MANIFEST.json").write_bytes(manifest("slow", "handler.py"))
    (slow / "handler.py").write_text(SLOW_HANDLER)
    # an archive with an entry escaping its folder
    with zipfile.ZipFile(str(folder / "escape.mar"), "w") as z:
        z.writestr("MAR-INF/MANIFEST.json", manifest("escape", "tensor", "double.pt"))
        z.writestr("double.pt", (folder / "double.pt").read_bytes())
        z.writestr("../escaped.txt", b"out of the folder")
    return s


def expected_top5(s, images):
    from PIL import Image
    from torchvision import transforms
    processing = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                                     transforms.ToTensor(),
                                     transforms.Normalize([0.485, 0.456, 0.406],
                                                          [0.229, 0.224, 0.225])])
    batch = torch.stack([processing(Image.open(io.BytesIO(b)).convert("RGB")) for b in images])
    with torch.no_grad():
        probabilities = torch.softmax(s.conv(batch), dim=1)
    out = []
    for row in probabilities:
        p, i = torch.topk(row, 5)
        names = [s.labels[str(k)] for k in i.tolist()]
        out.append(([n[1] if isinstance(n, list) else n for n in names], p))
    return out


def check_top5(answer, expected):
    names, p = expected
    assert list(answer) == names
    assert torch.allclose(torch.tensor(list(answer.values())), p, atol=1e-5)


def lin_expected(s, x):
    with torch.no_grad():
        return s.lin(x)


# ---------------------------------------------------------------------------
# The shared server: routes, results, batching, errors, management, load

MODELS = ["lin", "double", "img", "fn"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory, store):
    server = module_server(tmp_path_factory, store.path,
                           ["--models", "lin=lin.pt,double=double.pt,img=img.mar,fn=fn",
                            "--workers", "1", "--pinning", "none", "--batch-size", "4",
                            "--max-batch-delay", "50"],
                           management_host="0.0.0.0")
    yield server
    finish(server)


def test_health_and_metadata_routes(srv):
    r = srv.get("/ping")
    assert r.status_code == 200 and r.json() == {"status": "Healthy"}
    r = srv.get("/v2")
    assert r.status_code == 200 and r.json()["name"] == "pinfer"
    assert "binary_tensor_data" in r.json()["extensions"]
    assert srv.get("/v2/health/live").json() == {"live": True}
    r = srv.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    for path in ("/v2/models/lin", "/v2/models/lin/versions/1.0"):
        r = srv.get(path)
        assert r.status_code == 200, path
        doc = r.json()
        assert doc["name"] == "lin" and doc["versions"] == ["1.0"]
        assert doc["platform"] == "pytorch_torchscript"
    assert srv.get("/v2/models/img").json()["name"] == "img"
    r = srv.get("/v2/models/lin/ready")
    assert r.status_code == 200 and r.json() == {"name": "lin", "ready": True}
    assert srv.get("/v2/models/lin/versions/1.0/ready").status_code == 200
    r = srv.get("/v1/models")
    assert r.status_code == 200 and sorted(r.json()["models"]) == sorted(MODELS)
    assert srv.get("/v1/models/fn").json() == {"name": "fn", "ready": True}


def test_predictions_json_equal_the_model(srv, store):
    torch.manual_seed(10)
    x = torch.rand(3, 4)
    for path in ("/predictions/lin", "/predictions/lin/1.0"):
        r = srv.post(path, data=json.dumps(x.tolist()), headers=JSON)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("application/json")
        check_timing_headers(r)
        assert torch.allclose(torch.tensor(r.json()), lin_expected(store, x), atol=1e-6)
    # PUT as TorchServe takes it; {"data", "shape"}; the double model keeps integers exact
    r = requests.put(srv.url("/predictions/lin"), timeout=HTTP_TIMEOUT, headers=JSON,
                     data=json.dumps({"data": x.reshape(-1).tolist(), "shape": [3, 4]}))
    assert torch.allclose(torch.tensor(r.json()), lin_expected(store, x), atol=1e-6)
    r = srv.post("/predictions/double", data="[[1, -2, 3]]", headers=JSON)
    assert r.json() == [[2, -4, 6]]
    # the custom handler of the unpacked layout: JSON through its model
    r = srv.post("/predictions/fn", data="[[0.5, -1.5]]", headers=JSON)
    with torch.no_grad():
        assert torch.allclose(torch.tensor(r.json()), store.fn_net(torch.tensor([[0.5, -1.5]])))


def test_predictions_raw_bytes_and_multipart(srv, store, tmp_path):
    r = srv.post("/predictions/fn", data=b"\x00raw\xffbytes",
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and r.content == b"setyb\xffwar\x00"
    check_timing_headers(r)
    assert r.headers["Content-Type"] == "application/octet-stream"
    images = [image_bytes(1), image_bytes(2, (120, 90), "PNG")]
    expected = expected_top5(store, images)
    r = srv.post("/predictions/img", data=images[0], headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    check_timing_headers(r)
    check_top5(r.json(), expected[0])
    # curl -F: one file part is one request; two file parts answer a list
    for n, b in enumerate(images):
        (tmp_path / ("image%d" % n)).write_bytes(b)
    out = subprocess.run(["curl", "-sS", "-m", str(HTTP_TIMEOUT), "-w", "\n%{http_code}",
                          "-F", "data=@%s" % (tmp_path / "image0"),
                          srv.url("/predictions/img")],
                         capture_output=True, text=True, timeout=HTTP_TIMEOUT + 10)
    body, _, code = out.stdout.rpartition("\n")
    assert code == "200", out.stdout + out.stderr
    check_top5(json.loads(body, object_pairs_hook=dict), expected[0])
    out = subprocess.run(["curl", "-sS", "-m", str(HTTP_TIMEOUT), "-w", "\n%{http_code}",
                          "-F", "a=@%s;type=image/jpeg" % (tmp_path / "image0"),
                          "-F", "b=@%s;type=image/png" % (tmp_path / "image1"),
                          srv.url("/predictions/img")],
                         capture_output=True, text=True, timeout=HTTP_TIMEOUT + 10)
    body, _, code = out.stdout.rpartition("\n")
    assert code == "200", out.stdout + out.stderr
    answers = json.loads(body)
    assert len(answers) == 2
    for answer, e in zip(answers, expected):
        check_top5(answer, e)


def test_v2_infer_json_and_binary(srv, store):
    torch.manual_seed(11)
    x = torch.rand(5, 4)
    expected = lin_expected(store, x)
    for path in ("/v2/models/lin/infer", "/v2/models/lin/versions/1.0/infer"):
        r = srv.post(path, data=v2_json("input__0", "FP32", x, id="req-1"), headers=JSON)
        assert r.status_code == 200, r.text
        doc, outputs = v2_outputs(r)
        assert doc["model_name"] == "lin" and doc["model_version"] == "1.0"
        assert doc["id"] == "req-1"
        assert doc["outputs"][0]["shape"] == [5, 3]
        assert torch.allclose(outputs["output__0"], expected, atol=1e-6)
    body, headers = v2_binary("input__0", "FP32", x)
    r = srv.post("/v2/models/lin/infer", data=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert "Inference-Header-Content-Length" in r.headers
    check_timing_headers(r)
    doc, outputs = v2_outputs(r)
    assert "parameters" in doc["outputs"][0] and "data" not in doc["outputs"][0]
    assert torch.allclose(outputs["output__0"], expected, atol=1e-6)
    # binary in, JSON out; integers exact through the double model
    ints = torch.tensor([[-(2 ** 30), 7, 2 ** 29]], dtype=torch.int32)
    body, headers = v2_binary("x", "INT32", ints, binary_output=False)
    r = srv.post("/v2/models/double/infer", data=body, headers=headers)
    doc, outputs = v2_outputs(r)
    assert doc["outputs"][0]["datatype"] == "INT32" and "data" in doc["outputs"][0]
    assert torch.equal(outputs["output__0"], ints * 2)
    halves = torch.tensor([[0.5, -1.25], [3.0, 2.0]], dtype=torch.float16)
    body, headers = v2_binary("x", "FP16", halves)
    doc, outputs = v2_outputs(srv.post("/v2/models/double/infer", data=body, headers=headers))
    assert torch.equal(outputs["output__0"], halves * 2)


def test_v1_predict(srv, store):
    torch.manual_seed(12)
    x = torch.rand(2, 4)
    r = srv.post("/v1/models/lin:predict", data=json.dumps({"instances": x.tolist()}),
                 headers=JSON)
    assert r.status_code == 200, r.text
    check_timing_headers(r)
    assert torch.allclose(torch.tensor(r.json()["predictions"]), lin_expected(store, x),
                          atol=1e-6)


def test_concurrent_requests_are_batched_and_each_answer_is_right(srv, store):
    before = batches_over_one(srv.metrics(), "lin")
    torch.manual_seed(13)
    n = 8
    inputs = [torch.rand(1, 4) for _ in range(n)]
    results = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait(30)
        results[i] = srv.post("/predictions/lin", data=json.dumps(inputs[i].tolist()),
                              headers=JSON)

    for attempt in range(5):
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HTTP_TIMEOUT + 30)
        for i in range(n):
            assert results[i] is not None and results[i].status_code == 200
            assert torch.allclose(torch.tensor(results[i].json()),
                                  lin_expected(store, inputs[i]), atol=1e-6)
        if batches_over_one(srv.metrics(), "lin") > before:
            break
    else:
        raise AssertionError("5 rounds of %d concurrent requests never made a batch of 2 or "
                             "more (--batch-size 4 --max-batch-delay 50)" % n)
    # v2 requests of different sizes in one batch, each cut back to its own rows
    inputs = [torch.rand(k, 4) for k in (1, 3, 2, 1)]
    results = [None] * 4
    barrier = threading.Barrier(4)

    def v2(i):
        barrier.wait(30)
        results[i] = srv.post("/v2/models/lin/infer", data=v2_json("x", "FP32", inputs[i]),
                              headers=JSON)

    threads = [threading.Thread(target=v2, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HTTP_TIMEOUT + 30)
    for x, r in zip(inputs, results):
        assert r.status_code == 200
        assert torch.allclose(v2_outputs(r)[1]["output__0"], lin_expected(store, x), atol=1e-6)


def test_metrics_count(srv):
    before = srv.metrics()
    for _ in range(3):
        assert srv.post("/predictions/double", data="[1.0]", headers=JSON).status_code == 200
    assert srv.post("/predictions/double", data="{bad json", headers=JSON).status_code == 400
    after = srv.metrics()
    labels = {"model_name": "double", "model_version": "1.0"}
    for name in ("ts_inference_requests_total", "ts_inference_latency_microseconds",
                 "ts_queue_latency_microseconds"):
        for model in MODELS:
            metric(after, name, model_name=model, model_version="1.0")
    assert metric(after, "ts_inference_requests_total", **labels) - \
        metric(before, "ts_inference_requests_total", **labels) == 4
    assert metric(after, "ts_inference_latency_microseconds", **labels) > \
        metric(before, "ts_inference_latency_microseconds", **labels)
    assert metric(after, "pinfer_responses_total", code="2xx", **labels) - \
        metric(before, "pinfer_responses_total", code="2xx", **labels) == 3
    assert metric(after, "pinfer_responses_total", code="4xx", **labels) - \
        metric(before, "pinfer_responses_total", code="4xx", **labels) == 1
    assert metric(after, "pinfer_batch_size_count", **labels) - \
        metric(before, "pinfer_batch_size_count", **labels) >= 1
    assert metric(after, "pinfer_queue_depth", **labels) == 0
    for model in MODELS:
        assert metric(after, "pinfer_worker_cpus", model_name=model, cpus="") == 0  # unbound
        assert metric(after, "pinfer_worker_restarts_total", model_name=model) == 0
        assert metric(after, "pinfer_worker_memory_kilobytes", model_name=model) > 0
        metric(after, "pinfer_worker_migrations_total", model_name=model)
    r = requests.post(srv.url("/metrics", "metrics"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 405 and error_message(r)
    r = requests.get(srv.url("/other", "metrics"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 404 and error_message(r)


def assert_serving(srv, store):
    x = torch.tensor([[0.25, 0.5, -1.0, 2.0]])
    r = srv.post("/predictions/lin", data=json.dumps(x.tolist()), headers=JSON)
    assert r.status_code == 200, r.text
    assert torch.allclose(torch.tensor(r.json()), lin_expected(store, x), atol=1e-6)
    assert srv.get("/ping").status_code == 200


def v2_doc(**input_fields):
    return json.dumps({"inputs": [dict({"name": "x"}, **input_fields)]})


BAD_REQUESTS = [
    # (method, path, body, headers, status, words in the message)
    ("POST", "/predictions/lin", b"{not json", JSON, 400, "JSON"),
    ("POST", "/predictions/lin", b"", JSON, 400, "no body"),
    ("POST", "/v2/models/lin/infer", b"{not json", JSON, 400, "JSON"),
    ("POST", "/v2/models/lin/infer", v2_doc(shape=[2, 4], datatype="FP32", data=[1.0] * 5),
     JSON, 400, "5 elements"),
    ("POST", "/v2/models/lin/infer", v2_doc(shape=[1, 2], datatype="FP8", data=[1, 2]), JSON,
     400, "datatype"),
    ("POST", "/v2/models/lin/infer", v2_doc(shape=[1], datatype="BYTES", data=["abc"]), JSON,
     400, "BYTES"),
    ("POST", "/v2/models/lin/infer", v2_doc(shape=[2], datatype="INT32", data=[1.5, 2]), JSON,
     400, "integers"),
    ("POST", "/v2/models/lin/infer", v2_doc(shape=[2], datatype="FP32", data=["a", "b"]), JSON,
     400, ""),
    ("POST", "/v2/models/lin/infer",
     v2_doc(shape=[1, 4], datatype="FP32", parameters={"binary_data_size": 16}).encode()
     + b"\0" * 12, {"Inference-Header-Content-Length": "9999"}, 400, "body has"),
    ("POST", "/v1/models/lin:predict", b'{"instances": "x"}', JSON, 400, ""),
    ("POST", "/predictions/img", b"\x89PNG\r\n\x1a\nnot an image", {"Content-Type": "image/png"},
     400, "undecodable image"),
    ("POST", "/predictions/img", b"--x\r\nbroken", {"Content-Type": "multipart/form-data"}, 400,
     "boundary"),
    ("POST", "/predictions/nope", b"[1.0]", JSON, 404, "nope"),
    ("POST", "/predictions/lin/9.9", b"[1.0]", JSON, 404, "9.9"),
    ("POST", "/v2/models/nope/infer", b"{}", JSON, 404, "nope"),
    ("GET", "/v2/models/nope", None, {}, 404, "nope"),
    ("GET", "/v2/models/nope/ready", None, {}, 404, "nope"),
    ("POST", "/v1/models/nope:predict", b"{}", JSON, 404, "nope"),
    ("GET", "/v1/models/nope", None, {}, 404, "nope"),
    ("GET", "/no/such/thing", None, {}, 404, "no such endpoint"),
    ("GET", "/predictions/lin", None, {}, 405, "POST"),
    ("DELETE", "/predictions/lin", None, {}, 405, "POST"),
    ("GET", "/v2/models/lin/infer", None, {}, 405, "POST"),
    ("GET", "/v1/models/lin:predict", None, {}, 405, "POST"),
]


@pytest.mark.parametrize("method, path, body, headers, status, words", BAD_REQUESTS,
                         ids=["%s %s %d" % (c[0], c[1], c[4]) for c in BAD_REQUESTS])
def test_bad_requests_get_4xx_with_a_message_and_serving_goes_on(srv, store, method, path,
                                                                  body, headers, status, words):
    r = requests.request(method, srv.url(path), data=body, headers=headers,
                         timeout=HTTP_TIMEOUT)
    assert r.status_code == status, r.text
    message = error_message(r)
    assert words in message, message
    assert_serving(srv, store)


BAD_MANAGEMENT = [
    ("GET", "/models/nope", 404, "nope"),
    ("PUT", "/models/nope?min_worker=1", 404, "nope"),
    ("DELETE", "/models/nope", 404, "nope"),
    ("PATCH", "/models", 405, "GET or POST"),
    ("POST", "/models/lin", 405, "GET, PUT or DELETE"),
    ("GET", "/models?limit=0", 400, "limit"),
    ("GET", "/models?limit=abc", 400, "limit"),
    ("PUT", "/models/lin?min_worker=-1", 400, "min_worker"),
    ("PUT", "/models/lin?min_worker=1&synchronous=maybe", 400, "synchronous"),
    ("POST", "/models", 400, "url"),
    ("POST", "/models?url=../lin.pt", 400, ".."),
    ("POST", "/models?url=a/../../lin.pt", 400, ".."),
    ("POST", "/models?url=/etc/passwd", 400, "absolute"),
    ("POST", "/models?url=http://example.com/m.mar", 400, "URL"),
    ("POST", "/models?url=file:///etc/passwd", 400, "URL"),
    ("POST", "/models?url=missing.pt", 404, "missing.pt"),
    ("POST", "/models?url=lin.pt", 409, "lin"),
    ("POST", "/models?url=lin.pt&model_name=bad%20name", 400, "name"),
    # A bad value after good ones: one answer, nothing registered.
    ("POST", "/models?url=lin.pt&model_name=other&max_batch_delay=-5", 400, "max_batch_delay"),
    ("POST", "/models?url=lin.pt&model_name=other&batch_size=0&response_timeout=0", 400,
     "batch_size"),
    ("GET", "/elsewhere", 404, "no such endpoint"),
]


@pytest.mark.parametrize("method, path, status, words", BAD_MANAGEMENT,
                         ids=["%s %s %d" % c[:3] for c in BAD_MANAGEMENT])
def test_bad_management_requests(srv, store, method, path, status, words):
    r = srv.manage(method, path)
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["code"] == status and doc["type"], doc
    assert words in doc["message"], doc
    assert_serving(srv, store)
    assert sorted(m["modelName"] for m in srv.manage("GET", "/models").json()["models"]) == \
        sorted(MODELS)


def raw_exchange(port, data, timeout=10):
    """Send `data` on a new connection; what comes back until the server closes it or says a
    whole header block (b"" when it closed without a word)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            m = re.search(rb"Content-Length: (\d+)", head, re.I)
            if sep and m and len(body) >= int(m.group(1)):
                break
        else:
            raise AssertionError("no answer and no close within %d s for %r" % (timeout, data))
        return out


def test_malformed_http_gets_400_and_the_server_keeps_serving(srv, store):
    port = srv.ports["inference"]
    cases = [
        b"GET /ping HTTP/1.1\r\nHost: x\r\nthis is no header\r\n\r\n",
        b"POST /predictions/lin HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
        b"POST /predictions/lin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",  # 431
        b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # 414
    ]
    for data in cases:
        answer = raw_exchange(port, data)
        assert re.match(rb"HTTP/1\.[01] 4\d\d ", answer), (data, answer)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert body.strip(), (data, answer)
        assert_serving(srv, store)
    # Request lines libmicrohttpd cannot read at all: it closes the connection (no answer is
    # possible without a method and a path); a 4xx would do too.  Never a hang.
    for data in (b"GARBAGE\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"):
        answer = raw_exchange(port, data)
        assert answer == b"" or re.match(rb"HTTP/1\.[01] 4\d\d ", answer), (data, answer)
        assert_serving(srv, store)
    # a connection that sends NULs and then nothing stays open without blocking anyone
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        idle.sendall(b"\x00\x01\x02\xff\r\n")
        assert_serving(srv, store)
    finally:
        idle.close()


def test_oversized_body_gets_413_before_the_body_is_sent(srv, store):
    port = srv.ports["inference"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /predictions/lin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: 100000000\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)  # within the 10 s timeout, no byte of the body sent
            assert chunk, "closed without an answer: %r" % answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        head, _, body = answer.partition(b"\r\n\r\n")
        m = re.search(rb"Content-Length: (\d+)", head)
        while len(body) < int(m.group(1)):
            body += s.recv(65536)
        assert b"max_request_size" in body
    # without a length (chunked): read and dropped, then 413
    big = b"[" + b"0.0," * 2000000 + b"0.0]"

    def chunks():
        for k in range(0, len(big), 1 << 20):
            yield big[k:k + (1 << 20)]

    r = srv.post("/predictions/lin", data=chunks(), headers=JSON)
    assert r.status_code == 413 and "max_request_size" in error_message(r)
    # the management address takes 1 MiB
    r = srv.manage("POST", "/models?url=lin.pt&model_name=big", data=b"x" * (2 << 20))
    assert r.status_code == 413
    assert_serving(srv, store)


def test_management_list_and_describe(srv):
    r = srv.manage("GET", "/models")
    assert r.status_code == 200
    doc = r.json()
    assert sorted(m["modelName"] for m in doc["models"]) == sorted(MODELS)
    assert "nextPageToken" not in doc
    assert {m["modelName"]: m["modelUrl"] for m in doc["models"]}["img"] == "img.mar"
    seen, token, pages = [], None, 0
    while pages < 10:
        r = srv.manage("GET", "/models?limit=3" + ("&next_page_token=%s" % token if token
                                                  else ""))
        assert r.status_code == 200
        page = r.json()
        assert len(page["models"]) <= 3
        seen += [m["modelName"] for m in page["models"]]
        pages += 1
        token = page.get("nextPageToken")
        if not token:
            break
    assert pages == 2 and sorted(seen) == sorted(MODELS)
    d = srv.describe("img")
    assert d["modelName"] == "img" and d["modelVersion"] == "1.0"
    assert d["modelUrl"] == "img.mar" and d["handler"] == "image_classifier"
    assert d["batchSize"] == 4 and d["maxBatchDelay"] == 50 and d["minWorkers"] == 1
    assert d["loadedAtStartup"] is True
    assert d["cpus"] == ""
    [w] = d["workers"]
    assert w["status"] == "READY" and w["pid"] > 0 and w["memoryUsage"] > 0
    assert w["cpus"] == "" and w["memoryNodes"] == "" and w["restarts"] == 0
    assert srv.manage("GET", "/models/img/1.0").json()[0]["modelName"] == "img"
    assert srv.manage("GET", "/models/img/all").status_code == 200
    assert srv.manage("GET", "/models/img/7.0").status_code == 404
    assert srv.describe("fn")["platform"] == "torchserve_handler"


def test_register_scale_unregister(srv, store):
    r = srv.manage("POST", "/models?url=lin.pt&model_name=linb&initial_workers=1"
                           "&synchronous=true&batch_size=2&max_batch_delay=5"
                           "&response_timeout=30")
    assert r.status_code == 200, r.text
    assert "linb" in r.json()["status"]
    d = srv.describe("linb")
    assert d["batchSize"] == 2 and d["maxBatchDelay"] == 5 and d["responseTimeout"] == 30
    assert d["loadedAtStartup"] is False and d["modelUrl"] == "lin.pt"
    assert [w["status"] for w in d["workers"]] == ["READY"]
    first = d["workers"][0]["pid"]
    x = torch.rand(2, 4)
    r = srv.post("/predictions/linb", data=json.dumps(x.tolist()), headers=JSON)
    assert torch.allclose(torch.tensor(r.json()), lin_expected(store, x), atol=1e-6)
    r = srv.manage("PUT", "/models/linb?min_worker=2&synchronous=true")
    assert r.status_code == 200, r.text
    d = srv.ready_workers("linb", 2)
    pids = {w["pid"] for w in d["workers"]}
    assert first in pids
    r = srv.manage("PUT", "/models/linb?min_worker=1")
    assert r.status_code == 202, r.text
    d = srv.ready_workers("linb", 1)
    gone = pids - {d["workers"][0]["pid"]}
    wait_until(lambda: not [p for p in gone if srv.ours(p)], 30, "the scaled-down worker gone")
    assert srv.post("/v2/models/linb/infer", data=v2_json("x", "FP32", x),
                    headers=JSON).status_code == 200
    r = srv.manage("DELETE", "/models/linb")
    assert r.status_code == 200 and "linb" in r.json()["status"]
    wait_until(lambda: not [p for p in pids if srv.ours(p)], 30, "linb's workers gone")
    assert srv.manage("GET", "/models/linb").status_code == 404
    r = srv.post("/predictions/linb", data=json.dumps(x.tolist()), headers=JSON)
    assert r.status_code == 404 and "linb" in error_message(r)
    assert "linb" not in [m["modelName"] for m in srv.manage("GET", "/models").json()["models"]]
    # a registered archive, its name from the manifest, without waiting
    r = srv.manage("POST", "/models?url=img.mar&model_name=img2&initial_workers=1")
    assert r.status_code == 202, r.text
    srv.ready_workers("img2", 1)
    images = [image_bytes(5)]
    r = srv.post("/predictions/img2", data=images[0], headers={"Content-Type": "image/jpeg"})
    check_top5(r.json(), expected_top5(store, images)[0])
    assert srv.manage("DELETE", "/models/img2").status_code == 200
    assert_serving(srv, store)


def test_register_an_archive_escaping_its_folder(srv, store):
    r = srv.manage("POST", "/models?url=escape.mar&initial_workers=1&synchronous=true")
    assert r.status_code >= 400, r.text
    assert "'..'" in r.json()["message"], r.text
    assert not os.path.exists(os.path.join(os.path.dirname(store.path), "escaped.txt"))
    assert not os.path.exists(os.path.join(store.path, "escaped.txt"))
    assert not os.path.exists(os.path.join(os.path.dirname(srv.workdir), "escaped.txt"))
    wait_until(lambda: srv.manage("GET", "/models/escape").status_code == 404, 30,
               "the model that did not load is gone")
    assert_serving(srv, store)
    assert srv.get("/ping").json() == {"status": "Healthy"}


def non_loopback_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: a route is chosen
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_management_refuses_other_hosts_without_a_token(srv):
    address = non_loopback_address()
    if not address:
        pytest.skip("this machine has no non-loopback IPv4 address")
    r = requests.get(srv.url("/models", "management", host=address), timeout=HTTP_TIMEOUT)
    assert r.status_code == 403 and "loopback" in r.json()["message"]
    assert srv.manage("GET", "/models").status_code == 200


def test_ab_load_without_failures(srv, store, tmp_path):
    ab = shutil.which("ab")
    if not ab:
        pytest.skip("ab (apache2-utils) is not installed")
    body = tmp_path / "body.json"
    body.write_text(json.dumps([[0.1, 0.2, 0.3, 0.4]]))
    before = srv.metrics()
    out = subprocess.run([ab, "-q", "-n", "500", "-c", "8", "-s", "60", "-p", str(body), "-T",
                          "application/json", srv.url("/predictions/lin")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"Complete requests:\s+500\b", out.stdout), out.stdout
    assert re.search(r"Failed requests:\s+0\b", out.stdout), out.stdout
    assert "Non-2xx responses" not in out.stdout, out.stdout
    after = srv.metrics()
    labels = {"model_name": "lin", "model_version": "1.0"}
    assert metric(after, "pinfer_responses_total", code="2xx", **labels) - \
        metric(before, "pinfer_responses_total", code="2xx", **labels) == 500
    assert batches_over_one(after, "lin") > batches_over_one(before, "lin")
    assert_serving(srv, store)


# ---------------------------------------------------------------------------
# Pinned workers: CPU sets, re-pinning on scale, a worker killed under load

TOKEN = "e2e-token-0123456789"


@pytest.fixture(scope="module")
def pinned(tmp_path_factory, store):
    if len(allowed_cpus()) < 2:
        pytest.skip("pinned workers need 2 CPUs; this process may use %d" % len(allowed_cpus()))
    server = module_server(tmp_path_factory, store.path,
                           ["--models", "lin=lin.pt", "--workers", "2"],
                           management_host="0.0.0.0", token=TOKEN)
    yield server
    finish(server)


def test_management_token(pinned):
    r = pinned.manage("GET", "/models", token=False)
    assert r.status_code == 401 and "Bearer" in r.json()["message"]
    r = pinned.manage("GET", "/models", token=False, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = pinned.manage("GET", "/models", token=False,
                      headers={"Authorization": "Bearer " + TOKEN + "x"})
    assert r.status_code == 401
    assert pinned.manage("GET", "/models").status_code == 200
    address = non_loopback_address()
    if address:
        r = requests.get(pinned.url("/models", "management", host=address),
                         headers={"Authorization": "Bearer " + TOKEN}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200
        r = requests.get(pinned.url("/models", "management", host=address),
                         timeout=HTTP_TIMEOUT)
        assert r.status_code == 401
    assert pinned.get("/ping").status_code == 200  # the inference API needs no token


def masks_are(pid, cpus):
    """The worker's threads are on `cpus`: the process's Cpus_allowed_list (its main thread,
    OpenMP team thread 0) is cpus[0] (all of them before the team is pinned), every thread's
    mask is within them, and together they cover them."""
    main = proc_cpus(pid)
    masks = thread_cpus(pid)
    return (main == cpus or main == {min(cpus)}) and all(m <= cpus for m in masks.values()) \
        and set().union(*masks.values()) == cpus


def check_masks(pid, cpus):
    assert masks_are(pid, cpus), (pid, cpulist(cpus), {t: cpulist(m) for t, m in
                                                       thread_cpus(pid).items()})


def check_pinned(server, name, count):
    """The workers' CPU sets: what describe says, what /proc says, disjoint."""
    d = server.ready_workers(name, count)
    allowed = set(allowed_cpus())
    seen = set()
    for w in d["workers"]:
        cpus = parse_list(w["cpus"])
        assert cpus and cpus <= allowed, w
        assert not cpus & seen, "workers share CPUs: %s" % d["workers"]
        seen |= cpus
        check_masks(w["pid"], cpus)
        assert w["memoryNodes"] != ""
        assert environ(w["pid"]).get("OMP_NUM_THREADS") == str(len(cpus)) or \
            w["threads"] == len(cpus)
    assert parse_list(d["cpus"]) == seen
    return d


def test_pinned_workers_have_disjoint_cpu_sets(pinned):
    d = check_pinned(pinned, "lin", 2)
    metrics = pinned.metrics()
    for w in d["workers"]:
        assert metric(metrics, "pinfer_worker_cpus", model_name="lin", worker=w["id"],
                      cpus=w["cpus"]) == len(parse_list(w["cpus"]))
    # a third model finds no free core
    r = pinned.manage("POST", "/models?url=double.pt&initial_workers=1")
    assert r.status_code == 507 and "free" in r.json()["message"], r.text


class Load(object):
    """Threads sending requests until stopped; every answer kept (bounded count and time)."""

    def __init__(self, server, store, threads=4, limit=2000, path="/predictions/lin"):
        self.server, self.store, self.path = server, store, path
        self.answers = []
        self.errors = []
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.limit = limit
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, seed):
        gen = torch.Generator().manual_seed(seed)
        session = requests.Session()
        for _ in range(self.limit):
            if self.stop_flag.is_set():
                break
            x = torch.rand(1, 4, generator=gen)
            t0 = time.monotonic()
            try:
                r = session.post(self.server.url(self.path), data=json.dumps(x.tolist()),
                                 headers=JSON, timeout=HTTP_TIMEOUT)
            except requests.RequestException as error:
                with self.lock:
                    self.errors.append(repr(error))
                continue
            ok = None
            if r.status_code == 200:
                ok = torch.allclose(torch.tensor(r.json()), lin_expected(self.store, x),
                                    atol=1e-6)
            with self.lock:
                self.answers.append((r.status_code, ok, time.monotonic() - t0, r.text[:200]))

    def count(self):
        with self.lock:
            return len(self.answers)

    def wait_for(self, more, what):
        target = self.count() + more
        wait_until(lambda: self.count() >= target, 60, what)

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(HTTP_TIMEOUT + 30)
            assert not t.is_alive(), "a client thread hangs"
        assert not self.errors, self.errors[:5]
        return self.answers


def test_scaling_under_load_repins_in_place_and_loses_nothing(pinned, store):
    before = check_pinned(pinned, "lin", 2)
    pids = {w["pid"]: w["cpus"] for w in before["workers"]}
    load = Load(pinned, store)
    try:
        load.wait_for(20, "requests before scaling")
        r = pinned.manage("PUT", "/models/lin?min_worker=1&synchronous=true")
        assert r.status_code == 200, r.text

        def one_worker_moved():
            d = pinned.describe("lin")
            live = [w for w in d["workers"] if w["status"] in ("READY", "BUSY")]
            return d if len(d["workers"]) == 1 and len(live) == 1 and \
                parse_list(live[0]["cpus"]) == parse_list(before["cpus"]) else None

        d = wait_until(one_worker_moved, 60, "one worker re-pinned on the model's CPUs")
        survivor = d["workers"][0]["pid"]
        assert survivor in pids, "the survivor is one of the two workers, not restarted"
        assert d["workers"][0]["restarts"] == 0
        wait_until(lambda: masks_are(survivor, parse_list(before["cpus"])), 30,
                   "the survivor's threads moved in place")
        gone = [p for p in pids if p != survivor]
        wait_until(lambda: not [p for p in gone if pinned.ours(p)], 30, "the retired worker gone")
        load.wait_for(20, "requests on one worker")
        r = pinned.manage("PUT", "/models/lin?min_worker=2&synchronous=true")
        assert r.status_code == 200, r.text

        def two_workers():
            d = pinned.describe("lin")
            ready = [w for w in d["workers"] if w["status"] in ("READY", "BUSY")]
            mine = [w for w in ready if w["pid"] == survivor]
            return d if len(ready) == 2 and mine and \
                parse_list(mine[0]["cpus"]) != parse_list(before["cpus"]) else None

        d = wait_until(two_workers, 60, "two workers, the survivor re-pinned to its slot")
        load.wait_for(20, "requests on two workers")
    finally:
        answers = load.finish()
    assert [a for a in answers if a[0] != 200 or not a[1]] == [], "lost or wrong answers"
    assert len(answers) >= 60
    after = check_pinned(pinned, "lin", 2)
    assert survivor in {w["pid"] for w in after["workers"]}
    assert all(w["restarts"] == 0 for w in after["workers"])


def test_a_worker_killed_under_load_is_restarted(pinned, store):
    before = check_pinned(pinned, "lin", 2)
    victim = before["workers"][0]
    load = Load(pinned, store)
    try:
        load.wait_for(20, "requests before the kill")
        os.kill(victim["pid"], signal.SIGKILL)
        load.wait_for(20, "requests after the kill")

        def restarted():
            d = pinned.describe("lin")
            w = [w for w in d["workers"] if w["id"] == victim["id"]][0]
            ready = [w for w in d["workers"] if w["status"] in ("READY", "BUSY")]
            return d if w["restarts"] >= 1 and w["pid"] not in (victim["pid"], -1) and \
                len(ready) == 2 else None

        wait_until(restarted, 60, "the killed worker restarted")
        load.wait_for(20, "requests after the restart")
    finally:
        answers = load.finish()
    statuses = [a[0] for a in answers]
    assert all(s == 200 or 500 <= s < 600 for s in statuses), set(statuses)
    assert all(a[1] for a in answers if a[0] == 200), "a wrong answer"
    assert max(a[2] for a in answers) < HTTP_TIMEOUT
    assert statuses[-20:] == [200] * 20, "serving goes on after the restart"
    after = check_pinned(pinned, "lin", 2)
    assert metric(pinned.metrics(), "pinfer_worker_restarts_total", model_name="lin",
                  worker=victim["id"]) >= 1
    assert victim["pid"] not in {w["pid"] for w in after["workers"]}
    assert not pinned.ours(victim["pid"])


# ---------------------------------------------------------------------------
# A queue of 1 and a response timeout of 1 s


@pytest.fixture(scope="module")
def slow(tmp_path_factory, store):
    server = module_server(tmp_path_factory, store.path,
                           ["--models", "slow=slow", "--workers", "1", "--pinning", "none",
                            "--job-queue-size", "1", "--response-timeout", "1"])
    yield server
    finish(server)


def slow_request(server, seconds, value):
    t0 = time.monotonic()
    r = server.post("/predictions/slow", data=json.dumps({"sleep": seconds, "value": value}),
                    headers=JSON)
    return r, time.monotonic() - t0


def test_a_full_queue_answers_503_at_once(slow):
    results = {}

    def run(key, seconds):
        results[key] = slow_request(slow, seconds, key)

    first = threading.Thread(target=run, args=("first", 0.6))
    first.start()
    wait_until(lambda: slow.describe("slow")["workers"][0]["status"] == "BUSY", 10,
               "the first request in the worker")
    others = [threading.Thread(target=run, args=(k, 0.05)) for k in range(8)]
    for t in others:
        t.start()
    for t in [first] + others:
        t.join(HTTP_TIMEOUT + 10)
    r, elapsed = results["first"]
    assert r.status_code == 200 and r.json()["value"] == "first"
    statuses = sorted(results[k][0].status_code for k in range(8))
    assert statuses.count(503) >= 6 and set(statuses) <= {200, 503}, statuses
    for k in range(8):
        r, elapsed = results[k]
        if r.status_code == 503:
            assert "queue" in error_message(r)
            assert elapsed < 0.5, "a 503 waited %.2f s" % elapsed
        else:
            assert r.json()["value"] == k
    r, _ = slow_request(slow, 0, "after")
    assert r.status_code == 200


def test_response_timeout_answers_504_and_restarts_the_worker(slow):
    before = slow.describe("slow")["workers"][0]
    r, elapsed = slow_request(slow, 5, "late")
    assert r.status_code == 504 and "timeout" in error_message(r)
    assert 0.9 < elapsed < 4, elapsed

    def restarted():
        w = slow.describe("slow")["workers"][0]
        return w if w["status"] == "READY" and w["restarts"] >= 1 else None

    w = wait_until(restarted, 60, "the worker restarted after the timeout")
    assert w["pid"] != before["pid"] and not slow.ours(before["pid"])
    r, _ = slow_request(slow, 0, "again")
    assert r.status_code == 200 and r.json()["value"] == "again"
    assert r.json()["pid"] == w["pid"]


# ---------------------------------------------------------------------------
# Unbound workers


def physical_cores():
    """Physical cores among the CPUs this process may use."""
    allowed = set(allowed_cpus())
    return len({(c["socket"], c["core_first"]) for c in live_topology()["cpus"]
                if c["cpu"] in allowed})


@pytest.mark.parametrize("mode", ["none", "threads"])
def test_unbound_pinning_modes(start, store, mode):
    workers = 2
    server = start(store.path, ["--models", "lin=lin.pt", "--workers", str(workers),
                                "--pinning", mode])
    d = server.ready_workers("lin", workers)
    cores = physical_cores()
    want = cores if mode == "none" else max(1, cores // workers)
    allowed = set(allowed_cpus())
    assert d["cpus"] == ""
    x = torch.rand(4, 4)
    r = server.post("/predictions/lin", data=json.dumps(x.tolist()), headers=JSON)
    assert torch.allclose(torch.tensor(r.json()), lin_expected(store, x), atol=1e-6)
    for w in d["workers"]:
        assert w["cpus"] == "" and w["memoryNodes"] == ""
        assert w["threads"] == want, (mode, w)
        env = environ(w["pid"])
        assert env.get("OMP_NUM_THREADS") == str(want)
        for name in ("KMP_AFFINITY", "OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY"):
            assert name not in env, (name, env.get(name))
        for tid, mask in thread_cpus(w["pid"]).items():
            assert mask == allowed, "%s: thread %d bound to %s" % (mode, tid, cpulist(mask))
    server.stop()


# ---------------------------------------------------------------------------
# Shutdown


def test_sigterm_finishes_the_requests_in_flight(start, store):
    """One request in the worker and two queued behind it when SIGTERM comes: all three
    are answered, then the server exits 0."""
    server = start(store.path, ["--models", "slow=slow", "--workers", "1", "--pinning", "none"])
    results = {}

    def run(k):
        results[k] = slow_request(server, 0.5, k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()

    def one_running_two_queued():
        d = server.describe("slow")
        return d["workers"][0]["status"] == "BUSY" and d["queued"] == 2

    wait_until(one_running_two_queued, 10, "one request in the worker, two queued")
    server.signal(signal.SIGTERM)
    for t in threads:
        t.join(HTTP_TIMEOUT + 10)
    for k in range(3):
        r, _ = results[k]
        assert r.status_code == 200 and r.json()["value"] == k, (k, r.text)
    server.stop(already_signalled=True)
    with pytest.raises(requests.ConnectionError):
        server.get("/ping", timeout=5)


def test_sigterm_right_after_a_worker_was_sigkilled(start, store):
    server = start(store.path, ["--models", "lin=lin.pt,slow=slow", "--workers", "1",
                                "--pinning", "none"])
    victim = server.describe("slow")["workers"][0]["pid"]
    server.describe("lin")
    os.kill(victim, signal.SIGKILL)
    server.signal(signal.SIGTERM)
    server.stop(already_signalled=True)

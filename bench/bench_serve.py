"""Benchmark of `pinfer serve`: the front end's own cost, pinfer against what users build
instead (FastAPI under uvicorn), what pinning the workers is worth, and the front end's
memory.

Sections (--only, comma-separated; default all, in this order):

  frontend  the identity model, 1 worker, concurrency 1, one keep-alive connection
            (http.client): p50 of (client latency - Pinfer-Handler-Us, the worker's own
            time on the batch that held the request); target under 100 us.  Beside it
            an echo server (the client's and loopback's own cost: the floor) and FastAPI
            (its endpoint's own time, X-Handler-Us).
  identity  `ab -c 16` on the identity model, W workers each: pinfer with batching
            (--batch-size 8 --max-batch-delay 5) against FastAPI (no batching, as typical
            user code): requests per second, p99, the ratio; target >= 3x.
  resnet    the same on torchvision's ResNet-18 (random weights, traced): pinfer serves
            a TorchServe archive with the built-in image_classifier handler, FastAPI the
            same TorchScript file, both get the same JPEG; target >= 1.3x.
  pinning   pinfer --pinning pinned against --pinning none on ResNet-18, W workers, runs
            interleaved (pinned, none, pinned, none ...): medians and their ratio.
  memory    VmRSS of the pinfer process with 4 models loaded, once ready and after load;
            target under 30 MB.

W is the number of physical cores this process may use (--workers).  The models are
made here in a temporary folder; nothing is downloaded.  The servers are started here on
127.0.0.1 (pinfer with port 0, reading the `inference: URL` line and waiting for
`ready`; uvicorn on a port found free by binding port 0) and stopped at the end, even on
Ctrl-C or an error: SIGTERM, then SIGKILL to what is left of it (its process group and
descendants) after a grace period; anything that had to be killed is noted at the end.
Every load run is bounded by a request count and a time (default 20000 requests and
20 s, after a warm-up; --quick 300 and 3 s).  When
`PINFER serve --help` fails, the pinfer rows print "skipped" and the rest still runs.
The pinfer workers get PYTHONPATH=python/ of this repository unless PYTHONPATH is set
(they import the pinfer package: run `make python` first).

    make && make python
    /usr/bin/python3 bench/bench_serve.py [--quick] [--pinfer PATH] [--requests N]
                                          [--only frontend,identity,resnet,pinning,memory]
"""
import argparse
import collections
import http.client
import json
import math
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("frontend", "identity", "resnet", "pinning", "memory")
GRACE = 10  # seconds a server has to stop after SIGTERM before its group is killed
START_TIMEOUT = 300  # seconds a server has to become ready (models loaded)
REQUEST_TIMEOUT = 60  # seconds any one request may take

# An HTTP/1.1 server answering each request with its own body and `Pinfer-Handler-Us: 0`
# at once: what the keep-alive client and loopback cost by themselves.  It prints its
# address as pinfer serve does.
ECHO_SERVER = r'''
import re, socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print("inference: http://127.0.0.1:%d" % s.getsockname()[1])
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while True:
        data = c.recv(65536)
        if not data:
            break
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            m = re.search(rb"(?im)^content-length:\s*(\d+)", buf[:end])
            n = int(m.group(1)) if m else 0
            if len(buf) < end + 4 + n:
                break
            body, buf = buf[end + 4:end + 4 + n], buf[end + 4 + n:]
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Pinfer-Handler-Us: 0\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    c.close()
'''


class BenchError(Exception):
    """A section could not be measured; the message says why."""


def log(message):
    """Progress, on stderr: the figures go to stdout."""
    print("bench_serve: " + message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Settings and the machine


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Benchmark of pinfer serve against FastAPI/uvicorn.",
        epilog="Sections: " + ", ".join(SECTIONS) + ".  See the top of this file.")
    parser.add_argument("--quick", action="store_true",
                        help="small runs, all sections in about a minute (the smoke test's)")
    parser.add_argument("--pinfer", default=os.path.join(ROOT, "build", "pinfer"),
                        help="the pinfer binary (default build/pinfer of this repository)")
    parser.add_argument("--requests", type=int,
                        help="requests per load run (default 20000; --quick 300)")
    parser.add_argument("--seconds", type=int,
                        help="time limit of each load run (default 20; --quick 3)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help="comma-separated sections to run (default all)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="ab's -c in the resnet and pinning sections (default 16)")
    parser.add_argument("--identity-concurrency", type=int, default=64,
                        help="ab's -c in the identity section, where batching is measured "
                             "(default 64)")
    parser.add_argument("--workers", type=int,
                        help="workers of each server in identity, resnet and pinning "
                             "(default: the physical cores this process may use)")
    parser.add_argument("--rounds", type=int,
                        help="pinned/none rounds of the pinning section (default 3; --quick 1)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="pinfer's --batch-size in the identity section (default 32)")
    parser.add_argument("--identity-keep-alive", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="ab -k in the identity section: connections reused, as HTTP "
                             "client libraries do (default on)")
    parser.add_argument("--resnet-batch-size", type=int, default=4,
                        help="pinfer's --batch-size in the resnet section (default 4)")
    parser.add_argument("--fastapi-threads", default=None,
                        help="torch threads of each FastAPI worker in the resnet section: "
                             "'default' (torch's own choice on this machine), 'cores' (the "
                             "physical cores: torch's choice where it counts them right) or a "
                             "number (default: both 'default' and 'cores', two baselines)")
    parser.add_argument("--max-batch-delay", type=int, default=5,
                        help="pinfer's --max-batch-delay in the identity section (ms; default 5)")
    parser.add_argument("--resnet-input", choices=("image", "tensor"), default="image",
                        help="image: a JPEG, pinfer serving an archive with image_classifier "
                             "(default); tensor: a JSON list (1, 3, 224, 224), pinfer serving "
                             "the TorchScript file with the tensor handler")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python of the workers and of uvicorn (default this one)")
    args = parser.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s]
    unknown = [s for s in args.only if s not in SECTIONS]
    if unknown or not args.only:
        parser.error("--only: unknown section %s (sections: %s)"
                     % (",".join(unknown) or "''", ",".join(SECTIONS)))
    if args.requests is None:
        args.requests = 300 if args.quick else 20000
    if args.seconds is None:
        args.seconds = 3 if args.quick else 20
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    for name in ("requests", "seconds", "concurrency", "rounds", "batch_size"):
        if getattr(args, name) < 1:
            parser.error("--%s must be at least 1" % name.replace("_", "-"))
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.requests < args.concurrency:
        parser.error("--requests must be at least --concurrency (ab needs -n >= -c)")
    return args


def physical_cores(cpus):
    """How many cores (package, core id) the CPUs `cpus` are on."""
    cores = set()
    for cpu in cpus:
        base = "/sys/devices/system/cpu/cpu%d/topology/" % cpu
        try:
            with open(base + "physical_package_id") as f:
                package = f.read().strip()
            with open(base + "core_id") as f:
                core = f.read().strip()
            cores.add((package, core))
        except OSError:
            cores.add(("cpu", cpu))
    return len(cores)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def pinfer_serve_missing(pinfer):
    """None when `pinfer serve --help` works, else why not (one line)."""
    try:
        proc = subprocess.run([pinfer, "serve", "--help"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return "%s serve --help: %s" % (pinfer, error)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return "%s serve --help exits %d%s" % (pinfer, proc.returncode,
                                               ": " + lines[0] if lines else "")
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command_line(argv):
    return " ".join(shlex.quote(str(a)) for a in argv)


# ---------------------------------------------------------------------------
# Models and inputs, made in a temporary folder


class Models(object):
    """The models and request bodies, each made on first use."""

    def __init__(self, folder):
        self.folder = folder
        self._made = {}

    def _once(self, key, make):
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def path(self, name):
        return os.path.join(self.folder, name)

    def identity(self):
        """identity.pt: a traced module returning its input."""
        def make():
            import torch

            class Identity(torch.nn.Module):
                def forward(self, x):
                    return x

            torch.jit.trace(Identity(), torch.rand(1, 16)).save(self.path("identity.pt"))
            return "identity.pt"
        return self._once("identity", make)

    def identity_body(self):
        """A (1, 16) tensor as a JSON list."""
        return json.dumps([[round(i / 16.0, 4) for i in range(16)]]).encode()

    def resnet(self):
        """resnet18.pt: torchvision's ResNet-18, random weights, traced; and resnet18.mar,
        a TorchServe archive of it with the built-in image_classifier handler."""
        def make():
            import torch
            import torchvision
            log("tracing ResNet-18 (random weights)")
            torch.manual_seed(0)
            net = torchvision.models.resnet18(weights=None).eval()
            with torch.no_grad():
                torch.jit.trace(net, torch.rand(1, 3, 224, 224)).save(self.path("resnet18.pt"))
            manifest = {"createdOn": "01/01/2025 00:00:00", "runtime": "python",
                        "archiverVersion": "0.9.0",
                        "model": {"modelName": "resnet18", "modelVersion": "1.0",
                                  "serializedFile": "resnet18.pt",
                                  "handler": "image_classifier"}}
            with zipfile.ZipFile(self.path("resnet18.mar"), "w", zipfile.ZIP_STORED) as z:
                z.writestr("MAR-INF/MANIFEST.json", json.dumps(manifest, indent=2))
                z.write(self.path("resnet18.pt"), "resnet18.pt")
            return "resnet18.pt", "resnet18.mar"
        return self._once("resnet", make)

    def image(self):
        """image.jpg: a 640x480 picture (gradients and stripes), the same for every server."""
        def make():
            import numpy as np
            from PIL import Image
            y, x = np.mgrid[0:480, 0:640]
            rgb = np.stack([x * 255 // 639, y * 255 // 479, ((x // 40 + y // 40) % 2) * 200],
                           axis=2).astype(np.uint8)
            Image.fromarray(rgb).save(self.path("image.jpg"), format="JPEG", quality=90)
            with open(self.path("image.jpg"), "rb") as f:
                return f.read()
        return self._once("image", make)

    def resnet_tensor_body(self):
        def make():
            import torch
            torch.manual_seed(1)
            values = torch.rand(1, 3, 224, 224).mul(1e4).round().div(1e4).tolist()
            return json.dumps(values).encode()
        return self._once("resnet_tensor_body", make)

    def body_file(self, name, body):
        path = self.path(name)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(body)
        return path


# ---------------------------------------------------------------------------
# Servers


def processes():
    """{pid: (parent pid, process group, start time)} of the live (not zombie) processes."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        if len(fields) > 19 and fields[0] != "Z":
            table[int(entry)] = (int(fields[1]), int(fields[2]), fields[19])
    return table


def family(pid, known=()):
    """The processes of `pid`'s process group, its descendants (a worker may have a group
    of its own), and those of `known` (pid, start time) still alive: sorted pids."""
    table = processes()
    members = {p for p, (_, group, _) in table.items() if group == pid}
    members |= {p for p, start in known if p in table and table[p][2] == start}
    grew = True
    while grew:
        more = {p for p, (parent, _, _) in table.items() if parent in members | {pid}}
        grew = not more <= members
        members |= more
    return sorted(members)


def kill_all(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def vm_status(pid, key):
    """A /proc/PID/status field in MB (VmRSS, VmHWM), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class Server(object):
    """A server process in a session of its own, so that it stops with every process it
    started; its output is read by threads (the pipes never fill) and kept for errors."""

    def __init__(self, label, argv, env=None, shown=None):
        self.label, self.argv = label, [str(a) for a in argv]
        self.lines = collections.deque(maxlen=60)
        self.urls = {}
        self.ready = False
        self.startups, self.bound = 0, False
        self.warmed = set()
        self.cond = threading.Condition()
        log("starting %s: %s" % (label, shown or command_line(self.argv)))
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, start_new_session=True)
        self.threads = [threading.Thread(target=self._read, args=(stream, name), daemon=True)
                        for stream, name in ((self.proc.stdout, "stdout"),
                                             (self.proc.stderr, "stderr"))]
        for thread in self.threads:
            thread.start()

    def _read(self, stream, name):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self.cond:
                self.lines.append(line)
                self._seen(name, line.strip())
                self.cond.notify_all()

    def _seen(self, stream, line):
        """pinfer serve's start-up lines on stdout, uvicorn's on stderr."""
        if stream == "stdout":
            m = re.match(r"(inference|management|metrics): (http://\S+)$", line)
            if m:
                self.urls[m.group(1)] = m.group(2)
            elif line == "ready":
                self.ready = True
        elif "Application startup complete" in line:
            self.startups += 1
        elif "Uvicorn running on" in line:  # printed once its socket is bound
            self.bound = True

    def tail(self):
        with self.cond:
            return "\n".join("    " + line for line in list(self.lines)[-12:])

    def wait_until(self, done, what, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not done():
                if self.proc.poll() is not None:
                    raise BenchError("%s exited with status %d before %s; its last lines:\n%s"
                                     % (self.label, self.proc.returncode, what, self.tail()))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError("%s: no %s within %d s; its last lines:\n%s"
                                     % (self.label, what, timeout, self.tail()))
                self.cond.wait(min(remaining, 0.5))

    @property
    def url(self):
        return self.urls["inference"]

    def stop(self):
        """SIGTERM to the server, then SIGKILL to its process group (workers included)
        after GRACE seconds; returns a note when some process had to be killed."""
        pid, note = self.proc.pid, None
        table = processes()
        known = [(p, table[p][2]) for p in family(pid) if p in table]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(GRACE)
            except subprocess.TimeoutExpired:
                note = "%s: did not stop within %d s of SIGTERM: killed" % (self.label, GRACE)
                kill_all([pid] + family(pid, known))
                self.proc.wait()
        deadline = time.monotonic() + GRACE
        while family(pid, known) and time.monotonic() < deadline:
            time.sleep(0.1)
        if family(pid, known):
            note = "%s: processes %s still running %d s after it exited: killed" \
                % (self.label, family(pid, known), GRACE)
            kill_all(family(pid, known))
            time.sleep(0.5)
        for thread in self.threads:
            thread.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
        if family(pid, known):
            note = "%s: processes %s survived SIGKILL" % (self.label, family(pid, known))
        return note


class Servers(object):
    """Every server this run starts, by key, started on first use and stopped by
    stop_all() (or when no later section needs it)."""

    def __init__(self, args, models):
        self.args, self.models = args, models
        self.running = {}
        self.notes = []
        self.env = dict(os.environ)
        if not self.env.get("PYTHONPATH"):
            self.env["PYTHONPATH"] = os.path.join(ROOT, "python")

    def pinfer(self, key, model_specs, options):
        """pinfer serve with these models (NAME=FILE in the store) and options."""
        if key not in self.running:
            argv = [self.args.pinfer, "serve", "--model-store", self.models.folder,
                    "--models", ",".join(model_specs),
                    "--inference-address", "http://127.0.0.1:0",
                    "--management-address", "http://127.0.0.1:0",
                    "--metrics-address", "http://127.0.0.1:0",
                    "--python", self.args.python] + [str(o) for o in options]
            server = self.running[key] = Server("pinfer serve (%s)" % key, argv, self.env)
            server.wait_until(lambda: server.ready and "inference" in server.urls,
                              "`ready` line")
        return self.running[key]

    def fastapi(self, key, model_specs, workers, threads="default"):
        """uvicorn with bench/serve_fastapi.py, `workers` processes, these models."""
        if key not in self.running:
            port = free_port()
            argv = [self.args.python, "-m", "uvicorn", "--app-dir", os.path.join(ROOT, "bench"),
                    "serve_fastapi:app", "--host", "127.0.0.1", "--port", port,
                    "--workers", workers, "--log-level", "info", "--no-access-log"]
            env = dict(os.environ, SERVE_FASTAPI_MODELS=",".join(
                "%s=%s" % (name, self.models.path(f))
                for name, f in (s.split("=", 1) for s in model_specs)))
            if threads == "cores":
                threads = str(physical_cores(sorted(os.sched_getaffinity(0))))
            if threads != "default":
                env["OMP_NUM_THREADS"] = threads
            server = self.running[key] = Server("fastapi (%s)" % key, argv, env)
            server.urls["inference"] = "http://127.0.0.1:%d" % port
            server.wait_until(lambda: server.bound and server.startups >= workers,
                              "'Uvicorn running on' and 'Application startup complete' from "
                              "each of its %d workers" % workers)
        return self.running[key]

    def echo(self):
        if "echo" not in self.running:
            server = self.running["echo"] = Server(
                "echo server", [self.args.python, "-c", ECHO_SERVER],
                shown="%s -c ECHO_SERVER (bench_serve.py)" % self.args.python)
            server.wait_until(lambda: server.ready and "inference" in server.urls,
                              "`ready` line", timeout=30)
        return self.running["echo"]

    def stop(self, key):
        server = self.running.pop(key, None)
        if server is not None:
            note = server.stop()
            if note:
                log(note)
                self.notes.append(note)

    def keep_only(self, keys):
        for key in list(self.running):
            if key not in keys:
                self.stop(key)

    def stop_all(self):
        for key in list(self.running):
            self.stop(key)


# ---------------------------------------------------------------------------
# Load: one keep-alive connection, and Apache Bench


def percentile(values, q):
    """Nearest-rank percentile q (0-100) of values."""
    ordered = sorted(values)
    return ordered[max(0, int(math.ceil(q / 100.0 * len(ordered))) - 1)]


def post(url, path, body, content_type):
    """(status, headers, body) of one POST on a connection of its own."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request("POST", path, body, {"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def pingpong(cpu_a, cpu_b, rounds=20000):
    """p50 round trip (us) of one byte between two processes over a socketpair, the parent
    on cpu_a and the child on cpu_b: what waking another process costs on this machine."""
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            a.close()
            os.sched_setaffinity(0, {cpu_b})
            while True:
                data = b.recv(64)
                if not data:
                    break
                b.send(data)
        finally:
            os._exit(0)
    b.close()
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu_a})
    times = []
    try:
        for _ in range(rounds):
            start = time.perf_counter_ns()
            a.send(b"x")
            a.recv(64)
            times.append((time.perf_counter_ns() - start) / 1000.0)
    finally:
        os.sched_setaffinity(0, before)
        a.close()
        os.waitpid(pid, 0)
    return statistics.median(times[rounds // 10:])


def resnet_key(args):
    """The resnet section's pinfer server: the pinning section's own when it batches alike."""
    return "resnet-pinned" if args.resnet_batch_size == 1 else "resnet-batched"


def keepalive(url, path, body, header, requests, seconds):
    """Sequential POSTs on one persistent connection: at most `requests` (after a warm-up)
    and `seconds`.  Per request, the client's latency and the server's own time (the
    `header`, in us)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=REQUEST_TIMEOUT)
    headers = {"Content-Type": "application/json"}
    warm = min(200, max(20, requests // 10))
    latencies, handlers, servers, connections = [], [], [], 0
    deadline = None
    try:
        for n in range(warm + requests):
            if n == warm:
                deadline = time.monotonic() + seconds
            sock = conn.sock
            start = time.perf_counter_ns()
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            data = response.read()
            elapsed = time.perf_counter_ns() - start
            if sock is None or conn.sock is not sock:
                connections += 1
            if response.status != 200:
                raise BenchError("POST %s%s: HTTP %d: %s" % (url, path, response.status,
                                                             data[:200].decode("utf-8", "replace")))
            value = response.getheader(header)
            if value is None:
                raise BenchError("POST %s%s: no %s header in the answer" % (url, path, header))
            if deadline is not None:
                latencies.append(elapsed / 1000.0)
                handlers.append(float(value))
                server = response.getheader("Pinfer-Server-Us")
                if server is not None:
                    servers.append(float(server))
                if time.monotonic() > deadline:
                    break
    finally:
        conn.close()
    overheads = [lat - h for lat, h in zip(latencies, handlers)]
    result = {"requests": len(latencies), "connections": connections,
              "latency_p50": statistics.median(latencies),
              "handler_p50": statistics.median(handlers),
              "overhead_p50": statistics.median(overheads),
              "overhead_p99": percentile(overheads, 99)}
    if len(servers) == len(handlers) and servers:
        # The server's own view: from its reading the request's headers to its answer.
        inside = [srv - h for srv, h in zip(servers, handlers)]
        result.update(server_p50=statistics.median(servers),
                      inside_p50=statistics.median(inside), inside_p99=percentile(inside, 99))
    return result


def parse_ab(text, csv_text=""):
    """Apache Bench's figures: requests per second, p50 and p99 (ms: from the -e CSV, which
    has microseconds, where it is sound, else the percentiles table), complete, failed
    (apart from "Length": ab counts an answer whose length differs from the first one's as
    failed; those are `length_failed`) and non-2xx."""
    def grab(pattern, default=None):
        m = re.search(pattern, text, re.M)
        return m.group(1) if m else default

    rps = grab(r"^Requests per second:\s+([\d.]+)")
    if rps is None:
        lines = [l for l in text.strip().splitlines() if l.strip()]
        raise BenchError("ab printed no 'Requests per second': %s"
                         % (lines[-1] if lines else "no output"))
    result = {"rps": float(rps), "complete": int(grab(r"^Complete requests:\s+(\d+)", 0)),
              "non2xx": int(grab(r"^Non-2xx responses:\s+(\d+)", 0)),
              "failed": int(grab(r"^Failed requests:\s+(\d+)", 0)), "length_failed": 0}
    m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", text)
    if m:
        result["length_failed"] = int(m.group(3))
        result["failed"] = int(m.group(1)) + int(m.group(2)) + int(m.group(4))
    table = {int(p): float(ms) for p, ms in re.findall(r"^\s+(\d+)%\s+(\d+)", text, re.M)}
    percent = {}
    for line in csv_text.splitlines():
        m = re.match(r"(\d+),([\d.]+)$", line.strip())
        if m:
            percent[int(m.group(1))] = float(m.group(2))
    for q in (50, 99):
        # ab's CSV rounds the rank up: when it passes the last request (few requests) it
        # reads an unused slot and prints 0; the table is right, to the millisecond.
        value = percent.get(q)
        if value is None or value < max([v for p, v in percent.items() if p < q] or [0]):
            value = table.get(q)
        result["p%d" % q] = value
    return result


def ab(url, body_file, content_type, concurrency, requests, seconds, keep_alive=False):
    """One Apache Bench run: POST the body file, at most `requests` and `seconds` (with
    keep_alive, -k: connections reused)."""
    csv_file = body_file + ".ab.csv"
    # -t before -n: ab's -t sets -n to 50000, a later -n bounds the run by both.
    argv = ["ab", "-q", "-r", "-s", str(REQUEST_TIMEOUT), "-t", str(seconds), "-n", str(requests),
            "-c", str(concurrency), "-p", body_file, "-T", content_type, "-e", csv_file]
    argv += ["-k"] if keep_alive else []
    argv.append(url)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=seconds + REQUEST_TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        raise BenchError("%s: still running after %d s" % (command_line(argv),
                                                           seconds + REQUEST_TIMEOUT + 30))
    csv_text = ""
    if os.path.exists(csv_file):
        with open(csv_file) as f:
            csv_text = f.read()
        os.unlink(csv_file)
    try:
        return parse_ab(proc.stdout, csv_text)
    except BenchError as error:
        raise BenchError("%s (exit %d): %s %s" % (command_line(argv), proc.returncode, error,
                                                  proc.stderr.strip()[-300:]))


# ---------------------------------------------------------------------------
# The sections


def flatten(value):
    """The leaves of nested lists, in order."""
    if isinstance(value, list):
        return [leaf for item in value for leaf in flatten(item)]
    return [value]


class Bench(object):
    """The sections, each printing its table; a BenchError says why one could not run."""

    def __init__(self, args, models, servers, pinfer_missing):
        self.args, self.models, self.servers = args, models, servers
        self.pinfer_missing = pinfer_missing
        self.workers = args.workers or physical_cores(sorted(os.sched_getaffinity(0)))

    # -- requests --------------------------------------------------------------

    def load(self, server, model, body_name, body, content_type, concurrency=None,
             keep_alive=False):
        """Warm-up, then one measured ab run on server's /predictions/model."""
        a = self.args
        c = concurrency or a.concurrency
        url = server.url + "/predictions/" + model
        body_file = self.models.body_file(body_name, body)
        warm = max(2 * c, min(a.requests // 10, 300))
        log("ab on %s /predictions/%s: warm-up %d requests, then %d requests or %d s"
            % (server.label, model, warm, a.requests, a.seconds))
        ab(url, body_file, content_type, c, warm, max(1, a.seconds // 5), keep_alive)
        return ab(url, body_file, content_type, c, max(a.requests, c), a.seconds, keep_alive)

    def resnet_request(self):
        """(body file name, body, content type) of a ResNet-18 request."""
        if self.args.resnet_input == "image":
            return "image.jpg", self.models.image(), "image/jpeg"
        return "resnet18.json", self.models.resnet_tensor_body(), "application/json"

    def resnet_model_file(self):
        pt, mar = self.models.resnet()
        return mar if self.args.resnet_input == "image" else pt

    def check_identity(self, server, model="identity"):
        body = self.models.identity_body()
        status, _, answer = post(server.url, "/predictions/" + model, body, "application/json")
        if status != 200:
            raise BenchError("%s: POST /predictions/%s: HTTP %d: %s"
                             % (server.label, model, status, answer[:300]))
        sent, got = flatten(json.loads(body)), flatten(json.loads(answer))
        if len(got) != len(sent) or \
                any(not isinstance(y, (int, float)) or abs(x - y) > 1e-4
                    for x, y in zip(sent, got)):
            raise BenchError("%s: the identity model answered %r to %r"
                             % (server.label, answer[:200], body[:200]))

    def check_resnet(self, server):
        """The top-1 class of the ResNet-18 answer (a 200 with a meaningful body)."""
        _, body, content_type = self.resnet_request()
        status, _, answer = post(server.url, "/predictions/resnet18", body, content_type)
        if status != 200:
            raise BenchError("%s: POST /predictions/resnet18: HTTP %d: %s"
                             % (server.label, status, answer[:300]))
        got = json.loads(answer)
        if isinstance(got, list) and len(got) == 1 and isinstance(got[0], dict):
            got = got[0]
        if isinstance(got, dict) and got:
            return max(got, key=got.get)
        if isinstance(got, list) and got and isinstance(got[0], list) and len(got[0]) == 1000:
            return str(max(range(1000), key=got[0].__getitem__))
        raise BenchError("%s: ResNet-18 answered %r" % (server.label, answer[:200]))

    # -- output ------------------------------------------------------------------

    @staticmethod
    def skipped():
        return "skipped: pinfer serve is not available (see the top)"

    @staticmethod
    def ratio(a, b):
        return "%.2fx" % (a / b) if a is not None and b else "-"

    @staticmethod
    def verdict(met):
        return "met" if met else "NOT met"

    def ab_row(self, label, r):
        extra = ""
        if r["length_failed"]:
            extra = "  (+%d answers of another length than the first)" % r["length_failed"]
        print("%-42s %9.1f %9.2f %9.2f %8d %7d %8d%s"
              % (label, r["rps"], r["p50"], r["p99"], r["complete"], r["failed"], r["non2xx"],
                 extra))

    def ab_header(self):
        print("%-42s %9s %9s %9s %8s %7s %8s" % ("server", "req/s", "p50 ms", "p99 ms",
                                                 "requests", "failed", "non-2xx"))

    # -- sections ----------------------------------------------------------------

    def frontend(self):
        a = self.args
        print("== frontend: the front end's own cost: identity model, 1 worker, concurrency 1,")
        print("   one keep-alive connection (http.client), at most %d requests or %d s after a "
              "warm-up;" % (a.requests, a.seconds))
        print("   conns: connections the client opened, warm-up included (1: kept alive)")
        print("   overhead = client latency - the server's own time on the request "
              "(pinfer: Pinfer-Handler-Us,")
        print("   the worker's time on the batch; FastAPI: X-Handler-Us, its endpoint's time; "
              "echo: 0)")
        identity = self.models.identity()
        body = self.models.identity_body()
        print("%-34s %8s %5s %12s %12s %13s %13s"
              % ("server", "requests", "conns", "latency p50", "handler p50", "overhead p50",
                 "overhead p99"))
        fmt = "%-34s %8d %5d %9.1f us %9.1f us %10.1f us %10.1f us"
        rows = {}

        def row(label, server, header):
            r = keepalive(server.url, "/predictions/identity", body, header, a.requests,
                          a.seconds)
            rows[label] = r
            print(fmt % (label, r["requests"], r["connections"], r["latency_p50"],
                         r["handler_p50"], r["overhead_p50"], r["overhead_p99"]), flush=True)

        row("echo server (the client's floor)", self.servers.echo(), "Pinfer-Handler-Us")
        cpus = sorted(os.sched_getaffinity(0))
        # Two placements: the front end on its worker's CPU, then on a CPU of its own (the
        # server's default when a CPU is free).  The second adds the machine's cost of waking
        # a process on another CPU, twice per request (the ping-pong lines below).
        placements = [("pinfer serve, one CPU", "frontend-shared",
                       ["--workers", 1, "--ncores-per-instance", 1, "--core-list", cpus[0],
                        "--frontend-cpus", cpus[0]])]
        if len(cpus) > 1:
            placements.append(("pinfer serve, two CPUs", "frontend-apart",
                               ["--workers", 1, "--ncores-per-instance", 1, "--core-list",
                                cpus[0], "--frontend-cpus", cpus[1]]))
        if self.pinfer_missing:
            print("%-34s %s" % ("pinfer serve", self.skipped()))
        else:
            for label, key, options in placements:
                server = self.servers.pinfer(key, ["identity=" + identity], options)
                self.check_identity(server)
                row(label, server, "Pinfer-Handler-Us")
                self.servers.stop(key)
        server = self.servers.fastapi("fastapi-1", ["identity=" + identity], 1)
        self.check_identity(server)
        row("fastapi + uvicorn", server, "X-Handler-Us")
        same, apart = pingpong(cpus[0], cpus[0]), pingpong(cpus[0], cpus[-1])
        print("socketpair ping-pong between two processes (the machine's wake-up cost): p50 "
              "%.1f us on one CPU, %.1f us across two CPUs" % (same, apart))
        for label, _, _ in placements:
            if label not in rows:
                continue
            r = rows[label]
            print("%s, client's view: p50 overhead %.1f us, %.1f us above the echo server's"
                  % (label, r["overhead_p50"],
                     r["overhead_p50"] - rows["echo server (the client's floor)"]["overhead_p50"]))
            if "inside_p50" in r:
                # The figure: the server's latency (Pinfer-Server-Us: headers read to
                # answer) minus the worker's time on the batch (Pinfer-Handler-Us).
                print("%s: front end (server latency - handler time): p50 %.1f us, p99 %.1f "
                      "us (target p50 under 100 us: %s)"
                      % (label, r["inside_p50"], r["inside_p99"],
                         self.verdict(r["inside_p50"] < 100)))

    def throughput(self, section):
        """The identity or resnet section: pinfer against FastAPI under ab, in interleaved
        rounds (pinfer, fastapi, pinfer, ...), medians compared."""
        a, w = self.args, self.workers
        if section == "identity":
            c = a.identity_concurrency
            print("== identity: ab -c %d%s, identity model, %d workers each, %d interleaved "
                  "rounds, at most %d requests or %d s per run"
                  % (c, " -k" if a.identity_keep_alive else "", w, a.rounds, a.requests,
                     a.seconds))
            label = "pinfer (batch %d, delay %d ms)" % (a.batch_size, a.max_batch_delay)
            target = 3.0
        else:
            c = a.concurrency
            form = ("a JPEG, image_classifier archive" if a.resnet_input == "image"
                    else "a JSON (1, 3, 224, 224) list, tensor handler")
            print("== resnet: ab -c %d, ResNet-18 (%s), %d workers each, %d interleaved rounds, "
                  "at most %d requests or %d s per run"
                  % (c, form, w, a.rounds, a.requests, a.seconds))
            label = "pinfer (pinned, batch %d)" % a.resnet_batch_size
            target = 1.3
        print("   fastapi: no batching (one request per forward pass, as typical user code), "
              "unpinned, torch's default threads")
        self.ab_header()
        top1, servers = {}, {}
        if self.pinfer_missing:
            print("%-34s %s" % (label, self.skipped()))
        else:
            if section == "identity":
                server = self.servers.pinfer(
                    "identity", ["identity=" + self.models.identity()],
                    ["--workers", w, "--batch-size", a.batch_size,
                     "--max-batch-delay", a.max_batch_delay])
                self.check_identity(server)
                request = ("identity.json", self.models.identity_body(), "application/json")
            else:
                server = self.servers.pinfer(resnet_key(a),
                                             ["resnet18=" + self.resnet_model_file()],
                                             ["--workers", w, "--batch-size",
                                              a.resnet_batch_size, "--max-batch-delay",
                                              a.max_batch_delay])
                top1["pinfer"] = self.check_resnet(server)
                request = self.resnet_request()
            servers["pinfer"] = (server, section if section == "identity" else "resnet18",
                                 request, label)
        if section == "identity":
            baselines = [("fastapi", "default", "fastapi (no batching)")]
        elif a.fastapi_threads:
            baselines = [("fastapi", a.fastapi_threads,
                          "fastapi (no batching, threads %s)" % a.fastapi_threads)]
        else:
            # torch's thread count is its own choice: on this machine it may pick 1 (some VMs),
            # where it counts cores right it picks the physical cores: both are what users get.
            baselines = [("fastapi", "default", "fastapi (torch's threads here)"),
                         ("fastapi-cores", "cores", "fastapi (threads = cores)")]
        for name, threads, row_label in baselines:
            server = self.servers.fastapi("%s-%d" % (name, w), self.fastapi_models(), w, threads)
            if section == "identity":
                self.check_identity(server)
                request = ("identity.json", self.models.identity_body(), "application/json")
                model = "identity"
            else:
                top1[name] = self.check_resnet(server)
                request = self.resnet_request()
                model = "resnet18"
            servers[name] = (server, model, request, row_label)
        runs = {name: [] for name in servers}
        for n in range(a.rounds):
            for name in servers:
                server, model, request, row_label = servers[name]
                r = self.load(server, model, *request, concurrency=c,
                              keep_alive=section == "identity" and a.identity_keep_alive)
                runs[name].append(r)
                self.ab_row("%s, round %d" % (row_label, n + 1), r)
        results = {}
        for name, rs in runs.items():
            results[name] = {"rps": statistics.median(r["rps"] for r in rs),
                             "p50": statistics.median(r["p50"] for r in rs),
                             "p99": statistics.median(r["p99"] for r in rs),
                             "complete": sum(r["complete"] for r in rs),
                             "failed": sum(r["failed"] for r in rs),
                             "non2xx": sum(r["non2xx"] for r in rs),
                             "length_failed": sum(r["length_failed"] for r in rs)}
            self.ab_row("%s, median" % servers[name][3], results[name])
        for name, _, row_label in baselines:
            if "pinfer" not in results:
                print("pinfer/%s: - (pinfer skipped)" % name)
                continue
            p, f = results["pinfer"], results[name]
            print("pinfer / %s: throughput %s (target >= %.1fx: %s), p99 %s (lower is better)"
                  % (row_label, self.ratio(p["rps"], f["rps"]), target,
                     self.verdict(p["rps"] >= target * f["rps"]), self.ratio(p["p99"], f["p99"])))
        if len(set(top1.values())) > 1:
            print("note: the top-1 classes differ (%s): not the same work?"
                  % ", ".join("%s %s" % item for item in sorted(top1.items())))

    def fastapi_models(self):
        """The models of the W-worker FastAPI server: those its sections need."""
        specs = []
        if "identity" in self.args.only:
            specs.append("identity=" + self.models.identity())
        if "resnet" in self.args.only:
            specs.append("resnet18=" + self.models.resnet()[0])
        return specs

    def pinning(self):
        a, w = self.args, self.workers
        print("== pinning: pinfer --pinning pinned vs none, ResNet-18 (%s), %d workers, ab -c %d,"
              % (a.resnet_input, w, a.concurrency))
        print("   %d interleaved rounds (pinned, none, ...), at most %d requests or %d s per run"
              % (a.rounds, a.requests, a.seconds))
        if self.pinfer_missing:
            print(self.skipped())
            return
        spec = ["resnet18=" + self.resnet_model_file()]
        servers = {"pinned": self.servers.pinfer("resnet-pinned", spec, ["--workers", w]),
                   "none": self.servers.pinfer("resnet-none", spec,
                                               ["--workers", w, "--pinning", "none"])}
        for server in servers.values():
            self.check_resnet(server)
        print("%-8s %14s %10s %14s %10s" % ("round", "pinned req/s", "p99 ms", "none req/s",
                                            "p99 ms"))
        runs = {"pinned": [], "none": []}
        for n in range(a.rounds):
            for mode in ("pinned", "none"):
                r = self.load(servers[mode], "resnet18", *self.resnet_request())
                if r["failed"] or r["non2xx"]:
                    print("round %d, %s: %d failed, %d non-2xx" % (n + 1, mode, r["failed"],
                                                                  r["non2xx"]))
                runs[mode].append(r)
            print("%-8d %14.1f %10.2f %14.1f %10.2f"
                  % (n + 1, runs["pinned"][-1]["rps"], runs["pinned"][-1]["p99"],
                     runs["none"][-1]["rps"], runs["none"][-1]["p99"]), flush=True)
        med = {mode: (statistics.median(r["rps"] for r in runs[mode]),
                      statistics.median(r["p99"] for r in runs[mode])) for mode in runs}
        print("%-8s %14.1f %10.2f %14.1f %10.2f" % ("median", med["pinned"][0], med["pinned"][1],
                                                   med["none"][0], med["none"][1]))
        print("pinned/none: throughput %s, p99 %s (lower is better)"
              % (self.ratio(med["pinned"][0], med["none"][0]),
                 self.ratio(med["pinned"][1], med["none"][1])))

    def memory(self):
        a = self.args
        print("== memory: the pinfer process's resident memory with 4 models loaded "
              "(--workers 1 each, --pinning none:")
        print("   4 workers start on any machine; the front end's memory does not depend on "
              "pinning)")
        if self.pinfer_missing:
            print(self.skipped())
            return
        identity = self.models.identity()
        pt, mar = self.models.resnet()
        server = self.servers.pinfer("memory", ["identity=" + identity, "identity2=" + identity,
                                                "resnet18=" + mar, "resnet18_tensor=" + pt],
                                     ["--workers", 1, "--pinning", "none"])
        time.sleep(1)
        pid = server.proc.pid

        def row(label):
            rss, hwm = vm_status(pid, "VmRSS"), vm_status(pid, "VmHWM")
            if rss is None:
                raise BenchError("no VmRSS in /proc/%d/status" % pid)
            workers = [p for p in family(pid) if p != pid]
            total = sum(vm_status(p, "VmRSS") or 0 for p in workers)
            print("%-40s %9.1f %9.1f %18.1f (%d)" % (label, rss, hwm, total, len(workers)),
                  flush=True)
            return rss

        print("%-40s %9s %9s %23s" % ("", "VmRSS MB", "VmHWM MB", "other processes MB (n)"))
        ready = row("pinfer, once ready")
        self.check_identity(server)
        self.check_identity(server, "identity2")
        n = min(a.requests, 1000)
        for model in ("identity", "identity2"):
            ab(server.url + "/predictions/" + model,
               self.models.body_file("identity.json", self.models.identity_body()),
               "application/json", a.concurrency, n, a.seconds)
        ab(server.url + "/predictions/resnet18",
           self.models.body_file("image.jpg", self.models.image()), "image/jpeg",
           a.concurrency, a.concurrency * 2, a.seconds)
        loaded = row("pinfer, after %d + %d + %d requests" % (n, n, a.concurrency * 2))
        print("pinfer front end: VmRSS %.1f MB ready, %.1f MB after load (target under 30 MB: %s)"
              % (ready, loaded, self.verdict(max(ready, loaded) < 30)))


# ---------------------------------------------------------------------------


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    cpus = sorted(os.sched_getaffinity(0))
    import torch
    print("bench_serve: %s" % command_line([sys.executable] + sys.argv))
    print("machine: %d CPUs usable (%d physical cores), %s; torch %s (default threads here: %d)"
          % (len(cpus), physical_cores(cpus), cpu_model(), torch.__version__,
             torch.get_num_threads()))
    missing = pinfer_serve_missing(args.pinfer)
    if missing:
        print("pinfer: %s: its rows are skipped" % missing)
    else:
        print("pinfer: %s serve; workers' PYTHONPATH=%s"
              % (args.pinfer, os.environ.get("PYTHONPATH") or os.path.join(ROOT, "python")))
    print("fastapi: bench/serve_fastapi.py under uvicorn --workers N (async def endpoint, "
          "torch.jit.load, no batching, unpinned)")
    failed = []
    with tempfile.TemporaryDirectory(prefix="pinfer-bench-serve-") as folder:
        models = Models(folder)
        servers = Servers(args, models)
        bench = Bench(args, models, servers, missing)
        needs = {"frontend": {"echo", "frontend-shared", "frontend-apart", "fastapi-1"},
                 "identity": {"identity", "fastapi-%d" % bench.workers},
                 "resnet": {resnet_key(args), "fastapi-%d" % bench.workers,
                            "fastapi-cores-%d" % bench.workers},
                 "pinning": {"resnet-pinned", "resnet-none"}, "memory": {"memory"}}
        selected = [s for s in SECTIONS if s in args.only]
        try:
            for n, section in enumerate(selected):
                print()
                try:
                    if section in ("identity", "resnet"):
                        bench.throughput(section)
                    else:
                        getattr(bench, section)()
                except BenchError as error:
                    print("error: %s" % error)
                    failed.append(section)
                except (OSError, ValueError, http.client.HTTPException) as error:
                    print("error: %s: %s" % (type(error).__name__, error))
                    failed.append(section)
                sys.stdout.flush()
                servers.keep_only(set().union(*(needs[s] for s in selected[n + 1:])))
        except KeyboardInterrupt:
            print("\nbench_serve: interrupted", flush=True)
            return 130
        finally:
            servers.stop_all()
            for note in servers.notes:
                print("note: %s" % note)
    if failed:
        print("\nbench_serve: %s failed" % ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

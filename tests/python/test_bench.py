"""`pinfer bench` end to end: real pinfer serve servers under the built-in load generator
and Apache Bench, real program instances, the report files read back and the page
rendered by a real browser; every failure the command must survive (an unknown
configuration, a model that does not load, a server killed under load, a program that
prints no metric) measured as one failed configuration among measured ones.

The served model is tiny (a pooling layer and a linear layer on a 224x224 image, served
by the built-in image_classifier handler), so that each configuration takes seconds."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, allowed_cpus, pinfer_path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_browser import check_report_renders  # noqa: E402

PYTHON = "/usr/bin/python3"
# Every run below is bounded: its own --duration plus start-up; a hung run fails here.
RUN_TIMEOUT = 240
WORKERS = 2 if len(allowed_cpus()) >= 2 else 1


def env():
    e = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), PINFER_PYTHON=PYTHON)
    e.pop("TMPDIR", None)
    return e


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """tiny.pt: average pooling + a 3 -> 10 linear layer, traced (TorchScript)."""
    folder = tmp_path_factory.mktemp("model")
    path = folder / "tiny.pt"
    code = ("import torch\n"
            "torch.manual_seed(0)\n"
            "net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),"
            " torch.nn.Linear(3, 10)).eval()\n"
            "torch.jit.trace(net, torch.rand(1, 3, 224, 224)).save(%r)\n" % str(path))
    subprocess.run([PYTHON, "-c", code], check=True, timeout=120)
    return path


def bench(args, tmp_path, name="report", timeout=RUN_TIMEOUT, kill_server_after=None):
    """Run pinfer bench with --report tmp_path/name; (process, report folder, stderr).
    kill_server_after: SIGKILL the first pinfer serve it starts that many seconds after
    that server printed its addresses (a server dying under load)."""
    report = tmp_path / name
    command = [pinfer_path(), "bench", "--report", str(report)] + list(args)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env(), text=True)
    killed = None
    if kill_server_after is not None:
        killed = kill_first_server(proc.pid, kill_server_after)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("pinfer bench did not end within %d s:\n%s" % (timeout, err))
    proc.stdout_text, proc.stderr_text, proc.killed = out, err, killed
    return proc, report


def children(pid):
    found = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                found += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return found


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def kill_first_server(bench_pid, after):
    """Wait for bench's first `pinfer serve` child to have workers, then kill it after
    `after` seconds; its pid."""
    end = time.monotonic() + 120
    while time.monotonic() < end:
        for pid in children(bench_pid):
            if b"serve" in cmdline(pid)[1:2] and children(pid):
                time.sleep(after)
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.1)
    raise AssertionError("pinfer bench started no server within 120 s")


def read_report(report):
    with open(report / "bench.json") as f:
        doc = json.load(f)
    with open(report / "bench.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return doc, rows


def configs_of(doc):
    return {c["name"]: c for c in doc["configs"]}


def no_process_left(report):
    """No process still runs with the report folder (its model store) on its command line."""
    needle = str(report).encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and any(needle in word for word in cmdline(int(entry))):
            raise AssertionError("process %s still runs: %r" % (entry, cmdline(int(entry))))


def serve_args(tiny_model, *extra):
    return ["--model", str(tiny_model), "--handler", "image_classifier",
            "--workers", str(WORKERS), "--python", PYTHON] + list(extra)


# ---- serving --------------------------------------------------------------------


def test_three_configurations_measured_reported_and_rendered(tiny_model, tmp_path):
    proc, report = bench(serve_args(tiny_model, "--duration", "3", "--warmup", "1"), tmp_path)
    assert proc.returncode == 0, proc.stderr_text
    out = proc.stdout_text
    for name in ("default", "threads", "pinned"):
        assert "\n" + name + " " in out
    assert "verdict: " in out
    assert "report: %s/report.html" % report in out
    doc, rows = read_report(report)
    configs = configs_of(doc)
    assert list(configs) == ["default", "threads", "pinned"]
    cores = configs["default"]["threads"]
    for c in configs.values():
        assert c["error"] is None
        assert c["workers"] == WORKERS
        assert c["requests"] > 0 and c["throughput"] > 0
        assert 0 < c["p50_ms"] <= c["p90_ms"] <= c["p99_ms"] <= c["max_ms"]
        pcts = [p["pct"] for p in c["cdf"]]
        assert pcts == sorted(pcts) and pcts[-1] == 100
        assert len(c["cpu_map"]["busy"]) >= 2
        assert all(len(row) == len(c["cpu_map"]["cpus"]) for row in c["cpu_map"]["busy"])
        assert c["migrations_per_s"] is not None
        assert "pinfer serve" in c["command"] or " serve " in c["command"]
    # default: a thread per physical core of the share in each worker; threads: its share
    assert configs["threads"]["threads"] == max(1, cores // WORKERS)
    assert "--pinning none" in configs["default"]["command"]
    assert "--pinning threads" in configs["threads"]["command"]
    assert "--pinning pinned" in configs["pinned"]["command"]
    assert configs["default"]["throughput_ratio"] == pytest.approx(1.0)
    assert doc["baseline"] == "default"
    assert [r["Configuration"] for r in rows] == ["default", "threads", "pinned"]
    assert float(rows[2]["TS throughput"]) == pytest.approx(configs["pinned"]["throughput"])
    assert "default" in proc.stderr_text and "[3/3] pinned" in proc.stderr_text
    check_report_renders(str(report / "report.html"), tmp_path)
    no_process_left(report)


def test_apache_bench_as_load_generator(tiny_model, tmp_path):
    proc, report = bench(serve_args(tiny_model, "--configs", "pinned", "--load-generator", "ab",
                                    "--duration", "2", "--warmup", "1"), tmp_path)
    assert proc.returncode == 0, proc.stderr_text
    doc, _ = read_report(report)
    c = configs_of(doc)["pinned"]
    assert c["error"] is None and c["requests"] > 0 and c["throughput"] > 0
    assert 0 < c["p50_ms"] <= c["p99_ms"] <= c["max_ms"]
    assert "Apache Bench" in doc["load"]
    no_process_left(report)


def test_open_loop_keeps_the_rate(tiny_model, tmp_path):
    rate, seconds = 40, 3
    proc, report = bench(serve_args(tiny_model, "--configs", "pinned", "--rate", str(rate),
                                    "--duration", str(seconds), "--warmup", "1"), tmp_path)
    assert proc.returncode == 0, proc.stderr_text
    c = configs_of(read_report(report)[0])["pinned"]
    # Requests are sent on the schedule whatever the answers do: the count is the rate's.
    assert rate * seconds * 0.8 <= c["requests"] <= rate * seconds * 1.2 + 2
    assert "open loop" in read_report(report)[0]["load"]


def test_requests_count_instead_of_duration(tiny_model, tmp_path):
    proc, report = bench(serve_args(tiny_model, "--configs", "threads", "--requests", "60",
                                    "--warmup", "0"), tmp_path)
    assert proc.returncode == 0, proc.stderr_text
    c = configs_of(read_report(report)[0])["threads"]
    assert c["requests"] == 60 and c["failed"] == 0


def test_variants_set_the_allocator_and_openmp(tiny_model, tmp_path):
    proc, report = bench(serve_args(tiny_model, "--configs", "pinned+default-allocator+gomp",
                                    "--duration", "1", "--warmup", "0"), tmp_path)
    assert proc.returncode == 0, proc.stderr_text
    c = configs_of(read_report(report)[0])["pinned+default-allocator+gomp"]
    assert "--memory-allocator default" in c["command"]
    assert "--omp-runtime default" in c["command"]


def test_unknown_configuration_the_others_still_measured(tiny_model, tmp_path):
    proc, report = bench(serve_args(tiny_model, "--configs", "default,fast,pinned",
                                    "--duration", "1", "--warmup", "0"), tmp_path)
    assert proc.returncode == 2
    assert "pinfer: error: --configs: 'fast' is not a configuration" in proc.stderr_text
    configs = configs_of(read_report(report)[0])
    assert "not a configuration" in configs["fast"]["error"]
    assert configs["default"]["error"] is None and configs["default"]["throughput"] > 0
    assert configs["pinned"]["error"] is None and configs["pinned"]["throughput"] > 0
    assert "FAILED" in proc.stdout_text


def test_model_that_does_not_load(tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"this is not TorchScript")
    proc, report = bench(["--model", str(broken), "--handler", "image_classifier",
                          "--workers", "1", "--python", PYTHON, "--configs", "threads,pinned",
                          "--duration", "1", "--warmup", "0"], tmp_path)
    assert proc.returncode == 1
    configs = configs_of(read_report(report)[0])
    for c in configs.values():
        assert "during start-up" in c["error"], c["error"]
    assert proc.stderr_text.count("FAILED") == 2
    no_process_left(report)


def test_server_killed_under_load_the_next_still_measured(tiny_model, tmp_path):
    proc, report = bench(serve_args(tiny_model, "--configs", "pinned,threads",
                                    "--duration", "6", "--warmup", "0"), tmp_path,
                         kill_server_after=2)
    assert proc.returncode == 1, proc.stderr_text
    configs = configs_of(read_report(report)[0])
    assert "killed by signal 9" in configs["pinned"]["error"]
    assert "during the run" in configs["pinned"]["error"]
    assert configs["threads"]["error"] is None and configs["threads"]["throughput"] > 0
    no_process_left(report)


def test_json_on_standard_output(tiny_model, tmp_path):
    proc, report = bench(serve_args(tiny_model, "--configs", "pinned", "--duration", "1",
                                    "--warmup", "0", "--json"), tmp_path)
    assert proc.returncode == 0, proc.stderr_text
    doc = json.loads(proc.stdout_text)
    assert doc == read_report(report)[0]


# ---- programs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    subprocess.run(["make", "-C", ROOT, "-s", "build/pinfer-demo"], check=True)
    return os.path.join(ROOT, "build", "pinfer-demo")


def test_program_mode_with_the_demo_workload(demo, tmp_path):
    proc, report = bench(["--workers", str(WORKERS), "--no-python",
                          "--metric", r"([0-9.]+) inferences/s", "--",
                          demo, "--seconds", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr_text
    doc, rows = read_report(report)
    assert doc["mode"] == "program" and doc["unit"] == "inferences/s"
    configs = configs_of(doc)
    assert list(configs) == ["default", "threads", "pinned"]
    for c in configs.values():
        assert c["error"] is None and c["throughput"] > 0 and c["requests"] == WORKERS
        assert c["p99_ms"] is None and c["cdf"] in (None, [])
    assert configs["threads"]["threads"] == max(1, configs["default"]["threads"] // WORKERS)
    # No latencies in program mode: no CDF; the other charts are there.
    check_report_renders(str(report / "report.html"), tmp_path,
                         kinds=("throughput", "heatmap", "locality"))


def test_program_without_metric_counts_runs(tmp_path):
    proc, report = bench(["--workers", "1", "--configs", "pinned", "--no-python", "--",
                          "/bin/sleep", "0.5"], tmp_path)
    assert proc.returncode == 0, proc.stderr_text
    c = configs_of(read_report(report)[0])["pinned"]
    assert c["requests"] == 1
    assert 0.5 < c["throughput"] <= 2.0  # one run of about half a second


def test_program_that_prints_no_metric(tmp_path):
    proc, report = bench(["--workers", "1", "--configs", "threads,pinned", "--no-python",
                          "--metric", r"([0-9.]+) items/s", "--", "/bin/echo", "hello"],
                         tmp_path)
    assert proc.returncode == 1
    configs = configs_of(read_report(report)[0])
    for c in configs.values():
        assert "printed nothing that --metric" in c["error"]


def test_program_that_fails(tmp_path):
    proc, report = bench(["--workers", "1", "--configs", "pinned", "--no-python", "--",
                          "/bin/sh", "-c", "echo broken >&2; exit 3"], tmp_path)
    assert proc.returncode == 1
    c = configs_of(read_report(report)[0])["pinned"]
    assert "exited with status 3" in c["error"] and "broken" in c["error"]


def test_program_stopped_at_duration(tmp_path):
    script = "while true; do echo '5 items/s'; sleep 0.2; done"
    proc, report = bench(["--workers", "1", "--configs", "pinned", "--no-python",
                          "--duration", "1.5", "--metric", r"([0-9.]+) items/s", "--",
                          "/bin/sh", "-c", script], tmp_path)
    assert proc.returncode == 0, proc.stderr_text
    c = configs_of(read_report(report)[0])["pinned"]
    assert c["throughput"] == pytest.approx(5.0)
    assert c["duration_s"] < 5


def test_program_stopped_before_a_run_completes(tmp_path):
    proc, report = bench(["--workers", "1", "--configs", "pinned", "--no-python",
                          "--duration", "1", "--", "/bin/sleep", "30"], tmp_path)
    assert proc.returncode == 1
    c = configs_of(read_report(report)[0])["pinned"]
    assert "no instance completed a run within --duration 1 s" in c["error"]
    assert c["duration_s"] < 15  # stopped, not waited for


def tmux(*args):
    return subprocess.run(["tmux", "-L", "pinfer-bench-test"] + list(args),
                          capture_output=True, text=True, timeout=30)


def test_progress_redrawn_in_a_terminal(tmp_path):
    """On a terminal the progress line of a configuration is redrawn in place: while it
    runs one line shows it; at the end one closing line per configuration, then the
    table."""
    script = "for i in 1 2 3 4 5 6; do echo '5 items/s'; sleep 0.5; done"
    command = "%s bench --report %s --workers 1 --configs threads,pinned --no-python " \
              "--metric '([0-9.]+) items/s' -- /bin/sh -c \"%s\"" % (
                  pinfer_path(), tmp_path / "r", script)
    tmux("kill-server")
    try:
        assert tmux("new-session", "-d", "-s", "b", "-x", "160", "-y", "40",
                    "bash --norc --noprofile").returncode == 0
        tmux("send-keys", "-t", "b", "clear; %s; echo EXIT=$?" % command, "Enter")
        screen, seen_running, deadline = "", False, time.time() + 60
        while time.time() < deadline and "EXIT=" not in screen:
            time.sleep(0.3)
            screen = tmux("capture-pane", "-t", "b", "-p").stdout
            seen_running |= "of 1 instances running" in screen
        assert "EXIT=0" in screen, screen
        assert seen_running, screen
        lines = screen.splitlines()
        assert [l for l in lines if l.startswith("[1/2] threads:")] == [
            "[1/2] threads: 5.0 items/s, 1 runs, 0 failed"], screen
        assert len([l for l in lines if l.startswith("[2/2] pinned:")]) == 1, screen
        assert any(l.startswith("verdict: ") for l in lines)
    finally:
        tmux("kill-server")


# ---- usage ----------------------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--metric", "([0-9]+)"], "--metric is for a PROGRAM"),
    (["--metric", "no group", "--", "/bin/true"], "no group"),
    (["--metric", "([0-9", "--", "/bin/true"], "--metric"),
    (["--workers", "4096"], "more than the"),
    (["--model", "x.pt", "--", "/bin/true"], "--model is for serving"),
    (["--rate", "0"], "--rate"),
    (["--load-generator", "wrk"], "not one of builtin, ab"),
    (["--configs", ","], "no configuration"),
    (["--handler", "image_classifier"], "--handler goes with --model"),
    (["--model", "/nonexistent/m.pt"], "--model /nonexistent/m.pt"),
])
def test_usage_errors(args, message, tmp_path):
    proc, report = bench(args, tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr_text
    lines = proc.stderr_text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pinfer: error: ")
    assert message in lines[0]
    assert proc.stdout_text == ""

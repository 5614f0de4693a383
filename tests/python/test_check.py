"""`pinfer check` on live processes the tests start with known affinity and thread counts:
the findings must be exactly the expected ones.  Busy threads are the OpenMP demo workload
(build/pinfer-demo) or a spinning Python; CPUs come from the machine (allowed_cpus), never
by number.  Each check runs a 1 s window; every process started is killed at the end.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, allowed_cpus, launcher_cpus, pinfer_path

SPIN = "import time\nend = time.time() + %d\nwhile time.time() < end: pass\n"
DEMO = os.path.join(ROOT, "build", "pinfer-demo")


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # each started in its own session: its children too
        except ProcessLookupError:
            pass
        p.wait(timeout=10)


def spin(procs, cpus, seconds=8):
    p = subprocess.Popen(["taskset", "-c", ",".join(map(str, cpus)), sys.executable, "-c",
                          SPIN % seconds], start_new_session=True)
    procs.append(p)
    return p


def demo(procs, threads, argv_prefix=(), seconds=8, env=None):
    if not os.path.exists(DEMO):
        subprocess.run(["make", "-C", ROOT, "-s", "demo"], check=True)
    e = dict(os.environ, OMP_NUM_THREADS=str(threads), **(env or {}))
    p = subprocess.Popen(list(argv_prefix) + [DEMO, "--seconds", str(seconds)], env=e,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    procs.append(p)
    return p


def check(*args):
    proc = subprocess.run([pinfer_path(), "check", "--duration", "1", "--json"] + list(args),
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout else None), proc.stderr


def codes(report, pid=None):
    return sorted({f["code"] for f in report["findings"] if pid is None or f["pid"] == pid})


def wait_busy(seconds=0.7):
    time.sleep(seconds)  # past interpreter start-up


def test_two_busy_processes_on_one_cpu(procs):
    cpu = allowed_cpus()[0]
    a, b = spin(procs, [cpu]), spin(procs, [cpu])
    wait_busy()
    status, report, err = check(str(a.pid), str(b.pid))
    assert status == 1, err
    assert codes(report) == ["OVERLAP", "OVERSUBSCRIBED"], report["findings"]
    overlap = [f for f in report["findings"] if f["code"] == "OVERLAP"][0]
    assert str(cpu) in overlap["message"] and overlap["advice"]
    for p in report["processes"]:
        assert p["cpus_allowed"] == [cpu]
        assert [t["busy"] for t in p["threads"]] == [True]


def test_two_busy_threads_floating(procs):
    cpus = allowed_cpus()
    if len(cpus) < 2:
        pytest.skip("needs 2 CPUs, this process may use %d" % len(cpus))
    p = demo(procs, 2, ["taskset", "-c", "%d,%d" % (cpus[0], cpus[1])],
             env={"OMP_PROC_BIND": "false"})
    wait_busy()
    status, report, err = check(str(p.pid))
    assert status == 1, err
    assert "FLOATING" in codes(report), report
    assert report["processes"][0]["env"]["OMP_NUM_THREADS"] == "2"


def test_the_same_under_pinfer_run_is_ok(procs):
    cpus = launcher_cpus(2)  # two cores of one node: the plan gives the instance both
    if len(cpus) < 2:
        pytest.skip("needs 2 cores on one NUMA node, this process may use %d" % len(cpus))
    runner = demo(procs, 2, [pinfer_path(), "run", "--no-python", "--core-list",
                             "%d,%d" % (cpus[0], cpus[1]), "--"])
    wait_busy(1.5)
    # A window in which another job on a shared machine took the CPUs makes the pinned
    # threads wait on their run queues (OVERSUBSCRIBED, rightly); a wrong placement shows in
    # every window. Up to three windows.
    for _ in range(3):
        status, report, err = check(str(runner.pid))
        if status == 0 or set(codes(report)) != {"OVERSUBSCRIBED"}:
            break
    assert status == 0, (report, err)
    assert report["findings"] == []
    threads = report["processes"][0]["threads"]
    busy = [t for t in threads if t["busy"]]
    assert len(busy) == 2
    assert sorted(t["cpus_allowed"][0] for t in busy) == sorted(cpus)
    assert all(len(t["cpus_allowed"]) == 1 for t in busy)
    # The text form says why it is OK.
    text = subprocess.run([pinfer_path(), "check", "--duration", "1", str(runner.pid)],
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0
    assert "OK: process %d: 2 busy threads on CPUs" % runner.pid in text.stdout


def test_children_of_a_launcher(procs):
    cpu = allowed_cpus()[0]
    parent = subprocess.Popen(["/bin/sh", "-c", "taskset -c %d %s -c '%s' & taskset -c %d %s "
                               "-c '%s' & wait" % (cpu, sys.executable, SPIN % 6, cpu,
                                                    sys.executable, SPIN % 6)],
                              start_new_session=True)
    procs.append(parent)
    wait_busy()
    status, report, err = check("--children", str(parent.pid))
    assert status == 1, err
    assert len(report["processes"]) == 2
    assert "OVERLAP" in codes(report)


def test_vanished_pid_and_thread_exiting_mid_window(procs):
    short = spin(procs, allowed_cpus()[:1], seconds=1)
    wait_busy(0.3)
    # It exits during the 1 s window: reported as last seen, no error.
    status, report, err = check(str(short.pid))
    assert status in (0, 1), err
    assert report["processes"][0]["pid"] == short.pid
    short.wait(timeout=10)
    status, report, err = check(str(short.pid))
    assert status == 2 and "no process %d" % short.pid in err


def test_usage_errors():
    for args, message in ((["x1"], "not a PID"), ([], "give PIDs"),
                          (["--all", "1"], "one of them"), (["--duration", "0", "1"], "seconds")):
        proc = subprocess.run([pinfer_path(), "check"] + args, capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def tmux(*args):
    return subprocess.run(["tmux", "-L", "pinfer-test"] + list(args), capture_output=True,
                          text=True, timeout=30)


def test_watch_in_a_terminal(procs):
    """--watch as a person sees it: in tmux (80x30), the map, the legend and the findings on
    screen, redrawn; Ctrl-C leaves the shell's screen as it was and exits 0."""
    cpu = allowed_cpus()[0]
    a, b = spin(procs, [cpu], seconds=15), spin(procs, [cpu], seconds=15)
    wait_busy()
    tmux("kill-server")
    try:
        assert tmux("new-session", "-d", "-s", "w", "-x", "80", "-y", "30",
                    "bash --norc --noprofile").returncode == 0
        tmux("send-keys", "-t", "w", "clear; echo BEFORE; %s check --watch %d %d; echo EXIT=$?"
             % (pinfer_path(), a.pid, b.pid), "Enter")
        screen, deadline = "", time.time() + 15
        while time.time() < deadline and "frame 2" not in screen:
            time.sleep(0.5)
            screen = tmux("capture-pane", "-t", "w", "-p").stdout
        assert "frame 2" in screen, screen
        assert "socket 0 (node" in screen
        assert "A = process %d" % a.pid in screen and "B = process %d" % b.pid in screen
        assert "OVERLAP" in screen
        assert "%d[" % cpu in screen  # the CPU's cell
        assert all(len(l) <= 80 for l in screen.splitlines())
        tmux("send-keys", "-t", "w", "C-c")
        deadline = time.time() + 10
        while time.time() < deadline and "EXIT=" not in screen:
            time.sleep(0.5)
            screen = tmux("capture-pane", "-t", "w", "-p").stdout
        assert "EXIT=0" in screen, screen
        assert "BEFORE" in screen and "socket 0" not in screen  # the map is gone
    finally:
        tmux("kill-server")


def test_watch_needs_a_terminal():
    proc = subprocess.run([pinfer_path(), "check", "--watch", str(os.getpid())],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "terminal" in proc.stderr


def test_thread_exiting_mid_window(procs):
    """A thread that ends inside the window: the check goes on, without it."""
    code = ("import threading, time\n"
            "def short():\n    e = time.time() + 0.6\n    while time.time() < e: pass\n"
            "t = threading.Thread(target=short); t.start()\n"
            "e = time.time() + 6\nwhile time.time() < e: time.sleep(0.01)\n")
    p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    procs.append(p)
    time.sleep(0.4)
    status, report, err = check(str(p.pid))
    assert status in (0, 1), err
    assert len(report["processes"]) == 1
    assert len(report["processes"][0]["threads"]) == 1  # the short thread is gone

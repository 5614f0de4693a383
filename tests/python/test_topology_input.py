"""--topology as input: what is read (regular files, standard input as `-`) and what is
refused at once (a FIFO, a folder, a device, a terminal), and how long large inputs take.

A FIFO with no writer used to block `pinfer plan --topology FIFO` for ever (open() waits
for a writer); each call here has a timeout, so a hang is a failure, not a stuck suite.
The large-input tests time whole `pinfer` processes on 100,000-CPU lscpu files written
here, in the shapes that were quadratic before (docs/topology.md, "Large inputs").
"""
import os
import subprocess
import time

import pytest

from conftest import ROOT

WORKED16 = os.path.join(ROOT, "tests", "fixtures", "worked16.lscpu")
TIMEOUT = 20


def call(pinfer, args, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([pinfer] + args, capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=ROOT, **kw)


@pytest.mark.parametrize("command", ["plan", "topo"])
def test_fifo_is_refused_at_once(pinfer, tmp_path, command):
    fifo = tmp_path / "cpus.fifo"
    os.mkfifo(fifo)
    proc = call(pinfer, [command, "--topology", str(fifo)])
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("pinfer: error: %s: is a FIFO; a topology must be a regular file "
                           "(`-` reads standard input)\n" % fifo)


def test_fifo_behind_a_symlink_is_refused(pinfer, tmp_path):
    fifo = tmp_path / "cpus.fifo"
    os.mkfifo(fifo)
    link = tmp_path / "cpus.lscpu"
    link.symlink_to(fifo)
    proc = call(pinfer, ["plan", "--topology", str(link)])
    assert proc.returncode == 2 and "is a FIFO" in proc.stderr


def test_fifo_from_the_environment_is_refused(pinfer, tmp_path):
    fifo = tmp_path / "cpus.fifo"
    os.mkfifo(fifo)
    env = dict(os.environ, PINFER_TOPOLOGY=str(fifo))
    proc = call(pinfer, ["topo"], env=env)
    assert proc.returncode == 2 and "is a FIFO" in proc.stderr


@pytest.mark.parametrize("path,kind", [(os.path.join(ROOT, "tests"), "a folder"),
                                       ("/dev/null", "a device"), ("/dev/zero", "a device")])
def test_not_a_regular_file(pinfer, path, kind):
    proc = call(pinfer, ["plan", "--topology", path])
    assert proc.returncode == 2
    assert proc.stderr == ("pinfer: error: %s: is %s; a topology must be a regular file "
                           "(`-` reads standard input)\n" % (path, kind))


def test_symlink_to_a_file_is_read(pinfer, tmp_path):
    link = tmp_path / "cpus.lscpu"
    link.symlink_to(WORKED16)
    proc = call(pinfer, ["plan", "--topology", str(link), "--json"])
    assert proc.returncode == 0 and '"cpus": 16' in proc.stdout


def test_stdin_as_dash(pinfer):
    with open(WORKED16) as f:
        text = f.read()
    piped = call(pinfer, ["plan", "--topology", "-", "--ninstances", "2"], stdin=None,
                 input=text)
    named = call(pinfer, ["plan", "--topology", WORKED16, "--ninstances", "2"])
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[0] == \
        "topology: - (16 CPUs, 8 cores, 2 sockets, 2 NUMA nodes)"
    assert piped.stdout.splitlines()[1:] == named.stdout.splitlines()[1:]


def test_stdin_through_a_pipe_and_errors_name_it(pinfer):
    """`lscpu -e | pinfer topo --topology -`: a pipe on standard input is read to its end;
    a malformed line is reported as `-:LINE`."""
    writer = subprocess.Popen(["printf", "# CPU,Core,Socket,Node\\n0,0,0,0\\n1,x,0,0\\n"],
                              stdout=subprocess.PIPE)
    proc = subprocess.run([pinfer, "topo", "--topology", "-"], stdin=writer.stdout,
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
    writer.stdout.close()
    writer.wait()
    assert proc.returncode == 2
    assert proc.stderr == "pinfer: error: -:3: core 'x' is not a non-negative integer\n"


def test_stdin_non_blocking_pipe_is_waited_on(pinfer):
    """A standard input left O_NONBLOCK by its maker: read() says EAGAIN until data comes."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    proc = subprocess.Popen([pinfer, "plan", "--topology", "-", "--json"], stdin=r,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    os.close(r)
    time.sleep(0.2)
    with open(WORKED16, "rb") as f:
        os.write(w, f.read())
    os.close(w)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    assert out.startswith('{"topology": {"source": "-", "cpus": 16')


def test_stdin_empty_and_closed(pinfer):
    empty = call(pinfer, ["topo", "--topology", "-"])
    assert empty.returncode == 2 and "-: not lscpu output: no CPU rows" in empty.stderr
    closed = subprocess.run([pinfer, "topo", "--topology", "-"], capture_output=True, text=True,
                            timeout=TIMEOUT, cwd=ROOT, stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: os.close(0))
    assert closed.returncode == 2
    assert "-: cannot read standard input" in closed.stderr


def test_stdin_terminal_is_refused(pinfer):
    """A terminal on standard input would wait for typing: refused, with what to do."""
    master, slave = os.openpty()
    try:
        proc = subprocess.run([pinfer, "plan", "--topology", "-"], stdin=slave,
                              capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 2
    assert proc.stderr.startswith("pinfer: error: -: standard input is a terminal")


def test_run_refuses_dash_without_reading_stdin(pinfer, tmp_path):
    """run launches on this machine: `-` is refused before standard input, which the
    instances would inherit, is read."""
    script = ("import subprocess, sys\n"
              "r, w = __import__('os').pipe()\n"
              "p = subprocess.run([%r, 'run', '--topology', '-', '--no-python', 'true'],\n"
              "                   stdin=r, capture_output=True, text=True)\n"
              "import os; os.set_blocking(r, False)\n"
              "os.write(w, b'kept')\n"
              "print(p.returncode, os.read(r, 16).decode(), p.stderr.strip())\n" % pinfer)
    proc = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                          timeout=TIMEOUT)
    status, kept, err = proc.stdout.split(" ", 2)
    assert (status, kept) == ("2", "kept")
    assert "must be live" in err


# ---- large inputs ----------------------------------------------------------------


def write_lscpu(path, sockets, cores, threads, nodes_per_socket, cores_per_llc):
    """An `lscpu -p` file: sockets x cores x threads CPUs, SMT siblings numbered after all
    first threads (as on Intel servers), nodes splitting each socket evenly."""
    rows = ["# CPU,Core,Socket,Node,,L1d,L1i,L2,L3"]
    per_node = cores // nodes_per_socket
    for t in range(threads):
        for s in range(sockets):
            for c in range(cores):
                core = s * cores + c
                cpu = t * sockets * cores + core
                node = s * nodes_per_socket + c // per_node
                rows.append("%d,%d,%d,%d,,%d,%d,%d,%d" % (cpu, core, s, node, core, core, core,
                                                          core // cores_per_llc))
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def timed(pinfer, args):
    start = time.monotonic()
    proc = call(pinfer, args)
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """100,000 CPUs: 8 sockets x 6,250 cores x 2 threads, 2 nodes a socket."""
    return write_lscpu(tmp_path_factory.mktemp("big") / "big.lscpu", 8, 6250, 2, 2, 8)


@pytest.fixture(scope="module")
def many_nodes(tmp_path_factory):
    """100,000 CPUs in 50,000 NUMA nodes of one core with 2 threads each."""
    return write_lscpu(tmp_path_factory.mktemp("nodes") / "nodes.lscpu", 8, 6250, 2, 6250, 1)


@pytest.mark.parametrize("args", [["plan", "--ninstances", "64"],
                                  ["plan", "--ninstances", "64", "--json"],
                                  ["plan", "--throughput-mode"],
                                  ["plan", "--ninstances", "64", "--bind-numa-node"],
                                  ["plan", "--ninstances", "1000", "--ncores-per-instance", "4",
                                   "--strategy", "scatter"],
                                  ["topo"], ["topo", "--json"]])
def test_100k_cpus_well_under_a_second(pinfer, big, args):
    proc, seconds = timed(pinfer, args + ["--topology", big])
    assert proc.returncode == 0, proc.stderr
    assert seconds < 1.0, "%s took %.2f s" % (" ".join(args), seconds)
    if args == ["plan", "--ninstances", "64"]:
        assert proc.stdout.splitlines()[0] == \
            "topology: %s (100000 CPUs, 50000 cores, 8 sockets, 16 NUMA nodes)" % big


@pytest.mark.parametrize("args", [["plan", "--bind-numa-node", "--ninstances", "1"],
                                  ["plan", "--bind-numa-node", "--ninstances", "30000"],
                                  ["plan", "--nodes-list", "0-49999", "--ninstances", "2"],
                                  ["plan", "--ninstances", "20000", "--ncores-per-instance", "1",
                                   "--bind-numa-node", "--strategy", "scatter"],
                                  ["topo"]])
def test_50k_nodes_well_under_a_second(pinfer, many_nodes, args):
    """Steps that went over every node for each node (5 s to 46 s before)."""
    proc, seconds = timed(pinfer, args + ["--topology", many_nodes])
    assert proc.returncode == 0, proc.stderr
    assert seconds < 1.0, "%s took %.2f s" % (" ".join(args), seconds)

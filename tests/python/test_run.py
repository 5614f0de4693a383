"""`pinfer run` on this machine: real processes, real binding, real signals.

Every launcher is started in a session of its own, so that whatever it starts
(instances are in process groups of their own, but in that session) can be
found in /proc and killed by the fixture even when a test fails: no test
leaves a process behind.

Every launcher runs on CPUS, two CPUs chosen from those this process may use
(on cores of their own, on one NUMA node: conftest.launcher_cpus), as
`taskset -c` would start it: the plans below are those of a two-CPU process,
whatever the machine, and what is expected is computed from that choice.
With fewer such CPUs CPUS has one, and the tests of two instances are skipped
(and counted).
"""
import json
import os
import pty
import re
import resource
import signal
import subprocess
import time

import pytest

from conftest import ROOT, allowed_cpus, cpulist, launcher_cpus, live_topology

LIBTREE = os.path.join(ROOT, "tests", "fixtures", "libtree", "lib")
PYTHON = "/usr/bin/python3"
NO_LIBS = ["--memory-allocator", "default", "--omp-runtime", "default"]

TOPOLOGY = live_topology()
CPUS = launcher_cpus(2)
if not CPUS:
    pytest.skip("no CPU of this process (%s) is one pinfer plans on" % cpulist(allowed_cpus()),
                allow_module_level=True)
NCPUS = len(CPUS)  # 2, or 1 on a machine that has no two such CPUs
NI = str(NCPUS)  # --ninstances: one instance per CPU
C0, C1 = (CPUS + [None])[:2]
WHOLE = cpulist(CPUS)  # the launcher's mask, as Cpus_allowed_list and pinfer write it
NODE = next(c["node"] for c in TOPOLOGY["cpus"] if c["cpu"] == C0)
# The plans use every CPU of the machine (then pinfer sets no KMP_AFFINITY): a 2-CPU machine.
EVERY_CPU = len(TOPOLOGY["cpus"]) == NCPUS
MISSING = max(c["cpu"] for c in TOPOLOGY["cpus"]) + 1  # a CPU id this machine does not have
TWO_CPUS = pytest.mark.skipif(
    NCPUS < 2, reason="needs two CPUs on cores of their own on one NUMA node; this process may "
    "use CPUs %s" % cpulist(allowed_cpus()))


# ---- processes ---------------------------------------------------------------


def session_members(sid, comm=None):
    """Live (not zombie) processes of session `sid`, optionally by command name."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z" and (comm is None or name == comm):
            found.append(int(entry))
    return found


def kill_session(sid):
    for pid in session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def base_env(**extra):
    """A clean environment: the fake library tree first, no OpenMP or preload settings."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/"),
           "LANG": "C.UTF-8", "CONDA_PREFIX": os.path.dirname(LIBTREE),
           "PINFER_PYTHON": PYTHON}
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def on_cpus_without_core_dumps():
    """In the launcher's process before exec: `taskset -c CPUS`, and no core dumps."""
    os.sched_setaffinity(0, CPUS)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@pytest.fixture
def launch(pinfer, tmp_path):
    """Start `pinfer ARGS` on CPUS in its own session; every session is killed at teardown."""
    started = []

    def start(args, env=None, cwd=None, stdin=subprocess.DEVNULL):
        proc = subprocess.Popen([pinfer] + list(args), env=env or base_env(),
                                cwd=cwd or str(tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=stdin,
                                start_new_session=True,
                                preexec_fn=on_cpus_without_core_dumps)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        kill_session(proc.pid)
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture
def run(launch):
    """Run `pinfer ARGS` to the end: (status, stdout, stderr) as text."""

    def go(args, env=None, timeout=20, cwd=None):
        proc = launch(args, env=env, cwd=cwd)
        out, err = proc.communicate(timeout=timeout)
        assert session_members(proc.pid) == [], "processes left behind"
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    return go


def wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def lines(text):
    """Non-empty lines, trailing blanks dropped (numactl --show ends its lines with one)."""
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def unprefixed(out):
    """The output's lines without the "[i] " of several instances."""
    return [re.sub(r"^\[\d+\] ", "", line) for line in lines(out)]


def errors(err):
    return [line for line in err.splitlines() if line.startswith("pinfer: error: ")]


# The instance's CPU list, as the kernel says (one instance per CPU here).
CPUS_SH = "c=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status); "


# ---- placement ---------------------------------------------------------------


@TWO_CPUS
def test_two_instances_one_cpu_each(run):
    status, out, err = run(["run", "--ninstances", "2", "--no-python", "sh", "-c",
                            "grep Cpus_allowed_list /proc/self/status"])
    assert status == 0, err
    assert sorted(lines(out)) == sorted("Cpus_allowed_list:\t%d" % c for c in CPUS)
    assert errors(err) == []
    info = [line for line in err.splitlines() if line.startswith("pinfer: info: instance")]
    assert info == [
        "pinfer: info: instance %d: numactl -C %d -m %d sh -c "
        "'grep Cpus_allowed_list /proc/self/status'" % (i, c, NODE) for i, c in enumerate(CPUS)]


def test_instance_environment(run):
    script = (CPUS_SH + 'printf "%s|%s|%s|%s|%s|%s|%s/%s\\n" "$c" "$OMP_NUM_THREADS" '
              '"$LD_PRELOAD" "$KMP_BLOCKTIME" "${KMP_AFFINITY-unset}" "$KEEP" '
              '"$PINFER_INSTANCE" "$PINFER_NINSTANCES"')
    status, out, err = run(["run", "--ninstances", NI, "--no-python", "sh", "-c", script],
                           env=base_env(KEEP="kept value"))
    assert status == 0, err
    preload = "%s/libtcmalloc.so.4:%s/libiomp5.so" % (LIBTREE, LIBTREE)
    # KMP_AFFINITY also when the plan uses every CPU (it used to be left out, and
    # Intel's threads then migrated); each instance knows its index.
    compact = "granularity=fine,compact,1,0"
    assert sorted(unprefixed(out)) == sorted(
        "%d|1|%s|1|%s|kept value|%d/%d" % (c, preload, compact, i, NCPUS)
        for i, c in enumerate(CPUS))


def test_existing_values_win_with_one_warning(run):
    status, out, err = run(["run", "--ninstances", NI, "--no-python", "sh", "-c",
                            'echo "$OMP_NUM_THREADS $KMP_BLOCKTIME"'],
                           env=base_env(OMP_NUM_THREADS="7", KMP_BLOCKTIME="50"))
    assert status == 0, err
    assert lines(out) == ["7 50"] * NCPUS
    warnings = [line for line in err.splitlines() if line.startswith("pinfer: warning:")]
    assert warnings == ["pinfer: warning: keeping OMP_NUM_THREADS=7, KMP_BLOCKTIME=50 from the "
                        "environment over pinfer's values"]


def test_preload_drops_missing_entries(run, tmp_path):
    mine = tmp_path / "libmine.so"
    mine.write_bytes(b"")
    status, out, err = run(["run", "--no-python", "--omp-runtime", "default", "sh", "-c",
                            'echo "$LD_PRELOAD"'],
                           env=base_env(LD_PRELOAD="%s:/nonexistent/libgone.so" % mine))
    assert status == 0, err
    assert lines(out)[-1] == "%s:%s/libtcmalloc.so.4" % (mine, LIBTREE)
    assert "pinfer: warning: LD_PRELOAD entry /nonexistent/libgone.so does not exist: dropped" \
        in err.splitlines()


def memory_policy_script():
    # the policy of the heap mapping of this very process, and numactl's view
    return ("grep -m1 -o -E ' (bind|default|prefer|interleave)[^ ]*' /proc/self/numa_maps; "
            "numactl --show | grep -E '^(policy|membind|physcpubind)'")


def test_memory_bound(run):
    status, out, err = run(["run", "--ninstances", NI, "--no-python"] + NO_LIBS +
                           ["sh", "-c", memory_policy_script()])
    assert status == 0, err
    text = lines(out)
    assert text.count(" bind:%d" % NODE) == NCPUS, out
    assert text.count("policy: bind") == NCPUS, out
    assert text.count("membind: %d" % NODE) == NCPUS, out
    assert "memory binding is refused" not in err


def test_disable_numactl_binds_cpus_only(run):
    status, out, err = run(["run", "--ninstances", NI, "--disable-numactl", "--no-python"] +
                           NO_LIBS + ["sh", "-c", CPUS_SH + 'echo "cpus $c"; ' +
                                      memory_policy_script()])
    assert status == 0, err
    text = lines(out)
    assert sorted(l for l in text if l.startswith("cpus")) == sorted("cpus %d" % c for c in CPUS)
    assert text.count(" default") == NCPUS, out
    assert text.count("policy: default") == NCPUS, out
    assert "pinfer: info: instance 0: taskset -c %d sh -c" % C0 in err


@TWO_CPUS
@pytest.mark.parametrize("flags", [["--disable-numactl", "--disable-taskset"],
                                   ["--multi-task-manager", "none"],
                                   ["--multi_task_manager=none"]])
def test_no_binding_places_by_environment(run, flags):
    script = CPUS_SH + 'echo "$c|$OMP_PLACES|$OMP_PROC_BIND|$KMP_AFFINITY"; ' + \
        memory_policy_script()
    status, out, err = run(["run", "--ninstances", "2", "--no-python", "--omp-runtime", "default"] +
                           flags + ["sh", "-c", script])
    assert status == 0, err
    assert sorted(l for l in lines(out) if "|" in l) == sorted(
        "%s|{%d}|close|" % (WHOLE, c) for c in CPUS)
    assert lines(out).count("policy: default") == 2
    assert "pinfer: info: instance 1: (no binding) sh -c" in err
    # With Intel's runtime: an explicit proclist instead.
    status, out, err = run(["run", "--ninstances", "2", "--no-python"] + flags +
                           ["sh", "-c", 'echo "$KMP_AFFINITY"'])
    assert status == 0, err
    assert sorted(lines(out)) == sorted("granularity=fine,proclist=[%d],explicit" % c
                                        for c in CPUS)


@pytest.mark.parametrize("flags,line", [
    (["--multi-task-manager", "taskset"], "taskset -c %d" % C0),
    (["--multi-task-manager", "numactl"], "numactl -C %d -m %d" % (C0, NODE)),
    (["--multi-task-manager", "auto"], "numactl -C %d -m %d" % (C0, NODE)),
])
def test_multi_task_manager(run, flags, line):
    status, out, err = run(["run", "--ninstances", NI, "--no-python"] + NO_LIBS + flags +
                           ["sh", "-c", CPUS_SH + 'echo "$c"; ' + memory_policy_script()])
    assert status == 0, err
    assert sorted(int(l) for l in lines(out) if l.isdigit()) == CPUS
    policy = "policy: default" if "taskset" in line else "policy: bind"
    assert lines(out).count(policy) == NCPUS
    assert "pinfer: info: instance 0: %s sh -c" % line in err


# ---- a real OpenMP program under the real libraries ----------------------------

OMP_SOURCE = r"""
#define _GNU_SOURCE
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    char lines[64][128];
    int n = 0;
    double sum = 0;
#pragma omp parallel reduction(+ : sum)
    {
        cpu_set_t set;
        CPU_ZERO(&set);
        sched_getaffinity(0, sizeof set, &set); /* this thread's own mask */
        char cpus[96] = "";
        size_t len = 0;
        for (int c = 0; c < CPU_SETSIZE && len < sizeof cpus - 8; c++)
            if (CPU_ISSET(c, &set))
                len += (size_t)snprintf(cpus + len, sizeof cpus - len, "%s%d", len ? "," : "", c);
        for (int i = 0; i < 1000000; i++)
            sum += 1e-6;
#pragma omp critical
        if (n < 64)
            snprintf(lines[n++], sizeof lines[0], "thread %d/%d cpus %s", omp_get_thread_num(),
                     omp_get_num_threads(), cpus);
    }
    for (int i = 0; i < n; i++)
        puts(lines[i]);
    printf("sum %.0f\n", sum);
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[1024];
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, "malloc") || strstr(line, "omp"))
            printf("maps %s", strrchr(line, ' ') + 1);
    return 0;
}
"""


@pytest.fixture(scope="session")
def omp_program(tmp_path_factory):
    """A small OpenMP program (gcc -fopenmp: libgomp) reporting each thread's CPUs."""
    d = tmp_path_factory.mktemp("omp")
    src, exe = d / "omp.c", d / "omp"
    src.write_text(OMP_SOURCE)
    subprocess.run(["cc", "-O1", "-fopenmp", "-o", str(exe), str(src)], check=True)
    return str(exe)


def threads_of(out):
    """{thread: cpus} from the program's lines."""
    found = {}
    for line in lines(out):
        m = re.match(r"thread (\d+)/(\d+) cpus (\S+)$", line)
        if m:
            found[int(m.group(1))] = m.group(3)
    return found


def maps_of(out):
    return {os.path.basename(l.split()[1]) for l in lines(out) if l.startswith("maps ")}


def real_env():
    return base_env(CONDA_PREFIX=None)


def test_real_libraries_are_found_and_preloaded(run, omp_program):
    status, out, err = run(["run", "--no-python", "--ninstances", NI, "sh", "-c",
                            'echo "preload $LD_PRELOAD"'], env=real_env())
    assert status == 0, err
    preload = [l.split(" ", 1)[1] for l in lines(out) if l.startswith("preload ")]
    assert len(preload) == NCPUS and len(set(preload)) == 1
    entries = preload[0].split(":")
    assert len(entries) == 2, entries
    assert os.path.basename(entries[0]).startswith("libtcmalloc")
    assert re.match(r"lib(iomp5|omp5?)\.so", os.path.basename(entries[1])), entries
    assert all(os.path.isabs(e) and os.path.exists(e) for e in entries)
    # The OpenMP program runs under them: both are mapped, every thread ran.
    status, out, err = run(["run", "--no-python", omp_program], env=real_env())
    assert status == 0, err
    assert "sum %d" % NCPUS in lines(out)  # one per thread
    assert sorted(threads_of(out)) == list(range(NCPUS))
    mapped = maps_of(out)
    assert {os.path.basename(os.path.realpath(e)) for e in entries} <= mapped, mapped


@TWO_CPUS
def test_intel_runtime_compact_on_part_of_the_machine(run, omp_program):
    # One CPU of two: KMP_AFFINITY compact, the only thread on that CPU.
    status, out, err = run(["run", "--no-python", "--core-list", str(C1), omp_program],
                           env=real_env())
    assert status == 0, err
    assert threads_of(out) == {0: str(C1)}


@pytest.mark.parametrize("flags", [[], ["--disable-numactl", "--disable-taskset"]])
def test_gnu_places_pin_one_thread_per_cpu(run, omp_program, flags):
    """OMP_PROC_BIND=close with OMP_PLACES=threads (or explicit places): thread t on CPU t."""
    status, out, err = run(["run", "--no-python", "--omp-runtime", "default"] + flags +
                           [omp_program], env=real_env())
    assert status == 0, err
    assert threads_of(out) == {t: str(c) for t, c in enumerate(CPUS)}
    assert not any("iomp" in m or m.startswith("libomp") for m in maps_of(out))


def test_intel_explicit_proclist_pins_one_thread_per_cpu(run, omp_program):
    status, out, err = run(["run", "--no-python", "--disable-numactl", "--disable-taskset",
                            omp_program], env=real_env())
    assert status == 0, err
    assert threads_of(out) == {t: str(c) for t, c in enumerate(CPUS)}


# ---- exec in place, exit statuses -------------------------------------------


def test_single_instance_is_execed_in_place(launch):
    proc = launch(["run", "--no-python"] + NO_LIBS + ["sh", "-c", "echo $$; exit 3"])
    out, err = proc.communicate(timeout=10)
    assert out.decode().strip() == str(proc.pid)
    assert proc.returncode == 3
    assert errors(err.decode()) == []  # the program's status is its own: no summary


EXIT_SH = CPUS_SH + 'if [ "$c" = %d ]; then eval "$1"; else eval "$2"; fi' % C0


@TWO_CPUS
@pytest.mark.parametrize("first,second,status,summary", [
    ("exit 0", "exit 0", 0, []),
    ("exit 3", "exit 5", 3, ["instance 0 exited with status 3",
                             "instance 1 exited with status 5"]),
    ("exit 0", "exit 5", 5, ["instance 1 exited with status 5"]),
    ("exit 0", "kill -KILL $$", 137, ["instance 1 was killed by signal 9"]),
    ("kill -TERM $$", "exit 1", 143, ["instance 0 was killed by signal 15",
                                      "instance 1 exited with status 1"]),
])
def test_exit_status(run, first, second, status, summary):
    got, out, err = run(["run", "--ninstances", "2", "--no-python"] + NO_LIBS +
                        ["sh", "-c", EXIT_SH, "sh", first, second])
    assert got == status, err
    assert [e[len("pinfer: error: "):e.index(" (") if " (" in e else None]
            for e in errors(err)] == summary


# ---- signals -------------------------------------------------------------------


def wait_for_sleeps(proc, count=2):
    assert wait_for(lambda: len(session_members(proc.pid, "sleep")) == count), \
        "the instances did not start"


@TWO_CPUS
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_signal_is_forwarded(launch, sig):
    proc = launch(["run", "--ninstances", "2", "--no-python"] + NO_LIBS + ["sleep", "60"])
    wait_for_sleeps(proc)
    start = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=5)
    assert time.monotonic() - start < 2
    assert proc.returncode == 128 + sig
    assert session_members(proc.pid) == []
    assert "passing it on to the instances" in err.decode()
    assert len(errors(err.decode())) == 2


@TWO_CPUS
def test_grace_period_kills_what_ignores_the_signal(launch):
    env = base_env(PINFER_GRACE_MS="500")
    proc = launch(["run", "--ninstances", "2", "--no-python"] + NO_LIBS +
                  ["sh", "-c", 'trap "" TERM; sleep 60'], env=env)
    wait_for_sleeps(proc)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    took = time.monotonic() - start
    assert 0.4 <= took < 3, took
    assert proc.returncode == 137
    assert session_members(proc.pid) == []
    assert "killing them" in err.decode()


@TWO_CPUS
def test_nothing_left_in_an_instance_group(launch, tmp_path):
    """What an instance leaves running when it exits is not left behind."""
    proc = launch(["run", "--ninstances", "2", "--no-python", "--log-dir", str(tmp_path / "l")] +
                  NO_LIBS + ["sh", "-c", "sleep 60 & echo started"])
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert session_members(proc.pid) == []
    proc = launch(["run", "--ninstances", "2", "--no-python"] + NO_LIBS +
                  ["sh", "-c", "sleep 60 & echo started"])
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert session_members(proc.pid) == []


@TWO_CPUS
def test_signal_after_an_instance_exited(launch):
    proc = launch(["run", "--ninstances", "2", "--no-python"] + NO_LIBS +
                  ["sh", "-c", EXIT_SH, "sh", "exit 0", "exec sleep 60"])
    wait_for(lambda: len(session_members(proc.pid, "sh")) == 0)
    wait_for_sleeps(proc, 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=5)
    assert proc.returncode == 130
    assert session_members(proc.pid) == []


# ---- logs ----------------------------------------------------------------------

LOG_RE = re.compile(r"^(?P<prefix>.+)_(?P<stamp>\d{14}(?:_\d+)?)_"
                    r"(?:instance_(?P<i>\d+)_cores_(?P<cpus>[0-9_-]+)|instances)\.log$")

LOG_SH = CPUS_SH + 'echo "out $c"; echo "err $c" >&2; printf "partial $c"'


def log_files(d):
    found = {}
    for name in sorted(os.listdir(d)):
        m = LOG_RE.match(name)
        assert m, name
        found.setdefault(m.group("stamp"), []).append(name)
    return found


@TWO_CPUS
def test_log_dir_two_instances(run, tmp_path):
    d = tmp_path / "logs"  # created
    status, out, err = run(["run", "--ninstances", "2", "--log-dir", str(d), "--no-python"] +
                           NO_LIBS + ["sh", "-c", LOG_SH])
    assert status == 0, err
    runs = log_files(d)
    assert len(runs) == 1
    stamp, names = next(iter(runs.items()))
    assert names == sorted(["run_%s_instance_0_cores_%d.log" % (stamp, C0),
                            "run_%s_instance_1_cores_%d.log" % (stamp, C1),
                            "run_%s_instances.log" % stamp])
    for i, c in enumerate((C0, C1)):
        text = (d / ("run_%s_instance_%d_cores_%d.log" % (stamp, i, c))).read_text()
        assert sorted(text.splitlines()) == sorted(["out %d" % c, "err %d" % c, "partial %d" % c])
        assert text.endswith("partial %d" % c)  # the file holds the output as it was
    main = (d / ("run_%s_instances.log" % stamp)).read_text().splitlines()
    assert "pinfer: info: instance 0: numactl -C %d -m %d sh -c %s" % (
        C0, NODE, shell_quote(LOG_SH)) in main
    assert [l for l in main if l.startswith("pinfer: info: instance")] == \
        [l for l in err.splitlines() if l.startswith("pinfer: info: instance")]
    # The console: every line prefixed, partial lines completed.
    assert sorted(lines(out)) == sorted(["[%d] %s %d" % (i, what, c)
                                         for i, c in enumerate((C0, C1))
                                         for what in ("out", "err", "partial")])


@TWO_CPUS
def test_log_dir_console_lines_never_mix(run, tmp_path):
    """A line an instance writes in pieces is shown whole, whatever the others write meanwhile."""
    status, out, err = run(["run", "--ninstances", "2", "--log-dir", str(tmp_path), "--no-python"] +
                           NO_LIBS + ["sh", "-c", EXIT_SH, "sh",
                                      "printf abc; sleep 0.3; echo def",
                                      "sleep 0.1; echo other"])
    assert status == 0, err
    assert sorted(lines(out)) == ["[0] abcdef", "[1] other"]


@TWO_CPUS
def test_console_gone(launch, tmp_path):
    """`pinfer run ... | head -1`: the launcher outlives its console and still logs everything."""
    proc = launch(["run", "--ninstances", "2", "--log-dir", str(tmp_path), "--no-python"] +
                  NO_LIBS + ["sh", "-c", "sleep 0.2; i=0; while [ $i -lt 2000 ]; do echo line $i; "
                   "i=$((i+1)); done"])
    proc.stdout.close()
    proc.wait(timeout=10)
    assert proc.returncode == 0, proc.stderr.read()
    assert session_members(proc.pid) == []
    (stamp, names), = log_files(tmp_path).items()
    for name in names[:2]:
        assert len((tmp_path / name).read_text().splitlines()) == 2000


@TWO_CPUS
def test_instances_do_not_read_a_terminal(launch):
    """Instances are background process groups: a terminal on stdin is replaced by /dev/null."""
    master, slave = pty.openpty()
    try:
        proc = launch(["run", "--ninstances", "2", "--no-python"] + NO_LIBS +
                      ["sh", "-c", "readlink /proc/self/fd/0"], stdin=slave)
        out, err = proc.communicate(timeout=10)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    assert lines(out.decode()) == ["/dev/null", "/dev/null"]


def shell_quote(arg):
    return "'" + arg.replace("'", "'\\''") + "'"


def test_log_dir_one_instance_is_not_prefixed(run, tmp_path):
    status, out, err = run(["run", "--log-dir", str(tmp_path), "--log-file-prefix", "solo",
                            "--no-python"] + NO_LIBS + ["sh", "-c", 'echo "pid $$"; exit 4'])
    assert status == 4
    assert lines(out) == [l for l in lines(out) if l.startswith("pid ")] and len(lines(out)) == 1
    runs = log_files(tmp_path)
    (stamp, names), = runs.items()
    assert names == ["solo_%s_instance_0_cores_%s.log" % (stamp, WHOLE.replace(",", "_")),
                     "solo_%s_instances.log" % stamp]
    main = (tmp_path / names[1]).read_text()
    assert "pinfer: error: instance 0 exited with status 4" in main.splitlines()


def test_log_dir_never_overwrites(run, tmp_path):
    args = ["run", "--ninstances", NI, "--log-dir", str(tmp_path), "--no-python"] + NO_LIBS
    run(args + ["echo", "first"])
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    for k in range(3):
        status, out, err = run(args + ["echo", "again %d" % k])
        assert status == 0, err
    runs = log_files(tmp_path)
    assert len(runs) == 4 and all(len(names) == NCPUS + 1 for names in runs.values()), runs
    for name, content in before.items():
        assert (tmp_path / name).read_bytes() == content


def test_log_dir_nested_is_created(run, tmp_path):
    d = tmp_path / "a" / "b"
    status, out, err = run(["run", "--log-dir", str(d), "--no-python"] + NO_LIBS + ["true"])
    assert status == 0, err
    assert len(log_files(d)) == 1


def test_log_dir_that_cannot_be_made(run, tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    marker = tmp_path / "marker"
    status, out, err = run(["run", "--log-dir", str(f / "sub"), "--no-python", "touch",
                            str(marker)])
    assert status == 1
    assert len(errors(err)) == 1 and str(f) in err
    assert not marker.exists()


# ---- arguments and PROGRAM ---------------------------------------------------

STRANGE = [b"a b", b"q\"uote", b"it's", b"$HOME", b"*", b"line1\nline2", b"\xff\xfe\x80",
           b"", b"--ninstances", b"-m", b"\\", b"tab\there"]

DUMP_ARGV = ("import os, sys\n"
             "path = sys.argv[1] + '.%d' % min(os.sched_getaffinity(0))\n"
             "open(path, 'wb').write(b'\\0'.join(os.fsencode(a) for a in sys.argv[2:]))\n")


def dumped(tmp_path, prefix):
    return {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(prefix)}


@pytest.mark.parametrize("ninstances", ["1", pytest.param("2", marks=TWO_CPUS)])
def test_arguments_byte_for_byte_no_python(launch, tmp_path, ninstances):
    out_base = str(tmp_path / "argv")
    proc = launch([b"run", b"--ninstances", ninstances.encode(), b"--no-python"] +
                  [a.encode() for a in NO_LIBS] +
                  [PYTHON.encode(), b"-c", DUMP_ARGV.encode(), out_base.encode()] + STRANGE)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    got = dumped(tmp_path, "argv.")
    assert len(got) == int(ninstances)
    assert all(v == b"\0".join(STRANGE) for v in got.values())


def test_arguments_byte_for_byte_python(launch, tmp_path):
    script = tmp_path / "dump.py"
    script.write_text(DUMP_ARGV)
    out_base = str(tmp_path / "argv")
    proc = launch([b"run", b"--ninstances", NI.encode(), str(script).encode(),
                   out_base.encode()] + STRANGE)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    got = dumped(tmp_path, "argv.")
    assert len(got) == NCPUS and all(v == b"\0".join(STRANGE) for v in got.values())


SHOW_PY = ("import json, sys\n"
           "print(json.dumps({'argv': sys.argv, 'orig': sys.orig_argv,\n"
           "                  'write_through': sys.stdout.write_through,\n"
           "                  'exe': sys.executable}))\n")


def test_python_program_runs_unbuffered(run, tmp_path):
    script = tmp_path / "show.py"
    script.write_text(SHOW_PY)
    status, out, err = run(["run", str(script), "x", "--y"])
    assert status == 0, err
    shown = json.loads(out)
    assert shown["argv"] == [str(script), "x", "--y"]
    assert shown["orig"][:3] == [PYTHON, "-u", str(script)]
    assert shown["write_through"] is True
    assert "pinfer: info: instance 0: numactl -C %s -m %d %s -u %s x --y" % (
        WHOLE, NODE, PYTHON, script) in err


def test_python_module(run, tmp_path):
    (tmp_path / "mymod.py").write_text(SHOW_PY)
    status, out, err = run(["run", "-m", "mymod", "a b"], env=base_env(PYTHONPATH=str(tmp_path)))
    assert status == 0, err
    shown = json.loads(out)
    assert shown["argv"] == [str(tmp_path / "mymod.py"), "a b"]
    assert shown["orig"] == [PYTHON, "-u", "-m", "mymod", "a b"]
    data = tmp_path / "data.json"
    data.write_text('{"b": [1, 2]}')
    status, out, err = run(["run", "-m", "json.tool", "--compact", str(data)])
    assert status == 0, err
    assert out == '{"b":[1,2]}\n'



def test_first_python3_on_path(run, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "python3"
    fake.write_text('#!/bin/sh\necho "fake python $*"\n')
    fake.chmod(0o755)
    env = base_env(PINFER_PYTHON=None, PATH="%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin")))
    status, out, err = run(["run", "prog.py", "arg"], env=env)
    assert status == 0, err
    assert lines(out) == ["fake python -u prog.py arg"]
    # PINFER_PYTHON may name a program on PATH, as a command would
    status, out, err = run(["run", "prog.py"], env=dict(env, PINFER_PYTHON="python3"))
    assert status == 0, err
    assert lines(out) == ["fake python -u prog.py"]


@pytest.mark.parametrize("ninstances", ["1", pytest.param("2", marks=TWO_CPUS)])
def test_program_not_found(run, tmp_path, ninstances):
    status, out, err = run(["run", "--ninstances", ninstances, "--no-python",
                            "no-such-program-pinfer"])
    assert status == 127
    assert errors(err) == ["pinfer: error: cannot run no-such-program-pinfer: "
                           "No such file or directory"]
    assert "pinfer: info: instance" not in err  # nothing started


def test_program_not_executable(run, tmp_path):
    prog = tmp_path / "prog"
    prog.write_text("#!/bin/sh\necho hi\n")
    prog.chmod(0o644)
    status, out, err = run(["run", "--no-python", str(prog)])
    assert status == 126
    assert len(errors(err)) == 1 and "Permission denied" in err


def test_script_without_interpreter_line_runs_with_sh(run, tmp_path):
    prog = tmp_path / "prog"
    prog.write_text("echo from-sh\n")
    prog.chmod(0o755)
    status, out, err = run(["run", "--no-python", "--ninstances", NI, "./prog"], cwd=str(tmp_path))
    assert status == 0, err
    assert lines(out) == ["from-sh"] * NCPUS


# ---- usage errors: exit 2, one line, nothing ran -----------------------------


@pytest.mark.parametrize("args,text", [
    (["--bogus-option"], "unknown option '--bogus-option'"),
    (["--json"], "unknown option '--json'"),
    (["--ninstances", "0"], "--ninstances must be positive"),
    (["--ninstances", "two"], "'two' is not an integer"),
    (["--ninstances", str(NCPUS + 1)], "more than the %d core" % NCPUS),
    (["--core-list", "3-0"], "runs backwards"),
    (["--core-list", "a"], "not an id"),
    (["--core-list", str(MISSING)], "CPU %d does not exist" % MISSING),
    (["--log-file-prefix", "a/b", "--log-dir", "."], "is not a file name prefix"),
    (["--topology", os.path.join(ROOT, "tests", "fixtures", "this_2cpu.lscpu")], "must be live"),
    (["--omp-runtime", "gnu"], "'gnu' is not one of auto, default, intel"),
    (["--module", "--no-python"], "cannot be used together"),
])
def test_usage_errors(run, tmp_path, args, text):
    marker = tmp_path / "marker"
    status, out, err = run(["run"] + args + ["--", "/usr/bin/touch", str(marker)])
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("pinfer: error: ") and text in err, err
    assert not marker.exists()


def test_usage_error_no_program(run):
    status, out, err = run(["run", "--ninstances", "2"])
    assert (status, out) == (2, "")
    assert err == "pinfer: error: run: no PROGRAM to launch\n"


def test_usage_error_topology_from_environment(run, tmp_path):
    marker = tmp_path / "marker"
    env = base_env(PINFER_TOPOLOGY=os.path.join(ROOT, "tests", "fixtures", "this_2cpu.lscpu"))
    status, out, err = run(["run", "--no-python", "touch", str(marker)], env=env)
    assert status == 2 and len(err.splitlines()) == 1 and "must be live" in err
    assert not marker.exists()

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
import pwd
import re
import resource
import select
import signal
import subprocess
import time

import pytest

from conftest import ROOT, allowed_cpus, cpulist, launcher_cpus, live_topology, pinfer_path

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

    def start(args, env=None, cwd=None, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
              also=None, **popen):
        """also: more to do in the launcher's process before exec (after the user change
        that popen's user= asks for)."""

        def before_exec():
            on_cpus_without_core_dumps()
            if also:
                also()

        proc = subprocess.Popen([pinfer] + list(args), env=env or base_env(),
                                cwd=cwd or str(tmp_path), stdout=stdout,
                                stderr=subprocess.PIPE, stdin=stdin,
                                start_new_session=True, preexec_fn=before_exec, **popen)
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


def errors(err):
    return [line for line in err.splitlines() if line.startswith("pinfer: error: ")]


# The fake libraries of the fixture tree are not ELF files: ld.so says so on the
# instance's stderr, which reaches the launcher's stdout with several instances.
LD_SO_NOISE = re.compile(r"^(\[\d+\] )?ERROR: ld\.so: object '%s/" % re.escape(LIBTREE))


def program_lines(out):
    """The instances' lines on the console, prefixes kept, ld.so's about the fakes dropped."""
    return [line for line in lines(out) if not LD_SO_NOISE.match(line)]


def tagged(i, text):
    """A line of instance i as the console shows it: "[i] " when there are several."""
    return "[%d] %s" % (i, text) if NCPUS > 1 else text


def by_instance(out, n=NCPUS):
    """{i: [its console lines, unprefixed]}: with several instances every line must have
    its "[i] " prefix; one instance's lines are not prefixed."""
    found = {}
    for line in program_lines(out):
        if n == 1:
            found.setdefault(0, []).append(line)
            continue
        m = re.match(r"\[(\d+)\] (.*)$", line)
        assert m, "a line without its instance's prefix: %r" % line
        found.setdefault(int(m.group(1)), []).append(m.group(2))
    return found


PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+-@%")


def shell_word(arg):
    """One word as the launcher's lines show it (pf_shell_join; no control characters)."""
    return arg if arg and set(arg) <= PLAIN else "'" + arg.replace("'", "'\\''") + "'"


def shell_line(words):
    return " ".join(shell_word(w) for w in words)


def binding_line(i, cpus, command, how="numactl"):
    """The launcher's line for instance i on `cpus`: what is bound, and the equivalent
    command (numactl is never run)."""
    c = cpulist(cpus)
    if how == "numactl":
        text = "CPUs %s, memory node %d (numactl -C %s -m %d %s)" % (c, NODE, c, NODE, command)
    elif how == "taskset":
        text = "CPUs %s, memory not bound (taskset -c %s %s)" % (c, c, command)
    else:
        text = "not bound (%s)" % command
    return "pinfer: info: instance %d: %s" % (i, text)


def environment_line(i, assignments):
    return "pinfer: info: instance %d environment: %s" % (i, shell_line(assignments))


def fake_env(i, n=NCPUS, threads=1):
    """What the launcher sets for instance i of n with the fixture's fake libraries."""
    return ["LD_PRELOAD=%s/libtcmalloc.so.4:%s/libiomp5.so" % (LIBTREE, LIBTREE),
            "OMP_NUM_THREADS=%d" % threads, "KMP_BLOCKTIME=1",
            "KMP_AFFINITY=granularity=fine,compact,1,0",
            "PINFER_INSTANCE=%d" % i, "PINFER_NINSTANCES=%d" % n]


def gnu_env(i, n=NCPUS, threads=1):
    """What the launcher sets for instance i of n with NO_LIBS (GNU OpenMP, no preload)."""
    return ["OMP_NUM_THREADS=%d" % threads, "OMP_PROC_BIND=close", "OMP_PLACES=threads",
            "PINFER_INSTANCE=%d" % i, "PINFER_NINSTANCES=%d" % n]


DURATION = re.compile(r" after (\d+\.\d) s$")


def exits(err):
    """The launcher's exit lines, as they came, their durations as "after N s"."""
    return [DURATION.sub(" after N s", line) for line in err.splitlines()
            if re.match(r"pinfer: (info|error): instance \d+ (exited|was killed)", line)]


STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (pinfer: .*)$")


def unstamped(log_lines):
    """A launcher's log file's lines without their timestamps (each must have one)."""
    found = []
    for line in log_lines:
        m = STAMP.match(line)
        assert m, "a line without its timestamp: %r" % line
        found.append(m.group(2))
    return found


# The instance's CPU list, as the kernel says (one instance per CPU here).
CPUS_SH = "c=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status); "


# ---- placement ---------------------------------------------------------------


@TWO_CPUS
def test_two_instances_one_cpu_each(run):
    status, out, err = run(["run", "--ninstances", "2", "--no-python", "sh", "-c",
                            "grep Cpus_allowed_list /proc/self/status"])
    assert status == 0, err
    # Each line prefixed with its instance, also without --log-path (they used not to be,
    # and two instances' lines could not be told apart).
    assert sorted(program_lines(out)) == sorted("[%d] Cpus_allowed_list:\t%d" % (i, c)
                                                for i, c in enumerate(CPUS))
    # The launcher's lines, all of them: what each instance is given, then each exit as
    # it happens (in either order), and no summary at the end.
    command = "sh -c 'grep Cpus_allowed_list /proc/self/status'"
    head = [binding_line(0, [C0], command), environment_line(0, fake_env(0)),
            binding_line(1, [C1], command), environment_line(1, fake_env(1))]
    assert lines(err)[:4] == head
    assert sorted(exits(err)) == ["pinfer: info: instance %d exited 0 after N s" % i
                                  for i in (0, 1)]
    assert len(lines(err)) == 6, err


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
    assert sorted(program_lines(out)) == sorted(
        tagged(i, "%d|1|%s|1|%s|kept value|%d/%d" % (c, preload, compact, i, NCPUS))
        for i, c in enumerate(CPUS))


def test_existing_values_win_with_one_warning(run):
    status, out, err = run(["run", "--ninstances", NI, "--no-python", "sh", "-c",
                            'echo "$OMP_NUM_THREADS $KMP_BLOCKTIME"'],
                           env=base_env(OMP_NUM_THREADS="7", KMP_BLOCKTIME="50"))
    assert status == 0, err
    assert sorted(program_lines(out)) == [tagged(i, "7 50") for i in range(NCPUS)]
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
    shown = by_instance(out)
    assert sorted(shown) == list(range(NCPUS)), out
    for i, c in enumerate(CPUS):
        assert shown[i] == [" bind:%d" % NODE, "policy: bind", "physcpubind: %d" % c,
                            "membind: %d" % NODE], out
    assert "memory binding is refused" not in err


def test_disable_numactl_binds_cpus_only(run):
    status, out, err = run(["run", "--ninstances", NI, "--disable-numactl", "--no-python"] +
                           NO_LIBS + ["sh", "-c", CPUS_SH + 'echo "cpus $c"; ' +
                                      memory_policy_script()])
    assert status == 0, err
    shown = by_instance(out)
    assert sorted(shown) == list(range(NCPUS)), out
    for i, c in enumerate(CPUS):
        assert shown[i][:3] == ["cpus %d" % c, " default", "policy: default"], out
    command = shell_line(["sh", "-c", CPUS_SH + 'echo "cpus $c"; ' + memory_policy_script()])
    assert binding_line(0, [C0], command, "taskset") in lines(err)


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
    shown = by_instance(out)
    assert sorted(shown) == [0, 1], out
    for i, c in enumerate(CPUS):
        assert shown[i][0] == "%s|{%d}|close|" % (WHOLE, c)
        assert shown[i].count("policy: default") == 1
    # "not bound (<command>)"; it once read "(no binding) sh -c ...", a command that is none.
    assert binding_line(1, CPUS, shell_line(["sh", "-c", script]), "none") in lines(err)
    # With Intel's runtime: an explicit proclist instead.
    status, out, err = run(["run", "--ninstances", "2", "--no-python"] + flags +
                           ["sh", "-c", 'echo "$KMP_AFFINITY"'])
    assert status == 0, err
    assert sorted(program_lines(out)) == sorted(
        "[%d] granularity=fine,proclist=[%d],explicit" % (i, c) for i, c in enumerate(CPUS))


@pytest.mark.parametrize("flags,how", [
    (["--multi-task-manager", "taskset"], "taskset"),
    (["--multi-task-manager", "numactl"], "numactl"),
    (["--multi-task-manager", "auto"], "numactl"),
])
def test_multi_task_manager(run, flags, how):
    script = CPUS_SH + 'echo "$c"; ' + memory_policy_script()
    status, out, err = run(["run", "--ninstances", NI, "--no-python"] + NO_LIBS + flags +
                           ["sh", "-c", script])
    assert status == 0, err
    shown = by_instance(out)
    policy = "policy: default" if how == "taskset" else "policy: bind"
    assert sorted(shown) == list(range(NCPUS)), out
    for i, c in enumerate(CPUS):
        assert shown[i][0] == str(c) and shown[i].count(policy) == 1, out
    assert binding_line(0, [C0], shell_line(["sh", "-c", script]), how) in lines(err)


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
    shown = by_instance(out)
    assert sorted(shown) == list(range(NCPUS)) and all(len(v) == 1 for v in shown.values()), out
    preload = [v[0].split(" ", 1)[1] for v in shown.values() if v[0].startswith("preload ")]
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


# Each instance's exit is one line, when it happens: info for 0, an error otherwise.  (A
# summary of the failures used to come at the end, when all had exited: a failure was not
# known while the others ran.)
@TWO_CPUS
@pytest.mark.parametrize("first,second,status,outcomes", [
    ("exit 0", "exit 0", 0, ["info: instance 0 exited 0", "info: instance 1 exited 0"]),
    ("exit 3", "exit 5", 3, ["error: instance 0 exited 3", "error: instance 1 exited 5"]),
    ("exit 0", "exit 5", 5, ["info: instance 0 exited 0", "error: instance 1 exited 5"]),
    ("exit 0", "kill -KILL $$", 137, ["info: instance 0 exited 0",
                                      "error: instance 1 was killed by signal 9 (Killed)"]),
    ("kill -TERM $$", "exit 1", 143, ["error: instance 0 was killed by signal 15 (Terminated)",
                                      "error: instance 1 exited 1"]),
])
def test_exit_status(run, first, second, status, outcomes):
    got, out, err = run(["run", "--ninstances", "2", "--no-python"] + NO_LIBS +
                        ["sh", "-c", EXIT_SH, "sh", first, second])
    assert got == status, err
    assert sorted(exits(err)) == sorted("pinfer: %s after N s" % o for o in outcomes)
    assert len(errors(err)) == sum(o.startswith("error: ") for o in outcomes)


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
    # The launcher's log holds every line it wrote to stderr, each with its timestamp.
    main = unstamped((d / ("run_%s_instances.log" % stamp)).read_text().splitlines())
    assert binding_line(0, [C0], "sh -c %s" % shell_quote(LOG_SH)) in main
    assert main == lines(err)
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
    assert sorted(lines(out.decode())) == ["[0] /dev/null", "[1] /dev/null"]


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
    main = unstamped((tmp_path / names[1]).read_text().splitlines())
    assert [DURATION.sub(" after N s", l) for l in main if " exited " in l] == \
        ["pinfer: error: instance 0 exited 4 after N s"]


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
    assert binding_line(0, CPUS, shell_line([PYTHON, "-u", str(script), "x", "--y"])) in \
        lines(err)


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
    assert sorted(program_lines(out)) == [tagged(i, "from-sh") for i in range(NCPUS)]


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


# ---- what users hit (spec v3, section 5; issue 9) ----------------------------


class LiveLines:
    """The lines of a pipe as they come (the launcher's stderr or stdout, read while it
    runs), each wait bounded."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.partial = b""
        self.lines = []
        self.eof = False

    def _read(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return
        data = os.read(self.fd, 65536)
        if not data:
            self.eof = True
            return
        *done, self.partial = (self.partial + data).split(b"\n")
        self.lines += [line.decode("utf-8", "replace") for line in done]

    def wait_for(self, pattern, timeout=5.0):
        """The first line that matches, or None when it did not come in time."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if rx.search(line):
                    return line
            left = end - time.monotonic()
            if left <= 0 or self.eof:
                return None
            self._read(left)

    def rest(self, timeout=5.0):
        """Every line, up to the end of the pipe (or the timeout)."""
        end = time.monotonic() + timeout
        while not self.eof and time.monotonic() < end:
            self._read(end - time.monotonic())
        return self.lines


def alive(pid):
    """Running (not gone, not a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return False
    return text[text.rindex(")") + 2:].split()[0] != "Z"


def status_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return None


@TWO_CPUS
def test_failure_reported_while_the_other_runs(launch):
    """An instance's failure is said when it happens, while the other still runs (it used
    to be said only once every instance had ended), and only then."""
    proc = launch(["run", "--ninstances", "2", "--no-python"] + NO_LIBS +
                  ["sh", "-c", EXIT_SH, "sh", "exit 3", "exec sleep 60"])
    err = LiveLines(proc.stderr)
    assert err.wait_for(r"^pinfer: error: instance 0 exited 3 after \d+\.\d s$"), err.lines
    wait_for_sleeps(proc, 1)  # instance 1 runs on
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 3  # the lowest-index failure's status
    rest = "\n".join(err.rest())
    assert exits(rest) == ["pinfer: error: instance 0 exited 3 after N s",
                           "pinfer: error: instance 1 was killed by signal 15 (Terminated) "
                           "after N s"]
    assert session_members(proc.pid) == []


@TWO_CPUS
@pytest.mark.parametrize("failing", [0, 1])
def test_fail_fast_stops_the_others(launch, failing):
    """--fail-fast: the first failure stops the other instance at once (SIGTERM), and the
    run's status is that failure's, whichever instance failed (not the 143 of the
    SIGTERM the launcher sent)."""
    steps = ["sleep 0.3; exit 3", "exec sleep 60"]
    if failing:
        steps.reverse()
    proc = launch(["run", "--ninstances", "2", "--fail-fast", "--no-python"] + NO_LIBS +
                  ["sh", "-c", EXIT_SH, "sh"] + steps, env=base_env(PINFER_GRACE_MS="10000"))
    start = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 5  # neither the sleep nor the grace period
    err = err.decode()
    assert proc.returncode == 3, err
    other = 1 - failing
    assert exits(err) == [
        "pinfer: error: instance %d exited 3 after N s" % failing,
        "pinfer: error: instance %d was killed by signal 15 (Terminated) after N s" % other]
    assert "pinfer: info: instance %d failed: stopping the others (fail-fast)" % failing in \
        lines(err)
    assert session_members(proc.pid) == []


def test_log_file_records_each_instance(run, tmp_path):
    """The launcher's log file: a timestamp on every line, and for each instance its
    binding and command, the environment it was given, its exit status and duration."""
    d = tmp_path / "logs"
    script = 'sleep 0.3; exit "$PINFER_INSTANCE"'
    before = time.time()
    status, out, err = run(["run", "--ninstances", NI, "--log-path", str(d), "--no-python"] +
                           NO_LIBS + ["sh", "-c", script])
    after = time.time()
    assert status == (1 if NCPUS > 1 else 0), err
    (stamp, names), = log_files(d).items()
    text = (d / ("run_%s_instances.log" % stamp)).read_text().splitlines()
    for line in text:  # local time, to the millisecond
        when = STAMP.match(line).group(1)
        t = time.mktime(time.strptime(when[:19], "%Y-%m-%d %H:%M:%S")) + float(when[19:])
        assert before - 1 <= t <= after + 1, line
    logged = unstamped(text)
    assert logged == lines(err)  # the same lines as on stderr
    command = shell_line(["sh", "-c", script])
    head = []
    for i, c in enumerate(CPUS):
        head += [binding_line(i, [c], command), environment_line(i, gnu_env(i))]
    assert logged[:len(head)] == head
    ends = logged[len(head):]
    assert sorted(DURATION.sub(" after N s", l) for l in ends) == sorted(
        "pinfer: %s: instance %d exited %d after N s" % ("error" if i else "info", i, i)
        for i in range(NCPUS))
    assert all(0.3 <= float(DURATION.search(l).group(1)) < 5 for l in ends), ends


def test_sigint_ignored_by_whoever_started_the_launcher(launch, tmp_path):
    """A launcher started with SIGINT ignored (a script's background job: `trap "" INT`)
    still stops its instances with the SIGINT it passes on: they start with default
    dispositions and an empty mask (they used to inherit SIG_IGN, wait out the grace
    period and be killed: 137)."""
    proc = launch(["run", "--ninstances", NI, "--log-path", str(tmp_path / "l"), "--no-python"] +
                  NO_LIBS + ["sleep", "60"], env=base_env(PINFER_GRACE_MS="10000"),
                  also=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    wait_for_sleeps(proc, NCPUS)
    for pid in session_members(proc.pid, "sleep"):
        assert int(status_field(pid, "SigIgn"), 16) & (1 << (signal.SIGINT - 1)) == 0
        assert int(status_field(pid, "SigBlk"), 16) == 0
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - start < 5  # not the grace period
    assert proc.returncode == 130, err
    assert session_members(proc.pid) == []


def test_sigkill_of_the_launcher_leaves_no_instance(launch, tmp_path):
    """`kill -KILL` of the launcher (TorchServe's forcible stop) with --log-path: the
    instances die too (the parent-death signal); they used to run on, with parent 1."""
    proc = launch(["run", "--ninstances", NI, "--log-path", str(tmp_path / "l"), "--no-python"] +
                  NO_LIBS + ["sh", "-c", 'echo "pid $$"; exec sleep 60'])
    out = LiveLines(proc.stdout)
    pids = []
    for i in range(NCPUS):
        line = out.wait_for(r"^%spid \d+$" % re.escape(tagged(i, "")))
        assert line, out.lines
        pids.append(int(line.rsplit(" ", 1)[1]))
    assert wait_for(lambda: all(status_field(p, "Name") == "sleep" for p in pids))
    proc.kill()
    proc.wait(timeout=5)
    assert wait_for(lambda: not any(alive(p) for p in pids)), "instances left running"


@TWO_CPUS
def test_logs_on_a_full_file_system(launch, tmp_path):
    """Log files on a full file system (a 64 KiB tmpfs, 1 MB from each instance): one
    error per file that lost output, the console copy complete, exit status 1 (it was 0,
    without a word, and the files cut short)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 64 KiB tmpfs needs root")
    d = tmp_path / "full"
    d.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip("mount -t tmpfs is refused here: %s" % mounted.stderr.strip())
    console = tmp_path / "console"  # a file: a console that always keeps up
    try:
        with open(console, "wb") as f:
            proc = launch(["run", "--ninstances", "2", "--log-path", str(d), "--no-python"] +
                          NO_LIBS + ["seq", "1", "160000"], stdout=f)
        _, err = proc.communicate(timeout=60)
    finally:
        subprocess.run(["umount", "-l", str(d)])
    err = err.decode()
    assert session_members(proc.pid) == []
    assert proc.returncode == 1, err
    shown = by_instance(console.read_text())
    numbers = [str(k) for k in range(1, 160001)]
    assert shown[0] == numbers and shown[1] == numbers
    said = errors(err)
    for i in (0, 1):
        assert said.count("pinfer: error: cannot write the log file of instance %d: No space "
                          "left on device (its output from now on is missing there)" % i) == 1
    # The launcher's own file may fill up too: said once as well.
    rest = [l for l in said if "log file of instance" not in l]
    assert rest in ([], ["pinfer: error: cannot write the launcher's log file: No space left on "
                         "device (its output from now on is missing there)"]), err


def test_console_nobody_reads(launch, tmp_path):
    """With --log-path and the launcher's stdout a pipe nobody reads, the launcher still
    reads its instances' output into the log files, passes SIGTERM on at once and ends,
    and says how much of the console copy was lost (it used to block in write())."""
    d = tmp_path / "l"
    count = 600000
    size = sum(len("%d\n" % k) for k in range(1, count + 1))
    r, w = os.pipe()
    try:
        proc = launch(["run", "--ninstances", NI, "--log-path", str(d), "--no-python"] +
                      NO_LIBS + ["sh", "-c", "seq 1 %d; exec sleep 60" % count], stdout=w)
        os.close(w)
        w = -1

        def logged():
            files = [d / n for n in os.listdir(d) if "_instance_" in n] if d.exists() else []
            return len(files) == NCPUS and all(os.path.getsize(f) == size for f in files)

        assert wait_for(logged, 20), "the launcher stopped reading its instances' output"
        wait_for_sleeps(proc, NCPUS)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - start < 5
        err = err.decode()
        assert proc.returncode == 143, err
        assert sorted(exits(err)) == [
            "pinfer: error: instance %d was killed by signal 15 (Terminated) after N s" % i
            for i in range(NCPUS)]
        drop = re.findall(r"^pinfer: warning: the console could not keep up: (\d+) bytes of "
                          r"the instances' output were not shown \(the log files have them\)$",
                          err, re.M)
        assert len(drop) == 1, err
        # What the pipe holds and what was said lost make up the whole console copy.
        os.set_blocking(r, False)
        held = 0
        while True:
            try:
                chunk = os.read(r, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            held += len(chunk)
        prefixes = len("[0] ") * count if NCPUS > 1 else 0
        assert held + int(drop[0]) == NCPUS * (size + prefixes)
        assert session_members(proc.pid) == []
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def processes_of(uid):
    found = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                real = int(status_field(int(entry), "Uid").split()[0])
            except (OSError, AttributeError):
                continue
            found += real == uid
    return found


@TWO_CPUS
def test_fork_failure_is_one_line(launch):
    """fork() refused (RLIMIT_NPROC) for instance 1: one line, instance 0 stopped without
    being reported as killed, nothing left running, exit status 1 (it used to be "instance
    0 was killed by signal 9" and 137, or a second error line)."""
    popen = {}
    uid = os.getuid()
    if os.geteuid() == 0:  # root ignores RLIMIT_NPROC: the launcher runs as nobody
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("no user 'nobody' to run the launcher as (root ignores RLIMIT_NPROC)")
        uid = nobody.pw_uid
        popen = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    limit = processes_of(uid) + 2  # the launcher and instance 0; instance 1's fork fails

    def few_processes():
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))

    proc = launch(["run", "--ninstances", "2", "--no-python"] + NO_LIBS + ["sleep", "60"],
                  cwd="/", also=few_processes, **popen)
    out, err = proc.communicate(timeout=10)
    err = err.decode()
    assert session_members(proc.pid) == [], "processes left behind"
    assert proc.returncode == 1, err
    assert lines(err) == [binding_line(0, [C0], "sleep 60"), environment_line(0, gnu_env(0)),
                          binding_line(1, [C1], "sleep 60"), environment_line(1, gnu_env(1)),
                          "pinfer: error: cannot start instance 1: fork: Resource temporarily "
                          "unavailable"]


def test_too_few_fds_leave_no_empty_log_files(launch, tmp_path):
    """With RLIMIT_NOFILE too low for the log files, the pipes or the supervisor's own fds:
    one error line and no empty log files left behind (they used to stay, one per
    instance), at every limit up to the first one that lets the run through."""
    failures = []
    for limit in range(4, 65):
        d = tmp_path / ("fds%d" % limit)

        def few_fds(limit=limit):
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        proc = launch(["run", "--ninstances", NI, "--log-path", str(d), "--no-python"] +
                      NO_LIBS + ["echo", "hi"], also=few_fds)
        out, err = proc.communicate(timeout=10)
        err = err.decode()
        left = sorted(os.listdir(d)) if d.exists() else []
        assert [n for n in left if os.path.getsize(d / n) == 0] == [], (limit, err)
        if proc.returncode == 0:
            assert len(left) == NCPUS + 1, (limit, left)
            break
        assert len(errors(err)) == 1, (limit, err)
        failures.append(errors(err)[0])
    else:
        pytest.fail("no run got through with 64 fds")
    assert any("cannot create a log file" in e for e in failures), failures


def test_second_sigint_kills_at_once(launch, tmp_path):
    """A second Ctrl-C within the grace period kills the instances at once (as torchrun);
    it used to be passed on, and the grace period ran out first."""
    proc = launch(["run", "--ninstances", NI, "--log-path", str(tmp_path / "l"), "--no-python"] +
                  NO_LIBS + ["sh", "-c", 'trap "" INT; exec sleep 60'],
                  env=base_env(PINFER_GRACE_MS="20000"))
    wait_for_sleeps(proc, NCPUS)
    err = LiveLines(proc.stderr)
    proc.send_signal(signal.SIGINT)
    assert err.wait_for(r"^pinfer: info: received Interrupt: passing it on to the instances$")
    time.sleep(0.2)
    assert proc.poll() is None and len(session_members(proc.pid, "sleep")) == NCPUS
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 137
    assert time.monotonic() - start < 5  # not the 20 s of the grace period
    rest = err.rest()
    assert "pinfer: warning: asked to stop again: killing the instances now" in rest
    assert sorted(exits("\n".join(rest))) == [
        "pinfer: error: instance %d was killed by signal 9 (Killed) after N s" % i
        for i in range(NCPUS)]
    assert session_members(proc.pid) == []


@pytest.mark.parametrize("value", ["abc", "-5", "0", "99999999999999"])
def test_grace_period_value_refused(run, tmp_path, value):
    """PINFER_GRACE_MS that is not 1..3600000 ms is one usage error (abc and -5 used to
    mean 10 s, 99999999999999 wrapped to 3.2 days)."""
    marker = tmp_path / "marker"
    status, out, err = run(["run", "--ninstances", NI, "--no-python", "touch", str(marker)],
                           env=base_env(PINFER_GRACE_MS=value))
    assert (status, out) == (2, "")
    assert err == ("pinfer: error: PINFER_GRACE_MS='%s' is not a number of milliseconds from 1 "
                   "to 3600000\n" % value)
    assert not marker.exists()


def intel_openmp():
    """The libiomp5 that `pinfer run --omp-runtime intel` preloads here, or None."""
    proc = subprocess.run([pinfer_path(), "plan", "--json", "--no-python", "--omp-runtime",
                           "intel", "--memory-allocator", "default", "x"], env=real_env(),
                          capture_output=True, text=True, timeout=60)
    preload = json.loads(proc.stdout).get("preload", []) if proc.returncode == 0 else []
    return next((p for p in preload if "iomp5" in os.path.basename(p)), None)


def task_cpus(pid):
    """{thread id: its Cpus_allowed_list} of a running process."""
    found = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                found[int(tid)] = next(l.split()[1] for l in f
                                       if l.startswith("Cpus_allowed_list:"))
        except (OSError, StopIteration):
            pass
    return found


@TWO_CPUS
def test_intel_openmp_threads_each_on_one_cpu(launch):
    """With Intel OpenMP preloaded, every OpenMP thread of a running instance is bound to
    one CPU, also when the plan uses every CPU of the machine (KMP_AFFINITY used to be
    left out then, and the threads floated over the whole mask)."""
    lib = intel_openmp()
    if not lib:
        pytest.skip("pinfer finds no libiomp5 here")
    demo = os.path.join(ROOT, "build", "pinfer-demo")
    if not os.path.exists(demo):
        subprocess.run(["make", "-C", ROOT, "-s", "build/pinfer-demo"], check=True)
    # One instance on CPUS: exec'd in place, the demo is the launcher's process.
    proc = launch(["run", "--no-python", "--omp-runtime", "intel", "--memory-allocator",
                   "default", demo, "--seconds", "3"], env=real_env())
    assert wait_for(lambda: len(task_cpus(proc.pid)) == NCPUS, 2.5), task_cpus(proc.pid)
    with open("/proc/%d/maps" % proc.pid) as f:
        assert os.path.realpath(lib) in {os.path.realpath(l.split()[-1]) for l in f
                                         if len(l.split()) >= 6}
    for _ in range(5):  # while it computes, not only at the start
        threads = task_cpus(proc.pid)
        assert sorted(threads.values()) == sorted(str(c) for c in CPUS), threads
        time.sleep(0.1)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert any(l.startswith("pinfer-demo: ") for l in lines(out.decode())), out


def read_slowly(proc, r, delay):
    """What the launcher writes to the pipe r, read only after `delay` seconds (a console
    that is slow to start reading), up to its end; the launcher's stderr."""
    time.sleep(delay)
    got = []
    end = time.monotonic() + 30
    while time.monotonic() < end:
        ready, _, _ = select.select([r], [], [], 1)
        if ready:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            got.append(chunk)
    _, err = proc.communicate(timeout=10)
    return b"".join(got).decode(), err.decode()


@pytest.mark.parametrize("log_path", [False, True])
def test_slow_console_loses_nothing(launch, tmp_path, log_path):
    """A console slow to read: without --log-path its copy is the only one and nothing is
    dropped (the instances wait for it, as they would writing to it themselves); with
    --log-path, what it holds at the end (under its 1 MiB) is still shown, the launcher
    waiting for it, not cut off at exit."""
    count = 300000 if not log_path else 30000  # 4 MB without logs; 0.6 MB (held) with
    logs = ["--log-path", str(tmp_path / "l")] if log_path else []
    r, w = os.pipe()
    try:
        proc = launch(["run", "--ninstances", NI] + logs + ["--no-python"] + NO_LIBS +
                      ["seq", "1", str(count)], stdout=w)
        os.close(w)
        w = -1
        out, err = read_slowly(proc, r, 1.0)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert proc.returncode == 0, err
    numbers = [str(k) for k in range(1, count + 1)]
    shown = by_instance(out)
    assert [shown.get(i) == numbers for i in range(NCPUS)] == [True] * NCPUS
    assert "could not keep up" not in err
    assert session_members(proc.pid) == []

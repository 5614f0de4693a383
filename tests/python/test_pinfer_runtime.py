"""The pinfer package's pools, pinning, tasks, topology and planner.

Pinning is checked as a user would: each thread's Cpus_allowed_list in
/proc/self/task/<tid>/status.  The OpenMP team checked is the calling
thread's, which is the one torch's operators use in that thread (same
runtime: the extension links libgomp, as torch does; or libiomp5 serves both
when preloaded, which test_pinfer_examples.py runs this file under).
"""
import json
import os
import subprocess
import sys
import threading
import time
import warnings

import pytest
import torch

from conftest import ROOT, import_pinfer


pinfer = import_pinfer()
_pinfer = pinfer._pinfer

# The CPUs of the process (pinfer's view: its start-up mask and cgroup), and this thread's
# mask: the same, unless an OpenMP binding variable made libgomp or libomp bind the initial
# thread to its first place (docs/runtime.md, "OpenMP binds the initial thread too").
ALLOWED = pinfer.CPUPool().core_ids
MASK = sorted(os.sched_getaffinity(0))
BOUND = any(os.environ.get(name) for name in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY",
                                                "KMP_AFFINITY"))
TWO_CPUS = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two CPUs, this process may use %s"
                              % ALLOWED)
# The NUMA node of the process's first CPU: a node with CPUs it may use.
NODE = next(c["node"] for c in pinfer.topology()["cpus"] if c["cpu"] == ALLOWED[0])


def parse_cpulist(text):
    cpus = []
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def allowed_cpus(tid):
    """A thread's Cpus_allowed_list, as the kernel reports it."""
    with open("/proc/self/task/%d/status" % tid) as status:
        for line in status:
            if line.startswith("Cpus_allowed_list:"):
                return parse_cpulist(line.split(":", 1)[1])
    raise AssertionError("no Cpus_allowed_list for thread %d" % tid)


def all_masks():
    """{tid: allowed CPUs} of every thread of this process."""
    masks = {}
    for name in os.listdir("/proc/self/task"):
        try:
            masks[int(name)] = allowed_cpus(int(name))
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread exited meanwhile
    return masks


def expect_team(cpus):
    """The calling thread's OpenMP team: thread t alone on cpus[t], torch agreeing on its size."""
    team = _pinfer.team_threads()
    assert len(team) == len(cpus)
    assert team[0][0] == threading.get_native_id()
    for t, (tid, seen) in enumerate(team):
        assert seen == [cpus[t]], "team thread %d is on %s" % (t, seen)
        assert allowed_cpus(tid) == [cpus[t]], "team thread %d (tid %d)" % (t, tid)
    assert torch.get_num_threads() == len(cpus)
    return team


def test_one_openmp_runtime_serves_torch_and_pinfer():
    """libgomp, which both link; or libiomp5 when preloaded (test_pinfer_examples.py re-runs
    this file so), which then serves both."""
    runtime = os.path.basename(_pinfer.omp_runtime() or "")
    preload = os.environ.get("LD_PRELOAD", "")
    if "libiomp5" in preload or "libomp" in preload:
        assert runtime in ("libiomp5.so", "libomp.so", "libomp.so.5"), runtime
    else:
        assert runtime == "libgomp.so.1", runtime


# ---------------------------------------------------------------------------
# CPUPool


def test_default_pool_is_every_cpu_the_process_may_use():
    if BOUND:
        assert set(MASK) <= set(ALLOWED)
    else:
        assert ALLOWED == MASK
    assert pinfer.CPUPool().core_ids == pinfer.topology()["allowed"]


def test_core_ids_keep_their_order_and_accept_ranges():
    assert pinfer.CPUPool(list(reversed(ALLOWED))).core_ids == list(reversed(ALLOWED))
    span = range(ALLOWED[0], ALLOWED[-1] + 1)  # with the CPUs between them it may not use
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # about those dropped, if any
        assert pinfer.CPUPool(span).core_ids == [c for c in span if c in ALLOWED]
    assert pinfer.CPUPool(core_ids=(ALLOWED[0],)).core_ids == ALLOWED[:1]


def test_node_pool_is_the_nodes_physical_cores():
    node = NODE
    pool = pinfer.CPUPool(node_id=node)
    assert pool.core_ids == pinfer.get_core_list_of_node_id(node)
    cpus = {c["cpu"]: c for c in pinfer.topology()["cpus"]}
    firsts = {(c["socket"], c["core_first"]) for c in cpus.values()
              if c["node"] == node and c["allowed"]}
    assert len(pool.core_ids) == len(firsts)
    assert all(cpus[c]["node"] == node for c in pool.core_ids)


def test_core_ids_win_over_node_id_with_a_warning():
    with pytest.warns(UserWarning, match="core_ids wins"):
        pool = pinfer.CPUPool(core_ids=[ALLOWED[-1]], node_id=NODE)
    assert pool.core_ids == [ALLOWED[-1]]


def test_cpus_the_process_may_not_use_are_dropped_with_a_warning():
    outside = max(ALLOWED) + 1000
    with pytest.warns(UserWarning, match="dropped"):
        pool = pinfer.CPUPool([outside, ALLOWED[0]])
    assert pool.core_ids == [ALLOWED[0]]
    with pytest.raises(ValueError, match="none of them may be used by this process"):
        pinfer.CPUPool([outside])


@pytest.mark.parametrize("core_ids, error, message", [
    ([], ValueError, "empty CPU list"),
    ([-1], ValueError, "negative"),
    ([0, 0], ValueError, "listed twice"),
    ([1 << 40], ValueError, "out of range"),
    (["0"], TypeError, "not an int"),
    ([True], TypeError, "not an int"),
    (3, TypeError, "iterable"),
])
def test_bad_core_ids_are_python_errors(core_ids, error, message):
    with pytest.raises(error, match=message):
        pinfer.CPUPool(core_ids)


def test_unknown_node_is_a_value_error():
    with pytest.raises(ValueError, match="NUMA node 4096 does not exist"):
        pinfer.CPUPool(node_id=4096)
    with pytest.raises(ValueError, match="does not exist"):
        pinfer.get_core_list_of_node_id(4096)


@pytest.mark.parametrize("node", [1 << 31, 1 << 40, -(1 << 40), 1 << 100])
def test_node_ids_no_int_can_hold_are_value_errors_too(node):
    """Not OverflowError: such a node does not exist either."""
    with pytest.raises(ValueError, match="NUMA node %d does not exist" % node):
        pinfer.CPUPool(node_id=node)
    with pytest.raises(ValueError, match="does not exist"):
        pinfer.get_core_list_of_node_id(node)


def test_node_ids_are_ints():
    assert pinfer.CPUPool(node_id=torch.tensor(NODE)).core_ids == pinfer.CPUPool(
        node_id=NODE).core_ids
    assert pinfer.CPUPool(node_id=torch.tensor(NODE)).node_id == NODE
    for bad in (True, 0.0, "0"):
        with pytest.raises(TypeError, match="not an int"):
            pinfer.CPUPool(node_id=bad)


def test_core_ids_from_tensors_and_arrays_keep_every_cpu_silently():
    """torch.tensor([0, 1]) iterates as 0-d tensors, which hash by identity: they were kept
    by the pool but reported as dropped ("CPUs [tensor(0), tensor(1)]")."""
    np = pytest.importorskip("numpy")
    spellings = [torch.tensor(ALLOWED), torch.tensor(ALLOWED, dtype=torch.int32),
                 np.array(ALLOWED), [torch.tensor(c) for c in ALLOWED],
                 [np.int64(c) for c in ALLOWED]]
    for core_ids in spellings:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pool = pinfer.CPUPool(core_ids)
        assert pool.core_ids == ALLOWED
        assert all(type(c) is int for c in pool.core_ids)
    outside = max(ALLOWED) + 1000
    with pytest.warns(UserWarning, match=r"CPUs \[%d\] may not be used" % outside):
        assert pinfer.CPUPool(torch.tensor([outside, ALLOWED[0]])).core_ids == ALLOWED[:1]
    with pytest.raises(TypeError, match="not an int"):
        pinfer.CPUPool(torch.tensor([float(ALLOWED[0])]))


def test_pools_come_from_the_start_up_mask_not_the_pinned_thread():
    with pinfer.pin(pinfer.CPUPool(ALLOWED[:1])):
        assert sorted(os.sched_getaffinity(0)) == ALLOWED[:1]
        assert pinfer.CPUPool().core_ids == ALLOWED


@TWO_CPUS
def test_the_start_up_mask_is_read_when_pinfer_is_imported():
    """A mask narrowed before the import counts; one narrowed after it does not."""
    code = ("import os, sys; sys.path.insert(0, %r)\n"
            "os.sched_setaffinity(0, {%d})\n"
            "import pinfer\n"
            "before = pinfer.CPUPool().core_ids\n"
            "os.sched_setaffinity(0, {%d})\n"
            "print(before, pinfer.CPUPool().core_ids)\n"
            % (os.path.join(ROOT, "python"), ALLOWED[1], ALLOWED[0]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.split("\n")[0] == "[%d] [%d]" % (ALLOWED[1], ALLOWED[1])


def test_pool_helpers():
    pool = pinfer.CPUPool()
    assert pinfer.get_default_num_streams(pool) == len(ALLOWED)
    assert len(pool) == len(ALLOWED)
    assert pool == pinfer.CPUPool(ALLOWED)
    assert "CPUPool(core_ids=" in repr(pool)
    with pytest.raises(TypeError, match="CPUPool"):
        pinfer.get_default_num_streams([0, 1])


# ---------------------------------------------------------------------------
# pin


def test_pin_binds_each_team_thread_to_its_cpu_and_restores_them():
    before = all_masks()
    threads_before = torch.get_num_threads()
    cpus = list(reversed(ALLOWED))
    with pinfer.pin(pinfer.CPUPool(cpus)):
        team = expect_team(cpus)
        for _ in range(3):  # later regions: the same threads on the same CPUs
            assert _pinfer.team_threads() == team
    after = all_masks()
    for tid, mask in before.items():
        if tid in after:
            assert after[tid] == mask, "thread %d not restored" % tid
    for tid, _ in team:  # threads the pin created go back to the mask they were created with:
        if not BOUND:  # the caller's, unless the runtime binds its threads to places itself
            assert after[tid] == before[threading.get_native_id()]
    assert torch.get_num_threads() == threads_before


@TWO_CPUS
def test_torch_operators_run_on_the_pinned_team():
    """Every team thread works during a torch convolution; torch starts no other thread."""
    def cpu_ticks(tid):
        with open("/proc/self/task/%d/stat" % tid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    cpus = ALLOWED[:2]
    x, w = torch.rand(8, 32, 48, 48), torch.rand(32, 32, 3, 3)
    with pinfer.pin(pinfer.CPUPool(cpus)):
        team = expect_team(cpus)
        tasks = set(os.listdir("/proc/self/task"))
        ticks = [cpu_ticks(tid) for tid, _ in team]
        start = time.monotonic()
        while time.monotonic() - start < 0.4:
            torch.nn.functional.conv2d(x, w)
        assert all(cpu_ticks(tid) > t for (tid, _), t in zip(team, ticks))
        assert set(os.listdir("/proc/self/task")) == tasks
        assert _pinfer.team_threads() == team


def test_pins_nest():
    outer = list(reversed(ALLOWED))
    inner = ALLOWED[:1]
    with pinfer.pin(pinfer.CPUPool(outer)):
        expect_team(outer)
        with pinfer.pin(pinfer.CPUPool(inner)):
            expect_team(inner)
        expect_team(outer)
    assert sorted(os.sched_getaffinity(0)) == MASK


def test_pin_is_a_decorator_too():
    cpus = ALLOWED[-1:]

    @pinfer.pin(pinfer.CPUPool(cpus))
    def pinned(x):
        return sorted(os.sched_getaffinity(0)), torch.get_num_threads(), x * 2

    assert pinned(21) == (cpus, 1, 42)
    assert pinned.__name__ == "pinned"
    assert sorted(os.sched_getaffinity(0)) == MASK


@TWO_CPUS
def test_one_pin_object_serves_several_threads():
    shared = pinfer.pin(pinfer.CPUPool(ALLOWED[:1]))
    seen, barrier = {}, threading.Barrier(2)

    def body(name):
        with shared:
            barrier.wait()
            seen[name] = sorted(os.sched_getaffinity(0))
            barrier.wait()
        seen[name + " after"] = sorted(os.sched_getaffinity(0))

    threads = [threading.Thread(target=body, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["a"] == seen["b"] == ALLOWED[:1]
    if not BOUND:  # else libomp binds new threads itself (KMP_AFFINITY), at their first region
        mine = sorted(os.sched_getaffinity(0))  # new threads start with this thread's mask
        assert seen["a after"] == seen["b after"] == mine


def test_pin_errors():
    with pytest.raises(TypeError, match="CPUPool"):
        pinfer.pin([0])
    state = _pinfer.pin(_pinfer.pool_from_list(ALLOWED[:1]))
    errors = []

    def other_thread():
        try:
            state.unpin()
        except RuntimeError as error:
            errors.append(str(error))

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert errors and "thread that made it" in errors[0]
    state.unpin()
    assert sorted(os.sched_getaffinity(0)) == MASK


def test_runtime_is_enabled():
    assert pinfer.is_runtime_ext_enabled() is True
    assert sorted(os.sched_getaffinity(0)) == MASK


# ---------------------------------------------------------------------------
# Task


def test_task_runs_on_its_pool_with_a_team_of_its_size():
    def where():
        return (sorted(os.sched_getaffinity(0)), torch.get_num_threads(),
                [cpus for _, cpus in _pinfer.team_threads()])

    for cpus in ([ALLOWED[-1]], list(reversed(ALLOWED))):
        task = pinfer.Task(where, pinfer.CPUPool(cpus))
        assert task().get() == (cpus[:1], len(cpus), [[c] for c in cpus])  # worker = thread 0
        task.close()


def test_submissions_in_flight_keep_their_own_arguments():
    def slow(i, tensor, scale=1):
        time.sleep(0.002)
        return i, tensor * scale

    task = pinfer.Task(slow, pinfer.CPUPool())
    futures = [task(i, torch.full((3,), float(i)), scale=i + 1) for i in range(30)]
    for i, future in enumerate(futures):
        index, value = future.get()
        assert index == i
        assert torch.equal(value, torch.full((3,), float(i * (i + 1))))


@pytest.mark.parametrize("kind", ["eager", "trace", "script"])
def test_task_of_a_module_equals_the_plain_model(kind):
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    model.eval()
    if kind == "trace":
        model = torch.jit.trace(model, torch.rand(2, 8))
    elif kind == "script":
        model = torch.jit.script(model)
    task = pinfer.Task(model, pinfer.CPUPool())
    inputs = [torch.rand(i + 1, 8) for i in range(8)]
    with torch.no_grad():
        futures = [task(x) for x in inputs]
        for x, future in zip(inputs, futures):
            assert torch.allclose(future.get(), model(x))
        assert torch.allclose(task.run_sync(inputs[0]), model(inputs[0]))


def test_task_errors_come_back_from_get():
    def fail(message):
        raise ValueError(message)

    task = pinfer.Task(fail, pinfer.CPUPool())
    future = task("boom 1")
    for _ in range(2):  # each get() raises it again
        with pytest.raises(ValueError, match="boom 1") as info:
            future.get()
        assert any(entry.name == "fail" for entry in info.traceback)
    with pytest.raises(ValueError, match="boom 2"):
        task.run_sync("boom 2")
    task.module = len
    assert task.run_sync("abc") == 3  # the worker survives


def test_task_torch_errors_are_runtime_errors():
    model = torch.jit.trace(torch.nn.Linear(4, 2), torch.rand(1, 4))
    task = pinfer.Task(model, pinfer.CPUPool())
    with pytest.raises(RuntimeError):
        task(torch.rand(3, 5)).get()


def test_future_timeout_and_done():
    gate = threading.Event()
    task = pinfer.Task(gate.wait, pinfer.CPUPool())
    future = task(5)
    assert not future.done()
    with pytest.raises(TimeoutError, match="not finished within"):
        future.get(timeout=0.05)
    gate.set()
    assert future.get() is True
    assert future.done()


def test_a_timeout_says_how_long_get_waited():
    """The message once read "... within %g s": PyErr_Format has no %g."""
    gate = threading.Event()
    task = pinfer.Task(gate.wait, pinfer.CPUPool())  # kept: freeing a task waits for its queue
    future = task(5)
    try:
        for timeout, shown in [(0.01, "0.01"), (0, "0"), (0.125, "0.125"), (1, "1")]:
            with pytest.raises(TimeoutError) as raised:
                future.get(timeout=timeout)
            assert str(raised.value) == "the task has not finished within %s s" % shown
    finally:
        gate.set()
    assert future.get() is True


def test_waiting_in_a_task_for_a_later_task_of_its_own_is_an_error():
    def step(depth):
        if depth == 0:
            return task(1).get()  # queued behind this very task
        return "inner"

    task = pinfer.Task(step, pinfer.CPUPool())
    with pytest.raises(RuntimeError, match="never end"):
        task(0).get()
    assert task.run_sync(1) == "inner"


def test_tasks_run_in_the_callers_grad_mode():
    task = pinfer.Task(torch.is_grad_enabled, pinfer.CPUPool())
    assert task.run_sync() is True
    with torch.no_grad():
        assert task.run_sync() is False
    with torch.inference_mode():
        assert pinfer.Task(torch.is_inference_mode_enabled, pinfer.CPUPool()).run_sync() is True


def test_a_worker_keeps_its_python_thread_state():
    local = threading.local()

    def count():
        local.n = getattr(local, "n", 0) + 1
        return threading.get_native_id(), local.n

    task = pinfer.Task(count, pinfer.CPUPool())
    results = [task.run_sync() for _ in range(3)]
    assert [n for _, n in results] == [1, 2, 3]
    assert len({tid for tid, _ in results}) == 1
    assert results[0][0] != threading.get_native_id()


def test_task_argument_errors_and_close():
    with pytest.raises(TypeError, match="not callable"):
        pinfer.Task(42, pinfer.CPUPool())
    with pytest.raises(TypeError, match="CPUPool"):
        pinfer.Task(len, [0])
    task = pinfer.Task(len, pinfer.CPUPool())
    queued = [task("x" * i) for i in range(5)]
    task.close()  # runs what is queued first
    assert [f.get() for f in queued] == list(range(5))
    task.close()
    with pytest.raises(RuntimeError, match="closed"):
        task("late")


FORK_CHILD = """
import os, signal, sys
import pinfer
gate_task = pinfer.Task(lambda x: x + 1, pinfer.CPUPool())
done = gate_task(1)
assert done.get() == 2
sleeper = pinfer.Task(__import__("time").sleep, pinfer.CPUPool())
pending = sleeper(3)
pid = os.fork()
if pid == 0:
    signal.alarm(20)  # a wait that never ends kills the child: a failure, not a hang
    for name, use in [("submit", lambda: gate_task(2)), ("get", done.get),
                      ("get of a pending task", pending.get), ("done", done.done),
                      ("run_sync", lambda: gate_task.run_sync(3))]:
        try:
            print(name, "returned", use())
        except RuntimeError as error:
            print(name, "RuntimeError:", error)
    print("made in the child:", pinfer.Task(lambda x: x * 10, pinfer.CPUPool())(4).get())
    gate_task.close()  # the parent's worker: nothing to join here, and no error
    sys.stdout.flush()
    sys.exit(0)  # atexit closes what is open: must not wait for the parent's workers either
_, status = os.waitpid(pid, 0)
print("child status", status)
print("parent:", gate_task(5).get(), pending.get())
"""


def test_a_task_used_in_a_forked_child_raises_instead_of_waiting_forever():
    proc = subprocess.run([sys.executable, "-c", FORK_CHILD], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=os.path.join(ROOT,
                                                                                   "python")))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "child status 0" in out, out
    assert "returned" not in out, out
    assert "submit RuntimeError: this Task was made in process " in out, out
    assert "run_sync RuntimeError: this Task was made in process " in out, out
    for name in ("get", "get of a pending task", "done"):
        assert "%s RuntimeError: the Task of this future was made in process " % name in out, out
    assert "a child made by fork()" in out, out
    assert "made in the child: 40" in out, out
    assert "parent: 6 None" in out, out


def test_tasks_from_several_threads():
    task = pinfer.Task(lambda x: x + 1, pinfer.CPUPool())
    results = {}

    def submit(k):
        results[k] = [task(k * 100 + i) for i in range(20)]

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, futures in results.items():
        assert [f.get() for f in futures] == [k * 100 + i + 1 for i in range(20)]


# ---------------------------------------------------------------------------
# topology() and plan()


@pytest.fixture
def tool(pinfer):  # noqa: F811 - conftest's fixture: the pinfer command of build/
    return pinfer


def test_topology_is_what_pinfer_topo_shows(tool):
    mine = pinfer.topology()
    out = subprocess.run([tool, "topo", "--json"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    theirs = json.loads(out)
    # The tool inherits this thread's mask: its "allowed" is ours only when nothing bound us.
    keys = ("source", "sockets", "cores", "nodes", "features") + (() if BOUND else ("cpus",
                                                                                  "allowed"))
    for key in keys:
        assert mine[key] == theirs[key], key
    assert mine["allowed"] == ALLOWED


def test_topology_sources():
    synthetic = pinfer.topology("synthetic:pack:2 numa:1 core:2 pu:2")
    assert len(synthetic["cpus"]) == 8 and synthetic["nodes"] == [0, 1]
    assert synthetic["allowed"] == list(range(8))
    with pytest.raises(FileNotFoundError, match="topology"):
        pinfer.topology("/nonexistent/lscpu.txt")
    with pytest.raises(ValueError, match="topology"):
        pinfer.topology("synthetic:nonsense")


def test_plan_is_what_pinfer_plan_shows(tool):
    source = "synthetic:pack:2 numa:2 core:4 pu:2"
    cases = [
        ({"ninstances": 2}, ["--ninstances", "2"]),
        ({"ncore_per_instance": 3, "use_logical_core": True},
         ["--ncores-per-instance", "3", "--use-logical-cores"]),
        ({"node_id": 1}, ["--node-id", "1"]),
        ({"core_list": [0, 2, 4, 6], "ninstances": 2}, ["--core-list", "0,2,4,6", "--ninstances",
                                                        "2"]),
        ({"ninstances": 4, "ncores_per_instance": 2, "strategy": "scatter"},
         ["--ninstances", "4", "--ncores-per-instance", "2", "--strategy", "scatter"]),
        ({"latency_mode": True}, ["--latency-mode"]),
        ({"throughput_mode": True, "rank": 1}, ["--throughput-mode", "--rank", "1"]),
    ]
    for options, argv in cases:
        mine = pinfer.plan(topology=source, **options)
        out = subprocess.run([tool, "plan", "--json", "--topology", source] + argv,
                             capture_output=True, text=True, timeout=60, check=True).stdout
        theirs = json.loads(out)
        assert mine["instances"] == theirs["instances"], options
        assert mine["topology"] == theirs["topology"]


def test_plan_of_this_machine():
    plan = pinfer.plan(use_logical_cores=True)
    assert plan["instances"][0]["cpus"] == ALLOWED
    with pinfer.pin(pinfer.CPUPool(ALLOWED[:1])):  # a pinned caller plans for the process
        assert pinfer.plan(use_logical_cores=True)["instances"][0]["cpus"] == ALLOWED


@pytest.mark.parametrize("options, error, message", [
    ({"ninstances": 0}, ValueError, "ninstances"),
    ({"ninstances": len(ALLOWED) + 1}, ValueError, "more than"),
    ({"core_list": "3-0"}, ValueError, "core-list"),
    ({"strategy": "spread"}, ValueError, "strategy"),
    ({"ninstances": "two"}, ValueError, "not an int"),
    ({"ninstances": 1 << 40}, ValueError, "out of range"),
    ({"instances": 2}, TypeError, "unexpected keyword argument 'instances'"),
])
def test_plan_errors(options, error, message):
    with pytest.raises(error, match=message):
        pinfer.plan(**options)


def test_split_range_is_the_librarys():
    assert [_pinfer.split_range(5, 2, i) for i in range(2)] == [(0, 3), (3, 5)]
    assert [_pinfer.split_range(1, 3, i) for i in range(3)] == [(0, 1), (1, 1), (1, 1)]
    with pytest.raises(ValueError):
        _pinfer.split_range(4, 0, 0)


def test_ipex_spellings():
    import pinfer.cpu.runtime as runtime
    from pinfer.cpu.runtime import MultiStreamModule

    assert runtime is pinfer.runtime
    assert pinfer.cpu.runtime.CPUPool is pinfer.CPUPool
    assert MultiStreamModule is pinfer.MultiStreamModule
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pinfer.__version__ == _pinfer.VERSION

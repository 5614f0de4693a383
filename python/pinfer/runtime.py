"""The runtime API of intel_extension_for_pytorch.cpu.runtime, over libpinfer.

Thin Python over the C extension (pinfer._pinfer): the extension owns the
threads, the pinning and every wait (the GIL released); this module keeps
IPEX's names and argument rules, cuts and joins batches (pinfer._hints), and
carries torch's per-thread state to the worker threads:

- torch sets a thread's OpenMP team size on that thread's first parallel
  operator (at::init_num_threads: OMP_NUM_THREADS or its default), which
  would undo the team size pinning gave.  So before pinning a thread, and
  once in every new worker, torch is made to do that first (Python
  ``torch.get_num_threads()``), and the pool's size is set after it.
- grad mode and inference mode are thread-local in torch: a task runs in
  the mode its caller had when it submitted it.
"""
import atexit
import functools
import json
import math
import numbers
import operator
import os
import threading
import warnings
import weakref

from . import _hints
from . import _pinfer
from ._hints import MultiStreamModuleHint

try:
    import torch
except ImportError:  # pragma: no cover - pools, pin and Task work without torch
    torch = None

__all__ = [
    "CPUPool",
    "MultiStreamModule",
    "MultiStreamModuleHint",
    "Task",
    "get_core_list_of_node_id",
    "get_default_num_streams",
    "is_runtime_ext_enabled",
    "pin",
    "plan",
    "topology",
]


# ---------------------------------------------------------------------------
# Pools


class CPUPool(object):
    """An ordered list of CPUs: where pin(), a Task or a MultiStreamModule runs.

    ``core_ids`` (a list, range, tensor, array or other iterable of CPU ids:
    ints or anything with ``__index__``, such as numpy integers and 0-d
    integer tensors) wins over ``node_id`` (the node's physical cores, one
    CPU each), with a warning if both are given; neither means every CPU this
    process may use.  Ids the process may not use (its CPU mask when pinfer
    was imported, and its cgroup) are dropped, in order, with a warning; none
    left is a ValueError, and so is a node the machine does not have, however
    large its id.  ``core_ids`` is the resulting list of ints.
    """

    def __init__(self, core_ids=None, node_id=None):
        if core_ids is not None:
            if node_id is not None:
                warnings.warn("CPUPool: core_ids and node_id both given; core_ids wins",
                              stacklevel=2)
            wanted = _cpu_ids(core_ids)
            self._pool = _pinfer.pool_from_list(wanted)
            kept = set(self._pool.cpus)
            dropped = [cpu for cpu in wanted if cpu not in kept]
            if dropped:
                warnings.warn("CPUPool: CPUs %s may not be used by this process; dropped"
                              % dropped, stacklevel=2)
        elif node_id is not None:
            self._pool = _pinfer.pool_from_node(node_id)
            node_id = operator.index(node_id)
        else:
            self._pool = _pinfer.pool_from_process()
        self.core_ids = self._pool.cpus
        self.node_id = node_id if core_ids is None else None

    def __len__(self):
        return len(self.core_ids)

    def __eq__(self, other):
        return isinstance(other, CPUPool) and self.core_ids == other.core_ids

    def __hash__(self):
        return hash(tuple(self.core_ids))

    def __repr__(self):
        return "CPUPool(core_ids=%r)" % (self.core_ids,)


def _cpu_ids(core_ids):
    """core_ids as a list of Python ints, in order: a tensor's or an array's elements are
    0-d tensors or numpy scalars, which compare and hash unlike the ints they hold."""
    try:
        items = list(core_ids)
    except TypeError:
        raise TypeError("CPUPool: core_ids must be an iterable of ints, not %s"
                        % type(core_ids).__name__) from None
    ids = []
    for item in items:
        if isinstance(item, bool):
            raise TypeError("core_ids: %r is not an int" % (item,))
        try:
            ids.append(operator.index(item))
        except TypeError:
            raise TypeError("core_ids: %r is not an int" % (item,)) from None
    return ids


def _default_pool(source=None):
    """MultiStreamModule's default pool (spec v3): the physical cores of the first NUMA node
    among the CPUs this process may use, as CPUPool(node_id=...) has them.

    "First" is the lowest node id that holds a CPU the process may use, so that a process
    restricted to node 1 gets node 1's cores, and an unrestricted one node 0's (IPEX's
    document: "all the cores available on numa node 0").  `source` is a topology source as
    for topology() (None: this machine), for tests: its CPUs are still filtered by what this
    process may use."""
    usable = set(_pinfer.pool_from_process().cpus)
    nodes = sorted({cpu["node"] for cpu in topology(source)["cpus"]
                    if cpu["allowed"] and cpu["cpu"] in usable})
    if not nodes:  # pragma: no cover - every usable CPU is in the topology
        return CPUPool()
    if source is None:
        return CPUPool(node_id=nodes[0])
    pool = CPUPool.__new__(CPUPool)
    pool._pool = _pinfer.pool_from_node(nodes[0], source=str(source))
    pool.core_ids = pool._pool.cpus
    pool.node_id = nodes[0]
    return pool


def _check_pool(cpu_pool, who):
    if not isinstance(cpu_pool, CPUPool):
        raise TypeError("%s: cpu_pool must be a pinfer CPUPool, not %s"
                        % (who, type(cpu_pool).__name__))


def get_default_num_streams(cpu_pool):
    """The number of streams "AUTO" means for this pool: one per CPU."""
    _check_pool(cpu_pool, "get_default_num_streams")
    return len(cpu_pool.core_ids)


def get_core_list_of_node_id(node_id):
    """The CPUs of NUMA node `node_id` a CPUPool(node_id=...) would use: one per physical core
    (its lowest CPU), from the live topology, among those this process may use ([] if none).
    A node the machine does not have is a ValueError."""
    node_id = operator.index(node_id)
    nodes = topology()["nodes"]
    if node_id not in nodes:
        raise ValueError("NUMA node %d does not exist (this machine has nodes %s)"
                         % (node_id, nodes))
    try:
        return _pinfer.pool_from_node(node_id).cpus
    except ValueError:
        return []


# ---------------------------------------------------------------------------
# Torch's per-thread state


def _settle_torch_threads():
    """Let torch set this thread's team size now (it does on the thread's first parallel
    operator), so that it does not overwrite the size a pin gives afterwards."""
    if torch is not None:
        torch.get_num_threads()


def _init_worker(ncpus):
    """First task of a worker (already pinned by libpinfer): torch's team size = its CPUs."""
    _settle_torch_threads()
    _pinfer.omp_set_num_threads(ncpus)
    return ncpus


def _modes():
    """The caller's torch modes, for its tasks: (grad enabled, inference mode) or None."""
    if torch is None:
        return None
    return torch.is_grad_enabled(), torch.is_inference_mode_enabled()


def _call(fn, modes, args, kwargs):
    """fn(*args, **kwargs) in the caller's torch modes, on a worker thread.

    The worker's grad mode is set and left so (it is the worker's own thread-local state, and
    the next task sets what it needs): no context manager to enter and leave per call."""
    if modes is not None:
        grad, inference = modes
        if inference:
            if not torch.is_inference_mode_enabled():
                with torch.inference_mode():
                    return fn(*args, **kwargs)
        elif torch.is_grad_enabled() != grad:
            torch.set_grad_enabled(grad)
    return fn(*args, **kwargs)


# Executors and streams still open, closed at exit while the interpreter can still run
# their queued tasks (a worker must not take the GIL once finalization has begun).
_open = weakref.WeakSet()


@atexit.register
def _close_all():
    """Close every task and multi-stream module still open, running what they have queued."""
    for owner in list(_open):
        owner.close()


# ---------------------------------------------------------------------------
# pin


class pin(object):
    """Pin the calling thread and its OpenMP team (torch's) to a CPUPool.

    A context manager (``with pin(pool): ...``) and a decorator (``@pin(pool)``).
    Team thread t runs on pool CPU t and the team size (torch.get_num_threads())
    is the pool size until the block ends; then the previous masks and size
    come back exactly, so pins nest.  The same pin object may be entered by
    several threads at once: each pins its own team.
    """

    def __init__(self, cpu_pool):
        _check_pool(cpu_pool, "pin")
        self.cpu_pool = cpu_pool
        self._local = threading.local()

    def __enter__(self):
        _settle_torch_threads()
        state = _pinfer.pin(self.cpu_pool._pool)
        self._local.__dict__.setdefault("states", []).append(state)
        return self

    def __exit__(self, *exc_info):
        self._local.states.pop().unpin()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def pinned(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return pinned


def is_runtime_ext_enabled():
    """True when pinning works here: pins this thread to one CPU and back."""
    try:
        pool = _pinfer.pool_from_process()
        _pinfer.pin(_pinfer.pool_from_list(pool.cpus[:1])).unpin()
    except (RuntimeError, ValueError, OSError):
        return False
    return True


# ---------------------------------------------------------------------------
# Task


class Task(object):
    """Run a module or any callable asynchronously on a CPUPool.

    One worker thread, pinned with its OpenMP team to the pool, runs the
    submissions in order.  ``task(*args, **kwargs)`` returns at once with a
    future whose ``get()`` waits (the GIL released) and returns the result or
    raises what the callable raised, or TimeoutError after ``get(timeout=)``
    seconds; each submission keeps its own arguments.  ``run_sync(...)`` is
    ``task(...).get()``.  TorchScript modules run without the GIL; eager
    modules and Python callables hold it while Python code runs (torch's
    operators release it).  The worker exists in the process that made the
    task: in a child made by ``os.fork()`` calling the task, or ``get()`` on
    a future of it, raises RuntimeError (make a new Task in the child).
    """

    def __init__(self, module, cpu_pool):
        _check_pool(cpu_pool, "Task")
        if not callable(module):
            raise TypeError("Task: %r is not callable" % (module,))
        self.module = module
        self.cpu_pool = cpu_pool
        self._executor = _pinfer.Executor(cpu_pool._pool)
        _open.add(self)
        self._executor.submit(_init_worker, (len(cpu_pool.core_ids),)).get()

    def __call__(self, *args, **kwargs):
        return self._executor.submit(_call, (self.module, _modes(), args, kwargs))

    def run_sync(self, *args, **kwargs):
        """Run on the task's worker and wait: after what is already queued."""
        return self(*args, **kwargs).get()

    def close(self):
        """Run what is queued, then stop the worker (also done when the task is freed)."""
        self._executor.close()


# ---------------------------------------------------------------------------
# MultiStreamModule


def _stream_count(num_streams, ncpus):
    """IPEX's num_streams rules: "AUTO" (any case) is one per CPU; a positive int, clamped to
    the CPUs with a warning; anything else is a ValueError."""
    if isinstance(num_streams, str):
        if num_streams.upper() == "AUTO":
            return ncpus
        raise ValueError("num_streams: %r is neither \"AUTO\" nor a positive int" % num_streams)
    try:
        if isinstance(num_streams, bool):
            raise TypeError
        count = operator.index(num_streams)
    except TypeError:
        raise ValueError("num_streams: %r is neither \"AUTO\" nor a positive int"
                         % (num_streams,)) from None
    if count <= 0:
        raise ValueError("num_streams: %d is not positive" % count)
    if count > ncpus:
        warnings.warn("MultiStreamModule: %d streams over a pool of %d CPUs; using %d streams"
                      % (count, ncpus, ncpus), stacklevel=3)
        count = ncpus
    return count


def _is_torchscript(model):
    return torch is not None and isinstance(model, (torch.jit.ScriptModule,
                                                    torch.jit.ScriptFunction))


_ModuleBase = torch.nn.Module if torch is not None else object


class MultiStreamModule(_ModuleBase):
    """Weight-sharing multi-stream inference: each call's batch is cut over several streams.

    ``num_streams`` ("AUTO": one per CPU of the pool) executors share the pool,
    the first ``len % n`` streams one CPU more.  A call cuts its batch as
    ``input_split_hint`` says into contiguous chunks (the first ``batch % n``
    one item larger; only ``batch`` streams run when batch < n), runs the
    model on every chunk at once, and joins the outputs as
    ``output_concat_hint`` says, or returns the per-stream outputs as a list
    with ``concat_output=False``.  With one stream the model runs in the
    caller's thread, pinned to the pool, and its output comes back as is, or
    as a one-element list with ``concat_output=False`` (as IPEX).
    ``get_stream_number()`` is the number of streams.  The default pool,
    made with the module, is the physical cores of the first NUMA node among
    the CPUs the process may use (``CPUPool(node_id=n)``, n the lowest node
    holding one of them).  In a child made by ``os.fork()`` calling a module
    made before raises RuntimeError: its streams' threads stay in the parent.
    """

    def __init__(self, model, num_streams="AUTO", cpu_pool=None, concat_output=True,
                 input_split_hint=None, output_concat_hint=None):
        if torch is None:  # pragma: no cover
            raise ImportError("MultiStreamModule needs torch")
        super().__init__()
        if not callable(model):
            raise TypeError("MultiStreamModule: %r is not callable" % (model,))
        cpu_pool = _default_pool() if cpu_pool is None else cpu_pool
        _check_pool(cpu_pool, "MultiStreamModule")
        self._pid = os.getpid()
        self.model = model
        self.cpu_pool = cpu_pool
        self.num_streams = _stream_count(num_streams, len(cpu_pool.core_ids))
        self.concat_output = bool(concat_output)
        self.input_split_hint = _hint_arg(input_split_hint, "input_split_hint")
        self.output_concat_hint = _hint_arg(output_concat_hint, "output_concat_hint")
        self._output_hint = _hints.output_hint(self.output_concat_hint)
        if not _is_torchscript(model):
            warnings.warn("MultiStreamModule: the model is not TorchScript; its streams share the "
                          "GIL while Python code runs, which may limit them (torch.jit.trace or "
                          "torch.jit.script it for full speed)", stacklevel=2)
        self._pin = pin(cpu_pool)
        self._streams = None
        if self.num_streams > 1:
            self._start_streams()

    def _start_streams(self):
        self._streams = _pinfer.Streams(self.cpu_pool._pool, self.num_streams)
        _open.add(self)
        pools = self._streams.pools
        self._streams.run(self.num_streams,
                          lambda stream, begin, end: _init_worker(len(pools[stream])))

    @property
    def stream_core_ids(self):
        """Each stream's CPUs."""
        if self._streams is None:
            return [list(self.cpu_pool.core_ids)]
        return self._streams.pools

    def get_stream_number(self):
        """The number of streams (IPEX's method): ``num_streams`` after "AUTO" and clamping."""
        return self.num_streams

    def forward(self, *args, **kwargs):
        if os.getpid() != self._pid:
            raise RuntimeError("this MultiStreamModule was made in process %d; this is process "
                               "%d, a child made by fork(), where its streams' threads do not "
                               "exist (fork() copies only the calling thread): make a new one "
                               "in the child" % (self._pid, os.getpid()))
        if self._streams is None:
            with self._pin:
                output = self.model(*args, **kwargs)
            return output if self.concat_output else [output]
        split = _hints.Split(self.input_split_hint, args, kwargs)
        modes = _modes()
        if split.batch == 0:
            with self._pin:
                outputs = [self.model(*args, **kwargs)]
        else:
            outputs = self._run_streams(split, modes)
        if not self.concat_output:
            return outputs
        return _hints.concat(self._output_hint, outputs)

    def _run_streams(self, split, modes):
        """Run the model on every chunk at once, one stream each; their outputs in order.

        The chunks are cut here, in the calling thread: every torch call made from Python
        releases and takes the GIL again, and in a worker each of those hand-offs would wait
        for the other streams' (tens of microseconds each on a small VM).  The streams then
        only call the model."""
        active = min(split.batch, self.num_streams)
        chunks = [split.chunk(*_pinfer.split_range(split.batch, self.num_streams, i))
                  for i in range(active)]
        model = self.model

        def run_chunk(stream, begin, end):
            chunk_args, chunk_kwargs = chunks[stream]
            return _call(model, modes, chunk_args, chunk_kwargs)

        return self._streams.run(split.batch, run_chunk)

    def close(self):
        """Stop the streams (also done when the module is freed)."""
        if self._streams is not None:
            self._streams.close()

    def extra_repr(self):
        return "num_streams=%d, cpu_pool=%r, concat_output=%s" % (
            self.num_streams, self.cpu_pool, self.concat_output)


def _hint_arg(hint, name):
    if hint is None:
        return MultiStreamModuleHint(0)
    if not isinstance(hint, MultiStreamModuleHint):
        raise ValueError("%s must be a MultiStreamModuleHint, not %s"
                         % (name, type(hint).__name__))
    return hint


# ---------------------------------------------------------------------------
# Topology and planning


def topology(source=None):
    """The machine as ``pinfer topo --json`` shows it: the library writes that document
    (pf_topology_to_json) and this is ``json.loads`` of it, so the two never disagree.

    A dict with source, sockets, cores, nodes, cpus (one dict per CPU: cpu, core, socket,
    node, smt_rank, core_first, llc (None when unknown), efficiency, allowed), allowed (the
    CPUs this process may use), features and libraries.  features (ISA names) and libraries
    ({"tcmalloc": path or None, "jemalloc": ..., "iomp": ...}) describe this machine: they are
    [] and {} for any other source.  `source` is None/"live", an lscpu or hwloc XML file, or
    "synthetic:<hwloc description>".
    """
    return json.loads(_pinfer.topology_json(source))


_PLAN_ALIASES = {
    "ncore_per_instance": "ncores_per_instance",
    "cores_list": "core_list",
    "use_logical_core": "use_logical_cores",
    "use_e_core": "use_e_cores",
    "skip_cross_node_cores": "bind_numa_node",
}
_PLAN_INTS = ("ninstances", "ncores_per_instance", "node_id", "socket_id", "rank", "local_rank",
              "local_world_size")
_PLAN_FLAGS = ("use_logical_cores", "use_e_cores", "bind_numa_node", "latency_mode",
               "throughput_mode", "multi_instance")
_PLAN_LISTS = ("nodes_list", "core_list", "instance_idx")


def plan(**options):
    """What ``pinfer run`` would start, as ``pinfer plan --json`` shows it: the library makes
    the launch spec (pf_launch_spec_create) and writes its document (pf_launch_spec_to_json);
    this is ``json.loads`` of it.  A dict with topology (source, cpus, cores, sockets, nodes,
    and cpu_quota when the plan kept within one), instances (index, cpus, nodes, threads), env
    (the assignments every instance shares), preload (LD_PRELOAD's entries), command ([]: no
    program) and warnings.  Allocator and OpenMP runtime are "auto", CPUs and memory are
    bound, and env and preload follow this process's environment and the libraries found
    here, as ``pinfer plan`` without those options.

    Options take run_cpu's and ipexrun's names: ninstances, ncores_per_instance, node_id, socket_id,
    nodes_list, core_list, use_logical_cores, use_e_cores, bind_numa_node, strategy ("close"
    or "scatter"), latency_mode, throughput_mode, multi_instance, rank, instance_idx,
    local_rank, local_world_size, topology (a source as for topology()), and cpu_quota: a
    CPU quota to plan within, in CPUs (a positive number, such as 4 or 2.5), instead of the
    topology's (the live machine's cgroup quota; other sources have none).  Lists may be
    strings ("0-3,8") or iterables of ints.  An impossible request is a ValueError with the
    planner's message, and so is a cpu_quota that is not a positive number; an unknown
    option is a TypeError.  The variables the tool takes options from (PINFER_TOPOLOGY,
    PINFER_CPU_QUOTA, LOCAL_RANK, LOCAL_WORLD_SIZE) are not read: pass their values as
    topology=, cpu_quota=, local_rank= and local_world_size=.
    """
    call = {}
    for name, value in options.items():
        key = _PLAN_ALIASES.get(name, name)
        if key == "topology":
            call[key] = None if value is None else str(value)
        elif key == "cpu_quota":
            if value is not None:
                call[key] = _plan_quota(value)
        elif key == "strategy":
            if value not in ("close", "scatter"):
                raise ValueError("plan: strategy %r is not 'close' or 'scatter'" % (value,))
            call["scatter"] = value == "scatter"
        elif key in _PLAN_INTS:
            if value is not None:
                call[key] = _plan_int(key, value)
        elif key in _PLAN_FLAGS:
            call[key] = bool(value)
        elif key in _PLAN_LISTS:
            if value is not None:
                call[key] = _plan_list(key, value)
        else:
            raise TypeError("plan() got an unexpected keyword argument %r" % name)
    return json.loads(_pinfer.plan_json(**call))


def _plan_int(key, value):
    if isinstance(value, bool):
        raise ValueError("plan: %s=%r is not an int" % (key, value))
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError("plan: %s=%r is not an int" % (key, value)) from None
    if not -(1 << 30) <= value <= 1 << 30:
        raise ValueError("plan: %s=%d is out of range" % (key, value))
    return value


def _plan_quota(value):
    """cpu_quota as the float the planner takes: a positive finite number of CPUs."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            quota = float(value)
        except OverflowError:  # an int too large for a float
            quota = math.inf
        if quota > 0 and math.isfinite(quota):
            return quota
    raise ValueError("plan: cpu_quota=%r is not a positive number of CPUs, such as 4 or 2.5"
                     % (value,))


def _plan_list(key, value):
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    try:
        return ",".join(str(_plan_int(key, v)) for v in value)
    except TypeError:
        raise ValueError("plan: %s=%r is not a list of ids" % (key, value)) from None

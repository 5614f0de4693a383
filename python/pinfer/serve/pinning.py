"""Re-pinning a running worker in place (the protocol's PIN): its threads, its OpenMP team,
torch's thread count and its memory policy, without a restart.

In order:

1. the previous pin of the team, if any, is undone (pinfer.pin's state, restored exactly);
2. every thread of the process (/proc/self/task) gets the new CPUs as its mask, so that
   no thread is left outside them (torch's other pools, Python threads);
3. ``torch.set_num_threads(len(cpus))``: the OpenMP team size and torch's default;
4. the team is pinned one thread per CPU, team thread t on cpus[t]: with ``pinfer.pin``
   over a ``CPUPool`` when the CPUs are ones pinfer's pools accept (those the process
   could use when pinfer was imported: the worker's first CPUs, or fewer), else in one
   OpenMP region where each team thread binds itself (``_pinfer.team_bind``), since a pool
   refuses CPUs outside the start-up mask and the front end may move a worker anywhere;
5. the memory policy: MPOL_BIND over the nodes, set by each team thread for itself (a
   memory policy belongs to a thread), and the process's pages on other nodes moved to
   them (migrate_pages; best effort).  ``nodes == []`` sets the default policy.

The pin is kept until the next PIN (it is never left: the worker has no block to leave).
A PIN that fails puts the previous CPUs and nodes back, as far as that works.
"""
import os
import warnings

MAX_NODE = 1 << 16


class PinError(Exception):
    """A PIN that could not be applied (the message says which part)."""


def _ids(values, what, limit):
    if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, int)
                                           for v in values):
        raise PinError("%s must be a list of ints" % what)
    if any(v < 0 or v >= limit for v in values):
        raise PinError("%s: an id out of range (0 to %d)" % (what, limit - 1))
    if len(set(values)) != len(values):
        raise PinError("%s: an id listed twice" % what)
    return values


def thread_ids():
    """The kernel thread ids of this process."""
    return sorted(int(t) for t in os.listdir("/proc/self/task"))


def online_nodes():
    """The NUMA nodes of the machine ([0] when the kernel has no NUMA)."""
    try:
        with open("/sys/devices/system/node/online") as f:
            text = f.read().strip()
    except OSError:
        return [0]
    nodes = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            nodes.extend(range(int(lo), int(hi) + 1))
        elif part:
            nodes.append(int(part))
    return nodes or [0]


class Pinner(object):
    """The worker's current pin: ``cpus``, ``nodes``, ``threads`` (torch's thread count)."""

    def __init__(self):
        self._pin = None  # the pinfer.pin entered for the current CPUs, or None
        self.cpus = None
        self.nodes = None
        self.threads = None
        self.how = None

    def apply(self, cpus, nodes):
        """Re-pin to `cpus` (their order is the team's) and `nodes` (None: memory policy
        unchanged).  PinError with the reason when something could not be applied; the
        worker is then put back on its previous CPUs and nodes, as far as that works."""
        previous = (self.cpus, self.nodes)
        try:
            return self._apply(cpus, nodes)
        except PinError:
            if previous[0] is not None:
                try:
                    self._apply(*previous)
                except PinError:
                    pass
            raise

    def _apply(self, cpus, nodes):
        import torch

        import pinfer
        from pinfer import _pinfer

        cpus = _ids(cpus, "cpus", 1 << 22)
        if not cpus:
            raise PinError("cpus: empty")
        if nodes is not None:
            nodes = _ids(nodes, "nodes", MAX_NODE)
        if self._pin is not None:
            self._pin.__exit__(None, None, None)
            self._pin = None
        for tid in thread_ids():
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:  # the thread ended meanwhile
                continue
            except OSError as error:
                raise PinError("cpus %s: %s" % (cpus, error.strerror or error)) from None
        torch.set_num_threads(len(cpus))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pool = pinfer.CPUPool(cpus)
            except ValueError:
                pool = None
        try:
            if pool is not None and pool.core_ids == cpus:
                pin = pinfer.pin(pool)
                pin.__enter__()
                self._pin, self.how = pin, "pinfer.pin"
            else:
                _pinfer.team_bind(cpus=cpus)
                self.how = "team_bind"
        except (RuntimeError, ValueError, OSError) as error:
            raise PinError("pinning the OpenMP team to %s: %s" % (cpus, error)) from None
        self.cpus, self.threads = list(cpus), torch.get_num_threads()
        if nodes is not None:
            try:
                _pinfer.team_bind(nodes=nodes)
            except OSError as error:
                raise PinError("memory policy for nodes %s: %s"
                               % (nodes, error.strerror or error)) from None
            self.nodes = list(nodes)
            others = [n for n in online_nodes() if n not in nodes]
            if nodes and others:
                try:
                    _pinfer.migrate_pages(others, nodes)
                except OSError:
                    pass  # moving pages is best effort (refused in some containers)
        return self

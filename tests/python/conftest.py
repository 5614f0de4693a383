"""Shared fixtures of the Python tests: where the repository and the built tool are, and
the CPUs of this machine the tests run on (chosen from those this process may use, never
named by number)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def import_pinfer():
    """The package from python/, its extension built by `make python` if missing or stale."""
    proc = subprocess.run(["make", "-C", ROOT, "-s", "python"], capture_output=True, text=True)
    assert proc.returncode == 0, "make python failed:\n" + proc.stdout + proc.stderr
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import pinfer
    return pinfer


def pinfer_path():
    """The pinfer binary of build/ (built by `make` if missing), or $PINFER_TEST_BIN (the
    sanitizer build, for the suites that run under it)."""
    chosen = os.environ.get("PINFER_TEST_BIN")
    if chosen:
        return os.path.join(ROOT, chosen)
    path = os.path.join(ROOT, "build", "pinfer")
    if not os.path.exists(path):
        subprocess.run(["make", "-C", ROOT, "-s", "build/pinfer"], check=True)
    return path


@pytest.fixture(scope="session")
def pinfer():
    """The pinfer binary of build/ (built by `make` if missing)."""
    return pinfer_path()


@pytest.fixture(scope="session")
def taskset():
    path = shutil.which("taskset")
    assert path, "taskset (util-linux) is part of every Debian system"
    return path


# ---- CPUs -----------------------------------------------------------------------


def allowed_cpus():
    """The CPUs this process may use, ascending."""
    return sorted(os.sched_getaffinity(0))


def cpulist(cpus):
    """CPU ids written as the kernel and pinfer write a list: ascending, ranges collapsed
    ("0-3,8")."""
    parts, ids = [], sorted(set(cpus))
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else "%d-%d" % (ids[i], ids[j]))
        i = j + 1
    return ",".join(parts)


_live = {}


def live_topology():
    """`pinfer topo --json` as this process sees the machine: pinfer's own view of it."""
    if "topo" not in _live:
        out = subprocess.run([pinfer_path(), "topo", "--json"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
        _live["topo"] = json.loads(out)
    return _live["topo"]


def launcher_cpus(count=2):
    """Up to `count` CPUs for `pinfer run`, chosen so that a plan of that many instances
    puts one on each: CPUs this process may use, each on a core of its own, not E-cores,
    all on one NUMA node (the first node that has `count` of them; else as many as one node
    has).  The first of each core, lowest ids first."""
    best = []
    for node in live_topology()["nodes"]:
        cores, chosen = set(), []
        for c in live_topology()["cpus"]:
            core = (c["socket"], c["core_first"])
            if c["node"] == node and c["allowed"] and not c["efficiency"] and core not in cores:
                cores.add(core)
                chosen.append(c["cpu"])
        if len(chosen) >= count:
            return chosen[:count]
        if len(chosen) > len(best):
            best = chosen
    return best

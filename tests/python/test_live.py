"""The live topology: what pinfer sees of this machine, under taskset and in a cgroup with a
CPU quota."""
import json
import math
import os
import re
import subprocess

import pytest

from conftest import allowed_cpus, live_topology


def planned_cpus():
    """The allowed CPUs pinfer plans on by default: all but the E-cores of a hybrid CPU."""
    efficiency = {c["cpu"] for c in live_topology()["cpus"] if c["efficiency"]}
    return [c for c in allowed_cpus() if c not in efficiency]


def run(argv, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)
    return proc.returncode, proc.stdout, proc.stderr


def test_topo_json_matches_this_process(pinfer):
    rc, out, err = run([pinfer, "topo", "--json"])
    assert rc == 0, err
    topo = json.loads(out)
    assert topo["source"] == "live"
    assert topo["allowed"] == allowed_cpus()
    cpus = [c["cpu"] for c in topo["cpus"]]
    assert cpus == sorted(cpus)
    assert len(cpus) == os.cpu_count()
    for c in topo["cpus"]:
        assert set(c) >= {"cpu", "core", "socket", "node", "smt_rank", "efficiency"}
    assert isinstance(topo["features"], list)
    # /proc/cpuinfo agrees on the features it names.
    with open("/proc/cpuinfo") as f:
        flags = next(line for line in f if line.startswith("flags")).split(":")[1].split()
    for feature in topo["features"]:
        assert feature in flags


def test_plan_uses_every_allowed_cpu(pinfer):
    rc, out, err = run([pinfer, "plan", "--json", "--use-logical-cores"])
    assert rc == 0, err
    plan = json.loads(out)
    assert plan["topology"]["source"] == "live"
    quota = live_topology().get("cpu_quota")
    assert plan["topology"].get("cpu_quota") == quota
    cpus = plan["instances"][0]["cpus"]
    if quota and quota < len(planned_cpus()):
        # Run inside a cgroup with a CPU quota: the first floor(quota) CPUs only.
        assert len(cpus) == max(1, math.floor(quota)) and set(cpus) <= set(planned_cpus())
    else:
        assert cpus == planned_cpus()


def test_plan_under_taskset_uses_only_that_cpu(pinfer, taskset):
    cpu = planned_cpus()[-1]
    rc, out, err = run([taskset, "-c", str(cpu), pinfer, "plan", "--json"])
    assert rc == 0, err
    plan = json.loads(out)
    assert [i["cpus"] for i in plan["instances"]] == [[cpu]]
    assert plan["topology"]["cpus"] == os.cpu_count()  # the machine is still all there
    rc, out, err = run([taskset, "-c", str(cpu), pinfer, "topo", "--json"])
    assert rc == 0, err
    topo = json.loads(out)
    assert topo["allowed"] == [cpu]
    assert [c["cpu"] for c in topo["cpus"] if c["allowed"]] == [cpu]


def test_taskset_refuses_cpus_outside_the_mask(pinfer, taskset):
    cpus = allowed_cpus()
    if len(cpus) < 2:
        pytest.skip("needs two CPUs: with one, no CPU of this process is outside the mask")
    rc, out, err = run([taskset, "-c", str(cpus[0]), pinfer, "plan", "--json",
                        "--core-list", str(cpus[1])])
    assert rc == 2
    assert "not usable by this process" in json.loads(out)["error"]
    assert err.startswith("pinfer: error: ")
    rc, out, err = run([taskset, "-c", str(cpus[0]), pinfer, "plan", "--ninstances", "2"])
    assert rc == 2 and "more than the 1 core available" in err


def test_topo_human_lists_libraries(pinfer):
    rc, out, err = run([pinfer, "topo"])
    assert rc == 0, err
    assert out.startswith("source:     live\n")
    assert "openmp:" in out and "allocator:" in out


# ---- a real cgroup with a CPU quota ---------------------------------------------


def self_cgroup(controller):
    """This process's cgroup for `controller` from /proc/self/cgroup: ("v1", controller list,
    path) for the v1 hierarchy that holds it, else ("v2", "", path), else None."""
    v2 = None
    with open("/proc/self/cgroup") as f:
        for line in f:
            ident, _, rest = line.rstrip("\n").partition(":")
            controllers, _, path = rest.partition(":")
            if controller in controllers.split(","):
                return "v1", controllers, path
            if ident == "0" and controllers == "":
                v2 = ("v2", "", path)
    return v2


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def make_quota_cgroup(cpus):
    """A new cgroup limited to `cpus` CPUs by a CPU quota, a child of this process's own
    (v1, the cpu hierarchy) or of the mount's root (v2, where a child gets the cpu
    controller only from a parent without processes of its own, which the root may have).
    Returns (its folder, a cleanup function), or skips the test saying why."""
    found = self_cgroup("cpu")
    if not found:
        pytest.skip("no cgroup in /proc/self/cgroup: cannot make one with a CPU quota")
    version, controllers, path = found
    undo = []
    try:
        if version == "v1":
            mount = "/sys/fs/cgroup/cpu"
            if not os.path.isdir(mount):
                mount = "/sys/fs/cgroup/" + controllers
            parent = mount + path if ".." not in path else mount
            if not os.path.isdir(parent):
                parent = mount  # a container without a cgroup namespace: the mount is ours
            child = os.path.join(parent, "pinfer-quota-test-%d" % os.getpid())
            os.mkdir(child)
            undo.append(lambda: os.rmdir(child))
            write(os.path.join(child, "cpu.cfs_period_us"), "100000")
            write(os.path.join(child, "cpu.cfs_quota_us"), str(int(cpus * 100000)))
        else:
            root = "/sys/fs/cgroup"
            with open(os.path.join(root, "cgroup.controllers")) as f:
                if "cpu" not in f.read().split():
                    pytest.skip("cgroup v2 without the cpu controller at %s" % root)
            with open(os.path.join(root, "cgroup.subtree_control")) as f:
                enabled = "cpu" in f.read().split()
            if not enabled:
                write(os.path.join(root, "cgroup.subtree_control"), "+cpu")
                undo.append(lambda: write(os.path.join(root, "cgroup.subtree_control"), "-cpu"))
            child = os.path.join(root, "pinfer-quota-test-%d" % os.getpid())
            os.mkdir(child)
            undo.append(lambda: os.rmdir(child))
            write(os.path.join(child, "cpu.max"), "%d 100000" % int(cpus * 100000))
    except OSError as e:
        cleanup(undo)
        pytest.skip("cannot create a cgroup with a CPU quota here (%s %s): %s"
                    % (version, path, e))
    return child, lambda: cleanup(undo)


def cleanup(undo):
    for step in reversed(undo):
        try:
            step()
        except OSError:
            pass


def run_in_cgroup(cgroup, argv, **kw):
    """argv run by a shell that first moves itself into the cgroup."""
    script = 'echo $$ > "$1/cgroup.procs" || exit 99; shift; exec "$@"'
    return run(["sh", "-c", script, "sh", cgroup] + argv, **kw)


@pytest.fixture
def one_cpu_cgroup():
    """A cgroup with a quota of 1 CPU, removed after the test (skipped where none can be
    made: not root, no cgroup mount, a v2 parent that cannot delegate the cpu controller)."""
    child, done = make_quota_cgroup(1)
    try:
        rc, out, err = run_in_cgroup(child, ["cat", "/proc/self/cgroup"])
        if rc != 0:
            pytest.skip("cannot move a process into %s: %s" % (child, err.strip()))
        yield child
    finally:
        done()


def test_plan_keeps_within_a_real_cgroup_quota(pinfer, one_cpu_cgroup):
    ambient = live_topology().get("cpu_quota")
    quota = min(1.0, ambient) if ambient else 1.0
    # The default plan's candidates: one CPU per physical core among those planned on.
    cores = len({(c["socket"], c["core_first"]) for c in live_topology()["cpus"]
                 if c["cpu"] in planned_cpus()})
    for source in ("live", "hwloc"):
        env = dict(os.environ, PINFER_TOPOLOGY=source)
        env.pop("PINFER_CPU_QUOTA", None)
        rc, out, err = run_in_cgroup(one_cpu_cgroup, [pinfer, "plan", "--json"], env=env)
        assert rc == 0, err
        plan = json.loads(out)
        assert plan["topology"]["cpu_quota"] == quota, source
        assert [len(i["cpus"]) for i in plan["instances"]] == [1], source
        assert plan["instances"][0]["cpus"][0] in planned_cpus()
        warned = [w for w in plan["warnings"] if w.startswith("CPU quota of")]
        if cores > 1:
            assert len(warned) == 1, plan["warnings"]
            assert re.fullmatch(r"CPU quota of [0-9.]+ CPUs: planning on 1 of %d cores" % cores,
                                warned[0]), warned
        else:
            assert warned == []
        rc, out, err = run_in_cgroup(one_cpu_cgroup, [pinfer, "topo", "--json"], env=env)
        assert rc == 0, err
        assert json.loads(out)["cpu_quota"] == quota
    # Outside the cgroup, no such quota.
    assert live_topology().get("cpu_quota") == ambient

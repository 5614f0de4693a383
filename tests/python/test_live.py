"""The live topology: what pinfer sees of this machine, and under taskset."""
import json
import os
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
    assert plan["instances"][0]["cpus"] == planned_cpus()


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

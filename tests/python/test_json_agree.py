"""pinfer.topology() and pinfer.plan() are `pinfer topo --json` and `pinfer plan --json`.

The library writes both documents (pf_topology_to_json, pf_launch_spec_to_json) and the
package parses that text, so for every topology source (the live machine, every fixture of
tests/fixtures, hwloc XML, a synthetic string) and several plan option sets the dict must
equal json.loads of the tool's output, key for key, failures included ({"error": message}
against the exception's message).  The tool runs in this process's environment (the plan's
env and preload come from it) and, for the live machine, with the CPUs this process may use
as its mask (that is what "allowed" means for both).
"""
import fractions
import glob
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, import_pinfer

pinfer = import_pinfer()

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
SYNTHETIC = "synthetic:pack:2 numa:2 core:4 pu:2"
ALLOWED = pinfer.CPUPool().core_ids


def fixture_files():
    """Every topology file of tests/fixtures (lscpu and lscpu -e outputs), relative to ROOT."""
    paths = sorted(glob.glob(os.path.join(FIXTURES, "*.lscpu*")))
    assert len(paths) >= 5, paths
    return [os.path.relpath(path, ROOT) for path in paths]


def lstopo_xml(tmp_path_factory, name, *args):
    """An hwloc XML export made by lstopo (hwloc's own tool), or a skip without it."""
    lstopo = shutil.which("lstopo-no-graphics") or shutil.which("lstopo")
    if not lstopo:
        pytest.skip("lstopo (Debian's hwloc package) is needed to export hwloc XML")
    path = str(tmp_path_factory.mktemp("xml") / name)
    subprocess.run([lstopo, *args, "--of", "xml", path], check=True, capture_output=True,
                   timeout=60)
    return path


@pytest.fixture(scope="module")
def tool(pinfer):  # noqa: F811 - conftest's fixture: the pinfer command of build/
    return pinfer


@pytest.fixture(scope="module")
def xml_sources(tmp_path_factory):
    return [lstopo_xml(tmp_path_factory, "synthetic.xml", "-i", "pack:2 numa:2 core:3 pu:2"),
            lstopo_xml(tmp_path_factory, "this_machine.xml")]


@pytest.fixture
def same_environment(monkeypatch):
    """One environment for both sides, and ROOT as the directory that fixture paths are
    relative to.  The tool also reads PINFER_TOPOLOGY, PINFER_CPU_QUOTA, LOCAL_RANK and
    LOCAL_WORLD_SIZE, which plan() takes as arguments instead."""
    monkeypatch.chdir(ROOT)
    for name in ("PINFER_TOPOLOGY", "PINFER_CPU_QUOTA", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def tool_json(tool, taskset, argv, source, env=None):
    """The tool's --json document for this source: its output on success, {"error": ...}
    (exit status 2) on failure.  The live machine is seen with this process's CPUs.  `env`:
    variables to set for the tool only."""
    command = [tool] + argv + ["--json"]
    if source is None:
        command = [taskset, "-c", ",".join(map(str, ALLOWED))] + command
    else:
        command[2:2] = ["--topology", source]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))
    document = json.loads(proc.stdout)
    assert proc.returncode == (2 if "error" in document else 0), proc.stderr
    return document


def package_json(call, what, **kwargs):
    """call(**kwargs) as a --json document: the dict, or {"error": ...} for the library's
    exceptions (their message is "<what>: <the library's message>")."""
    try:
        return call(**kwargs)
    except (ValueError, FileNotFoundError, PermissionError) as error:
        message = str(error)
        assert message.startswith(what + ": "), message
        return {"error": message[len(what) + 2:]}


# ---------------------------------------------------------------------------
# topology()


def check_topology(tool, taskset, source):
    theirs = tool_json(tool, taskset, ["topo"], source)
    mine = package_json(pinfer.topology, "topology", source=source)
    assert mine == theirs, source
    return mine


@pytest.mark.parametrize("source", fixture_files() + [SYNTHETIC, "synthetic:nonsense",
                                                      "tests/fixtures/missing.lscpu"])
def test_topology_of_a_source(tool, taskset, same_environment, source):
    check_topology(tool, taskset, source)


def test_topology_of_hwloc_xml(tool, taskset, same_environment, xml_sources):
    for source in xml_sources:
        assert "error" not in check_topology(tool, taskset, source)


def test_topology_of_this_machine(tool, taskset, same_environment):
    mine = check_topology(tool, taskset, None)
    assert mine["source"] == "live"
    assert sorted(mine["libraries"]) == ["iomp", "jemalloc", "tcmalloc"]
    assert mine["allowed"] == ALLOWED


def test_another_machine_has_no_features_or_libraries(same_environment):
    """Features and libraries are this machine's: a fixture's topology has none of them."""
    for source in [f for f in fixture_files() if "bad_" not in f] + [SYNTHETIC]:
        topo = pinfer.topology(source)
        assert topo["features"] == [] and topo["libraries"] == {}, source
    worked = pinfer.topology("tests/fixtures/worked16.lscpu")
    assert all(cpu["llc"] is None for cpu in worked["cpus"])  # the file has no cache column


# ---------------------------------------------------------------------------
# plan()

# (plan()'s keywords, the tool's options): the same request both ways.
PLAN_CASES = [
    ({}, []),
    ({"ninstances": 2}, ["--ninstances", "2"]),
    ({"ncore_per_instance": 3, "use_logical_core": True},
     ["--ncores-per-instance", "3", "--use-logical-cores"]),
    ({"ncores_per_instance": -1, "ninstances": 3}, ["--ncores-per-instance", "-1",
                                                    "--ninstances", "3"]),
    ({"node_id": 1}, ["--node-id", "1"]),
    ({"socket_id": 1, "ninstances": 2}, ["--socket-id", "1", "--ninstances", "2"]),
    ({"nodes_list": [0, 1], "skip_cross_node_cores": True, "ninstances": 4},
     ["--nodes-list", "0,1", "--bind-numa-node", "--ninstances", "4"]),
    ({"cores_list": "0-3", "ninstances": 2}, ["--core-list", "0-3", "--ninstances", "2"]),
    ({"ninstances": 4, "ncores_per_instance": 1, "strategy": "scatter"},
     ["--ninstances", "4", "--ncores-per-instance", "1", "--strategy", "scatter"]),
    ({"latency_mode": True}, ["--latency-mode"]),
    ({"throughput_mode": True, "rank": 0}, ["--throughput-mode", "--rank", "0"]),
    ({"multi_instance": True, "instance_idx": [1]}, ["--multi-instance", "--instance-idx", "1"]),
    ({"use_e_cores": True}, ["--use-e-cores"]),
    ({"ninstances": 1000}, ["--ninstances", "1000"]),  # impossible: the same error
]

PLAN_SOURCES = ["tests/fixtures/worked16.lscpu", "tests/fixtures/snc_4n14c.lscpu",
                "tests/fixtures/hybrid_8p8e.lscpu-e", SYNTHETIC]


# (the CPU quota, plan()'s other keywords, the tool's options): plan(cpu_quota=Q, ...) against
# PINFER_CPU_QUOTA=Q pinfer plan ... (docs/planning.md, "The CPU quota").
QUOTA_CASES = [
    ("2.5", {}, []),
    ("0.5", {}, []),
    ("3", {"use_logical_cores": True}, ["--use-logical-cores"]),
    ("6", {"throughput_mode": True}, ["--throughput-mode"]),
    ("5", {"ninstances": 2, "skip_cross_node_cores": True},
     ["--ninstances", "2", "--bind-numa-node"]),
    ("4", {"cores_list": "4-11"}, ["--core-list", "4-11"]),
    ("1000", {"ninstances": 2}, ["--ninstances", "2"]),  # larger than the machine: no effect
    ("2", {"ninstances": 4}, ["--ninstances", "4"]),  # impossible within it: the same error
    ("3.9", {"latency_mode": True}, ["--latency-mode"]),  # below 4 cores: the same error
    ("4", {"multi_instance": True, "rank": 1}, ["--multi-instance", "--rank", "1"]),
]


def check_plan(tool, taskset, source, options, argv, quota=None):
    theirs = tool_json(tool, taskset, ["plan"] + argv, source,
                       env=None if quota is None else {"PINFER_CPU_QUOTA": quota})
    if quota is not None:
        options = dict(options, cpu_quota=float(quota))
    mine = package_json(pinfer.plan, "plan", topology=source, **options)
    assert mine == theirs, (source, options)
    return mine


@pytest.mark.parametrize("source", PLAN_SOURCES)
def test_plan_of_a_source(tool, taskset, same_environment, source):
    planned = 0
    for options, argv in PLAN_CASES:
        planned += "error" not in check_plan(tool, taskset, source, options, argv)
    assert planned >= len(PLAN_CASES) // 2


@pytest.mark.parametrize("source", PLAN_SOURCES)
def test_plan_within_a_cpu_quota(tool, taskset, same_environment, source):
    planned = within = 0
    for quota, options, argv in QUOTA_CASES:
        mine = check_plan(tool, taskset, source, options, argv, quota)
        if "error" not in mine:
            planned += 1
            assert mine["topology"]["cpu_quota"] == float(quota), (quota, options)
            cut = sum(len(i["cpus"]) for i in mine["instances"]) <= max(1, int(float(quota)))
            within += cut and any(w.startswith("CPU quota of") for w in mine["warnings"])
    assert planned >= len(QUOTA_CASES) // 2 and within >= 4, (planned, within)


def test_plan_within_the_quota_of_this_machine(tool, taskset, same_environment):
    """The live machine: its own cgroup quota, if any, replaced by the option's."""
    for quota in ("1", "1.5", "100000"):
        check_plan(tool, taskset, None, {}, [], quota)
        check_plan(tool, taskset, None, {"use_logical_cores": True},
                   ["--use-logical-cores"], quota)


def test_plan_does_not_read_pinfer_cpu_quota(tool, taskset, same_environment):
    """PINFER_CPU_QUOTA is the tool's way to pass the option: plan() takes cpu_quota= instead
    (as topology= for PINFER_TOPOLOGY), and a bad value there is no error of plan()'s."""
    source = "tests/fixtures/worked16.lscpu"
    without = pinfer.plan(topology=source, ninstances=2)
    for value in ("1", "0", "nonsense"):
        same_environment.setenv("PINFER_CPU_QUOTA", value)
        assert pinfer.plan(topology=source, ninstances=2) == without, value
    same_environment.setenv("PINFER_CPU_QUOTA", "2")
    mine = check_plan(tool, taskset, source, {"ninstances": 2}, ["--ninstances", "2"], "2")
    assert [i["cpus"] for i in mine["instances"]] == [[0], [1]]


@pytest.mark.parametrize("bad", [0, -1, 0.0, -0.5, float("nan"), float("inf"), 10 ** 400,
                                 True, "2", "2.5", [2], object()])
def test_plan_rejects_a_quota_that_is_not_a_positive_number(same_environment, bad):
    with pytest.raises(ValueError, match=r"^plan: cpu_quota=.* is not a positive number"):
        pinfer.plan(topology=SYNTHETIC, cpu_quota=bad)


def test_plan_takes_any_real_number_as_a_quota(same_environment):
    expected = pinfer.plan(topology=SYNTHETIC, cpu_quota=2.5)
    assert expected["topology"]["cpu_quota"] == 2.5
    assert pinfer.plan(topology=SYNTHETIC, cpu_quota=fractions.Fraction(5, 2)) == expected
    assert pinfer.plan(topology=SYNTHETIC, cpu_quota=None) == pinfer.plan(topology=SYNTHETIC)
    assert pinfer.plan(topology=SYNTHETIC, cpu_quota=3)["topology"]["cpu_quota"] == 3


def test_plan_of_hwloc_xml(tool, taskset, same_environment, xml_sources):
    for options, argv in PLAN_CASES[:3]:
        assert "error" not in check_plan(tool, taskset, xml_sources[0], options, argv)


def test_plan_of_this_machine(tool, taskset, same_environment):
    mine = check_plan(tool, taskset, None, {"use_logical_cores": True},
                      ["--use-logical-cores"])
    assert mine["instances"][0]["cpus"] == ALLOWED
    check_plan(tool, taskset, None, {"ninstances": 1}, ["--ninstances", "1"])


def test_plan_follows_the_environment(tool, taskset, same_environment):
    """env, preload and warnings come from the environment: both sides see the same one, and
    plan() sees os.environ as it is now."""
    same_environment.setenv("CONDA_PREFIX", os.path.join(FIXTURES, "libtree"))
    same_environment.setenv("OMP_NUM_THREADS", "3")
    same_environment.setenv("LOCAL_RANK", "1")  # plan() takes these as arguments
    same_environment.setenv("LOCAL_WORLD_SIZE", "2")
    mine = check_plan(tool, taskset, SYNTHETIC,
                      {"ninstances": 2, "local_rank": 1, "local_world_size": 2},
                      ["--ninstances", "2"])
    lib = os.path.join(FIXTURES, "libtree", "lib")
    assert mine["preload"] == [os.path.join(lib, "libtcmalloc.so.4"),
                               os.path.join(lib, "libiomp5.so")]
    assert "OMP_NUM_THREADS" not in mine["env"]  # the existing value wins ...
    assert any("OMP_NUM_THREADS" in line for line in mine["warnings"])  # ... with a warning
    assert mine["command"] == []

#!/usr/bin/python3
"""Differential test of `pinfer plan --json` against the Python reference planner.

    diff_plan.py --self-test [--pinfer PATH]
        check the reference (plan_ref.py) against the spec's worked example and hand-computed
        cases; with --pinfer, run the same cases through pinfer too.
    diff_plan.py --pinfer PATH [--count N] [--seed S] [--keep-going] [--case K] [--save DIR]
        N random (topology, options) pairs; each runs
        `PATH plan --topology FILE --json [options]` and compares:
          - reference plans: pinfer exits 0 and its "instances" equal the reference's
            (and its "topology" cpus/cores/sockets/nodes equal the parsed model's);
          - reference error: pinfer exits 2 and prints a JSON object with "error" on stdout.
        Prints each mismatch and a final line "diff_plan: N passed, M failed"; exit 1 on a
        failure.  Without --keep-going it stops at the first mismatch.  --case K runs only
        case K of the seed (cases are seeded one by one, so a case repeats on its own).
        The topology files of failing cases are kept under --save DIR.
"""

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plan_ref  # noqa: E402
import gen_topology  # noqa: E402

# ---------------------------------------------------------------------------------------
# Option spellings
# ---------------------------------------------------------------------------------------

SPELLINGS = {
    "ninstances": ["--ninstances"],
    "ncores_per_instance": ["--ncores-per-instance", "--ncore-per-instance"],
    "node_id": ["--node-id"],
    "socket_id": ["--socket-id"],
    "nodes_list": ["--nodes-list"],
    "core_list": ["--core-list", "--cores-list"],
    "use_logical_cores": ["--use-logical-core", "--use-logical-cores"],
    "use_e_cores": ["--use-e-cores"],
    "bind_numa_node": ["--bind-numa-node", "--skip-cross-node-cores"],
    "strategy": ["--strategy"],
    "latency_mode": ["--latency-mode"],
    "throughput_mode": ["--throughput-mode"],
    "multi_instance": ["--multi-instance"],
    "rank": ["--rank"],
    "instance_idx": ["--instance-idx"],
}
FLAGS = {"use_logical_cores", "use_e_cores", "bind_numa_node", "latency_mode",
         "throughput_mode", "multi_instance"}


def render(rng, key, value):
    name = rng.choice(SPELLINGS[key])
    if rng.random() < 0.4:
        name = "--" + name[2:].replace("-", "_")
    if key in FLAGS:
        return [name]
    value = str(value)
    if rng.random() < 0.4:
        return [name + "=" + value]
    return [name, value]


def render_fixed(key, value):
    """Canonical spelling (self-test)."""
    if key in FLAGS:
        return [SPELLINGS[key][0]] if value else []
    return [SPELLINGS[key][0], str(value)]


# ---------------------------------------------------------------------------------------
# Running pinfer
# ---------------------------------------------------------------------------------------

def clean_env(extra):
    env = dict(os.environ)
    for k in ("LOCAL_RANK", "LOCAL_WORLD_SIZE", "PINFER_TOPOLOGY", "PINFER_CPU_QUOTA", "RANK",
              "WORLD_SIZE"):
        env.pop(k, None)
    env.update(extra)
    return env


def run_pinfer(pinfer, argv, env):
    try:
        p = subprocess.run([pinfer] + argv, env=clean_env(env), capture_output=True,
                           timeout=30)
    except subprocess.TimeoutExpired:
        return None, "", "timeout"
    except OSError as e:
        return None, "", "cannot run %s: %s" % (pinfer, e)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def compare(expected, topo, rc, out, err):
    """Return None if pinfer's answer matches, else (class, message)."""
    try:
        js = json.loads(out) if out.strip() else None
    except ValueError:
        js = None
    if isinstance(expected, plan_ref.PlanError):
        if rc == 2 and isinstance(js, dict) and "error" in js:
            return None
        if rc == 0:
            got = js.get("instances") if isinstance(js, dict) else out.strip()
            return ("ref-error/pinfer-ok", "expected error (%s), got exit 0 with %s"
                    % (expected, json.dumps(got)))
        return ("bad-error-output", "expected exit 2 with {\"error\"}, got exit %s, "
                "stdout %r, stderr %r" % (rc, out[:300], err[:300]))
    if rc != 0:
        msg = js.get("error") if isinstance(js, dict) else None
        return ("ref-ok/pinfer-error", "expected %s, got exit %s: %s" % (
            json.dumps(expected), rc, msg if msg else (out[:300] + err[:300])))
    if not isinstance(js, dict) or "instances" not in js:
        return ("bad-json", "exit 0 but stdout is not a plan: %r" % out[:300])
    if js["instances"] != expected:
        return ("instances-differ", "expected %s\n           got %s"
                % (json.dumps(expected), json.dumps(js["instances"])))
    t = js.get("topology")
    want = topo.summary()
    if isinstance(t, dict):
        got = {k: t.get(k) for k in want}
        if got != want:
            return ("topology-differs", "topology: expected %s, got %s"
                    % (json.dumps(want), json.dumps(got)))
    return None


def reference(topo, opts):
    try:
        return plan_ref.plan(topo, opts)
    except plan_ref.PlanError as e:
        return e


# ---------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------

def csv_topo(rows, header="CPU,Core,Socket,Node"):
    return "# " + header + "\n" + "\n".join(",".join(str(x) for x in r) for r in rows) + "\n"


# worked example: 2 sockets x 4 cores x 2 threads; 0-3,8-11 node 0; 4-7,12-15 node 1
TOPO_A = csv_topo([(c, c % 8, (c % 8) // 4, (c % 8) // 4) for c in range(16)])
# the same machine, other spellings
TOPO_A_VARIANTS = [
    csv_topo([(c, c % 8, (c % 8) // 4, "") for c in range(16)]),            # empty Node
    csv_topo([(c, c % 8, (c % 8) // 4) for c in range(16)], "CPU,Core,Socket"),
    csv_topo([(c, (c % 8) // 4, (c % 8) // 4, c % 4) for c in range(16)],
             "CPU,Node,Socket,Core"),                                        # per-socket ids
    (" CPU NODE SOCKET CORE L1d:L1i:L2:L3 ONLINE    MAXMHZ   MINMHZ\n" +
     "".join("%4d %4d %6d %4d %d:%d:%d:0 yes 3500.0000 800.0000\n"
             % (c, (c % 8) // 4, (c % 8) // 4, c % 8, c % 8, c % 8, c % 8) for c in range(16))
     + "  16    -      -    - -   no -         -\n"),
]
# nodes of 6 and 2 cores, no SMT
TOPO_B = csv_topo([(c, c, 0 if c < 6 else 1, 0 if c < 6 else 1) for c in range(8)])
# 4 nodes of 3,1,2,2 CPUs
_C_NODE = [0, 0, 0, 1, 2, 2, 3, 3]
TOPO_C = csv_topo([(c, c, _C_NODE[c], _C_NODE[c]) for c in range(8)])
# 4 nodes of 2 CPUs
TOPO_E = csv_topo([(c, c, c // 2, c // 2) for c in range(8)])
# one socket, cores alternating between node 16 and node 0 (node ids read whole)
TOPO_D = csv_topo([(c, c, 0, 16 if c % 2 == 0 else 0) for c in range(4)])
# siblings numbered next to each other (AMD / cloud)
TOPO_ADJ = csv_topo([(c, c // 2, 0, 0) for c in range(8)])
# hybrid: P-cores 0-1 (CPUs 0,1 and 2,3) at 5 GHz, E-cores 4-7 at 3.8 GHz
TOPO_H = (" CPU NODE SOCKET CORE MAXMHZ\n" +
          "".join("%4d 0 0 %d %s\n" % (c, c // 2 if c < 4 else c - 2,
                                       "5000.0000" if c < 4 else "3800.0000")
                  for c in range(8)))
# hybrid with the E-cores on a node of their own
TOPO_H2 = (" CPU NODE SOCKET CORE MAXMHZ\n" +
           "".join("%4d %d 0 %d %s\n" % (c, 0 if c < 4 else 1, c // 2 if c < 4 else c - 2,
                                         "5000.0000" if c < 4 else "3800.0000")
                   for c in range(8)))


def mhz_topo(vals):
    return " CPU SOCKET CORE MAXMHZ\n" + "".join(
        "%d 0 %d %s\n" % (i, i, v) for i, v in enumerate(vals))


def L(s):
    return plan_ref.parse_cpu_list(s)


# (name, topology text, options, env, expected) ; expected: "error" or list of
# (index, cpu list string, nodes or None, threads or None) / cpu list strings
ERR = "error"
SELF_CASES = [
    # --- the spec's worked example
    ("A none", TOPO_A, {}, {}, [(0, "0-7", [0, 1], 8)]),
    ("A ni2", TOPO_A, {"ninstances": 2}, {}, [(0, "0-3", [0], 4), (1, "4-7", [1], 4)]),
    ("A nc3", TOPO_A, {"ncores_per_instance": 3}, {}, [(0, "0-2", [0], 3), (1, "3-5", [0, 1], 3)]),
    ("A nc3 bind", TOPO_A, {"ncores_per_instance": 3, "bind_numa_node": True}, {},
     ["0-2", "4-6"]),
    ("A logical ni2", TOPO_A, {"use_logical_cores": True, "ninstances": 2}, {},
     [(0, "0-3,8-11", [0], 8), (1, "4-7,12-15", [1], 8)]),
    # --- NI / NC
    ("A nc3 ni3 (2 slices)", TOPO_A, {"ncores_per_instance": 3, "ninstances": 3}, {}, ERR),
    ("A ni3", TOPO_A, {"ninstances": 3}, {}, ["0,1", "2,3", "4,5"]),
    ("A nc-1 ni3", TOPO_A, {"ncores_per_instance": -1, "ninstances": 3}, {},
     ["0-2", "3-5", "6,7"]),
    ("A nc-1 ni3 bind", TOPO_A, {"ncores_per_instance": -1, "ninstances": 3,
                                 "bind_numa_node": True}, {}, ["0-3", "4,5", "6,7"]),
    ("A nc-1", TOPO_A, {"ncores_per_instance": -1}, {}, ["0-7"]),
    ("A ni-1 nc0", TOPO_A, {"ncores_per_instance": 0, "ninstances": -1}, {}, ["0-7"]),
    ("A bind", TOPO_A, {"bind_numa_node": True}, {}, ["0-3"]),
    ("A ni8", TOPO_A, {"ninstances": 8}, {}, ["0", "1", "2", "3", "4", "5", "6", "7"]),
    ("A ni9", TOPO_A, {"ninstances": 9}, {}, ERR),
    ("A nc9", TOPO_A, {"ncores_per_instance": 9}, {}, ERR),
    ("A nc5 bind", TOPO_A, {"ncores_per_instance": 5, "bind_numa_node": True}, {}, ERR),
    ("A nc2 ni3 close bind", TOPO_A, {"ncores_per_instance": 2, "ninstances": 3,
                                      "bind_numa_node": True}, {}, ["0,1", "2,3", "4,5"]),
    ("A logical node0 nc3", TOPO_A, {"use_logical_cores": True, "node_id": 0,
                                     "ncores_per_instance": 3}, {}, ["0,1,8", "2,9,10"]),
    # --- scatter
    ("A nc1 ni3 scatter", TOPO_A, {"ncores_per_instance": 1, "ninstances": 3,
                                   "strategy": "scatter"}, {}, ["0", "2", "5"]),
    ("A nc1 ni3 scatter bind", TOPO_A, {"ncores_per_instance": 1, "ninstances": 3,
                                        "strategy": "scatter", "bind_numa_node": True}, {},
     ["0", "2", "4"]),
    ("A nc1 ni5 scatter bind", TOPO_A, {"ncores_per_instance": 1, "ninstances": 5,
                                        "strategy": "scatter", "bind_numa_node": True}, {},
     ["0", "1", "2", "4", "6"]),
    ("A nc2 ni2 scatter", TOPO_A, {"ncores_per_instance": 2, "ninstances": 2,
                                   "strategy": "scatter"}, {}, ["0,1", "4,5"]),
    ("A nc4 ni2 scatter bind", TOPO_A, {"ncores_per_instance": 4, "ninstances": 2,
                                        "strategy": "scatter", "bind_numa_node": True}, {},
     ["0-3", "4-7"]),
    ("A nc2 scatter (no NI: all)", TOPO_A, {"ncores_per_instance": 2, "strategy": "scatter"},
     {}, ["0,1", "2,3", "4,5", "6,7"]),
    ("B nc3 ni2 scatter bind", TOPO_B, {"ncores_per_instance": 3, "ninstances": 2,
                                        "strategy": "scatter", "bind_numa_node": True}, {},
     ["0-2", "3-5"]),
    ("B nc2 ni3 scatter bind", TOPO_B, {"ncores_per_instance": 2, "ninstances": 3,
                                        "strategy": "scatter", "bind_numa_node": True}, {},
     ["0,1", "2,3", "6,7"]),
    ("B nc2 ni2 scatter", TOPO_B, {"ncores_per_instance": 2, "ninstances": 2,
                                   "strategy": "scatter"}, {}, ["0,1", "4,5"]),
    ("A strategy bogus", TOPO_A, {"strategy": "spread"}, {}, ERR),
    # --- step-6 sharing on unequal nodes
    ("B ni3 bind", TOPO_B, {"ninstances": 3, "bind_numa_node": True}, {},
     ["0-2", "3-5", "6,7"]),
    ("B ni2 bind", TOPO_B, {"ninstances": 2, "bind_numa_node": True}, {}, ["0-5", "6,7"]),
    ("B ni4 bind", TOPO_B, {"ninstances": 4, "bind_numa_node": True}, {},
     ["0,1", "2,3", "4,5", "6,7"]),
    ("B ni5 bind", TOPO_B, {"ninstances": 5, "bind_numa_node": True}, {},
     ["0", "1", "2", "3", "6,7"]),
    ("B ni5 nc-1 bind", TOPO_B, {"ninstances": 5, "bind_numa_node": True,
                                 "ncores_per_instance": -1}, {},
     ["0,1", "2,3", "4", "5", "6,7"]),
    ("B bind", TOPO_B, {"bind_numa_node": True}, {}, ["0-5"]),
    ("B ni3", TOPO_B, {"ninstances": 3}, {}, ["0,1", "2,3", "4,5"]),
    ("B nc4 bind", TOPO_B, {"ncores_per_instance": 4, "bind_numa_node": True}, {}, ["0-3"]),
    ("B nc4 ni2 bind", TOPO_B, {"ncores_per_instance": 4, "ninstances": 2,
                                "bind_numa_node": True}, {}, ERR),
    ("B throughput", TOPO_B, {"throughput_mode": True}, {}, ["0-5", "6,7"]),
    ("C ni1 bind", TOPO_C, {"ninstances": 1, "bind_numa_node": True}, {}, ["0-2"]),
    ("C ni2 bind", TOPO_C, {"ninstances": 2, "bind_numa_node": True}, {}, ["0-2", "4,5"]),
    ("C ni3 bind", TOPO_C, {"ninstances": 3, "bind_numa_node": True}, {},
     ["0-2", "4,5", "6,7"]),
    ("C ni4 bind", TOPO_C, {"ninstances": 4, "bind_numa_node": True}, {},
     ["0-2", "3", "4,5", "6,7"]),
    ("C ni6 bind", TOPO_C, {"ninstances": 6, "bind_numa_node": True}, {},
     ["0", "1", "3", "4,5", "6", "7"]),
    ("E ni2 bind", TOPO_E, {"ninstances": 2, "bind_numa_node": True}, {}, ["0,1", "2,3"]),
    ("E ni3 bind", TOPO_E, {"ninstances": 3, "bind_numa_node": True}, {},
     ["0,1", "2,3", "4,5"]),
    # --- order: node ids read whole, node ascending; explicit lists re-ordered
    ("D none", TOPO_D, {}, {}, [(0, "0-3", [0, 16], 4)]),
    ("D ni2", TOPO_D, {"ninstances": 2}, {}, [(0, "1,3", [0], 2), (1, "0,2", [16], 2)]),
    ("D nc1", TOPO_D, {"ncores_per_instance": 1}, {}, ["1", "3", "0", "2"]),
    ("D nc1 ni2 scatter bind", TOPO_D, {"ncores_per_instance": 1, "ninstances": 2,
                                        "strategy": "scatter", "bind_numa_node": True}, {},
     ["1", "0"]),
    ("D node16", TOPO_D, {"node_id": 16}, {}, ["0,2"]),
    ("D node1", TOPO_D, {"node_id": 1}, {}, ERR),
    ("D nodes 0,16 ni2", TOPO_D, {"nodes_list": "16,0", "ninstances": 2}, {}, ["1,3", "0,2"]),
    ("A corelist 9,1,8 nc1", TOPO_A, {"core_list": "9,1,8", "ncores_per_instance": 1}, {},
     ["8", "1", "9"]),
    ("A corelist spaces", TOPO_A, {"core_list": " 9, 1,8,8,", "ncores_per_instance": 1}, {},
     ["8", "1", "9"]),
    ("ADJ none", TOPO_ADJ, {}, {}, ["0,2,4,6"]),
    ("ADJ logical ni2", TOPO_ADJ, {"use_logical_cores": True, "ninstances": 2}, {},
     ["0-3", "4-7"]),
    # --- presets
    ("A latency", TOPO_A, {"latency_mode": True}, {}, ["0-3", "4-7"]),
    ("A latency logical", TOPO_A, {"latency_mode": True, "use_logical_cores": True}, {},
     ["0-3", "4-7"]),
    ("A latency ni5", TOPO_A, {"latency_mode": True, "ninstances": 5}, {}, ["0-3", "4-7"]),
    ("A latency corelist", TOPO_A, {"latency_mode": True, "core_list": "0-3,8-11"}, {},
     ["0,1,8,9", "2,3,10,11"]),
    ("A latency node1", TOPO_A, {"latency_mode": True, "node_id": 1}, {}, ["4-7"]),
    ("A latency node1 nc-1", TOPO_A, {"latency_mode": True, "nodes_list": "1",
                                      "ncores_per_instance": -1}, {}, ["4-7"]),
    ("B latency bind", TOPO_B, {"latency_mode": True, "bind_numa_node": True}, {}, ["0-3"]),
    ("B latency node1", TOPO_B, {"latency_mode": True, "node_id": 1}, {}, ERR),
    ("A throughput", TOPO_A, {"throughput_mode": True}, {}, ["0-3", "4-7"]),
    ("A throughput logical", TOPO_A, {"throughput_mode": True, "use_logical_cores": True},
     {}, ["0-3", "4-7"]),
    ("A throughput ni1 nc2", TOPO_A, {"throughput_mode": True, "ninstances": 1,
                                      "ncores_per_instance": 2}, {}, ["0-3", "4-7"]),
    ("A throughput node1", TOPO_A, {"throughput_mode": True, "node_id": 1}, {}, ["4-7"]),
    ("A throughput corelist", TOPO_A, {"throughput_mode": True, "core_list": "1,8,4-5,12"},
     {}, ["1,8", "4,5,12"]),
    ("A multi", TOPO_A, {"multi_instance": True}, {}, ["0-3", "4-7"]),
    ("A multi ni1", TOPO_A, {"multi_instance": True, "ninstances": 1}, {}, ["0-7"]),
    ("A multi logical nc8", TOPO_A, {"multi_instance": True, "use_logical_cores": True,
                                     "ncores_per_instance": 8}, {}, ["0-3,8-11", "4-7,12-15"]),
    ("A multi nc-1", TOPO_A, {"multi_instance": True, "ncores_per_instance": -1}, {},
     ["0-3", "4-7"]),
    ("B multi nc-1 bind", TOPO_B, {"multi_instance": True, "ncores_per_instance": -1,
                                   "bind_numa_node": True}, {}, ["0-5", "6,7"]),
    ("A latency throughput", TOPO_A, {"latency_mode": True, "throughput_mode": True}, {}, ERR),
    ("A latency multi", TOPO_A, {"latency_mode": True, "multi_instance": True}, {}, ERR),
    ("A latency multi ni2", TOPO_A, {"latency_mode": True, "multi_instance": True,
                                     "ninstances": 2}, {}, ["0-3", "4-7"]),
    # --- node options
    ("A nodes 1 ni2", TOPO_A, {"nodes_list": "1", "ninstances": 2}, {}, ["4,5", "6,7"]),
    ("A node-1", TOPO_A, {"node_id": -1}, {}, ["0-7"]),
    ("A node2", TOPO_A, {"node_id": 2}, {}, ERR),
    ("A nodes 0,5", TOPO_A, {"nodes_list": "0,5"}, {}, ERR),
    ("A node0 nodes1", TOPO_A, {"node_id": 0, "nodes_list": "1"}, {}, ERR),
    ("A socket1", TOPO_A, {"socket_id": 1}, {}, ["4-7"]),
    ("A socket1 ni2", TOPO_A, {"socket_id": 1, "ninstances": 2}, {}, ["4,5", "6,7"]),
    ("A socket1 logical", TOPO_A, {"socket_id": 1, "use_logical_cores": True}, {},
     ["4-7,12-15"]),
    ("A socket2", TOPO_A, {"socket_id": 2}, {}, ERR),
    ("A socket0 node0", TOPO_A, {"socket_id": 0, "node_id": 0}, {}, ERR),
    ("A socket1 corelist 0", TOPO_A, {"socket_id": 1, "core_list": "0"}, {}, ["0"]),
    # --- rank / instance-idx / torchrun
    ("A nc2 idx 3,1", TOPO_A, {"ncores_per_instance": 2, "instance_idx": "3,1"}, {},
     [(1, "2,3", [0], 2), (3, "6,7", [1], 2)]),
    ("A nc2 idx -1", TOPO_A, {"ncores_per_instance": 2, "instance_idx": "-1"}, {},
     ["0,1", "2,3", "4,5", "6,7"]),
    ("A nc2 rank2", TOPO_A, {"ncores_per_instance": 2, "rank": 2}, {}, [(2, "4,5", [1], 2)]),
    ("A nc2 rank4", TOPO_A, {"ncores_per_instance": 2, "rank": 4}, {}, ERR),
    ("A nc2 idx 1-4", TOPO_A, {"ncores_per_instance": 2, "instance_idx": "1-4"}, {}, ERR),
    ("A rank idx", TOPO_A, {"ncores_per_instance": 2, "rank": 0, "instance_idx": "1"}, {},
     ERR),
    ("A ni2 lws2 lr1", TOPO_A, {"ninstances": 2}, {"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1"},
     [(0, "2,3", [0], 2), (1, "6,7", [1], 2)]),
    ("A ni2 lws3 lr1", TOPO_A, {"ninstances": 2}, {"LOCAL_WORLD_SIZE": "3", "LOCAL_RANK": "1"},
     [(0, "1", [0], 1), (1, "5", [1], 1)]),
    ("A logical ni2 lws2 lr0 (planning order)", TOPO_A,
     {"use_logical_cores": True, "ninstances": 2}, {"LOCAL_WORLD_SIZE": "2"},
     [(0, "0,1,8,9", [0], 4), (1, "4,5,12,13", [1], 4)]),
    ("A logical ni2 lws2 lr1 (planning order)", TOPO_A,
     {"use_logical_cores": True, "ninstances": 2}, {"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1"},
     [(0, "2,3,10,11", [0], 4), (1, "6,7,14,15", [1], 4)]),
    ("D lws2 (planning order)", TOPO_D, {}, {"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "0"},
     [(0, "1,3", [0], 2)]),
    ("A ni2 rank1 lws2", TOPO_A, {"ninstances": 2, "rank": 1}, {"LOCAL_WORLD_SIZE": "2"},
     [(1, "4,5", [1], 2)]),
    ("A ni2 lws1 lr0", TOPO_A, {"ninstances": 2}, {"LOCAL_WORLD_SIZE": "1", "LOCAL_RANK": "0"},
     ["0-3", "4-7"]),
    ("A ni8 lws2", TOPO_A, {"ninstances": 8}, {"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "0"}, ERR),
    ("A lws2 lr2", TOPO_A, {}, {"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "2"}, ERR),
    ("A lws2 lr empty", TOPO_A, {}, {"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": ""}, ["0-3"]),
    ("A lws0", TOPO_A, {}, {"LOCAL_WORLD_SIZE": "0", "LOCAL_RANK": "0"}, ["0-7"]),
    ("A lws abc", TOPO_A, {}, {"LOCAL_WORLD_SIZE": "abc"}, ERR),
    ("A lr abc", TOPO_A, {}, {"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "x"}, ERR),
    # --- the CPU quota (D18)
    ("A quota 2.5", TOPO_A, {}, {"PINFER_CPU_QUOTA": "2.5"}, ["0,1"]),
    ("A quota .5", TOPO_A, {}, {"PINFER_CPU_QUOTA": ".5"}, ["0"]),
    ("A quota 6 throughput", TOPO_A, {"throughput_mode": True}, {"PINFER_CPU_QUOTA": "6"},
     ["0-3", "4,5"]),
    ("A quota 3 throughput", TOPO_A, {"throughput_mode": True}, {"PINFER_CPU_QUOTA": "3"},
     ["0-2"]),
    ("A quota 5 logical", TOPO_A, {"use_logical_cores": True}, {"PINFER_CPU_QUOTA": "5"},
     ["0-2,8,9"]),
    ("A quota 9", TOPO_A, {}, {"PINFER_CPU_QUOTA": "9"}, ["0-7"]),
    ("A quota 2 ni4", TOPO_A, {"ninstances": 4}, {"PINFER_CPU_QUOTA": "2"}, ERR),
    ("A quota 0", TOPO_A, {}, {"PINFER_CPU_QUOTA": "0"}, ERR),
    ("A quota 1e3", TOPO_A, {}, {"PINFER_CPU_QUOTA": "1e3"}, ERR),
    ("A quota empty", TOPO_A, {}, {"PINFER_CPU_QUOTA": ""}, ["0-7"]),
    # --- value errors
    ("A ni0", TOPO_A, {"ninstances": 0}, {}, ERR),
    ("A ni-2", TOPO_A, {"ninstances": -2}, {}, ERR),
    ("A nc-2", TOPO_A, {"ncores_per_instance": -2}, {}, ERR),
    ("A ni abc", TOPO_A, {"ninstances": "abc"}, {}, ERR),
    ("A nc 1.5", TOPO_A, {"ncores_per_instance": "1.5"}, {}, ERR),
    ("A corelist 16", TOPO_A, {"core_list": "15-16"}, {}, ERR),
    ("A corelist empty", TOPO_A, {"core_list": ""}, {}, ERR),
    ("A corelist 3-0", TOPO_A, {"core_list": "3-0"}, {}, ERR),
    ("A corelist 0-", TOPO_A, {"core_list": "0-"}, {}, ERR),
    ("A corelist -3", TOPO_A, {"core_list": "-3"}, {}, ERR),
    ("A corelist a", TOPO_A, {"core_list": "a"}, {}, ERR),
    ("A corelist 1.5", TOPO_A, {"core_list": "1.5"}, {}, ERR),
    # --- hybrid
    ("H none", TOPO_H, {}, {}, ["0,2"]),
    ("H e", TOPO_H, {"use_e_cores": True}, {}, ["0,2,4-7"]),
    ("H logical e", TOPO_H, {"use_e_cores": True, "use_logical_cores": True}, {}, ["0-7"]),
    ("H logical", TOPO_H, {"use_logical_cores": True}, {}, ["0-3"]),
    ("H corelist 4-5", TOPO_H, {"core_list": "4-5"}, {}, ["4,5"]),
    ("H latency", TOPO_H, {"latency_mode": True}, {}, ERR),
    ("H latency e", TOPO_H, {"latency_mode": True, "use_e_cores": True}, {}, ["0,2,4,5"]),
    ("H throughput e logical", TOPO_H, {"throughput_mode": True, "use_e_cores": True,
                                        "use_logical_cores": True}, {}, ["0,2,4-7"]),
    ("H2 node1", TOPO_H2, {"node_id": 1}, {}, ERR),
    ("H2 node1 e", TOPO_H2, {"node_id": 1, "use_e_cores": True}, {}, ["4-7"]),
    ("H2 e bind", TOPO_H2, {"use_e_cores": True, "bind_numa_node": True}, {}, ["4-7"]),
    ("H2 bind", TOPO_H2, {"bind_numa_node": True}, {}, ["0,2"]),
    ("H2 throughput", TOPO_H2, {"throughput_mode": True}, {}, ["0,2"]),
    ("H2 multi e", TOPO_H2, {"multi_instance": True, "use_e_cores": True}, {}, ["0,2", "4-7"]),
    ("H2 nodes 0,1", TOPO_H2, {"nodes_list": "0,1"}, {}, ERR),
    ("H2 corelist 4 node1", TOPO_H2, {"core_list": "4", "node_id": 1}, {}, ["4"]),
]


def expected_instances(topo, exp):
    if exp == ERR:
        return ERR
    out = []
    for i, e in enumerate(exp):
        if isinstance(e, str):
            e = (i, e, None, None)
        idx, cpus, nodes, threads = e
        cpus = L(cpus)
        if nodes is None:
            nodes = sorted({topo.cpu_node[c] for c in cpus})
        if threads is None:
            threads = len(cpus)
        out.append({"index": idx, "cpus": cpus, "nodes": nodes, "threads": threads})
    return out


def opts_with_env(opts, env):
    o = dict(opts)
    if "LOCAL_WORLD_SIZE" in env:
        o["local_world_size"] = env["LOCAL_WORLD_SIZE"]
    if "LOCAL_RANK" in env:
        o["local_rank"] = env["LOCAL_RANK"]
    if "PINFER_CPU_QUOTA" in env:
        o["cpu_quota"] = env["PINFER_CPU_QUOTA"]
    return o


def self_test(pinfer):
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL %s %s" % (name, detail))

    # parser: the same machine in several spellings
    a = plan_ref.parse_topology(TOPO_A)
    model = lambda t: (t.cpus, [t.cpu_node[c] for c in t.cpus],  # noqa: E731
                       [t.cpu_socket[c] for c in t.cpus], [t.smt_rank[c] for c in t.cpus],
                       sorted(sorted(v) for v in t.core_cpus.values()))
    check("parse A", a.summary() == {"cpus": 16, "cores": 8, "sockets": 2, "nodes": [0, 1]}
          and [a.smt_rank[c] for c in range(16)] == [0] * 8 + [1] * 8, str(a.summary()))
    for i, v in enumerate(TOPO_A_VARIANTS):
        t = plan_ref.parse_topology(v)
        check("parse A variant %d" % i, model(t) == model(a), str(model(t)))
    d = plan_ref.parse_topology(TOPO_D)
    check("parse D node 16", d.nodes == [0, 16], str(d.nodes))
    # E-core rule
    for vals, ecores in [(["5000", "4500", "3800"], []),
                         (["5000", "4400", "3600"], [2]),
                         (["5000", "4200", "2500"], [1, 2]),
                         (["5000.0000", "5000.0000", "3800.0000", "3800.0000"], [2, 3]),
                         (["3500", "3500"], []),
                         (["4900", "5100", "3700"], [2])]:
        t = plan_ref.parse_topology(mhz_topo(vals))
        got = [c for c in t.cpus if t.efficiency[c]]
        check("ecores %s" % vals, got == ecores, "got %s" % got)
    h = plan_ref.parse_topology(TOPO_H)
    check("ecores H", [c for c in h.cpus if h.efficiency[c]] == [4, 5, 6, 7])
    # CPU lists
    for s, want in [("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]), ("3, 1,1,", [1, 3]),
                    (" 5 ", [5]), ("2-2", [2])]:
        check("list %r" % s, plan_ref.parse_cpu_list(s) == want)
    for s in ["", " ", ",", "3-0", "0-", "-3", "a", "1.5", "1,,2", ",1"]:
        try:
            plan_ref.parse_cpu_list(s)
            check("list %r is an error" % s, False)
        except plan_ref.PlanError:
            check("list %r is an error" % s, True)

    tmp = tempfile.mkdtemp(prefix="diff_plan_self_")
    try:
        for name, text, opts, env, exp in SELF_CASES:
            topo = plan_ref.parse_topology(text)
            want = expected_instances(topo, exp)
            got = reference(topo, opts_with_env(opts, env))
            if want == ERR:
                check("ref: " + name, isinstance(got, plan_ref.PlanError), "got %s" % got)
            else:
                check("ref: " + name, got == want, "\n  expected %s\n  got      %s" % (
                    json.dumps(want), got if isinstance(got, Exception) else json.dumps(got)))
            if pinfer:
                path = os.path.join(tmp, "topo.txt")
                with open(path, "w") as f:
                    f.write(text)
                argv = ["plan", "--topology", path, "--json"]
                for k, v in opts.items():
                    argv += render_fixed(k, v)
                rc, out, err = run_pinfer(pinfer, argv, env)
                exp2 = plan_ref.PlanError("expected error") if want == ERR else want
                bad = compare(exp2, topo, rc, out, err)
                cmd = " ".join(shlex.quote(x) for x in argv)
                check("pinfer: " + name, bad is None,
                      "" if bad is None else "[%s] %s %s\n  %s" % (
                          bad[0], " ".join("%s=%s" % kv for kv in env.items()), cmd,
                          bad[1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("self-test: %d passed, %d failed" % (passed, failed))
    return failed == 0


# ---------------------------------------------------------------------------------------
# Random cases
# ---------------------------------------------------------------------------------------

def _list_text(rng, ids):
    """Render ids in CPU-list syntax with ranges, shuffled items, duplicates, spaces and
    a trailing comma."""
    ids = sorted(set(ids))
    items = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        if j > i and rng.random() < 0.8:
            items.append("%d-%d" % (ids[i], ids[j]))
        else:
            items += [str(x) for x in ids[i:j + 1]]
        i = j + 1
    if rng.random() < 0.3:
        rng.shuffle(items)
    if rng.random() < 0.15:
        items.append(rng.choice(items))
    sep = ", " if rng.random() < 0.15 else ","
    s = sep.join(items)
    if rng.random() < 0.1:
        s += ","
    return s


BAD_LISTS = ["", "3-0", "0-", "-3", "a", "1.5", ",", "1;2"]
BAD_INTS = ["abc", "1.5", "", "3x"]


def draw_case(rng, topo):
    """Return (opts for the reference, ordered list of (key, value) for argv, env)."""
    items = {}
    env = {}
    hybrid = any(topo.efficiency.values())
    phys = [c for c in topo.cpus if topo.smt_rank[c] == 0 and not topo.efficiency[c]]
    nphys = len(phys)
    nnodes = len(topo.nodes)

    # flags
    if rng.random() < 0.3:
        items["use_logical_cores"] = True
    if rng.random() < (0.5 if hybrid else 0.1):
        items["use_e_cores"] = True
    if rng.random() < 0.4:
        items["bind_numa_node"] = True
    s = rng.random()
    if s < 0.2:
        items["strategy"] = "close"
    elif s < 0.55:
        items["strategy"] = "scatter"
    elif s < 0.57:
        items["strategy"] = rng.choice(["spread", "CLOSE", ""])

    # presets
    p = rng.random()
    if p < 0.08:
        items["latency_mode"] = True
    elif p < 0.15:
        items["throughput_mode"] = True
    elif p < 0.22:
        items["multi_instance"] = True
    elif p < 0.235:
        items["latency_mode"] = True
        items[rng.choice(["throughput_mode", "multi_instance"])] = True
    elif p < 0.25:
        items["throughput_mode"] = True
        items["multi_instance"] = True

    # candidates
    c = rng.random()
    if c < 0.12:
        k = rng.random()
        if k < 0.4:
            a = rng.randrange(len(topo.cpus))
            b = min(len(topo.cpus), a + rng.randint(1, 16))
            ids = topo.cpus[a:b]
        elif k < 0.8:
            ids = rng.sample(topo.cpus, rng.randint(1, min(len(topo.cpus), 24)))
        else:
            ids = rng.sample(phys, rng.randint(1, min(nphys, 12)))
        if rng.random() < 0.08:
            ids = list(ids) + [max(topo.cpus) + rng.randint(1, 3)]
        items["core_list"] = _list_text(rng, ids)
    elif c < 0.14:
        items["core_list"] = rng.choice(BAD_LISTS)
    elif c < 0.26:
        if rng.random() < 0.85:
            items["node_id"] = rng.choice(topo.nodes)
        else:
            items["node_id"] = rng.choice([-1, max(topo.nodes) + 1, -2, "x"])
    elif c < 0.38:
        ids = rng.sample(topo.nodes, rng.randint(1, nnodes))
        if rng.random() < 0.1:
            ids.append(max(topo.nodes) + rng.randint(1, 4))
        items["nodes_list"] = _list_text(rng, ids) if rng.random() < 0.95 else \
            rng.choice(BAD_LISTS)
    elif c < 0.40:
        items["node_id"] = rng.choice(topo.nodes)
        items["nodes_list"] = _list_text(rng, [rng.choice(topo.nodes)])
    elif c < 0.48:
        items["socket_id"] = rng.choice(topo.sockets + [max(topo.sockets) + 1, -2])
        if rng.random() < 0.1:
            items["node_id"] = rng.choice(topo.nodes)
    if "core_list" in items and rng.random() < 0.1:
        items["node_id"] = rng.choice(topo.nodes + [max(topo.nodes) + 1])

    # NI / NC: sizes relative to the candidate count
    base = nphys * (2 if "use_logical_cores" in items else 1)
    if "core_list" in items or "node_id" in items or "nodes_list" in items:
        base = max(1, base // max(1, nnodes))
    base = max(base, 1)

    def some_ni():
        r = rng.random()
        if r < 0.5:
            return rng.randint(1, 4)
        if r < 0.8:
            return rng.randint(1, max(1, base))
        if r < 0.9:
            return rng.randint(1, 2 * nnodes + 1)
        return base + rng.randint(0, 2)

    def some_nc():
        r = rng.random()
        if r < 0.5:
            return rng.randint(1, 8)
        if r < 0.85:
            return rng.randint(1, max(1, base))
        return base + rng.randint(0, 3)

    m = rng.random()
    if m < 0.25:
        pass
    elif m < 0.55:
        items["ninstances"] = some_ni()
    elif m < 0.72:
        items["ncores_per_instance"] = some_nc()
    elif m < 0.85:
        items["ninstances"] = some_ni()
        items["ncores_per_instance"] = some_nc()
    elif m < 0.93:
        items["ncores_per_instance"] = -1
        if rng.random() < 0.8:
            items["ninstances"] = some_ni()
    elif m < 0.96:
        items["ninstances"] = rng.choice([-1, 0, -2] + BAD_INTS)
    else:
        items["ncores_per_instance"] = rng.choice([0, -2, -5] + BAD_INTS)

    opts = dict(items)
    if rng.random() < 0.15:
        ncpus = len(topo.cpus)
        env["PINFER_CPU_QUOTA"] = rng.choice(
            [str(rng.randint(1, ncpus + 2)), "%d.%d" % (rng.randrange(ncpus + 1), rng.randrange(10)),
             "0.5", "1", "2.5", "0", "-1", "x", "1e3", ""])
    # rank / instance-idx / torchrun: drawn with the plan size in view
    pre = reference(topo, opts_with_env(opts, env))
    size = len(pre) if isinstance(pre, list) else 4
    r = rng.random()
    if r < 0.12:
        opts["rank"] = rng.choice([rng.randrange(size)] * 4 + [size, -1])
    elif r < 0.22:
        if rng.random() < 0.1:
            opts["instance_idx"] = rng.choice(["-1"] + BAD_LISTS)
        else:
            k = rng.randint(1, size)
            ids = rng.sample(range(size), k)
            if rng.random() < 0.1:
                ids.append(size + rng.randint(0, 2))
            opts["instance_idx"] = _list_text(rng, ids)
    elif r < 0.24:
        opts["rank"] = rng.randrange(size)
        opts["instance_idx"] = str(rng.randrange(size))
    if rng.random() < 0.12:
        w = rng.choice([1, 2, 2, 3, 4])
        env["LOCAL_WORLD_SIZE"] = str(w)
        x = rng.random()
        if x < 0.8:
            env["LOCAL_RANK"] = str(rng.randrange(w))
        elif x < 0.9 and w > 1:
            env["LOCAL_RANK"] = str(w)
    keys = list(opts)
    rng.shuffle(keys)
    return opts, [(k, opts[k]) for k in keys], env


def run_random(args):
    tmp = tempfile.mkdtemp(prefix="diff_plan_")
    passed = failed = 0
    n_ok = n_err = 0
    classes = {}
    cases = [args.case] if args.case is not None else range(args.count)
    try:
        for i in cases:
            rng = random.Random("%d:%d" % (args.seed, i))
            text, desc = gen_topology.generate(rng)
            topo = plan_ref.parse_topology(text)
            opts, order, env = draw_case(rng, topo)
            path = os.path.join(tmp, "topo_%d.txt" % i)
            with open(path, "w") as f:
                f.write(text)
            # --topology and --json land anywhere among the options
            groups = [render(rng, k, v) for k, v in order]
            pre = ["--topology", path] if rng.random() < 0.7 else ["--topology=" + path]
            groups.insert(rng.randint(0, len(groups)), pre)
            groups.insert(rng.randint(0, len(groups)), ["--json"])
            argv = ["plan"] + [x for g in groups for x in g]
            exp = reference(topo, opts_with_env(opts, env))
            if isinstance(exp, list):
                n_ok += 1
            else:
                n_err += 1
            rc, out, err = run_pinfer(args.pinfer, argv, env)
            bad = compare(exp, topo, rc, out, err)
            if bad is None:
                passed += 1
                if args.verbose:
                    print("ok   case %d: %s" % (i, "plan" if isinstance(exp, list) else exp))
                continue
            failed += 1
            classes[bad[0]] = classes.get(bad[0], 0) + 1
            os.makedirs(args.save, exist_ok=True)
            keep = os.path.join(args.save, "case_%d_%d.txt" % (args.seed, i))
            shutil.copyfile(path, keep)
            envs = " ".join("%s=%s" % kv for kv in sorted(env.items()))
            cmd = " ".join(shlex.quote(x) for x in [args.pinfer] + argv).replace(path, keep)
            print("FAIL case %d [%s] topology: %s" % (i, bad[0], desc))
            print("  command:  %s%s" % (envs + " " if envs else "", cmd))
            print("  %s" % bad[1])
            if not args.keep_going:
                break
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("reference: %d plans, %d errors; mismatch classes: %s"
          % (n_ok, n_err, json.dumps(classes, sort_keys=True)))
    print("diff_plan: %d passed, %d failed" % (passed, failed))
    return failed == 0


def main():
    ap = argparse.ArgumentParser(description="pinfer planner vs. the Python reference")
    ap.add_argument("--pinfer", help="path of the pinfer binary")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--case", type=int, help="run only this case number of the seed")
    ap.add_argument("--keep-going", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--save", default=os.path.join(tempfile.gettempdir(), "diff_plan_failures"),
                    help="where the topologies of failing cases are kept")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return 0 if self_test(args.pinfer) else 1
    if not args.pinfer:
        ap.error("--pinfer PATH is required (or --self-test)")
    return 0 if run_random(args) else 1


if __name__ == "__main__":
    sys.exit(main())

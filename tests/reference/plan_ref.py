"""Independent reference implementation of the pinfer planner.

Written from the planner's requirements (the rules docs/planning.md states), not from
src/plan/plan.c, so that the C planner can be checked against it by diff_plan.py.
Standard library only; Python 3.11.

    topo = parse_topology(text)          # lscpu --parse=CPU,Core,Socket,Node or lscpu -e
    insts = plan(topo, {"ninstances": 2, "bind_numa_node": True})
    # -> [{"index": 0, "cpus": [...], "nodes": [...], "threads": N}, ...]

plan() raises PlanError for every usage error of spec section 3 (pinfer exits 2).

Interpretation decisions (where the spec can be read more than one way); each one is
repeated next to the code that implements it:

 D1  The presets (--latency-mode, --throughput-mode, and --multi-instance when it means
     --throughput-mode) drop SMT siblings even when --use-logical-cores is given; they
     never filter an explicit --core-list.
 D2  E-cores are dropped unless --use-e-cores, except from an explicit --core-list.
 D3  With --node-id / --nodes-list, a named node that has no candidate CPU left after the
     SMT / E-core filters is an error.
 D4  LOCAL_WORLD_SIZE = W > 1: each picked instance's CPUs, in planning order (step 2:
     node, core, siblings; not ascending ids), are cut into W consecutive shares of
     floor(len / W) CPUs (remainder unused); the process takes share LOCAL_RANK (unset = 0;
     outside 0..W-1 = error); threads = share size; an empty share is an error.  This
     happens after the --rank / --instance-idx selection.  (The first version cut the
     ascending id list; that hands a core's first thread and its SMT siblings to different
     local ranks on machines that number siblings after all cores, and takes CPUs of other
     nodes' cores, so the planning order is what a careful user expects.  Switch with
     TORCHRUN_SPLIT_ORDER.)
 D5  --instance-idx takes a list in CPU-list syntax ("-1" alone = not given); picked
     instances are reported in ascending index order, once each.
 D6  Picked instances keep their index in the full plan.
 D7  NI given together with NC > 0 and strategy close: keep the first NI slices in group
     order (all of node 0's slices, then node 1's, ...).
 D8  Candidate order: node ascending, then core by the core's lowest CPU id in the whole
     topology (not only among candidates), then the core's candidate CPUs ascending.
 D9  NC = -1 with NI unset: NI = 1 (one instance holding all candidates).  For
     "--multi-instance without NI and NC", NC = -1 counts as not given (it is run_cpu's
     default, and "split evenly" asks for no particular size), so --multi-instance
     --ncores-per-instance -1 means --throughput-mode.
 D10 --core-list takes precedence over --node-id / --nodes-list ("otherwise" in step 1):
     the node options are then not used (an unknown node or a malformed --nodes-list is
     not checked), but giving both
     --node-id and --nodes-list is an error in every case.
 D11 --ninstances below -1 is an error (like 0); --node-id below -1 names a node that does
     not exist (an error when the node options are used); --rank below -1 is an index
     outside the plan (error).
 D12 Integer option values are decimal: optional '-', digits; anything else ("", "1.5",
     "abc", "3x") is an error.
 D13 --multi-instance together with --latency-mode and without NI / NC is "both presets"
     (an error); with NI or NC given it is not a preset and --latency-mode applies alone.
 D14 CPU-list syntax (--core-list, --nodes-list, --instance-idx): items separated by ',',
     spaces around items ignored, one trailing ',' tolerated, item = N or A-B with A <= B,
     decimal digits only; no item at all, an empty item in the middle, B < A, "0-", "-3",
     "a", "1.5" are errors.  Duplicates and any order are fine.
 D15 E-cores (lscpu input): sorted distinct MAXMHZ values; every step between neighbours
     that is >= 15% of the maximum value counts; every CPU whose MAXMHZ is below the
     highest such step is an E-core.  Exact decimal arithmetic.  No MAXMHZ -> no E-cores.
 D16 Without bind, NI = 1 and no NC: one instance of all candidates; with bind and no
     NI / NC (NI = 1) the step-6 sharing applies literally: one instance on the node with
     the most candidates (the first such node on ties).
 D17 LOCAL_WORLD_SIZE / LOCAL_RANK (strings from the environment; -1 = not set): an empty
     value is not set; otherwise each must be a non-negative decimal integer (else an error,
     whenever it is set).  LOCAL_WORLD_SIZE 0 or 1 means no split.
 D18 (v3, section 3.10) The CPU quota (PINFER_CPU_QUOTA, a string; "" = not set): a
     positive decimal number, digits with an optional fraction ("4", "2.5", ".5", "2."),
     else an error whenever it is set.  Q smaller than the candidates keeps the first
     floor(Q) of them (at least one) in step 2's order, before groups and presets look at
     them (so --throughput-mode counts only the nodes left).  It applies to --core-list
     too (the quota throttles those CPUs alike).
"""

from fractions import Fraction
import math
import re

__all__ = ["PlanError", "Topology", "parse_topology", "parse_cpu_list", "plan"]

# D4: "plan" = cut each instance's CPUs in planning order; "ascending" = in id order
TORCHRUN_SPLIT_ORDER = "plan"


class PlanError(Exception):
    """A usage error of the spec (pinfer: exit status 2, {"error": ...})."""


# ---------------------------------------------------------------------------------------
# Topology
# ---------------------------------------------------------------------------------------

class Topology:
    """Per CPU id: core key (socket, core), socket, node, smt_rank, efficiency."""

    def __init__(self, rows):
        # rows: iterable of (cpu, core, socket, node_or_None, maxmhz_or_None)
        self.cpu_core = {}
        self.cpu_socket = {}
        self.cpu_node = {}
        self.cpu_mhz = {}
        for cpu, core, socket, node, mhz in rows:
            if cpu in self.cpu_core:
                raise ValueError("duplicate CPU %d" % cpu)
            self.cpu_core[cpu] = (socket, core)   # a core is (socket, core id)
            self.cpu_socket[cpu] = socket
            # missing or empty node = the socket's number
            self.cpu_node[cpu] = socket if node is None else node
            self.cpu_mhz[cpu] = mhz
        if not self.cpu_core:
            raise ValueError("topology without CPUs")
        self.cpus = sorted(self.cpu_core)
        self.core_cpus = {}
        for cpu in self.cpus:
            self.core_cpus.setdefault(self.cpu_core[cpu], []).append(cpu)
        # the core's first thread is its lowest CPU id; siblings ranked after it
        self.smt_rank = {}
        self.core_first = {}
        for key, lst in self.core_cpus.items():
            for r, cpu in enumerate(lst):
                self.smt_rank[cpu] = r
            self.core_first[key] = lst[0]
        self.nodes = sorted(set(self.cpu_node.values()))
        self.sockets = sorted(set(self.cpu_socket.values()))
        self.efficiency = self._ecores()

    def _ecores(self):
        # D15: sorted distinct MAXMHZ values; the highest step between neighbours that is
        # at least 15% of the maximum; every CPU below it is an E-core.
        mhz = self.cpu_mhz
        if any(v is None for v in mhz.values()):
            return {cpu: False for cpu in self.cpus}
        vals = sorted(set(mhz.values()))
        vmax = vals[-1]
        cut = None
        for i in range(len(vals) - 1):
            if (vals[i + 1] - vals[i]) * 100 >= vmax * 15:
                cut = vals[i]      # the last (highest) qualifying step wins
        return {cpu: (cut is not None and mhz[cpu] <= cut) for cpu in self.cpus}

    def summary(self):
        return {"cpus": len(self.cpus), "cores": len(self.core_cpus),
                "sockets": len(self.sockets), "nodes": list(self.nodes)}

    def order_key(self, cpu):
        # D8: node ascending, core by its first CPU id in the topology, then CPU id
        return (self.cpu_node[cpu], self.core_first[self.cpu_core[cpu]], cpu)


def _num(s):
    s = s.strip()
    if not re.fullmatch(r"\d+", s):
        raise ValueError("bad number %r" % s)
    return int(s)


def _mhz(s):
    s = s.strip()
    if s in ("", "-"):
        return None
    return Fraction(s)


def parse_topology(text):
    """Parse `lscpu --parse=...` CSV (header '# CPU,Core,Socket[,Node]') or an
    `lscpu -e` whitespace table (header 'CPU NODE SOCKET CORE ... MAXMHZ ...')."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    data = [ln for ln in lines if not ln.lstrip().startswith("#")]
    if data and "," not in data[0] and re.match(r"\s*CPU\b", data[0], re.I):
        return _parse_table(data)
    return _parse_csv(lines)


def _parse_csv(lines):
    cols = ["cpu", "core", "socket", "node"]
    rows = []
    for ln in lines:
        s = ln.strip()
        if s.startswith("#"):
            names = [n.strip().lower() for n in s[1:].split(",")]
            if "cpu" in names and "core" in names:
                cols = names
            continue
        f = [x.strip() for x in s.split(",")]
        rec = dict(zip(cols, f))
        node = rec.get("node", "")
        rows.append((_num(rec["cpu"]), _num(rec["core"]), _num(rec["socket"]),
                     _num(node) if node not in ("", None) else None, None))
    return Topology(rows)


def _parse_table(lines):
    cols = [c.lower() for c in lines[0].split()]
    rows = []
    for ln in lines[1:]:
        f = ln.split()
        rec = dict(zip(cols, f))
        if "-" in (rec["cpu"], rec["core"], rec["socket"]):
            continue                       # offline CPU
        node = rec.get("node")
        rows.append((_num(rec["cpu"]), _num(rec["core"]), _num(rec["socket"]),
                     None if node in (None, "", "-") else _num(node),
                     _mhz(rec["maxmhz"]) if "maxmhz" in rec else None))
    return Topology(rows)


# ---------------------------------------------------------------------------------------
# Option values
# ---------------------------------------------------------------------------------------

def parse_cpu_list(s, what="list"):
    """D14: '0-3,8,10-11'; spaces, one trailing comma, order, duplicates tolerated.
    Returns the sorted distinct ids."""
    items = s.split(",")
    if len(items) > 1 and items[-1].strip() == "":
        items = items[:-1]
    out = set()
    for it in items:
        it = it.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", it)
        if not m:
            raise PlanError("bad %s %r" % (what, s))
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise PlanError("bad range in %s %r" % (what, s))
        out.update(range(a, b + 1))
    if not out:
        raise PlanError("empty %s" % what)
    return sorted(out)


def parse_int(v, what):
    """D12: decimal integers only."""
    if isinstance(v, bool):
        raise TypeError(what)
    if isinstance(v, int):
        return v
    if not re.fullmatch(r"-?\d+", v):
        raise PlanError("%s: not an integer: %r" % (what, v))
    return int(v)


DEFAULTS = {
    "ninstances": -1, "ncores_per_instance": 0, "node_id": -1, "nodes_list": None,
    "socket_id": -1,
    "core_list": None, "use_logical_cores": False, "use_e_cores": False,
    "bind_numa_node": False, "strategy": "close", "latency_mode": False,
    "throughput_mode": False, "multi_instance": False, "rank": -1, "instance_idx": None,
    "local_rank": -1, "local_world_size": -1, "cpu_quota": "",
}


# ---------------------------------------------------------------------------------------
# Planning (spec section 3)
# ---------------------------------------------------------------------------------------

def _split(seq, n, with_rem):
    """Cut seq into n consecutive parts of floor(len/n) (remainder unused), or with
    with_rem the first len%n parts one larger.  An empty part is an error (step 7)."""
    q, r = divmod(len(seq), n)
    if q == 0:
        raise PlanError("a part would be empty (%d CPUs for %d instances)" % (len(seq), n))
    parts, pos = [], 0
    for k in range(n):
        size = q + (1 if with_rem and k < r else 0)
        parts.append(seq[pos:pos + size])
        pos += size
    return parts


def share_instances(ni, lens):
    """Step 6 with bind: share NI instances among nodes of lens[i] candidates each."""
    total = sum(lens)
    n = []
    for li in lens:
        q, r = divmod(ni * li, total)
        n.append(q + 1 if (r != 0 or q == 0) else q)
    while sum(n) > ni:
        best = None
        for i, li in enumerate(lens):
            if n[i] > 1:
                # smallest len_i / n_i, exact; strict '<' keeps the first on ties
                if best is None or li * n[best] < lens[best] * n[i]:
                    best = i
        if best is None:
            break
        n[best] -= 1
    if sum(n) > ni:
        order = sorted(range(len(lens)), key=lambda i: (lens[i], -i))
        for i in order:
            if sum(n) == ni:
                break
            take = min(n[i], sum(n) - ni)
            n[i] -= take
    return n


def _env_int(v, what):
    """D17: -1 / "" = not set; else a non-negative decimal integer."""
    if isinstance(v, int):
        return v
    if v == "":
        return -1
    if not re.fullmatch(r"\d+", v):
        raise PlanError("%s=%r is not a non-negative integer" % (what, v))
    return int(v)


def _quota(v):
    """D18: "" = not set (0); else a positive decimal number."""
    if v == "":
        return 0
    if not re.fullmatch(r"\d+\.?\d*|\.\d+", v) or float(v) <= 0:
        raise PlanError("PINFER_CPU_QUOTA=%r is not a positive number of CPUs" % v)
    return float(v)


def plan(topo, opts):
    o = dict(DEFAULTS)
    for k, v in opts.items():
        if k not in DEFAULTS:
            raise KeyError(k)
        o[k] = v

    ni = parse_int(o["ninstances"], "--ninstances")
    nc = parse_int(o["ncores_per_instance"], "--ncores-per-instance")
    node_id = parse_int(o["node_id"], "--node-id")
    socket_id = parse_int(o["socket_id"], "--socket-id")
    rank = parse_int(o["rank"], "--rank")
    strategy = o["strategy"]
    if strategy not in ("close", "scatter"):
        raise PlanError("--strategy must be close or scatter")

    # step 4: unset values and errors (D11)
    if ni == 0 or ni < -1:
        raise PlanError("--ninstances must be positive")
    if nc < -1:
        raise PlanError("--ncores-per-instance below -1")
    ni_given = ni != -1

    # step 3: presets (D13)
    latency = bool(o["latency_mode"])
    throughput = bool(o["throughput_mode"]) or (
        bool(o["multi_instance"]) and not ni_given and nc in (0, -1))      # D9
    if latency and throughput:
        raise PlanError("--latency-mode and --throughput-mode together")
    preset = latency or throughput

    # step 8 (option conflicts, checked up front)
    idx = o["instance_idx"]
    if idx is not None and idx.strip() == "-1":
        idx = None
    picks = parse_cpu_list(idx, "--instance-idx") if idx is not None else None
    if rank != -1 and picks is not None:
        raise PlanError("--rank and --instance-idx together")

    # step 1: candidates
    node_id_given = node_id != -1
    if node_id_given and o["nodes_list"] is not None:
        raise PlanError("--node-id and --nodes-list together")   # D10: always
    if socket_id < -1:
        raise PlanError("--socket-id below -1")
    if socket_id != -1 and (node_id_given or o["nodes_list"] is not None):
        raise PlanError("--socket-id with a node option")    # v3: always an error
    if o["core_list"] is not None:
        # D10: --core-list wins over the node options; never filtered (D1, D2)
        cands = parse_cpu_list(o["core_list"], "--core-list")
        for c in cands:
            if c not in topo.cpu_core:
                raise PlanError("--core-list: no CPU %d" % c)
    else:
        if node_id_given:
            nodes = [node_id]
        elif o["nodes_list"] is not None:
            nodes = parse_cpu_list(o["nodes_list"], "--nodes-list")
        else:
            nodes = None
        if nodes is not None:
            for nd in nodes:
                if nd not in topo.nodes:
                    raise PlanError("no NUMA node %d" % nd)
            base = [c for c in topo.cpus if topo.cpu_node[c] in nodes]
        else:
            base = list(topo.cpus)
        if socket_id != -1:                                    # v3: all the socket's nodes
            base = [c for c in base if topo.cpu_socket[c] == socket_id]
        drop_smt = (not o["use_logical_cores"]) or preset      # D1
        drop_e = not o["use_e_cores"]                          # D2
        cands = [c for c in base
                 if not (drop_smt and topo.smt_rank[c] > 0)
                 and not (drop_e and topo.efficiency[c])]
        if nodes is not None:                                  # D3
            have = {topo.cpu_node[c] for c in cands}
            for nd in nodes:
                if nd not in have:
                    raise PlanError("NUMA node %d has no usable CPU" % nd)
        if not cands:
            raise PlanError("no candidate CPU")

    # step 2: order and groups, within the CPU quota (D18)
    cands = sorted(cands, key=topo.order_key)
    quota = _quota(o["cpu_quota"])
    if quota and quota < len(cands):
        cands = cands[:max(1, math.floor(quota))]
    cand_nodes = sorted({topo.cpu_node[c] for c in cands})
    bind = bool(o["bind_numa_node"]) or throughput
    if bind:
        groups = [[c for c in cands if topo.cpu_node[c] == nd] for nd in cand_nodes]
    else:
        groups = [cands]

    # step 3: presets override NI / NC
    if latency:
        nc, ni = 4, -1
    elif throughput:
        ni, nc = len(cand_nodes), 0
    ni_given = ni != -1
    # step 4: neither given -> NI = 1; D9: NC = -1 alone -> NI = 1
    if not ni_given and nc in (0, -1):
        ni, ni_given = 1, True

    if nc > 0:
        # step 5
        gslices = [[g[i * nc:(i + 1) * nc] for i in range(len(g) // nc)] for g in groups]
        total = sum(len(s) for s in gslices)
        if total == 0:
            raise PlanError("--ncores-per-instance %d larger than every group" % nc)
        if not ni_given:
            parts = [s for gs in gslices for s in gs]
        else:
            if ni > total:
                raise PlanError("%d instances but only %d slices" % (ni, total))
            if strategy == "close":
                parts = [s for gs in gslices for s in gs][:ni]          # D7
            elif not bind:
                S = len(gslices[0])
                parts = [gslices[0][(k * S) // ni] for k in range(ni)]
            else:
                # deal NI instances to the nodes round-robin, skipping used-up nodes
                k_i = [0] * len(gslices)
                dealt = 0
                while dealt < ni:
                    for i, gs in enumerate(gslices):
                        if dealt == ni:
                            break
                        if k_i[i] < len(gs):
                            k_i[i] += 1
                            dealt += 1
                parts = []
                for i, gs in enumerate(gslices):
                    S = len(gs)
                    parts += [gs[(k * S) // k_i[i]] for k in range(k_i[i])]
    else:
        # step 6 (NC unset or -1)
        with_rem = nc == -1
        if ni > len(cands):
            raise PlanError("%d instances but only %d CPUs" % (ni, len(cands)))
        if not bind:
            parts = _split(groups[0], ni, with_rem)
        else:
            n = share_instances(ni, [len(g) for g in groups])
            parts = []
            for g, ng in zip(groups, n):
                if ng > 0:
                    parts += _split(g, ng, with_rem)

    instances = []
    ordered = {}          # index -> CPUs in planning order (for the torchrun split)
    for i, p in enumerate(parts):
        cpus = sorted(p)
        ordered[i] = list(p)
        instances.append({"index": i, "cpus": cpus,
                          "nodes": sorted({topo.cpu_node[c] for c in cpus}),
                          "threads": len(cpus)})

    # step 8: selection (D5, D6)
    if rank != -1:
        if rank < 0 or rank >= len(instances):
            raise PlanError("--rank %d outside the plan" % rank)
        instances = [instances[rank]]
    elif picks is not None:
        for p in picks:
            if p >= len(instances):
                raise PlanError("--instance-idx %d outside the plan" % p)
        instances = [instances[p] for p in picks]

    # torchrun split (D4, D17)
    lws = _env_int(o["local_world_size"], "LOCAL_WORLD_SIZE")
    lr = _env_int(o["local_rank"], "LOCAL_RANK")
    if lws > 1:
        if lr == -1:
            lr = 0
        if lr >= lws:
            raise PlanError("LOCAL_RANK %d outside 0..%d" % (lr, lws - 1))
        out = []
        for inst in instances:
            share = len(inst["cpus"]) // lws
            if share == 0:
                raise PlanError("instance %d too small for LOCAL_WORLD_SIZE %d"
                                % (inst["index"], lws))
            seq = inst["cpus"] if TORCHRUN_SPLIT_ORDER == "ascending" else ordered[inst["index"]]
            cpus = sorted(seq[lr * share:(lr + 1) * share])
            out.append({"index": inst["index"], "cpus": cpus,
                        "nodes": sorted({topo.cpu_node[c] for c in cpus}),
                        "threads": len(cpus)})
        instances = out
    return instances

#!/usr/bin/python3
"""Deterministic random topology generator for the planner differential test.

    gen_topology.py [--seed S] [--count N] [--out DIR]   write N files DIR/topo_<i>.txt

As a module: generate(rng) -> (text, description) where text is either the output of
`lscpu --parse=CPU,Core,Socket,Node` (sometimes with another column order, an empty or
absent Node column) or an `lscpu -e` style whitespace table (always for hybrid CPUs, with
MAXMHZ; sometimes with the extra columns real lscpu prints, and offline rows).

Shapes drawn: 1..8 sockets, 1..64 cores per socket, SMT 1/2/4, one node per socket, SNC
(2-4 nodes per socket, contiguous core blocks), a single node for all sockets, cores dealt
round-robin to the nodes of a socket, sockets enumerated round-robin, siblings numbered
after all cores or next to each other, per-socket or global core ids, large or permuted
node ids, holes in the CPU ids (offline CPUs), at most 12 nodes.  Hybrid: 1 socket, 1
node, P-cores (SMT2 or SMT1) ~5 GHz, E-cores ~3.8 GHz, sometimes low-power E-cores ~2.5 GHz.
"""

import argparse
import os
import random


def _weighted(rng, pairs):
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


def _regular(rng):
    sockets = _weighted(rng, [(1, 30), (2, 40), (4, 15), (3, 3), (8, 7), (6, 2), (5, 1), (7, 1)])
    cps = _weighted(rng, [(rng.randint(1, 4), 25), (rng.randint(4, 12), 40),
                          (rng.randint(12, 32), 20), (rng.randint(32, 64), 15)])
    smt = _weighted(rng, [(1, 30), (2, 60), (4, 10)])
    while sockets * cps * smt > 1024:      # keep the run time reasonable
        cps = max(1, cps // 2)
    layout = _weighted(rng, [("socket", 60), ("snc", 20), ("single", 8), ("rr", 12)])
    nps = 1
    if layout in ("snc", "rr"):
        nps = rng.randint(2, 4)
        nps = min(nps, cps, max(1, 12 // sockets))
        if nps < 2:
            layout = "socket"
            nps = 1
    numbering = _weighted(rng, [("after", 55), ("adjacent", 45)])
    socket_rr = rng.random() < 0.12          # CPUs enumerated round-robin over sockets
    global_core = rng.random() < 0.6
    desc = "%ds x %dc x %dt %s/%d %s%s%s" % (sockets, cps, smt, layout, nps, numbering,
                                            " sock-rr" if socket_rr else "",
                                            " gcore" if global_core else "")
    # cores: (socket, index in socket)
    cores = [(s, i) for s in range(sockets) for i in range(cps)]
    if socket_rr:
        order = sorted(cores, key=lambda c: (c[1], c[0]))
    else:
        order = cores
    ncores = len(order)
    node_of = {}
    for s, i in cores:
        if layout == "socket":
            nd = s
        elif layout == "single":
            nd = 0
        elif layout == "snc":
            nd = s * nps + (i * nps) // cps
        else:
            nd = s * nps + i % nps
        node_of[(s, i)] = nd
    # node id mapping
    ids = sorted(set(node_of.values()))
    nmap_kind = _weighted(rng, [("id", 70), ("large", 12), ("perm", 10), ("offset", 8)])
    if nmap_kind == "large":
        step = rng.choice([2, 4, 8, 16])
        nmap = {n: n * step for n in ids}
    elif nmap_kind == "offset":
        off = rng.choice([1, 8, 16, 100])
        nmap = {n: n + off for n in ids}
    elif nmap_kind == "perm":
        vals = list(ids)
        rng.shuffle(vals)
        nmap = dict(zip(ids, vals))
    else:
        nmap = {n: n for n in ids}
    desc += " nodes:" + nmap_kind
    rows = []
    for pos, (s, i) in enumerate(order):
        core_id = s * cps + i if global_core else i
        for t in range(smt):
            cpu = t * ncores + pos if numbering == "after" else pos * smt + t
            rows.append([cpu, core_id, s, nmap[node_of[(s, i)]], None])
    if rng.random() < 0.15 and len(rows) > 1:       # holes: offline CPUs
        k = rng.randint(1, max(1, len(rows) // 8))
        gone = set(rng.sample([r[0] for r in rows], k))
        rows = [r for r in rows if r[0] not in gone]
        desc += " holes:%d" % k
    if rng.random() < 0.1:                          # same MAXMHZ everywhere or small spread
        base = rng.choice([2100, 2600, 3500, 3700])
        spread = rng.random() < 0.5
        for r in rows:
            r[4] = base + (rng.choice([0, 100, 200]) if spread else 0)
    return rows, desc


def _hybrid(rng):
    np_ = rng.randint(1, 8)
    psmt = 2 if rng.random() < 0.8 else 1
    ne = rng.randint(1, 16)
    nlp = rng.choice([0, 0, 0, 2])
    pbase = rng.choice([4700, 4900, 5000, 5200, 5400, 5600, 5800])
    ebase = rng.choice([3500, 3600, 3800, 3900, 4000, 4100, 4200])
    # keep clear of the 15% border (exactness is not what this test is about)
    while (pbase - ebase) * 100 < 18 * (pbase + 200):
        ebase -= 100
    rows = []
    cpu = 0
    core = 0
    for i in range(np_):
        mhz = pbase + (200 if i < 2 and rng.random() < 0.4 else 0)   # favoured cores
        for t in range(psmt):
            rows.append([cpu, core, 0, 0, mhz])
            cpu += 1
        core += 1
    for i in range(ne):
        rows.append([cpu, core, 0, 0, ebase])
        cpu += 1
        core += 1
    for i in range(nlp):
        rows.append([cpu, core, 0, 0, 2500])
        cpu += 1
        core += 1
    desc = "hybrid %dP(smt%d)@%d %dE@%d %dLP" % (np_, psmt, pbase, ne, ebase, nlp)
    return rows, desc


def _fmt_mhz(v):
    return "%.4f" % v


def write_parse(rng, rows):
    node_mode = _weighted(rng, [("present", 80), ("empty", 10), ("absent", 10)])
    cols = ["CPU", "Core", "Socket", "Node"]
    if rng.random() < 0.15:
        rest = cols[1:]
        rng.shuffle(rest)
        cols = ["CPU"] + rest
    if node_mode == "absent":
        cols = [c for c in cols if c != "Node"]
    for r in rows:
        if node_mode != "present":
            r[3] = None            # node = socket in the model
    out = ["# The following is the parsable format, which can be fed to other",
           "# programs. Each different item in every column has an unique ID",
           "# starting usually from zero.",
           "# " + ",".join(cols)]
    for r in sorted(rows):
        v = {"CPU": str(r[0]), "Core": str(r[1]), "Socket": str(r[2]),
             "Node": "" if r[3] is None else str(r[3])}
        out.append(",".join(v[c] for c in cols))
    return "\n".join(out) + "\n", "parse/node-" + node_mode + "/" + ",".join(cols)


def write_table(rng, rows):
    have_mhz = all(r[4] is not None for r in rows)
    extra = rng.random() < 0.5
    cols = ["CPU", "NODE", "SOCKET", "CORE"]
    if not have_mhz and rng.random() < 0.2:
        cols = ["CPU", "SOCKET", "CORE"]     # lscpu -e without NUMA: no NODE column
        for r in rows:
            r[3] = None
    if extra:
        cols += ["L1d:L1i:L2:L3", "ONLINE"]
    if have_mhz:
        cols += ["MAXMHZ", "MINMHZ"] if extra else ["MAXMHZ"]
    table = []
    for r in sorted(rows):
        v = {"CPU": str(r[0]), "NODE": "" if r[3] is None else str(r[3]),
             "SOCKET": str(r[2]), "CORE": str(r[1]),
             "L1d:L1i:L2:L3": "%d:%d:%d:0" % (r[1], r[1], r[1]), "ONLINE": "yes",
             "MAXMHZ": _fmt_mhz(r[4]) if r[4] is not None else "",
             "MINMHZ": "800.0000"}
        table.append([v[c] for c in cols])
    if extra and rng.random() < 0.3:
        # offline rows: ids not in use
        used = {r[0] for r in rows}
        top = max(used) + 1
        free = [i for i in range(top + 2) if i not in used][:2]
        for cpu in free:
            v = {"CPU": str(cpu), "NODE": "-", "SOCKET": "-", "CORE": "-",
                 "L1d:L1i:L2:L3": "-", "ONLINE": "no", "MAXMHZ": "-", "MINMHZ": "-"}
            table.append([v[c] for c in cols])
        table.sort(key=lambda t: int(t[0]))
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    out = ["".join(("%*s" % (widths[i] + 1, c)) if i == 0 else " %-*s" % (widths[i], c)
                   for i, c in enumerate(cols)).rstrip()]
    for t in table:
        out.append("".join(("%*s" % (widths[i] + 1, x)) if i == 0 else " %*s" % (widths[i], x)
                           for i, x in enumerate(t)).rstrip())
    return "\n".join(out) + "\n", "table/" + " ".join(cols)


def generate(rng):
    """Return (text, description) of one random topology."""
    if rng.random() < 0.15:
        rows, desc = _hybrid(rng)
        text, how = write_table(rng, rows)
    else:
        rows, desc = _regular(rng)
        if rows[0][4] is not None or rng.random() < 0.15:
            text, how = write_table(rng, rows)
        else:
            text, how = write_parse(rng, rows)
    return text, desc + " [" + how + "]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    for i in range(a.count):
        text, desc = generate(rng)
        path = os.path.join(a.out, "topo_%d.txt" % i)
        with open(path, "w") as f:
            f.write(text)
        print("%s: %s" % (path, desc))


if __name__ == "__main__":
    main()

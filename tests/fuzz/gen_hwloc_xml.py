#!/usr/bin/env python3
"""Random topologies in the shape of hwloc 2.x XML exports, for fuzz_hwloc_xml.

libFuzzer's byte mutations of an export almost never pass pf__hwloc_xml_check()
(under 1% of them did in a measurement), so hwloc behind the check sees few
files.  This writes files that do pass it, and vary what the check allows:
random levels (packages, dies, groups, every cache, cores), sparse and large
PU numbers, offline CPUs in complete sets, NUMA nodes attached anywhere above
the PUs (some in memory-side caches, some in CPU-less objects), nodesets from
the exact ones to any subset the rules allow, I/O and Misc objects, infos with
every escaped character, page types, userdata, distances (os, gp and
heterogeneous), memory attributes (cpuset and object initiators) and CPU kinds.

    tests/fuzz/gen_hwloc_xml.py OUTDIR COUNT [FIRST_SEED]

writes OUTDIR/gen_<seed>.xml; a seed always gives the same file.  Feed OUTDIR to
the fuzzer as a further corpus directory, or run the fuzzer binary on the files.
"""
import os
import random
import sys

# Normal (CPU-side) levels above the PUs, outermost first, as the check orders them.
LEVELS = ["Package", "Die", "L5Cache", "L4Cache", "L3Cache", "L3iCache", "L2Cache",
          "L2iCache", "L1Cache", "L1iCache", "Core"]
CACHES = {"L5Cache": (5, 0), "L4Cache": (4, 0), "L3Cache": (3, 0), "L3iCache": (3, 2),
          "L2Cache": (2, 0), "L2iCache": (2, 2), "L1Cache": (1, 1), "L1iCache": (1, 2)}
IO = ("Bridge", "PCIDev", "OSDev")
ESCAPES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;",
           "\r": "&#13;"}


def bitmap(bits):
    """hwloc's text for a set: 32-bit groups, highest first, zero groups empty."""
    if not bits:
        return "0x0"
    top = max(bits) // 32
    words = [0] * (top + 1)
    for b in bits:
        words[b // 32] |= 1 << (b % 32)
    groups = []
    for i in range(top, -1, -1):
        if i == top or words[i]:
            groups.append("0x%08x" % words[i])
        else:
            groups.append("0x0" if i == 0 else "")
    return ",".join(groups)


def escape(s):
    return "".join(ESCAPES.get(c, c) for c in s)


class Obj:
    def __init__(self, type_, parent=None):
        self.type = type_
        self.parent = parent
        self.kids, self.memory, self.io, self.misc = [], [], [], []
        self.os = None
        self.cpus, self.complete, self.nodes, self.complete_nodes = set(), set(), set(), set()
        self.extra = ""
        self.gp = 0


def generate(seed):
    r = random.Random(seed)

    def text():
        return "".join(r.choice('abcXYZ 019<>&"\t\n\r-_./') for _ in range(r.randint(0, 8)))

    # The levels, with Groups here and there (never below a Core).
    levels = []
    for level in LEVELS:
        if r.random() < 0.35:
            if level != "Core" and r.random() < 0.15:
                levels.append("Group")
            levels.append(level)
    if r.random() < 0.2 and (not levels or levels[-1] != "Core"):
        levels.append("Group")
    free_ids = list(range(r.choice([8, 64, 300, 2000])))
    r.shuffle(free_ids)

    root = Obj("Machine")

    def build(obj, depth):
        if depth == len(levels):
            for _ in range(r.randint(1, 3 if depth else 4)):
                if free_ids:
                    pu = Obj("PU", obj)
                    pu.os = free_ids.pop()
                    pu.cpus, pu.complete = {pu.os}, {pu.os}
                    obj.kids.append(pu)
            return
        for _ in range(r.randint(1, 3)):
            kid = Obj(levels[depth], obj)
            obj.kids.append(kid)
            build(kid, depth + 1)

    build(root, 0)

    def union_up(obj):
        for kid in obj.kids:
            union_up(kid)
        if obj.type != "PU":
            obj.cpus = set().union(*[k.cpus for k in obj.kids])
            obj.complete = set().union(*[k.complete for k in obj.kids])

    union_up(root)
    normals = []

    def collect(obj):
        if obj.type != "PU":
            normals.append(obj)
        for kid in obj.kids:
            collect(kid)

    collect(root)
    if not root.cpus:
        return None
    for _ in range(r.randint(0, 3)):  # offline CPUs: in complete sets only
        if free_ids:
            cpu, obj = free_ids.pop(), r.choice(normals)
            while obj:
                obj.complete.add(cpu)
                obj = obj.parent

    node_ids = list(range(r.choice([2, 8, 70])))
    r.shuffle(node_ids)
    for _ in range(r.randint(0, 2) if r.random() < 0.3 else 0):  # CPU-less objects with memory
        parent = r.choice([o for o in normals if o.type != "Core"])
        anchor = parent
        while anchor.type == "Group":
            anchor = anchor.parent
        if anchor.type == "Machine":
            deeper = LEVELS + ["Group"]
        else:
            deeper = LEVELS[LEVELS.index(anchor.type) + 1:] + ["Group"]
        kid = Obj(r.choice(deeper), parent)
        parent.kids.append(kid)
        normals.append(kid)
        if node_ids:
            node = Obj("NUMANode", kid)
            node.os = node_ids.pop()
            kid.memory.append(node)
    for _ in range(r.randint(1, 4)):
        if not node_ids:
            break
        parent = r.choice(normals)
        node = Obj("NUMANode", parent)
        node.os = node_ids.pop()
        if r.random() < 0.2:
            cache = Obj("MemCache", parent)
            cache.memory = [node]
            node.parent = cache
            parent.memory.append(cache)
            cache.extra = (' cache_size="%d" depth="%d" cache_linesize="64" '
                           'cache_associativity="%d" cache_type="%d"'
                           % (r.randint(0, 1 << 40), r.randint(1, 3), r.randint(-1, 16),
                              r.randint(0, 2)))
        else:
            parent.memory.append(node)

    # Nodesets: a NUMA node's is itself; above, the nodes below (and, exactly,
    # those of the ancestors) or, "wild", any subset of the parent's.
    all_nodes = []

    def attached(obj):
        found, stack = set(), list(obj.memory)
        while stack:
            m = stack.pop()
            if m.type == "NUMANode":
                found.add(m.os)
                all_nodes.append(m)
            stack += m.memory
        return found

    own = {}

    def below(obj):
        own[id(obj)] = attached(obj)
        obj.subtree_nodes = set(own[id(obj)])
        for kid in obj.kids:
            obj.subtree_nodes |= below(kid)
        return obj.subtree_nodes

    below(root)
    wild = r.random() < 0.5

    def set_nodes(obj, above, parent_nodes, parent_complete):
        mine = obj.subtree_nodes if obj.type != "PU" else set()
        obj.nodes = mine | above
        if wild and obj.type != "Machine":
            obj.nodes = mine | set(n for n in parent_nodes if r.random() < 0.5)
        obj.complete_nodes = set(obj.nodes)
        if wild and obj.type != "Machine":
            obj.complete_nodes |= set(n for n in parent_complete if r.random() < 0.3)
        for kid in obj.kids:
            set_nodes(kid, above | own.get(id(obj), set()), obj.nodes, obj.complete_nodes)

    set_nodes(root, set(), set(), set())
    if r.random() < 0.2:  # offline NUMA nodes
        for _ in range(2):
            n = 100 + r.randint(0, 5)
            root.complete_nodes.add(n)
            if wild and root.kids and r.random() < 0.5:
                root.kids[0].complete_nodes.add(n)

    def memory_sets(m, parent):
        m.cpus, m.complete = parent.cpus, parent.complete
        if m.type == "NUMANode":
            m.nodes, m.complete_nodes = {m.os}, {m.os}
        else:
            for sub in m.memory:
                memory_sets(sub, m)
            m.nodes = set().union(*[sub.nodes for sub in m.memory])
            m.complete_nodes = set(m.nodes)

    for obj in normals:
        for m in obj.memory:
            memory_sets(m, obj)

    for _ in range(r.randint(0, 3)):
        parent = r.choice(normals)
        dev = Obj(r.choice(IO), parent)
        parent.io.append(dev)
        if dev.type == "Bridge":
            dev.extra = ' bridge_type="0-1" depth="0" bridge_pci="0000:[00-%02x]"' % r.randint(0, 255)
        elif dev.type == "PCIDev":
            dev.extra = (' pci_busid="0000:00:%02x.0" pci_type="0180 [1af4:1042] [1af4:1042] 01" '
                         'pci_link_speed="0.000000"' % r.randint(0, 31))
        else:
            dev.extra = ' name="%s" osdev_type="%d"' % (escape(text()), r.randint(0, 5))
        if dev.type != "OSDev" and r.random() < 0.5:
            osdev = Obj("OSDev", dev)
            osdev.extra = ' name="x" osdev_type="0"'
            dev.io.append(osdev)
    for _ in range(r.randint(0, 3)):
        parent = r.choice(normals + all_nodes)
        misc = Obj("Misc", parent)
        misc.extra = ' name="%s"' % escape(text())
        parent.misc.append(misc)

    gp = [0]

    def attributes(obj, is_root):
        a = 'type="%s"' % obj.type
        if obj.os is not None:
            a += ' os_index="%d"' % obj.os
        elif obj.type in ("Package", "Core", "Die") or obj.type in CACHES:
            a += ' os_index="%d"' % r.randint(0, 99)
        if obj.type not in IO and obj.type != "Misc":
            a += ' cpuset="%s" complete_cpuset="%s"' % (bitmap(obj.cpus), bitmap(obj.complete))
            if is_root:
                a += ' allowed_cpuset="%s"' % bitmap(set(c for c in obj.complete if r.random() < 0.8))
            a += ' nodeset="%s" complete_nodeset="%s"' % (bitmap(obj.nodes),
                                                          bitmap(obj.complete_nodes))
            if is_root:
                a += ' allowed_nodeset="%s"' % bitmap(
                    set(n for n in obj.complete_nodes if r.random() < 0.8))
        gp[0] += r.randint(1, 3)
        obj.gp = gp[0]
        a += ' gp_index="%d"' % obj.gp
        if r.random() < 0.1:
            a += ' subtype="%s"' % escape(text())
        if obj.type in CACHES:
            depth, ctype = CACHES[obj.type]
            if ctype == 0 and r.random() < 0.3:
                ctype = 1
            a += (' cache_size="%d" depth="%d" cache_linesize="%d" cache_associativity="%d" '
                  'cache_type="%d"' % (r.randint(0, 1 << 30), depth, r.choice([0, 64, 128]),
                                       r.randint(-1, 32), ctype))
        if obj.type == "Group":
            a += ' kind="%d" subkind="%d"' % (r.randint(0, 2000), r.randint(0, 3))
            if r.random() < 0.3:
                a += ' dont_merge="1"'
        if obj.type == "NUMANode" and r.random() < 0.7:
            a += ' local_memory="%d"' % r.randint(0, 1 << 40)
        return a + obj.extra

    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<!DOCTYPE topology SYSTEM "hwloc2.dtd">',
           '<topology version="2.0">']
    objects = []

    def emit(obj, indent, is_root=False):
        objects.append(obj)
        a = attributes(obj, is_root)
        head = []
        if r.random() < 0.3:
            for _ in range(r.randint(0, 2)):
                head.append('<info name="%s" value="%s"/>' % (escape(text()), escape(text())))
        if obj.type == "NUMANode" and r.random() < 0.5:
            head.append('<page_type size="4096" count="%d"/>' % r.randint(0, 1000))
        if r.random() < 0.05:
            head.append('<userdata length="3" encoding="normal">abc</userdata>')

        def first_cpu(o):
            return min(o.complete) if o.complete else 1 << 60

        groups = [obj.memory, sorted(obj.kids, key=first_cpu), obj.io, obj.misc]
        if r.random() < 0.2:
            r.shuffle(groups)
        kids = [k for g in groups for k in g]
        pad = " " * indent
        if not head and not kids:
            out.append(pad + "<object %s/>" % a)
            return
        out.append(pad + "<object %s>" % a)
        out.extend(pad + "  " + h for h in head)
        for kid in kids:
            emit(kid, indent + 2)
        out.append(pad + "</object>")

    emit(root, 2, True)
    pus = [o for o in objects if o.type == "PU"]
    nodes = [o for o in objects if o.type == "NUMANode"]

    def matrix(tag, attrs, indexes):
        n = len(indexes)
        values = " ".join(str(r.randint(0, 100)) for _ in range(n * n)) + " "
        index_text = " ".join(indexes) + " "
        out.append("  <%s %s>" % (tag, attrs))
        out.append('    <indexes length="%d">%s</indexes>' % (len(index_text), index_text))
        out.append('    <u64values length="%d">%s</u64values>' % (len(values), values))
        out.append("  </%s>" % tag)

    if len(nodes) >= 2 and r.random() < 0.4:
        chosen = r.sample(nodes, r.randint(2, len(nodes)))
        matrix("distances2", 'type="NUMANode" nbobjs="%d" kind="%d" indexing="os"'
               % (len(chosen), r.choice([5, 6, 9, 10])), [str(o.os) for o in chosen])
    if len(pus) >= 2 and r.random() < 0.3:
        chosen = r.sample(pus, min(len(pus), r.randint(2, 5)))
        matrix("distances2", 'type="PU" nbobjs="%d" kind="5" name="%s" indexing="os"'
               % (len(chosen), escape(text())), [str(o.os) for o in chosen])
    by_gp = [o for o in objects if o.type not in ("PU", "NUMANode", "Misc")]
    if len(by_gp) >= 2 and r.random() < 0.3:
        type_ = r.choice(by_gp).type
        same = [o for o in by_gp if o.type == type_]
        if len(same) >= 2:
            chosen = r.sample(same, r.randint(2, len(same)))
            matrix("distances2", 'type="%s" nbobjs="%d" kind="5" indexing="gp"'
                   % (type_, len(chosen)), [str(o.gp) for o in chosen])
    if r.random() < 0.3:
        candidates = [o for o in objects if o.type != "Misc"]
        chosen = r.sample(candidates, min(len(candidates), r.randint(2, 4)))
        if len(chosen) >= 2:
            matrix("distances2hetero", 'nbobjs="%d" kind="21"' % len(chosen),
                   ["%s:%d" % (o.type, o.gp) for o in chosen])
    for name in ("discovery.pu", "discovery.numa", "custom.exported_support"):
        if r.random() < 0.5:
            value = ' value="%d"' % r.randint(0, 3) if r.random() < 0.2 else ""
            out.append('  <support name="%s"%s/>' % (name, value))
    if nodes and r.random() < 0.4:
        out.append('  <memattr name="Bandwidth" flags="5">')
        for node in r.sample(nodes, r.randint(1, len(nodes))):
            if r.random() < 0.5:
                cpus = set(r.sample(sorted(root.cpus), r.randint(1, len(root.cpus))))
                initiator = 'initiator_cpuset="%s"' % bitmap(cpus)
            else:
                o = r.choice([o for o in objects if o.type not in IO and o.type != "Misc"])
                initiator = 'initiator_obj_gp_index="%d" initiator_obj_type="%s"' % (o.gp, o.type)
            out.append('    <memattr_value target_obj_type="NUMANode" target_obj_gp_index="%d" '
                       'value="%d" %s/>' % (node.gp, r.randint(0, 99999), initiator))
        out.append("  </memattr>")
        if r.random() < 0.5:
            out.append('  <memattr name="%s" flags="%d">' % (escape(text() + "Z"), r.choice([1, 2])))
            for node in nodes:
                out.append('    <memattr_value target_obj_type="NUMANode" '
                           'target_obj_gp_index="%d" value="%d"/>' % (node.gp, r.randint(0, 9)))
            out.append("  </memattr>")
    if r.random() < 0.5:
        cpus = sorted(root.cpus)
        r.shuffle(cpus)
        kinds = r.randint(1, min(4, len(cpus)))
        for k in range(kinds):
            part = cpus[k::kinds]
            efficiency = ' forced_efficiency="%d"' % r.randint(-1, 3) if r.random() < 0.7 else ""
            out.append('  <cpukind cpuset="%s"%s>' % (bitmap(set(part)), efficiency))
            if r.random() < 0.5:
                out.append('    <info name="FrequencyMaxMHz" value="%d"/>' % r.randint(1000, 5000))
            if r.random() < 0.3:
                out.append('    <info name="CoreType" value="%s"/>'
                           % r.choice(["IntelAtom", "IntelCore", "x"]))
            out.append("  </cpukind>")
    out.append("</topology>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__.split("\n\n")[2])
    outdir, count = sys.argv[1], int(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) == 4 else 0
    os.makedirs(outdir, exist_ok=True)
    for seed in range(first, first + count):
        text = generate(seed)
        if text:
            with open(os.path.join(outdir, "gen_%06d.xml" % seed), "w") as f:
                f.write(text)


if __name__ == "__main__":
    main()

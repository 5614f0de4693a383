"""MultiStreamModule's hint matcher (pinfer._hints), fuzzed: random calls, random hints.

Each case draws a call (positional and keyword arguments nesting tensors, lists, tuples,
namedtuples, torch.return_types, dicts and dict subclasses, and values that are not
tensors) with an input hint that fits it, then checks the properties the matcher promises
(docs/python.md):

- a fitting hint splits: the batch is the split tensors' size, every chunk is a view of its
  part of each split tensor, what the hint passes whole is passed as is (the same object),
  containers keep their type; and concatenating the chunks again, with the output hint that
  mirrors the input hint (each of its spellings), gives back the call's arguments;
- one change to the call or the hint (a positional argument or hint entry too many or too
  few, a keyword argument or dict key without a hint, a hint deeper than the value, a leaf
  that is no int, a dimension out of range, a tensor dimension where there is no tensor,
  a list of the wrong length, batch sizes that disagree, nothing split, a hint nested
  without end) is a ValueError naming the place; a changed stream output (of another
  length, keys or shape, not a tensor) or output hint likewise; changes that may still fit
  (another dimension to concatenate along) either work or are a ValueError;
- never another exception, and no case runs longer than HANG_SECONDS.

The cases are bounded by time and by count: PF_FUZZ_SECONDS (default 2 s here;
tests/run_fuzz.sh passes its own, 30 s by default) and PF_FUZZ_CASES (default 1000000).
Case i of seed S draws from random.Random("S:i"): PF_FUZZ_SEED=S sets the seed (by
default a new one every run) and PF_FUZZ_CASE=i replays that one case, as the failure
message says.
"""
import collections
import copy
import os
import random
import signal
import time
import traceback

import pytest

from conftest import import_pinfer

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

pinfer = import_pinfer()
Hint = pinfer.MultiStreamModuleHint
_hints = pinfer._hints
split_range = pinfer._pinfer.split_range

SECONDS = float(os.environ.get("PF_FUZZ_SECONDS") or 2)
MAX_CASES = int(os.environ.get("PF_FUZZ_CASES") or 1000000)
HANG_SECONDS = 10
TALLY = collections.Counter()  # what the cases checked, for the closing line

Point = collections.namedtuple("Point", "x y")
Triple = collections.namedtuple("Triple", "a b c")
MaxResult = type(torch.max(torch.zeros(1, 1), dim=1))  # a structseq: (values, indices)

# The containers a call nests, with how many items each takes (None: any number).
SEQUENCES = [(list, None), (tuple, None), (Point, 2), (Triple, 3), (MaxResult, 2)]
MAPPINGS = [dict, collections.OrderedDict, "defaultdict", collections.Counter]


def make_sequence(kind, items):
    """A sequence of type `kind` holding `items`."""
    if kind in (list, tuple):
        return kind(items)
    return MaxResult(items) if kind is MaxResult else kind(*items)


def make_mapping(kind, pairs):
    """A mapping of type `kind` ("defaultdict": a defaultdict(list)) holding `pairs`."""
    mapping = collections.defaultdict(list) if kind == "defaultdict" else kind()
    for key, value in pairs:
        mapping[key] = value
    return mapping


# ---------------------------------------------------------------------------
# A call as a tree: each node knows its value and its hint


class Node(object):
    """A place in the call.  kind: "split" (a tensor cut along `dim`), "whole" (a value the
    hint passes whole), "seq" or "map" (a container of child nodes).  `hint`, when set,
    replaces the hint the node would have (a mutation); a map's `unhinted` keys have no
    hint entry and its `extra` hint entries no value."""

    def __init__(self, kind, value=None, dim=None, container=None, children=None):
        self.kind = kind
        self.value = value
        self.dim = dim
        self.container = container
        self.children = children
        self.hint_type = None
        self.hint = None
        self.has_hint = False
        self.unhinted = set()
        self.extra = {}

    def set_hint(self, hint):
        self.hint, self.has_hint = hint, True

    def build_value(self):
        if self.kind in ("split", "whole"):
            return self.value
        if self.kind == "seq":
            return make_sequence(self.container, [c.build_value() for c in self.children])
        return make_mapping(self.container, [(k, c.build_value()) for k, c in self.children])

    def build_hint(self):
        if self.has_hint:
            return self.hint
        if self.kind == "split":
            return self.dim
        if self.kind == "whole":
            return None
        if self.kind == "seq":
            return self.hint_type(c.build_hint() for c in self.children)
        hint = {k: c.build_hint() for k, c in self.children if k not in self.unhinted}
        hint.update(self.extra)
        return hint


class Case(object):
    """A call: positional nodes, keyword nodes, keyword hint entries without an argument, the
    batch, and top-level changes (arguments or hint entries added or removed)."""

    def __init__(self, args, kwargs, extra, batch):
        self.args = args
        self.kwargs = kwargs
        self.extra = extra
        self.batch = batch
        self.more_args = []
        self.more_kwargs = {}
        self.more_hint_args = []
        self.drop_args = 0

    def call(self):
        args = [n.build_value() for n in self.args]
        args = args[:len(args) - self.drop_args] + self.more_args
        kwargs = {k: n.build_value() for k, n in self.kwargs}
        kwargs.update(self.more_kwargs)
        return tuple(args), kwargs

    def hints(self):
        """The input hint's positional entries and keyword entries."""
        hint_args = [n.build_hint() for n in self.args] + self.more_hint_args
        hint_kwargs = {k: n.build_hint() for k, n in self.kwargs}
        hint_kwargs.update(self.extra)
        return hint_args, hint_kwargs

    def nodes(self):
        """(node, path) of every node, with the paths the matcher's messages use."""
        stack = [(n, "args[%d]" % i) for i, n in enumerate(self.args)]
        stack += [(n, "kwargs[%r]" % (k,)) for k, n in self.kwargs]
        while stack:
            node, path = stack.pop()
            yield node, path
            if node.kind == "seq":
                stack += [(c, "%s[%d]" % (path, i)) for i, c in enumerate(node.children)]
            elif node.kind == "map":
                stack += [(c, "%s[%r]" % (path, k)) for k, c in node.children]


# ---------------------------------------------------------------------------
# Drawing a call


def draw_tensor(rng, batch, dim, ndim):
    """A tensor of `ndim` dimensions, `batch` items along `dim`, distinct values, sometimes
    not contiguous."""
    shape = [rng.randint(1, 3) for _ in range(ndim)]
    if dim is not None:
        shape[dim] = batch
    dtype = rng.choice([torch.float32, torch.int64, torch.float64])
    numel = 1
    for size in shape:
        numel *= size
    start = rng.randint(-100, 100)
    if ndim > 1 and rng.random() < 0.3:
        flipped = torch.arange(start, start + numel, dtype=dtype).reshape(shape[::-1])
        return flipped.permute(*reversed(range(ndim)))
    return torch.arange(start, start + numel, dtype=dtype).reshape(shape)


def draw_dim(rng, ndim):
    """A dimension of a tensor of `ndim` dimensions, and a hint leaf naming it (an int, or an
    integer scalar: numpy's, a 0-d tensor)."""
    dim = rng.randrange(ndim)
    leaf = dim - ndim if rng.random() < 0.3 else dim
    spelling = rng.random()
    if spelling < 0.1:
        leaf = np.int64(leaf)
    elif spelling < 0.2:
        leaf = torch.tensor(leaf)
    return dim, leaf


def draw_whole(rng):
    """A value passed whole: anything."""
    return rng.choice([
        lambda: None, lambda: rng.randint(-3, 3), lambda: rng.random(), lambda: "text",
        lambda: b"bytes", lambda: object(), lambda: {1, 2}, lambda: range(3),
        lambda: torch.tensor(rng.random()), lambda: draw_tensor(rng, 0, None, rng.randint(1, 3)),
        lambda: [1, "a"], lambda: (None,), lambda: {"k": torch.ones(2)}, lambda: np.ones(3),
        lambda: np.int64(2),
    ])()


def draw_node(rng, batch, depth):
    r = rng.random()
    if depth >= 3 or r < 0.45:
        if rng.random() < 0.55:
            ndim = rng.randint(1, 3)
            dim, leaf = draw_dim(rng, ndim)
            return Node("split", draw_tensor(rng, batch, dim, ndim), dim=leaf)
        return Node("whole", draw_whole(rng))
    if r < 0.75:
        container, count = rng.choice(SEQUENCES)
        count = rng.randint(0, 3) if count is None else count
        node = Node("seq", container=container,
                    children=[draw_node(rng, batch, depth + 1) for _ in range(count)])
        node.hint_type = rng.choice([list, tuple])
        return node
    keys = rng.sample(["a", "b", "mask", 0, 1, (2, "x"), None], rng.randint(0, 3))
    node = Node("map", container=rng.choice(MAPPINGS),
                children=[(k, draw_node(rng, batch, depth + 1)) for k in keys])
    if rng.random() < 0.2:  # hint entries for keys the value does not have: not used
        node.extra["unused"] = rng.choice([None, 0, [0, None]])
    return node


def draw_case(rng):
    batch = rng.choice([0, 1, 1, 2, 3, 4, 5, 7])
    args = [draw_node(rng, batch, 1) for _ in range(rng.randint(0, 3))]
    names = rng.sample(["x", "mask", "state", "lengths"], rng.randint(0, 3))
    kwargs = [(name, draw_node(rng, batch, 1)) for name in names]
    extra = {"optional": rng.choice([None, 0, {"a": 1}])} if rng.random() < 0.2 else {}
    return Case(args, kwargs, extra, batch)


# ---------------------------------------------------------------------------
# Checks


def same(a, b):
    """b is a: equal tensors of the same shape and dtype, containers of the same type (dict
    subclasses with the same default factory), the same object elsewhere."""
    if isinstance(a, torch.Tensor):
        return (type(b) is type(a) and b.shape == a.shape and b.dtype == a.dtype
                and torch.equal(a, b))
    if isinstance(a, (list, tuple)) and a is not b:
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict) and a is not b:
        return (type(a) is type(b) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
                and getattr(a, "default_factory", None) is getattr(b, "default_factory", None))
    return a is b


def storage(tensor):
    return (tensor.untyped_storage() if hasattr(tensor, "untyped_storage")
            else tensor.storage()).data_ptr()


def check_chunk(node, value, chunk, begin, end):
    """`chunk` is `value`'s part [begin, end): views of split tensors, whole values as is."""
    if node.kind == "split":
        dim = int(node.dim)
        assert chunk.shape[dim] == end - begin and storage(chunk) == storage(value)
        assert torch.equal(chunk, value.narrow(dim, begin, end - begin))
    elif node.kind == "whole":
        assert chunk is value
    else:
        assert type(chunk) is type(value) and len(chunk) == len(value)
        if node.kind == "seq":
            for child, v, c in zip(node.children, value, chunk):
                check_chunk(child, v, c, begin, end)
        else:
            assert list(chunk) == list(value)
            for key, child in node.children:
                check_chunk(child, value[key], chunk[key], begin, end)


def output_spellings(case):
    """(the output hint, what the model returns from a chunk (args, kwargs)): the output hint
    mirrors the input hint, in each of its spellings."""
    hint_args, hint_kwargs = case.hints()
    spellings = [(Hint((tuple(hint_args), hint_kwargs)), lambda a, k: (a, k)),
                 (Hint(list(hint_args), hint_kwargs), lambda a, k: [a, k])]
    if hint_kwargs:
        spellings.append((Hint(**hint_kwargs), lambda a, k: k))
    if len(hint_args) == 1:
        spellings.append((Hint(hint_args[0]), lambda a, k: a[0]))
    return spellings


def check_fitting_hint(rng, case, log):
    """Split, check the chunks, join them again: the call comes back.  Returns (the output
    hint, the stream outputs) for the output checks, or None when nothing is split."""
    args, kwargs = case.call()
    hint_args, hint_kwargs = case.hints()
    hint = Hint(*hint_args, **hint_kwargs)
    log.append("input hint %r" % (hint,))
    if not any(n.kind == "split" for n, _ in case.nodes()):
        expect_error(lambda: _hints.Split(hint, args, kwargs), "splits no tensor")
        return None
    split = _hints.Split(hint, args, kwargs)
    assert split.batch == case.batch
    if case.batch == 0:
        return None
    streams = rng.randint(1, 5)
    ranges = [split_range(case.batch, streams, i) for i in range(min(case.batch, streams))]
    log.append("%d streams: %s" % (streams, ranges))
    chunks = [split.chunk(begin, end) for begin, end in ranges]
    for (chunk_args, chunk_kwargs), (begin, end) in zip(chunks, ranges):
        assert type(chunk_args) is tuple and len(chunk_args) == len(args)
        assert list(chunk_kwargs) == list(kwargs)
        for node, value, chunk in zip(case.args, args, chunk_args):
            check_chunk(node, value, chunk, begin, end)
        for (key, node) in case.kwargs:
            check_chunk(node, kwargs[key], chunk_kwargs[key], begin, end)
    spellings = output_spellings(case)
    for out_hint, model in spellings:
        joined = _hints.concat(_hints.output_hint(out_hint), [model(*c) for c in chunks])
        assert same(model(args, kwargs), joined), out_hint
    TALLY["split and joined"] += 1
    out_hint, model = spellings[0]
    return out_hint, [model(*c) for c in chunks]


def expect_error(call, where):
    """call() raises a ValueError or TypeError whose message names `where`."""
    try:
        call()
    except (ValueError, TypeError) as error:
        assert str(error), "an exception without a message: %r" % (error,)
        assert where in str(error), "%r does not name %r" % (str(error), where)
    else:
        raise AssertionError("no error; expected one naming %r" % (where,))


def may_fail(call):
    """call() works, or raises a ValueError or TypeError with a message."""
    try:
        call()
    except (ValueError, TypeError) as error:
        assert str(error), "an exception without a message: %r" % (error,)


# ---------------------------------------------------------------------------
# Changes to the call or the input hint


def pick(rng, case, test):
    places = [(n, p) for n, p in case.nodes() if test(n)]
    return rng.choice(places) if places else (None, None)


def is_container(value):
    return isinstance(value, (list, tuple, dict))


BAD_LEAVES = [
    lambda: 1.5, lambda: "0", lambda: True, lambda: False, lambda: b"0", lambda: 1j,
    lambda: float("nan"), lambda: np.float64(0.0), lambda: np.bool_(False),
    lambda: torch.tensor(0.0), lambda: torch.tensor(True), lambda: torch.tensor([0]),
    lambda: np.array([0]), lambda: object(), lambda: {0}, lambda: range(1), lambda: Ellipsis,
    lambda: slice(0), lambda: Hint(0),
]


def nested(rng, depth):
    """A hint nested `depth` levels deep, or one that contains itself."""
    if rng.random() < 0.2:
        hint = [0]
        hint.append(hint if rng.random() < 0.5 else {"self": hint})
        return hint
    hint = 0
    for _ in range(depth):
        hint = [hint] if rng.random() < 0.7 else {"k": hint}
    return hint


def change_input(rng, case):
    """One change that makes the hint unfit the call: (what, the place the error names)."""
    while True:
        what = rng.choice(["extra argument", "missing argument", "extra hint entry",
                           "unknown keyword", "unhinted key", "deeper hint", "not an int",
                           "out of range", "0-d tensor", "no tensor there", "length",
                           "dict for a sequence", "sequence for a dict", "batch disagrees",
                           "nothing split", "endless hint"])
        positional = "positional entries"
        if what == "extra argument":
            case.more_args.append(draw_whole(rng))
            return what, positional
        if what == "missing argument" and case.args:
            case.drop_args = 1
            return what, positional
        if what == "extra hint entry":
            case.more_hint_args.append(rng.choice([None, 0, [0]]))
            return what, positional
        if what == "unknown keyword":
            case.more_kwargs["unknown"] = draw_whole(rng)
            return what, "keyword argument(s) 'unknown'"
        if what == "unhinted key":
            node, path = pick(rng, case, lambda n: n.kind == "map" and n.children)
            if node:
                key = rng.choice(node.children)[0]
                node.unhinted.add(key)
                return what, "%s: the hint has no entry for the key(s) %r" % (path, key)
        if what == "deeper hint":
            node, path = pick(rng, case, lambda n: n.kind in ("split", "whole")
                              and not is_container(n.value))
            if node:
                node.set_hint(rng.choice([[0], (None,), {"a": 0}, [[None]], {}, []]))
                return what, path + ": the hint is a"
        if what == "not an int":
            node, path = pick(rng, case, lambda n: n.kind == "split")
            if node:
                node.set_hint(rng.choice(BAD_LEAVES)())
                return what, "MultiStreamModuleHint: " + path
        if what == "out of range":
            node, path = pick(rng, case, lambda n: n.kind == "split")
            if node:
                ndim = node.value.dim()
                node.set_hint(rng.choice([ndim, ndim + 1, -ndim - 1, 1 << 70, -(1 << 70)]))
                return what, path + ": dimension"
        if what == "0-d tensor":
            node, path = pick(rng, case, lambda n: n.kind in ("split", "whole"))
            if node:
                node.kind, node.value = "whole", torch.tensor(1.5)
                node.set_hint(rng.choice([0, -1, 1]))
                return what, path + ": cannot split a 0-dimensional tensor"
        if what == "no tensor there":
            node, path = pick(rng, case, lambda n: n.kind == "whole"
                              and not isinstance(n.value, torch.Tensor))
            if node:
                node.set_hint(rng.randint(-2, 2))
                return what, path + ": the hint"
        if what == "length":
            node, path = pick(rng, case, lambda n: n.kind == "seq")
            if node:
                hint = list(node.build_hint())
                if hint and rng.random() < 0.5:
                    hint.pop()
                else:
                    hint.append(None)
                node.set_hint(node.hint_type(hint))
                return what, path + ": the hint has"
        if what == "dict for a sequence":
            node, path = pick(rng, case, lambda n: n.kind == "seq")
            if node:
                node.set_hint({"a": None})
                return what, path + ": the hint is a dict"
        if what == "sequence for a dict":
            node, path = pick(rng, case, lambda n: n.kind == "map")
            if node:
                node.set_hint(rng.choice([[None], ()]))
                return what, path + ": the hint is a"
        if what == "batch disagrees" and case.batch > 0:
            splits = [(n, p) for n, p in case.nodes() if n.kind == "split"]
            if len(splits) >= 2:
                node, path = rng.choice(splits)
                dim = int(node.dim)
                node.value = draw_tensor(rng, case.batch + rng.randint(1, 2), dim,
                                         node.value.dim())
                return what, "split sizes disagree"
        if what == "nothing split" and case.batch > 0:
            splits = [n for n, _ in case.nodes() if n.kind == "split"]
            if splits:
                for node in splits:
                    node.kind = "whole"
                return what, "splits no tensor"
        if what == "endless hint":
            node, path = pick(rng, case, lambda n: True)
            if node:
                node.set_hint(nested(rng, rng.choice([150, 1000, 5000])))
                return what, "MultiStreamModuleHint: " + path


def check_unfit_input(rng, case, log):
    what, where = change_input(rng, case)
    log.append("changed: %s (the error must name %r)" % (what, where))
    TALLY["input: " + what] += 1

    def match():
        args, kwargs = case.call()
        hint_args, hint_kwargs = case.hints()
        _hints.Split(Hint(*hint_args, **hint_kwargs), args, kwargs)

    expect_error(match, where)


# ---------------------------------------------------------------------------
# Changes to the outputs or the output hint


def places(hint, value, path="output", keys=()):
    """(path, keys, hint) of every place of the output that the hint does not take whole."""
    if hint is None:
        return
    yield path, keys, hint
    if isinstance(hint, (list, tuple)):
        for i, leaf in enumerate(hint):
            yield from places(leaf, value[i], "%s[%d]" % (path, i), keys + (i,))
    elif isinstance(hint, dict):
        for key in value:
            yield from places(hint[key], value[key], "%s[%r]" % (path, key), keys + (key,))


def put(value, keys, change):
    """`value` with change(its part at `keys`) there, containers copied on the way."""
    if not keys:
        return change(value)
    key, rest = keys[0], keys[1:]
    if isinstance(value, dict):
        copied = copy.copy(value)
        copied[key] = put(value[key], rest, change)
        return copied
    items = list(value)
    items[key] = put(items[key], rest, change)
    return make_sequence(type(value), items)


def at(value, keys):
    for key in keys:
        value = value[key]
    return value


def shorter_or_longer(seq):
    items = list(seq)
    if items and len(items) % 2:
        items.pop()
    else:
        items.append(None)
    return list(items) if isinstance(seq, list) else tuple(items)


def other_shape(rng, tensor, dim):
    """A tensor that cannot be concatenated with `tensor` along `dim`."""
    shape = list(tensor.shape)
    choice = rng.random()
    if choice < 0.3:
        return torch.zeros(shape + [2], dtype=tensor.dtype)
    if choice < 0.45:
        return torch.tensor(1, dtype=tensor.dtype)
    others = [d for d in range(len(shape)) if d != dim]
    if not others:
        return torch.zeros(shape[:-1] + [shape[-1], 2], dtype=tensor.dtype)
    shape[rng.choice(others)] += rng.randint(1, 2)
    return torch.zeros(shape, dtype=tensor.dtype)


def check_unfit_output(rng, out_hint, outputs, log):
    """One change to a stream's output or to the output hint: a ValueError naming the place,
    or (for changes that may still fit) a result."""
    hint = _hints.output_hint(out_hint)
    spots = list(places(hint, outputs[0]))
    path, keys, leaf = rng.choice(spots)
    stream = rng.randrange(len(outputs))
    what = rng.choice(["stream output", "stream output", "output hint", "output hint",
                       "hint spelling"])
    changed = list(outputs)
    log.append("output place %s, stream %d of %d: %s" % (path, stream, len(outputs), what))
    TALLY["output: " + what] += 1
    if what == "hint spelling":
        bad = rng.choice([Hint(), Hint(0, y=0), Hint(hint, z=None)])
        expect_error(lambda: _hints.output_hint(bad), "output_concat_hint")
        return
    if what == "output hint":
        value = at(outputs[0], keys)
        if _hints._is_dim(leaf):
            ndim = value.dim()
            new, sure = rng.choice([(ndim, True), (-ndim - 1, True), (1 << 65, True),
                                    ([0], True), ({"a": 0}, True),
                                    (rng.randrange(-ndim, ndim), False)])
        elif isinstance(leaf, dict):
            new, sure = rng.choice([([None], True), (0, True)])
        else:
            new, sure = rng.choice([({"a": None}, True), (0, True), (list(leaf) + [None], True)])
        hint = put(hint, keys, lambda _: new)
        log.append("output hint %r" % (hint,))
        if sure:
            expect_error(lambda: _hints.concat(hint, changed), path)
        else:
            may_fail(lambda: _hints.concat(hint, changed))
        return
    value = at(outputs[stream], keys)
    if _hints._is_dim(leaf):
        changes = [lambda v: "text", lambda v: [v]]
        if len(outputs) > 1:  # one stream's tensor is taken as it is, whatever its shape
            changes.append(lambda v: other_shape(rng, v, int(leaf) % v.dim()))
        change = rng.choice(changes)
    elif isinstance(leaf, dict):
        changes = [lambda v: make_mapping(type(v), list(v.items()) + [("new", 1)]),
                   lambda v: [v]]
        if value and len(outputs) > 1:  # a key fewer than the other streams' outputs
            changes.append(lambda v: make_mapping(type(v), list(v.items())[1:]))
        change = rng.choice(changes)
    else:
        change = rng.choice([shorter_or_longer, lambda v: {"a": v}, lambda v: None])
    changed[stream] = put(outputs[stream], keys, change)
    expect_error(lambda: _hints.concat(hint, changed), path)


# ---------------------------------------------------------------------------
# The run


class CaseHung(Exception):
    pass


def one_case(rng, log):
    case = draw_case(rng)
    fitted = check_fitting_hint(rng, case, log)
    if fitted and rng.random() < 0.5:
        check_unfit_output(rng, *fitted, log)
    else:
        check_unfit_input(rng, draw_case(rng) if rng.random() < 0.3 else case, log)


def run_case(seed, index):
    """Case `index` of `seed`, under a watchdog; a failure says how to replay it."""
    log = []

    def hung(signum, frame):
        raise CaseHung("the case ran for more than %d s" % HANG_SECONDS)

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        one_case(random.Random("%d:%d" % (seed, index)), log)
        return
    except Exception:
        failure = traceback.format_exc(limit=-6)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    pytest.fail("hint fuzz case %d of seed %d failed:\n  %s\n%s\nreplay it: PF_FUZZ_SEED=%d "
                "PF_FUZZ_CASE=%d /usr/bin/python3 -m pytest -q -p no:cacheprovider "
                "tests/python/test_hints_fuzz.py"
                % (index, seed, "\n  ".join(log), failure, seed, index), pytrace=False)


def test_the_hint_matcher_keeps_its_promises(capsys):
    seed = os.environ.get("PF_FUZZ_SEED")
    seed = int(seed) if seed else random.SystemRandom().randrange(1 << 32)
    only = os.environ.get("PF_FUZZ_CASE")
    if only:
        run_case(seed, int(only))
        return
    deadline = time.monotonic() + SECONDS
    count = 0
    while count < MAX_CASES and (count == 0 or time.monotonic() < deadline):
        run_case(seed, count)
        count += 1
    with capsys.disabled():
        print("\nhints fuzz: %d cases of seed %d in %.1f s: %s" % (
            count, seed, SECONDS, ", ".join("%s %d" % item for item in sorted(TALLY.items()))))


# ---------------------------------------------------------------------------
# What the fuzzing found, one case each


def split_and_join(hint, value, streams=2):
    """Split the one argument `value` over `streams` chunks, join them again with the same hint
    as the output hint: (the chunks, the joined value)."""
    split = _hints.Split(hint, (value,), {})
    chunks = [split.chunk(*split_range(split.batch, streams, i))[0][0] for i in range(streams)]
    return chunks, _hints.concat(_hints.output_hint(hint), chunks)


def test_dict_subclasses_keep_their_type_and_their_contents():
    """A Counter was made from the (key, value) pairs, so it counted them: the model got
    Counter({('x', chunk): 1, ('n', 7): 1}); a defaultdict lost its factory (a plain dict)."""
    x = torch.arange(6).reshape(3, 2)
    for kind in (collections.Counter, collections.OrderedDict,
                 lambda: collections.defaultdict(list)):
        value = kind()
        value["x"], value["n"] = x, 7
        chunks, joined = split_and_join(Hint({"x": 0, "n": None}), value)
        for chunk, rows in zip(chunks, ([0, 1], [2])):
            assert type(chunk) is type(value) and list(chunk) == ["x", "n"]
            assert torch.equal(chunk["x"], x[rows]) and chunk["n"] == 7
        assert same(value, joined)


def test_structseq_outputs_keep_their_type():
    """torch.max(x, dim)'s (values, indices) came back a plain tuple: .values was gone."""
    x = torch.rand(5, 3)
    outputs = [torch.max(x[:3], dim=1), torch.max(x[3:], dim=1)]
    joined = _hints.concat((0, 0), outputs)
    assert type(joined) is MaxResult
    assert torch.equal(joined.values, torch.max(x, dim=1).values)


@pytest.mark.parametrize("second", [torch.zeros(2, 4), torch.zeros(2, 3, 1), torch.tensor(1.0)])
def test_outputs_that_cannot_be_concatenated_are_value_errors(second):
    """torch.cat's RuntimeError named neither the place nor the hint."""
    with pytest.raises(ValueError, match=r"^output\[1\]: stream 1 returned a tensor of shape .*"
                       r"stream 0 one of shape \[3, 3\]: they cannot be concatenated along "
                       r"dim 0"):
        _hints.concat((None, 0), [(1, torch.zeros(3, 3)), (1, second)])


@pytest.mark.parametrize("leaf", [np.bool_(True), torch.tensor(True), torch.tensor([0]),
                                  np.array([1])])
def test_bools_and_one_element_arrays_are_not_dimensions(leaf):
    """np.bool_ and 0-d bool tensors have __index__ (numpy warns), and so do one-element
    tensors: they passed as dimensions 1 or 0 (numpy's one-element arrays did not)."""
    with pytest.raises(ValueError, match=r"MultiStreamModuleHint: args\[0\]\[1\]: .* is not a "
                       "hint"):
        Hint([0, leaf])


def test_integer_scalars_are_dimensions():
    x = torch.arange(12).reshape(4, 3)
    for leaf in (1, np.int64(1), torch.tensor(1), np.array(1), -1):
        chunks, joined = split_and_join(Hint(leaf), x, streams=3)
        assert [c.shape[1] for c in chunks] == [1, 1, 1] and torch.equal(joined, x)


def test_hints_nested_without_end_are_value_errors():
    """A hint deeper than the recursion limit was a RecursionError, and one that contains
    itself too."""
    deep, value = 0, torch.arange(6).reshape(3, 2)
    for _ in range(_hints.MAX_DEPTH):
        deep, value = [deep], [value]
    chunks, joined = split_and_join(Hint(deep), value)  # the limit itself is fine
    assert same(value, joined)
    cyclic = [0]
    cyclic.append(cyclic)
    endless = 0
    for _ in range(5000):
        endless = [endless]
    for hint in ([deep], {"k": [deep]}, endless, cyclic):
        with pytest.raises(ValueError, match=r"^MultiStreamModuleHint: args\[0\]\[.*nests "
                           "more than 100 levels deep"):
            Hint(hint)

"""MultiStreamModule against the plain model: every split and concat rule, and its errors.

Each result is compared with the plain model's output with torch.allclose.
The streams' own view of their work (which CPUs, which chunk) comes back
through concat_output=False.
"""
import inspect
import os
import subprocess
import sys
import threading
import warnings

import pytest
import torch

from conftest import ROOT, import_pinfer


pinfer = import_pinfer()
Hint = pinfer.MultiStreamModuleHint

ALLOWED = pinfer.CPUPool().core_ids  # the process's CPUs (test_pinfer_runtime.py checks it)
NCPUS = len(ALLOWED)
TWO_CPUS = pytest.mark.skipif(NCPUS < 2, reason="needs two CPUs, this process may use %s" % ALLOWED)
# streams_of makes a stream per CPU; one stream runs the model on the whole call without
# looking at the hints, and returns its output as is (docs/python.md).
TWO_STREAMS = pytest.mark.skipif(NCPUS < 2, reason="needs two streams, so two CPUs (one stream "
                                 "neither splits nor concatenates); this process may use %s"
                                 % ALLOWED)

# Eager models and plain callables warn about the GIL, once per module: tests that are not
# about the warning silence it.
quiet = pytest.mark.filterwarnings("ignore:MultiStreamModule. the model is not TorchScript")


class ConvNet(torch.nn.Module):
    """IPEX's ExampleNet2: two inputs, a tuple out."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)

    def forward(self, x1, x2):
        y1 = self.conv(x1)
        y2 = self.conv2(x2)
        return y1, torch.flatten(y1 + y2, start_dim=1)


class DictNet(torch.nn.Module):
    """A dict out, with a value that is not per item."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(6, 3)

    def forward(self, x):
        return {"logits": self.linear(x), "scale": torch.tensor(2.0)}


class SeqNet(torch.nn.Module):
    """Sequence-first input (time, batch, features): the batch is dim 1."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(5, 7)

    def forward(self, x):
        return torch.tanh(self.linear(x)).cumsum(0)


def linear_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 3))
    return model.eval()


def traced(model, *example):
    with torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(model.eval(), example))


def streams_of(model, **kwargs):
    kwargs.setdefault("num_streams", NCPUS)
    kwargs.setdefault("cpu_pool", pinfer.CPUPool())
    return pinfer.MultiStreamModule(model, **kwargs)


def same(a, b):
    """allclose over nested tuples, lists and dicts of tensors (other leaves equal)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b,
                                                                                     atol=1e-5)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


# ---------------------------------------------------------------------------
# Results equal the plain model's


@pytest.mark.parametrize("kind", ["trace", "script"])
@pytest.mark.parametrize("batch", [1, 2, 5, 16])
def test_torchscript_single_tensor(kind, batch):
    model = linear_model()
    script = traced(model, torch.rand(4, 10)) if kind == "trace" else torch.jit.script(model)
    x = torch.rand(batch, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # TorchScript: no GIL warning
        msm = streams_of(script)
    with torch.no_grad():
        assert same(msm(x), model(x))


@quiet
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_eager_module_and_plain_callable(batch):
    model = linear_model()
    x = torch.rand(batch, 10)
    with torch.no_grad():
        assert same(streams_of(model)(x), model(x))
        assert same(streams_of(lambda t: t * 2 + 1)(x), x * 2 + 1)


def test_non_torchscript_models_warn_once_about_the_gil():
    with pytest.warns(UserWarning, match="GIL") as record:
        msm = streams_of(linear_model())
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        msm(torch.rand(4, 10))
        msm(torch.rand(4, 10))


@pytest.mark.parametrize("batch", [1, 2, 7, 16])
def test_tuple_inputs_and_outputs(batch):
    model = ConvNet().eval()
    x1, x2 = torch.rand(batch, 8, 6, 6), torch.rand(batch, 8, 6, 6)
    msm = streams_of(traced(model, x1, x2), input_split_hint=Hint(0, 0),
                     output_concat_hint=Hint((0, 0)))
    with torch.no_grad():
        assert same(msm(x1, x2), model(x1, x2))


def test_output_hint_spellings_of_a_tuple_and_a_dict():
    model = ConvNet().eval()
    x1, x2 = torch.rand(6, 8, 4, 4), torch.rand(6, 8, 4, 4)
    script = traced(model, x1, x2)
    with torch.no_grad():
        want = model(x1, x2)
        for hint in (Hint((0, 0)), Hint([0, 0]), Hint(0, 0)):
            assert same(streams_of(script, input_split_hint=Hint(0, 0),
                                   output_concat_hint=hint)(x1, x2), want)
        dict_model = DictNet().eval()
        x = torch.rand(5, 6)
        got = streams_of(torch.jit.script(dict_model),
                         output_concat_hint=Hint(logits=0, scale=None))(x)
        assert same(got, dict_model(x))


@TWO_STREAMS
@quiet
@pytest.mark.parametrize("batch", [1, 4, 9])
def test_dict_output_with_a_none_leaf_takes_stream_0s_value(batch):
    model = DictNet().eval()
    x = torch.rand(batch, 6)
    msm = streams_of(model, output_concat_hint=Hint({"logits": 0, "scale": None}))
    with torch.no_grad():
        got = msm(x)
        assert same(got, model(x))
        per_stream = streams_of(model, concat_output=False)(x)
    assert got["scale"] is not None and float(got["scale"]) == 2.0
    assert len(per_stream) == min(batch, NCPUS)


@pytest.mark.parametrize("dim", [1, -2])
@pytest.mark.parametrize("batch", [1, 3, 10])
def test_split_and_concat_along_another_dimension(dim, batch):
    model = SeqNet().eval()
    x = torch.rand(4, batch, 5)
    msm = streams_of(traced(model, torch.rand(4, 2, 5)), input_split_hint=Hint(dim),
                     output_concat_hint=Hint(dim))
    with torch.no_grad():
        assert same(msm(x), model(x))


@quiet
def test_none_leaves_pass_the_argument_whole():
    def affine(x, weight, bias, note):
        assert note == "whole" and weight.shape == (4, 3)
        return x @ weight + bias

    x, weight, bias = torch.rand(7, 4), torch.rand(4, 3), torch.rand(3)
    msm = streams_of(affine, input_split_hint=Hint(0, None, None, None))
    assert same(msm(x, weight, bias, "whole"), affine(x, weight, bias, "whole"))


@quiet
def test_keyword_arguments_and_nested_hints():
    def model(batch, mask=None, scale=1.0):
        images, (extra, table) = batch["images"], batch["pair"]
        out = images.sum(dim=(2, 3)) * scale + extra.t() + table.sum()
        return {"out": out * mask.unsqueeze(1), "parts": [out, table]}

    batch = {"images": torch.rand(9, 3, 2, 2), "pair": (torch.rand(3, 9), torch.rand(2, 2))}
    mask = torch.rand(9)
    msm = streams_of(model,
                     input_split_hint=Hint({"images": 0, "pair": (1, None)}, mask=0, scale=None),
                     output_concat_hint=Hint({"out": 0, "parts": [0, None]}))
    assert same(msm(batch, mask=mask, scale=3.0), model(batch, mask=mask, scale=3.0))
    assert same(msm(batch, mask=mask), model(batch, mask=mask))  # a hinted kwarg left out


@TWO_CPUS
@quiet
def test_batch_smaller_than_streams_runs_only_batch_streams():
    def where(x):
        return sorted(os.sched_getaffinity(0)), x.shape[0]

    msm = streams_of(where, num_streams=2, concat_output=False)
    assert msm(torch.rand(1, 3)) == [(ALLOWED[:1], 1)]
    assert msm(torch.rand(2, 3)) == [(ALLOWED[:1], 1), (ALLOWED[1:2], 1)]


@TWO_CPUS
@quiet
@pytest.mark.parametrize("batch, sizes", [(5, [3, 2]), (6, [3, 3]), (3, [2, 1])])
def test_chunks_are_contiguous_views_the_first_ones_larger(batch, sizes):
    x = torch.arange(batch * 2.0).reshape(batch, 2)

    def chunk(t):
        return t.storage().data_ptr() == x.storage().data_ptr(), t.data_ptr(), t.clone()

    parts = streams_of(chunk, num_streams=2, concat_output=False)(x)
    assert [p[2].shape[0] for p in parts] == sizes
    assert all(p[0] for p in parts)  # views into x's storage, not copies
    assert [p[1] for p in parts] == [x.data_ptr() + x.element_size() * 2 * sum(sizes[:i])
                                     for i in range(2)]
    assert torch.equal(torch.cat([p[2] for p in parts]), x)


@TWO_STREAMS
@quiet
def test_concat_output_false_returns_the_per_stream_outputs():
    model = linear_model()
    x = torch.rand(5, 10)
    with torch.no_grad():
        outs = streams_of(model, concat_output=False)(x)
        assert isinstance(outs, list) and len(outs) == min(5, NCPUS)
        assert same(torch.cat(outs), model(x))


def test_one_stream_runs_in_the_callers_thread_pinned_to_the_pool():
    def where(x):
        return threading.get_native_id(), sorted(os.sched_getaffinity(0)), torch.get_num_threads()

    pool = pinfer.CPUPool(list(reversed(ALLOWED)))
    with pytest.warns(UserWarning, match="GIL"):
        msm = pinfer.MultiStreamModule(where, num_streams=1, cpu_pool=pool)
    before = sorted(os.sched_getaffinity(0))
    assert msm(torch.rand(3)) == (threading.get_native_id(), ALLOWED[-1:], NCPUS)
    assert sorted(os.sched_getaffinity(0)) == before
    model = linear_model()
    x = torch.rand(4, 10)
    with torch.no_grad():
        assert same(pinfer.MultiStreamModule(traced(model, x), num_streams=1)(x), model(x))


def test_one_stream_without_concat_output_returns_a_one_element_list():
    """As IPEX (`[results_raw]`): the type of the result follows concat_output, not the
    number of streams, so code written for N streams works with one."""
    model = linear_model()
    x = torch.rand(4, 10)
    msm = pinfer.MultiStreamModule(traced(model, x), num_streams=1, concat_output=False,
                                   cpu_pool=pinfer.CPUPool(ALLOWED[:1]))
    with torch.no_grad():
        outs = msm(x)
        assert isinstance(outs, list) and len(outs) == 1
        assert same(outs[0], model(x))
        assert same(msm(torch.rand(0, 10)), [model(torch.rand(0, 10))])


@pytest.mark.parametrize("num_streams, want", [(1, 1), ("AUTO", NCPUS), (NCPUS, NCPUS)])
def test_get_stream_number_is_the_number_of_streams(num_streams, want):
    msm = streams_of(traced(linear_model(), torch.rand(2, 10)), num_streams=num_streams)
    assert msm.get_stream_number() == want == msm.num_streams
    assert len(msm.stream_core_ids) == want


@TWO_CPUS
@quiet
def test_each_stream_runs_pinned_on_its_cpus_with_a_team_of_their_size():
    def where(x):
        return (sorted(os.sched_getaffinity(0)), torch.get_num_threads(),
                [cpus for _, cpus in pinfer._pinfer.team_threads()])

    msm = streams_of(where, num_streams=2, concat_output=False,
                     cpu_pool=pinfer.CPUPool(list(reversed(ALLOWED[:2]))))
    assert msm.stream_core_ids == [[ALLOWED[1]], [ALLOWED[0]]]
    assert msm(torch.rand(4)) == [([ALLOWED[1]], 1, [[ALLOWED[1]]]),
                                  ([ALLOWED[0]], 1, [[ALLOWED[0]]])]


def test_cpus_per_stream_follow_the_split_rule():
    for ncpus, nstreams in [(5, 2), (7, 3), (2, 2), (4, 4), (3, 1)]:
        parts = [pinfer._pinfer.split_range(ncpus, nstreams, i) for i in range(nstreams)]
        sizes = [end - begin for begin, end in parts]
        assert sizes == [ncpus // nstreams + (1 if i < ncpus % nstreams else 0)
                         for i in range(nstreams)]
    msm = streams_of(traced(linear_model(), torch.rand(2, 10)))
    pools = msm.stream_core_ids
    flat = [cpu for part in pools for cpu in part]
    assert flat == msm.cpu_pool.core_ids
    n = msm.num_streams
    assert [len(p) for p in pools] == [NCPUS // n + (1 if i < NCPUS % n else 0)
                                       for i in range(n)]


@quiet
def test_empty_batch_gives_the_plain_models_output():
    model = linear_model()
    x = torch.rand(0, 10)
    with torch.no_grad():
        assert same(streams_of(model)(x), model(x))


@quiet
def test_streams_run_in_the_callers_grad_mode():
    model = linear_model()
    msm = streams_of(model)
    x = torch.rand(4, 10)
    assert msm(x).requires_grad
    with torch.no_grad():
        assert not msm(x).requires_grad


def test_many_calls_and_several_calling_threads():
    model = linear_model()
    msm = streams_of(traced(model, torch.rand(2, 10)))
    inputs = [torch.rand(1 + i % 7, 10) for i in range(40)]
    with torch.no_grad():
        want = [model(x) for x in inputs]
    failures = []

    def call(indices):
        with torch.no_grad():
            for i in indices:
                if not same(msm(inputs[i]), want[i]):
                    failures.append(i)

    threads = [threading.Thread(target=call, args=(range(k, 40, 3),)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_it_is_a_torch_module_sharing_the_models_weights():
    model = linear_model()
    msm = streams_of(traced(model, torch.rand(2, 10)))
    assert isinstance(msm, torch.nn.Module)
    msm.eval()
    assert "num_streams=" in repr(msm)
    default = inspect.signature(pinfer.MultiStreamModule).parameters["cpu_pool"].default
    assert default is None  # the default pool is made with the module, not at import


# ---------------------------------------------------------------------------
# The default pool: the physical cores of the first NUMA node among the usable CPUs


def first_node_cores(cpus, usable):
    """The rule, from a topology's CPU rows: the lowest node holding a usable CPU, and there
    the lowest usable CPU of each of its cores, ascending."""
    node = min(c["node"] for c in cpus if c["cpu"] in usable and c["allowed"])
    chosen = {}
    for c in sorted(cpus, key=lambda c: c["cpu"]):
        if c["node"] == node and c["cpu"] in usable and c["allowed"]:
            chosen.setdefault((c["socket"], c["core_first"]), c["cpu"])
    return sorted(chosen.values())


def test_the_default_pool_on_this_machine():
    msm = pinfer.MultiStreamModule(traced(linear_model(), torch.rand(2, 10)))
    want = first_node_cores(pinfer.topology()["cpus"], set(ALLOWED))
    assert msm.cpu_pool.core_ids == want
    assert msm.num_streams == len(want)  # "AUTO"
    node = {c["cpu"]: c["node"] for c in pinfer.topology()["cpus"]}[want[0]]
    assert msm.cpu_pool == pinfer.CPUPool(node_id=node)


@pytest.mark.skipif(NCPUS < 2, reason="needs two CPUs (SMT siblings of one core in the "
                    "machine described), this process may use %s" % ALLOWED)
@pytest.mark.parametrize("layout", ["node 0 first", "node 0 unusable"])
def test_the_default_pool_leaves_out_smt_siblings_and_other_nodes(tmp_path, layout):
    """On a machine described over this process's CPU ids (an lscpu file): its first two
    CPUs are SMT siblings of one core, its third (if any) a core of its own on the same node,
    the others on another node.  The default pool is one CPU of each of the first node's
    cores - not every CPU, which made 112 streams on a 2x28-core HT machine.  With
    "node 0 unusable", node 0 holds only a CPU this process may not use: the first node
    among the usable CPUs is then node 1."""
    usable = ALLOWED
    first = 0 if layout == "node 0 first" else 1
    rows = []
    if first == 1:
        rows.append((max(usable) + 1, 0, 0, 0))  # not in this process's mask
    rows += [(usable[0], 1, 0, first), (usable[1], 1, 0, first)]
    if len(usable) > 2:
        rows.append((usable[2], 2, 0, first))
    rows += [(cpu, 3 + i, 1, first + 1) for i, cpu in enumerate(usable[3:])]
    path = tmp_path / "machine.lscpu"
    path.write_text("# CPU,Core,Socket,Node\n" + "".join("%d,%d,%d,%d\n" % row
                                                           for row in sorted(rows)))
    want = [usable[0]] + usable[2:3]
    assert first_node_cores(pinfer.topology(str(path))["cpus"], set(usable)) == want
    pool = pinfer.runtime._default_pool(str(path))
    assert pool.core_ids == want
    assert pool.node_id == first


# ---------------------------------------------------------------------------
# num_streams


@pytest.mark.parametrize("value", ["AUTO", "auto", "Auto"])
def test_auto_streams_are_one_per_cpu(value):
    msm = streams_of(traced(linear_model(), torch.rand(2, 10)), num_streams=value)
    assert msm.num_streams == NCPUS == pinfer.get_default_num_streams(msm.cpu_pool)


def test_more_streams_than_cpus_are_clamped_with_a_warning():
    with pytest.warns(UserWarning, match="using %d streams" % NCPUS):
        msm = streams_of(traced(linear_model(), torch.rand(2, 10)), num_streams=NCPUS + 3)
    assert msm.num_streams == NCPUS
    x = torch.rand(9, 10)
    with torch.no_grad():
        assert same(msm(x), msm.model(x))


@pytest.mark.parametrize("value", ["two", "", "AUTOMATIC", 0, -1, 1.5, None, True, [2]])
def test_invalid_stream_counts_are_value_errors(value):
    with pytest.raises(ValueError, match="num_streams"):
        streams_of(traced(linear_model(), torch.rand(2, 10)), num_streams=value)


# ---------------------------------------------------------------------------
# Errors: Python exceptions with clear messages, and the module still works after them


def tensor_model():
    return traced(linear_model(), torch.rand(2, 10))


@TWO_STREAMS
@quiet
@pytest.mark.parametrize("hint, args, kwargs, message", [
    (Hint(0, 0), (torch.rand(4, 10), torch.rand(5, 10)), {}, "split sizes disagree: args\\[0\\] "
     "has 4 along dim 0, but args\\[1\\] has 5 along dim 0"),
    (Hint(0, 1), (torch.rand(4, 10), torch.rand(4, 3)), {}, "split sizes disagree"),
    (Hint(0), (torch.rand(4, 10), torch.rand(4, 10)), {}, "1 positional entries, but the call "
     "passes 2"),
    (Hint(0, None), (torch.rand(4, 10),), {}, "2 positional entries, but the call passes 1"),
    (Hint(0), (torch.rand(4, 10),), {"mask": torch.rand(4)}, "no entry for the keyword "
     "argument\\(s\\) 'mask'"),
    (Hint(0), ("text",), {}, "args\\[0\\]: the hint 0 splits a tensor, but the argument is a str"),
    (Hint(2), (torch.rand(4, 10),), {}, "args\\[0\\]: dimension 2 is out of range"),
    (Hint(0), (torch.tensor(3.0),), {}, "0-dimensional"),
    (Hint((0, 0)), (torch.rand(4, 10),), {}, "args\\[0\\]: the hint is a tuple, the argument a "
     "Tensor"),
    (Hint((0, 0)), ((torch.rand(4, 10),),), {}, "the hint has 2 entries, the argument 1"),
    (Hint({"a": 0}), ({"a": torch.rand(4), "b": 1},), {}, "args\\[0\\]: the hint has no entry "
     "for the key\\(s\\) 'b'"),
    (Hint({"a": 0}), ([torch.rand(4)],), {}, "the hint is a dict, the argument a list"),
    (Hint(None), (torch.rand(4, 10),), {}, "splits no tensor"),
])
def test_bad_inputs_for_the_hint_are_value_errors(hint, args, kwargs, message):
    msm = streams_of(lambda *a, **k: a[0], input_split_hint=hint, output_concat_hint=Hint(None))
    with pytest.raises(ValueError, match=message):
        msm(*args, **kwargs)
    if hint.args == [0]:  # still usable after the error: Hint(None) out is stream 0's chunk
        x = torch.rand(4, 10)
        begin, end = pinfer._pinfer.split_range(4, msm.num_streams, 0)
        assert torch.equal(msm(x), x[begin:end])


@pytest.mark.parametrize("leaf", ["0", 1.5, True, object()])
def test_bad_hint_leaves_fail_where_the_hint_is_written(leaf):
    with pytest.raises(ValueError, match="is not a hint"):
        Hint(leaf)
    with pytest.raises(ValueError, match="is not a hint"):
        Hint(x=[0, {"y": leaf}])


def test_hints_must_be_hints():
    with pytest.raises(ValueError, match="input_split_hint must be a MultiStreamModuleHint"):
        streams_of(tensor_model(), input_split_hint=0)
    with pytest.raises(ValueError, match="output_concat_hint must be a MultiStreamModuleHint"):
        streams_of(tensor_model(), output_concat_hint=(0, 0))
    with pytest.raises(ValueError, match="output_concat_hint is empty"):
        streams_of(tensor_model(), output_concat_hint=Hint())
    with pytest.raises(ValueError, match="one positional argument"):
        streams_of(tensor_model(), output_concat_hint=Hint(0, y=0))


@TWO_STREAMS
@quiet
@pytest.mark.parametrize("model, hint, message", [
    (lambda x: x, Hint((0, 0)), "output: the output hint is a tuple of 2 entries, but stream 0 "
     "returned a Tensor"),
    (lambda x: "text", Hint(0), "output: the output hint 0 concatenates tensors, but stream 0 "
     "returned a str"),
    (lambda x: (x, x), Hint((0, 3)), "output\\[1\\]: dimension 3 is out of range"),
    (lambda x: {"a": x, "b": x}, Hint({"a": 0}), "no entry for the key\\(s\\) 'b'"),
    (lambda x: [x], Hint({"a": 0}), "the output hint is a dict, but stream 0 returned a list"),
])
def test_outputs_that_do_not_match_the_hint_are_value_errors(model, hint, message):
    msm = streams_of(model, output_concat_hint=hint)
    with pytest.raises(ValueError, match=message):
        msm(torch.rand(4, 10))


@quiet
def test_errors_raised_by_the_model_come_back_to_the_caller():
    calls = []

    def model(x):
        calls.append(x.shape[0])
        if x.shape[0] == 3:
            raise KeyError("stream with three items")
        return x

    msm = streams_of(model)
    with pytest.raises(KeyError, match="stream with three items"):
        msm(torch.rand(3 * NCPUS, 2))
    assert same(msm(torch.rand(2 * NCPUS, 2)).shape, torch.Size([2 * NCPUS, 2]))
    script = tensor_model()
    msm = streams_of(script)
    with pytest.raises(RuntimeError):
        msm(torch.rand(4, 11))  # a shape the model refuses: torch's own error
    with torch.no_grad():
        x = torch.rand(4, 10)
        assert same(msm(x), script(x))


def test_bad_pools_and_models():
    with pytest.raises(TypeError, match="CPUPool"):
        pinfer.MultiStreamModule(tensor_model(), cpu_pool=[0, 1])
    with pytest.raises(TypeError, match="not callable"):
        pinfer.MultiStreamModule(42)


# ---------------------------------------------------------------------------
# fork()

FORK_CHILD = """
import os, signal, sys, warnings
import torch
import pinfer
warnings.simplefilter("ignore")  # the GIL warning of plain callables
pool = pinfer.CPUPool()
modules = {"one stream": pinfer.MultiStreamModule(lambda x: x * 2, num_streams=1, cpu_pool=pool),
           "a stream per CPU": pinfer.MultiStreamModule(lambda x: x * 2, num_streams=len(pool),
                                                        cpu_pool=pool)}
for msm in modules.values():
    assert torch.equal(msm(torch.ones(4)), torch.full((4,), 2.0))
pid = os.fork()
if pid == 0:
    signal.alarm(20)  # a wait that never ends kills the child: a failure, not a hang
    for name, msm in modules.items():
        try:
            msm(torch.ones(4))
            print(name, "ran")
        except RuntimeError as error:
            print(name, "RuntimeError:", error)
    fresh = pinfer.MultiStreamModule(lambda x: x * 3, num_streams=len(pool), cpu_pool=pool)
    print("made in the child:", fresh(torch.ones(2)).tolist())
    sys.stdout.flush()
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child status", status)
print("parent:", [msm(torch.ones(2)).tolist() for msm in modules.values()])
"""


def test_a_module_used_in_a_forked_child_raises_instead_of_waiting_forever():
    """The streams' threads stay in the parent: in a child made by os.fork() the module
    raises RuntimeError at once (one stream too, for one rule), a module made in the child
    works, and the parent's modules still work."""
    proc = subprocess.run([sys.executable, "-c", FORK_CHILD], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=os.path.join(ROOT,
                                                                                   "python")))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "child status 0" in out, out
    for name in ("one stream", "a stream per CPU"):
        assert "%s RuntimeError: this MultiStreamModule was made in process " % name in out, out
    assert "a child made by fork()" in out and " ran" not in out, out
    assert "made in the child: [3.0, 3.0]" in out, out
    assert "parent: [[2.0, 2.0], [2.0, 2.0]]" in out, out

"""IPEX's front end on stock PyTorch: ``optimize`` and the module-level switches.

``intel_extension_for_pytorch.optimize(model, dtype, optimizer, level, ...)`` is the first
line of nearly every IPEX script.  IPEX implements it with its own kernels (prepacked
oneDNN weights, fused optimizers); this module gives the same call the closest recipe stock
PyTorch has, so that ``import pinfer as ipex`` runs such scripts and keeps most of the gain:

inference (no optimizer; the model must be in eval mode, as IPEX asserts):
  - Conv+BatchNorm folding: the data flow is read with torch.fx when the model traces
    symbolically, and each conv whose only user is a batch norm is replaced by the folded
    conv (``torch.nn.utils.fusion.fuse_conv_bn_eval``), the batch norm by ``Identity``,
    *inside the model's own module tree*: the model keeps its class, attributes and methods
    (no GraphModule is returned).  When fx cannot trace the model, only adjacent Conv, BN
    children of plain ``nn.Sequential`` containers are folded (their order is their data
    flow);
  - dropout modules replaced by ``Identity`` (they are identities in eval mode anyway; it
    keeps them out of traced graphs);
  - channels-last weights for models with 4-D convolutions (as IPEX: weights only; a
    oneDNN convolution whose weight is channels-last computes and returns channels-last,
    so the first convolution converts the activations and the rest stay so; inputs are
    not touched);
  - every Conv2d runs oneDNN's convolution (``torch.mkldnn_convolution``; stock PyTorch's
    heuristic sends small fp32 convolutions at batch 1 to im2col + BLAS, many times slower
    with Debian's reference BLAS), the module's class swapped for a Conv2d subclass;
  - ``dtype=torch.bfloat16``: weights in bf16 and floating-point inputs cast to bf16 by a
    forward pre-hook (outputs are bf16, as IPEX's under ``torch.cpu.amp.autocast``), when
    the CPU has AVX512_BF16 or AMX-BF16; otherwise fp32 is kept with one warning naming the
    missing ISA.  ``with torch.cpu.amp.autocast():`` around the call works too;
  - ``sample_input``: the result is ``torch.jit.trace`` + ``torch.jit.freeze`` of the
    above (oneDNN's fusions, conv-bn folding by the freezer), run twice so that the
    profiling executor has specialised it.
training (an optimizer; the model in train mode): channels-last only (no folding, no
  freezing), returns ``(model, optimizer)``; with ``dtype=torch.bfloat16`` the weights stay
  fp32 (master weights) and one warning says to run the steps under
  ``torch.cpu.amp.autocast()``.
A TorchScript module: frozen (``torch.jit.freeze``) when it is in eval mode and no
  optimizer is given, else returned as it is; IPEX returns ScriptModules untouched, freezing
  gives such a model the graph fusions its traced-and-frozen counterpart has.

``inplace=False`` (the default) deep-copies the model (and the optimizer with it) first.
IPEX-only keywords (``weights_prepack``, ``split_master_weight_for_bf16``, ...) are
accepted: they name IPEX kernels which stock PyTorch does not have.  Unknown keywords are
accepted with one warning naming them.  See docs/python.md.
"""
import copy
import enum
import warnings

try:
    import torch
except ImportError:  # pragma: no cover - the runtime API works without torch; this does not
    torch = None

__all__ = ["optimize", "enable_onednn_fusion", "FP32MathMode", "set_fp32_math_mode",
           "get_fp32_math_mode", "enable_auto_channels_last", "disable_auto_channels_last",
           "set_verbose", "verbose"]

# The keywords of IPEX's optimize beyond those of the signature: accepted without a
# warning (they select IPEX kernels; stock PyTorch has no equivalent to apply).
_IPEX_KEYWORDS = ("deployment_mode", "sample_input_shape", "weights_dtype")

# ISA features (pinfer.topology()'s spelling) under which oneDNN runs bf16 natively.
_BF16_ISA = ("avx512_bf16", "amx_bf16")

if torch is not None:
    _BN = {torch.nn.Conv1d: torch.nn.BatchNorm1d, torch.nn.Conv2d: torch.nn.BatchNorm2d,
           torch.nn.Conv3d: torch.nn.BatchNorm3d}
    _DROPOUT = tuple(getattr(torch.nn, name) for name in (
        "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
        "FeatureAlphaDropout") if hasattr(torch.nn, name))

_state = {"auto_channels_last": True, "fp32_math_mode": None, "warned_isa": False}


class FrontendWarning(UserWarning):
    """What pinfer's front end does differently from IPEX's, or cannot do."""


class ModeError(AssertionError, RuntimeError):
    """The model's mode and the optimizer disagree (IPEX raises AssertionError; RuntimeError
    is caught too)."""


def _warn(message):
    warnings.warn(message, FrontendWarning, stacklevel=3)


# ---------------------------------------------------------------------------
# The CPU


def _cpu_features():
    """The ISA features of this machine (pinfer.topology()'s list; CPUID on x86)."""
    from . import runtime
    return set(runtime.topology().get("features") or [])


def bf16_isa():
    """The ISA features that let oneDNN compute in bf16 natively on this CPU (empty when
    there are none)."""
    features = _cpu_features()
    return [name for name in _BF16_ISA if name in features]


# ---------------------------------------------------------------------------
# The recipe's steps


def _fold_pairs_fx(model):
    """[(conv's qualified name, bn's qualified name)] where the data flow is conv -> bn and
    nothing else: each module called once, the conv's output used by the bn only.  None
    when torch.fx cannot trace the model."""
    try:
        import torch.fx
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - any failure of tracing means "ask the fallback"
        return None
    modules = dict(model.named_modules())
    calls = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        bn = modules.get(node.target)
        if not isinstance(bn, tuple(_BN.values())) or not node.args:
            continue
        source = node.args[0]
        if not isinstance(source, torch.fx.Node) or source.op != "call_module":
            continue
        conv = modules.get(source.target)
        if type(conv) not in _BN or type(bn) is not _BN[type(conv)]:
            continue
        if calls[source.target] != 1 or calls[node.target] != 1 or len(source.users) != 1 \
                or len(node.args) != 1 or node.kwargs:
            continue
        pairs.append((source.target, node.target))
    return pairs


def _fold_pairs_sequential(model):
    """[(conv, bn)] of adjacent children of plain nn.Sequential containers (whose forward is
    Sequential's own, so that their order is the data flow)."""
    pairs = []
    for prefix, container in model.named_modules():
        if not isinstance(container, torch.nn.Sequential) or \
                type(container).forward is not torch.nn.Sequential.forward:
            continue
        children = list(container.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:]):
            if type(a) in _BN and type(b) is _BN[type(a)]:
                join = (prefix + ".") if prefix else ""
                pairs.append((join + name_a, join + name_b))
    return pairs


def _set_module(model, qualified, module):
    parent_name, _, name = qualified.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, name, module)


def fold_conv_bn(model):
    """Fold each Conv followed by its BatchNorm into the conv, in the model's own module tree
    (the BN becomes Identity); the number of folded pairs.  Eval-mode models only."""
    pairs = _fold_pairs_fx(model)
    if pairs is None:
        pairs = _fold_pairs_sequential(model)
    folded = 0
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        if not bn.track_running_stats or bn.running_mean is None:
            continue  # batch statistics at inference: nothing constant to fold
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        _set_module(model, conv_name, fuse_conv_bn_eval(conv, bn))
        _set_module(model, bn_name, torch.nn.Identity())
        folded += 1
    return folded


def _drop_dropout(model):
    for name, module in list(model.named_modules()):
        if name and isinstance(module, _DROPOUT):
            _set_module(model, name, torch.nn.Identity())


def _has_conv2d(model):
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def _cast_floating(value, dtype):
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() and value.dtype != dtype else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_cast_floating(v, dtype) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_floating(v, dtype) for v in value)
    if isinstance(value, dict):
        return type(value)((k, _cast_floating(v, dtype)) for k, v in value.items())
    return value


def _bf16_inputs_hook(module, args):
    """Forward pre-hook of a bf16 model: its floating-point inputs in bf16 (a module-level
    function so that the model still deep-copies and pickles)."""
    return _cast_floating(args, torch.bfloat16)


if torch is not None:
    class _BF16Inputs(torch.nn.Module):
        """What is traced for a bf16 model: the input casts become part of the graph (tracing
        does not record the top module's hooks)."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *args):
            return self.model(*_cast_floating(args, torch.bfloat16))


if torch is not None:
    class _OneDNNConv2d(torch.nn.Conv2d):
        """A Conv2d that always runs oneDNN's convolution (``torch.mkldnn_convolution``).

        Stock PyTorch picks oneDNN for an fp32 convolution by a heuristic: at batch 1 on a
        single thread, 1x1 and small 3x3 convolutions go to its im2col + BLAS path instead,
        which on a build with the reference BLAS (Debian's torch with libblas3) is ten times
        slower (4.2 ms against 0.3 ms for a 64-channel 1x1 at 56x56 here).  IPEX runs every
        convolution through oneDNN; so does this.  Same weights, same class for
        isinstance(), traced as aten::mkldnn_convolution (which has a backward too)."""

        def _conv_forward(self, input, weight, bias):
            if self.padding_mode == "zeros" and input.dim() == 4 and not input.is_mkldnn \
                    and input.device.type == "cpu" and isinstance(self.padding, tuple) \
                    and input.dtype in (torch.float32, torch.bfloat16) \
                    and input.dtype == weight.dtype:
                return torch.mkldnn_convolution(input, weight, bias, self.padding, self.stride,
                                                self.dilation, self.groups)
            return super()._conv_forward(input, weight, bias)


def _use_onednn_convolutions(model):
    """Every plain Conv2d of an inference model becomes a _OneDNNConv2d (its class swapped:
    the parameters, hooks and attributes stay)."""
    if not (hasattr(torch, "mkldnn_convolution") and torch.backends.mkldnn.is_available()):
        return
    for module in model.modules():
        if type(module) is torch.nn.Conv2d:
            module.__class__ = _OneDNNConv2d


def _trace_and_freeze(model, sample_input):
    """torch.jit.trace + torch.jit.freeze, run twice (the profiling executor specialises the
    graph on its first runs); None with a warning when the model does not trace."""
    example = sample_input if isinstance(sample_input, tuple) else (sample_input,)
    try:
        with torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False, strict=False)
            frozen = torch.jit.freeze(traced)
            for _ in range(2):
                frozen(*example)
    except Exception as error:  # noqa: BLE001 - the eager model is still a valid answer
        _warn("pinfer.optimize: the model could not be traced with sample_input (%s: %s); "
              "the eager optimized model is returned" % (type(error).__name__,
                                                         str(error).splitlines()[0]
                                                         if str(error) else ""))
        return None
    return frozen


def _optimize_script(model, optimizer, dtype):
    if dtype == torch.bfloat16:
        _warn("pinfer.optimize: a TorchScript model's dtype cannot be changed: it stays as "
              "it was traced or scripted (optimize the eager model with dtype=torch.bfloat16, "
              "or trace it under torch.cpu.amp.autocast())")
    if optimizer is not None or model.training:
        _warn("pinfer.optimize: a TorchScript model is returned as it is (it is not in eval "
              "mode, or an optimizer was given)")
        return model if optimizer is None else (model, optimizer)
    try:
        return torch.jit.freeze(model)
    except Exception as error:  # noqa: BLE001 - freezing is an optimisation, not a need
        _warn("pinfer.optimize: the TorchScript model could not be frozen (%s); it is "
              "returned as it is" % (str(error).splitlines()[0] if str(error) else
                                     type(error).__name__))
        return model


# ---------------------------------------------------------------------------
# optimize


def optimize(model, dtype=None, optimizer=None, level="O1", inplace=False,
             conv_bn_folding=None, weights_prepack=None, replace_dropout_with_identity=None,
             optimize_lstm=None, split_master_weight_for_bf16=None, fuse_update_step=None,
             auto_kernel_selection=None, sample_input=None, graph_mode=None,
             concat_linear=None, **kwargs):
    """IPEX's ``optimize`` on stock PyTorch (the recipe is the module's docstring).

    Returns the optimized model, or ``(model, optimizer)`` when an optimizer is given.
    ``weights_prepack``, ``optimize_lstm``, ``split_master_weight_for_bf16``,
    ``fuse_update_step``, ``auto_kernel_selection``, ``concat_linear`` and ``graph_mode``
    select IPEX kernels and are accepted without effect."""
    if torch is None:
        raise ImportError("pinfer.optimize needs torch")
    unknown = sorted(k for k in kwargs if k not in _IPEX_KEYWORDS)
    if unknown:
        _warn("pinfer.optimize: ignoring argument%s IPEX's optimize may know but pinfer does "
              "not: %s" % ("s" if len(unknown) > 1 else "", ", ".join(unknown)))
    if dtype not in (None, torch.float32, torch.bfloat16):
        raise ValueError("pinfer.optimize: dtype must be None, torch.float32 or "
                         "torch.bfloat16 (as IPEX on CPU), not %r" % (dtype,))
    if level not in ("O0", "O1"):
        raise RuntimeError("Unexpected optimization level %s. Options are 'O0', 'O1'."
                           % (level,))
    if isinstance(model, torch.jit.ScriptFunction):
        return model if optimizer is None else (model, optimizer)
    if isinstance(model, torch.jit.ScriptModule):
        return _optimize_script(model, optimizer, dtype)
    if not isinstance(model, torch.nn.Module):
        raise TypeError("pinfer.optimize: the model must be a torch.nn.Module, not %s"
                        % type(model).__name__)
    if model.training and optimizer is None:
        raise ModeError("The optimizer should be given for training mode: the model must be "
                        "in eval mode for inference (call model.eval() before optimize)")
    if not model.training and optimizer is not None:
        raise ModeError("The optimizer should not be given for inference mode: the model "
                        "must be in train mode for training (call model.train() first)")
    if not inplace:
        if optimizer is None:
            model = copy.deepcopy(model)
        else:
            # One deepcopy of both: the copied optimizer's parameter references (and its
            # state's keys) are the copied model's parameters.
            model, optimizer = copy.deepcopy((model, optimizer))
    if level == "O0":
        return model if optimizer is None else (model, optimizer)

    channels_last = _state["auto_channels_last"] and _has_conv2d(model)

    if optimizer is not None:
        if dtype == torch.bfloat16:
            missing = "" if bf16_isa() else (
                " (this CPU has neither AVX512_BF16 nor AMX-BF16: bf16 is emulated, slower "
                "than fp32)")
            _warn("pinfer.optimize: bf16 training keeps the fp32 weights as master weights; "
                  "run the forward and loss under torch.cpu.amp.autocast() to compute in "
                  "bf16%s" % missing)
        if channels_last:
            # Module._apply sets param.data: the optimizer's references stay valid.
            model.to(memory_format=torch.channels_last)
        return model, optimizer

    with torch.no_grad():
        if conv_bn_folding is not False:
            fold_conv_bn(model)
        if replace_dropout_with_identity is not False:
            _drop_dropout(model)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        _use_onednn_convolutions(model)
        bf16 = False
        if dtype == torch.bfloat16:
            if bf16_isa():
                model.to(torch.bfloat16)
                model.register_forward_pre_hook(_bf16_inputs_hook)
                bf16 = True
            elif not _state["warned_isa"]:
                _state["warned_isa"] = True
                _warn("pinfer.optimize: dtype=torch.bfloat16 needs AVX512_BF16 or AMX-BF16, "
                      "which this CPU has neither of (avx512_bf16, amx_bf16 missing): the "
                      "model stays fp32")
    if graph_mode and sample_input is None:
        _warn("pinfer.optimize: graph_mode needs sample_input here (pinfer traces with it); "
              "the model stays eager")
    if sample_input is not None:
        traced = _trace_and_freeze(_BF16Inputs(model).eval() if bf16 else model, sample_input)
        if traced is not None:
            return traced
    return model


# ---------------------------------------------------------------------------
# Switches


def enable_onednn_fusion(enabled):
    """IPEX's oneDNN graph fusion switch: ``torch.jit.enable_onednn_fusion`` (oneDNN Graph,
    LLGA, for traced and frozen models; torch >= 1.12), else a warning."""
    fn = getattr(torch.jit, "enable_onednn_fusion", None)
    if fn is None:
        _warn("pinfer.enable_onednn_fusion: this torch (%s) has no oneDNN graph fusion; "
              "nothing changes" % torch.__version__)
        return
    fn(bool(enabled))
    check = getattr(torch.jit, "onednn_fusion_enabled", None)
    if enabled and check is not None and not check():
        # The setter accepts the flag silently when torch was built without oneDNN Graph
        # (Debian's python3-torch 1.13 is): say so rather than let the caller believe it.
        _warn("pinfer.enable_onednn_fusion: this torch build (%s) has no oneDNN Graph (LLGA): "
              "the switch has no effect; torch.jit.freeze's own oneDNN fusions still apply"
              % torch.__version__)


class FP32MathMode(enum.IntEnum):
    """IPEX's FP32 math modes: FP32 (exact), TF32 (GPUs), BF32 (fp32 tensors, bf16 math)."""
    FP32 = 0
    TF32 = 1
    BF32 = 2


def _torch_at_least(major, minor):
    try:
        parts = torch.__version__.split(".")
        return (int(parts[0]), int(parts[1])) >= (major, minor)
    except (ValueError, IndexError):
        return False


def set_fp32_math_mode(mode=FP32MathMode.FP32, device="cpu"):
    """IPEX's switch of fp32 math.  FP32: exact fp32 (``torch.set_float32_matmul_precision
    ("highest")``).  BF32: torch >= 2.1 computes fp32 matmuls in bf16 on CPU under
    ``set_float32_matmul_precision("medium")``; older torch (Debian's 1.13) has no such mode
    for oneDNN on CPU: a warning, math stays fp32.  TF32 is a GPU format: a warning on CPU.
    ``get_fp32_math_mode`` returns the mode asked for."""
    mode = FP32MathMode(mode)
    if mode == FP32MathMode.FP32:
        torch.set_float32_matmul_precision("highest")
    elif mode == FP32MathMode.BF32 and _torch_at_least(2, 1):
        torch.set_float32_matmul_precision("medium")
    elif mode == FP32MathMode.BF32:
        _warn("pinfer.set_fp32_math_mode: torch %s has no bf32 math for oneDNN on CPU "
              "(torch >= 2.1 has it); the math stays fp32" % torch.__version__)
    else:
        _warn("pinfer.set_fp32_math_mode: TF32 is a GPU math mode; on %s the math stays fp32"
              % device)
    _state["fp32_math_mode"] = mode


def get_fp32_math_mode(device="cpu"):
    """The mode last given to set_fp32_math_mode (FP32 before any)."""
    return _state["fp32_math_mode"] or FP32MathMode.FP32


def enable_auto_channels_last():
    """optimize converts the weights of models with 2-D convolutions to channels-last (the
    default)."""
    _state["auto_channels_last"] = True


def disable_auto_channels_last():
    """optimize leaves the weights' memory format as it is."""
    _state["auto_channels_last"] = False


def set_verbose(level):
    """oneDNN's verbose output (IPEX's verbose switch): 0 off, 1 each primitive's execution,
    2 also their creation; as ``ONEDNN_VERBOSE`` set before start-up, but switchable at run
    time.  True when oneDNN accepted the level."""
    setter = getattr(getattr(torch._C, "_verbose", None), "mkldnn_set_verbose", None)
    if setter is None:
        _warn("pinfer.set_verbose: this torch has no run-time oneDNN verbose switch; set "
              "ONEDNN_VERBOSE=%d in the environment before starting Python" % int(level))
        return False
    return bool(setter(int(level)))


class verbose(object):
    """IPEX's ``with ipex.verbose(level):``: oneDNN verbose for the block only."""

    def __init__(self, level):
        self.level = level

    def __enter__(self):
        if self.level:
            set_verbose(self.level)
        return self

    def __exit__(self, *exc):
        set_verbose(0)
        return False

"""INT8: IPEX's quantization API (``ipex.quantization``) on stock PyTorch's torch.ao.

``prepare(model, configure, example_inputs)``, calibration by running the
prepared model, ``convert(prepared)``, then ``torch.jit.trace`` +
``torch.jit.freeze`` + ``torch.jit.save`` as in IPEX's INT8 recipe; and
IPEX's configuration names ``default_static_qconfig``,
``default_dynamic_qconfig`` (and the ``..._mapping`` forms of IPEX 2.x).

How it is done (docs/python.md, "INT8: pinfer.quantization"):

- static configurations go through FX graph mode quantization
  (``torch.ao.quantization.quantize_fx``): symbolic tracing, Conv+BN(+ReLU)
  and Linear+ReLU fusion, observers, then quantized modules.  IPEX traces
  with TorchScript instead; FX is what stock PyTorch offers that needs no
  change to the model (eager mode would need QuantStub/DeQuantStub and
  FloatFunctional edits to the model's code).
- a model FX cannot trace (data-dependent control flow, ...) falls back to
  dynamic quantization of its Linear/LSTM/GRU layers, with a warning naming
  the reason: int8 weights where they matter most, the rest in fp32.
- dynamic configurations go through ``torch.ao.quantization.quantize_dynamic``
  (eager: no tracing needed; Linear, LSTM, GRU and their cells).
- the quantized engine is the best one this torch has: "x86", else
  "fbgemm", else "onednn", else "qnnpack" (Debian's torch 1.13 has no
  fbgemm: "onednn" there); prepare() and convert() set
  ``torch.backends.quantized.engine`` to it.
- layers torch.ao leaves in fp32 are named once, in one warning
  (:class:`Fp32LayersWarning`) at convert().

IPEX's retired 1.x names (``QuantConf``, ``calibrate``, ...) raise an
AttributeError that says how to write the same with prepare/convert.
"""
import copy
import warnings

try:
    import torch
    import torch.ao.quantization as _tq
    from torch.ao.quantization import QConfig, QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    from torch.ao.quantization.utils import activation_is_dynamically_quantized
except ImportError:  # pragma: no cover - pinfer's runtime part works without torch
    torch = None

__all__ = [
    "Fp32LayersWarning",
    "QuantizationFallbackWarning",
    "backend",
    "convert",
    "default_dynamic_qconfig",
    "default_dynamic_qconfig_mapping",
    "default_static_qconfig",
    "default_static_qconfig_mapping",
    "fp32_layers",
    "prepare",
]


class Fp32LayersWarning(UserWarning):
    """convert() left layers with weights in fp32 (torch.ao has no int8 form of them in
    this mode); the message names them."""


class QuantizationFallbackWarning(UserWarning):
    """prepare() could not use FX graph mode on a model (the message says why) and fell
    back to dynamic quantization of its Linear/LSTM/GRU layers."""


# The engines in order of preference: x86 (torch >= 2.0, fbgemm and onednn
# kernels chosen per op) is the best on x86 CPUs, then fbgemm, then onednn
# (what Debian's torch 1.13 has), qnnpack last (made for ARM).
_ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")

# Layer types quantize_dynamic quantizes: its own default set.
_DYNAMIC_TYPES = ()

# Where torch keeps quantized modules (torch 1.13 moved torch.nn.quantized to
# torch.ao.nn.quantized and keeps the old path as an alias; 2.x the same).
_QUANTIZED_PACKAGES = ("torch.ao.nn.quantized", "torch.nn.quantized",
                       "torch.ao.nn.intrinsic.quantized", "torch.nn.intrinsic.quantized",
                       "torch.ao.nn.quantized.dynamic", "torch.nn.quantized.dynamic",
                       "torch.ao.nn.intrinsic.quantized.dynamic")

# What prepare() records on the module it returns, for convert(): the mode
# ("fx" or "dynamic"), the configuration, and the fallback reason if any.
_STATE = "_pinfer_quantization"


def backend():
    """The quantized engine pinfer uses: the first of "x86", "fbgemm", "onednn",
    "qnnpack" that this torch supports."""
    _need_torch()
    supported = torch.backends.quantized.supported_engines
    for name in _ENGINES:
        if name in supported:
            return name
    raise RuntimeError("pinfer.quantization: this torch has no quantized engine "
                       "(torch.backends.quantized.supported_engines = %r)" % (supported,))


def _need_torch():
    if torch is None:
        raise ImportError("pinfer.quantization needs torch")


def _use_backend():
    """Make the chosen engine torch's current one: the observers' ranges
    (reduce_range for fbgemm/x86) and the packed weights are the engine's."""
    name = backend()
    if torch.backends.quantized.engine != name:
        torch.backends.quantized.engine = name
    return name


# IPEX's names (None without torch, or with a torch that has no quantized
# engine: prepare() then says why).
default_static_qconfig = default_static_qconfig_mapping = None
default_dynamic_qconfig = default_dynamic_qconfig_mapping = None
_ENGINE = None
if torch is not None and any(e in torch.backends.quantized.supported_engines for e in _ENGINES):
    _ENGINE = backend()
    # IPEX's names. Static: torch's default for the engine (HistogramObserver
    # activations in quint8, per-channel symmetric qint8 weights; IPEX's own is
    # the same with reduce_range=False, which is what onednn gets here, while
    # fbgemm/x86 need reduce_range=True against overflow in their kernels).
    default_static_qconfig = _tq.get_default_qconfig(_ENGINE)
    default_static_qconfig_mapping = None  # set below, once _static_mapping is defined
    # Dynamic: int8 per-channel weights, activations quantized on the fly (IPEX's too).
    default_dynamic_qconfig = _tq.per_channel_dynamic_qconfig
    default_dynamic_qconfig_mapping = QConfigMapping().set_global(default_dynamic_qconfig)
    _DYNAMIC_TYPES = (torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU, torch.nn.LSTMCell,
                      torch.nn.GRUCell, torch.nn.RNNCell)


# ---------------------------------------------------------------------------
# Configurations


def _qconfigs_of(mapping):
    """Every non-None QConfig a QConfigMapping holds."""
    out = [mapping.global_qconfig]
    out += list(mapping.object_type_qconfigs.values())
    out += list(mapping.module_name_regex_qconfigs.values())
    out += list(mapping.module_name_qconfigs.values())
    out += list(getattr(mapping, "module_name_object_type_order_qconfigs", {}).values())
    return [q for q in out if q is not None]


def _static_mapping(qconfig):
    """IPEX's "this QConfig everywhere" as a QConfigMapping.

    The engine's default mapping names Conv, Linear, ReLU, BatchNorm, ... with
    its own default qconfig, so setting only the global qconfig would not reach
    them: those entries get ``qconfig`` instead.  Its special entries stay
    (fixed ranges for sigmoid/softmax/tanh, the input's range for reshape)
    without which those ops would be observed wrongly; LayerNorm keeps float
    weights (its int8 form has them); ConvTranspose gets per-tensor weights,
    the only ones its int8 forms take."""
    from torch.ao.quantization.qconfig import qconfig_equals
    functional = torch.nn.functional
    transposed = (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d,
                  functional.conv_transpose1d, functional.conv_transpose2d,
                  functional.conv_transpose3d)
    layer_norm = (torch.nn.LayerNorm, functional.layer_norm)
    base = _tq.get_default_qconfig(_ENGINE)
    mapping = QConfigMapping().set_global(qconfig)
    for kind, entry in _tq.get_default_qconfig_mapping(_ENGINE).object_type_qconfigs.items():
        if kind in transposed:
            entry = QConfig(activation=qconfig.activation, weight=_tq.default_weight_observer)
        elif kind in layer_norm and entry is not None:
            entry = QConfig(activation=qconfig.activation, weight=entry.weight)
        elif entry is not None and qconfig_equals(entry, base):
            entry = qconfig
        mapping.set_object_type(kind, entry)
    return mapping


if _ENGINE is not None:
    default_static_qconfig_mapping = _static_mapping(default_static_qconfig)


def _as_mapping(configure):
    """(mapping, dynamic): a QConfigMapping for FX, and whether every qconfig in it is a
    dynamic one (then quantize_dynamic is used, which needs no tracing)."""
    if isinstance(configure, QConfigMapping):
        mapping = configure
    elif isinstance(configure, QConfig) or (isinstance(configure, tuple)
                                            and hasattr(configure, "activation")):
        if activation_is_dynamically_quantized(configure):
            mapping = QConfigMapping().set_global(configure)
        else:
            mapping = _static_mapping(configure)
    elif isinstance(configure, dict):
        mapping = QConfigMapping.from_dict(configure)  # the older qconfig_dict form
    else:
        raise TypeError("pinfer.quantization.prepare: configure must be a QConfig, a "
                        "QConfigMapping or a qconfig dict (e.g. "
                        "pinfer.quantization.default_static_qconfig), not %s"
                        % type(configure).__name__)
    qconfigs = _qconfigs_of(mapping)
    if not qconfigs:
        raise ValueError("pinfer.quantization.prepare: the configuration quantizes nothing "
                         "(every qconfig in it is None)")
    dynamic = all(activation_is_dynamically_quantized(q) for q in qconfigs)
    return mapping, dynamic


def _dynamic_spec(mapping):
    """quantize_dynamic's qconfig_spec from a dynamic QConfigMapping: the global
    qconfig for its default layer types, then types, then module names."""
    spec = {}
    if mapping.global_qconfig is not None:
        for t in _DYNAMIC_TYPES:
            spec[t] = mapping.global_qconfig
    for t, q in mapping.object_type_qconfigs.items():
        if isinstance(t, type) and q is not None:
            spec[t] = q
    for name, q in mapping.module_name_qconfigs.items():
        if q is not None:
            spec[name] = q
    return spec


def _fallback_spec():
    """The fallback's spec for a static configuration: dynamic per-channel int8 for the
    layer types quantize_dynamic handles (a static qconfig's observers do not apply)."""
    return {t: default_dynamic_qconfig for t in _DYNAMIC_TYPES}


def _example_tuple(example_inputs):
    if example_inputs is None:
        return ()
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    return (example_inputs,)


# ---------------------------------------------------------------------------
# prepare / convert


def prepare(model, configure, example_inputs=None, inplace=False, bn_folding=True,
            example_kwarg_inputs=None):
    """A model ready for calibration: run it on representative inputs, then convert().

    ``model`` must be in eval mode (``model.eval()``): this is post-training
    quantization for inference, as IPEX's is.  ``configure`` is a QConfig
    (``default_static_qconfig``, ``default_dynamic_qconfig`` or torch's own), a
    QConfigMapping, or an older qconfig dict.  ``example_inputs`` (a tensor or a
    tuple) and ``example_kwarg_inputs`` are IPEX's; FX traces symbolically and
    does not need them (``example_inputs`` is handed on to ``prepare_fx``, which
    takes it; ``example_kwarg_inputs`` is accepted and unused).
    ``inplace=False`` leaves ``model`` as it was (it is deep-copied first: FX
    swaps submodules of the model it is given); ``inplace=True`` saves that copy,
    and ``model`` may then be changed and should not be used afterwards.
    ``bn_folding``: BatchNorm after a Conv is always folded into it (FX fuses
    Conv+BN in eval mode; an int8 convolution has no separate BatchNorm), as it is
    by default in IPEX.

    Static configurations use FX graph mode quantization; a model FX cannot trace
    falls back to dynamic quantization of its Linear/LSTM/GRU layers with a
    QuantizationFallbackWarning saying why.  Dynamic configurations need no
    calibration (running the prepared model is harmless).
    """
    _need_torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError("pinfer.quantization.prepare: model must be a torch.nn.Module, "
                        "not %s" % type(model).__name__)
    if model.training:
        raise ValueError("pinfer.quantization.prepare: the model is in training mode; call "
                         "model.eval() first (this is post-training int8 quantization for "
                         "inference; quantization-aware training is not provided)")
    if not isinstance(inplace, bool):
        raise TypeError("pinfer.quantization.prepare: inplace must be a bool")
    del bn_folding, example_kwarg_inputs  # see the docstring: FX needs neither
    _use_backend()
    mapping, dynamic = _as_mapping(configure)
    work = model if inplace else copy.deepcopy(model)
    if dynamic:
        setattr(work, _STATE, {"mode": "dynamic", "spec": _dynamic_spec(mapping),
                               "reason": None})
        return work
    try:
        prepared = prepare_fx(work, mapping, _example_tuple(example_inputs))
    except Exception as error:  # noqa: BLE001 - any tracing failure: fall back, say why
        reason = "%s: %s" % (type(error).__name__, str(error).strip().splitlines()[0]
                             if str(error).strip() else "")
        warnings.warn("pinfer.quantization.prepare: FX graph mode cannot quantize %s "
                      "(%s); falling back to dynamic quantization of its Linear/LSTM/GRU "
                      "layers (no calibration needed; convolutions and the rest stay "
                      "fp32)" % (type(model).__name__, reason),
                      QuantizationFallbackWarning, stacklevel=2)
        if not inplace:
            work = copy.deepcopy(model)  # FX may have swapped parts before failing
        setattr(work, _STATE, {"mode": "dynamic", "spec": _fallback_spec(),
                               "reason": reason})
        return work
    setattr(prepared, _STATE, {"mode": "fx", "spec": None, "reason": None})
    return prepared


def convert(model, inplace=False, *legacy):
    """The int8 model of a model prepare() returned (and that ran on calibration data
    for a static configuration).

    ``inplace=False`` leaves the prepared model as it was (it can be calibrated
    further and converted again); ``inplace=True`` converts it without a copy,
    after which it should not be used.  The result runs as it is, and with
    ``torch.jit.trace`` + ``torch.jit.freeze`` + ``torch.jit.save``.  Layers with
    weights that stay in fp32 are named in one Fp32LayersWarning.
    """
    _need_torch()
    if legacy or not isinstance(inplace, bool):
        raise TypeError("pinfer.quantization.convert(model, inplace=False): IPEX 1.x's "
                        "convert(model, conf, example_input) with a QuantConf is retired; "
                        "use prepared = prepare(model, default_static_qconfig, "
                        "example_inputs=x), run prepared on calibration data, then "
                        "convert(prepared)")
    state = getattr(model, _STATE, None)
    if state is None and not _is_observed_fx(model):
        raise ValueError("pinfer.quantization.convert: the model was not prepared by "
                         "pinfer.quantization.prepare (or torch's prepare_fx)")
    _use_backend()
    work = model if inplace else copy.deepcopy(model)
    # (a deep copy of a GraphModule keeps only its graph and modules, not this)
    work.__dict__.pop(_STATE, None)
    if state is None or state["mode"] == "fx":
        out = convert_fx(work)
    else:
        out = _tq.quantize_dynamic(work, state["spec"], inplace=True)
    out.__dict__.pop(_STATE, None)
    _warn_fp32(out)
    return out


def _is_observed_fx(model):
    try:
        from torch.ao.quantization.fx.graph_module import ObservedGraphModule
    except ImportError:  # pragma: no cover - other torch versions
        return False
    return isinstance(model, ObservedGraphModule)


def fp32_layers(model):
    """[(name, type name)] of the modules of a converted model that still hold
    floating-point parameters of their own: the layers left in fp32.  Parameter-free
    modules (ReLU, pooling, Flatten, ...) are not listed: they have no weights to
    quantize and run on whatever they are given."""
    _need_torch()
    out = []
    for name, module in model.named_modules():
        if type(module).__module__.startswith(_QUANTIZED_PACKAGES):
            continue
        own = list(module.parameters(recurse=False))
        if any(p.is_floating_point() for p in own):
            out.append((name or "(top level)", type(module).__name__))
    return out


def _warn_fp32(model):
    left = fp32_layers(model)
    if left:
        shown = ", ".join("%s (%s)" % pair for pair in left[:20])
        if len(left) > 20:
            shown += ", ... (%d in all)" % len(left)
        warnings.warn("pinfer.quantization.convert: %d layer%s with weights stay%s fp32 "
                      "(torch.ao has no int8 form of %s here): %s"
                      % (len(left), "" if len(left) == 1 else "s", "s" if len(left) == 1 else "",
                         "it" if len(left) == 1 else "them", shown),
                      Fp32LayersWarning, stacklevel=3)


# ---------------------------------------------------------------------------
# IPEX 1.x's retired names


_RETIRED = ("QuantConf", "calibrate", "quantize", "default_qconfig_dict")


def __getattr__(name):
    """IPEX 1.x's names (QuantConf, calibrate, ...): a clear AttributeError."""
    if name in _RETIRED:
        raise AttributeError(
            "pinfer.quantization has no %r: IPEX 1.x's QuantConf/calibrate API is retired "
            "(as in IPEX itself). Use the current one: prepared = "
            "ipex.quantization.prepare(model.eval(), ipex.quantization.default_static_qconfig, "
            "example_inputs=x); run prepared(batch) on calibration data; model = "
            "ipex.quantization.convert(prepared); then torch.jit.trace + torch.jit.freeze "
            "(docs/python.md, \"INT8: pinfer.quantization\")" % name)
    raise AttributeError("module 'pinfer.quantization' has no attribute %r" % name)

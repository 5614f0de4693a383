"""pinfer: the runtime API of Intel Extension for PyTorch on stock PyTorch.

The names of ``intel_extension_for_pytorch.cpu.runtime`` (CPUPool, pin, Task,
MultiStreamModule, MultiStreamModuleHint, get_default_num_streams,
get_core_list_of_node_id, is_runtime_ext_enabled) over libpinfer, so that
code using IPEX's runtime API runs with ``import pinfer as ipex``:
``ipex.cpu.runtime.CPUPool`` keeps working, and ``pinfer.runtime`` is the
module itself.  IPEX's front end on stock PyTorch (``pinfer.frontend``):
``optimize`` (Conv+BN folding, channels-last weights, bf16 on CPUs with
AVX512_BF16/AMX, trace and freeze with ``sample_input``; ``(model, optimizer)``
for training) and the switches ``enable_onednn_fusion``, ``set_fp32_math_mode``/
``get_fp32_math_mode`` with ``FP32MathMode``, ``enable_auto_channels_last``/
``disable_auto_channels_last``, ``set_verbose`` and ``verbose``; and
``quantization`` (``ipex.quantization``: ``prepare``, ``convert``, the default
qconfigs, on torch.ao), imported on first use.
Also ``topology()`` and ``plan()``: the machine and the launcher's planner
for Python tools; and ``python -m pinfer ARGS...`` runs the ``pinfer`` tool.
See docs/python.md.
"""
import os


def _find_build_tree():
    """Let the build tree's extension be found: `make python` puts it in
    build/python/pinfer/ rather than next to these sources, so that
    `PYTHONPATH=python` works from the repository without build products in
    the source tree.  An installed package has the extension beside it and
    no such directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    built = os.path.join(os.path.dirname(os.path.dirname(here)), "build", "python", "pinfer")
    if os.path.isdir(built) and built not in __path__:
        __path__.append(built)


_find_build_tree()

try:
    from . import _pinfer  # noqa: E402  (loads libpinfer: the start-up CPU mask is read now)
except ImportError as error:  # pragma: no cover - a source tree without `make python`
    raise ImportError(
        "pinfer's extension is not built: run `make python` at the repository root "
        "(or install the package with pip); %s" % error) from error

from . import runtime  # noqa: E402
from . import cpu  # noqa: E402,F401  (pinfer.cpu.runtime, IPEX's spelling)
from .runtime import *  # noqa: E402,F401,F403  (the names of runtime.__all__)
from . import frontend  # noqa: E402
from .frontend import *  # noqa: E402,F401,F403  (the names of frontend.__all__)

__version__ = _pinfer.VERSION

__all__ = runtime.__all__ + ["runtime"] + frontend.__all__ + ["frontend", "quantization"]


def __getattr__(name):
    """``ipex.quantization`` without an explicit import, as IPEX's package has it: the
    submodule is imported on first use (it imports torch.ao.quantization, which most scripts
    never need)."""
    if name == "quantization":
        import importlib
        try:
            return importlib.import_module(__name__ + ".quantization")
        except ModuleNotFoundError as error:
            if error.name != __name__ + ".quantization":
                raise
    raise AttributeError("module %r has no attribute %r" % (__name__, name))

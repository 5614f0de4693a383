"""IPEX's spelling: ``ipex.cpu.runtime`` is ``pinfer.cpu.runtime``, the same
module as ``pinfer.runtime``, so that ``import pinfer as ipex`` is the only
change code using IPEX's runtime API needs (IPEX's front end, such as
``ipex.optimize``, is not part of pinfer)."""
import sys

from .. import runtime

# `import pinfer.cpu.runtime` (and `from pinfer.cpu.runtime import ...`) find it too.
sys.modules[__name__ + ".runtime"] = runtime

__all__ = ["runtime"]

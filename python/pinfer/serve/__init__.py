"""pinfer.serve: the worker side of ``pinfer serve``.

A worker (``python -m pinfer.serve.worker``) loads one model (a TorchScript file, a
TorchServe model archive or its unpacked folder) and serves the front end's batches over
the worker protocol (docs/worker-protocol.md).  Handlers written for TorchServe's
contract run unchanged when they do not import TorchServe's own package; this package
offers the same base class, ``pinfer.serve.BaseHandler``, and ``PredictionException``.
See docs/python.md, "The serving worker".
"""
from .handlers import BaseHandler, Context, ImageClassifier  # noqa: F401


class PredictionException(Exception):
    """TorchServe's PredictionException: raised by a handler, its ``error_code`` (a 4xx or
    5xx) and ``message`` are the status and error of every request of the batch."""

    def __init__(self, message, error_code=500):
        self.message = message
        self.error_code = error_code
        super().__init__(message)

    def __str__(self):
        return "%s : %s" % (self.message, self.error_code)


__all__ = ["BaseHandler", "Context", "ImageClassifier", "PredictionException"]

"""Handlers: what a worker does with a batch of requests.

- ``image_classifier`` (built in): JPEG/PNG bytes -> RGB, resize 256, centre crop 224,
  ImageNet normalisation, one forward pass for the batch, softmax, top 5 as
  ``{"label": probability}`` (labels from index_to_name.json, else the class index), as
  TorchServe's image_classifier answers.
- ``tensor`` (built in; the default for TorchScript files, and for ``/v2`` requests to any
  model whose handler has a ``model``): tensors in, tensors out, in the KServe v2 format,
  KServe v1 ``instances``, or plain JSON for ``/predictions`` (pinfer.serve.tensors).
- custom handler files written for TorchServe's contract: a module-level
  ``handle(data, context)``, or one class with ``handle(data, context)`` (and
  ``initialize(context)``; ``BaseHandler`` here offers TorchServe's BaseHandler surface:
  ``preprocess``/``inference``/``postprocess``, ``self.model``, ``self.manifest``...).

A Service runs one protocol BATCH: it gets Requests and returns one Response each, in
order.  A request that is wrong gets 400 and the others still run; a model or handler
that raises gets 5xx for the requests it was running; the worker keeps serving.
"""
import base64
import binascii
import io
import json
import os
import re
import sys
import time

import torch

from . import models
from . import tensors
from .models import ModelError
from .tensors import TensorError, OutputError

BUILTIN = ("image_classifier", "tensor")
# TorchServe's own built-in handlers that pinfer does not provide.
TORCHSERVE_BUILTIN = ("base_handler", "vision_handler", "image_segmenter", "object_detector",
                      "text_classifier", "text_handler", "densenet_handler",
                      "language_translator", "dali_image_classifier")

JSON_TYPE = "application/json"


# ---------------------------------------------------------------------------
# Requests and responses


class Request(object):
    """One request of a BATCH: ``id``, ``api`` ("predictions", "v2", "v1"), ``content_type``,
    ``headers`` (a dict), ``body`` (bytes), ``name`` (the multipart field name, or None)."""

    __slots__ = ("id", "api", "content_type", "headers", "body", "name")

    def __init__(self, id, api="predictions", content_type="", headers=None, body=b"",
                 name=None):
        self.id, self.api, self.content_type = id, api, content_type or ""
        self.headers, self.body, self.name = headers or {}, body, name


class Response(object):
    """One answer: ``status``, and either ``body`` (bytes) with ``content_type`` and extra
    ``headers``, or ``error`` (a message; status 4xx/5xx)."""

    __slots__ = ("id", "status", "body", "content_type", "headers", "error")

    def __init__(self, id, status=200, body=b"", content_type=JSON_TYPE, headers=None,
                 error=None):
        self.id, self.status, self.body = id, status, body
        self.content_type, self.headers, self.error = content_type, headers or {}, error


def error_response(request, status, message):
    return Response(request.id, status=status, error=str(message))


def _json_default(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    raise TypeError("%s is not JSON serializable" % type(value).__name__)


def json_bytes(value):
    return json.dumps(value, default=_json_default).encode("utf-8")


def json_response(request, value):
    return Response(request.id, body=json_bytes(value))


def _one_line(error):
    """An exception in one line: its type and the line of its message that says what went
    wrong (TorchScript's errors begin with a traceback and end with the reason)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(lines) > 1 and "TorchScript interpreter" in text:
        text = lines[-1]
        if re.match(r"^[A-Za-z_.]*(Error|Exception): ", text):
            return text
    return "%s: %s" % (type(error).__name__, text) if text else type(error).__name__


def failure_status(error):
    """The status of an exception raised by a handler or a model: its ``error_code``
    (TorchServe's PredictionException) when that is a 4xx/5xx, 507 for MemoryError, else
    500."""
    code = getattr(error, "error_code", None)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    if isinstance(error, MemoryError):
        return 507
    return 500


def failure_message(error):
    message = getattr(error, "message", None)
    return message if isinstance(message, str) and message else _one_line(error)


# ---------------------------------------------------------------------------
# TorchServe's context


class _Metric(object):
    def add_or_update(self, *args, **kwargs):
        pass

    update = add_or_update


class Metrics(object):
    """The metrics object handlers find at ``context.metrics``: accepts TorchServe's calls
    and records nothing (pinfer serve's metrics are the front end's)."""

    def _ignore(self, *args, **kwargs):
        return _Metric()

    add_time = add_size = add_percent = add_counter = add_error = add_metric = _ignore
    get_metric = add_metric_to_cache = _ignore


class RequestProcessor(object):
    """The headers and response status of one row of the batch (TorchServe's)."""

    def __init__(self, request_header):
        self._status_code = 200
        self._reason_phrase = None
        self._response_header = {}
        self._request_header = request_header

    def get_request_property(self, key):
        value = self._request_header.get(key)
        return value if value is not None else tensors.header(self._request_header, key)

    def report_status(self, code, reason_phrase=None):
        self._status_code = code
        self._reason_phrase = reason_phrase

    def get_response_status_code(self):
        return self._status_code

    def get_response_status_phrase(self):
        return self._reason_phrase

    def add_response_property(self, key, value):
        self._response_header[key] = value

    def get_response_headers(self):
        return self._response_header

    def get_response_header(self, key):
        return self._response_header.get(key)

    def get_request_properties(self):
        return self._request_header


class Context(object):
    """TorchServe's Context: ``model_name``, ``manifest``, ``system_properties``
    (``model_dir``, ``gpu_id`` None, ``batch_size``, ``server_name``, ``server_version``,
    ``limit_max_image_pixels``), ``metrics``, ``model_yaml_config``, and per row of the
    batch ``get_request_id``, ``get_request_header``, ``get_all_request_header``,
    ``set_response_content_type``, ``set_response_status``, ``set_response_header``."""

    def __init__(self, model_name, model_dir, manifest, batch_size, version="", cpus=None,
                 ipex_enable=False):
        from pinfer import __version__
        self.model_name = model_name
        self.manifest = manifest
        self._system_properties = {
            "model_dir": model_dir,
            "gpu_id": None,
            "batch_size": batch_size,
            "server_name": "pinfer",
            "server_version": __version__,
            "limit_max_image_pixels": True,
            "ipex_enable": bool(ipex_enable),
        }
        self.model_version = version
        self.request_ids = None
        self._request_processor = None
        self.metrics = Metrics()
        self.cl_socket = None
        self.model_yaml_config = _yaml_config(model_dir, manifest)

    @property
    def system_properties(self):
        return self._system_properties

    @property
    def request_processor(self):
        return self._request_processor

    @request_processor.setter
    def request_processor(self, value):
        self._request_processor = value

    def get_request_id(self, idx=0):
        if self.request_ids is None:
            return None
        return self.request_ids.get(idx)

    def get_request_header(self, idx, key):
        return self._request_processor[idx].get_request_property(key)

    def get_all_request_header(self, idx):
        return self._request_processor[idx].get_request_properties()

    def set_response_content_type(self, idx, value):
        self.set_response_header(idx, "content-type", value)

    def get_response_content_type(self, idx):
        return self.get_response_headers(idx).get("content-type")

    def get_response_status(self, idx):
        processor = self._request_processor[idx]
        return processor.get_response_status_code(), processor.get_response_status_phrase()

    def set_response_status(self, code=200, phrase="", idx=0):
        if self._request_processor is not None and self._request_processor[idx] is not None:
            self._request_processor[idx].report_status(code, reason_phrase=phrase)

    def set_all_response_status(self, code=200, phrase=""):
        for processor in self._request_processor or ():
            processor.report_status(code, reason_phrase=phrase)

    def get_response_headers(self, idx):
        return self._request_processor[idx].get_response_headers()

    def set_response_header(self, idx, key, value):
        self._request_processor[idx].add_response_property(key, value)


def _yaml_config(model_dir, manifest):
    """The manifest's configFile (a YAML file in the archive) as TorchServe reads it, or {}."""
    name = ((manifest or {}).get("model") or {}).get("configFile")
    if not name or not model_dir:
        return {}
    try:
        import yaml
        with open(models._inside(model_dir, name, "configFile")) as f:
            return yaml.safe_load(f) or {}
    except ImportError:
        return {}
    except (OSError, ValueError, ModelError) as error:
        raise ModelError("configFile %s: %s" % (name, error)) from None


# ---------------------------------------------------------------------------
# TorchServe's BaseHandler


def _optimize(model):
    """What ipex_enable asks: pinfer.optimize when the package has it, else IPEX's own, else
    the model as it is (a warning on stderr).  pinfer.optimize takes the eager models of
    modelFile archives (eval mode: Conv+BN folded, channels-last weights) and TorchScript
    files (frozen: the graph's fusions); when it fails the model is served as it is, with the
    reason on stderr, rather than the worker failing."""
    import pinfer
    optimize = getattr(pinfer, "optimize", None)
    if optimize is None:
        try:
            import intel_extension_for_pytorch as ipex
            optimize = ipex.optimize
        except ImportError:
            sys.stderr.write("pinfer-worker: warning: ipex_enable: neither pinfer.optimize nor "
                             "intel_extension_for_pytorch is available; the model runs as "
                             "it is\n")
            return model
    try:
        optimized = optimize(model)
    except Exception as error:  # noqa: BLE001 - an optimisation; the model still serves
        sys.stderr.write("pinfer-worker: warning: ipex_enable: optimize failed (%s); the model "
                         "runs as it is\n" % _one_line(error))
        return model
    sys.stderr.write("pinfer-worker: ipex_enable: %s.optimize applied to the %s model\n"
                     % (getattr(optimize, "__module__", "pinfer").split(".")[0],
                        "TorchScript" if isinstance(model, torch.jit.ScriptModule)
                        else "eager"))
    return optimized


class BaseHandler(object):
    """TorchServe's BaseHandler contract, on pinfer: ``initialize(context)`` loads the
    model the manifest names (an eager ``modelFile`` class with the ``serializedFile``
    state dict, else the TorchScript ``serializedFile``) on the CPU in eval mode, and
    index_to_name.json into ``self.mapping``; ``handle(data, context)`` is
    ``postprocess(inference(preprocess(data)))``.  Attributes as TorchServe's: ``model``,
    ``mapping``, ``device`` (cpu), ``initialized``, ``context``, ``manifest``,
    ``model_pt_path``, ``map_location``.  Subclass it and override the three steps."""

    def __init__(self):
        self.model = None
        self.mapping = None
        self.device = None
        self.initialized = False
        self.context = None
        self.model_pt_path = None
        self.manifest = None
        self.map_location = None
        self.explain = False
        self.target = 0

    def initialize(self, context):
        properties = context.system_properties
        self.context = context
        self.map_location = "cpu"
        self.device = torch.device("cpu")
        self.manifest = context.manifest
        model_dir = properties.get("model_dir")
        entry = (self.manifest or {}).get("model", {})
        self.model_pt_path = None
        if entry.get("serializedFile"):
            self.model_pt_path = models._inside(model_dir, entry["serializedFile"],
                                                "serializedFile")
        model_file = entry.get("modelFile")
        if model_file:
            self.model = self._load_pickled_model(model_dir, model_file, self.model_pt_path)
            self.model.to(self.device)
            self.model.eval()
        elif self.model_pt_path:
            self.model = self._load_torchscript_model(self.model_pt_path)
            self.model.eval()
        else:
            raise RuntimeError("No model weights could be loaded")
        if properties.get("ipex_enable"):
            self.model = _optimize(self.model)
        self.mapping = models.load_label_mapping(os.path.join(model_dir, "index_to_name.json"))
        self.initialized = True

    def _load_torchscript_model(self, model_pt_path):
        return torch.jit.load(model_pt_path, map_location=self.device)

    def _load_pickled_model(self, model_dir, model_file, model_pt_path):
        path = models._inside(model_dir, model_file, "modelFile")
        if not os.path.isfile(path):
            raise RuntimeError("Missing the model.py file")
        return models.load_eager(path, model_pt_path)

    def preprocess(self, data):
        return torch.as_tensor(data, device=self.device)

    def inference(self, data, *args, **kwargs):
        with torch.inference_mode():
            return self.model(data.to(self.device), *args, **kwargs)

    def postprocess(self, data):
        return data.tolist()

    def handle(self, data, context):
        self.context = context
        start = time.time()
        output = self.postprocess(self.inference(self.preprocess(data)))
        context.metrics.add_time("HandlerTime", round((time.time() - start) * 1000, 2), None,
                                 "ms")
        return output

    def get_device(self):
        return self.device


class ImageClassifier(BaseHandler):
    """TorchServe's image_classifier: images -> top-5 {label: probability} per image."""

    topk = 5

    def __init__(self):
        super().__init__()
        from torchvision import transforms
        self.image_processing = transforms.Compose([
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ])

    def set_max_result_classes(self, topk):
        self.topk = topk

    def get_max_result_classes(self):
        return self.topk

    def decode(self, image):
        """One image (bytes, base64 text, or a list of floats already processed) as the
        model's input tensor; TensorError when it cannot be decoded."""
        if isinstance(image, str):
            try:
                image = base64.b64decode(image)  # as TorchServe: not validated, PIL judges
            except (binascii.Error, ValueError):
                raise TensorError("the image is neither image bytes nor base64") from None
        if isinstance(image, (bytes, bytearray, memoryview)):
            from PIL import Image
            try:
                with Image.open(io.BytesIO(bytes(image))) as img:
                    img.load()
                    rgb = img.convert("RGB")
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
                raise TensorError("undecodable image: %s" % _one_line(error)) from None
            return self.image_processing(rgb)
        if isinstance(image, list):
            try:
                return torch.tensor(image, dtype=torch.float32)
            except (TypeError, ValueError) as error:
                raise TensorError("the image list is not a tensor: %s" % error) from None
        raise TensorError("no image in the request")

    def preprocess(self, data):
        return torch.stack([self.decode(row.get("data") or row.get("body")) for row in data])

    def postprocess(self, data):
        probabilities = torch.nn.functional.softmax(data, dim=1)
        k = min(self.topk, probabilities.shape[1])
        probs, classes = torch.topk(probabilities, k, dim=1)
        return map_class_to_label(probs.tolist(), self.mapping, classes.tolist())


def map_class_to_label(probs, mapping=None, lbl_classes=None):
    """[{label: probability}] per row, as TorchServe's: the mapping's label, else the index
    as a string."""
    if lbl_classes is None:
        lbl_classes = [list(range(len(row))) for row in probs]
    return [{(mapping[str(c)] if mapping is not None and str(c) in mapping else str(c)): p
             for c, p in zip(classes, row)} for classes, row in zip(lbl_classes, probs)]


# ---------------------------------------------------------------------------
# Services


class TensorService(object):
    """The tensor handler over a model (any callable taking and returning tensors)."""

    platform = "pytorch"

    def __init__(self, model, name, version):
        self.model, self.name, self.version = model, name, version
        self.arg_names = _argument_names(model)
        if isinstance(model, (torch.jit.ScriptModule, torch.jit.ScriptFunction)):
            self.platform = "pytorch_torchscript"

    def run(self, requests):
        responses = [None] * len(requests)
        decoded = {}
        for i, request in enumerate(requests):
            try:
                decoded[i] = self._decode(request)
            except TensorError as error:
                responses[i] = error_response(request, 400, error)
        groups = {}
        for i, (inputs, _) in decoded.items():
            groups.setdefault(_signature(inputs, i), []).append(i)
        for members in groups.values():
            for i, result in self._run_group([decoded[i][0] for i in members], members):
                request = requests[i]
                if isinstance(result, BaseException):
                    responses[i] = error_response(request, failure_status(result),
                                                  "the model failed: %s" % failure_message(result))
                    continue
                try:
                    responses[i] = self._encode(request, decoded[i][1], result)
                except TensorError as error:
                    responses[i] = error_response(request, 400, error)
                except (OutputError, TypeError, ValueError) as error:
                    responses[i] = error_response(request, 500, error)
        return responses

    def _decode(self, request):
        """(inputs, the v2 request or None) of one request."""
        v2 = None
        if request.api == "v2":
            v2 = tensors.parse_v2(request.body, request.headers)
            inputs = v2.inputs
        elif request.api == "v1":
            inputs = tensors.parse_v1(request.body)
        elif request.api == "predictions":
            inputs = tensors.parse_plain(request.body)
        else:
            raise TensorError("unknown api %r" % (request.api,))
        for t in inputs:
            if t.datatype == "BYTES":
                raise TensorError("input %r: a BYTES tensor cannot be given to the model "
                                  "(the tensor handler takes numbers)" % t.name)
        return inputs, v2

    def forward(self, inputs):
        values = [t.value for t in inputs]
        names = [t.name for t in inputs]
        with torch.inference_mode():
            if self.arg_names and all(n in self.arg_names for n in names):
                return self.model(**dict(zip(names, values)))
            return self.model(*values)

    def _run_group(self, batches, members):
        """[(index, result or exception)] for requests whose inputs stack: one forward pass
        over their concatenation, split back by their sizes; when the outputs do not split
        that way, or the pass fails, each request runs alone (a failure is then its own)."""
        if len(members) > 1:
            sizes = [b[0].value.shape[0] for b in batches]
            try:
                joined = [tensors.Tensor(t.name, t.datatype, None,
                                         torch.cat([b[k].value for b in batches]))
                          for k, t in enumerate(batches[0])]
                parts = _split_result(self.forward(joined), sizes)
            except Exception:  # noqa: BLE001 - retried one by one, which names the culprit
                parts = None
            if parts is not None:
                return list(zip(members, parts))
        out = []
        for i, inputs in zip(members, batches):
            try:
                out.append((i, self.forward(inputs)))
            except Exception as error:  # noqa: BLE001 - a model failure is this request's
                out.append((i, error))
        return out

    def _encode(self, request, v2, result):
        if request.api == "v2":
            body, content_type, headers = tensors.encode_v2(
                self.name, self.version, v2, v2.id if v2.id is not None else request.id,
                tensors.name_outputs(result))
            return Response(request.id, body=body, content_type=content_type, headers=headers)
        if request.api == "v1":
            named = tensors.name_outputs(result)
            count = _batch_of(named)
            if count is None:
                raise OutputError("the outputs have no common first dimension to make one "
                                  "prediction per instance")
            if len(named) == 1:
                predictions = [tensors.plain(_item(named[0][1], n)) for n in range(count)]
            else:
                predictions = [{name: tensors.plain(_item(v, n)) for name, v in named}
                               for n in range(count)]
            return json_response(request, {"predictions": predictions})
        return json_response(request, _plain_result(result))


def _argument_names(model):
    """The names of the model's forward arguments (v2 inputs named so are passed by name)."""
    try:
        if isinstance(model, torch.jit.ScriptModule):
            return [a.name for a in model.forward.schema.arguments[1:]]
        if isinstance(model, torch.jit.ScriptFunction):
            return [a.name for a in model.schema.arguments]
        import inspect
        forward = model.forward if isinstance(model, torch.nn.Module) else model
        return [p for p in inspect.signature(forward).parameters]
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return []


def _signature(inputs, index):
    """Requests with the same signature stack: the same input names and types, and the same
    shapes after the first dimension; a 0-d input stacks with nothing."""
    if any(t.value.dim() == 0 for t in inputs):
        return ("alone", index)
    return tuple((t.name, t.value.dtype, tuple(t.value.shape[1:])) for t in inputs)


def _split_result(result, sizes):
    """The result of a joined pass cut back into one result per request (same structure),
    or None when some output does not have the joined batch as its first dimension."""
    total = sum(sizes)

    def cut(value):
        if isinstance(value, torch.Tensor):
            if value.dim() == 0 or value.shape[0] != total:
                return None
            return list(torch.split(value, sizes))
        if isinstance(value, (list, tuple)) and value and \
                all(isinstance(s, (str, bytes)) for s in value):
            if len(value) != total:
                return None
            out, start = [], 0
            for size in sizes:
                out.append(list(value[start:start + size]))
                start += size
            return out
        if isinstance(value, dict):
            parts = {k: cut(v) for k, v in value.items()}
            if any(p is None for p in parts.values()):
                return None
            return [type(value)((k, parts[k][n]) for k in value) for n in range(len(sizes))]
        if isinstance(value, (list, tuple)):
            parts = [cut(v) for v in value]
            if any(p is None for p in parts):
                return None
            return [type(value)(p[n] for p in parts) if not hasattr(value, "_fields")
                    else type(value)(*(p[n] for p in parts)) for n in range(len(sizes))]
        return None

    return cut(result)


def _batch_of(named):
    counts = {len(v) if isinstance(v, list) else (v.shape[0] if v.dim() else None)
              for _, v in named}
    return counts.pop() if len(counts) == 1 and None not in counts else None


def _item(value, n):
    return [value[n]] if isinstance(value, list) else value[n]


def _plain_result(result):
    """A model's return value as plain JSON for /predictions, its structure kept."""
    if isinstance(result, torch.Tensor):
        return tensors.plain(result)
    if isinstance(result, dict):
        return {str(k): _plain_result(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return [_plain_result(v) for v in result]
    if isinstance(result, (bytes, bytearray)):
        return tensors._text(bytes(result))
    if result is None or isinstance(result, (bool, int, float, str)):
        return result
    raise OutputError("the model returned %s; the tensor handler needs tensors"
                      % type(result).__name__)


def _row_value(request, decode):
    """A request body as TorchServe hands it to handlers: parsed JSON for application/json,
    text for text/*, else bytes (when decoding is off, always bytes)."""
    body = bytes(request.body)
    if decode:
        content_type = request.content_type.split(";")[0].strip().lower()
        try:
            if content_type == JSON_TYPE:
                return json.loads(body.decode("utf-8"))
            if content_type.startswith("text"):
                return body.decode("utf-8")
        except (UnicodeDecodeError, ValueError, RecursionError):
            pass
    return body


def _instances(request):
    value = tensors._json(request.body, "the request")
    if not isinstance(value, dict) or not isinstance(value.get("instances"), list) or \
            not value["instances"]:
        raise TensorError("a v1 request is an object with \"instances\": a non-empty list")
    return value["instances"]


class ImageClassifierService(object):
    """The built-in image_classifier: every image of the batch in one forward pass."""

    platform = "pytorch"

    def __init__(self, handler, context, name, version):
        self.handler, self.context = handler, context
        self.tensor = TensorService(handler.model, name, version)
        self.platform = self.tensor.platform

    def _images(self, request):
        """The images of one request: one for /predictions, one per instance for v1."""
        if request.api == "predictions":
            value = _row_value(request, True)
            if isinstance(value, dict):
                value = value.get("data") or value.get("body") or value.get("b64")
            return [value]
        images = []
        for n, instance in enumerate(_instances(request)):
            if isinstance(instance, dict):
                inner = instance.get("image_bytes")
                instance = inner.get("b64") if isinstance(inner, dict) else \
                    instance.get("data") or instance.get("b64") or instance.get("body")
            if not isinstance(instance, (str, list)):
                raise TensorError("instances[%d]: no base64 image" % n)
            images.append(instance)
        return images

    def run(self, requests):
        responses = [None] * len(requests)
        v2 = [i for i, r in enumerate(requests) if r.api == "v2"]
        for i, response in zip(v2, self.tensor.run([requests[i] for i in v2])):
            responses[i] = response
        groups = {}  # image shape -> {request index: its images}
        for i, request in enumerate(requests):
            if request.api == "v2":
                continue
            if request.api not in ("predictions", "v1"):
                responses[i] = error_response(request, 400, "unknown api %r" % (request.api,))
                continue
            try:
                decoded = [self.handler.decode(image) for image in self._images(request)]
                shapes = {tuple(t.shape) for t in decoded}
                if len(shapes) != 1 or len(next(iter(shapes))) != 3:
                    raise TensorError("the images of a request must be of one shape, "
                                      "channels x height x width")
            except TensorError as error:
                responses[i] = error_response(request, 400, error)
                continue
            groups.setdefault(shapes.pop(), {})[i] = decoded
        for members in groups.values():  # one forward pass per image shape (usually one)
            self._classify(requests, members, responses)
        return responses

    def _classify(self, requests, members, responses):
        images = [t for decoded in members.values() for t in decoded]
        try:
            results = self.handler.postprocess(self.handler.inference(torch.stack(images)))
            if len(results) != len(images):
                raise OutputError("postprocess returned %d results for %d images"
                                  % (len(results), len(images)))
        except Exception as error:  # noqa: BLE001 - the model's failure, for these requests
            for i in members:
                responses[i] = error_response(requests[i], failure_status(error),
                                              "the model failed: %s" % failure_message(error))
            return
        start = 0
        for i, decoded in members.items():
            request, mine = requests[i], results[start:start + len(decoded)]
            start += len(decoded)
            if request.api == "predictions":
                responses[i] = json_response(request, mine[0])
            else:
                responses[i] = json_response(request, {"predictions": mine})


class CustomService(object):
    """A handler written for TorchServe: its entry point gets the whole batch as rows."""

    platform = "torchserve_handler"

    def __init__(self, entry, context, handler, name, version, decode=True):
        self.entry, self.context, self.handler = entry, context, handler
        self.decode = decode
        model = getattr(handler, "model", None)
        self.tensor = TensorService(model, name, version) \
            if isinstance(model, torch.nn.Module) else None

    def run(self, requests):
        responses = [None] * len(requests)
        if self.tensor is not None:
            v2 = [i for i, r in enumerate(requests) if r.api == "v2"]
            for i, response in zip(v2, self.tensor.run([requests[i] for i in v2])):
                responses[i] = response
        rows, headers, owners = [], [], []
        for i, request in enumerate(requests):
            if responses[i] is not None:
                continue
            if request.api == "v1":
                try:
                    values = _instances(request)
                except TensorError as error:
                    responses[i] = error_response(request, 400, error)
                    continue
            elif request.api in ("predictions", "v2"):
                values = [_row_value(request, self.decode)]
            else:
                responses[i] = error_response(request, 400, "unknown api %r" % (request.api,))
                continue
            for value in values:
                row = {"data": value, "body": value}
                if request.name:
                    row[request.name] = value
                rows.append(row)
                head = dict(request.headers)
                if request.content_type:
                    head.setdefault("Content-Type", request.content_type)
                headers.append(RequestProcessor(head))
                owners.append(i)
        if not rows:
            return responses
        context = self.context
        context.request_ids = {n: requests[i].id for n, i in enumerate(owners)}
        context.request_processor = headers
        try:
            results = self.entry(rows, context)
            if not isinstance(results, list):
                raise OutputError("the handler returned %s, not a list"
                                  % type(results).__name__)
            if len(results) != len(rows):
                raise OutputError("the handler returned %d results for a batch of %d"
                                  % (len(results), len(rows)))
        except Exception as error:  # noqa: BLE001 - the handler's failure, for these requests
            status = failure_status(error)
            for i in sorted(set(owners)):
                responses[i] = error_response(requests[i], status, "the handler failed: %s"
                                              % failure_message(error))
            return responses
        for i in sorted(set(owners)):
            request = requests[i]
            mine = [n for n, owner in enumerate(owners) if owner == i]
            try:
                if request.api == "v1":
                    responses[i] = json_response(request,
                                                 {"predictions": [results[n] for n in mine]})
                else:
                    responses[i] = self._encode_row(request, mine[0], results[mine[0]])
            except (TypeError, ValueError) as error:
                responses[i] = error_response(request, 500, "the handler's result cannot be "
                                              "sent: %s" % error)
        return responses

    def _encode_row(self, request, n, value):
        code, phrase = self.context.get_response_status(n)
        content_type = self.context.get_response_content_type(n)
        extra = {k: v for k, v in self.context.get_response_headers(n).items()
                 if k.lower() != "content-type"}
        if isinstance(code, int) and code >= 400:
            message = phrase or (value if isinstance(value, str) else
                                 json.dumps(value, default=_json_default))
            return Response(request.id, status=code, error=message)
        if isinstance(value, (bytes, bytearray, memoryview)):
            body, default_type = bytes(value), "application/octet-stream"
        elif isinstance(value, str):
            body, default_type = value.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            body, default_type = json_bytes(value), JSON_TYPE
        return Response(request.id, status=code if isinstance(code, int) else 200, body=body,
                        content_type=content_type or default_type, headers=extra)


# ---------------------------------------------------------------------------
# Loading a handler


def _handler_file(spec, module_name):
    """The handler file a handler string names, or None when it names no file: a
    ``.py`` name, or a module whose ``<name>.py`` is in the model's folder.  Inside the
    model's folder, except an absolute path the configuration itself gives."""
    candidates = [module_name] if module_name.endswith(".py") else [module_name + ".py"]
    for name in candidates:
        if os.path.isabs(name):
            if (spec.config.get("handler") or "").split(":", 1)[0] in (name, name[:-3]):
                return name if os.path.isfile(name) else None
            raise ModelError("handler %s: an absolute path in the manifest" % name)
        path = models._inside(spec.model_dir, name, "handler")
        if os.path.isfile(path):
            return path
    if module_name.endswith(".py"):
        raise ModelError("handler %s: no such file in the model's folder" % module_name)
    return None


def load_service(spec):
    """The Service for a ModelSpec: built-in or custom handler, its model loaded."""
    handler = spec.handler
    if not isinstance(handler, str) or not handler:
        raise ModelError("handler: %r is not a handler name" % (handler,))
    module_name, _, function_name = handler.partition(":")
    context = Context(spec.name, spec.model_dir, spec.manifest, spec.batch_size,
                      version=spec.version, ipex_enable=spec.ipex_enable)
    path = _handler_file(spec, module_name)
    if path is None:
        if module_name == "tensor":
            model = models.load_model(spec)
            if spec.ipex_enable:
                model = _optimize(model)
            return TensorService(model, spec.name, spec.version), context
        if module_name == "image_classifier":
            instance = ImageClassifier()
            instance.initialize(context)
            return ImageClassifierService(instance, context, spec.name, spec.version), context
        if module_name in TORCHSERVE_BUILTIN:
            raise ModelError("handler %s: TorchServe's built-in handler, which pinfer does "
                             "not provide (built in: %s); give a handler file"
                             % (module_name, ", ".join(BUILTIN)))
        raise ModelError("handler %s: neither a handler file in the model's folder nor a "
                         "built-in handler (%s)" % (module_name, ", ".join(BUILTIN)))
    if spec.model_dir not in sys.path:
        sys.path.insert(0, spec.model_dir)
    module = models.import_file(path)
    if function_name:
        entry = getattr(module, function_name, None)
        if not callable(entry):
            raise ModelError("handler %s: no function %s" % (os.path.basename(path),
                                                           function_name))
        instance = None
        entry(None, context)
    elif callable(getattr(module, "handle", None)):
        entry, instance = module.handle, None
        entry(None, context)
    else:
        found = [c for c in models.classes_of(module) if callable(getattr(c, "handle", None))]
        if len(found) != 1:
            raise ModelError("handler %s: expected a handle(data, context) function or one "
                             "class with handle(); found %d classes (%s)"
                             % (os.path.basename(path), len(found),
                                ", ".join(c.__name__ for c in found) or "none"))
        instance = found[0]()
        if callable(getattr(instance, "initialize", None)):
            instance.initialize(context)
        entry = instance.handle
    decode = str(spec.config.get("decode_input_request", True)).lower() != "false"
    return CustomService(entry, context, instance, spec.name, spec.version, decode), context

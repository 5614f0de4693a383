"""``python -m pinfer.serve.worker``: one worker process of ``pinfer serve``.

Reads its configuration from PINFER_WORKER_CONFIG (JSON), loads the model, sends READY on
fd 3, then serves BATCH, PIN and STOP frames until STOP or the end of the connection
(docs/worker-protocol.md).  Exit status: 0 after STOP or at the end of the connection
between frames, 1 when the model could not be loaded (after READY with the error), 2 on a
protocol error (a bad frame, the connection cut inside a frame, no fd 3), with one line
``pinfer-worker: error: ...`` on stderr; 143 on SIGTERM (after removing the unpacked
archive).  A handler or model that raises answers 5xx for
the requests of that batch, and the worker keeps serving.
"""
import json
import os
import signal
import sys
import time

from . import protocol
from .protocol import ProtocolError

FD = 3
EXIT_LOAD_FAILED = 1
EXIT_PROTOCOL = 2


def fail(status, message):
    """One line on stderr, then exit with `status`."""
    sys.stderr.write("pinfer-worker: error: %s\n" % message)
    sys.stderr.flush()
    sys.exit(status)


def _one_line(error):
    """An exception as one line: the message of our own errors, else its type and the line
    of its message that says what went wrong."""
    from .handlers import _one_line as describe
    from .models import ModelError
    if isinstance(error, (ProtocolError, ModelError)):
        lines = str(error).strip().splitlines()
        return lines[0].strip() if lines else type(error).__name__
    return describe(error)


def parse_batch(obj, data):
    """The requests of a BATCH frame; ProtocolError when the JSON does not describe them."""
    from .handlers import Request
    batch = obj.get("batch")
    requests = obj.get("requests")
    if batch is None or not isinstance(requests, list):
        raise ProtocolError("BATCH needs \"batch\" and a \"requests\" list")
    out = []
    for n, r in enumerate(requests):
        if not isinstance(r, dict):
            raise ProtocolError("BATCH request %d is not an object" % n)
        offset, length = r.get("offset", 0), r.get("length", 0)
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in (offset, length)) \
                or offset + length > len(data):
            raise ProtocolError("BATCH request %d: offset %r and length %r are not inside the "
                                "%d bytes of data" % (n, offset, length, len(data)))
        headers = r.get("headers") or {}
        if not isinstance(headers, dict) or \
                not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise ProtocolError("BATCH request %d: \"headers\" must map strings to strings" % n)
        content_type = r.get("content_type") or ""
        name = r.get("name")
        if not isinstance(content_type, str) or (name is not None and not isinstance(name, str)):
            raise ProtocolError("BATCH request %d: \"content_type\" and \"name\" must be strings"
                                % n)
        out.append(Request(r.get("id"), r.get("api", "predictions"), content_type, headers,
                           data[offset:offset + length], name))
    return batch, out


def result_frame(batch, responses):
    """(JSON, data) of the RESULT for `responses`; a body that would take the frame over
    its data limit becomes a 500 of its own."""
    items, chunks, size = [], [], 0
    for response in responses:
        item = {"id": response.id, "status": response.status}
        if response.error is not None or response.status >= 400:
            item["error"] = response.error if response.error is not None else "error"
        elif size + len(response.body) > protocol.MAX_DATA:
            item.update(status=500, error="the response of %d bytes does not fit in one "
                        "RESULT frame" % len(response.body))
        else:
            item.update(content_type=response.content_type, offset=size,
                        length=len(response.body))
            if response.headers:
                item["headers"] = {str(k): str(v) for k, v in response.headers.items()}
            chunks.append(response.body)
            size += len(response.body)
        items.append(item)
    return {"batch": batch, "responses": items}, b"".join(chunks)


def run_batch(service, batch, requests):
    """The responses of one batch: the service's, or 500 for each when it fails itself."""
    from .handlers import error_response, failure_status
    try:
        responses = service.run(requests)
        if len(responses) != len(requests) or any(r is None for r in responses):
            raise RuntimeError("the service answered %d of %d requests"
                               % (sum(r is not None for r in responses), len(requests)))
    except Exception as error:  # noqa: BLE001 - the worker keeps serving
        return [error_response(r, failure_status(error), "the worker failed: %s"
                               % _one_line(error)) for r in requests]
    return responses


def handle_pin(pinner, obj):
    """The PINNED reply to a PIN frame."""
    from .pinning import PinError
    seq = obj.get("seq")
    try:
        pinner.apply(obj.get("cpus"), obj.get("nodes"))
    except PinError as error:
        return {"seq": seq, "error": str(error)}
    return {"seq": seq, "cpus": pinner.cpus, "nodes": pinner.nodes, "threads": pinner.threads}


def load(config, pinner):
    """Pin (when the configuration gives CPUs), resolve and load the model: (spec, service,
    context)."""
    from . import handlers, models
    if not isinstance(config, dict):
        raise models.ModelError("PINFER_WORKER_CONFIG is not a JSON object")
    if config.get("cpus") is not None:
        from .pinning import PinError
        try:
            pinner.apply(config["cpus"], config.get("nodes"))
        except PinError as error:
            raise models.ModelError("pinning: %s" % error) from None
    spec = models.resolve(config)
    try:
        os.chdir(spec.model_dir)  # TorchServe runs handlers in the model's folder
        service, context = handlers.load_service(spec)
    except BaseException:
        spec.cleanup()
        raise
    return spec, service, context


def serve(channel, config):
    """Load, say READY, serve; returns the exit status."""
    import torch

    from .pinning import Pinner
    pinner = Pinner()
    try:
        spec, service, context = load(config, pinner)
    except Exception as error:  # noqa: BLE001 - any failure to load is reported in READY
        channel.write(protocol.READY, {"pid": os.getpid(), "error": _one_line(error)})
        sys.stderr.write("pinfer-worker: error: loading the model: %s\n" % _one_line(error))
        return EXIT_LOAD_FAILED
    try:
        ready = {"pid": os.getpid(), "model": spec.name, "version": spec.version,
                 "handler": spec.handler if isinstance(spec.handler, str) else str(spec.handler),
                 "threads": torch.get_num_threads(), "batch_size": spec.batch_size,
                 "platform": service.platform, "model_dir": spec.model_dir}
        if pinner.cpus is not None:
            ready.update(cpus=pinner.cpus, nodes=pinner.nodes)
        channel.write(protocol.READY, ready)
        while True:
            arrived = []
            frame = channel.read(protocol.FROM_FRONT_END, arrived)
            if frame is None:
                return 0
            kind, obj, data = frame
            if kind == protocol.BATCH:
                started = arrived[0]  # the worker's time starts with the frame's header
                batch, requests = parse_batch(obj, data)
                responses = run_batch(service, batch, requests)
                reply, body = result_frame(batch, responses)
                reply["elapsed_us"] = (time.perf_counter_ns() - started) // 1000
                channel.write(protocol.RESULT, reply, body)
            elif kind == protocol.PIN:
                channel.write(protocol.PINNED, handle_pin(pinner, obj))
            elif kind == protocol.STOP:
                return 0
    finally:
        spec.cleanup()


def _terminate(signum, frame):
    """SIGTERM: exit 143 through the normal path (the unpacked archive is removed)."""
    sys.exit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, _terminate)
    try:
        os.fstat(FD)
    except OSError:
        fail(EXIT_PROTOCOL, "no connection on fd %d (the front end passes one)" % FD)
    channel = protocol.Channel(FD)
    text = os.environ.get("PINFER_WORKER_CONFIG")
    try:
        if text is None:
            raise ValueError("PINFER_WORKER_CONFIG is not set")
        config = json.loads(text)
    except ValueError as error:
        try:
            channel.write(protocol.READY, {"pid": os.getpid(), "error": str(error)})
        except OSError:
            pass
        fail(EXIT_LOAD_FAILED, "PINFER_WORKER_CONFIG: %s" % error)
    try:
        status = serve(channel, config)
    except ProtocolError as error:
        fail(EXIT_PROTOCOL, "protocol: %s" % error)
    except (BrokenPipeError, ConnectionResetError) as error:
        fail(EXIT_PROTOCOL, "the connection to the front end is gone (%s)" % error.strerror)
    sys.stdout.flush()
    sys.exit(status)


if __name__ == "__main__":
    main()

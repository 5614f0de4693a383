"""Benchmark of pinfer's IPEX front end: ResNet-50 eager against pinfer.optimize.

torchvision's ResNet-50 (random weights, random batch-norm statistics), 3x224x224 images,
batch 1 and 16, torch's default threads, no_grad:

  - eager fp32:     the model as stock PyTorch runs it;
  - optimize fp32:  pinfer.optimize(model, sample_input=x): Conv+BN folded, channels-last
                    weights, traced and frozen;
  - optimize bf16:  pinfer.optimize(model, dtype=torch.bfloat16, sample_input=x) (on CPUs
                    with AVX512_BF16 or AMX-BF16, else skipped);
  - int8:           pinfer.quantization: prepare(model, default_static_qconfig, x), a few
                    calibration batches, convert, trace and freeze (skipped when
                    pinfer.quantization is not importable).

The variants run in interleaved rounds (each round times every variant in turn, so that a
slow phase of the machine hits all of them); the figure of a variant is the median of its
per-call times over all rounds: ms per batch, images/s, and the ratio of its images/s to
eager's.  Each variant's output is compared with eager's (relative error of the norm).

    make python && PYTHONPATH=python /usr/bin/python3 bench/bench_ipex.py
    PYTHONPATH=python /usr/bin/python3 bench/bench_ipex.py --quick   # smoke run, seconds
"""
import argparse
import shlex
import statistics
import sys
import time
import warnings

import torch

import pinfer


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,16", help="comma-separated (default 1,16)")
    parser.add_argument("--image-size", type=int, default=224, help="default 224")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--calls", type=int, default=0,
                        help="timed calls per variant per round (default: 8 at batch 1, "
                             "2 at larger batches)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batches 1,2 at 64x64, 1 round, 2 calls")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.image_size, args.rounds, args.calls = "1,2", 64, 1, 2
    args.batches = [int(b) for b in args.batches.split(",") if b]
    return args


def resnet50():
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None)
    g = torch.Generator().manual_seed(1)
    for m in model.modules():  # folding must have something to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_((torch.rand(n, generator=g) - 0.5) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return model.eval()


def int8_model(model, x, calibration):
    """(the int8 model, None), or (None, why it is skipped)."""
    try:
        from pinfer import quantization
    except ImportError:
        return None, "skipped: pinfer.quantization not available"
    try:
        prepared = quantization.prepare(model, quantization.default_static_qconfig, x,
                                        inplace=False)
        with torch.no_grad():
            for batch in calibration:
                prepared(batch)
            converted = quantization.convert(prepared)
            traced = torch.jit.freeze(torch.jit.trace(converted, x, check_trace=False))
            for _ in range(2):
                traced(x)
        return traced, None
    except Exception as error:  # noqa: BLE001 - one row fails, the others still report
        return None, "failed: %s: %s" % (type(error).__name__,
                                         (str(error).splitlines() or [""])[0][:120])


def build(model, batch, size):
    """[(name, callable or None, note)] for one batch size."""
    x = torch.randn(batch, 3, size, size)
    variants = [("eager fp32", model, "")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        variants.append(("optimize fp32", pinfer.optimize(model, sample_input=x), ""))
        if pinfer.frontend.bf16_isa():
            variants.append(("optimize bf16", pinfer.optimize(model, dtype=torch.bfloat16,
                                                              sample_input=x), ""))
        else:
            variants.append(("optimize bf16", None, "skipped: no AVX512_BF16/AMX-BF16"))
    calibration = [torch.randn(batch, 3, size, size) for _ in range(4)]
    q, why = int8_model(model, x, calibration)
    variants.append(("int8", q, why or ""))
    return x, variants


def time_calls(fn, x, calls):
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - start)
    return out


def main(argv=None):
    args = parse_args(argv)
    print("command: %s" % " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv))
    print("torch %s, %d threads; ISA: %s; bf16 ISA: %s" % (
        torch.__version__, torch.get_num_threads(),
        " ".join(sorted(pinfer.frontend._cpu_features())) or "-",
        ", ".join(pinfer.frontend.bf16_isa()) or "none"))
    print("ResNet-50 (random weights), 3x%dx%d, no_grad; %d interleaved round(s); median "
          "per call" % (args.image_size, args.image_size, args.rounds))
    model = resnet50()
    print("%5s  %-14s %12s %10s %9s %10s  %s" % ("batch", "variant", "ms/batch", "images/s",
                                                 "vs eager", "rel.error", "note"))
    for batch in args.batches:
        calls = args.calls or (8 if batch == 1 else 2)
        with torch.no_grad():
            x, variants = build(model, batch, args.image_size)
            reference = model(x).float()
            errors = {}
            for name, fn, _ in variants:
                if fn is not None:
                    fn(x)  # warm-up outside the rounds
                    out = fn(x).float()
                    errors[name] = ((out - reference).norm() / reference.norm()).item()
            times = {name: [] for name, fn, _ in variants if fn is not None}
            for _ in range(args.rounds):
                for name, fn, _ in variants:
                    if fn is not None:
                        times[name] += time_calls(fn, x, calls)
        eager = statistics.median(times["eager fp32"])
        for name, fn, note in variants:
            if fn is None:
                print("%5d  %-14s %12s %10s %9s %10s  %s" % (batch, name, "-", "-", "-", "-",
                                                             note))
                continue
            t = statistics.median(times[name])
            print(("%5d  %-14s %12.2f %10.1f %8.2fx %10.1e  %s" % (
                batch, name, t * 1000, batch / t, eager / t, errors[name], note)).rstrip())
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

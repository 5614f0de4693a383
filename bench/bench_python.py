"""Benchmark of the pinfer Python package: MultiStreamModule against the plain model.

On a 2-CPU pool: each model (a small conv net, and torchvision's ResNet-18
with random weights), traced and frozen, at batch 1, 2, 8 and 32, runs

  - plain:   one call at a time with 2 OpenMP threads, pinned to the pool
             (what `OMP_NUM_THREADS=2 taskset -c 0,1 python ...` gives);
  - streams: MultiStreamModule with 2 streams x 1 thread over the same pool;

and prints inferences (items) per second of each and their ratio.  Then the
per-call overhead of MultiStreamModule on an identity model: splitting the
batch, running both streams, concatenating.

    make python && PYTHONPATH=python /usr/bin/python3 bench/bench_python.py
    PYTHONPATH=python /usr/bin/python3 bench/bench_python.py --seconds 0.5 --models small
"""
import argparse
import os
import statistics
import sys
import time

import torch

import pinfer
from pinfer import _hints

BATCHES = (1, 2, 8, 32)


class SmallConvNet(torch.nn.Module):
    """Three 3x3 convolutions, pooling and a linear layer on 3x64x64 images."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1))
        self.classifier = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class Identity(torch.nn.Module):
    def forward(self, x):
        return x


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="timing per point, after a warm-up (default 2)")
    parser.add_argument("--models", default="small,resnet18",
                        help="comma-separated: small, resnet18 (default both)")
    parser.add_argument("--cores", default=None,
                        help="the pool's 2 CPUs, e.g. 0,1 (default: the first 2 usable)")
    return parser.parse_args()


def models(names):
    """(name, model, input of batch b) for each requested model, with random weights."""
    torch.manual_seed(0)
    for name in names:
        if name == "small":
            yield "small conv", SmallConvNet().eval(), lambda b: torch.rand(b, 3, 64, 64)
        elif name == "resnet18":
            import torchvision
            yield ("resnet18", torchvision.models.resnet18(weights=None).eval(),
                   lambda b: torch.rand(b, 3, 224, 224))
        else:
            raise SystemExit("bench_python: unknown model %r" % name)


def rate(fn, x, seconds):
    """Items per second of fn(x): warm up for a fifth of the time, then time `seconds`."""
    for deadline in (seconds / 5, seconds):
        calls, start = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - start < deadline:
            fn(x)
            calls += 1
    return calls * x.shape[0] / (time.perf_counter() - start)


def freeze(model, x):
    return torch.jit.freeze(torch.jit.trace(model, x))


def compare(name, model, make_input, pool, seconds):
    """One table row per batch: plain 1x2 against streams 2x1.

    Each way runs a model traced for the shape it sees (the whole batch, or a stream's
    half), as IPEX's documentation recommends: TorchScript's profiling executor
    specialises a frozen graph to the shapes of its first calls, and other shapes take a
    slower path, which would measure the JIT rather than the threads."""
    with torch.no_grad():
        for batch in BATCHES:
            x = make_input(batch)
            plain_model = freeze(model, x)
            streams = pinfer.MultiStreamModule(freeze(model, make_input((batch + 1) // 2)),
                                               num_streams=2, cpu_pool=pool)
            with pinfer.pin(pool):
                plain = rate(plain_model, x, seconds)
            multi = rate(streams, x, seconds)
            streams.close()
            print("%-12s %5d %18.1f %20.1f %9.2f" % (name, batch, plain, multi, multi / plain),
                  flush=True)


def per_call_us(fn, n):
    """Median of n calls' times, in microseconds."""
    times = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000, sorted(times)[int(n * 0.99) - 1] / 1000


def overheads(pool, n=5000):
    """The cost per call of MultiStreamModule on an identity model, and its parts."""
    identity = torch.jit.script(Identity())
    streams = pinfer.MultiStreamModule(identity, num_streams=2, cpu_pool=pool)
    single = pinfer.MultiStreamModule(identity, num_streams=1, cpu_pool=pool)
    hint = pinfer.MultiStreamModuleHint(0)
    print("\nper-call cost on an identity model (TorchScript), %d calls each:" % n)
    print("%-58s %9s %9s" % ("", "p50 us", "p99 us"))
    for batch in (2, 32):
        x = torch.rand(batch, 256)
        halves = list(x.split((batch + 1) // 2))

        def split_only():
            split = _hints.Split(hint, (x,), {})
            return split.chunk(0, batch // 2), split.chunk(batch // 2, batch)

        rows = [
            ("identity called directly", lambda: identity(x)),
            ("split into 2 chunks (hint check + 2 narrow views)", split_only),
            ("concatenate 2 chunks (torch.cat)", lambda: _hints.concat(0, halves)),
            ("MultiStreamModule, 1 stream (pin + call + unpin)", lambda: single(x)),
            ("MultiStreamModule, 2 streams (split, run, concat)", lambda: streams(x)),
        ]
        with torch.no_grad():
            for label, fn in rows:
                p50, p99 = per_call_us(fn, n)
                print("%-58s %9.1f %9.1f" % ("batch %2d: %s" % (batch, label), p50, p99))
    streams.close()


def main():
    args = parse_args()
    cpus = ([int(c) for c in args.cores.split(",")] if args.cores
            else sorted(os.sched_getaffinity(0))[:2])
    if len(cpus) != 2:
        raise SystemExit("bench_python: needs 2 CPUs (this process may use %s)" % cpus)
    pool = pinfer.CPUPool(cpus)
    torch.set_num_threads(2)
    print("pool: CPUs %s; torch %s; OpenMP runtime %s; %.1f s per point"
          % (pool.core_ids, torch.__version__, pinfer._pinfer.omp_runtime(), args.seconds))
    print("TorchScript (traced, frozen), no_grad; inferences/s = items per second\n")
    print("%-12s %5s %18s %20s %9s" % ("model", "batch", "plain 1x2 inf/s", "streams 2x1 inf/s",
                                       "2x1/1x2"))
    for name, model, make_input in models(args.models.split(",")):
        compare(name, model, make_input, pool, args.seconds)
    overheads(pool)
    return 0


if __name__ == "__main__":
    sys.exit(main())

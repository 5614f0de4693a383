"""Serve a torchvision ResNet-18 with pinfer's MultiStreamModule.

The model has random weights (nothing is downloaded).  It is traced and
frozen (TorchScript runs without the GIL, so the streams really run at once),
wrapped in a MultiStreamModule over a CPU pool, checked against the plain
model, and timed against the plain model running with one thread per CPU.

    PYTHONPATH=python /usr/bin/python3 examples/resnet_multistream.py --batch 8
    PYTHONPATH=python /usr/bin/python3 examples/resnet_multistream.py --streams 2 --cores 0,1
"""
import argparse
import time

import torch
import torchvision

import pinfer


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="images per call (default 8)")
    parser.add_argument("--streams", default="AUTO",
                        help='streams: "AUTO" (one per CPU, the default) or a number')
    parser.add_argument("--cores", default=None,
                        help="the pool's CPUs, e.g. 0,1 (default: every CPU the process may use)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="how long to time each way of running (default 2)")
    parser.add_argument("--image-size", type=int, default=224, help="image side (default 224)")
    return parser.parse_args()


def throughput(fn, x, seconds):
    """Images per second of fn(x), timed for about `seconds` after one warm-up call."""
    fn(x)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(x)
        calls += 1
    return calls * x.shape[0] / (time.perf_counter() - start)


def main():
    args = parse_args()
    pool = pinfer.CPUPool([int(c) for c in args.cores.split(",")] if args.cores else None)
    streams = args.streams if args.streams.upper() == "AUTO" else int(args.streams)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(args.batch, 3, args.image_size, args.image_size)
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(model, x))
        served = pinfer.MultiStreamModule(traced, num_streams=streams, cpu_pool=pool)
        torch.set_num_threads(len(pool.core_ids))
        expected = traced(x)
        got = served(x)
        same = torch.allclose(got, expected, rtol=1e-4, atol=1e-4)
        print("pool %s, %d streams on %s" % (pool.core_ids, served.num_streams,
                                               served.stream_core_ids))
        print("output %s, same as the plain model: %s" % (tuple(got.shape), same))
        with pinfer.pin(pool):
            plain = throughput(traced, x, args.seconds)
        multi = throughput(served, x, args.seconds)
    print("plain model, %d threads:   %8.1f images/s" % (len(pool.core_ids), plain))
    print("MultiStreamModule:         %8.1f images/s  (x%.2f)" % (multi, multi / plain))
    served.close()
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

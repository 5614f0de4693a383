"""A workload whose best configuration is known, for pinfer tune's tests.

    python3 tune_workload.py FUNCTION [--hypertune]

Run by `pinfer run` (so as one of N instances), it reads what the launcher set up -
PINFER_NINSTANCES, OMP_NUM_THREADS, LD_PRELOAD (which allocator and OpenMP runtime),
KMP_BLOCKTIME - and prints its throughput as a known function of them:
"N items/s", or with --hypertune IPEX hypertune's objective lines for a latency
(1000 / throughput, lower is better). The numbers are exact: no work is timed, so the
tests can say which configuration is best without noise. Functions:

- threads: every instance scales as the square root of its threads, so more, smaller
  instances win; jemalloc x1.3, tcmalloc x1.1, Intel OpenMP x1.2 with KMP_BLOCKTIME=0
  best (x1.05).
- instances: an instance scales faster than its threads (x1.2 per added thread), so
  one large instance wins; tcmalloc x1.25, jemalloc x0.9, Intel OpenMP x0.8.
- interaction: an instance scales as threads^0.8 (more, smaller instances win); jemalloc
  helps only with Intel OpenMP (x1.4, else x0.9), tcmalloc x1.1, KMP_BLOCKTIME=200 best
  with Intel (x1.1).
- flat: the same everywhere (a tie).
- crash: as threads, but exits 3 with jemalloc.
- hang: as threads, but sleeps for a minute with tcmalloc.
"""
import os
import sys
import time


def setup():
    preload = os.environ.get("LD_PRELOAD", "")
    allocator = ("jemalloc" if "jemalloc" in preload else
                 "tcmalloc" if "tcmalloc" in preload else "default")
    intel = "iomp5" in preload or "libomp" in preload
    return {
        "instances": int(os.environ.get("PINFER_NINSTANCES", "1")),
        "threads": int(os.environ.get("OMP_NUM_THREADS", "1")),
        "allocator": allocator,
        "intel": intel,
        "blocktime": os.environ.get("KMP_BLOCKTIME", "") if intel else "",
    }


def throughput(name, s):
    t = s["threads"]
    if name in ("threads", "crash", "hang"):
        v = 100.0 * t ** 0.5
        v *= {"jemalloc": 1.3, "tcmalloc": 1.1}.get(s["allocator"], 1.0)
        if s["intel"]:
            v *= 1.2 * (1.05 if s["blocktime"] == "0" else 1.0)
        return v
    if name == "instances":
        v = 100.0 * t * 1.2 ** (t - 1)
        v *= {"jemalloc": 0.9, "tcmalloc": 1.25}.get(s["allocator"], 1.0)
        return v * (0.8 if s["intel"] else 1.0)
    if name == "interaction":
        v = 100.0 * t ** 0.8
        if s["allocator"] == "jemalloc":
            v *= 1.4 if s["intel"] else 0.9
        elif s["allocator"] == "tcmalloc":
            v *= 1.1
        if s["intel"] and s["blocktime"] == "200":
            v *= 1.1
        return v
    if name == "flat":
        return 100.0
    raise SystemExit("tune_workload.py: unknown function %r" % name)


def main():
    name = sys.argv[1]
    s = setup()
    if name == "crash" and s["allocator"] == "jemalloc":
        print("tune_workload.py: crashing with jemalloc", file=sys.stderr)
        sys.exit(3)
    if name == "hang" and s["allocator"] == "tcmalloc":
        time.sleep(60)
    v = throughput(name, s)
    if "--hypertune" in sys.argv:
        print("@hypertune {'name': 'latency (ms)', 'higher_is_better': False}")
        print("%.6f" % (1000.0 / v))
    else:
        print("%.3f items/s" % v)


if __name__ == "__main__":
    main()

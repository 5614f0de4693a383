"""The demo workload (build/pinfer-demo, scripts/demo.sh): its --help, its counts in words
that agree with their number, and a checksum that is the same on every run."""
import os
import re
import subprocess

import pytest

from conftest import ROOT

DEMO = os.path.join(ROOT, "build", "pinfer-demo")
SMALL = ["--hidden", "64", "--layers", "2"]


@pytest.fixture(scope="module")
def demo():
    subprocess.run(["make", "-C", ROOT, "-s", "build/pinfer-demo"], check=True)
    return DEMO


def run(demo, args, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return subprocess.run([demo] + args, capture_output=True, text=True, env=env, timeout=60)


def test_help_is_help(demo):
    for flag in ["--help", "-h"]:
        proc = run(demo, [flag], 1)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("usage: pinfer-demo [--seconds S]")
        assert proc.stderr == ""


def test_usage_errors(demo):
    proc = run(demo, ["--seconds"], 1)
    assert (proc.returncode, proc.stderr) == (2, "pinfer-demo: error: --seconds needs a value\n")
    proc = run(demo, ["--bogus", "1"], 1)
    assert proc.returncode == 2 and "unknown option --bogus" in proc.stderr


def line_of(proc):
    assert proc.returncode == 0, proc.stderr
    m = re.fullmatch(r"pinfer-demo: [0-9.]+ inferences/s \((\d+) (threads?), batch 8, "
                     r"2 x 64x64 layers, [0-9.]+ s, checksum ([0-9.]+)\)\n", proc.stdout)
    assert m, proc.stdout
    return int(m.group(1)), m.group(2), m.group(3)


def test_thread_count_in_words(demo):
    assert line_of(run(demo, SMALL + ["--seconds", "0.1"], 1))[:2] == (1, "thread")
    assert line_of(run(demo, SMALL + ["--seconds", "0.1"], 2))[:2] == (2, "threads")


def test_checksum_is_the_same_on_every_run(demo):
    """Whatever the duration (so the number of inferences) and the thread count."""
    sums = {line_of(run(demo, SMALL + ["--seconds", s], t))[2]
            for s, t in [("0.05", 1), ("0.3", 1), ("0.2", 2), ("0.1", 3)]}
    assert len(sums) == 1, sums

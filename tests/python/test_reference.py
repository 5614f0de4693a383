"""The C planner against the independent Python reference (tests/reference/)."""
import os
import subprocess
import sys

from conftest import ROOT

DIFF = os.path.join(ROOT, "tests", "reference", "diff_plan.py")


def run(args):
    proc = subprocess.run([sys.executable, DIFF] + args, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    return proc.returncode, proc.stdout + proc.stderr


def test_reference_self_test_and_pinfer_agree_on_hand_computed_cases(pinfer):
    rc, out = run(["--self-test", "--pinfer", pinfer])
    assert rc == 0, out
    assert " 0 failed" in out.strip().splitlines()[-1]


def test_random_topologies_and_options_agree(pinfer):
    count = os.environ.get("PF_DIFF_COUNT", "300")
    rc, out = run(["--pinfer", pinfer, "--count", count, "--seed", "1"])
    assert rc == 0, out[-4000:]
    assert out.strip().splitlines()[-1] == "diff_plan: %s passed, 0 failed" % count

"""bench/bench_serve.py as a smoke test: `--quick --only frontend` against build/pinfer
prints the frontend section with a figure on pinfer's row.  Skipped while build/pinfer has
no `serve` command.  The pinfer workers import the package from python/ (PYTHONPATH), its
extension built by `make python`."""
import os
import re
import subprocess

import pytest

from conftest import ROOT

PYTHON = "/usr/bin/python3"
BENCH = os.path.join(ROOT, "bench", "bench_serve.py")


def serve_missing(pinfer):
    """None when `pinfer serve --help` works, else why not."""
    proc = subprocess.run([pinfer, "serve", "--help"], capture_output=True, text=True,
                          timeout=60)
    if proc.returncode == 0:
        return None
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return "exit %d%s" % (proc.returncode, ": " + lines[0] if lines else "")


def test_quick_frontend_section_has_pinfer_figures(pinfer):
    missing = serve_missing(pinfer)
    if missing:
        pytest.skip("build/pinfer has no serve command yet (`pinfer serve --help`: %s)"
                    % missing)
    pytest.importorskip("torch")
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    built = subprocess.run(["make", "-C", ROOT, "-s", "python"], capture_output=True, text=True)
    assert built.returncode == 0, "make python failed:\n" + built.stdout + built.stderr
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    proc = subprocess.run([PYTHON, BENCH, "--quick", "--only", "frontend", "--pinfer", pinfer],
                          capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert out.startswith("bench_serve: "), out
    assert "\n== frontend: " in out, out
    section = out[out.index("\n== frontend: "):]
    # pinfer's row with the front end on its worker's CPU: requests, connections, then
    # latency, handler and overhead figures in us.
    row = re.search(r"^pinfer serve, one CPU\s+(\d+)\s+(\d+)\s+([\d.]+) us\s+([\d.]+) us"
                    r"\s+(-?[\d.]+) us", section, re.M)
    assert row, section
    assert int(row.group(1)) > 0, section
    assert float(row.group(3)) > 0, section
    assert re.search(r"^pinfer serve, one CPU, client's view: p50 overhead -?[\d.]+ us",
                     section, re.M), section
    # The figure, from the server's own clock: it is there, and it is a time.
    inside = re.search(r"^pinfer serve, one CPU: front end \(server latency - handler time\): "
                       r"p50 (-?[\d.]+) us", section, re.M)
    assert inside, section
    assert float(inside.group(1)) >= 0, section
    assert re.search(r"^socketpair ping-pong between two processes .*: p50 [\d.]+ us on one CPU",
                     section, re.M), section

"""bench/bench_ipex.py --quick: a smoke run of the front end's benchmark (bounded time)."""
import os
import re
import subprocess

import pytest

from conftest import ROOT, import_pinfer

PYTHON = "/usr/bin/python3"
TIMEOUT = 240


def test_bench_ipex_quick():
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    import_pinfer()  # builds the extension if needed
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    proc = subprocess.run([PYTHON, os.path.join(ROOT, "bench", "bench_ipex.py"), "--quick"],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.startswith("command: ") and "bench_ipex.py --quick" in out.splitlines()[0]
    for batch in (1, 2):
        for variant in ("eager fp32", "optimize fp32", "optimize bf16", "int8"):
            assert re.search(r"^\s*%d  %s " % (batch, re.escape(variant)), out, re.M), out
        rows = re.findall(r"^\s*%d  (eager fp32|optimize fp32|optimize bf16)\s+([\d.]+)\s+"
                          r"([\d.]+)\s+([\d.]+)x\s+(\S+)" % batch, out, re.M)
        found = {name: float(err) for name, _, _, _, err in rows}
        assert found["eager fp32"] == 0.0
        assert found["optimize fp32"] < 1e-3, out
        if "optimize bf16" in found:
            assert found["optimize bf16"] < 5e-2, out
    # int8 is measured or says why not (pinfer.quantization is written separately)
    assert re.search(r"^\s*1  int8\s+(\d|-.*(skipped|failed))", out, re.M), out

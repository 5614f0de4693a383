"""The examples, the package from the build tree, and the whole pinfer suite under libiomp5.

test_the_suite_again_under_libiomp5 runs every test_pinfer_*.py file again in
a child pytest with LD_PRELOAD of Debian's libiomp5.so (LLVM/Intel OpenMP
then serves torch's and pinfer's OpenMP calls); PINFER_TEST_IOMP=1 marks the
child, which does not recurse.  The runtime and multi-stream tests also run
under the OpenMP binding variables `pinfer run` sets.  PINFER_TEST_PIP=1 also
installs the package with pip into a fresh virtual environment, with its
`pinfer` command.  `python -m pinfer` is compared with build/pinfer, and
docs/python.md with what the package has of IPEX.

A child run passes when every test in it passes; a test it skips for another
reason than not recursing (one that needs two CPUs, say) makes the test that
started it a skip, with the child's reasons: counted here, not lost there.
"""
import glob
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, allowed_cpus, import_pinfer, pinfer_path

IOMP = "/usr/lib/x86_64-linux-gnu/libiomp5.so"
PYTHON_DIR = os.path.join(ROOT, "python")


def _build():
    proc = subprocess.run(["make", "-C", ROOT, "-s", "python"], capture_output=True, text=True)
    assert proc.returncode == 0, "make python failed:\n" + proc.stdout + proc.stderr


_build()


def run(argv, env=None, cwd=ROOT, timeout=300):
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = PYTHON_DIR
    full_env.update(env or {})
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=cwd)
    return proc.returncode, proc.stdout + proc.stderr


# What a child run skips by design: the tests that would start children again, and the pip
# test without PINFER_TEST_PIP (this run skips it too, and counts that skip itself).
NOT_RECURSING = ("already the libiomp5 run", "already a re-run", "set PINFER_TEST_PIP=1")


def run_pytest_child(files, env):
    """pytest on `files` in a child with `env`: every test there passes, or is skipped by
    design; other skips make this test a skip."""
    rc, out = run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"] + files,
                  env=env, timeout=600)
    assert rc == 0, out[-6000:]
    closing = out.strip().splitlines()[-1]
    assert re.search(r"\b[1-9]\d* passed", closing), out[-2000:]
    count, reasons = 0, []
    for n, reason in re.findall(r"^SKIPPED \[(\d+)\] [^ ]+:\d+: (.*)$", out, re.M):
        if not any(design in reason for design in NOT_RECURSING):
            count += int(n)
            reasons += [reason] if reason not in reasons else []
    if count:
        pytest.skip("the child run passed (%s), but %d of its tests were skipped: %s"
                    % (closing, count, "; ".join(reasons)))


def test_ipex_example_runs_with_only_its_import_changed():
    path = os.path.join(ROOT, "examples", "ipex_runtime_example.py")
    with open(path) as source:
        text = source.read()
    assert "import pinfer as ipex  # was: import intel_extension_for_pytorch as ipex" in text
    assert "intel_extension_for_pytorch" not in text.replace(
        "# was: import intel_extension_for_pytorch as ipex", "").replace(
        "-import intel_extension_for_pytorch as ipex", "")
    rc, out = run([sys.executable, path])
    assert rc == 0, out
    assert out.count("same as the plain model") == 6, out
    assert "runtime extension enabled: True" in out


def test_resnet_example_matches_the_plain_model():
    rc, out = run([sys.executable, os.path.join(ROOT, "examples", "resnet_multistream.py"),
                   "--batch", "3", "--image-size", "64", "--seconds", "0.2"])
    assert rc == 0, out
    assert "same as the plain model: True" in out
    assert "images/s" in out


def test_the_package_imports_from_the_build_tree_anywhere():
    code = "import pinfer; print(pinfer._pinfer.__file__); print(pinfer.CPUPool().core_ids)"
    rc, out = run([sys.executable, "-c", code], cwd="/")
    assert rc == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(os.path.join(ROOT, "build", "python", "pinfer", "_pinfer"))
    assert lines[1] == str(sorted(os.sched_getaffinity(0)))


# ---------------------------------------------------------------------------
# What the documentation promises of IPEX


def test_the_docs_promise_only_the_ipex_the_package_has():
    """The page and the package's docstring say which parts of IPEX run with `import pinfer
    as ipex`, and the package has each of them: the runtime API, `optimize` and the
    switches, `quantization` (once it was the runtime API alone, and the page said so)."""
    pinfer = import_pinfer()
    with open(os.path.join(ROOT, "docs", "python.md")) as page:
        flat = " ".join(page.read().split())
    for name in ("optimize", "enable_onednn_fusion", "quantization", "CPUPool",
                 "MultiStreamModule"):
        assert hasattr(pinfer, name), name
    for name in ("prepare", "convert", "default_static_qconfig", "default_dynamic_qconfig"):
        assert hasattr(pinfer.quantization, name), name
    assert "Only the runtime API runs unchanged." not in flat
    assert "## IPEX's front end: optimize, BF16, INT8" in flat.replace("## ", "\n## ") or \
        "IPEX's front end: optimize, BF16, INT8" in flat
    assert "INT8: pinfer.quantization" in flat
    doc = " ".join(pinfer.__doc__.split())
    assert "optimize" in doc and "quantization" in doc


# ---------------------------------------------------------------------------
# python -m pinfer


def tool_run(argv, env=None, cwd="/", **kwargs):
    """argv's run: (exit status, stdout, stderr)."""
    full_env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    full_env.update(env or {})
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=full_env,
                          cwd=cwd, **kwargs)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args", [
    ["topo", "--json"],
    ["plan", "--json", "--topology", os.path.join(ROOT, "tests", "fixtures", "worked16.lscpu"),
     "--ninstances", "2"],
    ["plan", "--no-such-option"],
    ["--help"],
    [],
], ids=["topo", "plan", "usage-error", "help", "no-arguments"])
def test_python_m_pinfer_is_the_tool(args):
    """The same output and exit status as build/pinfer with the same arguments."""
    want = tool_run([pinfer_path()] + args)
    assert tool_run([sys.executable, "-m", "pinfer"] + args) == want


def test_python_m_pinfer_passes_the_programs_exit_status_on():
    rc, _, err = tool_run([sys.executable, "-m", "pinfer", "run", "--no-python", "--", "sh", "-c",
                           "exit 7"])
    assert rc == 7, err


@pytest.mark.skipif(len(allowed_cpus()) < 2, reason="needs two CPUs (OpenMP binds the "
                    "initial thread to one), this process may use %s" % allowed_cpus())
def test_python_m_pinfer_plans_on_every_cpu_under_openmp_binding_variables():
    """Importing the package loads OpenMP, which binds the initial thread to one CPU when
    OMP_PROC_BIND is set (as in `pinfer run`'s instances); an exec would keep that mask."""
    _, want, _ = tool_run([pinfer_path(), "topo", "--json"])
    rc, out, err = tool_run([sys.executable, "-m", "pinfer", "topo", "--json"],
                            env={"OMP_PROC_BIND": "close", "OMP_PLACES": "threads"})
    assert rc == 0, err
    assert json.loads(out)["allowed"] == json.loads(want)["allowed"] == allowed_cpus()


def test_python_m_pinfer_dies_of_sigpipe_as_the_tool_does():
    """Python ignores SIGPIPE, and an ignored signal stays ignored across exec: writing to a
    closed pipe must end `python -m pinfer` as it ends the tool."""
    results = []
    for argv in ([pinfer_path()], [sys.executable, "-m", "pinfer"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            proc = subprocess.run(argv + ["topo", "--json"], stdout=write_end,
                                  stderr=subprocess.PIPE, timeout=120, cwd="/",
                                  env=dict(os.environ, PYTHONPATH=PYTHON_DIR))
        finally:
            os.close(write_end)
        results.append(proc.returncode)
    assert results == [-signal.SIGPIPE, -signal.SIGPIPE]


@pytest.mark.skipif(bool(os.environ.get("PINFER_TEST_IOMP")), reason="already the libiomp5 run")
def test_the_suite_again_under_libiomp5():
    if not os.path.exists(IOMP):
        pytest.skip("%s is missing (Debian package libomp-dev)" % IOMP)
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "python", "test_pinfer_*.py")))
    run_pytest_child(files, {"LD_PRELOAD": IOMP, "PINFER_TEST_IOMP": "1"})


@pytest.mark.skipif(bool(os.environ.get("PINFER_TEST_IOMP")), reason="already a re-run")
@pytest.mark.parametrize("env", [
    {"OMP_PROC_BIND": "close", "OMP_PLACES": "threads"},
    {"LD_PRELOAD": IOMP, "PINFER_TEST_IOMP": "1", "KMP_AFFINITY": "granularity=fine,compact,1,0"},
], ids=["libgomp-proc-bind", "libiomp5-kmp-affinity"])
def test_pools_pin_and_streams_under_the_launchers_openmp_binding(env):
    """What `pinfer run` sets for each runtime: the runtime binds the initial thread, and
    its own new threads, itself; pools, pins and streams must still hold."""
    if "LD_PRELOAD" in env and not os.path.exists(IOMP):
        pytest.skip("%s is missing (Debian package libomp-dev)" % IOMP)
    files = [os.path.join(ROOT, "tests", "python", name)
             for name in ("test_pinfer_runtime.py", "test_pinfer_multistream.py")]
    run_pytest_child(files, dict(env, PINFER_TEST_IOMP=env.get("PINFER_TEST_IOMP", "")))


@pytest.mark.skipif(not os.environ.get("PINFER_TEST_PIP"), reason="set PINFER_TEST_PIP=1")
def test_pip_installs_the_package_into_a_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    python = str(venv / "bin" / "python")
    rc, out = run([python, "-m", "pip", "install", "--no-build-isolation", ROOT],
                  env={"PYTHONPATH": ""}, timeout=600)
    assert rc == 0, out[-4000:]
    rc, out = run([python, "-c", "import pinfer; print(pinfer.__file__)"],
                  env={"PYTHONPATH": ""}, cwd=str(tmp_path))
    assert rc == 0, out
    assert out.startswith(str(venv)), out
    # The `pinfer` command: the tool itself (a program, not a Python wrapper), equal to
    # build/pinfer; and `python -m pinfer` runs the package's copy of it.
    command = venv / "bin" / "pinfer"
    with open(str(command), "rb") as binary:
        assert binary.read(4) == b"\x7fELF"
    env = {"PYTHONPATH": "", "PATH": "%s:%s" % (venv / "bin", os.environ.get("PATH", ""))}
    for args in (["topo", "--json"], ["plan", "--no-such-option"], ["--help"]):
        want = tool_run([pinfer_path()] + args)
        assert tool_run(["pinfer"] + args, env=env, cwd=str(tmp_path)) == want, args
        assert tool_run([python, "-m", "pinfer"] + args, env=env, cwd=str(tmp_path)) == want
    rc, out, err = tool_run([python, "-c", "import pinfer.__main__ as m; print(m.tool_path())"],
                            env=env, cwd=str(tmp_path))
    assert rc == 0, err
    assert out.startswith(str(venv)) and out.strip().endswith("pinfer/_tool/pinfer"), out
    rc, _, err = tool_run(["pinfer", "run", "--no-python", "--", "sh", "-c", "exit 7"], env=env,
                          cwd=str(tmp_path))
    assert rc == 7, err

"""Shared fixtures of the Python tests: where the repository and the built tool are."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def import_pinfer():
    """The package from python/, its extension built by `make python` if missing or stale."""
    proc = subprocess.run(["make", "-C", ROOT, "-s", "python"], capture_output=True, text=True)
    assert proc.returncode == 0, "make python failed:\n" + proc.stdout + proc.stderr
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import pinfer
    return pinfer


@pytest.fixture(scope="session")
def pinfer():
    """The pinfer binary of build/ (built by `make` if missing)."""
    path = os.path.join(ROOT, "build", "pinfer")
    if not os.path.exists(path):
        subprocess.run(["make", "-C", ROOT, "-s", "build/pinfer"], check=True)
    return path


@pytest.fixture(scope="session")
def taskset():
    path = shutil.which("taskset")
    assert path, "taskset (util-linux) is part of every Debian system"
    return path

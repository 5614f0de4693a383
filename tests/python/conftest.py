"""Shared fixtures of the Python tests: where the repository and the built tool are."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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

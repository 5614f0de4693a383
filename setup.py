"""Build and install the `pinfer` Python package (the extension with libpinfer inside).

    /usr/bin/python3 -m venv --system-site-packages /tmp/venv
    /tmp/venv/bin/python -m pip install --no-build-isolation .

(or, into Debian's own Python, `/usr/bin/python3 -m pip install --no-build-isolation
--break-system-packages .`).  The extension is compiled from python/pinfer/_pinfer.c and
libpinfer's sources (src/*/*.c) in one go, so that no prior `make` is needed; it needs a C
compiler, pkg-config and libhwloc-dev, as `make` does.  From the build tree, `make python`
builds the same module without installing anything (docs/python.md).
"""
import glob
import os
import re
import subprocess

from setuptools import Extension, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def version():
    """PINFER_VERSION of include/pinfer.h: one version for the library and the package."""
    with open(os.path.join(ROOT, "include", "pinfer.h")) as header:
        return re.search(r'#define PINFER_VERSION "([^"]+)"', header.read()).group(1)


def pkg_config(*args):
    """pkg-config's words for hwloc (the Makefile asks it the same)."""
    try:
        out = subprocess.run(["pkg-config"] + list(args) + ["hwloc"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ["-lhwloc"] if "--libs" in args else []
    return out.split()


def relative(paths):
    return [os.path.relpath(p, ROOT) for p in paths]


extension = Extension(
    "pinfer._pinfer",
    sources=relative([os.path.join(ROOT, "python", "pinfer", "_pinfer.c")]
                     + sorted(glob.glob(os.path.join(ROOT, "src", "*", "*.c")))),
    include_dirs=["include", "src"],
    depends=relative([os.path.join(ROOT, "include", "pinfer.h")]
                     + glob.glob(os.path.join(ROOT, "src", "*", "*.h"))),
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11", "-fopenmp"] + pkg_config("--cflags"),
    # -fopenmp links libgomp.so.1, the OpenMP runtime torch uses: one runtime in the process.
    extra_link_args=["-fopenmp", "-Wl,--exclude-libs,ALL"] + pkg_config("--libs"),
    libraries=["pthread", "m"],
)

setup(
    name="pinfer",
    version=version(),
    description="The runtime API of Intel Extension for PyTorch (CPU pools, pinning, tasks, "
                "multi-stream modules) on stock PyTorch, over libpinfer",
    license="see the repository",
    python_requires=">=3.8",
    package_dir={"": "python"},
    packages=["pinfer", "pinfer.cpu"],
    ext_modules=[extension],
    # setuptools' build directories under build/ (which the Makefile owns and `make clean`
    # removes), none in the source tree.
    options={
        "build": {"build_base": "build/setuptools"},
        "egg_info": {"egg_base": "build/setuptools"},
    },
    zip_safe=False,
)

"""Build and install the `pinfer` Python package (the extension with libpinfer inside) and the
`pinfer` command.

    /usr/bin/python3 -m venv --system-site-packages /tmp/venv
    /tmp/venv/bin/python -m pip install --no-build-isolation .

(or, into Debian's own Python, `/usr/bin/python3 -m pip install --no-build-isolation
--break-system-packages .`).  The extension is compiled from python/pinfer/_pinfer.c and
libpinfer's sources (src/*/*.c but the server) in one go, so that no prior `make` is needed;
it needs a C compiler, pkg-config, libhwloc-dev, libjansson-dev and libyaml-dev, and for the
tool's server libmicrohttpd-dev and libzip-dev, as `make` does.  The `pinfer` tool (tools/*.c over the
library's sources without the runtime, as the Makefile links build/pinfer) is compiled by the
same step: one copy goes into the package (pinfer/_tool/pinfer, which `python -m pinfer`
runs) and one into the environment's bin directory, as the `pinfer` command itself (the
binary, not a Python wrapper: it starts in milliseconds and imports no torch).  From the
build tree, `make python` builds the same module without installing anything
(docs/python.md).
"""
import glob
import os
import re
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def version():
    """PINFER_VERSION of include/pinfer.h: one version for the library and the package."""
    with open(os.path.join(ROOT, "include", "pinfer.h")) as header:
        return re.search(r'#define PINFER_VERSION "([^"]+)"', header.read()).group(1)


LIBRARY_PACKAGES = ["hwloc", "jansson", "yaml-0.1"]
# The server (src/server, in the tool only) adds its HTTP library and libzip.
SERVER_PACKAGES = ["libmicrohttpd", "libzip"]


def pkg_config(*args, packages=LIBRARY_PACKAGES):
    """pkg-config's words for `packages` (the Makefile asks it the same)."""
    try:
        out = subprocess.run(["pkg-config"] + list(args) + packages, check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ["-l" + p.replace("lib", "", 1) for p in packages] if "--libs" in args else []
    return out.split()


def relative(paths):
    return [os.path.relpath(p, ROOT) for p in paths]


# The tool's programs, and the libraries it links: libpinfer and libpinfer-serve, without
# the runtime (the tool links no OpenMP).  The tools see the public headers only.
TOOL_SOURCES = sorted(glob.glob(os.path.join(ROOT, "tools", "*.c")))
TOOL_LIBRARY_SOURCES = sorted(p for p in glob.glob(os.path.join(ROOT, "src", "*", "*.c"))
                              if os.path.basename(os.path.dirname(p)) != "runtime")
# The extension: libpinfer and the runtime, not the server.
EXTENSION_LIBRARY_SOURCES = sorted(p for p in glob.glob(os.path.join(ROOT, "src", "*", "*.c"))
                                   if os.path.basename(os.path.dirname(p)) != "server")
TOOL_DEPENDS = (glob.glob(os.path.join(ROOT, "include", "*.h"))
                + glob.glob(os.path.join(ROOT, "src", "*", "*.h"))
                + glob.glob(os.path.join(ROOT, "tools", "*.h")))
# Where the build step leaves the tool for install_data (data_files below).
TOOL_BUILT = os.path.join("build", "setuptools", "tool", "pinfer")


def newer(target, sources):
    """True when `target` is missing or older than one of `sources`."""
    if not os.path.exists(target):
        return True
    mtime = os.path.getmtime(target)
    return any(os.path.getmtime(s) > mtime for s in sources)


class build_ext_and_tool(build_ext):
    """build_ext, then the `pinfer` tool: compiled with the same compiler, linked as a
    program, copied into the package (pinfer/_tool/pinfer) and left at TOOL_BUILT for the
    bin directory."""

    def run(self):
        super().run()
        self.build_tool()

    def build_tool(self):
        target = os.path.join(ROOT, TOOL_BUILT)
        sources = TOOL_SOURCES + TOOL_LIBRARY_SOURCES
        if self.force or newer(target, sources + TOOL_DEPENDS):
            objects_dir = os.path.join(self.build_temp, "tool")
            macros = [("_GNU_SOURCE", None)]
            flags = ["-std=c11"] + pkg_config("--cflags",
                                              packages=LIBRARY_PACKAGES + SERVER_PACKAGES)
            objects = self.compiler.compile(relative(TOOL_SOURCES), output_dir=objects_dir,
                                            macros=macros, include_dirs=["include"],
                                            extra_postargs=flags)
            objects += self.compiler.compile(relative(TOOL_LIBRARY_SOURCES),
                                             output_dir=objects_dir, macros=macros,
                                             include_dirs=["include", "src"],
                                             extra_postargs=flags)
            self.compiler.link_executable(objects, "pinfer", output_dir=os.path.dirname(target),
                                          libraries=["pthread", "m"],
                                          extra_postargs=pkg_config(
                                              "--libs", packages=LIBRARY_PACKAGES + SERVER_PACKAGES))
        packaged = os.path.join(self.build_lib, "pinfer", "_tool", "pinfer")
        self.mkpath(os.path.dirname(packaged))
        self.copy_file(target, packaged)


extension = Extension(
    "pinfer._pinfer",
    sources=relative([os.path.join(ROOT, "python", "pinfer", "_pinfer.c")]
                     + EXTENSION_LIBRARY_SOURCES),
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
    packages=["pinfer", "pinfer.cpu", "pinfer.serve"],
    ext_modules=[extension],
    cmdclass={"build_ext": build_ext_and_tool},
    # The `pinfer` command: the tool itself in the environment's bin directory (its "data"
    # location is the environment's prefix).
    data_files=[("bin", [TOOL_BUILT])],
    # setuptools' build directories under build/ (which the Makefile owns and `make clean`
    # removes), none in the source tree.
    options={
        "build": {"build_base": "build/setuptools"},
        "egg_info": {"egg_base": "build/setuptools"},
    },
    zip_safe=False,
)

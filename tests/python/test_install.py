"""`make install` and linking against what it installs, as a user's program does:
pkg-config finds both libraries, `pkg-config --static` links the archives, a program
that only plans and launches links no OpenMP runtime and no constructor of ours, and
the runtime library brings OpenMP with it."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PLANNER = r"""
#include <pinfer.h>
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
    pf_launch_request req;
    pf_launch_request_init(&req);
    req.topology = "synthetic:pack:2 core:4 pu:2";
    req.plan.ninstances = 2;
    pf_launch_spec *spec = NULL;
    char *why = NULL;
    if (pf_launch_spec_create(&req, &spec, &why) < 0) {
        fprintf(stderr, "%s\n", why);
        return 1;
    }
    printf("%zu instances, %d threads\n", spec->plan->ninstances, spec->plan->instances[0].threads);
    pf_launch_spec_free(spec);
    return 0;
}
"""

RUNTIME = r"""
#include <pinfer_runtime.h>
#include <stdio.h>
int main(void)
{
    pf_pool *pool = NULL;
    if (pf_pool_from_process(&pool, NULL) < 0)
        return 1;
    size_t n;
    pf_pool_cpus(pool, &n);
    printf("%zu\n", n);
    pf_pool_free(pool);
    return 0;
}
"""


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    dest = tmp_path_factory.mktemp("install")
    subprocess.run(["make", "-s", "install", "DESTDIR=%s" % dest, "PREFIX=/usr",
                    "LIBDIR=/usr/lib"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return dest


def pkg_config(prefix, *args):
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "usr/lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=str(prefix))
    out = subprocess.run(["pkg-config"] + list(args), env=env, check=True,
                         capture_output=True, text=True).stdout
    return out.split()


def needed(path):
    out = subprocess.run(["readelf", "-d", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return [line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def build(tmp_path, name, source, flags):
    src = tmp_path / (name + ".c")
    src.write_text(source)
    exe = tmp_path / name
    subprocess.run(["cc", "-std=c11", "-o", str(exe), str(src)] + flags, check=True)
    return exe


def test_installed_files(prefix):
    for rel in ["usr/bin/pinfer", "usr/include/pinfer.h", "usr/include/pinfer_runtime.h",
                "usr/include/pinfer_serve.h",
                "usr/lib/libpinfer.a", "usr/lib/libpinfer.so.0", "usr/lib/libpinfer-runtime.a",
                "usr/lib/libpinfer-runtime.so.0", "usr/lib/libpinfer-serve.a",
                "usr/lib/libpinfer-serve.so.0", "usr/lib/pkgconfig/pinfer.pc",
                "usr/lib/pkgconfig/pinfer-runtime.pc", "usr/lib/pkgconfig/pinfer-serve.pc",
                "usr/share/man/man1/pinfer.1"]:
        assert (prefix / rel).exists(), rel


def test_core_library_links_no_http_library(prefix):
    """The server is a library of its own: a planner links no HTTP library."""
    deps = needed(prefix / "usr/lib/libpinfer.so.0")
    assert not [d for d in deps if "microhttpd" in d or "libzip" in d], deps
    assert [d for d in needed(prefix / "usr/lib/libpinfer-serve.so.0") if "microhttpd" in d]


SERVER = r"""
#include <pinfer_serve.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    pf_serve_config *cfg = NULL;
    char *why = NULL;
    if (pf_serve_config_parse("", 0, NULL, NULL, &cfg, &why) < 0)
        return 1;
    cfg->inference_address->port = cfg->management_address->port = 0;
    cfg->metrics_address->port = 0;
    pf_server_options o;
    pf_server_options_init(&o);
    o.config = cfg;
    pf_server *srv = NULL;
    if (pf_server_create(&o, &srv, &why) < 0) {
        fprintf(stderr, "%s\n", why);
        return 1;
    }
    int up = pf_server_startup(srv, NULL);
    printf("%d %d\n", up, pf_server_port(srv, PF_SERVE_INFERENCE) > 0);
    pf_server_shutdown(srv, true);
    for (int i = 0; i < 100 && !pf_server_finished(srv); i++)
        pf_server_step(srv);
    pf_server_free(srv);
    pf_serve_config_free(cfg);
    return 0;
}
"""


def test_shared_link_of_a_server(prefix, tmp_path):
    """A program on libpinfer-serve: listens on free ports with no model, ready at once."""
    flags = pkg_config(prefix, "--cflags", "--libs", "pinfer-serve")
    exe = build(tmp_path, "server_so", SERVER, flags)
    env = dict(os.environ, LD_LIBRARY_PATH=str(prefix / "usr/lib"))
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, env=env).stdout
    assert out == "1 1\n"
    assert "libpinfer-serve.so.0" in needed(exe)


def test_core_library_links_no_openmp(prefix):
    deps = needed(prefix / "usr/lib/libpinfer.so.0")
    assert not [d for d in deps if "omp" in d], deps
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(prefix / "usr/lib/libpinfer.so.0")],
                             check=True, capture_output=True, text=True).stdout
    assert "pf_pool_" not in symbols and "pf_pin" not in symbols.replace("pf_pin_", "")
    assert "pf_launch_spec_create" in symbols
    assert [d for d in needed(prefix / "usr/lib/libpinfer-runtime.so.0") if "gomp" in d]


def test_static_link_of_a_planner(prefix, tmp_path):
    """The archives, with pkg-config --static's flags: the program carries libpinfer
    and needs neither libpinfer.so nor an OpenMP runtime."""
    lib = prefix / "usr/lib"
    flags = (pkg_config(prefix, "--cflags", "pinfer")
             + [str(lib / "libpinfer.a")]
             + [f for f in pkg_config(prefix, "--static", "--libs", "pinfer")
                if f != "-lpinfer" and not f.startswith("-L")])
    exe = build(tmp_path, "planner", PLANNER, flags)
    deps = needed(exe)
    assert not [d for d in deps if "pinfer" in d or "omp" in d], deps
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert out == "2 instances, 4 threads\n"


def test_static_link_of_the_runtime(prefix, tmp_path):
    lib = prefix / "usr/lib"
    flags = (pkg_config(prefix, "--cflags", "pinfer-runtime")
             + [str(lib / "libpinfer-runtime.a"), str(lib / "libpinfer.a")]
             + [f for f in pkg_config(prefix, "--static", "--libs", "pinfer-runtime")
                if f not in ("-lpinfer", "-lpinfer-runtime") and not f.startswith("-L")])
    exe = build(tmp_path, "runtime", RUNTIME, flags)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert int(out) == len(os.sched_getaffinity(0))


def test_shared_link(prefix, tmp_path):
    flags = pkg_config(prefix, "--cflags", "--libs", "pinfer")
    exe = build(tmp_path, "planner_so", PLANNER, flags)
    env = dict(os.environ, LD_LIBRARY_PATH=str(prefix / "usr/lib"))
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, env=env).stdout
    assert out == "2 instances, 4 threads\n"
    assert "libpinfer.so.0" in needed(exe)

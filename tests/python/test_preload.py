"""What pinfer preloads into its instances (docs/libraries.md, "What is preloaded"): only
ELF shared objects that nobody but their owner and root may replace.  The issue's case: a
world-writable libtcmalloc.so holding text in ~/.local/lib, $CONDA_PREFIX/lib or
$VIRTUAL_ENV/lib was preloaded into root's instances without a check."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

GOOD = os.path.join(ROOT, "tests", "fixtures", "libtree", "lib", "libtcmalloc.so.4")


def plan(pinfer, env):
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PINFER_PYTHON": "python3"}
    base.update(env)
    proc = subprocess.run([pinfer, "plan", "--topology", "tests/fixtures/worked16.lscpu",
                           "--json"], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("var,sub", [("HOME", ".local/lib"), ("CONDA_PREFIX", "lib"),
                                     ("VIRTUAL_ENV", "lib")])
@pytest.mark.parametrize("content", [b"not a library\n", None])  # text, a real library
def test_world_writable_library_is_not_preloaded(pinfer, tmp_path, var, sub, content):
    libdir = tmp_path / sub
    libdir.mkdir(parents=True)
    lib = libdir / "libtcmalloc.so"
    if content is None:
        shutil.copyfile(GOOD, lib)
    else:
        lib.write_bytes(content)
    lib.chmod(0o666)
    doc = plan(pinfer, {var: str(tmp_path)})
    assert str(lib) not in doc["preload"]
    assert str(lib) not in doc["env"].get("LD_PRELOAD", "")
    assert "%s is writable by everyone (mode 0666): not preloaded" % lib in doc["warnings"]
    # the same file, once only its owner and root may write it, is preloaded if it is a library
    lib.chmod(0o644)
    doc = plan(pinfer, {var: str(tmp_path)})
    assert (str(lib) in doc["preload"]) == (content is None)
    if content is not None:
        assert "%s is not an ELF file: not preloaded" % lib in doc["warnings"]


def test_the_instances_do_not_get_it(pinfer, tmp_path):
    """pinfer run, as the issue ran it: the instance's LD_PRELOAD does not hold the file."""
    lib = tmp_path / ".local" / "lib" / "libtcmalloc.so"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"not a library\n")
    lib.chmod(0o666)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    proc = subprocess.run([pinfer, "run", "--no-python", "sh", "-c", 'echo "[$LD_PRELOAD]"'],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert str(lib) not in proc.stdout
    assert ("pinfer: warning: %s is writable by everyone (mode 0666): not preloaded" % lib
            in proc.stderr.splitlines())


def test_the_users_own_ld_preload_is_kept(pinfer, tmp_path):
    """An LD_PRELOAD entry of the environment is the user's choice (it was preloaded into
    pinfer itself already): kept if it exists, whatever it holds."""
    mine = tmp_path / "libmine.so"
    mine.write_bytes(b"")
    doc = plan(pinfer, {"LD_PRELOAD": "%s:/nonexistent/libgone.so" % mine,
                        "CONDA_PREFIX": os.path.join(ROOT, "tests", "fixtures", "libtree")})
    assert doc["preload"][0] == str(mine)
    assert "LD_PRELOAD entry /nonexistent/libgone.so does not exist: dropped" in doc["warnings"]

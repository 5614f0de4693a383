"""``python -m pinfer ARGS...``: the ``pinfer`` command (plan, run, topo) with these arguments.

The command is the C tool, not Python: this module replaces the interpreter with it
(``os.execv``), so the tool's exit status, signals and process id are the command's own, as
if ``pinfer ARGS...`` had been typed.  The tool is the one ``pip install`` put in the
package (``pinfer/_tool/pinfer``, built by setup.py), else the build tree's ``build/pinfer``
(``make``) when the package runs from the repository.

Two things the import of the package changed are undone before the tool starts, since an
exec keeps them:

- the CPU mask: loading the extension loads the OpenMP runtime, which binds the initial
  thread to one CPU when ``OMP_PROC_BIND``/``OMP_PLACES`` say so (they do inside ``pinfer
  run``'s instances); the tool plans within its own mask, so it gets back every CPU the
  process may use (the mask when pinfer was imported, with OpenMP's places);
- signal dispositions: Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays
  ignored across exec (``pinfer topo | head`` must end the tool as it ends any command).
"""
import os
import signal
import sys

from . import _pinfer

_HERE = os.path.dirname(os.path.abspath(__file__))


def tool_path():
    """The pinfer tool: the package's own copy (pip install), else build/pinfer of the
    repository the package runs from; None when there is neither."""
    candidates = [os.path.join(_HERE, "_tool", "pinfer"),
                  os.path.join(os.path.dirname(os.path.dirname(_HERE)), "build", "pinfer")]
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def main(argv=None):
    """Exec the tool with `argv` (default: this process's arguments); returns only on
    failure, with the exit status the tool gives failures of the machine (1)."""
    args = sys.argv[1:] if argv is None else list(argv)
    path = tool_path()
    if path is None:
        sys.stderr.write("pinfer: error: the pinfer tool is not installed with this package "
                         "(%s): run `make` at the repository root, or install the package "
                         "with pip\n" % _HERE)
        return 1
    try:
        os.sched_setaffinity(0, _pinfer.pool_from_process().cpus)
    except (OSError, RuntimeError, ValueError):
        pass  # the mask stays as it is: the tool still runs, within it
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(path, ["pinfer"] + args)
    except OSError as error:
        sys.stderr.write("pinfer: error: cannot run %s: %s\n" % (path, error.strerror))
        return 1


if __name__ == "__main__":
    sys.exit(main())

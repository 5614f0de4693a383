#!/usr/bin/python3
"""Golden CLI tests: one file per case in tests/cli/*.case.

A case file:

    # what it checks (comment lines at the top)
    args: plan --topology tests/fixtures/worked16.lscpu --ninstances 2 --json
    env: LOCAL_RANK=1                 (optional, repeatable)
    exit: 0
    --- stdout
    <expected standard output, exactly>
    --- stderr
    <expected standard error, exactly>

`args` is split like a shell would (shlex) and run from the repository root
with a clean environment: PATH, PINFER_PYTHON=python3, CONDA_PREFIX set to
the fake library tree tests/fixtures/libtree (searched first, so that the
libraries found do not depend on this machine), and the case's env.  The
repository's path in the output reads <root>.  In args and env, <cpu> is
the first CPU this process may use: a case that runs on this machine names
no CPU by number.
`--update` rewrites the expected parts from what the tool does now (review
the diff before committing).  Prints a line per failure and a closing count,
"golden: N passed, M failed, 0 skipped"; no case at all is a failure.
"""
import argparse
import difflib
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_case(path):
    """The case's head; the expected output is the rest of the file, compared whole."""
    with open(path, encoding="utf-8") as f:
        head = f.read().split("\n--- stdout\n")[0].split("\n")
    case = {"args": None, "env": {}, "exit": 0, "comments": []}
    for line in head:
        if line.startswith("#") or not line.strip():
            case["comments"].append(line)
        elif line.startswith("args:"):
            case["args"] = line[5:].strip()
        elif line.startswith("env:"):
            name, _, value = line[4:].strip().partition("=")
            case["env"][name] = value
        elif line.startswith("exit:"):
            case["exit"] = int(line[5:])
        else:
            raise ValueError("%s: cannot read line %r" % (path, line))
    if case["args"] is None:
        raise ValueError("%s: no args line" % path)
    return case


def render(case, out, err, status):
    lines = list(case["comments"])
    lines.append("args: " + case["args"])
    for name, value in case["env"].items():
        lines.append("env: %s=%s" % (name, value))
    lines.append("exit: %d" % status)
    text = "\n".join(lines) + "\n--- stdout\n" + out + "--- stderr\n" + err
    return text


def placeholders(text):
    return text.replace("<root>", ROOT).replace("<cpu>", str(min(os.sched_getaffinity(0))))


def run_case(pinfer, case):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PINFER_PYTHON": "python3",
           "CONDA_PREFIX": os.path.join(ROOT, "tests", "fixtures", "libtree")}
    env.update({k: placeholders(v) for k, v in case["env"].items()})
    argv = [placeholders(a) for a in shlex.split(case["args"])]
    proc = subprocess.run([pinfer] + argv, cwd=ROOT, env=env, capture_output=True,
                          timeout=60)
    out = proc.stdout.decode("utf-8", "replace").replace(ROOT, "<root>")
    err = proc.stderr.decode("utf-8", "replace").replace(ROOT, "<root>")
    return out, err, proc.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pinfer", default=os.path.join(ROOT, "build", "pinfer"))
    ap.add_argument("--update", action="store_true")
    ap.add_argument("cases", nargs="*")
    opts = ap.parse_args()
    pinfer = os.path.abspath(opts.pinfer)
    cases = opts.cases or sorted(
        os.path.join(ROOT, "tests", "cli", f) for f in os.listdir(os.path.join(ROOT, "tests", "cli"))
        if f.endswith(".case"))
    passed = failed = 0
    for path in cases:
        with open(path, encoding="utf-8") as f:
            original = f.read()
        case = parse_case(path)
        out, err, status = run_case(pinfer, case)
        got = render(case, out, err, status)
        if opts.update:
            if got != original:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(got)
                print("updated", os.path.relpath(path, ROOT))
            passed += 1
            continue
        if got == original:
            passed += 1
        else:
            failed += 1
            print("FAIL", os.path.relpath(path, ROOT))
            for line in difflib.unified_diff(original.splitlines(), got.splitlines(),
                                             "expected", "got", lineterm="", n=2):
                print("    " + line)
    print("golden: %d passed, %d failed, 0 skipped" % (passed, failed))
    if passed + failed == 0:
        print("golden: error: no case ran")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""What the user typed, shown back: a message is one line whatever the arguments hold
(newlines, escape sequences are written as \\n, \\x1b), and `plan --json` stays valid
JSON when arguments are not UTF-8."""
import json
import os
import subprocess


def run(pinfer, *args):
    proc = subprocess.run([pinfer] + [os.fsencode(a) if isinstance(a, str) else a for a in args],
                          capture_output=True, timeout=30)
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


def test_unknown_command_with_control_characters(pinfer):
    status, _, err = run(pinfer, "pla\nn\x1b[31m")
    assert status == 2
    assert err == ("pinfer: error: unknown command 'pla\\nn\\x1b[31m' "
                   "(commands: run, plan, topo, serve, check, bench, tune)\n")


def test_program_with_a_newline(pinfer):
    status, _, err = run(pinfer, "run", "--no-python", "/nonexistent/a\nb")
    assert status == 127
    assert err == "pinfer: error: cannot run /nonexistent/a\\nb: No such file or directory\n"


def test_option_value_with_control_characters(pinfer):
    status, _, err = run(pinfer, "plan", "--ninstances", "2\n3")
    assert status == 2
    assert err == "pinfer: error: --ninstances: '2\\n3' is not an integer\n"


def test_plan_json_with_bytes_that_are_not_utf8(pinfer):
    status, out, _ = run(pinfer, "plan", "--json", "--no-python", b"a\xffb", "\u00e9")
    assert status == 0
    doc = json.loads(out.decode("utf-8"))  # valid UTF-8, valid JSON
    assert doc["command"] == ["a\ufffdb", "\u00e9"]

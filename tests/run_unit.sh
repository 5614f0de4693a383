#!/usr/bin/env bash
# Run each cmocka test program in its own process with a timeout; print one
# line per program, its skipped tests with their reasons, and a closing count
# of the tests inside them: "unit: N passed, M failed, K skipped".
#
# The counts are cmocka's closing summary: what follows the program's last
# "[==========] N test(s) run." line (the summaries of the children a program
# starts come before it, on stderr).  A program counts one failure when it
# crashes, times out, reports a sanitizer error or exits non-zero without
# counting a failure, prints no summary, runs no test, or when its passed,
# failed and skipped do not add up to the tests it ran.  A skipped test's
# reason is the "[  SKIP    ] ..." line SKIP_BECAUSE (tests/unit/pf_test.h)
# printed while it ran.  No program, or no test passed or failed: a failure.
set -u
timeout_s=${PF_TEST_TIMEOUT:-300}
passed=0 failed=0 skipped=0
for t in "$@"; do
    out=$(timeout "$timeout_s" "$t" 2>&1)
    rc=$?
    summary=$(printf '%s\n' "$out" |
        awk '/^\[==========\] [0-9]+ test\(s\) run\.$/ {found = 1; s = ""}
             found {s = s $0 "\n"}
             END {printf "%s", s}')
    count() { printf '%s\n' "$summary" | sed -n "s/$1/\\1/p" | head -1; }
    ran=$(count '^\[==========\] \([0-9][0-9]*\) test(s) run\.$')
    ok=$(count '^\[  PASSED  \] \([0-9][0-9]*\) test(s)\.$')
    bad=$(count '^\[  FAILED  \] \([0-9][0-9]*\) test(s), listed below:$')
    skip=$(count '^\[  SKIPPED \] \([0-9][0-9]*\) test(s), listed below:$')
    ok=${ok:-0} bad=${bad:-0} skip=${skip:-0}
    why=""
    if [ -z "$ran" ]; then
        why="no cmocka summary"
    elif [ "$ran" -eq 0 ]; then
        why="ran no test"
    elif [ $((ok + bad + skip)) -ne "$ran" ]; then
        why="ran $ran tests: $ok passed, $bad failed, $skip skipped do not add up"
    elif [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then
        why="exit $rc" # crashed, timed out or sanitizer report
    fi
    [ -n "$why" ] && [ "$bad" -eq 0 ] && bad=1
    passed=$((passed + ok))
    failed=$((failed + bad))
    skipped=$((skipped + skip))
    name=$(basename "$t")
    if [ $rc -eq 0 ] && [ -z "$why" ] && [ "$bad" -eq 0 ]; then
        printf 'ok   %-32s %3d passed, %d skipped\n' "$name" "$ok" "$skip"
    else
        printf 'FAIL %-32s exit %d%s\n' "$name" $rc "${why:+ ($why)}"
        printf '%s\n' "$out" | sed 's/^/    /' | tail -60
    fi
    # Each skipped test of the closing list, with its reason.
    printf '%s\n' "$out" | awk '
        /^\[ RUN      \] / {test = substr($0, 14)}
        /^\[  SKIP    \] / {reason[test] = substr($0, 14)}
        /^\[==========\] [0-9]+ test\(s\) run\.$/ {closing = 1; n = 0}
        closing && /^\[  SKIPPED \] [^0-9]/ {names[n++] = substr($0, 14)}
        END {
            for (i = 0; i < n; i++)
                printf "     skipped %s%s\n", names[i], \
                       names[i] in reason ? ": " reason[names[i]] : ""
        }'
done
echo "unit: $passed passed, $failed failed, $skipped skipped"
if [ $((passed + failed)) -eq 0 ]; then
    echo "unit: error: no test ran"
    exit 1
fi
[ $failed -eq 0 ]

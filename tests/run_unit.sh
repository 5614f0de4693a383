#!/usr/bin/env bash
# Run each cmocka test program in its own process with a timeout; print one
# line per program and a closing count of the tests inside them.
set -u
timeout_s=${PF_TEST_TIMEOUT:-300}
passed=0 failed=0
for t in "$@"; do
    out=$(timeout "$timeout_s" "$t" 2>&1)
    rc=$?
    ok=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    bad=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    ok=${ok:-0} bad=${bad:-0}
    if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then
        bad=1 # crashed, timed out or sanitizer report: count the program as one failure
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [ $rc -eq 0 ]; then
        printf 'ok   %-32s %3d tests\n' "$(basename "$t")" "$ok"
    else
        printf 'FAIL %-32s exit %d\n' "$(basename "$t")" $rc
        printf '%s\n' "$out" | sed 's/^/    /' | tail -60
    fi
done
echo "unit: $passed passed, $failed failed"
[ $failed -eq 0 ]

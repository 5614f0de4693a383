#!/usr/bin/env bash
# Run every libFuzzer target in build-fuzz/ for a bounded time on a scratch
# copy of its seed corpus (tests/fuzz/corpus/<name without fuzz_>/, plus the
# topology fixtures for the lscpu target), with tests/fuzz/<name>.dict as
# its dictionary when there is one; then, as one more target, the Python
# hint matcher's seeded property test (tests/python/test_hints_fuzz.py:
# MultiStreamModule's hints, which libFuzzer cannot drive) on /usr/bin/python3.
# PF_FUZZ_SECONDS sets the time of each.  A skipped Python test fails.
# Ends with "fuzz: N passed, M failed, 0 skipped"; no libFuzzer target fails.
set -u
seconds=${PF_FUZZ_SECONDS:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0 targets=0
for bin in "$root"/build-fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    targets=$((targets + 1))
    name=$(basename "$bin")
    seeds="$root/tests/fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    extra=() dict=()
    [ "$name" = fuzz_lscpu ] && extra=("$root/tests/fixtures")
    [ -f "$root/tests/fuzz/$name.dict" ] && dict=(-dict="$root/tests/fuzz/$name.dict")
    if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
        -artifact_prefix="$work/" "$work" "$seeds" "${extra[@]}" >"$work.log" 2>&1; then
        passed=$((passed + 1))
        echo "ok   $name ($(grep -o 'Done [0-9]* runs' "$work.log" | tail -1))"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        tail -30 "$work.log" | sed 's/^/    /'
        ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null | sed 's/^/    artifact: /'
    fi
    rm -rf "$work" "$work.log"
done

# The Python-side parsers libFuzzer cannot drive, as seeded property tests (a new
# seed each run, printed with the replay command on failure): MultiStreamModule's
# hint matcher, and the serving worker's frame reader and v2 tensor parser.
python_fuzz() {
    local name=$1 tests=$2 pattern=$3
    local log
    log=$(mktemp)
    # shellcheck disable=SC2086
    if PF_FUZZ_SECONDS=$seconds /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider \
        $tests >"$log" 2>&1 && ! grep -qE '[0-9]+ skipped' "$log"; then
        passed=$((passed + 1))
        echo "ok   $name ($(grep -oE "$pattern" "$log" | tail -1))"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        tail -40 "$log" | sed 's/^/    /'
    fi
    rm -f "$log"
}
python_fuzz test_hints_fuzz.py \
    "$root/tests/python/test_hints_fuzz.py::test_the_hint_matcher_keeps_its_promises" \
    'hints fuzz: [0-9]* cases of seed [0-9]*'
python_fuzz test_serve_fuzz.py "$root/tests/python/test_serve_fuzz.py" \
    'serve fuzz [^:]*: [0-9]* cases of seed [0-9]*'

echo "fuzz: $passed passed, $failed failed, 0 skipped"
if [ $targets -eq 0 ]; then
    echo "fuzz: error: no fuzz target in $root/build-fuzz"
    exit 1
fi
[ $failed -eq 0 ]

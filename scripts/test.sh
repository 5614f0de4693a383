#!/usr/bin/env bash
# Set up, build and run every test of pinfer; end with one summary line.
#
#   bash scripts/test.sh
#
# Suites: C unit tests (cmocka), CLI golden tests, Python tests (pytest on
# /usr/bin/python3: the launcher's, the reference planner's and the pinfer
# package's, the latter once more with LD_PRELOAD of libiomp5.so, and its pip
# install into a fresh venv), the unit and golden suites again under AddressSanitizer
# + UndefinedBehaviorSanitizer, pinfer serve's end-to-end tests with that build, the runtime's executor and streams tests under
# ThreadSanitizer, the fuzz targets for a bounded time (PF_FUZZ_SECONDS,
# default 30 each: the libFuzzer targets and the Python hint matcher's
# property test, tests/run_fuzz.sh), and the style check.
#
# Counting.  Every suite ends with "<name>: N passed, M failed, K skipped"
# (a line without ", K skipped" reads as K = 0).  Skipped tests are counted,
# never dropped: cmocka's "[  SKIPPED ] N test(s)" (tests/run_unit.sh lists
# each skipped test with its reason); pytest's "N skipped" plus "N xfailed"
# (pytest -rs lists the reasons; errors count as failed, xpassed as passed);
# golden, fuzz, build and style skip nothing.  A test that re-runs others in
# a child (test_pin.c's variants, test_pinfer_examples.py's re-runs) is
# itself skipped when the child skipped any of them.  A suite also counts
# one failure, with a message, when
#   - it prints no such line (it did not get to the end),
#   - it ran no test: 0 passed and 0 failed (pytest's "no tests collected",
#     exit 5, is one),
#   - it exits non-zero without counting a failure (a crash, a build error).
# Tests choose their CPUs from those this process may use, never by number,
# so every suite runs whole on any machine and under taskset; what needs
# more CPUs than there are is skipped, and shows in the K of its suite.
# The last line is "all: N passed, M failed, K skipped" over every suite;
# the status is non-zero when M is.
set -u
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1

summary=()
total_passed=0
total_failed=0
total_skipped=0

# Run a suite; its output must end with "<name>: N passed, M failed, K skipped".
suite() {
    local name=$1
    shift
    echo
    echo "== $name"
    local log
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line
    line=$(grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -1)
    rm -f "$log"
    local p f k why=""
    p=$(printf '%s' "$line" | sed -n 's/^[a-z-]*: \([0-9]*\) passed.*/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    k=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) skipped$/\1/p')
    p=${p:-0} f=${f:-0} k=${k:-0}
    if [ -z "$line" ]; then
        why="no closing count line, exit $rc"
    elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        why="ran no test, exit $rc"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        why="exit $rc without a failed test" # build error, crash
    fi
    if [ -n "$why" ]; then
        echo "test.sh: $name: $why: counted as a failure"
        [ "$f" -eq 0 ] && f=1
    fi
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    total_skipped=$((total_skipped + k))
    summary+=("$(printf '%-30s %5d passed, %d failed, %d skipped%s' "$name" "$p" "$f" "$k" \
        "${why:+  ($why)}")")
}

# pytest, its skip reasons listed (-rs); exit 5, no tests collected, stays a failure.  The
# hint matcher's fuzz test runs its short default here (PF_FUZZ_SECONDS unset): the fuzz
# suite runs it for PF_FUZZ_SECONDS.
pytest_suite() {
    PF_FUZZ_SECONDS= PINFER_TEST_PIP=1 /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider \
        tests/python "$@"
}

# pytest's own closing line reads "1 failed, 200 passed, 3 skipped in 40.12s" (its parts
# in any order); restate it in the common form.  Arguments: the pytest command to run
# (default: every Python test).
python_suite() {
    local log
    log=$(mktemp)
    if [ $# -eq 0 ]; then set -- pytest_suite; fi
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line
    line=$(grep -E '(passed|failed|skipped|errors?|xfailed|xpassed|no tests ran).* in [0-9.]+s' \
        "$log" | tail -1)
    rm -f "$log"
    count() { printf '%s\n' "$line" | grep -oE "[0-9]+ ($1)( |,|$)" | awk '{s += $1} END {print s + 0}'; }
    echo "python: $(($(count passed) + $(count xpassed))) passed," \
        "$(($(count failed) + $(count 'errors?'))) failed," \
        "$(($(count skipped) + $(count xfailed))) skipped"
    return $rc
}

# pinfer serve and pinfer bench end to end with their ASan + UBSan build: a leak or an
# error makes the server exit non-zero, which every test's teardown checks (and bench's
# status, and its serve children's, which it reports).
serve_san_suite() {
    make -s SAN=1 build-san/pinfer >/dev/null || return 1
    PINFER_TEST_BIN=build-san/pinfer python_suite /usr/bin/python3 -m pytest -q -rs \
        -p no:cacheprovider tests/python/test_serve.py tests/python/test_bench.py \
        tests/python/test_tune.py
}

suite "build" bash -c 'make -j2 all >/dev/null && make python >/dev/null &&
    echo "build: 1 passed, 0 failed, 0 skipped"'
suite "unit (C, cmocka)" make -s unit
suite "golden (CLI)" make -s golden
suite "python (pytest)" python_suite
suite "unit under ASan+UBSan" make -s SAN=1 unit
suite "serve, bench, tune under ASan+UBSan" serve_san_suite
suite "golden under ASan+UBSan" make -s SAN=1 golden
suite "executors, streams under TSan" make -s tsan
suite "fuzz (libFuzzer, hints)" bash -c 'make -s fuzz >/dev/null && tests/run_fuzz.sh'
suite "style" tests/check_style.sh

echo
echo "== summary"
for line in "${summary[@]}"; do
    echo "$line"
done
echo "all: $total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" -eq 0 ]

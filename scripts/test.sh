#!/usr/bin/env bash
# Set up, build and run every test of pinfer; end with one summary line.
#
#   bash scripts/test.sh
#
# Suites: C unit tests (cmocka), CLI golden tests, Python tests (pytest on
# /usr/bin/python3: the launcher's, the reference planner's and the pinfer
# package's, the latter once more with LD_PRELOAD of libiomp5.so, and its pip
# install into a fresh venv), the unit and golden suites again under AddressSanitizer
# + UndefinedBehaviorSanitizer, the runtime's executor and streams tests under
# ThreadSanitizer, the libFuzzer targets for a bounded time
# (PF_FUZZ_SECONDS, default 30 each), and the style check.
set -u
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

summary=()
total_passed=0
total_failed=0

# Run a suite; its output must end with "<name>: N passed, M failed".
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
    line=$(grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    local p f
    p=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    p=${p:-0} f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # the suite failed without counting it (build error, crash)
    fi
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    summary+=("$(printf '%-28s %5d passed, %d failed' "$name" "$p" "$f")")
    rm -f "$log"
}

pytest_suite() {
    PINFER_TEST_PIP=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python "$@"
    local rc=$?
    [ $rc -eq 5 ] && rc=0 # no tests collected is not a failure of the code
    return $rc
}

# pytest's own closing line reads "N passed in Xs"; restate it in the common form.
python_suite() {
    local log
    log=$(mktemp)
    pytest_suite 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local p f
    p=$(grep -oE '[0-9]+ passed' "$log" | tail -1 | cut -d' ' -f1)
    f=$(grep -oE '[0-9]+ (failed|error)' "$log" | awk '{s+=$1} END {print s+0}')
    echo "python: ${p:-0} passed, ${f:-0} failed"
    rm -f "$log"
    return $rc
}

suite "build" bash -c 'make -j2 all >/dev/null && make python >/dev/null && echo "build: 1 passed, 0 failed"'
suite "unit (C, cmocka)" make -s unit
suite "golden (CLI)" make -s golden
suite "python (pytest)" python_suite
suite "unit under ASan+UBSan" make -s SAN=1 unit
suite "golden under ASan+UBSan" make -s SAN=1 golden
suite "executors, streams under TSan" make -s tsan
suite "fuzz (libFuzzer)" bash -c 'make -s fuzz >/dev/null && tests/run_fuzz.sh'
suite "style" tests/check_style.sh

echo
echo "== summary"
for line in "${summary[@]}"; do
    echo "$line"
done
echo "all: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]

#!/usr/bin/env bash
# Run every libFuzzer target in build-fuzz/ for a bounded time on a scratch
# copy of its seed corpus (tests/fuzz/corpus/<name without fuzz_>/, plus the
# topology fixtures for the lscpu target), with tests/fuzz/<name>.dict as
# its dictionary when there is one.  PF_FUZZ_SECONDS sets the time.
# Ends with "fuzz: N passed, M failed, 0 skipped"; no target at all fails.
set -u
seconds=${PF_FUZZ_SECONDS:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0
for bin in "$root"/build-fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
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
echo "fuzz: $passed passed, $failed failed, 0 skipped"
if [ $((passed + failed)) -eq 0 ]; then
    echo "fuzz: error: no fuzz target in $root/build-fuzz"
    exit 1
fi
[ $failed -eq 0 ]

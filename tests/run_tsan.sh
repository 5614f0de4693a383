#!/usr/bin/env bash
# Run the ThreadSanitizer builds of the runtime tests (make tsan builds them in
# build-tsan/) like the unit tests, one process each; end with
# "tsan: N passed, M failed, K skipped".
#
# They are built with clang against LLVM's libomp, whose Archer tool makes TSan
# aware of OpenMP's barriers; libomp itself is not instrumented, so reports
# from inside it are ignored (ignore_noninstrumented_modules).  Any report
# makes the program exit non-zero, which counts as a failure.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- "$root"/build-tsan/test_*
export TSAN_OPTIONS="ignore_noninstrumented_modules=1 halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
"$root/tests/run_unit.sh" "$@" | sed 's/^unit: /tsan: /'
exit "${PIPESTATUS[0]}"

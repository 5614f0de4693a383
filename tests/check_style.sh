#!/usr/bin/env bash
# The written-down style, checked: no banned calls in the C sources, and
# every C file formatted as the committed .clang-format says.
set -u
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src tools tests bench include -name '*.[ch]')
passed=0 failed=0
banned='\b(sprintf|vsprintf|strcpy|strcat|atoi|atol|atoll|gets|strtok)[[:space:]]*\('
if hits=$(grep -nE "$banned" $files); then
    echo "banned calls (use snprintf, memcpy with a length, strtol, strtok_r):"
    printf '%s\n' "$hits" | sed 's/^/    /'
    failed=$((failed + 1))
else
    passed=$((passed + 1))
fi
if command -v clang-format >/dev/null; then
    if out=$(clang-format --dry-run --Werror $files 2>&1); then
        passed=$((passed + 1))
    else
        echo "not formatted (run: clang-format -i \$(git ls-files '*.c' '*.h')):"
        printf '%s\n' "$out" | grep -E '^[^ ].*: (error|warning)' | cut -d: -f1 | sort -u | sed 's/^/    /'
        failed=$((failed + 1))
    fi
else
    echo "clang-format is not installed (scripts/setup.sh installs it): the format is unchecked"
    failed=$((failed + 1))
fi
echo "style: $passed passed, $failed failed, 0 skipped"
[ $failed -eq 0 ]

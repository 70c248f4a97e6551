#!/usr/bin/env bash
# tests/lint/selftest.sh <root> — proves the include-direction lint can fail.
#
# Runs scripts/lint_includes.sh on two fixture trees: good/ (every allowed direction)
# must pass; bad/ (good/ plus one violation per file) must fail and report exactly
# the file:line pairs listed in tests/lint/expected_violations.txt.
set -uo pipefail

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
lint="$root/scripts/lint_includes.sh"
fixtures="$root/tests/lint/fixtures"
fail=0

if ! out=$(bash "$lint" "$fixtures/good" 2>&1); then
    echo "FAIL: the lint rejects the good tree:"
    echo "$out"
    fail=1
else
    echo "ok: good tree passes ($out)"
fi

out=$(bash "$lint" "$fixtures/bad" 2>&1)
rc=$?
if [[ $rc -ne 1 ]]; then
    echo "FAIL: the lint exits $rc on the bad tree (want 1):"
    echo "$out"
    fail=1
fi
got=$(printf '%s\n' "$out" | grep -oE '^[^ :]+:[0-9]+' | sort)
want=$(grep -vE '^(#|$)' "$root/tests/lint/expected_violations.txt" | sort)
if [[ "$got" != "$want" ]]; then
    echo "FAIL: violations reported differ from tests/lint/expected_violations.txt"
    diff <(echo "$want") <(echo "$got") | sed 's/^/  /'
    echo "lint output:"
    echo "$out"
    fail=1
else
    echo "ok: bad tree fails with the $(echo "$want" | wc -l) expected violations"
fi

exit $fail

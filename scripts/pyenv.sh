#!/usr/bin/env bash
# scripts/pyenv.sh — the Python virtual environment of the HTTP integration tests
# (tests/http/), tools/bench_http.py and the deployment checks (docker/tests/):
# <root>/.venv (gitignored), made from tests/http/requirements.txt (every version
# pinned) plus docker/requirements.txt when that file exists (issue 8's pins).
#
#   bash scripts/pyenv.sh          create or refresh .venv when missing or stale
#   bash scripts/pyenv.sh --check  exit 1 (saying why) when missing or stale; change nothing
#
# Stale: the venv's stamp (.venv/.requirements.sha256) differs from the sha256 of
# the requirement files, or its python no longer runs.  A stale venv is
# rebuilt from scratch (--clear), so removed pins do not linger.  scripts/setup.sh
# calls this after the Debian packages (python3-venv, scripts/packages.txt).
# Environment: DIFFUSIOND_PYTHON (the interpreter that makes the venv; default
# Debian's /usr/bin/python3 when present, else python3 on the PATH),
# DIFFUSIOND_SKIP_PYENV=1 (do nothing), PIP_* (pip's own settings, e.g. PIP_INDEX_URL).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
reqs=("$root/tests/http/requirements.txt")
[[ -f "$root/docker/requirements.txt" ]] && reqs+=("$root/docker/requirements.txt")
stamp="$venv/.requirements.sha256"

say() { printf '==> pyenv: %s\n' "$*"; }

if [[ -n "${DIFFUSIOND_SKIP_PYENV:-}" ]]; then
    say "skipped (DIFFUSIOND_SKIP_PYENV is set)"
    exit 0
fi

want=$(cat "${reqs[@]}" | sha256sum | awk '{ print $1 }')

# Prints why the venv is not usable; nothing when it is.
stale_reason() {
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "$venv/bin/python is missing"
    elif ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        echo "$venv/bin/python does not run"
    elif [[ ! -f "$stamp" ]]; then
        echo "no stamp (an interrupted install?)"
    elif [[ "$(cat "$stamp")" != "$want" ]]; then
        echo "the requirement files changed since it was made"
    fi
}

reason=$(stale_reason)
if [[ "${1:-}" == "--check" ]]; then
    if [[ -n "$reason" ]]; then
        echo "pyenv: $venv is not usable: $reason (run scripts/pyenv.sh)" >&2
        exit 1
    fi
    exit 0
fi
if [[ -z "$reason" ]]; then
    say "$venv up to date"
    exit 0
fi

python=${DIFFUSIOND_PYTHON:-}
if [[ -z "$python" ]]; then
    if [[ -x /usr/bin/python3 ]]; then python=/usr/bin/python3; else python=python3; fi
fi
say "making $venv with $python ($reason)"
rm -f "$stamp"
"$python" -m venv --clear "$venv"
req_args=()
for r in "${reqs[@]}"; do req_args+=(-r "$r"); done
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${req_args[@]}"
echo "$want" >"$stamp"
say "$venv ready ($("$venv/bin/python" --version 2>&1); $(cat "${reqs[@]}" | grep -c '==') pinned packages)"

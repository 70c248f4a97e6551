#!/usr/bin/env bash
# tests/http/run.sh <module|spec> <diffusiond binary> — one HTTP integration suite for
# ctest: the Python unittest module tests/http/<module>.py run by the project's venv
# (<root>/.venv, made by scripts/pyenv.sh) against <diffusiond binary>; `spec` only
# validates api/openapi.yaml.  A missing or stale venv, or a missing binary, FAILS
# (exit 1) with the reason: these suites are never skipped.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
suite=${1:?usage: run.sh <module|spec> <diffusiond binary>}
bin=${2:?usage: run.sh <module|spec> <diffusiond binary>}

if ! bash "$root/scripts/pyenv.sh" --check; then
    echo "tests/http: FAIL — the Python venv is missing or stale; run: bash scripts/pyenv.sh" >&2
    exit 1
fi
if [[ "$suite" == spec ]]; then
    exec "$root/.venv/bin/openapi-spec-validator" "$root/api/openapi.yaml"
fi
if [[ ! -x "$bin" ]]; then
    echo "tests/http: FAIL — diffusiond binary not found: $bin" >&2
    exit 1
fi
export DIFFUSIOND_BIN=$bin DIFFUSIOND_ROOT=$root PYTHONDONTWRITEBYTECODE=1
cd "$here"
exec "$root/.venv/bin/python" -m unittest -v "$suite"

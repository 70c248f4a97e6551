#!/usr/bin/env bash
# scripts/run.sh [args…] — the README's first command: install what is missing,
# build (Release, build/), and run the service: `diffusiond serve` on the bundled
# default model (models/default), listening on 127.0.0.1:8080 unless told otherwise.
# Arguments go to `diffusiond serve` (`bash scripts/run.sh --help` lists them; every
# option is also a DIFFUSIOND_* environment variable).
set -euo pipefail
# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

diffusiond_setup
bin="$DIFFUSIOND_ROOT/build/server/diffusiond"

"$bin" version
host=${DIFFUSIOND_HOST:-127.0.0.1}
port=${DIFFUSIOND_PORT:-8080}
diffusiond_say "starting diffusiond serve $*; once /readyz answers 200, try:"
diffusiond_say "  curl -s http://$host:$port/v1/images/generations -H 'Content-Type: application/json' \\"
diffusiond_say "    -d '{\"prompt\": \"a red circle on a blue background\"}' | python3 -c \\"
diffusiond_say "    'import sys,json,base64; open(\"out.png\",\"wb\").write(base64.b64decode(json.load(sys.stdin)[\"data\"][0][\"b64_json\"]))'"
exec "$bin" serve "$@"

#!/usr/bin/env bash
# scripts/run.sh [args…] — the README's first command: install what is missing,
# build (Release, build/), and run the main job.
#
# The main job is `diffusiond serve` on the bundled default model once the HTTP
# service and the model exist.  Until then it is the most complete thing the CLI
# does: `diffusiond version` (build and CUDA devices) and `diffusiond bench ops`
# (the engine's heaviest ops against the machine's measured peak).  Arguments are
# passed to that command.
set -euo pipefail
# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

diffusiond_setup
bin="$DIFFUSIOND_ROOT/build/server/diffusiond"

diffusiond_say "diffusiond version"
"$bin" version
diffusiond_say "'diffusiond serve' (the HTTP service on the bundled model) is not built yet;" \
    "running the most complete job the CLI has today: diffusiond bench ops $*"
exec "$bin" bench ops "$@"

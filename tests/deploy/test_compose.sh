#!/usr/bin/env bash
# tests/deploy/test_compose.sh <source root> — docker/compose.yaml parses with the
# compose client (`docker compose` when the plugin is there, else Debian's
# docker-compose, scripts/packages.txt) in both profiles, and holds what docs/deploy.md
# promises: the healthcheck self-probe, the read-only /models mount, one GPU per
# container, a Prometheus whose scrape targets are the compose services.  promtool
# (Debian's prometheus) checks docker/prometheus.yml where it is installed.
# Exit 77 (skip) without a compose client, except under CI=true, where that fails.
set -euo pipefail

root=$(cd "$1" && pwd)
file="$root/docker/compose.yaml"
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    [[ "${CI:-}" == true ]] && fail "no compose client (docker-compose is in scripts/packages.txt)"
    echo "skip: no compose client"
    exit 77
fi
echo "compose client: $("${compose[@]}" version 2>&1 | head -n1)"

unset DIFFUSIOND_MODELS_DIR
"${compose[@]}" -f "$file" config -q || fail "compose config (default profile)"
"${compose[@]}" -f "$file" --profile gpu config -q || fail "compose config (profile gpu)"
services=$("${compose[@]}" -f "$file" --profile gpu config --services | sort | tr '\n' ' ')
[[ "$services" == "diffusiond diffusiond-gpu0 diffusiond-gpu1 prometheus " ]] ||
    fail "gpu profile services: $services"

out=$("${compose[@]}" -f "$file" --profile gpu config)
# Per service: its block of the rendered config (2-space indented service keys).
block() { awk -v s="  $1:" '$0 == s { on = 1; next } on && /^  [^ ]/ { on = 0 } on' <<<"$out"; }
for s in diffusiond diffusiond-gpu0 diffusiond-gpu1; do
    b=$(block "$s")
    grep -q -- "- healthcheck" <<<"$b" || fail "$s: healthcheck runs diffusiond healthcheck"
    grep -Eq -- ":/models(:ro)?$|target: /models" <<<"$b" || fail "$s: /models mounted"
    grep -q -- "/models:ro" <<<"$b" || grep -q "read_only: true" <<<"$(grep -A4 'target: /models' <<<"$b")" ||
        fail "$s: /models read-only"
    grep -q "read_only: true" <<<"$b" || fail "$s: read-only root file system"
    grep -q "DIFFUSIOND_HOST: 0.0.0.0" <<<"$b" || fail "$s: DIFFUSIOND_HOST=0.0.0.0"
    grep -q "stop_grace_period" <<<"$b" || fail "$s: stop_grace_period set"
done
for i in 0 1; do
    b=$(block "diffusiond-gpu$i")
    grep -A1 "device_ids:" <<<"$b" | grep -q "'$i'" || fail "diffusiond-gpu$i reserves GPU $i only"
    grep -q "driver: nvidia" <<<"$b" || fail "diffusiond-gpu$i: nvidia device reservation"
done
block diffusiond | grep -q "device_ids" && fail "the CPU service reserves no GPU"
# The GPU services start only with --profile gpu (docker-compose v1 renders every
# service whatever the profile, v2 only the active ones: the profiles key is checked).
for s in diffusiond prometheus; do
    block "$s" | grep -q "^    profiles:" && fail "$s runs in the default profile"
done
for s in diffusiond-gpu0 diffusiond-gpu1; do
    block "$s" | grep -A1 "^    profiles:" | grep -q -- "- gpu" || fail "$s is in profile gpu"
done

# Every Prometheus target is a compose service on the container port.
prom="$root/docker/prometheus.yml"
targets=$(grep -o '"[a-z0-9-]*:[0-9]*"' "$prom" | tr -d '"')
[[ -n "$targets" ]] || fail "prometheus.yml has targets"
for t in $targets; do
    grep -qx "  ${t%%:*}:" <<<"$out" || fail "prometheus target $t is not a compose service"
    [[ ${t##*:} == 8080 ]] || fail "prometheus target $t: the container port is 8080"
done
grep -q "prometheus.yml:/etc/prometheus/prometheus.yml:ro" <<<"$(block prometheus)" ||
    fail "prometheus mounts docker/prometheus.yml"
if command -v promtool >/dev/null 2>&1; then
    promtool check config "$prom" || fail "promtool check config"
else
    echo "promtool not installed: prometheus.yml checked for targets only"
fi
echo "deploy compose: ok"

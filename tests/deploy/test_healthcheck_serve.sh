#!/usr/bin/env bash
# tests/deploy/test_healthcheck_serve.sh <diffusiond> <source root> — `diffusiond
# healthcheck` against the real `diffusiond serve` on a loopback port with the tiny
# fixture model: down before it starts (exit 1, "refused"), healthy once ready (exit 0
# on /readyz and /livez, also from DIFFUSIOND_HOST=0.0.0.0/DIFFUSIOND_PORT alone, as in
# the image), exit 1 naming the code for a 404, and down again after SIGTERM (serve
# exits 0).  Exit 77 (skip) while this binary has no `serve` command.
set -euo pipefail

bin=$1
root=$(cd "$2" && pwd)
model="$root/tests/fixtures/sd/sd1-tiny/diffusers"
tmp=$(mktemp -d)
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [[ -f "$tmp/serve.log" ]] && tail -n 30 "$tmp/serve.log" >&2
    exit 1
}

if ! "$bin" serve --help >/dev/null 2>&1; then
    "$bin" --help | grep -q '^  serve ' && fail "serve is listed but 'serve --help' fails"
    echo "skip: this diffusiond has no serve command yet"
    exit 77
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
hc() { "$bin" healthcheck --host 127.0.0.1 --port "$port" --timeout-ms 2000 "$@"; }

rc=0
hc 2>"$tmp/err" || rc=$?
{ [[ $rc -eq 1 ]] && grep -q "refused" "$tmp/err"; } || fail "before serve: exit $rc, $(cat "$tmp/err")"

env -u DIFFUSIOND_MODEL "$bin" serve --model "$model" --host 127.0.0.1 --port "$port" --threads 1 \
    >"$tmp/serve.log" 2>&1 &
pid=$!
t0=$SECONDS
until hc >"$tmp/out" 2>"$tmp/err"; do
    kill -0 "$pid" 2>/dev/null || fail "serve exited before it was ready"
    ((SECONDS - t0 < 60)) || fail "not ready within 60 s: $(cat "$tmp/err")"
    sleep 0.2
done
grep -q "^healthy: GET http://127.0.0.1:$port/readyz -> 200 in [0-9]* ms" "$tmp/out" ||
    fail "healthy line: $(cat "$tmp/out")"
echo "ready after $((SECONDS - t0)) s: $(cat "$tmp/out")"
hc --path /livez >/dev/null || fail "/livez healthy"
hc --path /healthz >/dev/null || fail "/healthz healthy"
DIFFUSIOND_HOST=0.0.0.0 DIFFUSIOND_PORT=$port "$bin" healthcheck >/dev/null ||
    fail "healthcheck from the image's environment (0.0.0.0 -> loopback)"
rc=0
hc --path /no-such-route 2>"$tmp/err" || rc=$?
{ [[ $rc -eq 1 ]] && grep -q -- "-> 404 " "$tmp/err"; } || fail "404 route: exit $rc, $(cat "$tmp/err")"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[[ $rc -eq 0 ]] || fail "serve after SIGTERM: exit $rc, want 0"
rc=0
hc 2>"$tmp/err" || rc=$?
[[ $rc -eq 1 ]] || fail "after serve stopped: exit $rc, want 1"
echo "after SIGTERM: $(cat "$tmp/err")"
echo "healthcheck vs serve: ok"

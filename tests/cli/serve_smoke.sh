#!/usr/bin/env bash
# tests/cli/serve_smoke.sh <diffusiond> <source root> — the real `diffusiond serve
# --port 0` on the sd1-tiny fixture, driven with curl: /livez, /readyz (503 → 200 after
# the warm-up), generations (b64 PNG with metrics, Server-Timing and the echoed
# X-Request-Id; url + JPEG served from /v1/images/…), the errors answered before the
# body (404, 405 + Allow, 411, 413, 415) and after (400 naming the field), /metrics
# (promtool when installed), the JSON access log, and SIGTERM with a generation in
# flight: it is answered 200 and the process exits 0; with --drain-grace-s 0 the job in
# flight is answered 503 shutting_down instead, and the exit is still 0; SIGTERM during
# the start-up (the model loading) is a clean stop with exit 0 too.  tests/http/
# (Python) is the full suite; this one needs only curl.
set -euo pipefail

bin=$1
root=$2
model="$root/tests/fixtures/sd/sd1-tiny/diffusers"
out=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$out"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- server log:" >&2
    tail -20 "$out/err" >&2 || true
    exit 1
}

# code <curl args…>: the status code; body in $out/body, headers in $out/head.
code() { curl -s -o "$out/body" -D "$out/head" -w '%{http_code}' "$@" || echo 000; }
json=(-H 'Content-Type: application/json')

# start <flags…>: a server on a free port; sets pid, port, base.
start() {
    : >"$out/err"
    "$bin" serve --port 0 --model "$model" --threads 1 --encoder-threads 2 "$@" \
        >"$out/access" 2>"$out/err" &
    pid=$!
    port=
    for _ in $(seq 200); do
        port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$out/err" 2>/dev/null || true)
        [[ -n $port ]] && break
        kill -0 "$pid" 2>/dev/null || fail "serve exited at start-up"
        sleep 0.05
    done
    [[ -n $port ]] || fail "no 'listening on' line"
    base="http://127.0.0.1:$port"
}

start --max-body-bytes 4096
[[ $(code "$base/livez") == 200 ]] || fail "livez"
grep -q '"status":"ok"' "$out/body" || fail "livez body"
c=000
for _ in $(seq 600); do
    c=$(code "$base/readyz")
    [[ $c == 200 ]] && break
    [[ $c == 503 ]] || fail "readyz answered $c while starting"
    sleep 0.1
done
[[ $c == 200 ]] || fail "not ready within 60 s"

# --- a generation: b64_json PNGs with their metrics ----------------------------------
c=$(code "${json[@]}" -H 'X-Request-Id: smoke-1' \
    -d '{"prompt":"a red cube","steps":2,"seed":7,"n":2}' "$base/v1/images/generations")
[[ $c == 200 ]] || fail "generation: $c $(cat "$out/body")"
grep -qi '^Server-Timing: queue;dur=[0-9.]*, encode;dur=' "$out/head" || fail "Server-Timing"
grep -qi '^X-Request-Id: smoke-1' "$out/head" || fail "X-Request-Id not echoed"
grep -qi '^Content-Type: application/json' "$out/head" || fail "content type"
for want in '"size":"64x64"' '"output_format":"png"' '"seeds":\[7,8\]' '"metrics":{"queue_ms":' \
    '"batch_sizes":\[' '"seed":7' '"seed":8'; do
    grep -q "$want" "$out/body" || fail "generation body lacks $want"
done
grep -o '"b64_json":"[^"]*"' "$out/body" >"$out/b64" || fail "no b64_json"
b64=$(sed -n '1s/.*:"\([^"]*\)"/\1/p' "$out/b64")
printf '%s' "$b64" | base64 -d >"$out/img.png" || fail "b64_json does not decode"
magic=$(od -An -tx1 -N8 "$out/img.png" | tr -d ' \n')
[[ $magic == 89504e470d0a1a0a ]] || fail "b64_json is not a PNG ($magic)"

# --- response_format url: the image is served, as JPEG --------------------------------
c=$(code "${json[@]}" -d '{"prompt":"x","steps":2,"response_format":"url","output_format":"jpeg"}' \
    "$base/v1/images/generations")
[[ $c == 200 ]] || fail "url generation: $c"
url=$(grep -o '"url":"[^"]*"' "$out/body" | cut -d'"' -f4)
[[ $url == "$base/v1/images/"*/0 ]] || fail "url '$url'"
[[ $(code "$url") == 200 ]] || fail "GET $url"
grep -qi '^Content-Type: image/jpeg' "$out/head" || fail "stored image content type"
magic=$(od -An -tx1 -N3 "$out/body" | tr -d ' \n')
[[ $magic == ffd8ff ]] || fail "stored image is not a JPEG ($magic)"
[[ $(code "${url%/0}/1") == 404 ]] || fail "index past n is not 404"

# --- errors -------------------------------------------------------------------------
expect() { # expect <code> <what> <curl args…>
    local want=$1 what=$2
    shift 2
    c=$(code "$@")
    [[ $c == "$want" ]] || fail "$what: $c, want $want ($(cat "$out/body"))"
    grep -q '"error":{"message":' "$out/body" || fail "$what: not an OpenAI error body"
}
expect 404 "unknown path" "$base/nope"
expect 405 "GET generations" "$base/v1/images/generations"
grep -qi "^Allow: POST, OPTIONS" "$out/head" || fail "405 without Allow"
expect 415 "text/plain" -H 'Content-Type: text/plain' -d '{}' "$base/v1/images/generations"
expect 411 "chunked" "${json[@]}" -H 'Transfer-Encoding: chunked' -d '{}' \
    "$base/v1/images/generations"
head -c 5000 /dev/zero | tr '\0' ' ' >"$out/big"
expect 413 "over --max-body-bytes" "${json[@]}" --data-binary "@$out/big" \
    "$base/v1/images/generations"
# two Content-Length headers (request smuggling): 400, by hand over /dev/tcp
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}' >&3
status=$(head -1 <&3 | tr -d '\r')
exec 3<&-
[[ $status == "HTTP/1.1 400"* ]] || fail "duplicate Content-Length: '$status'"
expect 400 "n out of range" "${json[@]}" -d '{"prompt":"x","n":99}' "$base/v1/images/generations"
grep -q '"param":"n"' "$out/body" || fail "400 does not name n"
expect 400 "not JSON" "${json[@]}" -d '{nope' "$base/v1/images/generations"

# --- metrics and the access log ---------------------------------------------------------
[[ $(code "$base/metrics") == 200 ]] || fail "metrics"
grep -q '^diffusiond_http_requests_total{route="/v1/images/generations",code="200"} 2$' \
    "$out/body" || fail "metrics: generations 200 count"
grep -q '^diffusiond_images_generated_total 3$' "$out/body" || fail "metrics: images"
grep -q '^diffusiond_ready 1$' "$out/body" || fail "metrics: ready"
if command -v promtool >/dev/null; then
    promtool check metrics <"$out/body" || fail "promtool check metrics"
fi
grep -q '"request_id":"smoke-1".*"status":200' "$out/access" || fail "access log line"

# sigterm_in_flight <body> <jobs submitted before it>: posts body, waits until it is
# admitted, sends SIGTERM, waits for both; the answer in $out/late(.code), exit in $rc.
sigterm_in_flight() {
    curl -s -o "$out/late" -D "$out/late.head" -w '%{http_code}' "${json[@]}" -d "$1" \
        "$base/v1/images/generations" >"$out/late.code" &
    local cpid=$! want=$(($2 + 1))
    for _ in $(seq 100); do # until it is admitted
        curl -s -o "$out/m" "$base/metrics" || true
        grep -q "^diffusiond_scheduler_submitted_total $want\$" "$out/m" && break
        sleep 0.05
    done
    kill -TERM "$pid"
    wait "$cpid" || true
    rc=0
    wait "$pid" || rc=$?
    pid=
}

# --- SIGTERM with a generation in flight: answered, exit 0 ---------------------------------
sigterm_in_flight '{"prompt":"x","steps":80,"n":4}' 3
[[ $rc == 0 ]] || fail "serve exited $rc after SIGTERM"
[[ $(cat "$out/late.code") == 200 ]] || fail "in-flight generation answered $(cat "$out/late.code")"
grep -q '"b64_json"' "$out/late" || fail "in-flight generation body"
grep -q 'stopped' "$out/err" || fail "no 'stopped' line"

# --- a grace of 0: the job in flight is cancelled and answered 503, exit 0 ---------------
start --drain-grace-s 0 --no-warmup
for _ in $(seq 100); do [[ $(code "$base/readyz") == 200 ]] && break; sleep 0.05; done
sigterm_in_flight '{"prompt":"x","steps":150,"n":8}' 0
[[ $rc == 0 ]] || fail "serve (grace 0) exited $rc after SIGTERM"
[[ $(cat "$out/late.code") == 503 ]] || fail "grace 0: in-flight job answered $(cat "$out/late.code")"
grep -q '"code":"shutting_down"' "$out/late" || fail "grace 0: body $(cat "$out/late")"
grep -qi '^Retry-After: [0-9]' "$out/late.head" || fail "grace 0: 503 without Retry-After"
# --- SIGTERM during start-up, the model loading (on its own thread, the main thread
# waiting for signals — OpenBLAS's workers, started before main, would otherwise take
# the signal's default action): a clean stop, exit 0 ------------------------------------
for attempt in 1 2 3; do
    : >"$out/err"
    "$bin" serve --port 0 --model "$root/models/default" --threads 1 >"$out/access" 2>"$out/err" &
    pid=$!
    for _ in $(seq 400); do # the moment it listens (the loader starts right after)
        grep -q 'listening on' "$out/err" 2>/dev/null && break
        sleep 0.005
    done
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    pid=
    [[ $rc == 0 ]] || fail "start-up attempt $attempt: SIGTERM killed serve (exit $rc)"
    grep -q 'stopped' "$out/err" || fail "start-up attempt $attempt: no 'stopped' line"
    grep -q 'while loading the model' "$out/err" && echo "start-up attempt $attempt: stopped while loading"
done
echo "serve smoke: ok"

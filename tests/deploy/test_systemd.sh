#!/usr/bin/env bash
# tests/deploy/test_systemd.sh <source root> — docker/systemd/diffusiond@.service (one
# diffusiond per GPU on bare metal) passes `systemd-analyze verify` for instances 0
# and 1 with no warning at all (unknown keys and bad values are only warnings there),
# and pins each instance to its GPU and port.  Exit 77 without systemd-analyze.
set -euo pipefail

root=$(cd "$1" && pwd)
unit="$root/docker/systemd/diffusiond@.service"
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
command -v systemd-analyze >/dev/null 2>&1 || { echo "skip: no systemd-analyze"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$unit" "$tmp/"
for i in 0 1; do
    rc=0
    out=$(systemd-analyze verify --man=no "$tmp/diffusiond@$i.service" 2>&1) || rc=$?
    [[ $rc -eq 0 && -z "$out" ]] || fail "systemd-analyze verify diffusiond@$i: exit $rc: $out"
done
grep -qx 'Environment=CUDA_VISIBLE_DEVICES=%i' "$unit" || fail "instance N sees GPU N only"
grep -qF -- "\$((8080 + %i))" "$unit" || fail "instance N listens on 8080 + N"
grep -qx 'KillSignal=SIGTERM' "$unit" || fail "SIGTERM stops (drains) the service"
echo "deploy systemd: ok"

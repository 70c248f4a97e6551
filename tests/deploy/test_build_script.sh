#!/usr/bin/env bash
# tests/deploy/test_build_script.sh <source root> — the images' install-and-build steps,
# run here as docker/Dockerfile.cpu runs them (no Docker engine on CI): the RUN lines
# of both Dockerfiles are read out of the files (so the test follows them), the CPU
# image's are run with CUDA off in a copy of the build context (.dockerignore applied)
# into a scratch prefix, and the install is checked as the container would use it:
#   - every library of the binary resolves; the runtime package set was derived
#   - `generate` with no --model finds the bundled model in the prefix's data folder
#     (the sd1-tiny fixture stands in for models/default via --model)
#   - both Dockerfiles' runtime stages have the same ENTRYPOINT, HEALTHCHECK command,
#     DIFFUSIOND_* ENV, numeric non-root USER and EXPOSE (= DIFFUSIOND_PORT)
#   - the HEALTHCHECK command, read from Dockerfile.cpu, with the image's ENV and PATH
#     and nothing listening: exit 1, fast
#   - when this build has `serve`: the ENTRYPOINT, read from Dockerfile.cpu (tini --
#     diffusiond serve), with the image's ENV becomes healthy for the HEALTHCHECK, and
#     SIGTERM to PID 1 ends it with status 0, after which the healthcheck fails.
set -euo pipefail

root=$(cd "$1" && pwd)
tmp=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# The docker/build.sh command lines of a Dockerfile (continuations joined), one a line.
run_lines() {
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" | grep -E '^RUN .*docker/build\.sh' |
        sed -e 's/^RUN //' -e 's/ &&.*//' -e 's/  */ /g'
}

cpu=$(run_lines "$root/docker/Dockerfile.cpu")
gpu=$(run_lines "$root/docker/Dockerfile")
echo "Dockerfile.cpu runs:"; echo "$cpu"
echo "Dockerfile runs:"; echo "$gpu"
[[ $(grep -c 'build.sh build ' <<<"$cpu") -eq 1 && $(grep -c 'build.sh runtime ' <<<"$cpu") -eq 1 ]] ||
    fail "Dockerfile.cpu: one 'build.sh build' and one 'build.sh runtime' RUN line"
# The GPU image runs the same steps, CUDA on.
[[ "${cpu//--cuda OFF/--cuda ON}" == "$gpu" ]] ||
    fail "docker/Dockerfile's build.sh steps differ from Dockerfile.cpu's beyond --cuda"

# The build context as Docker sends it: the tree filtered by .dockerignore (docker-py's
# own matcher, from Debian's python3-docker, which docker-compose brings).  The build
# runs inside this copy, as the Dockerfiles run it in /src: a file the build needs
# but .dockerignore drops fails here.
ctx="$tmp/context"
/usr/bin/python3 - "$root" "$ctx" <<'PY' || fail "copy the build context (python3-docker)"
import os, shutil, sys
from docker.utils.build import exclude_paths
root, ctx = sys.argv[1:]
with open(os.path.join(root, ".dockerignore")) as f:
    patterns = [l.strip() for l in f if l.strip() and not l.startswith("#")]
n = 0
for rel in sorted(exclude_paths(root, patterns)):
    src = os.path.join(root, rel)
    if os.path.isfile(src):
        os.makedirs(os.path.dirname(os.path.join(ctx, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(ctx, rel))
        n += 1
print(f"build context: {n} files")
PY
for gone in tests/fixtures .git docs; do
    [[ ! -e "$ctx/$gone" ]] || fail ".dockerignore leaves $gone out of the context"
done
if compgen -G "$ctx/build*" >/dev/null; then fail ".dockerignore leaves the build trees out"; fi

# The CPU image's steps, in the context copy (WORKDIR /src), moved into the scratch
# folder: /opt/diffusiond -> $tmp/opt, /tmp/diffusiond-build -> $tmp/build, the fixture
# model as the bundled model (CI has no models/default until it is committed), and 2
# jobs (the shared 2-core machine).
build_cmd=$(grep 'build.sh build ' <<<"$cpu" | sed -e "s#/opt/diffusiond#$tmp/opt#g" \
    -e "s#/tmp/diffusiond-build#$tmp/build#g")
runtime_cmd=$(grep 'build.sh runtime ' <<<"$cpu" | sed -e "s#/opt/diffusiond/src/docker/#$ctx/docker/#" \
    -e "s#/opt/diffusiond#$tmp/opt#g")
model="$root/tests/fixtures/sd/sd1-tiny/diffusers"
echo "+ (cd $ctx && $build_cmd --jobs 2 --model $model)"
(cd "$ctx" && eval "$build_cmd --jobs 2 --model '$model'")
echo "+ $runtime_cmd"
eval "$runtime_cmd"

bin="$tmp/opt/bin/diffusiond"
data="$tmp/opt/share/diffusiond"
[[ -x "$bin" ]] || fail "$bin installed"
[[ -f "$data/clip-bpe/vocab.json" ]] || fail "models/data installed into $data"
[[ -f "$data/default-model/model_index.json" ]] || fail "bundled model installed"
pk="$data/runtime-packages.txt"
for want in tini libc6 libjansson4 libturbojpeg0; do
    grep -qx "$want" "$pk" || fail "runtime-packages.txt lists $want (has: $(tr '\n' ' ' <"$pk"))"
done
grep -q '^libopenblas' "$pk" || fail "runtime-packages.txt lists an OpenBLAS package"
if grep -qE -- '-dev$|^build-essential$|^cmake$|^check$' "$pk"; then
    fail "runtime-packages.txt has build packages: $(tr '\n' ' ' <"$pk")"
fi

# The bundled model, found with no --model and no DIFFUSIOND_MODEL, as in the image.
(cd "$tmp" && env -u DIFFUSIOND_MODEL "$bin" generate --prompt "a red circle" --steps 2 \
    --threads 2 --seed 7 --out "$tmp/bundled.png") >"$tmp/gen.log" 2>&1 ||
    { cat "$tmp/gen.log" >&2; fail "generate with the bundled model"; }
head -c 8 "$tmp/bundled.png" | od -An -tx1 | grep -q "89 50 4e 47" || fail "bundled.png is a PNG"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The runtime stage's instructions, read out of a Dockerfile (continuations joined):
# `dockerfile_get FILE ENTRYPOINT|HEALTHCHECK` prints the exec-form command one word a
# line; `ENV` prints its DIFFUSIOND_* assignments; `USER` and `EXPOSE` their value.
dockerfile_get() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, re, sys
text = re.sub(r"\\\n\s*", " ", open(sys.argv[1]).read())
final = text.split("\nFROM ")[-1]  # the last stage: the runtime image
key = sys.argv[2]
for line in final.splitlines():
    word, _, rest = line.partition(" ")
    if word != key:
        continue
    if key == "ENTRYPOINT":
        print("\n".join(json.loads(rest)))
    elif key == "HEALTHCHECK":
        print("\n".join(json.loads(rest.split(" CMD ", 1)[1])))
    elif key == "ENV":
        print("\n".join(re.findall(r"DIFFUSIOND_\w+=\S+", rest)))
    else:
        print(rest.strip())
PY
}
for key in ENTRYPOINT HEALTHCHECK ENV USER EXPOSE; do
    a=$(dockerfile_get "$root/docker/Dockerfile.cpu" $key)
    b=$(dockerfile_get "$root/docker/Dockerfile" $key)
    [[ -n "$a" && "$a" == "$b" ]] || fail "both images: the same $key (cpu: '$a', gpu: '$b')"
done
user=$(dockerfile_get "$root/docker/Dockerfile.cpu" USER)
[[ "$user" =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || fail "USER is a numeric non-root uid:gid ($user)"
mapfile -t image_env < <(dockerfile_get "$root/docker/Dockerfile.cpu" ENV)
mapfile -t entrypoint < <(dockerfile_get "$root/docker/Dockerfile.cpu" ENTRYPOINT)
mapfile -t healthcheck < <(dockerfile_get "$root/docker/Dockerfile.cpu" HEALTHCHECK)
expose=$(dockerfile_get "$root/docker/Dockerfile.cpu" EXPOSE)
printf '%s\n' "${image_env[@]}" | grep -qx "DIFFUSIOND_PORT=$expose" ||
    fail "EXPOSE $expose is DIFFUSIOND_PORT (${image_env[*]})"
printf '%s\n' "${image_env[@]}" | grep -qx "DIFFUSIOND_HOST=0.0.0.0" ||
    fail "the image listens on every interface (${image_env[*]})"
echo "image: USER $user, EXPOSE $expose, ENV ${image_env[*]}"
echo "image: ENTRYPOINT ${entrypoint[*]}; HEALTHCHECK CMD ${healthcheck[*]}"

# The container's environment: the image's ENV with the port moved to a free one, and
# its PATH (the install's bin first).
port=$(free_port)
export "${image_env[@]}" DIFFUSIOND_PORT="$port"
export PATH="$tmp/opt/bin:$PATH"
[[ "$(command -v diffusiond)" == "$bin" ]] || fail "diffusiond on the image's PATH is the install"
unset DIFFUSIOND_MODEL

t0=$(date +%s%N)
rc=0
"${healthcheck[@]}" 2>"$tmp/hc.err" || rc=$?
dt=$((($(date +%s%N) - t0) / 1000000))
[[ $rc -eq 1 ]] || fail "HEALTHCHECK with nothing on :$port: exit $rc, want 1"
grep -q "^unhealthy: GET http://0.0.0.0:$port/readyz: .*refused" "$tmp/hc.err" ||
    fail "healthcheck's reason: $(cat "$tmp/hc.err")"
[[ $dt -lt 2000 ]] || fail "healthcheck of a closed port took $dt ms"
echo "HEALTHCHECK, nothing listening: exit 1 in $dt ms: $(cat "$tmp/hc.err")"

if ! "$bin" serve --help >/dev/null 2>&1; then
    echo "serve is not in this build yet: the ENTRYPOINT check is skipped"
    echo "deploy build script: ok"
    exit 0
fi
[[ -x "${entrypoint[0]}" ]] || fail "the ENTRYPOINT's init ${entrypoint[0]} is installed (tini, @runtime)"
(cd "$tmp" && exec "${entrypoint[@]}" --threads 1) >"$tmp/serve.log" 2>&1 &
server_pid=$!
healthy=0
for _ in $(seq 1 240); do # 60 s at most
    if "${healthcheck[@]}" >"$tmp/hc.out" 2>&1; then
        healthy=1
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; fail "serve exited"; }
    sleep 0.25
done
[[ $healthy -eq 1 ]] || { cat "$tmp/serve.log" >&2; fail "serve not ready within 60 s"; }
echo "ENTRYPOINT up, HEALTHCHECK: $(cat "$tmp/hc.out")"
"${healthcheck[@]}" --path /livez >/dev/null || fail "healthcheck --path /livez"
kill -TERM "$server_pid" # what docker stop sends to PID 1
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[[ $rc -eq 0 ]] || { cat "$tmp/serve.log" >&2; fail "ENTRYPOINT after SIGTERM: exit $rc, want 0"; }
rc=0
"${healthcheck[@]}" 2>/dev/null || rc=$?
[[ $rc -eq 1 ]] || fail "HEALTHCHECK after the server stopped: exit $rc, want 1"
echo "deploy build script: ok"

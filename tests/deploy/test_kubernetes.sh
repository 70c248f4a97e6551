#!/usr/bin/env bash
# tests/deploy/test_kubernetes.sh <source root> — docker/kubernetes/ against the
# Kubernetes OpenAPI schemas (PyPI kubernetes-validate, strict: unknown fields are
# errors) for the newest version it ships and for 1.29 (older clusters still in
# service), then tests/deploy/check_kubernetes.py for what schemas cannot see.
# The Python: <root>/.venv (scripts/pyenv.sh), else <root>/.venv-deploy, whichever has
# kubernetes_validate.  Exit 77 (skip) without one, except under CI=true (fail).
set -euo pipefail

root=$(cd "$1" && pwd)
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

py=""
for v in "$root/.venv" "$root/.venv-deploy"; do
    if [[ -x "$v/bin/python" ]] && "$v/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
        py="$v/bin/python"
        break
    fi
done
if [[ -z "$py" ]]; then
    [[ "${CI:-}" == true ]] && fail "no venv with kubernetes-validate (scripts/pyenv.sh)"
    echo "skip: no venv with kubernetes-validate"
    exit 77
fi

mapfile -t files < <(find "$root/docker/kubernetes" -name '*.yaml' | sort)
[[ ${#files[@]} -ge 6 ]] || fail "docker/kubernetes has the manifests (found ${#files[@]})"
for k in 1.37 1.29; do
    "$py" -m kubernetes_validate --strict --kubernetes-version "$k" "${files[@]}" ||
        fail "kubernetes-validate --strict for Kubernetes $k"
done
"$py" "$root/tests/deploy/check_kubernetes.py" "$root"
echo "deploy kubernetes: ok"

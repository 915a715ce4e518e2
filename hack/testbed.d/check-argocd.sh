# `./hack/testbed check argocd`: Argo CD end to end on a fresh 1-node cluster, every image
# pulled through the registry mirror: the core install applied to namespace argocd and its
# workloads Ready; the AppProject `default` (the core install has no API server, which is what
# creates it elsewhere); an Application for a tiny repo served over smart HTTP from this host,
# automated sync, reaches Synced at the served commit and Healthy; the app answers over HTTP
# from a pod. Prints install-to-ready and Application synced+healthy seconds and each image
# pull's time; fails on any image pull error; leaves nothing behind.
# shellcheck shell=bash

ARGOCD_CHECK_TIMEOUT=${ARGOCD_CHECK_TIMEOUT:-300s}
ARGOCD_CHECK_CLUSTER=tb-argocd
ARGOCD_NAMESPACE=argocd
# The core install's workloads (argocd-redis has an init container that writes its password Secret).
ARGOCD_WORKLOADS="deploy/argocd-redis deploy/argocd-repo-server deploy/argocd-applicationset-controller statefulset/argocd-application-controller"

check_argocd() {
  [ $# = 0 ] || die "check argocd: no options expected (usage: check argocd)"
  check_argocd_inputs
  local tmp; tmp=$(mktemp -d)
  export KUBECONFIG=$tmp/kubeconfig
  kind_network_ensure
  local before; before=$(docker_inventory)
  kind_delete "$ARGOCD_CHECK_CLUSTER" >/dev/null 2>&1 || true
  CHECK_TMP=$tmp GIT_SERVER_PID=
  trap check_argocd_cleanup EXIT
  local mirror_since; mirror_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)

  log "kind create cluster --name $ARGOCD_CHECK_CLUSTER (1 node)"
  local t0 create_s; t0=$(now_ms)
  run_logged "check-$ARGOCD_CHECK_CLUSTER-create" kind create cluster --name "$ARGOCD_CHECK_CLUSTER" \
    --config "$REPO_ROOT/kind-configs/testbed-1node.yaml" --kubeconfig "$KUBECONFIG"
  create_s=$(secs_since "$t0")
  kubectl wait --for=condition=Ready node --all --timeout="$CHECK_TIMEOUT" >/dev/null || check_fail "node not Ready"
  ok "kind create: ${create_s} s; node Ready"

  local install; install=$(check_argocd_install) || exit 1
  git_demo_repo "$tmp"
  git_serve_start "$tmp/repos"
  local commit; commit=$(git --git-dir="$tmp/repos/demo.git" rev-parse main)
  local sync; sync=$(check_argocd_sync "$commit") || exit 1
  check_flux_app
  check_flux_pulls "$mirror_since"

  log "kind delete cluster --name $ARGOCD_CHECK_CLUSTER"
  check_argocd_cleanup
  trap - EXIT
  local leftover; leftover=$(docker_leftovers "$ARGOCD_CHECK_CLUSTER" "$before")
  [ -z "$leftover" ] || die "check argocd left Docker objects behind: $leftover"
  ok "cluster deleted, Git server stopped; no container, network or volume left behind"
  echo "check passed: argocd=$ARGOCD_VERSION kind_create_seconds=$create_s $install $sync"
}

# check_argocd_inputs: what `up` provides, present before a cluster is made.
check_argocd_inputs() {
  [ -f "$ARGOCD_INSTALL" ] || die "Argo CD install manifest $ARGOCD_INSTALL is missing: run ./hack/testbed up"
  registry_answers || die "registry mirror is not answering on $REGISTRY_PUSH: run ./hack/testbed up"
  local ref
  for ref in $(argocd_images) "$(demo_image small)"; do
    mirror_has "$ref" || die "the mirror lacks $ref: run ./hack/testbed up"
  done
}

check_argocd_cleanup() {
  if [ -n "${GIT_SERVER_PID:-}" ]; then
    kill "$GIT_SERVER_PID" 2>/dev/null || true
    wait "$GIT_SERVER_PID" 2>/dev/null || true
    GIT_SERVER_PID=
  fi
  kind_delete "$ARGOCD_CHECK_CLUSTER" >/dev/null 2>&1 || true
  sysctl_restore
  [ -z "${CHECK_TMP:-}" ] || rm -rf "$CHECK_TMP"
}

# check_argocd_install: namespace, install (server-side: the CRDs exceed the client-side
# last-applied annotation), wait for each workload; print "argocd_install_to_ready_seconds=S".
check_argocd_install() {
  local t0 w; t0=$(now_ms)
  kubectl create namespace "$ARGOCD_NAMESPACE" >/dev/null
  run_logged check-argocd-apply kubectl apply --server-side --force-conflicts -n "$ARGOCD_NAMESPACE" -f "$ARGOCD_INSTALL"
  for w in $ARGOCD_WORKLOADS; do
    kubectl -n "$ARGOCD_NAMESPACE" rollout status "$w" --timeout="$ARGOCD_CHECK_TIMEOUT" >/dev/null \
      || check_fail "Argo CD $w not ready"
  done
  local s; s=$(secs_since "$t0")
  # Each pod's own Ready time (the API's condition timestamp, whole seconds), not the order waited in.
  kubectl -n "$ARGOCD_NAMESPACE" get pods -o json | jq -r --argjson t0 "$((t0 / 1000))" '.items[]
      | "   \(.metadata.labels["app.kubernetes.io/name"]) Ready \((.status.conditions[] | select(.type == "Ready")
          | .lastTransitionTime | fromdateiso8601) - $t0) s after apply"' | sort -k3n >&2
  ok "Argo CD $ARGOCD_VERSION (core install) ready ${s} s after apply"
  echo "argocd_install_to_ready_seconds=$s"
}

# check_argocd_sync COMMIT: the AppProject default and an Application for the demo repo with
# automated sync; wait until it is Synced at COMMIT and Healthy, its operation Succeeded.
# Prints "application_synced_healthy_seconds=S".
check_argocd_sync() {
  local commit=$1 t0 s status; t0=$(now_ms)
  kubectl apply -f - >/dev/null <<YAML
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: default, namespace: $ARGOCD_NAMESPACE}
spec:
  sourceRepos: ["*"]
  destinations: [{server: "*", namespace: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: demo, namespace: $ARGOCD_NAMESPACE}
spec:
  project: default
  source: {repoURL: "$GIT_URL_BASE/demo.git", targetRevision: main, path: .}
  destination: {server: "https://kubernetes.default.svc", namespace: demo}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
YAML
  local want="Synced $commit Healthy Succeeded" deadline=$(( $(date +%s) + ${ARGOCD_CHECK_TIMEOUT%s} ))
  while :; do
    status=$(kubectl -n "$ARGOCD_NAMESPACE" get application demo \
      -o jsonpath='{.status.sync.status} {.status.sync.revision} {.status.health.status} {.status.operationState.phase}' 2>/dev/null || true)
    [ "$status" = "$want" ] && break
    [ "$(date +%s)" -lt "$deadline" ] \
      || check_fail "Application demo not Synced+Healthy at $commit: [$status]; conditions: $(kubectl -n "$ARGOCD_NAMESPACE" get application demo -o jsonpath='{.status.conditions}')"
    sleep 0.5
  done
  s=$(secs_since "$t0")
  ok "Application demo Synced at $commit and Healthy ${s} s after apply (repo $GIT_URL_BASE/demo.git, kustomize $ARGOCD_KUSTOMIZE_VERSION)"
  echo "application_synced_healthy_seconds=$s"
}


# `./hack/testbed check flux`: Flux end to end on a fresh 1-node cluster, every image pulled
# through the registry mirror: install.yaml applied and the four controllers Available; a
# GitRepository (a tiny repo served over smart HTTP from this host) and a Kustomization
# deploying demo-small become Ready; the app answers over HTTP from a pod. Prints Flux
# install-to-ready seconds, each image pull's time (kubelet events) and GitRepository-ready
# seconds; fails on any image pull error; leaves nothing behind.
# shellcheck shell=bash

FLUX_CHECK_TIMEOUT=${FLUX_CHECK_TIMEOUT:-300s}
FLUX_CHECK_CLUSTER=tb-check-flux
FLUX_CHECK_APP=demo-small

check_flux() {
  [ $# = 0 ] || die "check flux: no options expected (usage: check flux)"
  check_flux_inputs
  local tmp; tmp=$(mktemp -d)
  export KUBECONFIG=$tmp/kubeconfig
  kind_network_ensure
  local before; before=$(docker_inventory)
  kind_delete "$FLUX_CHECK_CLUSTER" >/dev/null 2>&1 || true
  CHECK_TMP=$tmp GIT_SERVER_PID=
  trap check_flux_cleanup EXIT
  local mirror_since; mirror_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)

  log "kind create cluster --name $FLUX_CHECK_CLUSTER (1 node)"
  local t0 create_s; t0=$(now_ms)
  run_logged "check-$FLUX_CHECK_CLUSTER-create" kind create cluster --name "$FLUX_CHECK_CLUSTER" \
    --config "$REPO_ROOT/kind-configs/testbed-1node.yaml" --kubeconfig "$KUBECONFIG"
  create_s=$(secs_since "$t0")
  kubectl wait --for=condition=Ready node --all --timeout="$CHECK_TIMEOUT" >/dev/null || check_fail "node not Ready"
  ok "kind create: ${create_s} s; node Ready"

  local flux_s; flux_s=$(check_flux_install) || exit 1
  git_demo_repo "$tmp"
  git_serve_start "$tmp/repos"
  local times; times=$(check_flux_sync) || exit 1
  check_flux_app
  check_flux_pulls "$mirror_since"

  log "kind delete cluster --name $FLUX_CHECK_CLUSTER"
  check_flux_cleanup
  trap - EXIT
  local leftover; leftover=$(docker_leftovers "$FLUX_CHECK_CLUSTER" "$before")
  [ -z "$leftover" ] || die "check flux left Docker objects behind: $leftover"
  ok "cluster deleted, Git server stopped; no container, network or volume left behind"
  echo "check passed: flux=$FLUX_VERSION kind_create_seconds=$create_s flux_install_to_ready_seconds=$flux_s $times"
}

# check_flux_inputs: what `up` provides, present before a cluster is made.
check_flux_inputs() {
  [ -f "$FLUX_INSTALL" ] || die "Flux install manifest $FLUX_INSTALL is missing: run ./hack/testbed up"
  registry_answers || die "registry mirror is not answering on $REGISTRY_PUSH: run ./hack/testbed up"
  local ref
  for ref in $(flux_images) "$(demo_image small)"; do
    mirror_has "$ref" || die "the mirror lacks $ref: run ./hack/testbed up"
  done
}

check_flux_cleanup() {
  if [ -n "${GIT_SERVER_PID:-}" ]; then
    kill "$GIT_SERVER_PID" 2>/dev/null || true
    wait "$GIT_SERVER_PID" 2>/dev/null || true
    GIT_SERVER_PID=
  fi
  kind_delete "$FLUX_CHECK_CLUSTER" >/dev/null 2>&1 || true
  sysctl_restore
  [ -z "${CHECK_TMP:-}" ] || rm -rf "$CHECK_TMP"
}

# check_flux_install: apply install.yaml (server-side: Flux's CRDs exceed the size of the
# client-side last-applied annotation), wait for the four controllers; print the seconds.
check_flux_install() {
  local t0 deploys=() c; t0=$(now_ms)
  run_logged check-flux-apply kubectl apply --server-side --force-conflicts -f "$FLUX_INSTALL"
  for c in $FLUX_COMPONENTS; do deploys+=("deploy/$c"); done
  kubectl -n flux-system wait --for=condition=Available "${deploys[@]}" --timeout="$FLUX_CHECK_TIMEOUT" >/dev/null \
    || check_fail "Flux controllers not Available"
  local s; s=$(secs_since "$t0")
  ok "Flux $FLUX_VERSION installed: $FLUX_COMPONENTS Available ${s} s after apply"
  echo "$s"
}

# git_demo_repo DIR: DIR/repos/demo.git, one commit on main: namespace demo, a Deployment
# and Service of demo-small (its env names a database host it only displays).
git_demo_repo() {
  local dir=$1/work
  mkdir -p "$dir" "$1/repos"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [namespace.yaml, app.yaml]\n' >"$dir/kustomization.yaml"
  printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n' >"$dir/namespace.yaml"
  cat >"$dir/app.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $FLUX_CHECK_APP, namespace: demo}
spec:
  replicas: 1
  selector: {matchLabels: {app: $FLUX_CHECK_APP}}
  template:
    metadata: {labels: {app: $FLUX_CHECK_APP}}
    spec:
      containers:
        - name: app
          image: $(demo_image small)
          env:
            - {name: DB_HOST, value: db.demo.svc.cluster.local}
            - {name: SHOW_ENV, value: DB_HOST}
            - {name: READY_DELAY, value: 2s}
          ports: [{containerPort: 8080}]
          livenessProbe: {httpGet: {path: /healthz, port: 8080}}
          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: $FLUX_CHECK_APP, namespace: demo}
spec:
  selector: {app: $FLUX_CHECK_APP}
  ports: [{port: 80, targetPort: 8080}]
YAML
  (cd "$dir" && git init -q -b main && git add . \
    && git -c user.name="gitops-drill test bed" -c user.email=testbed@gitops-drill.invalid commit -qm "$FLUX_CHECK_APP") >/dev/null
  git clone -q --bare "$dir" "$1/repos/demo.git"
}

# git_serve_start ROOT: serve ROOT's repositories over smart HTTP on the kind network's
# gateway, the host's address on the network the nodes are on; sets GIT_URL_BASE.
git_serve_start() {
  local root=$1 gw portfile=$CHECK_TMP/git-http.port i
  gw=$(docker network inspect "$KIND_NETWORK" -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' | tr ' ' '\n' | grep -m1 -E '^[0-9.]+$') \
    || die "Docker network $KIND_NETWORK has no IPv4 gateway"
  /usr/bin/python3 "$TESTBED_DIR/git-http.py" "$root" "$gw" "$portfile" 2>"$LOG_DIR/check-flux-git-http.log" &
  GIT_SERVER_PID=$!
  for i in $(seq 1 50); do [ -s "$portfile" ] && break; sleep 0.1; done
  [ -s "$portfile" ] || die "Git server did not start (log: $LOG_DIR/check-flux-git-http.log)"
  GIT_URL_BASE=http://$gw:$(cat "$portfile")
  ok "Git server (git http-backend) on $GIT_URL_BASE"
}

# check_flux_sync: GitRepository + Kustomization for the demo repo; wait for both Ready.
# Prints "gitrepository_ready_seconds=S kustomization_ready_seconds=S".
check_flux_sync() {
  local t0 git_s ks_s; t0=$(now_ms)
  kubectl apply -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: demo, namespace: flux-system}
spec:
  interval: 1m
  url: $GIT_URL_BASE/demo.git
  ref: {branch: main}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: demo, namespace: flux-system}
spec:
  interval: 1m
  sourceRef: {kind: GitRepository, name: demo}
  path: ./
  prune: true
  wait: true
  timeout: 3m
YAML
  kubectl -n flux-system wait --for=condition=Ready gitrepository/demo --timeout="$FLUX_CHECK_TIMEOUT" >/dev/null \
    || check_fail "GitRepository demo not Ready: $(kubectl -n flux-system get gitrepository demo -o jsonpath='{.status.conditions}')"
  git_s=$(secs_since "$t0")
  ok "GitRepository Ready ${git_s} s after apply ($(kubectl -n flux-system get gitrepository demo -o jsonpath='{.status.artifact.revision}'))"
  kubectl -n flux-system wait --for=condition=Ready kustomization/demo --timeout="$FLUX_CHECK_TIMEOUT" >/dev/null \
    || check_fail "Kustomization demo not Ready: $(kubectl -n flux-system get kustomization demo -o jsonpath='{.status.conditions}')"
  ks_s=$(secs_since "$t0")
  ok "Kustomization Ready ${ks_s} s after apply (applied and health-checked $FLUX_CHECK_APP)"
  echo "gitrepository_ready_seconds=$git_s kustomization_ready_seconds=$ks_s"
}

# check_flux_app: the deployed app answers through its Service from another pod.
check_flux_app() {
  local host=$FLUX_CHECK_APP.demo.svc.cluster.local out
  out=$(run_pod flux-app-client "" \
        'ip=$(nslookup '"$host"' | awk "/^Address: /{print \$2}" | tail -n1) && [ -n "$ip" ] && printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 "$ip" 80') \
    || check_fail "HTTP to $host from a pod failed: $out"
  case $out in
    *app=$FLUX_CHECK_APP*DB_HOST=db.demo.svc.cluster.local*) ok "$host answered: $(echo "$out" | grep -E '^(app|pod|DB_HOST)=' | tr -d '\r' | tr '\n' ' ')" ;;
    *) check_fail "unexpected answer from $host: $out" ;;
  esac
}

# check_flux_pulls SINCE: print each image pull's time from the kubelet's events; fail on any
# pull error; confirm that the mirror served each pulled image (its log since SINCE).
check_flux_pulls() {
  local since=$1 events bad pulls present img t waited bytes path mirror_log
  events=$(kubectl get events -A -o json)
  bad=$(echo "$events" | jq -r '.items[]
      | select(.reason | IN("Failed", "ErrImagePull", "BackOff", "InspectFailed", "ErrImageNeverPull"))
      | select(.message | test("image"; "i"))
      | "\(.involvedObject.namespace)/\(.involvedObject.name): \(.reason): \(.message)"')
  [ -z "$bad" ] || check_fail "image pull errors:
$bad"
  pulls=$(echo "$events" | jq -r '.items[] | select(.reason == "Pulled") | .message
      | capture("Successfully pulled image \"(?<img>[^\"]+)\" in (?<t>[^ ]+) \\((?<w>[^ ]+) including waiting\\)\\. Image size: (?<b>[0-9]+) bytes")
      | "\(.img) \(.t) \(.w) \(.b)"' | sort -u)
  present=$(echo "$events" | jq -r '[.items[] | select(.reason == "Pulled") | select(.message | test("already present"))] | length')
  [ -n "$pulls" ] || check_fail "no image was pulled: the mirror was not exercised"
  mirror_log=$(docker logs --since "$since" "$REGISTRY_CONTAINER" 2>&1)
  while read -r img t waited bytes; do
    awk -v i="$img" -v t="$t" -v w="$waited" -v b="$bytes" \
      'BEGIN { printf "   pulled %-48s in %7s (%s including waiting), %.1f MB\n", i, t, w, b / 1e6 }' >&2
    path=$(mirror_path "$img")
    grep -qE "\"(HEAD|GET) /v2/${path%:*}/manifests/${path##*:}[? ]" <<<"$mirror_log" \
      || check_fail "the mirror's log shows no manifest request for $img since $since"
  done <<<"$pulls"
  ok "$(echo "$pulls" | wc -l) image(s) pulled through the mirror $REGISTRY_MIRROR; $present container start(s) used a preloaded image; no pull errors"
}

# `./hack/testbed check`: prove that a stock-kind cluster on the node image works:
# node and CoreDNS Ready, Service DNS + HTTP between pods (across nodes with --nodes 3),
# a PVC binds on the default StorageClass, and deleting the cluster leaves nothing behind.
# `./hack/testbed check flux` proves Flux through the registry mirror (check-flux.sh).
# `./hack/testbed check argocd` proves Argo CD through the registry mirror (check-argocd.sh).
# `./hack/testbed check secrets` proves SOPS+age and sealed-secrets (check-secrets.sh).
# shellcheck shell=bash

CHECK_TIMEOUT=${CHECK_TIMEOUT:-180s}

docker_inventory() {
  { docker ps -aq --no-trunc; docker network ls -q --no-trunc; docker volume ls -q; } | sort
}

# docker_leftovers OWN BEFORE: Docker objects that appeared since BEFORE (a docker_inventory)
# and are still there, less those of containers other than the nodes of kind cluster OWN.
# The suite runs checks beside each other and beside drill's rehearsals, whose objects come
# and go meanwhile; an object seen once is looked at again a few seconds later, so one
# that a neighbour was just deleting is not taken for ours.
docker_leftovers() {
  local own=$1 before=$2 new i
  for i in 1 2 3; do
    new=$(comm -13 <(echo "$before") <(docker_inventory) | grep -vxF -f <(foreign_objects "$own"; echo .) || true)
    [ -z "$new" ] && return 0
    sleep 3
  done
  echo "$new"
}

# foreign_objects OWN: full ids of every container that is not a node of kind cluster OWN
# (other clusters, drill's pull-through caches, the drill container and the ssh Git host of
# rehearsals running beside the check), and the volumes they mount (as docker_inventory
# lists them). A check creates no container but its own cluster's nodes: its Git server is
# a process of this shell.
foreign_objects() {
  local ids
  ids=$(docker ps -aq --no-trunc \
          | xargs -r docker inspect -f '{{ index .Config.Labels "io.x-k8s.kind.cluster" }} {{.Id}}' 2>/dev/null \
          | awk -v n="$1" '$1 != n {print $NF}' | sort -u)
  [ -n "$ids" ] || return 0
  echo "$ids"
  echo "$ids" | xargs docker inspect -f '{{range .Mounts}}{{if .Name}}{{.Name}}{{"\n"}}{{end}}{{end}}' 2>/dev/null | grep . || true
}

cmd_check() {
  if [ "${1:-}" = flux ]; then
    shift; check_flux "$@"; return
  fi
  if [ "${1:-}" = argocd ]; then
    shift; check_argocd "$@"; return
  fi
  if [ "${1:-}" = secrets ]; then
    shift; check_secrets "$@"; return
  fi
  local nodes=1
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) nodes=${2:-}; shift 2 ;;
      *) die "check: unknown argument '$1' (usage: check [--nodes 1|3] | check flux | check argocd | check secrets)" ;;
    esac
  done
  case $nodes in 1|3) ;; *) die "check: --nodes must be 1 or 3, got '$nodes'" ;; esac

  local name=tb-check-${nodes}n config=$REPO_ROOT/kind-configs/testbed-${nodes}node.yaml
  local tmp; tmp=$(mktemp -d)
  export KUBECONFIG=$tmp/kubeconfig
  # The kind network stays (kind never removes it); everything else must go.
  kind_network_ensure
  local before; before=$(docker_inventory)
  kind_delete "$name" >/dev/null 2>&1 || true
  trap 'kind_delete '"$name"' >/dev/null 2>&1 || true; sysctl_restore; rm -rf '"$tmp" EXIT

  log "kind create cluster --name $name ($nodes node(s))"
  local t0 create_s; t0=$(now_ms)
  run_logged "check-$name-create" kind create cluster --name "$name" --config "$config" --kubeconfig "$KUBECONFIG"
  create_s=$(secs_since "$t0")
  ok "kind create: ${create_s} s"

  kubectl wait --for=condition=Ready node --all --timeout="$CHECK_TIMEOUT" >/dev/null || check_fail "nodes not Ready"
  ok "$nodes node(s) Ready ($(secs_since "$t0") s after create started)"
  kubectl -n kube-system rollout status deploy/coredns --timeout="$CHECK_TIMEOUT" >/dev/null || check_fail "CoreDNS not Ready"
  ok "CoreDNS Ready"

  local server_node="" client_node=""
  if [ "$nodes" = 3 ]; then
    server_node=$name-worker; client_node=$name-worker2
  fi
  kubectl apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      ${server_node:+nodeName: $server_node}
      containers:
        - name: httpd
          image: docker.io/gitops-drill/testbed-busybox:dev
          command: ["sh", "-c", "mkdir -p /www && echo answer-from-\$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]
          ports: [{containerPort: 8080}]
          readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: check-data, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: pvc-writer, namespace: default}
spec:
  restartPolicy: Never
  containers:
    - name: writer
      image: docker.io/gitops-drill/testbed-busybox:dev
      command: ["sh", "-c", "echo persisted > /data/proof && cat /data/proof"]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes:
    - name: data
      persistentVolumeClaim: {claimName: check-data}
YAML
  kubectl rollout status deploy/echo --timeout="$CHECK_TIMEOUT" >/dev/null || check_fail "echo server not Ready"

  # DNS + HTTP through the Service, from another pod (on another node with --nodes 3).
  # Debian's static busybox wget crashes in static glibc's resolver, so the pod resolves
  # with nslookup (busybox's own DNS client) and speaks HTTP/1.0 through nc. A Service can
  # stay silent for a moment after the echo pod is Ready (seen once in a suite on
  # 2026-12-06: resolved, then no answer; likely the client node's kube-proxy not yet
  # programmed, not confirmed), so the request is tried up to ten times, a second apart;
  # a Service that never answers still fails.
  local out
  out=$(run_pod dns-http-client "$client_node" \
        'ip=$(nslookup echo.default.svc.cluster.local | awk "/^Address: /{print \$2}" | tail -n1) && [ -n "$ip" ] && echo "resolved $ip" >&2 && for try in 1 2 3 4 5 6 7 8 9 10; do a=$(printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 "$ip" 80); case "$a" in *answer-from-echo-*) echo "$a"; exit 0;; esac; echo "no answer yet (try $try)" >&2; sleep 1; done; exit 1') \
    || check_fail "Service DNS + HTTP from a pod failed: $out"
  case $out in *answer-from-echo-*) ok "pod resolved echo.default.svc.cluster.local and got '$(echo "$out" | grep answer-from)' through the Service" ;;
    *) check_fail "unexpected answer through the Service: $out" ;; esac

  if [ "$nodes" = 3 ]; then
    local pod_ip; pod_ip=$(kubectl get pod -l app=echo -o jsonpath='{.items[0].status.podIP}')
    out=$(run_pod pod-to-pod-client "$client_node" 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 '"$pod_ip"' 8080') \
      || check_fail "pod-to-pod across nodes failed: $out"
    case $out in *answer-from-echo-*) ok "pod on $client_node reached pod $pod_ip on $server_node directly" ;;
      *) check_fail "unexpected pod-to-pod answer: $out" ;; esac
  fi

  kubectl wait --for=jsonpath='{.status.phase}'=Bound pvc/check-data --timeout="$CHECK_TIMEOUT" >/dev/null \
    || check_fail "PVC check-data did not bind on the default StorageClass"
  kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/pvc-writer --timeout="$CHECK_TIMEOUT" >/dev/null \
    || check_fail "pod writing to the PVC did not succeed"
  ok "PVC bound on StorageClass $(kubectl get pvc check-data -o jsonpath='{.spec.storageClassName}') and written"

  log "kind delete cluster --name $name"
  kind_delete "$name" >/dev/null 2>&1
  trap - EXIT
  sysctl_restore
  rm -rf "$tmp"
  local leftover; leftover=$(docker_leftovers "$name" "$before")
  [ -z "$leftover" ] || die "kind delete left Docker objects behind: $leftover"
  kind get clusters 2>/dev/null | grep -qx "$name" && die "cluster $name still listed by kind"
  ok "cluster deleted; no container, network or volume left behind"
  echo "check passed: nodes=$nodes kind_create_seconds=$create_s"
}

# run_pod NAME NODE SCRIPT: run SCRIPT in a busybox pod (on NODE if given) to completion;
# print its log; fail unless it succeeded.
run_pod() {
  local name=$1 node=$2 script=$3 phase
  kubectl run "$name" --restart=Never --image=docker.io/gitops-drill/testbed-busybox:dev \
    ${node:+--overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"$node\"}}"} \
    --command -- sh -c "$script" >/dev/null
  kubectl wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$name" --timeout=60s >/dev/null 2>&1 || true
  phase=$(kubectl get pod "$name" -o jsonpath='{.status.phase}')
  kubectl logs "$name" 2>&1
  kubectl delete pod "$name" --now >/dev/null 2>&1 || true
  [ "$phase" = Succeeded ]
}

check_fail() {
  log "diagnostics follow"
  kubectl get nodes -o wide >&2 2>&1 || true
  kubectl get pods -A -o wide >&2 2>&1 || true
  kubectl get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -n 25 >&2 || true
  die "check failed: $*"
}

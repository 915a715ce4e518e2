#!/usr/bin/env bash
# The hand-written equivalent of `drill run scenarios/flux-bootstrap.yaml`: what platform
# teams script today with kind + kubectl wait. Used only as the benchmark's baseline.
#   hand-rebuild.sh KIND_CONFIG FLUX_INSTALL FLEET_DIR [PATH]   (PATH: clusters/demo)
set -euo pipefail
config=$1 install=$2 fleet=$3 path=${4:-clusters/demo}
name=hand-bench-$$ tmp=$(mktemp -d)
trap 'kind delete cluster --name "$name" >/dev/null 2>&1; kill "$git_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
export KUBECONFIG=$tmp/kubeconfig

# Serve the fleet folder as a repository root, the way drill does.
git -C "$fleet" archive HEAD . | (mkdir -p "$tmp/src" && tar -x -C "$tmp/src")
git -C "$tmp/src" init -q -b main && git -C "$tmp/src" add -A && git -C "$tmp/src" -c user.name=b -c user.email=b@b commit -qm fleet
git clone -q --bare "$tmp/src" "$tmp/repos/fleet.git"

kind create cluster --name "$name" --config "$config" --kubeconfig "$KUBECONFIG" --wait 0s >/dev/null 2>&1
gw=$(docker network inspect kind -f '{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}} {{end}}{{end}}' | tr ' ' '\n' | grep -m1 '\.')
/usr/bin/python3 "$(dirname "$0")/../testbed.d/git-http.py" "$tmp/repos" "$gw" "$tmp/port" 2>/dev/null &
git_pid=$!
for _ in $(seq 1 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done

kubectl apply --server-side -f "$install" >/dev/null
kubectl -n flux-system wait --for=condition=Available deployment --all --timeout=5m >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: flux-system, namespace: flux-system}
spec: {url: "http://$gw:$(cat "$tmp/port")/fleet.git", ref: {branch: main}, interval: 60s}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec: {interval: 60s, path: ./$path, prune: true, sourceRef: {kind: GitRepository, name: flux-system}}
YAML
kubectl -n flux-system wait --for=condition=Ready kustomization/flux-system --timeout=10m >/dev/null
# Children exist only after the root applied them; a hand script waits for each in turn.
kubectl -n flux-system wait --for=condition=Ready kustomization --all --timeout=10m >/dev/null
kubectl wait --for=condition=Ready helmrelease --all -A --timeout=10m >/dev/null
kubectl wait --for=condition=Available deployment --all -A --timeout=10m >/dev/null

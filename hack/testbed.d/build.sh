# Builds the test bed's binaries from Go modules. Outputs are cached under
# $CACHE_ROOT/out/<component>-<version>-<inputs-key>/ and reused when present.
# shellcheck shell=bash

OUT_ROOT=$CACHE_ROOT/out

# out_dir NAME VERSION [FILES...]: the cache directory for a build, keyed by version and inputs.
out_dir() {
  local name=$1 version=$2; shift 2
  local key=""
  [ $# -gt 0 ] && key=-$(key_of "$@")
  echo "$OUT_ROOT/$name-$version$key"
}
built() { [ -f "$1/.done" ]; }

# probe_module MODULE@VERSION: die with the proxy's answer unless it serves exactly that
# version. The proxy is a partial mirror: a neighbouring version can be refused (403).
probe_module() {
  local err
  err=$(go mod download -json "$1" 2>/dev/null | jq -r '.Error // empty') || true
  [ -z "$err" ] || die "the Go module proxy does not serve $1: $err"
}
mark_built() { touch "$1/.done"; }

# wrapper_module DIR MODULE VERSION NESTED_VERSION: a module that requires MODULE@VERSION
# and rewrites its local-path replace lines (./staging/..., ../api, ./api) into
# NESTED_VERSION. Module zips omit nested modules, so those local paths do not exist
# in the download.
wrapper_module() {
  local dir=$1 module=$2 version=$3 nested_version=$4
  local gomod
  gomod=$(go mod download -json "$module@$version" | jq -r .GoMod)
  mkdir -p "$dir"
  {
    echo "module gitops-drill.testbed/wrapper"
    echo
    echo "go $(awk '/^go /{print $2; exit}' "$gomod")"
    echo
    echo "require $module $version"
    echo
    replace_lines "$gomod" | awk -v v="$nested_version" \
      '$3 ~ /^\./ && $3 !~ /FORBIDDEN/ { print "replace " $1 " => " $1 " " v }'
    # Replace directives act only in the main module: carry the dependency's versioned
    # ones over, so the build resolves what its release did (Flux pins go-digest this way).
    replace_lines "$gomod" | awk '$0 !~ /=> *[.\/]/ { print "replace " $0 }'
  } >"$dir/go.mod"
  (cd "$dir" && go get "$module@$version" >/dev/null)
}

# replace_lines GOMOD: every replace directive of GOMOD as "OLD [V] => NEW [V]", one a line.
replace_lines() {
  sed -n '/^replace (/,/^)/p; /^replace [^(]/p' "$1" | sed 's/^replace //; s#//.*##; s/^[[:space:]]*//' | grep '=>' || true
}

build_kind() {
  local out; out=$(out_dir kind "$KIND_VERSION")
  if ! built "$out"; then
    log "building kind $KIND_VERSION"
    mkdir -p "$out"
    GOBIN=$out CGO_ENABLED=0 run_logged build-kind go install "sigs.k8s.io/kind@$KIND_VERSION"
    mark_built "$out"
  fi
  ln -sf "$out/kind" "$BIN_DIR/kind"
}

K8S_COMMANDS="kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy"

build_kubernetes() {
  local out; out=$(out_dir kubernetes "$K8S_VERSION")
  if ! built "$out"; then
    log "building Kubernetes $K8S_VERSION ($K8S_COMMANDS); cold: ~10 min on 2 cores"
    local src=$CACHE_ROOT/src/kubernetes-$K8S_VERSION
    run_logged kubernetes-module wrapper_module "$src" k8s.io/kubernetes "$K8S_VERSION" "$K8S_STAGING_VERSION"
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local ldflags="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=0000000000000000000000000000000000000000"
      ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    local pkgs=() c
    for c in $K8S_COMMANDS; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    mkdir -p "$out"
    (cd "$src" && CGO_ENABLED=0 run_logged build-kubernetes go build -trimpath -ldflags "$ldflags" -o "$out/" "${pkgs[@]}")
    mark_built "$out"
  fi
  ln -sf "$out/kubectl" "$BIN_DIR/kubectl"
  echo "$out"
}

build_etcd() {
  local out; out=$(out_dir etcd "$ETCD_VERSION")
  if ! built "$out"; then
    log "building etcd $ETCD_VERSION"
    local src=$CACHE_ROOT/src/etcd-$ETCD_VERSION
    run_logged etcd-module wrapper_module "$src" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION"
    mkdir -p "$out"
    (cd "$src" && CGO_ENABLED=0 run_logged build-etcd go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
    mark_built "$out"
  fi
  echo "$out"
}

build_coredns() {
  local out; out=$(out_dir coredns "$COREDNS_VERSION")
  if ! built "$out"; then
    log "building CoreDNS $COREDNS_VERSION"
    mkdir -p "$out"
    GOBIN=$out CGO_ENABLED=0 run_logged build-coredns go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
    mark_built "$out"
  fi
  echo "$out"
}

build_local_path() {
  local out; out=$(out_dir local-path-provisioner "$LOCAL_PATH_VERSION")
  if ! built "$out"; then
    log "building local-path-provisioner $LOCAL_PATH_VERSION"
    mkdir -p "$out"
    GOBIN=$out CGO_ENABLED=0 run_logged build-local-path go install -trimpath -ldflags "-s -w" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION"
    mark_built "$out"
  fi
  echo "$out"
}

# The pause binary is C, shipped inside the kubernetes module.
build_pause() {
  local out; out=$(out_dir pause "$PAUSE_VERSION")
  if ! built "$out"; then
    local moddir
    moddir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | jq -r .Dir)
    mkdir -p "$out"
    run_logged build-pause gcc -Os -static -Wall -DVERSION="v$PAUSE_VERSION-gitops-drill" \
      -o "$out/pause" "$moddir/build/pause/linux/pause.c"
    mark_built "$out"
  fi
  echo "$out"
}

# Our own pod-network daemon (hack/testbed.d/netd): writes each node's CNI config
# and routes pod CIDRs between nodes. kindnetd is not on the module proxy.
build_netd() {
  local src=$TESTBED_DIR/netd
  local out; out=$(out_dir netd local "$src"/*.go "$src"/go.mod)
  if ! built "$out"; then
    log "building testbed-netd"
    mkdir -p "$out"
    (cd "$src" && CGO_ENABLED=0 run_logged build-netd go build -trimpath -ldflags "-s -w" -o "$out/netd" .)
    mark_built "$out"
  fi
  echo "$out"
}

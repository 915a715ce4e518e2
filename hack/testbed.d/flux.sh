# Flux for the test bed: the four controllers `flux install` deploys by default, at the
# versions flux2 $FLUX_VERSION pins (two exceptions, see versions.env), built from their Go
# modules into FROM-scratch images named as upstream (ghcr.io/fluxcd/<name>:<version>) and
# pushed to the registry mirror; plus the install manifest `flux install` would render,
# assembled offline into $FLUX_INSTALL (upstream text stays in the cache, never in the repo).
# shellcheck shell=bash

FLUX_COMPONENTS="source-controller kustomize-controller helm-controller notification-controller"
FLUX_DIR=$CACHE_ROOT/flux/$FLUX_VERSION
FLUX_INSTALL=$FLUX_DIR/install.yaml

flux_version() {
  case $1 in
    source-controller) echo "$FLUX_SOURCE_VERSION" ;;
    kustomize-controller) echo "$FLUX_KUSTOMIZE_VERSION" ;;
    helm-controller) echo "$FLUX_HELM_VERSION" ;;
    notification-controller) echo "$FLUX_NOTIFICATION_VERSION" ;;
    *) die "flux_version: unknown component $1" ;;
  esac
}
flux_image() { echo "ghcr.io/fluxcd/$1:$(flux_version "$1")"; }
flux_images() { local c; for c in $FLUX_COMPONENTS; do flux_image "$c"; done; }
module_dir() { go mod download -json "$1" | jq -r .Dir; }

# flux_api_version NAME: the version of its own api module the controller's go.mod requires.
# The go.mod replaces that module with ./api, which the module zip leaves out.
flux_api_version() {
  local c=$1
  awk -v m="github.com/fluxcd/$c/api" '$1 == "require" { $1 = ""; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' \
    "$(module_dir "github.com/fluxcd/$c@$(flux_version "$c")")/go.mod"
}

# build_flux_controllers: the four controllers, one static binary each, from one wrapper
# module that requires them all (see flux_wrapper_module). They share most of their
# dependencies (Kubernetes, controller-runtime, fluxcd/pkg), so one `go build` compiles each
# package once: 327 s and 625 CPU-s cold on 2 cores for all four, where four modules of their
# own took 600-1,000 s (their go.sum picks differ a little, so Go's build cache shared almost
# nothing between them). A version change of one controller rebuilds all four.
build_flux_controllers() {
  local c missing=0
  for c in $FLUX_COMPONENTS; do built "$(out_dir "flux-$c" "$(flux_version "$c")")" || missing=1; done
  [ "$missing" = 1 ] || return 0
  local pkgs=() key="" src tmp
  for c in $FLUX_COMPONENTS; do
    probe_module "github.com/fluxcd/$c@$(flux_version "$c")"
    local api; api=$(flux_api_version "$c")
    [ -n "$api" ] || die "$c $(flux_version "$c"): its go.mod requires no github.com/fluxcd/$c/api version"
    probe_module "github.com/fluxcd/$c/api@$api"
    pkgs+=("github.com/fluxcd/$c"); key+="$c@$(flux_version "$c") "
  done
  log "building Flux's controllers in one module: $key"
  src=$CACHE_ROOT/src/flux-controllers-$FLUX_VERSION
  run_logged flux-controllers-module flux_wrapper_module "$src"
  tmp=$CACHE_ROOT/work/flux-controllers; rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$src" && CGO_ENABLED=0 run_logged build-flux-controllers go build -trimpath -ldflags "-s -w" -o "$tmp/" "${pkgs[@]}")
  for c in $FLUX_COMPONENTS; do
    local out; out=$(out_dir "flux-$c" "$(flux_version "$c")")
    mkdir -p "$out"; mv "$tmp/$c" "$out/$c"; mark_built "$out"
  done
  rm -rf "$tmp"
}

# flux_wrapper_module DIR: a module that requires every controller at its version. Each
# controller's go.mod replaces its own api module with ./api, which the module zip leaves
# out; it also requires that api module at the controller's version, which is what the
# wrapper resolves to without a replace. The controllers' versioned replace lines are
# carried over (replaces act only in the main module); where two pin one module
# differently, the higher version wins.
flux_wrapper_module() {
  local dir=$1 c gomod go_version="" requires=() replaces=""
  for c in $FLUX_COMPONENTS; do
    gomod=$(go mod download -json "github.com/fluxcd/$c@$(flux_version "$c")" | jq -r .GoMod)
    go_version=$(printf '%s\n%s\n' "$go_version" "$(awk '/^go /{print $2; exit}' "$gomod")" | sort -V | tail -n 1)
    requires+=("github.com/fluxcd/$c@$(flux_version "$c")")
    replaces+=$(replace_lines "$gomod" | awk '$0 !~ /=> *[.\/]/')$'\n'
  done
  mkdir -p "$dir"
  {
    echo "module gitops-drill.testbed/flux-controllers"
    echo
    echo "go $go_version"
    echo
    # "OLD [V] => NEW V": keep, per OLD, the line whose NEW version sorts last.
    printf '%s' "$replaces" | awk 'NF { print $1 "\t" $NF "\t" $0 }' | sort -t$'\t' -k1,1 -k2,2V \
      | awk -F'\t' '{ last[$1] = $3 } END { for (m in last) print "replace " last[m] }' | sort
  } >"$dir/go.mod"
  (cd "$dir" && go get "${requires[@]}" >/dev/null)
}

# build_flux_controller NAME: the directory holding NAME's binary (built with the others).
build_flux_controller() {
  build_flux_controllers
  out_dir "flux-$1" "$(flux_version "$1")"
}

# flux_image_build NAME: what upstream's alpine-based image gives the controller, FROM scratch:
# the binary in /usr/local/bin, CA certificates, a writable /tmp, uid/gid 65534.
# Left out: kustomize-controller's tini, git, ssh and gnupg (its SOPS PGP decryption runs gpg).
flux_image_build() {
  local c=$1 bin ctx key env=""
  bin=$(build_flux_controller "$c")
  key=$(key_of "$bin/$c" /etc/ssl/certs/ca-certificates.crt "$TESTBED_DIR/flux.sh")
  image_is "$key" "$(flux_image "$c")" && return 0
  log "building image $(flux_image "$c")"
  ctx=$CACHE_ROOT/work/images/flux-$c
  rm -rf "$ctx"; mkdir -p "$ctx/root/usr/local/bin" "$ctx/root/etc/ssl/certs" "$ctx/root/tmp"
  chmod 1777 "$ctx/root/tmp"
  cp "$bin/$c" "$ctx/root/usr/local/bin/"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/root/etc/ssl/certs/"
  [ "$c" = kustomize-controller ] && env='ENV GNUPGHOME=/tmp\n'
  printf "FROM scratch\nCOPY root/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\n${env}USER 65534:65534\nENTRYPOINT [\"%s\"]\n" "$c" >"$ctx/Dockerfile"
  keyed_build "$key" "$ctx" "$(flux_image "$c")"
  rm -rf "$ctx"
}

build_flux() {
  probe_module "github.com/fluxcd/flux2/v2@$FLUX_VERSION"
  local c
  for c in $FLUX_COMPONENTS; do
    flux_image_build "$c"
    mirror_push "$(flux_image "$c")"
  done
  flux_install_manifest
}

# flux_install_manifest: $FLUX_INSTALL, what `flux install` $FLUX_VERSION renders with its
# default options. flux install (1) takes the release's manifests bundle: flux2's
# manifests/bases/<name>, rbac and policies, each built with kustomize, where a base pulls
# <name>.crds.yaml and <name>.deployment.yaml from that controller's release; (2) writes a
# kustomization over the bundle (namespace, labels, node selector, args patches, roles with
# a -flux-system suffix, ghcr.io image names); (3) builds it. Here the release files come from
# kustomize over the controllers' own config/crd and config/manager, which is what their
# release workflow publishes, and `kubectl kustomize` does all building.
flux_install_manifest() {
  local key; key=$(flux_install_key)
  [ -f "$FLUX_INSTALL" ] && [ "$(cat "$FLUX_DIR/install.key" 2>/dev/null)" = "$key" ] && return 0
  log "assembling the Flux $FLUX_VERSION install manifest"
  local work=$FLUX_DIR/kustomize
  rm -rf "$work"; mkdir -p "$work/bundle/roles"
  flux_release_bases "$work/manifests"
  flux_bundle "$work/manifests" "$work/bundle"
  flux_install_overlay "$work/bundle"
  { printf -- '---\n# Assembled offline by the gitops-drill test bed as `flux install` %s renders it\n# (default options). Components: %s\n# Changed: --requeue-dependency=%s, readinessProbe periodSeconds %s (stock: 30s, 10).\n' \
      "$FLUX_VERSION" "$(echo "$FLUX_COMPONENTS" | tr ' ' ',')" "$FLUX_REQUEUE_DEPENDENCY" "$ENGINE_READINESS_PERIOD"
    kubectl kustomize "$work/bundle"; } >"$FLUX_INSTALL.tmp" || die "kubectl kustomize of the Flux install failed"
  flux_check_images "$FLUX_INSTALL.tmp"
  mv "$FLUX_INSTALL.tmp" "$FLUX_INSTALL"
  echo "$key" >"$FLUX_DIR/install.key"
  rm -rf "$work"
  ok "Flux install manifest: $FLUX_INSTALL"
}

# The install is rebuilt when its recipe or a version changes (kubectl's is K8S_VERSION).
flux_install_key() { key_of "$TESTBED_DIR/flux.sh" "$TESTBED_DIR/versions.env"; }

# flux_release_bases DIR: flux2's manifests/ with each default component's remote release
# files replaced by local ones, rendered from that controller's module.
flux_release_bases() {
  local dir=$1 flux2 c moddir base
  flux2=$(module_dir "github.com/fluxcd/flux2/v2@$FLUX_VERSION")
  mkdir -p "$dir/bases"
  cp -r --no-preserve=mode "$flux2/manifests/rbac" "$flux2/manifests/policies" "$dir/"
  build_kubernetes >/dev/null   # kubectl for `kubectl kustomize`
  for c in $FLUX_COMPONENTS; do
    moddir=$(module_dir "github.com/fluxcd/$c@$(flux_version "$c")")
    base=$dir/bases/$c
    cp -r --no-preserve=mode "$flux2/manifests/bases/$c" "$base"
    kubectl kustomize "$moddir/config/crd" >"$base/$c.crds.yaml"
    kubectl kustomize "$moddir/config/manager" >"$base/$c.deployment.yaml"
    # "- <url>/<name>.crds.yaml" -> "- <name>.crds.yaml" (same for .deployment.yaml)
    sed -i -E 's#^(\s*-\s*)[a-z]+://\S*/([^/]+\.(crds|deployment)\.yaml)\s*$#\1\2#' "$base/kustomization.yaml"
    ! grep -q '://' "$base/kustomization.yaml" || die "$base/kustomization.yaml still references a remote file"
  done
}

# flux_bundle SRC OUT: flux2's manifests/scripts/bundle.sh, for the default components.
flux_bundle() {
  local src=$1 out=$2 c
  for c in $FLUX_COMPONENTS; do kubectl kustomize "$src/bases/$c" >"$out/$c.yaml"; done
  kubectl kustomize "$src/rbac" >"$out/rbac.yaml"
  kubectl kustomize "$src/policies" >"$out/policies.yaml"
}

# flux_install_overlay DIR: the kustomization flux install writes over the bundle, with its
# defaults: namespace flux-system, network policies, watch all namespaces, log level info,
# cluster domain cluster.local, events to notification-controller, images from ghcr.io/fluxcd.
flux_install_overlay() {
  local dir=$1 ns=flux-system c
  local events="http://notification-controller.\$(RUNTIME_NAMESPACE).svc.cluster.local./"
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    pod-security.kubernetes.io/warn: restricted\n    pod-security.kubernetes.io/warn-version: latest\n' \
    "$ns" >"$dir/namespace.yaml"
  printf 'apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: labels\nlabels:\n  app.kubernetes.io/instance: %s\n  app.kubernetes.io/version: "%s"\n  app.kubernetes.io/part-of: flux\nfieldSpecs:\n  - path: metadata/labels\n    create: true\n  - kind: Deployment\n    path: spec/template/metadata/labels\n    create: true\n' \
    "$ns" "$FLUX_VERSION" >"$dir/labels.yaml"
  printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: all\nspec:\n  template:\n    spec:\n      nodeSelector:\n        kubernetes.io/os: linux\n' \
    >"$dir/node-selector.yaml"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n  - rbac.yaml\nnameSuffix: -%s\n' \
    "$ns" "$ns" >"$dir/roles/kustomization.yaml"
  mv "$dir/rbac.yaml" "$dir/roles/rbac.yaml"
  {
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\ntransformers:\n  - labels.yaml\n' "$ns"
    printf 'resources:\n  - namespace.yaml\n  - policies.yaml\n  - roles\n'
    for c in $FLUX_COMPONENTS; do printf '  - %s.yaml\n' "$c"; done
    printf 'patches:\n  - path: node-selector.yaml\n    target:\n      kind: Deployment\n'
    for c in $FLUX_COMPONENTS; do
      printf '  - target:\n      group: apps\n      version: v1\n      kind: Deployment\n      name: %s\n    patch: |-\n' "$c"
      case $c in
        notification-controller) flux_args_patch --watch-all-namespaces=true --log-level=info ;;
        source-controller) flux_args_patch "--events-addr=$events" --watch-all-namespaces=true --log-level=info \
                             "" "" "" "--storage-adv-addr=$c.\$(RUNTIME_NAMESPACE).svc.cluster.local." ;;
        # Dependencies are re-evaluated every 5 s instead of the stock 30 s (a common
        # production tuning): a dependsOn chain then costs the suite seconds, not minutes.
        kustomize-controller|helm-controller)
          flux_args_patch "--events-addr=$events" --watch-all-namespaces=true --log-level=info
          flux_args_append "--requeue-dependency=$FLUX_REQUEUE_DEPENDENCY" ;;
        *) flux_args_patch "--events-addr=$events" --watch-all-namespaces=true --log-level=info ;;
      esac
      readiness_period_patch
    done
    printf 'images:\n'
    for c in $FLUX_COMPONENTS; do printf '  - name: fluxcd/%s\n    newName: ghcr.io/fluxcd/%s\n' "$c" "$c"; done
  } >"$dir/kustomization.yaml"
}

# flux_args_patch ARG...: JSON-patch lines replacing container args by position ("" = keep).
flux_args_patch() {
  local i=0 a
  for a in "$@"; do
    [ -n "$a" ] && printf '      - op: replace\n        path: /spec/template/spec/containers/0/args/%d\n        value: %s\n' "$i" "$a"
    i=$((i + 1))
  done
}

# readiness_period_patch: a JSON-patch line probing the controller's readiness every
# $ENGINE_READINESS_PERIOD s instead of the stock 10 s. drill's engine-install ends when
# every controller is available; with 10 s a controller ready a moment after a failed
# probe waited up to 10 s more, on every install of every rehearsal.
readiness_period_patch() {
  printf '      - op: add\n        path: /spec/template/spec/containers/0/readinessProbe/periodSeconds\n        value: %s\n' \
    "$ENGINE_READINESS_PERIOD"
}

# flux_args_append ARG...: JSON-patch lines appending container args.
flux_args_append() {
  local a
  for a in "$@"; do printf '      - op: add\n        path: /spec/template/spec/containers/0/args/-\n        value: %s\n' "$a"; done
}

# flux_check_images FILE: every image in the install is one this test bed built and mirrored.
flux_check_images() {
  local want got
  want=$(flux_images | sort -u)
  got=$(grep -E '^\s*image:' "$1" | awk '{print $2}' | tr -d '"' | sort -u)
  [ "$want" = "$got" ] || die "Flux install images differ from the mirrored ones: got [$(echo $got)], want [$(echo $want)]"
}

# Secrets tooling for the test bed (docs/testbed.md, "Secrets"):
# - Bitnami sealed-secrets: the controller, built from its Go module into a FROM-scratch image
#   named as upstream's controller.yaml names it (docker.io/bitnami/sealed-secrets-controller:
#   <version without v>) and pushed to the registry mirror; kubeseal for the host; and the
#   install manifest, rendered offline from the release's own controller.jsonnet (upstream
#   text stays in the cache, never in the repo).
# - SOPS and age (age, age-keygen) for the host, from their Go modules.
# shellcheck shell=bash

# The module is published as github.com/bitnami-labs/sealed-secrets, but its go.mod declares
# github.com/bitnami/sealed-secrets (not on the proxy): built through a wrapper module that
# requires the declared path and replaces it with the published one.
SEALED_SECRETS_MODULE=github.com/bitnami-labs/sealed-secrets
SEALED_SECRETS_PATH=github.com/bitnami/sealed-secrets
SEALED_SECRETS_DIR=$CACHE_ROOT/sealed-secrets/$SEALED_SECRETS_VERSION
SEALED_SECRETS_INSTALL=$SEALED_SECRETS_DIR/controller.yaml
SOPS_MODULE=github.com/getsops/sops/v3
AGE_MODULE=filippo.io/age
JSONNET_MODULE=github.com/google/go-jsonnet

# Upstream's release workflow renders controller.yaml with this image (tag without the v).
sealed_secrets_image() { echo "docker.io/bitnami/sealed-secrets-controller:${SEALED_SECRETS_VERSION#v}"; }
sealed_secrets_images() { sealed_secrets_image; }

# build_sealed_secrets: controller and kubeseal, static, with the version upstream's
# goreleaser sets (-X main.VERSION=<version without v>).
build_sealed_secrets() {
  local v=$SEALED_SECRETS_VERSION out; out=$(out_dir sealed-secrets "$v")
  if ! built "$out"; then
    probe_module "$SEALED_SECRETS_MODULE@$v"
    log "building sealed-secrets $v (controller, kubeseal); cold: ~2 min on 2 cores"
    local src=$CACHE_ROOT/src/sealed-secrets-$v
    mkdir -p "$src"
    printf 'module gitops-drill.testbed/wrapper\n\ngo %s\n\nrequire %s %s\n\nreplace %s => %s %s\n' \
      "$(awk '/^go /{print $2; exit}' "$(go mod download -json "$SEALED_SECRETS_MODULE@$v" | jq -r .GoMod)")" \
      "$SEALED_SECRETS_PATH" "$v" "$SEALED_SECRETS_PATH" "$SEALED_SECRETS_MODULE" "$v" >"$src/go.mod"
    mkdir -p "$out"
    (cd "$src" && CGO_ENABLED=0 run_logged build-sealed-secrets go build -trimpath \
      -ldflags "-s -w -X main.VERSION=${v#v}" -o "$out/" \
      "$SEALED_SECRETS_PATH/cmd/controller" "$SEALED_SECRETS_PATH/cmd/kubeseal")
    mark_built "$out"
  fi
  ln -sf "$out/kubeseal" "$BIN_DIR/kubeseal"
  echo "$out"
}

# go_install_cached NAME MODULE VERSION PKG...: `go install` PKGs at VERSION into a cached out dir.
go_install_cached() {
  local name=$1 mod=$2 v=$3; shift 3
  local out; out=$(out_dir "$name" "$v")
  if ! built "$out"; then
    probe_module "$mod@$v"
    log "building $name $v"
    local pkgs=() p
    for p in "$@"; do pkgs+=("$p@$v"); done
    mkdir -p "$out"
    GOBIN=$out CGO_ENABLED=0 run_logged "build-$name" go install -trimpath -ldflags "-s -w" "${pkgs[@]}"
    mark_built "$out"
  fi
  echo "$out"
}

# sops sets its version in source (version.Version); age reads it from the build info.
build_sops() {
  local out; out=$(go_install_cached sops "$SOPS_MODULE" "$SOPS_VERSION" "$SOPS_MODULE/cmd/sops")
  ln -sf "$out/sops" "$BIN_DIR/sops"
}
build_age() {
  local out; out=$(go_install_cached age "$AGE_MODULE" "$AGE_VERSION" "$AGE_MODULE/cmd/age" "$AGE_MODULE/cmd/age-keygen")
  ln -sf "$out/age" "$BIN_DIR/age"
  ln -sf "$out/age-keygen" "$BIN_DIR/age-keygen"
}

# sealed_secrets_image_build: what upstream's distroless/static image gives the controller,
# FROM scratch: /usr/local/bin/controller, CA certificates, /tmp, uid 1001, ports 8080/8081.
sealed_secrets_image_build() {
  local bin ctx key ref; bin=$(build_sealed_secrets); ref=$(sealed_secrets_image)
  key=$(key_of "$bin/controller" /etc/ssl/certs/ca-certificates.crt "$TESTBED_DIR/secrets.sh")
  image_is "$key" "$ref" && return 0
  log "building image $ref"
  ctx=$CACHE_ROOT/work/images/sealed-secrets-controller
  rm -rf "$ctx"; mkdir -p "$ctx/root/usr/local/bin" "$ctx/root/etc/ssl/certs" "$ctx/root/tmp"
  chmod 1777 "$ctx/root/tmp"
  cp "$bin/controller" "$ctx/root/usr/local/bin/"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/root/etc/ssl/certs/"
  printf 'FROM scratch\nCOPY root/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\nUSER 1001\nEXPOSE 8080 8081\nENTRYPOINT ["controller"]\n' \
    >"$ctx/Dockerfile"
  keyed_build "$key" "$ctx" "$ref"
  rm -rf "$ctx"
}

# sealed_secrets_manifest: $SEALED_SECRETS_INSTALL, upstream's controller.yaml for the release.
# Upstream renders it with `kubecfg show -V CONTROLLER_IMAGE=<image> -V IMAGE_PULL_POLICY= -o yaml
# controller.jsonnet` (Makefile, release workflow); kubecfg is not on the Go proxy. Here go-jsonnet
# evaluates the same controller.jsonnet from the module (kube-libsonnet is vendored in it), a
# two-line kubecfg.libsonnet supplies the one kubecfg native it imports (parseYaml), and jq
# collects the Kubernetes objects as kubecfg does: every object with apiVersion and kind,
# searched through nested objects and arrays. Output: one JSON document per object (valid
# YAML), the CRD first.
sealed_secrets_manifest() {
  local key; key=$( { cat "$TESTBED_DIR/secrets.sh"; echo "$SEALED_SECRETS_VERSION $JSONNET_VERSION"; } | sha256sum | cut -c1-16)
  [ -f "$SEALED_SECRETS_INSTALL" ] && [ "$(cat "$SEALED_SECRETS_DIR/install.key" 2>/dev/null)" = "$key" ] && return 0
  log "rendering the sealed-secrets $SEALED_SECRETS_VERSION controller.yaml (upstream's controller.jsonnet)"
  local jsonnet mod work
  jsonnet=$(go_install_cached jsonnet "$JSONNET_MODULE" "$JSONNET_VERSION" "$JSONNET_MODULE/cmd/jsonnet")
  mod=$(module_dir "$SEALED_SECRETS_MODULE@$SEALED_SECRETS_VERSION")
  work=$SEALED_SECRETS_DIR/jsonnet
  rm -rf "$work"; mkdir -p "$work"
  printf '// kubecfg native functions used by controller-norbac.jsonnet (gitops-drill test bed shim).\n{ parseYaml(s):: local y = std.parseYaml(s); if std.isArray(y) then y else [y] }\n' \
    >"$work/kubecfg.libsonnet"
  run_logged sealed-secrets-jsonnet "$jsonnet/jsonnet" -J "$work" -o "$work/controller.json" \
    --ext-str "CONTROLLER_IMAGE=$(sealed_secrets_image)" --ext-str IMAGE_PULL_POLICY= "$mod/controller.jsonnet"
  {
    printf '# sealed-secrets %s controller.yaml, rendered offline by the gitops-drill test bed from the\n# release'"'"'s controller.jsonnet (CONTROLLER_IMAGE=%s), as its release workflow does.\n' \
      "$SEALED_SECRETS_VERSION" "$(sealed_secrets_image)"
    jq -r 'def k8s: if type == "array" then (.[] | k8s)
                   elif type == "object" then (if has("apiVersion") and has("kind") then . else (.[] | k8s) end)
                   else empty end;
           [k8s] | sort_by(if .kind == "CustomResourceDefinition" then 0 else 1 end) | .[] | "---", .' \
      "$work/controller.json"
  } >"$SEALED_SECRETS_INSTALL.tmp"
  local got; got=$(grep -E '"image":' "$SEALED_SECRETS_INSTALL.tmp" | awk '{print $2}' | tr -d '",' | sort -u)
  [ "$got" = "$(sealed_secrets_images)" ] || die "sealed-secrets install images [$(echo $got)] differ from the mirrored $(sealed_secrets_images)"
  mv "$SEALED_SECRETS_INSTALL.tmp" "$SEALED_SECRETS_INSTALL"
  echo "$key" >"$SEALED_SECRETS_DIR/install.key"
  rm -rf "$work"
  ok "sealed-secrets install manifest: $SEALED_SECRETS_INSTALL"
}

build_secrets() {
  sealed_secrets_image_build
  mirror_push "$(sealed_secrets_image)"
  sealed_secrets_manifest
  build_sops
  build_age
}

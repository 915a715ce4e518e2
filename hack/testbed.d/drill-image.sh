# drill's container image, offline: the repo's Dockerfile at its `from-dist` target, on the
# Debian minbase with git, ssh and tini that the test bed's Argo CD image is built on (no
# registry, nothing downloaded), with a dist/ folder of drill (the binary given), kind and
# kubectl built by `up`, and the host's static Docker CLI (kind drives Docker through it).
# shellcheck shell=bash

DRILL_IMAGE=gitops-drill/drill:testbed

# build_drill_image BINARY: builds (or keeps, when every input is the same) DRILL_IMAGE;
# prints its tag.
build_drill_image() {
  local drill=$1 docker_cli base ctx key
  [ -x "$drill" ] || die "no drill binary at $drill: build it first (cargo build --release)"
  docker_cli=$(command -v docker) || die "no docker CLI on PATH"
  # ldd exits 1 on a static binary: read its words, not its status (pipefail is on).
  [[ "$(ldd "$docker_cli" 2>&1 || true)" == *"not a dynamic executable"* ]] \
    || die "$docker_cli is not statically linked: the image cannot carry it"
  base=$(base_image "$(image_rootfs argocd "$ARGOCD_PACKAGES" "$ARGOCD_ROOTFS_SETUP")" argocd)
  key=$( { sha256sum "$drill" "$BIN_DIR/kind" "$BIN_DIR/kubectl" "$docker_cli" "$REPO_ROOT/Dockerfile" | cut -d' ' -f1
           echo "$base"; } | sha256sum | cut -c1-16)
  if ! image_is "$key" "$DRILL_IMAGE"; then
    log "building image $DRILL_IMAGE (drill: $drill)"
    ctx=$CACHE_ROOT/work/images/drill
    rm -rf "$ctx"; mkdir -p "$ctx/dist"
    cp "$REPO_ROOT/Dockerfile" "$ctx/"
    install -m 0755 "$drill" "$BIN_DIR/kind" "$BIN_DIR/kubectl" "$docker_cli" "$ctx/dist/"
    DOCKER_BUILDKIT=0 run_logged image-drill docker build -q --target from-dist \
      --build-arg "BASE_IMAGE=$base" --label "$TESTBED_LABEL" --label "$IMAGE_LABEL=$key" \
      -t "$DRILL_IMAGE" "$ctx"
    rm -rf "$ctx"
  fi
  echo "$DRILL_IMAGE"
}

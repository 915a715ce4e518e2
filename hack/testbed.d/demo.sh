# Demo workload images for drills: the same small HTTP server (hack/testbed.d/demo-app) in
# three images of clearly different sizes, the difference being incompressible filler, so a
# drill can see what image size does to recovery time. They are pushed to the registry
# mirror and NOT preloaded into the node image: every pull goes through the mirror.
# shellcheck shell=bash

# name:approximate pull size in MB, what a node downloads: the gzip'd layer of binary + filler
# (the filler does not compress; the binary does, to about half).
DEMO_SIZES="small:5 medium:50 large:200"

# A second tag of demo-small, the same image: a "release" and its rollback in the drift
# rehearsals (scenarios/seed-configmap-drift.yaml) both pull something real.
DEMO_RELEASE_TAG=1.1

demo_image() { echo "docker.io/gitops-drill/demo-$1:$DEMO_TAG"; }
demo_images() {
  local s; for s in $DEMO_SIZES; do demo_image "${s%%:*}"; done
  echo "docker.io/gitops-drill/demo-small:$DEMO_RELEASE_TAG"
}

build_demo_app() {
  local src=$TESTBED_DIR/demo-app
  local out; out=$(out_dir demo-app local "$src"/*.go "$src"/go.mod)
  if ! built "$out"; then
    log "building demo-app"
    mkdir -p "$out"
    (cd "$src" && CGO_ENABLED=0 run_logged build-demo-app go build -trimpath -ldflags "-s -w" -o "$out/demo-app" .)
    mark_built "$out"
  fi
  echo "$out"
}

# demo_image_build NAME MB BIN: the binary plus (MB million bytes - gzip'd binary size) of
# filler, seeded by the image name: the same bytes on every rebuild, so the layer is stable.
demo_image_build() {
  local name=$1 mb=$2 bin=$3 ref ctx key filler
  ref=$(demo_image "$name")
  key=$( { key_of "$bin/demo-app" "$TESTBED_DIR/demo.sh"; echo "$name $mb $DEMO_TAG"; } | sha256sum | cut -c1-16)
  image_is "$key" "$ref" && return 0
  log "building image $ref"
  ctx=$CACHE_ROOT/work/images/demo-$name
  rm -rf "$ctx"; mkdir -p "$ctx/root"
  cp "$bin/demo-app" "$ctx/root/demo-app"
  filler=$((mb * 1000000 - $(gzip -c "$bin/demo-app" | wc -c)))
  [ "$filler" -gt 0 ] || filler=0
  "$bin/demo-app" fill "$filler" "demo-$name" >"$ctx/root/filler.bin"
  touch -d @0 "$ctx/root/demo-app" "$ctx/root/filler.bin"
  printf 'FROM scratch\nCOPY root/ /\nENV APP_NAME=demo-%s APP_VERSION=%s\nUSER 65534:65534\nEXPOSE 8080\nENTRYPOINT ["/demo-app"]\n' \
    "$name" "$DEMO_TAG" >"$ctx/Dockerfile"
  keyed_build "$key" "$ctx" "$ref"
  rm -rf "$ctx"
}

build_demo() {
  local bin s; bin=$(build_demo_app)
  for s in $DEMO_SIZES; do
    demo_image_build "${s%%:*}" "${s#*:}" "$bin"
    mirror_push "$(demo_image "${s%%:*}")"
  done
  docker tag "$(demo_image small)" "docker.io/gitops-drill/demo-small:$DEMO_RELEASE_TAG"
  mirror_push "docker.io/gitops-drill/demo-small:$DEMO_RELEASE_TAG"
}

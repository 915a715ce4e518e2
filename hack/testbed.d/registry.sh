# The test bed's registry mirror: distribution's registry, built from its Go module, runs as
# container $REGISTRY_CONTAINER on the kind network. Nodes pull through it (node-image.sh
# bakes containerd hosts.toml files for $MIRRORED_REGISTRIES); the host pushes to
# $REGISTRY_PUSH, published on loopback only (Docker accepts plain HTTP for loopback
# registries). An image keeps its upstream name under the upstream registry as path prefix:
# ghcr.io/fluxcd/source-controller:v1.9.5 is <mirror>/ghcr.io/fluxcd/source-controller:v1.9.5.
# shellcheck shell=bash

REGISTRY_IMAGE=gitops-drill/registry:$REGISTRY_VERSION
REGISTRY_DATA=$CACHE_ROOT/registry/data       # bind-mounted; `down` keeps it
REGISTRY_PUSHED=$CACHE_ROOT/registry/pushed   # per mirrored ref: the local image id last pushed

# image_is KEY IMAGE: IMAGE exists and was built from inputs KEY (label $IMAGE_LABEL).
image_is() {
  [ "$(docker image inspect -f "{{ index .Config.Labels \"$IMAGE_LABEL\" }}" "$2" 2>/dev/null)" = "$1" ]
}

# keyed_build KEY CTX TAG...: image_build, plus the inputs label image_is compares.
keyed_build() {
  local key=$1 ctx=$2; shift 2
  local tags=() t
  for t in "$@"; do tags+=(-t "$t"); done
  DOCKER_BUILDKIT=0 run_logged "image-$(basename "$ctx")" \
    docker build -q --label "$TESTBED_LABEL" --label "$IMAGE_LABEL=$key" "${tags[@]}" "$ctx"
}

# distribution's go.mod has no local replace lines: `go install` at the version works.
build_registry() {
  local out; out=$(out_dir registry "$REGISTRY_VERSION")
  if ! built "$out"; then
    local mod=github.com/distribution/distribution/v3
    probe_module "$mod@$REGISTRY_VERSION"
    log "building registry (distribution) $REGISTRY_VERSION"
    mkdir -p "$out"
    GOBIN=$out CGO_ENABLED=0 run_logged build-registry go install -trimpath \
      -ldflags "-s -w -X $mod/version.version=$REGISTRY_VERSION -X $mod/version.mainpkg=$mod" \
      "$mod/cmd/registry@$REGISTRY_VERSION"
    mark_built "$out"
  fi
  echo "$out"
}

# The registry's config: filesystem storage under /var/lib/registry (bind-mounted), :5000.
REGISTRY_CONFIG='version: 0.1
log:
  fields: {service: registry}
storage:
  filesystem: {rootdirectory: /var/lib/registry}
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: :5000
  headers: {X-Content-Type-Options: [nosniff]}
health:
  storagedriver: {enabled: true, interval: 10s, threshold: 3}'
# OTEL_TRACES_EXPORTER=none as upstream's image sets: otherwise it tries to export traces.
REGISTRY_DOCKERFILE='FROM scratch
COPY root/ /
ENV OTEL_TRACES_EXPORTER=none
EXPOSE 5000
ENTRYPOINT ["/bin/registry"]
CMD ["serve", "/etc/distribution/config.yml"]'

# registry_image: FROM scratch, the binary plus the config; keyed by both and the Dockerfile.
registry_image() {
  local bin ctx key; bin=$(build_registry)
  key=$( { key_of "$bin/registry"; echo "$REGISTRY_CONFIG$REGISTRY_DOCKERFILE"; } | sha256sum | cut -c1-16)
  image_is "$key" "$REGISTRY_IMAGE" && return 0
  log "building image $REGISTRY_IMAGE"
  ctx=$CACHE_ROOT/work/images/registry
  rm -rf "$ctx"; mkdir -p "$ctx/root/bin" "$ctx/root/etc/distribution" "$ctx/root/var/lib/registry" "$ctx/root/tmp"
  chmod 1777 "$ctx/root/tmp"
  cp "$bin/registry" "$ctx/root/bin/"
  echo "$REGISTRY_CONFIG" >"$ctx/root/etc/distribution/config.yml"
  echo "$REGISTRY_DOCKERFILE" >"$ctx/Dockerfile"
  keyed_build "$key" "$ctx" "$REGISTRY_IMAGE"
  rm -rf "$ctx"
}

# kind_network_ensure: the Docker network kind uses, created if missing. Docker does not
# keep network names unique under concurrent creates (kind, checks, other users of this
# engine): on duplicates keep the one kind itself keeps (most containers, then lowest ID)
# and remove the other, empty ones, as kind does on its next create.
kind_network_ensure() {
  docker network inspect "$KIND_NETWORK" >/dev/null 2>&1 \
    || docker network create -d bridge -o com.docker.network.bridge.enable_ip_masquerade=true "$KIND_NETWORK" >/dev/null 2>&1 || true
  local ids; ids=$(docker network ls -q --no-trunc --filter "name=^${KIND_NETWORK}\$")
  [ "$(echo "$ids" | grep -c .)" -gt 1 ] || return 0
  log "several Docker networks named $KIND_NETWORK: keeping the one kind keeps"
  docker network inspect -f '{{len .Containers}} {{.Id}}' $ids | sort -k1,1nr -k2,2 | tail -n +2 \
    | while read -r _ id; do docker network rm "$id" >/dev/null 2>&1 || true; done
}

registry_answers() { curl -sf -o /dev/null --max-time 2 "http://$REGISTRY_PUSH/v2/"; }

# registry_up: idempotent. Reuses a running container of the current image; recreates it
# when the image changed, it left the kind network, or it keeps another cache's data (a
# test bed under another GITOPS_DRILL_CACHE ran last); its data survives either way.
registry_up() {
  registry_image
  kind_network_ensure
  local want have="" data
  want=$(docker image inspect -f '{{.Id}}' "$REGISTRY_IMAGE")
  if docker inspect "$REGISTRY_CONTAINER" >/dev/null 2>&1; then
    [ "$(docker inspect -f "{{ index .Config.Labels \"${TESTBED_LABEL%%=*}\" }}" "$REGISTRY_CONTAINER")" = "${TESTBED_LABEL#*=}" ] \
      || die "a container named $REGISTRY_CONTAINER exists that the test bed did not create"
    have=$(docker inspect -f '{{.Image}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$REGISTRY_CONTAINER")
    data=$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/var/lib/registry"}}{{.Source}}{{end}}{{end}}' "$REGISTRY_CONTAINER")
    if [ "${have%% *}" != "$want" ] || [[ " ${have#* } " != *" $KIND_NETWORK "* ]] || [ "$data" != "$REGISTRY_DATA" ]; then
      log "recreating $REGISTRY_CONTAINER (image, network or data folder changed)"
      docker rm -f "$REGISTRY_CONTAINER" >/dev/null
      have=
    fi
  fi
  mkdir -p "$REGISTRY_DATA"
  if [ -z "$have" ]; then
    run_logged registry-run docker run -d --name "$REGISTRY_CONTAINER" --label "$TESTBED_LABEL" \
      --network "$KIND_NETWORK" --restart unless-stopped -p "$REGISTRY_PUSH:5000" \
      -v "$REGISTRY_DATA:/var/lib/registry" "$REGISTRY_IMAGE"
  elif [ "$(docker inspect -f '{{.State.Running}}' "$REGISTRY_CONTAINER")" != true ]; then
    run_logged registry-start docker start "$REGISTRY_CONTAINER"
  fi
  local i
  for i in $(seq 1 50); do registry_answers && return 0; sleep 0.2; done
  docker logs --tail 20 "$REGISTRY_CONTAINER" >&2 || true
  die "registry mirror did not answer on http://$REGISTRY_PUSH/v2/"
}

# mirror_path REF: REF's path in the mirror, <registry>/<repository>:<tag>, with Docker
# Hub's implicit parts spelled out (busybox:1 -> docker.io/library/busybox:1).
mirror_path() {
  local ref=$1 first=${1%%/*}
  case $ref in
    */*) case $first in *.*|*:*|localhost) ;; *) ref=docker.io/$ref ;; esac ;;
    *) ref=docker.io/$ref ;;
  esac
  case $ref in docker.io/*/*) ;; docker.io/*) ref=docker.io/library/${ref#docker.io/} ;; esac
  case ${ref##*/} in *:*) ;; *) ref=$ref:latest ;; esac
  echo "$ref"
}

# mirror_has REF: the mirror holds a manifest for REF.
mirror_has() {
  local path; path=$(mirror_path "$1")
  curl -sf -o /dev/null -I --max-time 5 \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://$REGISTRY_PUSH/v2/${path%:*}/manifests/${path##*:}"
}

# mirror_push UPSTREAM_REF: push the local image UPSTREAM_REF to the mirror under its
# upstream name (tag, push, untag). Skipped when the mirror holds the image last pushed
# from this very local image id.
mirror_push() {
  local ref=$1 target id stamp
  target=$REGISTRY_PUSH/$(mirror_path "$ref")
  id=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null) || die "mirror_push: no local image $ref"
  stamp=$REGISTRY_PUSHED/$(mirror_path "$ref" | tr '/:' '__')
  if [ "$(cat "$stamp" 2>/dev/null)" = "$id" ] && mirror_has "$ref"; then return 0; fi
  log "pushing $ref to the mirror"
  docker tag "$ref" "$target"
  if ! docker push "$target" >"$LOG_DIR/push.log" 2>&1; then
    docker rmi "$target" >/dev/null 2>&1 || true
    tail -n 20 "$LOG_DIR/push.log" >&2
    die "docker push $target failed"
  fi
  docker rmi "$target" >/dev/null
  mkdir -p "$REGISTRY_PUSHED"; echo "$id" >"$stamp"
}

# Argo CD for the test bed: the multi-call `argocd` binary built from the
# github.com/argoproj/argo-cd/v3 module at $ARGOCD_VERSION, with helm and kustomize (the
# versions upstream's image carries) built from their modules, in an image named as upstream
# (quay.io/argoproj/argocd:<version>) on a Debian rootfs with git, gpg and ssh (debootstrap,
# `docker import`, no pull); Redis from Debian's redis-server package. Both are pushed to the
# registry mirror. The install manifest is upstream's core install (controller, repo-server,
# applicationset-controller, redis; no API server, UI, Dex or notifications), copied into
# $ARGOCD_INSTALL with two adjustments: the Redis tag and a shorter refresh (argocd_install_manifest).
# shellcheck shell=bash

ARGOCD_MODULE=github.com/argoproj/argo-cd/v3
ARGOCD_DIR=$CACHE_ROOT/argocd/$ARGOCD_VERSION
ARGOCD_INSTALL=$ARGOCD_DIR/install.yaml
ARGOCD_IMAGE=quay.io/argoproj/argocd:$ARGOCD_VERSION
ARGOCD_REDIS_REPO=public.ecr.aws/docker/library/redis   # upstream's repository; the tag is Debian's version
ARGOCD_UPSTREAM_MANIFEST=manifests/core-install.yaml
# The names the binary dispatches on (argv[0]); upstream's image links each to argocd.
ARGOCD_LINKS="argocd-server argocd-repo-server argocd-cmp-server argocd-application-controller argocd-dex argocd-notifications argocd-applicationset-controller argocd-k8s-auth argocd-commit-server"
# Debian packages in place of what upstream's Ubuntu base installs (git git-lfs tini gpg tzdata
# connect-proxy, with recommends: openssh-client, gpg-agent).
ARGOCD_PACKAGES=git,git-lfs,tini,gnupg,gpg-agent,tzdata,connect-proxy,openssh-client,ca-certificates
ARGOCD_REDIS_PACKAGES=redis-server

argocd_images() { echo "$ARGOCD_IMAGE"; argocd_redis_image; }
# argocd_redis_image: the Redis image, tagged with the upstream version Debian packages.
argocd_redis_image() {
  local f=$ARGOCD_DIR/redis.version
  [ -s "$f" ] || die "Redis version unknown ($f missing): run ./hack/testbed up"
  echo "$ARGOCD_REDIS_REPO:$(cat "$f")"
}

# build_argocd_bin: the multi-call binary (cmd/ of the module), as upstream's `make argocd-all`
# links it (static, version stamped). Its go.mod has versioned replace lines only (k8s.io/*
# at v0.34.0, ...): wrapper_module carries them over. ui/dist/app holds only a placeholder
# in the module zip, so the binary carries no UI (the core install runs no API server).
build_argocd_bin() {
  local out; out=$(out_dir argocd "$ARGOCD_VERSION")
  if ! built "$out"; then
    probe_module "$ARGOCD_MODULE@$ARGOCD_VERSION"
    log "building argocd $ARGOCD_VERSION; cold: ~15 min on 2 cores"
    local src=$CACHE_ROOT/src/argocd-$ARGOCD_VERSION kubectl pkg=$ARGOCD_MODULE/common
    run_logged argocd-module wrapper_module "$src" "$ARGOCD_MODULE" "$ARGOCD_VERSION" "$ARGOCD_VERSION"
    kubectl=$(cd "$src" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' k8s.io/client-go)
    local ldflags="-s -w -X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.gitTag=$ARGOCD_VERSION -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.buildDate=1970-01-01T00:00:00Z"
    ldflags+=" -X $pkg.kubectlVersion=$kubectl"
    mkdir -p "$out"
    (cd "$src" && CGO_ENABLED=0 run_logged build-argocd go build -trimpath -ldflags "$ldflags" -o "$out/argocd" "$ARGOCD_MODULE/cmd")
    mark_built "$out"
  fi
  echo "$out"
}

build_argocd_helm() {
  local out; out=$(out_dir helm "$ARGOCD_HELM_VERSION")
  if ! built "$out"; then
    probe_module "helm.sh/helm/v3@$ARGOCD_HELM_VERSION"
    log "building helm $ARGOCD_HELM_VERSION"
    local v=helm.sh/helm/v3/internal/version
    mkdir -p "$out"
    GOBIN=$out CGO_ENABLED=0 run_logged build-helm go install -trimpath \
      -ldflags "-s -w -X $v.version=$ARGOCD_HELM_VERSION -X $v.gitTreeState=clean" \
      "helm.sh/helm/v3/cmd/helm@$ARGOCD_HELM_VERSION"
    mark_built "$out"
  fi
  echo "$out"
}

build_argocd_kustomize() {
  local out; out=$(out_dir kustomize "$ARGOCD_KUSTOMIZE_VERSION")
  if ! built "$out"; then
    probe_module "sigs.k8s.io/kustomize/kustomize/v5@$ARGOCD_KUSTOMIZE_VERSION"
    log "building kustomize $ARGOCD_KUSTOMIZE_VERSION"
    mkdir -p "$out"
    GOBIN=$out CGO_ENABLED=0 run_logged build-kustomize go install -trimpath \
      -ldflags "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=kustomize/$ARGOCD_KUSTOMIZE_VERSION" \
      "sigs.k8s.io/kustomize/kustomize/v5@$ARGOCD_KUSTOMIZE_VERSION"
    mark_built "$out"
  fi
  echo "$out"
}

# What the rootfs recipes do after debootstrap (chroot), part of their cache keys.
# argocd: upstream's argocd-base stage: user and group argocd (999), /home/argocd, the
# /app/config tree the install mounts ConfigMaps into, ssh_known_hosts from /app/config/ssh.
ARGOCD_ROOTFS_SETUP='groupadd -g 999 argocd && useradd -r -u 999 -g argocd -d /home/argocd argocd
mkdir -p /home/argocd /app/config/ssh /app/config/tls /app/config/gpg/source /app/config/gpg/keys
chown argocd:0 /home/argocd && chmod g=u /home/argocd
touch /app/config/ssh/ssh_known_hosts && ln -sf /app/config/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts
chown argocd /app/config/gpg/keys && chmod 0700 /app/config/gpg/keys'
# redis: upstream's image works in /data as uid 999 (the pod runs as 999 too).
ARGOCD_REDIS_ROOTFS_SETUP='mkdir -p /data && chown 999:999 /data'

# image_rootfs NAME PACKAGES SETUP: a debootstrap'd minbase rootfs with PACKAGES, SETUP run in
# it, as a tarball cached under rootfs/ (keyed by both); prints its path.
image_rootfs() {
  local name=$1 packages=$2 setup=$3 tarball
  tarball=$CACHE_ROOT/rootfs/$name-$DEBIAN_SUITE-$(echo "$packages $setup" | sha256sum | cut -c1-12).tar
  if [ ! -f "$tarball" ]; then
    log "debootstrap $DEBIAN_SUITE rootfs for $name (~2 min)"
    local dir=$CACHE_ROOT/work/debootstrap-$name
    rm -rf "$dir"; mkdir -p "$dir" "$(dirname "$tarball")"
    run_logged "debootstrap-$name" debootstrap --variant=minbase --include="$packages" "$DEBIAN_SUITE" "$dir" "$(apt_mirror)"
    run_logged "rootfs-setup-$name" chroot "$dir" /bin/sh -euc "$setup"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
    tar -C "$dir" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  echo "$tarball"
}

# base_image TARBALL NAME: `docker import` of a rootfs tarball as gitops-drill/NAME-base:<key>
# (the key is the tarball's name), for a `docker build FROM` that pulls nothing; prints its tag.
base_image() {
  local tarball=$1 name=$2 tag
  tag=gitops-drill/$name-base:$(basename "$tarball" .tar | sed 's/.*-//')
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    log "importing the $name base image"
    run_logged "import-$name-base" docker import --change "LABEL $TESTBED_LABEL" "$tarball" "$tag"
    # Bases of older recipes: untag (the images built on them keep their layers).
    docker images --format '{{.Repository}}:{{.Tag}}' "gitops-drill/$name-base" | grep -vxF "$tag" \
      | xargs -r docker rmi >/dev/null 2>&1 || true
  fi
  echo "$tag"
}

# argocd_image_build: upstream's final image on our base: argocd (+ links), helm, kustomize,
# the entrypoint and wrapper scripts from the module, tini as entrypoint, USER 999.
argocd_image_build() {
  local bin helm kust base moddir ctx key dockerfile l
  bin=$(build_argocd_bin); helm=$(build_argocd_helm); kust=$(build_argocd_kustomize)
  base=$(base_image "$(image_rootfs argocd "$ARGOCD_PACKAGES" "$ARGOCD_ROOTFS_SETUP")" argocd)
  moddir=$(module_dir "$ARGOCD_MODULE@$ARGOCD_VERSION")
  dockerfile="FROM $base
ENV ARGOCD_USER_ID=999 USER=argocd
COPY root/ /
ENTRYPOINT [\"/usr/bin/tini\", \"--\"]
USER 999
WORKDIR /home/argocd"
  # The binaries by path, size and mtime: their out/ directories are keyed by version and never
  # rewritten once built (hashing 225 MB of binaries would cost a warm `up` a second).
  key=$( { stat -c '%n %s %Y' "$bin/argocd" "$helm/helm" "$kust/kustomize"
           key_of "$moddir/entrypoint.sh" "$moddir/hack/gpg-wrapper.sh" "$moddir/hack/git-verify-wrapper.sh"
           echo "$dockerfile $ARGOCD_LINKS"; } | sha256sum | cut -c1-16)
  image_is "$key" "$ARGOCD_IMAGE" && return 0
  log "building image $ARGOCD_IMAGE"
  ctx=$CACHE_ROOT/work/images/argocd
  rm -rf "$ctx"; mkdir -p "$ctx/root/usr/local/bin"
  cp "$bin/argocd" "$helm/helm" "$kust/kustomize" "$ctx/root/usr/local/bin/"
  install -m 0755 "$moddir/entrypoint.sh" "$moddir/hack/gpg-wrapper.sh" "$moddir/hack/git-verify-wrapper.sh" "$ctx/root/usr/local/bin/"
  ln -s entrypoint.sh "$ctx/root/usr/local/bin/uid_entrypoint.sh"
  for l in $ARGOCD_LINKS; do ln -s argocd "$ctx/root/usr/local/bin/$l"; done
  echo "$dockerfile" >"$ctx/Dockerfile"
  keyed_build "$key" "$ctx" "$ARGOCD_IMAGE"
  rm -rf "$ctx"
}

# argocd_redis_image_build: Debian's redis-server on its own base; ENTRYPOINT redis-server
# (upstream's entrypoint script runs redis-server for arguments starting with "-").
argocd_redis_image_build() {
  local tarball base version ref key dockerfile ctx
  tarball=$(image_rootfs redis "$ARGOCD_REDIS_PACKAGES" "$ARGOCD_REDIS_ROOTFS_SETUP")
  base=$(base_image "$tarball" redis)
  # 5:7.0.15-1~deb12u10 -> 7.0.15. awk reads to the end: an early `exit` let tar die of
  # SIGPIPE now and then, which pipefail turned into a failed `up` (exit 141).
  version=$(tar -xOf "$tarball" ./var/lib/dpkg/status | awk '/^Package: redis-server$/ {p=1} p && !done && /^Version:/ {print $2; done=1}' \
    | sed -E 's/^[0-9]+://; s/-[^-]*$//')
  [ -n "$version" ] || die "no redis-server version in $tarball"
  mkdir -p "$ARGOCD_DIR"; echo "$version" >"$ARGOCD_DIR/redis.version"
  ref=$(argocd_redis_image)
  dockerfile="FROM $base
USER 999:999
WORKDIR /data
EXPOSE 6379
ENTRYPOINT [\"/usr/bin/redis-server\"]"
  key=$(echo "$dockerfile" | sha256sum | cut -c1-16)
  image_is "$key" "$ref" && return 0
  log "building image $ref"
  ctx=$CACHE_ROOT/work/images/redis
  rm -rf "$ctx"; mkdir -p "$ctx"
  echo "$dockerfile" >"$ctx/Dockerfile"
  keyed_build "$key" "$ctx" "$ref"
  rm -rf "$ctx"
}

build_argocd() {
  argocd_image_build
  argocd_redis_image_build
  local ref
  for ref in $(argocd_images); do mirror_push "$ref"; done
  argocd_install_manifest
}

# argocd_install_manifest: upstream's core install, as shipped in the module, into
# $ARGOCD_INSTALL. Two adjustments: Redis runs Debian's version, so its image line names that
# tag (upstream's 8.x-alpine tag on a 7.0 server would be a false name); and argocd-cm sets a
# shorter periodic refresh (argocd_cm_data). Images keep their names and pull policies
# (Always for most: every pod start asks the mirror).
argocd_install_manifest() {
  local key src redis
  redis=$(argocd_redis_image)
  key=$( { key_of "$TESTBED_DIR/argocd.sh" "$TESTBED_DIR/versions.env"; echo "$redis"; } | sha256sum | cut -c1-16)
  [ -f "$ARGOCD_INSTALL" ] && [ "$(cat "$ARGOCD_DIR/install.key" 2>/dev/null)" = "$key" ] && return 0
  src=$(module_dir "$ARGOCD_MODULE@$ARGOCD_VERSION")/$ARGOCD_UPSTREAM_MANIFEST
  [ -f "$src" ] || die "$ARGOCD_MODULE@$ARGOCD_VERSION has no $ARGOCD_UPSTREAM_MANIFEST"
  mkdir -p "$ARGOCD_DIR"
  { printf -- '# Argo CD %s %s from the module github.com/argoproj/argo-cd/v3, copied by the\n' "$ARGOCD_VERSION" "$ARGOCD_UPSTREAM_MANIFEST"
    printf '# gitops-drill test bed. Changed: the Redis image tag (%s, Debian'"'"'s redis-server),\n' "$redis"
    printf '# argocd-cm timeout.reconciliation %s without jitter (stock: 120s + up to 60s),\n' "$ARGOCD_RECONCILIATION"
    printf '# readinessProbe periodSeconds %s (stock: 10).\n' "$ENGINE_READINESS_PERIOD"
    sed -E "s#^(\s*image: )$ARGOCD_REDIS_REPO:\S+\s*\$#\1$redis#" "$src" | argocd_cm_data | readiness_period; } >"$ARGOCD_INSTALL.tmp"
  argocd_check_images "$ARGOCD_INSTALL.tmp"
  grep -qx "  timeout.reconciliation: $ARGOCD_RECONCILIATION" "$ARGOCD_INSTALL.tmp" \
    || die "the Argo CD install has no argocd-cm ConfigMap to set timeout.reconciliation in"
  grep -A8 'readinessProbe:' "$ARGOCD_INSTALL.tmp" | grep -q "periodSeconds: $ENGINE_READINESS_PERIOD\$" \
    || die "the Argo CD install has no readinessProbe periodSeconds to shorten"
  mv "$ARGOCD_INSTALL.tmp" "$ARGOCD_INSTALL"
  echo "$key" >"$ARGOCD_DIR/install.key"
  ok "Argo CD install manifest: $ARGOCD_INSTALL"
}

# argocd_cm_data: stdin to stdout, with data for the argocd-cm ConfigMap (upstream's has none):
# the periodic refresh every $ARGOCD_RECONCILIATION without jitter instead of 120 s plus up to
# 60 s. Argo CD v3 re-reads a resource's health only at that refresh when just its status
# changed (a CRD becoming Established), which stretched a first sync to 4.5 minutes.
argocd_cm_data() {
  awk -v t="$ARGOCD_RECONCILIATION" '
    function flush(   i, n, cm, data) {
      cm = doc ~ /(^|\n)kind: ConfigMap\n/ && doc ~ /\n  name: argocd-cm\n/
      n = split(doc, l, "\n")
      for (i = 1; i < n; i++) {
        print l[i]
        if (cm && l[i] == "data:") { data = 1; print "  timeout.reconciliation: " t; print "  timeout.reconciliation.jitter: 0s" }
      }
      if (cm && !data) { print "data:"; print "  timeout.reconciliation: " t; print "  timeout.reconciliation.jitter: 0s" }
      doc = ""
    }
    /^---/ { flush(); print; next }
    { doc = doc $0 "\n" }
    END { flush() }'
}

# readiness_period: stdin to stdout, each readinessProbe's periodSeconds set to
# $ENGINE_READINESS_PERIOD (stock: 10). drill's engine-install ends when the controllers are
# available; a controller ready just after a failed probe otherwise waits 10 s more.
readiness_period() {
  awk -v p="$ENGINE_READINESS_PERIOD" -v probe=-1 '
    match($0, /^ *readinessProbe:/) { probe = RLENGTH - length("readinessProbe:"); print; next }
    probe >= 0 && match($0, /^ */) && RLENGTH <= probe { probe = -1 }
    probe >= 0 && /^ *periodSeconds: [0-9]+ *$/ { sub(/periodSeconds: [0-9]+/, "periodSeconds: " p) }
    { print }'
}

# argocd_check_images FILE: every image in the install is one this test bed built and mirrored.
argocd_check_images() {
  local want got
  want=$(argocd_images | sort -u)
  got=$(grep -E '^\s*image:' "$1" | awk '{print $2}' | tr -d '"' | sort -u)
  [ "$want" = "$got" ] || die "Argo CD install images differ from the mirrored ones: got [$(echo $got)], want [$(echo $want)]"
}

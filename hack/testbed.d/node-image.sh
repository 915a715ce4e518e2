# Assembles the kind node image offline. `kind build node-image` cannot run here
# (it pulls its base and add-on images), so this does its job from parts:
#   debootstrap rootfs (cached) + kind's base files from the kind module
#   + Kubernetes binaries + every image kubeadm and kind ask for, preloaded.
# shellcheck shell=bash

NODE_PACKAGES=systemd,systemd-sysv,dbus,containerd,runc,containernetworking-plugins,iptables,nftables,iproute2,conntrack,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,curl,jq,procps,socat
NODE_IMAGE=$NODE_IMAGE_REPO:$K8S_VERSION
IMAGE_LABEL=io.gitops-drill.testbed.inputs

# The Debian mirror this machine's apt already uses (read, never hard-coded).
apt_mirror() {
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ')
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list*: debootstrap needs one"
  echo "$uri"
}

debootstrap_rootfs() {
  local tarball=$CACHE_ROOT/rootfs/debian-$DEBIAN_SUITE-$(echo "$NODE_PACKAGES" | sha256sum | cut -c1-12).tar
  if [ ! -f "$tarball" ]; then
    log "debootstrap $DEBIAN_SUITE node rootfs (~2 min)"
    local dir=$CACHE_ROOT/work/debootstrap
    rm -rf "$dir"; mkdir -p "$dir" "$(dirname "$tarball")"
    run_logged debootstrap debootstrap --variant=minbase --include="$NODE_PACKAGES" "$DEBIAN_SUITE" "$dir" "$(apt_mirror)"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$dir"
  fi
  echo "$tarball"
}

# copy_with_libs ROOTFS DEST PATH...: copy binaries out of ROOTFS with the shared
# libraries they link, so a FROM-scratch image can run them.
copy_with_libs() {
  local root=$1 dest=$2; shift 2
  local p lib
  for p in "$@"; do
    mkdir -p "$dest$(dirname "$p")"
    cp -aL "$root$p" "$dest$p"
    for lib in $(chroot "$root" ldd "$p" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*'); do
      [ -e "$dest$lib" ] || { mkdir -p "$dest$(dirname "$lib")"; cp -aL "$root$lib" "$dest$lib"; }
    done
  done
}

# image_build NAME TAG... : docker build of $ctx (a FROM-scratch Dockerfile) under several tags.
image_build() {
  local ctx=$1; shift
  local tags=() t
  for t in "$@"; do tags+=(-t "$t"); done
  DOCKER_BUILDKIT=0 run_logged "image-$(basename "$ctx")" docker build -q --label "$TESTBED_LABEL" "${tags[@]}" "$ctx"
}

# scratch_image CTX ENTRYPOINT: write a Dockerfile copying CTX/root/ into an empty image.
scratch_image() {
  local ctx=$1 entry=$2
  mkdir -p "$ctx/root/tmp"; chmod 1777 "$ctx/root/tmp"
  printf 'FROM scratch\nCOPY root/ /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nENTRYPOINT ["%s"]\n' "$entry" >"$ctx/Dockerfile"
}

# build_node_images ROOTFS IMAGES_TAR: build every image the node preloads and save them in one tarball.
build_node_images() {
  local rootfs=$1 out_tar=$2 k8s etcd coredns lpp pause netd
  k8s=$(build_kubernetes); etcd=$(build_etcd); coredns=$(build_coredns)
  lpp=$(build_local_path); pause=$(build_pause); netd=$(build_netd)
  local ctxs=$CACHE_ROOT/work/images refs=() c
  rm -rf "$ctxs"; mkdir -p "$ctxs"

  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    mkdir -p "$ctxs/$c/root/usr/local/bin"; cp "$k8s/$c" "$ctxs/$c/root/usr/local/bin/"
    scratch_image "$ctxs/$c" "/usr/local/bin/$c"
  done
  # kube-proxy (iptables mode, kind's default) runs iptables-restore/-save and conntrack.
  copy_with_libs "$rootfs" "$ctxs/kube-proxy/root" /usr/sbin/xtables-nft-multi /usr/sbin/conntrack
  mkdir -p "$ctxs/kube-proxy/root/usr/lib/x86_64-linux-gnu" "$ctxs/kube-proxy/root/etc"
  cp -a "$rootfs/usr/lib/x86_64-linux-gnu/xtables" "$ctxs/kube-proxy/root/usr/lib/x86_64-linux-gnu/"
  # iptables loads its match/target extensions at run time; they link libraries of their own (libm, ...).
  copy_with_libs "$rootfs" "$ctxs/kube-proxy/root" $(cd "$rootfs" && ls usr/lib/x86_64-linux-gnu/xtables/*.so | sed 's#^#/#')
  cp -a "$rootfs/etc/ld.so.cache" "$ctxs/kube-proxy/root/etc/"
  for c in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf xtables-nft-multi "$ctxs/kube-proxy/root/usr/sbin/$c"
  done
  mkdir -p "$ctxs/etcd/root/usr/local/bin"; cp "$etcd/etcd" "$ctxs/etcd/root/usr/local/bin/"
  scratch_image "$ctxs/etcd" /usr/local/bin/etcd
  mkdir -p "$ctxs/coredns/root"; cp "$coredns/coredns" "$ctxs/coredns/root/"
  scratch_image "$ctxs/coredns" /coredns
  mkdir -p "$ctxs/pause/root"; cp "$pause/pause" "$ctxs/pause/root/"
  scratch_image "$ctxs/pause" /pause
  mkdir -p "$ctxs/local-path/root"; cp "$lpp/local-path-provisioner" "$ctxs/local-path/root/"
  scratch_image "$ctxs/local-path" /local-path-provisioner
  mkdir -p "$ctxs/netd/root"; cp "$netd/netd" "$ctxs/netd/root/"
  scratch_image "$ctxs/netd" /netd
  # The local-path helper pod runs `sh -c mkdir/rm`: a static busybox with its applets.
  mkdir -p "$ctxs/busybox/root/bin"; cp /bin/busybox "$ctxs/busybox/root/bin/"
  for c in $(/bin/busybox --list); do [ "$c" = busybox ] || ln -sf busybox "$ctxs/busybox/root/bin/$c"; done
  scratch_image "$ctxs/busybox" /bin/sh

  local reg=registry.k8s.io
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    image_build "$ctxs/$c" "$reg/$c:$K8S_VERSION"; refs+=("$reg/$c:$K8S_VERSION")
  done
  image_build "$ctxs/etcd" "$reg/etcd:$ETCD_IMAGE_TAG"; refs+=("$reg/etcd:$ETCD_IMAGE_TAG")
  image_build "$ctxs/coredns" "$reg/coredns/coredns:$COREDNS_VERSION"; refs+=("$reg/coredns/coredns:$COREDNS_VERSION")
  # kind's containerd config names pause:3.10 as sandbox image; kubeadm names 3.10.1.
  image_build "$ctxs/pause" "$reg/pause:$PAUSE_VERSION" "$reg/pause:3.10"; refs+=("$reg/pause:$PAUSE_VERSION" "$reg/pause:3.10")
  image_build "$ctxs/local-path" "docker.io/rancher/local-path-provisioner:$LOCAL_PATH_VERSION"
  refs+=("docker.io/rancher/local-path-provisioner:$LOCAL_PATH_VERSION")
  image_build "$ctxs/netd" docker.io/gitops-drill/testbed-netd:dev; refs+=(docker.io/gitops-drill/testbed-netd:dev)
  image_build "$ctxs/busybox" docker.io/gitops-drill/testbed-busybox:dev; refs+=(docker.io/gitops-drill/testbed-busybox:dev)
  run_logged docker-save docker save -o "$out_tar" "${refs[@]}"
  rm -rf "$ctxs"
}

# preload_images ROOTFS TAR: import into the rootfs's containerd content store with a
# throwaway host containerd. --no-unpack: the node's containerd unpacks on first use
# (an overlay snapshot cannot be made on the build's overlay root).
preload_images() {
  local rootfs=$1 tarball=$2 dir=$CACHE_ROOT/work/ctrd
  rm -rf "$dir"; mkdir -p "$dir"
  cat >"$dir/config.toml" <<TOML
version = 2
root = "$rootfs/var/lib/containerd"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/c.sock"
[ttrpc]
  address = "$dir/c.sock.ttrpc"
TOML
  containerd --config "$dir/config.toml" >"$LOG_DIR/preload-containerd.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 50); do [ -S "$dir/c.sock" ] && break; sleep 0.2; done
  local rc=0
  ctr --address "$dir/c.sock" -n k8s.io images import --all-platforms --no-unpack "$tarball" >"$LOG_DIR/preload.log" 2>&1 || rc=$?
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ "$rc" = 0 ] || { cat "$LOG_DIR/preload.log" >&2; die "importing images into the node rootfs failed"; }
  rm -rf "$dir"
}

# node_registry_mirrors ROOTFS: containerd hosts.toml (read through config_path) for each
# mirrored registry: pulls go to the test bed's mirror, with the upstream registry as path
# prefix (override_path: the mirror URL already holds /v2/), so manifests keep upstream
# image names. `server` is the mirror too: this node image is for an offline machine, so
# a miss must end at the mirror (404 -> ErrImagePull) and never make containerd look up
# an upstream host through the machine's resolver.
node_registry_mirrors() {
  local rootfs=$1 reg
  for reg in $MIRRORED_REGISTRIES; do
    mkdir -p "$rootfs/etc/containerd/certs.d/$reg"
    printf 'server = "http://%s"\n\n[host."http://%s/v2/%s"]\n  capabilities = ["pull", "resolve"]\n  override_path = true\n' \
      "$REGISTRY_MIRROR" "$REGISTRY_MIRROR" "$reg" >"$rootfs/etc/containerd/certs.d/$reg/hosts.toml"
  done
}

node_image_inputs_key() {
  local kindbase=$1
  { cat "$TESTBED_DIR/versions.env" "$TESTBED_DIR/node-image.sh" "$TESTBED_DIR/build.sh" \
        "$TESTBED_DIR"/manifests/* "$TESTBED_DIR"/netd/*.go "$TESTBED_DIR"/netd/go.mod
    echo "$NODE_PACKAGES $REGISTRY_MIRROR $MIRRORED_REGISTRIES"; find "$kindbase" -type f | sort | xargs cat; } | sha256sum | cut -c1-16
}

build_node_image() {
  local kindbase key
  kindbase=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r .Dir)/images/base/files
  key=$(node_image_inputs_key "$kindbase")
  if [ "$(docker image inspect -f "{{ index .Config.Labels \"$IMAGE_LABEL\" }}" "$NODE_IMAGE" 2>/dev/null)" = "$key" ]; then
    return 0
  fi
  log "assembling node image $NODE_IMAGE (inputs $key)"
  local base; base=$(debootstrap_rootfs)
  local work=$CACHE_ROOT/work/node rootfs
  rootfs=$work/rootfs
  rm -rf "$work"; mkdir -p "$rootfs"
  tar -C "$rootfs" -xf "$base"

  # kind's base image files, as its Dockerfile lays them out (module files are read-only: no mode preserve).
  install -m 0755 "$kindbase/usr/local/bin/entrypoint" "$rootfs/usr/local/bin/entrypoint"
  cp -r --no-preserve=mode "$kindbase/kind" "$rootfs/kind"; chmod 0755 "$rootfs"/kind/bin/*
  cp --no-preserve=mode "$kindbase/etc/default/kubelet" "$rootfs/etc/default/"
  cp --no-preserve=mode "$kindbase"/etc/sysctl.d/* "$rootfs/etc/sysctl.d/"
  mkdir -p "$rootfs/etc/systemd/system/kubelet.service.d"
  cp --no-preserve=mode "$kindbase"/etc/systemd/system/{kubelet.service,kubelet.slice,undo-mount-hacks.service} "$rootfs/etc/systemd/system/"
  cp --no-preserve=mode "$kindbase"/etc/systemd/system/kubelet.service.d/* "$rootfs/etc/systemd/system/kubelet.service.d/"
  # Debian's containerd lives in /usr/bin. Negative OOMScoreAdjust needs CAP_SYS_RESOURCE, which this host lacks.
  sed -e 's#/usr/local/bin/containerd#/usr/bin/containerd#' -e '/^OOMScoreAdjust/d' \
    "$kindbase/etc/systemd/system/containerd.service" >"$rootfs/etc/systemd/system/containerd.service"
  # containerd: no fuse-overlayfs proxy; restrict_oom_score_adj (CAP_SYS_RESOURCE again);
  # hosts.toml mirrors under certs.d (containerd 1.6 reads them only with config_path).
  mkdir -p "$rootfs/etc/containerd/certs.d"
  awk '/^\[proxy_plugins/ {skip=1} /^\[plugins/ {skip=0} !skip' "$kindbase/etc/containerd/config.toml" \
    | sed 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' >"$rootfs/etc/containerd/config.toml"
  printf '\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n' >>"$rootfs/etc/containerd/config.toml"
  node_registry_mirrors "$rootfs"
  ctr oci spec | jq '.hooks.createContainer += [{"path": "/kind/bin/mount-product-files.sh"}] | del(.process.rlimits)' \
    >"$rootfs/etc/containerd/cri-base.json"

  # systemd as a container init, the way kind's base image trims it.
  rm -f "$rootfs"/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service \
        "$rootfs"/lib/systemd/system/multi-user.target.wants/* "$rootfs"/etc/systemd/system/*.wants/* \
        "$rootfs"/lib/systemd/system/local-fs.target.wants/* "$rootfs"/lib/systemd/system/sockets.target.wants/*udev* \
        "$rootfs"/lib/systemd/system/sockets.target.wants/*initctl* "$rootfs"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$rootfs/etc/systemd/journald.conf"
  chroot "$rootfs" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
  chroot "$rootfs" systemctl mask systemd-binfmt.service >/dev/null 2>&1
  mkdir -p "$rootfs/etc/kubernetes/manifests" "$rootfs/opt/cni/bin" "$rootfs/kind/manifests"
  cp -a "$rootfs"/usr/lib/cni/* "$rootfs/opt/cni/bin/"

  local k8s; k8s=$(build_kubernetes)
  install -m 0755 "$k8s/kubelet" "$k8s/kubeadm" "$k8s/kubectl" "$rootfs/usr/bin/"
  echo "$K8S_VERSION" >"$rootfs/kind/version"
  cp "$TESTBED_DIR/manifests/default-cni.yaml" "$TESTBED_DIR/manifests/default-storage.yaml" "$rootfs/kind/manifests/"

  build_node_images "$rootfs" "$work/images.tar"
  preload_images "$rootfs" "$work/images.tar"
  rm -f "$work/images.tar"
  mkdir -p "$work/empty-context"

  log "importing the node image into Docker"
  # docker import takes no STOPSIGNAL: import, then add the config in a metadata-only build.
  tar -C "$rootfs" --numeric-owner -c . | run_logged docker-import docker import - "$NODE_IMAGE-rootfs"
  printf 'FROM %s\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\nENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\nLABEL %s %s=%s\n' \
    "$NODE_IMAGE-rootfs" "$TESTBED_LABEL" "$IMAGE_LABEL" "$key" >"$work/Dockerfile"
  DOCKER_BUILDKIT=0 run_logged node-image-config docker build -q -t "$NODE_IMAGE" -f "$work/Dockerfile" "$work/empty-context" 
  docker rmi "$NODE_IMAGE-rootfs" >/dev/null
  rm -rf "$work"
  docker image prune -f --filter "label=$TESTBED_LABEL" >/dev/null 2>&1 || true
  ok "node image $NODE_IMAGE ready"
}

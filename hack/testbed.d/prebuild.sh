# The cold part of `up`: every cached binary and rootfs, built by a small job pool before
# `up` assembles images and manifests in its fixed order (which then finds them all built).
# Go builds are CPU-bound but not all the time (module downloads, links, cgo): two at once
# fill the gaps on 2 cores. Debootstraps are network and dpkg work and run beside them.
# A warm cache makes every job a no-op. Sourced, never run.
# shellcheck shell=bash

# Jobs, longest first (cold seconds on 2 cores, docs/testbed.md). Builds that share
# dependencies at the same versions stay in one job, one after the other: run side by side
# they would compile the same packages twice instead of reusing the Go build cache.
PREBUILD_GO_JOBS=(
  "kubernetes: build_kubernetes; build_pause"
  "argocd: build_argocd_bin"
  "flux: build_flux_controllers"
  "secrets: build_sealed_secrets; build_sops; build_age; go_install_cached jsonnet $JSONNET_MODULE $JSONNET_VERSION $JSONNET_MODULE/cmd/jsonnet"
  "coredns: build_coredns"
  "node-parts: build_kind; build_local_path; build_etcd; build_netd; build_demo_app"
  "argocd-tools: build_argocd_helm; build_argocd_kustomize"
  "registry: build_registry"
)
PREBUILD_ROOTFS_JOBS=(
  "rootfs: debootstrap_rootfs; image_rootfs argocd $ARGOCD_PACKAGES \"\$ARGOCD_ROOTFS_SETUP\"; image_rootfs redis $ARGOCD_REDIS_PACKAGES \"\$ARGOCD_REDIS_ROOTFS_SETUP\""
)

# prebuild: run the jobs, TESTBED_BUILD_JOBS Go jobs at a time (default 2), the rootfs jobs
# beside them; each job's output goes to logs/prebuild-<job>.log, its wall time to
# timings.tsv. Fails (once every job has ended) if any job failed.
prebuild() {
  prebuild_needed || return 0   # a warm cache: nothing to build, nothing to print
  local slots=${TESTBED_BUILD_JOBS:-2} start; start=$(now_ms)
  local -A name_of
  local pid rc failed=0 running=0 job
  log "building what the cache lacks, $slots Go builds at a time (logs: $LOG_DIR/prebuild-*.log)"
  for job in "${PREBUILD_ROOTFS_JOBS[@]}"; do
    prebuild_job "$job" &
    name_of[$!]=${job%%:*}; running=$((running + 1))
  done
  local go_running=0
  for job in "${PREBUILD_GO_JOBS[@]}" ""; do
    # Wait while every Go slot is taken, or, after the last job, for everything still running.
    while [ "$go_running" -ge "$slots" ] || { [ -z "$job" ] && [ "$running" -gt 0 ]; }; do
      wait -n -p pid && rc=0 || rc=$?
      running=$((running - 1))
      [[ ${name_of[$pid]} == rootfs* ]] || go_running=$((go_running - 1))
      if [ "$rc" = 0 ]; then ok "built: ${name_of[$pid]} ($(awk -F'\t' -v n="prebuild-${name_of[$pid]}" '$2 == n { s = $3 } END { print s }' "$LOG_DIR/timings.tsv") s)"
      else failed=1; log "build job ${name_of[$pid]} failed (log: $LOG_DIR/prebuild-${name_of[$pid]}.log)"; fi
    done
    [ -n "$job" ] || break
    prebuild_job "$job" &
    name_of[$!]=${job%%:*}; running=$((running + 1)); go_running=$((go_running + 1))
  done
  [ "$failed" = 0 ] || die "building the test bed's parts failed (see the logs above)"
  ok "parts built in $(secs_since "$start") s"
}

# prebuild_job "NAME: CMD; CMD...": the commands in order in a subshell (errexit on: the
# first failing command ends the job), output to the job's log, wall time to timings.tsv.
prebuild_job() {
  local name=${1%%:*} cmds=${1#*: } t0; t0=$(now_ms)
  ( eval "$cmds" ) >"$LOG_DIR/prebuild-$name.log" 2>&1
  printf '%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "prebuild-$name" "$(secs_since "$t0")" >>"$LOG_DIR/timings.tsv"
}

# prebuild_needed: some binary or rootfs is not in the cache yet.
prebuild_needed() {
  local c
  for c in "kind $KIND_VERSION" "kubernetes $K8S_VERSION" "etcd $ETCD_VERSION" "coredns $COREDNS_VERSION" \
           "local-path-provisioner $LOCAL_PATH_VERSION" "pause $PAUSE_VERSION" "registry $REGISTRY_VERSION" \
           "argocd $ARGOCD_VERSION" "helm $ARGOCD_HELM_VERSION" "kustomize $ARGOCD_KUSTOMIZE_VERSION" \
           "sealed-secrets $SEALED_SECRETS_VERSION" "sops $SOPS_VERSION" "age $AGE_VERSION" "jsonnet $JSONNET_VERSION"; do
    # shellcheck disable=SC2086
    built "$(out_dir $c)" || return 0
  done
  for c in $FLUX_COMPONENTS; do built "$(out_dir "flux-$c" "$(flux_version "$c")")" || return 0; done
  return 1
}

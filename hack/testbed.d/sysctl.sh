# The kubelet in a kind node shares this VM's kernel and rewrites a few global
# sysctls (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops). `up` records
# the host's values once; `down` and `check` put them back.
# shellcheck shell=bash

SYSCTL_KEYS="vm.overcommit_memory kernel.panic kernel.panic_on_oops"
SYSCTL_SAVED=$STATE_DIR/host-sysctls

sysctl_save() {
  [ -f "$SYSCTL_SAVED" ] && return 0
  local k
  for k in $SYSCTL_KEYS; do
    echo "$k=$(cat "/proc/sys/${k//.//}")"
  done >"$SYSCTL_SAVED"
}

sysctl_restore() {
  restore_saved "$SYSCTL_SAVED"
}

# restore_saved FILE: writes back each `key=value` line of FILE, if there is one.
restore_saved() {
  [ -f "$1" ] || return 0
  local line
  while IFS= read -r line; do
    local k=${line%%=*} v=${line#*=}
    echo "$v" >"/proc/sys/${k//.//}" 2>/dev/null || log "could not restore $k=$v"
  done <"$1"
}

# kind's known issue "too many open files": each node's kubelet and containerd take
# inotify instances from root's share (128 by default), and the suite runs up to seven
# nodes at once (a 3-node cluster alone holds ~55). Seen in a suite: a control plane
# whose kubelet never became healthy (kubeadm init timed out after 4 min) while four jobs
# ran. `up` raises the limits to kind's recommendation, never lowers them; `down` puts
# the host's values back.
INOTIFY_MIN="fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288"
INOTIFY_SAVED=$STATE_DIR/host-inotify

inotify_raise() {
  local kv k want have
  for kv in $INOTIFY_MIN; do
    k=${kv%%=*} want=${kv#*=}
    have=$(cat "/proc/sys/${k//.//}")
    [ "$have" -lt "$want" ] || continue
    grep -qs "^$k=" "$INOTIFY_SAVED" || echo "$k=$have" >>"$INOTIFY_SAVED"
    if echo "$want" >"/proc/sys/${k//.//}" 2>/dev/null; then
      log "raised $k from $have to $want (kind's known issues: too many open files)"
    else
      log "warning: could not raise $k from $have to $want: several nodes at once may fail to start"
    fi
  done
}

inotify_restore() {
  restore_saved "$INOTIFY_SAVED"
  rm -f "$INOTIFY_SAVED"
}

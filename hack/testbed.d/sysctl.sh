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
  [ -f "$SYSCTL_SAVED" ] || return 0
  local line
  while IFS= read -r line; do
    local k=${line%%=*} v=${line#*=}
    echo "$v" >"/proc/sys/${k//.//}" 2>/dev/null || log "could not restore $k=$v"
  done <"$SYSCTL_SAVED"
}

# Docker engine for the test bed: Debian's docker.io behind the runc capability wrapper.
# shellcheck shell=bash

WRAPPER_PATH=/usr/local/libexec/gitops-drill/runc-wrapper
DAEMON_JSON=/etc/docker/daemon.json

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

docker_install() {
  if command -v dockerd >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 \
     && [ -x /bin/busybox ] && command -v jq >/dev/null 2>&1; then
    return 0
  fi
  log "installing Debian packages: docker.io debootstrap busybox-static jq"
  [ "$(id -u)" = 0 ] || die "installing Docker needs root (run as root, or install docker.io yourself)"
  run_logged apt-update apt-get update -qq
  DEBIAN_FRONTEND=noninteractive run_logged apt-install \
    apt-get install -y -qq --no-install-recommends docker.io debootstrap busybox-static jq ca-certificates
}

# The wrapper and daemon.json are rewritten when they differ, so a bumped wrapper takes effect.
docker_configure() {
  local want_json changed=0
  install -D -m 0755 "$TESTBED_DIR/runc-wrapper" "$WRAPPER_PATH.new"
  if ! cmp -s "$WRAPPER_PATH.new" "$WRAPPER_PATH" 2>/dev/null; then
    mv "$WRAPPER_PATH.new" "$WRAPPER_PATH"; changed=1
  else
    rm -f "$WRAPPER_PATH.new"
  fi
  want_json=$(printf '{\n  "runtimes": {"drill-runc": {"path": "%s"}},\n  "default-runtime": "drill-runc",\n  "storage-driver": "overlay2",\n  "log-driver": "json-file",\n  "log-opts": {"max-size": "10m", "max-file": "2"}\n}\n' "$WRAPPER_PATH")
  mkdir -p /etc/docker
  if [ "$(cat "$DAEMON_JSON" 2>/dev/null)" != "$want_json" ]; then
    printf '%s' "$want_json" >"$DAEMON_JSON"; changed=1
  fi
  echo "$changed"
}

docker_start() {
  docker_install
  local changed; changed=$(docker_configure)
  if docker_answers; then
    if [ "$changed" = 1 ] && [ -f "$STATE_DIR/dockerd.pid" ]; then
      log "docker configuration changed: restarting the test bed's dockerd"
      docker_stop
    elif [ "$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null)" != drill-runc ]; then
      die "a Docker engine is running that the test bed did not start and it lacks the drill-runc default runtime; stop it or add $WRAPPER_PATH as its default runtime (see docs/testbed.md)"
    else
      return 0
    fi
  fi
  log "starting dockerd (log: $LOG_DIR/dockerd.log)"
  # setsid: dockerd must outlive this shell and ignore the terminal's signals.
  setsid dockerd --pidfile "$STATE_DIR/dockerd.pid" >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 120); do
    docker_answers && { ok "Docker engine $(docker version --format '{{.Server.Version}}') is up (runtime drill-runc)"; return 0; }
    sleep 0.5
  done
  tail -n 30 "$LOG_DIR/dockerd.log" >&2
  die "dockerd did not answer within 60 s"
}

docker_stop() {
  local pid
  pid=$(cat "$STATE_DIR/dockerd.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  rm -f "$STATE_DIR/dockerd.pid"
}

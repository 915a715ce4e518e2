# Steps, the job pool and the summary of ./hack/test. Sourced, never run.
# shellcheck shell=bash

passed=0; failed=0; summary=(); job_times=()
TEST_LOG_DIR=target/test-logs
DURATIONS=hack/test.d/durations.tsv    # seconds<TAB>job, from a measured full run: the pool's order
mkdir -p "$TEST_LOG_DIR"
: >"$TEST_LOG_DIR/durations.tsv"

secs_since_ms() { awk -v s="$1" -v e="$(date +%s%3N)" 'BEGIN { printf "%.1f", (e - s) / 1000 }'; }

# step NAME CMD...: run one step in the foreground, timed; count it.
step() {
  local name=$1; shift
  local t0 rc secs; t0=$(date +%s%3N)
  echo "::: $name"
  "$@"; rc=$?
  secs=$(secs_since_ms "$t0")
  record "$name" "$rc" "$secs"
  return "$rc"
}

record() {
  local name=$1 rc=$2 secs=$3
  if [ "$rc" = 0 ]; then passed=$((passed + 1)); summary+=("  ok    ${secs}s  $name")
  else failed=$((failed + 1)); summary+=("  FAIL  ${secs}s  $name (exit $rc)"); fi
}

# e2e_binary: build the end-to-end test binary (no-op when `cargo test` built it) and print
# its path, so each job runs it directly instead of queueing on cargo's lock.
e2e_binary() {
  cargo test --no-run --quiet --test e2e --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "e2e" and m.get("executable"):
        print(m["executable"])'
}

# run_job NAME: what a pool job does. `e2e TEST` runs one end-to-end test by exact name
# (needs $e2e and the e2e_env array of ./hack/test).
run_job() {
  case $1 in
    "testbed check (1 node)") ./hack/testbed check ;;
    "testbed check (3 nodes)") ./hack/testbed check --nodes 3 ;;
    "testbed check flux") ./hack/testbed check flux ;;
    "testbed check argocd") ./hack/testbed check argocd ;;
    "testbed check secrets") ./hack/testbed check secrets ;;
    "e2e "*) "${e2e_env[@]}" "$e2e" --ignored --exact "${1#e2e }" --nocapture --test-threads=1 ;;
    *) echo "unknown job: $1" >&2; return 2 ;;
  esac
}

# job_log JOB: its log file; characters a file name should not hold become `_`
# (`e2e flux::foo` logs to `e2e_flux__foo.log`).
job_log() { echo "$TEST_LOG_DIR/$(echo "$1" | tr -c 'A-Za-z0-9_.\n-' '_').log"; }

# by_expected_duration JOB...: the jobs, longest first by $DURATIONS; jobs it does not know
# (new tests) go first, since nothing says they are short.
by_expected_duration() {
  local j d
  for j in "$@"; do
    d=$(awk -F'\t' -v j="$j" '$2 == j { print $1; exit }' "$DURATIONS" 2>/dev/null)
    printf '%s\t%s\n' "${d:-100000}" "$j"
  done | sort -t$'\t' -k1,1 -rn | cut -f2-
}

# run_pool SLOTS JOB...: run the jobs SLOTS at a time, longest first; each job's output goes
# to its log, whose tail is printed when it fails. Every job is counted as a step.
run_pool() {
  local slots=$1; shift
  local -A name_of t0_of
  local ordered=() j pid rc secs log running=0
  mapfile -t ordered < <(by_expected_duration "$@")
  echo "::: ${#ordered[@]} job(s), $slots at a time (logs: $TEST_LOG_DIR/)"
  for j in "${ordered[@]}" ""; do
    # An empty name after the last job: wait for every job still running.
    while [ "$running" -ge "$slots" ] || { [ -z "$j" ] && [ "$running" -gt 0 ]; }; do
      wait -n -p pid; rc=$?
      running=$((running - 1))
      secs=$(secs_since_ms "${t0_of[$pid]}")
      log=$(job_log "${name_of[$pid]}")
      record "${name_of[$pid]}" "$rc" "$secs"
      printf '%s\t%s\n' "${secs%.*}" "${name_of[$pid]}" >>"$TEST_LOG_DIR/durations.tsv"
      job_times+=("$secs	${name_of[$pid]}")
      if [ "$rc" = 0 ]; then
        echo "  ok    ${secs}s  ${name_of[$pid]}"
      else
        echo "  FAIL  ${secs}s  ${name_of[$pid]} (exit $rc); last lines of $log:"
        tail -n 80 "$log" | sed 's/^/    | /'
      fi
    done
    [ -n "$j" ] || break
    log=$(job_log "$j")
    echo "  start ${j}"
    run_job "$j" </dev/null >"$log" 2>&1 &
    pid=$!; name_of[$pid]=$j; t0_of[$pid]=$(date +%s%3N); running=$((running + 1))
  done
}

# print_summary START_MS: every step, the ten slowest jobs, and the closing count.
print_summary() {
  echo
  echo "::: summary (wall time $(secs_since_ms "$1")s)"
  printf '%s\n' "${summary[@]}"
  if [ "${#job_times[@]}" -gt 0 ]; then
    echo "::: slowest jobs (all: $TEST_LOG_DIR/durations.tsv)"
    printf '%s\n' "${job_times[@]}" | sort -t$'\t' -k1,1 -rn | head -n 10 \
      | awk -F'\t' '{ printf "  %7.1fs  %s\n", $1, $2 }'
  fi
  echo "steps: $passed passed, $failed failed"
}

#!/usr/bin/env python3
"""An independent observer for the benchmarks, to hold drill's times against.

It shares nothing with drill: its own kube client (kubectl's raw watch streams), its own
readiness rules (kubectl rollout status's for Deployments; kstatus's for Flux objects:
Ready=True at the current generation, and, as drill documents, a re-check of what was
Ready at the same revision still Ready) and its own clock reading, taken the moment each
watch event's line arrives.

  observer.py watch KUBECONFIG OUT.json
      Watches Deployments (all namespaces), Flux Kustomizations and HelmReleases until
      SIGTERM, then writes {"Kind/namespace/name": [[unix_ms, ready], ...]}: one entry per
      change of readiness as received (a deleted object is not ready).
  observer.py compare OUT.json EVENTS.jsonl
      Compares with drill's events of the run's first step: per object, drill's last
      Ready minus the observer's (ms), and drill's verdict ("recovered") minus the
      moment the observer saw the last object become Ready. Prints one JSON line.
"""

import json
import signal
import subprocess
import sys
import threading
import time

WATCHES = {
    "Deployment": "/apis/apps/v1/deployments",
    "Kustomization": "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
    "HelmRelease": "/apis/helm.toolkit.fluxcd.io/v2/helmreleases",
}


def condition(obj: dict, kind: str) -> dict:
    for c in obj.get("status", {}).get("conditions", []) or []:
        if c.get("type") == kind:
            return c
    return {}


def revision(obj: dict) -> str:
    status = obj.get("status", {}) or {}
    return status.get("lastAppliedRevision") or status.get("lastAttemptedRevision") or ""


def rechecking(kind: str, obj: dict) -> bool:
    """A Flux reconcile of the same generation under way (Ready Unknown, Progressing):
    what drill counts as still Ready when the revision is the one last Ready at. The rule
    is written here again, from its description, not taken from drill."""
    if kind == "Deployment":
        return False
    meta, status = obj.get("metadata", {}), obj.get("status", {}) or {}
    c = condition(obj, "Ready")
    return (
        c.get("status") == "Unknown"
        and c.get("reason") == "Progressing"
        and status.get("observedGeneration", 0) == meta.get("generation", 0)
    )


def ready(kind: str, obj: dict) -> bool:
    meta, status = obj.get("metadata", {}), obj.get("status", {}) or {}
    current = status.get("observedGeneration", 0) >= meta.get("generation", 0)
    if kind == "Deployment":
        want = obj.get("spec", {}).get("replicas", 1)
        return (
            current
            and status.get("updatedReplicas", 0) == want
            and status.get("availableReplicas", 0) == want
            and status.get("replicas", 0) == want
        )
    return current and condition(obj, "Ready").get("status") == "True"


def watch(kubeconfig: str, kind: str, path: str, seen: dict, lock: threading.Lock) -> None:
    """Follows one kind forever; a watch that ends (or whose CRD is not there yet) restarts."""
    ready_at: dict = {}  # the revision each object was last Ready at
    while True:
        proc = subprocess.Popen(
            ["kubectl", "--kubeconfig", kubeconfig, "get", "--raw", f"{path}?watch=true"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.time() * 1000
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            obj = event.get("object", {})
            if event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            meta = obj.get("metadata", {})
            key = f"{kind}/{meta.get('namespace', '')}/{meta.get('name', '')}"
            is_ready = event["type"] != "DELETED" and ready(kind, obj)
            with lock:
                changes = seen.setdefault(key, [])
                if is_ready:
                    ready_at[key] = revision(obj)
                elif event["type"] == "DELETED":
                    ready_at.pop(key, None)
                elif changes and changes[-1][1] and rechecking(kind, obj) and ready_at.get(key) == revision(obj):
                    is_ready = True
                if not changes or changes[-1][1] != is_ready:
                    changes.append([round(now), is_ready])
        proc.wait()
        time.sleep(0.5)


def run_watch(kubeconfig: str, out: str) -> None:
    seen: dict = {}
    lock = threading.Lock()
    for kind, path in WATCHES.items():
        threading.Thread(target=watch, args=(kubeconfig, kind, path, seen, lock), daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    with lock, open(out, "w") as f:
        json.dump(seen, f)


def unix_ms(stamp: str) -> float:
    # RFC 3339 with up to nanoseconds, as drill writes it ("...T10:00:00.123456789Z").
    from datetime import datetime, timezone

    whole, _, frac = stamp.rstrip("Z").partition(".")
    t = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return t * 1000 + (float("0." + frac) * 1000 if frac else 0)


def compare(observed_path: str, events_path: str) -> None:
    observed = json.load(open(observed_path))
    events = [json.loads(line) for line in open(events_path)]
    started = next(unix_ms(e["at"]) for e in events if e["event"] == "disaster-started")
    verdict = next(unix_ms(e["at"]) for e in events if e["event"] == "recovered")
    drill = {}
    for e in events:
        if e["event"] == "object-ready" and unix_ms(e["at"]) >= started:
            o = e["object"]
            if o["kind"] in WATCHES:
                drill[f"{o['kind']}/{o['namespace']}/{o['name']}"] = unix_ms(e["at"])
    # The observer's last Ready of each object within the step (up to drill's verdict).
    last = {}
    for key, changes in observed.items():
        for at, is_ready in changes:
            if started <= at <= verdict + 60_000 and is_ready:
                last[key] = at
    diffs = sorted(drill[k] - last[k] for k in drill if k in last)
    unseen = sorted(k for k in drill if k not in last)

    def at(q: float) -> float:
        return round(diffs[min(int(len(diffs) * q), len(diffs) - 1)]) if diffs else None

    print(
        json.dumps(
            {
                "objects_compared": len(diffs),
                "drill_minus_observer_ms": {"min": at(0), "median": at(0.5), "p95": at(0.95), "max": at(1)},
                "only_drill_saw_ready": unseen[:5],
                "observer_last_ready_ms_into_step": round(max(last.values()) - started) if last else None,
                "verdict_latency_ms": round(verdict - max(last.values())) if last else None,
                "drill_recovered_ms_into_step": round(verdict - started),
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "watch":
        run_watch(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)

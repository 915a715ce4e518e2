#!/usr/bin/env python3
"""Generates a Flux fleet of N apps as a Git repository, and a scenario that rehearses it.

Each app is a namespace, a ConfigMap, a Deployment (the test bed's demo-small image) and
a Service, applied by a Kustomization of its own; every tenth app also has a HelmRelease
(a chart kept in the fleet's Git). Every Kustomization depends on one `base`, so the
fleet has the shape of a platform team's (many apps, one dependency). The scenario
deletes the apps' namespaces (all of them, or the first K) and lets Flux restore them,
with `reconcile-now`; with --rebuild it has no damage (a rebuild from Git).

Usage: hack/bench.d/fleet.py N OUT [--delete K | --rebuild]
Writes OUT/fleet (a Git repository, committed), OUT/kind.yaml (one node, sized for the
fleet's pods) and OUT/scenario.yaml; prints the scenario's path. Used by hack/bench and
hack/bench-fleet; nothing here runs a cluster.
"""

import argparse
import json
import pathlib
import subprocess

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def app_files(name: str, helm: bool, probe_period: int) -> dict[str, str]:
    files = {
        "kustomization.yaml": f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {name}
resources: [namespace.yaml, configmap.yaml, deployment.yaml, service.yaml{", helmrelease.yaml" if helm else ""}]
""",
        "namespace.yaml": f"""apiVersion: v1
kind: Namespace
metadata:
  name: {name}
""",
        "configmap.yaml": f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-env
data:
  APP_NAME: {name}
""",
        "deployment.yaml": f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: docker.io/gitops-drill/demo-small:1.0
          imagePullPolicy: IfNotPresent
          ports: [{{containerPort: 8080}}]
          envFrom:
            - configMapRef: {{name: {name}-env}}
          readinessProbe:
            httpGet: {{path: /readyz, port: 8080}}
            periodSeconds: {probe_period}
          resources:
            requests: {{cpu: 1m, memory: 8Mi}}
""",
        "service.yaml": f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
""",
    }
    if helm:
        files["helmrelease.yaml"] = f"""apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}-chart
spec:
  interval: 1m
  timeout: 5m
  chart:
    spec:
      chart: ./charts/app
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
  values:
    probePeriod: {probe_period}
"""
    return files


CHART = {
    "Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
    "values.yaml": "probePeriod: 2\n",
    "templates/deployment.yaml": """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: docker.io/gitops-drill/demo-small:1.0
          imagePullPolicy: IfNotPresent
          ports: [{containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /readyz, port: 8080}
            periodSeconds: {{ .Values.probePeriod }}
          resources:
            requests: {cpu: 1m, memory: 8Mi}
""",
}


def kind_config(pods: int) -> str:
    """One node, its kubelet allowed the fleet's pods (110 by default) and, past a /24's
    254 addresses, a wider pod range for the node."""
    patches = [f"kind: KubeletConfiguration\nmaxPods: {pods}\n"]
    if pods > 240:
        # kind writes kubeadm's v1beta3 config, whose extraArgs is a map.
        patches.append(
            "kind: ClusterConfiguration\ncontrollerManager:\n  extraArgs:\n"
            "    node-cidr-mask-size: \"22\"\n"
        )
    return json.dumps({
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [{"role": "control-plane"}],
        "kubeadmConfigPatches": patches,
    }, indent=2)


def kustomization(name: str, path: str, depends_on: str | None) -> str:
    deps = f"  dependsOn:\n    - name: {depends_on}\n" if depends_on else ""
    return f"""apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
spec:
{deps}  interval: 1m
  retryInterval: 15s
  path: {path}
  prune: true
  wait: true
  timeout: 3m
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("apps", type=int)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--delete", type=int, default=0, help="namespaces to delete (0: all)")
    parser.add_argument("--rebuild", action="store_true", help="no damage: a rebuild from Git")
    args = parser.parse_args()
    # Hundreds of pods probed every 2 s load a 2-core node more than the rehearsal does.
    probe_period = 2 if args.apps <= 100 else 10
    fleet = args.out / "fleet"
    names = [f"app-{i:03d}" for i in range(1, args.apps + 1)]
    (fleet / "base").mkdir(parents=True)
    (fleet / "base" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [configmap.yaml]\n"
    )
    (fleet / "base" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fleet-base\n  namespace: flux-system\n"
    )
    docs = [kustomization("base", "./base", None)]
    for file, text in CHART.items():
        (fleet / "charts" / "app" / file).parent.mkdir(parents=True, exist_ok=True)
        (fleet / "charts" / "app" / file).write_text(text)
    for i, name in enumerate(names, start=1):
        folder = fleet / "apps" / name
        folder.mkdir(parents=True)
        for file, text in app_files(name, i % 10 == 0, probe_period).items():
            (folder / file).write_text(text)
        docs.append(kustomization(name, f"./apps/{name}", "base"))
    (fleet / "clusters" / "gen").mkdir(parents=True)
    (fleet / "clusters" / "gen" / "apps.yaml").write_text("---\n".join(docs))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@gitops-drill.invalid"]
    subprocess.run(git + ["init", "--quiet", "--initial-branch=main", str(fleet)], check=True)
    subprocess.run(git + ["-C", str(fleet), "add", "."], check=True)
    subprocess.run(git + ["-C", str(fleet), "commit", "--quiet", "-m", f"{args.apps} apps"], check=True)

    deleted = names[: args.delete] if args.delete else names
    pods = args.apps + args.apps // 10
    (args.out / "kind.yaml").write_text(kind_config(max(110, pods + 40)))
    damage = f"""disasters:
  - delete-namespace:
      namespaces: [{", ".join(deleted)}]
      operator-action: reconcile-now
""" if not args.rebuild else ""
    what = "a rebuild from Git" if args.rebuild else f"{len(deleted)} of {args.apps} app namespaces deleted"
    scenario = args.out / "scenario.yaml"
    scenario.write_text(f"""name: fleet-{args.apps}-apps
description: Generated by hack/bench.d/fleet.py; {what}.
cluster:
  kind:
    config: {args.out / "kind.yaml"}
engine:
  flux:
    repo:
      path: {fleet}
    path: clusters/gen
    interval: 1m
{damage}expect:
  rto: 30m
""")
    print(scenario)


if __name__ == "__main__":
    main()

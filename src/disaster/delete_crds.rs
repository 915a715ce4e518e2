//! `delete-crds`: delete CustomResourceDefinitions, as an uninstalled operator or a Helm
//! chart that removed its CRDs does; every custom resource of them goes too. Recovery
//! waits until the engine has put back the CRDs *and* every custom resource that
//! existed, since an engine that restores the CRD but not what used it has not recovered.

use std::time::Duration as StdDuration;

use anyhow::{Context as _, Result, bail};
use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::wait::{await_condition, conditions};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;
use tokio::time::Instant;

use super::validate::ScenarioFacts;
use super::{Step, StepContext, action};
use crate::event::{EventKind, ObjectRef, StepOutcome};
use crate::model::{Duration, OperatorAction, ScenarioError};

/// How long a CRD may take to go, its custom resources' finalizers included.
const DELETE_TIMEOUT: StdDuration = StdDuration::from_secs(300);
/// Pause before asking again for a custom resource whose API is not served yet.
const NOT_SERVED_RETRY: StdDuration = StdDuration::from_secs(1);
/// API groups of the engines' own CRDs: drill installs the engine, Git does not restore
/// it, so deleting them removes the engine rather than rehearsing a recovery.
const ENGINE_GROUPS: [&str; 2] = [".toolkit.fluxcd.io", ".argoproj.io"];

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeleteCrds {
    /// CRD names (`<plural>.<group>`, e.g. `backups.demo.gitops-drill.io`).
    #[schemars(with = "Vec<String>")]
    pub crds: Spanned<Vec<String>>,
    /// How long the CRDs and their custom resources may take to come back (default: expect.rto).
    #[serde(default)]
    pub within: Option<Duration>,
    #[serde(default)]
    pub operator_action: Option<OperatorAction>,
}

impl Step for DeleteCrds {
    fn kind(&self) -> &'static str {
        "delete-crds"
    }

    fn outcome(&self) -> StepOutcome {
        StepOutcome::Recovered
    }

    fn within(&self) -> Option<Duration> {
        self.within
    }

    fn operator_action(&self) -> Option<OperatorAction> {
        self.operator_action
    }

    fn describe(&self, _reverted: Option<(usize, String)>) -> String {
        format!(
            "delete CRD(s) {} and every custom resource of them",
            self.crds.value.join(", ")
        )
    }

    fn check(&self, facts: &ScenarioFacts) -> Result<(), ScenarioError> {
        let at = |message: String| ScenarioError::at(facts.file, &self.crds.referenced, message);
        if self.crds.value.is_empty() {
            return Err(at("delete-crds: list at least one CRD".into()));
        }
        for name in &self.crds.value {
            let lowercase_dns = name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
            if !name.contains('.') || !lowercase_dns {
                return Err(at(format!(
                    "delete-crds: {name:?} is not a CRD name (<plural>.<group>, e.g. backups.example.com)"
                )));
            }
            if ENGINE_GROUPS.iter().any(|g| name.ends_with(g)) {
                return Err(at(format!(
                    "delete-crds: refusing to delete {name}: it is the engine's own CRD, which drill installs and Git does not restore"
                )));
            }
        }
        Ok(())
    }

    fn inject<'a>(&'a self, cx: &'a mut dyn StepContext, step: usize) -> LocalBoxFuture<'a, Result<Client>> {
        async move {
            let client = cx.cluster()?.client().await?;
            let mut lost = Vec::new();
            for name in &self.crds.value {
                lost.push(LostCrd::read(&client, name).await?);
            }
            let requested = jiff::Timestamp::now();
            for crd in &lost {
                crd.delete(&client).await?;
            }
            let deleted: Vec<ObjectRef> = lost.iter().flat_map(LostCrd::objects).collect();
            cx.objects_deleted(&deleted, requested);
            cx.emit(EventKind::DisasterInjected { step });

            let started = Instant::now();
            let deadline = started + cx.budget(self.within);
            let mut missing = Vec::new();
            for crd in &lost {
                missing.extend(crd.await_restored(&client, deadline).await);
            }
            let resources: usize = lost.iter().map(|c| c.resources.len()).sum();
            action(
                cx,
                step,
                "the CRDs and their custom resources are back",
                missing.is_empty(),
                "",
                if missing.is_empty() {
                    format!(
                        "{} CRD(s) and {resources} custom resource(s) back {:.1}s after the delete",
                        lost.len(),
                        started.elapsed().as_secs_f64()
                    )
                } else {
                    format!("still missing at the budget's end: {}", missing.join(", "))
                },
            );
            Ok(client)
        }
        .boxed_local()
    }
}

/// A CRD about to be deleted, with what it served and the custom resources it held.
struct LostCrd {
    name: String,
    uid: String,
    resource: ApiResource,
    namespaced: bool,
    /// (namespace, name) of each custom resource; namespace empty when cluster-scoped.
    resources: Vec<(String, String)>,
}

impl LostCrd {
    async fn read(client: &Client, name: &str) -> Result<LostCrd> {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let Some(crd) = crds
            .get_opt(name)
            .await
            .with_context(|| format!("failed to read CRD {name}"))?
        else {
            bail!("CRD {name} does not exist: nothing to delete (is the scenario's CRD name right?)");
        };
        let spec = &crd.spec;
        let version = spec
            .versions
            .iter()
            .find(|v| v.storage)
            .or_else(|| spec.versions.first())
            .with_context(|| format!("CRD {name} serves no version"))?;
        let gvk = GroupVersionKind::gvk(&spec.group, &version.name, &spec.names.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, &spec.names.plural);
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let resources = all
            .list(&ListParams::default())
            .await
            .with_context(|| format!("failed to list the custom resources of {name}"))?
            .into_iter()
            .map(|o| {
                (
                    o.metadata.namespace.unwrap_or_default(),
                    o.metadata.name.unwrap_or_default(),
                )
            })
            .collect();
        Ok(LostCrd {
            name: name.to_string(),
            uid: crd.metadata.uid.unwrap_or_default(),
            resource,
            namespaced: spec.scope == "Namespaced",
            resources,
        })
    }

    /// The CRD and its custom resources, as engines list them in their inventories.
    fn objects(&self) -> Vec<ObjectRef> {
        std::iter::once(ObjectRef::new("CustomResourceDefinition", "", &self.name))
            .chain(
                self.resources
                    .iter()
                    .map(|(ns, name)| ObjectRef::new(&self.resource.kind, ns, name)),
            )
            .collect()
    }

    /// Deletes the CRD and waits until it is gone (its custom resources with it).
    async fn delete(&self, client: &Client) -> Result<()> {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.delete(&self.name, &DeleteParams::foreground())
            .await
            .with_context(|| format!("failed to delete CRD {}", self.name))?;
        tokio::time::timeout(
            DELETE_TIMEOUT,
            await_condition(crds, &self.name, conditions::is_deleted(&self.uid)),
        )
        .await
        .with_context(|| format!("CRD {} was still being deleted after {DELETE_TIMEOUT:?}", self.name))?
        .with_context(|| format!("failed to watch CRD {}", self.name))?;
        Ok(())
    }

    /// Waits (watching) until the CRD is Established again and each custom resource
    /// exists; returns what is still missing at `deadline`.
    async fn await_restored(&self, client: &Client, deadline: Instant) -> Vec<String> {
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let established = await_condition(crds, &self.name, conditions::is_crd_established());
        if tokio::time::timeout_at(deadline, established).await.is_err() {
            return vec![format!("CustomResourceDefinition/{}", self.name)];
        }
        let mut missing = Vec::new();
        for (ns, name) in &self.resources {
            let api: Api<DynamicObject> = if self.namespaced {
                Api::namespaced_with(client.clone(), ns, &self.resource)
            } else {
                Api::all_with(client.clone(), &self.resource)
            };
            if !exists_by(&api, name, deadline).await {
                missing.push(ObjectRef::new(&self.resource.kind, ns, name).to_string());
            }
        }
        missing
    }
}

/// Whether object `name` exists by `deadline`. Watched; asked again while the API
/// server does not serve the kind yet (a CRD just recreated).
async fn exists_by(api: &Api<DynamicObject>, name: &str, deadline: Instant) -> bool {
    loop {
        let exists = |o: Option<&DynamicObject>| o.is_some();
        match tokio::time::timeout_at(deadline, await_condition(api.clone(), name, exists)).await {
            Ok(Ok(_)) => return true,
            Err(_) => return false,
            Ok(Err(_)) => {
                tokio::time::sleep(NOT_SERVED_RETRY.min(deadline.saturating_duration_since(Instant::now()))).await
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

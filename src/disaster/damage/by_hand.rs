//! Objects a person makes by hand, never committed to Git, and whether objects are
//! still there: the two halves of a prune rehearsal.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::discovery::{Discovery, Scope};

use crate::engine::Marks;
use crate::event::ObjectRef;

/// Kinds a prune rehearsal makes by hand: valid with metadata alone.
pub const BY_HAND_KINDS: [&str; 3] = ["ConfigMap", "Secret", "ServiceAccount"];

/// Creates `object` (a core kind of [`BY_HAND_KINDS`]) with the given labels and
/// annotations, as `kubectl create` would.
pub async fn make(client: &Client, object: &ObjectRef, marks: Marks) -> Result<()> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", &object.kind));
    let mut live = DynamicObject::new(&object.name, &ar).within(&object.namespace);
    live.metadata.labels = Some(marks.labels.into_iter().collect::<BTreeMap<_, _>>());
    live.metadata.annotations = Some(marks.annotations.into_iter().collect::<BTreeMap<_, _>>());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &object.namespace, &ar);
    let params = PostParams {
        field_manager: Some("kubectl-create".into()),
        ..Default::default()
    };
    api.create(&params, &live)
        .await
        .with_context(|| format!("failed to make {object} by hand"))?;
    Ok(())
}

/// Whether each object exists by the API server (a kind the cluster does not serve has
/// no objects).
pub async fn exist(client: &Client, objects: &[ObjectRef]) -> Result<Vec<bool>> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .context("failed to discover the cluster's API")?;
    let mut out = Vec::with_capacity(objects.len());
    for object in objects {
        let found = discovery
            .groups()
            .flat_map(|g| g.recommended_resources())
            .find(|(ar, _)| ar.kind == object.kind);
        let Some((ar, caps)) = found else {
            out.push(false);
            continue;
        };
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced if !object.namespace.is_empty() => {
                Api::namespaced_with(client.clone(), &object.namespace, &ar)
            }
            _ => Api::all_with(client.clone(), &ar),
        };
        let live = api
            .get_opt(&object.name)
            .await
            .with_context(|| format!("failed to read {object}"))?;
        out.push(live.is_some_and(|o| o.metadata.deletion_timestamp.is_none()));
    }
    Ok(out)
}

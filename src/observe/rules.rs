//! What the engine-agnostic observer needs to know about an engine: which of its kinds
//! to watch and how to judge them, who manages an applied object, and the engine's own
//! recovery checks. Each engine builds one [`EngineRules`] (`engine/<name>/readiness.rs`);
//! `observe` never names an engine.

use serde_json::Value;

use super::observation::Observation;
use crate::event::ObjectRef;

/// Workloads and add-on objects an engine applied, judged by engine-agnostic rules
/// (they point at their manager, which is not a requirement of theirs).
pub fn is_managed_leaf(kind: &str) -> bool {
    WORKLOAD_KINDS.contains(&kind) || ADDON_KINDS.contains(&kind)
}

pub const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];
/// Objects of add-ons (not workloads) whose readiness says whether Git's state works.
pub const ADDON_KINDS: [&str; 1] = ["SealedSecret"];

/// One kind of the engine's, with its API group and its readiness rule.
#[derive(Debug, Clone, Copy)]
pub struct KindRule {
    pub group: &'static str,
    pub kind: &'static str,
    /// Fills in readiness, reason, revision, links and inventory of a present object.
    pub judge: fn(&Value, &mut Observation),
}

/// An engine's rules, as plain data and functions: cheap to copy into watcher tasks.
#[derive(Debug, Clone, Copy)]
pub struct EngineRules {
    pub kinds: &'static [KindRule],
    /// The engine object that applied an object (from the labels or annotations the
    /// engine writes), for workloads and add-on objects.
    pub manager_of: fn(&Value) -> Option<ObjectRef>,
    /// The kind whose Events name what a reconcile changed (drift detection by event).
    pub event_kind: Option<&'static str>,
    /// Kinds required whenever present, even when no inventory lists them (Argo CD:
    /// Applications an ApplicationSet generates).
    pub always_required: &'static [&'static str],
    /// The engine's own reason an object that reports Ready is not done yet: it applied
    /// an older revision than its source holds, or synced another commit than `commit`.
    /// `source` is the observation of the object's source, if any.
    pub behind: fn(o: &Observation, source: Option<&Observation>, commit: &str) -> Option<String>,
    /// Whether an observation is the engine noticing a hand edit (Argo CD: OutOfSync).
    pub saw_drift: fn(&Observation) -> bool,
    /// Not-Ready reasons that are the engine's own judgement of health (Argo CD's health
    /// statuses, Flux's health check), which can lag behind the objects they judge.
    pub health_reasons: &'static [&'static str],
}

impl EngineRules {
    pub fn rule(&self, kind: &str) -> Option<&KindRule> {
        self.kinds.iter().find(|r| r.kind == kind)
    }

    /// Kinds whose readiness drill judges; other inventory entries (ConfigMaps, ...) are
    /// not waited on.
    pub fn is_tracked(&self, kind: &str) -> bool {
        self.rule(kind).is_some() || is_managed_leaf(kind)
    }
}

//! What the cluster looks like to drill, and whether it has recovered. Pure: the
//! watchers apply [`Observation`]s; the runner asks [`ClusterState::recovery`].
//!
//! "Recovered" means everything Git declares is back and Ready, not merely that
//! nothing reports an error. The required set is the closure of the root
//! Kustomization's inventory (child Kustomizations, HelmReleases, workloads), their
//! sources and dependencies, plus the baseline: everything that was Ready before the
//! disaster. After a namespace is deleted, its Deployments are gone from the cluster
//! but still in the inventory and the baseline, so drill keeps waiting for them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::readiness::{Observation, is_managed_leaf};
use super::rules::EngineRules;
use crate::event::ObjectRef;

fn whole_second(t: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.as_second()).unwrap_or(t)
}

#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    objects: BTreeMap<ObjectRef, Observation>,
    /// Reconcilers that must finish a reconcile after the given time: their Ready
    /// condition must have transitioned since (a Ready from before the damage says
    /// nothing about objects it applied that are now gone, such as ConfigMaps).
    awaiting_reconcile: BTreeMap<ObjectRef, jiff::Timestamp>,
}

/// What recovery is still waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub complete: bool,
    /// Objects not (yet) Ready, with why.
    pub waiting_for: Vec<(ObjectRef, String)>,
    /// Every object the judgement covered.
    pub required: BTreeSet<ObjectRef>,
}

impl ClusterState {
    /// Records an observation; returns the previous one for the same object.
    pub fn apply(&mut self, mut o: Observation) -> Option<Observation> {
        self.keep_ready_while_rechecking(&mut o);
        self.objects.insert(o.object.clone(), o)
    }

    /// An engine object that was Ready and is only being re-checked (a reconcile of the
    /// same generation under way, the same revision applied) still counts as Ready, with
    /// its Ready's reason and time: Flux sets Ready to Unknown for every periodic
    /// reconcile, and on a large fleet some are always mid-reconcile, so "everything
    /// Ready at once" would never hold. Not after a damage that awaits a fresh reconcile.
    fn keep_ready_while_rechecking(&self, o: &mut Observation) {
        if !o.rechecking || o.ready || !o.present || self.awaiting_reconcile.contains_key(&o.object) {
            return;
        }
        let Some(prev) = self.objects.get(&o.object) else {
            return;
        };
        if prev.ready && prev.present && prev.revision == o.revision {
            o.ready = true;
            o.reason.clone_from(&prev.reason);
            o.message.clone_from(&prev.message);
            o.api_transition = prev.api_transition;
        }
    }

    pub fn get(&self, r: &ObjectRef) -> Option<&Observation> {
        self.objects.get(r)
    }

    /// The objects in `object`'s inventory that drill sees present and not Ready, each
    /// with its own reason: what holds an engine object (an Application Progressing
    /// because of its Deployment). Argo CD 3 no longer keeps resource health in the
    /// Application, so drill's own view of the workload is the reason from inside.
    pub fn holders(&self, object: &ObjectRef) -> Vec<String> {
        let Some(o) = self.objects.get(object) else {
            return Vec::new();
        };
        o.inventory
            .iter()
            .filter_map(|r| self.objects.get(r))
            .filter(|c| !c.ready)
            .map(|c| match (c.present, c.reason.is_empty()) {
                (false, _) => format!("{} (not created yet)", c.object),
                (true, true) => c.object.to_string(),
                (true, false) => format!("{} ({}: {})", c.object, c.reason, c.message),
            })
            .collect()
    }

    /// Whether every object of `object`'s inventory that drill judges is present and
    /// Ready by its own rule (and there is at least one): when the engine object still
    /// reports a health problem, its view is behind the cluster's.
    pub fn inside_all_ready(&self, object: &ObjectRef) -> bool {
        let Some(o) = self.objects.get(object) else {
            return false;
        };
        let mut inside = o.inventory.iter().filter_map(|r| self.objects.get(r)).peekable();
        inside.peek().is_some() && inside.all(|c| c.present && c.ready)
    }

    /// Every object some engine object's inventory lists: what Git declares.
    pub fn inventoried(&self) -> BTreeSet<ObjectRef> {
        self.objects
            .values()
            .flat_map(|o| o.inventory.iter().cloned())
            .collect()
    }

    /// Forgets everything (a new cluster after delete-cluster).
    pub fn clear(&mut self) {
        self.objects.clear();
        self.awaiting_reconcile.clear();
    }

    /// After namespaces were deleted (and confirmed gone): every object in them is gone,
    /// and every reconciler that had applied objects into them must reconcile again.
    /// Returns the reconcilers now awaited.
    pub fn namespaces_deleted(&mut self, namespaces: &[String], at: jiff::Timestamp) -> Vec<ObjectRef> {
        let gone: Vec<ObjectRef> = self
            .objects
            .keys()
            .filter(|r| namespaces.contains(&r.namespace))
            .cloned()
            .collect();
        for r in gone {
            self.objects.insert(r.clone(), Observation::deleted(r));
        }
        self.await_reconcile_of(at, |i| {
            namespaces.contains(&i.namespace) || (i.kind == "Namespace" && namespaces.contains(&i.name))
        })
    }

    /// After objects were deleted (confirmed gone) at `at`: every engine object that had
    /// applied one of them must reconcile again. Returns the reconcilers now awaited.
    pub fn objects_deleted(&mut self, deleted: &[ObjectRef], at: jiff::Timestamp) -> Vec<ObjectRef> {
        self.await_reconcile_of(at, |i| deleted.contains(i))
    }

    /// Every present engine object that applied something `gone` matches must reconcile
    /// after `at`; returns them.
    fn await_reconcile_of(&mut self, at: jiff::Timestamp, gone: impl Fn(&ObjectRef) -> bool) -> Vec<ObjectRef> {
        let touched: Vec<ObjectRef> = self
            .objects
            .values()
            .filter(|o| o.present && o.inventory.iter().any(&gone))
            .map(|o| o.object.clone())
            .collect();
        for r in &touched {
            self.awaiting_reconcile.insert(r.clone(), at);
        }
        touched
    }

    /// Objects drill follows that are not Ready now (deleted ones included).
    pub fn not_ready(&self) -> Vec<ObjectRef> {
        self.objects
            .values()
            .filter(|o| !o.ready)
            .map(|o| o.object.clone())
            .collect()
    }

    /// Present and Ready objects: the baseline a later recovery must restore.
    pub fn ready_set(&self) -> BTreeSet<ObjectRef> {
        self.objects
            .values()
            .filter(|o| o.present && o.ready)
            .map(|o| o.object.clone())
            .collect()
    }

    /// Judges recovery by the engine's `rules`: `root` is the root of the desired state
    /// (Flux: the root Kustomization), `root_source` the object whose revision must name
    /// `commit`; `baseline` must all be back.
    pub fn recovery(
        &self,
        rules: &EngineRules,
        root: &ObjectRef,
        root_source: &ObjectRef,
        commit: &str,
        baseline: &BTreeSet<ObjectRef>,
    ) -> Recovery {
        let required = self.required(rules, root, root_source, baseline);
        let mut waiting_for = Vec::new();
        for r in &required {
            if let Some(why) = self.not_ready_reason(rules, r, root_source, commit) {
                waiting_for.push((r.clone(), why));
            }
        }
        Recovery {
            complete: waiting_for.is_empty(),
            waiting_for,
            required,
        }
    }

    fn required(
        &self,
        rules: &EngineRules,
        root: &ObjectRef,
        root_source: &ObjectRef,
        baseline: &BTreeSet<ObjectRef>,
    ) -> BTreeSet<ObjectRef> {
        let mut required = BTreeSet::new();
        let always = self
            .objects
            .values()
            .filter(|o| o.present && rules.always_required.contains(&o.object.kind.as_str()))
            .map(|o| o.object.clone());
        let mut queue: VecDeque<ObjectRef> = [root.clone(), root_source.clone()]
            .into_iter()
            .chain(baseline.iter().cloned())
            .chain(always)
            .collect();
        while let Some(r) = queue.pop_front() {
            if !rules.is_tracked(&r.kind) || !required.insert(r.clone()) {
                continue;
            }
            if let Some(o) = self.objects.get(&r) {
                // Workloads point at the engine object managing them; that is not a requirement
                // of the workload (it would pull unrelated objects in), so only follow the
                // engine's own links.
                if !is_managed_leaf(&r.kind) {
                    queue.extend(o.depends_on.iter().cloned());
                }
                queue.extend(o.inventory.iter().cloned());
            }
        }
        required
    }

    fn not_ready_reason(
        &self,
        rules: &EngineRules,
        r: &ObjectRef,
        root_source: &ObjectRef,
        commit: &str,
    ) -> Option<String> {
        let Some(o) = self.objects.get(r) else {
            return Some("not created yet".into());
        };
        if !o.present {
            return Some("deleted, not restored yet".into());
        }
        // A paused app is the operator's decision, not a recovery to wait for; what it
        // applied is still judged through its inventory.
        if o.suspended {
            return None;
        }
        if !o.ready {
            return Some(format!("{}: {}", o.reason, o.message));
        }
        // The API server's timestamps have whole seconds: a transition in the damage's own
        // second counts as after it (Argo CD once restored a namespace within it).
        if let Some(since) = self.awaiting_reconcile.get(r)
            && o.api_transition.is_none_or(|t| t < whole_second(*since))
        {
            return Some("waiting for a reconcile after the damage (its Ready is from before)".into());
        }
        let source = o.source.as_ref().and_then(|s| self.objects.get(s));
        if let Some(why) = (rules.behind)(o, source, commit) {
            return Some(why);
        }
        if r == root_source {
            let at_commit = o.revision.as_deref().is_some_and(|rev| rev.ends_with(commit));
            if !at_commit {
                return Some(format!(
                    "at revision {}, expected commit {commit}",
                    o.revision.as_deref().unwrap_or("none")
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::flux::readiness::RULES as FLUX;

    fn obs(kind: &str, ns: &str, name: &str, ready: bool) -> Observation {
        let mut o = Observation::deleted(ObjectRef::new(kind, ns, name));
        o.present = true;
        o.ready = ready;
        o.reason = if ready { "Ready".into() } else { "Progressing".into() };
        o.message = "msg".into();
        o
    }

    fn fleet() -> (ClusterState, ObjectRef, ObjectRef) {
        let src = ObjectRef::new("GitRepository", "flux-system", "flux-system");
        let root = ObjectRef::new("Kustomization", "flux-system", "flux-system");
        let apps = ObjectRef::new("Kustomization", "flux-system", "apps");
        let deploy = ObjectRef::new("Deployment", "users", "users-api");
        let mut state = ClusterState::default();
        let mut s = obs("GitRepository", "flux-system", "flux-system", true);
        s.revision = Some("main@sha1:c0ffee".into());
        state.apply(s);
        let mut r = obs("Kustomization", "flux-system", "flux-system", true);
        r.source = Some(src.clone());
        r.depends_on = vec![src.clone()];
        r.revision = Some("main@sha1:c0ffee".into());
        r.inventory = vec![apps.clone(), ObjectRef::new("Namespace", "", "users")];
        state.apply(r);
        let mut a = obs("Kustomization", "flux-system", "apps", true);
        a.source = Some(src.clone());
        a.revision = Some("main@sha1:c0ffee".into());
        a.inventory = vec![deploy.clone()];
        state.apply(a);
        state.apply(obs("Deployment", "users", "users-api", true));
        (state, root, src)
    }

    #[test]
    fn a_re_check_of_what_was_ready_still_counts_unless_a_fresh_reconcile_is_awaited() {
        let (mut state, _, _) = fleet();
        let apps = ObjectRef::new("Kustomization", "flux-system", "apps");
        let recheck = |revision: &str| {
            let mut a = obs("Kustomization", "flux-system", "apps", false);
            a.rechecking = true;
            a.revision = Some(revision.into());
            a.inventory = vec![ObjectRef::new("Deployment", "users", "users-api")];
            a
        };
        state.apply(recheck("main@sha1:c0ffee"));
        let a = state.get(&apps).unwrap();
        assert!(a.ready, "a periodic re-check keeps Ready");
        assert_eq!(a.reason, "Ready", "with the Ready's own reason");
        // Applying another revision is not a re-check.
        state.apply(recheck("main@sha1:beef"));
        assert!(!state.get(&apps).unwrap().ready);
        // Nor is one after a damage whose reconcile is awaited.
        let (mut state, _, _) = fleet();
        state.objects_deleted(
            &[ObjectRef::new("Deployment", "users", "users-api")],
            jiff::Timestamp::now(),
        );
        state.apply(recheck("main@sha1:c0ffee"));
        assert!(!state.get(&apps).unwrap().ready);
        // Nor the first reconcile of an object never Ready.
        let mut fresh = ClusterState::default();
        fresh.apply(recheck("main@sha1:c0ffee"));
        assert!(!fresh.get(&apps).unwrap().ready);
    }

    #[test]
    fn an_engine_object_is_held_by_the_objects_of_its_inventory_that_are_not_ready() {
        let (mut state, _, _) = fleet();
        let apps = ObjectRef::new("Kustomization", "flux-system", "apps");
        assert!(state.holders(&apps).is_empty(), "all Ready: nothing holds it");
        let mut d = obs("Deployment", "users", "users-api", false);
        d.reason = "ProgressDeadlineExceeded".into();
        d.message = "0/1 available".into();
        state.apply(d);
        assert_eq!(
            state.holders(&apps),
            vec!["Deployment/users/users-api (ProgressDeadlineExceeded: 0/1 available)"]
        );
        state.apply(Observation::deleted(ObjectRef::new("Deployment", "users", "users-api")));
        assert_eq!(
            state.holders(&apps),
            vec!["Deployment/users/users-api (not created yet)"]
        );
    }

    #[test]
    fn a_settled_fleet_is_recovered() {
        let (state, root, src) = fleet();
        let r = state.recovery(&FLUX, &root, &src, "c0ffee", &BTreeSet::new());
        assert!(r.complete, "{:?}", r.waiting_for);
        assert_eq!(
            r.required.len(),
            4,
            "Namespace entries are not judged: {:?}",
            r.required
        );
    }

    #[test]
    fn a_deleted_workload_keeps_recovery_open_even_while_flux_still_says_ready() {
        let (mut state, root, src) = fleet();
        let baseline = state.ready_set();
        state.apply(Observation::deleted(ObjectRef::new("Deployment", "users", "users-api")));
        let r = state.recovery(&FLUX, &root, &src, "c0ffee", &baseline);
        assert!(!r.complete);
        assert_eq!(
            r.waiting_for,
            vec![(
                ObjectRef::new("Deployment", "users", "users-api"),
                "deleted, not restored yet".into()
            )]
        );
    }

    #[test]
    fn after_a_cluster_rebuild_the_baseline_must_come_back() {
        let (state, root, src) = fleet();
        let baseline = state.ready_set();
        let mut fresh = ClusterState::default();
        let mut s = obs("GitRepository", "flux-system", "flux-system", true);
        s.revision = Some("main@sha1:c0ffee".into());
        fresh.apply(s);
        let r = fresh.recovery(&FLUX, &root, &src, "c0ffee", &baseline);
        let waiting: Vec<String> = r.waiting_for.iter().map(|(o, why)| format!("{o}: {why}")).collect();
        assert_eq!(
            waiting,
            vec![
                "Deployment/users/users-api: not created yet",
                "Kustomization/flux-system/apps: not created yet",
                "Kustomization/flux-system/flux-system: not created yet",
            ]
        );
    }

    #[test]
    fn the_root_source_must_be_at_the_pinned_commit() {
        let (mut state, root, src) = fleet();
        let mut s = obs("GitRepository", "flux-system", "flux-system", true);
        s.revision = Some("main@sha1:0ld".into());
        state.apply(s);
        let r = state.recovery(&FLUX, &root, &src, "c0ffee", &BTreeSet::new());
        assert!(!r.complete);
        assert!(
            r.waiting_for[0].1.contains("expected commit c0ffee"),
            "{:?}",
            r.waiting_for
        );
    }

    #[test]
    fn a_kustomization_behind_its_source_is_not_done() {
        let (mut state, root, src) = fleet();
        let mut a = state
            .get(&ObjectRef::new("Kustomization", "flux-system", "apps"))
            .unwrap()
            .clone();
        a.revision = Some("main@sha1:0ld".into());
        state.apply(a);
        let r = state.recovery(&FLUX, &root, &src, "c0ffee", &BTreeSet::new());
        assert_eq!(r.waiting_for.len(), 1);
        assert!(
            r.waiting_for[0]
                .1
                .starts_with("applied main@sha1:0ld, source is at main@sha1:c0ffee")
        );
    }

    #[test]
    fn after_a_namespace_loss_the_reconciler_must_run_again() {
        let (mut state, root, src) = fleet();
        let baseline = state.ready_set();
        let damage_done: jiff::Timestamp = "2026-11-23T10:00:00.600Z".parse().unwrap();
        let awaited = state.namespaces_deleted(&["users".to_string()], damage_done);
        assert_eq!(
            awaited,
            vec![
                ObjectRef::new("Kustomization", "flux-system", "apps"),
                ObjectRef::new("Kustomization", "flux-system", "flux-system")
            ]
        );
        // The Deployment comes back, but the Kustomization's Ready is still the old one.
        state.apply(obs("Deployment", "users", "users-api", true));
        let r = state.recovery(&FLUX, &root, &src, "c0ffee", &baseline);
        assert!(
            r.waiting_for
                .iter()
                .any(|(o, why)| o.name == "apps" && why.starts_with("waiting for a reconcile")),
            "{:?}",
            r.waiting_for
        );
        // A Ready from before the damage's second does not count ...
        let mut early = state
            .get(&ObjectRef::new("Kustomization", "flux-system", "apps"))
            .unwrap()
            .clone();
        early.api_transition = Some("2026-11-23T09:59:59Z".parse().unwrap());
        state.apply(early);
        assert!(!state.recovery(&FLUX, &root, &src, "c0ffee", &baseline).complete);
        // ... one in its own second does: the API's timestamps are whole seconds.
        let mut same_second = state
            .get(&ObjectRef::new("Kustomization", "flux-system", "flux-system"))
            .unwrap()
            .clone();
        same_second.api_transition = Some("2026-11-23T10:00:00Z".parse().unwrap());
        state.apply(same_second);
        let waiting: Vec<String> = state
            .recovery(&FLUX, &root, &src, "c0ffee", &baseline)
            .waiting_for
            .into_iter()
            .map(|(o, _)| o.name)
            .collect();
        assert_eq!(waiting, ["apps"], "only the one from before the damage waits");
        // A Ready from a reconcile after the damage settles it.
        for name in ["apps", "flux-system"] {
            let mut k = state
                .get(&ObjectRef::new("Kustomization", "flux-system", name))
                .unwrap()
                .clone();
            k.api_transition = Some("2026-11-23T10:00:30Z".parse().unwrap());
            state.apply(k);
        }
        assert!(state.recovery(&FLUX, &root, &src, "c0ffee", &baseline).complete);
    }

    #[test]
    fn a_not_ready_child_is_reported_with_its_message() {
        let (mut state, root, src) = fleet();
        state.apply(obs("Deployment", "users", "users-api", false));
        let r = state.recovery(&FLUX, &root, &src, "c0ffee", &BTreeSet::new());
        assert_eq!(
            r.waiting_for,
            vec![(
                ObjectRef::new("Deployment", "users", "users-api"),
                "Progressing: msg".into()
            )]
        );
    }

    #[test]
    fn deleted_objects_make_their_managers_reconcile_again() {
        let (mut state, root, src) = fleet();
        let crd = ObjectRef::new("CustomResourceDefinition", "", "backups.demo.gitops-drill.io");
        let mut infra = obs("Kustomization", "flux-system", "infrastructure", true);
        infra.inventory = vec![crd.clone()];
        infra.api_transition = Some("2026-12-04T08:00:00Z".parse().unwrap());
        state.apply(infra.clone());
        let at: jiff::Timestamp = "2026-12-04T08:00:10Z".parse().unwrap();
        assert_eq!(state.objects_deleted(&[crd], at), [infra.object.clone()]);
        let baseline: BTreeSet<ObjectRef> = [infra.object.clone()].into();
        let r = state.recovery(&FLUX, &root, &src, "c0ffee", &baseline);
        assert!(!r.complete, "its Ready is from before the delete: {r:?}");
        infra.api_transition = Some("2026-12-04T08:00:20Z".parse().unwrap());
        state.apply(infra);
        assert!(state.recovery(&FLUX, &root, &src, "c0ffee", &baseline).complete);
    }
}

//! Image pulls: one row per image and node and window, timed by the kubelet when it says.

use std::collections::BTreeMap;

use super::ImagePull;
use crate::event::EventKind;

#[derive(Default)]
pub(super) struct Images {
    pulls: Vec<ImagePull>,
    /// The latest row of each (image, node).
    rows: BTreeMap<(String, String), usize>,
    /// The first row of the current window.
    window_first: usize,
}

impl Images {
    pub(super) fn apply(&mut self, now: u64, kind: &EventKind) {
        match kind {
            EventKind::ImagePulling { image, node } => {
                // A retry of a failing pull (the kubelet's back-off) stays on the failed row.
                let key = (image.clone(), node.clone());
                if let Some(&idx) = self.rows.get(&key)
                    && idx >= self.window_first
                    && self.pulls[idx].failed.is_some()
                {
                    return;
                }
                self.push_row(image, node, now);
            }
            EventKind::ImagePulled {
                image,
                node,
                size_bytes,
                kubelet_ms,
            } => {
                // Pulling was missed (seen before the window): the kubelet's own figure still counts.
                let idx = self.row(image, node, now.saturating_sub(kubelet_ms.unwrap_or(0)));
                let pull = &mut self.pulls[idx];
                pull.pull_ms = Some(kubelet_ms.unwrap_or(now.saturating_sub(pull.start_ms)));
                pull.size_bytes = *size_bytes;
            }
            EventKind::ImagePullFailed {
                image,
                node,
                reason,
                message,
                ..
            } => {
                // Back-offs repeat the same failure: one row per image and node.
                let idx = self.row(image, node, now);
                self.pulls[idx].failed = Some(format!("{reason}: {message}"));
            }
            _ => {}
        }
    }

    pub(super) fn open_window(&mut self) {
        self.window_first = self.pulls.len();
    }

    /// The pulls that started in the current window.
    pub(super) fn window_pulls(&self) -> &[ImagePull] {
        &self.pulls[self.window_first..]
    }

    /// Slowest first; ties by image.
    pub(super) fn finish(mut self) -> Vec<ImagePull> {
        self.pulls
            .sort_by(|a, b| b.pull_ms.cmp(&a.pull_ms).then_with(|| a.image.cmp(&b.image)));
        self.pulls
    }

    /// The latest row of (image, node), or a new one starting at `start_ms`.
    fn row(&mut self, image: &str, node: &str, start_ms: u64) -> usize {
        match self.rows.get(&(image.to_string(), node.to_string())) {
            Some(&idx) => idx,
            None => self.push_row(image, node, start_ms),
        }
    }

    fn push_row(&mut self, image: &str, node: &str, start_ms: u64) -> usize {
        let idx = self.pulls.len();
        self.rows.insert((image.to_string(), node.to_string()), idx);
        self.pulls.push(ImagePull {
            image: image.to_string(),
            node: node.to_string(),
            start_ms,
            pull_ms: None,
            size_bytes: None,
            failed: None,
        });
        idx
    }
}

#[cfg(test)]
mod tests {
    use crate::event::EventKind;
    use crate::timeline::build;
    use crate::timeline::testkit::{at, run_started};

    #[test]
    fn the_kubelets_own_pull_time_wins_over_event_spacing() {
        let t = build(&[
            run_started(0),
            at(
                1_000,
                EventKind::ImagePulling {
                    image: "big:1".into(),
                    node: "n".into(),
                },
            ),
            at(
                9_000,
                EventKind::ImagePulled {
                    image: "big:1".into(),
                    node: "n".into(),
                    size_bytes: Some(2),
                    kubelet_ms: Some(7_400),
                },
            ),
            at(
                9_500,
                EventKind::ImagePulled {
                    image: "small:1".into(),
                    node: "n".into(),
                    size_bytes: None,
                    kubelet_ms: Some(300),
                },
            ),
        ]);
        let pulls: Vec<(String, Option<u64>)> = t.images.iter().map(|p| (p.image.clone(), p.pull_ms)).collect();
        assert_eq!(
            pulls,
            vec![("big:1".into(), Some(7_400)), ("small:1".into(), Some(300))]
        );
    }

    #[test]
    fn failed_pulls_are_listed_with_their_reason() {
        let t = build(&[
            run_started(0),
            at(
                10,
                EventKind::ImagePullFailed {
                    image: "ghost:1".into(),
                    node: "n".into(),
                    reason: "ErrImagePull".into(),
                    message: "not found".into(),
                    pod: None,
                },
            ),
        ]);
        assert_eq!(t.images[0].failed.as_deref(), Some("ErrImagePull: not found"));
    }

    #[test]
    fn a_pull_retried_by_back_off_is_one_failed_row() {
        let pulling = |ms| {
            at(
                ms,
                EventKind::ImagePulling {
                    image: "x:9".into(),
                    node: "n".into(),
                },
            )
        };
        let failed = |ms| {
            at(
                ms,
                EventKind::ImagePullFailed {
                    image: "x:9".into(),
                    node: "n".into(),
                    reason: "Failed".into(),
                    message: "not found".into(),
                    pod: None,
                },
            )
        };
        let t = build(&[
            pulling(0),
            failed(100),
            pulling(10_000),
            failed(10_100),
            pulling(30_000),
            failed(30_100),
        ]);
        assert_eq!(t.images.len(), 1, "{:?}", t.images);
        assert!(t.images[0].failed.is_some());
    }
}

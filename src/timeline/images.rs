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
    /// The step whose window is open.
    step: Option<usize>,
}

impl Images {
    /// One row per (image, node) in a window, however many pods pull it: the kubelet
    /// reports each pod's pull, and pods that queue behind one real pull report only
    /// milliseconds of their own ("in 17ms (8.2s including waiting)").
    pub(super) fn apply(&mut self, now: u64, kind: &EventKind) {
        match kind {
            EventKind::ImagePulling { image, node } => {
                self.row(image, node, now);
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
                let took = kubelet_ms.unwrap_or(now.saturating_sub(pull.start_ms));
                // The real pull is the longest one; the others waited for it.
                pull.pull_ms = Some(pull.pull_ms.map_or(took, |d| d.max(took)));
                pull.size_bytes = size_bytes.or(pull.size_bytes);
                pull.pulled += 1;
                // A pull that succeeded after failures did not fail.
                pull.failed = None;
            }
            EventKind::ImagePresent { image, node } => {
                let idx = self.row(image, node, now);
                self.pulls[idx].present += 1;
            }
            EventKind::ImagePullFailed {
                image,
                node,
                reason,
                message,
                ..
            } => {
                // Back-offs repeat the same failure: one row per image and node, last error kept.
                let idx = self.row(image, node, now);
                if self.pulls[idx].pulled == 0 {
                    self.pulls[idx].failed = Some(format!("{reason}: {message}"));
                }
            }
            _ => {}
        }
    }

    pub(super) fn open_window(&mut self, step: usize) {
        self.window_first = self.pulls.len();
        self.step = Some(step);
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

    /// The row of (image, node) in this window, or a new one starting at `start_ms`.
    fn row(&mut self, image: &str, node: &str, start_ms: u64) -> usize {
        match self.rows.get(&(image.to_string(), node.to_string())) {
            Some(&idx) if idx >= self.window_first => idx,
            _ => self.push_row(image, node, start_ms),
        }
    }

    fn push_row(&mut self, image: &str, node: &str, start_ms: u64) -> usize {
        let idx = self.pulls.len();
        self.rows.insert((image.to_string(), node.to_string()), idx);
        self.pulls.push(ImagePull {
            image: image.to_string(),
            node: node.to_string(),
            step: self.step,
            start_ms,
            pull_ms: None,
            size_bytes: None,
            failed: None,
            pulled: 0,
            present: 0,
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

    fn pulling(ms: u64, image: &str) -> crate::event::DrillEvent {
        at(
            ms,
            EventKind::ImagePulling {
                image: image.into(),
                node: "n".into(),
            },
        )
    }

    fn pulled(ms: u64, image: &str, kubelet_ms: u64) -> crate::event::DrillEvent {
        at(
            ms,
            EventKind::ImagePulled {
                image: image.into(),
                node: "n".into(),
                size_bytes: Some(50_000_000),
                kubelet_ms: Some(kubelet_ms),
            },
        )
    }

    #[test]
    fn pods_sharing_one_image_make_one_row_timed_by_the_real_pull() {
        // Twelve pods start at once; the kubelet pulls once and the other eleven queue
        // behind it, each reporting milliseconds of its own ("in 17ms (8.2s including waiting)").
        let mut events = vec![run_started(0)];
        for pod in 0..12 {
            events.push(pulling(1_000 + pod, "shared:1"));
        }
        events.push(pulled(9_200, "shared:1", 8_100));
        for pod in 0..11 {
            events.push(pulled(9_300 + pod, "shared:1", 17 + pod));
        }
        events.push(at(
            9_500,
            EventKind::ImagePresent {
                image: "shared:1".into(),
                node: "n".into(),
            },
        ));
        let t = build(&events);
        assert_eq!(t.images.len(), 1, "{:?}", t.images);
        let row = &t.images[0];
        assert_eq!((row.start_ms, row.pull_ms), (1_000, Some(8_100)));
        assert_eq!((row.pulled, row.present), (12, 1));
        assert!(row.failed.is_none());
    }

    #[test]
    fn an_image_only_found_present_is_no_pull_and_not_unfinished() {
        let t = build(&[
            run_started(0),
            at(
                500,
                EventKind::ImagePresent {
                    image: "cached:1".into(),
                    node: "n".into(),
                },
            ),
            pulling(1_000, "big:1"),
            pulled(9_000, "big:1", 7_900),
        ]);
        let cached = t.images.iter().find(|p| p.image == "cached:1").unwrap();
        assert!(!cached.needed() && cached.pull_ms.is_none());
        let pulls: Vec<_> = t.phases.iter().filter(|p| p.name == "image-pulls").collect();
        assert_eq!(pulls.len(), 1);
        assert_eq!((pulls[0].start_ms, pulls[0].duration_ms), (1_000, Some(7_900)));
    }

    #[test]
    fn a_pull_that_succeeds_after_failing_is_not_failed_and_each_window_has_its_own_row() {
        let failed = at(
            2_000,
            EventKind::ImagePullFailed {
                image: "flaky:1".into(),
                node: "n".into(),
                reason: "Failed".into(),
                message: "i/o timeout".into(),
                pod: None,
            },
        );
        let t = build(&[
            run_started(0),
            pulling(1_000, "flaky:1"),
            failed,
            pulling(12_000, "flaky:1"),
            pulled(15_000, "flaky:1", 2_500),
            crate::timeline::testkit::started(20_000, 0, "delete-cluster", crate::scenario::StepOutcome::Recovered),
            pulling(40_000, "flaky:1"),
        ]);
        assert_eq!(t.images.len(), 2, "{:?}", t.images);
        let first = t.images.iter().find(|p| p.start_ms == 1_000).unwrap();
        assert_eq!((first.failed.as_deref(), first.pull_ms), (None, Some(2_500)));
        let second = t.images.iter().find(|p| p.start_ms == 40_000).unwrap();
        assert_eq!(second.pull_ms, None, "still pulling in the new window: unfinished");
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

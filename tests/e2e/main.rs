//! End-to-end rehearsals on the offline test bed: real kind clusters, real Flux and Argo CD.
//!
//! They need `./hack/testbed up` first, so `cargo test` skips them (`#[ignore]`);
//! `./hack/test` (and CI) runs them explicitly after bringing the test bed up, each test
//! as its own job, by its exact name (`flux::...`, `safety::...`). By hand:
//! `cargo test --test e2e -- --ignored --test-threads=1`.
//!
//! Where Flux and Argo CD rehearse the same story (drift, repo credentials), one function
//! holds the test and an engine case holds the scenario and what differs; each engine
//! stays its own `#[test]`, so the suite runs them as separate jobs.

mod harness;

mod argocd;
mod drift;
mod flux;
mod image;
mod prune;
mod repos;
mod reuse;
mod safety;
mod secrets;
mod selfmanaged;
mod shared;
mod ssh;
mod stateful;
mod timing;

//! Cluster providers. drill creates and owns kind clusters; every cluster it creates is
//! named `drill-<scenario>-<run suffix>` so runs never collide and `drill clean` can find them.

pub mod containers;
pub mod daemon;
pub mod exec;
pub mod existing;
pub mod freezer;
pub mod kind;
pub mod mirror;
pub mod owner;
pub mod preload;
pub mod provider;

pub use provider::ClusterProvider;

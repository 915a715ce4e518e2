//! The scenario model's leaf types: values a scenario file holds (durations, labels,
//! targets, edits, engine kinds) and the error that names a file and line. Parsing
//! (`scenario`), the steps (`disaster`) and the engines share them, so they sit below
//! all three and import none of them.

pub mod error;
pub mod values;

pub use error::ScenarioError;
pub use values::*;

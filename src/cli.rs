//! Command-line interface (clap only; each command's work lives in its own module).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Rehearse disaster recovery of a GitOps-run Kubernetes cluster: destroy, rebuild
/// from Git, time every phase, assert the RTO, and report.
///
/// Exit codes: 0 every assertion passed; 1 an assertion failed; 2 error (bad input,
/// Docker down, cluster failed to start).
#[derive(Debug, Parser)]
#[command(name = "drill", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check scenario files without touching any cluster.
    Validate {
        /// Scenario files (YAML).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Print the JSON schema of the scenario format.
    Schema,
    /// Re-render a recorded run (its events.jsonl) as a table, JSON, or Markdown.
    Report {
        /// A run folder under reports/ or an events.jsonl file.
        run: PathBuf,
        /// What to print.
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Markdown,
    Junit,
}

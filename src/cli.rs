//! Command-line interface (clap only; each command's work lives in its own module).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Rehearse disaster recovery of a GitOps-run Kubernetes cluster: destroy, rebuild
/// from Git, time every phase, assert the RTO, and report.
///
/// Exit codes: 0 every assertion passed; 1 an assertion failed; 2 error (bad input,
/// Docker down, cluster failed to start); 130 interrupted by SIGINT (after cleanup); 143
/// terminated by SIGTERM (after cleanup).
// The exit-code paragraph is `crate::exit::Exit::help()`, the table's one-line form;
// a test in src/exit.rs fails when the two differ.
#[derive(Debug, Parser)]
#[command(name = "drill", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Diagnostics on stderr: -v drill's own, -vv also kube's, hyper's and bollard's
    /// (RUST_LOG, e.g. `RUST_LOG=kube=debug`, chooses exactly; it wins over -v).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// A duration option, bounded like the scenario's durations (1s to 24h): a huge value
/// would overflow a deadline after the cluster exists.
fn bounded_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::model::Duration::parse(text).map(|d| d.0)
}

/// The diagnostics filter for `-v` counts when RUST_LOG is not set; none by default, so
/// the progress lines stay the only output.
pub fn log_filter(verbose: u8) -> &'static str {
    match verbose {
        0 => "off",
        1 => "gitops_drill=debug,drill=debug",
        _ => "debug",
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rehearse scenarios: create the cluster, bootstrap from Git, break it, time the recovery.
    Run {
        /// Scenario files (YAML); run one after another.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Where reports go: <DIR>/<scenario>/<UTC timestamp>/.
        #[arg(long, default_value = "reports")]
        report_dir: PathBuf,
        /// What stdout shows at the end: the table, or only the report as JSON (JSON
        /// Lines, one report per line, when several runs are made).
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Run each scenario N times (each run is reported and kept in history).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
        /// Also write one JUnit file with every run of this invocation (each scenario, each
        /// repeat) to PATH, for a CI test report; written atomically at the end.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Profile file (KEY=value) for offline/air-gapped use.
        #[arg(long, env = "DRILL_PROFILE")]
        profile: Option<PathBuf>,
        /// How long the first sync from Git may take.
        #[arg(long, default_value = "10m", value_parser = bounded_duration)]
        bootstrap_timeout: std::time::Duration,
        /// Wait out every timeout even when the outcome is already certain (by default a
        /// wait stops once, for a minute, the registry has refused an image as missing
        /// on every attempt or a SealedSecret has said no key could decrypt it; the
        /// report says it stopped early).
        #[arg(long)]
        no_fail_fast: bool,
        /// No progress lines on stderr.
        #[arg(long, short)]
        quiet: bool,
        /// Which engine, when the scenario configures both (default: flux).
        #[arg(long, value_enum)]
        engine: Option<EngineArg>,
        /// Override the scenario's `images:` (cold, preloaded or mirror), to run the same
        /// rebuild each way and compare them (`drill compare`).
        #[arg(long, value_enum)]
        images: Option<ImagesArg>,
        /// Create the cluster even when its nodes need more memory or disk than this
        /// machine has free (by default the run refuses before creating anything).
        #[arg(long)]
        skip_resource_check: bool,
        #[command(flatten)]
        consent: ConsentArgs,
    },
    /// Run a scenario as a game day: print each step and wait for the operator's Enter
    /// before doing it, time every human step, and write the incident record
    /// (incident.md) next to the reports. Needs a terminal on stdin unless --auto.
    Gameday {
        /// The scenario file (YAML).
        scenario: PathBuf,
        /// Who runs the game day; recorded on every human step.
        #[arg(long)]
        operator: String,
        /// Do not wait for the operator (CI): every step goes ahead at once.
        #[arg(long)]
        auto: bool,
        /// Where reports go: <DIR>/<scenario>/<UTC timestamp>/ (incident.md beside them).
        #[arg(long, default_value = "reports")]
        report_dir: PathBuf,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Profile file (KEY=value) for offline/air-gapped use.
        #[arg(long, env = "DRILL_PROFILE")]
        profile: Option<PathBuf>,
        /// How long the first sync from Git may take.
        #[arg(long, default_value = "10m", value_parser = bounded_duration)]
        bootstrap_timeout: std::time::Duration,
        /// Wait out every timeout even when the outcome is already certain (see `drill run --help`).
        #[arg(long)]
        no_fail_fast: bool,
        /// Create the cluster even when its nodes need more memory or disk than this machine has free.
        #[arg(long)]
        skip_resource_check: bool,
        #[command(flatten)]
        consent: ConsentArgs,
    },
    /// Check this machine: Docker, kind, disk, cgroups, the profile and its node image;
    /// with a scenario, also whether its cluster fits in the free memory and disk.
    Doctor {
        /// A scenario whose cluster size to check against this machine.
        scenario: Option<PathBuf>,
        /// Profile file (KEY=value) to check (the node image, the install manifests).
        #[arg(long, env = "DRILL_PROFILE")]
        profile: Option<PathBuf>,
        /// Lines for people, or one JSON document: {"ok", "checks": [{"name", "ok", "detail"}]}.
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Delete every kind cluster drill created (named `drill-...`, its nodes carrying
    /// drill's owner mark) and the pull-through caches of `images: mirror`. A kind
    /// cluster named `drill-...` without the mark is named and left alone, and so is the
    /// cluster of a run still in progress. Work folders ($TMPDIR/drill-*) no live run
    /// holds are removed.
    Clean {
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Reports folder whose staging folders (`<scenario>/.<run id>.partial`) a killed
        /// run left are removed once ten minutes old.
        #[arg(long, default_value = "reports")]
        report_dir: PathBuf,
        /// Lines for people, or one JSON document: {"dry_run", "clusters", "mirrors",
        /// "left_alone", "in_use": [{"cluster", "pid"}], "work_folders", "partial_reports",
        /// "failed": [{"what", "why"}]}.
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Parse and check scenario files without touching any cluster.
    Validate {
        /// Scenario files (YAML).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Lines for people, or JSON Lines: one {"file", "ok", ...} per scenario file.
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// List the images a rebuild needs, one per line on stdout (to preload or mirror them):
    /// from the engine's install manifest and the fleet files the scenario's entry folder
    /// reaches, or, with --report, exactly those a recorded run pulled, slowest first.
    Images {
        /// The scenario file (YAML).
        #[arg(required_unless_present = "report", conflicts_with = "report")]
        scenario: Option<PathBuf>,
        /// A recorded run (its folder or report.json) instead of a scenario.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Which engine, when the scenario configures both (default: flux).
        #[arg(long, value_enum)]
        engine: Option<EngineArg>,
        /// Profile file (KEY=value) naming the engine install manifest. With -v, drill also
        /// says where each image is named (stderr stays for the summary).
        #[arg(long, env = "DRILL_PROFILE")]
        profile: Option<PathBuf>,
    },
    /// Print the JSON schema of the scenario format (docs/scenario.schema.json), or with
    /// --report that of report.json (docs/report.schema.json).
    Schema {
        /// The schema of report.json instead of the scenario's.
        #[arg(long)]
        report: bool,
    },
    /// Print a shell completion script, e.g. `drill completions bash > /etc/bash_completion.d/drill`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print drill's man page (roff), e.g. `drill man > /usr/local/share/man/man1/drill.1`.
    Man,
    /// Compare two recorded runs phase by phase (e.g. one rebuild with Flux, one with Argo CD).
    Compare {
        /// The first run: its folder under reports/ (or its events.jsonl).
        a: PathBuf,
        /// The second run, likewise.
        b: PathBuf,
    },
    /// The spread of each scenario's recorded runs: p50, p95 and max of the RTO, the
    /// rebuild and every phase over its last runs (from <report-dir>/<scenario>/history.jsonl).
    History(HistoryArgs),
    /// Re-render a recorded run (its events.jsonl) as a table, JSON, Markdown, JUnit or HTML.
    Report {
        /// A run folder under reports/ or an events.jsonl file.
        run: PathBuf,
        /// What to print.
        #[arg(long, short = 'o', visible_alias = "output", value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
}

/// `drill history`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Scenario names (their report folders); none: every scenario with a history.
    pub scenarios: Vec<String>,
    /// Where the reports are (as given to `drill run --report-dir`).
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// How many of the latest runs count.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub last: u32,
    /// Also each object's ready time (many rows on a large fleet).
    #[arg(long)]
    pub objects: bool,
    /// A table per scenario, or JSON Lines: one {"scenario", "runs", "figures"} per scenario.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineArg {
    Flux,
    Argocd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImagesArg {
    Cold,
    Preloaded,
    Mirror,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Markdown,
    Junit,
    /// report.html: one self-contained page with the timeline as an SVG Gantt.
    Html,
}

/// Whether the run's kind cluster is new and deleted at the end, new and kept, or one an
/// earlier run kept.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Leave the cluster running at the end (its name and kubeconfig are printed).
    #[arg(long)]
    pub keep_cluster: bool,
    /// Rehearse on kind cluster NAME, kept by an earlier run (--keep-cluster), instead of
    /// creating one: the repo is served afresh, the engine, secrets and root sync are
    /// applied again, and the initial sync waits until every app is Ready at the new
    /// commit. Its nodes must carry drill's owner mark and fit the scenario's kind
    /// config. The cluster is kept at the end; `drill clean` removes it.
    #[arg(long, value_name = "NAME")]
    pub reuse_cluster: Option<String>,
}

/// Consent for `cluster: existing`, a cluster drill did not create (see docs/safety.md).
#[derive(Debug, Clone, clap::Args)]
pub struct ConsentArgs {
    /// Let drill damage the existing cluster of this kubeconfig context; it must equal
    /// the scenario's `cluster.existing.context`.
    #[arg(long, value_name = "CONTEXT")]
    pub allow_context: Option<String>,
    /// Also when its API server is not a container on this machine's Docker networks
    /// (by default drill refuses: it may be a real cluster).
    #[arg(long)]
    pub i_know_this_is_not_a_test_cluster: bool,
}

impl From<ConsentArgs> for crate::cluster::existing::Consent {
    fn from(a: ConsentArgs) -> Self {
        crate::cluster::existing::Consent {
            allow_context: a.allow_context,
            not_a_test_cluster: a.i_know_this_is_not_a_test_cluster,
        }
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn every_command_and_option_says_what_it_is_for() {
        use clap::CommandFactory as _;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "drill", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }

    #[test]
    fn verbosity_counts_choose_the_filter_and_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from(["drill", "validate", "x.yaml", "-vv"]).unwrap();
        assert_eq!(log_filter(cli.verbose), "debug");
        let cli = Cli::try_parse_from(["drill", "-v", "validate", "x.yaml"]).unwrap();
        assert_eq!(log_filter(cli.verbose), "gitops_drill=debug,drill=debug");
        assert_eq!(log_filter(0), "off");
    }
}

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use gitops_drill::cli::{Cli, ClusterArgs, Command, ConsentArgs, EngineArg, ImagesArg, Output, ReportFormat};
use gitops_drill::exit::Exit;
use gitops_drill::profile::Profile;
use gitops_drill::report::{self, Report};
use gitops_drill::runner::{self, RunOptions};
use gitops_drill::{event, scenario};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_diagnostics(cli.verbose);
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("error: {err:#}");
            Exit::Error.into()
        }
    }
}

/// A tracing subscriber on stderr: RUST_LOG when set, else what `-v` asks for.
fn init_diagnostics(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(gitops_drill::cli::log_filter(verbose)));
    // Only fails when a subscriber is already installed, which nothing else does.
    use std::io::IsTerminal as _;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(color)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_filter(filter);
    // drill.log beside each report: drill's own lines at debug, whatever stderr shows.
    let run_log = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(gitops_drill::runlog::RunLogWriter)
        .with_target(true)
        .with_filter(EnvFilter::new("gitops_drill=debug,drill=debug"));
    let _ = tracing_subscriber::registry().with(stderr).with(run_log).try_init();
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    let verbose = cli.verbose > 0;
    match cli.command {
        Command::Run {
            scenarios,
            report_dir,
            output,
            cluster,
            repeat,
            junit,
            profile,
            bootstrap_timeout,
            no_fail_fast,
            quiet,
            engine,
            images,
            skip_resource_check,
            consent,
        } => {
            let settings = RunSettings {
                report_dir,
                cluster,
                profile,
                bootstrap_timeout,
                fail_fast: !no_fail_fast,
                progress: !quiet,
                skip_resource_check,
                consent,
            };
            cmd_run(&scenarios, engine, images, settings, output, repeat, junit.as_deref())
        }
        Command::Gameday {
            scenario,
            operator,
            auto,
            report_dir,
            cluster,
            profile,
            bootstrap_timeout,
            no_fail_fast,
            skip_resource_check,
            consent,
        } => {
            let settings = RunSettings {
                report_dir,
                cluster,
                profile,
                bootstrap_timeout,
                fail_fast: !no_fail_fast,
                progress: true,
                skip_resource_check,
                consent,
            };
            cmd_gameday(&scenario, &operator, auto, settings)
        }
        Command::Doctor {
            scenario,
            profile,
            output,
        } => cmd_doctor(scenario.as_deref(), profile.as_deref(), output),
        Command::Clean {
            dry_run,
            report_dir,
            output,
        } => cmd_clean(dry_run, &report_dir, output),
        Command::Validate { scenarios, output } => Ok(cmd_validate(&scenarios, output)),
        Command::Schema { report } => cmd_schema(report),
        Command::Completions { shell } => cmd_completions(shell),
        Command::Man => cmd_man(),
        Command::Images {
            scenario,
            report,
            engine,
            profile,
        } => cmd_images(scenario, report, engine, profile, verbose),
        Command::Compare { a, b } => cmd_compare(&a, &b),
        Command::History(args) => cmd_history(&args),
        Command::Report { run, format } => cmd_report(&run, format),
    }
}

/// The profile, its unusable lines said on stderr (a typo would otherwise fall back to
/// the online default without a word).
fn load_profile(path: Option<&Path>) -> anyhow::Result<Profile> {
    let profile = Profile::load(path)?;
    for warning in &profile.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(profile)
}

/// The options `run` and `gameday` share, before the profile is loaded.
struct RunSettings {
    report_dir: PathBuf,
    cluster: ClusterArgs,
    profile: Option<PathBuf>,
    bootstrap_timeout: Duration,
    fail_fast: bool,
    progress: bool,
    skip_resource_check: bool,
    consent: ConsentArgs,
}

impl RunSettings {
    /// Loads the profile, so call it where its errors should come (after the scenarios).
    fn options(&self, operator: Option<runner::Operator>) -> anyhow::Result<RunOptions> {
        Ok(RunOptions {
            keep_cluster: self.cluster.keep_cluster,
            reuse_cluster: self.cluster.reuse_cluster.clone(),
            profile: load_profile(self.profile.as_deref())?,
            bootstrap_timeout: self.bootstrap_timeout,
            fail_fast: self.fail_fast,
            progress: self.progress,
            operator,
            skip_resource_check: self.skip_resource_check,
            consent: self.consent.clone().into(),
        })
    }
}

/// `drill run`: the worst verdict of every run, or an error at the first interrupted one.
fn cmd_run(
    scenarios: &[PathBuf],
    engine: Option<EngineArg>,
    images: Option<ImagesArg>,
    settings: RunSettings,
    output: Output,
    repeat: u32,
    junit: Option<&Path>,
) -> anyhow::Result<Exit> {
    // Every scenario is validated before any cluster is created: bad input costs nothing.
    let mut plans = Vec::new();
    for path in scenarios {
        let plan = with_engine_arg(scenario::load(path)?, engine)?;
        plans.push(match images {
            Some(images) => plan.with_images(match images {
                ImagesArg::Cold => scenario::ImageMode::Cold,
                ImagesArg::Preloaded => scenario::ImageMode::Preloaded,
                ImagesArg::Mirror => scenario::ImageMode::Mirror,
            })?,
            None => plan,
        });
    }
    let opts = settings.options(None)?;
    if let Some(plan) = plans.iter().find(|p| p.scenario.images == scenario::ImageMode::Mirror) {
        runner::mirror_settings(&opts.profile).with_context(|| plan.file.display().to_string())?;
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let mut worst = Exit::Pass;
    let mut reports = Vec::new();
    // Several reports on stdout are JSON Lines: one document per line.
    let several = plans.len() > 1 || repeat > 1;
    'runs: for plan in &plans {
        for _ in 0..repeat {
            let report = match run_once(&runtime, plan, &opts, &settings.report_dir, (output, several))? {
                Ok(report) => report,
                Err(stopped) => {
                    worst = stopped;
                    break 'runs;
                }
            };
            worst = worst.max(report.result.into());
            reports.push(report);
        }
    }
    if let Some(path) = junit {
        report::write::write_file(path, report::junit::render(&reports).as_bytes())?;
        eprintln!("junit: {} ({} run(s))", path.display(), reports.len());
    }
    Ok(worst)
}

/// `drill gameday`: one run, each step waiting for the operator unless `--auto`.
fn cmd_gameday(scenario: &Path, operator: &str, auto: bool, settings: RunSettings) -> anyhow::Result<Exit> {
    use std::io::IsTerminal as _;
    if !auto && !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "drill gameday waits for the operator on stdin, which is not a terminal; use --auto to run every step without waiting (CI)"
        );
    }
    if operator.trim().is_empty() {
        anyhow::bail!("--operator must name who runs the game day");
    }
    let plan = scenario::load(scenario)?;
    let opts = settings.options(Some(runner::Operator {
        name: operator.trim().to_string(),
        auto,
    }))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = run_once(&runtime, &plan, &opts, &settings.report_dir, (Output::Table, false))?;
    Ok(report.map_or_else(|stopped| stopped, |r| r.result.into()))
}

/// `drill doctor`: an error exit when any check fails, so scripts can gate on it.
fn cmd_doctor(scenario: Option<&Path>, profile: Option<&Path>, output: Output) -> anyhow::Result<Exit> {
    let profile = load_profile(profile)?;
    let plan = scenario.map(scenario::load).transpose()?;
    let checks = tokio::runtime::Runtime::new()?.block_on(gitops_drill::doctor::run(&profile, plan.as_ref()));
    let ok = checks.iter().all(|c| c.ok);
    match output {
        Output::Table => {
            for c in &checks {
                println!("{} {:<13} {}", if c.ok { "✓" } else { "✗" }, c.name, c.detail);
            }
        }
        Output::Json => println!("{}", serde_json::json!({"ok": ok, "checks": checks})),
    }
    Ok(if ok { Exit::Pass } else { Exit::Error })
}

/// `drill clean`: what was (or would be) deleted, and the look-alikes left alone.
fn cmd_clean(dry_run: bool, report_dir: &std::path::Path, output: Output) -> anyhow::Result<Exit> {
    let removed = tokio::runtime::Runtime::new()?.block_on(gitops_drill::clean::clean(dry_run, report_dir))?;
    match output {
        Output::Json => println!("{}", removed.to_json(dry_run)),
        Output::Table => {
            for line in removed.lines(dry_run) {
                println!("{line}");
            }
            // Every failure is said, after everything else was tried.
            for (what, why) in &removed.failed {
                eprintln!("error: failed to delete {what}: {why}");
            }
        }
    }
    Ok(if removed.failed.is_empty() {
        Exit::Pass
    } else {
        Exit::Error
    })
}

/// `drill validate`: every file is checked (each error printed), then one verdict.
fn cmd_validate(scenarios: &[PathBuf], output: Output) -> Exit {
    let mut failed = false;
    for path in scenarios {
        // The secrets preflight too: a key that cannot decrypt the fleet is found here.
        let checked = scenario::load(path).map_err(anyhow::Error::from).and_then(|plan| {
            let preflight = gitops_drill::secrets::preflight(&plan)?;
            Ok((plan, preflight))
        });
        if output == Output::Json {
            let line = match &checked {
                Ok((plan, preflight)) => serde_json::json!({"file": path, "ok": true, "name": plan.scenario.name,
                    "disasters": plan.scenario.disasters.len(), "warnings": preflight.warnings}),
                Err(err) => serde_json::json!({"file": path, "ok": false, "error": format!("{err:#}")}),
            };
            failed |= checked.is_err();
            println!("{line}");
            continue;
        }
        match checked {
            Ok((plan, preflight)) => {
                println!(
                    "{}: ok ({}, {} disaster step(s), {} secret(s) to restore)",
                    path.display(),
                    plan.scenario.name,
                    plan.scenario.disasters.len(),
                    // The scenario's secrets: a per-run credential is drill's own, not one to keep.
                    preflight.restored.len()
                        + usize::from(preflight.repo_auth.as_ref().is_some_and(|a| !a.is_per_run()))
                );
                plan.layout_note().into_iter().for_each(|note| println!("  {note}"));
                for warning in preflight.warnings {
                    eprintln!("warning: {}: {warning}", path.display());
                }
            }
            Err(err) => {
                // Parse errors name file, line and column; the preflight's name a field.
                let text = format!("{err:#}");
                let file = path.display().to_string();
                if text.contains(&file) {
                    eprintln!("error: {text}");
                } else {
                    eprintln!("error: {file}: {text}");
                }
                failed = true;
            }
        }
    }
    if failed { Exit::Error } else { Exit::Pass }
}

/// `drill completions`: from the same definitions as --help.
fn cmd_completions(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    use clap::CommandFactory as _;
    clap_complete::generate(shell, &mut Cli::command(), "drill", &mut std::io::stdout());
    Ok(Exit::Pass)
}

/// `drill man`: the man page, roff.
fn cmd_man() -> anyhow::Result<Exit> {
    use clap::CommandFactory as _;
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .context("failed to write the man page")?;
    Ok(Exit::Pass)
}

fn cmd_schema(report: bool) -> anyhow::Result<Exit> {
    let schema = if report {
        schemars::schema_for!(Report)
    } else {
        schemars::schema_for!(scenario::Scenario)
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(Exit::Pass)
}

/// `drill history`: each scenario's figures over its last runs.
fn cmd_history(args: &gitops_drill::cli::HistoryArgs) -> anyhow::Result<Exit> {
    use gitops_drill::report::history;
    let dir = &args.report_dir;
    let names = match args.scenarios.is_empty() {
        true => history::scenarios_in(dir).with_context(|| format!("no reports in {}", dir.display()))?,
        false => args.scenarios.clone(),
    };
    if names.is_empty() {
        anyhow::bail!("no history in {}: runs record it there", dir.display());
    }
    for name in &names {
        let path = dir.join(name).join("history.jsonl");
        let entries = history::read(&path);
        if entries.is_empty() {
            anyhow::bail!("no recorded runs of {name}: {} is missing or empty", path.display());
        }
        let runs = entries.len().min(args.last as usize);
        let spreads: Vec<_> = (history::spreads(&entries, args.last as usize).into_iter())
            .filter(|s| args.objects || !s.figure.starts_with("object "))
            .collect();
        match args.output {
            Output::Json => println!(
                "{}",
                serde_json::json!({"scenario": name, "runs": runs, "figures": spreads})
            ),
            Output::Table => print!("{}", history::table(name, runs, &spreads)),
        }
    }
    Ok(Exit::Pass)
}

/// `drill images`: from a scenario's files, or from what a recorded run pulled.
fn cmd_images(
    scenario: Option<PathBuf>,
    report: Option<PathBuf>,
    engine: Option<EngineArg>,
    profile: Option<PathBuf>,
    verbose: bool,
) -> anyhow::Result<Exit> {
    match (scenario, report) {
        (Some(path), _) => images_of_scenario(&path, engine, profile.as_deref(), verbose),
        (None, Some(run)) => images_of_run(&run, verbose),
        (None, None) => anyhow::bail!("name a scenario or a recorded run (--report)"),
    }
}

fn images_of_scenario(
    path: &Path,
    engine: Option<EngineArg>,
    profile: Option<&Path>,
    verbose: bool,
) -> anyhow::Result<Exit> {
    let plan = with_engine_arg(scenario::load(path)?, engine)?;
    let profile = load_profile(profile)?;
    let install = gitops_drill::images::install_of(&plan, &profile);
    let scenario::RepoSource::Local { dir, .. } = &plan.repo else {
        anyhow::bail!(
            "{}: the fleet is a remote repo; list its images from a recorded run (--report)",
            path.display()
        );
    };
    let entry = plan.entry_path().unwrap_or_default();
    let needed = gitops_drill::images::needed_images(install.as_deref(), dir, &entry);
    for image in &needed {
        if verbose {
            println!("{}\t{}", image.image, image.named_in.join(", "));
        } else {
            println!("{}", image.image);
        }
    }
    eprintln!(
        "{} image(s): the engine install ({}) and the fleet files reached from {entry}",
        needed.len(),
        install
            .as_deref()
            .map_or("not known: no profile".into(), |p| p.display().to_string())
    );
    Ok(Exit::Pass)
}

/// Each image once, in the order of its slowest pull.
fn images_of_run(run: &Path, verbose: bool) -> anyhow::Result<Exit> {
    let report = rerender(run)?;
    let (lines, summary) = gitops_drill::images::pulled_by(&report, verbose);
    for line in lines {
        println!("{line}");
    }
    eprintln!("{summary}");
    Ok(Exit::Pass)
}

fn cmd_compare(a: &Path, b: &Path) -> anyhow::Result<Exit> {
    print!("{}", report::compare::render(&rerender(a)?, &rerender(b)?));
    Ok(Exit::Pass)
}

/// `drill report`: exits with the recorded run's verdict, as the run itself did.
fn cmd_report(run: &Path, format: ReportFormat) -> anyhow::Result<Exit> {
    let report = rerender(run)?;
    let text = match format {
        ReportFormat::Table => report::table::render(&report),
        ReportFormat::Json => report.to_json(),
        ReportFormat::Markdown => report::markdown::render(&report, &[]),
        ReportFormat::Junit => report::junit::render(std::slice::from_ref(&report)),
        ReportFormat::Html => report::html::render(&report),
    };
    print!("{text}");
    // Rendering succeeded: the recorded verdict is in the text, not the exit code, so
    // scripts under `set -e` can render a failed run.
    Ok(Exit::Pass)
}

/// The plan with the engine `--engine` picks (the scenario's own when not given).
fn with_engine_arg(plan: scenario::Plan, engine: Option<EngineArg>) -> anyhow::Result<scenario::Plan> {
    Ok(match engine {
        Some(EngineArg::Flux) => plan.with_engine(scenario::EngineKind::Flux)?,
        Some(EngineArg::Argocd) => plan.with_engine(scenario::EngineKind::Argocd)?,
        None => plan,
    })
}

/// Runs one plan and writes its reports; Err with the exit code when a signal stopped
/// it (or it panicked), after its cluster was deleted.
fn run_once(
    runtime: &tokio::runtime::Runtime,
    plan: &scenario::Plan,
    opts: &RunOptions,
    report_dir: &Path,
    (output, json_lines): (Output, bool),
) -> anyhow::Result<Result<Report, Exit>> {
    let run_id = runner::run_id();
    let result = runtime.block_on(async {
        use futures::FutureExt as _;
        // On a signal the run is cancelled first (its future dropped), so only the
        // cleanup below touches the cluster. A panic (a bug) unwinds out of the run
        // without its teardown: the same cleanup deletes what it registered.
        // Every diagnostic of the run carries its id and scenario (drill.log, -v).
        let span = tracing::info_span!("run", id = %run_id, scenario = %plan.scenario.name);
        let run = tracing::Instrument::instrument(runner::run(plan, opts, &run_id), span);
        let run = std::panic::AssertUnwindSafe(run).catch_unwind();
        tokio::select! {
            r = run => match r {
                Ok(result) => Ok(result),
                Err(_) => {
                    runner::signals::clean_up_after("drill panicked (a bug; the message is above)").await;
                    Err(("drill panicked", Exit::Error))
                }
            },
            signal = runner::signals::interrupted() => {
                let why = match signal {
                    runner::signals::Signal::Interrupt => "interrupted by SIGINT",
                    runner::signals::Signal::Terminate => "interrupted by SIGTERM",
                };
                runner::signals::clean_up_after(why).await;
                Err((why, signal.exit()))
            }
        }
    });
    let result = match result {
        Ok(result) => result,
        Err((why, exit)) => {
            if opts.keeps_cluster() {
                eprintln!("the run's cluster is kept (--keep-cluster or --reuse-cluster); `drill clean` removes it");
            }
            eprintln!("error: {why}; no report written for run {run_id}");
            return Ok(Err(exit));
        }
    };
    let mut result = result;
    if let Some(rule) = &plan.scenario.expect.regression {
        let history_path = report_dir.join(&result.report.scenario).join("history.jsonl");
        let past = report::history::read(&history_path);
        result
            .report
            .add_assertion(report::history::regression(rule, &result.report, &past));
    }
    let mut extra = result.evidence;
    let log = gitops_drill::runlog::take();
    if !log.is_empty() {
        extra.push(("drill.log".into(), log));
    }
    let written = report::write::write_run(report_dir, &result.report, &result.events, &extra)?;
    match output {
        Output::Table => print!("{}", report::table::render(&result.report)),
        Output::Json => {
            if json_lines {
                println!("{}", serde_json::to_string(&result.report)?);
            } else {
                print!("{}", result.report.to_json());
            }
            // stdout is for machines; the log a person reads still says what went wrong.
            if let Some(error) = &result.report.error {
                eprintln!("error: {error}");
            }
        }
    }
    eprintln!("reports: {}", written.dir.display());
    Ok(Ok(result.report))
}

/// A recorded run keeps its verdict in report.json and its raw events in events.jsonl;
/// re-rendering reads the report (assertions need the scenario, which may have changed since).
fn rerender(path: &Path) -> anyhow::Result<Report> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(|p| p.to_path_buf()).unwrap_or_default()
    };
    let report_path = dir.join("report.json");
    let text =
        std::fs::read_to_string(&report_path).with_context(|| format!("failed to read {}", report_path.display()))?;
    let mut report: Report =
        serde_json::from_str(&text).with_context(|| format!("{} is not a drill report", report_path.display()))?;
    // Rebuild the timing parts from the raw events, so a renderer fix applies to old runs too.
    let events_path = dir.join("events.jsonl");
    if let Ok(events_text) = std::fs::read_to_string(&events_path) {
        let events =
            event::parse_jsonl(&events_text).with_context(|| format!("failed to parse {}", events_path.display()))?;
        if !events.is_empty() {
            let timeline = gitops_drill::timeline::build(&events);
            let rebuilt = Report::new(
                &timeline,
                report.assertions.clone(),
                report.rto_budget_ms,
                report.error.clone(),
            );
            report = Report {
                result: report.result,
                ..rebuilt
            };
        }
    }
    Ok(report)
}

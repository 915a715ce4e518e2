use std::process::ExitCode;

use clap::Parser;
use gitops_drill::cli::{Cli, Command, EngineArg, ImagesArg, Output, ReportFormat};
use gitops_drill::profile::Profile;
use gitops_drill::report::{self, Report};
use gitops_drill::runner::{self, RunOptions};
use gitops_drill::{event, scenario};

/// Exit code for errors (bad input, environment problems); 1 is reserved for failed assertions.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run {
            scenarios,
            report_dir,
            output,
            keep_cluster,
            repeat,
            profile,
            bootstrap_timeout,
            quiet,
            engine,
            images,
            skip_resource_check,
            consent,
        } => {
            // Every scenario is validated before any cluster is created: bad input costs nothing.
            let mut plans = Vec::new();
            for path in &scenarios {
                let plan = scenario::load(path)?;
                let mut plan = with_engine_arg(plan, engine)?;
                if let Some(images) = images {
                    plan = plan.with_images(match images {
                        ImagesArg::Cold => scenario::ImageMode::Cold,
                        ImagesArg::Preloaded => scenario::ImageMode::Preloaded,
                        ImagesArg::Mirror => scenario::ImageMode::Mirror,
                    })?;
                }
                plans.push(plan);
            }
            let profile = Profile::load(profile.as_deref())?;
            if let Some(plan) = plans.iter().find(|p| p.scenario.images == scenario::ImageMode::Mirror) {
                use anyhow::Context as _;
                gitops_drill::runner::mirror_settings(&profile).with_context(|| plan.file.display().to_string())?;
            }
            let opts = RunOptions {
                keep_cluster,
                profile,
                bootstrap_timeout,
                progress: !quiet,
                operator: None,
                skip_resource_check,
                consent: consent.into(),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let mut worst = 0;
            for plan in &plans {
                for _ in 0..repeat {
                    let Some(code) = run_once(&runtime, plan, &opts, &report_dir, output)? else {
                        return Ok(ExitCode::from(EXIT_ERROR));
                    };
                    worst = worst.max(code);
                }
            }
            Ok(ExitCode::from(u8::try_from(worst).unwrap_or(EXIT_ERROR)))
        }
        Command::Gameday {
            scenario,
            operator,
            auto,
            report_dir,
            keep_cluster,
            profile,
            bootstrap_timeout,
            skip_resource_check,
            consent,
        } => {
            use std::io::IsTerminal as _;
            if !auto && !std::io::stdin().is_terminal() {
                anyhow::bail!(
                    "drill gameday waits for the operator on stdin, which is not a terminal; use --auto to run every step without waiting (CI)"
                );
            }
            if operator.trim().is_empty() {
                anyhow::bail!("--operator must name who runs the game day");
            }
            let plan = scenario::load(&scenario)?;
            let opts = RunOptions {
                keep_cluster,
                profile: Profile::load(profile.as_deref())?,
                bootstrap_timeout,
                progress: true,
                operator: Some(runner::Operator {
                    name: operator.trim().to_string(),
                    auto,
                }),
                skip_resource_check,
                consent: consent.into(),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            let code = run_once(&runtime, &plan, &opts, &report_dir, Output::Table)?;
            Ok(ExitCode::from(
                code.and_then(|c| u8::try_from(c).ok()).unwrap_or(EXIT_ERROR),
            ))
        }
        Command::Doctor { scenario, profile } => {
            let profile = Profile::load(profile.as_deref())?;
            let plan = scenario.as_deref().map(scenario::load).transpose()?;
            let checks = tokio::runtime::Runtime::new()?.block_on(gitops_drill::doctor::run(&profile, plan.as_ref()));
            for c in &checks {
                println!("{} {:<13} {}", if c.ok { "✓" } else { "✗" }, c.name, c.detail);
            }
            Ok(if checks.iter().all(|c| c.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_ERROR)
            })
        }
        Command::Clean { dry_run } => {
            let removed = tokio::runtime::Runtime::new()?.block_on(gitops_drill::clean::clean(dry_run))?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            if removed.clusters.is_empty() && removed.mirrors.is_empty() {
                println!("no drill clusters found");
            }
            for name in removed.clusters {
                println!("{verb} cluster {name}");
            }
            for name in removed.mirrors {
                println!("{verb} pull-through cache {name}");
            }
            for name in removed.not_drills {
                println!(
                    "left cluster {name} alone: its nodes carry no drill owner mark, so drill did not create it (`kind delete cluster --name {name}` removes it)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { scenarios } => {
            let mut failed = false;
            for path in &scenarios {
                // The secrets preflight too: a key that cannot decrypt the fleet is found here.
                match scenario::load(path).map_err(anyhow::Error::from).and_then(|plan| {
                    let preflight = gitops_drill::secrets::preflight(&plan)?;
                    Ok((plan, preflight))
                }) {
                    Ok((plan, preflight)) => {
                        println!(
                            "{}: ok ({}, {} disaster step(s), {} secret(s) to restore)",
                            path.display(),
                            plan.scenario.name,
                            plan.scenario.disasters.len(),
                            preflight.restored.len() + usize::from(preflight.repo_auth.is_some())
                        );
                        for warning in preflight.warnings {
                            eprintln!("warning: {}: {warning}", path.display());
                        }
                    }
                    Err(err) => {
                        eprintln!("error: {err:#}");
                        failed = true;
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Schema => {
            let schema = schemars::schema_for!(scenario::Scenario);
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Images {
            scenario: Some(path),
            engine,
            profile,
            verbose,
            ..
        } => {
            let plan = scenario::load(&path)?;
            let plan = with_engine_arg(plan, engine)?;
            let profile = Profile::load(profile.as_deref())?;
            let install = match plan.engine {
                scenario::EngineKind::Flux => profile.flux_install.clone(),
                scenario::EngineKind::Argocd => profile.argocd_install.clone(),
            };
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
            Ok(ExitCode::SUCCESS)
        }
        Command::Images {
            report: Some(run),
            verbose,
            ..
        } => {
            let report = rerender(&run)?;
            let mut pulls = report.images.clone();
            pulls.sort_by_key(|p| std::cmp::Reverse(p.pull_ms.unwrap_or(0)));
            let mut seen = std::collections::BTreeSet::new();
            for p in &pulls {
                if seen.insert(p.image.clone()) {
                    if verbose {
                        let took = p.pull_ms.map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0));
                        println!("{}\t{took}\t{}", p.image, p.failed.as_deref().unwrap_or("pulled"));
                    } else {
                        println!("{}", p.image);
                    }
                }
            }
            let total: u64 = pulls.iter().filter_map(|p| p.pull_ms).sum();
            eprintln!(
                "{} image(s) in {} pull(s), {:.1}s of pulling in all (run {})",
                seen.len(),
                pulls.len(),
                total as f64 / 1000.0,
                report.run_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Images { .. } => anyhow::bail!("name a scenario or a recorded run (--report)"),
        Command::Compare { a, b } => {
            print!("{}", report::compare::render(&rerender(&a)?, &rerender(&b)?));
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { run, format } => {
            let report = rerender(&run)?;
            let text = match format {
                ReportFormat::Table => report::table::render(&report),
                ReportFormat::Json => report.to_json(),
                ReportFormat::Markdown => report::markdown::render(&report, None),
                ReportFormat::Junit => report::junit::render(std::slice::from_ref(&report)),
            };
            print!("{text}");
            Ok(ExitCode::from(
                u8::try_from(report.result.exit_code()).unwrap_or(EXIT_ERROR),
            ))
        }
    }
}

/// The plan with the engine `--engine` picks (the scenario's own when not given).
fn with_engine_arg(plan: scenario::Plan, engine: Option<EngineArg>) -> anyhow::Result<scenario::Plan> {
    Ok(match engine {
        Some(EngineArg::Flux) => plan.with_engine(scenario::EngineKind::Flux)?,
        Some(EngineArg::Argocd) => plan.with_engine(scenario::EngineKind::Argocd)?,
        None => plan,
    })
}

/// Runs one plan and writes its reports; None when a signal interrupted it.
fn run_once(
    runtime: &tokio::runtime::Runtime,
    plan: &scenario::Plan,
    opts: &RunOptions,
    report_dir: &std::path::Path,
    output: Output,
) -> anyhow::Result<Option<i32>> {
    let run_id = runner::run_id();
    let result = runtime.block_on(async {
        use futures::FutureExt as _;
        // On a signal the run is cancelled first (its future dropped), so only the
        // cleanup below touches the cluster. A panic (a bug) unwinds out of the run
        // without its teardown: the same cleanup deletes what it registered.
        let run = std::panic::AssertUnwindSafe(runner::run(plan, opts, &run_id)).catch_unwind();
        tokio::select! {
            r = run => match r {
                Ok(result) => Ok(result),
                Err(_) => {
                    runner::signals::clean_up_after("drill panicked (a bug; the message is above)").await;
                    Err("drill panicked")
                }
            },
            _ = runner::signals::interrupted() => {
                runner::signals::clean_up_after("interrupted").await;
                Err("interrupted")
            }
        }
    });
    let result = match result {
        Ok(result) => result,
        Err(why) => {
            if opts.keep_cluster {
                eprintln!("--keep-cluster: the run's cluster is kept; `drill clean` removes it");
            }
            eprintln!("error: {why}; no report written for run {run_id}");
            return Ok(None);
        }
    };
    let written = report::write::write_run(report_dir, &result.report, &result.events)?;
    match output {
        Output::Table => print!("{}", report::table::render(&result.report)),
        Output::Json => {
            print!("{}", result.report.to_json());
            // stdout is for machines; the log a person reads still says what went wrong.
            if let Some(error) = &result.report.error {
                eprintln!("error: {error}");
            }
        }
    }
    eprintln!("reports: {}", written.dir.display());
    Ok(Some(result.report.result.exit_code()))
}

/// A recorded run keeps its verdict in report.json and its raw events in events.jsonl;
/// re-rendering reads the report (assertions need the scenario, which may have changed since).
fn rerender(path: &std::path::Path) -> anyhow::Result<Report> {
    use anyhow::Context as _;
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

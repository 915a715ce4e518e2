//! drill's exit codes, in one place.

use std::process::ExitCode;

use crate::report::Outcome;

/// How `drill` exits: the one table scripts and CI can rely on.
///
/// | code | variant                   | when |
/// |------|---------------------------|------|
/// | 0    | [`Exit::Pass`]            | every assertion passed; any other command that succeeded (`validate`, `doctor` with every check ok, `clean`, `schema`, `images`, `compare`, `report` that rendered a run whatever its verdict, `--help`) |
/// | 1    | [`Exit::AssertionFailed`] | a run finished and an assertion failed (RTO over budget, an object not Ready): `run`, `gameday` |
/// | 2    | [`Exit::Error`]           | anything else: bad input, a failed `validate` or `doctor` check, Docker down, a cluster that failed to start, a panicked run, a usage error (clap's own code, also 2) |
/// | 130  | [`Exit::Interrupted`]     | SIGINT (Ctrl-C) stopped a run, after its cluster was deleted |
/// | 143  | [`Exit::Terminated`]      | SIGTERM (a cancelled CI job) stopped a run, after its cluster was deleted |
///
/// The signal codes follow the shell's 128 + signal number, so a CI system shows a
/// cancelled job as cancelled, never as a verdict on the fleet. `drill run` with several
/// scenarios or `--repeat` exits with the worst of its runs (the order of the variants),
/// or at once with the signal's code when one is interrupted.
///
/// `drill --help` states this table in one line ([`Exit::help`]); a test keeps them equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Pass = 0,
    AssertionFailed = 1,
    Error = 2,
    Interrupted = 130,
    Terminated = 143,
}

impl Exit {
    /// Every code, in order.
    pub const ALL: [Exit; 5] = [
        Exit::Pass,
        Exit::AssertionFailed,
        Exit::Error,
        Exit::Interrupted,
        Exit::Terminated,
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, as `drill --help` words it.
    pub fn summary(self) -> &'static str {
        match self {
            Exit::Pass => "every assertion passed",
            Exit::AssertionFailed => "an assertion failed",
            Exit::Error => "error (bad input, Docker down, cluster failed to start)",
            Exit::Interrupted => "interrupted by SIGINT (after cleanup)",
            Exit::Terminated => "terminated by SIGTERM (after cleanup)",
        }
    }

    /// The exit-code paragraph of `drill --help`.
    pub fn help() -> String {
        let codes: Vec<String> = Self::ALL
            .iter()
            .map(|e| format!("{} {}", e.code(), e.summary()))
            .collect();
        format!("Exit codes: {}.", codes.join("; "))
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// A finished run's verdict as the process's exit code.
impl From<Outcome> for Exit {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Pass => Exit::Pass,
            Outcome::Fail => Exit::AssertionFailed,
            Outcome::Error => Exit::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones_and_order_is_severity() {
        assert_eq!(Exit::ALL.map(Exit::code), [0, 1, 2, 130, 143]);
        // `drill run` keeps the worst code with max().
        assert!(Exit::Pass < Exit::AssertionFailed && Exit::AssertionFailed < Exit::Error);
    }

    #[test]
    fn outcomes_map_to_the_codes_report_json_documents() {
        for o in [Outcome::Pass, Outcome::Fail, Outcome::Error] {
            assert_eq!(i32::from(Exit::from(o).code()), o.exit_code(), "{o:?}");
        }
    }

    #[test]
    fn help_states_this_table() {
        use clap::CommandFactory as _;
        let long_about = crate::cli::Cli::command()
            .get_long_about()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(long_about.ends_with(&Exit::help()), "{long_about}");
    }
}

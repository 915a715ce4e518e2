//! Property tests of the scenario parser (issue 9: bad input). Bounded: a fixed number of
//! cases per property (PROPTEST_CASES overrides it), so CI time stays predictable. Every
//! input must end in a plan or in an error that names the file; none may panic.

use std::path::{Path, PathBuf};

use gitops_drill::scenario::{self, Plan, ScenarioError};
use proptest::prelude::*;

fn shipped() -> Vec<(PathBuf, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// Parses and plans; an error must name the file it is about.
fn check(text: &str, path: &Path) -> Result<(), TestCaseError> {
    let result = scenario::parse_str(text, path).and_then(|s| Plan::build(s, path));
    if let Err(err) = result {
        let message = err.to_string();
        prop_assert!(
            message.starts_with(&path.display().to_string()),
            "error does not name the file: {message}"
        );
        if let ScenarioError::Invalid { position: Some(p), .. } = &err {
            prop_assert!(p.line >= 1, "line numbers start at 1: {message}");
        }
    }
    Ok(())
}

/// One edit of a scenario text: a line dropped or doubled, or one character replaced
/// with something YAML cares about.
#[derive(Debug, Clone)]
enum Mutation {
    DropLine(usize),
    DoubleLine(usize),
    Replace(usize, char),
    Insert(usize, String),
}

fn mutate(text: &str, m: &Mutation) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match m {
        Mutation::DropLine(i) => {
            let i = i % lines.len().max(1);
            lines
                .iter()
                .enumerate()
                .filter(|(n, _)| *n != i)
                .map(|(_, l)| format!("{l}\n"))
                .collect()
        }
        Mutation::DoubleLine(i) => {
            let i = i % lines.len().max(1);
            lines
                .iter()
                .enumerate()
                .flat_map(|(n, l)| if n == i { vec![*l, *l] } else { vec![*l] })
                .map(|l| format!("{l}\n"))
                .collect()
        }
        Mutation::Replace(at, c) => {
            let chars: Vec<char> = text.chars().collect();
            let at = at % chars.len().max(1);
            chars
                .iter()
                .enumerate()
                .map(|(n, x)| if n == at { *c } else { *x })
                .collect()
        }
        Mutation::Insert(at, s) => {
            let chars: Vec<char> = text.chars().collect();
            let at = at % chars.len().max(1);
            let mut out: String = chars[..at].iter().collect();
            out.push_str(s);
            out.extend(&chars[at..]);
            out
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::DoubleLine),
        (
            any::<usize>(),
            prop::sample::select(vec![
                ':', '-', ' ', '\t', '[', '{', '"', '\'', '#', '0', '&', '*', '!', '|', '>', '\n'
            ])
        )
            .prop_map(|(a, c)| Mutation::Replace(a, c)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "unknown-field: 1\n".to_string(),
                "  rto: -5m\n".to_string(),
                "rto: 99999999999999999999h\n".to_string(),
                "{{ }}".to_string(),
                "*anchor".to_string(),
                "\u{0}".to_string(),
                "namespaces: [kube-system]\n".to_string(),
            ])
        )
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_is_refused_with_the_file_named(text in any::<String>()) {
        check(&text, Path::new("scenarios/fuzz.yaml"))?;
    }

    #[test]
    fn mutated_shipped_scenarios_plan_or_fail_with_the_file_named(
        pick in any::<usize>(),
        edits in prop::collection::vec(mutation(), 1..4),
    ) {
        let files = shipped();
        let (path, text) = &files[pick % files.len()];
        let mut mutated = text.clone();
        for e in &edits {
            mutated = mutate(&mutated, e);
        }
        check(&mutated, path)?;
    }
}

//! Architecture rules for `src/`, checked on every `cargo test`:
//!
//! 1. no import cycles between modules (a folder module and its children count as one),
//! 2. no file over 600 lines outside tests,
//! 3. no function over 80 lines outside tests.
//!
//! Violations older than the check are listed in [`KNOWN`]. The list can only shrink:
//! a new violation fails, and so does an entry that no longer violates, so that it is
//! removed the moment the code is fixed.
//!
//! The scanner is deliberately small: it blanks comments and literals, splits the rest
//! into tokens and reads only what the rules need (paths, `fn` items, `#[cfg(test)]`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 80;
/// How the binary names the library crate.
const LIB_CRATE: &str = "gitops_drill";

/// Violations that predate this check. Fix one, then remove its entry. A cycle entry
/// names every module of one group that imports itself round; when a fix shrinks or
/// splits the group, replace the entry with the smaller groups the failure prints.
const KNOWN: &[&str] = &[];

#[test]
fn src_keeps_to_the_architecture_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    collect_sources(root, &root.join("src"), &mut sources);
    assert!(sources.len() > 10, "found only {} files under src/", sources.len());
    let problems = against_known(&check(&sources), KNOWN);
    assert!(
        problems.is_empty(),
        "architecture check (limits: {MAX_FILE_LINES} lines a file, {MAX_FN_LINES} a function, no module cycles):\n\n{}\n",
        problems.join("\n\n")
    );
}

/// New violations, and KNOWN entries that no longer violate.
fn against_known(found: &[Violation], known: &[&str]) -> Vec<String> {
    let known: BTreeSet<&str> = known.iter().copied().collect();
    let mut problems = Vec::new();
    for v in found {
        if !known.contains(v.key.as_str()) {
            problems.push(format!(
                "new violation: {}\n    {}",
                v.key,
                v.detail.replace('\n', "\n    ")
            ));
        }
    }
    let keys: BTreeSet<&str> = found.iter().map(|v| v.key.as_str()).collect();
    for k in known.difference(&keys) {
        problems.push(format!("fixed: remove \"{k}\" from KNOWN in tests/architecture.rs"));
    }
    problems
}

fn collect_sources(root: &Path, dir: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_sources(root, &path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let rel = path.strip_prefix(root).expect("under the crate root");
            out.push(Source {
                path: rel.to_string_lossy().replace('\\', "/"),
                text,
            });
        }
    }
}

// ---------------------------------------------------------------- the rules

struct Source {
    /// Relative to the crate root, with `/`: `src/a/b.rs`.
    path: String,
    text: String,
}

#[derive(Debug)]
struct Violation {
    /// What KNOWN lists.
    key: String,
    /// Where and how much, for the failure message.
    detail: String,
}

fn check(sources: &[Source]) -> Vec<Violation> {
    let files: Vec<File> = sources.iter().map(File::parse).collect();
    let test_only = test_only_files(&files);
    let files: Vec<&File> = files.iter().filter(|f| !test_only.contains(&f.path)).collect();

    let mut out = Vec::new();
    for f in &files {
        let lines = f.lines_outside_tests();
        if lines > MAX_FILE_LINES {
            out.push(Violation {
                key: format!("long file: {}", f.path),
                detail: format!("{lines} lines outside tests"),
            });
        }
        let mut long: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for func in f.functions().into_iter().filter(|func| func.lines() > MAX_FN_LINES) {
            let at = format!("line {}: {} lines", func.first_line, func.lines());
            long.entry(func.name).or_default().push(at);
        }
        for (name, at) in long {
            out.push(Violation {
                key: format!("long fn: {} {name}", f.path),
                detail: at.join("; "),
            });
        }
    }
    out.extend(cycles(&files));
    out
}

/// Files declared `#[cfg(test)] mod x;`: only tests, so no rule applies to them.
fn test_only_files(files: &[File]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in files {
        let dir = f.child_dir();
        for name in &f.test_mod_files {
            out.insert(format!("{dir}/{name}.rs"));
            out.insert(format!("{dir}/{name}/mod.rs"));
        }
    }
    out
}

/// One violation per group of modules that import each other in a circle.
fn cycles(files: &[&File]) -> Vec<Violation> {
    let graph = Graph::new(files);
    graph
        .strongly_connected()
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .map(|scc| {
            let names: Vec<String> = scc.iter().map(|m| module_name(m)).collect();
            let edges: Vec<String> = graph
                .edges
                .iter()
                .filter(|((from, to), _)| scc.contains(from) && scc.contains(to))
                .map(|((from, to), via)| format!("{} → {}  ({via})", module_name(from), module_name(to)))
                .collect();
            Violation {
                key: format!("cycle: {}", names.join(" ↔ ")),
                detail: format!("break one of these imports:\n{}", edges.join("\n")),
            }
        })
        .collect()
}

fn module_name(m: &[String]) -> String {
    if m.is_empty() { "crate".into() } else { m.join("::") }
}

// ---------------------------------------------------------------- the module graph

type Module = Vec<String>;

struct Graph {
    nodes: BTreeSet<Module>,
    /// (from, to) → one place that names the target, for the message.
    edges: BTreeMap<(Module, Module), String>,
}

impl Graph {
    fn new(files: &[&File]) -> Self {
        let nodes: BTreeSet<Module> = files.iter().filter(|f| !f.is_bin).map(|f| f.module.clone()).collect();
        let mut edges = BTreeMap::new();
        // A folder module contains its children: a cycle that passes through any file of
        // the folder passes through the folder. Imports between them are left out below.
        for m in nodes.iter().filter(|m| m.len() > 1) {
            if let Some(parent) = resolve(&nodes, &m[..m.len() - 1]).filter(|p| !p.is_empty()) {
                edges.insert((parent, m.clone()), "contains".to_string());
            }
        }
        for f in files {
            for p in f.paths() {
                let Some(target) = resolve(&nodes, &p.absolute) else {
                    continue;
                };
                let related = target.starts_with(&f.module) || f.module.starts_with(&target);
                if !related {
                    let via = format!("{}:{} {}", f.path, p.line, p.absolute.join("::"));
                    edges.entry((f.module.clone(), target)).or_insert(via);
                }
            }
        }
        Graph { nodes, edges }
    }

    /// Tarjan's algorithm; each component sorted, components in a stable order.
    fn strongly_connected(&self) -> Vec<Vec<Module>> {
        let mut t = Tarjan {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            next: 0,
            out: Vec::new(),
        };
        for n in &self.nodes {
            if !t.index.contains_key(n) {
                t.visit(n);
            }
        }
        for scc in &mut t.out {
            scc.sort();
        }
        t.out.sort();
        t.out
    }

    fn successors<'a>(&'a self, from: &'a Module) -> impl Iterator<Item = &'a Module> + 'a {
        self.edges.keys().filter(move |(f, _)| f == from).map(|(_, to)| to)
    }
}

struct Tarjan<'a> {
    graph: &'a Graph,
    index: BTreeMap<&'a Module, usize>,
    low: BTreeMap<&'a Module, usize>,
    stack: Vec<&'a Module>,
    on_stack: BTreeSet<&'a Module>,
    next: usize,
    out: Vec<Vec<Module>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, v: &'a Module) {
        self.index.insert(v, self.next);
        self.low.insert(v, self.next);
        self.next += 1;
        self.stack.push(v);
        self.on_stack.insert(v);
        for w in self.graph.successors(v) {
            if !self.index.contains_key(w) {
                self.visit(w);
                let low = self.low[v].min(self.low[w]);
                self.low.insert(v, low);
            } else if self.on_stack.contains(w) {
                let low = self.low[v].min(self.index[w]);
                self.low.insert(v, low);
            }
        }
        if self.low[v] == self.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(w);
                scc.push(w.clone());
                if w == v {
                    break;
                }
            }
            self.out.push(scc);
        }
    }
}

/// The deepest module file the path reaches (`crate::a::b::Item` → `a::b` if that is a file).
fn resolve(nodes: &BTreeSet<Module>, path: &[String]) -> Option<Module> {
    (0..=path.len())
        .rev()
        .map(|k| path[..k].to_vec())
        .find(|m| nodes.contains(m))
}

// ---------------------------------------------------------------- one file

struct File {
    path: String,
    /// `src/a/b.rs` and `src/a/b/mod.rs` → [a, b]; `src/lib.rs` → [].
    module: Module,
    /// A binary root: `crate::` is the binary, the library is `gitops_drill::`.
    is_bin: bool,
    line_count: usize,
    tokens: Vec<Token>,
    /// Token ranges (inclusive) of `#[cfg(test)]` items.
    test_items: Vec<(usize, usize)>,
    /// Names from `#[cfg(test)] mod name;`.
    test_mod_files: Vec<String>,
}

#[derive(Debug)]
struct Token {
    text: String,
    line: usize,
}

struct Function<'a> {
    name: &'a str,
    first_line: usize,
    last_line: usize,
}

impl Function<'_> {
    fn lines(&self) -> usize {
        self.last_line - self.first_line + 1
    }
}

/// A module path named in the code, made absolute.
struct NamedPath {
    absolute: Vec<String>,
    line: usize,
}

impl File {
    fn parse(src: &Source) -> File {
        let rel = src.path.strip_prefix("src/").unwrap_or(&src.path);
        let rel = rel.strip_suffix(".rs").unwrap_or(rel);
        let is_bin = rel == "main" || rel.starts_with("bin/");
        let mut module: Module = rel.split('/').map(String::from).collect();
        if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
            module.pop();
        }
        let tokens = tokenize(&blank_comments_and_literals(&src.text));
        let (test_items, test_mod_files) = test_items(&tokens);
        File {
            path: src.path.clone(),
            module,
            is_bin,
            line_count: src.text.lines().count(),
            tokens,
            test_items,
            test_mod_files,
        }
    }

    /// Where `mod x;` in this file looks for `x`.
    fn child_dir(&self) -> String {
        let (dir, file) = self.path.rsplit_once('/').unwrap_or(("", &self.path));
        if matches!(file, "mod.rs" | "lib.rs" | "main.rs") {
            dir.to_string()
        } else {
            format!("{dir}/{}", file.trim_end_matches(".rs"))
        }
    }

    fn in_test(&self, token: usize) -> bool {
        self.test_items.iter().any(|&(a, b)| (a..=b).contains(&token))
    }

    fn lines_outside_tests(&self) -> usize {
        let mut test_lines = BTreeSet::new();
        for &(a, b) in &self.test_items {
            test_lines.extend(self.tokens[a].line..=self.tokens[b].line);
        }
        self.line_count - test_lines.len()
    }

    /// `fn` items with a body, outside test items.
    fn functions(&self) -> Vec<Function<'_>> {
        let t = &self.tokens;
        let mut out = Vec::new();
        for i in 0..t.len() {
            if t[i].text != "fn" || self.in_test(i) || !t.get(i + 1).is_some_and(|n| is_ident(&n.text)) {
                continue;
            }
            let Some(open) = body_start(t, i + 2) else {
                continue;
            };
            let close = matching(t, open).unwrap_or(t.len() - 1);
            out.push(Function {
                name: &t[i + 1].text,
                first_line: t[i].line,
                last_line: t[close].line,
            });
        }
        out
    }

    /// Every `crate::…`, `super::…` and `self::…` path outside test items, use groups expanded.
    fn paths(&self) -> Vec<NamedPath> {
        let t = &self.tokens;
        let inline_mods = inline_mods(t);
        let mut out = Vec::new();
        for i in 0..t.len() {
            if t.get(i + 1).is_none_or(|n| n.text != "::") || self.in_test(i) {
                continue;
            }
            if i > 0 && matches!(t[i - 1].text.as_str(), "::" | "$") {
                continue;
            }
            // The module the path is written in: the file's, plus enclosing inline `mod x {`.
            let mut here = self.module.clone();
            here.extend(inline_mods.iter().filter(|m| m.1 < i && i < m.2).map(|m| m.0.clone()));
            let (mut base, mut j) = match t[i].text.as_str() {
                "crate" if !self.is_bin => (Vec::new(), i + 2),
                name if name == LIB_CRATE && self.is_bin => (Vec::new(), i + 2),
                "self" => (here, i + 2),
                "super" => {
                    here.pop();
                    (here, i + 2)
                }
                _ => continue,
            };
            while t.get(j).is_some_and(|x| x.text == "super") && t.get(j + 1).is_some_and(|x| x.text == "::") {
                base.pop();
                j += 2;
            }
            let mut trees = Vec::new();
            use_tree(t, j, base, &mut trees);
            out.extend(trees.into_iter().map(|p| NamedPath {
                absolute: p.into_iter().filter(|s| s != "self").collect(),
                line: t[i].line,
            }));
        }
        out
    }
}

/// The `{` that opens the body of the fn whose signature starts at `from`; None for `fn f();`.
fn body_start(t: &[Token], from: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, tok) in t.iter().enumerate().skip(from) {
        match tok.text.as_str() {
            "(" | "[" => depth += 1,
            ")" | "]" => depth -= 1,
            "{" if depth == 0 => return Some(k),
            ";" if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// The index of the bracket closing the one at `open`.
fn matching(t: &[Token], open: usize) -> Option<usize> {
    let (o, c) = match t[open].text.as_str() {
        "{" => ("{", "}"),
        "(" => ("(", ")"),
        "[" => ("[", "]"),
        _ => return None,
    };
    let mut depth = 0usize;
    for (k, tok) in t.iter().enumerate().skip(open) {
        if tok.text == o {
            depth += 1;
        } else if tok.text == c {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// Expands a use tree starting at `i` (after `prefix::`) into full paths.
fn use_tree(t: &[Token], mut i: usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        let Some(tok) = t.get(i) else {
            out.push(path);
            return i;
        };
        if tok.text == "{" {
            // A group `a::{b, c::d, e as f}`; each member continues the same prefix.
            i += 1;
            while let Some(tok) = t.get(i) {
                match tok.text.as_str() {
                    "}" => return i + 1,
                    "," => i += 1,
                    "as" => i += 2,
                    _ => i = use_tree(t, i, path.clone(), out),
                }
            }
            return i;
        }
        if !is_ident(&tok.text) {
            // `*`, `<` of a turbofish, `;`, `(`: the path ends here.
            out.push(path);
            return i;
        }
        path.push(tok.text.clone());
        i += 1;
        if t.get(i).is_some_and(|x| x.text == "::") {
            i += 1;
        } else {
            out.push(path);
            return i;
        }
    }
}

/// Inline modules `mod name { … }`: (name, open brace, close brace) token indices.
fn inline_mods(t: &[Token]) -> Vec<(String, usize, usize)> {
    (0..t.len().saturating_sub(2))
        .filter(|&i| t[i].text == "mod" && t[i + 2].text == "{")
        .filter_map(|i| Some((t[i + 1].text.clone(), i + 2, matching(t, i + 2)?)))
        .collect()
}

/// `#[cfg(test)]` items as token ranges, and the names of test-only module files.
fn test_items(t: &[Token]) -> (Vec<(usize, usize)>, Vec<String>) {
    const ATTR: [&str; 7] = ["#", "[", "cfg", "(", "test", ")", "]"];
    let mut items = Vec::new();
    let mut files = Vec::new();
    for start in 0..t.len() {
        if !ATTR
            .iter()
            .enumerate()
            .all(|(k, a)| t.get(start + k).is_some_and(|x| x.text == *a))
        {
            continue;
        }
        let mut i = start + ATTR.len();
        // Further attributes and the visibility belong to the same item.
        while t.get(i).is_some_and(|x| x.text == "#") && t.get(i + 1).is_some_and(|x| x.text == "[") {
            i = matching(t, i + 1).map_or(t.len(), |c| c + 1);
        }
        if t.get(i).is_some_and(|x| x.text == "pub") {
            i += 1;
            if t.get(i).is_some_and(|x| x.text == "(") {
                i = matching(t, i).map_or(t.len(), |c| c + 1);
            }
        }
        let Some(keyword) = t.get(i) else { break };
        let end = if keyword.text == "use" {
            (i..t.len()).find(|&k| t[k].text == ";")
        } else if keyword.text == "mod" && t.get(i + 2).is_some_and(|x| x.text == ";") {
            files.push(t[i + 1].text.clone());
            Some(i + 2)
        } else {
            body_start(t, i)
                .and_then(|open| matching(t, open))
                .or_else(|| (i..t.len()).find(|&k| t[k].text == ";"))
        };
        items.push((start, end.unwrap_or(t.len() - 1)));
    }
    (items, files)
}

// ---------------------------------------------------------------- lexing

fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') && s != "_"
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Identifiers, `::`, and single punctuation characters, with their line numbers.
fn tokenize(code: &[char]) -> Vec<Token> {
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < code.len() {
        let c = code[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if ident_char(c) {
            let start = i;
            while i < code.len() && ident_char(code[i]) {
                i += 1;
            }
            out.push(Token {
                text: code[start..i].iter().collect(),
                line,
            });
        } else if c == ':' && code.get(i + 1) == Some(&':') {
            out.push(Token {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            out.push(Token { text: c.into(), line });
            i += 1;
        }
    }
    out
}

/// The source with comments and string and char literals replaced by spaces (newlines
/// kept), so that no `fn`, brace or path inside them is seen.
fn blank_comments_and_literals(src: &str) -> Vec<char> {
    let s: Vec<char> = src.chars().collect();
    let mut out = s.clone();
    let mut i = 0;
    while i < s.len() {
        let end = literal_or_comment_end(&s, i);
        match end {
            Some(end) => {
                for c in &mut out[i..end] {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = end;
            }
            None => i += 1,
        }
    }
    out
}

/// If a comment or literal starts at `i`, where it ends (exclusive).
fn literal_or_comment_end(s: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| s.get(k).copied();
    let after_ident = i > 0 && ident_char(s[i - 1]);
    match s[i] {
        '/' if at(i + 1) == Some('/') => Some((i..s.len()).find(|&k| s[k] == '\n').unwrap_or(s.len())),
        '/' if at(i + 1) == Some('*') => {
            // Block comments nest.
            let (mut depth, mut k) = (0, i);
            while k < s.len() {
                if s[k] == '/' && at(k + 1) == Some('*') {
                    depth += 1;
                    k += 2;
                } else if s[k] == '*' && at(k + 1) == Some('/') {
                    depth -= 1;
                    k += 2;
                    if depth == 0 {
                        return Some(k);
                    }
                } else {
                    k += 1;
                }
            }
            Some(s.len())
        }
        '"' => {
            let mut k = i + 1;
            while k < s.len() && s[k] != '"' {
                k += if s[k] == '\\' { 2 } else { 1 };
            }
            Some((k + 1).min(s.len()))
        }
        // Raw strings r"…", r#"…"#, br#"…"#; not raw identifiers (r#type) or `for"`.
        'r' if !after_ident || (s[i - 1] == 'b' && !(i > 1 && ident_char(s[i - 2]))) => {
            let hashes = s[i + 1..].iter().take_while(|&&c| c == '#').count();
            if at(i + 1 + hashes) != Some('"') {
                return None;
            }
            let mut k = i + 2 + hashes;
            while k < s.len() {
                if s[k] == '"' && s[k + 1..].iter().take(hashes).filter(|&&c| c == '#').count() == hashes {
                    return Some(k + 1 + hashes);
                }
                k += 1;
            }
            Some(s.len())
        }
        // A char literal ('x', '\n', '\'', '\u{7b}'); a lifetime ('a, 'static) is left alone.
        '\'' if at(i + 1) == Some('\\') => {
            let close = (i + 3..s.len()).find(|&k| s[k] == '\'').unwrap_or(s.len() - 1);
            Some(close + 1)
        }
        '\'' if at(i + 2) == Some('\'') => Some(i + 3),
        _ => None,
    }
}

// ---------------------------------------------------------------- the checker's own tests

fn sources(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(path, text)| Source {
            path: path.to_string(),
            text: text.to_string(),
        })
        .collect()
}

fn keys(files: &[(&str, &str)]) -> Vec<String> {
    check(&sources(files)).into_iter().map(|v| v.key).collect()
}

/// A function `name` whose braces span `lines` lines.
fn function(name: &str, lines: usize) -> String {
    let body: String = (0..lines - 2).map(|k| format!("    let x{k} = {k};\n")).collect();
    format!("fn {name}() {{\n{body}}}\n")
}

const LIB: &str = "pub mod a;\npub mod b;\npub mod c;\n";

#[test]
fn a_cycle_through_use_and_inline_paths_is_found_with_its_modules() {
    let found = check(&sources(&[
        ("src/lib.rs", LIB),
        ("src/a.rs", "use crate::b::Thing;\n"),
        ("src/b.rs", "fn f() { let _ = crate::c::helper(); }\n"),
        ("src/c.rs", "pub fn helper() -> u8 { crate::a::X }\n"),
    ]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "cycle: a ↔ b ↔ c");
    assert!(
        found[0].detail.contains("a → b  (src/a.rs:1 b::Thing)"),
        "{}",
        found[0].detail
    );
}

/// The import edges (not folder containment) between the given files.
fn import_edges(files: &[(&str, &str)]) -> Vec<String> {
    let src = sources(files);
    let files: Vec<File> = src.iter().map(File::parse).collect();
    let refs: Vec<&File> = files.iter().collect();
    Graph::new(&refs)
        .edges
        .into_iter()
        .filter(|(_, via)| via != "contains")
        .map(|((f, t), _)| format!("{} → {}", module_name(&f), module_name(&t)))
        .collect()
}

#[test]
fn grouped_and_nested_use_statements_make_edges() {
    let graph_of = |a: &str| {
        import_edges(&[
            ("src/lib.rs", LIB),
            ("src/a.rs", a),
            ("src/b/mod.rs", "pub mod c;\n"),
            ("src/b/c.rs", ""),
            ("src/c.rs", ""),
        ])
    };
    assert_eq!(graph_of("use crate::{b::c, c as other};\n"), ["a → b::c", "a → c"]);
    assert_eq!(graph_of("use crate::{b::{self, c::{X, Y}}};\n"), ["a → b", "a → b::c"]);
    assert_eq!(graph_of("pub use crate::b::c::*;\n"), ["a → b::c"]);
    assert!(graph_of("use std::fmt;\nfn f(x: ::crate_like::c::X) {}\n").is_empty());
}

#[test]
fn super_paths_resolve_and_a_folder_is_one_unit_with_its_children() {
    let found = keys(&[
        ("src/lib.rs", "pub mod a;\npub mod b;\n"),
        (
            "src/a/mod.rs",
            "mod inner;\nuse self::inner::X;\npub use crate::a::inner::Y;\n",
        ),
        ("src/a/inner.rs", "use super::Z;\nuse super::super::b::W;\n"),
        ("src/b.rs", "use crate::a::Z;\n"),
    ]);
    assert_eq!(found, ["cycle: a ↔ a::inner ↔ b"], "b → a, which contains a::inner → b");
    let found = keys(&[
        ("src/lib.rs", "pub mod a;\n"),
        ("src/a/mod.rs", "mod inner;\nuse self::inner::X;\n"),
        ("src/a/inner.rs", "use super::Z;\n"),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn test_code_is_left_out_of_every_rule() {
    let long_test = function("long_test", 200);
    let a = format!(
        "pub fn short() {{}}\n#[cfg(test)]\nmod tests {{\n    use crate::b::X;\n{long_test}}}\n\n#[cfg(test)]\nmod fixtures;\n"
    );
    let big_fixture = "// filler\n".repeat(700);
    let b = format!(
        "#[cfg(test)]\n#[allow(unused)]\npub(crate) fn helper() {{ crate::a::short() }}\n{}",
        "\n".repeat(610)
    );
    let found = keys(&[
        ("src/lib.rs", "pub mod a;\npub mod b;\n"),
        ("src/a.rs", &a),
        ("src/a/fixtures.rs", &big_fixture),
        ("src/b.rs", &b),
    ]);
    assert_eq!(found, ["long file: src/b.rs"], "only b's 610 blank lines count");
}

#[test]
fn long_functions_are_measured_from_fn_to_closing_brace() {
    let at_limit = function("fits", MAX_FN_LINES);
    let over = function("too_long", MAX_FN_LINES + 1);
    let src = format!("impl X {{\n    pub async fn f() {{}}\n}}\n{at_limit}{over}trait T {{ fn g(x: [u8; 4]); }}\n");
    let found = check(&sources(&[("src/lib.rs", "pub mod a;\n"), ("src/a.rs", &src)]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "long fn: src/a.rs too_long");
    assert!(found[0].detail.contains("81 lines"), "{}", found[0].detail);
}

#[test]
fn strings_chars_and_comments_hide_fn_braces_and_paths() {
    let text = r###"fn outer() {
    let a = "fn fake() { {{ crate::b::X";
    let b = r#"}" fn raw() { "#;
    let c = '{';
    let d = '\'';
    let e = b"}";
    // fn commented() { crate::b::Y
    /* } /* nested } */ fn block() { */
    let f: fn(u8) -> u8 = |x| x;
    let g = &'static str;
    let r#type = 1;
}
"###;
    let src = sources(&[("src/a.rs", text)]);
    let file = File::parse(&src[0]);
    let names: Vec<(&str, usize)> = file.functions().iter().map(|f| (f.name, f.lines())).collect();
    assert_eq!(names, [("outer", 12)]);
    assert!(file.paths().is_empty());
}

#[test]
fn the_binary_reaches_the_library_by_its_crate_name() {
    let edges = import_edges(&[
        ("src/lib.rs", LIB),
        ("src/main.rs", "use gitops_drill::{a, b::Thing};\nuse crate::Cli;\n"),
        ("src/a.rs", ""),
        ("src/b.rs", ""),
        ("src/c.rs", ""),
    ]);
    assert_eq!(edges, ["main → a", "main → b"]);
}

#[test]
fn known_entries_must_still_violate_and_new_violations_fail() {
    let found = check(&sources(&[
        ("src/lib.rs", "pub mod a;\n"),
        ("src/a.rs", &function("long", 100)),
    ]));
    assert!(against_known(&found, &["long fn: src/a.rs long"]).is_empty());
    let stale = against_known(&found, &["long fn: src/a.rs long", "long file: src/a.rs"]);
    assert_eq!(
        stale,
        ["fixed: remove \"long file: src/a.rs\" from KNOWN in tests/architecture.rs"]
    );
    let new = against_known(&found, &[]);
    assert_eq!(new, ["new violation: long fn: src/a.rs long\n    line 1: 100 lines"]);
}

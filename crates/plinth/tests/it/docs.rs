//! Checks that keep the documentation honest about the repository it ships in:
//!
//! - every code name `ARCHITECTURE.md` puts in backticks still exists in the tree;
//! - README.md, ARCHITECTURE.md and docs/SPEC.md stay within their line budgets;
//! - no document names internal tracker numbers or paths outside the repository;
//! - every relative markdown link points to a file that exists.
//!
//! Each check collects every problem it finds and fails once, listing them all.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The documents the checks cover besides `docs/*.md`.
const TOP_DOCS: [&str; 2] = ["README.md", "ARCHITECTURE.md"];

/// Line budgets: (file, most lines allowed).
const BUDGETS: [(&str, usize); 3] = [
    ("README.md", 300),
    ("ARCHITECTURE.md", 250),
    ("docs/SPEC.md", 600),
];

/// This file: its planted names must not count as present.
const THIS_FILE: &str = "crates/plinth/tests/it/docs.rs";

/// Crate directories under `crates/`; `core::policy` or `server::auth` name a crate first.
const CRATES: [&str; 5] = ["core", "store", "server", "plinth", "bench"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// README.md, ARCHITECTURE.md and every `docs/*.md`, as paths relative to the root.
fn documents(root: &Path) -> Vec<String> {
    let mut docs: Vec<String> = TOP_DOCS.iter().map(|d| (*d).to_owned()).collect();
    let mut guides: Vec<String> = fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("a docs/ entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    guides.sort();
    docs.extend(guides);
    docs
}

/// Every file and directory under `dir`, relative to `root`, skipping build output and git.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "target" || name == ".git" {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        out.push(relative);
        if path.is_dir() {
            walk(root, &path, out);
        }
    }
}

/// What the Rust sources under `crates/` contain.
#[derive(Debug, Default)]
struct Tree {
    /// Identifiers in code, outside comments and string literals.
    code: BTreeSet<String>,
    /// Identifier-like words inside string literals (env vars, SQL, serde names), as written
    /// and lowercased: a lowercase name in the docs (`jsonb`) may be uppercase SQL in the code.
    words: BTreeSet<String>,
    /// Whole string literals, such as the log target `"plinth::security"`.
    literals: BTreeSet<String>,
    /// Every file and directory in the repository, relative to its root.
    paths: Vec<String>,
}

impl Tree {
    fn load(root: &Path) -> Self {
        let mut tree = Tree::default();
        walk(root, root, &mut tree.paths);
        for path in &tree.paths {
            if path.starts_with("crates/") && path.ends_with(".rs") && path != THIS_FILE {
                let source = read(&root.join(path));
                lex(&source, &mut tree.code, &mut tree.words, &mut tree.literals);
            }
        }
        tree
    }

    /// A path in the repository: from its root, inside a crate, or as the tail of a path.
    fn has_path(&self, root: &Path, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        root.join(path).exists()
            || self
                .paths
                .iter()
                .any(|p| p == path || p.ends_with(&format!("/{path}")))
    }

    fn has_file_name(&self, name: &str) -> bool {
        self.paths
            .iter()
            .any(|p| p.rsplit('/').next() == Some(name))
    }

    /// A module or crate named in a path like `sqlite::errors::map` or `core::policy`.
    fn has_module(&self, name: &str) -> bool {
        self.code.contains(name)
            || CRATES.contains(&name)
            || self.has_file_name(&format!("{name}.rs"))
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn words_of(text: &str, words: &mut BTreeSet<String>) {
    for word in text.split(|c: char| !is_ident_char(c)) {
        if word.starts_with(is_ident_start) {
            words.insert(word.to_owned());
            words.insert(word.to_lowercase());
        }
    }
}

/// A small Rust lexer: identifiers go to `code`, string literals to `words` and `literals`,
/// comments nowhere, so a name that survives only in a comment counts as gone.
fn lex(
    source: &str,
    code: &mut BTreeSet<String>,
    words: &mut BTreeSet<String>,
    literals: &mut BTreeSet<String>,
) {
    let s: Vec<char> = source.chars().collect();
    let at = |i: usize| s.get(i).copied().unwrap_or('\0');
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == '/' && at(i + 1) == '/' {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < s.len() {
                if s[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < s.len() && s[i] != '"' {
                i += if s[i] == '\\' { 2 } else { 1 };
            }
            let text: String = s[start..i.min(s.len())].iter().collect();
            words_of(&text, words);
            literals.insert(text);
            i += 1;
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                i += 3; // past the quote, the backslash and the escaped character
                while i < s.len() && s[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1; // a lifetime; its name is lexed as an identifier
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < s.len() && is_ident_char(s[i]) {
                i += 1;
            }
            let ident: String = s[start..i].iter().collect();
            // A raw string: r"…", r#"…"#, br"…" (b"…" falls through to the '"' branch).
            if (ident == "r" || ident == "br") && (at(i) == '"' || at(i) == '#') {
                let mut hashes = 0;
                while at(i + hashes) == '#' {
                    hashes += 1;
                }
                if at(i + hashes) == '"' {
                    i += hashes + 1;
                    let start = i;
                    let closes = |j: usize| s[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#');
                    while i < s.len() && !closes(i) {
                        i += 1;
                    }
                    let text: String = s[start..i.min(s.len())].iter().collect();
                    words_of(&text, words);
                    literals.insert(text);
                    i += hashes + 1;
                    continue;
                }
                if ident == "r" {
                    i += hashes; // a raw identifier, r#type
                    continue;
                }
            }
            code.insert(ident);
        } else {
            i += 1;
        }
    }
}

/// The markdown's lines with fenced code blocks blanked out (line numbers are kept).
fn prose_lines(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    markdown
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                String::new()
            } else if fenced {
                String::new()
            } else {
                line.to_owned()
            }
        })
        .collect()
}

/// Inline code spans outside fenced blocks, with the line each starts on. A span may run
/// over a line break; it then holds a space and is never taken for a code name.
fn code_spans(markdown: &str) -> Vec<(usize, String)> {
    let text = prose_lines(markdown).join("\n");
    let chars: Vec<char> = text.chars().collect();
    let mut spans = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let mut ticks = 0;
        while chars.get(i + ticks) == Some(&'`') {
            ticks += 1;
        }
        let start = i + ticks;
        let mut j = start;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let mut run = 0;
                while chars.get(j + run) == Some(&'`') {
                    run += 1;
                }
                if run == ticks {
                    close = Some(j);
                    break;
                }
                j += run;
            } else {
                j += 1;
            }
        }
        let Some(end) = close else {
            i = start;
            continue;
        };
        let span: String = chars[start..end].iter().collect();
        spans.push((line, span.replace('\n', " ").trim().to_owned()));
        line += chars[start..end].iter().filter(|c| **c == '\n').count();
        i = end + ticks;
    }
    spans
}

/// Why a backticked span is not in the tree, or `None` when it is there or is no code name
/// (prose, SQL, shell, env vars, headers, URLs, numbers).
fn missing(span: &str, tree: &Tree, root: &Path) -> Option<String> {
    const NOT_A_NAME: &[char] = &[
        ' ', '\t', '=', '…', '"', '\'', '\\', '{', '}', '[', ']', '?', '&', '^', '$', '@', '%',
        '#', '+', '|', ',', ';', '~', '*', '→',
    ];
    let first = span.chars().next()?;
    let sql_keyword = span.len() > 1 && span.chars().all(|c| c.is_ascii_uppercase());
    let commit = span.len() >= 7
        && span
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && span.chars().any(|c| c.is_ascii_digit());
    if span.contains(NOT_A_NAME)
        || sql_keyword
        || commit
        || first.is_ascii_digit()
        || matches!(first, '-' | '/' | '<' | '.' | ':')
        || span.starts_with("PLINTH_")
    {
        return None;
    }
    if span.contains('/') {
        return (!tree.has_path(root, span)).then(|| "no such path in the repository".to_owned());
    }
    if span.contains('-') || (span.contains(':') && !span.contains("::")) {
        return None; // a header, a crate or thread name, `user:<id>`
    }
    if tree.literals.contains(span) {
        return None; // a log target such as "plinth::security"
    }
    if let Some((_, ext)) = span.rsplit_once('.') {
        match ext {
            "rs" | "md" => {
                return (!tree.has_file_name(span))
                    .then(|| "no file of that name in the repository".to_owned());
            }
            "toml" | "db" | "key" | "json" | "lock" | "sh" | "yml" | "yaml" => return None,
            _ => {}
        }
    }
    // `f()`, `f(x)`, `m!` and `Vec<T>` name what precedes or surrounds the punctuation.
    let name = span.split('(').next().unwrap_or(span).trim_end_matches('!');
    if name.contains('<') {
        let unknown: Vec<&str> = name
            .split(|c: char| !is_ident_char(c) && c != ':')
            .flat_map(|part| part.split("::"))
            .filter(|ident| !ident.is_empty() && !tree.code.contains(*ident))
            .collect();
        return (!unknown.is_empty()).then(|| format!("no identifier {unknown:?} in the code"));
    }
    let segments: Vec<&str> = name.split("::").flat_map(|s| s.split('.')).collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || !s.chars().all(is_ident_char))
    {
        return None;
    }
    let (last, prefix) = segments.split_last()?;
    if prefix.is_empty() {
        // `words` holds each word as written and lowercased, so `jsonb` matches `JSONB` in
        // SQL text while `Cluster` must be spelled exactly.
        let known =
            tree.code.contains(*last) || tree.words.contains(*last) || CRATES.contains(last);
        return (!known).then(|| format!("no identifier `{last}` in any .rs file under crates/"));
    }
    if !tree.code.contains(*last) {
        return Some(format!(
            "no identifier `{last}` in any .rs file under crates/"
        ));
    }
    prefix
        .iter()
        .find(|module| !tree.has_module(module))
        .map(|module| format!("no module, type or crate `{module}`"))
}

/// Every problem with the code names of one markdown text, as printable lines.
fn missing_names(file: &str, markdown: &str, tree: &Tree, root: &Path) -> Vec<String> {
    code_spans(markdown)
        .into_iter()
        .filter_map(|(line, span)| {
            missing(&span, tree, root).map(|why| format!("{file}:{line}: `{span}`: {why}"))
        })
        .collect()
}

#[test]
fn every_code_name_in_architecture_exists_in_the_tree() {
    let root = repo_root();
    let tree = Tree::load(&root);
    let text = read(&root.join("ARCHITECTURE.md"));
    let names = code_spans(&text).len();
    assert!(
        names > 100,
        "ARCHITECTURE.md has only {names} code spans; is it the map?"
    );
    let problems = missing_names("ARCHITECTURE.md", &text, &tree, &root);
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md names {} thing(s) the tree no longer has (rename them in the map, \
         or put them back):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_name_check_reports_planted_names_and_passes_real_ones() {
    let root = repo_root();
    let tree = Tree::load(&root);
    let planted = "\
The writer (`SqliteStore`, `Writer::now`, `PgStore::bounded`, `records::create`) lives in
`crates/store/src/sqlite/writer.rs`, tested in `tests/it` and `locking.rs`. Env vars such as
`DATABASE_URL` and `PLINTH_LISTEN`, SQL such as `FOR KEY SHARE` or `NOTIFY`, a column type
`jsonb` (found as `JSONB`), a constant `MAX_BATCH`, the crate `core`, a commit `dbd0d6c`, headers like `X-API-Key`,
routes like `/api/v1/users` and `user:<id>` are no code names.
```
`NotInAFence` would be skipped here.
```
Planted: `SqliteStoer`, `MAX_BATCHES`, `Jsonb`, `PgStore::unbounded`, `nowhere::create`, `crates/store/src/nope.rs`,
`gone.rs` and `Vec<NoSuchType>`; `// only_in_a_comment` is prose.
";
    let problems = missing_names("planted.md", planted, &tree, &root);
    let flagged: Vec<&str> = problems
        .iter()
        .filter_map(|p| p.split('`').nth(1))
        .collect();
    assert_eq!(
        flagged,
        [
            "SqliteStoer",
            "MAX_BATCHES",
            "Jsonb",
            "PgStore::unbounded",
            "nowhere::create",
            "crates/store/src/nope.rs",
            "gone.rs",
            "Vec<NoSuchType>",
        ],
        "{problems:#?}"
    );
    assert!(
        problems[0].starts_with("planted.md:9:"),
        "line numbers count fenced lines too: {problems:#?}"
    );
}

#[test]
fn a_name_left_only_in_a_comment_counts_as_gone() {
    let (mut code, mut words, mut literals) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    lex(
        "// fn only_in_a_comment() {}\n/* nested /* Deep */ Gone */\n\
         fn kept<'a>(x: &'a str) -> char { let _ = r#\"raw_word\"#; let _ = \"it's\"; 'q' }",
        &mut code,
        &mut words,
        &mut literals,
    );
    assert!(code.contains("kept") && code.contains("str") && code.contains("a"));
    assert!(!code.contains("only_in_a_comment") && !code.contains("Deep"));
    assert!(!code.contains("Gone") && !code.contains("q") && !code.contains("raw_word"));
    assert!(words.contains("raw_word") && words.contains("it"));
    assert!(!words.contains("Deep") && !words.contains("deep"));
    assert!(literals.contains("it's"));
}

#[test]
fn documents_stay_within_their_line_budgets() {
    let root = repo_root();
    let over: Vec<String> = BUDGETS
        .iter()
        .filter_map(|(file, budget)| {
            let lines = read(&root.join(file)).lines().count();
            (lines > *budget).then(|| format!("{file}: {lines} lines, budget {budget}"))
        })
        .collect();
    assert!(
        over.is_empty(),
        "documents over budget (split the detail into a guide in docs/ and link it):\n{}",
        over.join("\n")
    );
}

/// Tracker references (`issue 7`, `issues 2 and 3`, `#12`) and paths outside the repository.
fn forbidden_references(file: &str, markdown: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (n, line) in markdown.lines().enumerate() {
        let lower = line.to_lowercase();
        let mut report = |what: &str| problems.push(format!("{file}:{}: {what}: {line}", n + 1));
        for word in ["issue ", "issues "] {
            let tracker = lower.match_indices(word).any(|(at, _)| {
                let before = lower[..at].chars().next_back();
                let after = lower[at + word.len()..].chars().next();
                !before.is_some_and(is_ident_char) && after.is_some_and(|c| c.is_ascii_digit())
            });
            if tracker {
                report("an internal issue number");
            }
        }
        let chars: Vec<char> = line.chars().collect();
        let hash_number = chars.iter().enumerate().any(|(i, c)| {
            let digits = chars[i + 1..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .count();
            let after = chars.get(i + 1 + digits);
            *c == '#'
                && digits > 0
                && !i
                    .checked_sub(1)
                    .and_then(|p| chars.get(p))
                    .is_some_and(|p| is_ident_char(*p))
                && !after.is_some_and(|a| is_ident_char(*a) || *a == '-')
        });
        if hash_number {
            report("a `#N` tracker reference");
        }
        for outside in ["../shared", "/work/"] {
            if line.contains(outside) {
                report("a path outside the repository");
            }
        }
    }
    problems
}

#[test]
fn documents_name_no_tracker_numbers_and_no_paths_outside_the_repository() {
    let root = repo_root();
    let problems: Vec<String> = documents(&root)
        .iter()
        .flat_map(|file| forbidden_references(file, &read(&root.join(file))))
        .collect();
    assert!(
        problems.is_empty(),
        "documents must stand alone in a clone:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_reference_check_catches_what_it_names() {
    let text = "See issue 7.\nAs in #12, too.\nSee [§5](#5-performance) and \
                `../shared/x`.\nThe 3 issues and tissue 4 are fine; so is issue-free #hash.";
    let problems = forbidden_references("t.md", text);
    let lines: Vec<&str> = problems
        .iter()
        .map(|p| p.split(": ").next().unwrap_or_default())
        .collect();
    assert_eq!(lines, ["t.md:1", "t.md:2", "t.md:3"], "{problems:#?}");
}

/// The targets of inline `[text](target)` and reference `[label]: target` links in prose.
fn link_targets(markdown: &str) -> Vec<(usize, String)> {
    let mut targets = Vec::new();
    for (n, line) in prose_lines(markdown).iter().enumerate() {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            targets.push((n + 1, after[..end].to_owned()));
            rest = &after[end..];
        }
        let trimmed = line.trim_start();
        if let Some(close) = trimmed.strip_prefix('[').and_then(|t| t.find("]: ")) {
            targets.push((n + 1, trimmed[close + 4..].to_owned()));
        }
    }
    targets
}

/// A relative link's file, or `None` for web links and anchors within the same page.
fn link_path(target: &str) -> Option<String> {
    let target = target.split_whitespace().next()?.trim_matches(['<', '>']);
    let file = target.split('#').next()?;
    let external = ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| target.starts_with(scheme));
    (!external && !file.is_empty()).then(|| file.to_owned())
}

/// Resolves `link` against the directory of `file`; `None` when it leaves the repository.
fn resolve(file: &str, link: &str) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    let base = Path::new(file).parent().unwrap_or(Path::new(""));
    for part in base.join(link).components() {
        match part {
            Component::Normal(p) => path.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !path.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(path)
}

#[test]
fn every_relative_link_points_to_a_file_in_the_repository() {
    let root = repo_root();
    let mut problems = Vec::new();
    for file in documents(&root) {
        for (line, target) in link_targets(&read(&root.join(&file))) {
            let Some(link) = link_path(&target) else {
                continue;
            };
            match resolve(&file, &link) {
                None => problems.push(format!("{file}:{line}: {target}: leaves the repository")),
                Some(path) if !root.join(&path).exists() => problems.push(format!(
                    "{file}:{line}: {target}: {} does not exist",
                    path.display()
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_link_check_resolves_relative_to_the_linking_file() {
    let text = "[a](../README.md), [b](api.md#tokens \"title\"), [c](https://x.example), \
                [d](#top)\n[ref]: ../../outside.md\n```\n[e](in-a-fence.md)\n```";
    let targets = link_targets(text);
    let links: Vec<Option<String>> = targets.iter().map(|(_, t)| link_path(t)).collect();
    assert_eq!(
        links,
        [
            Some("../README.md".to_owned()),
            Some("api.md".to_owned()),
            None,
            None,
            Some("../../outside.md".to_owned()),
        ]
    );
    assert_eq!(
        resolve("docs/SPEC.md", "../README.md"),
        Some(PathBuf::from("README.md"))
    );
    assert_eq!(
        resolve("docs/SPEC.md", "api.md"),
        Some(PathBuf::from("docs/api.md"))
    );
    assert_eq!(resolve("docs/SPEC.md", "../../outside.md"), None);
}

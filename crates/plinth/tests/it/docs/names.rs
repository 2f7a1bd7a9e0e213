//! The code-name check: a small index of what the Rust sources contain (`Tree`, built by
//! `lex`), and which backticked spans of a document are code names missing from it.

use super::{CRATES, THIS_DIR, prose_lines, read, repo_root, walk};
use std::collections::BTreeSet;
use std::path::Path;

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
            if path.starts_with("crates/") && path.ends_with(".rs") && !path.starts_with(THIS_DIR) {
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

pub(super) fn is_ident_char(c: char) -> bool {
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

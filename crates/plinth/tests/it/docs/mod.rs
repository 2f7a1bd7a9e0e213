//! Checks that keep the documentation honest about the repository it ships in:
//!
//! - every code name `ARCHITECTURE.md` puts in backticks still exists in the tree;
//! - README.md, ARCHITECTURE.md and docs/SPEC.md stay within their line budgets;
//! - no document names internal tracker numbers or paths outside the repository;
//! - every relative markdown link points to a file that exists;
//! - the runbooks' commands, files and paths exist (`runbooks`).
//!
//! Each check collects every problem it finds and fails once, listing them all.

use names::is_ident_char;
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

/// These checks: their planted names must not count as present.
const THIS_DIR: &str = "crates/plinth/tests/it/docs/";

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

/// README.md, ARCHITECTURE.md, every `docs/*.md` and every `docs/runbooks/*.md`, as paths
/// relative to the root.
fn documents(root: &Path) -> Vec<String> {
    let mut docs: Vec<String> = TOP_DOCS.iter().map(|d| (*d).to_owned()).collect();
    for dir in ["docs", "docs/runbooks"] {
        let mut guides: Vec<String> = fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("list {dir}: {e}"))
            .map(|entry| entry.expect("a directory entry").file_name())
            .filter_map(|name| name.to_str().map(str::to_owned))
            .filter(|name| name.ends_with(".md"))
            .map(|name| format!("{dir}/{name}"))
            .collect();
        guides.sort();
        docs.extend(guides);
    }
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

mod names;
mod runbooks;

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

//! The runbooks in `docs/runbooks/` name only what exists: each `plinth …` command line in
//! their code blocks parses (the binary, given the same arguments and `--help`, accepts
//! them), each file given to `kubectl … -f` or `docker compose` is in the repository, and
//! each path `curl` asks is a route of the server's OpenAPI document.

use super::{read, repo_root};
use crate::helpers::{Server, TestDir, run};
use reqwest::StatusCode;
use std::collections::BTreeSet;

/// Every runbook; `docs/operations.md` links each.
pub(super) const RUNBOOKS: [&str; 7] = [
    "deploy",
    "canary",
    "blue-green",
    "rollback",
    "key-rotation",
    "restore",
    "alerts",
];

/// The lines inside fenced code blocks, continuation lines (`\` at the end) joined, with
/// their file and line number.
fn code_lines(file: &str, markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut fenced, mut pending) = (false, String::new());
    for (n, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(line);
                out.push((format!("{file}:{}", n + 1), std::mem::take(&mut pending)));
            }
        }
    }
    out
}

/// Shell words: split on whitespace, quotes grouping (and removed); a `#` starting a word
/// ends the line.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quote, mut started) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, '#') if word.is_empty() && !started => break,
            (None, c) => word.push(c),
        }
    }
    if started || !word.is_empty() {
        out.push(word);
    }
    out
}

/// Words after which a new command starts.
const COMMAND_STARTS: [&str; 6] = ["|", "||", "&&", ";", "&", "--"];
/// Words that end a command's arguments.
const ENDS: [&str; 8] = ["|", "||", "&&", ";", "&", "<", ">", ">>"];

/// The argument lists of the `plinth` commands on a line: a `plinth` word (or a path
/// ending `/plinth`) that starts a command — the line's first word, one after `|`, `&&`,
/// `;` or `--`, after `VAR=value` assignments, or inside `$(…)` — up to the end of that
/// command. A `plinth` that is another tool's argument (`deployment plinth`) is none.
fn plinth_commands(line: &str) -> Vec<Vec<String>> {
    let words = words(line);
    let is_plinth = |w: &str| w == "plinth" || w.ends_with("/plinth");
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let starts = match word.rsplit_once("$(") {
            Some((_, inner)) => is_plinth(inner),
            None => {
                is_plinth(word)
                    && i.checked_sub(1)
                        .and_then(|p| words.get(p))
                        .is_none_or(|prev| {
                            COMMAND_STARTS.contains(&prev.as_str())
                                || prev.ends_with(')')
                                || (!prev.starts_with('-') && prev.contains('='))
                        })
            }
        };
        if !starts {
            continue;
        }
        let mut args = Vec::new();
        for w in &words[i + 1..] {
            if ENDS.contains(&w.as_str()) {
                break;
            }
            if let Some(last) = w.strip_suffix(')') {
                args.push(last.to_owned());
                break;
            }
            args.push(w.clone());
        }
        found.push(args);
    }
    found
}

/// Files a line hands to `kubectl … -f FILE` or `docker compose -f FILE`.
fn named_files(line: &str) -> Vec<String> {
    let words = words(line);
    let tool = words.first().map(String::as_str);
    if !matches!(tool, Some("kubectl" | "docker")) {
        return Vec::new();
    }
    words
        .windows(2)
        .filter(|w| w[0] == "-f" && w[1] != "-")
        .map(|w| w[1].clone())
        .collect()
}

/// The paths `curl` asks on a line: of `http(s)://host/path` and `$BASE/path` words.
fn curl_paths(line: &str) -> Vec<String> {
    let words = words(line);
    if words.first().map(String::as_str) != Some("curl") {
        return Vec::new();
    }
    words
        .iter()
        .filter_map(|w| {
            let rest = w
                .strip_prefix("http://")
                .or_else(|| w.strip_prefix("https://"))
                .and_then(|r| r.find('/').map(|at| &r[at..]))
                .or_else(|| w.strip_prefix("$BASE"))?;
            Some(rest.split('?').next().unwrap_or(rest).to_owned())
        })
        .collect()
}

/// Whether `path` is one of the document's path templates (`{id}` matches any segment).
fn is_route(templates: &BTreeSet<String>, path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    templates.iter().any(|t| {
        let parts: Vec<&str> = t.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()))
    })
}

fn runbook_lines() -> Vec<(String, String)> {
    RUNBOOKS
        .iter()
        .flat_map(|name| {
            let file = format!("docs/runbooks/{name}.md");
            code_lines(&file, &read(&repo_root().join(&file)))
        })
        .collect()
}

#[test]
fn the_runbook_parsers_find_what_they_look_for() {
    let line = "PLINTH_X=1 plinth --data-dir d backup f.backup   # a comment | plinth nope";
    assert_eq!(
        plinth_commands(line),
        [["--data-dir", "d", "backup", "f.backup"]]
    );
    let line = "kubectl exec -i deployment/plinth -- plinth user create --role admin < pw";
    assert_eq!(
        plinth_commands(line),
        [["user", "create", "--role", "admin"]]
    );
    assert_eq!(
        plinth_commands("PLINTH_JWT_SECRET=$(plinth keys generate) plinth serve"),
        [vec!["keys", "generate"], vec!["serve"]]
    );
    assert!(plinth_commands("kubectl scale deployment plinth --replicas=0").is_empty());
    assert!(plinth_commands("docker build -t registry.example.com/plinth:0.1.0 .").is_empty());
    assert_eq!(
        named_files("kubectl apply -f a.yaml -f b.yaml | kubectl apply -f -"),
        ["a.yaml", "b.yaml"]
    );
    assert_eq!(
        curl_paths("curl -fsS 'http://127.0.0.1:8080/readyz?x=1' $BASE/api/v1/alerts"),
        ["/readyz", "/api/v1/alerts"]
    );
    let templates = BTreeSet::from(["/api/v1/{model}/{id}".to_owned()]);
    assert!(is_route(&templates, "/api/v1/book/$ID"));
    assert!(!is_route(&templates, "/api/v1/book"));
}

#[tokio::test]
async fn every_plinth_command_in_the_runbooks_parses() {
    let dir = TestDir::sqlite();
    let mut checked = 0;
    let mut problems = Vec::new();
    for (at, line) in runbook_lines() {
        for args in plinth_commands(&line) {
            let mut with_help: Vec<&str> = args.iter().map(String::as_str).collect();
            with_help.push("--help");
            let done = run(&dir, &with_help, &[]).await;
            if done.status.code() != Some(0) {
                problems.push(format!("{at}: plinth {}: {}", args.join(" "), done.stderr));
            }
            checked += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 10, "only {checked} plinth commands found");
    // The check can fail: a command or a flag that does not exist is refused.
    for bad in [
        &["keys", "bogus", "--help"][..],
        &["backup", "--bogus", "--help"],
    ] {
        assert_eq!(run(&dir, bad, &[]).await.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn every_file_the_runbooks_apply_exists() {
    let root = repo_root();
    let mut named = 0;
    let mut problems = Vec::new();
    for (at, line) in runbook_lines() {
        for file in named_files(&line) {
            named += 1;
            if !root.join(&file).is_file() {
                problems.push(format!("{at}: {file} does not exist"));
            }
        }
        if line.trim_start().starts_with("docker compose")
            && !root.join("docker-compose.yml").is_file()
        {
            problems.push(format!("{at}: no docker-compose.yml"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(named >= 5, "only {named} files named");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_the_runbooks_curl_is_a_route() {
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let document = server.get("/api/v1/openapi.json").await;
    assert_eq!(document.status, StatusCode::OK, "{}", document.text);
    let templates: BTreeSet<String> = document.body["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    let mut asked = 0;
    let mut problems = Vec::new();
    for (at, line) in runbook_lines() {
        for path in curl_paths(&line) {
            asked += 1;
            if !is_route(&templates, &path) {
                problems.push(format!("{at}: {path} is no route"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(asked >= 5, "only {asked} paths asked");
}

#[test]
fn operations_links_each_runbook_once() {
    let operations = read(&repo_root().join("docs/operations.md"));
    for name in RUNBOOKS {
        let link = format!("(runbooks/{name}.md)");
        let count = operations.matches(&link).count();
        assert_eq!(count, 1, "docs/operations.md links {link} {count} times");
    }
}

//! The `Dockerfile`, `.dockerignore`, `docker-compose.yml` and `.env.example`; and, where a
//! container engine answers, the image itself.

use super::{read, reference, repo_root, yaml_documents};
use crate::helpers::{Server, TestDir, command, run};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The Dockerfile's instructions, continuation lines joined, comments dropped: (keyword,
/// arguments), one list per stage.
fn dockerfile_stages() -> Vec<Vec<(String, String)>> {
    let text = read("Dockerfile").replace("\\\n", " ");
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, args) = line.split_once(' ').unwrap_or((line, ""));
        let word = word.to_uppercase();
        if word == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("the Dockerfile starts with FROM")
            .push((word, args.trim().to_owned()));
    }
    stages
}

/// The runtime stage's `ENV` pairs: the environment every container of the image starts
/// with.
pub(super) fn image_env() -> Vec<(String, String)> {
    env_of(dockerfile_stages().last().expect("a stage"))
}

/// `KEY=value` pairs of a stage's `ENV` lines.
fn env_of(stage: &[(String, String)]) -> Vec<(String, String)> {
    stage
        .iter()
        .filter(|(w, _)| w == "ENV")
        .flat_map(|(_, args)| args.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The JSON-array arguments of an exec-form instruction (`CMD ["a", "b"]`).
fn exec_form(args: &str) -> Vec<String> {
    let start = args.find('[').expect("exec form");
    serde_json::from_str(&args[start..]).expect("a JSON array")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_builds_in_stages_and_runs_unprivileged_with_a_real_health_check() {
    let stages = dockerfile_stages();
    assert!(stages.len() >= 2, "a build stage and a runtime stage");
    assert!(
        stages[0]
            .iter()
            .any(|(w, a)| w == "RUN" && a.contains("cargo build --release")),
        "the first stage builds the release binary"
    );
    let runtime = stages.last().expect("a runtime stage");
    let has = |word: &str| {
        runtime
            .iter()
            .find(|(w, _)| w == word)
            .map(|(_, a)| a.as_str())
    };
    let user = has("USER").expect("a USER in the runtime stage");
    let name = user.split(':').next().unwrap_or_default();
    assert!(!["root", "0", ""].contains(&name), "USER {user} is root");
    let env = env_of(runtime);
    let var = |k: &str| {
        env.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(var("PLINTH_ENV"), Some("production"));
    let listen = var("PLINTH_LISTEN").expect("PLINTH_LISTEN in ENV");
    let port = listen.rsplit_once(':').expect("a port").1;
    assert_eq!(has("EXPOSE"), Some(port), "EXPOSE the listen port");
    let data = var("PLINTH_DATA_DIR").expect("PLINTH_DATA_DIR in ENV");
    assert!(
        has("VOLUME").is_some_and(|v| v.contains(data)),
        "a volume at {data}"
    );
    let dir = TestDir::sqlite();
    let known = reference(&dir).await.vars;
    for (key, _) in &env {
        assert!(known.contains(key), "ENV {key} is no setting");
    }

    // The health check is `plinth health` on a probe at the listen port; run the same
    // arguments against a real server on its own port.
    let check = exec_form(has("HEALTHCHECK").expect("a HEALTHCHECK"));
    assert!(
        check[0].ends_with("/plinth") && check[1] == "health",
        "{check:?}"
    );
    let url_at = check.iter().position(|a| a == "--url").expect("--url");
    let url = &check[url_at + 1];
    let prefix = format!("http://127.0.0.1:{port}/");
    let path = url
        .strip_prefix(&prefix)
        .expect("the probe on the listen port");
    let dir = TestDir::new();
    let server = Server::start(&dir).await;
    let mut args: Vec<String> = check[1..].to_vec();
    args[url_at] = server.url(&format!("/{path}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = run(&dir, &args, &[]).await;
    assert_eq!(done.status.code(), Some(0), "{args:?}: {}", done.stderr);
    drop(server);

    let ignored: BTreeSet<String> = read(".dockerignore")
        .lines()
        .map(|l| l.trim().trim_matches('/').to_owned())
        .collect();
    for must in ["target", ".git", ".env", "plinth-data"] {
        assert!(ignored.contains(must), ".dockerignore leaves out {must}");
    }
}

#[tokio::test]
async fn compose_runs_two_instances_on_postgres_with_secrets_from_an_uncommitted_file() {
    let docs = yaml_documents("docker-compose.yml");
    let [compose] = docs.as_slice() else {
        panic!("docker-compose.yml is one document");
    };
    let services = compose["services"].as_object().expect("services");
    assert!(
        services["postgres"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("postgres"))
    );
    let dir = TestDir::sqlite();
    let reference = reference(&dir).await;
    let (known, secrets) = (reference.vars, reference.secrets);
    let plinths: Vec<_> = services
        .iter()
        .filter(|(_, s)| s["image"] == "plinth:local")
        .collect();
    assert_eq!(plinths.len(), 2, "two Plinth instances");
    let mut host_ports = BTreeSet::new();
    for (name, s) in &plinths {
        assert_eq!(s["env_file"], ".env", "{name}");
        let env = s["environment"].as_object().expect("an environment map");
        let url = env["DATABASE_URL"].as_str().unwrap_or_default();
        assert!(
            url.starts_with("postgres://") && url.contains("@postgres:"),
            "{name}"
        );
        for (key, value) in env {
            assert!(known.contains(key), "{name}: {key} is no setting");
            let text = value.as_str().unwrap_or_default();
            assert!(
                !secrets.contains(key) || text.contains("${"),
                "{name}: the secret {key} is written out"
            );
        }
        let drain: u64 = env["PLINTH_DRAIN_SECONDS"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .expect("a drain delay");
        let grace: u64 = s["stop_grace_period"]
            .as_str()
            .and_then(|g| g.strip_suffix('s')?.parse().ok())
            .expect("stop_grace_period in seconds");
        assert!(
            grace > drain + super::IN_FLIGHT_SECONDS,
            "{name}: grace period"
        );
        for port in s["ports"].as_array().into_iter().flatten() {
            let host = port
                .as_str()
                .and_then(|p| p.split(':').next())
                .expect("host:container");
            assert!(
                host_ports.insert(host.to_owned()),
                "{name}: port {host} taken twice"
            );
        }
    }

    // Every variable the file takes from .env is in .env.example, with no value.
    let text = read("docker-compose.yml");
    let example = read(".env.example");
    let listed: Vec<(&str, &str)> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .collect();
    for (key, value) in &listed {
        assert!(value.trim().is_empty(), ".env.example gives {key} a value");
        assert!(
            known.contains(*key) || *key == "POSTGRES_PASSWORD",
            "{key} is no setting"
        );
    }
    for part in text.split("${").skip(1) {
        let var: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(
            listed.iter().any(|(k, _)| *k == var),
            "${{{var}}} not in .env.example"
        );
    }
    for secret in ["PLINTH_JWT_SECRET", "PLINTH_ENCRYPTION_KEYS"] {
        assert!(
            listed.iter().any(|(k, _)| *k == secret),
            "{secret} not in .env.example"
        );
    }
    let ignored = read(".gitignore");
    assert!(
        ignored.lines().any(|l| l.trim() == "/.env"),
        ".env must not be committed"
    );
}

/// Builds the image and waits for its own health check to pass, when a container engine
/// answers here; otherwise says why not and returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_builds_and_reports_healthy_where_docker_runs() {
    let info = std::process::Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !info.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no docker daemon answers `docker info` on this machine");
        return;
    }
    let tag = format!("plinth-it:{}", std::process::id());
    let root = repo_root();
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .current_dir(&root)
            .output()
            .expect("run docker");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (built, _, err) = docker(&["build", "-t", &tag, "."]);
    assert!(built, "docker build: {err}");
    let dir = TestDir::sqlite();
    let key = run(&dir, &["keys", "generate"], &[]).await.stdout;
    let keys = command(dir.path(), &["keys", "encryption"], &[])
        .output()
        .expect("keys");
    let keys = String::from_utf8_lossy(&keys.stdout)
        .trim()
        .replace('\n', ",");
    let (jwt, enc) = (
        format!("PLINTH_JWT_SECRET={}", key.trim()),
        format!("PLINTH_ENCRYPTION_KEYS={keys}"),
    );
    let (started, id, err) = docker(&["run", "-d", "--rm", "-e", &jwt, "-e", &enc, &tag]);
    assert!(started, "docker run: {err}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let health = loop {
        let (_, status, _) = docker(&["inspect", "-f", "{{.State.Health.Status}}", &id]);
        if status != "starting" || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let (_, logs, _) = docker(&["logs", &id]);
    let _ = docker(&["rm", "-f", &id]);
    let _ = docker(&["rmi", &tag]);
    assert_eq!(health, "healthy", "{logs}");
}

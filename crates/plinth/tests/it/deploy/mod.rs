//! The deployment files hold together with the binary they ship: the Kubernetes manifests
//! in `deploy/k8s/` (here), `docker-compose.yml` and the `Dockerfile` (`container`), and
//! `plinth health`, the image's health check (`health`).
//!
//! The manifests are read as YAML; what they name is checked against the real thing: the
//! probes are asked of a server started with the ConfigMap's `plinth.toml`, environment
//! variables against `plinth config --reference`, secret keys against the runbook's
//! `kubectl create secret` command.

mod container;
mod health;
mod labels;

use crate::helpers::{ENCRYPTION_KEYS, Server, TestDir, run_ok};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// How long requests in flight are given after the listener closes (docs/operations.md,
/// "Graceful shutdown"): a pod's grace period must cover the drain delay plus this.
const IN_FLIGHT_SECONDS: u64 = 30;

/// The runbook whose `kubectl create secret` command documents the Secret's keys.
const SECRET_RUNBOOK: &str = "docs/runbooks/deploy.md";

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

pub(crate) fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every document of a YAML file, as JSON values (anchors and aliases resolved).
pub(crate) fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

/// One manifest: its file and the document.
struct Manifest {
    file: String,
    doc: Value,
}

impl Manifest {
    fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.doc["metadata"]["name"].as_str().unwrap_or_default()
    }

    fn at(&self) -> String {
        format!("{} {}/{}", self.file, self.kind(), self.name())
    }

    /// The pod template's labels of a Deployment.
    fn pod_labels(&self) -> Labels {
        labels(&self.doc["spec"]["template"]["metadata"]["labels"])
    }

    /// The pod template's containers of a Deployment.
    fn containers(&self) -> &[Value] {
        self.doc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }
}

type Labels = BTreeMap<String, String>;

fn labels(map: &Value) -> Labels {
    map.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a selector picks pods with these labels (an empty selector picks none here).
fn selects(selector: &Labels, pod: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

/// Every document of every `deploy/k8s/*.yaml`.
fn manifests() -> Vec<Manifest> {
    let dir = repo_root().join("deploy/k8s");
    let mut files: Vec<String> = fs::read_dir(&dir)
        .expect("deploy/k8s exists")
        .map(|e| e.expect("a deploy/k8s entry").file_name())
        .filter_map(|n| n.to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let file = format!("deploy/k8s/{f}");
            yaml_documents(&file).into_iter().map(move |doc| Manifest {
                file: file.clone(),
                doc,
            })
        })
        .collect()
}

fn of_kind<'a>(all: &'a [Manifest], kind: &str) -> Vec<&'a Manifest> {
    all.iter().filter(|m| m.kind() == kind).collect()
}

/// The ConfigMap's `plinth.toml`, parsed.
fn config_toml(all: &[Manifest]) -> toml::Table {
    let maps = of_kind(all, "ConfigMap");
    let [map] = maps.as_slice() else {
        panic!("one ConfigMap holds plinth.toml, found {}", maps.len());
    };
    let text = map.doc["data"]["plinth.toml"]
        .as_str()
        .expect("the ConfigMap has data.plinth.toml");
    text.parse().expect("the ConfigMap's plinth.toml is TOML")
}

/// The settings as `plinth config --reference` lists them.
pub(crate) struct Reference {
    /// Every environment variable.
    pub(crate) vars: BTreeSet<String>,
    /// Those holding secrets.
    pub(crate) secrets: BTreeSet<String>,
    /// Variable → the file key it overrides (`PLINTH_DRAIN_SECONDS` → `drain_seconds`).
    pub(crate) file_keys: BTreeMap<String, String>,
}

pub(crate) async fn reference(dir: &TestDir) -> Reference {
    let text = run_ok(dir, &["config", "--reference"], &[]).await.stdout;
    let mut reference = Reference {
        vars: BTreeSet::new(),
        secrets: BTreeSet::new(),
        file_keys: BTreeMap::new(),
    };
    let code = |cell: Option<&&str>| {
        cell.and_then(|c| c.strip_prefix('`')?.strip_suffix('`'))
            .map(str::to_owned)
    };
    for row in text.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(var) = code(cells.get(2)) else {
            continue;
        };
        if let Some(key) = code(cells.get(1)) {
            reference.file_keys.insert(var.clone(), key);
        }
        if cells
            .get(5)
            .is_some_and(|allowed| allowed.contains("secret"))
        {
            reference.secrets.insert(var.clone());
        }
        reference.vars.insert(var);
    }
    assert!(reference.vars.contains("DATABASE_URL"));
    assert!(reference.secrets.contains("PLINTH_JWT_SECRET"));
    assert_eq!(reference.file_keys["PLINTH_DRAIN_SECONDS"], "drain_seconds");
    reference
}

/// A container's environment as the process sees it: the image's `ENV`, then the
/// container's own `env` values over it.
fn effective_env(container: &Value) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = container::image_env().into_iter().collect();
    for var in container["env"].as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (var["name"].as_str(), var["value"].as_str()) {
            env.insert(name.to_owned(), value.to_owned());
        }
    }
    env
}

/// A setting's value: from the environment when set there, else from the file.
fn setting(
    env: &BTreeMap<String, String>,
    config: &toml::Table,
    var: &str,
    key: &str,
) -> Option<String> {
    env.get(var).cloned().or_else(|| {
        config.get(key).map(|v| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    })
}

/// Whether a dotted key (`http.keep_alive_timeout_seconds`) is set in the file.
fn file_has(config: &toml::Table, key: &str) -> bool {
    let mut table = config;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        match table.get(part) {
            None => return false,
            Some(_) if parts.peek().is_none() => return true,
            Some(toml::Value::Table(inner)) => table = inner,
            Some(_) => return false,
        }
    }
    false
}

/// `(secret name, key)` pairs the runbook's `kubectl create secret generic NAME` commands
/// create (`--from-file=KEY=…`, `--from-literal=KEY=…`).
pub(crate) fn documented_secret_keys() -> BTreeSet<(String, String)> {
    let text = read(SECRET_RUNBOOK).replace("\\\n", " ");
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("kubectl create secret generic ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let name = words.next().expect("a secret name").to_owned();
        for word in words {
            let from = ["--from-file=", "--from-literal="]
                .iter()
                .find_map(|p| word.strip_prefix(p));
            if let Some((key, _)) = from.and_then(|f| f.split_once('=')) {
                keys.insert((name.clone(), key.to_owned()));
            }
        }
    }
    assert!(!keys.is_empty(), "{SECRET_RUNBOOK} creates no secret");
    keys
}

#[test]
fn every_manifest_parses_with_a_kind_and_a_name() {
    let all = manifests();
    let kinds: BTreeSet<&str> = all.iter().map(Manifest::kind).collect();
    for kind in ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget"] {
        assert!(kinds.contains(kind), "no {kind} in deploy/k8s: {kinds:?}");
    }
    for m in &all {
        assert!(m.doc["apiVersion"].is_string(), "{}: no apiVersion", m.at());
        assert!(!m.name().is_empty(), "{}: no metadata.name", m.at());
    }
}

#[tokio::test]
async fn no_secret_value_is_inlined_and_every_secret_key_is_documented() {
    let all = manifests();
    let dir = TestDir::sqlite();
    let reference = reference(&dir).await;
    let (known, secret_vars) = (&reference.vars, &reference.secrets);
    let documented = documented_secret_keys();
    let mut problems = Vec::new();
    for m in &all {
        if m.kind() == "Secret" && (!m.doc["data"].is_null() || !m.doc["stringData"].is_null()) {
            problems.push(format!("{}: a Secret with values", m.at()));
        }
    }
    for d in of_kind(&all, "Deployment") {
        for c in d.containers() {
            for var in c["env"].as_array().into_iter().flatten() {
                let name = var["name"].as_str().unwrap_or_default();
                if !known.contains(name) {
                    problems.push(format!("{}: {name} is no setting", d.at()));
                }
                if secret_vars.contains(name) && !var["value"].is_null() {
                    problems.push(format!("{}: the secret {name} is inlined", d.at()));
                }
                let r = &var["valueFrom"]["secretKeyRef"];
                if !r.is_null() {
                    let pair = (r["name"].as_str(), r["key"].as_str());
                    let pair = (
                        pair.0.unwrap_or("").to_owned(),
                        pair.1.unwrap_or("").to_owned(),
                    );
                    if !documented.contains(&pair) {
                        problems.push(format!("{}: {pair:?} not in {SECRET_RUNBOOK}", d.at()));
                    }
                }
            }
        }
        for v in d.doc["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(secret) = v["secret"]["secretName"].as_str() else {
                continue;
            };
            let items = v["secret"]["items"].as_array();
            assert!(items.is_some(), "{}: mount named secret keys only", d.at());
            for item in items.into_iter().flatten() {
                let pair = (
                    secret.to_owned(),
                    item["key"].as_str().unwrap_or("").to_owned(),
                );
                if !documented.contains(&pair) {
                    problems.push(format!("{}: {pair:?} not in {SECRET_RUNBOOK}", d.at()));
                }
            }
        }
    }
    let config = read("deploy/k8s/configmap.yaml");
    for var in secret_vars {
        if config.contains(var.as_str()) {
            problems.push(format!("configmap.yaml names the secret {var}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The probes' paths answer 200 on a server started as a pod is, with the ConfigMap's
/// `plinth.toml` and the environment of the image and the Deployment (production mode,
/// keys as the Secret would give them), on the engine of the run; their ports are the
/// container port, which is the one the server listens on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_ask_real_routes_on_the_configured_port() {
    let all = manifests();
    let config = config_toml(&all);
    let mut paths = BTreeSet::new();
    let mut pod_env = BTreeMap::new();
    for d in of_kind(&all, "Deployment") {
        for c in d.containers() {
            let env = effective_env(c);
            let listen = setting(&env, &config, "PLINTH_LISTEN", "listen");
            let listen = listen.unwrap_or_else(|| panic!("{}: no listen address", d.at()));
            let port: u64 = listen
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or_else(|| panic!("{}: listen {listen} has no port", d.at()));
            pod_env = env;
            let ports: BTreeMap<&str, u64> = c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p["name"].as_str()?, p["containerPort"].as_u64()?)))
                .collect();
            assert_eq!(
                ports.values().copied().collect::<Vec<_>>(),
                [port],
                "{}",
                d.at()
            );
            for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                let get = &c[probe]["httpGet"];
                let path = get["path"].as_str();
                let path = path.unwrap_or_else(|| panic!("{}: no {probe} path", d.at()));
                let probe_port = match &get["port"] {
                    Value::String(name) => ports.get(name.as_str()).copied(),
                    other => other.as_u64(),
                };
                assert_eq!(probe_port, Some(port), "{}: {probe}'s port", d.at());
                paths.insert((probe, path.to_owned()));
            }
        }
    }
    // Readiness must be the probe that turns 503 while draining; liveness must not.
    for (probe, path) in &paths {
        match *probe {
            "readinessProbe" => assert_eq!(path, "/readyz"),
            "livenessProbe" => assert_eq!(path, "/healthz"),
            _ => {}
        }
    }

    // The harness's --listen and --data-dir flags win over the pod's values.
    let dir = TestDir::new();
    let text = toml::to_string(&config).expect("plinth.toml back to text");
    dir.write_config(&text);
    let key = run_ok(&dir, &["keys", "generate"], &[]).await.stdout;
    let mut envs: Vec<(&str, &str)> = pod_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    envs.extend([
        ("PLINTH_JWT_SECRET", key.trim()),
        ("PLINTH_ENCRYPTION_KEYS", ENCRYPTION_KEYS),
    ]);
    let server = Server::start_with(&dir, &[], &envs).await;
    assert!(
        server.proc.stdout().contains("\"Production\""),
        "a pod runs in production mode\n{}",
        server.proc.describe()
    );
    for (probe, path) in &paths {
        let r = server.send(server.guest().get(server.url(path))).await;
        assert_eq!(r.status, StatusCode::OK, "{probe} {path}: {}", r.text);
    }
    let r = server
        .send(server.guest().get(server.url("/readyz/")))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a path that is no probe");
}

/// The environment wins over the file: a ConfigMap key that the image's or the
/// Deployment's environment also sets would be silently ignored.
#[tokio::test]
async fn the_configmap_sets_nothing_the_environment_overrides() {
    let all = manifests();
    let config = config_toml(&all);
    let reference = reference(&TestDir::sqlite()).await;
    for d in of_kind(&all, "Deployment") {
        for c in d.containers() {
            for var in effective_env(c).keys() {
                let key = reference.file_keys.get(var);
                assert!(
                    !key.is_some_and(|k| file_has(&config, k)),
                    "{}: {var} overrides {key:?} of the ConfigMap's plinth.toml",
                    d.at()
                );
            }
        }
    }
    assert!(file_has(&config, "http.keep_alive_timeout_seconds"));
    assert!(!file_has(&config, "http.request_timeout_seconds"));
}

#[test]
fn rollouts_keep_every_replica_and_outlast_the_drain() {
    let all = manifests();
    let config = config_toml(&all);
    for d in of_kind(&all, "Deployment") {
        let env = effective_env(&d.containers()[0]);
        let drain = setting(&env, &config, "PLINTH_DRAIN_SECONDS", "drain_seconds");
        let drain: u64 = drain.and_then(|d| d.parse().ok()).unwrap_or(0);
        assert!(
            drain > 0,
            "{}: a drain delay lets the Service stop sending first",
            d.at()
        );
        let spec = &d.doc["spec"];
        assert_eq!(spec["strategy"]["type"], "RollingUpdate", "{}", d.at());
        assert_eq!(
            spec["strategy"]["rollingUpdate"]["maxUnavailable"],
            0,
            "{}",
            d.at()
        );
        let pod = &spec["template"]["spec"];
        let grace = pod["terminationGracePeriodSeconds"].as_u64();
        assert!(
            grace.is_some_and(|g| g > drain + IN_FLIGHT_SECONDS),
            "{}: terminationGracePeriodSeconds {grace:?} must exceed the drain {drain} + \
             {IN_FLIGHT_SECONDS}",
            d.at()
        );
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{}", d.at());
        for c in d.containers() {
            for (bound, what) in [("requests", "cpu"), ("requests", "memory")]
                .into_iter()
                .chain([("limits", "memory"), ("limits", "cpu")])
            {
                assert!(
                    c["resources"][bound][what].is_string(),
                    "{}: no resources.{bound}.{what}",
                    d.at()
                );
            }
            let mounts_config = c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["mountPath"] == "/etc/plinth");
            assert!(mounts_config, "{}: plinth.toml at /etc/plinth", d.at());
        }
    }
}

//! A PostgreSQL server of the test's own that accepts TLS connections only: started from
//! the machine's PostgreSQL binaries (`initdb`, `pg_ctl`) in a temporary directory, on a
//! free loopback port, with a certificate for `localhost` signed by a test CA made at run
//! time, `ssl = on`, and `hostssl`-only trust authentication for `postgres`. Stopped and
//! removed on `Drop`.
//!
//! PostgreSQL refuses to run as root: under root the server runs as the `postgres` user
//! (`runuser`), which then owns the directory. Without the binaries the test is skipped
//! with a visible note, unless skips are forbidden ([`crate::postgres_required`]).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where to look for the binaries besides `$PLINTH_PG_BIN`: Debian's layout, newest first.
const PG_ROOT: &str = "/usr/lib/postgresql";

/// Names a directory holding `initdb` and `pg_ctl`, overriding the search of [`PG_ROOT`].
pub const PG_BIN_ENV: &str = "PLINTH_TEST_PG_BIN";

/// A test certificate authority.
#[derive(Debug)]
pub struct TestCa {
    /// Its certificate, PEM: what a client trusts.
    pub cert_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA with a new key.
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("Plinth test CA {}", uuid::Uuid::now_v7().simple()),
        );
        let key = KeyPair::generate().expect("a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("the CA certificate");
        Self {
            cert_pem: issuer.pem(),
            issuer,
        }
    }

    /// A certificate for `names` signed by this CA, and its key, both PEM.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).expect("certificate parameters");
        let key = KeyPair::generate().expect("a key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A running TLS-only PostgreSQL server.
#[derive(Debug)]
pub struct TlsPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    /// The CA that signed the server's certificate (for `localhost` only).
    pub ca: TestCa,
}

impl TlsPostgres {
    /// Starts a server for `test`; `None`, after a note, when the machine has no PostgreSQL
    /// binaries and skipping is allowed.
    ///
    /// # Panics
    ///
    /// When the binaries are missing and skips are forbidden, or the server does not start.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = binaries() else {
            assert!(
                !crate::postgres_required(),
                "{test} needs the PostgreSQL server binaries (initdb, pg_ctl), and skipping is \
                 not allowed here: install them (postgresql) or set {PG_BIN_ENV}"
            );
            crate::note(&format!(
                "SKIPPED {test}: no PostgreSQL server binaries (initdb, pg_ctl) under {PG_ROOT} \
                 or in {PG_BIN_ENV}"
            ));
            return None;
        };
        let as_postgres = run(Command::new("id").arg("-u")).trim() == "0";
        let dir = tempfile::tempdir().expect("a temporary directory");
        let data = dir.path().join("data");
        if as_postgres {
            own(dir.path());
        }
        let server = Self {
            dir,
            bin,
            as_postgres,
            port: free_port(),
            ca: TestCa::new(),
        };
        let data_arg = data.display().to_string();
        server.pg(
            "initdb",
            &[
                "-D",
                &data_arg,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        let (cert, key) = server.ca.issue(&["localhost"]);
        write(&data.join("server.crt"), &cert, 0o644, as_postgres);
        write(&data.join("server.key"), &key, 0o600, as_postgres);
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             fsync = off\nmax_connections = 40\nshared_buffers = 16MB\n",
            server.port,
            server.dir.path().display()
        );
        append(&data.join("postgresql.conf"), &conf);
        write(
            &data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            0o600,
            as_postgres,
        );
        let log = server.dir.path().join("postgres.log").display().to_string();
        let started = server.pg_output(
            "pg_ctl",
            &["-D", &data_arg, "-l", &log, "-w", "-t", "60", "start"],
        );
        assert!(
            started.status.success(),
            "start the test PostgreSQL server: {}{}\n{}",
            String::from_utf8_lossy(&started.stdout),
            String::from_utf8_lossy(&started.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(server)
    }

    /// `postgres://postgres@HOST:PORT/postgres`, with `params` as its query when not empty.
    pub fn url(&self, host: &str, params: &str) -> String {
        let base = format!("postgres://postgres@{host}:{}/postgres", self.port);
        if params.is_empty() {
            base
        } else {
            format!("{base}?{params}")
        }
    }

    /// `postgres://postgres@/postgres?host=DIR&port=PORT`: the server's Unix socket (which
    /// offers no TLS), with `params` added to the query when not empty.
    pub fn socket_url(&self, params: &str) -> String {
        let base = format!(
            "postgres://postgres@/postgres?host={}&port={}",
            self.dir.path().display(),
            self.port
        );
        if params.is_empty() {
            base
        } else {
            format!("{base}&{params}")
        }
    }

    /// Connection settings for the server's local socket (no TLS there): to look at what
    /// the code under test did.
    pub fn socket_config(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.path().display(),
            self.port
        )
    }

    /// Writes `pem` into the server's directory as `name` (a CA file for `sslrootcert`).
    pub fn file(&self, name: &str, pem: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, pem).expect("write the file");
        path
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let out = self.pg_output(tool, args);
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_output(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let _ = self.pg_output("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// The directory of `initdb` and `pg_ctl`: `$PLINTH_PG_BIN`, else the newest version under
/// [`PG_ROOT`].
fn binaries() -> Option<PathBuf> {
    let usable = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(PG_BIN_ENV).map(PathBuf::from) {
        return usable(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(PG_ROOT)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| usable(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn run(command: &mut Command) -> String {
    let out = command.output().expect("run a command");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Gives `path` to the `postgres` user.
fn own(path: &Path) {
    let id = |flag: &str| -> u32 {
        run(Command::new("id").args([flag, "postgres"]))
            .trim()
            .parse()
            .expect("the postgres user exists (PostgreSQL refuses to run as root)")
    };
    std::os::unix::fs::chown(path, Some(id("-u")), Some(id("-g"))).expect("chown");
}

fn write(path: &Path, text: &str, mode: u32, as_postgres: bool) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write the file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    if as_postgres {
        own(path);
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the file");
    file.write_all(text.as_bytes()).expect("append");
}

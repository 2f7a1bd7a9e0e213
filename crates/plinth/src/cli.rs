//! The command line: `plinth <command> [options]`.

use crate::config::{flag_help, setting};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Plinth: declare your data models, get a REST API with validation, pagination, optimistic
/// concurrency, idempotent creates, users, roles and API keys, in one binary over an
/// embedded SQLite database or a PostgreSQL database shared by several instances.
///
/// Quick start: `plinth serve`, then `curl localhost:8080/api/v1/resource`.
#[derive(Debug, Parser)]
#[command(
    name = "plinth",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// Parses the command line, exiting with a usage error (status 2) on a bad one. Beyond
    /// clap's checks: the bare form's `--dry-run` with a subcommand of `plinth migrate`,
    /// which would otherwise run it for real. (clap's `args_conflicts_with_subcommands`
    /// would refuse `plinth migrate --data-dir D status` too: the global options count.)
    pub(crate) fn parse_checked() -> Self {
        let mut cmd = Self::command();
        let matches = cmd.get_matches_mut();
        if let Some(migrate) = matches.subcommand_matches("migrate")
            && let Some(action) = migrate.subcommand_name()
            && migrate.get_flag("dry_run")
        {
            let message = format!(
                "'--dry-run' cannot be used with the subcommand '{action}': it belongs to bare \
                 `plinth migrate`; `plinth migrate plan` shows what `up` would do, changing nothing"
            );
            if let Some(cmd) = cmd.find_subcommand_mut("migrate") {
                cmd.error(ErrorKind::ArgumentConflict, &message).exit();
            }
            cmd.error(ErrorKind::ArgumentConflict, message).exit();
        }
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
    }
}

/// Options every command takes. Each overrides the same setting from the environment and
/// from the config file.
#[derive(Debug, Args, Default)]
pub(crate) struct GlobalArgs {
    #[arg(long, global = true, value_name = "FILE", help = flag_help(&setting::config))]
    pub(crate) config: Option<PathBuf>,
    #[arg(long, global = true, value_name = "DIR", help = flag_help(&setting::data_dir))]
    pub(crate) data_dir: Option<PathBuf>,
    #[arg(long, global = true, value_name = "FILTER", help = flag_help(&setting::log_level))]
    pub(crate) log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server: migrate the schema to the declared models, then serve HTTP until
    /// SIGTERM or Ctrl-C, draining in-flight requests before exiting.
    Serve(ServeArgs),
    /// Show or apply schema changes without serving: Plinth's own tables (numbered
    /// versions) and the declared models. Bare `plinth migrate` is `plinth migrate up`.
    Migrate(MigrateArgs),
    /// Print the effective configuration (defaults, file, environment and flags merged;
    /// secrets masked).
    Config(ConfigArgs),
    /// Write every model's records and every user (with password hashes) as JSON lines, to
    /// move a deployment to another database (e.g. SQLite → PostgreSQL). Reads only, at the
    /// models recorded in the database. Treat the file as a secret. API keys and sessions
    /// are not exported.
    Export(ExportArgs),
    /// Read an export into the configured database, which must be empty, migrating it to the
    /// declared models: one transaction, so a failed import changes nothing and can be
    /// retried. Refused while a server uses the database.
    Import(ImportArgs),
    /// Write an exact, consistent copy of the database (every Plinth table, the audit trail
    /// included, sealed values still sealed) to FILE, with its SHA-256 in FILE.sha256. Works
    /// beside running servers. The encryption keys are not in it: back them up separately.
    Backup(BackupArgs),
    /// Replace the configured database's contents with a backup, after checking its
    /// checksum, format and schema version. Refused while a server uses the database, and
    /// when the database holds data unless --force.
    Restore(RestoreArgs),
    /// Manage accounts: `plinth user create --email ada@example.com --role admin`.
    #[command(subcommand)]
    User(UserCommand),
    /// Check or export the audit trail: `plinth audit verify`, `plinth audit export`. Both
    /// only read, and work beside a running server.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage keys: `plinth keys generate` prints a new token-signing key, `plinth keys
    /// encryption` a new set of encryption keys; `plinth keys rotate` and `plinth keys
    /// retire ID` rotate the encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Load a server with requests on loopback and print requests/s and p50/p99 latency for
    /// get-by-id, list, create, update and a mix; or, with `--scale`, lists, memory and a
    /// restart as the table grows.
    // Boxed: its options outweigh every other command's.
    Bench(Box<BenchArgs>),
    /// Ask a server's probe over plain HTTP and exit 0 when it answers 200, 1 otherwise: a
    /// health check for images with no curl (`HEALTHCHECK CMD ["plinth", "health"]`).
    Health(HealthArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[arg(long, value_name = "ADDR", help = flag_help(&setting::listen))]
    pub(crate) listen: Option<SocketAddr>,
    #[arg(long, value_name = "FILE", help = flag_help(&setting::tls_cert_file))]
    pub(crate) tls_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE", help = flag_help(&setting::tls_key_file))]
    pub(crate) tls_key: Option<PathBuf>,
    /// Apply schema changes that lose data (dropped models or fields, changed types).
    /// Take a backup first.
    #[arg(long)]
    pub(crate) allow_destructive: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(subcommand)]
    pub(crate) action: Option<MigrateAction>,
    /// Print the steps without applying them.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Apply schema changes that lose data (dropped models or fields, changed types;
    /// with `down`, versions whose rollback drops data).
    #[arg(long, global = true)]
    pub(crate) allow_destructive: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MigrateAction {
    /// Print the SQL of the pending versions of Plinth's own tables and the steps to the
    /// declared models, changing nothing.
    Plan,
    /// Print each version of Plinth's own tables (applied when, or pending), the database's
    /// version and this binary's.
    Status,
    /// Apply the pending versions of Plinth's own tables, then migrate to the declared
    /// models (what a server does at start).
    Up,
    /// Roll Plinth's own tables back to version N, for an older binary (this one would
    /// apply them again at its next start). Refused while a server runs.
    Down(DownArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DownArgs {
    /// The version to roll back to.
    #[arg(long, value_name = "N")]
    pub(crate) to: u32,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Print the reference of every setting instead (file key, environment variable, flag,
    /// default, allowed values), as a Markdown table.
    #[arg(long)]
    pub(crate) reference: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Server to load, e.g. http://127.0.0.1:8080 (loopback only), with the credential in
    /// PLINTH_BENCH_TOKEN (an access token or API key that may create). Without it, an
    /// embedded server with a temporary database and its own admin is started and seeded.
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Requests per workload.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Records to seed before measuring.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) seed: u64,
    /// Write the seeded record ids here, one per line (the `IDS_FILE` the peer benchmark
    /// scripts read). With `--requests 0` and `--url`, only seeds.
    #[arg(long, value_name = "FILE")]
    pub(crate) ids_file: Option<std::path::PathBuf>,
    /// Also run the fan-out workload, after the others (alone with `--requests 0`):
    /// subscribers on the change feed of `resource`, creates at a fixed rate, and each
    /// create's delivery latency to every subscriber.
    #[arg(long)]
    pub(crate) fanout: bool,
    /// Fan-out: open event streams, each waiting for `ready` before the writes start.
    #[arg(long, requires = "fanout", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) subscribers: u32,
    /// Fan-out: creates sent per second, open loop (on schedule, answered or not).
    #[arg(long, requires = "fanout", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) write_rate: u32,
    /// Fan-out: seconds of writes. Fixed rate (`--rate`): seconds of each workload, or of
    /// the soak.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) duration: u64,
    /// Also measure get_one against the ceiling probe: a bare axum handler reading one row
    /// by primary key through rusqlite, seeded with as many records, in the same process
    /// and run; prints its row and get_one's share of it.
    #[arg(long)]
    pub(crate) ceiling: bool,
    /// Load the server with every feature a write pays for on: the embedded server serves
    /// the bench's own configuration (`resource` with a sealed `pii` field and an indexed
    /// one, metrics on; unless `--config` names another), creates fill those fields, and
    /// one live subscriber holds the change feed open for the whole run. With `--url`, the
    /// server must declare those fields.
    #[arg(long)]
    pub(crate) all_features: bool,
    /// Serve the ceiling probe alone on ADDR (loopback), seeded with `--seed` rows, until
    /// interrupted, so another load generator can measure it (`scripts/peer-bench.sh`
    /// does); `--ids-file` writes its ids.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["url", "rate", "fanout", "bulk", "ceiling"])]
    pub(crate) serve_ceiling: Option<std::net::SocketAddr>,
    /// Fixed-rate mode instead of the closed loop: each workload's requests are sent open
    /// loop, the i-th at start + i/RATE answered or not, for `--duration` seconds; latency
    /// runs from the scheduled send time. `--requests` and `--concurrency` are not used.
    #[arg(long, value_name = "REQ_PER_S", conflicts_with_all = ["fanout", "bulk", "ceiling"],
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) rate: Option<u32>,
    /// Fixed rate: the workloads to run, comma-separated, from get_one, list, create, mixed
    /// (70 % get_one, 20 % list, 10 % create) and read_write (90 % get_one, 10 % create).
    #[arg(
        long,
        requires = "rate",
        conflicts_with = "soak",
        value_delimiter = ',',
        default_value = "get_one,list,create,mixed,read_write"
    )]
    pub(crate) workloads: Vec<String>,
    /// Fixed rate: requests in flight at most; a request due beyond it is not sent and
    /// counts as an `overflow` error (never delayed).
    #[arg(long, requires = "rate", default_value_t = 2048,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) max_in_flight: u32,
    /// Soak: `read_write` at `--rate` for `--duration` seconds, latency per minute and the
    /// server's RSS sampled from its /metrics; exits non-zero above `--max-error-rate` or
    /// `--max-rss-growth`.
    #[arg(long, requires = "rate")]
    pub(crate) soak: bool,
    /// Soak: seconds of warm-up; RSS growth is measured from the first sample after it
    /// (default: 20 % of `--duration`).
    #[arg(long, value_name = "SECONDS", requires = "soak")]
    pub(crate) warmup: Option<u64>,
    /// Soak: seconds between RSS samples.
    #[arg(long, value_name = "SECONDS", requires = "soak", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) rss_every: u64,
    /// Soak: write the RSS samples here as CSV (`seconds,rss_bytes`).
    #[arg(long, value_name = "FILE", requires = "soak")]
    pub(crate) rss_csv: Option<std::path::PathBuf>,
    /// With `--soak`: write the run's latency distribution (reads and writes, log-spaced
    /// buckets) to FILE as CSV (`side,upto_ms,count`).
    #[arg(long, value_name = "FILE", requires = "soak")]
    pub(crate) latency_csv: Option<std::path::PathBuf>,
    /// Soak: the highest error rate that passes, in percent of requests scheduled (non-2xx,
    /// transport errors and overflow).
    #[arg(long, value_name = "PERCENT", requires = "soak", default_value_t = 0.1)]
    pub(crate) max_error_rate: f64,
    /// Soak: the highest RSS growth after warm-up that passes, in percent.
    #[arg(
        long,
        value_name = "PERCENT",
        requires = "soak",
        default_value_t = 10.0
    )]
    pub(crate) max_rss_growth: f64,
    /// Also run the bulk workload, last (alone with `--requests 0`): `--bulk-records`
    /// records of `resource` inserted through batch writes of `--batch-size` creates,
    /// `--bulk-concurrency` batches in flight; prints the total time and records/s.
    #[arg(long)]
    pub(crate) bulk: bool,
    /// Bulk: records inserted in all.
    #[arg(long, requires = "bulk", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(crate) bulk_records: u64,
    /// Bulk: creates per batch.
    #[arg(long, requires = "bulk", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) batch_size: u64,
    /// Scale mode: the server in a process of its own (`plinth serve` on a temporary data
    /// directory, with the bench's configuration), `resource` seeded to N records through
    /// batch writes; at each checkpoint the server's RSS and, for three lists, the first page
    /// and the page after 90 % of the records; then the query plans and the cold start of a
    /// restart on the full database. With DATABASE_URL=postgres://…, on that database, which
    /// must hold no records.
    #[arg(long, value_name = "N",
          conflicts_with_all = ["url", "rate", "fanout", "bulk", "ceiling", "all_features", "serve_ceiling"],
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(crate) scale: Option<u64>,
    /// Scale: the record counts measured at, comma-separated (default: 10000, 100000, …
    /// below N; N always ends the run).
    #[arg(long, value_name = "N,…", requires = "scale", value_delimiter = ',')]
    pub(crate) checkpoints: Vec<u64>,
    /// Scale: sequential requests timed per page, after one not timed.
    #[arg(long, requires = "scale", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) samples: u32,
    /// Bulk: batches in flight at once (each is one transaction: a few keep the database
    /// busy without queueing the rest past their timeouts).
    #[arg(long, requires = "bulk", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) bulk_concurrency: u32,
}

#[derive(Debug, Args)]
pub(crate) struct HealthArgs {
    /// The probe to ask: an `http://` URL (no HTTPS), such as http://127.0.0.1:8080/readyz.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080/healthz"
    )]
    pub(crate) url: String,
    /// Give up after this many seconds (connecting, sending and reading together).
    #[arg(long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) timeout: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The file to write (created with mode 0600); `-` for standard output.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) output: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The export to read; `-` for standard input.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) input: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// The backup to write (created with mode 0600; neither it nor FILE.sha256 may exist).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup to read; its checksum is read from FILE.sha256.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Replace a database that holds data (accounts, records, audit entries); what it held
    /// is printed.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create an account. The password is read from a prompt (typed twice, not echoed), or
    /// from standard input with --password-stdin; never from an argument.
    Create(UserCreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct UserCreateArgs {
    /// The account's email address (unique, case-insensitively).
    #[arg(long)]
    pub(crate) email: String,
    /// `admin` or `user`.
    #[arg(long, default_value = "user")]
    pub(crate) role: String,
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    pub(crate) password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk the hash chain from its newest checkpoint and print how many entries it checked;
    /// exit status 2 naming the first entry (or the checkpoint) that breaks it.
    Verify,
    /// Write audit entries, oldest first, as JSON lines in the shape the API answers (for a
    /// SIEM). Treat the output as sensitive: entries hold the values written.
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AuditExportArgs {
    /// Only entries from this one on: a `seq` (to resume, the last one received plus 1), or
    /// an RFC 3339 time such as 2026-01-02T03:04:05Z.
    #[arg(long, value_name = "SEQ|TIME")]
    pub(crate) since: Option<String>,
    /// The file to write (created with mode 0600; it must not exist); `-` or unset for
    /// standard output.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Print a new random token-signing key (48 bytes, base64) for PLINTH_JWT_SECRET or a
    /// key file: `plinth keys generate > jwt.key`.
    Generate,
    /// Print a new set of encryption keys (a blind-index key and one sealing key) for
    /// PLINTH_ENCRYPTION_KEYS or a key file: `plinth keys encryption > encryption.keys`.
    Encryption,
    /// Add a sealing key to the key file (it seals new values from then on), then seal
    /// every stored personal value again under it, 500 rows per transaction, while servers
    /// run. With keys from PLINTH_ENCRYPTION_KEYS, only --reseal-only.
    Rotate(RotateArgs),
    /// Remove a sealing key from the key file once no stored value is sealed under it
    /// (with keys from PLINTH_ENCRYPTION_KEYS, only the check).
    Retire(RetireArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Add no key: seal again under the active key (the last one listed) every value
    /// sealed under another.
    #[arg(long)]
    pub(crate) reseal_only: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RetireArgs {
    /// The id of the key to retire (e.g. `k1`).
    #[arg(value_name = "ID")]
    pub(crate) id: String,
}

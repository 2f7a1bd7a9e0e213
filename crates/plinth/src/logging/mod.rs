//! JSON-lines logs through `tracing`, filtered by `LOG_LEVEL`: on stdout, or for `plinth
//! serve` with `log.dir` in a file of the day ([`file`]) behind a non-blocking writer.

mod file;

use anyhow::Context;
use std::path::PathBuf;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Directives that hold the PostgreSQL driver at `info` where `filter` asks for more: at
/// `debug` it logs every statement with its parameters (emails, pii values, password
/// hashes, token digests), which must never reach a log. A later directive for the same
/// target replaces the earlier one.
fn driver_capped(filter: &str) -> Vec<String> {
    filter
        .split(',')
        .filter_map(|d| {
            let d = d.trim();
            let (target, level) = d.rsplit_once('=').unwrap_or((d, "trace"));
            let target = target.split('[').next().unwrap_or(target);
            let verbose = matches!(level.to_ascii_lowercase().as_str(), "debug" | "trace");
            (target.starts_with("tokio_postgres") && verbose).then(|| format!("{target}=info"))
        })
        .collect()
}

/// Where `plinth serve` logs, and what.
#[derive(Debug, Clone)]
pub(crate) struct ServeLogs {
    /// The `LOG_LEVEL` filter.
    pub(crate) filter: String,
    /// One access line per request, or none (`log.access`).
    pub(crate) access: bool,
    /// The log directory (`log.dir`); stdout when `None`.
    pub(crate) dir: Option<PathBuf>,
    /// Days of log files kept (`log.retention_days`); 0 keeps all.
    pub(crate) retention_days: u64,
}

/// Keeps the log file's writer thread running; dropping it writes out what is queued.
#[derive(Debug)]
pub(crate) struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// The subscriber's filter: `filter`, with the PostgreSQL driver held down.
fn env_filter(filter: &str) -> anyhow::Result<EnvFilter> {
    let mut env_filter =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    if !filter.contains("tokio_postgres") {
        // The driver logs every server NOTICE ("relation already exists, skipping") at info.
        if let Ok(quiet) = "tokio_postgres=warn".parse() {
            env_filter = env_filter.add_directive(quiet);
        }
    }
    for capped in driver_capped(filter) {
        if let Ok(capped) = capped.parse() {
            env_filter = env_filter.add_directive(capped);
        }
    }
    Ok(env_filter)
}

/// Installs the subscriber (JSON lines on stdout) and a panic hook that logs panics as JSON
/// (the client of a panicking request gets a bare 500).
pub(crate) fn init(filter: &str) -> anyhow::Result<()> {
    install(env_filter(filter)?, std::io::stdout)
}

/// As [`init`], for `plinth serve`: the access log may be off, and with a log directory
/// the lines go to the file of the day (old files pruned first) instead of stdout.
pub(crate) fn init_serve(logs: &ServeLogs) -> anyhow::Result<LogGuard> {
    let mut filter = env_filter(&logs.filter)?;
    if !logs.access {
        filter = filter.add_directive(
            "plinth::access=off"
                .parse()
                .context("the access-log directive")?,
        );
    }
    let Some(dir) = &logs.dir else {
        install(filter, std::io::stdout)?;
        return Ok(LogGuard { _worker: None });
    };
    let (writer, pruned) =
        file::DailyFile::open(dir, logs.retention_days, Box::new(file::utc_today))
            .with_context(|| format!("cannot open a log file in {}", dir.display()))?;
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("plinth-log-writer")
        .finish(writer);
    install(filter, writer)?;
    tracing::info!(
        dir = %dir.display(),
        retention_days = logs.retention_days,
        pruned = pruned.len(),
        "logging to files"
    );
    Ok(LogGuard {
        _worker: Some(guard),
    })
}

fn install<W>(filter: EnvFilter, writer: W) -> anyhow::Result<()>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(true)
        .with_writer(writer)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic = %payload, location = %location, "panic");
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::driver_capped;

    #[test]
    fn the_driver_is_held_at_info() {
        assert!(driver_capped("debug").is_empty());
        assert!(driver_capped("trace,tokio_postgres=warn").is_empty());
        assert_eq!(
            driver_capped("debug, tokio_postgres=DEBUG,tokio_postgres::query"),
            ["tokio_postgres=info", "tokio_postgres::query=info"]
        );
    }
}

//! JSON-lines logs on stdout through `tracing`, filtered by `LOG_LEVEL`.

use anyhow::Context;
use tracing_subscriber::EnvFilter;

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

/// Installs the subscriber and a panic hook that logs panics as JSON (the client of a
/// panicking request gets a bare 500).
pub(crate) fn init(filter: &str) -> anyhow::Result<()> {
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
    let filter = env_filter;
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(true)
        .with_writer(std::io::stdout)
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

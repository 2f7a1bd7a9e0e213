//! JSON-lines logs on stdout through `tracing`, filtered by `LOG_LEVEL`.

use anyhow::Context;
use tracing_subscriber::EnvFilter;

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

//! `plinth audit verify` and `plinth audit export`: the audit trail read from the command
//! line, through a read-only store (so both work beside a running server).

use super::serve::open_store_as;
use super::transfer::create_private;
use crate::cli::{AuditExportArgs, GlobalArgs};
use crate::config::Config;
use crate::logging;
use anyhow::Context;
use plinth_core::Timestamp;
use plinth_server::audit::AuditJson;
use plinth_store::{AuditQuery, AuditVerdict, Store};
use std::io::Write;
use std::path::Path;

/// Entries read per page while exporting: what the export holds in memory at once.
const PAGE: u32 = 1000;

/// The audit chain is broken: `plinth audit verify` exits with status 2.
#[derive(Debug)]
pub(crate) struct ChainBroken {
    seq: i64,
    reason: plinth_store::AuditBreak,
}

impl std::fmt::Display for ChainBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit chain broken at seq {}: {}", self.seq, self.reason)
    }
}

impl std::error::Error for ChainBroken {}

/// `plinth audit verify`.
pub(crate) fn run_verify(global: &GlobalArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    super::runtime()?.block_on(async {
        let store = open_store_as(&config, true).await?;
        let verdict = store.audit_verify().await;
        store.close().await;
        match verdict.context("cannot verify the audit chain")? {
            AuditVerdict::Intact { entries } => {
                println!(
                    "audit chain intact: {} checked",
                    count(entries, "entry", "entries")
                );
                Ok(())
            }
            AuditVerdict::Broken { seq, reason } => Err(ChainBroken { seq, reason }.into()),
        }
    })
}

/// `plinth audit export`.
pub(crate) fn run_export(global: &GlobalArgs, args: &AuditExportArgs) -> anyhow::Result<()> {
    let config = Config::load(global, None)?;
    logging::init(global.log_level.as_deref().unwrap_or("warn"))?;
    let mut query = AuditQuery {
        limit: PAGE,
        ..AuditQuery::default()
    };
    match args.since.as_deref().map(str::trim) {
        None => {}
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            let seq: i64 = s.parse().context("--since: the seq is too large")?;
            query.after_seq = Some(seq - 1);
        }
        Some(s) => {
            let at = Timestamp::parse(s)
                .map_err(|reason| anyhow::anyhow!("--since: a seq, or a time that {reason}"))?;
            query.since = Some(at);
        }
    }
    let output = args.output.as_deref().unwrap_or(Path::new("-"));
    super::runtime()?.block_on(async {
        let store = open_store_as(&config, true).await?;
        let result = if output == Path::new("-") {
            let stdout = std::io::stdout();
            export(store.as_ref(), query, &mut stdout.lock()).await
        } else {
            let file = create_private(output)?;
            let mut out = std::io::BufWriter::new(file);
            let r = export(store.as_ref(), query, &mut out).await;
            out.flush()
                .with_context(|| format!("cannot write {}", output.display()))?;
            r
        };
        store.close().await;
        let n = result.context("audit export failed")?;
        eprintln!("exported {}", count(n, "audit entry", "audit entries"));
        Ok(())
    })
}

/// Writes every entry `query` selects, oldest first, a page at a time; how many.
async fn export(
    store: &dyn Store,
    mut query: AuditQuery,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut n = 0;
    loop {
        let page = store.audit_query(&query).await?;
        for entry in &page {
            serde_json::to_writer(&mut *out, &AuditJson(entry))?;
            out.write_all(b"\n")?;
            n += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => query.after_seq = Some(last.seq),
            _ => return Ok(n),
        }
    }
}

/// `n` and the noun, singular for one.
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

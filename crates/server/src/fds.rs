//! The process's file-descriptor limit, read at start so the connection cap fits under it:
//! past the limit `accept` fails (EMFILE) and the database cannot open files either.

/// Descriptors kept for everything but client connections: the listener, the database
/// (SQLite files and readers, or the PostgreSQL pools and LISTEN connection), logs.
pub(crate) const FD_RESERVE: u64 = 64;

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (Linux); `None`
/// elsewhere, or when unlimited or unreadable.
pub(crate) fn soft_limit() -> Option<u64> {
    parse_limits(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit in the `Max open files` line of a `/proc/<pid>/limits` text.
fn parse_limits(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The connection cap to serve with: `configured`, or less when it and [`FD_RESERVE`] do
/// not fit under the descriptor limit `soft` (then the limit less the reserve, at least 1).
pub(crate) fn connection_cap(configured: usize, soft: Option<u64>) -> usize {
    let Some(soft) = soft else {
        return configured;
    };
    let room = usize::try_from(soft.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    configured.min(room.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            256                  524288               files     
Max locked memory         8388608              8388608              bytes     
";

    #[test]
    fn the_soft_limit_is_read_from_proc_limits() {
        assert_eq!(parse_limits(LIMITS), Some(256));
        let unlimited = LIMITS.replace("256     ", "unlimited");
        assert_eq!(parse_limits(&unlimited), None);
        assert_eq!(parse_limits("Limit Soft Hard\n"), None);
        assert_eq!(parse_limits(""), None);
    }

    #[test]
    fn the_cap_leaves_the_reserve_under_the_limit() {
        assert_eq!(connection_cap(1000, Some(256)), 192);
        assert_eq!(connection_cap(1000, Some(1064)), 1000);
        assert_eq!(connection_cap(1000, Some(1063)), 999);
        assert_eq!(connection_cap(100, Some(1_048_576)), 100);
        assert_eq!(connection_cap(1000, Some(10)), 1);
        assert_eq!(connection_cap(1000, None), 1000);
    }

    #[test]
    fn this_process_has_a_readable_limit_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(soft_limit().is_some_and(|n| n > 0));
        }
    }
}

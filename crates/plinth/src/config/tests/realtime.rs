//! The change feed's settings.

use super::*;

#[test]
fn realtime_defaults_file_and_environment() {
    let f = file("");
    let c = load_ok(&args(&f), None, &[]);
    let s = &c.settings;
    assert_eq!(
        (
            s.realtime_max_per_principal,
            s.realtime_max_total,
            s.realtime_buffer,
            s.realtime_heartbeat_seconds,
            s.realtime_retention.duration(),
            s.realtime_poll_ms,
        ),
        (16, 10_000, 1024, 15, Duration::from_secs(86_400), 1000)
    );
    let f = file(
        "[realtime]\nmax_per_principal = 4\nmax_total = 100\nbuffer = 64\n\
         heartbeat_seconds = 5\nretention = \"90m\"\npoll_ms = 250\n",
    );
    let s = load_ok(&args(&f), None, &[]).settings;
    assert_eq!(
        (
            s.realtime_max_per_principal,
            s.realtime_max_total,
            s.realtime_buffer,
            s.realtime_heartbeat_seconds,
            s.realtime_retention.duration(),
            s.realtime_poll_ms,
        ),
        (4, 100, 64, 5, Duration::from_secs(5400), 250)
    );
    let s = load_ok(
        &args(&f),
        None,
        &[(env::REALTIME_RETENTION, "7d"), (env::REALTIME_BUFFER, "8")],
    )
    .settings;
    assert_eq!(
        s.realtime_retention.duration(),
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(s.realtime_buffer, 8);
}

#[test]
fn bad_realtime_settings_are_refused_by_name() {
    let f = file("");
    for (name, value, needle) in [
        (env::REALTIME_RETENTION, "24", "realtime.retention"),
        (env::REALTIME_RETENTION, "h", "realtime.retention"),
        (env::REALTIME_RETENTION, "2w", "realtime.retention"),
        (env::REALTIME_RETENTION, "-1h", "realtime.retention"),
        (env::REALTIME_RETENTION, "30s", "realtime.retention"),
        (env::REALTIME_BUFFER, "0", "realtime.buffer"),
        (env::REALTIME_POLL_MS, "5", "realtime.poll_ms"),
        (
            env::REALTIME_HEARTBEAT_SECONDS,
            "0",
            "realtime.heartbeat_seconds",
        ),
        (env::REALTIME_MAX_TOTAL, "0", "realtime.max_total"),
    ] {
        let err = load_err(&args(&f), &[(name, value)]);
        assert!(err.contains(needle), "{name}={value}: {err}");
    }
    // Whole seconds are a span too.
    let s = load_ok(&args(&f), None, &[(env::REALTIME_RETENTION, "3600")]).settings;
    assert_eq!(s.realtime_retention.duration(), Duration::from_secs(3600));
}

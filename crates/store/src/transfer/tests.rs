//! The export line of a flag.

use super::*;

/// A flag's line holds its rollout as a percentage: every one of the 10,001 rollouts
/// comes back as it was.
#[test]
fn every_rollout_survives_its_line() {
    let mut flag = Flag {
        id: Uuid::now_v7(),
        key: FlagKey::parse("new-checkout").expect("key"),
        description: "d".to_owned(),
        rule: FlagRule {
            enabled: true,
            rollout: Rollout::NONE,
            allow: vec![Audience::parse("role:admin").expect("audience")],
            deny: Vec::new(),
            on_from: None,
            off_after: Some(Timestamp::parse("2030-01-02T03:04:05.000006Z").expect("time")),
        },
        created_at: Timestamp::parse("2026-01-02T03:04:05.123456Z").expect("time"),
        updated_at: Timestamp::parse("2026-01-03T03:04:05Z").expect("time"),
        version: 3,
    };
    for bp in 0..=i64::from(plinth_core::flags::BUCKETS) {
        flag.rule.rollout = Rollout::from_basis_points(bp).expect("rollout");
        let line = flag_json(&flag).to_string();
        let back = serde_json::from_str(&line).map_err(|e| e.to_string());
        assert_eq!(back.and_then(|v| flag_from(&v)), Ok(flag.clone()), "{line}");
    }
}

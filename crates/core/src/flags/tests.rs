use super::*;

fn key(s: &str) -> FlagKey {
    FlagKey::parse(s).expect("a valid key")
}

fn rule(rollout: u16) -> FlagRule {
    FlagRule {
        enabled: true,
        rollout: Rollout::from_basis_points(i64::from(rollout)).expect("in range"),
        allow: Vec::new(),
        deny: Vec::new(),
        on_from: None,
        off_after: None,
    }
}

fn user(id: Uuid) -> Subject {
    Subject::of(&Principal::user(id, Role::User), None)
}

const NOW: i64 = 1_800_000_000_000_000;

fn now() -> Timestamp {
    Timestamp::from_micros(NOW).expect("a time")
}

#[test]
fn keys_are_validated() {
    for good in [
        "a",
        "new-checkout",
        "plinth.replica_reads",
        "x1_y2.z3",
        &"a".repeat(64),
    ] {
        assert!(FlagKey::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "1a",
        "-a",
        "a-",
        "a--b",
        "a.-b",
        "New",
        "a b",
        "a/b",
        "é",
        &"a".repeat(65),
    ] {
        assert!(FlagKey::parse(bad).is_err(), "{bad}");
    }
    assert!(key("plinth.x").is_reserved());
    assert!(!key("plinthx").is_reserved());
}

#[test]
fn rollouts_are_percentages_with_two_decimals() {
    assert_eq!(
        Rollout::from_percent(12.5).map(Rollout::basis_points),
        Ok(1250)
    );
    assert_eq!(
        Rollout::from_percent(0.01).map(Rollout::basis_points),
        Ok(1)
    );
    assert_eq!(Rollout::from_percent(100.0), Ok(Rollout::FULL));
    assert_eq!(
        Rollout::from_percent(33.33).map(Rollout::percent),
        Ok(33.33)
    );
    for bad in [-0.01, 100.01, 12.345, f64::NAN, f64::INFINITY] {
        assert!(Rollout::from_percent(bad).is_err(), "{bad}");
    }
}

#[test]
fn audiences_parse_and_print_back() {
    let id = Uuid::now_v7();
    for s in [
        format!("user:{id}"),
        format!("api_key:{id}"),
        "role:admin".into(),
        "role:user".into(),
    ] {
        assert_eq!(Audience::parse(&s).map(|a| a.to_string()), Ok(s.clone()));
    }
    for bad in [
        "user:",
        "user:x",
        "role:guest",
        "role:root",
        "group:1",
        "admin",
        "",
    ] {
        assert!(Audience::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_ten_percent_rollout_takes_ten_percent_of_ten_thousand_principals() {
    let k = key("new-checkout");
    let r = rule(1000);
    let on = (0..10_000u128)
        .filter(|i| r.decide(&k, &user(Uuid::from_u128(*i * 7_919 + 1)), now()))
        .count();
    assert!((850..=1150).contains(&on), "{on} of 10000 on at 10 %");
    // Another flag picks other principals: the buckets are per flag.
    let other = key("other-flag");
    let both = (0..10_000u128)
        .map(|i| user(Uuid::from_u128(i * 7_919 + 1)))
        .filter(|s| r.decide(&k, s, now()) && r.decide(&other, s, now()))
        .count();
    assert!(both < 200, "{both} principals in both 10 % rollouts");
}

#[test]
fn buckets_are_fixed() {
    // The hash is part of the contract: a change would move every rollout's principals.
    let id = "0190a000-0000-7000-8000-000000000001";
    assert_eq!(bucket(&key("new-checkout"), id), 8_034);
    // Another principal, another bucket.
    assert_ne!(
        bucket(&key("new-checkout"), id),
        bucket(&key("new-checkout"), "0190a000-0000-7000-8000-000000000002")
    );
    // The key and the id are separated: moving a character across the boundary moves the
    // bucket.
    assert_ne!(bucket(&key("ab"), "c"), bucket(&key("a"), "bc"));
    assert_ne!(
        bucket(&key("new-checkout"), id),
        bucket(&key("new-checkouts"), id)
    );
}

#[test]
fn the_decision_order_holds() {
    let k = key("f");
    let id = Uuid::now_v7();
    let key_id = Uuid::now_v7();
    let s = Subject::of(&Principal::user(id, Role::User), Some(key_id));
    let mut r = rule(0);
    assert!(!r.decide(&k, &s, now()), "0 %");
    r.allow = vec![Audience::User(id)];
    assert!(r.decide(&k, &s, now()), "allowed by user");
    r.allow = vec![Audience::ApiKey(key_id)];
    assert!(r.decide(&k, &s, now()), "allowed by key");
    assert!(
        !r.decide(&k, &user(id), now()),
        "the key is not this request's"
    );
    r.allow = vec![Audience::Role(Role::User)];
    assert!(r.decide(&k, &s, now()), "allowed by role");
    r.deny = vec![Audience::User(id)];
    assert!(!r.decide(&k, &s, now()), "deny wins over allow");
    r.deny.clear();
    r.on_from = Timestamp::from_micros(NOW + 1);
    assert!(!r.decide(&k, &s, now()), "before on_from");
    r.on_from = Timestamp::from_micros(NOW);
    r.off_after = Timestamp::from_micros(NOW - 1);
    assert!(!r.decide(&k, &s, now()), "after off_after");
    r.off_after = Timestamp::from_micros(NOW);
    assert!(
        r.decide(&k, &s, now()),
        "inside the schedule, bounds included"
    );
    r.enabled = false;
    assert!(!r.decide(&k, &s, now()), "disabled");
}

#[test]
fn guests_see_only_flags_that_are_fully_on() {
    let k = key("f");
    let mut r = rule(9_999);
    r.allow = vec![Audience::Role(Role::User)];
    assert!(!r.decide(&k, &Subject::guest(), now()));
    r.rollout = Rollout::FULL;
    assert!(r.decide(&k, &Subject::guest(), now()));
    r.rollout = Rollout::from_basis_points(9_999).expect("in range");
    let local = Subject::of(&Principal::local_admin(), None);
    assert!(
        local.is_guest() && !r.decide(&k, &local, now()),
        "no id: as a guest"
    );
}

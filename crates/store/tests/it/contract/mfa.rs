//! Second factors: enrol, confirm and disable TOTP; the replay guard on time steps (atomic
//! across concurrent callers); recovery codes single use; second-step sign-in tokens single
//! use and expiring; every row gone with the user; the secret sealed at rest; all of it
//! moved by `plinth export`/`import` between stores with different keys.

use super::{Engine, HASH, admin, as_user, schema};
use plinth_core::auth::Email;
use plinth_core::{Role, Timestamp};
use plinth_store::transfer::{self, TransferError};
use plinth_store::{Keyring, Keys, OidcOutcome, OidcSignIn};
use serde_json::json;
use std::time::{Duration, SystemTime};

contract!(
    enrol_confirm_and_disable,
    the_last_step_guard_refuses_replays_atomically,
    recovery_codes_are_single_use_and_replaced_as_a_set,
    sign_in_tokens_are_single_use_and_expire,
    second_factor_rows_go_with_the_user,
    an_export_counts_the_second_factors_it_carries,
    second_factors_and_identities_move_under_the_targets_keys,
    a_factor_of_a_user_not_in_the_file_is_refused,
);

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn codes(tag: &str) -> Vec<String> {
    (0..10).map(|i| format!("{tag}-digest-{i}")).collect()
}

fn at(offset_secs: i64) -> Timestamp {
    let now = SystemTime::now();
    let by = Duration::from_secs(offset_secs.unsigned_abs());
    Timestamp::from_system(if offset_secs >= 0 { now + by } else { now - by })
}

async fn actions(e: &Engine) -> Vec<String> {
    e.store
        .audit_list(0, 1000)
        .await
        .expect("the audit")
        .into_iter()
        .map(|x| x.action)
        .filter(|a| a.starts_with("auth.mfa") || a.starts_with("auth.recovery"))
        .collect()
}

async fn enrolled(e: &Engine, email: &str) -> uuid::Uuid {
    let user = e.user(email, Role::User).await;
    let ctx = as_user(&user);
    assert!(
        e.store
            .begin_totp(&ctx, user.id, SECRET)
            .await
            .expect("begin")
    );
    assert!(
        e.store
            .confirm_totp(&ctx, user.id, 100, codes("a"))
            .await
            .expect("confirm")
    );
    user.id
}

async fn enrol_confirm_and_disable(e: &Engine) {
    let user = e.user("ann@example.com", Role::User).await;
    let ctx = as_user(&user);
    assert_eq!(e.store.get_totp(user.id).await.expect("get"), None);
    // Confirming with nothing pending does nothing.
    assert!(
        !e.store
            .confirm_totp(&ctx, user.id, 5, codes("x"))
            .await
            .expect("confirm")
    );
    assert!(
        e.store
            .begin_totp(&ctx, user.id, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .expect("begin")
    );
    // Re-posting before confirmation replaces the pending secret.
    assert!(
        e.store
            .begin_totp(&ctx, user.id, SECRET)
            .await
            .expect("again")
    );
    let pending = e
        .store
        .get_totp(user.id)
        .await
        .expect("get")
        .expect("pending");
    assert_eq!(pending.secret, SECRET);
    assert!(!pending.enabled());
    assert_eq!(pending.last_step, None);
    // A pending secret is no second factor: no step is spent on it.
    assert!(!e.store.spend_totp_step(user.id, 7).await.expect("spend"));
    // The secret is sealed at rest.
    assert!(!e.raw_contents("_plinth_totp").await.contains(SECRET));

    assert!(
        e.store
            .confirm_totp(&ctx, user.id, 42, codes("a"))
            .await
            .expect("confirm")
    );
    let on = e.store.get_totp(user.id).await.expect("get").expect("on");
    assert!(on.enabled());
    assert_eq!(on.last_step, Some(42));
    assert_eq!(
        e.store.recovery_codes_left(user.id).await.expect("left"),
        10
    );
    // On: neither a new enrolment nor a second confirmation changes it.
    assert!(
        !e.store
            .begin_totp(&ctx, user.id, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
            .await
            .expect("begin")
    );
    assert!(
        !e.store
            .confirm_totp(&ctx, user.id, 50, codes("b"))
            .await
            .expect("confirm")
    );
    assert_eq!(e.store.get_totp(user.id).await.expect("get"), Some(on));

    assert!(e.store.disable_totp(&ctx, user.id).await.expect("disable"));
    assert_eq!(e.store.get_totp(user.id).await.expect("get"), None);
    assert_eq!(e.store.recovery_codes_left(user.id).await.expect("left"), 0);
    assert!(!e.store.disable_totp(&ctx, user.id).await.expect("again"));
    assert_eq!(
        actions(e).await,
        [
            "auth.mfa_enrol",
            "auth.mfa_enrol",
            "auth.mfa_enabled",
            "auth.mfa_disabled"
        ]
    );
    // No audit entry holds the secret.
    let audit = format!("{:?}", e.store.audit_list(0, 1000).await.expect("audit"));
    assert!(!audit.contains(SECRET));
}

async fn the_last_step_guard_refuses_replays_atomically(e: &Engine) {
    let id = enrolled(e, "bob@example.com").await;
    // The confirming step (100) and anything older are spent.
    assert!(!e.store.spend_totp_step(id, 100).await.expect("spend"));
    assert!(!e.store.spend_totp_step(id, 99).await.expect("spend"));
    assert!(e.store.spend_totp_step(id, 101).await.expect("spend"));
    assert!(!e.store.spend_totp_step(id, 101).await.expect("replay"));
    // Many callers at once with the same new step: exactly one wins.
    let tries = (0..8).map(|_| {
        let store = std::sync::Arc::clone(&e.store);
        tokio::spawn(async move { store.spend_totp_step(id, 102).await.expect("spend") })
    });
    let mut won = 0;
    for t in tries {
        won += usize::from(t.await.expect("join"));
    }
    assert_eq!(won, 1);
    assert_eq!(
        e.store
            .get_totp(id)
            .await
            .expect("get")
            .expect("on")
            .last_step,
        Some(102)
    );
}

async fn recovery_codes_are_single_use_and_replaced_as_a_set(e: &Engine) {
    let id = enrolled(e, "cy@example.com").await;
    let other = enrolled(e, "dee@example.com").await;
    let ctx = admin();
    assert!(
        e.store
            .spend_recovery_code(&ctx, id, "a-digest-3")
            .await
            .expect("spend")
    );
    assert!(
        !e.store
            .spend_recovery_code(&ctx, id, "a-digest-3")
            .await
            .expect("again")
    );
    assert!(
        !e.store
            .spend_recovery_code(&ctx, id, "nope")
            .await
            .expect("unknown")
    );
    assert_eq!(e.store.recovery_codes_left(id).await.expect("left"), 9);
    // Another user's code (same digest, their row) is theirs alone.
    assert_eq!(e.store.recovery_codes_left(other).await.expect("left"), 10);
    // Concurrent spends of one code: one wins.
    let tries = (0..6).map(|_| {
        let store = std::sync::Arc::clone(&e.store);
        tokio::spawn(async move {
            store
                .spend_recovery_code(&admin(), id, "a-digest-4")
                .await
                .expect("spend")
        })
    });
    let mut won = 0;
    for t in tries {
        won += usize::from(t.await.expect("join"));
    }
    assert_eq!(won, 1);
    assert!(
        e.store
            .replace_recovery_codes(&ctx, id, codes("b"))
            .await
            .expect("replace")
    );
    assert_eq!(e.store.recovery_codes_left(id).await.expect("left"), 10);
    assert!(
        !e.store
            .spend_recovery_code(&ctx, id, "a-digest-5")
            .await
            .expect("old")
    );
    assert!(
        e.store
            .spend_recovery_code(&ctx, id, "b-digest-5")
            .await
            .expect("new")
    );
    // Without TOTP on there are no codes to replace.
    let off = e.user("eve@example.com", Role::User).await.id;
    assert!(
        !e.store
            .replace_recovery_codes(&ctx, off, codes("c"))
            .await
            .expect("off")
    );
    assert_eq!(e.store.recovery_codes_left(off).await.expect("left"), 0);
    let used: Vec<_> = actions(e)
        .await
        .into_iter()
        .filter(|a| a.starts_with("auth.recovery"))
        .collect();
    assert_eq!(
        used,
        [
            "auth.recovery_code_used",
            "auth.recovery_code_used",
            "auth.recovery_codes_replaced",
            "auth.recovery_code_used"
        ]
    );
}

async fn sign_in_tokens_are_single_use_and_expire(e: &Engine) {
    let id = enrolled(e, "fay@example.com").await;
    let now = at(0);
    e.store
        .insert_mfa_token(id, "tok-1", at(300))
        .await
        .expect("insert");
    e.store
        .insert_mfa_token(id, "tok-old", at(-1))
        .await
        .expect("insert");
    assert_eq!(
        e.store.find_mfa_token("tok-1", now).await.expect("find"),
        Some(id)
    );
    assert_eq!(
        e.store.find_mfa_token("tok-old", now).await.expect("find"),
        None
    );
    assert_eq!(
        e.store.find_mfa_token("nope", now).await.expect("find"),
        None
    );
    // Past its expiry by the caller's clock, a live token is refused.
    assert_eq!(
        e.store
            .spend_mfa_token("tok-1", at(301))
            .await
            .expect("late"),
        None
    );
    assert_eq!(
        e.store.spend_mfa_token("tok-1", now).await.expect("spend"),
        Some(id)
    );
    assert_eq!(
        e.store.spend_mfa_token("tok-1", now).await.expect("again"),
        None
    );
    assert_eq!(
        e.store.find_mfa_token("tok-1", now).await.expect("find"),
        None
    );
    // Disabling TOTP voids pending sign-in tokens.
    e.store
        .insert_mfa_token(id, "tok-2", at(300))
        .await
        .expect("insert");
    assert!(e.store.disable_totp(&admin(), id).await.expect("disable"));
    assert_eq!(
        e.store.find_mfa_token("tok-2", now).await.expect("find"),
        None
    );
}

async fn second_factor_rows_go_with_the_user(e: &Engine) {
    let id = enrolled(e, "gus@example.com").await;
    e.store
        .insert_mfa_token(id, "tok-g", at(300))
        .await
        .expect("insert");
    e.store.delete_user(&admin(), id).await.expect("delete");
    assert_eq!(e.store.get_totp(id).await.expect("get"), None);
    assert_eq!(e.store.recovery_codes_left(id).await.expect("left"), 0);
    assert_eq!(
        e.store.find_mfa_token("tok-g", at(0)).await.expect("find"),
        None
    );
}

/// `plinth export` counts the second factors it carries (a confirmed TOTP; a pending
/// enrolment moves too but is nothing yet), and writes the secret opened.
async fn an_export_counts_the_second_factors_it_carries(e: &Engine) {
    let mut dump = Vec::new();
    let counts = plinth_store::transfer::export(e.store.as_ref(), &mut dump)
        .await
        .expect("export");
    assert_eq!((counts.second_factors, counts.identities), (0, 0));
    enrolled(e, "ann@example.com").await;
    let pending = e.user("bob@example.com", Role::User).await;
    e.store
        .begin_totp(&as_user(&pending), pending.id, SECRET)
        .await
        .expect("begin");
    e.user("cy@example.com", Role::User).await;
    let mut dump = Vec::new();
    let counts = plinth_store::transfer::export(e.store.as_ref(), &mut dump)
        .await
        .expect("export");
    assert_eq!((counts.users, counts.second_factors), (3, 1));
    let text = String::from_utf8(dump).expect("utf-8");
    assert_eq!(text.matches(SECRET).count(), 2, "both secrets, opened");
    assert_eq!(text.matches("{\"recovery_code\":").count(), 10);
}

/// A user with TOTP on, recovery codes (one spent) and an OpenID identity, exported from
/// a store and imported into one with other keys, both ways between this engine and
/// SQLite: the secret opens to the same value, the replay guard and the spent code hold,
/// the identity signs in, and the import writes no audit entry.
async fn second_factors_and_identities_move_under_the_targets_keys(e: &Engine) {
    let other = || Keys::fixed(Keyring::generate().expect("keys"));
    let source = Engine::sqlite_with(other()).await;
    carry(&source, e).await;
    source.store.close().await;
    let (fresh, target) = (e.another().await, Engine::sqlite_with(other()).await);
    carry(&fresh, &target).await;
    target.store.close().await;
    fresh.store.close().await;
}

async fn carry(source: &Engine, target: &Engine) {
    let sign_in = |may_create| OidcSignIn {
        provider: "acme".to_owned(),
        subject: "sub-1".to_owned(),
        email: Some(Email::parse("dee@example.com").expect("email")),
        email_verified: true,
        may_create,
        password_hash: HASH.to_owned(),
    };
    let OidcOutcome::Created(user) = source
        .store
        .oidc_sign_in(&admin(), sign_in(true))
        .await
        .expect("sign in")
    else {
        panic!("a new account")
    };
    let (id, ctx) = (user.id, as_user(&user));
    assert!(
        source
            .store
            .begin_totp(&ctx, id, SECRET)
            .await
            .expect("begin")
    );
    assert!(
        source
            .store
            .confirm_totp(&ctx, id, 100, codes("d"))
            .await
            .expect("confirm")
    );
    assert!(source.store.spend_totp_step(id, 105).await.expect("step"));
    assert!(
        source
            .store
            .spend_recovery_code(&ctx, id, "d-digest-3")
            .await
            .expect("spend")
    );
    source.user("eve@example.com", Role::User).await;

    let mut dump = Vec::new();
    let counts = transfer::export(source.store.as_ref(), &mut dump)
        .await
        .expect("export");
    assert_eq!(
        (counts.users, counts.second_factors, counts.identities),
        (2, 1, 1)
    );
    let imported = transfer::import(
        target.store.as_ref(),
        &schema(json!([])),
        &mut dump.as_slice(),
    )
    .await
    .expect("import");
    assert_eq!(imported, counts);

    let totp = target
        .store
        .get_totp(id)
        .await
        .expect("get")
        .expect("moved");
    assert_eq!(totp.secret, SECRET, "opened under the target's keys");
    assert_eq!(Some(totp), source.store.get_totp(id).await.expect("get"));
    let codes = target.store.recovery_codes(id).await.expect("codes");
    assert_eq!(codes, source.store.recovery_codes(id).await.expect("codes"));
    assert_eq!(codes.iter().filter(|c| c.used_at.is_some()).count(), 1);
    assert_eq!(
        target.store.oidc_identities(id).await.expect("identities"),
        source.store.oidc_identities(id).await.expect("identities")
    );
    assert!(
        target
            .store
            .audit_list(0, 10)
            .await
            .expect("audit")
            .is_empty(),
        "the import writes no audit entry"
    );
    // Exported again, the file is the same but for the header (the import declared the
    // default model).
    let mut again = Vec::new();
    transfer::export(target.store.as_ref(), &mut again)
        .await
        .expect("export the target");
    let body = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&again), body(&dump));
    // They work on the target as on the source.
    assert!(!target.store.spend_totp_step(id, 105).await.expect("replay"));
    assert!(target.store.spend_totp_step(id, 106).await.expect("step"));
    assert!(
        !target
            .store
            .spend_recovery_code(&ctx, id, "d-digest-3")
            .await
            .expect("spent")
    );
    assert!(
        target
            .store
            .spend_recovery_code(&ctx, id, "d-digest-4")
            .await
            .expect("spend")
    );
    assert_eq!(target.store.recovery_codes_left(id).await.expect("left"), 8);
    let known = target
        .store
        .oidc_sign_in(&admin(), sign_in(false))
        .await
        .expect("sign in");
    assert!(
        matches!(&known, OidcOutcome::Known(u) if u.id == id),
        "{known:?}"
    );
}

/// A second-factor or identity line naming a user no line before it holds is the file's
/// fault, located; nothing is written.
async fn a_factor_of_a_user_not_in_the_file_is_refused(e: &Engine) {
    let stranger = uuid::Uuid::now_v7();
    let header = r#"{"plinth_export":1,"models":[]}"#;
    for line in [
        json!({"totp": {"user_id": stranger, "secret": SECRET, "confirmed_at": null,
            "last_step": null, "created_at": "2026-01-02T03:04:05Z"}}),
        json!({"recovery_code": {"user_id": stranger, "code_hash": "x", "used_at": null,
            "created_at": "2026-01-02T03:04:05Z"}}),
        json!({"oidc_identity": {"provider": "acme", "subject": "s", "user_id": stranger,
            "created_at": "2026-01-02T03:04:05Z"}}),
    ] {
        let file = format!("{header}\n{line}\n");
        let err = transfer::import(e.store.as_ref(), &schema(json!([])), &mut file.as_bytes())
            .await
            .expect_err("refused");
        match &err {
            TransferError::Format { line: 2, reason } => {
                assert!(reason.contains(&stranger.to_string()), "{reason}");
            }
            other => panic!("{other}"),
        }
        assert!(e.store.list_users(None, 1).await.expect("users").is_empty());
    }
}

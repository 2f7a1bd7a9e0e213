//! An account's sessions: listed from their newest tokens (address and user agent of the
//! last use), ended one by one (never another user's) or all at once, each ending audited.

use super::{Engine, admin, as_user, no_cutoff, started_now};
use plinth_core::{Role, Timestamp};
use plinth_store::{Refresh, Session, WriteCtx};
use serde_json::json;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

contract!(
    sessions_list_live_families_with_their_newest_tokens_details,
    ending_a_session_revokes_its_family_and_never_another_users,
    ending_every_session_keeps_the_one_excepted_and_counts,
    a_session_ended_while_it_refreshes_stays_ended,
);

fn later() -> Timestamp {
    Timestamp::from_system(SystemTime::now() + Duration::from_secs(3600))
}

/// A client at `addr` with `agent`.
fn client(ctx: WriteCtx, addr: &str, agent: Option<&str>) -> WriteCtx {
    WriteCtx {
        client_addr: Some(addr.to_owned()),
        user_agent: agent.map(str::to_owned),
        ..ctx
    }
}

async fn login(e: &Engine, ctx: &WriteCtx, user: Uuid, token: &str) -> Uuid {
    let family = Uuid::now_v7();
    e.store
        .insert_refresh(ctx, user, family, token, later(), started_now())
        .await
        .expect("login");
    family
}

async fn list(e: &Engine, user: Uuid) -> Vec<Session> {
    e.store
        .list_sessions(user, no_cutoff())
        .await
        .expect("list")
}

async fn actions(e: &Engine) -> Vec<(String, serde_json::Value)> {
    e.store
        .audit_list(0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|a| a.action.starts_with("auth.session"))
        .map(|a| (a.action, a.changes))
        .collect()
}

async fn sessions_list_live_families_with_their_newest_tokens_details(e: &Engine) {
    let ann = e.user("ann@example.com", Role::User).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let me = as_user(&ann);
    let phone = login(
        e,
        &client(me.clone(), "192.0.2.1", Some("Phone/1")),
        ann.id,
        "a1",
    )
    .await;
    let laptop = login(e, &client(me.clone(), "192.0.2.2", None), ann.id, "b1").await;
    login(e, &as_user(&bob), bob.id, "c1").await;
    let listed = list(e, ann.id).await;
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        [laptop, phone],
        "newest first, only hers"
    );
    assert_eq!(listed[0].client_addr.as_deref(), Some("192.0.2.2"));
    assert_eq!(listed[0].user_agent, None);
    assert_eq!(listed[1].user_agent.as_deref(), Some("Phone/1"));
    // A refresh from elsewhere: the session keeps its start and shows its last use.
    let moved = client(
        WriteCtx::new(plinth_core::Principal::guest(), "r"),
        "198.51.100.7",
        Some("Phone/2"),
    );
    let out = e
        .store
        .rotate_refresh(&moved, "a1", "a2", later(), no_cutoff())
        .await
        .expect("rotate");
    assert_eq!(out, Refresh::Rotated { user_id: ann.id });
    let after = list(e, ann.id).await;
    let s = after.iter().find(|s| s.id == phone).expect("still listed");
    assert_eq!(s.created_at, listed[1].created_at);
    assert!(s.last_used_at > s.created_at);
    assert_eq!(s.client_addr.as_deref(), Some("198.51.100.7"));
    assert_eq!(s.user_agent.as_deref(), Some("Phone/2"));
    assert_eq!(after.len(), 2, "a refresh is no new session");
    // Ended sessions are not listed: a logout, a reuse, past the absolute lifetime.
    assert!(
        e.store
            .revoke_refresh_family(&admin(), "b1")
            .await
            .expect("logout")
    );
    assert_eq!(list(e, ann.id).await.len(), 1);
    let future = Timestamp::from_system(SystemTime::now() + Duration::from_secs(60));
    assert!(
        e.store
            .list_sessions(ann.id, future)
            .await
            .expect("list")
            .is_empty()
    );
    e.store
        .rotate_refresh(&admin(), "a1", "a3", later(), no_cutoff())
        .await
        .expect("reuse");
    assert!(list(e, ann.id).await.is_empty());
    // An expired token's session is over too.
    let past = Timestamp::from_system(SystemTime::now() - Duration::from_secs(1));
    e.store
        .insert_refresh(&me, ann.id, Uuid::now_v7(), "d1", past, started_now())
        .await
        .expect("login");
    assert!(list(e, ann.id).await.is_empty());
}

async fn ending_a_session_revokes_its_family_and_never_another_users(e: &Engine) {
    let ann = e.user("ann@example.com", Role::User).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let one = login(e, &as_user(&ann), ann.id, "a1").await;
    let two = login(e, &as_user(&ann), ann.id, "b1").await;
    let bobs = login(e, &as_user(&bob), bob.id, "c1").await;
    // Bob's session named as Ann's, and an unknown one: nothing happens.
    assert!(
        !e.store
            .revoke_session(&as_user(&ann), ann.id, bobs)
            .await
            .expect("revoke")
    );
    assert!(
        !e.store
            .revoke_session(&as_user(&ann), ann.id, Uuid::now_v7())
            .await
            .expect("revoke")
    );
    assert_eq!(list(e, bob.id).await.len(), 1);
    assert!(actions(e).await.is_empty(), "nothing audited");

    assert!(
        e.store
            .revoke_session(&as_user(&ann), ann.id, one)
            .await
            .expect("revoke")
    );
    assert!(
        !e.store
            .revoke_session(&as_user(&ann), ann.id, one)
            .await
            .expect("again")
    );
    assert_eq!(
        list(e, ann.id)
            .await
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        [two]
    );
    assert!(!e.store.refresh_family_live(one).await.expect("live"));
    assert!(e.store.refresh_family_live(two).await.expect("live"));
    // Its refresh token no longer rotates (revoked, not spent: no reuse alarm).
    let out = e
        .store
        .rotate_refresh(&admin(), "a1", "a2", later(), no_cutoff())
        .await
        .expect("rotate");
    assert_eq!(out, Refresh::Invalid);
    assert_eq!(
        actions(e).await,
        [("auth.session_revoked".to_owned(), json!({ "session": one }))]
    );
    let entry = e.store.audit_list(0, 1000).await.expect("audit");
    let entry = entry
        .iter()
        .find(|a| a.action == "auth.session_revoked")
        .expect("entry");
    assert_eq!(entry.actor_id, Some(ann.id));
}

async fn ending_every_session_keeps_the_one_excepted_and_counts(e: &Engine) {
    let ann = e.user("ann@example.com", Role::User).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let me = as_user(&ann);
    let keep = login(e, &me, ann.id, "a1").await;
    login(e, &me, ann.id, "b1").await;
    login(e, &me, ann.id, "c1").await;
    // A refreshed session is one session, however many tokens it holds.
    e.store
        .rotate_refresh(&me, "c1", "c2", later(), no_cutoff())
        .await
        .expect("rotate");
    login(e, &as_user(&bob), bob.id, "z1").await;
    assert_eq!(
        e.store
            .revoke_sessions(&me, ann.id, Some(keep))
            .await
            .expect("all"),
        2
    );
    assert_eq!(
        list(e, ann.id)
            .await
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        [keep]
    );
    assert_eq!(
        e.store
            .revoke_sessions(&me, ann.id, None)
            .await
            .expect("all"),
        1
    );
    assert!(list(e, ann.id).await.is_empty());
    assert_eq!(
        e.store
            .revoke_sessions(&me, ann.id, None)
            .await
            .expect("none"),
        0
    );
    assert_eq!(list(e, bob.id).await.len(), 1, "Bob's session goes on");
    assert_eq!(
        actions(e).await,
        [
            (
                "auth.sessions_revoked".to_owned(),
                json!({ "count": 2, "except": keep })
            ),
            ("auth.sessions_revoked".to_owned(), json!({ "count": 1 })),
        ]
    );
}

/// What ends a session in [`a_session_ended_while_it_refreshes_stays_ended`].
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// `revoke_session`.
    One,
    /// `revoke_sessions`.
    All,
    /// A logout with the token being refreshed.
    Logout,
    /// A new password.
    Password,
}

async fn end_it(
    e: &Engine,
    how: Ending,
    ann: &plinth_store::User,
    family: Uuid,
    token: &str,
    round: usize,
) {
    let me = as_user(ann);
    match how {
        Ending::One => assert!(
            e.store
                .revoke_session(&me, ann.id, family)
                .await
                .expect("one")
        ),
        Ending::All => assert_eq!(
            e.store
                .revoke_sessions(&me, ann.id, None)
                .await
                .expect("all"),
            1
        ),
        Ending::Logout => assert!(
            e.store
                .revoke_refresh_family(&me, token)
                .await
                .expect("logout")
        ),
        Ending::Password => {
            let changes = plinth_store::UserChanges {
                password_hash: Some(format!("{}{round}", super::HASH)),
                ..plinth_store::UserChanges::default()
            };
            e.store
                .update_user(&admin(), ann.id, changes, None)
                .await
                .expect("password");
        }
    }
}

/// A session ended (each way) while it refreshes stays ended: whichever commits first, the
/// token the refresh may have added is revoked too. On PostgreSQL this needs the ending to
/// lock the session's tokens before it revokes them.
async fn a_session_ended_while_it_refreshes_stays_ended(e: &Engine) {
    let ann = e.user("ann@example.com", Role::User).await;
    let me = as_user(&ann);
    for how in [Ending::One, Ending::All, Ending::Logout, Ending::Password] {
        for round in 0..15 {
            let token = format!("{how:?}{round}");
            let family = login(e, &me, ann.id, &token).await;
            let next = format!("{token}-next");
            let (rotated, ()) = tokio::join!(
                e.store
                    .rotate_refresh(&me, &token, &next, later(), no_cutoff()),
                end_it(e, how, &ann, family, &token, round),
            );
            rotated.expect("rotate");
            assert!(
                !e.store.refresh_family_live(family).await.expect("live"),
                "{how:?}, round {round}: the session survived its ending"
            );
            let out = e
                .store
                .rotate_refresh(&me, &next, &format!("{next}2"), later(), no_cutoff())
                .await
                .expect("rotate");
            assert_ne!(
                out,
                Refresh::Rotated { user_id: ann.id },
                "{how:?}, round {round}"
            );
        }
    }
    assert!(list(e, ann.id).await.is_empty());
}

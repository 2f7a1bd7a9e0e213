//! Ending a session through one instance ends its access token on the other at once: the
//! other instance is told through the database, before its credential cache would have let
//! the token through.

use super::{ROUNDS, Round, refused_before_the_cache_expires, two_instances, undecided};
use crate::helpers::{PASSWORD, assert_error};
use reqwest::{Method, StatusCode};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_ended_through_one_instance_loses_its_access_token_on_the_other_at_once() {
    let Some((a, b)) = two_instances(
        "a_session_ended_through_one_instance_loses_its_access_token_on_the_other_at_once",
    )
    .await
    else {
        return;
    };
    a.user("ada@example.com").await;
    let keeper = a.login_ok("ada@example.com", PASSWORD).await;
    let mut slow = Vec::new();
    let ended = loop {
        if slow.len() == ROUNDS {
            undecided(&slow);
        }
        let doomed = b.login_ok("ada@example.com", PASSWORD).await;
        // B's first request with the doomed token: B caches it from now on.
        let cached = Instant::now();
        b.me(Some(&doomed.access)).await.data(StatusCode::OK);
        // A lists Ada's sessions and ends the doomed one (the newest).
        let sessions = a
            .call_as(
                Method::GET,
                "/api/v1/auth/sessions",
                Some(&keeper.access),
                None,
            )
            .await;
        let newest = sessions.data(StatusCode::OK)[0]["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let r = a
            .call_as(
                Method::DELETE,
                &format!("/api/v1/auth/sessions/{newest}"),
                Some(&keeper.access),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        match refused_before_the_cache_expires(&b, "/api/v1/auth/me", &doomed.access, cached).await
        {
            Round::Told => break doomed,
            Round::Undecided(took) => slow.push(took),
        }
    };
    // Its refresh token is dead on both; the session that ended it goes on, on both.
    for app in [&a, &b] {
        assert_error(
            &app.refresh(&ended.refresh).await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        );
        app.me(Some(&keeper.access)).await.data(StatusCode::OK);
    }
}

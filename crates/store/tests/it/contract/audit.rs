//! The audit trail: every record write appends exactly one entry, in its transaction, with
//! its actor and changes; refused writes and idempotent replays append none; the hash
//! chain verifies (tampering and pruning: `audit_chain.rs`); queries filter and page.

use super::records::decls;
use super::{Engine, admin, as_user, draft, model, patch};
use plinth_core::{RecordId, Role};
use plinth_store::{
    AuditBreak, AuditEntry, AuditQuery, AuditVerdict, IdempotencyClaim, StoreError,
};
use serde_json::json;

contract!(
    every_record_write_appends_one_entry_with_its_actor_and_changes,
    refused_writes_and_replays_append_no_entry,
    queries_filter_by_actor_action_model_record_and_time_and_page_both_ways,
    concurrent_writes_some_refused_append_one_entry_per_kept_write,
    a_refused_write_in_a_group_leaves_nothing_behind,
);

pub(super) async fn entries(e: &Engine) -> Vec<AuditEntry> {
    e.store.audit_list(0, 1000).await.expect("list the audit")
}

pub(super) async fn verify(e: &Engine) -> AuditVerdict {
    e.store.audit_verify().await.expect("verify the audit")
}

pub(super) fn intact(entries: u64) -> AuditVerdict {
    AuditVerdict::Intact { entries }
}

pub(super) fn broken(seq: i64, reason: AuditBreak) -> AuditVerdict {
    AuditVerdict::Broken { seq, reason }
}

async fn every_record_write_appends_one_entry_with_its_actor_and_changes(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    assert_eq!(verify(e).await, intact(0));
    let user = e.user("ann@example.com", Role::User).await;
    let mut ctx = as_user(&user);
    ctx.request_id = "req-1".to_owned();
    ctx.client_addr = Some("192.0.2.7".to_owned());
    let r = e
        .create(&ctx, &customer, json!({"name": "a", "score": 3}))
        .await;
    let p = patch(&customer, &json!({"score": 4, "email": "a@example.org"}));
    e.store
        .update(&ctx, &customer, r.id, p, Some(1))
        .await
        .expect("update");
    e.store
        .delete(&admin(), &customer, r.id, None)
        .await
        .expect("delete");
    e.store
        .restore(&admin(), &customer, r.id)
        .await
        .expect("restore");
    e.store
        .purge(&admin(), &customer, r.id, None)
        .await
        .expect("purge");
    let mut key = as_user(&user);
    key.via_api_key = true;
    let k = e.create(&key, &customer, json!({"name": "k"})).await;

    let everything = entries(e).await;
    // The account made for the test comes first.
    assert_eq!(everything[0].action, "account.create");
    assert_eq!(everything[0].prev_hash, "");
    let all = &everything[1..];
    let seqs: Vec<i64> = all.iter().map(|x| x.seq).collect();
    assert_eq!(seqs, [2, 3, 4, 5, 6, 7]);
    let actions: Vec<&str> = all.iter().map(|x| x.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "record.create",
            "record.update",
            "record.delete",
            "record.restore",
            "record.purge",
            "record.create"
        ]
    );
    let first = &all[0];
    assert_eq!(first.at, r.created_at);
    assert_eq!(
        (
            first.actor_kind.as_str(),
            first.actor_id,
            first.actor_label.as_str()
        ),
        ("user", Some(user.id), "user")
    );
    assert_eq!(first.model.as_deref(), Some("customer"));
    assert_eq!(first.record_id, Some(r.id));
    assert_eq!(first.request_id, "req-1");
    assert_eq!(first.client_addr.as_deref(), Some("192.0.2.7"));
    assert_eq!(
        first.changes,
        json!({"name": {"to": "a"}, "status": {"to": "active"}, "score": {"to": 3}})
    );
    assert_eq!(
        all[1].changes,
        json!({"score": {"from": 3, "to": 4}, "email": {"from": null, "to": "a@example.org"}})
    );
    for (x, from, to) in [
        (&all[2], "active", "deleted"),
        (&all[3], "deleted", "active"),
    ] {
        assert_eq!(
            (x.actor_kind.as_str(), x.actor_id, x.actor_label.as_str()),
            ("system", None, "local admin")
        );
        assert_eq!(x.client_addr, None);
        assert_eq!(x.changes, json!({"status": {"from": from, "to": to}}));
    }
    assert_eq!(
        all[4].changes,
        json!({"name": {"from": "a"}, "status": {"from": "active"},
               "email": {"from": "a@example.org"}, "score": {"from": 4}})
    );
    assert_eq!(all[4].record_id, Some(r.id));
    assert_eq!(
        (all[5].actor_kind.as_str(), all[5].actor_id),
        ("api_key", Some(user.id))
    );
    assert_eq!(all[5].record_id, Some(k.id));
    // The chain: each entry links to the one before.
    for w in everything.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].hash.len(), 64);
    }
    // Pages in seq order.
    let page = e.store.audit_list(3, 2).await.expect("a page");
    assert_eq!(page, all[2..4]);
    assert_eq!(verify(e).await, intact(7));
}

fn claim(key: &str, digest: &str) -> Option<IdempotencyClaim> {
    Some(IdempotencyClaim {
        key: key.to_owned(),
        body_digest: digest.to_owned(),
    })
}

async fn refused_writes_and_replays_append_no_entry(e: &Engine) {
    let s = e.migrate(decls()).await;
    let (customer, order) = (model(&s, "customer"), model(&s, "order"));
    let a = e
        .create(
            &admin(),
            &customer,
            json!({"name": "a", "email": "a@x.org"}),
        )
        .await;
    let body = json!({"name": "o", "customer": a.id.to_string()});
    let made = e
        .store
        .create(&admin(), &order, draft(&order, &body), claim("k1", "d1"))
        .await
        .expect("create with a key");
    assert_eq!(entries(e).await.len(), 2);

    // A replay, and the same key with another body.
    let again = e
        .store
        .create(&admin(), &order, draft(&order, &body), claim("k1", "d1"))
        .await
        .expect("replay");
    assert!(again.replayed);
    assert_eq!(again.record.id, made.record.id);
    let other = e
        .store
        .create(&admin(), &order, draft(&order, &body), claim("k1", "d2"))
        .await;
    assert!(
        matches!(other, Err(StoreError::Conflict { .. })),
        "{other:?}"
    );
    // A taken unique value, a missing reference.
    let dup = json!({"name": "b", "email": "a@x.org"});
    let dup = e
        .store
        .create(&admin(), &customer, draft(&customer, &dup), None)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    let dangling = json!({"name": "o", "customer": RecordId::new_v7().to_string()});
    let dangling = e
        .store
        .create(&admin(), &order, draft(&order, &dangling), None)
        .await;
    assert!(
        matches!(dangling, Err(StoreError::InvalidReference { .. })),
        "{dangling:?}"
    );
    // A stale version (412), a missing record (404).
    let p = patch(&customer, &json!({"score": 1}));
    let stale = e
        .store
        .update(&admin(), &customer, a.id, p.clone(), Some(9))
        .await;
    assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?}");
    let missing = RecordId::new_v7();
    let gone = e
        .store
        .update(&admin(), &customer, missing, p.clone(), None)
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    let gone = e.store.delete(&admin(), &customer, missing, None).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    let gone = e.store.purge(&admin(), &customer, missing, None).await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    let stale = e.store.delete(&admin(), &customer, a.id, Some(9)).await;
    assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?}");
    // Restoring a live record, purging a referenced one (409).
    let live = e.store.restore(&admin(), &customer, a.id).await;
    assert!(matches!(live, Err(StoreError::Conflict { .. })), "{live:?}");
    let referenced = e.store.purge(&admin(), &customer, a.id, None).await;
    assert!(
        matches!(referenced, Err(StoreError::Conflict { .. })),
        "{referenced:?}"
    );
    assert_eq!(entries(e).await.len(), 2, "a refused write left an entry");

    // Updating or deleting what is deleted (409, 404).
    e.store
        .delete(&admin(), &customer, a.id, None)
        .await
        .expect("delete");
    let deleted = e.store.update(&admin(), &customer, a.id, p, None).await;
    assert!(
        matches!(deleted, Err(StoreError::Conflict { .. })),
        "{deleted:?}"
    );
    let twice = e.store.delete(&admin(), &customer, a.id, None).await;
    assert!(matches!(twice, Err(StoreError::NotFound)), "{twice:?}");
    let all = entries(e).await;
    let actions: Vec<&str> = all.iter().map(|x| x.action.as_str()).collect();
    assert_eq!(actions, ["record.create", "record.create", "record.delete"]);
    assert_eq!(verify(e).await, intact(3));
}

async fn seqs(e: &Engine, q: AuditQuery) -> Vec<i64> {
    let q = AuditQuery {
        limit: if q.limit == 0 { 100 } else { q.limit },
        ..q
    };
    let found = e.store.audit_query(&q).await.expect("query the audit");
    found.iter().map(|x| x.seq).collect()
}

async fn queries_filter_by_actor_action_model_record_and_time_and_page_both_ways(e: &Engine) {
    let s = e.migrate(decls()).await;
    let (customer, diary) = (model(&s, "customer"), model(&s, "diary"));
    let ann = e.user("ann@example.com", Role::User).await;
    let a = e
        .create(&as_user(&ann), &customer, json!({"name": "a"}))
        .await; // 2 (ann's account is 1)
    let b = e.create(&admin(), &customer, json!({"name": "b"})).await; // 3
    let p = patch(&customer, &json!({"score": 1}));
    e.store
        .update(&as_user(&ann), &customer, a.id, p, None)
        .await
        .expect("update"); // 4
    e.create(&admin(), &diary, json!({"name": "t"})).await; // 5
    e.store
        .delete(&admin(), &customer, b.id, None)
        .await
        .expect("delete"); // 6
    let all = entries(e).await;
    let newest = AuditQuery {
        newest_first: true,
        ..AuditQuery::default()
    };
    assert_eq!(seqs(e, newest.clone()).await, [6, 5, 4, 3, 2, 1]);
    assert_eq!(seqs(e, AuditQuery::default()).await, [1, 2, 3, 4, 5, 6]);
    let by = |q: AuditQuery| AuditQuery {
        newest_first: true,
        ..q
    };
    let q = by(AuditQuery {
        actor_id: Some(ann.id),
        ..AuditQuery::default()
    });
    assert_eq!(seqs(e, q).await, [4, 2]);
    let q = by(AuditQuery {
        actor_kind: Some("system".to_owned()),
        ..AuditQuery::default()
    });
    assert_eq!(seqs(e, q).await, [6, 5, 3, 1]);
    let q = by(AuditQuery {
        action: Some("record.create".to_owned()),
        ..AuditQuery::default()
    });
    assert_eq!(seqs(e, q).await, [5, 3, 2]);
    let q = by(AuditQuery {
        action_prefix: Some("record.".to_owned()),
        ..AuditQuery::default()
    });
    assert_eq!(seqs(e, q).await, [6, 5, 4, 3, 2]);
    let q = by(AuditQuery {
        action_prefix: Some("record.d".to_owned()),
        ..AuditQuery::default()
    });
    assert_eq!(seqs(e, q).await, [6]);
    let q = by(AuditQuery {
        model: Some("diary".to_owned()),
        ..AuditQuery::default()
    });
    assert_eq!(seqs(e, q).await, [5]);
    let q = by(AuditQuery {
        model: Some("customer".to_owned()),
        record_id: Some(a.id),
        ..AuditQuery::default()
    });
    assert_eq!(seqs(e, q).await, [4, 2]);
    // since is inclusive, until exclusive.
    let q = by(AuditQuery {
        since: Some(all[1].at),
        until: Some(all[3].at),
        ..AuditQuery::default()
    });
    assert_eq!(seqs(e, q).await, [3, 2]);
    let q = by(AuditQuery {
        record_id: Some(RecordId::new_v7()),
        ..AuditQuery::default()
    });
    assert_eq!(seqs(e, q).await, Vec::<i64>::new());
    // Pages: after a seq, in either order, within the filters.
    let q = AuditQuery {
        after_seq: Some(4),
        limit: 2,
        ..newest.clone()
    };
    assert_eq!(seqs(e, q).await, [3, 2]);
    let q = AuditQuery {
        after_seq: Some(2),
        limit: 2,
        ..AuditQuery::default()
    };
    assert_eq!(seqs(e, q).await, [3, 4]);
    let q = AuditQuery {
        after_seq: Some(4),
        action: Some("record.create".to_owned()),
        ..newest
    };
    assert_eq!(seqs(e, q).await, [3, 2]);
}

/// Many writes at once, every other one refused (a taken unique value): SQLite's writer
/// commits them in groups, holding their entries until the group's last job, and must drop
/// a refused job's entry with its savepoint; PostgreSQL's instances chain under the lock.
/// Either way: one entry per kept write, none for a refused one, one unbroken chain.
async fn concurrent_writes_some_refused_append_one_entry_per_kept_write(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    let before = entries(e).await.len();
    let writes = (0..64).map(|i| {
        let (store, customer) = (e.store.clone(), customer.clone());
        // Pairs share an email: one of each pair is refused.
        let body = json!({"name": format!("c{i}"), "email": format!("p{}@example.org", i / 2)});
        async move {
            let d = draft(&customer, &body);
            store.create(&admin(), &customer, d, None).await
        }
    });
    let results = futures_join_all(writes).await;
    let kept: Vec<RecordId> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|c| c.record.id))
        .collect();
    assert_eq!(kept.len(), 32, "one of each pair is kept");
    for r in &results {
        if let Err(err) = r {
            assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        }
    }
    let after = entries(e).await;
    let created: Vec<RecordId> = after[before..]
        .iter()
        .filter(|x| x.action == "record.create")
        .filter_map(|x| x.record_id)
        .collect();
    assert_eq!(after.len() - before, 32, "one entry per kept write");
    let mut expected = kept.clone();
    expected.sort();
    let mut got = created;
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(verify(e).await, intact(after.len() as u64));
}

/// Awaits every future, concurrently, in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    fs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("a write task"));
    }
    out
}

/// Writes that fail after a first statement (an idempotency key claimed, then the record
/// refused for a taken unique value), at once, so that SQLite groups them: whether a
/// refused write ran first in its group (no savepoint: the transaction is begun again) or
/// later (its savepoint rolled back), its claim is gone, so a retry under the same key with
/// another body is judged afresh, and no entry is left for it.
async fn a_refused_write_in_a_group_leaves_nothing_behind(e: &Engine) {
    let s = e.migrate(decls()).await;
    let customer = model(&s, "customer");
    // Alone, so first in its group: claimed, then refused.
    e.create(
        &admin(),
        &customer,
        json!({"name": "a", "email": "taken@example.org"}),
    )
    .await;
    let taken = draft(
        &customer,
        &json!({"name": "b", "email": "taken@example.org"}),
    );
    let refused = e
        .store
        .create(&admin(), &customer, taken, claim("alone", "first"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    let fresh = draft(
        &customer,
        &json!({"name": "b", "email": "fresh@example.org"}),
    );
    let retried = e
        .store
        .create(&admin(), &customer, fresh, claim("alone", "second"))
        .await
        .expect("a retry under the refused write's key");
    assert!(!retried.replayed);
    let before = entries(e).await.len();
    let writes = (0..48).map(|i| {
        let (store, customer) = (e.store.clone(), customer.clone());
        let body = json!({"name": format!("c{i}"), "email": format!("q{}@example.org", i / 2)});
        async move {
            let d = draft(&customer, &body);
            let key = format!("key-{i}");
            store
                .create(&admin(), &customer, d, claim(&key, "first"))
                .await
        }
    });
    let results = futures_join_all(writes).await;
    let refused: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(refused.len(), 24, "one of each pair is refused");
    assert_eq!(
        entries(e).await.len() - before,
        24,
        "no entry for a refused write"
    );
    for i in refused {
        let body = json!({"name": format!("r{i}"), "email": format!("retry{i}@example.org")});
        let d = draft(&customer, &body);
        let created = e
            .store
            .create(&admin(), &customer, d, claim(&format!("key-{i}"), "second"))
            .await
            .unwrap_or_else(|err| panic!("retry {i} under its key: {err:?}"));
        assert!(!created.replayed, "retry {i} replayed a refused write");
    }
    assert_eq!(verify(e).await, intact(entries(e).await.len() as u64));
}

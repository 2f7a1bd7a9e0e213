//! What a list's answer adds: `Store::count` (the total of the list's own conditions:
//! status, filters, pii filters through the blind index, the owner scope; never its cursor
//! or limit) and `Store::get_many` (the records of many ids, whatever their status, in one
//! read).

use super::{Engine, admin, as_user, model, query, walk};
use plinth_core::{ListScope, RecordId, Role, Status};
use plinth_store::ReadFrom;
use serde_json::json;

contract!(
    counts_agree_with_the_pages_they_total,
    get_many_reads_the_named_records_whatever_their_status,
);

async fn counts_agree_with_the_pages_they_total(e: &Engine) {
    let s = e
        .migrate(json!([{"name": "item", "fields": [
            {"name": "email", "type": "string", "pii": true},
            {"name": "rank", "type": "integer", "indexed": true},
        ]}]))
        .await;
    let m = model(&s, "item");
    let ann = e.user("ann@example.com", Role::User).await;
    for i in 0..9 {
        let body =
            json!({"name": format!("n{i}"), "email": format!("u{}@example.com", i % 3), "rank": i});
        let ctx = if i % 2 == 0 { as_user(&ann) } else { admin() };
        e.create(&ctx, &m, body).await;
    }
    let gone = e
        .create(&admin(), &m, json!({"name": "gone", "rank": 100}))
        .await;
    e.store
        .delete(&admin(), &m, gone.id, None)
        .await
        .expect("delete");
    let cases: &[(&[(&str, &str)], ListScope)] = &[
        (&[], ListScope::All),
        (&[("rank[gte]", "4")], ListScope::All),
        (&[("email", "u1@example.com")], ListScope::All),
        (&[("status", "deleted")], ListScope::All),
        (&[("status[in]", "active,deleted")], ListScope::All),
        (&[], ListScope::OwnedBy(ann.id)),
        (&[("rank[lt]", "5")], ListScope::OwnedBy(ann.id)),
        (&[("name[like]", "nothing*")], ListScope::All),
    ];
    for (pairs, scope) in cases {
        let all = walk(e.store.as_ref(), &m, pairs, *scope).await;
        let mut limited = pairs.to_vec();
        limited.push(("limit", "1"));
        for from in [ReadFrom::Primary, ReadFrom::Replica] {
            let n = e
                .store
                .count(&m, &query(&m, &limited), *scope, from)
                .await
                .expect("count");
            assert_eq!(n, all.len() as u64, "{pairs:?} {scope:?}");
        }
    }
    // A cursor does not narrow the total: it counts the whole list, not what is left.
    let first = e
        .store
        .list(&m, &query(&m, &[("limit", "2")]), ListScope::All)
        .await
        .expect("list");
    let q = query(&m, &[("limit", "2")]);
    let cursor = q.next_cursor(first.records.last().expect("a full page"));
    let resumed = query(
        &m,
        &[("limit", "2"), ("cursor", &cursor), ("count", "true")],
    );
    assert!(resumed.count && resumed.after.is_some());
    let n = e
        .store
        .count(&m, &resumed, ListScope::All, ReadFrom::Primary)
        .await
        .expect("count");
    assert_eq!(n, 9);
}

async fn get_many_reads_the_named_records_whatever_their_status(e: &Engine) {
    let s = e
        .migrate(json!([{"name": "item", "fields": [
            {"name": "email", "type": "string", "pii": true},
        ]}]))
        .await;
    let m = model(&s, "item");
    let a = e
        .create(&admin(), &m, json!({"name": "a", "email": "a@example.com"}))
        .await;
    let b = e.create(&admin(), &m, json!({"name": "b"})).await;
    let c = e.create(&admin(), &m, json!({"name": "c"})).await;
    let b = e
        .store
        .delete(&admin(), &m, b.id, None)
        .await
        .expect("delete");
    let missing = RecordId::new_v7();
    for from in [ReadFrom::Primary, ReadFrom::Replica] {
        let mut got = e
            .store
            .get_many(&m, &[a.id, b.id, missing, a.id], from)
            .await
            .expect("get_many");
        got.sort_by_key(|r| r.name.clone());
        assert_eq!(got, vec![a.clone(), b.clone()], "pii opened, deleted kept");
        assert_eq!(got[1].status, Status::Deleted);
        let none = e.store.get_many(&m, &[], from).await.expect("get_many");
        assert!(none.is_empty());
    }
    let all = e
        .store
        .get_many(&m, &[c.id, b.id, a.id], ReadFrom::Primary)
        .await
        .expect("get_many");
    assert_eq!(all.len(), 3);
}

//! Lists: every filter operator (with NULLs, `like` escaping and Unicode case folding), every
//! sort (NULLs and equal values included) walked completely through cursors, the status
//! default, and the owner scope.

use super::{Engine, admin, as_user, model, patch, query, walk};
use plinth_core::{ListScope, ModelDef, Record, RecordId, Role, Status, Value};
use plinth_store::ReadFrom;
use serde_json::json;
use std::cmp::Ordering;
use std::sync::Arc;

contract!(
    every_sort_walks_every_record_once_in_order,
    eq_and_ne_treat_null_as_a_value_that_differs,
    range_operators_never_match_null,
    like_folds_case_the_unicode_way_and_star_is_the_only_wildcard,
    like_matches_percent_underscore_and_backslash_literally,
    in_matches_any_listed_value,
    deleted_records_are_hidden_unless_the_status_is_filtered,
    the_owner_scope_lists_only_that_users_records,
    reads_from_the_primary_or_a_replica_agree,
);

/// The data set: repeated names, ranks and labels, NULLs, one inactive and one deleted record,
/// and updates in another order than the creates.
struct Items {
    model: Arc<ModelDef>,
    /// Every record as it is now, deleted included.
    all: Vec<Record>,
}

impl Items {
    /// The records that are not deleted, satisfying `keep`, in the default order.
    fn expect(&self, keep: impl Fn(&Record) -> bool) -> Vec<RecordId> {
        let mut out: Vec<&Record> = self
            .all
            .iter()
            .filter(|r| r.status != Status::Deleted && keep(r))
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        out.into_iter().map(|r| r.id).collect()
    }
}

fn label(r: &Record) -> Option<&str> {
    match &r.fields[0] {
        Value::Text(t) => Some(t),
        _ => None,
    }
}

fn rank(r: &Record) -> Option<i64> {
    match r.fields[1] {
        Value::Integer(i) => Some(i),
        _ => None,
    }
}

fn ids(records: &[Record]) -> Vec<RecordId> {
    records.iter().map(|r| r.id).collect()
}

async fn items(e: &Engine) -> Items {
    let s = e
        .migrate(json!([{"name": "item", "fields": [
            {"name": "label", "type": "string", "indexed": true},
            {"name": "rank", "type": "integer", "indexed": true},
            {"name": "flag", "type": "boolean"}
        ]}]))
        .await;
    let model = model(&s, "item");
    let rows = [
        json!({"name": "apple", "label": "Crème Brûlée", "rank": 3, "flag": true}),
        json!({"name": "Banana", "label": "ÉCOLE", "rank": 1}),
        json!({"name": "apple", "rank": 3, "flag": false}),
        json!({"name": "cherry", "label": "50% off"}),
        json!({"name": "date", "label": "under_score", "rank": 2, "flag": true}),
        json!({"name": "elder", "label": "back\\slash", "rank": 3}),
        json!({"name": "fig", "label": "plain"}),
        json!({"name": "grape", "label": "ÉCOLE", "rank": 2}),
        json!({"name": "apple", "label": "école", "rank": 1}),
        json!({"name": "gone", "label": "plain", "rank": 5}),
        json!({"name": "idle", "label": "idle", "rank": 4, "status": "inactive"}),
    ];
    let mut all = Vec::new();
    for body in rows {
        all.push(e.create(&admin(), &model, body).await);
    }
    // Updates in reverse order of some creates, so `updated_at` differs from `created_at`.
    for i in [7, 2, 4] {
        all[i] = e
            .store
            .update(
                &admin(),
                &model,
                all[i].id,
                patch(&model, &json!({"flag": true})),
                None,
            )
            .await
            .expect("update");
    }
    all[9] = e
        .store
        .delete(&admin(), &model, all[9].id, None)
        .await
        .expect("delete");
    Items { model, all }
}

/// Sort values compare as the engines must: by value, NULL after every value, then by id.
fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Datetime(x), Value::Datetime(y)) => x.cmp(y),
        other => panic!("no order for {other:?}"),
    }
}

async fn every_sort_walks_every_record_once_in_order(e: &Engine) {
    let items = items(e).await;
    let sorts = [
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
        "name",
        "-name",
        "rank",
        "-rank",
        "label",
        "-label",
    ];
    type Keep = fn(&Record) -> bool;
    let filters: [(&[(&str, &str)], Keep); 2] = [
        (&[], |_| true),
        (&[("rank[ne]", "2")], |r| rank(r) != Some(2)),
    ];
    for sort in sorts {
        let column = query(&items.model, &[("sort", sort)]).sort.column;
        let descending = sort.starts_with('-');
        for (filter, keep) in &filters {
            let mut expected: Vec<&Record> = items
                .all
                .iter()
                .filter(|r| r.status != Status::Deleted && keep(r))
                .collect();
            expected.sort_by(|a, b| {
                let order = compare(&column.value_of(a), &column.value_of(b)).then(a.id.cmp(&b.id));
                if descending { order.reverse() } else { order }
            });
            let expected: Vec<RecordId> = expected.into_iter().map(|r| r.id).collect();
            for limit in ["1", "2", "4", "100"] {
                let mut pairs = vec![("sort", sort), ("limit", limit)];
                pairs.extend_from_slice(filter);
                let got = walk(e.store.as_ref(), &items.model, &pairs, ListScope::All).await;
                assert_eq!(ids(&got), expected, "{pairs:?}");
            }
        }
    }
}

async fn check(e: &Engine, items: &Items, pairs: &[(&str, &str)], keep: impl Fn(&Record) -> bool) {
    let expected = items.expect(keep);
    assert!(
        !expected.is_empty() || pairs.iter().any(|(k, _)| k.contains("like")),
        "a check with nothing to find: {pairs:?}"
    );
    for limit in ["2", "100"] {
        let mut all = pairs.to_vec();
        all.push(("limit", limit));
        let got = walk(e.store.as_ref(), &items.model, &all, ListScope::All).await;
        assert_eq!(ids(&got), expected, "{all:?}");
    }
}

async fn eq_and_ne_treat_null_as_a_value_that_differs(e: &Engine) {
    let items = items(e).await;
    check(e, &items, &[("label", "ÉCOLE")], |r| {
        label(r) == Some("ÉCOLE")
    })
    .await;
    check(e, &items, &[("label[eq]", "école")], |r| {
        label(r) == Some("école")
    })
    .await;
    check(e, &items, &[("rank[eq]", "3")], |r| rank(r) == Some(3)).await;
    check(e, &items, &[("name", "apple")], |r| r.name == "apple").await;
    check(e, &items, &[("flag", "true")], |r| {
        r.fields[2] == Value::Boolean(true)
    })
    .await;
    // `ne` keeps the records with no value: NULL is not equal to 3.
    check(e, &items, &[("rank[ne]", "3")], |r| rank(r) != Some(3)).await;
    check(e, &items, &[("label[ne]", "ÉCOLE")], |r| {
        label(r) != Some("ÉCOLE")
    })
    .await;
    check(e, &items, &[("flag[ne]", "true")], |r| {
        r.fields[2] != Value::Boolean(true)
    })
    .await;
    check(
        e,
        &items,
        &[("rank[ne]", "3"), ("label[ne]", "plain")],
        |r| rank(r) != Some(3) && label(r) != Some("plain"),
    )
    .await;
}

async fn range_operators_never_match_null(e: &Engine) {
    let items = items(e).await;
    check(e, &items, &[("rank[lt]", "3")], |r| {
        rank(r).is_some_and(|v| v < 3)
    })
    .await;
    check(e, &items, &[("rank[lte]", "3")], |r| {
        rank(r).is_some_and(|v| v <= 3)
    })
    .await;
    check(e, &items, &[("rank[gt]", "1")], |r| {
        rank(r).is_some_and(|v| v > 1)
    })
    .await;
    check(e, &items, &[("rank[gte]", "3")], |r| {
        rank(r).is_some_and(|v| v >= 3)
    })
    .await;
    check(e, &items, &[("rank[gt]", "1"), ("rank[lt]", "4")], |r| {
        rank(r).is_some_and(|v| v > 1 && v < 4)
    })
    .await;
    // Text compares by code point, as `sort=label` orders.
    check(e, &items, &[("label[gte]", "c")], |r| {
        label(r).is_some_and(|l| l >= "c")
    })
    .await;
    check(e, &items, &[("name[lt]", "b")], |r| r.name.as_str() < "b").await;
    let middle = items.all[4].created_at;
    let at = plinth_core::Value::Datetime(middle).to_json();
    let at = at.as_str().expect("a datetime is text");
    check(e, &items, &[("created_at[gt]", at)], |r| {
        r.created_at > middle
    })
    .await;
    check(e, &items, &[("created_at[lte]", at)], |r| {
        r.created_at <= middle
    })
    .await;
}

async fn like_folds_case_the_unicode_way_and_star_is_the_only_wildcard(e: &Engine) {
    let items = items(e).await;
    let folded =
        |want: &'static str| move |r: &Record| label(r).is_some_and(|l| l.to_lowercase() == want);
    // É and é are one letter to `like`, as A and a are.
    check(e, &items, &[("label[like]", "école")], folded("école")).await;
    check(e, &items, &[("label[like]", "ÉCOLE")], folded("école")).await;
    check(
        e,
        &items,
        &[("label[like]", "CRÈME BRÛLÉE")],
        folded("crème brûlée"),
    )
    .await;
    check(
        e,
        &items,
        &[("label[like]", "*BRÛLÉE")],
        folded("crème brûlée"),
    )
    .await;
    check(e, &items, &[("name[like]", "A*")], |r| r.name == "apple").await;
    check(e, &items, &[("label[like]", "*l*")], |r| {
        label(r).is_some_and(|l| l.to_lowercase().contains('l'))
    })
    .await;
    check(e, &items, &[("label[like]", "*")], |r| label(r).is_some()).await;
    // Without a star, `like` is a whole-value match.
    check(e, &items, &[("label[like]", "écol")], |_| false).await;
}

async fn like_matches_percent_underscore_and_backslash_literally(e: &Engine) {
    let items = items(e).await;
    let is = |want: &'static str| move |r: &Record| label(r) == Some(want);
    check(e, &items, &[("label[like]", "50% off")], is("50% off")).await;
    check(e, &items, &[("label[like]", "50%*")], is("50% off")).await;
    // `%` and `_` are no wildcards: these would match if they were.
    check(e, &items, &[("label[like]", "%off")], |_| false).await;
    check(e, &items, &[("label[like]", "%")], |_| false).await;
    check(e, &items, &[("label[like]", "under_scor_")], |_| false).await;
    check(e, &items, &[("label[like]", "_nder_score")], |_| false).await;
    check(
        e,
        &items,
        &[("label[like]", "under_score")],
        is("under_score"),
    )
    .await;
    // A backslash is a character like any other, not an escape.
    check(
        e,
        &items,
        &[("label[like]", "back\\slash")],
        is("back\\slash"),
    )
    .await;
    check(e, &items, &[("label[like]", "*\\*")], is("back\\slash")).await;
    check(e, &items, &[("label[like]", "back\\*")], is("back\\slash")).await;
    check(e, &items, &[("label[like]", "back\\_lash")], |_| false).await;
    check(e, &items, &[("label[like]", "back\\%")], |_| false).await;
}

async fn in_matches_any_listed_value(e: &Engine) {
    let items = items(e).await;
    check(e, &items, &[("rank[in]", "1,2")], |r| {
        matches!(rank(r), Some(1 | 2))
    })
    .await;
    check(e, &items, &[("rank[in]", "3")], |r| rank(r) == Some(3)).await;
    check(e, &items, &[("label[in]", "ÉCOLE,plain")], |r| {
        matches!(label(r), Some("ÉCOLE" | "plain"))
    })
    .await;
    check(e, &items, &[("name[in]", "apple,fig,nothing")], |r| {
        matches!(r.name.as_str(), "apple" | "fig")
    })
    .await;
}

async fn deleted_records_are_hidden_unless_the_status_is_filtered(e: &Engine) {
    let items = items(e).await;
    let all = walk(e.store.as_ref(), &items.model, &[], ListScope::All).await;
    assert_eq!(
        all.len(),
        10,
        "every record but the deleted one, inactive included"
    );
    assert!(all.iter().all(|r| r.status != Status::Deleted));
    assert!(all.iter().any(|r| r.status == Status::Inactive));
    let by = |pairs: &'static [(&'static str, &'static str)]| {
        let model = Arc::clone(&items.model);
        async move { walk(e.store.as_ref(), &model, pairs, ListScope::All).await }
    };
    let deleted = by(&[("status", "deleted")]).await;
    assert_eq!(ids(&deleted), [items.all[9].id]);
    assert_eq!(deleted[0], items.all[9]);
    let inactive = by(&[("status", "inactive")]).await;
    assert_eq!(ids(&inactive), [items.all[10].id]);
    assert_eq!(by(&[("status[ne]", "active")]).await.len(), 2);
    assert_eq!(by(&[("status[in]", "active,deleted")]).await.len(), 10);
    assert_eq!(
        by(&[("name", "gone")]).await.len(),
        0,
        "deleted stays hidden"
    );
}

async fn the_owner_scope_lists_only_that_users_records(e: &Engine) {
    let s = e.migrate(json!([])).await;
    let m = model(&s, "resource");
    let (ann, bob) = (
        e.user("ann@example.com", Role::User).await,
        e.user("bob@example.com", Role::User).await,
    );
    let mut hers = Vec::new();
    for i in 0..5 {
        hers.push(
            e.create(&as_user(&ann), &m, json!({"name": format!("a{i}")}))
                .await
                .id,
        );
        e.create(&as_user(&bob), &m, json!({"name": format!("b{i}")}))
            .await;
        e.create(&admin(), &m, json!({"name": format!("n{i}")}))
            .await;
    }
    hers.reverse();
    let got = walk(
        e.store.as_ref(),
        &m,
        &[("limit", "2")],
        ListScope::OwnedBy(ann.id),
    )
    .await;
    assert_eq!(ids(&got), hers);
    let got = walk(
        e.store.as_ref(),
        &m,
        &[("name[like]", "b*")],
        ListScope::OwnedBy(ann.id),
    )
    .await;
    assert!(got.is_empty(), "{got:?}");
    let nobody = walk(
        e.store.as_ref(),
        &m,
        &[],
        ListScope::OwnedBy(uuid::Uuid::now_v7()),
    )
    .await;
    assert!(nobody.is_empty());
    assert_eq!(
        walk(e.store.as_ref(), &m, &[], ListScope::All).await.len(),
        15
    );
}

async fn reads_from_the_primary_or_a_replica_agree(e: &Engine) {
    let items = items(e).await;
    // No replica is configured here: every read is served by the primary.
    assert!(!e.store.has_read_replica());
    // Only an engine that instances can share announces credential changes.
    assert_eq!(e.store.invalidations().is_some(), e.is_postgres());
    let q = query(&items.model, &[("sort", "name"), ("limit", "4")]);
    let page = e
        .store
        .list(&items.model, &q, ListScope::All)
        .await
        .expect("list");
    assert_eq!(page.records.len(), 4);
    assert!(page.has_more);
    for from in [ReadFrom::Primary, ReadFrom::Replica] {
        let other = e
            .store
            .list_from(&items.model, &q, ListScope::All, from)
            .await
            .expect("list_from");
        assert_eq!(
            (&other.records, other.has_more),
            (&page.records, true),
            "{from:?}"
        );
        for r in &items.all {
            let got = e
                .store
                .get_from(&items.model, r.id, from)
                .await
                .expect("get_from");
            assert_eq!(got.as_ref(), Some(r), "{from:?}");
        }
        let none = e
            .store
            .get_from(&items.model, RecordId::new_v7(), from)
            .await
            .expect("get_from");
        assert_eq!(none, None);
    }
}

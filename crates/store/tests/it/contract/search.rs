//! Full-text search in lists: stemming, ranking walked through cursors, filters, status and
//! the owner scope, writes reflected at once, and text that is never search syntax.

use super::{Engine, admin, as_user, model, patch, query, walk};
use plinth_core::{ListScope, ModelDef, Record, RecordId, Role, Value};
use serde_json::json;
use std::sync::Arc;

contract!(
    stemmed_words_match_and_every_word_is_required,
    relevance_orders_best_first_and_walks_every_match_once,
    a_search_combines_with_filters_status_and_the_owner_scope,
    updates_deletes_and_purges_show_in_the_next_search,
    hostile_text_is_words_never_syntax,
);

async fn books(e: &Engine) -> Arc<ModelDef> {
    let schema = e
        .migrate(json!([{ "name": "book", "fields": [
            { "name": "title", "type": "string", "searchable": true },
            { "name": "blurb", "type": "text", "searchable": true },
            { "name": "price", "type": "integer", "indexed": true },
            { "name": "secret", "type": "string" },
            { "name": "contact", "type": "email", "searchable": true },
        ]}]))
        .await;
    model(&schema, "book")
}

async fn book(e: &Engine, m: &Arc<ModelDef>, title: &str, blurb: &str, price: i64) -> Record {
    e.create(
        &admin(),
        m,
        json!({ "name": title, "title": title, "blurb": blurb, "price": price }),
    )
    .await
}

/// The titles a search lists (one page, default sort), sorted.
async fn found(e: &Engine, m: &Arc<ModelDef>, pairs: &[(&str, &str)]) -> Vec<String> {
    let page = e
        .store
        .list(m, &query(m, pairs), ListScope::All)
        .await
        .unwrap_or_else(|err| panic!("search {pairs:?}: {err:?}"));
    let mut titles: Vec<String> = page.records.iter().map(title).collect();
    titles.sort();
    titles
}

fn title(r: &Record) -> String {
    match &r.fields[0] {
        Value::Text(t) => t.clone(),
        other => panic!("a title: {other:?}"),
    }
}

async fn stemmed_words_match_and_every_word_is_required(e: &Engine) {
    let m = books(e).await;
    book(e, &m, "Running with Rust", "a guide", 10).await;
    book(e, &m, "Cooking", "runs of pasta, and café culture", 20).await;
    book(e, &m, "Gardening", "nothing about it", 30).await;
    assert_eq!(
        found(e, &m, &[("q", "run")]).await,
        ["Cooking", "Running with Rust"]
    );
    assert_eq!(
        found(e, &m, &[("q", "RUNS")]).await,
        ["Cooking", "Running with Rust"]
    );
    assert_eq!(
        found(e, &m, &[("q", "run rust")]).await,
        ["Running with Rust"]
    );
    assert_eq!(
        found(e, &m, &[("q", "guides")]).await,
        ["Running with Rust"]
    );
    assert!(found(e, &m, &[("q", "rust pasta")]).await.is_empty());
    // Words in a field that is not searchable are not found.
    let s = e
        .create(
            &admin(),
            &m,
            json!({ "name": "s", "title": "plain", "secret": "zebra" }),
        )
        .await;
    assert!(found(e, &m, &[("q", "zebra")]).await.is_empty());
    assert_eq!(found(e, &m, &[("q", "plain")]).await, ["plain"]);
    let _ = s;
    // An email is words too, found whole or in part on both engines.
    e.create(
        &admin(),
        &m,
        json!({ "name": "c", "title": "Contact", "contact": "ada.lovelace@example.org" }),
    )
    .await;
    for q in ["ada.lovelace@example.org", "lovelace", "example org"] {
        assert_eq!(found(e, &m, &[("q", q)]).await, ["Contact"], "q {q:?}");
    }
}

async fn relevance_orders_best_first_and_walks_every_match_once(e: &Engine) {
    let m = books(e).await;
    let best = book(e, &m, "rust rust rust", "rust", 1).await;
    let middle = book(e, &m, "rust", "a book about systems programming", 2).await;
    let last = book(
        e,
        &m,
        "Programming languages compared",
        "a long survey of many languages: c, go, java, python, and rust among the others",
        3,
    )
    .await;
    book(e, &m, "Go", "no match here", 4).await;
    let mut ties = Vec::new();
    for i in 0..7 {
        ties.push(book(e, &m, &format!("tie {i}"), "rust ties", 5).await.id);
    }
    let ranked = walk(
        &*e.store,
        &m,
        &[("q", "rust"), ("sort", "-relevance"), ("limit", "2")],
        ListScope::All,
    )
    .await;
    let ids: Vec<RecordId> = ranked.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 10, "every match once: {ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "no record twice");
    assert_eq!(ids[0], best.id, "the best first");
    let pos = |id| ids.iter().position(|x| *x == id).expect("listed");
    assert!(
        pos(middle.id) < pos(last.id),
        "a short title beats a long survey"
    );
    // Equal ranks come by id, descending like the rank.
    let tied: Vec<RecordId> = ids.iter().copied().filter(|i| ties.contains(i)).collect();
    let mut by_id = tied.clone();
    by_id.sort_by(|a, b| b.cmp(a));
    assert_eq!(tied, by_id);
    // Ascending relevance walks the same records, worst first.
    let reversed = walk(
        &*e.store,
        &m,
        &[("q", "rust"), ("sort", "relevance"), ("limit", "3")],
        ListScope::All,
    )
    .await;
    let mut back: Vec<RecordId> = reversed.iter().map(|r| r.id).collect();
    back.reverse();
    assert_eq!(back, ids);
    // Without a relevance sort a search keeps the sort asked for.
    let by_price = walk(
        &*e.store,
        &m,
        &[("q", "rust"), ("sort", "-price"), ("limit", "4")],
        ListScope::All,
    )
    .await;
    let prices: Vec<i64> = by_price
        .iter()
        .map(|r| match r.fields[2] {
            Value::Integer(p) => p,
            _ => panic!("a price"),
        })
        .collect();
    assert_eq!(prices, [5, 5, 5, 5, 5, 5, 5, 3, 2, 1]);
}

async fn a_search_combines_with_filters_status_and_the_owner_scope(e: &Engine) {
    let m = books(e).await;
    let alice = e.user("alice@example.com", Role::User).await;
    let bob = e.user("bob@example.com", Role::User).await;
    let cheap = book(e, &m, "Rust cheap", "", 5).await;
    book(e, &m, "Rust dear", "", 50).await;
    let gone = book(e, &m, "Rust gone", "", 5).await;
    e.store
        .delete(&admin(), &m, gone.id, None)
        .await
        .expect("soft delete");
    let mine = e
        .create(
            &as_user(&alice),
            &m,
            json!({ "name": "a", "title": "Rust of alice" }),
        )
        .await;
    e.create(
        &as_user(&bob),
        &m,
        json!({ "name": "b", "title": "Rust of bob" }),
    )
    .await;
    assert_eq!(
        found(e, &m, &[("q", "rust"), ("price[lt]", "10")]).await,
        ["Rust cheap"]
    );
    // Soft-deleted records never appear, unless the status is filtered (as admins may).
    assert!(
        !found(e, &m, &[("q", "gone")])
            .await
            .contains(&"Rust gone".to_owned())
    );
    assert_eq!(
        found(e, &m, &[("q", "gone"), ("status", "deleted")]).await,
        ["Rust gone"]
    );
    let scoped = walk(
        &*e.store,
        &m,
        &[("q", "rust"), ("sort", "-relevance")],
        ListScope::OwnedBy(alice.id),
    )
    .await;
    let ids: Vec<RecordId> = scoped.iter().map(|r| r.id).collect();
    assert_eq!(ids, [mine.id]);
    let _ = cheap;
}

async fn updates_deletes_and_purges_show_in_the_next_search(e: &Engine) {
    let m = books(e).await;
    let b = book(e, &m, "Alpha", "first words", 1).await;
    assert_eq!(found(e, &m, &[("q", "alpha")]).await, ["Alpha"]);
    let b = e
        .store
        .update(
            &admin(),
            &m,
            b.id,
            patch(&m, &json!({ "title": "Omega" })),
            None,
        )
        .await
        .expect("update");
    assert!(found(e, &m, &[("q", "alpha")]).await.is_empty());
    assert_eq!(found(e, &m, &[("q", "omega")]).await, ["Omega"]);
    assert_eq!(
        found(e, &m, &[("q", "first")]).await,
        ["Omega"],
        "the blurb kept"
    );
    // An update of fields the index does not hold keeps it.
    e.store
        .update(&admin(), &m, b.id, patch(&m, &json!({ "price": 9 })), None)
        .await
        .expect("update");
    assert_eq!(found(e, &m, &[("q", "omega")]).await, ["Omega"]);
    e.store
        .delete(&admin(), &m, b.id, None)
        .await
        .expect("delete");
    assert!(found(e, &m, &[("q", "omega")]).await.is_empty());
    e.store.restore(&admin(), &m, b.id).await.expect("restore");
    assert_eq!(found(e, &m, &[("q", "omega")]).await, ["Omega"]);
    e.store
        .purge(&admin(), &m, b.id, None)
        .await
        .expect("purge");
    assert!(
        found(e, &m, &[("q", "omega"), ("status", "deleted")])
            .await
            .is_empty()
    );
    assert!(found(e, &m, &[("q", "omega")]).await.is_empty());
    // A new record after a purge is indexed as itself.
    book(e, &m, "Omicron", "", 1).await;
    assert_eq!(found(e, &m, &[("q", "omicron")]).await, ["Omicron"]);
    assert!(found(e, &m, &[("q", "first")]).await.is_empty());
}

async fn hostile_text_is_words_never_syntax(e: &Engine) {
    let m = books(e).await;
    book(
        e,
        &m,
        "NEAR the OR gate",
        "\"quoted\" * stars -minus col:on",
        1,
    )
    .await;
    for q in [
        "NEAR(",
        "title:near",
        "or AND not",
        "quoted\"",
        "star*",
        "-minus",
        "col:on",
        "a\0near",
        "near) OR (1=1",
        "'; DROP TABLE book; --",
        "{title}: near",
        "日本語 near",
        "café ^near",
    ] {
        let page = e
            .store
            .list(&m, &query(&m, &[("q", q)]), ListScope::All)
            .await
            .unwrap_or_else(|err| panic!("q {q:?}: {err:?}"));
        assert!(page.records.len() <= 1, "q {q:?}");
    }
    assert_eq!(
        found(e, &m, &[("q", "title:near")]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(e, &m, &[("q", "near) OR (gate")]).await,
        ["NEAR the OR gate"]
    );
    assert_eq!(
        found(e, &m, &[("q", "'quoted'")]).await,
        ["NEAR the OR gate"]
    );
}

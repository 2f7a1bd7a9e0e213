//! The change feed across instances: a write through one instance reaches a stream open on
//! another, in order, through the shared change log (and its notice).

use super::two_instances;
use crate::helpers::id_of;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_through_one_instance_reaches_a_stream_on_the_other_in_order() {
    let Some((a, b)) =
        two_instances("a_write_through_one_instance_reaches_a_stream_on_the_other_in_order").await
    else {
        return;
    };
    let (mut on_b, _) = b.subscribe("/api/v1/resource/events").await;
    let mut written = Vec::new();
    for i in 0..10 {
        // Alternate the instances written through: the log orders them all.
        let app = if i % 3 == 0 { &b } else { &a };
        written.push(id_of(
            &app.create_ok("resource", &json!({"name": format!("r{i}")}))
                .await,
        ));
    }
    let first = &written[0];
    let (status, _) = a
        .patch("resource", first, &json!({"name": "changed on A"}), None)
        .await;
    assert!(status.is_success());
    let events = on_b.changes(11).await;
    let ids: Vec<String> = events.iter().map(|e| id_of(&e.data["record"])).collect();
    assert_eq!(ids[..10], written[..]);
    assert_eq!(ids[10], *first);
    assert_eq!(events[10].event, "updated");
    assert_eq!(events[10].data["record"]["name"], json!("changed on A"));
    let seqs: Vec<i64> = events.iter().map(|e| e.seq()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

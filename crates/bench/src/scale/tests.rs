use super::*;
use std::time::Duration;

#[test]
fn checkpoints_default_to_powers_of_ten_and_end_at_the_scale() {
    assert_eq!(
        checkpoints(1_000_000, &[]),
        Ok(vec![10_000, 100_000, 1_000_000])
    );
    assert_eq!(
        checkpoints(250_000, &[]),
        Ok(vec![10_000, 100_000, 250_000])
    );
    assert_eq!(checkpoints(3000, &[]), Ok(vec![3000]));
    assert_eq!(checkpoints(3000, &[3000, 1000, 1000]), Ok(vec![1000, 3000]));
    assert_eq!(checkpoints(3000, &[1000]), Ok(vec![1000, 3000]));
    assert!(checkpoints(3000, &[4000]).is_err());
    assert!(checkpoints(3000, &[0]).is_err());
    assert!(checkpoints(0, &[]).is_err());
}

#[test]
fn the_deep_page_follows_ninety_percent_of_the_records() {
    assert_eq!(deep_target(1_000_000), 900_000);
    assert_eq!(deep_target(1000), 900);
    assert_eq!(deep_target(15), 13);
    assert_eq!(deep_target(1), 0);
    assert_eq!(deep_target(0), 0);
    assert_eq!(deep_target(u64::MAX), u64::MAX / 10 * 9 + 4);
}

#[test]
fn the_walk_reads_full_pages_then_stops_on_the_target() {
    let mut passed = 0;
    let mut pages = Vec::new();
    while let Some(limit) = next_walk_limit(passed, 450, 200) {
        pages.push(limit);
        passed += u64::from(limit);
    }
    assert_eq!(pages, [200, 200, 50]);
    assert_eq!(passed, 450);
    assert_eq!(next_walk_limit(0, 0, 200), None);
    assert_eq!(next_walk_limit(500, 450, 200), None);
    assert_eq!(next_walk_limit(0, u64::MAX, 200), Some(200));
}

#[test]
fn list_queries_end_with_their_limit() {
    let [default, rank, filtered] = SCALE_LISTS;
    assert_eq!(default.query(default.limit), "limit=100");
    assert_eq!(rank.query(200), "sort=rank&limit=200");
    assert_eq!(
        filtered.query(filtered.limit),
        "status=active&sort=-created_at&limit=20"
    );
}

#[test]
fn latency_is_the_nearest_rank_median_and_p90() {
    let ms = |n: u64| Duration::from_millis(n);
    let l = Latency::of((1..=10).rev().map(ms).collect());
    assert_eq!((l.p50, l.p90, l.samples), (ms(5), ms(9), 10));
    let one = Latency::of(vec![ms(3)]);
    assert_eq!((one.p50, one.p90), (ms(3), ms(3)));
    assert_eq!(Latency::of(Vec::new()).p50, Duration::ZERO);
}

fn figures(list: ScaleList, first_ms: u64, deep_ms: u64) -> ListFigures {
    let ms = Duration::from_millis;
    ListFigures {
        list,
        total: 1000,
        deep_after: 900,
        pages: 5,
        walk: ms(40),
        first: Latency::of(vec![ms(first_ms)]),
        deep: Latency::of(vec![ms(deep_ms)]),
        deep_cursor: Some("c".to_owned()),
    }
}

#[test]
fn the_report_has_a_row_per_checkpoint_plans_and_the_cold_start() {
    let seed = BulkFigures {
        options: BulkOptions {
            records: 1000,
            batch_size: 1000,
            concurrency: 4,
            first: 0,
            fields: BulkFields::Features,
        },
        written: 1000,
        batches: 1,
        failed: 0,
        first_error: None,
        elapsed: Duration::from_millis(500),
    };
    let [default, rank, filtered] = SCALE_LISTS;
    let checkpoint = |records| ScaleCheckpoint {
        records,
        rss_bytes: 50 * 1_048_576,
        seed: seed.clone(),
        lists: vec![
            figures(default, 2, 3),
            figures(rank, 4, 4),
            figures(filtered, 1, 2),
        ],
    };
    let report = ScaleReport {
        url: "http://127.0.0.1:1".to_owned(),
        engine: "sqlite".to_owned(),
        checkpoints: vec![checkpoint(1000), checkpoint(3000)],
        plans: vec![Plan {
            list: rank,
            after: 900,
            lines: vec!["SEARCH resource USING INDEX resource__rank (rank>?)".to_owned()],
        }],
        cold: Some(ColdStart {
            ready: Duration::from_millis(250),
            records: 3000,
            rss_bytes: 30 * 1_048_576,
            first_request: Duration::from_millis(7),
            first: Latency::of(vec![Duration::from_millis(2)]),
        }),
    }
    .to_string();
    let row = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some("3000"))
        .unwrap_or_else(|| panic!("no row for 3000:\n{report}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "3000", "50.0", "2.000", "3.000", "1.50", "4.000", "4.000", "1.00", "1.000", "2.000",
            "2.00"
        ],
        "{report}"
    );
    assert!(report.contains("default.first"), "{report}");
    assert!(
        report
            .contains("plan of rank (sort=rank&limit=100), the page after 900 records:\n  SEARCH"),
        "{report}"
    );
    assert!(
        report
            .contains("cold start at 3000 records: 0.250 s from spawn to the first 200 of /readyz"),
        "{report}"
    );
    assert!(
        report.contains(
            "at 1000: seeded 1000 in 0.5 s (2000 records/s); deep pages after 900 of 1000 (default"
        ),
        "{report}"
    );
}

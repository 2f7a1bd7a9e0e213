//! The scale mode (`plinth bench --scale`): a server's lists, memory and restart as its
//! `resource` table grows to a million records.
//!
//! The caller runs the server (in a process of its own, so that its memory is the server's
//! alone) and drives [`ScaleServer`]: [`ScaleServer::seed_to`] each checkpoint through
//! batch writes (`bulk`), then [`ScaleServer::checkpoint`] reads the server's RSS from its
//! `/metrics` and, for each of [`SCALE_LISTS`], times the first page and a deep one: the
//! page after 90 % of the list's records ([`deep_target`]), reached by walking
//! `page.next_cursor` with the largest page the API allows ([`next_walk_limit`]). Latency
//! is of sequential requests, one at a time, so it is the server's time for that page and
//! not a queue's; the first and the deep page are requested in turns. The figures, and what the caller adds (query plans, the cold start), are
//! printed by [`ScaleReport`] (`report`).

mod report;
#[cfg(test)]
mod tests;

pub use report::{ColdStart, Latency, ListFigures, Plan, ScaleCheckpoint, ScaleReport};

use crate::bulk::{self, BulkFields, BulkFigures, BulkOptions};
use crate::{BenchError, client, loopback, soak};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use std::time::{Duration, Instant};

/// One list the scale mode measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleList {
    /// Its name in the report.
    pub name: &'static str,
    /// Its query parameters, the page size aside.
    pub params: &'static str,
    /// Its page size.
    pub limit: u32,
}

impl ScaleList {
    /// The query string of a page of `limit` records: the list's parameters, then `limit`.
    pub fn query(&self, limit: u32) -> String {
        match self.params {
            "" => format!("limit={limit}"),
            params => format!("{params}&limit={limit}"),
        }
    }
}

/// The lists measured: the default sort, a sort on the indexed `rank`, and the filtered
/// list the other workloads send.
pub const SCALE_LISTS: [ScaleList; 3] = [
    ScaleList {
        name: "default",
        params: "",
        limit: 100,
    },
    ScaleList {
        name: "rank",
        params: "sort=rank",
        limit: 100,
    },
    ScaleList {
        name: "filtered",
        params: "status=active&sort=-created_at",
        limit: 20,
    },
];

/// The checkpoints of a run to `scale` records: those given, or else every power of ten
/// from 10,000 below `scale`; `scale` itself always ends the list. Refuses a checkpoint of 0
/// or above `scale`.
pub fn checkpoints(scale: u64, given: &[u64]) -> Result<Vec<u64>, String> {
    if scale == 0 {
        return Err("--scale must be at least 1".to_owned());
    }
    let mut points: Vec<u64> = if given.is_empty() {
        std::iter::successors(Some(10_000u64), |p| p.checked_mul(10))
            .take_while(|p| *p < scale)
            .collect()
    } else {
        given.to_vec()
    };
    if let Some(bad) = points.iter().find(|p| **p == 0 || **p > scale) {
        return Err(format!(
            "checkpoint {bad} is not between 1 and the --scale of {scale}"
        ));
    }
    points.push(scale);
    points.sort_unstable();
    points.dedup();
    Ok(points)
}

/// How many records precede the deep page of a list of `total`: 90 % of them.
pub fn deep_target(total: u64) -> u64 {
    total / 10 * 9 + total % 10 * 9 / 10
}

/// The size of the walk's next page, having passed `passed` of the `target` records before
/// the deep page, in pages of at most `max`; `None` once there.
pub fn next_walk_limit(passed: u64, target: u64, max: u32) -> Option<u32> {
    let left = target.checked_sub(passed).filter(|l| *l > 0)?;
    Some(u32::try_from(left).map_or(max, |l| l.min(max)))
}

/// A server being measured: its URL, clients, and how many records the run has seeded.
#[derive(Debug)]
pub struct ScaleServer {
    base: String,
    /// Sends the API key on every request.
    api: reqwest::Client,
    /// Without the API key: `/metrics` refuses any bearer but the metrics token.
    plain: reqwest::Client,
    metrics_token: Option<String>,
    key: String,
    seeded: u64,
    samples: usize,
    walk_limit: u32,
}

/// One page of a list as the walk reads it.
struct Walked {
    records: u64,
    next_cursor: Option<String>,
}

impl ScaleServer {
    /// The server at `url` (loopback only), not yet signed in. Pages are timed `samples`
    /// times; the walk reads pages of `walk_limit`; `/metrics` is sent `metrics_token`.
    pub fn new(
        url: &str,
        metrics_token: Option<String>,
        samples: usize,
        walk_limit: u32,
    ) -> Result<Self, BenchError> {
        let plain = client(None, 1)?;
        Ok(Self {
            base: loopback(url)?,
            api: plain.clone(),
            plain,
            metrics_token,
            key: String::new(),
            seeded: 0,
            samples: samples.max(1),
            walk_limit: walk_limit.max(1),
        })
    }

    /// Signs in as `email` and makes an API key for the run (an access token could expire
    /// during it), then checks that `resource` holds no record yet.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Result<(), BenchError> {
        let base = &self.base;
        let login = serde_json::json!({ "email": email, "password": password });
        let answer = json(
            self.plain
                .post(format!("{base}/api/v1/auth/login"))
                .json(&login),
        )
        .await?;
        let token = text_at(&answer, "/data/access_token", "the login")?;
        let signed = client(Some(&token), 1)?;
        let name = serde_json::json!({ "name": "plinth bench --scale" });
        let answer = json(
            signed
                .post(format!("{base}/api/v1/auth/api-keys"))
                .json(&name),
        )
        .await?;
        self.key = text_at(&answer, "/data/key", "the API key")?;
        self.api = client(Some(&self.key), 4)?;
        let held = self.count(&SCALE_LISTS[0]).await?;
        if held > 0 {
            return Err(BenchError::Server(format!(
                "resource already holds {held} records: the scale mode needs an empty database \
                 (with DATABASE_URL, name a fresh scratch database)"
            )));
        }
        Ok(())
    }

    /// The same server after a restart: new connections (the old ones went with the
    /// process), the same key.
    pub fn reconnect(&mut self) -> Result<(), BenchError> {
        self.api = client(Some(&self.key), 4)?;
        self.plain = client(None, 1)?;
        Ok(())
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Records seeded so far.
    pub fn seeded(&self) -> u64 {
        self.seeded
    }

    /// Inserts records through batch writes until the run has seeded `records`: batches of
    /// 1,000 creates, 4 in flight, each create as [`BulkFields::Features`]. A failed batch
    /// fails the run.
    pub async fn seed_to(&mut self, records: u64) -> Result<BulkFigures, BenchError> {
        let opts = BulkOptions {
            records: records.saturating_sub(self.seeded),
            batch_size: 1000,
            concurrency: 4,
            first: self.seeded,
            fields: BulkFields::Features,
        };
        let figures = bulk::run(&self.api, &self.base, opts).await?;
        self.seeded += figures.written;
        if let Some(first) = &figures.first_error {
            return Err(BenchError::Server(format!(
                "seeding failed: {} of {} batches; the first: {first}",
                figures.failed, figures.batches
            )));
        }
        Ok(figures)
    }

    /// The figures at this checkpoint: the server's RSS, then each list's first and deep
    /// pages.
    pub async fn checkpoint(&self, seed: BulkFigures) -> Result<ScaleCheckpoint, BenchError> {
        let rss_bytes = self.rss().await?;
        let mut lists = Vec::with_capacity(SCALE_LISTS.len());
        for list in SCALE_LISTS {
            lists.push(self.list_figures(list).await?);
        }
        Ok(ScaleCheckpoint {
            records: self.seeded,
            rss_bytes,
            seed,
            lists,
        })
    }

    /// The server's resident memory, from its `/metrics`.
    pub async fn rss(&self) -> Result<u64, BenchError> {
        let url = format!("{}/metrics", self.base);
        soak::fetch_rss(&self.plain, self.metrics_token.as_deref(), &url)
            .await
            .map_err(BenchError::Server)
    }

    /// Whether `/readyz` answers 200 now.
    pub async fn ready(&self) -> bool {
        let url = format!("{}/readyz", self.base);
        matches!(self.plain.get(url).send().await, Ok(r) if r.status().is_success())
    }

    /// After a restart that took `ready`: the RSS, then the default list's first page, its
    /// very first request apart.
    pub async fn cold_start(&self, ready: Duration) -> Result<ColdStart, BenchError> {
        let rss_bytes = self.rss().await?;
        let list = SCALE_LISTS[0];
        let query = list.query(list.limit);
        let first_request = self.timed(&query, None).await?;
        let first = self.latency(&query, None).await?;
        Ok(ColdStart {
            ready,
            records: self.seeded,
            rss_bytes,
            first_request,
            first,
        })
    }

    async fn list_figures(&self, list: ScaleList) -> Result<ListFigures, BenchError> {
        let total = self.count(&list).await?;
        let target = deep_target(total);
        let started = Instant::now();
        let (mut passed, mut pages, mut cursor) = (0u64, 0u64, None::<String>);
        while let Some(limit) = next_walk_limit(passed, target, self.walk_limit) {
            let page = self.walk(&list.query(limit), cursor.as_deref()).await?;
            passed += page.records;
            pages += 1;
            cursor = match page.next_cursor {
                Some(next) if page.records > 0 => Some(next),
                _ => {
                    return Err(BenchError::Server(format!(
                        "the walk of the {} list ended after {passed} of its {total} records",
                        list.name
                    )));
                }
            };
        }
        let walk = started.elapsed();
        let query = list.query(list.limit);
        let (first, deep) = self.in_turns(&query, cursor.as_deref()).await?;
        Ok(ListFigures {
            list,
            total,
            deep_after: passed,
            pages,
            walk,
            first,
            deep,
            deep_cursor: cursor,
        })
    }

    /// How many records `list` holds (`count=true`).
    async fn count(&self, list: &ScaleList) -> Result<u64, BenchError> {
        let url = format!("{}/api/v1/resource?{}&count=true", self.base, list.query(1));
        let answer = json(self.api.get(url)).await?;
        answer
            .pointer("/page/total")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| BenchError::Server(format!("no page.total in {answer}")))
    }

    async fn walk(&self, query: &str, cursor: Option<&str>) -> Result<Walked, BenchError> {
        let answer = json(self.page(query, cursor)).await?;
        let records = answer["data"].as_array().map_or(0, Vec::len) as u64;
        let next_cursor = answer
            .pointer("/page/next_cursor")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Ok(Walked {
            records,
            next_cursor,
        })
    }

    fn page(&self, query: &str, cursor: Option<&str>) -> reqwest::RequestBuilder {
        let mut url = format!("{}/api/v1/resource?{query}", self.base);
        if let Some(c) = cursor {
            url.push_str("&cursor=");
            url.extend(utf8_percent_encode(c, NON_ALPHANUMERIC));
        }
        self.api.get(url)
    }

    /// The first page and the page at `cursor`, each requested once untimed, then `samples`
    /// times each in turns (first, deep, first, …): a change in the machine's load meets
    /// both alike, so their ratio stays the server's.
    async fn in_turns(
        &self,
        query: &str,
        cursor: Option<&str>,
    ) -> Result<(Latency, Latency), BenchError> {
        self.timed(query, None).await?;
        self.timed(query, cursor).await?;
        let mut first = Vec::with_capacity(self.samples);
        let mut deep = Vec::with_capacity(self.samples);
        for _ in 0..self.samples {
            first.push(self.timed(query, None).await?);
            deep.push(self.timed(query, cursor).await?);
        }
        Ok((Latency::of(first), Latency::of(deep)))
    }

    /// `samples` sequential requests of a page, after one not counted (it warms the
    /// connection).
    async fn latency(&self, query: &str, cursor: Option<&str>) -> Result<Latency, BenchError> {
        self.timed(query, cursor).await?;
        let mut samples = Vec::with_capacity(self.samples);
        for _ in 0..self.samples {
            samples.push(self.timed(query, cursor).await?);
        }
        Ok(Latency::of(samples))
    }

    /// One request of a page, body read: its time, or why it failed.
    async fn timed(&self, query: &str, cursor: Option<&str>) -> Result<Duration, BenchError> {
        let started = Instant::now();
        let res = self.page(query, cursor).send().await.map_err(transport)?;
        let status = res.status();
        let body = res.bytes().await.map_err(transport)?;
        let took = started.elapsed();
        if !status.is_success() {
            return Err(BenchError::Server(format!(
                "GET /api/v1/resource?{query}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(took)
    }
}

fn transport(e: reqwest::Error) -> BenchError {
    BenchError::Server(format!("a request failed: {e}"))
}

/// Sends `req` and reads its JSON answer, which must be a 2xx.
async fn json(req: reqwest::RequestBuilder) -> Result<serde_json::Value, BenchError> {
    let res = req.send().await.map_err(transport)?;
    let (status, url) = (res.status(), res.url().path().to_owned());
    let body = res.text().await.map_err(transport)?;
    if !status.is_success() {
        return Err(BenchError::Server(format!("{url}: HTTP {status}: {body}")));
    }
    serde_json::from_str(&body)
        .map_err(|e| BenchError::Server(format!("{url}: the answer is not JSON: {e}")))
}

fn text_at(answer: &serde_json::Value, pointer: &str, what: &str) -> Result<String, BenchError> {
    answer
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BenchError::Server(format!("{what}: no {pointer} in {answer}")))
}

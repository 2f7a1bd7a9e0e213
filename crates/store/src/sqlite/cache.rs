//! Records read by id, kept in memory for the next get of the same id.
//!
//! Only the serving process keeps them, and only on SQLite, where it is the one process
//! that writes records (`migrate`, `import` and `restore` are refused beside it; `plinth
//! keys rotate` seals values again beside it, which changes no opened value) and the
//! writer thread its one connection that does. Every record write logs its change with
//! the batch's audit entries (see `recent`), so after each commit, before any write of the
//! batch is answered, the writer drops the records the batch changed; a job run alone (a
//! migration, an import, a restore), a batch whose changes were not all kept, and a new
//! schema drop them all. A get answered after a write's answer never sees the record as
//! it was before the write.
//!
//! A get that misses reads the database, then keeps what it read only if nothing was
//! dropped from its shard since it missed: its read may have begun before a commit that
//! changed the record, and the drop that commit made may have come before the record was
//! kept. Records are kept as read, sealed fields opened: the same plaintext a get holds
//! while it answers, for longer (see docs/security.md).
//!
//! Bounded in bytes (an estimate of each record's heap), least recently read out first.

use super::SqliteStore;
use crate::StoreError;
use crate::sql::{ready, records};
use hashlink::LruCache;
use plinth_core::{ModelDef, Record, RecordId, Value};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Shards, each behind its own lock: gets of different records rarely wait for each other.
const SHARDS: usize = 16;

/// What a kept record is counted at beyond its values: the entry, its links and the map's
/// slot.
const ENTRY: usize = 128;

/// The kept records.
#[derive(Debug)]
pub(super) struct RecordCache {
    shards: Box<[Mutex<Shard>]>,
    /// Most bytes kept per shard; 0: nothing is kept.
    budget: usize,
}

#[derive(Debug)]
struct Shard {
    /// Bumped by every drop from this shard.
    drops: u64,
    /// Gets answered from this shard, and gets that missed.
    hits: u64,
    misses: u64,
    kept: LruCache<RecordId, Kept>,
    bytes: usize,
}

#[derive(Debug)]
struct Kept {
    /// The model it was read as: a get of another model, or of the same one after a new
    /// schema, does not find it.
    model: Arc<ModelDef>,
    record: Record,
    bytes: usize,
    /// The keys' generation it was read under: once they are read again, a value it holds
    /// may be under a key no longer held, and it is read again.
    keys: u64,
}

/// A get that missed: where and when, so what it reads is kept only if nothing was dropped
/// from its shard meanwhile.
#[derive(Debug)]
pub(super) struct Missed {
    shard: usize,
    drops: u64,
    keys: u64,
}

impl RecordCache {
    /// A cache of at most `bytes` (estimated); 0 keeps nothing.
    pub(super) fn new(bytes: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    drops: 0,
                    hits: 0,
                    misses: 0,
                    kept: LruCache::new_unbounded(),
                    bytes: 0,
                })
            })
            .collect();
        Self {
            shards,
            budget: bytes / SHARDS,
        }
    }

    fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn index(id: RecordId) -> usize {
        // The low bits of a UUIDv7 are random.
        (id.as_uuid().as_u128() as usize) % SHARDS
    }

    /// The record `id` of `model`, when kept under the keys' generation `keys`; otherwise
    /// what [`keep`](Self::keep) needs.
    pub(super) fn get(
        &self,
        model: &Arc<ModelDef>,
        id: RecordId,
        keys: u64,
    ) -> Result<Record, Missed> {
        let i = Self::index(id);
        if self.budget == 0 {
            // Off: no lock taken, nothing counted; `keep` keeps nothing.
            return Err(Missed {
                shard: i,
                drops: 0,
                keys,
            });
        }
        let mut s = self.shard(i);
        if let Some(k) = s.kept.get(&id)
            && Arc::ptr_eq(&k.model, model)
            && k.keys == keys
        {
            let found = k.record.clone();
            s.hits += 1;
            return Ok(found);
        }
        s.misses += 1;
        Err(Missed {
            shard: i,
            drops: s.drops,
            keys,
        })
    }

    /// Keeps `record`, read after `missed`, unless something was dropped from its shard
    /// since (it may have been read as it was before that write).
    pub(super) fn keep(&self, missed: Missed, model: &Arc<ModelDef>, record: &Record) {
        let bytes = ENTRY + record_bytes(record);
        if bytes > self.budget {
            return;
        }
        let mut s = self.shard(missed.shard);
        if s.drops != missed.drops {
            return;
        }
        let kept = Kept {
            model: Arc::clone(model),
            record: record.clone(),
            bytes,
            keys: missed.keys,
        };
        if let Some(old) = s.kept.insert(record.id, kept) {
            s.bytes -= old.bytes;
        }
        s.bytes += bytes;
        while s.bytes > self.budget {
            let Some((_, out)) = s.kept.remove_lru() else {
                break;
            };
            s.bytes -= out.bytes;
        }
    }

    /// Drops the records `ids` (their writes committed).
    pub(super) fn drop_ids(&self, ids: impl IntoIterator<Item = RecordId>) {
        if self.budget == 0 {
            return;
        }
        for id in ids {
            let mut s = self.shard(Self::index(id));
            s.drops += 1;
            if let Some(out) = s.kept.remove(&id) {
                s.bytes -= out.bytes;
            }
        }
    }

    /// Its hits, misses and size now; `None` when it keeps nothing.
    pub(super) fn stats(&self) -> Option<crate::stats::CacheStats> {
        if self.budget == 0 {
            return None;
        }
        let mut all = crate::stats::CacheStats::default();
        for i in 0..SHARDS {
            let s = self.shard(i);
            all.hits += s.hits;
            all.misses += s.misses;
            all.records += s.kept.len() as u64;
            all.bytes += s.bytes as u64;
        }
        Some(all)
    }

    /// Drops every record.
    pub(super) fn clear(&self) {
        for i in 0..SHARDS {
            let mut s = self.shard(i);
            s.drops += 1;
            s.kept.clear();
            s.bytes = 0;
        }
    }
}

impl SqliteStore {
    /// `Store::get`: the kept record, or the database's, kept for the next get.
    pub(super) async fn get_kept(
        &self,
        model: &Arc<ModelDef>,
        id: RecordId,
    ) -> Result<Option<Record>, StoreError> {
        let keys = self.inner.keys.generation();
        let missed = match self.inner.records.get(model, id, keys) {
            Ok(kept) => return Ok(Some(kept)),
            Err(missed) => missed,
        };
        let read = self
            .read_point(|c| ready(records::get(c, &self.inner.keys, model, id)))
            .await?;
        if let Some(r) = &read {
            self.inner.records.keep(missed, model, r);
        }
        Ok(read)
    }

    /// `Store::engine_stats`: the writer's, and the kept records'.
    pub(super) fn engine_stats_now(&self) -> crate::EngineStats {
        crate::EngineStats {
            record_cache: self.inner.records.stats(),
            ..self.inner.writer.stats()
        }
    }
}

/// An estimate of the heap a copy of `r` holds.
fn record_bytes(r: &Record) -> usize {
    std::mem::size_of::<Record>()
        + r.name.len()
        + r.fields.len() * std::mem::size_of::<Value>()
        + r.fields.iter().map(value_bytes).sum::<usize>()
}

fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Text(s) => s.len(),
        Value::Array(items) => {
            items.len() * std::mem::size_of::<Value>()
                + items.iter().map(value_bytes).sum::<usize>()
        }
        // Its text, a fair measure of a parsed JSON value's heap.
        Value::Json(j) => 2 * j.to_string().len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::{ENTRY, RecordCache, SHARDS, record_bytes};
    use plinth_core::{ModelDef, Record, RecordId, Schema, Status, Timestamp};
    use std::sync::Arc;

    fn model() -> Arc<ModelDef> {
        let schema = Schema::from_decls(&[]).expect("the default schema");
        Arc::clone(schema.model("resource").expect("resource"))
    }

    /// A record whose id falls in shard `shard`.
    fn record(shard: usize, n: u8) -> Record {
        let mut bytes = [n; 16];
        bytes[15] = u8::try_from(shard).expect("a shard");
        Record {
            id: RecordId::from_uuid(uuid::Uuid::from_bytes(bytes)),
            name: format!("r{n}"),
            status: Status::Active,
            created_at: Timestamp::from_system(std::time::UNIX_EPOCH),
            updated_at: Timestamp::from_system(std::time::UNIX_EPOCH),
            owner_id: None,
            version: 1,
            fields: Vec::new(),
        }
    }

    #[test]
    fn a_read_that_missed_before_a_drop_from_its_shard_is_not_kept() {
        let (cache, m) = (RecordCache::new(1 << 20), model());
        let (r, beside, elsewhere) = (record(3, 1), record(3, 2), record(4, 3));
        // Missed, then the record's write committed (and dropped it): what the read found
        // may be the record as it was.
        let missed = cache.get(&m, r.id, 0).expect_err("nothing kept yet");
        cache.drop_ids([r.id]);
        cache.keep(missed, &m, &r);
        assert!(cache.get(&m, r.id, 0).is_err());
        // A drop of another record of the same shard also stops it; one elsewhere does not.
        let missed = cache.get(&m, r.id, 0).expect_err("nothing kept");
        cache.drop_ids([beside.id]);
        cache.keep(missed, &m, &r);
        assert!(cache.get(&m, r.id, 0).is_err());
        let missed = cache.get(&m, r.id, 0).expect_err("nothing kept");
        cache.drop_ids([elsewhere.id]);
        cache.keep(missed, &m, &r);
        assert_eq!(cache.get(&m, r.id, 0).ok(), Some(r.clone()));
        // Once the keys are read again, it is read again too.
        assert!(cache.get(&m, r.id, 1).is_err());
        // So does a clear, and the clear drops what was kept.
        let missed = cache.get(&m, beside.id, 0).expect_err("nothing kept");
        cache.clear();
        cache.keep(missed, &m, &beside);
        assert!(cache.get(&m, beside.id, 0).is_err() && cache.get(&m, r.id, 0).is_err());
    }

    #[test]
    fn past_its_budget_the_least_recently_read_record_goes() {
        let m = model();
        let each = ENTRY + record_bytes(&record(0, 1));
        // Room for two records a shard.
        let cache = RecordCache::new(SHARDS * (2 * each + each / 2));
        let (a, b, c) = (record(0, 1), record(0, 2), record(0, 3));
        for r in [&a, &b] {
            let missed = cache.get(&m, r.id, 0).expect_err("nothing kept yet");
            cache.keep(missed, &m, r);
        }
        // `a` read again: `b` is now the least recently read.
        assert!(cache.get(&m, a.id, 0).is_ok());
        let missed = cache.get(&m, c.id, 0).expect_err("nothing kept yet");
        cache.keep(missed, &m, &c);
        assert!(cache.get(&m, a.id, 0).is_ok() && cache.get(&m, c.id, 0).is_ok());
        assert!(cache.get(&m, b.id, 0).is_err());
        // A record bigger than a shard's budget is not kept; a cache of 0 keeps nothing.
        let mut big = record(1, 4);
        big.name = "x".repeat(3 * each);
        let missed = cache.get(&m, big.id, 0).expect_err("nothing kept yet");
        cache.keep(missed, &m, &big);
        assert!(cache.get(&m, big.id, 0).is_err());
        let none = RecordCache::new(0);
        let missed = none.get(&m, a.id, 0).expect_err("nothing kept");
        none.keep(missed, &m, &a);
        assert!(none.get(&m, a.id, 0).is_err());
    }
}

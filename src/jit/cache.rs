//! The code cache: every live compiled trace, keyed by a versioned
//! `TraceId`, under a byte budget with least-recently-used eviction.
//!
//! Owns trace lifetimes. Everything else refers to a trace by `TraceId`
//! (loop slots, side-trace links, a side trace's parent): a `slotmap` key
//! carries a version, so a reference to a trace that has since been evicted
//! or invalidated fails to look up instead of reaching freed code. Lookups
//! through `lookup` are the cache's hits and misses. Must not decide *when*
//! traces are made or dropped for correctness (that is `state`).

use slotmap::{new_key_type, SlotMap};

use super::backend::CompiledTrace;
use super::state::TraceRecord;

new_key_type! {
    /// A compiled trace in the code cache.
    pub struct TraceId;
}

/// What the cache counts.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheStats {
    /// Entries into compiled code: from the interpreter, through a side
    /// exit or through a link (the machine code counts the latter two).
    pub hits: u64,
    /// Times the VM looked for compiled code at a hot point and found none:
    /// a hot loop, entry or exit without a trace yet, or a reference to a
    /// trace that was evicted or invalidated.
    pub misses: u64,
    /// Traces dropped to stay within the byte limit.
    pub evictions: u64,
}

impl CacheStats {
    /// Hits as a share of all lookups, in percent.
    pub fn hit_rate(&self) -> f64 {
        let all = self.hits + self.misses;
        if all == 0 {
            100.0
        } else {
            self.hits as f64 * 100.0 / all as f64
        }
    }
}

pub struct CodeCache {
    traces: SlotMap<TraceId, TraceRecord>,
    /// Most machine-code bytes the live traces may occupy.
    pub limit: usize,
    /// Machine-code bytes the live traces occupy.
    bytes: usize,
    /// Advances on every trace entry; a trace's `last_used` is a reading.
    clock: u64,
    /// Misses and evictions; hits are summed from the traces' counters.
    stats: CacheStats,
    /// Entries into traces that have left the cache.
    retired_entries: u64,
}

impl CodeCache {
    pub fn new(limit: usize) -> CodeCache {
        CodeCache {
            traces: SlotMap::with_key(),
            limit,
            bytes: 0,
            clock: 0,
            stats: CacheStats::default(),
            retired_entries: 0,
        }
    }

    /// Hits are entries into traces; a merged side trace's entries are
    /// branches inside its root's code, not lookups, and do not count.
    pub fn stats(&self) -> CacheStats {
        let live: u64 = self.traces.values().filter(|t| t.merged_into.is_none()).map(|t| t.entries()).sum();
        CacheStats { hits: self.retired_entries + live, ..self.stats }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The trace `id`, if it is still live. Not counted as a lookup.
    pub fn get(&self, id: TraceId) -> Option<&TraceRecord> {
        self.traces.get(id)
    }

    pub fn get_mut(&mut self, id: TraceId) -> Option<&mut TraceRecord> {
        self.traces.get_mut(id)
    }

    pub fn contains(&self, id: Option<TraceId>) -> bool {
        id.is_some_and(|id| self.traces.contains_key(id))
    }

    /// `Some(id)` when `id` names a live trace; a miss is counted otherwise
    /// (a hit is counted by the trace when it is entered).
    pub fn lookup(&mut self, id: Option<TraceId>) -> Option<TraceId> {
        match id {
            Some(id) if self.traces.contains_key(id) => Some(id),
            _ => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Counts a miss that did not go through `lookup` (a hot loop found no trace).
    pub fn miss(&mut self) {
        self.stats.misses += 1;
    }

    /// Marks `id` as just used, for LRU.
    pub fn touch(&mut self, id: TraceId) {
        self.clock += 1;
        if let Some(t) = self.traces.get_mut(id) {
            t.last_used = self.clock;
        }
    }

    /// Adds a compiled trace, first evicting least recently used traces (and
    /// the side traces grown from them) until it fits. `keep` (the new
    /// trace's ancestors) are not evicted. Returns the new id and the
    /// evicted traces; when it cannot fit, drops the record and returns the
    /// traces evicted on the way as the error. The caller must unhook every
    /// evicted trace (their link cells point into code about to be freed).
    pub fn insert(
        &mut self,
        mut record: TraceRecord,
        keep: &[TraceId],
    ) -> Result<(TraceId, Vec<TraceRecord>), Vec<TraceRecord>> {
        let size = record.code.code_bytes();
        let mut evicted = Vec::new();
        let kept: usize = keep.iter().filter_map(|&k| self.traces.get(k)).map(|t| t.code.code_bytes()).sum();
        if kept + size > self.limit {
            // Evicting everything else would not make room.
            return Err(evicted);
        }
        if self.bytes + size > self.limit {
            // Traces reached only through links never pass `touch`: count a
            // trace entered since the last look as used now.
            self.clock += 1;
            for t in self.traces.values_mut() {
                if t.entries() != t.seen_entries {
                    t.seen_entries = t.entries();
                    t.last_used = self.clock;
                }
            }
        }
        while self.bytes + size > self.limit {
            let victim = self
                .traces
                .iter()
                .filter(|(id, _)| !keep.contains(id))
                .min_by_key(|(_, t)| t.last_used)
                .map(|(id, _)| id);
            let Some(victim) = victim else { break };
            for t in self.remove_tree(victim) {
                self.stats.evictions += 1;
                evicted.push(t);
            }
        }
        if self.bytes + size > self.limit {
            return Err(evicted);
        }
        self.clock += 1;
        record.last_used = self.clock;
        self.bytes += size;
        Ok((self.traces.insert(record), evicted))
    }

    /// The root whose code runs side trace `id` inline, or `id`.
    pub fn merged_root(&self, id: TraceId) -> TraceId {
        self.traces.get(id).and_then(|t| t.merged_into).filter(|r| self.traces.contains_key(*r)).unwrap_or(id)
    }

    /// Puts `code` in place of live trace `id`'s and returns the old code,
    /// or `None` (keeping the old) if the difference would not fit.
    pub fn replace_code(&mut self, id: TraceId, code: CompiledTrace) -> Option<CompiledTrace> {
        let t = self.traces.get_mut(id)?;
        let bytes = self.bytes - t.code.code_bytes() + code.code_bytes();
        if bytes > self.limit {
            return None;
        }
        self.bytes = bytes;
        Some(std::mem::replace(&mut t.code, code))
    }

    /// Removes `id` and every side trace grown from it (their only way in
    /// is through it); a side trace merged into its root takes the root's
    /// tree with it. Frees their machine code when the records are dropped.
    pub fn remove_tree(&mut self, id: TraceId) -> Vec<TraceRecord> {
        let id = self.merged_root(id);
        let mut out = Vec::new();
        let mut work = vec![id];
        while let Some(t) = work.pop() {
            let Some(rec) = self.traces.remove(t) else { continue };
            self.bytes -= rec.code.code_bytes();
            if rec.merged_into.is_none() {
                self.retired_entries += rec.entries();
            }
            work.extend(self.traces.iter().filter(|(_, r)| r.parent.is_some_and(|(p, _)| p == t)).map(|(k, _)| k));
            out.push(rec);
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = (TraceId, &TraceRecord)> {
        self.traces.iter()
    }
}

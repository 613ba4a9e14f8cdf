//! One collection's vectors: a flat f32 store (exact search, rescoring, persistence) plus an
//! HNSW graph once the collection is large enough.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;

use super::hnsw::Hnsw;
use super::persist::StoredEntry;
use super::{HnswParams, Quantization, VectorIndexError};

/// How collections build and search their graphs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GraphConfig {
    pub(crate) params: HnswParams,
    pub(crate) quantization: Quantization,
}

impl GraphConfig {
    /// Whether a collection of `len` vectors should have a graph. Hysteresis: a graph is built at
    /// `exact_below` and dropped only below half of it, so a collection hovering around the
    /// threshold does not rebuild its graph on every change.
    fn wants_graph(&self, len: usize, has_graph: bool) -> bool {
        let threshold = self.params.exact_below;
        if has_graph { len > 0 && len >= threshold / 2 } else { len > 0 && len >= threshold }
    }

    /// Candidates asked of the graph for a top-`k` query: the whole search beam when the graph
    /// holds quantized vectors (rescoring in f32 then recovers the order), else `k`.
    fn pool(&self, k: usize) -> usize {
        match self.quantization {
            Quantization::F32 => k,
            _ => k.max(self.params.ef_search).max(2 * k),
        }
    }
}

/// A chunk id with its cosine similarity, ordered by similarity (then id, for determinism).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scored {
    pub(crate) score: f32,
    pub(crate) id: u64,
}

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    /// Better (higher score, then lower id) sorts *first*, so a max-heap pops the worst.
    fn cmp(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then(self.id.cmp(&other.id))
    }
}

/// Keeps the best `k` of what it is offered.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Scored>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    #[inline]
    pub(crate) fn offer(&mut self, item: Scored) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(item);
        } else if self.heap.peek().is_some_and(|worst| item < *worst) {
            self.heap.pop();
            self.heap.push(item);
        }
    }

    /// Best first.
    pub(crate) fn into_sorted(self) -> Vec<Scored> {
        self.heap.into_sorted_vec()
    }
}

/// Dot product written so that LLVM vectorises it (16 independent lanes).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    let mut acc = [0.0f32; 16];
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The vectors of one collection.
pub(crate) struct Collection {
    dims: usize,
    ids: Vec<u64>,
    /// `ids.len() * dims` normalised components, slot after slot.
    vectors: Vec<f32>,
    slots: HashMap<u64, usize>,
    graph: Option<Hnsw>,
    /// Bumped on every change; persistence compares it with what it last wrote.
    version: u64,
    /// What is on disk for this collection, and the version it holds.
    stored: Mutex<Option<(u64, StoredEntry)>>,
}

impl Collection {
    pub(crate) fn new(dims: usize) -> Self {
        Collection {
            dims,
            ids: Vec::new(),
            vectors: Vec::new(),
            slots: HashMap::new(),
            graph: None,
            version: 1,
            stored: Mutex::new(None),
        }
    }

    /// A collection from stored parts (ids must be unique).
    pub(crate) fn from_parts(dims: usize, ids: Vec<u64>, vectors: Vec<f32>) -> Result<Self, VectorIndexError> {
        let mut slots = HashMap::with_capacity(ids.len());
        for (slot, &id) in ids.iter().enumerate() {
            if slots.insert(id, slot).is_some() {
                return Err(VectorIndexError::Corrupt(format!("chunk {id} stored twice")));
            }
        }
        Ok(Collection { dims, ids, vectors, slots, graph: None, version: 1, stored: Mutex::new(None) })
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Records that `entry` holds this collection as it is now.
    pub(crate) fn mark_stored(&self, entry: StoredEntry) {
        self.mark_stored_at(self.version, entry);
    }

    /// Records that `entry` holds this collection as it was at `version`.
    pub(crate) fn mark_stored_at(&self, version: u64, entry: StoredEntry) {
        *self.stored.lock().unwrap_or_else(|e| e.into_inner()) = Some((version, entry));
    }

    /// The stored entry, if it still holds this collection as it is now.
    pub(crate) fn current_entry(&self) -> Option<StoredEntry> {
        let stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        stored.as_ref().filter(|(version, _)| *version == self.version).map(|(_, entry)| entry.clone())
    }

    pub(crate) fn ids(&self) -> &[u64] {
        &self.ids
    }

    pub(crate) fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    pub(crate) fn graph(&self) -> Option<&Hnsw> {
        self.graph.as_ref()
    }

    pub(crate) fn set_graph(&mut self, graph: Hnsw) {
        self.graph = Some(graph);
    }

    fn vector(&self, slot: usize) -> &[f32] {
        &self.vectors[slot * self.dims..(slot + 1) * self.dims]
    }

    /// Bytes held: f32 vectors, ids and the graph.
    pub(crate) fn memory_usage(&self) -> usize {
        self.vectors.capacity() * 4
            + self.ids.capacity() * 8
            + self.slots.capacity() * 24
            + self.graph.as_ref().map_or(0, Hnsw::memory_usage)
    }

    /// Writes `vector` (normalised, `dims` long) into the flat store. Returns whether the id is new.
    fn put(&mut self, id: u64, vector: &[f32]) -> bool {
        self.version += 1;
        if let Some(&slot) = self.slots.get(&id) {
            self.vectors[slot * self.dims..(slot + 1) * self.dims].copy_from_slice(vector);
            false
        } else {
            self.slots.insert(id, self.ids.len());
            self.ids.push(id);
            self.vectors.extend_from_slice(vector);
            true
        }
    }

    /// Adds or replaces the vectors of `items` (normalised), then keeps the graph in step.
    pub(crate) fn upsert_many(
        &mut self,
        items: &[(u64, Vec<f32>)],
        config: &GraphConfig,
    ) -> Result<(), VectorIndexError> {
        let mut changed = Vec::with_capacity(items.len());
        for (id, vector) in items {
            let is_new = self.put(*id, vector);
            if let Some(graph) = &self.graph
                && !is_new
            {
                graph.remove(*id)?;
            }
            changed.push(*id);
        }
        if self.graph.is_some() {
            changed.sort_unstable();
            changed.dedup();
            if let Err(error) = self.add_to_graph(&changed) {
                // The graph no longer matches the vectors: drop it (searches turn exact) and let
                // the next change rebuild it.
                self.graph = None;
                return Err(error);
            }
        }
        self.adjust_graph(config)
    }

    /// Removes `id`; returns whether it was there.
    pub(crate) fn remove(&mut self, id: u64, config: &GraphConfig) -> Result<bool, VectorIndexError> {
        let Some(slot) = self.slots.remove(&id) else {
            return Ok(false);
        };
        self.version += 1;
        let last = self.ids.len() - 1;
        if slot != last {
            let moved = self.ids[last];
            self.ids[slot] = moved;
            self.vectors.copy_within(last * self.dims..(last + 1) * self.dims, slot * self.dims);
            self.slots.insert(moved, slot);
        }
        self.ids.pop();
        self.vectors.truncate(last * self.dims);
        if let Some(graph) = &self.graph
            && let Err(error) = graph.remove(id)
        {
            self.graph = None;
            return Err(error);
        }
        self.adjust_graph(config)?;
        Ok(true)
    }

    /// Builds the graph when the collection has grown past the threshold, drops it when it has
    /// shrunk well below.
    pub(crate) fn adjust_graph(&mut self, config: &GraphConfig) -> Result<(), VectorIndexError> {
        match (self.graph.is_some(), config.wants_graph(self.len(), self.graph.is_some())) {
            (false, true) => {
                self.graph = Some(Hnsw::new(self.dims, &config.params, config.quantization, self.len())?);
                let ids = self.ids.clone();
                if let Err(error) = self.add_to_graph(&ids) {
                    self.graph = None;
                    return Err(error);
                }
            }
            (true, false) => self.graph = None,
            _ => {}
        }
        Ok(())
    }

    /// Inserts the stored vectors of `ids` into the graph, using every core.
    fn add_to_graph(&self, ids: &[u64]) -> Result<(), VectorIndexError> {
        let Some(graph) = &self.graph else {
            return Ok(());
        };
        graph.reserve(ids.len())?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(ids.len().div_ceil(256)).max(1);
        if threads == 1 {
            return ids.iter().try_for_each(|id| graph.add(*id, self.vector(self.slots[id])));
        }
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        ids.iter()
                            .skip(t)
                            .step_by(threads)
                            .try_for_each(|id| graph.add(*id, self.vector(self.slots[id])))
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|worker| {
                worker.join().unwrap_or_else(|_| Err(VectorIndexError::Backend("graph insert thread panicked".into())))
            })
        })
    }

    /// Top `k` by cosine similarity: through the graph when there is one (candidates rescored
    /// with the exact f32 vectors), else exactly.
    pub(crate) fn search(&self, query: &[f32], k: usize, config: &GraphConfig, top: &mut TopK) {
        let Some(graph) = &self.graph else {
            return self.search_exact(query, top);
        };
        match graph.candidates(query, config.pool(k)) {
            Ok(candidates) => {
                let mut mine = Vec::with_capacity(candidates.len());
                for id in candidates {
                    if let Some(&slot) = self.slots.get(&id) {
                        mine.push(Scored { score: dot(query, self.vector(slot)), id });
                    }
                }
                if mine.len() < k.min(self.len()) {
                    // The graph came up short (possible after many removals): never answer
                    // with fewer than `k` when the collection has them.
                    return self.search_exact(query, top);
                }
                mine.into_iter().for_each(|s| top.offer(s));
            }
            Err(error) => {
                tracing::warn!(%error, "HNSW search failed; answering by exact search");
                self.search_exact(query, top);
            }
        }
    }

    /// Offers every vector's exact similarity to `top`.
    pub(crate) fn search_exact(&self, query: &[f32], top: &mut TopK) {
        for (slot, vector) in self.vectors.chunks_exact(self.dims).enumerate() {
            top.offer(Scored { score: dot(query, vector), id: self.ids[slot] });
        }
    }
}

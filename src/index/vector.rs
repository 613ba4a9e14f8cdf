//! TEMPORARY exact-search stand-in with the agreed interface; replaced by the HNSW index.
use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

#[derive(Clone, Debug)]
pub struct HnswParams { pub connectivity: usize, pub ef_construction: usize, pub ef_search: usize, pub exact_below: usize }
impl From<&crate::config::RetrievalConfig> for HnswParams {
    fn from(c: &crate::config::RetrievalConfig) -> Self {
        HnswParams { connectivity: c.hnsw_connectivity, ef_construction: c.hnsw_ef_construction, ef_search: c.hnsw_ef_search, exact_below: c.exact_below }
    }
}
#[derive(Debug, thiserror::Error)]
pub enum VectorIndexError { #[error("dimension mismatch: expected {expected}, got {got}")] DimensionMismatch { expected: usize, got: usize } }
pub struct VectorIndex { dims: usize, data: RwLock<HashMap<String, HashMap<u64, Vec<f32>>>>, wm: RwLock<i64> }
impl VectorIndex {
    pub fn open(_dir: &Path, dims: usize, _params: HnswParams) -> Result<Self, VectorIndexError> { Ok(VectorIndex { dims, data: Default::default(), wm: RwLock::new(0) }) }
    pub fn dims(&self) -> usize { self.dims }
    pub fn upsert(&self, collection: &str, id: u64, vector: &[f32]) -> Result<(), VectorIndexError> {
        if vector.len() != self.dims { return Err(VectorIndexError::DimensionMismatch { expected: self.dims, got: vector.len() }); }
        let n = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        self.data.write().unwrap().entry(collection.to_owned()).or_default().insert(id, vector.iter().map(|x| x / n).collect()); Ok(())
    }
    pub fn remove(&self, collection: &str, id: u64) -> Result<(), VectorIndexError> { if let Some(c) = self.data.write().unwrap().get_mut(collection) { c.remove(&id); } Ok(()) }
    pub fn remove_collection(&self, collection: &str) -> Result<(), VectorIndexError> { self.data.write().unwrap().remove(collection); Ok(()) }
    pub fn search(&self, collections: &[String], query: &[f32], k: usize) -> Result<Vec<(u64, f32)>, VectorIndexError> { self.search_exact(collections, query, k) }
    pub fn search_exact(&self, collections: &[String], query: &[f32], k: usize) -> Result<Vec<(u64, f32)>, VectorIndexError> {
        let n = query.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        let data = self.data.read().unwrap();
        let mut out: Vec<(u64, f32)> = collections.iter().filter_map(|c| data.get(c)).flat_map(|c| c.iter().map(|(id, v)| (*id, v.iter().zip(query).map(|(a, b)| a * b / n).sum()))).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1)); out.truncate(k); Ok(out)
    }
    pub fn len(&self) -> usize { self.data.read().unwrap().values().map(|c| c.len()).sum() }
    pub fn is_empty(&self) -> bool { self.len() == 0 }
    pub fn collection_len(&self, collection: &str) -> usize { self.data.read().unwrap().get(collection).map_or(0, |c| c.len()) }
    pub fn watermark(&self) -> i64 { *self.wm.read().unwrap() }
    pub fn persist(&self, watermark: i64) -> Result<(), VectorIndexError> { *self.wm.write().unwrap() = watermark; Ok(()) }
    pub fn clear(&self) -> Result<(), VectorIndexError> { self.data.write().unwrap().clear(); *self.wm.write().unwrap() = 0; Ok(()) }
}

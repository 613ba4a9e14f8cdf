//! Derived search indexes: [`bm25`] (tantivy) and [`vector`] (HNSW / exact), both rebuilt from the store.
pub mod bm25;
pub mod vector;

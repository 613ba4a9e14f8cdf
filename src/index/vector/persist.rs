//! On-disk layout of the vector index, and crash-safe persistence.
//!
//! ```text
//! <dir>/manifest.json            dims, watermark, generation, and per collection its files
//! <dir>/<hash>-<gen>.vec         ids + normalised f32 vectors of one collection
//! <dir>/<hash>-<gen>.hnsw        that collection's usearch graph (large collections only)
//! ```
//!
//! `<hash>` is the BLAKE3 of the collection name (names are arbitrary user strings) and `<gen>`
//! the persist generation that wrote the file. A persist writes the files of changed
//! collections under a new generation, syncs them, then replaces the manifest atomically
//! (temp file, fsync, rename, fsync of the directory). The manifest is the commit point: a
//! crash leaves either the old manifest with the old files or the new one with the new files.
//! Files no manifest references are deleted afterwards. Every file's length and BLAKE3 are in
//! the manifest, so a torn or altered file is detected on open.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::VectorIndexError;
use super::collection::{Collection, GraphConfig};
use super::hnsw::Hnsw;

const MANIFEST: &str = "manifest.json";
const MANIFEST_TMP: &str = "manifest.json.tmp";
const FORMAT: u32 = 1;
const MAGIC: [u8; 8] = *b"FNVEC\x01\0\0";
const CHUNK: usize = 1 << 20;

/// The commit record of a persisted index.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) format: u32,
    pub(crate) dims: usize,
    pub(crate) watermark: i64,
    pub(crate) generation: u64,
    pub(crate) collections: Vec<StoredEntry>,
}

/// One persisted collection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    pub(crate) name: String,
    pub(crate) count: usize,
    pub(crate) vectors: FileRef,
    pub(crate) graph: Option<FileRef>,
}

/// A file in the index directory, with what it must contain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FileRef {
    pub(crate) file: String,
    pub(crate) len: u64,
    pub(crate) blake3: String,
}

fn corrupt(what: impl Into<String>) -> VectorIndexError {
    VectorIndexError::Corrupt(what.into())
}

/// Hashes and counts what passes through.
struct Hashing<T> {
    inner: T,
    hasher: blake3::Hasher,
    len: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing { inner, hasher: blake3::Hasher::new(), len: 0 }
    }
    fn digest(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Reads the manifest; `None` when there is none yet.
pub(crate) fn read_manifest(dir: &Path) -> Result<Option<Manifest>, VectorIndexError> {
    let text = match fs::read(dir.join(MANIFEST)) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| corrupt(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(corrupt(format!("{MANIFEST}: format {} (this build reads {FORMAT})", manifest.format)));
    }
    Ok(Some(manifest))
}

/// Replaces the manifest atomically and durably.
pub(crate) fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), VectorIndexError> {
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| VectorIndexError::Backend(e.to_string()))?;
    let tmp = dir.join(MANIFEST_TMP);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(MANIFEST))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), VectorIndexError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// The largest generation found in the directory's file names (so a fresh start after a
/// corrupt manifest never reuses a name).
pub(crate) fn max_generation(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.split_once('-')?.1.split_once('.')?.0.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

fn stem(name: &str) -> String {
    blake3::hash(name.as_bytes()).to_hex()[..32].to_string()
}

/// Writes `collection`'s files under `generation` and syncs them.
pub(crate) fn write_collection(
    dir: &Path,
    name: &str,
    generation: u64,
    dims: usize,
    collection: &Collection,
) -> Result<StoredEntry, VectorIndexError> {
    let base = format!("{}-{generation}", stem(name));
    let vec_name = format!("{base}.vec");
    let file = File::create(dir.join(&vec_name))?;
    let mut out = Hashing::new(BufWriter::with_capacity(CHUNK, file));
    out.write_all(&MAGIC)?;
    out.write_all(&(dims as u32).to_le_bytes())?;
    out.write_all(&0u32.to_le_bytes())?;
    out.write_all(&(collection.len() as u64).to_le_bytes())?;
    let mut buf = Vec::with_capacity(CHUNK);
    for ids in collection.ids().chunks(CHUNK / 8) {
        buf.clear();
        ids.iter().for_each(|id| buf.extend_from_slice(&id.to_le_bytes()));
        out.write_all(&buf)?;
    }
    for values in collection.vectors().chunks(CHUNK / 4) {
        buf.clear();
        values.iter().for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
        out.write_all(&buf)?;
    }
    out.flush()?;
    let vectors = FileRef { file: vec_name, len: out.len, blake3: out.digest() };
    let file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;

    let graph = match collection.graph() {
        None => None,
        Some(graph) => {
            let graph_name = format!("{base}.hnsw");
            let path = dir.join(&graph_name);
            graph.save(&path)?;
            let file = File::open(&path)?;
            file.sync_all()?;
            let (len, blake3) = hash_file(file)?;
            Some(FileRef { file: graph_name, len, blake3 })
        }
    };
    Ok(StoredEntry { name: name.to_owned(), count: collection.len(), vectors, graph })
}

fn hash_file(file: File) -> Result<(u64, String), VectorIndexError> {
    let mut reader = Hashing::new(file);
    io::copy(&mut reader, &mut io::sink())?;
    Ok((reader.len, reader.digest()))
}

fn check(dir: &Path, file: &FileRef, got_len: u64, got_hash: &str) -> Result<(), VectorIndexError> {
    if got_len != file.len || got_hash != file.blake3 {
        return Err(corrupt(format!("{}: content does not match the manifest", dir.join(&file.file).display())));
    }
    Ok(())
}

fn read_exact_or_corrupt(reader: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), VectorIndexError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => corrupt(format!("{what}: truncated")),
        _ => e.into(),
    })
}

/// Reads one collection's vectors (verified) and its graph, rebuilding the graph when its file
/// is unusable. Returns the collection and whether it matches `entry` exactly on disk.
pub(crate) fn read_collection(
    dir: &Path,
    entry: &StoredEntry,
    dims: usize,
    config: &GraphConfig,
) -> Result<(Collection, bool), VectorIndexError> {
    let what = entry.vectors.file.as_str();
    let file = File::open(dir.join(what))?;
    if file.metadata()?.len() != entry.vectors.len {
        return Err(corrupt(format!("{what}: length does not match the manifest")));
    }
    let mut input = Hashing::new(BufReader::with_capacity(CHUNK, file));
    let mut header = [0u8; 24];
    read_exact_or_corrupt(&mut input, &mut header, what)?;
    let stored_dims = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
    let count = u64::from_le_bytes(header[16..24].try_into().unwrap_or_default()) as usize;
    if header[..8] != MAGIC || stored_dims != dims || count != entry.count {
        return Err(corrupt(format!("{what}: header does not match the manifest")));
    }
    let expected = 24 + count as u64 * 8 + count as u64 * dims as u64 * 4;
    if expected != entry.vectors.len {
        return Err(corrupt(format!("{what}: size does not match its header")));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let n = (count - ids.len()).min(CHUNK / 8);
        read_exact_or_corrupt(&mut input, &mut buf[..n * 8], what)?;
        ids.extend(buf[..n * 8].chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())));
    }
    let total = count * dims;
    let mut vectors = Vec::with_capacity(total);
    while vectors.len() < total {
        let n = (total - vectors.len()).min(CHUNK / 4);
        read_exact_or_corrupt(&mut input, &mut buf[..n * 4], what)?;
        vectors.extend(buf[..n * 4].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap_or_default())));
    }
    check(dir, &entry.vectors, input.len, &input.digest())?;
    let mut collection = Collection::from_parts(dims, ids, vectors)?;

    let mut intact = true;
    if let Some(graph_ref) = &entry.graph {
        match load_graph(dir, graph_ref, dims, config, count) {
            Ok(graph) => collection.set_graph(graph),
            Err(error) => {
                tracing::warn!(collection = %entry.name, %error, "HNSW graph unusable; rebuilding it from the vectors");
                intact = false;
            }
        }
    }
    let had_graph = collection.graph().is_some();
    collection.adjust_graph(config)?;
    intact &= had_graph == collection.graph().is_some() && had_graph == entry.graph.is_some();
    Ok((collection, intact))
}

fn load_graph(
    dir: &Path,
    file: &FileRef,
    dims: usize,
    config: &GraphConfig,
    count: usize,
) -> Result<Hnsw, VectorIndexError> {
    let path = dir.join(&file.file);
    let (len, hash) = hash_file(File::open(&path)?)?;
    check(dir, file, len, &hash)?;
    Hnsw::load(&path, dims, &config.params, config.quantization, count)
}

/// Deletes the index files that `manifest` does not reference (left by earlier generations,
/// removed collections or an interrupted persist). Failures are only logged.
pub(crate) fn remove_unreferenced(dir: &Path, manifest: &Manifest) {
    let keep: HashSet<&str> = manifest
        .collections
        .iter()
        .flat_map(|c| std::iter::once(c.vectors.file.as_str()).chain(c.graph.as_ref().map(|g| g.file.as_str())))
        .collect();
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let ours = name.ends_with(".vec") || name.ends_with(".hnsw");
        if ours
            && !keep.contains(name.as_str())
            && let Err(error) = fs::remove_file(entry.path())
        {
            tracing::warn!(file = %name, %error, "could not delete an old vector index file");
        }
    }
}

/// Loads every collection of `manifest`; any unreadable vector file fails the whole load.
pub(crate) fn read_all(
    dir: &Path,
    manifest: &Manifest,
    dims: usize,
    config: &GraphConfig,
) -> Result<HashMap<String, Collection>, VectorIndexError> {
    let mut collections = HashMap::with_capacity(manifest.collections.len());
    for entry in &manifest.collections {
        let (collection, intact) = read_collection(dir, entry, dims, config)?;
        if intact {
            collection.mark_stored(entry.clone());
        }
        if collections.insert(entry.name.clone(), collection).is_some() {
            return Err(corrupt(format!("collection {:?} listed twice", entry.name)));
        }
    }
    Ok(collections)
}

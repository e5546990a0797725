//! CLIP vectors of a catalog's images, for semantic search in the BioMed workspace.
//!
//! One embedding file (`datasets::embeddings` format) per shard and model lives in the
//! cache folder, named by a hash of the shard's path, size and mtime and of the model,
//! so a changed shard or another model never reuses stale vectors. Embedding goes shard
//! by shard; a cancel saves the shard's finished batches as `.part`, and the next run
//! resumes from there, so neither a cancel nor a restart loses more than one batch.

use super::catalog::{Catalog, ItemId};
use super::tar_index::Ext;
use crate::datasets::embeddings::{self, EmbeddingIndex};
use crate::image_cache::ImageSource;
use image::RgbImage;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Turns a batch of images into one vector each (the CLIP image tower, or a stand-in in
/// tests).
pub type Encoder<'a> = dyn Fn(&[RgbImage]) -> Result<Vec<Vec<f32>>, String> + 'a;

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

/// What an embedding pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmbedStats {
    pub shards: usize,
    /// Shards whose vectors came from the cache.
    pub cached_shards: usize,
    /// Images embedded in this pass.
    pub embedded_now: usize,
    /// Samples without a decodable image (no vector).
    pub skipped: usize,
    /// One line per skipped image, naming it (bounded).
    pub problems: Vec<String>,
}

/// The vector file of `shard` for `model_key` (any string naming the weights).
pub fn shard_file(cache_dir: &Path, shard: &Path, model_key: &str) -> PathBuf {
    let abs = std::path::absolute(shard).unwrap_or_else(|_| shard.to_path_buf());
    let (len, mtime) = std::fs::metadata(shard)
        .map(|m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (m.len(), t)
        })
        .unwrap_or_default();
    let mut h = fnv1a(0xcbf2_9ce4_8422_2325, abs.as_os_str().as_encoded_bytes());
    h = fnv1a(h, &len.to_le_bytes());
    h = fnv1a(h, &mtime.to_le_bytes());
    let m = fnv1a(0xcbf2_9ce4_8422_2325, model_key.as_bytes());
    let stem = shard
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("shard");
    cache_dir
        .join("vectors")
        .join(format!("{stem}-{h:016x}-{m:08x}.loupe-emb", m = m as u32))
}

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn part_file(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// The vectors of one shard and the catalog item of each row.
struct Part {
    index: EmbeddingIndex,
    items: Vec<ItemId>,
}

/// Every vector of a catalog, by item.
pub struct VectorTable {
    pub model_id: String,
    pub dim: usize,
    parts: Vec<Part>,
    /// Per catalog item: (part, row), or `None` without a vector.
    row_of: Vec<Option<(u32, u32)>>,
    pub stats: EmbedStats,
}

impl VectorTable {
    /// How many items have a vector.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.items.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has(&self, id: ItemId) -> bool {
        self.row_of.get(id as usize).is_some_and(Option::is_some)
    }

    /// The stored (f16-rounded, unit-length) vector of an item.
    pub fn vector(&self, id: ItemId) -> Option<Vec<f32>> {
        let (p, r) = (*self.row_of.get(id as usize)?)?;
        Some(self.parts[p as usize].index.vector(r as usize))
    }

    /// Cosine of `query` with every item's vector, indexed by item id; NaN for items
    /// without one.
    pub fn scores(&self, query: &[f32]) -> Vec<f32> {
        let mut out = vec![f32::NAN; self.row_of.len()];
        let per_part: Vec<Vec<f32>> = self
            .parts
            .par_iter()
            .map(|p| p.index.scores(query))
            .collect();
        for (part, scores) in self.parts.iter().zip(per_part) {
            for (&id, s) in part.items.iter().zip(scores) {
                if let Some(slot) = out.get_mut(id as usize) {
                    *slot = s;
                }
            }
        }
        out
    }
}

/// Map a file's keys onto the shard's items: rows are written in item order, so one
/// forward walk matches them; a key not found that way falls back to a lookup.
fn rows_to_items(keys: &[String], catalog: &Catalog, items: &[ItemId]) -> Vec<Option<ItemId>> {
    let mut at = 0usize;
    let mut by_key: Option<HashMap<&str, ItemId>> = None;
    keys.iter()
        .map(|k| {
            while at < items.len() && catalog.key(items[at]) != k {
                at += 1;
            }
            if at < items.len() {
                at += 1;
                return Some(items[at - 1]);
            }
            let map =
                by_key.get_or_insert_with(|| items.iter().map(|&i| (catalog.key(i), i)).collect());
            map.get(k.as_str()).copied()
        })
        .collect()
}

/// Items of each shard, in id order.
fn items_by_shard(catalog: &Catalog) -> Vec<Vec<ItemId>> {
    let mut out = vec![Vec::new(); catalog.shards.len()];
    for id in 0..catalog.len() as ItemId {
        if let Some(it) = catalog.item(id)
            && let Some(v) = out.get_mut(usize::from(it.shard))
        {
            v.push(id);
        }
    }
    out
}

/// An index file of the right model, or `None` (missing, unreadable or another model:
/// then it is rebuilt).
fn open_matching(path: &Path, model_id: &str, dim: usize) -> Option<EmbeddingIndex> {
    let idx = EmbeddingIndex::open(path).ok()?;
    (idx.model_id == model_id && idx.dim == dim).then_some(idx)
}

/// Embed every image of `catalog` not yet in the cache, then open all its vectors.
/// `progress` gets (fraction, message); `cancelled` is checked between batches.
#[allow(clippy::too_many_arguments)]
pub fn embed_catalog(
    catalog: &Catalog,
    cache_dir: &Path,
    model_id: &str,
    model_key: &str,
    dim: usize,
    batch: usize,
    encode: &Encoder<'_>,
    progress: &(dyn Fn(f32, String) + Sync),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<VectorTable, VectorError> {
    let by_shard = items_by_shard(catalog);
    let total: usize = by_shard.iter().map(Vec::len).sum::<usize>().max(1);
    let mut stats = EmbedStats {
        shards: catalog.shards.len(),
        ..Default::default()
    };
    let mut parts = Vec::new();
    let mut done = 0usize;
    for (s, items) in by_shard.iter().enumerate() {
        let shard = &catalog.shards[s].path;
        let file = shard_file(cache_dir, shard, model_key);
        let index = match open_matching(&file, model_id, dim) {
            Some(idx) => {
                stats.cached_shards += 1;
                idx
            }
            None => {
                let name = shard
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let at = |k: usize| (done + k) as f32 / total as f32;
                let shard_progress =
                    |k: usize| progress(at(k), format!("{name}: {k} of {}", items.len()));
                embed_shard(
                    catalog,
                    items,
                    &file,
                    model_id,
                    dim,
                    batch,
                    encode,
                    &shard_progress,
                    cancelled,
                    &mut stats,
                )?
            }
        };
        done += items.len();
        progress(done as f32 / total as f32, format!("{} vectors", done));
        let rows = rows_to_items(&index.keys, catalog, items);
        parts.push((index, rows));
    }
    let mut row_of = vec![None; catalog.len()];
    let parts = parts
        .into_iter()
        .enumerate()
        .map(|(p, (index, rows))| {
            let mut items = Vec::with_capacity(rows.len());
            for (r, id) in rows.into_iter().enumerate() {
                // A row whose key is not in the catalog any more maps to nothing; it
                // keeps its place so row numbers stay the file's.
                let id = id.unwrap_or(ItemId::MAX);
                if let Some(slot) = row_of.get_mut(id as usize) {
                    *slot = Some((p as u32, r as u32));
                }
                items.push(id);
            }
            Part { index, items }
        })
        .collect();
    Ok(VectorTable {
        model_id: model_id.to_owned(),
        dim,
        parts,
        row_of,
        stats,
    })
}

#[allow(clippy::too_many_arguments)]
fn embed_shard(
    catalog: &Catalog,
    items: &[ItemId],
    file: &Path,
    model_id: &str,
    dim: usize,
    batch: usize,
    encode: &Encoder<'_>,
    progress: &dyn Fn(usize),
    cancelled: &(dyn Fn() -> bool + Sync),
    stats: &mut EmbedStats,
) -> Result<EmbeddingIndex, VectorError> {
    let failed = |e: String| VectorError::Failed(e);
    let part = part_file(file);
    // Resume: the finished batches of a cancelled run.
    let mut entries: Vec<(String, Vec<f32>)> = match open_matching(&part, model_id, dim) {
        Some(idx) => (0..idx.len())
            .map(|i| (idx.keys[i].clone(), idx.vector(i)))
            .collect(),
        None => Vec::new(),
    };
    let mut seen: std::collections::HashSet<String> =
        entries.iter().map(|(k, _)| k.clone()).collect();
    let todo: Vec<ItemId> = items
        .iter()
        .copied()
        .filter(|&i| !seen.contains(catalog.key(i)))
        .collect();
    let save = |entries: &[(String, Vec<f32>)], path: &Path| -> Result<(), VectorError> {
        let bytes = embeddings::encode(model_id, dim, entries).map_err(failed)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        }
        crate::atomic::write_atomic(path, &bytes)
            .map_err(|e| failed(format!("{}: {e}", path.display())))
    };
    let mut processed = items.len() - todo.len();
    for chunk in todo.chunks(batch.max(1)) {
        if cancelled() {
            save(&entries, &part)?;
            return Err(VectorError::Cancelled);
        }
        progress(processed);
        processed += chunk.len();
        // Decoding (JPEGs up to tens of megapixels) runs on all cores; the model then
        // takes the batch.
        let decoded: Vec<(ItemId, Result<RgbImage, String>)> = chunk
            .par_iter()
            .map(|&id| {
                let img = match catalog.member(id, Ext::Jpg) {
                    Some((path, offset, len)) => ImageSource::Member { path, offset, len }
                        .decode()
                        .map(|i| i.to_rgb8()),
                    None => Err(format!("{}: no .jpg member", catalog.key(id))),
                };
                (id, img)
            })
            .collect();
        let mut keys = Vec::new();
        let mut images = Vec::new();
        for (id, img) in decoded {
            match img {
                Ok(img) if img.width() > 0 && img.height() > 0 => {
                    keys.push(catalog.key(id).to_owned());
                    images.push(img);
                }
                Ok(_) => skip(stats, format!("{}: empty image", catalog.key(id))),
                Err(e) => skip(stats, e),
            }
        }
        if images.is_empty() {
            continue;
        }
        let vectors = encode(&images).map_err(failed)?;
        if vectors.len() != images.len() || vectors.iter().any(|v| v.len() != dim) {
            return Err(failed(format!(
                "the model returned {} vectors for {} images",
                vectors.len(),
                images.len()
            )));
        }
        stats.embedded_now += keys.len();
        for (k, v) in keys.into_iter().zip(vectors) {
            seen.insert(k.clone());
            entries.push((k, v));
        }
    }
    // Rows in item order, so the forward walk of `rows_to_items` matches them.
    let position: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, &id)| (catalog.key(id), i))
        .collect();
    entries.sort_by_key(|(k, _)| position.get(k.as_str()).copied().unwrap_or(usize::MAX));
    save(&entries, file)?;
    let _ = std::fs::remove_file(&part);
    EmbeddingIndex::open(file).map_err(|e| failed(e.to_string()))
}

fn skip(stats: &mut EmbedStats, why: String) {
    stats.skipped += 1;
    if stats.problems.len() < 100 {
        stats.problems.push(why);
    }
}

//! BIOMEDICA (arXiv 2501.07171): figure–caption samples shipped as WebDataset tar shards
//! (`<key>.jpg`, `<key>.txt`, `<key>.json`) and as Parquet.
//!
//! - [`tar_index`] walks a shard's headers in one pass, seeking over image data and
//!   reading only the small caption and the JSON fields the grid filters on, and
//!   records damage precisely (which file, offset, member, what is wrong).
//! - [`sidecar`] stores that per-shard index next to a cache key of the shard's size and
//!   mtime, so reopening a shard costs one small read.
//! - [`catalog`] merges shard indexes into a compact, interned item table that filters,
//!   duplicate groups and the caption search run over.
//! - [`meta`] parses a sample's JSON leniently (the fields' types vary between samples).
//! - [`parquet`] reads the Parquet edition into the same records.
//! - [`synth`] writes synthetic shards for the benchmark and tests.

pub mod catalog;
pub mod export;
pub mod meta;
pub mod parquet;
pub mod rank;
pub mod search;
pub mod sidecar;
pub mod synth;
pub mod tar_index;
pub mod taxonomy;
pub mod vectors;
pub mod zero_shot;

pub use catalog::{Catalog, Filter, ItemId};
pub use meta::{IndexFields, SampleMeta};
pub use tar_index::{
    Ext, MemberRef, Problem, ProblemKind, SampleRecord, ShardIndex, StructuralError, index_shard,
};

/// The licence subset a shard belongs to, from the folder it sits in (the Hub layout is
/// `commercial/000000.tar`, `noncommercial/…`, `other/…`).
pub fn subset_of(path: &std::path::Path) -> String {
    path.parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .filter(|n| matches!(*n, "commercial" | "noncommercial" | "other"))
        .unwrap_or("")
        .to_owned()
}

/// Every `.tar` and `.parquet` under `root` (or `root` itself if it is a file), sorted,
/// so shard order and therefore item order is stable between runs.
pub fn find_shards(root: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    if root.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("tar") || e.eq_ignore_ascii_case("parquet"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What [`build_catalog`] did.
#[derive(Clone, Debug, Default)]
pub struct IndexStats {
    pub shards: usize,
    /// Shards indexed now (the rest came from their sidecars).
    pub built: usize,
    pub bytes: u64,
    pub samples: usize,
    /// Shards that could not be opened at all, with the reason.
    pub failed: Vec<String>,
}

/// Find the shards under `roots`, load or build each one's index in parallel (on the
/// calling rayon pool), and merge them in path order. Progress is reported as the
/// fraction of shard bytes done. A cancelled run keeps the sidecars it finished, so the
/// next run resumes where this one stopped.
pub fn build_catalog(
    roots: &[std::path::PathBuf],
    sidecar_dir: &std::path::Path,
    progress: &(dyn Fn(f32, String) + Sync),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<(Catalog, IndexStats), tar_index::IndexError> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let mut stats = IndexStats::default();
    let mut shards = Vec::new();
    for root in roots {
        match find_shards(root) {
            Ok(found) => shards.extend(found),
            Err(err) => stats.failed.push(format!("{}: {err}", root.display())),
        }
    }
    shards.sort();
    shards.dedup();
    let sizes: Vec<u64> = shards
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .collect();
    let total = sizes.iter().sum::<u64>().max(1);
    let done = AtomicU64::new(0);
    let finished = AtomicUsize::new(0);
    let results: Vec<_> = shards
        .par_iter()
        .zip(&sizes)
        .map(|(path, &size)| {
            if cancelled() {
                return Err(tar_index::IndexError::Cancelled);
            }
            // The Parquet edition is read through a WebDataset copy in the cache.
            let is_parquet = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
            let result = if is_parquet {
                match parquet::to_shard(path, sidecar_dir, cancelled) {
                    Ok(copy) => sidecar::load_or_build(&copy, sidecar_dir, cancelled),
                    Err(e) if e.is::<parquet::Cancelled>() => Err(tar_index::IndexError::Cancelled),
                    Err(e) => Err(tar_index::IndexError::Io {
                        path: path.clone(),
                        source: std::io::Error::other(format!("{e:#}")),
                    }),
                }
            } else {
                sidecar::load_or_build(path, sidecar_dir, cancelled)
            };
            let bytes = done.fetch_add(size, Ordering::Relaxed) + size;
            let n = finished.fetch_add(1, Ordering::Relaxed) + 1;
            progress(
                bytes as f32 / total as f32,
                format!("{n} of {} shards", shards.len()),
            );
            match result {
                Err(tar_index::IndexError::Cancelled) => Err(tar_index::IndexError::Cancelled),
                other => Ok(other),
            }
        })
        .collect::<Result<_, _>>()?;
    let mut catalog = Catalog::default();
    for (result, size) in results.into_iter().zip(sizes) {
        match result {
            Ok((index, origin)) => {
                stats.shards += 1;
                stats.bytes += size;
                stats.samples += index.samples.len();
                if origin == sidecar::Origin::Built {
                    stats.built += 1;
                }
                catalog.add_shard(index);
            }
            Err(err) => stats.failed.push(err.to_string()),
        }
    }
    catalog.finish();
    Ok((catalog, stats))
}

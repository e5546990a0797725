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
pub mod meta;
pub mod parquet;
pub mod search;
pub mod sidecar;
pub mod synth;
pub mod tar_index;
pub mod taxonomy;

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

/// Every `.tar` under `root` (or `root` itself if it is a file), sorted, so shard order
/// and therefore item order is stable between runs.
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
                .is_some_and(|e| e.eq_ignore_ascii_case("tar"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

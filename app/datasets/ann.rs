//! Approximate nearest neighbours for embedding indexes too large to scan per query.
//!
//! Exact search (`embeddings::EmbeddingIndex::search`) reads every vector: fine up to a
//! few million (BENCHMARKS.md), linear beyond. Above that, an HNSW graph from `usearch`
//! (a maintained single-file C++ library with f16 storage, memory-mapped loading and a
//! filter predicate) answers in milliseconds. It is saved next to the index file as
//! `<index>.usearch`; graph keys are the index's row numbers, so hits map back to the
//! sample keys of the `.loupe-emb` file.

use super::embeddings::EmbeddingIndex;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// Vector count from which `loupe embed` builds the graph by itself.
pub const AUTO_THRESHOLD: usize = 2_000_000;

/// HNSW parameters (usearch's names). Defaults are measured in BENCHMARKS.md.
#[derive(Clone, Copy, Debug)]
pub struct AnnParams {
    /// Graph degree M.
    pub connectivity: usize,
    /// Candidate list size while inserting (efConstruction).
    pub expansion_add: usize,
    /// Candidate list size while searching (ef).
    pub expansion_search: usize,
}

impl Default for AnnParams {
    fn default() -> Self {
        Self {
            connectivity: 16,
            expansion_add: 128,
            // At 1M clustered vectors ef = 64 gave recall@10 0.887 and ef = 256 gave 0.987
            // at the same 1.7 ms (BENCHMARKS.md).
            expansion_search: 256,
        }
    }
}

pub struct AnnIndex {
    index: Index,
}

/// `<index>.usearch`.
pub fn ann_path(index_path: &Path) -> PathBuf {
    let mut s = index_path.as_os_str().to_owned();
    s.push(".usearch");
    PathBuf::from(s)
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

impl AnnIndex {
    /// Insert every vector of `source` (in parallel). `progress` gets the rows done;
    /// `cancelled` stops between rows (returns `Err("cancelled")`).
    pub fn build(
        source: &EmbeddingIndex,
        params: AnnParams,
        progress: &(dyn Fn(usize) + Sync),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Self, String> {
        let options = IndexOptions {
            dimensions: source.dim,
            // Stored vectors are unit length, so inner product ranks as cosine.
            metric: MetricKind::IP,
            quantization: ScalarKind::F16,
            connectivity: params.connectivity,
            expansion_add: params.expansion_add,
            expansion_search: params.expansion_search,
            multi: false,
        };
        let index = Index::new(&options).map_err(|e| e.to_string())?;
        index
            .reserve_capacity_and_threads(source.len(), rayon::current_num_threads())
            .map_err(|e| e.to_string())?;
        let done = std::sync::atomic::AtomicUsize::new(0);
        (0..source.len())
            .into_par_iter()
            .with_min_len(256)
            .try_for_each(|row| {
                if cancelled() {
                    return Err("cancelled".to_owned());
                }
                index
                    .add(row as u64, source.vector(row).as_slice())
                    .map_err(|e| e.to_string())?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_multiple_of(4096) {
                    progress(n);
                }
                Ok(())
            })?;
        progress(source.len());
        Ok(Self { index })
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        // usearch writes the file itself; write under a temporary name and rename so a
        // reader never maps a half-written graph.
        let tmp = path.with_extension("usearch.tmp");
        let tmp_str = tmp.to_str().ok_or_else(|| err(path, "path is not UTF-8"))?;
        self.index.save(tmp_str).map_err(|e| err(path, e))?;
        // Flushed before the rename, so a crash never leaves a renamed, partial graph.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| err(path, e))?;
        std::fs::rename(&tmp, path).map_err(|e| err(path, e))
    }

    /// Memory-map a saved graph (no copy into RAM).
    pub fn view(path: &Path) -> Result<Self, String> {
        let s = path
            .to_str()
            .ok_or_else(|| err(path, "path is not UTF-8"))?;
        let index = Index::restore_view(s).map_err(|e| err(path, e))?;
        // The search list size is a runtime setting, not stored with the graph.
        index.change_expansion_search(AnnParams::default().expansion_search);
        Ok(Self { index })
    }

    pub fn len(&self) -> usize {
        self.index.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dim(&self) -> usize {
        self.index.dimensions()
    }

    /// Wider search lists trade latency for recall.
    pub fn set_expansion_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
    }

    /// The approximately `k` most similar rows, best first, as (row, cosine).
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(usize, f32)>, String> {
        if query.len() != self.dim() {
            return Err(format!(
                "query has {} dimensions, the graph {}",
                query.len(),
                self.dim()
            ));
        }
        let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        let q: Vec<f32> = query.iter().map(|x| x / norm).collect();
        let found = self
            .index
            .search(q.as_slice(), k)
            .map_err(|e| e.to_string())?;
        // usearch's inner-product distance is 1 − dot.
        Ok(found
            .keys
            .iter()
            .zip(&found.distances)
            .map(|(&key, &d)| (key as usize, 1.0 - d))
            .collect())
    }
}

/// Mean fraction of each exact top-k list that the approximate list found.
pub fn recall_at_k(exact: &[Vec<usize>], approx: &[Vec<usize>]) -> f64 {
    let per: Vec<f64> = exact
        .iter()
        .zip(approx)
        .map(|(e, a)| {
            let hit = e.iter().filter(|r| a.contains(r)).count();
            hit as f64 / e.len().max(1) as f64
        })
        .collect();
    per.iter().sum::<f64>() / per.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::embeddings::encode;

    fn xorshift(h: &mut u64) -> f32 {
        *h ^= *h << 13;
        *h ^= *h >> 7;
        *h ^= *h << 17;
        (*h >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    /// Clustered vectors (CLIP embeddings cluster by topic): `n` points around 1,000
    /// fixed centres, the noise from `seed`; xorshift, so fixed.
    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut c = 0x2545_f491_4f6c_dd1d;
        let centres: Vec<Vec<f32>> = (0..1000)
            .map(|_| (0..dim).map(|_| xorshift(&mut c)).collect())
            .collect();
        let mut h = seed;
        (0..n)
            .map(|i| {
                centres[i % centres.len()]
                    .iter()
                    .map(|x| x + 0.3 * xorshift(&mut h))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn graph_search_recalls_the_exact_top_10_and_round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dim = 64;
        let data = clustered(20_000, dim, 0x9e37_79b9_7f4a_7c15);
        let entries: Vec<(String, Vec<f32>)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("k{i}"), v.clone()))
            .collect();
        let path = dir.path().join("x.loupe-emb");
        let bytes = encode("t", dim, &entries).unwrap_or_else(|e| panic!("{e}"));
        crate::atomic::write_atomic(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let exact = EmbeddingIndex::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let ann = AnnIndex::build(&exact, AnnParams::default(), &|_| {}, &|| false)
            .unwrap_or_else(|e| panic!("{e}"));
        let file = ann_path(&path);
        ann.save(&file).unwrap_or_else(|e| panic!("{e}"));
        let ann = AnnIndex::view(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((ann.len(), ann.dim()), (20_000, dim));
        let queries = clustered(50, dim, 0xd1b5_4a32_d192_ed03);
        let (mut e, mut a) = (Vec::new(), Vec::new());
        for q in &queries {
            let ex = exact.search(q, 10);
            let ap = ann.search(q, 10).unwrap_or_else(|e| panic!("{e}"));
            // The graph's cosines are the same numbers (f16 storage on both sides).
            for (row, cos) in &ap {
                let want: f32 = exact
                    .vector(*row)
                    .iter()
                    .zip(q)
                    .map(|(x, y)| x * y)
                    .sum::<f32>()
                    / q.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((cos - want).abs() < 2e-3, "row {row}: {cos} vs {want}");
            }
            e.push(ex.into_iter().map(|h| h.0).collect());
            a.push(ap.into_iter().map(|h| h.0).collect());
        }
        let recall = recall_at_k(&e, &a);
        eprintln!("recall@10 = {recall}");
        assert!(recall > 0.9, "recall@10 = {recall}");
        assert!(ann.search(&[1.0], 3).is_err());
        // A damaged graph file is an error naming it, not a crash.
        let bad = dir.path().join("bad.usearch");
        crate::atomic::write_atomic(&bad, b"not a graph").unwrap_or_else(|e| panic!("{e}"));
        let msg = AnnIndex::view(&bad).err().unwrap_or_default();
        assert!(msg.contains("bad.usearch"), "{msg}");
    }

    #[test]
    fn recall_counts_the_overlap() {
        let exact = vec![vec![1, 2, 3, 4], vec![5, 6]];
        let approx = vec![vec![4, 3, 9, 8], vec![6, 5]];
        assert!((recall_at_k(&exact, &approx) - 0.75).abs() < 1e-12);
    }
}

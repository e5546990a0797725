//! `loupe bench index`: top-k search over synthetic embedding indexes (ViT-L-14's 768
//! dimensions, f16): Loupe's exact scan against a plain f32 brute force over the same
//! vectors in memory (where they fit), and the approximate HNSW graph (`datasets::ann`)
//! against the exact scan: build time, latency and recall@10.
//!
//! The vectors are clustered (1,000 random centres plus noise), as CLIP embeddings
//! cluster by topic; uniform random vectors would be the worst case for a graph index
//! and unlike real data. Queries come from the same distribution but are not indexed.
// The table on stdout is this command's output.
#![allow(clippy::print_stdout)]

use super::bench::{BenchArgs, median};
use crate::datasets::ann::{self, AnnIndex, AnnParams};
use crate::datasets::embeddings::{EmbeddingIndex, write_to};
use std::time::{Duration, Instant};

const DIM: usize = 768;
const CENTRES: usize = 1000;
/// Above this the f32 baseline would not fit in this machine's memory.
const BRUTE_MAX: usize = 2_000_000;
const QUERIES: usize = 100;

/// Deterministic clustered vectors: item `i` is near centre `i % CENTRES`.
struct Synthetic {
    centres: Vec<Vec<f32>>,
}

fn xorshift(state: &mut u64) -> f32 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
}

impl Synthetic {
    fn new() -> Self {
        let mut h = 0x2545_f491_4f6c_dd1d;
        Self {
            centres: (0..CENTRES)
                .map(|_| (0..DIM).map(|_| xorshift(&mut h)).collect())
                .collect(),
        }
    }

    /// Vector `i` of stream `seed`.
    fn vector(&self, seed: u64, i: usize) -> Vec<f32> {
        let mut h = (seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
        let c = &self.centres[i % CENTRES];
        c.iter().map(|x| x + 0.8 * xorshift(&mut h)).collect()
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let data = Synthetic::new();
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|i| data.vector(7, i)).collect();
    let mut exact_rows = Vec::new();
    let mut ann_rows = Vec::new();
    for &n in &args.sizes {
        let path = dir.join(format!("bench-{n}.loupe-emb"));
        let keys: Vec<String> = (0..n).map(|i| format!("PMC{i}_fig1")).collect();
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
            write_to(
                &mut out,
                "bench",
                DIM,
                &key_refs,
                (0..n).map(|i| data.vector(1, i)),
            )?;
            std::io::Write::flush(&mut out)?;
        }
        drop(key_refs);
        drop(keys);
        let size = std::fs::metadata(&path)?.len();
        let idx = EmbeddingIndex::open(&path)?;
        // Warm the page cache once, as a searched index would be.
        std::hint::black_box(idx.search(&queries[0], 10));
        let timed = |f: &dyn Fn(&[f32])| {
            median(
                queries[..5]
                    .iter()
                    .map(|q| {
                        let t = Instant::now();
                        f(q);
                        t.elapsed()
                    })
                    .collect(),
            )
        };
        let exact = timed(&|q| {
            std::hint::black_box(idx.search(q, 10));
        });
        let brute = (n <= BRUTE_MAX).then(|| {
            // The baseline holds normalised f32 vectors in memory (what numpy/torch users do).
            let flat: Vec<f32> = (0..n).flat_map(|i| idx.vector(i)).collect();
            timed(&|q| {
                let mut best: Vec<(f32, usize)> = flat
                    .chunks_exact(DIM)
                    .enumerate()
                    .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(), i))
                    .collect();
                best.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
                best.truncate(10);
                std::hint::black_box(best);
            })
        });
        exact_rows.push(format!(
            "| {n} | {:.0} MB | {:.0} | {:.0} ms | {} | {} |",
            size as f64 / 1e6,
            size as f64 / n as f64,
            ms(exact),
            brute.map_or("— (30 GB of f32)".to_owned(), |b| format!(
                "{:.0} ms",
                ms(b)
            )),
            brute.map_or("—".to_owned(), |b| format!(
                "{:.2}×",
                b.as_secs_f64() / exact.as_secs_f64()
            )),
        ));
        if n <= args.ann_max {
            let t = Instant::now();
            let graph = AnnIndex::build(&idx, AnnParams::default(), &|_| {}, &|| false)
                .map_err(anyhow::Error::msg)?;
            let build = t.elapsed();
            let gpath = ann::ann_path(&path);
            graph.save(&gpath).map_err(anyhow::Error::msg)?;
            let gsize = std::fs::metadata(&gpath)?.len();
            drop(graph);
            let graph = AnnIndex::view(&gpath).map_err(anyhow::Error::msg)?;
            let truth: Vec<Vec<usize>> = queries
                .iter()
                .map(|q| idx.search(q, 10).into_iter().map(|h| h.0).collect())
                .collect();
            for ef in [64usize, 256] {
                graph.set_expansion_search(ef);
                let mut found = Vec::new();
                let mut times = Vec::new();
                for q in &queries {
                    let t = Instant::now();
                    let hits = graph.search(q, 10).map_err(anyhow::Error::msg)?;
                    times.push(t.elapsed());
                    found.push(hits.into_iter().map(|h| h.0).collect());
                }
                let lat = median(times);
                ann_rows.push(format!(
                    "| {n} | {:.0} s ({:.0} vectors/s) | {:.0} | {ef} | {:.2} ms | {:.3} | {:.0} ms | {:.0}× |",
                    build.as_secs_f64(),
                    n as f64 / build.as_secs_f64(),
                    (size + gsize) as f64 / n as f64,
                    ms(lat),
                    ann::recall_at_k(&truth, &found),
                    ms(exact),
                    exact.as_secs_f64() / lat.as_secs_f64(),
                ));
            }
        }
        let _ = std::fs::remove_file(ann::ann_path(&path));
        drop(idx);
        std::fs::remove_file(&path)?;
    }
    println!(
        "| vectors | index file | bytes/vector | Loupe exact top-10 (f16, mmap, all cores) | f32 brute force in RAM, one core | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for r in exact_rows {
        println!("{r}");
    }
    println!();
    println!(
        "| vectors | HNSW build (all cores) | bytes/vector incl. graph | ef | HNSW top-10 | recall@10 | exact top-10 | speed-up |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in ann_rows {
        println!("{r}");
    }
    Ok(())
}

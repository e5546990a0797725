//! `loupe bench index`: exact top-k search over synthetic embedding indexes (ViT-L-14's
//! 768 dimensions, f16) against a plain f32 brute force over the same vectors in memory,
//! and the bytes each indexed vector costs.
// The table on stdout is this command's output.
#![allow(clippy::print_stdout)]

use super::bench::{BenchArgs, median};
use crate::datasets::embeddings::{EmbeddingIndex, encode};
use std::time::{Duration, Instant};

const DIM: usize = 768;

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    println!(
        "| vectors | file size | bytes/vector | Loupe top-10 (f16, mmap, all cores) | f32 brute force, one core | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for &n in &args.sizes {
        let mut h: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            (h >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let entries: Vec<(String, Vec<f32>)> = (0..n)
            .map(|i| (format!("PMC{i}_fig1"), (0..DIM).map(|_| next()).collect()))
            .collect();
        let path = dir.path().join(format!("{n}.loupe-emb"));
        crate::atomic::write_atomic(
            &path,
            &encode("bench", DIM, &entries).map_err(anyhow::Error::msg)?,
        )?;
        let size = std::fs::metadata(&path)?.len();
        // The baseline holds normalised f32 vectors in memory (what numpy/torch users do).
        let flat: Vec<f32> = entries
            .iter()
            .flat_map(|(_, v)| {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(move |x| x / norm).collect::<Vec<_>>()
            })
            .collect();
        drop(entries);
        let idx = EmbeddingIndex::open(&path)?;
        let queries: Vec<Vec<f32>> = (0..5).map(|_| (0..DIM).map(|_| next()).collect()).collect();
        let loupe = median(
            queries
                .iter()
                .map(|q| {
                    let t = Instant::now();
                    std::hint::black_box(idx.search(q, 10));
                    t.elapsed()
                })
                .collect(),
        );
        let brute = median(
            queries
                .iter()
                .map(|q| {
                    let t = Instant::now();
                    let mut best: Vec<(f32, usize)> = flat
                        .chunks_exact(DIM)
                        .enumerate()
                        .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(), i))
                        .collect();
                    best.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
                    best.truncate(10);
                    std::hint::black_box(best);
                    t.elapsed()
                })
                .collect::<Vec<Duration>>(),
        );
        println!(
            "| {n} | {:.0} MB | {:.0} | {:.0} ms | {:.0} ms | {:.2}× |",
            size as f64 / 1e6,
            size as f64 / n as f64,
            loupe.as_secs_f64() * 1e3,
            brute.as_secs_f64() * 1e3,
            brute.as_secs_f64() / loupe.as_secs_f64()
        );
    }
    Ok(())
}

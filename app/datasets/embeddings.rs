//! An embedding index file: L2-normalised vectors stored as f16, each with the
//! BIOMEDICA sample key it belongs to, and the id of the model that made them, so
//! vectors from different models never mix. Exact top-k cosine search runs over the
//! memory-mapped vectors on all cores.
//!
//! Layout (little-endian): `LOUPEEMB`, version u32, dim u32, count u64, model-id length
//! u32 + UTF-8, keys length u64 + keys (each u16 length + UTF-8), zero padding to a
//! multiple of 64, then `count × dim` f16 values. A hand-written format because it is
//! 30 lines and mmaps directly; safetensors/npy would need the keys elsewhere.

use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use rayon::prelude::*;
use std::path::Path;

const MAGIC: &[u8; 8] = b"LOUPEEMB";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct IndexError {
    pub path: String,
    pub message: String,
}

/// Serialise an index (vectors are normalised again here, then stored as f16).
pub fn encode(
    model_id: &str,
    dim: usize,
    entries: &[(String, Vec<f32>)],
) -> Result<Vec<u8>, String> {
    if let Some((key, v)) = entries.iter().find(|(_, v)| v.len() != dim) {
        return Err(format!("{key}: {} values, expected {dim}", v.len()));
    }
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let mut out = Vec::new();
    write_to(
        &mut out,
        model_id,
        dim,
        &keys,
        entries.iter().map(|(_, v)| v.clone()),
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Stream an index to `out` without holding the vectors (the benchmark writes 10M):
/// `vectors` must yield `keys.len()` vectors of `dim` values.
pub fn write_to(
    out: &mut impl std::io::Write,
    model_id: &str,
    dim: usize,
    keys: &[&str],
    vectors: impl Iterator<Item = Vec<f32>>,
) -> std::io::Result<()> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let mut head = Vec::new();
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&(dim as u32).to_le_bytes());
    head.extend_from_slice(&(keys.len() as u64).to_le_bytes());
    head.extend_from_slice(&(model_id.len() as u32).to_le_bytes());
    head.extend_from_slice(model_id.as_bytes());
    let mut table = Vec::new();
    for key in keys {
        let len = u16::try_from(key.len()).map_err(|_| bad(format!("key too long: {key}")))?;
        table.extend_from_slice(&len.to_le_bytes());
        table.extend_from_slice(key.as_bytes());
    }
    head.extend_from_slice(&(table.len() as u64).to_le_bytes());
    head.extend_from_slice(&table);
    while !head.len().is_multiple_of(64) {
        head.push(0);
    }
    out.write_all(&head)?;
    let mut written = 0usize;
    let mut row = Vec::with_capacity(dim * 2);
    for v in vectors.take(keys.len()) {
        if v.len() != dim {
            return Err(bad(format!(
                "vector {written}: {} values, expected {dim}",
                v.len()
            )));
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        row.clear();
        for x in &v {
            row.extend_from_slice(&f16::from_f32(x / norm).to_le_bytes());
        }
        out.write_all(&row)?;
        written += 1;
    }
    if written != keys.len() {
        return Err(bad(format!("{written} vectors for {} keys", keys.len())));
    }
    Ok(())
}

/// An open index.
pub struct EmbeddingIndex {
    pub model_id: String,
    pub dim: usize,
    pub keys: Vec<String>,
    data: memmap2::Mmap,
    offset: usize,
}

impl EmbeddingIndex {
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let err = |message: String| IndexError {
            path: path.display().to_string(),
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        // SAFETY: the file is only read; index files are written to a temporary name and
        // renamed into place, so a mapped file is never modified underneath.
        #[allow(unsafe_code)]
        let data = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| err(e.to_string()))?;
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], IndexError> {
            let s = data
                .get(at..at + n)
                .ok_or_else(|| err(format!("truncated at byte {at}")))?;
            at += n;
            Ok(s)
        };
        if take(8)? != MAGIC {
            return Err(err("not a Loupe embedding index".into()));
        }
        let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let u64_at = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let version = u32_at(take(4)?);
        if version != VERSION {
            return Err(err(format!(
                "index version {version}, this build reads {VERSION}"
            )));
        }
        let dim = u32_at(take(4)?) as usize;
        let count = u64_at(take(8)?) as usize;
        let id_len = u32_at(take(4)?) as usize;
        let model_id = String::from_utf8(take(id_len)?.to_vec())
            .map_err(|_| err("model id is not UTF-8".into()))?;
        let keys_len = u64_at(take(8)?) as usize;
        let key_bytes = take(keys_len)?.to_vec();
        let mut keys = Vec::with_capacity(count);
        let mut k = 0usize;
        while k < key_bytes.len() {
            let len = usize::from(u16::from_le_bytes([
                key_bytes[k],
                *key_bytes.get(k + 1).unwrap_or(&0),
            ]));
            let s = key_bytes
                .get(k + 2..k + 2 + len)
                .ok_or_else(|| err("bad key table".into()))?;
            keys.push(String::from_utf8_lossy(s).into_owned());
            k += 2 + len;
        }
        if keys.len() != count {
            return Err(err(format!("{} keys for {count} vectors", keys.len())));
        }
        let offset = at.next_multiple_of(64);
        if data.len() < offset + count * dim * 2 {
            return Err(err(format!(
                "truncated: {count} vectors of {dim} need {} bytes",
                offset + count * dim * 2
            )));
        }
        Ok(Self {
            model_id,
            dim,
            keys,
            data,
            offset,
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Vector `i` as f32.
    pub fn vector(&self, i: usize) -> Vec<f32> {
        let start = self.offset + i * self.dim * 2;
        self.data[start..start + self.dim * 2]
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect()
    }

    /// The `k` most similar vectors to `query` (cosine), best first: exact, over every
    /// vector, in parallel chunks whose partial top-k lists are merged.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(usize, f32)> {
        let Some(q) = self.normalised(query) else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        let mut best: Vec<(usize, f32)> = self
            .vector_bytes()
            .par_chunks(CHUNK * self.dim * 2)
            .enumerate()
            .flat_map_iter(|(c, chunk)| {
                let mut dots = Vec::with_capacity(CHUNK);
                self.chunk_dots(chunk, &q, &mut dots);
                let mut local: Vec<(usize, f32)> = dots
                    .into_iter()
                    .enumerate()
                    .map(|(i, d)| (c * CHUNK + i, d))
                    .collect();
                top_k(&mut local, k);
                local
            })
            .collect();
        top_k(&mut best, k);
        best
    }

    /// The cosine of `query` with every vector, in row order (empty if the dimension
    /// differs): for ranking a filtered subset, where a global top-k would not do.
    pub fn scores(&self, query: &[f32]) -> Vec<f32> {
        let Some(q) = self.normalised(query) else {
            return Vec::new();
        };
        let mut out = vec![0f32; self.len()];
        self.vector_bytes()
            .par_chunks(CHUNK * self.dim * 2)
            .zip(out.par_chunks_mut(CHUNK))
            .for_each(|(chunk, out)| {
                let mut dots = Vec::with_capacity(CHUNK);
                self.chunk_dots(chunk, &q, &mut dots);
                out.copy_from_slice(&dots);
            });
        out
    }

    fn normalised(&self, query: &[f32]) -> Option<Vec<f32>> {
        if query.len() != self.dim {
            return None;
        }
        let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        Some(query.iter().map(|x| x / norm).collect())
    }

    fn vector_bytes(&self) -> &[u8] {
        &self.data[self.offset..self.offset + self.len() * self.dim * 2]
    }

    /// Dot products of `q` with the rows of `chunk` (whole rows of f16 bytes).
    fn chunk_dots(&self, chunk: &[u8], q: &[f32], out: &mut Vec<f32>) {
        // The vectors start 64-byte aligned in a page-aligned map, so the bytes are
        // u16-aligned; half converts whole rows with F16C when the CPU has it.
        match bytemuck::try_cast_slice::<u8, u16>(chunk) {
            Ok(bits) => {
                let mut row = vec![0f32; self.dim];
                out.extend(
                    bits.reinterpret_cast::<f16>()
                        .chunks_exact(self.dim)
                        .map(|v| {
                            v.convert_to_f32_slice(&mut row);
                            row.iter().zip(q).map(|(a, b)| a * b).sum::<f32>()
                        }),
                );
            }
            Err(_) => out.extend(chunk.chunks_exact(self.dim * 2).map(|v| {
                v.chunks_exact(2)
                    .zip(q)
                    .map(|(b, x)| f16::from_le_bytes([b[0], b[1]]).to_f32() * x)
                    .sum::<f32>()
            })),
        }
    }
}

/// Rows per parallel work item.
const CHUNK: usize = 4096;

/// Keep the `k` highest scores, sorted best first (ties by index for a stable order).
fn top_k(v: &mut Vec<(usize, f32)>, k: usize) {
    let by = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > k {
        v.select_nth_unstable_by(k - 1, by);
        v.truncate(k);
    }
    v.sort_by(by);
}

/// `k/n`: this machine's share of the shards (Slurm array / Kubernetes indexed Job).
pub fn parse_share(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or("expected k/n, e.g. 0/8")?;
    let k: usize = k.trim().parse().map_err(|_| format!("bad k in {s:?}"))?;
    let n: usize = n.trim().parse().map_err(|_| format!("bad n in {s:?}"))?;
    if n == 0 || k >= n {
        return Err(format!("{s:?}: need 0 ≤ k < n"));
    }
    Ok((k, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_search() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let entries: Vec<(String, Vec<f32>)> = (0..10_000)
            .map(|i| {
                let v: Vec<f32> = (0..16)
                    .map(|d| ((i * 31 + d * 7) % 23) as f32 - 11.0)
                    .collect();
                (format!("k{i}"), v)
            })
            .collect();
        let bytes = encode("tiny@1", 16, &entries).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("x.loupe-emb");
        crate::atomic::write_atomic(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let idx = EmbeddingIndex::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (idx.len(), idx.dim, idx.model_id.as_str()),
            (10_000, 16, "tiny@1")
        );
        assert_eq!(idx.keys[1234], "k1234");
        let q = entries[4321].1.clone();
        let hits = idx.search(&q, 5);
        // Brute force in f64 over the stored (f16) vectors: the same order.
        let mut all: Vec<(usize, f64)> = (0..idx.len())
            .map(|i| {
                let v = idx.vector(i);
                let n = q.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                (
                    i,
                    v.iter()
                        .zip(&q)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>()
                        / n,
                )
            })
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert!((hits[0].1 - 1.0).abs() < 2e-3, "{hits:?}");
        let scores = idx.scores(&q);
        assert_eq!(scores.len(), idx.len());
        for (i, a) in &all {
            assert!((f64::from(scores[*i]) - a).abs() < 1e-4, "row {i}");
        }
        for (h, a) in hits.iter().zip(&all) {
            assert!((f64::from(h.1) - a.1).abs() < 1e-3, "{h:?} vs {a:?}");
        }
        // The synthetic vectors repeat (ties), so compare content, not indices.
        assert_eq!(idx.vector(hits[0].0), idx.vector(4321));
        assert_eq!(parse_share("1/4"), Ok((1, 4)));
        assert!(parse_share("4/4").is_err());
        // A truncated file is an error naming it.
        let short = dir.path().join("short.loupe-emb");
        crate::atomic::write_atomic(&short, &bytes[..bytes.len() - 10])
            .unwrap_or_else(|e| panic!("{e}"));
        let e = EmbeddingIndex::open(&short)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("short.loupe-emb") && e.contains("truncated"),
            "{e}"
        );
    }
}

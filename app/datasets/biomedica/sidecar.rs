//! The per-shard sidecar index: a small versioned binary file holding a shard's
//! [`ShardIndex`], keyed by the shard's length and mtime so a changed shard is
//! re-indexed and an unchanged one costs one read.
//!
//! Sidecars live in a cache folder, not beside the shards: dataset folders are often
//! read-only mounts or git checkouts. The format is little-endian with length-prefixed
//! strings; it is read whole (a shard's index is a few MB at most) rather than
//! memory-mapped, because mapping needs `unsafe`, which this workspace denies.

use super::meta::IndexFields;
use super::tar_index::{
    self, Ext, IndexError, JpegInfo, MemberRef, Problem, ProblemKind, SampleRecord, ShardIndex,
    StructuralError,
};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LOUPEBMI";
/// Bump on any layout change: an old sidecar is then simply rebuilt.
/// 2: MeSH terms stored (for title/MeSH search). Other versions are re-indexed.
pub const VERSION: u32 = 2;

/// Where sidecars go: `$LOUPE_CACHE_DIR`, else `$XDG_CACHE_HOME/loupe/biomedica`, else
/// `~/.cache/loupe/biomedica`, else the system temp folder.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOUPE_CACHE_DIR") {
        return PathBuf::from(dir).join("biomedica");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("loupe").join("biomedica")
}

/// FNV-1a: a stable hash of the shard's absolute path, so two shards named `000000.tar`
/// in different subsets get different sidecars.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The sidecar path of `shard` inside `dir`.
pub fn sidecar_path(dir: &Path, shard: &Path) -> PathBuf {
    let abs = std::path::absolute(shard).unwrap_or_else(|_| shard.to_path_buf());
    let stem = shard
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("shard");
    dir.join(format!(
        "{stem}-{:016x}.lbi",
        fnv1a(abs.as_os_str().as_encoded_bytes())
    ))
}

/// Whether the index came from the sidecar or was built now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Sidecar,
    Built,
}

/// Load the shard's sidecar if it matches the shard's current length and mtime,
/// otherwise index the shard and write a fresh sidecar (atomically; a failure to write
/// is logged, not fatal: the index is still returned).
pub fn load_or_build(
    shard: &Path,
    dir: &Path,
    cancelled: &dyn Fn() -> bool,
) -> Result<(ShardIndex, Origin), IndexError> {
    let meta = std::fs::metadata(shard).map_err(|source| IndexError::Io {
        path: shard.to_path_buf(),
        source,
    })?;
    let side = sidecar_path(dir, shard);
    if let Ok(bytes) = std::fs::read(&side) {
        match decode(&bytes) {
            Ok(mut index)
                if index.len == meta.len() && index.mtime_ns == tar_index::mtime_ns(&meta) =>
            {
                index.path = shard.to_path_buf();
                return Ok((index, Origin::Sidecar));
            }
            Ok(_) => tracing::debug!("{}: stale sidecar, re-indexing", shard.display()),
            Err(err) => tracing::debug!(
                "{}: unreadable sidecar ({err}), re-indexing",
                side.display()
            ),
        }
    }
    let index = tar_index::index_shard(shard, cancelled)?;
    let written = std::fs::create_dir_all(dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| crate::atomic::write_atomic(&side, &encode(&index)));
    if let Err(err) = written {
        tracing::warn!("cannot save the index of {}: {err:#}", shard.display());
    }
    Ok((index, Origin::Built))
}

// ---------------------------------------------------------------- encoding

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn strs(&mut self, v: &[String]) {
        self.len(v.len());
        v.iter().for_each(|s| self.str(s));
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }
}

pub fn encode(index: &ShardIndex) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(64 + index.samples.len() * 256));
    e.0.extend_from_slice(MAGIC);
    e.u32(VERSION);
    e.u64(index.len);
    e.i64(index.mtime_ns);
    e.opt_u64(index.end_of_archive);
    e.u32(index.ignored_members);
    match &index.structural {
        Some(s) => {
            e.u8(1);
            e.u8(kind_code(s.kind));
            e.u64(s.offset);
            e.str(&s.member);
            e.str(&s.detail);
        }
        None => e.u8(0),
    }
    e.len(index.problems.len());
    for p in &index.problems {
        e.str(&p.key);
        e.u8(p.member.map_or(0, |m| m as u8 + 1));
        e.u8(kind_code(p.kind));
        e.str(&p.detail);
    }
    e.len(index.samples.len());
    for s in &index.samples {
        e.str(&s.key);
        e.u8(s.flags);
        for m in &s.members {
            match m {
                Some(m) => {
                    e.u8(1 | (u8::from(m.complete) << 1));
                    e.u64(m.header_offset);
                    e.u64(m.offset);
                    e.u64(m.size);
                }
                None => e.u8(0),
            }
        }
        match s.jpeg {
            Some(j) => {
                e.u8(1);
                e.u32(u32::from(j.width));
                e.u32(u32::from(j.height));
                e.u8(j.components);
            }
            None => e.u8(0),
        }
        e.str(&s.caption);
        match &s.fields {
            Some(f) => {
                e.u8(1);
                for v in [
                    &f.pmcid,
                    &f.license,
                    &f.label_id,
                    &f.panel_type,
                    &f.panel_subtype,
                    &f.image_hash,
                    &f.image_id,
                    &f.image_file_name,
                    &f.journal,
                    &f.date,
                    &f.title,
                    &f.citation,
                ] {
                    e.str(v);
                }
                e.strs(&f.primary);
                e.strs(&f.secondary);
                e.strs(&f.mesh);
                e.opt_u64(f.width.map(u64::from));
                e.opt_u64(f.height.map(u64::from));
                e.opt_u64(f.reference_count);
            }
            None => e.u8(0),
        }
    }
    e.0
}

fn kind_code(kind: ProblemKind) -> u8 {
    ProblemKind::ALL
        .iter()
        .position(|&k| k == kind)
        .map_or(0, |i| i as u8)
}

// ---------------------------------------------------------------- decoding

struct Dec<'a> {
    b: &'a [u8],
    at: usize,
}

type R<T> = Result<T, String>;

impl Dec<'_> {
    fn take(&mut self, n: usize) -> R<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or_else(|| format!("sidecar cut short at byte {}", self.at))?;
        let out = &self.b[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn arr<const N: usize>(&mut self) -> R<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn i64(&mut self) -> R<i64> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    fn len(&mut self) -> R<usize> {
        let n = self.u32()? as usize;
        // Every counted thing takes at least one byte, so a count larger than what is
        // left is corruption; refusing it keeps a bad file from allocating gigabytes.
        if n > self.b.len() - self.at {
            return Err(format!("implausible count {n} at byte {}", self.at));
        }
        Ok(n)
    }
    fn str(&mut self) -> R<String> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| e.to_string())
    }
    fn strs(&mut self) -> R<Vec<String>> {
        let n = self.len()?;
        (0..n).map(|_| self.str()).collect()
    }
    fn opt_u64(&mut self) -> R<Option<u64>> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.u64()?),
        })
    }
    fn kind(&mut self) -> R<ProblemKind> {
        let code = self.u8()? as usize;
        ProblemKind::ALL
            .get(code)
            .copied()
            .ok_or_else(|| format!("unknown problem kind {code}"))
    }
}

pub fn decode(bytes: &[u8]) -> Result<ShardIndex, String> {
    let mut d = Dec { b: bytes, at: 0 };
    if d.take(8)? != MAGIC {
        return Err("not a Loupe BIOMEDICA index".into());
    }
    let version = d.u32()?;
    if version != VERSION {
        return Err(format!("index version {version}, expected {VERSION}"));
    }
    let mut index = ShardIndex {
        len: d.u64()?,
        mtime_ns: d.i64()?,
        end_of_archive: d.opt_u64()?,
        ignored_members: d.u32()?,
        ..Default::default()
    };
    if d.u8()? != 0 {
        index.structural = Some(StructuralError {
            kind: d.kind()?,
            offset: d.u64()?,
            member: d.str()?,
            detail: d.str()?,
        });
    }
    let n = d.len()?;
    index.problems.reserve(n);
    for _ in 0..n {
        let key = d.str()?;
        let member = match d.u8()? {
            0 => None,
            m => Some(*Ext::ALL.get(usize::from(m) - 1).ok_or("bad member code")?),
        };
        index.problems.push(Problem {
            key,
            member,
            kind: d.kind()?,
            detail: d.str()?,
        });
    }
    let n = d.len()?;
    index.samples.reserve(n);
    for _ in 0..n {
        let mut s = SampleRecord {
            key: d.str()?,
            flags: d.u8()?,
            ..Default::default()
        };
        for slot in &mut s.members {
            let tag = d.u8()?;
            if tag & 1 != 0 {
                *slot = Some(MemberRef {
                    complete: tag & 2 != 0,
                    header_offset: d.u64()?,
                    offset: d.u64()?,
                    size: d.u64()?,
                });
            }
        }
        if d.u8()? != 0 {
            s.jpeg = Some(JpegInfo {
                width: d.u32()? as u16,
                height: d.u32()? as u16,
                components: d.u8()?,
            });
        }
        s.caption = d.str()?;
        if d.u8()? != 0 {
            let mut f = IndexFields::default();
            for v in [
                &mut f.pmcid,
                &mut f.license,
                &mut f.label_id,
                &mut f.panel_type,
                &mut f.panel_subtype,
                &mut f.image_hash,
                &mut f.image_id,
                &mut f.image_file_name,
                &mut f.journal,
                &mut f.date,
                &mut f.title,
                &mut f.citation,
            ] {
                *v = d.str()?;
            }
            f.primary = d.strs()?;
            f.secondary = d.strs()?;
            f.mesh = d.strs()?;
            f.width = d.opt_u64()?.map(|v| v as u32);
            f.height = d.opt_u64()?.map(|v| v as u32);
            f.reference_count = d.opt_u64()?;
            s.fields = Some(f);
        }
        index.samples.push(s);
    }
    if d.at != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - d.at));
    }
    Ok(index)
}

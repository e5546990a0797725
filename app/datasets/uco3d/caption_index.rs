//! Caption search for the sequence browser: an SQLite FTS5 trigram index of both
//! captions, kept in the cache folder (the dataset's own database is never written).
//!
//! A trigram index answers "contains this substring, any case" from the index, so a
//! search over 170k long captions takes milliseconds instead of a full scan; needles
//! shorter than three characters fall back to the scan (`MetadataDb::query`).

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// Bump when the index layout changes: an old file is then rebuilt.
const VERSION: u32 = 1;

/// The index file for `metadata`: keyed by its path, size and mtime, so an updated
/// database gets a new index.
pub fn index_path(cache_dir: &Path, metadata: &Path) -> PathBuf {
    let abs = std::path::absolute(metadata).unwrap_or_else(|_| metadata.to_path_buf());
    let meta = std::fs::metadata(metadata).ok();
    let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let key = format!("{}|{size}|{mtime}|{VERSION}", abs.display());
    // FNV-1a: stable across runs, unlike the std hasher.
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    cache_dir.join(format!("captions-{h:016x}.sqlite"))
}

/// Build the index for `metadata` at `out` unless it exists; written to a temporary file
/// and renamed, so a cancelled or crashed build never leaves a half index behind.
pub fn ensure(metadata: &Path, out: &Path, cancelled: &dyn Fn() -> bool) -> anyhow::Result<()> {
    if out.is_file() {
        return Ok(());
    }
    let dir = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(".captions-")
        .suffix(".sqlite")
        .tempfile_in(dir)?;
    {
        let src = Connection::open_with_flags(metadata, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut dst = Connection::open(tmp.path())?;
        dst.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
             CREATE VIRTUAL TABLE captions USING fts5(name UNINDEXED, text, tokenize = 'trigram');",
        )?;
        let tx = dst.transaction()?;
        {
            let mut insert = tx.prepare("INSERT INTO captions (name, text) VALUES (?, ?)")?;
            let mut stmt = src.prepare(
                "SELECT sequence_name, coalesce(_caption_text, '') || char(10) || \
                 coalesce(_short_caption_text, '') FROM sequence_annots",
            )?;
            let mut rows = stmt.query([])?;
            let mut n = 0usize;
            while let Some(r) = rows.next()? {
                let name: String = r.get(0)?;
                let text: String = r.get(1)?;
                insert.execute(rusqlite::params![name, text])?;
                n += 1;
                if n.is_multiple_of(4096) && cancelled() {
                    anyhow::bail!("cancelled");
                }
            }
        }
        tx.commit()?;
        dst.execute_batch("INSERT INTO captions(captions) VALUES ('optimize');")?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(out)?;
    Ok(())
}

/// The FTS5 query matching `needle` as a substring: one quoted phrase (quotes doubled).
pub fn phrase(needle: &str) -> String {
    format!("\"{}\"", needle.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_escape_quotes() {
        assert_eq!(phrase("a \"b\" c"), "\"a \"\"b\"\" c\"");
    }
}

//! The Parquet edition: Hugging Face `datasets` conversions of the same samples, one row
//! per sample with the JSON keys as columns plus `__key__`, `__url__`, `txt` and `jpg`
//! (an Image struct `{bytes, path}`). Columns whose JSON type varies between samples are
//! stored as their `json.dumps` text, so a string cell that parses as JSON is taken as
//! that JSON value.
//!
//! Read with the `parquet` crate's row API (no arrow: a far smaller build); rows become
//! the same [`SampleRecord`]s the tar indexer produces, with the image bytes alongside.

use super::meta;
use super::tar_index::{JpegInfo, SampleRecord, flags, jpeg_info};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Columns whose JSON type varies between samples, stored as `json.dumps` text.
const JSON_TEXT_COLUMNS: [&str; 8] = [
    "image_set",
    "image_context",
    "article_mesh_terms",
    "article_keywords",
    "article_reference_ids",
    "article_reference_count",
    "article_reference_list",
    "article_subject",
];

/// One Parquet row read into the common model.
pub struct ParquetSample {
    pub record: SampleRecord,
    /// The `jpg.bytes` cell.
    pub jpg: Option<Vec<u8>>,
    /// The row as a JSON object (metadata columns only), for the raw tree view.
    pub json: Value,
}

fn to_json(field: &Field) -> Value {
    match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(v) => Value::from(*v),
        Field::Short(v) => Value::from(*v),
        Field::Int(v) => Value::from(*v),
        Field::Long(v) => Value::from(*v),
        Field::UByte(v) => Value::from(*v),
        Field::UShort(v) => Value::from(*v),
        Field::UInt(v) => Value::from(*v),
        Field::ULong(v) => Value::from(*v),
        Field::Float(v) => Value::from(f64::from(*v)),
        Field::Double(v) => Value::from(*v),
        Field::Str(s) => Value::String(s.clone()),
        Field::Bytes(b) => Value::String(String::from_utf8_lossy(b.data()).into_owned()),
        Field::ListInternal(list) => Value::Array(list.elements().iter().map(to_json).collect()),
        Field::Group(row) => Value::Object(
            row.get_column_iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        other => Value::String(other.to_string()),
    }
}

/// Read every row of a BIOMEDICA Parquet file.
pub fn read(path: &Path) -> anyhow::Result<Vec<ParquetSample>> {
    let mut out = Vec::new();
    for_each_row(path, &mut |row| {
        out.push(row);
        Ok(())
    })?;
    Ok(out)
}

/// Call `each` with every row in order. The reader decodes one row group at a time, so
/// memory stays bounded by a row group, not the file; `each` may stop the walk by
/// returning an error.
pub fn for_each_row(
    path: &Path,
    each: &mut dyn FnMut(ParquetSample) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = SerializedFileReader::new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    for (row_no, row) in reader
        .get_row_iter(None)
        .with_context(|| format!("{}: cannot read rows", path.display()))?
        .enumerate()
    {
        let row = row.with_context(|| format!("{}: row {row_no}", path.display()))?;
        let mut key = String::new();
        let mut caption = None;
        let mut jpg = None;
        let mut json = serde_json::Map::new();
        for (name, field) in row.get_column_iter() {
            match (name.as_str(), field) {
                ("__key__", f) => key = meta::text(&to_json(f)),
                ("__url__", _) => {}
                ("txt", f) => caption = Some(meta::text(&to_json(f))),
                ("jpg", Field::Group(img)) => {
                    jpg = img
                        .get_column_iter()
                        .find_map(|(k, v)| match (k.as_str(), v) {
                            ("bytes", Field::Bytes(b)) => Some(b.data().to_vec()),
                            _ => None,
                        });
                }
                ("jpg", Field::Bytes(b)) => jpg = Some(b.data().to_vec()),
                (_, Field::Str(s)) if JSON_TEXT_COLUMNS.contains(&name.as_str()) => {
                    let v = meta::parse_lenient::<Value>(s.as_bytes())
                        .unwrap_or_else(|_| Value::String(s.clone()));
                    json.insert(name.clone(), v);
                }
                (_, f) => {
                    json.insert(name.clone(), to_json(f));
                }
            }
        }
        let json = Value::Object(json);
        let mut record = SampleRecord {
            key,
            ..Default::default()
        };
        match serde_json::to_vec(&json)
            .map_err(|e| e.to_string())
            .and_then(|b| meta::parse_index_fields(&b))
        {
            Ok(f) => record.fields = Some(f),
            Err(_) => record.flags |= flags::BAD_JSON,
        }
        match &caption {
            Some(c) => record.caption = c.clone(),
            None => record.flags |= flags::MISSING_MEMBER,
        }
        match jpg.as_deref().map(jpeg_info) {
            Some(Ok(info)) => record.jpeg = info.map(|i: JpegInfo| i),
            Some(Err(_)) => record.flags |= flags::BAD_JPEG,
            None => record.flags |= flags::MISSING_MEMBER,
        }
        each(ParquetSample { record, jpg, json })?;
    }
    Ok(())
}

/// The conversion was stopped by the user (see [`to_shard`]).
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// Where the WebDataset copy of a Parquet file lives: under `cache_dir/parquet/`, in a
/// folder named by a hash of the file's path, size and mtime (a changed file gets a new
/// copy), inside its licence-subset folder name so the subset filter still works.
pub fn shard_copy_path(cache_dir: &Path, parquet: &Path) -> PathBuf {
    let abs = std::path::absolute(parquet).unwrap_or_else(|_| parquet.to_path_buf());
    let (len, mtime) = std::fs::metadata(parquet)
        .map(|m| (m.len(), super::tar_index::mtime_ns(&m)))
        .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(abs.as_os_str().as_encoded_bytes());
    eat(&len.to_le_bytes());
    eat(&mtime.to_le_bytes());
    let subset = super::subset_of(parquet);
    let stem = parquet
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "parquet".into());
    let mut dir = cache_dir.join("parquet").join(format!("{h:016x}"));
    if !subset.is_empty() {
        dir = dir.join(subset);
    }
    dir.join(format!("{stem}.tar"))
}

/// The Parquet file as a WebDataset shard (written once, then reused), so the browser
/// reads its figures by byte range like any shard's: Parquet pages are compressed, so
/// an image cannot be read in place without decoding its whole column chunk. Rows are
/// streamed into the copy (bounded memory); `cancelled` is checked between rows, and a
/// stopped copy leaves only a temporary file behind, removed on drop.
pub fn to_shard(
    parquet: &Path,
    cache_dir: &Path,
    cancelled: &dyn Fn() -> bool,
) -> anyhow::Result<PathBuf> {
    use anyhow::Context as _;
    let out = shard_copy_path(cache_dir, parquet);
    if out.is_file() {
        return Ok(out);
    }
    let dir = out
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cache_dir.to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".loupe-parquet-")
        .tempfile_in(&dir)?;
    let mut w = std::io::BufWriter::new(tmp);
    for_each_row(parquet, &mut |row| {
        if cancelled() {
            anyhow::bail!(Cancelled);
        }
        let key = &row.record.key;
        if let Some(jpg) = &row.jpg {
            super::synth::member(&mut w, &format!("{key}.jpg"), jpg)?;
        }
        super::synth::member(
            &mut w,
            &format!("{key}.json"),
            &serde_json::to_vec(&row.json)?,
        )?;
        if row.record.flags & flags::MISSING_MEMBER == 0 || !row.record.caption.is_empty() {
            super::synth::member(&mut w, &format!("{key}.txt"), row.record.caption.as_bytes())?;
        }
        Ok(())
    })?;
    std::io::Write::write_all(&mut w, &[0u8; 1024])?;
    let tmp = w.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(out)
}

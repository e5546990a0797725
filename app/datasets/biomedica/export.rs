//! Export a selection of samples: as a new WebDataset shard (members copied byte for
//! byte from their shards, written as the BIOMEDICA writer does) or as a manifest of the
//! indexed fields: JSONL (one object a line) or CSV (one row a sample, lists joined by
//! `; `).

use super::catalog::{Catalog, ItemId};
use super::tar_index::Ext;
use std::io::Write;

/// Write `items` as a tar shard to `out`. Returns the number of samples written.
pub fn write_shard(
    catalog: &Catalog,
    items: &[ItemId],
    out: &mut impl Write,
) -> std::io::Result<usize> {
    for &id in items {
        let key = catalog.key(id);
        // The writer's member order: jpg, json, txt (readers must not rely on it).
        for ext in [Ext::Jpg, Ext::Json, Ext::Txt] {
            if catalog.member(id, ext).is_some() {
                let bytes = catalog.read_member(id, ext)?;
                super::synth::member(out, &format!("{key}.{}", ext.as_str()), &bytes)?;
            }
        }
    }
    // End of archive: two zero blocks.
    out.write_all(&[0u8; 1024])?;
    Ok(items.len())
}

/// Write `items` as JSONL: key, shard, subset, licence, labels, panel type, journal,
/// year, image size, duplicate count and the caption prefix.
pub fn write_manifest(
    catalog: &Catalog,
    items: &[ItemId],
    out: &mut impl Write,
) -> std::io::Result<usize> {
    for &id in items {
        let Some(it) = catalog.item(id) else {
            continue;
        };
        let line = serde_json::json!({
            "key": catalog.key(id),
            "shard": catalog.shard_of(id).map(|s| s.path.display().to_string()),
            "subset": catalog.subset(id),
            "license": catalog.license(id),
            "primary_labels": catalog.primary_labels(id),
            "secondary_labels": catalog.secondary_labels(id),
            "panel_type": catalog.panel_type(id),
            "journal": catalog.journal(id),
            "year": (it.year != 0).then_some(it.year),
            "image_size": [it.width, it.height],
            "duplicates": catalog.duplicate_count(id),
            "caption_prefix": catalog.caption_prefix(id),
        });
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(items.len())
}

/// Write `items` as CSV with the JSONL manifest's columns (a header row first).
pub fn write_csv(
    catalog: &Catalog,
    items: &[ItemId],
    out: &mut impl Write,
) -> std::io::Result<usize> {
    use crate::datasets::export::csv_field as f;
    out.write_all(
        b"key,shard,subset,license,primary_labels,secondary_labels,panel_type,journal,year,width,height,duplicates,caption_prefix\n",
    )?;
    let mut n = 0;
    for &id in items {
        let Some(it) = catalog.item(id) else {
            continue;
        };
        let shard = catalog
            .shard_of(id)
            .map(|s| s.path.display().to_string())
            .unwrap_or_default();
        let row = [
            f(catalog.key(id)),
            f(&shard),
            f(catalog.subset(id)),
            f(catalog.license(id)),
            f(&catalog.primary_labels(id).join("; ")),
            f(&catalog.secondary_labels(id).join("; ")),
            f(catalog.panel_type(id)),
            f(catalog.journal(id)),
            if it.year != 0 {
                it.year.to_string()
            } else {
                String::new()
            },
            it.width.to_string(),
            it.height.to_string(),
            catalog.duplicate_count(id).to_string(),
            f(catalog.caption_prefix(id)),
        ];
        out.write_all(row.join(",").as_bytes())?;
        out.write_all(b"\n")?;
        n += 1;
    }
    Ok(n)
}

//! Synthetic BIOMEDICA-like shards for the benchmark: the same tar layout as the real
//! writer (ustar, PAX `path=` for long keys, jpg/json/txt per sample), a real tiny JPEG,
//! and JSON that repeats an article text as the real data does, so indexing reads
//! realistic byte volumes.

use super::taxonomy::TAXONOMY;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A tiny valid JPEG (8×8 grey), encoded once.
fn tiny_jpeg() -> Vec<u8> {
    let img = image::GrayImage::from_fn(8, 8, |x, y| image::Luma([(x * 30 + y * 2) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    // Encoding an in-memory 8×8 image cannot fail; an empty image would only make the
    // benchmark's JPEG members empty.
    let _ = image::DynamicImage::ImageLuma8(img).write_to(&mut out, image::ImageFormat::Jpeg);
    out.into_inner()
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{:0width$o}\0", v, width = field.len() - 1);
    field.copy_from_slice(&s.as_bytes()[s.len() - field.len()..]);
}

fn header(name: &[u8], size: u64, typeflag: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_721_390_400);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// Write one tar member as Python's tarfile does for BIOMEDICA: ustar, with a PAX
/// `path=` record first when the name is longer than 100 bytes.
pub(crate) fn member(out: &mut impl Write, name: &str, data: &[u8]) -> std::io::Result<()> {
    if name.len() > 100 {
        // PAX record: "<len> path=<name>\n", where <len> counts itself.
        let body = format!(" path={name}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        let record = format!("{len}{body}");
        out.write_all(&header(b"././@PaxHeader", record.len() as u64, b'x'))?;
        pad(out, record.as_bytes())?;
    }
    out.write_all(&header(name.as_bytes(), data.len() as u64, b'0'))?;
    pad(out, data)
}

fn pad(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    out.write_all(data)?;
    let rem = data.len() % 512;
    if rem != 0 {
        out.write_all(&vec![0u8; 512 - rem])?;
    }
    Ok(())
}

const LICENCES: [&str; 3] = ["CC BY", "CC BY-NC", "NO-CC CODE"];

const WORDS: &[&str] = &[
    "fundus",
    "retina",
    "microscopy",
    "staining",
    "section",
    "scale",
    "bar",
    "tumour",
    "cells",
    "patient",
    "imaging",
    "contrast",
    "fluorescence",
    "arrow",
    "lesion",
    "panel",
    "control",
    "treated",
    "mouse",
    "tissue",
    "expression",
    "protein",
    "nuclei",
    "blue",
    "green",
    "red",
    "magnification",
    "histology",
    "electron",
    "vessel",
    "optical",
    "plot",
];

/// Write `samples` samples into shards of `per_shard` under `dir/<subset>/`, with about
/// `json_bytes` of JSON per sample. Returns the shard paths.
pub fn write_shards(
    dir: &Path,
    samples: usize,
    per_shard: usize,
    json_bytes: usize,
) -> std::io::Result<Vec<PathBuf>> {
    let jpeg = tiny_jpeg();
    let article: String = (0..json_bytes / 8)
        .map(|i| WORDS[(i * 7) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ");
    let mut paths = Vec::new();
    let per_shard = per_shard.max(1);
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for (shard_no, start) in (0..samples).step_by(per_shard).enumerate() {
        let subset = super::taxonomy::SUBSETS[shard_no % 3];
        let sub = dir.join(subset);
        std::fs::create_dir_all(&sub)?;
        let path = sub.join(format!("{shard_no:06}.tar"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for i in start..(start + per_shard).min(samples) {
            let r = next();
            let (primary, locals) = TAXONOMY[(r % 16) as usize];
            let secondary = locals[(r >> 8) as usize % locals.len()];
            let pmcid = 1_000_000 + (i / 4);
            // Every 40th key is long with dots, as PLOS-style ids are.
            let key = if i % 40 == 0 {
                format!(
                    "filelist_{subset}_0_{shard_no}-PMC{pmcid}-{}-pone.0{i:06}.g001.Supplementary.figure.with.a.very.long.descriptive.name.that.needs.a.pax.header",
                    i % 4
                )
            } else {
                format!("filelist_{subset}_0_{shard_no}-PMC{pmcid}-{}-fig{i}", i % 4)
            };
            let caption: String = (0..12 + (r >> 16) as usize % 20)
                .map(|j| WORDS[((r >> (j % 48)) as usize + j) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ");
            let hash = format!(
                "{:016x}{:048x}",
                (r >> 20) % (samples as u64 * 9 / 10).max(1),
                0
            );
            // In the ETL's key order (json.dumps keeps insertion order; serde_json::Map
            // would sort), so `article_text` comes last as in the real data.
            let pairs: Vec<(&str, serde_json::Value)> = vec![
                ("image_file_name", serde_json::json!(format!("fig{i}.jpg"))),
                ("image_cluster_id", serde_json::json!(format!("fig{i}"))),
                ("image_hash", serde_json::json!(hash)),
                (
                    "image_label_id",
                    serde_json::json!(((r >> 24) % 2000).to_string()),
                ),
                (
                    "image_panel_type",
                    serde_json::json!(if r % 2 == 0 { "single" } else { "multiple" }),
                ),
                ("image_panel_subtype", serde_json::json!("single panel")),
                ("image_primary_label", serde_json::json!([primary])),
                ("image_secondary_label", serde_json::json!([secondary])),
                (
                    "image_size",
                    serde_json::json!([64 + (r >> 30) % 2000, 64 + (r >> 40) % 2000]),
                ),
                ("image_set", serde_json::json!([])),
                ("image_context", serde_json::json!({})),
                (
                    "article_accession_id",
                    serde_json::json!(format!("PMC{pmcid}")),
                ),
                ("article_title", serde_json::json!("A synthetic article")),
                (
                    "article_journal",
                    serde_json::json!(format!("Journal {}", (r >> 33) % 50)),
                ),
                (
                    "article_date",
                    serde_json::json!((946_684_800 + (r >> 20) % 800_000_000).to_string()),
                ),
                ("article_abstract", serde_json::json!("None")),
                ("article_mesh_terms", serde_json::json!([""])),
                ("article_keywords", serde_json::json!([""])),
                ("article_reference_ids", serde_json::json!([""])),
                ("article_reference_count", serde_json::json!(3)),
                ("article_reference_list", serde_json::json!([])),
                ("article_subject", serde_json::json!([""])),
                ("article_citation", serde_json::json!("Synth. 2020")),
                ("article_license", serde_json::json!(LICENCES[shard_no % 3])),
                ("article_text", serde_json::json!(article.as_str())),
            ];
            let mut json = b"{".to_vec();
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    json.extend_from_slice(b", ");
                }
                serde_json::to_writer(&mut json, k).map_err(std::io::Error::other)?;
                json.extend_from_slice(b": ");
                serde_json::to_writer(&mut json, v).map_err(std::io::Error::other)?;
            }
            json.push(b'}');
            member(&mut out, &format!("{key}.jpg"), &jpeg)?;
            member(&mut out, &format!("{key}.json"), &json)?;
            member(&mut out, &format!("{key}.txt"), caption.as_bytes())?;
        }
        out.write_all(&[0u8; 1024])?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::biomedica::{Filter, build_catalog};

    #[test]
    fn synthetic_shards_index_completely_and_filter_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let shards = write_shards(&dir.path().join("s"), 250, 100, 512).unwrap();
        assert_eq!(shards.len(), 3);
        let (cat, stats) =
            build_catalog(&shards, &dir.path().join("side"), &|_, _| {}, &|| false).unwrap();
        assert_eq!((stats.samples, stats.built), (250, 3));
        assert_eq!(
            cat.reports().count(),
            0,
            "{:?}",
            cat.reports().collect::<Vec<_>>()
        );
        // Long keys (every 40th) went through PAX path records and came back whole.
        assert!(
            cat.key(0).ends_with(".needs.a.pax.header"),
            "{}",
            cat.key(0)
        );
        // A combined filter equals the intersection of its parts.
        let single =
            |f: Filter| -> std::collections::BTreeSet<u32> { cat.apply(&f).into_iter().collect() };
        let a = single(Filter {
            subsets: vec!["commercial".into()],
            ..Default::default()
        });
        let b = single(Filter {
            years: Some((2005, 2015)),
            ..Default::default()
        });
        let c = single(Filter {
            panel_type: Some("single".into()),
            ..Default::default()
        });
        assert_eq!(a.len(), 100);
        assert!(!b.is_empty() && !c.is_empty(), "{} {}", b.len(), c.len());
        let all = single(Filter {
            subsets: vec!["commercial".into()],
            years: Some((2005, 2015)),
            panel_type: Some("single".into()),
            ..Default::default()
        });
        let expected: std::collections::BTreeSet<u32> = a
            .iter()
            .filter(|i| b.contains(i) && c.contains(i))
            .copied()
            .collect();
        assert_eq!(all, expected);
        assert!(!all.is_empty());
    }
}

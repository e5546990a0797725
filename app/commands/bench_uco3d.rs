//! `loupe bench uco3d`: frame fetch latency for 1080p H.264 and HEVC against the `ffmpeg`
//! CLI on the same files, and the metadata database (170k synthetic sequences): time to
//! open the browser and to filter it, against loading every row.
// The table on stdout is this command's output.
#![allow(clippy::print_stdout)]

use super::bench::{BenchArgs, median};
use crate::datasets::uco3d::db::{MetadataDb, SCHEMA, SequenceQuery, SortBy, pack_f32};
use crate::datasets::uco3d::video::VideoReader;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SECONDS: u32 = 10;
const FPS: u32 = 30;
const SEEKS: usize = 20;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    println!("uCO3D frame fetch: 1920×1080, {SECONDS} s at {FPS} fps (ffmpeg testsrc2), RGBA out");
    println!(
        "| video | Loupe sequential (fps) | ffmpeg CLI sequential (fps) | ratio | Loupe random seek (ms, median) | ffmpeg CLI seek (ms, median) | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (codec, encoder) in [("H.264", "libx264"), ("HEVC", "libx265")] {
        let path = dir.path().join(format!("{encoder}.mp4"));
        make_video(&path, encoder)?;
        let frames = (SECONDS * FPS) as usize;
        // Sequential: every frame in order, as playback does.
        let loupe_seq = median(
            (0..args.runs.max(1))
                .map(|_| -> anyhow::Result<Duration> {
                    let mut r = VideoReader::open(&path)?;
                    let t = Instant::now();
                    for i in 0..frames {
                        std::hint::black_box(r.frame_at(i as f64 / f64::from(FPS))?);
                    }
                    Ok(t.elapsed())
                })
                .collect::<anyhow::Result<_>>()?,
        );
        let cli_seq = median(
            (0..args.runs.max(1))
                .map(|_| ffmpeg_decode(&path, None))
                .collect::<anyhow::Result<_>>()?,
        );
        // Random seeks: deterministic pseudo-random timestamps over the whole video.
        let times: Vec<f64> = (0..SEEKS)
            .map(|i| ((i * 7919 + 13) % frames) as f64 / f64::from(FPS))
            .collect();
        let mut r = VideoReader::open(&path)?;
        let mut loupe_seek = Vec::new();
        for &t in &times {
            let start = Instant::now();
            std::hint::black_box(r.frame_at(t)?);
            loupe_seek.push(start.elapsed());
        }
        let cli_seek = times
            .iter()
            .map(|&t| ffmpeg_decode(&path, Some(t)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (ls, cs) = (median(loupe_seek), median(cli_seek));
        let fps = |d: Duration| frames as f64 / d.as_secs_f64();
        println!(
            "| {codec} | {:.0} | {:.0} | {:.2}× | {:.1} | {:.1} | {:.2}× |",
            fps(loupe_seq),
            fps(cli_seq),
            cli_seq.as_secs_f64() / loupe_seq.as_secs_f64(),
            ms(ls),
            ms(cs),
            cs.as_secs_f64() / ls.as_secs_f64(),
        );
    }
    metadata(dir.path(), args.runs)
}

fn make_video(path: &Path, encoder: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
    ])
    .arg(format!(
        "testsrc2=size=1920x1080:rate={FPS}:duration={SECONDS}"
    ))
    .args([
        "-c:v", encoder, "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60",
    ]);
    if encoder == "libx265" {
        cmd.args(["-x265-params", "log-level=error", "-tag:v", "hvc1"]);
    }
    let status = cmd
        .arg(path)
        .status()
        .context("running ffmpeg (is it installed?)")?;
    anyhow::ensure!(
        status.success(),
        "ffmpeg could not encode {}",
        path.display()
    );
    Ok(())
}

/// The `ffmpeg` CLI decoding to RGBA (all frames, or one frame after seeking to `at`).
fn ffmpeg_decode(path: &Path, at: Option<f64>) -> anyhow::Result<Duration> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error"]);
    if let Some(t) = at {
        cmd.args(["-ss", &format!("{t:.3}")]);
    }
    cmd.arg("-i").arg(path);
    if at.is_some() {
        cmd.args(["-frames:v", "1"]);
    }
    cmd.args(["-pix_fmt", "rgba", "-f", "null", "-"]);
    let t = Instant::now();
    let status = cmd.status().context("running ffmpeg")?;
    anyhow::ensure!(status.success(), "ffmpeg failed on {}", path.display());
    Ok(t.elapsed())
}

const SEQUENCES: usize = 170_000;

/// A metadata.sqlite with 170k sequences over ~1,000 categories in 56 super-categories
/// and realistic caption lengths (no frame rows: the browser never reads them).
fn synth_db(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("metadata.sqlite");
    let mut conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch(SCHEMA)?;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO sequence_annots (sequence_name, category, super_category, \
             _reconstruction_quality_viewpoint, _reconstruction_quality_gaussian_splats, \
             _caption_text, _short_caption_text, _alignment_R, _alignment_T, _alignment_scale) \
             VALUES (?,?,?,?,?,?,?,?,?,1.0)",
        )?;
        let words = [
            "red", "wooden", "ceramic", "small", "striped", "shiny", "old", "plastic", "metal",
            "green",
        ];
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..SEQUENCES {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            let cat = (h % 1000) as usize;
            let caption = format!(
                "A {} {} object (category {cat}) on a table, filmed in a full circle from a phone; \
                 the background shows a {} room with {} furniture and soft daylight from a window.",
                words[(h >> 10) as usize % 10],
                words[(h >> 20) as usize % 10],
                words[(h >> 30) as usize % 10],
                words[(h >> 40) as usize % 10],
            );
            stmt.execute(rusqlite::params![
                format!("{}-{}-{}", i % 97, i, h % 100_000),
                format!("category_{cat:04}"),
                format!("super_{:02}", cat % 56),
                (h >> 8) as f64 / (1u64 << 56) as f64,
                (h >> 16) as f64 / (1u64 << 48) as f64,
                caption,
                format!("A {} object", words[(h >> 50) as usize % 10]),
                pack_f32(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
                pack_f32(&[0.0, 0.0, 0.0]),
            ])?;
        }
    }
    tx.commit()?;
    Ok(path)
}

fn metadata(dir: &Path, runs: usize) -> anyhow::Result<()> {
    let path = synth_db(dir)?;
    println!();
    println!("uCO3D metadata.sqlite, {SEQUENCES} synthetic sequences (median of {runs})");
    println!("| operation | Loupe (ms) | baseline: load every row (ms) | ratio |");
    println!("|---|---|---|---|");
    let full = super::bench::time(runs, || -> anyhow::Result<usize> {
        let conn = rusqlite::Connection::open(&path)?;
        let mut stmt = conn.prepare("SELECT * FROM sequence_annots")?;
        let mut rows = stmt.query([])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let _: Option<String> = r.get("_caption_text")?;
            n += 1;
        }
        Ok(n)
    });
    let open = super::bench::time(runs, || -> anyhow::Result<usize> {
        let db = MetadataDb::open(&path)?;
        Ok(db.categories()?.len() + db.query(&SequenceQuery::default())?.len())
    });
    println!(
        "| open: categories + full sorted list | {:.0} | {:.0} | {:.1}× |",
        ms(open),
        ms(full),
        full.as_secs_f64() / open.as_secs_f64()
    );
    let db = MetadataDb::open(&path)?;
    let queries = [
        (
            "filter: one category",
            SequenceQuery {
                super_category: Some("super_07".into()),
                category: Some("category_0007".into()),
                ..Default::default()
            },
        ),
        (
            "filter: splat quality ≥ 0.9, sorted by it",
            SequenceQuery {
                min_splat_quality: Some(0.9),
                sort: SortBy::SplatQualityDesc,
                ..Default::default()
            },
        ),
        (
            "caption search \"category 0421)\", full scan",
            SequenceQuery {
                caption: "category 0421)".into(),
                ..Default::default()
            },
        ),
    ];
    let index = dir.join("captions.sqlite");
    let t = Instant::now();
    crate::datasets::uco3d::caption_index::ensure(&path, &index, &|| false)?;
    let built = t.elapsed();
    let indexed = SequenceQuery {
        caption: "category 0421)".into(),
        caption_index: Some(index),
        ..Default::default()
    };
    let t = super::bench::time(runs, || db.query(&indexed).map(|r| r.len()));
    println!(
        "| caption search \"category 0421)\" (0.1 % match), trigram index (built once in {:.1} s, cached) | {:.0} | {:.0} | {:.1}× |",
        built.as_secs_f64(),
        ms(t),
        ms(full),
        full.as_secs_f64() / t.as_secs_f64()
    );
    for (name, q) in queries {
        let t = super::bench::time(runs, || db.query(&q).map(|r| r.len()));
        println!(
            "| {name} | {:.0} | {:.0} | {:.1}× |",
            ms(t),
            ms(full),
            full.as_secs_f64() / t.as_secs_f64()
        );
    }
    Ok(())
}

//! `loupe bench grid`: the BioMed thumbnail grid's UI-thread frame time while it
//! scrolls through a large catalog and thumbnails stream in from the decode pool, and
//! thumbnail throughput (full decode vs JPEG DCT downscaling vs the disk cache).
//!
//! A frame is what the UI thread does for the grid: the image cache taking finished
//! decodes and creating textures, egui layout of the visible rows, and tessellation.
//! The GPU's share (drawing a few hundred textured quads) is not included. The baseline
//! is the same grid over a 1,000-item catalog in the same run: a virtualised grid costs
//! the same at any size, so the ratio should stay near 1.
// The tables on stdout are this command's output.
#![allow(clippy::print_stdout)]

use super::bench::BenchArgs;
use crate::datasets::biomedica::{self, synth};
use crate::image_cache::{ImageCache, ImageSource};
use crate::thumbnails::{DiskCache, decode_jpeg_scaled};
use crate::ui::toasts::Toasts;
use crate::worker::Worker;
use crate::workspace::Shared;
use crate::workspace::biomed::BioMed;
use std::time::{Duration, Instant};

const FRAMES: usize = 600;
const THUMB: u32 = 192;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    thumbnails(args.runs)?;
    frames(args)
}

/// A 3000 × 2000 figure (the size of a large multi-panel figure), from a demo photo.
fn figure_jpeg() -> anyhow::Result<Vec<u8>> {
    let (_, bytes) = crate::demo::IMAGES
        .iter()
        .find(|(n, _)| *n == "coffee.jpg")
        .ok_or_else(|| anyhow::anyhow!("demo image missing"))?;
    let img = image::load_from_memory(bytes)?.resize_exact(
        3000,
        2000,
        image::imageops::FilterType::Triangle,
    );
    let mut out = Vec::new();
    img.to_rgb8()
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 90,
        ))?;
    Ok(out)
}

fn thumbnails(runs: usize) -> anyhow::Result<()> {
    let jpeg = figure_jpeg()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("figure.jpg");
    crate::atomic::write_atomic(&file, &jpeg)?;
    let source = ImageSource::File(file);
    let disk = DiskCache::new(dir.path().join("thumbs"));
    let n = 20 * runs.max(1);
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        n as f64 / t.elapsed().as_secs_f64()
    };
    let full = time(&|| {
        let img = image::load_from_memory(&jpeg).map(|i| i.thumbnail(THUMB, THUMB));
        std::hint::black_box(img.ok());
    });
    let dct = time(&|| {
        std::hint::black_box(decode_jpeg_scaled(&jpeg, THUMB));
    });
    let (thumb, size) =
        decode_jpeg_scaled(&jpeg, THUMB).ok_or_else(|| anyhow::anyhow!("scaled decode"))?;
    disk.put(&source, THUMB, &thumb, size);
    let cached = time(&|| {
        std::hint::black_box(disk.get(&source, THUMB));
    });
    println!("Thumbnails of a 3000 × 2000 JPEG figure at {THUMB} px, one core ({n} each):");
    println!();
    println!("| path | thumbnails/s | vs full decode |");
    println!("|---|---|---|");
    println!("| full decode (image/zune-jpeg) + box filter | {full:.1} | 1.00× |");
    println!(
        "| DCT-domain downscale (jpeg-decoder, 1/8) + box filter | {dct:.1} | {:.2}× |",
        dct / full
    );
    println!(
        "| on-disk thumbnail cache hit | {cached:.0} | {:.0}× |",
        cached / full
    );
    println!();
    Ok(())
}

struct FrameStats {
    p50: Duration,
    p99: Duration,
    max: Duration,
    ready: usize,
}

fn grid_frames(catalog: biomedica::Catalog) -> anyhow::Result<FrameStats> {
    let ctx = egui::Context::default();
    let worker = Worker::headless()?;
    let images = ImageCache::new(ctx.clone(), worker.clone(), ImageCache::DEFAULT_BUDGET);
    let mut shared = Shared {
        worker,
        images,
        toasts: Toasts::default(),
    };
    let mut grid = BioMed::default();
    grid.show_catalog(catalog);
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1600.0, 1000.0));
    let mut times = Vec::with_capacity(FRAMES);
    for frame in 0..FRAMES {
        // Scroll a row and a half every frame (fast continuous scrolling), so new rows
        // keep asking for thumbnails while earlier ones arrive.
        let mut events = vec![egui::Event::PointerMoved(egui::pos2(800.0, 500.0))];
        if frame > 0 {
            events.push(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, -300.0),
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Unknown,
                modifiers: egui::Modifiers::NONE,
            });
        }
        let input = egui::RawInput {
            screen_rect: Some(screen),
            time: Some(frame as f64 / 60.0),
            events,
            ..Default::default()
        };
        let t = Instant::now();
        shared.images.begin_frame();
        let mut output = ctx.run_ui(input, |ui| {
            egui::CentralPanel::default().show(ui, |ui| {
                crate::workspace::Workspace::central(&mut grid, ui, &mut shared);
            });
        });
        let shapes = std::mem::take(&mut output.shapes);
        let prims = ctx.tessellate(shapes, output.pixels_per_point);
        std::hint::black_box(prims);
        // No GPU here: the texture uploads are dropped (egui insists they be handled).
        output.textures_delta.clear();
        times.push(t.elapsed());
    }
    let ready = shared.images.len();
    times.sort();
    Ok(FrameStats {
        p50: percentile(&times, 0.5),
        p99: percentile(&times, 0.99),
        max: *times.last().unwrap_or(&Duration::ZERO),
        ready,
    })
}

/// What a filter change costs at this size: `biomed::ordered` for a caption search, a
/// CLIP ranking (random cosines stand in for a semantic query's scores) and both fused.
/// From `ASYNC_FILTER_FROM` items this runs on the worker, so the UI thread only pays
/// for starting the job; smaller catalogs are filtered in the frame.
fn filter_changes(catalog: &biomedica::Catalog, runs: usize) {
    use crate::datasets::biomedica::Filter;
    use crate::workspace::biomed::ordered;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let scores: Vec<f32> = (0..catalog.len())
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let caption = Filter {
        query: "fundus".into(),
        ..Filter::default()
    };
    let cases: [(&str, &Filter, Option<&[f32]>, usize); 4] = [
        ("caption search \"fundus\"", &caption, None, 0),
        (
            "CLIP ranking, top 1,000",
            &Filter::default(),
            Some(&scores),
            1000,
        ),
        (
            "CLIP ranking, all items",
            &Filter::default(),
            Some(&scores),
            0,
        ),
        (
            "\"fundus\" fused with CLIP top 1,000 (RRF)",
            &caption,
            Some(&scores),
            1000,
        ),
    ];
    println!(
        "Filter changes at {} items (median of {runs}, one core):",
        catalog.len()
    );
    println!();
    println!("| change | results | ms |");
    println!("|---|---|---|");
    for (name, filter, scores, limit) in cases {
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            count = ordered(catalog, filter, scores, limit).len();
            times.push(t.elapsed());
        }
        times.sort();
        println!("| {name} | {count} | {:.1} |", ms(percentile(&times, 0.5)));
    }
    println!();
}

fn frames(args: &BenchArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let mut rows = Vec::new();
    let mut baseline = None;
    for n in [1_000usize, args.samples] {
        let shard_dir = dir.join(format!("grid-{n}"));
        eprintln!("writing {n} synthetic samples…");
        let shards = synth::write_shards(&shard_dir, n, args.per_shard, 512)?;
        let (catalog, _) =
            biomedica::build_catalog(&shards, &dir.join(format!("side-{n}")), &|_, _| {}, &|| {
                false
            })?;
        if n == args.samples {
            filter_changes(&catalog, args.runs);
        }
        let s = grid_frames(catalog)?;
        let base = *baseline.get_or_insert(s.p99);
        rows.push(format!(
            "| {n} | {FRAMES} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:.2}× |",
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            s.ready,
            s.p99.as_secs_f64() / base.as_secs_f64()
        ));
    }
    println!("Grid frames (1600 × 1000 window, {THUMB}-px thumbnails, scrolling 300 px a frame):");
    println!();
    println!("| items | frames | p50 | p99 | max | textures made | p99 vs 1,000 items |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

//! `loupe bench`: speed figures as a table, each against a baseline measured in the
//! same run (see BENCHMARKS.md).

use loupe_render::camera::{Camera, Intrinsics, OrbitController};
use loupe_render::gpu::{GpuContext, GpuSplats, SplatPipeline, bytes_per_splat, offscreen};
use loupe_render::reference::RenderSettings;
use loupe_render::splats::Splats;
use std::io::Write as _;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub what: BenchTarget,
    /// Splat counts to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000usize, 1_000_000])]
    pub sizes: Vec<usize>,
    /// Python with `plyfile` and `numpy` for the PLY-reading baseline.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Repetitions per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Skip the (slow on a software GPU) frame timing.
    #[arg(long)]
    pub skip_frame: bool,
    #[command(flatten)]
    pub ground: super::bench_ground::GroundBenchArgs,
    #[command(flatten)]
    pub clip: super::bench_clip::ClipBenchArgs,
    /// `bench biomed`: synthetic samples to write and index (1000000 for the full run).
    #[arg(long, default_value_t = 50_000)]
    pub samples: usize,
    /// `bench biomed`: samples per shard.
    #[arg(long, default_value_t = 10_000)]
    pub per_shard: usize,
    /// `bench biomed`: bytes of article text in each sample's JSON (real ones are
    /// 100 KB to MBs; kept small by default so the set fits a laptop's disk).
    #[arg(long, default_value_t = 8192)]
    pub json_bytes: usize,
    /// `bench biomed`: skip the (slow) Python baselines.
    #[arg(long)]
    pub skip_python: bool,
    /// `bench biomed` / `bench index`: where to write the synthetic shards or index files
    /// (default: a temp folder).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// `bench index`: build and measure the HNSW graph up to this many vectors.
    #[arg(long, default_value_t = 1_000_000)]
    pub ann_max: usize,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum BenchTarget {
    Splats,
    /// Grounding model prefill/decode speed against the transformers reference.
    Ground,
    /// BIOMEDICA shard indexing, filters and search (see `bench_biomed.rs`).
    Biomed,
    /// uCO3D frame fetch (H.264/HEVC vs the ffmpeg CLI) and metadata queries.
    Uco3d,
    /// BioMed grid frame times while scrolling a large catalog, thumbnail throughput.
    Grid,
    /// Exact and HNSW top-k search over embedding index files (`--sizes` vectors of 768 f16).
    Index,
    /// OpenCLIP (BMC-CLIP) image/text embedding speed against open-clip-torch.
    Clip,
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub(crate) fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs.max(1))
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

/// The reference Python way to load a 3DGS PLY: plyfile, then every property stacked
/// into one float array, as the 3DGS training code's `load_ply` does (plyfile maps the
/// file lazily, so without the copy nothing would be read). Prints seconds.
const PY_READ: &str = r#"
import sys, time
import numpy as np
from plyfile import PlyData
t = time.perf_counter()
v = PlyData.read(sys.argv[1])["vertex"]
data = np.stack([np.asarray(v[p.name], dtype=np.float32) for p in v.properties], axis=1)
assert data.shape[0] > 0
print(time.perf_counter() - t)
"#;

fn python_read(python: &str, path: &std::path::Path, runs: usize) -> Option<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let out = std::process::Command::new(python)
            .args(["-c", PY_READ])
            .arg(path)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        times.push(Duration::from_secs_f64(secs));
    }
    Some(median(times))
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchTarget::Splats => splats(args),
        BenchTarget::Ground => super::bench_ground::run(&args.ground, &args.python),
        BenchTarget::Biomed => super::bench_biomed::run(args),
        BenchTarget::Uco3d => super::bench_uco3d::run(args),
        BenchTarget::Index => super::bench_index::run(args),
        BenchTarget::Grid => super::bench_grid::run(args),
        BenchTarget::Clip => super::bench_clip::run(&args.clip, &args.python, args.runs),
    }
}

fn splats(args: &BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let gpu = GpuContext::headless()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "adapter: {} ({:?})", gpu.info.name, gpu.info.backend)?;
    writeln!(
        out,
        "| N | file MB | Loupe PLY read MB/s | plyfile+numpy MB/s | ratio | radix sort ms | comparison sort ms | ratio | frame ms 1920×1080 | GPU B/splat |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
    for &n in &args.sizes {
        let splats = Splats::random(42, n, 3, 1.0, 0.01);
        let path = dir.path().join(format!("bench_{n}.ply"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        loupe_render::io::ply::write_ply(&mut f, &splats)?;
        drop(f);
        let mb = std::fs::metadata(&path)?.len() as f64 / 1e6;
        // Warm the page cache so both readers see the same (cached) file.
        let _ = std::fs::read(&path)?;
        let ours = time(args.runs, || {
            loupe_render::io::read_path(&path, &mut |_| true).map(|r| r.0)
        });
        let py = python_read(&args.python, &path, args.runs);

        let framing = OrbitController::framing(&splats.means);
        let cam = {
            let k = Intrinsics::from_fov_y(framing.fov_y, 1920, 1080);
            let mut c = Camera::look_at(framing.eye(), framing.target, nalgebra::Vector3::z(), k);
            c.near = 0.01;
            c
        };
        let radix = time(args.runs, || {
            loupe_render::gpu::splat_pipeline::sort_back_to_front(&splats.means, &cam)
        });
        let comparison = time(args.runs, || {
            let m = cam.world_to_camera.to_homogeneous().cast::<f32>();
            let depth: Vec<f32> = splats
                .means
                .iter()
                .map(|p| m[(2, 0)] * p[0] + m[(2, 1)] * p[1] + m[(2, 2)] * p[2] + m[(2, 3)])
                .collect();
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_unstable_by(|&a, &b| depth[b as usize].total_cmp(&depth[a as usize]));
            order
        });
        let pipeline = SplatPipeline::new(&gpu.device, offscreen::FORMAT);
        let mut uploaded = GpuSplats::upload(&gpu.device, &pipeline, &splats);
        let settings = RenderSettings::default();
        let frame = if args.skip_frame {
            None
        } else {
            let _ = offscreen::render_uploaded(&gpu, &pipeline, &mut uploaded, &cam, &settings)?;
            Some(time(args.runs.min(3), || {
                offscreen::render_uploaded(&gpu, &pipeline, &mut uploaded, &cam, &settings)
            }))
        };

        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let ours_mbs = mb / ours.as_secs_f64();
        let (py_mbs, ratio) = match py {
            Some(p) => {
                let p = mb / p.as_secs_f64();
                (format!("{p:.0}"), format!("{:.1}×", ours_mbs / p))
            }
            None => ("n/a (pip install plyfile numpy)".into(), "–".into()),
        };
        writeln!(
            out,
            "| {n} | {mb:.0} | {ours_mbs:.0} | {py_mbs} | {ratio} | {:.1} | {:.1} | {:.1}× | {} | {} (SH0: {}) |",
            ms(radix),
            ms(comparison),
            comparison.as_secs_f64() / radix.as_secs_f64(),
            frame.map_or_else(|| "skipped".to_owned(), |f| format!("{:.0}", ms(f))),
            bytes_per_splat(3),
            bytes_per_splat(0),
        )?;
    }
    writeln!(
        out,
        "frame ms = sort + projection + draw + readback of one offscreen frame; medians of {} runs",
        args.runs
    )?;
    Ok(())
}

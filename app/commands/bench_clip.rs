//! `loupe bench clip`: image and text embeddings per second of the OpenCLIP port against
//! open-clip-torch (`models/tools/bench_clip.py`) on the same shapes and inputs, measured
//! in the same run. `vit-l-14` is BMC-CLIP's architecture with random weights (speed
//! depends on shapes only); `tiny` is the parity fixture.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;
use loupe_models::clip::{Clip, ClipConfig, ClipModel, ModelSource};

use super::bench::median;

const FIXTURE: &str = "models/tests/fixtures/clip_tiny";
const SCRIPT: &str = "models/tools/bench_clip.py";

/// open_clip's `model_configs/ViT-L-14.json` (BMC_CLIP_CF's architecture).
const VIT_L_14: &str = r#"{"model_cfg": {"embed_dim": 768,
  "vision_cfg": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 14},
  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 768, "heads": 12, "layers": 12}}}"#;

#[derive(Debug, Clone, clap::Args)]
pub struct ClipBenchArgs {
    /// `bench clip`: tiny (the parity fixture), vit-l-14 (random weights, BMC-CLIP's shapes).
    #[arg(long, value_delimiter = ',', default_values_t = ["tiny".to_string(), "vit-l-14".to_string()])]
    pub clip_models: Vec<String>,
    /// `bench clip`: images per forward pass.
    #[arg(long, default_value_t = 4)]
    pub image_batch: usize,
    /// `bench clip`: captions per text batch (cycled from the fixture's captions).
    #[arg(long, default_value_t = 32)]
    pub text_batch: usize,
}

/// Random weights of the right shapes; LayerNorm gains 1 so activations stay in range.
/// (Same idea as `bench_ground`'s backend, with CLIP's norm names.)
struct RandomBackend;

impl SimpleBackend for RandomBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let is_norm = name
            .split('.')
            .rev()
            .nth(1)
            .is_some_and(|m| m.starts_with("ln"));
        let t = if is_norm && name.ends_with("weight") {
            Tensor::ones(s, DType::F32, dev)?
        } else {
            let fan_in = s.dims().last().copied().unwrap_or(1).max(1) as f32;
            Tensor::randn(0f32, fan_in.powf(-0.5), s, dev)?
        };
        t.to_dtype(dtype)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: random weights need a shape")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        false
    }
}

/// Deterministic 640×427 test images (the size of a typical figure thumbnail, so the
/// resize and crop do work), written as PNG so Python reads the same pixels.
fn write_images(dir: &Path, n: usize) -> anyhow::Result<Vec<PathBuf>> {
    (0..n as u32)
        .map(|k| {
            let img = image::RgbImage::from_fn(640, 427, |x, y| {
                let r2 = (x as i32 - 200 - 60 * k as i32).pow(2) + (y as i32 - 210).pow(2);
                if r2 < 90 * 90 {
                    image::Rgb([200, 40 + 50 * (k % 4) as u8, 30])
                } else {
                    image::Rgb([(x / 3) as u8, (y / 2) as u8, ((x + y + 64 * k) / 5) as u8])
                }
            });
            let p = dir.join(format!("clip_bench_{k}.png"));
            img.save(&p).with_context(|| p.display().to_string())?;
            Ok(p)
        })
        .collect()
}

fn captions(n: usize) -> anyhow::Result<Vec<String>> {
    let path = Path::new(FIXTURE).join("reference.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{} (run from the repository root)", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let all: Vec<String> = v["captions"]
        .as_array()
        .context("reference.json has no captions")?
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    anyhow::ensure!(!all.is_empty(), "no captions");
    Ok(all.iter().cycle().take(n).cloned().collect())
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median_secs(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut v = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed());
    }
    Ok(median(v).as_secs_f64())
}

#[derive(Default)]
struct Figures {
    preprocess: Option<f64>,
    image: Option<f64>,
    text: Option<f64>,
    peak_mb: Option<f64>,
}

fn load(which: &str) -> anyhow::Result<Clip> {
    match which {
        "tiny" => Clip::load(&ModelSource::Dir(FIXTURE.into()), DType::F32, &Device::Cpu)
            .map_err(|e| anyhow::anyhow!("{e} (run from the repository root)")),
        "vit-l-14" => {
            let cfg = ClipConfig::from_json(VIT_L_14, "ViT-L-14 shapes")
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let vb = VarBuilder::from_backend(Box::new(RandomBackend), DType::F32, Device::Cpu);
            let model = ClipModel::new(&cfg, vb)?;
            Clip::from_parts(cfg, model, "ViT-L-14 (random)").map_err(|e| anyhow::anyhow!("{e}"))
        }
        other => anyhow::bail!("unknown model {other:?} (tiny or vit-l-14)"),
    }
}

fn measure(
    clip: &Clip,
    images: &[image::RgbImage],
    batch: usize,
    captions: &[String],
    runs: usize,
) -> anyhow::Result<Figures> {
    let err = |e: loupe_models::clip::Error| anyhow::anyhow!("{e}");
    let t = median_secs(runs, || {
        clip.pixel_tensor(images).map_err(err)?;
        Ok(())
    })?;
    let preprocess = images.len() as f64 / t;
    let pixels = clip.pixel_tensor(images).map_err(err)?;
    let reps = batch.div_ceil(images.len());
    let pixels = Tensor::cat(&vec![&pixels; reps], 0)?.narrow(0, 0, batch)?;
    clip.encode_pixels(&pixels.narrow(0, 0, 1)?).map_err(err)?; // warm-up
    let t = median_secs(runs, || {
        clip.encode_pixels(&pixels).map_err(err)?;
        Ok(())
    })?;
    let image = batch as f64 / t;
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    clip.encode_texts(&refs).map_err(err)?;
    let t = median_secs(runs, || {
        clip.encode_texts(&refs).map_err(err)?;
        Ok(())
    })?;
    Ok(Figures {
        preprocess: Some(preprocess),
        image: Some(image),
        text: Some(captions.len() as f64 / t),
        peak_mb: peak_rss_mb(),
    })
}

fn python(
    python: &str,
    which: &str,
    images: &[PathBuf],
    batch: usize,
    captions: &Path,
    runs: usize,
) -> Option<Figures> {
    let out = std::process::Command::new(python)
        .arg(SCRIPT)
        .args(["--model", which, "--image-batch", &batch.to_string()])
        .args(["--runs", &runs.to_string(), "--captions"])
        .arg(captions)
        .arg("--images")
        .args(images)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    Some(Figures {
        preprocess: v["preprocess_images_per_sec"].as_f64(),
        image: v["image_embeddings_per_sec"].as_f64(),
        text: v["text_embeddings_per_sec"].as_f64(),
        peak_mb: v["peak_rss_mb"].as_f64(),
    })
}

// Progress lines go to stderr; the table is this command's output.
#[allow(clippy::print_stderr)]
pub fn run(args: &ClipBenchArgs, python_exe: &str, runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let paths = write_images(dir.path(), args.image_batch.clamp(1, 8))?;
    let images = paths
        .iter()
        .map(|p| Ok(image::open(p)?.to_rgb8()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let caps = captions(args.text_batch.max(1))?;
    let caps_path = dir.path().join("captions.json");
    // A scratch file in a temp folder, read once by the reference; no need for an atomic save.
    let caps_json = serde_json::to_string(&caps)?;
    std::fs::File::create(&caps_path)
        .and_then(|mut f| f.write_all(caps_json.as_bytes()))
        .with_context(|| caps_path.display().to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "CPU f32, {} images 640×427, image batch {}, text batch {}, median of {runs}, CPU threads: {}",
        images.len(),
        args.image_batch,
        caps.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )?;
    writeln!(
        out,
        "| model | Loupe preprocess img/s | reference | ratio | Loupe image emb/s | reference | ratio | Loupe text emb/s | reference | ratio | Loupe peak MB | reference peak MB |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for which in &args.clip_models {
        let clip = load(which)?;
        let ours = measure(&clip, &images, args.image_batch.max(1), &caps, runs)?;
        drop(clip);
        eprintln!(
            "{which}: Loupe {:.2} images/s, {:.2} texts/s; running the reference…",
            ours.image.unwrap_or(0.0),
            ours.text.unwrap_or(0.0)
        );
        let theirs = python(
            python_exe,
            which,
            &paths,
            args.image_batch.max(1),
            &caps_path,
            runs,
        )
        .unwrap_or_default();
        let f = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
        let r = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "–".into(),
        };
        writeln!(
            out,
            "| {which} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f(ours.preprocess),
            f(theirs.preprocess),
            r(ours.preprocess, theirs.preprocess),
            f(ours.image),
            f(theirs.image),
            r(ours.image, theirs.image),
            f(ours.text),
            f(theirs.text),
            r(ours.text, theirs.text),
            f(ours.peak_mb),
            f(theirs.peak_mb),
        )?;
        out.flush()?;
    }
    Ok(())
}

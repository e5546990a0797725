//! `loupe bench ground`: prefill and decode speed of the grounding model against the
//! transformers reference (`models/tools/bench_qwen2vl.py`) on the same config and
//! inputs, measured in the same run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;
use loupe_models::qwen2vl::chat::grounding_messages;
use loupe_models::qwen2vl::generate::argmax_first;
use loupe_models::qwen2vl::image_processor::ImageProcessorConfig;
use loupe_models::qwen2vl::loader::{self, ModelSource};
use loupe_models::qwen2vl::{Config, Processor, Qwen2VL};

const FIXTURE: &str = "models/tests/fixtures/qwen2vl-tiny";
const SCRIPT: &str = "models/tools/bench_qwen2vl.py";
const PROMPT: &str = "Locate the cup in the second image.";
/// 448×448 stays 448×448 (16×16 LLM tokens per image).
const MAX_PIXELS: usize = 448 * 448;

/// Qwen2-VL-2B-Instruct's shapes, as the Python script's `CONFIG_2B`.
const CONFIG_2B: &str = r#"{
  "vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960,
  "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
  "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true,
  "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
  "vision_config": {"depth": 32, "embed_dim": 1280, "hidden_size": 1536,
    "hidden_act": "quick_gelu", "mlp_ratio": 4, "num_heads": 16, "in_channels": 3,
    "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
}"#;

#[derive(Debug, Clone, clap::Args)]
pub struct GroundBenchArgs {
    /// Which models: tiny (the test fixture), 2b (random weights, Qwen2-VL-2B shapes, bf16).
    #[arg(long, value_delimiter = ',', default_values_t = ["tiny".to_string(), "2b".to_string()])]
    pub models: Vec<String>,
    /// Greedy decoding steps to time.
    #[arg(long, default_value_t = 16)]
    pub new_tokens: usize,
    /// Seconds to wait for the Python reference before reporting a bound.
    #[arg(long, default_value_t = 900)]
    pub python_timeout: u64,
}

/// Random weights of the right shapes: speed depends on shapes only. Norm scales are 1
/// so activations stay finite in bf16.
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
        let is_norm = name.contains("norm") || name.contains("ln_q");
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

/// Deterministic 448×448 test images (gradients with a few shapes), written as PNG so
/// Python reads the same pixels.
fn write_images(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for k in 0..2u32 {
        let img = image::RgbImage::from_fn(448, 448, |x, y| {
            let inside =
                (x as i32 - 150 - 100 * k as i32).pow(2) + (y as i32 - 220).pow(2) < 80 * 80;
            if inside {
                image::Rgb([200, 40 + 60 * k as u8, 30])
            } else {
                image::Rgb([(x / 2) as u8, (y / 2) as u8, ((x + y + 64 * k) / 4) as u8])
            }
        });
        let p = dir.join(format!("bench_{k}.png"));
        img.save(&p).with_context(|| p.display().to_string())?;
        paths.push(p);
    }
    Ok(paths)
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

struct Figures {
    prompt_tokens: usize,
    prefill: f64,
    decode: f64,
    peak_mb: Option<f64>,
}

fn measure(
    model: &mut Qwen2VL,
    processor: &Processor,
    images: &[image::DynamicImage],
    new_tokens: usize,
) -> anyhow::Result<Figures> {
    let prompt = processor
        .prepare(images, &grounding_messages(images.len(), PROMPT))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let t0 = Instant::now();
    let logits = model
        .prefill(&prompt, &|| false)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("prefill stopped")?;
    let prefill = t0.elapsed().as_secs_f64();
    let mut token = argmax_first(&logits.to_vec1::<f32>()?);
    let t1 = Instant::now();
    for _ in 1..new_tokens {
        let l = model.step(token).map_err(|e| anyhow::anyhow!("{e}"))?;
        token = argmax_first(&l.to_vec1::<f32>()?);
    }
    let decode = t1.elapsed().as_secs_f64();
    Ok(Figures {
        prompt_tokens: prompt.input_ids.len(),
        prefill: prompt.input_ids.len() as f64 / prefill,
        decode: (new_tokens - 1) as f64 / decode.max(1e-9),
        peak_mb: peak_rss_mb(),
    })
}

/// What the reference managed: a figure, or a bound when it ran out of time.
#[derive(Clone, Copy, Debug)]
enum Measured {
    Rate(f64),
    /// Still running after this many seconds: its rate is below `work / secs`.
    TimedOut(f64),
}

struct Reference {
    prompt_tokens: Option<usize>,
    prefill: Option<Measured>,
    decode: Option<Measured>,
    peak_mb: Option<f64>,
}

/// Runs the Python reference, reading its JSON lines as they come; stops it after
/// `timeout` (bf16 without CPU support is extremely slow in PyTorch).
fn python(
    python: &str,
    which: &str,
    dtype: &str,
    images: &[PathBuf],
    n: usize,
    timeout: std::time::Duration,
) -> Option<Reference> {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(python)
        .arg(SCRIPT)
        .args([
            "--model",
            which,
            "--dtype",
            dtype,
            "--new-tokens",
            &n.to_string(),
        ])
        .args(["--max-pixels", &MAX_PIXELS.to_string(), "--images"])
        .args(images)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let mut r = Reference {
        prompt_tokens: None,
        prefill: None,
        decode: None,
        peak_mb: None,
    };
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                r.prompt_tokens = v["prompt_tokens"].as_u64().map(|x| x as usize);
                r.prefill = v["prefill_tokens_per_sec"].as_f64().map(Measured::Rate);
                r.decode = v["decode_tokens_per_sec"].as_f64().map(Measured::Rate);
                r.peak_mb = v["peak_rss_mb"].as_f64();
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let secs = start.elapsed().as_secs_f64();
                // Decode is only bounded when the reference got to it.
                if r.prefill.is_none() {
                    r.prefill = Some(Measured::TimedOut(secs));
                } else {
                    r.decode = Some(Measured::TimedOut(secs));
                }
                break;
            }
        }
    }
    let _ = child.wait();
    let _ = reader.join();
    r.prefill.is_some().then_some(r)
}

// Progress lines go to stderr; the table is this command's output.
#[allow(clippy::print_stderr)]
pub fn run(args: &GroundBenchArgs, python_exe: &str) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let paths = write_images(dir.path())?;
    let images = crate::grounding_model::open_images(&paths)?;
    let files = loader::resolve(&ModelSource::Dir(FIXTURE.into()))
        .map_err(|e| anyhow::anyhow!("{e} (run from the repository root)"))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "2 images 448×448, {} greedy steps, CPU threads: {}",
        args.new_tokens,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )?;
    writeln!(
        out,
        "| model | dtype | prompt tokens | Loupe prefill tok/s | reference prefill tok/s | ratio | Loupe decode tok/s | reference decode tok/s | ratio | Loupe peak MB | reference peak MB |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    for which in &args.models {
        let (mut model, processor, dtype) = match which.as_str() {
            "tiny" => {
                let mut l = loader::load(&files, DType::F32, &Device::Cpu, &|_, _| {}, &|| false)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                l.processor.image.max_pixels = MAX_PIXELS;
                (l.model, l.processor, "f32")
            }
            "2b" => {
                let cfg = Config::from_json(CONFIG_2B, "Qwen2-VL-2B shapes")
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let vb =
                    VarBuilder::from_backend(Box::new(RandomBackend), DType::BF16, Device::Cpu);
                let model = Qwen2VL::new(&cfg, vb).map_err(|e| anyhow::anyhow!("{e}"))?;
                let tokenizer = tokenizers::Tokenizer::from_file(&files.tokenizer)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let image_cfg = ImageProcessorConfig {
                    max_pixels: MAX_PIXELS,
                    ..Default::default()
                };
                (model, Processor::new(tokenizer, image_cfg, &cfg), "bf16")
            }
            other => anyhow::bail!("unknown model {other:?} (tiny or 2b)"),
        };
        let ours = measure(&mut model, &processor, &images, args.new_tokens)?;
        drop(model);
        eprintln!(
            "{which}: Loupe prefill {:.1} tok/s, decode {:.1} tok/s; running the reference…",
            ours.prefill, ours.decode
        );
        let timeout = std::time::Duration::from_secs(args.python_timeout);
        let theirs = python(python_exe, which, dtype, &paths, args.new_tokens, timeout);
        if let Some(t) = theirs.as_ref().and_then(|t| t.prompt_tokens)
            && t != ours.prompt_tokens
        {
            tracing::warn!(
                "prompt lengths differ: Loupe {} vs reference {t}",
                ours.prompt_tokens
            );
        }
        // A timed-out reference did less than `work` in `secs`: its rate is a bound.
        let fmt_ref = |m: Option<Measured>, work: f64| match m {
            Some(Measured::Rate(v)) => format!("{v:.1}"),
            Some(Measured::TimedOut(s)) => format!("< {:.2} (stopped after {s:.0} s)", work / s),
            None => "–".into(),
        };
        let ratio = |a: f64, m: Option<Measured>, work: f64| match m {
            Some(Measured::Rate(b)) => format!("{:.2}×", a / b),
            Some(Measured::TimedOut(s)) => format!("> {:.1}×", a / (work / s)),
            None => "–".into(),
        };
        let prefill_work = ours.prompt_tokens as f64;
        let decode_work = (args.new_tokens - 1) as f64;
        let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
        writeln!(
            out,
            "| {which} | {dtype} | {} | {:.1} | {} | {} | {:.1} | {} | {} | {} | {} |",
            ours.prompt_tokens,
            ours.prefill,
            fmt_ref(theirs.as_ref().and_then(|t| t.prefill), prefill_work),
            ratio(
                ours.prefill,
                theirs.as_ref().and_then(|t| t.prefill),
                prefill_work
            ),
            ours.decode,
            fmt_ref(theirs.as_ref().and_then(|t| t.decode), decode_work),
            ratio(
                ours.decode,
                theirs.as_ref().and_then(|t| t.decode),
                decode_work
            ),
            fmt(ours.peak_mb),
            fmt(theirs.as_ref().and_then(|t| t.peak_mb)),
        )?;
        out.flush()?;
    }
    Ok(())
}

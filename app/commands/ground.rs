//! `loupe ground`: run the grounding model on images + an instruction, headless.

use std::io::Write as _;
use std::path::PathBuf;

use crate::grounding_model::{ModelSettings, ground, open_images};

#[derive(Debug, clap::Args)]
pub struct GroundArgs {
    /// A local model folder (config.json, *.safetensors, tokenizer.json).
    #[arg(long, conflicts_with = "model")]
    pub model_dir: Option<PathBuf>,
    /// A Hugging Face repo id, `owner/name[@revision]`, looked up in the local hub cache.
    #[arg(long)]
    pub model: Option<String>,
    /// An input image; repeat for several, in order.
    #[arg(
        long = "image",
        required_unless_present = "bench",
        conflicts_with = "bench"
    )]
    pub images: Vec<PathBuf>,
    /// The instruction, e.g. "Locate the cup in the second image."
    #[arg(long, required_unless_present = "bench", conflicts_with = "bench")]
    pub prompt: Option<String>,
    /// Answer every item of this MIG-Bench file (prompt as the official eval builds it).
    #[arg(long)]
    pub bench: Option<PathBuf>,
    /// With --bench: the JSONL answers file, appended to as items finish.
    #[arg(long, requires = "bench")]
    pub out: Option<PathBuf>,
    /// With --bench: only items whose index modulo n is k (0 ≤ k < n), e.g. 0/4.
    #[arg(long, requires = "bench")]
    pub shard: Option<String>,
    /// With --bench: continue an interrupted run's --out file.
    #[arg(long, requires = "bench")]
    pub resume: bool,
    /// With --bench: pause after each item (tests kill a run mid-way).
    #[arg(long, default_value_t = 0, hide = true)]
    pub delay_ms: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// auto, f32, bf16 or f16.
    #[arg(long, default_value = "auto")]
    pub dtype: String,
    /// Sample (temperature, top-p, top-k) instead of greedy decoding.
    #[arg(long)]
    pub sample: bool,
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f64,
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f64,
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Pixel budget per image (overrides preprocessor_config.json).
    #[arg(long)]
    pub max_pixels: Option<usize>,
    #[arg(long)]
    pub min_pixels: Option<usize>,
}

impl GroundArgs {
    pub fn settings(&self) -> anyhow::Result<ModelSettings> {
        let source = match (&self.model_dir, &self.model) {
            (Some(d), _) => d.display().to_string(),
            (None, Some(m)) => m.clone(),
            (None, None) => anyhow::bail!("give --model-dir DIR or --model OWNER/NAME"),
        };
        Ok(ModelSettings {
            source,
            dtype: self.dtype.clone(),
            max_new_tokens: self.max_new_tokens,
            sample: self.sample,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            repetition_penalty: self.repetition_penalty,
            seed: self.seed,
            max_pixels: self.max_pixels,
            min_pixels: self.min_pixels,
        })
    }
}

// The answer streams to stdout as it is generated; that is this command's output.
#[allow(clippy::print_stdout)]
pub fn run(args: &GroundArgs) -> anyhow::Result<()> {
    if let Some(bench) = &args.bench {
        return super::ground_bench::run(args, bench);
    }
    let settings = args.settings()?;
    let images = open_images(&args.images)?;
    let prompt = args.prompt.clone().unwrap_or_default();
    // One line per whole percent, not one per tensor.
    let shown = std::sync::atomic::AtomicU64::new(u64::MAX);
    let downloaded = std::sync::atomic::AtomicU64::new(u64::MAX);
    let fetch = loupe_models::qwen2vl::loader::Fetch {
        progress: &|file, done, total| {
            let pct = done * 100 / total.max(1);
            if downloaded.swap(pct, std::sync::atomic::Ordering::Relaxed) != pct {
                eprint!("\rdownloading {file} {pct} %   ");
            }
        },
        cancel: &|| false,
    };
    let mut model = settings.load(&fetch, &|done, total| {
        let pct = done * 100 / total.max(1);
        if shown.swap(pct, std::sync::atomic::Ordering::Relaxed) != pct {
            eprint!("\rloading weights {pct} %");
        }
    })?;
    eprintln!();
    let json = args.json;
    let result = ground(
        &mut model,
        &settings,
        &images,
        &prompt,
        &|| false,
        &mut |t| {
            if !json {
                print!("{t}");
                let _ = std::io::stdout().flush();
            }
        },
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!();
    if result.boxes.is_empty() {
        println!("(no boxes in the answer)");
    }
    for b in &result.boxes {
        let [x1, y1, x2, y2] = b.bbox;
        println!(
            "image {}  ({x1:.0}, {y1:.0}) – ({x2:.0}, {y2:.0}) px{}",
            b.image + 1,
            b.label
                .as_ref()
                .map(|l| format!("  «{l}»"))
                .unwrap_or_default()
        );
    }
    eprintln!(
        "{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s",
        result.prompt_tokens,
        result.prefill_tokens_per_sec,
        result.generated_tokens,
        result.decode_tokens_per_sec
    );
    Ok(())
}

//! `loupe embed` and `loupe search`: BMCA-CLIP (any OpenCLIP ViT) embeddings of
//! BIOMEDICA shards into an index file, and text or image queries against it.
//!
//! `--shard k/n` embeds every n-th shard starting at k, so a Slurm array or Kubernetes
//! indexed Job splits the work without coordination; `loupe search` takes several index
//! files and searches them as one (they must come from the same model).

use crate::datasets::ann::{self, AnnIndex, AnnParams};
use crate::datasets::biomedica;
use crate::datasets::biomedica::tar_index::Ext;
use crate::datasets::embeddings::{self, EmbeddingIndex};
use anyhow::Context as _;
use loupe_models::clip::{Clip, ModelSource};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// Shards or folders of shards.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// OpenCLIP folder (open_clip_config.json + open_clip_model.safetensors) or hub id.
    #[arg(long, default_value = "BIOMEDICA/BMC_CLIP_CF")]
    pub model: String,
    #[arg(long)]
    pub out: PathBuf,
    /// This machine's share: k/n (0-based).
    #[arg(long, value_parser = embeddings::parse_share)]
    pub shard: Option<(usize, usize)>,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Also build the approximate (HNSW) graph `<out>.usearch`; done anyway from
    /// 2,000,000 vectors, where exact search gets slow.
    #[arg(long)]
    pub ann: bool,
}

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// An index file written by `loupe embed`.
    pub index: PathBuf,
    /// Text query (or use --image).
    pub query: Option<String>,
    /// Image query: find figures like this one.
    #[arg(long)]
    pub image: Option<PathBuf>,
    #[arg(long, default_value = "BIOMEDICA/BMC_CLIP_CF")]
    pub model: String,
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// More index files searched together with the first (e.g. one per `--shard` share).
    #[arg(long = "also")]
    pub also: Vec<PathBuf>,
    /// Scan every vector even where an approximate graph (`<index>.usearch`) exists.
    #[arg(long)]
    pub exact: bool,
}

fn load(model: &str) -> anyhow::Result<Clip> {
    let device = candle_core::Device::Cpu;
    Clip::load(&ModelSource::parse(model), candle_core::DType::F32, &device)
        .with_context(|| format!("loading {model}"))
}

pub fn embed(args: &EmbedArgs) -> anyhow::Result<()> {
    let clip = load(&args.model)?;
    let mut shards = Vec::new();
    for root in &args.shards {
        shards.extend(biomedica::find_shards(root).with_context(|| format!("{}", root.display()))?);
    }
    shards.sort();
    shards.dedup();
    if let Some((k, n)) = args.shard {
        shards = shards
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % n == k)
            .map(|(_, p)| p)
            .collect();
    }
    anyhow::ensure!(!shards.is_empty(), "no shards to embed");
    let cache = biomedica::sidecar::default_dir();
    let (catalog, _) = biomedica::build_catalog(&shards, &cache, &|_, _| {}, &|| false)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut entries = Vec::with_capacity(catalog.len());
    let ids: Vec<u32> = (0..catalog.len() as u32).collect();
    let mut skipped = 0usize;
    for (b, chunk) in ids.chunks(args.batch.max(1)).enumerate() {
        let mut keys = Vec::new();
        let mut images = Vec::new();
        for &id in chunk {
            let Some((path, offset, len)) = catalog.member(id, Ext::Jpg) else {
                skipped += 1;
                continue;
            };
            let source = crate::image_cache::ImageSource::Member { path, offset, len };
            match source.decode() {
                Ok(img) => {
                    keys.push(catalog.key(id).to_owned());
                    images.push(img.to_rgb8());
                }
                Err(e) => {
                    skipped += 1;
                    tracing::warn!("{e}");
                }
            }
        }
        let vectors = clip.encode_images(&images)?;
        entries.extend(keys.into_iter().zip(vectors));
        eprintln!("batch {}: {} embedded", b + 1, entries.len());
    }
    let bytes = embeddings::encode(clip.model_id(), clip.embed_dim(), &entries)
        .map_err(anyhow::Error::msg)?;
    crate::atomic::write_atomic(&args.out, &bytes)?;
    if args.ann || entries.len() >= ann::AUTO_THRESHOLD {
        let index = EmbeddingIndex::open(&args.out)?;
        let graph = AnnIndex::build(
            &index,
            AnnParams::default(),
            &|n| eprintln!("graph: {n} of {}", index.len()),
            &|| false,
        )
        .map_err(anyhow::Error::msg)?;
        let path = ann::ann_path(&args.out);
        graph.save(&path).map_err(anyhow::Error::msg)?;
        eprintln!("{}: approximate search graph", path.display());
    }
    eprintln!(
        "{}: {} vectors of {} from {} shards ({} skipped), model {}",
        args.out.display(),
        entries.len(),
        clip.embed_dim(),
        shards.len(),
        skipped,
        clip.model_id()
    );
    Ok(())
}

#[allow(clippy::print_stdout)]
pub fn search(args: &SearchArgs) -> anyhow::Result<()> {
    let indexes = std::iter::once(&args.index)
        .chain(&args.also)
        .map(|p| EmbeddingIndex::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let model_id = &indexes[0].model_id;
    if let Some(other) = indexes.iter().find(|i| &i.model_id != model_id) {
        anyhow::bail!(
            "indexes from different models: {model_id} and {}",
            other.model_id
        );
    }
    let clip = load(&args.model)?;
    anyhow::ensure!(
        clip.model_id() == model_id,
        "the index was made with {model_id}, but --model is {}",
        clip.model_id()
    );
    let query = match (&args.query, &args.image) {
        (_, Some(img)) => {
            let image = image::open(img)
                .with_context(|| format!("{}", img.display()))?
                .to_rgb8();
            clip.encode_images(&[image])?.remove(0)
        }
        (Some(text), None) => clip.encode_texts(&[text.as_str()])?.remove(0),
        (None, None) => anyhow::bail!("give a text query or --image"),
    };
    let paths: Vec<&PathBuf> = std::iter::once(&args.index).chain(&args.also).collect();
    let mut hits: Vec<(f32, &str)> = Vec::new();
    for (idx, path) in indexes.iter().zip(paths) {
        let graph = ann::ann_path(path);
        let found = if !args.exact && graph.is_file() {
            let g = AnnIndex::view(&graph).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                g.len() == idx.len(),
                "{}: {} vectors, but {} has {} (rebuild it with loupe embed --ann)",
                graph.display(),
                g.len(),
                path.display(),
                idx.len()
            );
            g.search(&query, args.k).map_err(anyhow::Error::msg)?
        } else {
            idx.search(&query, args.k)
        };
        hits.extend(found.into_iter().map(|(i, s)| (s, idx.keys[i].as_str())));
    }
    hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    for (score, key) in hits.into_iter().take(args.k) {
        println!("{score:.4}\t{key}");
    }
    Ok(())
}

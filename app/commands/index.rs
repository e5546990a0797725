//! `loupe index SHARD_OR_DIR…`: build (or refresh) the sidecar indexes of BIOMEDICA
//! shards headless. Progress goes to stderr, the summary and every problem to stdout.

use crate::datasets::biomedica::{self, sidecar};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    /// Shards (.tar) or folders holding them (searched recursively).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Where the sidecar indexes go (default: the user cache folder).
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

pub fn run(args: &IndexArgs) -> anyhow::Result<()> {
    let dir = args.cache.clone().unwrap_or_else(sidecar::default_dir);
    let start = Instant::now();
    let last = std::sync::Mutex::new(Instant::now());
    let progress = |fraction: f32, message: String| {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed().as_millis() >= 200 || fraction >= 1.0 {
            *last = Instant::now();
            eprint!("\rindexing: {:5.1} % ({message})   ", fraction * 100.0);
        }
    };
    let (catalog, stats) = biomedica::build_catalog(&args.paths, &dir, &progress, &|| false)?;
    eprintln!();
    let secs = start.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} shards ({} indexed now, {} from sidecars), {} samples, {:.1} MB in {secs:.2} s ({:.0} MB/s, {:.0} samples/s)",
        stats.shards,
        stats.built,
        stats.shards - stats.built,
        stats.samples,
        stats.bytes as f64 / 1e6,
        stats.bytes as f64 / 1e6 / secs.max(1e-9),
        stats.samples as f64 / secs.max(1e-9),
    )?;
    writeln!(out, "sidecars in {}", dir.display())?;
    let mut problems = 0;
    for line in catalog.reports() {
        writeln!(out, "{line}")?;
        problems += 1;
    }
    for line in &stats.failed {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "{problems} problems, {} unreadable paths",
        stats.failed.len()
    )?;
    if stats.shards == 0 {
        anyhow::bail!("no .tar shards found under the given paths");
    }
    Ok(())
}

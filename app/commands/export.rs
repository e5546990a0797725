//! `loupe export ANNOTATION.json [--predictions P.jsonl] [--out DIR]`: write the review
//! exports (COCO JSON, Qwen JSONL, metrics CSV) from the sidecar, without the GUI.
//! Read-only towards the review: a missing, corrupt or foreign sidecar is an error,
//! never moved or rewritten.

use crate::datasets::export::{self, ExportItem};
use crate::datasets::review::{Fingerprint, ReviewState, sidecar_path};
use crate::datasets::{metrics, mig_bench, predictions};
use anyhow::{Context as _, bail};
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The MIG-Bench annotation file the review belongs to (its sidecar sits beside it).
    pub annotation: PathBuf,
    /// Model answers (JSONL): scores for the CSV and the boxes of unedited items.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Output folder (default: the annotation file's folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let path = &args.annotation;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text =
        std::str::from_utf8(&bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
    let file = path.display().to_string();
    let (items, errors) = mig_bench::parse(&file, text, &|p| mig_bench::resolve_on_disk(path, p))?;
    for e in &errors {
        eprintln!("warning: {e}");
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let fingerprint = Fingerprint::of_bytes(&name, &bytes, items.len());
    let sidecar = sidecar_path(path);
    let saved = std::fs::read(&sidecar)
        .with_context(|| format!("no review to export: cannot read {}", sidecar.display()))?;
    let (review, found) = ReviewState::from_sidecar(&saved)
        .map_err(|e| anyhow::anyhow!("{}: {e}", sidecar.display()))?;
    if !found.matches(&fingerprint) {
        bail!(
            "{} was written for different data ({}: {} bytes, {} items; now {} bytes, {} items)",
            sidecar.display(),
            found.file,
            found.size,
            found.items,
            fingerprint.size,
            fingerprint.items
        );
    }
    let answers = match &args.predictions {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let raw = predictions::read(&p.display().to_string(), &text);
            let (answers, report) = predictions::attach(std::slice::from_ref(&raw), &items);
            eprintln!("predictions: {}", report.summary());
            for e in &report.errors {
                eprintln!("warning: {e}");
            }
            for u in &report.unmatched {
                eprintln!("warning: {u}: matches no item");
            }
            answers
        }
        None => Default::default(),
    };
    let mut sizes = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let answer = answers.get(&i);
        // The GUI's rule: with answers loaded every item with ground truth is scored
        // (a missing answer as IoU 0); items of unreadable records are not.
        let score =
            match item.gt_exact {
                Some(gt) if !answers.is_empty() && item.problem.is_none() => Some(
                    metrics::score_item(&gt, item.target, answer.map(|a| &a.prediction), false),
                ),
                _ => None,
            };
        let proposal = export::proposal(item, answer, !answers.is_empty(), false);
        let mut e = ExportItem::new(i, item, review.get(i), proposal, score);
        e.fill_sizes(&item.images, &mut sizes)
            .map_err(anyhow::Error::msg)?;
        out.push(e);
    }
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => path
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .to_path_buf(),
    };
    let stem = format!(
        "{}.review",
        path.file_stem().unwrap_or_default().to_string_lossy()
    );
    let written = export::write_all(&dir, &stem, &out)?;
    for w in &written.warnings {
        eprintln!("warning: {w}");
    }
    let mut stdout = std::io::stdout().lock();
    for f in written.files {
        writeln!(stdout, "{}", f.display())?;
    }
    Ok(())
}

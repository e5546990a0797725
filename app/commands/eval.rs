//! `loupe eval BENCH.json --predictions P.jsonl… [--y-correction migician] [--out DIR]`:
//! score a benchmark headless, exactly as Migician's evaluation scores it. Writes
//! `<stem>.eval.csv` (per item) and `<stem>.eval.json` (per task, official layout),
//! prints the table on stdout and the predictions report on stderr. Several files are
//! shards: they must cover the benchmark exactly once.

use crate::datasets::evaluation::evaluate;
use crate::datasets::{mig_bench, predictions};
use anyhow::{Context as _, bail};
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum YCorrection {
    /// Score the boxes as written (qwen2_vl_eval).
    None,
    /// migician_eval's y1×1.05, y2×1.10 (capped at 0.999, round(·, 3)), single boxes only.
    Migician,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The MIG-Bench annotation file (MIG_data.json or the same layout).
    pub bench: PathBuf,
    /// Answers: JSONL ({"id","answer"} or {"images","prompt","answer"}) or the official
    /// eval's own Migician_<task>_<time>.json files. Several files are shards.
    #[arg(long, required = true, num_args = 1..)]
    pub predictions: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = YCorrection::None)]
    pub y_correction: YCorrection,
    /// Output folder (default: the first predictions file's folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{}: not UTF-8", path.display()))
}

// The table on stdout is this command's output.
#[allow(clippy::print_stdout)]
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let bench = &args.bench;
    let text = read_text(bench)?;
    let file = bench.display().to_string();
    let (items, errors) =
        mig_bench::parse(&file, &text, &|p| mig_bench::resolve_on_disk(bench, p))?;
    for e in &errors {
        eprintln!("warning: {e} (kept as an unscored placeholder; later ids unchanged)");
    }
    let suspect: Vec<String> = items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| Some(format!("{i} ({})", it.gt_suspect.as_ref()?)))
        .collect();
    if !suspect.is_empty() {
        eprintln!(
            "warning: {file}: {} items with suspect ground truth: {}",
            suspect.len(),
            suspect.join(", ")
        );
    }
    let mut files = Vec::new();
    for p in &args.predictions {
        files.push(predictions::read(&p.display().to_string(), &read_text(p)?));
    }
    let (answers, report) = predictions::attach(&files, &items);
    eprintln!("predictions: {}", report.summary());
    for e in report.errors.iter().take(10) {
        eprintln!("warning: {e}");
    }
    for u in report.unmatched.iter().take(10) {
        eprintln!("warning: {u}: matches no item of {file}");
    }
    let show = |set: &std::collections::BTreeSet<usize>| {
        let v: Vec<String> = set.iter().take(20).map(ToString::to_string).collect();
        format!(
            "{}{}",
            v.join(", "),
            if set.len() > 20 { ", …" } else { "" }
        )
    };
    if !report.duplicates.is_empty() {
        eprintln!(
            "warning: items answered twice in one file (first answer kept): {}",
            show(&report.duplicates)
        );
    }
    if !report.mismatched.is_empty() {
        eprintln!(
            "warning: answers naming another task or question (a file for another benchmark?): items {}",
            show(&report.mismatched)
        );
    }
    if files.len() > 1 {
        if !report.overlaps.is_empty() {
            bail!(
                "the {} shard files overlap: items {} are answered by more than one",
                files.len(),
                show(&report.overlaps)
            );
        }
        if !report.missing.is_empty() {
            bail!(
                "the {} shard files leave a gap: items {} are answered by none",
                files.len(),
                show(&report.missing)
            );
        }
    } else if !report.missing.is_empty() {
        eprintln!(
            "warning: {} items without an answer, scored IoU 0 as officially: {}",
            report.missing.len(),
            show(&report.missing)
        );
    }
    let y = args.y_correction == YCorrection::Migician;
    let eval = evaluate(&items, &answers, y);
    let first = &args.predictions[0];
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => first.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stem = first.file_stem().unwrap_or_default().to_string_lossy();
    let csv = dir.join(format!("{stem}.eval.csv"));
    crate::atomic::write_atomic(&csv, eval.items_csv(&items).as_bytes())?;
    let json = dir.join(format!("{stem}.eval.json"));
    let summary = serde_json::to_vec_pretty(&eval.summary_json(&report, y))?;
    crate::atomic::write_atomic(&json, &summary)?;
    eprintln!("wrote {} and {}", csv.display(), json.display());
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", eval.markdown())?;
    Ok(())
}

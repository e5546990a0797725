//! `loupe bench biomed`: BIOMEDICA indexing, filter and search speed on synthetic
//! shards, against Python reading the same shards in the same run.

use super::bench::{BenchArgs, median, time};
use crate::datasets::biomedica::{self, Filter, synth};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a WebDataset reader does per shard: stream every member's bytes and group them
/// into samples by key (split at the first dot, as webdataset does). Prints seconds.
const PY_STREAM: &str = r#"
import sys, tarfile, time
t = time.perf_counter()
samples = 0
for path in sys.argv[1:]:
    key = None
    with tarfile.open(path, mode="r|") as tar:
        for m in tar:
            if not m.isfile():
                continue
            data = tar.extractfile(m).read()
            k = m.name.split(".", 1)[0]
            if k != key:
                samples += 1
                key = k
print(time.perf_counter() - t, samples)
"#;

/// Header listing only (`tarfile` seeks over data on a seekable file). Prints seconds.
const PY_LIST: &str = r#"
import sys, tarfile, time
t = time.perf_counter()
members = 0
for path in sys.argv[1:]:
    with tarfile.open(path) as tar:
        members += len(tar.getmembers())
print(time.perf_counter() - t, members)
"#;

fn python(python: &str, script: &str, shards: &[PathBuf]) -> Option<Duration> {
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .args(shards)
        .output()
        .ok()?;
    if !out.status.success() {
        tracing::warn!(
            "python baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let tmp;
    let dir: &Path = match &args.dir {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path()
        }
    };
    let shard_dir = dir.join("shards");
    let side_dir = dir.join("sidecars");
    let _ = std::fs::remove_dir_all(&side_dir);
    let mut out = std::io::stdout().lock();
    let t = Instant::now();
    eprintln!("writing {} synthetic samples…", args.samples);
    let shards = synth::write_shards(&shard_dir, args.samples, args.per_shard, args.json_bytes)?;
    let bytes: u64 = shards
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let mb = bytes as f64 / 1e6;
    eprintln!("wrote {mb:.0} MB in {:.1} s", t.elapsed().as_secs_f64());
    let threads = rayon::current_num_threads();

    // Cold: no sidecars (the shards are in the page cache, having just been written, and
    // so are they for Python).
    let t = Instant::now();
    let (catalog, stats) = biomedica::build_catalog(&shards, &side_dir, &|_, _| {}, &|| false)?;
    let cold = t.elapsed();
    anyhow::ensure!(
        stats.samples == args.samples,
        "indexed {} of {} samples",
        stats.samples,
        args.samples
    );
    let t = Instant::now();
    let (again, stats2) = biomedica::build_catalog(&shards, &side_dir, &|_, _| {}, &|| false)?;
    let warm = t.elapsed();
    anyhow::ensure!(stats2.built == 0 && again.len() == catalog.len());
    drop(again);
    let side_bytes: u64 = std::fs::read_dir(&side_dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();

    let (py_stream, py_list) = if args.skip_python {
        (None, None)
    } else {
        (
            python(&args.python, PY_STREAM, &shards),
            python(&args.python, PY_LIST, &shards),
        )
    };

    let n = args.samples as f64;
    writeln!(
        out,
        "{} samples in {} shards, {mb:.0} MB ({} B JSON article text per sample); {threads} threads",
        args.samples,
        shards.len(),
        args.json_bytes
    )?;
    writeln!(out, "| step | time | MB/s | samples/s | vs Loupe |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    let row = |out: &mut std::io::StdoutLock<'_>, name: &str, d: Duration| -> std::io::Result<()> {
        let s = d.as_secs_f64();
        writeln!(
            out,
            "| {name} | {:.2} s | {:.0} | {:.0} | {:.1}× slower |",
            s,
            mb / s,
            n / s,
            s / cold.as_secs_f64()
        )
    };
    writeln!(
        out,
        "| Loupe index, cold (headers + JSON fields + captions, sidecars written) | {:.2} s | {:.0} | {:.0} | 1× |",
        cold.as_secs_f64(),
        mb / cold.as_secs_f64(),
        n / cold.as_secs_f64()
    )?;
    writeln!(
        out,
        "| Loupe reopen from sidecars | {:.2} s | {:.0} | {:.0} | {:.1}× faster |",
        warm.as_secs_f64(),
        mb / warm.as_secs_f64(),
        n / warm.as_secs_f64(),
        cold.as_secs_f64() / warm.as_secs_f64()
    )?;
    match py_stream {
        Some(d) => row(
            &mut out,
            "Python tarfile stream, all members read, grouped by key (what webdataset does)",
            d,
        )?,
        None => writeln!(
            out,
            "| Python tarfile stream | skipped or no python3 | | | |"
        )?,
    }
    match py_list {
        Some(d) => row(
            &mut out,
            "Python tarfile getmembers (headers only, seeks over data; no metadata)",
            d,
        )?,
        None => writeln!(
            out,
            "| Python tarfile getmembers | skipped or no python3 | | | |"
        )?,
    }

    // Filters and search on the in-memory catalog.
    let runs = args.runs.max(5);
    let filters: Vec<(&str, Filter)> = vec![
        ("no filter", Filter::default()),
        (
            "primary label = Microscopy",
            Filter {
                primary: Some("Microscopy".into()),
                ..Default::default()
            },
        ),
        (
            "subset commercial + year 2010–2015 + panel single",
            Filter {
                subsets: vec!["commercial".into()],
                years: Some((2010, 2015)),
                panel_type: Some("single".into()),
                ..Default::default()
            },
        ),
        (
            "duplicated images only",
            Filter {
                duplicates_only: true,
                ..Default::default()
            },
        ),
    ];
    writeln!(out)?;
    writeln!(out, "| filter / search | results | median ms |")?;
    writeln!(out, "|---|---|---|")?;
    for (name, f) in &filters {
        let hits = catalog.apply(f).len();
        let d = time(runs, || catalog.apply(f));
        writeln!(out, "| {name} | {hits} | {:.1} |", ms(d))?;
    }
    for q in ["fundus", "retina cells", "fluor", "nothingmatches"] {
        let hits = catalog.search(q).len();
        let d = median(
            (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(catalog.search(q));
                    t.elapsed()
                })
                .collect(),
        );
        writeln!(out, "| search \"{q}\" | {hits} | {:.1} |", ms(d))?;
    }
    let (record, arena) = catalog.bytes_per_item();
    let search = catalog.search_index().heap_bytes() as f64 / n;
    writeln!(out)?;
    writeln!(
        out,
        "memory per item: {record} B record + {arena:.0} B key and caption prefix + {search:.0} B caption search index; sidecar {:.0} B/sample on disk",
        side_bytes as f64 / n
    )?;
    Ok(())
}

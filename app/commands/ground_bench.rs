//! `loupe ground --bench BENCH.json --out P.jsonl [--shard k/n] [--resume]`: answer
//! every item of a benchmark with the prompt the official evaluation builds for its task,
//! one JSON line per item appended and fsync'd as it finishes. A killed run resumes
//! where it stopped (a torn last line is cut off and its item answered again), and no
//! item is ever written twice. `--shard k/n` (k from 0) takes the items whose index
//! modulo n is k, for job arrays; `loupe eval` checks the shard files cover the
//! benchmark once.

use super::ground::GroundArgs;
use crate::datasets::mig_bench;
use crate::grounding_model::ground;
use anyhow::{Context as _, bail};
use loupe_models::reference::official_prompt;
use std::collections::BTreeSet;
use std::io::{Seek as _, Write as _};
use std::path::Path;
use std::time::Instant;

/// `k/n` with `k < n`.
pub fn parse_shard(s: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = s
        .split_once('/')
        .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((k, n)) if n > 0 && k < n => Ok((k, n)),
        _ => bail!("--shard {s}: expected k/n with 0 ≤ k < n (e.g. 0/4)"),
    }
}

/// The ids already in `out`, after cutting off a torn last line (a write the kill
/// interrupted). Lines that name items outside `wanted`, or twice, are an error: the
/// file belongs to another run.
fn resume_state(out: &Path, wanted: &BTreeSet<usize>) -> anyhow::Result<BTreeSet<usize>> {
    let mut text = match std::fs::read(out) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", out.display())),
    };
    let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    if keep < text.len() {
        eprintln!(
            "{}: cutting off a torn last line ({} bytes)",
            out.display(),
            text.len() - keep
        );
        let f = std::fs::OpenOptions::new().write(true).open(out)?;
        f.set_len(keep as u64)?;
        f.sync_all()?;
        text.truncate(keep);
    }
    let text =
        String::from_utf8(text).map_err(|_| anyhow::anyhow!("{}: not UTF-8", out.display()))?;
    let mut done = BTreeSet::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let id = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("id")?.as_u64())
            .with_context(|| {
                format!(
                    "{}: line {}: not an answer line with an 'id'",
                    out.display(),
                    n + 1
                )
            })? as usize;
        if !wanted.contains(&id) {
            bail!(
                "{}: line {}: item {id} is not in this benchmark shard; another run's file?",
                out.display(),
                n + 1
            );
        }
        if !done.insert(id) {
            bail!(
                "{}: line {}: item {id} is written twice",
                out.display(),
                n + 1
            );
        }
    }
    Ok(done)
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn run(args: &GroundArgs, bench: &Path) -> anyhow::Result<()> {
    let Some(out) = &args.out else {
        bail!("--bench needs --out P.jsonl");
    };
    let (k, n) = match &args.shard {
        Some(s) => parse_shard(s)?,
        None => (0, 1),
    };
    let text = std::fs::read_to_string(bench)
        .with_context(|| format!("cannot read {}", bench.display()))?;
    let file = bench.display().to_string();
    let (items, errors) =
        mig_bench::parse(&file, &text, &|p| mig_bench::resolve_on_disk(bench, p))?;
    for e in &errors {
        eprintln!("warning: {e} (not answered)");
    }
    let wanted: BTreeSet<usize> = (0..items.len())
        .filter(|i| i % n == k && items[*i].problem.is_none())
        .collect();
    let exists = std::fs::metadata(out).is_ok_and(|m| m.len() > 0);
    if exists && !args.resume {
        bail!(
            "{} exists; give --resume to continue it (or remove it)",
            out.display()
        );
    }
    let done = if args.resume {
        resume_state(out, &wanted)?
    } else {
        BTreeSet::new()
    };
    let todo: Vec<usize> = wanted.difference(&done).copied().collect();
    eprintln!(
        "{}: {} items in shard {k}/{n}, {} done, {} to answer",
        bench.display(),
        wanted.len(),
        done.len(),
        todo.len()
    );
    if todo.is_empty() {
        return Ok(());
    }
    let settings = args.settings()?;
    let fetch = loupe_models::qwen2vl::loader::Fetch {
        progress: &|_, _, _| {},
        cancel: &|| false,
    };
    let mut model = settings.load(&fetch, &|_, _| {})?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .with_context(|| format!("cannot open {}", out.display()))?;
    f.seek(std::io::SeekFrom::End(0))?;
    let start = Instant::now();
    for (j, &i) in todo.iter().enumerate() {
        let item = &items[i];
        let prompt = official_prompt(&item.task, &item.question);
        let images: Result<Vec<_>, String> = item.images.iter().map(|s| s.decode()).collect();
        let mut line = serde_json::json!({
            "id": i,
            "task": item.task,
            "question": item.question,
            "model": settings.source,
        });
        match images {
            Ok(images) => {
                let r = ground(
                    &mut model,
                    &settings,
                    &images,
                    &prompt,
                    &|| false,
                    &mut |_| {},
                )?;
                line["answer"] = r.answer.into();
            }
            Err(e) => {
                // Scored like an empty answer (IoU 0); the reason stays in the file.
                eprintln!("\nitem {i}: {e}");
                line["answer"] = "".into();
                line["error"] = e.into();
            }
        }
        if args.delay_ms > 0 {
            // A headless command, not the UI thread: a plain pause for the kill test.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(std::time::Duration::from_millis(args.delay_ms));
        }
        // One write of a whole line, then fsync: a kill leaves whole lines, or a torn
        // last line that the next --resume cuts off.
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        f.write_all(&bytes)?;
        f.sync_data()?;
        let elapsed = start.elapsed().as_secs_f64();
        let rate = (j + 1) as f64 / elapsed.max(1e-9);
        eprint!(
            "\r{}/{} items  {rate:.2} items/s  ETA {}   ",
            done.len() + j + 1,
            wanted.len(),
            clock((todo.len() - j - 1) as f64 / rate)
        );
    }
    eprintln!();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_shard("0/4").unwrap(), (0, 4));
        assert_eq!(parse_shard("3/4").unwrap(), (3, 4));
        for bad in ["4/4", "1/0", "x/2", "2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resume_cuts_a_torn_line_and_refuses_foreign_ids() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("p.jsonl");
        std::fs::write(&out, "{\"id\": 0, \"answer\": \"a\"}\n{\"id\": 2, \"answ").unwrap();
        let wanted = BTreeSet::from([0, 2, 4]);
        assert_eq!(resume_state(&out, &wanted).unwrap(), BTreeSet::from([0]));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\": 0, \"answer\": \"a\"}\n"
        );
        std::fs::write(&out, "{\"id\": 1, \"answer\": \"a\"}\n").unwrap();
        let e = resume_state(&out, &wanted).unwrap_err().to_string();
        assert!(e.contains("item 1 is not in this benchmark shard"), "{e}");
    }
}

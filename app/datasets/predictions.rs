//! Prediction files, read in two steps: first as they are (no benchmark needed, so a
//! file opened before or with its benchmark waits for it), then matched to a
//! benchmark's items with a report of everything that does not fit.
//!
//! Formats: JSONL with the item `id` (its index in the benchmark file), the raw
//! `answer` and optionally `model`, `task`, `question`; JSONL from other tools with
//! `images` + `prompt` (or `question`) + `answer`, matched by content; and the official
//! evaluation's own output (`Migician_<task>_<time>.json`: a JSON list of records
//! `{task, question, answer, …}` in the order of that task's items, then the `acc`
//! dict).

use super::RecordError;
use super::metrics::Prediction;
use super::mig_bench::GroundingItem;
use loupe_models::reference::strip_format_suffix;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Clone, Debug, PartialEq)]
pub struct ModelAnswer {
    pub answer: String,
    pub prediction: Prediction,
}

/// A raw answer scored the way the reference evaluation reads it.
pub fn model_answer(answer: &str) -> ModelAnswer {
    ModelAnswer {
        answer: answer.to_owned(),
        prediction: Prediction::from_answer(answer),
    }
}

/// How an answer names its item.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Id(usize),
    /// The item with these images and this question (format suffix ignored).
    Content {
        images: Vec<String>,
        prompt: String,
    },
    /// The `ordinal`-th item of `task` (official output files).
    Official {
        task: String,
        ordinal: usize,
    },
}

/// One answer as read, before matching.
#[derive(Clone, Debug)]
pub struct RawAnswer {
    /// "file: line 3" / "file: record 3", for reports.
    pub location: String,
    pub key: Key,
    pub answer: String,
    pub task: Option<String>,
    pub question: Option<String>,
}

/// A predictions file as read.
#[derive(Clone, Debug, Default)]
pub struct RawFile {
    pub file: String,
    pub model: Option<String>,
    pub answers: Vec<RawAnswer>,
    pub errors: Vec<RecordError>,
}

/// Read a predictions file of any supported format (one JSON list: official output;
/// otherwise JSONL). Bad lines are reported and skipped.
pub fn read(file: &str, text: &str) -> RawFile {
    if text.trim_start().starts_with('[') {
        return read_official(file, text);
    }
    let mut out = RawFile {
        file: file.to_owned(),
        ..Default::default()
    };
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let location = format!("line {}", n + 1);
        let fail = |message: String| RecordError {
            file: file.to_owned(),
            location: location.clone(),
            message,
        };
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                out.errors.push(fail(format!("not valid JSON: {e}")));
                continue;
            }
        };
        let Some(answer) = value.get("answer").and_then(Value::as_str) else {
            out.errors
                .push(fail("missing or non-string field 'answer'".into()));
            continue;
        };
        let text_field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        let prompt = text_field("prompt").or_else(|| text_field("question"));
        let images: Option<Vec<String>> = value.get("images").and_then(|v| {
            v.as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect()
        });
        let key = match (value.get("id"), images, &prompt) {
            (Some(id), _, _) => match id.as_u64() {
                Some(id) => Key::Id(id as usize),
                None => {
                    out.errors.push(fail("field 'id' is not an integer".into()));
                    continue;
                }
            },
            (None, Some(images), Some(prompt)) => Key::Content {
                images,
                prompt: prompt.clone(),
            },
            _ => {
                out.errors.push(fail(
                    "needs field 'id', or 'images' and 'prompt' to match by content".into(),
                ));
                continue;
            }
        };
        if out.model.is_none() {
            out.model = text_field("model");
        }
        out.answers.push(RawAnswer {
            location: format!("{file}: {location}"),
            key,
            answer: answer.to_owned(),
            task: text_field("task"),
            question: prompt,
        });
    }
    out
}

/// The official eval's output: records in the order of their task's items.
fn read_official(file: &str, text: &str) -> RawFile {
    let mut out = RawFile {
        file: file.to_owned(),
        ..Default::default()
    };
    let whole = |message: String| RecordError {
        file: file.to_owned(),
        location: "whole file".into(),
        message,
    };
    let records = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(v)) => v,
        Ok(_) => with_error(&mut out, whole("expected a JSON list of records".into())),
        Err(e) => with_error(&mut out, whole(format!("not valid JSON: {e}"))),
    };
    // "Migician_diff_0101_120000.json" → the model name before the task.
    let stem = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ordinals: HashMap<String, usize> = HashMap::new();
    let last = records.len().saturating_sub(1);
    for (n, r) in records.iter().enumerate() {
        let location = format!("record {}", n + 1);
        let (Some(task), Some(answer)) = (
            r.get("task").and_then(Value::as_str),
            r.get("answer").and_then(Value::as_str),
        ) else {
            // The closing `acc` dict is not a record.
            if n != last || r.get("answer").is_some() {
                out.errors.push(RecordError {
                    file: file.to_owned(),
                    location,
                    message: "a record needs string fields 'task' and 'answer'".into(),
                });
            }
            continue;
        };
        if out.model.is_none() {
            out.model = stem
                .find(&format!("_{task}_"))
                .map(|i| stem[..i].to_owned())
                .filter(|m| !m.is_empty());
        }
        let ordinal = ordinals.entry(task.to_owned()).or_default();
        out.answers.push(RawAnswer {
            location: format!("{file}: {location}"),
            key: Key::Official {
                task: task.to_owned(),
                ordinal: *ordinal,
            },
            answer: answer.to_owned(),
            task: Some(task.to_owned()),
            question: r.get("question").and_then(Value::as_str).map(str::to_owned),
        });
        *ordinal += 1;
    }
    out
}

fn with_error(out: &mut RawFile, e: RecordError) -> Vec<Value> {
    out.errors.push(e);
    Vec::new()
}

/// How predictions fit a benchmark. Item lists hold benchmark ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub files: usize,
    pub matched: usize,
    /// Answers that name no item ("file: line 7 (id 5000)").
    pub unmatched: Vec<String>,
    /// Items answered more than once in one file (the first answer is kept).
    pub duplicates: BTreeSet<usize>,
    /// Items answered by more than one file (shards that overlap; the first is kept).
    pub overlaps: BTreeSet<usize>,
    /// Items whose answer names another task or question.
    pub mismatched: BTreeSet<usize>,
    /// Readable items without any answer (scored IoU 0).
    pub missing: BTreeSet<usize>,
    pub errors: Vec<RecordError>,
}

impl Report {
    /// Anything besides matched answers?
    pub fn is_clean(&self) -> bool {
        self.unmatched.is_empty()
            && self.duplicates.is_empty()
            && self.overlaps.is_empty()
            && self.mismatched.is_empty()
            && self.missing.is_empty()
            && self.errors.is_empty()
    }

    /// One line for stderr and the GUI banner.
    pub fn summary(&self) -> String {
        format!(
            "{} matched, {} unmatched, {} duplicate, {} overlapping, {} task/question mismatch, {} missing, {} unreadable",
            self.matched,
            self.unmatched.len(),
            self.duplicates.len(),
            self.overlaps.len(),
            self.mismatched.len(),
            self.missing.len(),
            self.errors.len()
        )
    }
}

/// Match answers to `items` (whose index is the benchmark id).
pub fn attach(
    files: &[RawFile],
    items: &[GroundingItem],
) -> (BTreeMap<usize, ModelAnswer>, Report) {
    let mut report = Report {
        files: files.len(),
        ..Default::default()
    };
    let mut by_content: HashMap<(&[String], &str), Vec<usize>> = HashMap::new();
    let mut by_task: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
        by_content
            .entry((it.image_names.as_slice(), it.question.as_str()))
            .or_default()
            .push(i);
        by_task.entry(it.task.as_str()).or_default().push(i);
    }
    let mut answers: BTreeMap<usize, ModelAnswer> = BTreeMap::new();
    let mut owner: HashMap<usize, usize> = HashMap::new();
    for (f, file) in files.iter().enumerate() {
        report.errors.extend(file.errors.iter().cloned());
        for a in &file.answers {
            let id = match &a.key {
                Key::Id(id) => Some(*id).filter(|&i| i < items.len()),
                Key::Content { images, prompt } => {
                    let q = strip_format_suffix(prompt);
                    by_content.get(&(images.as_slice(), q)).and_then(|ids| {
                        // Identical items are answered in order.
                        ids.iter()
                            .copied()
                            .find(|i| !answers.contains_key(i))
                            .or(ids.first().copied())
                    })
                }
                Key::Official { task, ordinal } => by_task
                    .get(task.as_str())
                    .and_then(|v| v.get(*ordinal))
                    .copied(),
            };
            let Some(id) = id else {
                let what = match &a.key {
                    Key::Id(id) => format!("id {id}"),
                    Key::Content { .. } => "no item with these images and prompt".into(),
                    Key::Official { task, ordinal } => {
                        format!(
                            "{task} record {} of {}",
                            ordinal + 1,
                            by_task.get(task.as_str()).map_or(0, Vec::len)
                        )
                    }
                };
                report.unmatched.push(format!("{} ({what})", a.location));
                continue;
            };
            if let Some(&g) = owner.get(&id) {
                if g == f {
                    report.duplicates.insert(id);
                } else {
                    report.overlaps.insert(id);
                }
                continue;
            }
            let item = &items[id];
            let task_differs = a.task.as_deref().is_some_and(|t| t != item.task);
            let question_differs = a
                .question
                .as_deref()
                .is_some_and(|q| strip_format_suffix(q) != item.question);
            if task_differs || question_differs {
                report.mismatched.insert(id);
            }
            owner.insert(id, f);
            answers.insert(id, model_answer(&a.answer));
            report.matched += 1;
        }
    }
    report.missing = (0..items.len())
        .filter(|i| items[*i].problem.is_none() && !answers.contains_key(i))
        .collect();
    (answers, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<GroundingItem> {
        let it = |task: &str, q: &str, imgs: &[&str]| GroundingItem {
            task: task.into(),
            question: q.into(),
            image_names: imgs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        vec![
            it("diff", "Q0", &["a", "b"]),
            it("region", "Q1", &["c", "d"]),
            it("diff", "Q2", &["e", "f"]),
        ]
    }

    #[test]
    fn the_demo_predictions_parse_into_boxes_and_images() {
        let raw = read("demo", crate::demo::PREDICTIONS_JSONL);
        assert!(raw.errors.is_empty(), "{:?}", raw.errors);
        assert_eq!(raw.model.as_deref(), Some("demo-model"));
        let (answers, _) = attach(&[raw], &items());
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[&0].prediction.image, Some(2));
        assert_eq!(
            answers[&0].prediction.extracted,
            loupe_models::reference::Extracted::Single([0.262, 0.07, 0.705, 0.745])
        );
        assert_eq!(answers[&2].prediction.image, Some(0));
    }

    #[test]
    fn bad_lines_are_reported_by_number_and_the_rest_load() {
        let text = "{\"id\": 0, \"answer\": \"(1,2),(3,4)\"}\nnot json\n{\"answer\": \"x\"}\n\n{\"id\": 3, \"answer\": 5}\n";
        let raw = read("p.jsonl", text);
        assert_eq!(raw.answers.len(), 1);
        let msgs: Vec<String> = raw.errors.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 3);
        assert!(
            msgs[0].starts_with("p.jsonl: line 2: not valid JSON"),
            "{msgs:?}"
        );
        assert_eq!(
            msgs[1],
            "p.jsonl: line 3: needs field 'id', or 'images' and 'prompt' to match by content"
        );
        assert_eq!(
            msgs[2],
            "p.jsonl: line 5: missing or non-string field 'answer'"
        );
    }

    #[test]
    fn foreign_lines_are_reported_not_taken_silently() {
        let text = [
            r#"{"id": 0, "answer": "a", "task": "diff", "question": "Q0"}"#,
            r#"{"id": 0, "answer": "b"}"#,
            r#"{"id": 7, "answer": "c"}"#,
            r#"{"id": 1, "answer": "d", "task": "diff"}"#,
        ]
        .join("\n");
        let (answers, report) = attach(&[read("p.jsonl", &text)], &items());
        assert_eq!(answers[&0].answer, "a", "the first answer is kept");
        assert_eq!(report.matched, 2);
        assert_eq!(report.unmatched, vec!["p.jsonl: line 3 (id 7)".to_string()]);
        assert_eq!(report.duplicates, BTreeSet::from([0]));
        assert_eq!(report.mismatched, BTreeSet::from([1]));
        assert_eq!(report.missing, BTreeSet::from([2]));
        assert!(!report.is_clean());
    }

    #[test]
    fn content_and_official_records_find_their_items() {
        let text = r#"{"images": ["e", "f"], "prompt": "Q2Format:<|box_start|>(x1,y1),(x2,y2)<|box_start|>. Don't generate addtional words.", "answer": "x"}"#;
        let (answers, report) = attach(&[read("o.jsonl", text)], &items());
        assert_eq!(answers.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert!(report.mismatched.is_empty());
        let official = r#"[{"task": "diff", "question": "Q0", "answer": "p"},
            {"task": "diff", "question": "Q2", "answer": "q"},
            {"task": "diff", "question": "Q9", "answer": "r"},
            {"diff": {"TOTAL": 3}}]"#;
        let raw = read("out/Migician_diff_0101_000000.json", official);
        assert!(raw.errors.is_empty(), "{:?}", raw.errors);
        assert_eq!(raw.model.as_deref(), Some("Migician"));
        let (answers, report) = attach(&[raw], &items());
        assert_eq!(answers[&2].answer, "q");
        assert_eq!(report.unmatched.len(), 1);
        assert_eq!(report.missing, BTreeSet::from([1]));
    }

    #[test]
    fn shards_that_overlap_are_named() {
        let a = read(
            "a",
            "{\"id\": 0, \"answer\": \"x\"}\n{\"id\": 1, \"answer\": \"x\"}",
        );
        let b = read("b", "{\"id\": 1, \"answer\": \"y\"}");
        let (_, report) = attach(&[a, b], &items());
        assert_eq!(report.overlaps, BTreeSet::from([1]));
        assert_eq!(report.missing, BTreeSet::from([2]));
    }
}

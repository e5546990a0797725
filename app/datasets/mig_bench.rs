//! MIG-Bench annotation files: a JSON list of items with `task`, `images`, `question`,
//! `answer` (the ground-truth box, normalised to the target image), `additional_info`
//! and `need_format`. The file does not say which image is the target, so it is derived
//! as Migician's `MIG_bench_cot.py` picks it (other tasks: from the wording).
//!
//! An item's id is its index in the file, always: a record that cannot be read stays in
//! the list as a placeholder (`problem` says why), so later items keep their ids in the
//! GUI, the review sidecar, predictions, the CSV and the exports.

use super::RecordError;
use crate::image_cache::ImageSource;
use loupe_models::answer::{NormBox, referenced_image};
use loupe_models::reference::{MIG_TASKS, cot_target};
use serde_json::Value;
use std::path::Path;

#[derive(Clone, Debug, Default)]
pub struct GroundingItem {
    pub task: String,
    pub images: Vec<ImageSource>,
    /// The paths as written in the file, for display.
    pub image_names: Vec<String>,
    pub question: String,
    /// The ground truth for drawing and review (f32, corners as written).
    pub gt: Option<NormBox>,
    /// The ground truth exactly as written (f64), which scoring uses.
    pub gt_exact: Option<[f64; 4]>,
    /// Index of the image the ground truth refers to, when it can be derived.
    pub target: Option<usize>,
    pub additional_info: String,
    pub need_format: bool,
    /// Why the ground truth is suspect (swapped corners, zero area, outside the image).
    pub gt_suspect: Option<String>,
    /// Why the record could not be read: the item is a placeholder that keeps ids.
    pub problem: Option<String>,
}

/// What is wrong with a ground-truth box, if anything: corners swapped or equal (zero
/// area), or a coordinate outside the image ([0, 1]).
pub fn gt_sanity(b: &[f64; 4]) -> Option<String> {
    let [x1, y1, x2, y2] = *b;
    let mut problems = Vec::new();
    if x2 < x1 || y2 < y1 {
        problems.push("corners swapped");
    } else if x2 == x1 || y2 == y1 {
        problems.push("zero area");
    }
    if b.iter().any(|v| !(0.0..=1.0).contains(v)) {
        problems.push("outside the image");
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// Where the target image comes from for `task` (see the reference's task table).
pub fn derive_target(
    task: &str,
    question: &str,
    additional_info: &str,
    images: usize,
) -> Option<usize> {
    if MIG_TASKS.contains(&task) {
        return cot_target(task, question, additional_info, images);
    }
    let found = referenced_image(question);
    // Pairs whose wording names no image compare image 1 with image 2: the answer is on 2.
    let found = found.or(if images == 2 && matches!(task, "diff" | "view_diff") {
        Some(1)
    } else {
        None
    });
    found.filter(|&i| i < images)
}

/// Parse a MIG-Bench file's text. `resolve` maps each written image path to a source.
pub fn parse(
    file: &str,
    text: &str,
    resolve: &dyn Fn(&str) -> ImageSource,
) -> Result<(Vec<GroundingItem>, Vec<RecordError>), RecordError> {
    let whole = |message: String| RecordError {
        file: file.to_owned(),
        location: "whole file".to_owned(),
        message,
    };
    let root: Value =
        serde_json::from_str(text).map_err(|e| whole(format!("not valid JSON: {e}")))?;
    let Value::Array(records) = root else {
        return Err(whole("expected a JSON list of items".into()));
    };
    let mut items = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match parse_item(record, resolve) {
            Ok(item) => items.push(item),
            Err(message) => {
                let text = |k: &str| record.get(k).and_then(Value::as_str).map(str::to_owned);
                items.push(GroundingItem {
                    task: text("task").unwrap_or_default(),
                    question: text("question").unwrap_or_default(),
                    problem: Some(message.clone()),
                    ..Default::default()
                });
                errors.push(RecordError {
                    file: file.to_owned(),
                    location: format!("item {index}"),
                    message,
                });
            }
        }
    }
    Ok((items, errors))
}

fn parse_item(
    record: &Value,
    resolve: &dyn Fn(&str) -> ImageSource,
) -> Result<GroundingItem, String> {
    let field = |name: &str| {
        record
            .get(name)
            .ok_or_else(|| format!("missing field '{name}'"))
    };
    let string = |name: &str| -> Result<String, String> {
        field(name)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("field '{name}' is not a string"))
    };
    let task = string("task")?;
    let question = string("question")?;
    let image_names: Vec<String> = field("images")?
        .as_array()
        .ok_or("field 'images' is not a list")?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or("field 'images' holds a non-string")
        })
        .collect::<Result<_, _>>()?;
    if image_names.is_empty() {
        return Err("field 'images' is empty".into());
    }
    let gt_exact = match record.get("answer") {
        None | Some(Value::Null) => None,
        Some(Value::Array(v)) if v.len() == 4 => {
            let c: Vec<f64> = v.iter().filter_map(Value::as_f64).collect();
            let Ok(c) = <[f64; 4]>::try_from(c) else {
                return Err("field 'answer' must hold four numbers".into());
            };
            if c.iter().any(|x| !x.is_finite()) {
                return Err("field 'answer' must hold four numbers".into());
            }
            Some(c)
        }
        Some(_) => return Err("field 'answer' must be [x1, y1, x2, y2]".into()),
    };
    let info = record
        .get("additional_info")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let target = derive_target(&task, &question, info, image_names.len());
    Ok(GroundingItem {
        images: image_names.iter().map(|p| resolve(p)).collect(),
        image_names,
        task,
        question,
        gt: gt_exact.map(|c| NormBox::new(c[0] as f32, c[1] as f32, c[2] as f32, c[3] as f32)),
        gt_suspect: gt_exact.as_ref().and_then(gt_sanity),
        gt_exact,
        target,
        additional_info: info.to_owned(),
        need_format: record
            .get("need_format")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        problem: None,
    })
}

/// Resolve a written path against the annotation file's folder; MIG-Bench writes paths
/// like `./MIG-Bench/images/…` relative to the folder above, so try that too.
pub fn resolve_on_disk(annotation_file: &Path, written: &str) -> ImageSource {
    let dir = annotation_file.parent().unwrap_or(Path::new("."));
    let candidates = [dir.join(written), dir.parent().unwrap_or(dir).join(written)];
    let found = candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or(&candidates[0]);
    ImageSource::File(found.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(p: &str) -> ImageSource {
        ImageSource::File(p.into())
    }

    #[test]
    fn the_demo_file_parses_with_derived_targets() {
        let (items, errors) = parse("demo", crate::demo::MIG_BENCH_JSON, &resolve).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0].target,
            Some(2),
            "group grounding names the third image"
        );
        assert_eq!(items[1].target, Some(1));
        assert_eq!(items[0].gt, Some(NormBox::new(0.28, 0.04, 0.69, 0.77)));
    }

    #[test]
    fn bad_items_are_reported_and_the_rest_load() {
        let text = r#"[
            {"task": "diff", "images": ["a.jpg", "b.jpg"], "question": "q", "answer": [0.1, 0.1, 0.2, 0.2]},
            {"task": "diff", "images": "a.jpg", "question": "q"},
            {"task": "diff", "images": ["a.jpg"], "question": "q", "answer": [1, 2]},
            {"images": ["a.jpg"], "question": "q"}
        ]"#;
        let (items, errors) = parse("bench.json", text, &resolve).unwrap();
        // Bad records stay as placeholders: ids are file indices.
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].target, Some(1));
        assert!(items[0].problem.is_none());
        assert!(
            items[1..]
                .iter()
                .all(|i| i.problem.is_some() && i.gt.is_none())
        );
        assert_eq!(items[2].task, "diff");
        let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "bench.json: item 1: field 'images' is not a list",
                "bench.json: item 2: field 'answer' must be [x1, y1, x2, y2]",
                "bench.json: item 3: missing field 'task'",
            ]
        );
        let err = parse("bench.json", "{not json", &resolve).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bench.json: whole file: not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn suspect_ground_truth_is_named() {
        assert_eq!(gt_sanity(&[0.1, 0.2, 0.3, 0.4]), None);
        assert_eq!(
            gt_sanity(&[0.027, 0.18, 0.143, 0.051]).as_deref(),
            Some("corners swapped")
        );
        assert_eq!(
            gt_sanity(&[0.319, 0.186, 1.048, 0.535]).as_deref(),
            Some("outside the image")
        );
        assert_eq!(
            gt_sanity(&[0.1, 0.2, 0.1, 0.4]).as_deref(),
            Some("zero area")
        );
    }

    #[test]
    fn targets_outside_the_item_are_dropped() {
        assert_eq!(
            derive_target("common_object", "locate it in the fifth image", "", 3),
            None
        );
        assert_eq!(derive_target("region", "anything", "", 4), Some(0));
    }
}

//! Grounding data that is not MIG-Bench: a JSONL file, one item a line,
//!
//! ```json
//! {"id": "a1", "task": "vqa", "images": ["a.jpg", "b.jpg"], "prompt": "Where is the cat?",
//!  "gt": [{"image": 1, "box": [0.12, 0.08, 0.62, 0.9], "label": "cat"}]}
//! ```
//!
//! `images` are paths relative to the file; `gt[].image` is an index into them or one of
//! the paths; `box` is `[x1, y1, x2, y2]` normalised to 0–1 of that image (values above
//! 1.5 are read as Qwen's 0–1000 integers). `task` and `gt` are optional; the first `gt`
//! entry is the one scored. Any other keys are kept out of the way.

use super::RecordError;
use super::mig_bench::GroundingItem;
use crate::image_cache::ImageSource;
use loupe_models::answer::NormBox;
use serde_json::Value;

/// True when the first non-empty line is an object with `images` and `prompt`: this
/// format rather than a predictions file (whose lines hold `id` and `answer`).
pub fn looks_generic(first_line: &str) -> bool {
    serde_json::from_str::<Value>(first_line.trim())
        .ok()
        .is_some_and(|v| v.get("images").is_some() && v.get("prompt").is_some())
}

/// Parse the file's text; every bad line becomes an error naming its line and field.
pub fn parse(
    file: &str,
    text: &str,
    resolve: &dyn Fn(&str) -> ImageSource,
) -> (Vec<GroundingItem>, Vec<RecordError>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, resolve) {
            Ok(item) => items.push(item),
            Err(message) => errors.push(RecordError {
                file: file.to_owned(),
                location: format!("line {}", n + 1),
                message,
            }),
        }
    }
    (items, errors)
}

fn parse_line(line: &str, resolve: &dyn Fn(&str) -> ImageSource) -> Result<GroundingItem, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let images: Vec<String> = v
        .get("images")
        .ok_or("missing field 'images'")?
        .as_array()
        .ok_or("field 'images' is not a list")?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_owned)
                .ok_or("field 'images' holds a non-string")
        })
        .collect::<Result<_, _>>()?;
    if images.is_empty() {
        return Err("field 'images' is empty".into());
    }
    let prompt = v
        .get("prompt")
        .ok_or("missing field 'prompt'")?
        .as_str()
        .ok_or("field 'prompt' is not a string")?
        .to_owned();
    let task = v
        .get("task")
        .and_then(Value::as_str)
        .unwrap_or("generic")
        .to_owned();
    let (gt_exact, target) = match v.get("gt") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Array(list)) if list.is_empty() => (None, None),
        Some(Value::Array(list)) => {
            let first = &list[0];
            let image = match first.get("image") {
                Some(Value::Number(n)) => n
                    .as_u64()
                    .map(|i| i as usize)
                    .filter(|&i| i < images.len())
                    .ok_or_else(|| {
                        format!(
                            "field 'gt[0].image' is {n}, but there are {} images",
                            images.len()
                        )
                    })?,
                Some(Value::String(s)) => images.iter().position(|p| p == s).ok_or_else(|| {
                    format!("field 'gt[0].image' names {s:?}, which is not in 'images'")
                })?,
                _ => return Err("field 'gt[0].image' must be an image index or path".into()),
            };
            let b = first
                .get("box")
                .and_then(Value::as_array)
                .ok_or("field 'gt[0].box' must be [x1, y1, x2, y2]")?;
            let c: Vec<f64> = b.iter().filter_map(Value::as_f64).collect();
            if c.len() != 4 || c.iter().any(|x| !x.is_finite()) {
                return Err("field 'gt[0].box' must hold four numbers".into());
            }
            let scale = if c.iter().any(|&x| x > 1.5) {
                1000.0
            } else {
                1.0
            };
            (
                Some([c[0] / scale, c[1] / scale, c[2] / scale, c[3] / scale]),
                Some(image),
            )
        }
        Some(_) => return Err("field 'gt' must be a list".into()),
    };
    Ok(GroundingItem {
        images: images.iter().map(|p| resolve(p)).collect(),
        image_names: images,
        task,
        question: prompt,
        gt: gt_exact.map(|c| NormBox::new(c[0] as f32, c[1] as f32, c[2] as f32, c[3] as f32)),
        gt_suspect: gt_exact.as_ref().and_then(super::mig_bench::gt_sanity),
        gt_exact,
        target,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(p: &str) -> ImageSource {
        ImageSource::File(std::path::PathBuf::from(p))
    }

    #[test]
    fn lines_parse_into_items_and_bad_lines_are_named() {
        let text = r#"{"images": ["a.jpg", "b.jpg"], "prompt": "Where is the cat?", "gt": [{"image": "b.jpg", "box": [0.1, 0.2, 0.5, 0.6], "label": "cat"}]}

{"images": ["a.jpg"], "prompt": "Find it", "task": "refer", "gt": [{"image": 0, "box": [100, 200, 500, 600]}]}
{"images": ["a.jpg"], "prompt": "x", "gt": [{"image": 3, "box": [0, 0, 1, 1]}]}
{"images": [], "prompt": "x"}
not json
{"images": ["a.jpg"], "prompt": "no ground truth"}"#;
        let (items, errors) = parse("g.jsonl", text, &resolve);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].target, Some(1));
        assert_eq!(items[0].gt, Some(NormBox::new(0.1, 0.2, 0.5, 0.6)));
        assert_eq!(items[0].task, "generic");
        // 0–1000 integers are Qwen coordinates.
        assert_eq!(items[1].gt, Some(NormBox::new(0.1, 0.2, 0.5, 0.6)));
        assert_eq!(items[1].task, "refer");
        assert_eq!(items[2].gt, None);
        let where_: Vec<String> = errors.iter().map(|e| e.location.clone()).collect();
        assert_eq!(where_, ["line 4", "line 5", "line 6"]);
        assert!(
            errors[0].message.contains("gt[0].image") && errors[0].message.contains("1 images")
        );
        assert!(errors[1].message.contains("'images' is empty"));
        assert!(looks_generic(text.lines().next().unwrap()));
        assert!(!looks_generic(r#"{"id": 0, "answer": "(1,2),(3,4)"}"#));
    }
}

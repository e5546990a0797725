//! Prediction files: JSONL, one object per line with the item `id` (its index in the
//! benchmark file), the model's raw `answer` text and optionally the `model` name.
//! Boxes and the image they refer to are parsed from the text exactly as the reference
//! evaluation does.

use super::RecordError;
use super::metrics::Prediction;
use loupe_models::answer::{reference_extract, referenced_image};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub struct ModelAnswer {
    pub answer: String,
    pub prediction: Prediction,
}

/// Answers keyed by item index, the model name, and per-line problems.
pub type Parsed = (
    BTreeMap<usize, ModelAnswer>,
    Option<String>,
    Vec<RecordError>,
);

/// A raw answer scored the way the reference evaluation reads it (first box, the image
/// its wording names).
pub fn model_answer(answer: &str) -> ModelAnswer {
    ModelAnswer {
        answer: answer.to_owned(),
        prediction: Prediction {
            bbox: reference_extract(answer),
            image: referenced_image(answer),
        },
    }
}

pub fn parse_jsonl(file: &str, text: &str) -> Parsed {
    let mut answers = BTreeMap::new();
    let mut model = None;
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fail = |message: String| RecordError {
            file: file.to_owned(),
            location: format!("line {}", n + 1),
            message,
        };
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                errors.push(fail(format!("not valid JSON: {e}")));
                continue;
            }
        };
        let Some(id) = value.get("id").and_then(serde_json::Value::as_u64) else {
            errors.push(fail("missing or non-integer field 'id'".into()));
            continue;
        };
        let Some(answer) = value.get("answer").and_then(serde_json::Value::as_str) else {
            errors.push(fail("missing or non-string field 'answer'".into()));
            continue;
        };
        if model.is_none() {
            model = value
                .get("model")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
        }
        let prediction = Prediction {
            bbox: reference_extract(answer),
            image: referenced_image(answer),
        };
        answers.insert(
            id as usize,
            ModelAnswer {
                answer: answer.to_owned(),
                prediction,
            },
        );
    }
    (answers, model, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loupe_models::answer::NormBox;

    #[test]
    fn the_demo_predictions_parse_into_boxes_and_images() {
        let (answers, model, errors) = parse_jsonl("demo", crate::demo::PREDICTIONS_JSONL);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(model.as_deref(), Some("demo-model"));
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[&0].prediction.image, Some(2));
        assert_eq!(
            answers[&0].prediction.bbox,
            Some(NormBox::new(0.262, 0.07, 0.705, 0.745))
        );
        assert_eq!(answers[&2].prediction.image, Some(0));
    }

    #[test]
    fn bad_lines_are_reported_by_number_and_the_rest_load() {
        let text = "{\"id\": 0, \"answer\": \"(1,2),(3,4)\"}\nnot json\n{\"answer\": \"x\"}\n\n{\"id\": 3, \"answer\": 5}\n";
        let (answers, _, errors) = parse_jsonl("p.jsonl", text);
        assert_eq!(answers.len(), 1);
        let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 3);
        assert!(
            msgs[0].starts_with("p.jsonl: line 2: not valid JSON"),
            "{msgs:?}"
        );
        assert_eq!(
            msgs[1],
            "p.jsonl: line 3: missing or non-integer field 'id'"
        );
        assert_eq!(
            msgs[2],
            "p.jsonl: line 5: missing or non-string field 'answer'"
        );
    }
}

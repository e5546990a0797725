//! Zero-shot labelling from CLIP vectors, and its confusion matrix against BIOMEDICA's
//! own primary labels.

use super::catalog::{Catalog, ItemId};

/// One item's predicted class and its probability (softmax over the classes of the
/// scaled cosines, as CLIP's zero-shot classifier).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    pub class: u16,
    pub probability: f32,
}

/// The class of `image` (unit vector) among `classes` (unit text vectors).
pub fn classify(image: &[f32], classes: &[Vec<f32>], logit_scale: f32) -> Option<Prediction> {
    let logits: Vec<f32> = classes
        .iter()
        .map(|c| logit_scale * c.iter().zip(image).map(|(a, b)| a * b).sum::<f32>())
        .collect();
    let (best, &max) = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))?;
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    Some(Prediction {
        class: best as u16,
        probability: 1.0 / sum,
    })
}

/// Rows: BIOMEDICA primary labels (in taxonomy order, then others, then "(none)");
/// columns: the zero-shot classes. An item counts once in every row of its label set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Confusion {
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub counts: Vec<Vec<u32>>,
    /// Items whose predicted class is one of their primary labels (case-insensitive).
    pub agree: usize,
    pub total: usize,
}

pub const NO_LABEL: &str = "(none)";

pub fn confusion(
    catalog: &Catalog,
    predicted: &[(ItemId, Prediction)],
    classes: &[String],
) -> Confusion {
    let mut rows: Vec<String> = super::taxonomy::TAXONOMY
        .iter()
        .map(|(p, _)| (*p).to_owned())
        .collect();
    let mut counts: Vec<Vec<u32>> = vec![vec![0; classes.len()]; rows.len()];
    let mut agree = 0;
    for &(id, p) in predicted {
        let class = usize::from(p.class);
        let Some(name) = classes.get(class) else {
            continue;
        };
        let mut labels = catalog.primary_labels(id);
        if labels.is_empty() {
            labels.push(NO_LABEL);
        }
        if labels.iter().any(|l| l.eq_ignore_ascii_case(name.trim())) {
            agree += 1;
        }
        for l in labels {
            let r = match rows.iter().position(|r| r == l) {
                Some(r) => r,
                None => {
                    rows.push(l.to_owned());
                    counts.push(vec![0; classes.len()]);
                    rows.len() - 1
                }
            };
            counts[r][class] += 1;
        }
    }
    // Keep only rows that occur, in their order.
    let (rows, counts): (Vec<String>, Vec<Vec<u32>>) = rows
        .into_iter()
        .zip(counts)
        .filter(|(_, c)| c.iter().any(|&n| n > 0))
        .unzip();
    Confusion {
        rows,
        cols: classes.to_vec(),
        counts,
        agree,
        total: predicted.len(),
    }
}

/// Class names from the user's text: one per line (or comma-separated on one line),
/// trimmed, empty ones dropped.
pub fn parse_classes(text: &str) -> Vec<String> {
    let split: Vec<&str> = if text.contains('\n') {
        text.lines().collect()
    } else {
        text.split(',').collect()
    };
    split
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The prompt for a class: the template with `{}` replaced (or the class appended when
/// the template has no `{}`).
pub fn prompt(template: &str, class: &str) -> String {
    if template.contains("{}") {
        template.replace("{}", class)
    } else {
        format!("{} {class}", template.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_is_softmax_of_scaled_cosines() {
        let classes = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let p = classify(&[0.6, 0.8], &classes, 10.0).unwrap_or_else(|| panic!());
        // logits 6 and 8: p = e^8 / (e^6 + e^8) = 1 / (1 + e^-2) = 0.880797.
        assert_eq!(p.class, 1);
        assert!((p.probability - 0.880_797).abs() < 1e-5, "{p:?}");
        assert!(classify(&[1.0], &[], 1.0).is_none());
    }

    #[test]
    fn classes_and_prompts() {
        assert_eq!(parse_classes("a, b ,, c"), vec!["a", "b", "c"]);
        assert_eq!(parse_classes("x, y\n z\n\n"), vec!["x, y", "z"]);
        assert_eq!(prompt("a photo of {}.", "MRI"), "a photo of MRI.");
        assert_eq!(prompt("an image of", "MRI"), "an image of MRI");
    }
}

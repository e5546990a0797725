//! Grounding metrics exactly as the Migician evaluation computes them (per item
//! `calculate_iou` in f64 on `extract_bbox`'s boxes; per task `compute_iou`'s counts of
//! IoU ≥ 0.7 / 0.5 / 0.3 and the IoU sum, in file order), plus what the reference does
//! not report: missing answers, parse failures, boxes on the wrong image.
//!
//! One rule everywhere (GUI, CSV, `loupe eval`): an item without an answer scores IoU 0,
//! as the official loop scores an empty response, and is counted as missing.

use loupe_models::answer::{NormBox, referenced_image};
use loupe_models::reference::{self, Extracted, calculate_iou, extract_bbox};
use std::collections::BTreeMap;

/// What a model answered for one item, after parsing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prediction {
    /// `extract_bbox`'s result, exact.
    pub extracted: Extracted,
    /// The scored (first) box, for drawing.
    pub bbox: Option<NormBox>,
    /// The image named last before the scored box ("It is in the second image. (…)"):
    /// the box is tied to its own mention, as `parse_grounded` ties every box.
    pub image: Option<usize>,
}

impl Prediction {
    pub fn from_answer(answer: &str) -> Self {
        let e = extract_bbox(answer);
        let bbox = e
            .boxes
            .scored()
            .map(|b| NormBox::new(b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32));
        let image = e
            .first_at
            .as_ref()
            .and_then(|r| referenced_image(&answer[..r.start]));
        Self {
            extracted: e.boxes,
            bbox,
            image,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ItemScore {
    pub iou: f64,
    /// An answer without any box `extract_bbox` reads.
    pub parse_failure: bool,
    /// The scored box is on an image other than the target (the reference ignores this).
    pub wrong_image: bool,
    /// No answer for this item at all.
    pub missing: bool,
}

impl ItemScore {
    pub fn hit(&self, threshold: f64) -> bool {
        self.iou >= threshold
    }
}

/// The box as the Migician-mode evaluation scores it (`migician_eval`'s y-correction,
/// quirks included: several boxes are left alone).
pub fn scored_boxes(pred: &Prediction, y_correction: bool) -> Extracted {
    if y_correction {
        reference::migician_y_correction(&pred.extracted)
    } else {
        pred.extracted.clone()
    }
}

/// Score one item. `gt` is the ground truth exactly as written.
pub fn score_item(
    gt: &[f64; 4],
    target: Option<usize>,
    pred: Option<&Prediction>,
    y_correction: bool,
) -> ItemScore {
    let Some(pred) = pred else {
        return ItemScore {
            missing: true,
            ..Default::default()
        };
    };
    let boxes = scored_boxes(pred, y_correction);
    let parse_failure = boxes == Extracted::Empty;
    ItemScore {
        iou: calculate_iou(gt, &boxes),
        parse_failure,
        wrong_image: !parse_failure && matches!((pred.image, target), (Some(p), Some(t)) if p != t),
        missing: false,
    }
}

/// `compute_iou`'s `acc` entry for a task (or everything), plus Loupe's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// `TOTAL`.
    pub count: usize,
    /// `IOU@0.7`, `IOU@0.5`, `IOU@0.3` counts.
    pub hits: [usize; 3],
    /// `AVE_IOU` before division: the IoU sum in file order.
    pub iou_sum: f64,
    pub parse_failures: usize,
    pub wrong_image: usize,
    pub missing: usize,
}

/// The thresholds, in the official key order.
pub const THRESHOLDS: [f64; 3] = [0.7, 0.5, 0.3];
pub const KEYS: [&str; 4] = ["IOU@0.7", "IOU@0.5", "IOU@0.3", "AVE_IOU"];

impl Metrics {
    fn add(&mut self, s: &ItemScore) {
        for (hit, t) in self.hits.iter_mut().zip(THRESHOLDS) {
            *hit += usize::from(s.hit(t));
        }
        self.iou_sum += s.iou;
        self.count += 1;
        self.parse_failures += usize::from(s.parse_failure);
        self.wrong_image += usize::from(s.wrong_image);
        self.missing += usize::from(s.missing);
    }

    /// `post_processing`'s figure for key k of [`KEYS`]: `100*value/TOTAL`.
    pub fn percent(&self, k: usize) -> f64 {
        let value = match k {
            0..=2 => (100 * self.hits[k]) as f64,
            _ => 100.0 * self.iou_sum,
        };
        value / self.count as f64
    }

    /// Fraction of items with IoU ≥ `THRESHOLDS[k]`.
    pub fn acc(&self, k: usize) -> f64 {
        self.hits[k] as f64 / self.count.max(1) as f64
    }

    pub fn acc_05(&self) -> f64 {
        self.acc(1)
    }

    pub fn mean_iou(&self) -> f64 {
        self.iou_sum / self.count.max(1) as f64
    }
}

/// Per-task metrics (sorted by task name) and the overall figures, summed in the order
/// the scores come (file order, as the official loop sums).
pub fn aggregate<'a>(
    scores: impl IntoIterator<Item = (&'a str, ItemScore)>,
) -> (BTreeMap<String, Metrics>, Metrics) {
    let mut per: BTreeMap<String, Metrics> = BTreeMap::new();
    let mut all = Metrics::default();
    for (task, s) in scores {
        per.entry(task.to_owned()).or_default().add(&s);
        all.add(&s);
    }
    (per, all)
}

/// Tasks in the order the official script runs them, then any others by name.
pub fn task_order(per: &BTreeMap<String, Metrics>) -> Vec<&str> {
    let mut out: Vec<&str> = reference::MIG_TASKS
        .iter()
        .copied()
        .filter(|t| per.contains_key(*t))
        .collect();
    out.extend(
        per.keys()
            .map(String::as_str)
            .filter(|t| !reference::MIG_TASKS.contains(t)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(text: &str) -> Prediction {
        Prediction::from_answer(text)
    }

    #[test]
    fn the_scored_box_is_tied_to_its_own_mention() {
        let p = pred("It is in the second image. (100,100),(300,300) Not the first image.");
        assert_eq!(p.image, Some(1));
        let p = pred("(100,100),(300,300) in the first image");
        assert_eq!(p.image, None);
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        let gt = [0.0, 0.0, 0.5, 0.5];
        let scores = [
            (
                "region",
                score_item(&gt, Some(0), Some(&pred("(0,0),(500,500)")), false),
            ),
            // Half the width: IoU 0.5 exactly.
            (
                "region",
                score_item(&gt, Some(0), Some(&pred("(0,0),(250,500)")), false),
            ),
            (
                "diff",
                score_item(
                    &gt,
                    Some(1),
                    Some(&pred("In the first image (250,250),(750,750)")),
                    false,
                ),
            ),
            (
                "diff",
                score_item(&gt, Some(1), Some(&pred("no box")), false),
            ),
            ("diff", score_item(&gt, Some(1), None, false)),
        ];
        let (per, all) = aggregate(scores.iter().map(|(t, s)| (*t, *s)));
        let region = per["region"];
        assert_eq!((region.count, region.hits), (2, [1, 2, 2]));
        assert_eq!(region.percent(3), 75.0);
        let diff = per["diff"];
        assert_eq!(
            (
                diff.count,
                diff.parse_failures,
                diff.wrong_image,
                diff.missing
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(all.count, 5);
        assert_eq!(all.percent(1), 40.0);
        assert_eq!(task_order(&per), vec!["diff", "region"]);
    }

    #[test]
    fn correction_changes_the_score_only_when_asked() {
        let gt = [0.1, 0.21, 0.5, 0.66];
        let p = pred("(100,200),(500,600)");
        let plain = score_item(&gt, None, Some(&p), false).iou;
        let corrected = score_item(&gt, None, Some(&p), true).iou;
        assert!(plain < 0.9 && corrected == 1.0, "{plain} {corrected}");
    }
}

//! Grounding metrics as the Migician evaluation defines them (per item IoU in
//! normalised coordinates; per task Acc@IoU ≥ 0.3 / 0.5 / 0.7 and mean IoU), plus what
//! the reference does not report: parse failures and boxes put on the wrong image.

use loupe_models::answer::NormBox;
use std::collections::BTreeMap;

/// What a model answered for one item, after parsing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prediction {
    /// The first box of the answer (the reference scores only the first).
    pub bbox: Option<NormBox>,
    /// The image the answer puts the box on, when it says.
    pub image: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ItemScore {
    pub iou: f32,
    pub parse_failure: bool,
    /// The answer names an image other than the target (the reference ignores this).
    pub wrong_image: bool,
}

/// The Migician-only post-scaling of y in the reference evaluation (attributed to a
/// training-framework bug): y1 ×1.05, y2 ×1.10, each capped at 0.999 and rounded to
/// three decimals.
pub fn migician_y_correction(b: NormBox) -> NormBox {
    let fix = |v: f32, k: f32| ((v * k).min(0.999) * 1000.0).round() / 1000.0;
    NormBox::new(b.x1, fix(b.y1, 1.05), b.x2, fix(b.y2, 1.10))
}

pub fn score_item(
    gt: &NormBox,
    target: Option<usize>,
    pred: &Prediction,
    y_correction: bool,
) -> ItemScore {
    let Some(bbox) = pred.bbox else {
        // No box: IoU 0, as the reference scores an empty parse.
        return ItemScore {
            iou: 0.0,
            parse_failure: true,
            wrong_image: false,
        };
    };
    let bbox = if y_correction {
        migician_y_correction(bbox)
    } else {
        bbox
    };
    ItemScore {
        iou: bbox.iou(gt),
        parse_failure: false,
        wrong_image: matches!((pred.image, target), (Some(p), Some(t)) if p != t),
    }
}

/// Aggregates over a task (or over everything).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    pub count: usize,
    pub acc_03: f32,
    pub acc_05: f32,
    pub acc_07: f32,
    pub mean_iou: f32,
    pub parse_failures: usize,
    pub wrong_image: usize,
}

#[derive(Default)]
struct Sums {
    count: usize,
    hits: [usize; 3],
    iou: f64,
    parse_failures: usize,
    wrong_image: usize,
}

impl Sums {
    fn add(&mut self, s: &ItemScore) {
        self.count += 1;
        for (hit, t) in self.hits.iter_mut().zip([0.3, 0.5, 0.7]) {
            *hit += usize::from(s.iou >= t);
        }
        self.iou += f64::from(s.iou);
        self.parse_failures += usize::from(s.parse_failure);
        self.wrong_image += usize::from(s.wrong_image);
    }

    fn finish(&self) -> Metrics {
        let n = self.count.max(1) as f32;
        Metrics {
            count: self.count,
            acc_03: self.hits[0] as f32 / n,
            acc_05: self.hits[1] as f32 / n,
            acc_07: self.hits[2] as f32 / n,
            mean_iou: (self.iou / self.count.max(1) as f64) as f32,
            parse_failures: self.parse_failures,
            wrong_image: self.wrong_image,
        }
    }
}

/// Per-task metrics (sorted by task name) and the overall figures.
pub fn aggregate<'a>(
    scores: impl IntoIterator<Item = (&'a str, ItemScore)>,
) -> (BTreeMap<String, Metrics>, Metrics) {
    let mut per: BTreeMap<String, Sums> = BTreeMap::new();
    let mut all = Sums::default();
    for (task, s) in scores {
        per.entry(task.to_owned()).or_default().add(&s);
        all.add(&s);
    }
    (
        per.into_iter().map(|(k, v)| (k, v.finish())).collect(),
        all.finish(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(b: [f32; 4], image: Option<usize>) -> Prediction {
        Prediction {
            bbox: Some(NormBox::new(b[0], b[1], b[2], b[3])),
            image,
        }
    }

    #[test]
    fn y_correction_matches_the_reference_rule() {
        let b = migician_y_correction(NormBox::new(0.1, 0.2, 0.5, 0.95));
        // 0.2·1.05 = 0.21; 0.95·1.10 = 1.045 → capped at 0.999.
        assert_eq!((b.x1, b.y1, b.x2, b.y2), (0.1, 0.21, 0.5, 0.999));
        let c = migician_y_correction(NormBox::new(0.0, 0.3333, 1.0, 0.4444));
        // 0.349965 → 0.35; 0.48884 → 0.489.
        assert!(
            (c.y1 - 0.35).abs() < 1e-6 && (c.y2 - 0.489).abs() < 1e-6,
            "{c:?}"
        );
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        let gt = NormBox::new(0.0, 0.0, 0.5, 0.5);
        let scores = [
            // Exact: IoU 1.
            (
                "region",
                score_item(&gt, Some(0), &pred([0.0, 0.0, 0.5, 0.5], Some(0)), false),
            ),
            // Half the width: IoU 0.5 exactly.
            (
                "region",
                score_item(&gt, Some(0), &pred([0.0, 0.0, 0.25, 0.5], None), false),
            ),
            // Offset by a quarter in x and y: 0.0625 / 0.4375 = 1/7.
            (
                "diff",
                score_item(
                    &gt,
                    Some(1),
                    &pred([0.25, 0.25, 0.75, 0.75], Some(0)),
                    false,
                ),
            ),
            // Unparseable.
            (
                "diff",
                score_item(&gt, Some(1), &Prediction::default(), false),
            ),
        ];
        let (per, all) = aggregate(scores.iter().map(|(t, s)| (*t, *s)));
        let region = per["region"];
        assert_eq!(region.count, 2);
        assert_eq!(
            (region.acc_03, region.acc_05, region.acc_07),
            (1.0, 1.0, 0.5)
        );
        assert!((region.mean_iou - 0.75).abs() < 1e-6);
        let diff = per["diff"];
        assert_eq!(
            (
                diff.acc_03,
                diff.acc_05,
                diff.parse_failures,
                diff.wrong_image
            ),
            (0.0, 0.0, 1, 1)
        );
        assert!((diff.mean_iou - (1.0 / 7.0) / 2.0).abs() < 1e-6);
        assert_eq!(all.count, 4);
        assert_eq!(all.acc_05, 0.5);
        assert!((all.mean_iou - (1.0 + 0.5 + 1.0 / 7.0) / 4.0).abs() < 1e-6);
    }

    #[test]
    fn correction_changes_the_score_only_when_asked() {
        let gt = NormBox::new(0.1, 0.21, 0.5, 0.66);
        let p = pred([0.1, 0.2, 0.5, 0.6], None);
        let plain = score_item(&gt, None, &p, false).iou;
        let corrected = score_item(&gt, None, &p, true).iou;
        assert!(
            plain < 0.9 && (corrected - 1.0).abs() < 1e-5,
            "{plain} {corrected}"
        );
    }
}

//! A whole benchmark scored headless (`loupe eval`), through the same `score_item` /
//! `aggregate` the GUI uses: the per-item CSV, the per-task summary in the official
//! layout (`IOU@0.7, IOU@0.5, IOU@0.3, AVE_IOU, TOTAL`) as JSON, and the Markdown table
//! of the figures `post_processing` prints (`100*value/TOTAL`, Python repr).

use super::export::csv_field;
use super::metrics::{self, ItemScore, KEYS, Metrics};
use super::mig_bench::GroundingItem;
use super::predictions::{ModelAnswer, Report};
use loupe_models::reference::py_repr;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Every item's score (`None`: no ground truth, or an unreadable record) and the
/// per-task and overall metrics, summed in file order as the official loop sums.
pub struct Evaluation {
    pub scores: Vec<Option<ItemScore>>,
    pub per_task: BTreeMap<String, Metrics>,
    pub overall: Metrics,
}

pub fn evaluate(
    items: &[GroundingItem],
    answers: &BTreeMap<usize, ModelAnswer>,
    y_correction: bool,
) -> Evaluation {
    let scores: Vec<Option<ItemScore>> = items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let gt = it.gt_exact.filter(|_| it.problem.is_none())?;
            Some(metrics::score_item(
                &gt,
                it.target,
                answers.get(&i).map(|a| &a.prediction),
                y_correction,
            ))
        })
        .collect();
    let (per_task, overall) = metrics::aggregate(
        scores
            .iter()
            .zip(items)
            .filter_map(|(s, it)| Some((it.task.as_str(), (*s)?))),
    );
    Evaluation {
        scores,
        per_task,
        overall,
    }
}

impl Evaluation {
    /// Tasks in the official order, then "overall".
    pub fn rows(&self) -> Vec<(&str, &Metrics)> {
        metrics::task_order(&self.per_task)
            .into_iter()
            .map(|t| (t, &self.per_task[t]))
            .chain(std::iter::once(("overall", &self.overall)))
            .collect()
    }

    /// One row per benchmark item; ids are benchmark indices. The IoU is the exact f64
    /// (shortest round-trip digits).
    pub fn items_csv(&self, items: &[GroundingItem]) -> String {
        let mut out = String::from(
            "item,task,target_image,iou,acc_0.3,acc_0.5,acc_0.7,parse_failure,wrong_image,missing,gt_suspect,problem\n",
        );
        for (i, (it, s)) in items.iter().zip(&self.scores).enumerate() {
            let flag = |b: bool| u8::from(b).to_string();
            let cells = match s {
                Some(s) => vec![
                    py_repr(s.iou),
                    flag(s.hit(0.3)),
                    flag(s.hit(0.5)),
                    flag(s.hit(0.7)),
                    flag(s.parse_failure),
                    flag(s.wrong_image),
                    flag(s.missing),
                ],
                None => vec![String::new(); 7],
            };
            let row: Vec<String> = [
                i.to_string(),
                csv_field(&it.task),
                it.target.map(|t| (t + 1).to_string()).unwrap_or_default(),
            ]
            .into_iter()
            .chain(cells)
            .chain([
                flag(it.gt_suspect.is_some()),
                csv_field(it.problem.as_deref().unwrap_or("")),
            ])
            .collect();
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }

    /// The official layout: per task (and overall) the printed percentages and
    /// `TOTAL`; `acc` holds `compute_iou`'s raw dict (counts and the IoU sum).
    pub fn summary_json(&self, report: &Report, y_correction: bool) -> Value {
        let mut tasks = Map::new();
        let mut acc = Map::new();
        for (task, m) in self.rows() {
            let mut t = Map::new();
            let mut a = Map::new();
            for (k, key) in KEYS.iter().enumerate() {
                t.insert((*key).into(), json!(m.percent(k)));
                let raw = if k < 3 {
                    json!(m.hits[k])
                } else {
                    json!(m.iou_sum)
                };
                a.insert((*key).into(), raw);
            }
            t.insert("TOTAL".into(), json!(m.count));
            a.insert("TOTAL".into(), json!(m.count));
            for (name, v) in [
                ("missing", m.missing),
                ("parse_failures", m.parse_failures),
                ("wrong_image", m.wrong_image),
            ] {
                t.insert(name.into(), json!(v));
            }
            tasks.insert(task.into(), Value::Object(t));
            acc.insert(task.into(), Value::Object(a));
        }
        json!({
            "y_correction": if y_correction { "migician" } else { "none" },
            "tasks": tasks,
            "acc": acc,
            "predictions": {
                "files": report.files,
                "matched": report.matched,
                "unmatched": report.unmatched,
                "duplicates": report.duplicates,
                "overlaps": report.overlaps,
                "mismatched": report.mismatched,
                "missing": report.missing,
                "unreadable_lines": report.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            },
        })
    }

    /// The Markdown table: the figures `post_processing` prints, in its key order.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| Task | IOU@0.7 | IOU@0.5 | IOU@0.3 | AVE_IOU | TOTAL |\n|---|---|---|---|---|---|\n",
        );
        for (task, m) in self.rows() {
            let cells: Vec<String> = (0..4)
                .map(|k| format!("{}%", py_repr(m.percent(k))))
                .collect();
            out.push_str(&format!(
                "| {task} | {} | {} |\n",
                cells.join(" | "),
                m.count
            ));
        }
        out
    }
}

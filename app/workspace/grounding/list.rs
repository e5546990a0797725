//! The item list (filtered, sorted, virtualised), the metrics table per task and the
//! IoU histogram.

use super::{Grounding, Mode};
use crate::datasets::metrics::{self, ItemScore, Metrics};
use crate::datasets::review::Decision;
use crate::ui::theme;
use egui::{RichText, Ui};
use std::collections::BTreeMap;

/// Which items the list shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub task: Option<String>,
    pub status: Option<Decision>,
    /// Inclusive IoU range; items without a score pass only the full range.
    pub iou_min: f32,
    pub iou_max: f32,
    pub parse_failure: bool,
    pub wrong_image: bool,
    /// Only items where the loaded models disagree.
    pub disagree: bool,
    /// Only items whose ground truth is suspect (swapped, zero area, outside the image).
    pub gt_suspect: bool,
    /// Only items without an answer.
    pub missing: bool,
    /// Only items answered more than once (or by overlapping shards).
    pub duplicate: bool,
    /// Only items whose answer line names another task or question.
    pub mismatch: bool,
}

/// Per-item facts the filters test besides the score.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ItemFlags {
    pub disagree: bool,
    pub gt_suspect: bool,
    pub duplicate: bool,
    pub mismatch: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            task: None,
            status: None,
            iou_min: 0.0,
            iou_max: 1.0,
            parse_failure: false,
            wrong_image: false,
            disagree: false,
            gt_suspect: false,
            missing: false,
            duplicate: false,
            mismatch: false,
        }
    }
}

impl Filter {
    fn iou_active(&self) -> bool {
        self.iou_min > 0.0 || self.iou_max < 1.0
    }

    pub fn passes(
        &self,
        task: &str,
        decision: Decision,
        score: Option<&ItemScore>,
        flags: ItemFlags,
    ) -> bool {
        if (self.disagree && !flags.disagree)
            || (self.gt_suspect && !flags.gt_suspect)
            || (self.duplicate && !flags.duplicate)
            || (self.mismatch && !flags.mismatch)
            || (self.missing && !score.is_some_and(|s| s.missing))
        {
            return false;
        }
        if self.task.as_deref().is_some_and(|t| t != task) {
            return false;
        }
        if self.status.is_some_and(|s| s != decision) {
            return false;
        }
        if self.iou_active()
            && !score.is_some_and(|s| {
                s.iou >= f64::from(self.iou_min) && s.iou <= f64::from(self.iou_max)
            })
        {
            return false;
        }
        if self.parse_failure && !score.is_some_and(|s| s.parse_failure) {
            return false;
        }
        if self.wrong_image && !score.is_some_and(|s| s.wrong_image) {
            return false;
        }
        true
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Index,
    IouAscending,
    IouDescending,
}

impl Sort {
    fn label(self) -> &'static str {
        match self {
            Sort::Index => "file order",
            Sort::IouAscending => "IoU, worst first",
            Sort::IouDescending => "IoU, best first",
        }
    }
}

#[derive(Default)]
pub(super) struct ListState {
    pub filter: Filter,
    pub sort: Sort,
    pub visible: Vec<usize>,
    /// What `visible` was computed from.
    key: Option<(u64, Filter, Sort, u64, bool)>,
    /// Per item: the model's score, when the item has ground truth and an answer.
    pub scores: Vec<Option<ItemScore>>,
    pub flags: Vec<ItemFlags>,
    pub per_task: BTreeMap<String, Metrics>,
    /// Overall metrics of each compared model.
    pub others_all: Vec<Metrics>,
    pub all: Metrics,
    scores_gen: Option<(u64, bool)>,
}

/// Ten IoU bins of width 0.1 (1.0 falls in the last).
fn histogram(scores: impl Iterator<Item = f64>) -> [usize; 10] {
    let mut bins = [0; 10];
    for iou in scores {
        bins[((iou * 10.0) as usize).min(9)] += 1;
    }
    bins
}

impl Grounding {
    /// Recompute scores and the visible list when what they depend on changed. A
    /// linear pass: a few milliseconds for 100k items, and only after a change.
    pub(super) fn refresh_list(&mut self) {
        let gen_key = (self.data_gen, self.y_correction);
        if self.list.scores_gen != Some(gen_key) {
            // With answers loaded every item with ground truth is scored (missing ones
            // as IoU 0, the official rule); without any, nothing is.
            let any = !self.predictions.is_empty() || self.report.is_some();
            let scores: Vec<Option<ItemScore>> = (0..self.items.len())
                .map(|i| any.then(|| self.score(i)).flatten())
                .collect();
            let (per_task, all) = metrics::aggregate(
                (0..self.items.len())
                    .filter_map(|i| Some((self.items[i].task.as_str(), self.score(i)?))),
            );
            let report = self.report.as_ref();
            self.list.flags = (0..self.items.len())
                .map(|i| ItemFlags {
                    disagree: self.models_disagree(i),
                    gt_suspect: self.items[i].gt_suspect.is_some(),
                    duplicate: report
                        .is_some_and(|r| r.duplicates.contains(&i) || r.overlaps.contains(&i)),
                    mismatch: report.is_some_and(|r| r.mismatched.contains(&i)),
                })
                .collect();
            self.list.others_all = self
                .others
                .iter()
                .map(|(_, answers)| {
                    metrics::aggregate((0..self.items.len()).filter_map(|i| {
                        let item = &self.items[i];
                        let pred = answers.get(&i).map(|a| &a.prediction);
                        let s = metrics::score_item(&item.gt_exact?, item.target, pred, false);
                        Some((item.task.as_str(), s))
                    }))
                    .1
                })
                .collect();
            self.list.scores = scores;
            self.list.per_task = per_task;
            self.list.all = all;
            self.list.scores_gen = Some(gen_key);
        }
        let key = (
            self.data_gen,
            self.list.filter.clone(),
            self.list.sort,
            self.review.version(),
            self.y_correction,
        );
        if self.list.key.as_ref() == Some(&key) {
            return;
        }
        let filter = &self.list.filter;
        let mut visible: Vec<usize> = (0..self.items.len())
            .filter(|&i| {
                filter.passes(
                    &self.items[i].task,
                    self.review.decision(i),
                    self.list.scores[i].as_ref(),
                    self.list.flags[i],
                )
            })
            .collect();
        let iou = |i: usize| self.list.scores[i].map(|s| s.iou);
        match self.list.sort {
            Sort::Index => {}
            // Unscored items go last either way.
            Sort::IouAscending => visible.sort_by(|&a, &b| match (iou(a), iou(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (x, y) => y.is_some().cmp(&x.is_some()),
            }),
            Sort::IouDescending => visible.sort_by(|&a, &b| match (iou(a), iou(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (x, y) => y.is_some().cmp(&x.is_some()),
            }),
        }
        self.list.visible = visible;
        self.list.key = Some(key);
    }

    pub(super) fn list_panel(&mut self, ui: &mut Ui) {
        ui.heading("Items");
        // The file name fits the panel (and a projector); the full path is on hover.
        let short = std::path::Path::new(&self.source_name)
            .file_name()
            .map_or(self.source_name.clone(), |n| {
                n.to_string_lossy().into_owned()
            });
        ui.label(RichText::new(short).weak())
            .on_hover_text(&self.source_name);
        self.banner(ui);
        if !self.predictions.is_empty() {
            let all = self.list.all;
            ui.label(
                RichText::new(format!(
                    "{}: Acc@0.5 {:.1} %  ·  mIoU {:.3}",
                    self.model_name,
                    all.acc_05() * 100.0,
                    all.mean_iou()
                ))
                .strong(),
            );
            if ui
                .checkbox(
                    &mut self.y_correction,
                    "Migician y-correction (reference eval)",
                )
                .changed()
            {
                self.data_gen += 1;
            }
        }
        let counts = self.review.counts(self.items.len());
        ui.label(format!(
            "✔ {}  ✖ {}  » {}  · {} to review",
            counts.get(&Decision::Accepted).unwrap_or(&0),
            counts.get(&Decision::Rejected).unwrap_or(&0),
            counts.get(&Decision::Skipped).unwrap_or(&0),
            counts.get(&Decision::Unreviewed).unwrap_or(&0),
        ));
        ui.separator();
        self.filter_controls(ui);
        ui.label(
            RichText::new(format!(
                "{} of {} items",
                self.list.visible.len(),
                self.items.len()
            ))
            .weak(),
        );
        ui.separator();
        let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
        let mut clicked = None;
        let visible = &self.list.visible;
        egui::ScrollArea::vertical().auto_shrink(false).show_rows(
            ui,
            row_height,
            visible.len(),
            |ui, range| {
                for &i in &visible[range] {
                    let item = &self.items[i];
                    let decision = self.review.decision(i);
                    let iou = self.list.scores[i]
                        .map(|s| {
                            if s.missing {
                                "  ·  no answer".to_owned()
                            } else {
                                format!("  ·  IoU {:.2}", s.iou)
                            }
                        })
                        .unwrap_or_default();
                    let mark = if item.gt_suspect.is_some() || item.problem.is_some() {
                        " ⚠"
                    } else {
                        ""
                    };
                    let label = format!(
                        "{} {:>3}  {}  ·  {} images{iou}{mark}",
                        decision.mark(),
                        i + 1,
                        item.task,
                        item.images.len()
                    );
                    let text = match decision {
                        Decision::Accepted => RichText::new(label).color(theme::GT),
                        Decision::Rejected => RichText::new(label).color(theme::ERROR),
                        _ => RichText::new(label),
                    };
                    let row = ui.selectable_label(i == self.selected, text);
                    if i == self.selected && self.view.scroll_to_selected {
                        row.scroll_to_me(None);
                    }
                    if row.clicked() {
                        clicked = Some(i);
                    }
                }
            },
        );
        self.view.scroll_to_selected = false;
        if let Some(i) = clicked {
            self.selected = i;
        }
    }

    fn filter_controls(&mut self, ui: &mut Ui) {
        let tasks: Vec<String> = self.list.per_task.keys().cloned().collect();
        let has_others = !self.others.is_empty();
        let f = &mut self.list.filter;
        egui::Grid::new("grounding_filters")
            .num_columns(2)
            .show(ui, |ui| {
                let label = ui.label("Task");
                egui::ComboBox::from_id_salt("filter_task")
                    .selected_text(f.task.as_deref().unwrap_or("all"))
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut f.task, None, "all");
                        for t in tasks {
                            ui.selectable_value(&mut f.task, Some(t.clone()), t);
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Status");
                egui::ComboBox::from_id_salt("filter_status")
                    .selected_text(f.status.map_or("all", Decision::label))
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut f.status, None, "all");
                        for d in Decision::ALL {
                            ui.selectable_value(&mut f.status, Some(d), d.label());
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("IoU from");
                ui.horizontal(|ui| {
                    ui.add(
                        egui::DragValue::new(&mut f.iou_min)
                            .range(0.0..=1.0)
                            .speed(0.01)
                            .max_decimals(2),
                    )
                    .labelled_by(label.id);
                    let to = ui.label("to");
                    ui.add(
                        egui::DragValue::new(&mut f.iou_max)
                            .range(0.0..=1.0)
                            .speed(0.01)
                            .max_decimals(2),
                    )
                    .labelled_by(to.id);
                });
                ui.end_row();
                let label = ui.label("Sort");
                let sort = &mut self.list.sort;
                egui::ComboBox::from_id_salt("list_sort")
                    .selected_text(sort.label())
                    .show_ui(ui, |ui| {
                        for s in [Sort::Index, Sort::IouAscending, Sort::IouDescending] {
                            ui.selectable_value(sort, s, s.label());
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
            });
        let f = &mut self.list.filter;
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(&mut f.parse_failure, "parse failures");
            ui.checkbox(&mut f.wrong_image, "wrong image");
            if has_others {
                ui.checkbox(&mut f.disagree, "models disagree");
            }
            if *f != Filter::default() && ui.button("Clear filters").clicked() {
                *f = Filter::default();
            }
        });
    }

    /// The metrics table per task (click a row to filter the list) and the histogram of
    /// IoU over the listed items (click a bar to filter to that range).
    pub(super) fn metrics_view(&mut self, ui: &mut Ui) {
        ui.add_space(4.0);
        if self.predictions.is_empty() {
            ui.label("Open a predictions file (JSONL) to score the model.");
            return;
        }
        ui.label(
            RichText::new(format!("{} — metrics per task", self.model_name))
                .size(20.0)
                .strong(),
        );
        ui.add_space(6.0);
        let mut pick: Option<Option<String>> = None;
        let rows: Vec<(Option<String>, Metrics)> = self
            .list
            .per_task
            .iter()
            .map(|(t, m)| (Some(t.clone()), *m))
            .chain(std::iter::once((None, self.list.all)))
            .collect();
        egui::Grid::new("metrics_table")
            .striped(true)
            .num_columns(9)
            .spacing([14.0, 6.0])
            .show(ui, |ui| {
                for (h, tip) in [
                    ("task", "click a task to list only its items"),
                    ("n", "items with ground truth (TOTAL)"),
                    ("Acc@0.5", "share of items with IoU ≥ 0.5 (the headline)"),
                    ("@0.3", "Acc@0.3"),
                    ("@0.7", "Acc@0.7"),
                    ("mIoU", "mean IoU"),
                    ("no box", "answers without a parseable box"),
                    ("wrong img", "boxes put on another image than the target"),
                    (
                        "missing",
                        "items without an answer (scored IoU 0, as officially)",
                    ),
                ] {
                    ui.label(RichText::new(h).strong()).on_hover_text(tip);
                }
                ui.end_row();
                for (task, m) in &rows {
                    let name = task.as_deref().unwrap_or("all tasks");
                    let active = self.list.filter.task == *task;
                    if ui.selectable_label(active, name).clicked() {
                        pick = Some(task.clone());
                    }
                    ui.monospace(m.count.to_string());
                    ui.label(
                        RichText::new(format!("{:.1} %", m.acc_05() * 100.0))
                            .monospace()
                            .strong()
                            .color(theme::ACCENT),
                    );
                    ui.monospace(format!("{:.1} %", m.acc(2) * 100.0));
                    ui.monospace(format!("{:.1} %", m.acc(0) * 100.0));
                    ui.monospace(format!("{:.3}", m.mean_iou()));
                    ui.monospace(m.parse_failures.to_string());
                    ui.monospace(m.wrong_image.to_string());
                    ui.monospace(m.missing.to_string());
                    ui.end_row();
                }
            });
        if let Some(task) = pick {
            self.list.filter.task = task;
        }
        if !self.others.is_empty() {
            ui.add_space(12.0);
            ui.label(RichText::new("Models (click one to score it)").strong());
            let mut promote = None;
            egui::Grid::new("models_table")
                .striped(true)
                .num_columns(3)
                .spacing([14.0, 6.0])
                .show(ui, |ui| {
                    ui.label(
                        RichText::new(&self.model_name)
                            .color(theme::PALETTE[0])
                            .strong(),
                    );
                    ui.monospace(format!("Acc@0.5 {:.1} %", self.list.all.acc_05() * 100.0));
                    ui.monospace(format!("mIoU {:.3}", self.list.all.mean_iou()));
                    ui.end_row();
                    for (k, ((name, _), m)) in
                        self.others.iter().zip(&self.list.others_all).enumerate()
                    {
                        let text = RichText::new(name).color(super::compared_colour(k));
                        if ui.selectable_label(false, text).clicked() {
                            promote = Some(k);
                        }
                        ui.monospace(format!("Acc@0.5 {:.1} %", m.acc_05() * 100.0));
                        ui.monospace(format!("mIoU {:.3}", m.mean_iou()));
                        ui.end_row();
                    }
                });
            let disagree = self.list.flags.iter().filter(|f| f.disagree).count();
            ui.label(format!("The models disagree on {disagree} items (another image, a missing box or IoU < 0.5 between them)."));
            if let Some(k) = promote {
                self.promote_model(k);
            }
        }
        ui.add_space(12.0);
        // The histogram follows the task filter so a row click shows its distribution.
        let task = self.list.filter.task.clone();
        let bins = histogram((0..self.items.len()).filter_map(|i| {
            let s = self.list.scores[i]?;
            (task.is_none() || task.as_deref() == Some(self.items[i].task.as_str()))
                .then_some(s.iou)
        }));
        ui.label(
            RichText::new(format!(
                "IoU histogram ({})",
                task.as_deref().unwrap_or("all tasks")
            ))
            .strong(),
        );
        let size = egui::vec2(ui.max_rect().width().min(640.0), 180.0);
        let (rect, resp) = ui.allocate_exact_size(size, egui::Sense::click());
        let painter = ui.painter_at(rect.expand(2.0));
        let max = bins.iter().copied().max().unwrap_or(0).max(1) as f32;
        let plot = rect.shrink2(egui::vec2(0.0, 18.0));
        let bw = plot.width() / 10.0;
        let font = egui::TextStyle::Small.resolve(ui.style());
        for (k, &n) in bins.iter().enumerate() {
            let h = plot.height() * n as f32 / max;
            let x = plot.left() + k as f32 * bw;
            let bar = egui::Rect::from_min_max(
                egui::pos2(x + 2.0, plot.bottom() - h),
                egui::pos2(x + bw - 2.0, plot.bottom()),
            );
            let color = if k >= 5 { theme::GT } else { theme::PALETTE[0] };
            painter.rect_filled(bar, 2.0, color);
            painter.text(
                egui::pos2(bar.center().x, bar.top() - 2.0),
                egui::Align2::CENTER_BOTTOM,
                n.to_string(),
                font.clone(),
                ui.visuals().text_color(),
            );
            painter.text(
                egui::pos2(x + bw / 2.0, plot.bottom() + 2.0),
                egui::Align2::CENTER_TOP,
                format!("{:.1}", k as f32 / 10.0),
                font.clone(),
                ui.visuals().weak_text_color(),
            );
        }
        if let Some(pos) = resp.interact_pointer_pos().filter(|_| resp.clicked()) {
            let k = (((pos.x - plot.left()) / bw) as usize).min(9);
            self.list.filter.iou_min = k as f32 / 10.0;
            self.list.filter.iou_max = if k == 9 { 1.0 } else { (k as f32 + 1.0) / 10.0 };
            self.mode = Mode::Images;
        }
        ui.label(
            RichText::new("Click a task to filter the list; click a bar to list that IoU range.")
                .weak(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(iou: f64, parse_failure: bool, wrong_image: bool) -> Option<ItemScore> {
        Some(ItemScore {
            iou,
            parse_failure,
            wrong_image,
            missing: false,
        })
    }

    const NO: ItemFlags = ItemFlags {
        disagree: false,
        gt_suspect: false,
        duplicate: false,
        mismatch: false,
    };
    const DISAGREE: ItemFlags = ItemFlags {
        disagree: true,
        ..NO
    };

    #[test]
    fn filters_combine() {
        let f = Filter::default();
        assert!(f.passes("a", Decision::Unreviewed, None, NO));
        let f = Filter {
            task: Some("a".into()),
            iou_min: 0.3,
            iou_max: 0.5,
            ..Default::default()
        };
        assert!(f.passes(
            "a",
            Decision::Accepted,
            score(0.5, false, false).as_ref(),
            NO
        ));
        assert!(!f.passes(
            "b",
            Decision::Accepted,
            score(0.4, false, false).as_ref(),
            NO
        ));
        assert!(!f.passes(
            "a",
            Decision::Accepted,
            score(0.51, false, false).as_ref(),
            NO
        ));
        assert!(
            !f.passes("a", Decision::Accepted, None, NO),
            "no score, range set"
        );
        let f = Filter {
            status: Some(Decision::Unreviewed),
            wrong_image: true,
            ..Default::default()
        };
        assert!(f.passes(
            "x",
            Decision::Unreviewed,
            score(0.0, false, true).as_ref(),
            NO
        ));
        assert!(!f.passes("x", Decision::Skipped, score(0.0, false, true).as_ref(), NO));
        assert!(!f.passes(
            "x",
            Decision::Unreviewed,
            score(0.9, false, false).as_ref(),
            NO
        ));
        let f = Filter {
            parse_failure: true,
            ..Default::default()
        };
        assert!(f.passes(
            "x",
            Decision::Unreviewed,
            score(0.0, true, false).as_ref(),
            NO
        ));
        assert!(!f.passes("x", Decision::Unreviewed, None, NO));
        let f = Filter {
            disagree: true,
            ..Default::default()
        };
        assert!(f.passes("x", Decision::Unreviewed, None, DISAGREE));
        assert!(!f.passes("x", Decision::Unreviewed, None, NO));
        let f = Filter {
            gt_suspect: true,
            ..Default::default()
        };
        let suspect = ItemFlags {
            gt_suspect: true,
            ..NO
        };
        assert!(f.passes("x", Decision::Unreviewed, None, suspect));
        assert!(!f.passes("x", Decision::Unreviewed, None, NO));
        let f = Filter {
            missing: true,
            ..Default::default()
        };
        let missing = ItemScore {
            missing: true,
            ..Default::default()
        };
        assert!(f.passes("x", Decision::Unreviewed, Some(&missing), NO));
        assert!(!f.passes(
            "x",
            Decision::Unreviewed,
            score(0.0, true, false).as_ref(),
            NO
        ));
    }

    #[test]
    fn histogram_bins_by_tenths() {
        let bins = histogram([0.0, 0.05, 0.1, 0.5, 0.99, 1.0].into_iter());
        assert_eq!(bins, [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]);
    }
}

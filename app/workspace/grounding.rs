//! Grounding workspace: items of several images plus an instruction, with boxes drawn on
//! the image they refer to.

use super::grounding_run::ModelRunner;
use super::{Shared, Workspace};
use crate::datasets::metrics::{self, ItemScore, Metrics};
use crate::datasets::mig_bench::{self, GroundingItem};
use crate::datasets::predictions::{self, ModelAnswer};
use crate::image_cache::{ImageSource, ImageState, Resolution};
use crate::routing::Content;
use crate::ui::{shortcuts, theme, widgets};
use crate::worker::JobHandle;
use egui::{RichText, Ui};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Loaded = (String, Vec<GroundingItem>, Vec<String>);

pub struct Grounding {
    source_name: String,
    items: Vec<GroundingItem>,
    selected: usize,
    loading: Option<JobHandle<Loaded>>,
    /// One model's answers, keyed by item index.
    predictions: BTreeMap<usize, ModelAnswer>,
    model_name: String,
    /// Apply the reference's Migician-only y post-scaling before scoring.
    y_correction: bool,
    loading_predictions: Option<JobHandle<(String, predictions::Parsed)>>,
    /// The grounding model, run from the inspector.
    pub runner: ModelRunner,
}

impl Default for Grounding {
    fn default() -> Self {
        let resolve =
            |p: &str| crate::demo::image(p).unwrap_or_else(|| ImageSource::File(p.into()));
        let items = mig_bench::parse("demo", crate::demo::MIG_BENCH_JSON, &resolve)
            .map(|(items, _)| items)
            .unwrap_or_default();
        let (predictions, model, _) =
            predictions::parse_jsonl("demo", crate::demo::PREDICTIONS_JSONL);
        Self {
            source_name: "Demo (MIG-Bench format)".into(),
            items,
            selected: 0,
            loading: None,
            predictions,
            model_name: model.unwrap_or_else(|| "model".into()),
            y_correction: false,
            loading_predictions: None,
            runner: ModelRunner::default(),
        }
    }
}

impl Grounding {
    /// The score of item `i` against its ground truth, when it has both.
    pub fn score(&self, i: usize) -> Option<ItemScore> {
        let item = self.items.get(i)?;
        let gt = item.gt?;
        let pred = self
            .predictions
            .get(&i)
            .map(|a| a.prediction.clone())
            .unwrap_or_default();
        Some(metrics::score_item(
            &gt,
            item.target,
            &pred,
            self.y_correction,
        ))
    }

    /// Per-task and overall metrics over the items that have ground truth.
    pub fn metrics(&self) -> (BTreeMap<String, Metrics>, Metrics) {
        metrics::aggregate(
            (0..self.items.len())
                .filter_map(|i| Some((self.items[i].task.as_str(), self.score(i)?))),
        )
    }

    pub fn items(&self) -> &[GroundingItem] {
        &self.items
    }

    pub fn selected(&self) -> usize {
        self.selected
    }

    fn select(&mut self, delta: isize) {
        if !self.items.is_empty() {
            self.selected = self
                .selected
                .saturating_add_signed(delta)
                .min(self.items.len() - 1);
        }
    }

    /// Images opened on their own become one ad-hoc item the user can prompt against.
    fn add_loose_image(&mut self, path: &Path) {
        let name = path.display().to_string();
        let loose = self.items.last_mut().filter(|it| it.task == "images");
        match loose {
            Some(item) if item.images.len() < 6 => {
                item.images.push(ImageSource::File(path.to_path_buf()));
                item.image_names.push(name);
            }
            _ => {
                self.items.push(GroundingItem {
                    task: "images".into(),
                    images: vec![ImageSource::File(path.to_path_buf())],
                    image_names: vec![name],
                    question: String::new(),
                    gt: None,
                    target: None,
                });
            }
        }
        self.selected = self.items.len() - 1;
    }

    fn load_annotations(&mut self, path: PathBuf, shared: &mut Shared) {
        let name = format!(
            "Load {}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        self.loading = Some(shared.worker.spawn(&name, move |ctx| {
            ctx.progress(0.0, "reading");
            let text = std::fs::read_to_string(&path)
                .map_err(|e| crate::worker::JobError::Failed(format!("{}: {e}", path.display())))?;
            ctx.check_cancelled()?;
            ctx.progress(0.5, "parsing");
            let file = path.display().to_string();
            let (items, errors) =
                mig_bench::parse(&file, &text, &|p| mig_bench::resolve_on_disk(&path, p))
                    .map_err(|e| crate::worker::JobError::Failed(e.to_string()))?;
            Ok((
                file,
                items,
                errors.iter().map(ToString::to_string).collect(),
            ))
        }));
    }

    /// A benchmark folder loads its annotation file; a plain folder of images becomes
    /// items of up to six images each. Listing happens on the worker (network drives).
    fn load_folder(&mut self, dir: PathBuf, shared: &mut Shared) {
        let name = format!("Open {}", dir.display());
        self.loading = Some(shared.worker.spawn(&name, move |ctx| {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| crate::worker::JobError::Failed(format!("{}: {e}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            if let Some(json) = entries
                .iter()
                .find(|p| p.extension().is_some_and(|e| e == "json"))
            {
                let text = std::fs::read_to_string(json).map_err(|e| {
                    crate::worker::JobError::Failed(format!("{}: {e}", json.display()))
                })?;
                let file = json.display().to_string();
                let (items, errors) =
                    mig_bench::parse(&file, &text, &|p| mig_bench::resolve_on_disk(json, p))
                        .map_err(|e| crate::worker::JobError::Failed(e.to_string()))?;
                return Ok((
                    file,
                    items,
                    errors.iter().map(ToString::to_string).collect(),
                ));
            }
            let mut images = Vec::new();
            for (i, p) in entries.iter().enumerate() {
                ctx.check_cancelled()?;
                ctx.progress(i as f32 / entries.len() as f32, "scanning");
                if crate::routing::classify(p) == Ok(Content::Image) {
                    images.push(p.clone());
                }
            }
            let items = images
                .chunks(6)
                .map(|chunk| GroundingItem {
                    task: "images".into(),
                    images: chunk.iter().map(|p| ImageSource::File(p.clone())).collect(),
                    image_names: chunk.iter().map(|p| p.display().to_string()).collect(),
                    question: String::new(),
                    gt: None,
                    target: None,
                })
                .collect();
            Ok((dir.display().to_string(), items, Vec::new()))
        }));
    }

    fn image_grid(&self, ui: &mut Ui, item: &GroundingItem, shared: &mut Shared) {
        let n = item.images.len().max(1);
        let cols = match n {
            1 => 1,
            2 | 4 => 2,
            _ => 3,
        };
        let rows = n.div_ceil(cols);
        let avail = ui.available_rect_before_wrap();
        let gap = 8.0;
        let cell = egui::vec2(
            (avail.width() - gap * (cols - 1) as f32) / cols as f32,
            (avail.height() - gap * (rows - 1) as f32) / rows as f32,
        );
        for (i, source) in item.images.iter().enumerate() {
            let (r, c) = (i / cols, i % cols);
            let min = avail.min + egui::vec2(c as f32 * (cell.x + gap), r as f32 * (cell.y + gap));
            let rect = egui::Rect::from_min_size(min, cell).shrink2(egui::vec2(0.0, 12.0));
            let is_target = item.target == Some(i);
            let mut label_at = rect.left_top();
            match shared.images.get(source, Resolution::Full) {
                ImageState::Ready(img) => {
                    let fitted = widgets::fit_rect(rect, img.texture_size());
                    label_at = fitted.left_top();
                    ui.painter().image(
                        img.texture.id(),
                        fitted,
                        egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                        egui::Color32::WHITE,
                    );
                    if let (true, Some(gt)) = (is_target, item.gt) {
                        let to = |x: f32, y: f32| {
                            fitted.min + egui::vec2(x * fitted.width(), y * fitted.height())
                        };
                        let b = egui::Rect::from_min_max(to(gt.x1, gt.y1), to(gt.x2, gt.y2));
                        widgets::draw_box(ui, b, theme::GT, "GT", widgets::Tag::Above);
                    }
                    // The model's box goes on the image its answer names (the target
                    // when it names none), so wrong-image answers are visible.
                    let pred = self.predictions.get(&self.selected).map(|a| &a.prediction);
                    if let Some(pb) = pred
                        .filter(|p| p.image.or(item.target) == Some(i))
                        .and_then(|p| p.bbox)
                    {
                        let pb = if self.y_correction {
                            metrics::migician_y_correction(pb)
                        } else {
                            pb
                        };
                        let to = |x: f32, y: f32| {
                            fitted.min + egui::vec2(x * fitted.width(), y * fitted.height())
                        };
                        let b = egui::Rect::from_min_max(to(pb.x1, pb.y1), to(pb.x2, pb.y2));
                        widgets::draw_box(
                            ui,
                            b,
                            theme::PALETTE[0],
                            &self.model_name,
                            widgets::Tag::Below,
                        );
                    }
                    // Boxes of a live (possibly still streaming) answer.
                    if let Some(live) = self.runner.answers.get(&self.selected) {
                        for gb in live.parsed.boxes.iter().filter(|b| b.image == i) {
                            let to = |x: f32, y: f32| {
                                fitted.min + egui::vec2(x * fitted.width(), y * fitted.height())
                            };
                            let b = egui::Rect::from_min_max(
                                to(gb.bbox.x1, gb.bbox.y1),
                                to(gb.bbox.x2, gb.bbox.y2),
                            );
                            let tag = gb.label.as_deref().unwrap_or("live");
                            widgets::draw_box(ui, b, theme::PALETTE[1], tag, widgets::Tag::Below);
                        }
                    }
                }
                ImageState::Loading => widgets::placeholder(ui, rect, "loading…", false),
                ImageState::Failed(msg) => {
                    widgets::placeholder(ui, rect, &format!("⚠ {msg}"), true)
                }
            }
            // The caption sits on the image's own top edge, wherever letterboxing put it.
            let caption = format!(
                "Image {}{}",
                i + 1,
                if is_target { "  ·  target" } else { "" }
            );
            ui.painter().text(
                label_at - egui::vec2(0.0, 11.0),
                egui::Align2::LEFT_CENTER,
                caption,
                egui::TextStyle::Small.resolve(ui.style()),
                if is_target {
                    theme::GT
                } else {
                    ui.visuals().weak_text_color()
                },
            );
        }
        ui.allocate_rect(avail, egui::Sense::hover());
    }
}

/// Show the question with the model's markup rendered as readable highlights.
fn question_label(ui: &mut Ui, question: &str) {
    let text = question
        .replace("<|object_ref_start|>", "«")
        .replace("<|object_ref_end|>", "»")
        .replace("<|box_start|>", "[box ")
        .replace("<|box_end|>", "]");
    ui.add(egui::Label::new(RichText::new(text).size(17.0)).wrap());
}

impl Workspace for Grounding {
    fn poll(&mut self, shared: &mut Shared) {
        let items = &self.items;
        self.runner
            .poll(shared, |i| items.get(i).map_or(0, |it| it.images.len()));
        if let Some(result) = self.loading_predictions.as_mut().and_then(|h| h.try_take()) {
            self.loading_predictions = None;
            match result {
                Ok((file, (answers, model, errors))) => {
                    shared
                        .toasts
                        .info(format!("{file}: {} answers", answers.len()));
                    for e in errors.iter().take(3) {
                        shared.toasts.error(e.to_string());
                    }
                    self.predictions = answers;
                    self.model_name = model.unwrap_or_else(|| {
                        Path::new(&file)
                            .file_stem()
                            .map_or("model".into(), |s| s.to_string_lossy().into_owned())
                    });
                }
                Err(crate::worker::JobError::Cancelled) => {}
                Err(e) => shared.toasts.error(e.to_string()),
            }
        }
        let Some(result) = self.loading.as_mut().and_then(|h| h.try_take()) else {
            return;
        };
        self.loading = None;
        match result {
            Ok((file, items, errors)) => {
                shared.toasts.info(format!("{file}: {} items", items.len()));
                for e in errors.iter().take(3) {
                    shared.toasts.error(e.clone());
                }
                if errors.len() > 3 {
                    shared
                        .toasts
                        .error(format!("{file}: {} more bad items", errors.len() - 3));
                }
                self.source_name = file;
                self.items = items;
                self.selected = 0;
                // Answers belong to the benchmark they were made for.
                self.predictions.clear();
            }
            Err(crate::worker::JobError::Cancelled) => {}
            Err(e) => shared.toasts.error(e.to_string()),
        }
    }

    fn items_panel(&mut self, ui: &mut Ui, _shared: &mut Shared) {
        ui.heading("Items");
        ui.label(RichText::new(&self.source_name).weak());
        if !self.predictions.is_empty() {
            let (_, all) = self.metrics();
            ui.label(
                RichText::new(format!(
                    "{}: Acc@0.5 {:.1} %  ·  mIoU {:.3}",
                    self.model_name,
                    all.acc_05 * 100.0,
                    all.mean_iou
                ))
                .strong(),
            );
            ui.checkbox(
                &mut self.y_correction,
                "Migician y-correction (reference eval)",
            );
        }
        ui.separator();
        let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
        let mut clicked = None;
        egui::ScrollArea::vertical().auto_shrink(false).show_rows(
            ui,
            row_height,
            self.items.len(),
            |ui, range| {
                for i in range {
                    let item = &self.items[i];
                    let iou = self
                        .score(i)
                        .filter(|_| self.predictions.contains_key(&i))
                        .map(|s| format!("  ·  IoU {:.2}", s.iou))
                        .unwrap_or_default();
                    let label = format!(
                        "{:>3}  {}  ·  {} images{iou}",
                        i + 1,
                        item.task,
                        item.images.len()
                    );
                    if ui.selectable_label(i == self.selected, label).clicked() {
                        clicked = Some(i);
                    }
                }
            },
        );
        if let Some(i) = clicked {
            self.selected = i;
        }
    }

    fn central(&mut self, ui: &mut Ui, shared: &mut Shared) {
        let Some(item) = self.items.get(self.selected).cloned() else {
            ui.centered_and_justified(|ui| {
                ui.label("Open a MIG-Bench folder, a predictions file or images (Ctrl+O, or drop them here).");
            });
            return;
        };
        if !item.question.is_empty() {
            question_label(ui, &item.question);
            ui.add_space(6.0);
        }
        self.image_grid(ui, &item, shared);
    }

    fn inspector(&mut self, ui: &mut Ui, shared: &mut Shared) {
        ui.heading("Item");
        let Some(item) = self.items.get(self.selected) else {
            ui.label("Nothing selected");
            return;
        };
        egui::Grid::new("grounding_item")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                ui.label("Task");
                ui.label(&item.task);
                ui.end_row();
                ui.label("Target image");
                match item.target {
                    Some(t) => ui.label(format!("{}", t + 1)),
                    None => ui.colored_label(theme::ERROR, "ambiguous"),
                };
                ui.end_row();
                if let Some(gt) = item.gt {
                    ui.label("GT (normalised)");
                    ui.monospace(format!(
                        "{:.3} {:.3} {:.3} {:.3}",
                        gt.x1, gt.y1, gt.x2, gt.y2
                    ));
                    ui.end_row();
                    if let Some(ImageState::Ready(img)) = item
                        .target
                        .map(|t| shared.images.get(&item.images[t], Resolution::Full))
                    {
                        let [w, h] = img.original_size;
                        let p = gt.to_pixels(w, h);
                        ui.label("GT (pixels)");
                        ui.monospace(format!("{:.0} {:.0} {:.0} {:.0}", p[0], p[1], p[2], p[3]));
                        ui.end_row();
                    }
                }
            });
        if let Some(answer) = self.predictions.get(&self.selected) {
            ui.separator();
            ui.label(
                RichText::new(&self.model_name)
                    .strong()
                    .color(theme::PALETTE[0]),
            );
            if let Some(score) = self.score(self.selected) {
                egui::Grid::new("grounding_score")
                    .num_columns(2)
                    .show(ui, |ui| {
                        ui.label("IoU");
                        ui.monospace(format!("{:.3}", score.iou));
                        ui.end_row();
                        if score.parse_failure {
                            ui.label("answer");
                            ui.colored_label(theme::ERROR, "no box found");
                            ui.end_row();
                        }
                        if score.wrong_image {
                            ui.label("image");
                            ui.colored_label(theme::ERROR, "box on the wrong image");
                            ui.end_row();
                        }
                    });
            }
            ui.add(egui::Label::new(RichText::new(&answer.answer).monospace()).wrap());
        }
        ui.separator();
        ui.label(RichText::new("Images").strong());
        for (i, name) in item.image_names.iter().enumerate() {
            ui.label(format!("{}. {name}", i + 1));
        }
        ui.separator();
        let (question, images) = (item.question.clone(), item.images.clone());
        self.runner
            .panel(ui, shared, self.selected, &question, &images);
    }

    fn handle_keys(&mut self, ctx: &egui::Context) {
        if shortcuts::pressed(ctx, &shortcuts::NEXT_ITEM)
            || shortcuts::pressed(ctx, &shortcuts::NEXT_ITEM_ALT)
        {
            self.select(1);
        }
        if shortcuts::pressed(ctx, &shortcuts::PREV_ITEM)
            || shortcuts::pressed(ctx, &shortcuts::PREV_ITEM_ALT)
        {
            self.select(-1);
        }
    }

    fn bindings(&self) -> &'static [&'static shortcuts::Binding] {
        shortcuts::GROUNDING
    }

    fn open(&mut self, path: &Path, content: Content, shared: &mut Shared) {
        match content {
            Content::Image => self.add_loose_image(path),
            Content::Annotations if path.extension().is_some_and(|e| e == "jsonl") => {
                let path = path.to_path_buf();
                let name = format!("Load {}", path.display());
                self.loading_predictions = Some(shared.worker.spawn(&name, move |_| {
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        crate::worker::JobError::Failed(format!("{}: {e}", path.display()))
                    })?;
                    let file = path.display().to_string();
                    let parsed = predictions::parse_jsonl(&file, &text);
                    Ok((file, parsed))
                }));
            }
            Content::Annotations => self.load_annotations(path.to_path_buf(), shared),
            Content::ImageFolder => self.load_folder(path.to_path_buf(), shared),
            other => shared.toasts.error(format!(
                "{}: {other:?} is not for the Grounding workspace",
                path.display()
            )),
        }
    }

    fn is_busy(&self) -> bool {
        self.loading.is_some() || self.loading_predictions.is_some() || self.runner.is_busy()
    }
}

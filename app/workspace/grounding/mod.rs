//! Grounding workspace: items of several images plus an instruction, with boxes drawn on
//! the image they refer to, and the review of a model's answers: decisions, corrected
//! boxes and notes, autosaved to a sidecar next to the data, and exported for training.

mod incoming;
mod list;
mod review;
mod view;

pub use list::{Filter, Sort};

use super::grounding_run::ModelRunner;
use super::{Shared, Workspace};
use crate::datasets::metrics::{self, ItemScore, Metrics};
use crate::datasets::mig_bench::{self, GroundingItem};
use crate::datasets::predictions::{self, ModelAnswer};
use crate::datasets::review::{Fingerprint, ReviewState, SidecarLoad};
use crate::datasets::review_autosave::Autosaver;
use crate::image_cache::{ImageSource, ImageState, Resolution};
use crate::routing::Content;
use crate::ui::{shortcuts, theme};
use crate::worker::JobHandle;
use egui::{RichText, Ui};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Models compared at once besides the scored one (each needs its own colour).
const MAX_COMPARED: usize = 3;

/// The colour of compared model `k` (the scored one is `PALETTE[0]`, live answers
/// `PALETTE[1]`, reference boxes `PALETTE[2]`).
fn compared_colour(k: usize) -> egui::Color32 {
    theme::PALETTE[3 + k % MAX_COMPARED]
}

/// A loaded data set, with the review saved next to it (when it has a file).
struct Loaded {
    file: String,
    items: Vec<GroundingItem>,
    errors: Vec<String>,
    review: Option<ReviewOpen>,
    /// Folder and file stem for exports.
    export_to: Option<(PathBuf, String)>,
}

struct ReviewOpen {
    sidecar: PathBuf,
    fingerprint: Fingerprint,
    load: SidecarLoad,
}

/// What the central view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Images,
    Metrics,
}

/// The name the answers of a run from the UI are scored under.
pub const LIVE_MODEL: &str = "this session's model";

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
    loading_predictions: Vec<JobHandle<predictions::RawFile>>,
    /// The scored model's files as read, kept to attach them again when they arrived
    /// with or before their benchmark (see `incoming`).
    model_files: Vec<predictions::RawFile>,
    /// Files that arrived while a benchmark was loading: they attach once it lands.
    pending: Vec<predictions::RawFile>,
    /// How the scored model's answers fit the items.
    report: Option<predictions::Report>,
    /// The items came from a file (not the demo or loose images).
    from_file: bool,
    /// The grounding model, run from the inspector.
    pub runner: ModelRunner,
    /// Bumped when items, predictions or the y-correction change (scores go stale).
    data_gen: u64,
    review: ReviewState,
    /// Where the review autosaves, and the data it belongs to.
    sidecar: Option<(PathBuf, Fingerprint)>,
    autosaver: Option<Autosaver>,
    /// The review version last handed to the autosaver.
    queued_version: u64,
    last_queued: Option<std::time::Instant>,
    export_to: Option<(PathBuf, String)>,
    exporting: Option<JobHandle<crate::datasets::export::Written>>,
    /// The files of the last finished export.
    pub last_export: Vec<PathBuf>,
    /// Go to the next item after accept / reject / skip.
    pub advance: bool,
    list: list::ListState,
    view: view::ViewState,
    pub mode: Mode,
    /// The note being typed, for the item it belongs to.
    note: (usize, String),
    /// Other models' answers to compare with (drawn in their own colours), newest last.
    others: Vec<(String, BTreeMap<usize, ModelAnswer>)>,
    /// Ctrl+E was pressed (keys have no access to the worker; the next frame exports).
    export_requested: bool,
}

impl Default for Grounding {
    fn default() -> Self {
        let resolve =
            |p: &str| crate::demo::image(p).unwrap_or_else(|| ImageSource::File(p.into()));
        let items = mig_bench::parse("demo", crate::demo::MIG_BENCH_JSON, &resolve)
            .map(|(items, _)| items)
            .unwrap_or_default();
        let raw = predictions::read("demo", crate::demo::PREDICTIONS_JSONL);
        let (predictions, _) = predictions::attach(std::slice::from_ref(&raw), &items);
        let model = raw.model;
        Self {
            source_name: "Demo (MIG-Bench format)".into(),
            items,
            selected: 0,
            loading: None,
            predictions,
            model_name: model.unwrap_or_else(|| "model".into()),
            y_correction: false,
            loading_predictions: Vec::new(),
            model_files: Vec::new(),
            pending: Vec::new(),
            report: None,
            from_file: false,
            runner: ModelRunner::default(),
            data_gen: 0,
            review: ReviewState::default(),
            sidecar: None,
            autosaver: None,
            queued_version: 0,
            last_queued: None,
            export_to: None,
            exporting: None,
            last_export: Vec::new(),
            advance: true,
            list: list::ListState::default(),
            view: view::ViewState::default(),
            mode: Mode::Images,
            note: (usize::MAX, String::new()),
            export_requested: false,
            others: Vec::new(),
        }
    }
}

impl Grounding {
    /// The score of item `i` against its ground truth, when it has ground truth (an
    /// item without an answer scores IoU 0 and counts as missing, as officially).
    pub fn score(&self, i: usize) -> Option<ItemScore> {
        let item = self.items.get(i)?;
        let gt = item.gt_exact?;
        Some(metrics::score_item(
            &gt,
            item.target,
            self.predictions.get(&i).map(|a| &a.prediction),
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

    pub fn review(&self) -> &ReviewState {
        &self.review
    }

    /// The sidecar the review autosaves to, if the data came from a file.
    pub fn sidecar_path(&self) -> Option<&Path> {
        self.sidecar.as_ref().map(|(p, _)| p.as_path())
    }

    /// Items in list order after filtering and sorting.
    pub fn visible(&self) -> &[usize] {
        &self.list.visible
    }

    pub fn filter(&self) -> &Filter {
        &self.list.filter
    }

    pub fn filter_mut(&mut self) -> &mut Filter {
        &mut self.list.filter
    }

    pub fn set_sort(&mut self, sort: Sort) {
        self.list.sort = sort;
    }

    pub fn set_selected(&mut self, i: usize) {
        if i < self.items.len() {
            self.selected = i;
        }
    }

    /// The newest predictions file becomes the scored model; the one it replaces stays
    /// for comparison (a file of the same model name replaces it instead).
    pub fn add_model(&mut self, name: String, answers: BTreeMap<usize, ModelAnswer>) {
        self.others.retain(|(n, _)| *n != name);
        let old_name = std::mem::replace(&mut self.model_name, name);
        let old = std::mem::replace(&mut self.predictions, answers);
        if old_name != self.model_name && !old.is_empty() {
            self.others.push((old_name, old));
            if self.others.len() > MAX_COMPARED {
                self.others.remove(0);
            }
        }
        self.data_gen += 1;
    }

    /// Make comparison model `k` the scored one.
    pub fn promote_model(&mut self, k: usize) {
        if k < self.others.len() {
            let (name, answers) = self.others.remove(k);
            let old_name = std::mem::replace(&mut self.model_name, name);
            let old = std::mem::replace(&mut self.predictions, answers);
            self.others.insert(k, (old_name, old));
            self.data_gen += 1;
        }
    }

    /// The scored model's name, then the compared ones.
    pub fn model_names(&self) -> Vec<&str> {
        std::iter::once(self.model_name.as_str())
            .chain(self.others.iter().map(|(n, _)| n.as_str()))
            .collect()
    }

    /// Do the models' first boxes disagree on item `i`: another image, one without a
    /// box, or IoU below 0.5 between any two?
    pub fn models_disagree(&self, i: usize) -> bool {
        if self.others.is_empty() {
            return false;
        }
        let target = self.items.get(i).and_then(|it| it.target);
        let placed = |m: &BTreeMap<usize, ModelAnswer>| {
            m.get(&i).and_then(|a| {
                a.prediction
                    .bbox
                    .map(|b| (a.prediction.image.or(target), b))
            })
        };
        let all: Vec<_> = std::iter::once(placed(&self.predictions))
            .chain(self.others.iter().map(|(_, m)| placed(m)))
            .collect();
        all.iter().enumerate().any(|(k, a)| {
            all[k + 1..].iter().any(|b| match (a, b) {
                (Some((ia, ba)), Some((ib, bb))) => ia != ib || ba.iou(bb) < 0.5,
                (None, None) => false,
                _ => true,
            })
        })
    }

    /// Replace the data (tests and benchmarks of big lists).
    pub fn set_items(&mut self, items: Vec<GroundingItem>, answers: BTreeMap<usize, ModelAnswer>) {
        self.items = items;
        self.predictions = answers;
        self.others.clear();
        self.selected = 0;
        self.data_gen += 1;
    }

    pub fn items(&self) -> &[GroundingItem] {
        &self.items
    }

    pub fn selected(&self) -> usize {
        self.selected
    }

    /// Move through the list as shown (filtered and sorted).
    fn select(&mut self, delta: isize) {
        let visible = &self.list.visible;
        if visible.is_empty() {
            return;
        }
        let pos = visible.iter().position(|&i| i == self.selected);
        let next = match pos {
            Some(p) => p.saturating_add_signed(delta).min(visible.len() - 1),
            None => 0,
        };
        self.selected = visible[next];
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
                    ..Default::default()
                });
            }
        }
        self.selected = self.items.len() - 1;
        self.data_gen += 1;
    }

    fn load_annotations(&mut self, path: PathBuf, shared: &mut Shared) {
        let name = format!(
            "Load {}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        self.loading = Some(shared.worker.spawn(&name, move |ctx| {
            ctx.progress(0.0, "reading");
            read_annotation(&path, ctx)
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
            if let Some(json) = entries.iter().find(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p.to_string_lossy().ends_with(".loupe-review.json")
                    && !p.to_string_lossy().ends_with(".coco.json")
            }) {
                return read_annotation(json, ctx);
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
                    ..Default::default()
                })
                .collect();
            Ok(Loaded {
                file: dir.display().to_string(),
                items,
                errors: Vec::new(),
                review: None,
                export_to: Some((dir.clone(), "loupe-review".into())),
            })
        }));
    }
}

/// Read a MIG-Bench file and the review saved beside it (on a job thread).
fn read_annotation(
    path: &Path,
    ctx: &crate::worker::JobContext,
) -> Result<Loaded, crate::worker::JobError> {
    let fail = |e: String| crate::worker::JobError::Failed(e);
    let bytes = std::fs::read(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    ctx.check_cancelled()?;
    ctx.progress(0.4, "parsing");
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| fail(format!("{}: not UTF-8: {e}", path.display())))?;
    let file = path.display().to_string();
    let resolve = |p: &str| mig_bench::resolve_on_disk(path, p);
    let (items, errors) = if path.extension().is_some_and(|e| e == "jsonl") {
        crate::datasets::generic_jsonl::parse(&file, text, &resolve)
    } else {
        mig_bench::parse(&file, text, &resolve).map_err(|e| fail(e.to_string()))?
    };
    ctx.progress(0.8, "reading the review");
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let fingerprint = Fingerprint::of_bytes(&name, &bytes, items.len());
    let sidecar = crate::datasets::review::sidecar_path(path);
    let load = crate::datasets::review::load_sidecar(&sidecar, &fingerprint);
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    Ok(Loaded {
        file,
        items,
        errors: errors.iter().map(ToString::to_string).collect(),
        review: Some(ReviewOpen {
            sidecar,
            fingerprint,
            load,
        }),
        export_to: Some((dir, format!("{stem}.review"))),
    })
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
        // Answers of a batch run become the scored model as they arrive: list and
        // metrics update live.
        let finished = self.runner.take_finished();
        if !finished.is_empty() {
            if self.model_name != LIVE_MODEL {
                self.add_model(LIVE_MODEL.to_owned(), BTreeMap::new());
            }
            for (item, text) in finished {
                self.predictions
                    .insert(item, predictions::model_answer(&text));
            }
            self.data_gen += 1;
        }
        if std::mem::take(&mut self.runner.batch_requested) {
            let jobs: Vec<_> = self
                .list
                .visible
                .iter()
                .filter_map(|&i| {
                    self.items.get(i).map(|it| {
                        (
                            i,
                            it.images.clone(),
                            self.runner.instruction_for(&self.source_name, i, it),
                        )
                    })
                })
                .collect();
            self.runner.run_batch(jobs, shared);
        }
        self.poll_predictions(shared);
        if let Some(result) = self.loading.as_mut().and_then(|h| h.try_take()) {
            self.loading = None;
            match result {
                Ok(loaded) => {
                    let file = &loaded.file;
                    shared
                        .toasts
                        .info(format!("{file}: {} items", loaded.items.len()));
                    for e in loaded.errors.iter().take(3) {
                        shared.toasts.error(e.clone());
                    }
                    if loaded.errors.len() > 3 {
                        shared.toasts.error(format!(
                            "{file}: {} more bad items",
                            loaded.errors.len() - 3
                        ));
                    }
                    self.source_name = loaded.file;
                    self.items = loaded.items;
                    self.selected = 0;
                    self.data_gen += 1;
                    // Answers belong to the benchmark they were made for; those that
                    // came with it (or before it, onto the demo) attach to it now.
                    self.benchmark_loaded(loaded.review.is_some(), shared);
                    self.export_to = loaded.export_to;
                    self.list.filter = Filter::default();
                    self.open_review(loaded.review, shared);
                }
                Err(crate::worker::JobError::Cancelled) => {}
                Err(e) => shared.toasts.error(e.to_string()),
            }
        }
        self.poll_review(shared);
        self.refresh_list();
    }

    fn items_panel(&mut self, ui: &mut Ui, _shared: &mut Shared) {
        self.refresh_list();
        self.list_panel(ui);
    }

    fn central(&mut self, ui: &mut Ui, shared: &mut Shared) {
        self.refresh_list();
        self.review_bar(ui, shared);
        match self.mode {
            Mode::Metrics => self.metrics_view(ui),
            Mode::Images => {
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
        }
        // Edits made this frame (keys, panels, drags) go to the autosaver now.
        self.autosave(false);
        if self.review.version() != self.queued_version {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn inspector(&mut self, ui: &mut Ui, shared: &mut Shared) {
        ui.heading("Item");
        if self.items.get(self.selected).is_none() {
            ui.label("Nothing selected");
            return;
        }
        self.review_inspector(ui, shared);
        let Some(item) = self.items.get(self.selected) else {
            return;
        };
        ui.separator();
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
                if let Some(problem) = &item.problem {
                    ui.label("Record");
                    ui.colored_label(theme::ERROR, problem);
                    ui.end_row();
                }
                if let Some(why) = &item.gt_suspect {
                    ui.label("Ground truth");
                    ui.colored_label(theme::ERROR, format!("suspect: {why}"));
                    ui.end_row();
                }
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
        if self.score(self.selected).is_some_and(|s| s.missing) && self.report.is_some() {
            ui.separator();
            ui.colored_label(
                theme::ERROR,
                format!("{}: no answer (scored IoU 0)", self.model_name),
            );
        }
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
        // The model's Run stays above the fold; the image paths go last.
        let (images, names) = (item.images.clone(), item.image_names.clone());
        let instruction = self
            .runner
            .instruction_for(&self.source_name, self.selected, item);
        self.runner.panel(
            ui,
            shared,
            (&self.source_name, self.selected),
            &instruction,
            &images,
        );
        ui.separator();
        ui.label(RichText::new("Images").strong());
        for (i, name) in names.iter().enumerate() {
            ui.label(format!("{}. {name}", i + 1));
        }
    }

    fn handle_keys(&mut self, ctx: &egui::Context) {
        self.review_keys(ctx);
    }

    fn bindings(&self) -> &'static [&'static shortcuts::Binding] {
        shortcuts::GROUNDING
    }

    fn open(&mut self, path: &Path, content: Content, shared: &mut Shared) {
        match content {
            Content::Image => self.add_loose_image(path),
            Content::Annotations
                if path.extension().is_some_and(|e| e == "jsonl")
                    || incoming::is_official_output(path) =>
            {
                self.open_predictions(path.to_path_buf(), shared);
            }
            Content::Annotations | Content::GroundingJsonl => {
                self.load_annotations(path.to_path_buf(), shared);
            }
            Content::ImageFolder => self.load_folder(path.to_path_buf(), shared),
            other => shared.toasts.error(format!(
                "{}: {other:?} is not for the Grounding workspace",
                path.display()
            )),
        }
    }

    fn is_busy(&self) -> bool {
        self.loading.is_some()
            || !self.loading_predictions.is_empty()
            || self.exporting.is_some()
            || self.runner.is_busy()
    }
}

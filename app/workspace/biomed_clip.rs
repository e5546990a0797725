//! Semantic search in the BioMed workspace. BMCA-CLIP (any OpenCLIP ViT; the tiny demo
//! model when no model is set) lives on its own inference thread. Every request first
//! makes sure the catalog's images are embedded (shard by shard, cached and resumable,
//! `biomedica::vectors`), then answers a text query, "more like this" or zero-shot
//! labelling from the vectors. Results come back as scores per item; the workspace
//! ranks its filtered items with them (and fuses them with caption search).

use super::Shared;
use crate::datasets::biomedica::catalog::{Catalog, ItemId};
use crate::datasets::biomedica::tar_index::Ext;
use crate::datasets::biomedica::vectors::{self, EmbedStats, VectorError, VectorTable};
use crate::datasets::biomedica::zero_shot::{self, Confusion, Prediction};
use crate::image_cache::ImageSource;
use crate::ui::theme;
use crate::worker::{InferenceThread, JobContext, JobError, JobHandle};
use egui::{RichText, Ui};
use loupe_models::clip::{Clip, ModelSource};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

/// Images per model call while embedding.
const EMBED_BATCH: usize = 16;

/// What the inference thread keeps between requests.
pub struct ClipState {
    clip: Clip,
    /// The model setting it was loaded from.
    source: String,
    /// Vectors of the catalog they were built for.
    table: Option<(Weak<Catalog>, Arc<VectorTable>)>,
}

/// A semantic query.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    Text(String),
    /// Images like this item's.
    Like(ItemId),
}

enum Request {
    Embed,
    Query(Query),
    ZeroShot {
        classes: Vec<String>,
        template: String,
        items: Vec<ItemId>,
    },
}

enum Reply {
    Embedded,
    Scores(Query, Vec<f32>),
    ZeroShot(Vec<String>, Vec<(ItemId, Prediction)>),
}

/// The current semantic ranking.
pub struct Semantic {
    pub query: Query,
    /// Cosine per item id (NaN without a vector).
    /// Shared with the filtering job (`biomed::ordered` runs on the worker for large catalogs).
    pub scores: Arc<[f32]>,
}

/// Zero-shot labels of the items that were shown when asked.
pub struct ZeroShot {
    pub classes: Vec<String>,
    pub labels: HashMap<ItemId, Prediction>,
    pub confusion: Confusion,
}

pub struct ClipSearch {
    /// OpenCLIP folder or hub id; empty for the embedded demo model.
    pub model: String,
    pub text: String,
    /// How many semantic results (0 = all embedded items).
    pub limit: usize,
    pub classes: String,
    pub template: String,
    pub semantic: Option<Semantic>,
    pub zero_shot: Option<ZeroShot>,
    pub show_confusion: bool,
    cache_dir: PathBuf,
    thread: Option<InferenceThread<ClipState>>,
    job: Option<(&'static str, JobHandle<(Reply, TableInfo)>)>,
    /// The model and vectors behind the last answer.
    pub info: Option<TableInfo>,
}

/// What the UI shows about the vectors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableInfo {
    pub model_id: String,
    pub dim: usize,
    pub vectors: usize,
    pub stats: EmbedStats,
    /// This request built the table (rather than reusing the one in memory).
    pub built_now: bool,
}

impl ClipSearch {
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            model: String::new(),
            text: String::new(),
            limit: 200,
            classes: crate::datasets::biomedica::taxonomy::TAXONOMY
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join("\n"),
            template: "a biomedical figure of {}".to_owned(),
            semantic: None,
            zero_shot: None,
            show_confusion: false,
            cache_dir,
            thread: None,
            job: None,
            info: None,
        }
    }

    /// Where vectors (under `biomedica/vectors`) and the demo model (under `models`) go.
    pub fn set_cache_dir(&mut self, dir: &std::path::Path) {
        self.cache_dir = dir.to_path_buf();
    }

    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// The catalog was replaced: its item ids mean something else now.
    pub fn reset_results(&mut self) {
        self.semantic = None;
        self.zero_shot = None;
        if let Some((_, job)) = self.job.take() {
            job.cancel();
        }
    }

    pub fn search_text(&mut self, catalog: &Arc<Catalog>, shared: &Shared) {
        let text = self.text.trim().to_owned();
        if !text.is_empty() {
            self.submit(Request::Query(Query::Text(text)), catalog, shared);
        }
    }

    pub fn more_like(&mut self, id: ItemId, catalog: &Arc<Catalog>, shared: &Shared) {
        self.submit(Request::Query(Query::Like(id)), catalog, shared);
    }

    pub fn embed(&mut self, catalog: &Arc<Catalog>, shared: &Shared) {
        self.submit(Request::Embed, catalog, shared);
    }

    pub fn label(&mut self, items: Vec<ItemId>, catalog: &Arc<Catalog>, shared: &Shared) {
        let classes = zero_shot::parse_classes(&self.classes);
        if classes.len() < 2 {
            return;
        }
        let template = self.template.clone();
        self.submit(
            Request::ZeroShot {
                classes,
                template,
                items,
            },
            catalog,
            shared,
        );
    }

    pub fn cancel(&mut self) {
        if let Some((_, job)) = &self.job {
            job.cancel();
        }
    }

    fn submit(&mut self, request: Request, catalog: &Arc<Catalog>, shared: &Shared) {
        if let Some((_, old)) = self.job.take() {
            old.cancel();
        }
        let thread = match &mut self.thread {
            Some(t) => t,
            None => {
                let board = shared.worker.board().clone();
                let repaint = shared.worker.repaint_hook().clone();
                match InferenceThread::spawn("clip-model", board, repaint) {
                    Ok(t) => self.thread.insert(t),
                    Err(e) => {
                        tracing::error!("cannot start the CLIP thread: {e}");
                        return;
                    }
                }
            }
        };
        let (name, title) = match &request {
            Request::Embed => ("embed", "Embed images with CLIP"),
            Request::Query(Query::Text(_)) => ("search", "Semantic search"),
            Request::Query(Query::Like(_)) => ("like", "More like this"),
            Request::ZeroShot { .. } => ("zero-shot", "Zero-shot labels"),
        };
        let model = self.model.trim().to_owned();
        let cache = self.cache_dir.clone();
        let catalog = Arc::clone(catalog);
        let job = thread.submit(title, move |state, ctx| {
            run(state, ctx, &model, &cache, &catalog, request)
        });
        self.job = Some((name, job));
    }

    /// Take a finished answer. Returns true when the ranking changed.
    pub fn poll(&mut self, catalog: &Catalog, shared: &mut Shared) -> bool {
        let Some((_, job)) = &mut self.job else {
            return false;
        };
        let Some(result) = job.try_take() else {
            return false;
        };
        self.job = None;
        match result {
            Ok((reply, info)) => {
                let stats = &info.stats;
                if info.built_now && (stats.embedded_now > 0 || stats.skipped > 0) {
                    shared.toasts.info(format!(
                        "CLIP: embedded {} images{}",
                        stats.embedded_now,
                        if stats.skipped > 0 {
                            format!(", {} without a readable image", stats.skipped)
                        } else {
                            String::new()
                        }
                    ));
                }
                self.info = Some(info);
                match reply {
                    Reply::Embedded => false,
                    Reply::Scores(query, scores) => {
                        self.semantic = Some(Semantic {
                            query,
                            scores: scores.into(),
                        });
                        true
                    }
                    Reply::ZeroShot(classes, predicted) => {
                        let confusion = zero_shot::confusion(catalog, &predicted, &classes);
                        self.zero_shot = Some(ZeroShot {
                            classes,
                            labels: predicted.into_iter().collect(),
                            confusion,
                        });
                        self.show_confusion = true;
                        false
                    }
                }
            }
            Err(JobError::Cancelled) => {
                shared
                    .toasts
                    .info("CLIP stopped; finished batches are kept and it resumes from there");
                false
            }
            Err(e) => {
                shared.toasts.error(format!("CLIP: {e}"));
                false
            }
        }
    }

    /// The score badge of an item in the grid.
    pub fn score(&self, id: ItemId) -> Option<f32> {
        let s = *self.semantic.as_ref()?.scores.get(id as usize)?;
        (!s.is_nan()).then_some(s)
    }

    pub fn predicted(&self, id: ItemId) -> Option<(&str, f32)> {
        let z = self.zero_shot.as_ref()?;
        let p = z.labels.get(&id)?;
        Some((z.classes.get(usize::from(p.class))?.as_str(), p.probability))
    }

    /// The panel section: model, query box, embedding state. Returns what the user asked.
    pub fn ui(&mut self, ui: &mut Ui) -> Action {
        let mut action = Action::None;
        let name = ui.label(RichText::new("Search by meaning (CLIP)").strong());
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut self.text)
                    .hint_text("e.g. H&E stained lymph node metastasis")
                    .desired_width(f32::INFINITY),
            )
            .labelled_by(name.id);
        let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.horizontal(|ui| {
            if (ui.button("Find").clicked() || entered) && !self.text.trim().is_empty() {
                action = Action::Search;
            }
            if self.semantic.is_some() && ui.button("✕ Clear").clicked() {
                action = Action::Clear;
            }
            let name = ui.label("top");
            ui.add(egui::DragValue::new(&mut self.limit).range(0..=1_000_000))
                .labelled_by(name.id)
                .on_hover_text("How many semantic results (0 = every embedded image)");
        });
        if let Some(sem) = &self.semantic {
            let what = match &sem.query {
                Query::Text(t) => format!("Ranked by similarity to “{t}”"),
                Query::Like(_) => "Ranked by similarity to the chosen image".to_owned(),
            };
            ui.label(RichText::new(what).small().color(theme::ACCENT));
        }
        if let Some((name, job)) = &self.job {
            // Truncated: a transient long line would widen the side panel for good (side
            // panels keep the widest content they have seen).
            ui.horizontal(|ui| {
                ui.spinner();
                if ui.small_button("Stop").clicked() {
                    job.cancel();
                }
                ui.add(
                    egui::Label::new(format!("CLIP: {name}… (progress in the status bar)"))
                        .truncate(),
                )
                .on_hover_text(*name);
            });
        }
        egui::CollapsingHeader::new("CLIP model and vectors")
            .id_salt("biomed_clip_model")
            .show(ui, |ui| {
                let name = ui.label("OpenCLIP folder or hub id");
                ui.add(
                    egui::TextEdit::singleline(&mut self.model)
                        .hint_text("empty: the tiny demo model")
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(name.id)
                .on_hover_text(
                    "A folder with open_clip_config.json + open_clip_model.safetensors, or a \
                     Hugging Face repo id such as BIOMEDICA/BMC_CLIP_CF (from the local hub cache)",
                );
                if self.model.trim().is_empty() {
                    ui.label(
                        RichText::new(
                            "The demo model has random weights: rankings are repeatable but \
                             mean nothing. Set BIOMEDICA/BMC_CLIP_CF for real search.",
                        )
                        .small()
                        .weak(),
                    );
                }
                match &self.info {
                    Some(info) => {
                        ui.label(format!(
                            "{} vectors of {} from {}",
                            info.vectors, info.dim, info.model_id
                        ));
                    }
                    None => {
                        ui.label(RichText::new("Not embedded yet").weak());
                    }
                }
                if ui
                    .button("Embed all images")
                    .on_hover_text(
                        "Shard by shard into the cache folder; Stop keeps finished batches",
                    )
                    .clicked()
                {
                    action = Action::Embed;
                }
            });
        egui::CollapsingHeader::new("Zero-shot labels")
            .id_salt("biomed_zero_shot")
            .show(ui, |ui| {
                let name = ui.label("Classes, one per line");
                ui.add(
                    egui::TextEdit::multiline(&mut self.classes)
                        .desired_rows(4)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(name.id);
                let name = ui.label("Prompt ({} is the class)");
                ui.add(egui::TextEdit::singleline(&mut self.template).desired_width(f32::INFINITY))
                    .labelled_by(name.id);
                ui.horizontal(|ui| {
                    let n = zero_shot::parse_classes(&self.classes).len();
                    if ui
                        .add_enabled(n >= 2, egui::Button::new("Label the shown items"))
                        .clicked()
                    {
                        action = Action::Label;
                    }
                    if self.zero_shot.is_some() && ui.button("Confusion matrix").clicked() {
                        self.show_confusion = true;
                    }
                });
            });
        action
    }

    /// The zero-shot confusion matrix window.
    pub fn confusion_window(&mut self, ctx: &egui::Context) {
        let Some(z) = &self.zero_shot else {
            return;
        };
        let c = &z.confusion;
        egui::Window::new("Zero-shot labels vs BIOMEDICA primary labels")
            .open(&mut self.show_confusion)
            .default_width(640.0)
            .show(ctx, |ui| {
                ui.label(format!(
                    "{} items labelled; the prediction is one of the item's own primary \
                     labels for {} ({:.1} %). Rows: BIOMEDICA labels (an item counts in each \
                     of its labels); columns: predicted class.",
                    c.total,
                    c.agree,
                    100.0 * c.agree as f64 / c.total.max(1) as f64
                ));
                let max = c.counts.iter().flatten().copied().max().unwrap_or(1).max(1);
                egui::ScrollArea::both().show(ui, |ui| {
                    egui::Grid::new("zero_shot_confusion")
                        .striped(true)
                        .show(ui, |ui| {
                            ui.label("");
                            for (k, col) in c.cols.iter().enumerate() {
                                ui.label(RichText::new(format!("{}", k + 1)).strong())
                                    .on_hover_text(col);
                            }
                            ui.end_row();
                            for (row, counts) in c.rows.iter().zip(&c.counts) {
                                ui.label(row);
                                for (k, &n) in counts.iter().enumerate() {
                                    let t = n as f32 / max as f32;
                                    let text = RichText::new(if n > 0 {
                                        n.to_string()
                                    } else {
                                        "·".to_owned()
                                    })
                                    .monospace()
                                    .background_color(theme::ACCENT.gamma_multiply(0.7 * t));
                                    ui.label(text).on_hover_text(format!(
                                        "{row} predicted as {}: {n}",
                                        c.cols[k]
                                    ));
                                }
                                ui.end_row();
                            }
                        });
                    ui.separator();
                    for (k, col) in c.cols.iter().enumerate() {
                        ui.label(RichText::new(format!("{}  {col}", k + 1)).small());
                    }
                });
            });
    }
}

/// What the panel asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Search,
    Clear,
    Embed,
    Label,
}

fn run(
    state: &mut Option<ClipState>,
    ctx: &JobContext,
    model: &str,
    cache: &std::path::Path,
    catalog: &Arc<Catalog>,
    request: Request,
) -> Result<(Reply, TableInfo), JobError> {
    let source = if model.is_empty() {
        crate::demo::materialize_clip_demo(&cache.join("models"))
            .map_err(JobError::failed)?
            .display()
            .to_string()
    } else {
        model.to_owned()
    };
    if state.as_ref().is_none_or(|s| s.source != source) {
        *state = None;
        ctx.progress(0.0, format!("Loading {source}"));
        let progress = |done: u64, total: u64| {
            ctx.progress(
                done as f32 / total.max(1) as f32,
                format!("Loading CLIP: {} of {} MB", done >> 20, total >> 20),
            );
        };
        let cancelled = || ctx.is_cancelled();
        let downloading = |file: &str, done: u64, total: u64| {
            ctx.progress(
                done as f32 / total.max(1) as f32,
                format!("Downloading {file}: {} of {} MB", done >> 20, total >> 20),
            );
        };
        let fetch = loupe_models::qwen2vl::loader::Fetch {
            progress: &downloading,
            cancel: &cancelled,
        };
        let clip = Clip::load_with(
            &ModelSource::parse(&source),
            candle_core::DType::F32,
            &loupe_models::qwen2vl::loader::default_device(),
            &fetch,
            &progress,
        )
        .map_err(|e| {
            if ctx.is_cancelled() {
                JobError::Cancelled
            } else {
                JobError::Failed(e.to_string())
            }
        })?;
        *state = Some(ClipState {
            clip,
            source: source.clone(),
            table: None,
        });
    }
    let Some(st) = state.as_mut() else {
        return Err(JobError::Failed("the model did not load".into()));
    };
    let fresh = st
        .table
        .as_ref()
        .filter(|(w, _)| w.upgrade().is_some_and(|c| Arc::ptr_eq(&c, catalog)))
        .map(|(_, t)| Arc::clone(t));
    let built_now = fresh.is_none();
    let table = match fresh {
        Some(t) => t,
        None => {
            let clip = &st.clip;
            let encode =
                |imgs: &[image::RgbImage]| clip.encode_images(imgs).map_err(|e| e.to_string());
            let progress = |f: f32, m: String| ctx.progress(f, format!("Embedding: {m}"));
            let cancelled = || ctx.is_cancelled();
            let table = vectors::embed_catalog(
                catalog,
                &cache.join("biomedica"),
                clip.model_id(),
                &source,
                clip.embed_dim(),
                EMBED_BATCH,
                &encode,
                &progress,
                &cancelled,
            )
            .map_err(|e| match e {
                VectorError::Cancelled => JobError::Cancelled,
                VectorError::Failed(m) => JobError::Failed(m),
            })?;
            let table = Arc::new(table);
            st.table = Some((Arc::downgrade(catalog), Arc::clone(&table)));
            table
        }
    };
    let info = TableInfo {
        model_id: table.model_id.clone(),
        dim: table.dim,
        vectors: table.len(),
        stats: table.stats.clone(),
        built_now,
    };
    let clip = &st.clip;
    let failed = |e: loupe_models::clip::Error| JobError::Failed(e.to_string());
    let reply = match request {
        Request::Embed => Reply::Embedded,
        Request::Query(query) => {
            let vector = match &query {
                Query::Text(t) => clip.encode_texts(&[t.as_str()]).map_err(failed)?.remove(0),
                Query::Like(id) => match table.vector(*id) {
                    Some(v) => v,
                    // Not embedded (no readable image in the file, or added since):
                    // embed it now.
                    None => {
                        let (path, offset, len) =
                            catalog.member(*id, Ext::Jpg).ok_or_else(|| {
                                JobError::Failed(format!("{}: no image", catalog.key(*id)))
                            })?;
                        let img = ImageSource::Member { path, offset, len }
                            .decode()
                            .map_err(JobError::Failed)?
                            .to_rgb8();
                        clip.encode_images(&[img]).map_err(failed)?.remove(0)
                    }
                },
            };
            ctx.check_cancelled()?;
            Reply::Scores(query, table.scores(&vector))
        }
        Request::ZeroShot {
            classes,
            template,
            items,
        } => {
            let prompts: Vec<String> = classes
                .iter()
                .map(|c| zero_shot::prompt(&template, c))
                .collect();
            let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
            let class_vectors = clip.encode_texts(&refs).map_err(failed)?;
            let scale = clip.logit_scale();
            let predicted = items
                .iter()
                .filter_map(|&id| {
                    let v = table.vector(id)?;
                    Some((id, zero_shot::classify(&v, &class_vectors, scale)?))
                })
                .collect();
            Reply::ZeroShot(classes, predicted)
        }
    };
    Ok((reply, info))
}

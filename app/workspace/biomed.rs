//! BioMed workspace: BIOMEDICA shards indexed on the worker, browsed as a virtualised
//! thumbnail grid (only the rows on screen are laid out, so a million items cost what a
//! hundred do), filtered and searched over the in-memory catalog, with a detail
//! inspector that reads the selected sample's JSON lazily from its shard.

use super::biomed_clip::{self, ClipSearch};
use super::{Shared, Workspace};
use crate::datasets::biomedica::catalog::{ItemId, SearchIn};
use crate::datasets::biomedica::meta::{self, SampleMeta};
use crate::datasets::biomedica::tar_index::{Ext, flags};
use crate::datasets::biomedica::{self, Catalog, Filter, IndexStats, rank, sidecar, taxonomy};
use crate::image_cache::{ImageSource, ImageState, Resolution};
use crate::routing::Content;
use crate::ui::{shortcuts, theme, widgets};
use crate::worker::{JobError, JobHandle, Worker};
use egui::{RichText, Ui};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the open catalog came from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// The embedded demo shards, not yet on disk and indexed.
    DemoPending,
    Demo,
    Paths(Vec<PathBuf>),
}

type Loaded = (Catalog, IndexStats);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExportFormat {
    Shard,
    Jsonl,
    Csv,
}

/// The selected sample's lazily read metadata.
struct Detail {
    id: ItemId,
    meta: Result<SampleMeta, String>,
}

pub struct BioMed {
    catalog: Arc<Catalog>,
    stats: IndexStats,
    source: Source,
    loading: Option<JobHandle<Loaded>>,
    sidecar_dir: PathBuf,
    filter: Filter,
    /// Items passing the filter, in display order.
    visible: Vec<ItemId>,
    selected: Option<ItemId>,
    thumb_size: f32,
    /// Columns of the grid in the last frame (keyboard navigation moves by rows).
    cols: usize,
    rows_on_screen: usize,
    /// The grid's scroll offset in the last frame.
    grid_offset: f32,
    scroll_to_selected: bool,
    detail: Option<Detail>,
    detail_job: Option<(ItemId, JobHandle<SampleMeta>)>,
    zoom_open: bool,
    zoom_rect: egui::Rect,
    /// A running export (dialog + write); its message is toasted.
    export_job: Option<JobHandle<Option<String>>>,
    /// Semantic search, "more like this" and zero-shot labels.
    pub clip: ClipSearch,
    /// `M` was pressed: more like the selection (handled in `poll`, which has the worker).
    like_requested: bool,
    /// "Show the duplicates" was clicked (applied after the panel is drawn).
    group_requested: Option<u64>,
    /// The full image being decoded for the clipboard.
    copy_job: Option<JobHandle<egui::ColorImage>>,
    /// Filtering and ranking of a large catalog, off the UI thread; `true` when the
    /// selection should move to the first result once it is done.
    ordering: Option<(JobHandle<Vec<ItemId>>, bool)>,
    /// The shared worker, kept from the first `poll` so `refilter` can start jobs.
    worker: Option<Worker>,
    async_filter_from: usize,
}

/// From this many items on, filtering and ranking run on the worker: at 1M items a
/// caption search takes 15–30 ms and a hybrid (caption + CLIP) ranking more, which would
/// drop frames while the user types (figures in BENCHMARKS.md, `loupe bench grid`).
/// Smaller catalogs are filtered in place, with no frame of stale results.
const ASYNC_FILTER_FROM: usize = 100_000;

impl Default for BioMed {
    fn default() -> Self {
        Self {
            catalog: Arc::new(Catalog::default()),
            stats: IndexStats::default(),
            source: Source::DemoPending,
            loading: None,
            sidecar_dir: sidecar::default_dir(),
            filter: Filter::default(),
            visible: Vec::new(),
            selected: None,
            thumb_size: 150.0,
            cols: 1,
            rows_on_screen: 1,
            grid_offset: 0.0,
            scroll_to_selected: false,
            detail: None,
            detail_job: None,
            zoom_open: false,
            zoom_rect: egui::Rect::ZERO,
            export_job: None,
            clip: ClipSearch::new(
                sidecar::default_dir()
                    .parent()
                    .map_or_else(std::env::temp_dir, Path::to_path_buf),
            ),
            like_requested: false,
            group_requested: None,
            copy_job: None,
            ordering: None,
            worker: None,
            async_filter_from: ASYNC_FILTER_FROM,
        }
    }
}

impl BioMed {
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn visible_count(&self) -> usize {
        self.visible.len()
    }

    /// The visible items' keys in display order (for tests).
    pub fn visible_keys(&self) -> Vec<&str> {
        self.visible.iter().map(|&i| self.catalog.key(i)).collect()
    }

    pub fn selected_key(&self) -> Option<&str> {
        self.selected.map(|i| self.catalog.key(i))
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = filter;
        self.refilter();
    }

    pub fn set_query(&mut self, query: &str) {
        self.filter.query = query.to_owned();
        self.refilter();
    }

    /// The loaded metadata of the selection, once read.
    pub fn detail(&self) -> Option<&SampleMeta> {
        self.detail
            .as_ref()
            .filter(|d| Some(d.id) == self.selected)
            .and_then(|d| d.meta.as_ref().ok())
    }

    /// Run a semantic text query (as the panel's Find does).
    pub fn semantic_search(&mut self, text: &str, shared: &Shared) {
        self.clip.text = text.to_owned();
        self.clip.search_text(&self.catalog, shared);
    }

    /// "More like this" for the selection.
    pub fn more_like_selected(&mut self, shared: &Shared) {
        if let Some(id) = self.selected {
            self.clip.more_like(id, &self.catalog, shared);
        }
    }

    /// Zero-shot labels for the shown items.
    pub fn label_shown(&mut self, shared: &Shared) {
        self.clip.label(self.visible.clone(), &self.catalog, shared);
    }

    fn refilter(&mut self) {
        self.refilter_then(false);
    }

    /// Recompute the shown items; with `select_first` the selection then moves to the
    /// first of them (a new semantic ranking), otherwise it stays if still shown.
    fn refilter_then(&mut self, mut select_first: bool) {
        if let Some((old, wanted)) = self.ordering.take() {
            old.cancel();
            // A pending "select the first result" survives a newer filter change.
            select_first |= wanted;
        }
        let semantic = self.clip.semantic.as_ref().map(|s| s.scores.clone());
        match &self.worker {
            Some(worker) if self.catalog.len() >= self.async_filter_from => {
                let catalog = self.catalog.clone();
                let filter = self.filter.clone();
                let limit = self.clip.limit;
                let name = format!("Filter {} samples", catalog.len());
                let job = worker.spawn(&name, move |_| {
                    Ok(ordered(&catalog, &filter, semantic.as_deref(), limit))
                });
                self.ordering = Some((job, select_first));
            }
            _ => {
                let items = ordered(
                    &self.catalog,
                    &self.filter,
                    semantic.as_deref(),
                    self.clip.limit,
                );
                self.show_ordered(items, select_first);
            }
        }
    }

    fn show_ordered(&mut self, items: Vec<ItemId>, select_first: bool) {
        self.visible = items;
        if select_first || self.selected.is_none_or(|s| !self.visible.contains(&s)) {
            self.selected = self.visible.first().copied();
            self.scroll_to_selected = true;
        }
    }

    /// Filter on the worker from this many items on (tests force the job path with 0).
    pub fn set_async_filter_from(&mut self, items: usize) {
        self.async_filter_from = items;
    }

    /// True while a filter change is being applied on the worker.
    pub fn is_filtering(&self) -> bool {
        self.ordering.is_some()
    }

    /// Show an already built catalog (benchmarks): no indexing job, no demo.
    pub fn show_catalog(&mut self, catalog: Catalog) {
        self.source = Source::Paths(Vec::new());
        self.stats = IndexStats {
            samples: catalog.len(),
            shards: catalog.shards.len(),
            ..Default::default()
        };
        self.catalog = Arc::new(catalog);
        self.clip.reset_results();
        self.selected = None;
        // The old ids mean nothing in the new catalog (the order may come from a job).
        self.visible.clear();
        self.refilter();
    }

    fn start_indexing(&mut self, shared: &mut Shared) {
        let dir = self.sidecar_dir.clone();
        let (name, roots) = match &self.source {
            Source::DemoPending | Source::Demo => ("Index the BioMed demo shards".to_owned(), None),
            Source::Paths(p) => (
                match p.as_slice() {
                    [one] => format!("Index {}", one.display()),
                    many => format!("Index {} BIOMEDICA paths", many.len()),
                },
                Some(p.clone()),
            ),
        };
        if let Some(old) = self.loading.take() {
            old.cancel();
        }
        self.loading = Some(shared.worker.spawn(&name, move |ctx| {
            let roots = match roots {
                Some(r) => r,
                None => crate::demo::materialize_biomed_shards(&dir.join("demo"))
                    .map_err(JobError::failed)?,
            };
            let progress = |f: f32, m: String| ctx.progress(f, m);
            let cancelled = || ctx.is_cancelled();
            biomedica::build_catalog(&roots, &dir, &progress, &cancelled).map_err(|e| match e {
                biomedica::tar_index::IndexError::Cancelled => JobError::Cancelled,
                other => JobError::failed(other),
            })
        }));
    }

    fn install(&mut self, catalog: Catalog, stats: IndexStats, shared: &mut Shared) {
        let problems = catalog.reports().count();
        tracing::info!(
            "BIOMEDICA: {} samples in {} shards, {} indexed now, {problems} problems",
            stats.samples,
            stats.shards,
            stats.built
        );
        if matches!(self.source, Source::Paths(_)) {
            shared.toasts.info(format!(
                "BIOMEDICA: {} samples in {} shards{}",
                stats.samples,
                stats.shards,
                if problems > 0 {
                    format!("; {problems} problems, listed under Problems")
                } else {
                    String::new()
                }
            ));
        }
        for failed in &stats.failed {
            shared.toasts.error(failed.clone());
        }
        self.catalog = Arc::new(catalog);
        self.clip.reset_results();
        self.stats = stats;
        self.selected = None;
        self.visible.clear();
        self.detail = None;
        self.detail_job = None;
        self.refilter();
    }

    fn step_selection(&mut self, delta: isize) {
        if self.visible.is_empty() {
            return;
        }
        let pos = self
            .selected
            .and_then(|s| self.visible.iter().position(|&v| v == s))
            .unwrap_or(0);
        let next = pos.saturating_add_signed(delta).min(self.visible.len() - 1);
        self.selected = Some(self.visible[next]);
        self.scroll_to_selected = true;
    }

    /// Start reading the selection's JSON and caption from its shard, if not yet done.
    fn request_detail(&mut self, shared: &mut Shared) {
        let Some(id) = self.selected else {
            return;
        };
        if self.detail.as_ref().is_some_and(|d| d.id == id)
            || self.detail_job.as_ref().is_some_and(|(j, _)| *j == id)
        {
            return;
        }
        let json = self.catalog.member(id, Ext::Json);
        let txt = self.catalog.member(id, Ext::Txt);
        let key = self.catalog.key(id).to_owned();
        let job = shared.worker.spawn("Read sample metadata", move |_| {
            let caption = match txt {
                Some((path, off, len)) => String::from_utf8_lossy(
                    &biomedica::catalog::read_range(&path, off, len).map_err(JobError::failed)?,
                )
                .into_owned(),
                None => String::new(),
            };
            match json {
                Some((path, off, len)) => {
                    let bytes = biomedica::catalog::read_range(&path, off, len)
                        .map_err(JobError::failed)?;
                    SampleMeta::from_json(&key, &caption, &bytes)
                        .map_err(|e| JobError::Failed(format!("{key}.json: {e}")))
                }
                None => Ok(SampleMeta {
                    key,
                    caption,
                    ..Default::default()
                }),
            }
        });
        self.detail_job = Some((id, job));
    }

    /// Ask where to save (the native dialog blocks, so it runs in the job) and write
    /// the visible items there, streamed through a temporary file renamed at the end.
    fn export(&mut self, format: ExportFormat, shared: &mut Shared) {
        let catalog = Arc::clone(&self.catalog);
        let items = self.visible.clone();
        let (title, name) = match format {
            ExportFormat::Shard => ("Export selection as a shard", "selection.tar"),
            ExportFormat::Jsonl => ("Export selection as JSONL", "selection.jsonl"),
            ExportFormat::Csv => ("Export selection as CSV", "selection.csv"),
        };
        self.export_job = Some(shared.worker.spawn(title, move |ctx| {
            let Some(path) = rfd::FileDialog::new()
                .set_title(title)
                .set_file_name(name)
                .save_file()
            else {
                return Ok(None);
            };
            ctx.progress(0.0, format!("{} samples", items.len()));
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let write = || -> anyhow::Result<usize> {
                let tmp = tempfile::Builder::new()
                    .prefix(".loupe-export-")
                    .tempfile_in(&dir)?;
                let mut out = std::io::BufWriter::new(tmp);
                let n = match format {
                    ExportFormat::Shard => {
                        biomedica::export::write_shard(&catalog, &items, &mut out)?
                    }
                    ExportFormat::Jsonl => {
                        biomedica::export::write_manifest(&catalog, &items, &mut out)?
                    }
                    ExportFormat::Csv => biomedica::export::write_csv(&catalog, &items, &mut out)?,
                };
                let tmp = out.into_inner().map_err(|e| e.into_error())?;
                tmp.as_file().sync_all()?;
                tmp.persist(&path)?;
                Ok(n)
            };
            let n = write().map_err(|e| {
                JobError::failed(e.context(format!("cannot write {}", path.display())))
            })?;
            Ok(Some(format!("Exported {n} samples to {}", path.display())))
        }));
    }

    /// Decode the selection's full image on the worker; the inspector hands it to the
    /// clipboard when it is ready.
    fn copy_image(&mut self, id: ItemId, shared: &mut Shared) {
        let Some(source) = self.image_source(id) else {
            return;
        };
        self.copy_job = Some(shared.worker.spawn("Copy image", move |_| {
            let img = source.decode().map_err(JobError::Failed)?.to_rgba8();
            Ok(egui::ColorImage::from_rgba_unmultiplied(
                [img.width() as usize, img.height() as usize],
                img.as_raw(),
            ))
        }));
    }

    fn image_source(&self, id: ItemId) -> Option<ImageSource> {
        self.catalog
            .member(id, Ext::Jpg)
            .map(|(path, offset, len)| ImageSource::Member { path, offset, len })
    }

    fn filters_ui(&mut self, ui: &mut Ui) {
        let cat = Arc::clone(&self.catalog);
        let f = &mut self.filter;
        ui.label(RichText::new("Licence subset").strong());
        ui.horizontal_wrapped(|ui| {
            for name in cat.subsets.names().iter().filter(|n| !n.is_empty()) {
                toggle_in(ui, &mut f.subsets, name);
            }
        });
        ui.label(RichText::new("Article licence").strong());
        ui.horizontal_wrapped(|ui| {
            for name in cat.licenses.names().iter().filter(|n| !n.is_empty()) {
                toggle_in(ui, &mut f.licenses, name);
            }
        });
        let mut primary: Vec<&str> = taxonomy::TAXONOMY
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| cat.primary.labels.id(p).is_some())
            .collect();
        for n in cat.primary.labels.names() {
            if !primary.contains(&n.as_str()) {
                primary.push(n);
            }
        }
        choose(ui, "Primary label", &mut f.primary, &primary);
        let mut secondary: Vec<&str> = cat
            .secondary
            .labels
            .names()
            .iter()
            .map(String::as_str)
            .collect();
        secondary.sort_unstable();
        choose(ui, "Secondary label", &mut f.secondary, &secondary);
        let panels: Vec<&str> = cat
            .panel_types
            .names()
            .iter()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .collect();
        choose(ui, "Panel type", &mut f.panel_type, &panels);
        let mut journals: Vec<&str> = cat
            .journals
            .names()
            .iter()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .collect();
        journals.sort_unstable();
        choose(ui, "Journal", &mut f.journal, &journals);
        let (lo, hi) = cat.years();
        range(ui, "Year", &mut f.years, (lo, hi));
        let mut side = f
            .long_side
            .map(|(a, b)| (a.min(65_535) as u16, b.min(65_535) as u16));
        range(ui, "Longer side (px)", &mut side, (0, 4096));
        f.long_side = side.map(|(a, b)| (u32::from(a), u32::from(b)));
        ui.checkbox(&mut f.duplicates_only, "Duplicated images only");
        ui.checkbox(&mut f.problems_only, "Samples with problems only");
        if ui.button("Clear filters").clicked() {
            *f = Filter {
                query: std::mem::take(&mut f.query),
                ..Default::default()
            };
        }
    }

    fn tile(
        &self,
        ui: &mut Ui,
        id: ItemId,
        tile: egui::Vec2,
        thumb_px: u32,
        shared: &mut Shared,
    ) -> bool {
        let (rect, response) = widgets::tile(ui, tile);
        if !ui.is_rect_visible(rect) {
            return response.clicked();
        }
        let image_rect = egui::Rect::from_min_size(rect.min, egui::vec2(tile.x, tile.x));
        match self
            .image_source(id)
            .as_ref()
            .map(|s| shared.images.get(s, Resolution::Thumbnail(thumb_px)))
        {
            Some(ImageState::Ready(img)) => {
                let fitted = widgets::fit_rect(image_rect, img.texture_size());
                ui.painter().image(
                    img.texture.id(),
                    fitted,
                    egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                    egui::Color32::WHITE,
                );
            }
            Some(ImageState::Loading) => widgets::placeholder(ui, image_rect, "…", false),
            Some(ImageState::Failed(_)) => widgets::placeholder(ui, image_rect, "⚠ JPEG", true),
            None => widgets::placeholder(ui, image_rect, "no image", true),
        }
        let painter = ui.painter_at(rect);
        let small = egui::TextStyle::Small.resolve(ui.style());
        let label = self.catalog.caption_prefix(id);
        painter.text(
            rect.left_bottom() + egui::vec2(2.0, -4.0),
            egui::Align2::LEFT_BOTTOM,
            label,
            small.clone(),
            ui.visuals().weak_text_color(),
        );
        let dups = self.catalog.duplicate_count(id);
        if dups > 1 {
            badge(
                &painter,
                rect.right_top(),
                egui::Align2::RIGHT_TOP,
                &format!("×{dups}"),
                theme::ACCENT,
                &small,
            );
        }
        let score = self.clip.score(id);
        if let Some(score) = score {
            badge(
                &painter,
                image_rect.left_top(),
                egui::Align2::LEFT_TOP,
                &format!("{score:.3}"),
                theme::ACCENT,
                &small,
            );
        }
        if let Some((class, p)) = self.clip.predicted(id) {
            let short: String = class.chars().take(18).collect();
            badge(
                &painter,
                image_rect.left_bottom() + egui::vec2(2.0, -2.0),
                egui::Align2::LEFT_BOTTOM,
                &format!("{short} {:.0}%", p * 100.0),
                theme::PALETTE[0],
                &small,
            );
        }
        if self.catalog.has_problems(id) {
            badge(
                &painter,
                // Below the score badge when there is one.
                rect.left_top() + egui::vec2(0.0, if score.is_some() { 18.0 } else { 0.0 }),
                egui::Align2::LEFT_TOP,
                "⚠",
                theme::ERROR,
                &small,
            );
        }
        if self.selected == Some(id) {
            ui.painter().rect_stroke(
                rect.expand(2.0),
                4.0,
                egui::Stroke::new(2.5, theme::ACCENT),
                egui::StrokeKind::Outside,
            );
        }
        response.on_hover_text(self.catalog.key(id)).clicked()
    }

    fn detail_ui(&mut self, ui: &mut Ui, id: ItemId, shared: &mut Shared) {
        let cat = Arc::clone(&self.catalog);
        if let Some(source) = self.image_source(id) {
            match shared.images.get(&source, Resolution::Thumbnail(1024)) {
                ImageState::Ready(img) => {
                    let w = ui.available_width();
                    let size = img.texture_size();
                    let resp = ui
                        .add(
                            egui::Image::new((
                                img.texture.id(),
                                egui::vec2(w, w * size.y / size.x.max(1.0)),
                            ))
                            .alt_text("Figure (click to zoom)")
                            .sense(egui::Sense::click()),
                        )
                        .on_hover_text("Click to zoom and pan");
                    if resp.clicked() {
                        self.zoom_open = true;
                        self.zoom_rect = egui::Rect::ZERO;
                    }
                }
                ImageState::Loading => {
                    ui.spinner();
                }
                ImageState::Failed(err) => {
                    ui.colored_label(theme::ERROR, format!("The image does not decode: {err}"));
                }
            }
        } else {
            ui.colored_label(theme::ERROR, "This sample has no readable .jpg");
        }
        let detail = self.detail.as_ref().filter(|d| d.id == id);
        let caption = match detail.map(|d| &d.meta) {
            Some(Ok(m)) => m.caption.clone(),
            _ => cat.caption_prefix(id).to_owned() + "…",
        };
        ui.add(egui::Label::new(highlighted(ui, &caption, &self.filter.query)).wrap());
        let mut copy_image = false;
        // Wrapped: four buttons are wider than a narrow inspector, which must not grow.
        ui.horizontal_wrapped(|ui| {
            if ui.small_button("Copy caption").clicked() {
                ui.ctx().copy_text(caption.clone());
            }
            if ui.small_button("Copy key").clicked() {
                ui.ctx().copy_text(cat.key(id).to_owned());
            }
            if ui.small_button("Copy image").clicked() {
                copy_image = true;
            }
            if ui
                .small_button("More like this")
                .on_hover_text("Rank every image by CLIP similarity to this one (M)")
                .clicked()
            {
                self.like_requested = true;
            }
        });
        ui.horizontal_wrapped(|ui| {
            for l in cat.primary_labels(id) {
                ui.label(RichText::new(l).strong().color(theme::ACCENT));
            }
            for l in cat.secondary_labels(id) {
                ui.label(RichText::new(l).italics());
            }
        });
        ui.separator();
        let meta = detail.and_then(|d| d.meta.as_ref().ok());
        // One wrapped "field  value" line per row rather than a Grid: a grid sizes its
        // columns from the previous frame, so long keys would widen the panel.
        {
            {
                let row = |ui: &mut Ui, k: &str, v: &str| {
                    let mut job = egui::text::LayoutJob::default();
                    let body = egui::TextStyle::Body.resolve(ui.style());
                    job.append(
                        k,
                        0.0,
                        egui::TextFormat::simple(body.clone(), ui.visuals().weak_text_color()),
                    );
                    job.append(
                        v,
                        8.0,
                        egui::TextFormat::simple(body, ui.visuals().text_color()),
                    );
                    ui.add(egui::Label::new(job).wrap());
                };
                row(ui, "key", cat.key(id));
                row(ui, "subset", cat.subset(id));
                row(ui, "licence", cat.license(id));
                if let Some(m) = meta {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new("article").weak());
                        match m.pmc_url() {
                            Some(url) => {
                                ui.hyperlink_to(format!("{} ↗", m.fields.pmcid), url);
                            }
                            None => {
                                ui.label(&m.fields.pmcid);
                            }
                        }
                    });
                    if self.filter.search_in == SearchIn::Captions {
                        row(ui, "title", &m.fields.title);
                    } else {
                        ui.add(
                            egui::Label::new(highlighted(ui, &m.fields.title, &self.filter.query))
                                .wrap(),
                        );
                    }
                    row(ui, "journal", &m.fields.journal);
                    row(ui, "date", &format_date(&m.fields.date));
                    row(ui, "citation", &m.fields.citation);
                    row(
                        ui,
                        "panel",
                        &format!("{} / {}", m.fields.panel_type, m.fields.panel_subtype),
                    );
                    row(ui, "cluster", &m.fields.label_id);
                    if let (Some(w), Some(h)) = (m.fields.width, m.fields.height) {
                        row(ui, "source size", &format!("{w} × {h} px"));
                    }
                    row(ui, "image hash", &m.fields.image_hash);
                } else {
                    row(ui, "journal", cat.journal(id));
                }
                let dups = cat.duplicate_count(id);
                if dups > 1 {
                    row(
                        ui,
                        "duplicates",
                        &format!("{dups} samples share this image hash"),
                    );
                    if ui
                        .small_button(format!("Show the {dups} duplicates"))
                        .clicked()
                    {
                        self.group_requested = cat.item(id).map(|it| it.hash);
                    }
                }
                if let Some(it) = cat.item(id) {
                    let mut problems = Vec::new();
                    for (bit, what) in [
                        (flags::DAMAGED, "in a damaged part of the shard"),
                        (flags::INVALID_UTF8, "caption is not valid UTF-8"),
                        (flags::BAD_JPEG, "JPEG header unreadable"),
                        (flags::BAD_JSON, "JSON unreadable"),
                        (flags::MISSING_MEMBER, "a member is missing"),
                    ] {
                        if it.flags & bit != 0 {
                            problems.push(what);
                        }
                    }
                    if !problems.is_empty() {
                        ui.add(
                            egui::Label::new(
                                RichText::new(format!("problems: {}", problems.join("; ")))
                                    .color(theme::ERROR),
                            )
                            .wrap(),
                        );
                    }
                }
            }
        }
        match detail.map(|d| &d.meta) {
            Some(Ok(m)) => {
                let mentions = m.mentions();
                egui::CollapsingHeader::new(format!("In-text mentions ({})", mentions.len()))
                    .default_open(true)
                    .show(ui, |ui| {
                        for p in &mentions {
                            ui.add(egui::Label::new(highlighted(ui, p, &self.filter.query)).wrap());
                            ui.separator();
                        }
                    });
                let keywords = m.keywords();
                let mesh = m.mesh_terms();
                egui::CollapsingHeader::new("Keywords and MeSH terms").show(ui, |ui| {
                    ui.label(format!("keywords: {}", keywords.join(", ")));
                    ui.label(format!("MeSH: {}", mesh.join(", ")));
                });
                egui::CollapsingHeader::new("Raw JSON").show(ui, |ui| {
                    if let Value::Object(map) = &m.raw {
                        for (k, v) in map {
                            json_tree(ui, k, v, egui::Id::NULL.with(("biomed_json", id, k)));
                        }
                    } else {
                        ui.label("This sample has no .json member.");
                    }
                });
            }
            Some(Err(err)) => {
                ui.colored_label(theme::ERROR, err);
            }
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Reading metadata…");
                });
            }
        }
        if copy_image {
            self.copy_image(id, shared);
        }
    }

    fn zoom_window(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let Some(id) = self.selected else {
            return;
        };
        let Some(source) = self.image_source(id) else {
            return;
        };
        let mut open = self.zoom_open;
        egui::Window::new("Figure")
            .open(&mut open)
            .default_size([720.0, 560.0])
            .show(ctx, |ui| {
                ui.label(RichText::new("Scroll to zoom, drag to pan").weak());
                if let ImageState::Ready(img) = shared.images.get(&source, Resolution::Full) {
                    let size = img.texture_size();
                    egui::Scene::new().zoom_range(0.05..=16.0).show(
                        ui,
                        &mut self.zoom_rect,
                        |ui| {
                            ui.image((img.texture.id(), size));
                        },
                    );
                } else {
                    ui.spinner();
                }
            });
        self.zoom_open = open;
    }
}

fn badge(
    painter: &egui::Painter,
    at: egui::Pos2,
    align: egui::Align2,
    text: &str,
    color: egui::Color32,
    font: &egui::FontId,
) {
    let galley = painter.layout_no_wrap(text.to_owned(), font.clone(), egui::Color32::BLACK);
    let rect = align.anchor_size(at, galley.size() + egui::vec2(8.0, 4.0));
    painter.rect_filled(rect, 3.0, color);
    painter.galley(
        rect.min + egui::vec2(4.0, 2.0),
        galley,
        egui::Color32::BLACK,
    );
}

fn toggle_in(ui: &mut Ui, set: &mut Vec<String>, name: &str) {
    let mut on = set.iter().any(|s| s == name);
    if ui.toggle_value(&mut on, name).changed() {
        if on {
            set.push(name.to_owned());
        } else {
            set.retain(|s| s != name);
        }
    }
}

fn choose(ui: &mut Ui, label: &str, value: &mut Option<String>, options: &[&str]) {
    ui.horizontal(|ui| {
        let name = ui.label(label);
        egui::ComboBox::from_id_salt(label)
            .selected_text(value.as_deref().unwrap_or("any"))
            .width(150.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(value, None, "any");
                for o in options {
                    ui.selectable_value(value, Some((*o).to_owned()), *o);
                }
            })
            .response
            .labelled_by(name.id);
    });
}

fn range(ui: &mut Ui, label: &str, value: &mut Option<(u16, u16)>, bounds: (u16, u16)) {
    ui.horizontal(|ui| {
        let mut on = value.is_some();
        let name = ui.checkbox(&mut on, label).id;
        match (on, value.as_mut()) {
            (true, Some((lo, hi))) => {
                ui.add(egui::DragValue::new(lo).range(0..=*hi))
                    .labelled_by(name);
                ui.label("–");
                ui.add(egui::DragValue::new(hi).range(*lo..=u16::MAX))
                    .labelled_by(name);
            }
            (true, None) => *value = Some(bounds),
            (false, _) => *value = None,
        }
    });
}

/// The caption with every word containing a query term highlighted (the same
/// matching rule as the search).
fn highlighted(ui: &Ui, text: &str, query: &str) -> egui::text::LayoutJob {
    let terms: Vec<String> = biomedica::search::tokens(query).collect();
    let normal = egui::TextFormat {
        font_id: egui::TextStyle::Body.resolve(ui.style()),
        color: ui.visuals().text_color(),
        ..Default::default()
    };
    let hit = egui::TextFormat {
        background: theme::ACCENT.gamma_multiply(0.45),
        ..normal.clone()
    };
    let mut job = egui::text::LayoutJob::default();
    let mut start = 0;
    let mut word_start = None;
    let flush = |job: &mut egui::text::LayoutJob, from: usize, to: usize, is_word: bool| {
        let piece = &text[from..to];
        let matched = is_word && {
            let lower = piece.to_lowercase();
            terms.iter().any(|t| lower.contains(t.as_str()))
        };
        job.append(
            piece,
            0.0,
            if matched { hit.clone() } else { normal.clone() },
        );
    };
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), word_start) {
            (true, None) => {
                if i > start {
                    flush(&mut job, start, i, false);
                }
                word_start = Some(i);
                start = i;
            }
            (false, Some(ws)) => {
                flush(&mut job, ws, i, true);
                word_start = None;
                start = i;
            }
            _ => {}
        }
    }
    if start < text.len() {
        flush(&mut job, start, text.len(), word_start.is_some());
    }
    job
}

/// The last two components of a path (`biomedica/commercial`): enough to tell opened
/// folders apart without a long absolute path.
fn short_path(p: &Path) -> String {
    let parts: Vec<String> = p
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// `article_date` for people: Unix seconds as `YYYY-MM-DD`, anything else as written.
fn format_date(date: &str) -> String {
    match meta::date_unix(date) {
        Some(secs) => {
            let days = secs.div_euclid(86_400);
            let z = days + 719_468;
            let era = z.div_euclid(146_097);
            let doe = z - era * 146_097;
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            let mp = (5 * doy + 2) / 153;
            let d = doy - (153 * mp + 2) / 5 + 1;
            let m = if mp < 10 { mp + 3 } else { mp - 9 };
            let y = yoe + era * 400 + i64::from(m <= 2);
            format!("{y:04}-{m:02}-{d:02}")
        }
        None => date.to_owned(),
    }
}

/// A collapsible tree of a JSON value; children are only laid out when opened, so a
/// multi-MB `article_text` costs nothing until asked for.
fn json_tree(ui: &mut Ui, key: &str, v: &Value, id: egui::Id) {
    match v {
        Value::Object(map) => {
            egui::CollapsingHeader::new(format!("{key}  {{{}}}", map.len()))
                .id_salt(id)
                .show(ui, |ui| {
                    for (k, v) in map {
                        json_tree(ui, k, v, id.with(k));
                    }
                });
        }
        Value::Array(items) => {
            egui::CollapsingHeader::new(format!("{key}  [{}]", items.len()))
                .id_salt(id)
                .show(ui, |ui| {
                    for (i, v) in items.iter().enumerate().take(1000) {
                        json_tree(ui, &i.to_string(), v, id.with(i));
                    }
                    if items.len() > 1000 {
                        ui.label(format!("… {} more", items.len() - 1000));
                    }
                });
        }
        Value::String(s) => {
            const SHOWN: usize = 600;
            let chars = s.chars().count();
            let text = if chars > SHOWN {
                let head: String = s.chars().take(SHOWN).collect();
                format!("{key}: \"{head}…\" ({chars} characters)")
            } else {
                format!("{key}: \"{s}\"")
            };
            ui.add(egui::Label::new(RichText::new(text).monospace()).wrap());
        }
        other => {
            ui.label(RichText::new(format!("{key}: {other}")).monospace());
        }
    }
}

/// The items in display order: the filter's (caption matches best first), ranked by
/// CLIP similarity when a semantic query is active (`scores`, cosine per item id, the
/// best `limit` of them; 0 = all), fused by reciprocal rank when both a caption query and
/// a semantic one are. Pure, so it can run on the worker.
pub fn ordered(
    catalog: &Catalog,
    filter: &Filter,
    scores: Option<&[f32]>,
    limit: usize,
) -> Vec<ItemId> {
    let Some(scores) = scores else {
        return catalog.apply(filter);
    };
    let pool = catalog.apply(&Filter {
        query: String::new(),
        ..filter.clone()
    });
    let semantic = rank::by_score(&pool, scores, limit);
    if filter.query.trim().is_empty() {
        return semantic;
    }
    let caption = catalog.apply(filter);
    rank::rrf(&[&caption, &semantic])
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

impl Workspace for BioMed {
    fn poll(&mut self, shared: &mut Shared) {
        if self.worker.is_none() {
            self.worker = Some(shared.worker.clone());
        }
        if self.source == Source::DemoPending && self.loading.is_none() {
            self.start_indexing(shared);
            self.source = Source::Demo;
        }
        if let Some(job) = &mut self.loading
            && let Some(result) = job.try_take()
        {
            self.loading = None;
            match result {
                Ok((catalog, stats)) => self.install(catalog, stats, shared),
                Err(JobError::Cancelled) => {}
                Err(err) => shared.toasts.error(err.to_string()),
            }
        }
        if let Some((id, job)) = &mut self.detail_job
            && let Some(result) = job.try_take()
        {
            let id = *id;
            self.detail_job = None;
            match result {
                Ok(meta) => self.detail = Some(Detail { id, meta: Ok(meta) }),
                Err(JobError::Cancelled) => {}
                Err(err) => {
                    self.detail = Some(Detail {
                        id,
                        meta: Err(err.to_string()),
                    })
                }
            }
        }
        if let Some(job) = &mut self.export_job
            && let Some(result) = job.try_take()
        {
            self.export_job = None;
            match result {
                Ok(Some(message)) => shared.toasts.info(message),
                Ok(None) | Err(JobError::Cancelled) => {}
                Err(err) => shared.toasts.error(err.to_string()),
            }
        }
        if std::mem::take(&mut self.like_requested) {
            self.more_like_selected(shared);
        }
        if self.clip.poll(&self.catalog, shared) {
            self.refilter_then(true);
        }
        if let Some((job, select_first)) = &mut self.ordering
            && let Some(result) = job.try_take()
        {
            let select_first = *select_first;
            self.ordering = None;
            match result {
                Ok(items) => self.show_ordered(items, select_first),
                Err(JobError::Cancelled) => {}
                Err(err) => shared.toasts.error(err.to_string()),
            }
        }
        self.request_detail(shared);
    }

    fn items_panel(&mut self, ui: &mut Ui, shared: &mut Shared) {
        ui.heading("BIOMEDICA");
        match &self.source {
            Source::DemoPending | Source::Demo => {
                ui.label(RichText::new("Demo shards (embedded)").weak());
            }
            Source::Paths(paths) => {
                for p in paths {
                    ui.label(RichText::new(short_path(p)).weak())
                        .on_hover_text(p.display().to_string());
                }
            }
        }
        if self.loading.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Indexing…");
            });
        } else {
            ui.label(format!(
                "{} shards · {} samples",
                self.stats.shards, self.stats.samples
            ));
        }
        ui.separator();
        let before = self.filter.clone();
        let name = ui.label(RichText::new("Search text").strong());
        ui.add(
            egui::TextEdit::singleline(&mut self.filter.query)
                .hint_text("words, e.g. fundus µm")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(name.id);
        ui.horizontal(|ui| {
            ui.label(RichText::new("in").weak());
            for (scope, name) in [
                (SearchIn::Captions, "captions"),
                (SearchIn::Articles, "titles & MeSH"),
                (SearchIn::Both, "both"),
            ] {
                ui.selectable_value(&mut self.filter.search_in, scope, name);
            }
        });
        ui.add_space(4.0);
        let mut reorder = false;
        match self.clip.ui(ui) {
            biomed_clip::Action::None => {}
            biomed_clip::Action::Search => self.clip.search_text(&self.catalog, shared),
            biomed_clip::Action::Clear => {
                self.clip.semantic = None;
                reorder = true;
            }
            biomed_clip::Action::Embed => self.clip.embed(&self.catalog, shared),
            biomed_clip::Action::Label => self.label_shown(shared),
        }
        if self.filter.same_image.is_some() {
            ui.horizontal(|ui| {
                ui.label(RichText::new("One duplicate group").color(theme::ACCENT));
                if ui.small_button("✕ Show all").clicked() {
                    self.filter.same_image = None;
                }
            });
        }
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} of {} items",
                self.visible.len(),
                self.catalog.len()
            ));
            if self.ordering.is_some() {
                ui.spinner();
                ui.label(RichText::new("filtering…").weak());
            }
        });
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("biomed_filters")
            .show(ui, |ui| {
                egui::CollapsingHeader::new("Filters")
                    .default_open(true)
                    .show(ui, |ui| self.filters_ui(ui));
                let mut export = None;
                egui::CollapsingHeader::new(format!("Export the {} shown", self.visible.len()))
                    .id_salt("biomed_export")
                    .show(ui, |ui| {
                        if ui.button("As a WebDataset shard…").clicked() {
                            export = Some(ExportFormat::Shard);
                        }
                        if ui.button("As a JSONL manifest…").clicked() {
                            export = Some(ExportFormat::Jsonl);
                        }
                        if ui.button("As a CSV manifest…").clicked() {
                            export = Some(ExportFormat::Csv);
                        }
                    });
                if let Some(format) = export {
                    self.export(format, shared);
                }
                let reports: Vec<&str> = self.catalog.reports().collect();
                egui::CollapsingHeader::new(format!("Problems ({})", reports.len()))
                    .id_salt("biomed_problems")
                    .show(ui, |ui| {
                        if reports.is_empty() {
                            ui.label("None: every shard read cleanly.");
                        }
                        for r in reports {
                            ui.add(
                                egui::Label::new(RichText::new(r).color(theme::ERROR).small())
                                    .wrap(),
                            );
                        }
                    });
            });
        if self.filter != before || reorder {
            self.refilter();
        }
    }

    fn central(&mut self, ui: &mut Ui, shared: &mut Shared) {
        ui.horizontal(|ui| {
            let name = ui.label(format!("Thumbnail size {:.0} px", self.thumb_size));
            ui.add(egui::Slider::new(&mut self.thumb_size, 64.0..=384.0).show_value(false))
                .labelled_by(name.id);
            ui.label(
                RichText::new("[ and ] resize · arrows move · click the image to zoom").weak(),
            );
        });
        ui.separator();
        if self.catalog.is_empty() {
            ui.centered_and_justified(|ui| {
                ui.label(if self.loading.is_some() {
                    "Indexing shards…"
                } else {
                    "Open a BIOMEDICA shard or a folder of shards (File ▸ Open, or drop it here)"
                });
            });
            return;
        }
        let tile = egui::vec2(self.thumb_size, self.thumb_size + 20.0);
        let gap = 8.0;
        let cols = ((ui.available_width() + gap) / (tile.x + gap))
            .floor()
            .max(1.0) as usize;
        self.cols = cols;
        let row_height = tile.y + gap;
        let rows = self.visible.len().div_ceil(cols);
        // Decode at 64-px steps: dragging the size slider then reuses cached thumbnails
        // instead of decoding every image again at every intermediate size.
        let thumb_px = ((self.thumb_size * ui.ctx().pixels_per_point()) as u32).div_ceil(64) * 64;
        let mut area = egui::ScrollArea::vertical()
            .id_salt("biomed_grid")
            .auto_shrink(false);
        let viewport = ui.available_height();
        self.rows_on_screen = ((viewport / row_height).floor() as usize).max(1);
        if std::mem::take(&mut self.scroll_to_selected)
            && let Some(pos) = self
                .selected
                .and_then(|s| self.visible.iter().position(|&v| v == s))
        {
            let offset = self.grid_offset;
            let top = (pos / cols) as f32 * row_height;
            if top < offset {
                area = area.vertical_scroll_offset(top);
            } else if top + row_height > offset + viewport {
                area = area.vertical_scroll_offset(top + row_height - viewport);
            }
        }
        let mut clicked = None;
        let output = area.show_rows(ui, row_height, rows, |ui, row_range| {
            for row in row_range {
                ui.horizontal(|ui| {
                    for col in 0..cols {
                        let Some(&id) = self.visible.get(row * cols + col) else {
                            break;
                        };
                        if self.tile(ui, id, tile, thumb_px, shared) {
                            clicked = Some(id);
                        }
                        ui.add_space(gap - ui.spacing().item_spacing.x);
                    }
                });
            }
        });
        self.grid_offset = output.state.clamped_offset().y;
        if clicked.is_some() {
            self.selected = clicked;
        }
    }

    fn inspector(&mut self, ui: &mut Ui, shared: &mut Shared) {
        // Keys and titles are long words: wrap them inside the panel rather than let
        // them widen it (which would also make the layout depend on load order).
        // Fill exactly the panel's width, so what loads first never resizes the panel.
        let width = ui.available_width();
        ui.set_min_width(width);
        ui.set_max_width(width);
        ui.heading("Sample");
        let Some(id) = self.selected else {
            ui.label("Nothing selected");
            return;
        };
        self.detail_ui(ui, id, shared);
        if self.zoom_open {
            let ctx = ui.ctx().clone();
            self.zoom_window(&ctx, shared);
        }
        if self.clip.show_confusion {
            let ctx = ui.ctx().clone();
            self.clip.confusion_window(&ctx);
        }
        if let Some(job) = &mut self.copy_job
            && let Some(result) = job.try_take()
        {
            self.copy_job = None;
            match result {
                Ok(image) => {
                    let [w, h] = image.size;
                    ui.ctx().copy_image(image);
                    shared
                        .toasts
                        .info(format!("Copied the {w} × {h} image to the clipboard"));
                }
                Err(JobError::Cancelled) => {}
                Err(e) => shared.toasts.error(e.to_string()),
            }
        }
        if let Some(hash) = self.group_requested.take() {
            self.filter.same_image = Some(hash);
            self.refilter();
        }
    }

    fn handle_keys(&mut self, ctx: &egui::Context) {
        let cols = self.cols.max(1) as isize;
        let page = cols * self.rows_on_screen.max(1) as isize;
        for (binding, delta) in [
            (&shortcuts::GRID_RIGHT, 1),
            (&shortcuts::GRID_LEFT, -1),
            (&shortcuts::NEXT_ITEM_ALT, 1),
            (&shortcuts::PREV_ITEM_ALT, -1),
            (&shortcuts::GRID_DOWN, cols),
            (&shortcuts::GRID_UP, -cols),
            (&shortcuts::GRID_PAGE_DOWN, page),
            (&shortcuts::GRID_PAGE_UP, -page),
            (&shortcuts::GRID_FIRST, isize::MIN / 2),
            (&shortcuts::GRID_LAST, isize::MAX / 2),
        ] {
            if shortcuts::pressed(ctx, binding) {
                self.step_selection(delta);
            }
        }
        if shortcuts::pressed(ctx, &shortcuts::GRID_LARGER) {
            self.thumb_size = (self.thumb_size * 1.25).min(384.0);
        }
        if shortcuts::pressed(ctx, &shortcuts::GRID_SMALLER) {
            self.thumb_size = (self.thumb_size / 1.25).max(64.0);
        }
        if shortcuts::pressed(ctx, &shortcuts::MORE_LIKE_THIS) {
            self.like_requested = true;
        }
    }

    fn bindings(&self) -> &'static [&'static shortcuts::Binding] {
        shortcuts::BIOMED
    }

    fn open(&mut self, path: &Path, _content: Content, shared: &mut Shared) {
        // Opening replaces the demo; further paths are added to what is open.
        let mut paths = match &self.source {
            Source::Paths(p) => p.clone(),
            Source::DemoPending | Source::Demo => Vec::new(),
        };
        if !paths.iter().any(|p| p == path) {
            paths.push(path.to_path_buf());
        }
        self.source = Source::Paths(paths);
        self.filter = Filter::default();
        self.start_indexing(shared);
    }

    fn is_busy(&self) -> bool {
        self.loading.is_some()
            || self.source == Source::DemoPending
            || self.detail_job.is_some()
            || self.clip.is_busy()
            || self.copy_job.is_some()
            || self.ordering.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_iso_days() {
        assert_eq!(format_date("1577836800"), "2020-01-01");
        assert_eq!(format_date("951782400"), "2000-02-29");
        assert_eq!(format_date("2021 02 29"), "2021 02 29");
    }
}

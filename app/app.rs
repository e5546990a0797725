//! The eframe application: the frame of panels, the tabs, opening files, and the glue
//! between workspaces, worker and image cache.

use crate::image_cache::ImageCache;
use crate::routing::{self, Content, RouteError, WorkspaceKind};
use crate::state::Settings;
use crate::ui::{shortcuts, status_bar, theme, toasts::Toasts};
use crate::worker::{JobError, JobHandle, Worker};
use crate::workspace::{Shared, Workspace, biomed::BioMed, grounding::Grounding, scene3d::Scene3d};
use std::path::PathBuf;
use std::sync::Arc;

/// How the app starts.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Paths to open after start (from `loupe open …`).
    pub open: Vec<PathBuf>,
}

type Classified = Vec<(PathBuf, Result<Content, RouteError>)>;

pub struct LoupeApp {
    pub settings: Settings,
    shared: Shared,
    grounding: Grounding,
    scene3d: Scene3d,
    biomed: BioMed,
    show_help: bool,
    /// Paths being recognised on the worker (dropped, opened or from the CLI).
    classifying: Vec<JobHandle<Classified>>,
    dialogs: Vec<JobHandle<Option<PathBuf>>>,
    applied_theme: Option<theme::Theme>,
}

impl LoupeApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: StartOptions) -> anyhow::Result<Self> {
        let settings = cc
            .storage
            .and_then(|s| eframe::get_value::<Settings>(s, Settings::STORAGE_KEY))
            .unwrap_or_default();
        Self::with_settings(cc, settings, options)
    }

    pub fn with_settings(
        cc: &eframe::CreationContext<'_>,
        settings: Settings,
        options: StartOptions,
    ) -> anyhow::Result<Self> {
        let ctx = &cc.egui_ctx;
        let repaint_ctx = ctx.clone();
        let worker = Worker::new(Arc::new(move || repaint_ctx.request_repaint()))?;
        ctx.options_mut(|o| o.zoom_with_keyboard = false);
        let images = ImageCache::new(ctx.clone(), worker.clone(), ImageCache::DEFAULT_BUDGET)
            .with_disk_cache(crate::thumbnails::DiskCache::new(
                crate::thumbnails::DiskCache::default_dir(),
            ));
        let mut app = Self {
            settings,
            shared: Shared {
                worker,
                images,
                toasts: Toasts::default(),
            },
            grounding: Grounding::default(),
            scene3d: Scene3d::default(),
            biomed: BioMed::default(),
            show_help: false,
            classifying: Vec::new(),
            dialogs: Vec::new(),
            applied_theme: None,
        };
        app.grounding.runner.settings = app.settings.model.clone();
        if let Some(render_state) = &cc.wgpu_render_state {
            crate::ui::splat_view::install(render_state);
            app.scene3d.set_gpu_available(true);
        }
        if !options.open.is_empty() {
            app.open_paths(options.open);
        }
        Ok(app)
    }

    pub fn worker(&self) -> &Worker {
        &self.shared.worker
    }

    pub fn toasts(&self) -> &Toasts {
        &self.shared.toasts
    }

    pub fn grounding(&self) -> &Grounding {
        &self.grounding
    }

    pub fn grounding_mut(&mut self) -> &mut Grounding {
        &mut self.grounding
    }

    pub fn scene3d(&self) -> &Scene3d {
        &self.scene3d
    }

    pub fn biomed(&self) -> &BioMed {
        &self.biomed
    }

    /// The BioMed workspace and the shared services, for tests driving it directly.
    pub fn biomed_mut(&mut self) -> (&mut BioMed, &mut Shared) {
        (&mut self.biomed, &mut self.shared)
    }

    pub fn help_visible(&self) -> bool {
        self.show_help
    }

    /// Nothing loading or running: the frame is final (for tests and screenshots).
    pub fn is_idle(&self) -> bool {
        !self.shared.images.is_loading()
            && self.classifying.is_empty()
            && self.shared.worker.board().running().is_empty()
            && !self.grounding.is_busy()
            && !self.scene3d.is_busy()
            && !self.biomed.is_busy()
    }

    /// Recognise paths on the worker, then hand each to its workspace.
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        let name = match paths.as_slice() {
            [one] => format!("Open {}", one.display()),
            many => format!("Open {} paths", many.len()),
        };
        self.classifying
            .push(self.shared.worker.spawn(&name, move |ctx| {
                let total = paths.len().max(1) as f32;
                Ok(paths
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| {
                        ctx.progress(i as f32 / total, p.display().to_string());
                        let c = routing::classify(&p);
                        (p, c)
                    })
                    .collect())
            }));
    }

    fn workspace_mut(&mut self, kind: WorkspaceKind) -> &mut dyn Workspace {
        match kind {
            WorkspaceKind::Grounding => &mut self.grounding,
            WorkspaceKind::Scene3d => &mut self.scene3d,
            WorkspaceKind::BioMed => &mut self.biomed,
        }
    }

    /// Split borrows: the active workspace and the shared services at once.
    fn active(&mut self) -> (&mut dyn Workspace, &mut Shared) {
        let ws: &mut dyn Workspace = match self.settings.tab {
            WorkspaceKind::Grounding => &mut self.grounding,
            WorkspaceKind::Scene3d => &mut self.scene3d,
            WorkspaceKind::BioMed => &mut self.biomed,
        };
        (ws, &mut self.shared)
    }

    fn poll_jobs(&mut self) {
        let mut routed = Vec::new();
        self.classifying.retain_mut(|job| match job.try_take() {
            Some(result) => {
                routed.push(result);
                false
            }
            None => true,
        });
        for result in routed {
            match result {
                Ok(paths) => {
                    for (path, content) in paths {
                        match content {
                            Ok(content) => {
                                let kind = content.workspace();
                                self.settings.remember(&path);
                                self.settings.tab = kind;
                                match kind {
                                    WorkspaceKind::Grounding => {
                                        self.grounding.open(&path, content, &mut self.shared)
                                    }
                                    WorkspaceKind::Scene3d => {
                                        self.scene3d.open(&path, content, &mut self.shared)
                                    }
                                    WorkspaceKind::BioMed => {
                                        self.biomed.open(&path, content, &mut self.shared)
                                    }
                                }
                            }
                            Err(err) => self.shared.toasts.error(err.to_string()),
                        }
                    }
                }
                Err(JobError::Cancelled) => {}
                Err(err) => self.shared.toasts.error(err.to_string()),
            }
        }
        let mut picked = Vec::new();
        self.dialogs.retain_mut(|job| match job.try_take() {
            Some(Ok(Some(path))) => {
                picked.push(path);
                false
            }
            Some(_) => false,
            None => true,
        });
        if !picked.is_empty() {
            self.open_paths(picked);
        }
        for kind in WorkspaceKind::ALL {
            let ws: &mut dyn Workspace = match kind {
                WorkspaceKind::Grounding => &mut self.grounding,
                WorkspaceKind::Scene3d => &mut self.scene3d,
                WorkspaceKind::BioMed => &mut self.biomed,
            };
            ws.poll(&mut self.shared);
        }
    }

    /// Native dialogs block their thread, so they run on a job thread, never the UI's.
    fn open_dialog(&mut self, folder: bool) {
        let title = if folder { "Open folder" } else { "Open file" };
        self.dialogs.push(self.shared.worker.spawn(title, move |_| {
            let dialog = rfd::FileDialog::new().set_title(title);
            Ok(if folder {
                dialog.pick_folder()
            } else {
                dialog.pick_file()
            })
        }));
    }

    fn handle_global_keys(&mut self, ctx: &egui::Context) {
        if shortcuts::pressed(ctx, &shortcuts::SHOW_HELP) {
            self.show_help = !self.show_help;
        }
        if shortcuts::pressed(ctx, &shortcuts::OPEN_FOLDER) {
            self.open_dialog(true);
        }
        if shortcuts::pressed(ctx, &shortcuts::OPEN_FILE) {
            self.open_dialog(false);
        }
        let mut steps = 0;
        if shortcuts::pressed(ctx, &shortcuts::ZOOM_IN)
            || shortcuts::pressed(ctx, &shortcuts::ZOOM_IN_EQUALS)
        {
            steps += 1;
        }
        if shortcuts::pressed(ctx, &shortcuts::ZOOM_OUT) {
            steps -= 1;
        }
        if steps != 0 {
            self.settings.ui_scale = theme::step_scale(self.settings.ui_scale, steps);
        }
        if shortcuts::pressed(ctx, &shortcuts::ZOOM_RESET) {
            self.settings.ui_scale = 1.0;
        }
        for (binding, kind) in [
            (&shortcuts::TAB_GROUNDING, WorkspaceKind::Grounding),
            (&shortcuts::TAB_3D, WorkspaceKind::Scene3d),
            (&shortcuts::TAB_BIOMED, WorkspaceKind::BioMed),
        ] {
            if shortcuts::pressed(ctx, binding) {
                self.settings.tab = kind;
            }
        }
        if shortcuts::pressed(ctx, &shortcuts::TOGGLE_INSPECTOR) {
            self.settings.show_inspector ^= true;
        }
        if shortcuts::pressed(ctx, &shortcuts::TOGGLE_ITEMS) {
            self.settings.show_items ^= true;
        }
        if shortcuts::pressed(ctx, &shortcuts::TOGGLE_THEME) {
            self.settings.theme = self.settings.theme.toggled();
        }
        let tab = self.settings.tab;
        self.workspace_mut(tab).handle_keys(ctx);
    }

    fn handle_drops(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if !dropped.is_empty() {
            self.open_paths(dropped);
        }
        let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
        if hovering {
            let painter = ctx.layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                egui::Id::unique("drop"),
            ));
            let rect = ctx.content_rect();
            painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Drop to open",
                egui::FontId::proportional(36.0),
                theme::ACCENT,
            );
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open file…").clicked() {
                    self.open_dialog(false);
                }
                if ui.button("Open folder…").clicked() {
                    self.open_dialog(true);
                }
                ui.menu_button("Recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.label("Nothing yet");
                    }
                    let mut reopen = None;
                    for p in &self.settings.recent {
                        if ui.button(p.display().to_string()).clicked() {
                            reopen = Some(p.clone());
                        }
                    }
                    if let Some(p) = reopen {
                        self.open_paths(vec![p]);
                    }
                });
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut self.settings.show_items, "Item list");
                ui.checkbox(&mut self.settings.show_inspector, "Inspector");
                if ui.button("Toggle dark / light").clicked() {
                    self.settings.theme = self.settings.theme.toggled();
                }
                if ui.button("Larger UI").clicked() {
                    self.settings.ui_scale = theme::step_scale(self.settings.ui_scale, 1);
                }
                if ui.button("Smaller UI").clicked() {
                    self.settings.ui_scale = theme::step_scale(self.settings.ui_scale, -1);
                }
                if ui.button("Reset UI size").clicked() {
                    self.settings.ui_scale = 1.0;
                }
            });
            ui.menu_button("Help", |ui| {
                if ui.button("Keyboard shortcuts (F1)").clicked() {
                    self.show_help = true;
                }
            });
            ui.separator();
            for kind in WorkspaceKind::ALL {
                let selected = self.settings.tab == kind;
                let text = egui::RichText::new(kind.title()).size(17.0).strong();
                if ui.selectable_label(selected, text).clicked() {
                    self.settings.tab = kind;
                }
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let icon = if self.settings.theme == theme::Theme::Dark {
                    "☀"
                } else {
                    "🌙"
                };
                if ui
                    .button(icon)
                    .on_hover_text("Dark / light theme")
                    .clicked()
                {
                    self.settings.theme = self.settings.theme.toggled();
                }
                if ui
                    .button("?")
                    .on_hover_text("Keyboard shortcuts (F1)")
                    .clicked()
                {
                    self.show_help = !self.show_help;
                }
                ui.label(egui::RichText::new("Loupe").color(theme::ACCENT).strong());
            });
        });
    }
}

impl eframe::App for LoupeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        if self.applied_theme != Some(self.settings.theme) {
            theme::apply(&ctx, self.settings.theme);
            self.applied_theme = Some(self.settings.theme);
        }
        if (ctx.zoom_factor() - self.settings.ui_scale).abs() > f32::EPSILON {
            ctx.set_zoom_factor(self.settings.ui_scale);
        }
        self.shared.images.begin_frame();
        self.poll_jobs();
        self.handle_global_keys(&ctx);
        self.handle_drops(&ctx);

        egui::Panel::top("top_bar").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("status_bar").show(ui, |ui| {
            let bytes = self.shared.images.bytes();
            status_bar::show(ui, self.shared.worker.board(), bytes, "");
        });
        let show_items = self.settings.show_items;
        let show_inspector = self.settings.show_inspector;
        let tab = self.settings.tab;
        let (ws, shared) = self.active();
        if show_items {
            egui::Panel::left(("items", tab))
                .default_size(260.0)
                .show(ui, |ui| ws.items_panel(ui, shared));
        }
        if show_inspector {
            egui::Panel::right(("inspector", tab))
                .default_size(300.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| ws.inspector(ui, shared));
                });
        }
        egui::CentralPanel::default().show(ui, |ui| ws.central(ui, shared));

        let bindings = ws.bindings();
        let mut open = self.show_help;
        shortcuts::overlay(
            &ctx,
            &mut open,
            &[("Everywhere", shortcuts::GLOBAL), (tab.title(), bindings)],
        );
        self.show_help = open;
        self.shared.toasts.show(&ctx);
        // While images decode or jobs run, keep frames coming to pick up their results.
        if !self.is_idle() {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings.model = self.grounding.runner.settings.clone();
        eframe::set_value(storage, Settings::STORAGE_KEY, &self.settings);
    }

    fn on_exit(&mut self) {
        // The review autosaves continuously; this writes a change made this very frame.
        self.grounding.flush_review();
        self.shared.worker.board().cancel_all();
    }
}

//! 3D workspace: Gaussian splats drawn by `loupe_render`'s wgpu pipeline inside egui,
//! point clouds, camera frusta and axes, with orbit navigation.

use super::uco3d_session::{FramePicture, Opened, Uco3dSession};
use super::{Shared, Workspace};
use crate::routing::Content;
use crate::ui::{shortcuts, splat_view};
use crate::worker::{JobError, JobHandle};
use egui::{Color32, RichText, Stroke, Ui};
use loupe_render::camera::Camera;
use loupe_render::gpu::sorter::BackgroundSorter;
use loupe_render::io::{ReadReport, SceneFile};
use loupe_render::reference::RenderSettings;
use loupe_render::{DemoScene, OrbitController, Segment, Splats};
use std::path::Path;
use std::sync::Arc;

/// A file read and prepared on the worker: everything proportional to its size
/// (conversion, framing) happens there, not on the UI thread.
struct Loaded {
    name: String,
    splats: Splats,
    is_point_cloud: bool,
    report: ReadReport,
    home: OrbitController,
}

/// What the view shows.
enum Content3d {
    Splats {
        splats: Arc<Splats>,
        sorter: Option<BackgroundSorter>,
    },
}

pub struct Scene3d {
    name: String,
    content: Content3d,
    scene_id: u64,
    report: ReadReport,
    demo: DemoScene,
    orbit: OrbitController,
    /// The view `F` returns to.
    home: OrbitController,
    settings: RenderSettings,
    last_sorted: Option<Camera>,
    selected_camera: usize,
    /// Rendering from a dataset camera instead of the orbit view.
    look_through: bool,
    /// The content came from a point cloud (drawn as small opaque splats).
    is_point_cloud: bool,
    show_frusta: bool,
    /// A ground grid under the scene and the splats' bounding box.
    show_grid: bool,
    show_bounds: bool,
    gpu: bool,
    loading: Option<JobHandle<Loaded>>,
    /// An open uCO3D dataset (browser, sequence, frames, timeline).
    uco3d: Option<Uco3dSession>,
    uco3d_opening: Option<(JobHandle<Opened>, Option<String>)>,
    /// The bundled uCO3D sample opens at start unless something else is opened first.
    demo_pending: bool,
}

impl Default for Scene3d {
    fn default() -> Self {
        let demo = DemoScene::new(6000, 24);
        let splats = Arc::new(demo.splats());
        Self {
            name: "Demo: splatted torus knot and turntable cameras".into(),
            content: Content3d::Splats {
                splats,
                sorter: None,
            },
            scene_id: 1,
            report: ReadReport::default(),
            demo,
            orbit: OrbitController::default(),
            home: OrbitController::default(),
            settings: RenderSettings {
                background: [0.055; 3],
                ..Default::default()
            },
            last_sorted: None,
            selected_camera: 0,
            look_through: false,
            is_point_cloud: false,
            show_frusta: true,
            show_grid: false,
            show_bounds: false,
            gpu: false,
            loading: None,
            uco3d: None,
            uco3d_opening: None,
            demo_pending: true,
        }
    }
}

impl Scene3d {
    pub fn orbit(&self) -> &OrbitController {
        &self.orbit
    }

    /// Tell the workspace that egui runs on wgpu and the splat pipeline is installed.
    pub fn set_gpu_available(&mut self, available: bool) {
        self.gpu = available;
    }

    /// The view's display settings (background, SH degree, …).
    pub fn render_settings(&self) -> &RenderSettings {
        &self.settings
    }

    pub fn splat_count(&self) -> usize {
        match &self.content {
            Content3d::Splats { splats, .. } => splats.len(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Back to the framing computed when the scene was loaded.
    fn fit_view(&mut self) {
        self.orbit = self.home;
    }

    fn load(&mut self, path: &Path, shared: &mut Shared) {
        let path = path.to_path_buf();
        let name = format!(
            "Load {}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        self.loading = Some(shared.worker.spawn(&name, move |ctx| {
            let mut progress = |f: f32| {
                ctx.progress(f, "reading");
                !ctx.is_cancelled()
            };
            match loupe_render::io::read_path(&path, &mut progress) {
                Ok((scene, report)) => {
                    ctx.progress(1.0, "preparing");
                    let (splats, is_point_cloud) = match scene {
                        SceneFile::Splats(s) => (s, false),
                        SceneFile::Points(p) => (p.to_splats(p.default_sigma()), true),
                    };
                    let home = OrbitController::framing(&splats.means);
                    Ok(Loaded {
                        name: path.display().to_string(),
                        splats,
                        is_point_cloud,
                        report,
                        home,
                    })
                }
                Err(loupe_render::io::ReadError::Cancelled { .. }) => Err(JobError::Cancelled),
                Err(e) => Err(JobError::Failed(e.to_string())),
            }
        }));
    }

    /// Open a uCO3D root (or a path inside one: its sequence is selected).
    fn open_uco3d(&mut self, path: &Path, shared: &mut Shared) {
        let Some(root) = crate::datasets::uco3d::find_root(path) else {
            shared.toasts.error(format!(
                "{}: no metadata.sqlite in this folder or above it",
                path.display()
            ));
            return;
        };
        // <root>/<super>/<category>/<sequence>/…: the third component names the sequence.
        let sequence = path
            .strip_prefix(&root)
            .ok()
            .and_then(|rel| rel.components().nth(2))
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        let job = shared
            .worker
            .spawn("Open uCO3D", Uco3dSession::open_job(root));
        self.uco3d_opening = Some((job, sequence));
    }

    pub fn uco3d(&self) -> Option<&Uco3dSession> {
        self.uco3d.as_ref()
    }

    pub fn uco3d_mut(&mut self) -> Option<&mut Uco3dSession> {
        self.uco3d.as_mut()
    }

    fn has_sequence(&self) -> bool {
        self.uco3d.as_ref().is_some_and(|s| s.seq.is_some())
    }

    /// Orbit on drag, zoom on scroll, and clear `rect` to the background colour.
    fn navigate(&mut self, ui: &Ui, response: &egui::Response, rect: egui::Rect) {
        if response.dragged() {
            let d = response.drag_delta();
            self.orbit
                .orbit(f64::from(d.x) * 0.01, f64::from(d.y) * 0.01);
        }
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                self.orbit.zoom((-f64::from(scroll) * 0.002).exp());
            }
        }
        if self.settings.transparent {
            checkerboard(&ui.painter_at(rect), rect);
        } else {
            let [r, g, b] = self.settings.background.map(|v| (v * 255.0).round() as u8);
            ui.painter()
                .rect_filled(rect, 0.0, Color32::from_rgb(r, g, b));
        }
    }

    /// Draw the splats seen by `cam` into `rect` (egui's wgpu pass) with the overlay
    /// `segments` depth-composited among them; without the wgpu renderer the segments
    /// are drawn over the view with egui's painter instead.
    fn paint_splats(
        &mut self,
        ui: &Ui,
        rect: egui::Rect,
        cam: Camera,
        segments: &[Segment],
        picture: Option<&FramePicture>,
        shared: &mut Shared,
    ) {
        let ppp = ui.ctx().pixels_per_point();
        // Over a transparent background, translucent lines are mixed with the
        // checkerboard's mean grey.
        let background = if self.settings.transparent {
            CHECKER_MEAN
        } else {
            self.settings.background
        };
        match &mut self.content {
            Content3d::Splats { splats, sorter } if self.gpu => {
                if sorter.is_none() {
                    let hook = shared.worker.repaint_hook().clone();
                    *sorter = BackgroundSorter::new(Arc::new(splats.means.clone()), hook).ok();
                }
                if let Some(sorter) = sorter.as_ref() {
                    if self.last_sorted.as_ref() != Some(&cam) {
                        sorter.request(cam);
                        self.last_sorted = Some(cam);
                    }
                    let paint = splat_view::SplatPaint {
                        scene_id: self.scene_id,
                        splats: splats.clone(),
                        camera: cam,
                        settings: self.settings,
                        order: sorter.latest(),
                        lines: loupe_render::gpu::project_lines(
                            &cam,
                            segments,
                            LINE_WIDTH * ppp,
                            background,
                        ),
                        picture: picture.map(|p| splat_view::Picture {
                            key: texture_key(p.texture),
                            image: p.image.clone(),
                            corners: loupe_render::gpu::plane_clip_corners(&cam, &p.corners),
                            opacity: PICTURE_OPACITY,
                        }),
                        origin_px: [(rect.min.x * ppp).round(), (rect.min.y * ppp).round()],
                    };
                    ui.painter()
                        .add(egui_wgpu::Callback::new_paint_callback(rect, paint));
                    return;
                }
            }
            Content3d::Splats { .. } => {
                ui.painter().text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    "Splats need the wgpu renderer",
                    egui::TextStyle::Body.resolve(ui.style()),
                    Color32::GRAY,
                );
            }
        }
        let painter = ui.painter_at(rect);
        let to_screen = |(u, v): (f64, f64)| rect.min + egui::vec2(u as f32 / ppp, v as f32 / ppp);
        if let Some(p) = picture {
            draw_image_plane(&painter, p.texture, &p.corners, &cam, to_screen);
        }
        draw_segments(&painter, segments, &cam, to_screen);
    }

    /// The uCO3D sequence view: 3D scene beside the video frame, timeline below.
    fn central_uco3d(&mut self, ui: &mut Ui, shared: &mut Shared) {
        let full = ui.available_rect_before_wrap();
        let timeline_h = 44.0;
        let top =
            egui::Rect::from_min_max(full.min, egui::pos2(full.max.x, full.max.y - timeline_h));
        let split = top.min.x + top.width() * 0.58;
        let left = egui::Rect::from_min_max(top.min, egui::pos2(split - 2.0, top.max.y));
        let right = egui::Rect::from_min_max(egui::pos2(split + 2.0, top.min.y), top.max);
        let response = ui.interact(
            left,
            ui.scope_id().with("uco3d_view"),
            egui::Sense::click_and_drag(),
        );
        if response.dragged() {
            self.look_through = false;
        }
        self.navigate(ui, &response, left);
        let ppp = ui.ctx().pixels_per_point();
        let px = |v: f32| (v * ppp).round().max(1.0) as u32;
        let Some(session) = self.uco3d.as_mut() else {
            return;
        };
        session.tick(ui.ctx());
        let dataset_cam = session.current_camera().filter(|_| self.look_through);
        let (view_rect, cam) = match dataset_cam {
            Some(c) => {
                let k = c.intrinsics;
                let fitted =
                    crate::ui::widgets::fit_rect(left, egui::vec2(k.width as f32, k.height as f32));
                (
                    fitted,
                    c.with_viewport(px(fitted.width()), px(fitted.height())),
                )
            }
            None => {
                let c = self.orbit.camera(px(left.width()), px(left.height()));
                (left, session.view_to_raw(&c))
            }
        };
        let segments = if self.show_frusta {
            session.overlay_segments(self.look_through)
        } else {
            Vec::new()
        };
        let thumbnail = if self.show_frusta && !self.look_through {
            session.frame_in_frustum()
        } else {
            None
        };
        self.paint_splats(ui, view_rect, cam, &segments, thumbnail.as_ref(), shared);
        if self.look_through
            && let Some(session) = &self.uco3d
        {
            session.blend_over(ui, view_rect);
        }
        let painter = ui.painter_at(view_rect);
        painter.text(
            view_rect.left_bottom() + egui::vec2(10.0, -10.0),
            egui::Align2::LEFT_BOTTOM,
            if self.look_through {
                "Looking through the dataset camera · C to orbit"
            } else {
                "Drag to orbit · scroll to zoom · C to look through the camera"
            },
            egui::TextStyle::Small.resolve(ui.style()),
            Color32::from_gray(160),
        );
        if let Some(session) = self.uco3d.as_mut() {
            session.frame_ui(ui, right);
            let bottom = egui::Rect::from_min_max(
                egui::pos2(full.min.x, full.max.y - timeline_h + 6.0),
                full.max,
            );
            let mut child = ui.new_child(egui::UiBuilder::new().max_rect(bottom));
            session.timeline_ui(&mut child);
        }
        ui.allocate_rect(full, egui::Sense::hover());
    }

    /// Axes, grid, bounding box and the demo's frusta.
    fn overlay_segments(&self) -> Vec<Segment> {
        let scale = self.orbit.distance * 0.12;
        let mut segments: Vec<Segment> = DemoScene::axes(scale).to_vec();
        if let Content3d::Splats { splats, .. } = &self.content
            && let Some((lo, hi)) = splats.bounds()
        {
            let lo = lo.map(f64::from);
            let hi = hi.map(f64::from);
            if self.show_grid {
                let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]);
                segments.extend(loupe_render::scene::grid_segments(
                    [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0],
                    lo[2],
                    extent,
                    [120, 120, 130, 110],
                ));
            }
            if self.show_bounds {
                segments.extend(loupe_render::scene::box_segments(
                    lo,
                    hi,
                    [240, 200, 80, 200],
                ));
            }
        }
        if self.show_frusta && self.is_demo() {
            for (i, c) in self.demo.cameras.iter().enumerate() {
                let rgba = if i == self.selected_camera {
                    [255, 153, 51, 255]
                } else {
                    [180, 190, 205, 150]
                };
                segments.extend(DemoScene::frustum_segments(c, 0.25, rgba));
            }
        }
        segments
    }

    fn draw_hint(&self, ui: &Ui, rect: egui::Rect) {
        ui.painter_at(rect).text(
            rect.left_bottom() + egui::vec2(10.0, -10.0),
            egui::Align2::LEFT_BOTTOM,
            "Drag to orbit · scroll to zoom · F to fit",
            egui::TextStyle::Small.resolve(ui.style()),
            Color32::from_gray(160),
        );
    }

    fn is_demo(&self) -> bool {
        self.scene_id == 1
    }
}

impl Workspace for Scene3d {
    fn poll(&mut self, shared: &mut Shared) {
        if self.demo_pending && self.loading.is_none() && self.uco3d_opening.is_none() {
            self.demo_pending = false;
            let dir = crate::datasets::biomedica::sidecar::default_dir()
                .parent()
                .map_or_else(std::env::temp_dir, Path::to_path_buf)
                .join("uco3d-demo");
            let job = shared.worker.spawn("Open the uCO3D sample", move |ctx| {
                let root = crate::demo::materialize_uco3d(&dir).map_err(JobError::failed)?;
                Uco3dSession::open_job(root)(ctx)
            });
            self.uco3d_opening = Some((job, None));
        }
        if let Some((job, wanted)) = self.uco3d_opening.as_mut()
            && let Some(result) = job.try_take()
        {
            let wanted = wanted.take();
            self.uco3d_opening = None;
            match result {
                Ok(opened) => {
                    let mut session = Uco3dSession::new(opened);
                    let first =
                        wanted.or_else(|| session.sequence_names().next().map(str::to_owned));
                    if let Some(name) = first {
                        session.load(&name, shared);
                    }
                    self.uco3d = Some(session);
                }
                Err(JobError::Cancelled) => {}
                Err(e) => shared.toasts.error(e.to_string()),
            }
        }
        if let Some(splats) = self.uco3d.as_mut().and_then(Uco3dSession::take_layer) {
            // Another layer of the same sequence: same view, new content.
            self.is_point_cloud = splats.sh_degree == 0 && splats.foreground.is_none();
            self.settings.sh_degree = splats.sh_degree;
            self.content = Content3d::Splats {
                splats,
                sorter: None,
            };
            self.scene_id += 1;
            self.last_sorted = None;
        }
        let ctx = shared.images.ctx().clone();
        if let Some(loaded) = self.uco3d.as_mut().and_then(|s| s.poll(shared, &ctx)) {
            self.settings.sh_degree = loaded.splats.sh_degree;
            self.settings.background = [1.0; 3];
            self.is_point_cloud = false;
            self.name = format!("uCO3D {}", loaded.seq.annot.name);
            self.content = Content3d::Splats {
                splats: loaded.splats,
                sorter: None,
            };
            self.report = ReadReport::default();
            self.scene_id += 1;
            self.last_sorted = None;
            self.home = loaded.home;
            self.orbit = loaded.home;
            self.look_through = false;
        }
        let Some(result) = self.loading.as_mut().and_then(|h| h.try_take()) else {
            return;
        };
        self.loading = None;
        match result {
            Ok(Loaded {
                name,
                splats,
                is_point_cloud,
                report,
                home,
            }) => {
                if report.skipped_non_finite > 0 {
                    shared.toasts.error(format!(
                        "{name}: skipped {} splats with NaN or infinite values",
                        report.skipped_non_finite
                    ));
                }
                // Show the file's full view dependence by default.
                self.settings.sh_degree = splats.sh_degree;
                self.is_point_cloud = is_point_cloud;
                self.content = Content3d::Splats {
                    splats: Arc::new(splats),
                    sorter: None,
                };
                self.name = name;
                self.report = report;
                self.scene_id += 1;
                self.last_sorted = None;
                self.home = home;
                self.orbit = home;
            }
            Err(JobError::Cancelled) => {}
            Err(e) => shared.toasts.error(e.to_string()),
        }
    }

    fn items_panel(&mut self, ui: &mut Ui, shared: &mut Shared) {
        if let Some(session) = self.uco3d.as_mut() {
            session.browser_ui(ui, shared);
            return;
        }
        ui.heading("Scene");
        ui.add(egui::Label::new(RichText::new(&self.name).weak()).wrap());
        ui.separator();
        if self.is_demo() {
            ui.label(RichText::new("Cameras").strong());
            egui::ScrollArea::vertical()
                .auto_shrink(false)
                .show(ui, |ui| {
                    for i in 0..self.demo.cameras.len() {
                        if ui
                            .selectable_label(i == self.selected_camera, format!("camera {i:02}"))
                            .clicked()
                        {
                            self.selected_camera = i;
                        }
                    }
                });
        }
    }

    fn central(&mut self, ui: &mut Ui, shared: &mut Shared) {
        if self.has_sequence() && self.scene_id > 1 {
            self.central_uco3d(ui, shared);
            return;
        }
        let (rect, response) =
            ui.allocate_exact_size(ui.available_size(), egui::Sense::click_and_drag());
        self.navigate(ui, &response, rect);
        let ppp = ui.ctx().pixels_per_point();
        let dataset_cam = self
            .demo
            .cameras
            .get(self.selected_camera)
            .filter(|_| self.look_through && self.is_demo());
        let px = |v: f32| (v * ppp).round().max(1.0) as u32;
        let (rect, cam) = match dataset_cam {
            // The dataset camera's own aspect, letterboxed into the view.
            Some(c) => {
                let k = c.intrinsics;
                let fitted =
                    crate::ui::widgets::fit_rect(rect, egui::vec2(k.width as f32, k.height as f32));
                (
                    fitted,
                    c.with_viewport(px(fitted.width()), px(fitted.height())),
                )
            }
            None => (rect, self.orbit.camera(px(rect.width()), px(rect.height()))),
        };
        let segments = self.overlay_segments();
        self.paint_splats(ui, rect, cam, &segments, None, shared);
        self.draw_hint(ui, rect);
    }

    fn inspector(&mut self, ui: &mut Ui, shared: &mut Shared) {
        if let Some(session) = self.uco3d.as_mut() {
            ui.heading("Sequence");
            session.inspector_ui(ui, shared, self.look_through);
            ui.checkbox(&mut self.show_frusta, "camera frusta and axes");
            ui.checkbox(
                &mut self.look_through,
                "look through the frame's camera (C)",
            );
            ui.separator();
        }
        ui.heading("View");
        match &self.content {
            Content3d::Splats { splats, .. } => {
                egui::Grid::new("splat_stats")
                    .num_columns(2)
                    .show(ui, |ui| {
                        ui.label(if self.is_point_cloud {
                            "points"
                        } else {
                            "splats"
                        });
                        ui.monospace(format!("{}", splats.len()));
                        ui.end_row();
                        ui.label("SH degree");
                        ui.monospace(format!("{}", splats.sh_degree));
                        ui.end_row();
                        ui.label("GPU memory");
                        let bytes =
                            splats.len() * loupe_render::gpu::bytes_per_splat(splats.sh_degree);
                        ui.monospace(format!("{:.1} MB", bytes as f64 / 1e6));
                        ui.end_row();
                        if self.report.skipped_non_finite > 0 {
                            ui.label("skipped");
                            ui.monospace(format!("{} non-finite", self.report.skipped_non_finite));
                            ui.end_row();
                        }
                    });
                let max_degree = splats.sh_degree;
                let has_mask = splats.foreground.is_some();
                ui.separator();
                ui.add(
                    egui::Slider::new(&mut self.settings.sh_degree, 0..=max_degree)
                        .text("SH degree"),
                );
                ui.add(
                    egui::Slider::new(&mut self.settings.scale_modifier, 0.05..=2.0)
                        .text("splat scale"),
                );
                ui.add(
                    egui::Slider::new(&mut self.settings.min_opacity, 0.0..=1.0)
                        .text("min opacity"),
                );
                if has_mask {
                    ui.checkbox(&mut self.settings.foreground_only, "foreground only");
                }
                ui.horizontal(|ui| {
                    ui.label("display");
                    let points = self.settings.point_size > 0.0;
                    if ui.selectable_label(!points, "ellipsoids").clicked() {
                        self.settings.point_size = 0.0;
                    }
                    if ui.selectable_label(points, "centres").clicked() && !points {
                        self.settings.point_size = 1.5;
                    }
                });
                if self.settings.point_size > 0.0 {
                    ui.add(
                        egui::Slider::new(&mut self.settings.point_size, 0.5..=6.0)
                            .text("centre size (px)"),
                    );
                }
            }
        }
        if self.uco3d.is_none() {
            ui.horizontal(|ui| {
                ui.checkbox(&mut self.show_grid, "grid");
                ui.checkbox(&mut self.show_bounds, "bounding box");
            });
        }
        // Wrapped: a wider row would widen the side panel for good.
        ui.horizontal_wrapped(|ui| {
            ui.label("background");
            for (label, v) in [("black", 0.0), ("grey", 0.5), ("white", 1.0)] {
                let on = !self.settings.transparent && self.settings.background[0] == v;
                if ui.selectable_label(on, label).clicked() {
                    self.settings.background = [v; 3];
                    self.settings.transparent = false;
                }
            }
            if ui
                .selectable_label(self.settings.transparent, "transparent")
                .on_hover_text("A checkerboard behind the splats; saved views keep the alpha")
                .clicked()
            {
                self.settings.transparent = true;
            }
        });
        if let (Content3d::Splats { splats, .. }, Some(cam)) = (&self.content, self.last_sorted)
            && ui
                .button("Save view as PNG…")
                .on_hover_text(
                    "The splats seen from this view at its size (offscreen wgpu, or the CPU \
                     reference without a GPU); alpha kept over a transparent background",
                )
                .clicked()
        {
            let (splats, settings) = (splats.clone(), self.settings);
            let _ = shared.worker.spawn("Save the view", move |_| {
                let Some(path) = rfd::FileDialog::new().set_file_name("view.png").save_file()
                else {
                    return Ok(());
                };
                let bytes = view_png(&splats, &cam, &settings).map_err(JobError::failed)?;
                crate::atomic::write_atomic(&path, &bytes).map_err(JobError::failed)
            });
        }
        if self.is_demo() {
            ui.checkbox(&mut self.show_frusta, "camera frusta");
            ui.checkbox(
                &mut self.look_through,
                "look through the selected camera (C)",
            );
            if let Some(c) = self.demo.cameras.get(self.selected_camera) {
                ui.separator();
                ui.label(RichText::new(format!("camera {:02}", self.selected_camera)).strong());
                let k = c.intrinsics;
                let centre = c.centre();
                egui::Grid::new("cam").num_columns(2).show(ui, |ui| {
                    ui.label("size");
                    ui.monospace(format!("{} × {}", k.width, k.height));
                    ui.end_row();
                    ui.label("fx, fy");
                    ui.monospace(format!("{:.1}, {:.1}", k.fx, k.fy));
                    ui.end_row();
                    ui.label("cx, cy");
                    ui.monospace(format!("{:.1}, {:.1}", k.cx, k.cy));
                    ui.end_row();
                    ui.label("centre");
                    ui.monospace(format!("{:.2} {:.2} {:.2}", centre.x, centre.y, centre.z));
                    ui.end_row();
                });
            }
        }
    }

    fn handle_keys(&mut self, ctx: &egui::Context) {
        if shortcuts::pressed(ctx, &shortcuts::FIT_VIEW) {
            self.fit_view();
        }
        if let Some(session) = self.uco3d.as_mut().filter(|s| s.seq.is_some()) {
            if shortcuts::pressed(ctx, &shortcuts::ORBIT_LEFT) {
                session.step(-1);
            }
            if shortcuts::pressed(ctx, &shortcuts::ORBIT_RIGHT) {
                session.step(1);
            }
            if shortcuts::pressed(ctx, &shortcuts::PLAY_PAUSE) {
                session.toggle_play();
            }
        }
        if shortcuts::pressed(ctx, &shortcuts::ORBIT_LEFT) {
            self.orbit.orbit(-0.15, 0.0);
        }
        if shortcuts::pressed(ctx, &shortcuts::ORBIT_RIGHT) {
            self.orbit.orbit(0.15, 0.0);
        }
        if shortcuts::pressed(ctx, &shortcuts::LOOK_THROUGH) {
            self.look_through = !self.look_through;
        }
        // Fly speed scales with the view distance so it feels the same at any scale.
        let step = self.orbit.distance * 0.02;
        let axis = |pos: &shortcuts::Binding, neg: &shortcuts::Binding| {
            f64::from(i8::from(shortcuts::held(ctx, pos)) - i8::from(shortcuts::held(ctx, neg)))
                * step
        };
        let forward = axis(&shortcuts::FLY_FORWARD, &shortcuts::FLY_BACK);
        let right = axis(&shortcuts::FLY_RIGHT, &shortcuts::FLY_LEFT);
        let up = axis(&shortcuts::FLY_UP, &shortcuts::FLY_DOWN);
        if forward != 0.0 || right != 0.0 || up != 0.0 {
            self.look_through = false;
            self.orbit.fly(forward, right, up);
            ctx.request_repaint();
        }
    }

    fn bindings(&self) -> &'static [&'static shortcuts::Binding] {
        shortcuts::SCENE3D
    }

    fn open(&mut self, path: &Path, content: Content, shared: &mut Shared) {
        match content {
            Content::Ply | Content::Splat | Content::GsplatDir => {
                self.demo_pending = false;
                self.uco3d = None;
                self.uco3d_opening = None;
                self.load(path, shared);
            }
            Content::Uco3dRoot => {
                self.demo_pending = false;
                self.open_uco3d(path, shared);
            }
            other => shared.toasts.error(format!(
                "{}: {other:?} is recognised, but this build cannot open it yet",
                path.display()
            )),
        }
    }

    fn is_busy(&self) -> bool {
        let sorting =
            matches!(&self.content, Content3d::Splats { sorter: Some(s), .. } if s.is_busy());
        self.loading.is_some()
            || sorting
            || self.uco3d_opening.is_some()
            || self.demo_pending
            || self.uco3d.as_ref().is_some_and(Uco3dSession::is_busy)
    }
}

/// An image on a 3-D quad (`corners`: top-left, top-right, bottom-right, bottom-left),
/// e.g. a frame inside its camera frustum. The quad is cut into a grid so the affine
/// texture mapping of each small cell is close to the true perspective mapping.
fn draw_image_plane(
    painter: &egui::Painter,
    texture: egui::TextureId,
    corners: &[nalgebra::Point3<f64>; 4],
    cam: &Camera,
    to_screen: impl Fn((f64, f64)) -> egui::Pos2,
) {
    const N: usize = 8;
    let mut mesh = egui::Mesh::with_texture(texture);
    let tint = Color32::from_white_alpha((PICTURE_OPACITY * 255.0).round() as u8);
    for j in 0..=N {
        for i in 0..=N {
            let (u, v) = (i as f64 / N as f64, j as f64 / N as f64);
            let top = corners[0] + (corners[1] - corners[0]) * u;
            let bottom = corners[3] + (corners[2] - corners[3]) * u;
            let p = top + (bottom - top) * v;
            // Any vertex behind the viewer: skip the picture (its frustum lines are
            // still clipped and drawn).
            let Some((x, y, _)) = cam.project(&p) else {
                return;
            };
            mesh.vertices.push(egui::epaint::Vertex {
                pos: to_screen((x, y)),
                uv: egui::pos2(u as f32, v as f32),
                color: tint,
            });
        }
    }
    let at = |i: usize, j: usize| (j * (N + 1) + i) as u32;
    for j in 0..N {
        for i in 0..N {
            mesh.add_triangle(at(i, j), at(i + 1, j), at(i + 1, j + 1));
            mesh.add_triangle(at(i, j), at(i + 1, j + 1), at(i, j + 1));
        }
    }
    painter.add(egui::Shape::mesh(mesh));
}

/// The splats seen by `cam` as PNG bytes: rendered offscreen with wgpu when an adapter
/// is available, else by the CPU reference; straight alpha over a transparent
/// background (overlays are not included).
pub fn view_png(
    splats: &Splats,
    cam: &Camera,
    settings: &RenderSettings,
) -> anyhow::Result<Vec<u8>> {
    use loupe_render::reference;
    let (w, h) = (cam.intrinsics.width, cam.intrinsics.height);
    let image = match loupe_render::gpu::GpuContext::headless() {
        Ok(ctx) => loupe_render::gpu::offscreen::render_splats(&ctx, splats, cam, settings)?,
        Err(_) if settings.transparent => {
            reference::to_rgba8_straight(&reference::render_rgba(splats, cam, settings), w, h)
        }
        Err(_) => reference::to_rgba8(&reference::render(splats, cam, settings), w, h),
    };
    let mut bytes = Vec::new();
    image.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(bytes)
}

/// The two greys of the transparent background's checkerboard and their mean.
const CHECKER: [u8; 2] = [92, 122];
const CHECKER_MEAN: [f32; 3] = [107.0 / 255.0; 3];

/// The usual sign of a transparent background: 12-point grey squares, as one mesh.
fn checkerboard(painter: &egui::Painter, rect: egui::Rect) {
    const SIDE: f32 = 12.0;
    let mut mesh = egui::Mesh::default();
    mesh.add_colored_rect(rect, Color32::from_gray(CHECKER[0]));
    let (cols, rows) = (
        (rect.width() / SIDE).ceil() as usize,
        (rect.height() / SIDE).ceil() as usize,
    );
    for j in 0..rows {
        for i in (j % 2..cols).step_by(2) {
            let min = rect.min + egui::vec2(i as f32 * SIDE, j as f32 * SIDE);
            let square = egui::Rect::from_min_size(min, egui::Vec2::splat(SIDE)).intersect(rect);
            mesh.add_colored_rect(square, Color32::from_gray(CHECKER[1]));
        }
    }
    painter.add(egui::Shape::mesh(mesh));
}

/// How opaque the frame picture in its frustum is drawn.
const PICTURE_OPACITY: f32 = 230.0 / 255.0;

/// A stable number per egui texture: a new frame gets a new texture, so the wgpu view
/// re-uploads its picture exactly when this changes.
fn texture_key(id: egui::TextureId) -> u64 {
    match id {
        egui::TextureId::Managed(n) => n,
        egui::TextureId::User(n) => n | (1 << 63),
    }
}

/// Overlay line width in points (the wgpu path draws it in physical pixels).
const LINE_WIDTH: f32 = 2.0;

/// 3-D line segments seen by `cam`, drawn with egui's painter (over the view: the
/// fallback without the wgpu renderer).
fn draw_segments(
    painter: &egui::Painter,
    segments: &[Segment],
    cam: &Camera,
    to_screen: impl Fn((f64, f64)) -> egui::Pos2,
) {
    for s in segments {
        if let Some([a, b]) = loupe_render::scene::clip_project(cam, &s.a, &s.b) {
            let [r, g, b_, a_] = s.rgba;
            painter.line_segment(
                [to_screen(a), to_screen(b)],
                Stroke::new(LINE_WIDTH, Color32::from_rgba_unmultiplied(r, g, b_, a_)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loupe_render::reference;

    /// A saved view over a transparent background keeps the alpha: empty corners are
    /// clear, the splats match the CPU reference's straight-alpha render.
    #[test]
    fn a_saved_transparent_view_matches_the_reference_with_alpha() {
        let demo = DemoScene::new(400, 4);
        let splats = demo.splats();
        let cam = OrbitController::framing(&splats.means).camera(160, 120);
        let settings = RenderSettings {
            transparent: true,
            ..RenderSettings::default()
        };
        let png = view_png(&splats, &cam, &settings).unwrap();
        let got = image::load_from_memory(&png).unwrap().to_rgba8();
        let want = reference::to_rgba8_straight(
            &reference::render_rgba(&splats, &cam, &settings),
            160,
            120,
        );
        assert_eq!(got.get_pixel(0, 0).0[3], 0, "corner is transparent");
        assert!(got.pixels().any(|p| p[3] == 255), "opaque splats");
        // Straight colour is ill-defined where alpha is tiny; compare premultiplied.
        let premul = |img: &image::RgbaImage| {
            let mut out = img.clone();
            for p in out.pixels_mut() {
                let a = u32::from(p[3]);
                for c in 0..3 {
                    p[c] = ((u32::from(p[c]) * a + 127) / 255) as u8;
                }
            }
            out
        };
        let db = reference::psnr(&premul(&got), &premul(&want));
        assert!(db >= 35.0, "saved view vs reference: {db:.2} dB");
    }
}

//! 3D workspace. Until the wgpu splat renderer lands, the view draws its scene (points,
//! camera frusta, axes) with egui's painter from `loupe_render`'s camera model, so the
//! projection maths is the same one the GPU path will use.

use super::{Shared, Workspace};
use crate::routing::Content;
use crate::ui::shortcuts;
use egui::{Color32, Pos2, RichText, Stroke, Ui};
use loupe_render::{DemoScene, OrbitController, Segment};
use std::path::{Path, PathBuf};

pub struct Scene3d {
    scene: DemoScene,
    orbit: OrbitController,
    selected_camera: usize,
    point_size: f32,
    show_frusta: bool,
    /// Files recognised as 3D content, listed until their readers exist.
    pending: Vec<PathBuf>,
}

impl Default for Scene3d {
    fn default() -> Self {
        Self {
            scene: DemoScene::new(6000, 24),
            orbit: OrbitController::default(),
            selected_camera: 0,
            point_size: 2.5,
            show_frusta: true,
            pending: Vec::new(),
        }
    }
}

impl Scene3d {
    pub fn orbit(&self) -> &OrbitController {
        &self.orbit
    }

    fn draw(&self, ui: &Ui, rect: egui::Rect) {
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::from_gray(14));
        let cam = self
            .orbit
            .camera(rect.width().max(1.0) as u32, rect.height().max(1.0) as u32);
        let to_screen = |(u, v): (f64, f64)| rect.min + egui::vec2(u as f32, v as f32);

        // Points back to front so nearer ones cover farther ones (painter's algorithm).
        let mut projected: Vec<(f64, Pos2, [u8; 3])> = self
            .scene
            .points
            .iter()
            .filter_map(|(p, rgb)| cam.project(p).map(|(u, v, z)| (z, to_screen((u, v)), *rgb)))
            .filter(|(_, p, _)| rect.expand(4.0).contains(*p))
            .collect();
        projected.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut mesh = egui::Mesh::default();
        for (z, p, [r, g, b]) in projected {
            // Size in world units: nearer points are larger.
            let half = (self.point_size * 4.0 / z as f32).clamp(0.75, 12.0);
            mesh.add_colored_rect(
                egui::Rect::from_center_size(p, egui::vec2(half, half) * 2.0),
                Color32::from_rgb(r, g, b),
            );
        }
        painter.add(mesh);

        let mut segments: Vec<Segment> = DemoScene::axes(0.5).to_vec();
        if self.show_frusta {
            for (i, c) in self.scene.cameras.iter().enumerate() {
                let rgba = if i == self.selected_camera {
                    [255, 153, 51, 255]
                } else {
                    [180, 190, 205, 150]
                };
                segments.extend(DemoScene::frustum_segments(c, 0.25, rgba));
            }
        }
        for s in segments {
            if let (Some(a), Some(b)) = (cam.project(&s.a), cam.project(&s.b)) {
                let [r, g, b_, a_] = s.rgba;
                painter.line_segment(
                    [to_screen((a.0, a.1)), to_screen((b.0, b.1))],
                    Stroke::new(1.5, Color32::from_rgba_unmultiplied(r, g, b_, a_)),
                );
            }
        }
        painter.text(
            rect.left_bottom() + egui::vec2(10.0, -10.0),
            egui::Align2::LEFT_BOTTOM,
            "Drag to orbit · scroll to zoom · F to reset",
            egui::TextStyle::Small.resolve(ui.style()),
            Color32::from_gray(160),
        );
    }
}

impl Workspace for Scene3d {
    fn poll(&mut self, _shared: &mut Shared) {}

    fn items_panel(&mut self, ui: &mut Ui, _shared: &mut Shared) {
        ui.heading("Scene");
        ui.label(RichText::new("Demo: point cloud and turntable cameras").weak());
        ui.separator();
        ui.label(RichText::new("Cameras").strong());
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                for i in 0..self.scene.cameras.len() {
                    if ui
                        .selectable_label(i == self.selected_camera, format!("camera {i:02}"))
                        .clicked()
                    {
                        self.selected_camera = i;
                    }
                }
                if !self.pending.is_empty() {
                    ui.separator();
                    ui.label(RichText::new("Opened (renderer pending)").strong());
                    for p in &self.pending {
                        ui.label(p.display().to_string());
                    }
                }
            });
    }

    fn central(&mut self, ui: &mut Ui, _shared: &mut Shared) {
        let (rect, response) =
            ui.allocate_exact_size(ui.available_size(), egui::Sense::click_and_drag());
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
        self.draw(ui, rect);
    }

    fn inspector(&mut self, ui: &mut Ui, _shared: &mut Shared) {
        ui.heading("View");
        ui.add(egui::Slider::new(&mut self.point_size, 0.5..=10.0).text("point size"));
        ui.checkbox(&mut self.show_frusta, "camera frusta");
        ui.separator();
        if let Some(c) = self.scene.cameras.get(self.selected_camera) {
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

    fn handle_keys(&mut self, ctx: &egui::Context) {
        if shortcuts::pressed(ctx, &shortcuts::FIT_VIEW) {
            self.orbit = OrbitController::default();
        }
        if shortcuts::pressed(ctx, &shortcuts::ORBIT_LEFT) {
            self.orbit.orbit(-0.15, 0.0);
        }
        if shortcuts::pressed(ctx, &shortcuts::ORBIT_RIGHT) {
            self.orbit.orbit(0.15, 0.0);
        }
    }

    fn bindings(&self) -> &'static [&'static shortcuts::Binding] {
        shortcuts::SCENE3D
    }

    fn open(&mut self, path: &Path, content: Content, shared: &mut Shared) {
        shared.toasts.info(format!(
            "{}: recognised as {content:?}; this build lists it but cannot render it yet",
            path.display()
        ));
        self.pending.push(path.to_path_buf());
    }

    fn is_busy(&self) -> bool {
        false
    }
}

//! BioMed workspace: a virtualised thumbnail grid of figure–caption samples with a
//! detail inspector. Only the rows on screen are laid out, so the grid's cost does not
//! grow with the number of items.

use super::{Shared, Workspace};
use crate::image_cache::{ImageSource, ImageState, Resolution};
use crate::routing::Content;
use crate::ui::{shortcuts, theme, widgets};
use egui::{RichText, Ui};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, serde::Deserialize)]
pub struct Sample {
    pub key: String,
    pub image: String,
    pub caption: String,
    pub primary_label: String,
    pub secondary_label: String,
    pub license: String,
    #[serde(skip)]
    source: Option<ImageSource>,
}

pub struct BioMed {
    samples: Vec<Sample>,
    /// Indices of `samples` passing the filter.
    visible: Vec<usize>,
    query: String,
    selected: Option<usize>,
    thumb_size: f32,
    pending: Vec<PathBuf>,
}

impl Default for BioMed {
    fn default() -> Self {
        let mut samples: Vec<Sample> =
            serde_json::from_str(crate::demo::BIOMED_JSON).unwrap_or_default();
        for s in &mut samples {
            s.source = crate::demo::image(&s.image);
        }
        let mut out = Self {
            samples,
            visible: Vec::new(),
            query: String::new(),
            selected: Some(0),
            thumb_size: 160.0,
            pending: Vec::new(),
        };
        out.refilter();
        out
    }
}

impl BioMed {
    pub fn visible_count(&self) -> usize {
        self.visible.len()
    }

    pub fn set_query(&mut self, query: &str) {
        self.query = query.to_owned();
        self.refilter();
    }

    fn refilter(&mut self) {
        let q = self.query.to_lowercase();
        self.visible = (0..self.samples.len())
            .filter(|&i| {
                let s = &self.samples[i];
                q.is_empty()
                    || s.caption.to_lowercase().contains(&q)
                    || s.primary_label.to_lowercase().contains(&q)
            })
            .collect();
        if self.selected.is_some_and(|s| !self.visible.contains(&s)) {
            self.selected = self.visible.first().copied();
        }
    }

    fn step_selection(&mut self, delta: isize) {
        let pos = self
            .selected
            .and_then(|s| self.visible.iter().position(|&v| v == s))
            .unwrap_or(0);
        if let Some(&next) = self.visible.get(
            pos.saturating_add_signed(delta)
                .min(self.visible.len().saturating_sub(1)),
        ) {
            self.selected = Some(next);
        }
    }
}

impl Workspace for BioMed {
    fn poll(&mut self, _shared: &mut Shared) {}

    fn items_panel(&mut self, ui: &mut Ui, _shared: &mut Shared) {
        ui.heading("Shards");
        ui.label(RichText::new("Demo sample (BIOMEDICA-style records)").weak());
        for p in &self.pending {
            ui.label(p.display().to_string());
        }
        ui.separator();
        ui.label(RichText::new("Search captions").strong());
        if ui.text_edit_singleline(&mut self.query).changed() {
            self.refilter();
        }
        ui.label(format!(
            "{} of {} items",
            self.visible.len(),
            self.samples.len()
        ));
    }

    fn central(&mut self, ui: &mut Ui, shared: &mut Shared) {
        let tile = egui::vec2(self.thumb_size, self.thumb_size + 22.0);
        let gap = 8.0;
        let cols = ((ui.available_width() + gap) / (tile.x + gap))
            .floor()
            .max(1.0) as usize;
        let rows = self.visible.len().div_ceil(cols);
        let thumb_px = (self.thumb_size * ui.ctx().pixels_per_point()).round() as u32;
        let mut clicked = None;
        egui::ScrollArea::vertical().auto_shrink(false).show_rows(
            ui,
            tile.y + gap,
            rows,
            |ui, row_range| {
                for row in row_range {
                    ui.horizontal(|ui| {
                        for col in 0..cols {
                            let Some(&index) = self.visible.get(row * cols + col) else {
                                break;
                            };
                            let sample = &self.samples[index];
                            let (rect, response) = widgets::tile(ui, tile);
                            let image_rect =
                                egui::Rect::from_min_size(rect.min, egui::vec2(tile.x, tile.x));
                            match sample
                                .source
                                .as_ref()
                                .map(|s| shared.images.get(s, Resolution::Thumbnail(thumb_px)))
                            {
                                Some(ImageState::Ready(img)) => {
                                    let fitted = widgets::fit_rect(image_rect, img.texture_size());
                                    ui.painter().image(
                                        img.texture.id(),
                                        fitted,
                                        egui::Rect::from_min_max(
                                            egui::pos2(0.0, 0.0),
                                            egui::pos2(1.0, 1.0),
                                        ),
                                        egui::Color32::WHITE,
                                    );
                                }
                                Some(ImageState::Loading) => {
                                    widgets::placeholder(ui, image_rect, "…", false)
                                }
                                Some(ImageState::Failed(_)) | None => {
                                    widgets::placeholder(ui, image_rect, "⚠", true)
                                }
                            }
                            ui.painter().text(
                                rect.left_bottom() + egui::vec2(2.0, -4.0),
                                egui::Align2::LEFT_BOTTOM,
                                &sample.primary_label,
                                egui::TextStyle::Small.resolve(ui.style()),
                                ui.visuals().weak_text_color(),
                            );
                            if self.selected == Some(index) {
                                ui.painter().rect_stroke(
                                    rect.expand(2.0),
                                    4.0,
                                    egui::Stroke::new(2.5, theme::ACCENT),
                                    egui::StrokeKind::Outside,
                                );
                            }
                            if response.clicked() {
                                clicked = Some(index);
                            }
                            ui.add_space(gap - ui.spacing().item_spacing.x);
                        }
                    });
                }
            },
        );
        if clicked.is_some() {
            self.selected = clicked;
        }
    }

    fn inspector(&mut self, ui: &mut Ui, shared: &mut Shared) {
        ui.heading("Sample");
        let Some(sample) = self.selected.and_then(|i| self.samples.get(i)) else {
            ui.label("Nothing selected");
            return;
        };
        if let Some(ImageState::Ready(img)) = sample
            .source
            .as_ref()
            .map(|s| shared.images.get(s, Resolution::Thumbnail(512)))
        {
            let w = ui.available_width();
            let size = img.texture_size();
            ui.image((
                img.texture.id(),
                egui::vec2(w, w * size.y / size.x.max(1.0)),
            ));
        }
        ui.add(egui::Label::new(&sample.caption).wrap());
        ui.separator();
        egui::Grid::new("sample_meta")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                for (k, v) in [
                    ("key", &sample.key),
                    ("primary label", &sample.primary_label),
                    ("secondary label", &sample.secondary_label),
                    ("licence", &sample.license),
                ] {
                    ui.label(k);
                    ui.label(v);
                    ui.end_row();
                }
            });
    }

    fn handle_keys(&mut self, ctx: &egui::Context) {
        if shortcuts::pressed(ctx, &shortcuts::NEXT_ITEM) {
            self.step_selection(1);
        }
        if shortcuts::pressed(ctx, &shortcuts::PREV_ITEM) {
            self.step_selection(-1);
        }
        if shortcuts::pressed(ctx, &shortcuts::GRID_LARGER) {
            self.thumb_size = (self.thumb_size * 1.25).min(512.0);
        }
        if shortcuts::pressed(ctx, &shortcuts::GRID_SMALLER) {
            self.thumb_size = (self.thumb_size / 1.25).max(64.0);
        }
    }

    fn bindings(&self) -> &'static [&'static shortcuts::Binding] {
        shortcuts::BIOMED
    }

    fn open(&mut self, path: &Path, content: Content, shared: &mut Shared) {
        shared.toasts.info(format!(
            "{}: recognised as {content:?}; this build lists shards but cannot index them yet",
            path.display()
        ));
        self.pending.push(path.to_path_buf());
    }

    fn is_busy(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caption_filter_counts_match_the_demo_records() {
        let mut b = BioMed::default();
        assert_eq!(b.visible_count(), 5);
        b.set_query("retina");
        // "retina" appears in the fundus caption and the microaneurysm caption.
        assert_eq!(b.visible_count(), 2);
        b.set_query("MICROSCOPY");
        assert_eq!(b.visible_count(), 2);
        b.set_query("no such words");
        assert_eq!(b.visible_count(), 0);
        assert_eq!(b.selected, None);
    }
}

//! The item's images in a grid, each with its own zoom and pan, the boxes drawn on the
//! image they belong to, and the mouse side of box editing: click to select, drag a box
//! to move it, drag a corner or edge handle to resize, draw a new one after `N`.

use super::Grounding;
use crate::datasets::metrics;
use crate::datasets::mig_bench::GroundingItem;
use crate::datasets::review::ReviewBox;
use crate::image_cache::{ImageState, Resolution};
use crate::ui::{theme, widgets};
use crate::workspace::Shared;
use egui::{Color32, Pos2, Rect, Sense, Stroke, Ui, Vec2, pos2, vec2};
use loupe_models::answer::{NormBox, parse_qwen_boxes};

/// Zoom and pan of one image cell; zoom 1 and no pan is "fit".
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageView {
    pub zoom: f32,
    pub pan: Vec2,
}

impl Default for ImageView {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            pan: Vec2::ZERO,
        }
    }
}

/// The mouse gesture in progress.
#[derive(Clone, Debug, Default)]
enum Drag {
    #[default]
    None,
    Pan(usize),
    Draw {
        image: usize,
        start: Pos2,
        original: Option<Vec<ReviewBox>>,
    },
    Move {
        index: usize,
        base: NormBox,
        start: Pos2,
    },
    /// A handle: which x edge (-1 left, 1 right, 0 none) and which y edge.
    Handle {
        index: usize,
        base: NormBox,
        hx: i8,
        hy: i8,
    },
}

#[derive(Default)]
pub(super) struct ViewState {
    pub views: Vec<ImageView>,
    /// The item the views belong to (they reset on another item).
    pub item: Option<usize>,
    /// The selected image (digits 1–6, or a click).
    pub image: usize,
    /// Index into the item's working boxes.
    pub selected_box: Option<usize>,
    /// `N` was pressed: the next drag draws a box.
    pub drawing: bool,
    drag: Drag,
    /// Where each image was drawn last frame (whole image, zoom included).
    pub rects: Vec<(usize, Rect)>,
    pub scroll_to_selected: bool,
}

impl ViewState {
    pub fn fit(&mut self) {
        for v in &mut self.views {
            *v = ImageView::default();
        }
    }
}

/// Box corners and edge midpoints, corners first so they win where they overlap.
const HANDLES: [(i8, i8); 8] = [
    (-1, -1),
    (1, -1),
    (-1, 1),
    (1, 1),
    (0, -1),
    (0, 1),
    (-1, 0),
    (1, 0),
];
const HANDLE_RADIUS: f32 = 9.0;
/// A drawn box narrower or lower than this (normalised) is a slip, not a box.
const MIN_SIZE: f32 = 0.004;

fn ordered(b: NormBox) -> NormBox {
    let c = |v: f32| v.clamp(0.0, 1.0);
    NormBox::new(
        c(b.x1.min(b.x2)),
        c(b.y1.min(b.y2)),
        c(b.x1.max(b.x2)),
        c(b.y1.max(b.y2)),
    )
}

fn handle_pos(r: Rect, hx: i8, hy: i8) -> Pos2 {
    let x = match hx {
        -1 => r.left(),
        1 => r.right(),
        _ => r.center().x,
    };
    let y = match hy {
        -1 => r.top(),
        1 => r.bottom(),
        _ => r.center().y,
    };
    pos2(x, y)
}

fn to_screen(shown: Rect, b: NormBox) -> Rect {
    let p = |x: f32, y: f32| shown.min + vec2(x * shown.width(), y * shown.height());
    Rect::from_min_max(p(b.x1, b.y1), p(b.x2, b.y2))
}

fn to_norm(shown: Rect, p: Pos2) -> Pos2 {
    pos2(
        (p.x - shown.min.x) / shown.width(),
        (p.y - shown.min.y) / shown.height(),
    )
}

impl Grounding {
    pub(super) fn image_grid(&mut self, ui: &mut Ui, item: &GroundingItem, shared: &mut Shared) {
        if self.view.item != Some(self.selected) {
            self.view.item = Some(self.selected);
            self.view.views = vec![ImageView::default(); item.images.len()];
            self.view.selected_box = None;
            // Start on the image the question asks about: digits and arrows act there.
            self.view.image = item
                .target
                .unwrap_or(0)
                .min(item.images.len().saturating_sub(1));
            self.view.drag = Drag::None;
            self.view.scroll_to_selected = true;
        }
        self.view
            .views
            .resize(item.images.len(), ImageView::default());
        self.view.rects.clear();
        let n = item.images.len().max(1);
        let cols = match n {
            1 => 1,
            2 | 4 => 2,
            _ => 3,
        };
        let rows = n.div_ceil(cols);
        let avail = ui.available_rect_before_wrap();
        let gap = 8.0;
        let cell = vec2(
            (avail.width() - gap * (cols - 1) as f32) / cols as f32,
            (avail.height() - gap * (rows - 1) as f32) / rows as f32,
        );
        // Reference boxes the question itself holds (region tasks) belong to image 1.
        let refs = parse_qwen_boxes(&item.question);
        for (i, source) in item.images.iter().enumerate() {
            let (r, c) = (i / cols, i % cols);
            let min = avail.min + vec2(c as f32 * (cell.x + gap), r as f32 * (cell.y + gap));
            let rect = Rect::from_min_size(min, cell).shrink2(vec2(0.0, 12.0));
            let is_target = item.target == Some(i);
            let mut label_at = rect.left_top();
            let resp = ui.interact(
                rect,
                ui.scope_id().with(("grounding_cell", i)),
                Sense::click_and_drag(),
            );
            match shared.images.get(source, Resolution::Full) {
                ImageState::Ready(img) => {
                    let fitted = widgets::fit_rect(rect, img.texture_size());
                    let v = self.view.views[i];
                    let shown =
                        Rect::from_center_size(fitted.center() + v.pan, fitted.size() * v.zoom);
                    self.view.rects.push((i, shown));
                    label_at = fitted.left_top().max(rect.left_top());
                    let clip = ui.clip_rect();
                    ui.set_clip_rect(rect.intersect(clip));
                    ui.painter().image(
                        img.texture.id(),
                        shown,
                        Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
                        Color32::WHITE,
                    );
                    self.draw_boxes(ui, item, i, shown, &refs);
                    ui.set_clip_rect(clip);
                    self.cell_input(ui, &resp, i, rect, fitted, shown);
                }
                ImageState::Loading => widgets::placeholder(ui, rect, "loading…", false),
                ImageState::Failed(msg) => {
                    widgets::placeholder(ui, rect, &format!("⚠ {msg}"), true)
                }
            }
            let selected = self.view.image == i && item.images.len() > 1;
            if selected {
                ui.painter().rect_stroke(
                    rect.expand(3.0),
                    4.0,
                    Stroke::new(2.0, theme::ACCENT.gamma_multiply(0.7)),
                    egui::StrokeKind::Outside,
                );
            }
            // The caption sits on the image's own top edge, wherever letterboxing put it.
            let caption = format!(
                "Image {}{}",
                i + 1,
                if is_target { "  ·  target" } else { "" }
            );
            ui.painter().text(
                label_at - vec2(0.0, 11.0),
                egui::Align2::LEFT_CENTER,
                caption,
                egui::TextStyle::Small.resolve(ui.style()),
                if is_target {
                    theme::GT
                } else if selected {
                    theme::ACCENT
                } else {
                    ui.visuals().weak_text_color()
                },
            );
        }
        ui.allocate_rect(avail, Sense::hover());
    }

    fn draw_boxes(&self, ui: &Ui, item: &GroundingItem, i: usize, shown: Rect, refs: &[NormBox]) {
        if i == 0 {
            for r in refs {
                widgets::draw_box(
                    ui,
                    to_screen(shown, *r),
                    theme::PALETTE[2],
                    "ref",
                    widgets::Tag::Above,
                );
            }
        }
        if let (true, Some(gt)) = (item.target == Some(i), item.gt) {
            widgets::draw_box(
                ui,
                to_screen(shown, gt),
                theme::GT,
                "GT",
                widgets::Tag::Above,
            );
        }
        // The model's box goes on the image its answer names (the target when it names
        // none), so wrong-image answers are visible.
        let pred = self.predictions.get(&self.selected).map(|a| &a.prediction);
        if let Some(pb) = pred
            .filter(|p| p.image.or(item.target) == Some(i))
            .and_then(|p| metrics::scored_boxes(p, self.y_correction).scored())
        {
            let pb = NormBox::new(pb[0] as f32, pb[1] as f32, pb[2] as f32, pb[3] as f32);
            widgets::draw_box(
                ui,
                to_screen(shown, pb),
                theme::PALETTE[0],
                &self.model_name,
                widgets::Tag::Below,
            );
        }
        // Compared models, each in its own colour, on the image its answer names.
        for (k, (name, answers)) in self.others.iter().enumerate() {
            if let Some(p) = answers.get(&self.selected).map(|a| &a.prediction)
                && p.image.or(item.target) == Some(i)
                && let Some(pb) = p.bbox
            {
                widgets::draw_box(
                    ui,
                    to_screen(shown, pb),
                    super::compared_colour(k),
                    name,
                    widgets::Tag::Below,
                );
            }
        }
        // Boxes of a live (possibly still streaming) answer.
        if let Some(live) = self.runner.answers.get(&self.selected) {
            for gb in live.parsed.boxes.iter().filter(|b| b.image == i) {
                let tag = gb.label.as_deref().unwrap_or("live");
                widgets::draw_box(
                    ui,
                    to_screen(shown, gb.bbox),
                    theme::PALETTE[1],
                    tag,
                    widgets::Tag::Below,
                );
            }
        }
        // The reviewer's boxes, once edited; until then the proposal is the model's box
        // (or the GT) already drawn above, and selecting it shows its handles.
        let review = self.review.get(self.selected);
        let working = self.working_boxes(self.selected);
        if review.boxes.is_some() {
            for (k, b) in working.iter().enumerate().filter(|(_, b)| b.image == i) {
                widgets::draw_box(
                    ui,
                    to_screen(shown, b.bbox),
                    theme::ACCENT,
                    &format!("review {}", k + 1),
                    widgets::Tag::Below,
                );
            }
        }
        if let Some(b) = self
            .view
            .selected_box
            .and_then(|k| working.get(k))
            .filter(|b| b.image == i)
        {
            let r = to_screen(shown, b.bbox);
            let painter = ui.painter();
            painter.rect_stroke(
                r,
                0.0,
                Stroke::new(1.5, Color32::WHITE),
                egui::StrokeKind::Outside,
            );
            for (hx, hy) in HANDLES {
                let h = Rect::from_center_size(handle_pos(r, hx, hy), vec2(9.0, 9.0));
                painter.rect_filled(h, 1.0, Color32::WHITE);
                painter.rect_stroke(
                    h,
                    1.0,
                    Stroke::new(1.5, Color32::BLACK),
                    egui::StrokeKind::Inside,
                );
            }
        }
    }

    /// The smallest working box on image `i` under the normalised point `p`.
    fn box_at(&self, i: usize, p: Pos2) -> Option<usize> {
        self.working_boxes(self.selected)
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                b.image == i
                    && (b.bbox.x1..=b.bbox.x2).contains(&p.x)
                    && (b.bbox.y1..=b.bbox.y2).contains(&p.y)
            })
            .min_by(|a, b| a.1.bbox.area().total_cmp(&b.1.bbox.area()))
            .map(|(k, _)| k)
    }

    /// Set box `index` of the selected item live (one undo step per gesture).
    fn preview_box(&mut self, index: usize, bbox: NormBox) {
        let proposal = self.proposal(self.selected);
        self.review.preview(self.selected, |r| {
            let boxes = r.boxes.get_or_insert(proposal);
            if let Some(b) = boxes.get_mut(index) {
                b.bbox = ordered(bbox);
            }
        });
    }

    fn cell_input(
        &mut self,
        ui: &Ui,
        resp: &egui::Response,
        i: usize,
        cell: Rect,
        fitted: Rect,
        shown: Rect,
    ) {
        // Wheel (or pinch / Ctrl+wheel) zooms around the pointer.
        if resp.hovered() {
            let (scroll, pinch, pointer) = ui.input(|inp| {
                (
                    inp.smooth_scroll_delta().y,
                    inp.zoom_delta(),
                    inp.pointer.hover_pos(),
                )
            });
            let factor = (scroll * 0.002).exp() * pinch;
            if let (Some(p), true) = (pointer, (factor - 1.0).abs() > 1e-4) {
                let v = &mut self.view.views[i];
                let new_zoom = (v.zoom * factor).clamp(0.5, 40.0);
                let centre = fitted.center() + v.pan;
                let new_centre = p + (centre - p) * (new_zoom / v.zoom);
                v.pan = new_centre - fitted.center();
                v.zoom = new_zoom;
            }
        }
        if resp.clicked() {
            self.view.image = i;
            self.view.selected_box = resp
                .interact_pointer_pos()
                .and_then(|p| self.box_at(i, to_norm(shown, p)));
        }
        if resp.drag_started_by(egui::PointerButton::Middle)
            || resp.drag_started_by(egui::PointerButton::Secondary)
        {
            self.view.drag = Drag::Pan(i);
        } else if resp.drag_started_by(egui::PointerButton::Primary) {
            let origin = ui
                .input(|inp| inp.pointer.press_origin())
                .or(resp.interact_pointer_pos())
                .unwrap_or(cell.center());
            self.view.image = i;
            let p = to_norm(shown, origin);
            let working = self.working_boxes(self.selected);
            let selected = self
                .view
                .selected_box
                .and_then(|k| working.get(k).map(|b| (k, *b)))
                .filter(|(_, b)| b.image == i);
            let handle = selected.and_then(|(k, b)| {
                let r = to_screen(shown, b.bbox);
                HANDLES
                    .iter()
                    .find(|(hx, hy)| handle_pos(r, *hx, *hy).distance(origin) <= HANDLE_RADIUS)
                    .map(|&(hx, hy)| (k, b.bbox, hx, hy))
            });
            self.view.drag = if self.view.drawing {
                Drag::Draw {
                    image: i,
                    start: pos2(p.x.clamp(0.0, 1.0), p.y.clamp(0.0, 1.0)),
                    original: self.review.get(self.selected).boxes,
                }
            } else if let Some((index, base, hx, hy)) = handle {
                Drag::Handle {
                    index,
                    base,
                    hx,
                    hy,
                }
            } else if let Some(index) = self.box_at(i, p) {
                self.view.selected_box = Some(index);
                Drag::Move {
                    index,
                    base: working[index].bbox,
                    start: p,
                }
            } else {
                Drag::Pan(i)
            };
        }
        if resp.dragged() {
            let pos = resp.interact_pointer_pos().map(|p| to_norm(shown, p));
            match (self.view.drag.clone(), pos) {
                (Drag::Pan(k), _) if k == i => {
                    self.view.views[i].pan += resp.drag_delta();
                }
                (
                    Drag::Draw {
                        image,
                        start,
                        original,
                    },
                    Some(p),
                ) if image == i => {
                    let proposal = self.proposal(self.selected);
                    let nb = ordered(NormBox::new(start.x, start.y, p.x, p.y));
                    let mut index = 0;
                    self.review.preview(self.selected, |r| {
                        let mut boxes = original.clone().unwrap_or(proposal);
                        index = boxes.len();
                        boxes.push(ReviewBox { image, bbox: nb });
                        r.boxes = Some(boxes);
                    });
                    self.view.selected_box = Some(index);
                }
                (Drag::Move { index, base, start }, Some(p)) => {
                    let (w, h) = (base.x2 - base.x1, base.y2 - base.y1);
                    let x1 = (base.x1 + p.x - start.x).clamp(0.0, 1.0 - w);
                    let y1 = (base.y1 + p.y - start.y).clamp(0.0, 1.0 - h);
                    self.preview_box(index, NormBox::new(x1, y1, x1 + w, y1 + h));
                }
                (
                    Drag::Handle {
                        index,
                        base,
                        hx,
                        hy,
                    },
                    Some(p),
                ) => {
                    let mut nb = base;
                    match hx {
                        -1 => nb.x1 = p.x,
                        1 => nb.x2 = p.x,
                        _ => {}
                    }
                    match hy {
                        -1 => nb.y1 = p.y,
                        1 => nb.y2 = p.y,
                        _ => {}
                    }
                    self.preview_box(index, nb);
                }
                _ => {}
            }
        }
        if resp.drag_stopped() {
            if let Drag::Draw { original, .. } = &self.view.drag {
                let tiny = self
                    .view
                    .selected_box
                    .and_then(|k| self.working_boxes(self.selected).get(k).copied())
                    .is_none_or(|b| {
                        b.bbox.x2 - b.bbox.x1 < MIN_SIZE || b.bbox.y2 - b.bbox.y1 < MIN_SIZE
                    });
                if tiny {
                    let original = original.clone();
                    self.review.preview(self.selected, |r| r.boxes = original);
                    self.view.selected_box = None;
                }
                self.view.drawing = false;
            }
            self.review.end_gesture();
            self.view.drag = Drag::None;
        }
    }
}

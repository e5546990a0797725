//! The review workflow: decisions, box edits from the keyboard, undo/redo, the note,
//! autosave to the sidecar and export.

use super::{Grounding, Mode, ReviewOpen};
use crate::datasets::export::{self, ExportItem};
use crate::datasets::review::{Decision, ReviewBox, ReviewState};
use crate::datasets::review_autosave::Autosaver;
use crate::image_cache::ImageSource;
use crate::ui::{shortcuts, theme};
use crate::workspace::Shared;
use egui::{Key, Modifiers, RichText, Ui};
use loupe_models::answer::NormBox;
use std::time::{Duration, Instant};

/// Keyboard nudge, normalised: about a pixel at 500 px; Shift is ten times that.
const STEP: f32 = 0.002;

impl Grounding {
    /// The boxes the model proposes for item `i`: its answer's box on the image it
    /// names (with the y-correction when on), else the ground truth on the target.
    pub fn proposal(&self, i: usize) -> Vec<ReviewBox> {
        let Some(item) = self.items.get(i) else {
            return Vec::new();
        };
        export::proposal(
            item,
            self.predictions.get(&i),
            !self.predictions.is_empty(),
            self.y_correction,
        )
    }

    /// The boxes that stand for item `i`: the reviewer's, else the proposal.
    pub fn working_boxes(&self, i: usize) -> Vec<ReviewBox> {
        self.review.get(i).boxes.unwrap_or_else(|| self.proposal(i))
    }

    /// Where each image of the selected item was drawn last frame.
    pub fn image_rects(&self) -> &[(usize, egui::Rect)] {
        &self.view.rects
    }

    pub fn selected_box(&self) -> Option<usize> {
        self.view.selected_box
    }

    /// Change item `i`'s boxes as one undoable edit.
    fn edit_boxes(&mut self, i: usize, change: impl FnOnce(&mut Vec<ReviewBox>)) {
        let proposal = self.proposal(i);
        self.review.edit(i, |r| {
            change(r.boxes.get_or_insert(proposal));
        });
    }

    pub(super) fn open_review(&mut self, review: Option<ReviewOpen>, shared: &mut Shared) {
        self.flush_review();
        match review {
            Some(r) => {
                for p in r.load.problems {
                    shared.toasts.error(p);
                }
                if r.load.restored {
                    shared.toasts.info(format!(
                        "Review restored from {}: {} items",
                        r.sidecar.display(),
                        r.load.state.reviewed().count()
                    ));
                }
                self.review = r.load.state;
                self.sidecar = Some((r.sidecar, r.fingerprint));
                if self.autosaver.is_none() {
                    match Autosaver::new() {
                        Ok(a) => self.autosaver = Some(a),
                        Err(e) => shared
                            .toasts
                            .error(format!("cannot start the autosave: {e}")),
                    }
                }
            }
            None => {
                self.review = ReviewState::default();
                self.sidecar = None;
            }
        }
        self.queued_version = self.review.version();
        self.view = super::view::ViewState::default();
        self.note = (usize::MAX, String::new());
    }

    /// Hand the review to the writer thread if it changed. During a drag or while
    /// typing a note, at most twice a second: serialising a big review every frame
    /// would cost more than it protects.
    pub(super) fn autosave(&mut self, force: bool) {
        let (Some((path, fp)), Some(saver)) = (&self.sidecar, &self.autosaver) else {
            return;
        };
        let version = self.review.version();
        if version == self.queued_version {
            return;
        }
        if !force
            && self.review.in_gesture()
            && self
                .last_queued
                .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
        {
            return;
        }
        saver.save_with(path.clone(), self.review.sidecar_snapshot(fp), version);
        self.queued_version = version;
        self.last_queued = Some(Instant::now());
    }

    /// Write the latest review now and wait for it (quitting, switching data).
    pub fn flush_review(&mut self) {
        self.review.end_gesture();
        self.autosave(true);
        if let Some(s) = &self.autosaver {
            s.flush(Duration::from_secs(10));
        }
    }

    /// Every change is on disk (true when there is no sidecar to write).
    pub fn is_saved(&self) -> bool {
        match (&self.sidecar, &self.autosaver) {
            (Some(_), Some(s)) => {
                self.queued_version == self.review.version() && s.saved_tag() == self.queued_version
            }
            _ => true,
        }
    }

    pub(super) fn poll_review(&mut self, shared: &mut Shared) {
        if let Some(s) = &self.autosaver {
            for e in s.take_errors() {
                shared.toasts.error(e);
            }
        }
        if let Some(result) = self.exporting.as_mut().and_then(|h| h.try_take()) {
            self.exporting = None;
            match result {
                Ok(written) => {
                    let names: Vec<String> = written
                        .files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect();
                    shared.toasts.info(format!("Exported {}", names.join(", ")));
                    // Boxes clipped or refused on the way: never silently.
                    for w in written.warnings.iter().take(5) {
                        shared.toasts.error(format!("export: {w}"));
                    }
                    if written.warnings.len() > 5 {
                        shared.toasts.error(format!(
                            "export: {} more box warnings",
                            written.warnings.len() - 5
                        ));
                    }
                    self.last_export = written.files;
                }
                Err(crate::worker::JobError::Cancelled) => {}
                Err(e) => shared.toasts.error(e.to_string()),
            }
        }
        self.autosave(false);
    }

    /// Decide the selected item; then go on to the next listed item.
    pub fn decide(&mut self, decision: Decision) {
        let i = self.selected;
        if i >= self.items.len() {
            return;
        }
        let next = self
            .list
            .visible
            .iter()
            .position(|&v| v == i)
            .and_then(|p| self.list.visible.get(p + 1).copied());
        // Accepting freezes the proposal: later prediction files cannot change what
        // was accepted.
        let proposal = self.proposal(i);
        self.review.edit(i, |r| {
            r.decision = decision;
            if decision == Decision::Accepted && r.boxes.is_none() {
                r.boxes = Some(proposal);
            }
        });
        if self.advance
            && let Some(n) = next
        {
            self.selected = n;
        }
    }

    fn next_unreviewed(&mut self) {
        let visible = &self.list.visible;
        let start = visible
            .iter()
            .position(|&v| v == self.selected)
            .map_or(0, |p| p + 1);
        let found = (0..visible.len())
            .map(|k| visible[(start + k) % visible.len()])
            .find(|&i| self.review.decision(i) == Decision::Unreviewed);
        if let Some(i) = found {
            self.selected = i;
        }
    }

    fn select_image(&mut self, k: usize) {
        let Some(item) = self.items.get(self.selected) else {
            return;
        };
        if k >= item.images.len() {
            return;
        }
        let on_image: Vec<usize> = self
            .working_boxes(self.selected)
            .iter()
            .enumerate()
            .filter(|(_, b)| b.image == k)
            .map(|(j, _)| j)
            .collect();
        // Pressing the image's digit again cycles through its boxes.
        let current = self.view.selected_box.filter(|_| self.view.image == k);
        self.view.selected_box = match current.and_then(|c| on_image.iter().position(|&j| j == c)) {
            Some(p) => on_image.get(p + 1).or(on_image.first()).copied(),
            None => on_image.first().copied(),
        };
        self.view.image = k;
    }

    fn nudge(&mut self, change: impl Fn(&mut NormBox)) {
        let Some(k) = self.view.selected_box else {
            return;
        };
        let i = self.selected;
        self.edit_boxes(i, |boxes| {
            if let Some(b) = boxes.get_mut(k) {
                let mut nb = b.bbox;
                change(&mut nb);
                let c = |v: f32| v.clamp(0.0, 1.0);
                let nb = NormBox::new(c(nb.x1), c(nb.y1), c(nb.x2), c(nb.y2));
                // An edge may not cross the opposite one.
                if nb.x2 - nb.x1 >= 0.001 && nb.y2 - nb.y1 >= 0.001 {
                    b.bbox = nb;
                }
            }
        });
    }

    /// Arrow keys with a box selected: move it; Alt pushes the edge the arrow points to
    /// out; Ctrl pulls the opposite edge in. Shift takes ten times the step.
    fn arrow_keys(&mut self, ctx: &egui::Context) -> bool {
        if self.view.selected_box.is_none() {
            return false;
        }
        let arrows = [
            Key::ArrowLeft,
            Key::ArrowRight,
            Key::ArrowUp,
            Key::ArrowDown,
        ];
        let mods = [
            Modifiers::ALT | Modifiers::SHIFT,
            Modifiers::ALT,
            Modifiers::COMMAND | Modifiers::SHIFT,
            Modifiers::COMMAND,
            Modifiers::SHIFT,
            Modifiers::NONE,
        ];
        let mut acted = false;
        for key in arrows {
            // Most specific first: a plain pattern also matches Shift / Alt held.
            let hit = mods
                .iter()
                .find(|m| ctx.input_mut(|i| i.consume_key(**m, key)))
                .copied();
            let Some(m) = hit else { continue };
            acted = true;
            let step = if m.shift { STEP * 10.0 } else { STEP };
            let (dx, dy) = match key {
                Key::ArrowLeft => (-step, 0.0),
                Key::ArrowRight => (step, 0.0),
                Key::ArrowUp => (0.0, -step),
                _ => (0.0, step),
            };
            if m.alt {
                self.nudge(|b| {
                    if dx < 0.0 {
                        b.x1 += dx;
                    } else {
                        b.x2 += dx;
                    }
                    if dy < 0.0 {
                        b.y1 += dy;
                    } else {
                        b.y2 += dy;
                    }
                });
            } else if m.command {
                self.nudge(|b| {
                    if dx > 0.0 {
                        b.x1 += dx;
                    } else {
                        b.x2 += dx;
                    }
                    if dy > 0.0 {
                        b.y1 += dy;
                    } else {
                        b.y2 += dy;
                    }
                });
            } else {
                self.nudge(|b| {
                    let (w, h) = (b.x2 - b.x1, b.y2 - b.y1);
                    b.x1 = (b.x1 + dx).clamp(0.0, 1.0 - w);
                    b.y1 = (b.y1 + dy).clamp(0.0, 1.0 - h);
                    b.x2 = b.x1 + w;
                    b.y2 = b.y1 + h;
                });
            }
        }
        acted
    }

    pub(super) fn review_keys(&mut self, ctx: &egui::Context) {
        // Typing a note (or any text) owns the keyboard.
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        use shortcuts as s;
        // Redo before undo: Ctrl+Z as a pattern also matches Ctrl+Shift+Z.
        if (s::pressed(ctx, &s::REDO) || s::pressed(ctx, &s::REDO_ALT))
            && let Some(i) = self.review.redo()
        {
            self.selected = i;
        }
        if s::pressed(ctx, &s::UNDO)
            && let Some(i) = self.review.undo()
        {
            self.selected = i;
        }
        if s::pressed(ctx, &s::EXPORT) {
            self.export_requested = true;
        }
        let box_keys = self.arrow_keys(ctx);
        if !box_keys {
            if s::pressed(ctx, &s::NEXT_ITEM)
                || s::pressed(ctx, &s::NEXT_ITEM_ALT)
                || s::pressed(ctx, &s::REVIEW_NEXT)
            {
                self.select(1);
            }
            if s::pressed(ctx, &s::PREV_ITEM)
                || s::pressed(ctx, &s::PREV_ITEM_ALT)
                || s::pressed(ctx, &s::REVIEW_PREV)
            {
                self.select(-1);
            }
        }
        if s::pressed(ctx, &s::ACCEPT) {
            self.decide(Decision::Accepted);
        }
        if s::pressed(ctx, &s::REJECT) || s::pressed(ctx, &s::REJECT_ALT) {
            self.decide(Decision::Rejected);
        }
        if s::pressed(ctx, &s::SKIP) {
            self.decide(Decision::Skipped);
        }
        if s::pressed(ctx, &s::NEXT_UNREVIEWED) {
            self.next_unreviewed();
        }
        for (k, b) in s::IMAGES.iter().enumerate() {
            if s::pressed(ctx, b) {
                self.select_image(k);
            }
        }
        if s::pressed(ctx, &s::DRAW_BOX) {
            self.view.drawing = true;
            self.mode = Mode::Images;
        }
        if s::pressed(ctx, &s::DELETE_BOX)
            && let Some(k) = self.view.selected_box.take()
        {
            let i = self.selected;
            self.edit_boxes(i, |boxes| {
                if k < boxes.len() {
                    boxes.remove(k);
                }
            });
        }
        if s::pressed(ctx, &s::DESELECT) {
            self.view.selected_box = None;
            self.view.drawing = false;
        }
        if s::pressed(ctx, &s::FIT_VIEW) {
            self.view.fit();
        }
        if s::pressed(ctx, &s::METRICS_VIEW) {
            self.mode = match self.mode {
                Mode::Images => Mode::Metrics,
                Mode::Metrics => Mode::Images,
            };
        }
        // A box index from another item (after undo jumped) is meaningless.
        if self.view.item != Some(self.selected) {
            self.view.selected_box = None;
        }
    }

    /// The export's view of every item.
    fn export_items(&self) -> Vec<(ExportItem, Vec<ImageSource>)> {
        (0..self.items.len())
            .map(|i| {
                let item = &self.items[i];
                let score = self.list.scores.get(i).copied().flatten();
                (
                    ExportItem::new(i, item, self.review.get(i), self.proposal(i), score),
                    item.images.clone(),
                )
            })
            .collect()
    }

    /// Export COCO, JSONL and CSV next to the data, on a job (image sizes are read from
    /// the files' headers).
    pub fn export(&mut self, shared: &mut Shared) {
        let Some((dir, stem)) = self.export_to.clone() else {
            shared.toasts.error(
                "Export writes next to the data: open a MIG-Bench file or folder first (the demo has none).",
            );
            return;
        };
        if self.exporting.is_some() {
            return;
        }
        self.review.end_gesture();
        let items = self.export_items();
        self.exporting = Some(shared.worker.spawn("Export review", move |ctx| {
            let mut sizes = std::collections::HashMap::new();
            let total = items.len().max(1) as f32;
            let mut out = Vec::with_capacity(items.len());
            for (n, (mut item, sources)) in items.into_iter().enumerate() {
                ctx.check_cancelled()?;
                if n % 256 == 0 {
                    ctx.progress(n as f32 / total, "reading image sizes");
                }
                item.fill_sizes(&sources, &mut sizes)
                    .map_err(crate::worker::JobError::Failed)?;
                out.push(item);
            }
            export::write_all(&dir, &stem, &out)
                .map_err(|e| crate::worker::JobError::Failed(format!("{e:#}")))
        }));
    }

    /// The strip above the images: where we are, the decision, the review actions.
    pub(super) fn review_bar(&mut self, ui: &mut Ui, shared: &mut Shared) {
        if self.export_requested {
            self.export_requested = false;
            self.export(shared);
        }
        let n = self.items.len();
        if n == 0 {
            return;
        }
        let decision = self.review.decision(self.selected);
        ui.horizontal_wrapped(|ui| {
            ui.label(
                RichText::new(format!("Item {} of {n}", self.selected + 1))
                    .strong()
                    .size(17.0),
            );
            let color = match decision {
                Decision::Accepted => theme::GT,
                Decision::Rejected => theme::ERROR,
                Decision::Skipped => theme::ACCENT,
                Decision::Unreviewed => ui.visuals().weak_text_color(),
            };
            ui.label(
                RichText::new(format!("{} {}", decision.mark(), decision.label()))
                    .color(color)
                    .strong()
                    .size(17.0),
            );
            ui.separator();
            if ui.button("✔ Accept").on_hover_text("Enter").clicked() {
                self.decide(Decision::Accepted);
            }
            if ui.button("✖ Reject").on_hover_text("R").clicked() {
                self.decide(Decision::Rejected);
            }
            if ui.button("» Skip").on_hover_text("S").clicked() {
                self.decide(Decision::Skipped);
            }
            if ui
                .selectable_label(self.view.drawing, "+ Box")
                .on_hover_text("N, then drag on an image")
                .clicked()
            {
                self.view.drawing = !self.view.drawing;
            }
            if ui
                .add_enabled(self.review.can_undo(), egui::Button::new("Undo"))
                .on_hover_text("Ctrl+Z")
                .clicked()
                && let Some(i) = self.review.undo()
            {
                self.selected = i;
            }
            if ui
                .add_enabled(self.review.can_redo(), egui::Button::new("Redo"))
                .on_hover_text("Ctrl+Shift+Z / Ctrl+Y")
                .clicked()
                && let Some(i) = self.review.redo()
            {
                self.selected = i;
            }
            ui.separator();
            let metrics_on = self.mode == Mode::Metrics;
            if ui
                .selectable_label(metrics_on, "Metrics")
                .on_hover_text("M")
                .clicked()
            {
                self.mode = if metrics_on {
                    Mode::Images
                } else {
                    Mode::Metrics
                };
            }
            if ui
                .add_enabled(self.export_to.is_some(), egui::Button::new("Export"))
                .on_hover_text("Ctrl+E: COCO JSON, Qwen JSONL and a metrics CSV next to the data")
                .clicked()
            {
                self.export_requested = true;
            }
            let (text, color) = if self.sidecar.is_none() {
                ("not saved (demo)", ui.visuals().weak_text_color())
            } else if self.is_saved() {
                ("saved", theme::GT)
            } else {
                ("saving…", theme::ACCENT)
            };
            ui.label(RichText::new(text).color(color));
        });
        ui.add_space(4.0);
    }

    /// The inspector's review section: decision, boxes, note.
    pub(super) fn review_inspector(&mut self, ui: &mut Ui, shared: &mut Shared) {
        let i = self.selected;
        let review = self.review.get(i);
        ui.label(
            RichText::new(format!(
                "{} {}",
                review.decision.mark(),
                review.decision.label()
            ))
            .strong(),
        );
        let boxes = self.working_boxes(i);
        let sizes: Vec<Option<[u32; 2]>> = self.items[i]
            .images
            .iter()
            .map(
                |src| match shared.images.get(src, crate::image_cache::Resolution::Full) {
                    crate::image_cache::ImageState::Ready(img) => Some(img.original_size),
                    _ => None,
                },
            )
            .collect();
        ui.label(if review.boxes.is_some() {
            "Reviewed boxes (edited)"
        } else {
            "Boxes (the model's proposal)"
        });
        // Wrapped labels, not a grid: a long line must not widen the panel (and shrink
        // the images under a drag in progress).
        for (k, b) in boxes.iter().enumerate() {
            let marker = if self.view.selected_box == Some(k) {
                "> "
            } else {
                ""
            };
            let r = b.bbox;
            let px = sizes
                .get(b.image)
                .copied()
                .flatten()
                .map(|[w, h]| {
                    let p = r.to_pixels(w, h);
                    format!("  px {:.0} {:.0} {:.0} {:.0}", p[0], p[1], p[2], p[3])
                })
                .unwrap_or_default();
            let text = format!(
                "{marker}{}: img {}  {:.3} {:.3} {:.3} {:.3}{px}",
                k + 1,
                b.image + 1,
                r.x1,
                r.y1,
                r.x2,
                r.y2
            );
            ui.add(egui::Label::new(RichText::new(text).monospace()).wrap());
        }
        if self.note.0 != i {
            self.note = (i, review.note.clone());
        }
        let label = ui.label("Note");
        let resp = ui.add(
            egui::TextEdit::multiline(&mut self.note.1)
                .desired_rows(2)
                .desired_width(f32::INFINITY)
                .hint_text("why rejected, what to fix…"),
        );
        resp.clone().labelled_by(label.id);
        if resp.changed() {
            let text = self.note.1.clone();
            self.review.preview(i, |r| r.note = text);
        }
        if resp.lost_focus() {
            self.review.end_gesture();
        }
        ui.checkbox(&mut self.advance, "Go to the next item after a decision");
        if !self.last_export.is_empty() {
            ui.label(RichText::new("Last export").weak());
            for f in &self.last_export {
                let name = f.file_name().unwrap_or_default().to_string_lossy();
                ui.label(RichText::new(name).small())
                    .on_hover_text(f.display().to_string());
            }
        }
    }
}

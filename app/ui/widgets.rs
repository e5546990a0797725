//! Small drawing helpers shared by the workspaces.

use egui::{Color32, Rect, Sense, Stroke, Ui};

/// Fit an image of `size` into `available`, keeping its aspect ratio.
pub fn fit_rect(available: Rect, size: egui::Vec2) -> Rect {
    if size.x <= 0.0 || size.y <= 0.0 {
        return available;
    }
    let scale = (available.width() / size.x).min(available.height() / size.y);
    Rect::from_center_size(available.center(), size * scale)
}

/// A placeholder for an image that is loading or failed, the same size as the image.
pub fn placeholder(ui: &mut Ui, rect: Rect, text: &str, is_error: bool) {
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
    let color = if is_error {
        super::theme::ERROR
    } else {
        ui.visuals().weak_text_color()
    };
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        text,
        egui::TextStyle::Body.resolve(ui.style()),
        color,
    );
}

/// Where a box's tag sits: ground truth above the box, model output below, so the two
/// never cover each other when the boxes agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Above,
    Below,
}

/// A labelled box outline with a readable tag.
pub fn draw_box(ui: &Ui, rect: Rect, color: Color32, label: &str, tag_at: Tag) {
    let painter = ui.painter();
    // A dark halo keeps thin boxes visible on bright images.
    painter.rect_stroke(
        rect,
        0.0,
        Stroke::new(4.5, Color32::from_black_alpha(140)),
        egui::StrokeKind::Middle,
    );
    painter.rect_stroke(rect, 0.0, Stroke::new(2.5, color), egui::StrokeKind::Middle);
    if !label.is_empty() {
        let font = egui::TextStyle::Small.resolve(ui.style());
        let galley = painter.layout_no_wrap(label.to_owned(), font, Color32::BLACK);
        let size = galley.size() + egui::vec2(8.0, 4.0);
        let min = match tag_at {
            Tag::Above => rect.left_top() - egui::vec2(0.0, size.y),
            Tag::Below => rect.left_bottom(),
        };
        let tag = Rect::from_min_size(min, size);
        painter.rect_filled(tag, 2.0, color);
        painter.galley(tag.min + egui::vec2(4.0, 2.0), galley, Color32::BLACK);
    }
}

/// Allocate a clickable tile of `size`.
pub fn tile(ui: &mut Ui, size: egui::Vec2) -> (Rect, egui::Response) {
    ui.allocate_exact_size(size, Sense::click())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_centres() {
        let avail = Rect::from_min_size(egui::pos2(0.0, 0.0), egui::vec2(200.0, 100.0));
        let r = fit_rect(avail, egui::vec2(400.0, 400.0));
        assert_eq!(
            r,
            Rect::from_min_size(egui::pos2(50.0, 0.0), egui::vec2(100.0, 100.0))
        );
    }
}

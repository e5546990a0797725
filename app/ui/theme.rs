//! One look for every workspace, legible on a projector: larger type, strong contrast,
//! one accent colour, and colours for boxes that stay distinct in both themes.

use egui::{Color32, FontFamily, FontId, TextStyle};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Theme {
    #[default]
    Dark,
    Light,
}

impl Theme {
    pub fn toggled(self) -> Self {
        match self {
            Self::Dark => Self::Light,
            Self::Light => Self::Dark,
        }
    }
}

pub const ACCENT: Color32 = Color32::from_rgb(255, 153, 51);
/// Ground truth is always green, model output in the palette below.
pub const GT: Color32 = Color32::from_rgb(64, 210, 120);
pub const ERROR: Color32 = Color32::from_rgb(235, 80, 80);
/// Colour-blind-safe palette (Okabe–Ito) for per-model boxes.
pub const PALETTE: [Color32; 6] = [
    Color32::from_rgb(86, 180, 233),
    Color32::from_rgb(230, 159, 0),
    Color32::from_rgb(204, 121, 167),
    Color32::from_rgb(240, 228, 66),
    Color32::from_rgb(0, 114, 178),
    Color32::from_rgb(213, 94, 0),
];

pub fn apply(ctx: &egui::Context, theme: Theme) {
    let mut visuals = match theme {
        Theme::Dark => egui::Visuals::dark(),
        Theme::Light => egui::Visuals::light(),
    };
    visuals.selection.bg_fill =
        ACCENT.gamma_multiply(if theme == Theme::Dark { 0.55 } else { 0.8 });
    visuals.selection.stroke.color = if theme == Theme::Dark {
        Color32::WHITE
    } else {
        Color32::BLACK
    };
    visuals.hyperlink_color = ACCENT;
    if theme == Theme::Dark {
        visuals.panel_fill = Color32::from_gray(24);
        visuals.extreme_bg_color = Color32::from_gray(12);
    }
    ctx.set_visuals(visuals);
    ctx.all_styles_mut(|style| {
        style.text_styles = [
            (
                TextStyle::Small,
                FontId::new(12.0, FontFamily::Proportional),
            ),
            (TextStyle::Body, FontId::new(15.0, FontFamily::Proportional)),
            (
                TextStyle::Button,
                FontId::new(15.0, FontFamily::Proportional),
            ),
            (
                TextStyle::Heading,
                FontId::new(21.0, FontFamily::Proportional),
            ),
            (
                TextStyle::Monospace,
                FontId::new(14.0, FontFamily::Monospace),
            ),
        ]
        .into();
        style.spacing.item_spacing = egui::vec2(8.0, 6.0);
        style.spacing.button_padding = egui::vec2(8.0, 4.0);
    });
}

/// UI scale steps for Ctrl +/−: each step is about 10 %, bounded for sanity.
pub fn step_scale(scale: f32, steps: i32) -> f32 {
    let stepped = scale * 1.1f32.powi(steps);
    // Snap to two decimals so repeated in/out returns exactly to 1.0.
    ((stepped * 100.0).round() / 100.0).clamp(0.5, 3.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_steps_are_bounded_and_reversible() {
        assert_eq!(step_scale(1.0, 1), 1.1);
        assert_eq!(step_scale(step_scale(1.0, 1), -1), 1.0);
        assert_eq!(step_scale(2.9, 5), 3.0);
        assert_eq!(step_scale(0.55, -5), 0.5);
    }
}

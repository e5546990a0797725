//! Short-lived messages in the corner. Hand-written: the toast crates for egui trail
//! its releases, and this is forty lines.

use egui::{Align2, Color32, RichText};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

pub struct Toast {
    pub level: Level,
    pub text: String,
    shown: Instant,
}

#[derive(Default)]
pub struct Toasts {
    toasts: Vec<Toast>,
}

impl Toasts {
    const INFO_FOR: Duration = Duration::from_secs(4);
    /// Errors stay long enough to read a path aloud in a demo.
    const ERROR_FOR: Duration = Duration::from_secs(12);

    pub fn info(&mut self, text: impl Into<String>) {
        self.push(Level::Info, text.into());
    }

    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        tracing::warn!("{text}");
        self.push(Level::Error, text);
    }

    fn push(&mut self, level: Level, text: String) {
        self.toasts.push(Toast {
            level,
            text,
            shown: Instant::now(),
        });
    }

    pub fn iter(&self) -> impl Iterator<Item = &Toast> {
        self.toasts.iter()
    }

    pub fn show(&mut self, ctx: &egui::Context) {
        self.toasts.retain(|t| {
            t.shown.elapsed()
                < if t.level == Level::Error {
                    Self::ERROR_FOR
                } else {
                    Self::INFO_FOR
                }
        });
        if self.toasts.is_empty() {
            return;
        }
        let mut dismiss = None;
        egui::Area::new(egui::Id::unique("toasts"))
            .anchor(Align2::RIGHT_BOTTOM, egui::vec2(-12.0, -40.0))
            .order(egui::Order::Foreground)
            .show(ctx, |ui| {
                for (i, toast) in self.toasts.iter().enumerate() {
                    let (fill, icon) = match toast.level {
                        Level::Info => (ui.visuals().window_fill, "ℹ"),
                        Level::Error => (Color32::from_rgb(110, 28, 28), "⚠"),
                    };
                    egui::Frame::popup(ui.style()).fill(fill).show(ui, |ui| {
                        ui.set_max_width(460.0);
                        ui.horizontal(|ui| {
                            let color = if toast.level == Level::Error {
                                Color32::WHITE
                            } else {
                                ui.visuals().text_color()
                            };
                            ui.label(RichText::new(icon).color(color).size(18.0));
                            ui.add(
                                egui::Label::new(RichText::new(&toast.text).color(color)).wrap(),
                            );
                            if ui.small_button("✖").on_hover_text("Dismiss").clicked() {
                                dismiss = Some(i);
                            }
                        });
                    });
                }
            });
        if let Some(i) = dismiss {
            self.toasts.remove(i);
        }
        // Wake up to expire the oldest toast even if nothing else happens.
        ctx.request_repaint_after(Duration::from_millis(500));
    }
}

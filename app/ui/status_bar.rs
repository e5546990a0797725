//! The bottom bar: running jobs with progress and cancel, the last error, cache use.

use crate::worker::JobBoard;
use egui::{RichText, Ui};

pub fn show(ui: &mut Ui, board: &JobBoard, cache_bytes: usize, extra: &str) {
    ui.horizontal(|ui| {
        let jobs = board.running();
        if jobs.is_empty() {
            ui.label(RichText::new("Idle").weak());
        }
        for job in jobs.iter().take(3) {
            ui.group(|ui| {
                ui.spinner();
                ui.label(&job.name);
                if let Some(fraction) = job.fraction {
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(120.0)
                            .show_percentage(),
                    );
                }
                if !job.message.is_empty() {
                    ui.label(RichText::new(&job.message).weak());
                }
                if ui
                    .button("Cancel")
                    .on_hover_text(format!("Cancel {}", job.name))
                    .clicked()
                {
                    job.cancel.cancel();
                }
            });
        }
        if jobs.len() > 3 {
            ui.label(format!("+{} more", jobs.len() - 3));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(RichText::new(format!("images {:.0} MB", cache_bytes as f64 / 1e6)).weak());
            if !extra.is_empty() {
                ui.label(RichText::new(extra).weak());
            }
            if let Some(error) = board.last_error() {
                if ui.small_button("✖").on_hover_text("Clear errors").clicked() {
                    board.clear_errors();
                }
                ui.add(
                    egui::Label::new(
                        RichText::new(format!("⚠ {error}")).color(super::theme::ERROR),
                    )
                    .truncate(),
                );
            }
        });
    });
}

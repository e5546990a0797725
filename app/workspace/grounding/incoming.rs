//! Predictions arriving in the Grounding workspace: read on a job, matched to the items
//! (ids = benchmark indices) with a report of what does not fit, shown as a banner with
//! a filter per kind. A file that arrives while its benchmark is still loading (both
//! opened at once: the small file lands first), or that was attached to the demo
//! before a benchmark was opened, attaches to the benchmark once it lands instead of
//! being cleared with the demo's answers.

use super::{Filter, Grounding};
use crate::datasets::predictions::{self, RawFile};
use crate::workspace::Shared;
use egui::{RichText, Ui};
use std::path::{Path, PathBuf};

/// The official eval's output (`Migician_<task>_<time>.json`): records carry a
/// `filter_answer`, which no benchmark item has. Reads only the head of the file.
pub(super) fn is_official_output(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].windows(15).any(|w| w == b"\"filter_answer\"")
}

impl Grounding {
    /// Read a predictions file on a job; `poll_predictions` attaches it.
    pub(super) fn open_predictions(&mut self, path: PathBuf, shared: &mut Shared) {
        let name = format!("Load {}", path.display());
        self.loading_predictions
            .push(shared.worker.spawn(&name, move |_| {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    crate::worker::JobError::Failed(format!("{}: {e}", path.display()))
                })?;
                Ok(predictions::read(&path.display().to_string(), &text))
            }));
    }

    pub(super) fn poll_predictions(&mut self, shared: &mut Shared) {
        let mut done = Vec::new();
        self.loading_predictions.retain_mut(|h| match h.try_take() {
            Some(r) => {
                done.push(r);
                false
            }
            None => true,
        });
        for result in done {
            match result {
                Ok(raw) => {
                    for e in raw.errors.iter().take(3) {
                        shared.toasts.error(e.to_string());
                    }
                    if self.loading.is_some() {
                        // Its benchmark is still loading: attach when it lands.
                        self.pending.push(raw);
                    } else {
                        self.attach_model(vec![raw], shared);
                    }
                }
                Err(crate::worker::JobError::Cancelled) => {}
                Err(e) => shared.toasts.error(e.to_string()),
            }
        }
    }

    /// Score `files` (one model) against the items; it becomes the scored model.
    fn attach_model(&mut self, files: Vec<RawFile>, shared: &mut Shared) {
        let (answers, report) = predictions::attach(&files, &self.items);
        let file = files.first().map(|f| f.file.clone()).unwrap_or_default();
        shared.toasts.info(format!("{file}: {}", report.summary()));
        let name = files
            .iter()
            .find_map(|f| f.model.clone())
            .unwrap_or_else(|| {
                Path::new(&file)
                    .file_stem()
                    .map_or("model".into(), |s| s.to_string_lossy().into_owned())
            });
        self.add_model(name, answers);
        self.report = Some(report);
        self.model_files = files;
    }

    /// A benchmark replaced the items: answers made for the previous data set go;
    /// files that came with this one, or before it onto the demo, attach to it.
    pub(super) fn benchmark_loaded(&mut self, from_file: bool, shared: &mut Shared) {
        let mut carry = std::mem::take(&mut self.pending);
        if !self.from_file {
            carry.splice(0..0, std::mem::take(&mut self.model_files));
        }
        self.from_file = from_file;
        self.predictions.clear();
        self.others.clear();
        self.report = None;
        self.model_files.clear();
        self.list.filter = Filter::default();
        if !carry.is_empty() {
            self.attach_model(carry, shared);
        }
    }

    /// How the scored model's answers fit the items, when they came from a file.
    pub fn report(&self) -> Option<&predictions::Report> {
        self.report.as_ref()
    }

    /// Counts of the predictions report (when something does not fit) and of suspect
    /// ground truth, each a toggle for the list filter of its kind.
    pub(super) fn banner(&mut self, ui: &mut Ui) {
        let suspect = self.items.iter().filter(|i| i.gt_suspect.is_some()).count();
        let unreadable = self.items.iter().filter(|i| i.problem.is_some()).count();
        // A clean report needs no banner (its summary was a toast).
        let report = self.report.as_ref().filter(|r| !r.is_clean());
        let Some(r) = report else {
            if suspect + unreadable > 0 {
                ui.horizontal_wrapped(|ui| self.item_toggles(ui, suspect, unreadable));
            }
            return;
        };
        let (matched, unmatched) = (r.matched, r.unmatched.clone());
        let counts = [
            (r.duplicates.len() + r.overlaps.len(), "duplicate"),
            (r.mismatched.len(), "task/question mismatch"),
            (r.missing.len(), "missing"),
        ];
        let frame =
            egui::Frame::group(ui.style()).fill(ui.visuals().warn_fg_color.gamma_multiply(0.15));
        frame.show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(format!("{matched} matched")).strong());
                let un = ui.label(format!("{} unmatched ids", unmatched.len()));
                if !unmatched.is_empty() {
                    un.on_hover_text(
                        unmatched
                            .iter()
                            .take(10)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n"),
                    );
                }
                let f = &mut self.list.filter;
                for (n, kind) in counts {
                    let on = match kind {
                        "duplicate" => &mut f.duplicate,
                        "missing" => &mut f.missing,
                        _ => &mut f.mismatch,
                    };
                    let label = format!("{n} {kind}");
                    if n == 0 {
                        ui.label(label);
                    } else if ui.selectable_label(*on, label).clicked() {
                        *on = !*on;
                    }
                }
                self.item_toggles(ui, suspect, unreadable);
            });
        });
    }

    fn item_toggles(&mut self, ui: &mut Ui, suspect: usize, unreadable: usize) {
        let f = &mut self.list.filter;
        if suspect > 0
            && ui
                .selectable_label(f.gt_suspect, format!("{suspect} ground truth suspect"))
                .on_hover_text(
                    "Ground truth with swapped corners, zero area or reaching outside the image",
                )
                .clicked()
        {
            f.gt_suspect = !f.gt_suspect;
        }
        if unreadable > 0 {
            ui.label(
                RichText::new(format!("{unreadable} unreadable records"))
                    .color(crate::ui::theme::ERROR),
            )
            .on_hover_text("Records of the file that could not be read; their ids are kept");
        }
    }
}

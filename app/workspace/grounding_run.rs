//! Running the grounding model from the Grounding workspace: the model lives on its
//! own inference thread, answers stream back token by token, and the boxes of the
//! partial answer are drawn as they appear.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;

use crossbeam_channel::{Receiver, unbounded};
use egui::{RichText, Ui};

use super::Shared;
use crate::datasets::mig_bench::GroundingItem;
use crate::grounding_model::{GroundResult, GroundingModel, ModelSettings, ground, parse_answer};
use crate::image_cache::ImageSource;
use crate::ui::theme;
use crate::worker::{InferenceThread, JobError, JobHandle};
use loupe_models::answer::GroundedAnswer;
use loupe_models::reference::official_prompt;

/// A model answer produced in this session, streaming or finished.
#[derive(Clone, Debug, Default)]
pub struct LiveAnswer {
    pub question: String,
    pub text: String,
    pub parsed: GroundedAnswer,
    pub done: bool,
    pub stats: Option<String>,
}

#[derive(Default)]
pub struct ModelRunner {
    pub settings: ModelSettings,
    thread: Option<InferenceThread<GroundingModel>>,
    job: Option<(usize, JobHandle<GroundResult>)>,
    stream: Option<Receiver<String>>,
    /// Answers by item index.
    pub answers: BTreeMap<usize, LiveAnswer>,
    /// The user's edits of the instruction, per data set (its file) and item index: an
    /// edit made on one data set never shows on another's item of the same index.
    instructions: HashMap<(String, usize), String>,
    folder_dialog: Option<JobHandle<Option<PathBuf>>>,
    /// Items waiting for a batch run: (item, images, instruction).
    queue: VecDeque<(usize, Vec<ImageSource>, String)>,
    /// Items in the current batch (for "k of n").
    batch_total: usize,
    /// Answers finished since the workspace last took them (item, raw text).
    finished: Vec<(usize, String)>,
    /// The "Run on shown items" button was pressed (the workspace knows the list).
    pub batch_requested: bool,
}

impl ModelRunner {
    /// The instruction for item `index` of `dataset`: the user's edit, else the prompt
    /// the official evaluation builds for the item's task (question + format suffix).
    pub fn instruction_for(&self, dataset: &str, index: usize, item: &GroundingItem) -> String {
        self.instructions
            .get(&(dataset.to_owned(), index))
            .cloned()
            .unwrap_or_else(|| official_prompt(&item.task, &item.question))
    }

    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    pub fn is_busy(&self) -> bool {
        self.job.is_some() || self.folder_dialog.is_some() || !self.queue.is_empty()
    }

    /// Answer every item of `jobs` in turn (one model load, then one request each).
    pub fn run_batch(&mut self, jobs: Vec<(usize, Vec<ImageSource>, String)>, shared: &Shared) {
        self.batch_total = jobs.len();
        self.queue = jobs.into();
        self.next_in_batch(shared);
    }

    fn next_in_batch(&mut self, shared: &Shared) {
        while self.job.is_none() {
            let Some((item, images, question)) = self.queue.pop_front() else {
                return;
            };
            self.run(item, images, question, shared);
        }
    }

    /// "k of n" while a batch runs.
    pub fn batch_progress(&self) -> Option<(usize, usize)> {
        (self.batch_total > 0 && (self.job.is_some() || !self.queue.is_empty()))
            .then(|| (self.batch_total - self.queue.len(), self.batch_total))
    }

    /// Finished answers, for the workspace to score.
    pub fn take_finished(&mut self) -> Vec<(usize, String)> {
        std::mem::take(&mut self.finished)
    }

    /// Starts answering `question` about `images` for item `item`.
    pub fn run(
        &mut self,
        item: usize,
        images: Vec<ImageSource>,
        question: String,
        shared: &Shared,
    ) {
        if self.job.is_some() {
            return;
        }
        let thread = match &self.thread {
            Some(t) => t,
            None => {
                let board = shared.worker.board().clone();
                let repaint = shared.worker.repaint_hook().clone();
                match InferenceThread::spawn("grounding-model", board, repaint) {
                    Ok(t) => self.thread.insert(t),
                    Err(e) => {
                        self.answers.insert(
                            item,
                            LiveAnswer {
                                question,
                                text: format!("cannot start the inference thread: {e}"),
                                done: true,
                                ..Default::default()
                            },
                        );
                        return;
                    }
                }
            }
        };
        let (tx, rx) = unbounded::<String>();
        let settings = self.settings.clone();
        let q = question.clone();
        let name = format!("Ground item {}", item + 1);
        let handle = thread.submit(&name, move |slot: &mut Option<GroundingModel>, ctx| {
            let failed = |e: anyhow::Error| JobError::Failed(format!("{e:#}"));
            if slot.as_ref().is_none_or(|m| m.key != settings.key()) {
                *slot = None;
                ctx.progress(0.0, format!("loading {}", settings.source));
                let cancel = ctx.cancel_token().clone();
                let fetch = loupe_models::qwen2vl::loader::Fetch {
                    progress: &|file, done, total| {
                        ctx.progress(
                            done as f32 / total.max(1) as f32 * 0.5,
                            format!("downloading {file}: {} of {} MB", done >> 20, total >> 20),
                        );
                    },
                    cancel: &move || cancel.is_cancelled(),
                };
                let model = settings
                    .load(&fetch, &|done, total| {
                        let f = done as f32 / total.max(1) as f32;
                        ctx.progress(f * 0.5, format!("loading weights {:.0} %", f * 100.0));
                    })
                    .map_err(failed)?;
                *slot = Some(model);
            }
            ctx.check_cancelled()?;
            let Some(model) = slot.as_mut() else {
                return Err(JobError::Failed("the model did not load".into()));
            };
            ctx.progress(0.5, "reading images");
            let decoded = images
                .iter()
                .map(ImageSource::decode)
                .collect::<Result<Vec<_>, _>>()
                .map_err(JobError::Failed)?;
            ctx.progress(0.55, "reading the prompt");
            let max = settings.max_new_tokens.max(1) as f32;
            let mut n = 0usize;
            ground(
                model,
                &settings,
                &decoded,
                &q,
                &|| ctx.is_cancelled(),
                &mut |t| {
                    n += 1;
                    let _ = tx.send(t.to_string());
                    ctx.progress(0.6 + 0.4 * (n as f32 / max).min(1.0), format!("{n} tokens"));
                },
            )
            .map_err(|e| {
                if ctx.is_cancelled() {
                    JobError::Cancelled
                } else {
                    failed(e)
                }
            })
        });
        self.answers.insert(
            item,
            LiveAnswer {
                question,
                ..Default::default()
            },
        );
        self.stream = Some(rx);
        self.job = Some((item, handle));
    }

    /// Stop the running answer and drop the rest of a batch.
    pub fn cancel(&mut self) {
        self.queue.clear();
        if let Some((_, job)) = &self.job {
            job.cancel();
        }
    }

    /// Takes streamed text and finished results; called every frame.
    pub fn poll(&mut self, shared: &mut Shared, n_images: impl Fn(usize) -> usize) {
        if let Some(result) = self.folder_dialog.as_mut().and_then(|h| h.try_take()) {
            self.folder_dialog = None;
            if let Ok(Some(dir)) = result {
                self.settings.source = dir.display().to_string();
            }
        }
        let Some((item, _)) = &self.job else {
            self.next_in_batch(shared);
            return;
        };
        let item = *item;
        if let (Some(rx), Some(answer)) = (&self.stream, self.answers.get_mut(&item)) {
            let mut changed = false;
            for delta in rx.try_iter() {
                answer.text.push_str(&delta);
                changed = true;
            }
            if changed {
                answer.parsed = parse_answer(&answer.text, &answer.question, n_images(item));
            }
        }
        let Some(result) = self.job.as_mut().and_then(|(_, h)| h.try_take()) else {
            return;
        };
        self.job = None;
        self.stream = None;
        let answer = self.answers.entry(item).or_default();
        answer.done = true;
        match result {
            Ok(r) => {
                self.finished.push((item, r.answer.clone()));
                answer.text = r.answer.clone();
                answer.parsed = parse_answer(&r.answer, &answer.question, n_images(item));
                answer.stats = Some(format!(
                    "{}{} prompt tokens · {:.1} tok/s prefill · {} generated · {:.1} tok/s",
                    if r.stopped { "stopped · " } else { "" },
                    r.prompt_tokens,
                    r.prefill_tokens_per_sec,
                    r.generated_tokens,
                    r.decode_tokens_per_sec
                ));
                if answer.parsed.boxes.is_empty() && self.batch_total == 0 {
                    shared.toasts.info("The model's answer holds no box");
                }
            }
            Err(JobError::Cancelled) => {
                answer.stats = Some("cancelled".into());
                self.queue.clear();
            }
            Err(e) => {
                answer.stats = Some(e.to_string());
                shared.toasts.error(e.to_string());
            }
        }
    }

    /// The "Model" section of the inspector.
    pub fn panel(
        &mut self,
        ui: &mut Ui,
        shared: &Shared,
        (dataset, item): (&str, usize),
        instruction: &str,
        images: &[ImageSource],
    ) -> bool {
        let mut run = false;
        ui.label(RichText::new("Model").strong());
        ui.add(
            egui::TextEdit::singleline(&mut self.settings.source)
                .hint_text("model folder or owner/name")
                .desired_width(f32::INFINITY),
        )
        .on_hover_text("A local folder with config.json, *.safetensors and tokenizer.json, or a Hugging Face repo id found in the local hub cache");
        ui.horizontal(|ui| {
            if ui
                .add_enabled(self.folder_dialog.is_none(), egui::Button::new("Browse…"))
                .clicked()
            {
                self.folder_dialog = Some(shared.worker.spawn("Choose a model folder", |_| {
                    Ok(rfd::FileDialog::new()
                        .set_title("Choose a model folder")
                        .pick_folder())
                }));
            }
            let label = ui.label("max tokens");
            ui.add(egui::DragValue::new(&mut self.settings.max_new_tokens).range(1..=4096))
                .labelled_by(label.id);
            ui.checkbox(&mut self.settings.sample, "sample");
            if self.settings.sample {
                let label = ui.label("temperature");
                ui.add(
                    egui::DragValue::new(&mut self.settings.temperature)
                        .range(0.01..=2.0)
                        .speed(0.01),
                )
                .labelled_by(label.id);
            }
        });
        let mut text = instruction.to_owned();
        // The official prompt carries a long format suffix: the box scrolls instead of
        // pushing Run and Stop off the inspector.
        let rows = ui.text_style_height(&egui::TextStyle::Body) * 4.5;
        let edited = egui::ScrollArea::vertical()
            .id_salt("instruction")
            .max_height(rows)
            .show(ui, |ui| {
                ui.add(
                    egui::TextEdit::multiline(&mut text)
                        .hint_text("Instruction, e.g. Locate the cup in the second image.")
                        .desired_rows(3)
                        .desired_width(f32::INFINITY),
                )
                .changed()
            })
            .inner;
        if edited {
            self.instructions
                .insert((dataset.to_owned(), item), text.clone());
        }
        ui.horizontal(|ui| {
            let can_run = !self.is_busy() && !images.is_empty();
            let run_button = ui
                .add_enabled(can_run, egui::Button::new(RichText::new("▶ Run").strong()))
                .on_hover_text("Run the model on this item's images (Ctrl+Enter)");
            let ctrl_enter = ui.input(|i| i.modifiers.command && i.key_pressed(egui::Key::Enter));
            if (run_button.clicked() || ctrl_enter) && can_run {
                run = true;
            }
            if ui
                .add_enabled(can_run, egui::Button::new("▶▶ Run on shown items"))
                .on_hover_text("Answer every item the list shows, one after another; the answers become the scored model")
                .clicked()
            {
                self.batch_requested = true;
            }
            if self.is_running()
                && ui
                    .button("■ Stop")
                    .on_hover_text("Stop generating (the answer so far is kept)")
                    .clicked()
            {
                self.cancel();
            }
        });
        if run {
            self.run(item, images.to_vec(), text, shared);
        }
        if let Some((k, n)) = self.batch_progress() {
            ui.label(RichText::new(format!("Answering item {k} of {n}…")).strong());
        }
        if let Some(answer) = self.answers.get(&item) {
            let color = theme::PALETTE[1];
            ui.label(RichText::new("Live answer").color(color).strong());
            let text = if answer.text.is_empty() && !answer.done {
                "…".to_string()
            } else {
                answer.text.clone()
            };
            ui.add(egui::Label::new(RichText::new(text).monospace()).wrap());
            if answer.parsed.truncated {
                ui.colored_label(theme::ERROR, "the answer ends inside a box");
            }
            for b in &answer.parsed.boxes {
                ui.monospace(format!(
                    "image {}: {:.3} {:.3} {:.3} {:.3}{}",
                    b.image + 1,
                    b.bbox.x1,
                    b.bbox.y1,
                    b.bbox.x2,
                    b.bbox.y2,
                    b.label
                        .as_ref()
                        .map(|l| format!("  «{l}»"))
                        .unwrap_or_default()
                ));
            }
            if let Some(s) = &answer.stats {
                ui.label(RichText::new(s).weak().small());
            }
        }
        run
    }
}

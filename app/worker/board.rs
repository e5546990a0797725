use super::CancelToken;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Identifies one job for its whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// What the status bar shows about one running job.
#[derive(Clone, Debug)]
pub struct JobStatus {
    pub id: JobId,
    pub name: String,
    /// `None` until the job reports a fraction (indeterminate progress).
    pub fraction: Option<f32>,
    pub message: String,
    pub started: Instant,
    pub cancel: CancelToken,
}

#[derive(Default)]
struct BoardInner {
    next_id: u64,
    running: Vec<JobStatus>,
    errors: Vec<String>,
}

/// The list of running jobs and recent errors, shared by every worker thread and the UI.
#[derive(Clone, Default)]
pub struct JobBoard(Arc<Mutex<BoardInner>>);

impl JobBoard {
    fn lock(&self) -> MutexGuard<'_, BoardInner> {
        // A poisoned lock only means a job panicked mid-update; the data is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn register(&self, name: &str, cancel: CancelToken) -> JobId {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = JobId(inner.next_id);
        inner.running.push(JobStatus {
            id,
            name: name.to_owned(),
            fraction: None,
            message: String::new(),
            started: Instant::now(),
            cancel,
        });
        id
    }

    pub(super) fn update(&self, id: JobId, fraction: f32, message: String) {
        let mut inner = self.lock();
        if let Some(job) = inner.running.iter_mut().find(|j| j.id == id) {
            job.fraction = Some(fraction.clamp(0.0, 1.0));
            job.message = message;
        }
    }

    pub(super) fn finish(&self, id: JobId) {
        self.lock().running.retain(|j| j.id != id);
    }

    pub(super) fn name_of(&self, id: JobId) -> Option<String> {
        self.lock()
            .running
            .iter()
            .find(|j| j.id == id)
            .map(|j| j.name.clone())
    }

    /// Keep the last few failures for the status bar.
    pub fn record_error(&self, message: String) {
        const KEEP: usize = 20;
        let mut inner = self.lock();
        inner.errors.push(message);
        let excess = inner.errors.len().saturating_sub(KEEP);
        inner.errors.drain(..excess);
    }

    /// A snapshot of the running jobs, oldest first.
    pub fn running(&self) -> Vec<JobStatus> {
        self.lock().running.clone()
    }

    pub fn last_error(&self) -> Option<String> {
        self.lock().errors.last().cloned()
    }

    pub fn clear_errors(&self) {
        self.lock().errors.clear();
    }

    /// Request cancel of every running job (used on exit).
    pub fn cancel_all(&self) {
        for job in &self.lock().running {
            job.cancel.cancel();
        }
    }
}

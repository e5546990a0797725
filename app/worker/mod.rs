//! Background work: a pool of job threads, one dedicated inference thread, and a
//! shared board the status bar reads.
//!
//! Every job gets a [`JobContext`] to report typed progress (fraction + message) and to
//! check its cooperative [`CancelToken`]. Results travel back over a per-job channel held
//! by a [`JobHandle`]; the UI polls it each frame and never blocks. Whenever a job has
//! news the context calls the repaint hook so an idle UI wakes up.

mod board;
mod cancel;
mod inference;
mod pool;

pub use board::{JobBoard, JobId, JobStatus};
pub use cancel::CancelToken;
pub use inference::InferenceThread;
pub use pool::Worker;

use crossbeam_channel::Receiver;
use std::sync::Arc;

/// Why a job produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
    /// The thread running the job went away (it panicked); the message says which job.
    #[error("job '{0}' stopped unexpectedly")]
    Lost(String),
}

impl JobError {
    /// Wrap any error, keeping its full cause chain in the message.
    pub fn failed(err: impl Into<anyhow::Error>) -> Self {
        Self::Failed(format!("{:#}", err.into()))
    }
}

/// Called whenever a job reports something, so the UI repaints even when idle.
pub type RepaintHook = Arc<dyn Fn() + Send + Sync>;

/// What a running job sees: its id, cancel flag and a way to report progress.
pub struct JobContext {
    id: JobId,
    cancel: CancelToken,
    board: JobBoard,
    repaint: RepaintHook,
}

impl JobContext {
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Report progress in `[0, 1]` with a short human-readable message.
    pub fn progress(&self, fraction: f32, message: impl Into<String>) {
        self.board.update(self.id, fraction, message.into());
        (self.repaint)();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// `Err(Cancelled)` once cancel was requested: use with `?` inside loops.
    pub fn check_cancelled(&self) -> Result<(), JobError> {
        if self.is_cancelled() {
            Err(JobError::Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }
}

/// The owner's end of a job: poll for its result, or cancel it.
#[must_use = "a dropped handle cannot receive the job's result"]
pub struct JobHandle<T> {
    id: JobId,
    name: String,
    cancel: CancelToken,
    rx: Receiver<Result<T, JobError>>,
    done: bool,
}

impl<T> JobHandle<T> {
    pub fn id(&self) -> JobId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ask the job to stop at its next cancellation check.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Non-blocking: the result once the job has finished, exactly once.
    pub fn try_take(&mut self) -> Option<Result<T, JobError>> {
        if self.done {
            return None;
        }
        match self.rx.try_recv() {
            Ok(result) => {
                self.done = true;
                Some(result)
            }
            Err(crossbeam_channel::TryRecvError::Empty) => None,
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                self.done = true;
                Some(Err(JobError::Lost(self.name.clone())))
            }
        }
    }

    /// Blocking wait, for the CLI and tests only (never on the UI thread).
    pub fn wait(mut self) -> Result<T, JobError> {
        match self.rx.recv() {
            Ok(result) => {
                self.done = true;
                result
            }
            Err(_) => Err(JobError::Lost(self.name.clone())),
        }
    }

    /// Blocking wait with a deadline; `None` if the job is still running.
    pub fn wait_timeout(&mut self, timeout: std::time::Duration) -> Option<Result<T, JobError>> {
        if self.done {
            return None;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(result) => {
                self.done = true;
                Some(result)
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                self.done = true;
                Some(Err(JobError::Lost(self.name.clone())))
            }
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Shared plumbing of the pool and the inference thread: register a job on the board
/// and build its context, handle and result sender.
fn prepare<T>(
    board: &JobBoard,
    repaint: &RepaintHook,
    name: &str,
) -> (
    JobContext,
    JobHandle<T>,
    crossbeam_channel::Sender<Result<T, JobError>>,
) {
    let cancel = CancelToken::new();
    let id = board.register(name, cancel.clone());
    let (tx, rx) = crossbeam_channel::bounded(1);
    let ctx = JobContext {
        id,
        cancel: cancel.clone(),
        board: board.clone(),
        repaint: repaint.clone(),
    };
    let handle = JobHandle {
        id,
        name: name.to_owned(),
        cancel,
        rx,
        done: false,
    };
    (ctx, handle, tx)
}

/// Run one job body, catch a panic so one bad file cannot take a worker thread down,
/// record the outcome on the board and send the result.
fn run_job<T>(
    ctx: JobContext,
    tx: crossbeam_channel::Sender<Result<T, JobError>>,
    body: impl FnOnce(&JobContext) -> Result<T, JobError>,
) {
    let name = ctx.board.name_of(ctx.id).unwrap_or_default();
    let result = if ctx.is_cancelled() {
        Err(JobError::Cancelled)
    } else {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&ctx)))
            .unwrap_or_else(|_| Err(JobError::Lost(name.clone())))
    };
    match &result {
        Ok(_) => tracing::debug!(job = %name, "finished"),
        Err(JobError::Cancelled) => tracing::info!(job = %name, "cancelled"),
        Err(err) => {
            tracing::warn!(job = %name, %err, "failed");
            ctx.board.record_error(format!("{name}: {err}"));
        }
    }
    ctx.board.finish(ctx.id);
    // The owner may have dropped its handle; then nobody wants the result.
    let _ = tx.send(result);
    (ctx.repaint)();
}

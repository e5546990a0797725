use super::{JobBoard, JobContext, JobError, JobHandle, RepaintHook, prepare, run_job};
use std::sync::Arc;

/// General-purpose background jobs (loading, decoding, indexing, offscreen rendering).
///
/// Two rayon pools: short image decodes get their own so that a long indexing job can
/// never starve thumbnails, which the user is looking at right now.
#[derive(Clone)]
pub struct Worker {
    jobs: Arc<rayon::ThreadPool>,
    decode: Arc<rayon::ThreadPool>,
    board: JobBoard,
    repaint: RepaintHook,
}

impl Worker {
    /// A worker whose jobs call `repaint` when they have news.
    pub fn new(repaint: RepaintHook) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let jobs = rayon::ThreadPoolBuilder::new()
            .num_threads(cores.max(2))
            .thread_name(|i| format!("loupe-job-{i}"))
            .build()?;
        let decode = rayon::ThreadPoolBuilder::new()
            .num_threads(cores.clamp(1, 4))
            .thread_name(|i| format!("loupe-decode-{i}"))
            .build()?;
        Ok(Self {
            jobs: Arc::new(jobs),
            decode: Arc::new(decode),
            board: JobBoard::default(),
            repaint,
        })
    }

    /// A worker with no repaint hook (CLI, tests).
    pub fn headless() -> anyhow::Result<Self> {
        Self::new(Arc::new(|| {}))
    }

    pub fn board(&self) -> &JobBoard {
        &self.board
    }

    pub fn repaint_hook(&self) -> &RepaintHook {
        &self.repaint
    }

    /// Run `body` on a job thread; it shows in the status bar under `name`.
    pub fn spawn<T, F>(&self, name: &str, body: F) -> JobHandle<T>
    where
        T: Send + 'static,
        F: FnOnce(&JobContext) -> Result<T, JobError> + Send + 'static,
    {
        let (ctx, handle, tx) = prepare(&self.board, &self.repaint, name);
        self.jobs.spawn_fifo(move || run_job(ctx, tx, body));
        handle
    }

    /// Run a short decode on the decode pool. Not listed on the board: there are
    /// hundreds per second while a grid scrolls, and they finish in milliseconds.
    pub(crate) fn spawn_decode(&self, body: impl FnOnce() + Send + 'static) {
        let repaint = self.repaint.clone();
        self.decode.spawn_fifo(move || {
            body();
            repaint();
        });
    }
}

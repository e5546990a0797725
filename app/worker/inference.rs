use super::{JobBoard, JobContext, JobError, JobHandle, RepaintHook, prepare, run_job};
use crossbeam_channel::{Sender, unbounded};

type Request<M> = Box<dyn FnOnce(&mut Option<M>) + Send>;

/// One thread that owns a model (and its device) for its whole life.
///
/// Model weights are large and GPU contexts are thread-affine, so requests queue up
/// here and run one at a time against the same loaded model instead of moving it
/// between threads. `M` is whatever the caller keeps loaded (`None` until a request
/// loads it).
pub struct InferenceThread<M: 'static> {
    tx: Option<Sender<Request<M>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    board: JobBoard,
    repaint: RepaintHook,
}

impl<M: 'static> InferenceThread<M> {
    pub fn spawn(name: &str, board: JobBoard, repaint: RepaintHook) -> anyhow::Result<Self> {
        let (tx, rx) = unbounded::<Request<M>>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut model: Option<M> = None;
                for request in rx {
                    request(&mut model);
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            board,
            repaint,
        })
    }

    /// Queue a request; it runs after those queued before it.
    pub fn submit<T, F>(&self, name: &str, body: F) -> JobHandle<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Option<M>, &JobContext) -> Result<T, JobError> + Send + 'static,
    {
        let (ctx, handle, tx) = prepare(&self.board, &self.repaint, name);
        let request: Request<M> = Box::new(move |model| run_job(ctx, tx, |ctx| body(model, ctx)));
        if let Some(queue) = &self.tx {
            // A send error means the thread died; the handle then reports `Lost`.
            let _ = queue.send(request);
        }
        handle
    }
}

impl<M: 'static> Drop for InferenceThread<M> {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop after the current request.
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

//! Depth sorting off the render thread. A 1M-splat radix sort takes tens of
//! milliseconds on a CPU core — too long for a frame — so one thread per scene sorts
//! for the newest camera while frames keep drawing with the previous order.

use super::splat_pipeline::sort_back_to_front;
use crate::camera::Camera;
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::sync::{Arc, Mutex};

/// A finished sort: the order and a generation number that grows with every result.
#[derive(Clone)]
pub struct SortResult {
    pub generation: u64,
    pub order: Arc<Vec<u32>>,
}

pub struct BackgroundSorter {
    tx: Option<Sender<Camera>>,
    latest: Arc<Mutex<Option<SortResult>>>,
    pending: Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundSorter {
    /// `on_done` runs after each sort (e.g. to request a repaint).
    pub fn new(
        means: Arc<Vec<[f32; 3]>>,
        on_done: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let (tx, rx): (Sender<Camera>, Receiver<Camera>) = unbounded();
        let latest = Arc::new(Mutex::new(None::<SortResult>));
        let pending = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (out, busy) = (latest.clone(), pending.clone());
        let thread = std::thread::Builder::new()
            .name("splat-sort".into())
            .spawn(move || {
                let mut generation = 0;
                while let Ok(mut camera) = rx.recv() {
                    let mut taken = 1;
                    // Only the newest camera matters: skip the ones that queued meanwhile.
                    for newer in rx.try_iter() {
                        camera = newer;
                        taken += 1;
                    }
                    generation += 1;
                    let order = Arc::new(sort_back_to_front(&means, &camera));
                    if let Ok(mut slot) = out.lock() {
                        *slot = Some(SortResult { generation, order });
                    }
                    busy.fetch_sub(taken, std::sync::atomic::Ordering::SeqCst);
                    on_done();
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            latest,
            pending,
            thread: Some(thread),
        })
    }

    pub fn request(&self, camera: Camera) {
        if let Some(tx) = &self.tx {
            self.pending
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if tx.send(camera).is_err() {
                self.pending
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    pub fn latest(&self) -> Option<SortResult> {
        self.latest.lock().ok().and_then(|s| s.clone())
    }

    /// True while a requested sort has not finished.
    pub fn is_busy(&self) -> bool {
        self.pending.load(std::sync::atomic::Ordering::SeqCst) > 0
    }
}

impl Drop for BackgroundSorter {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

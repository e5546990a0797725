//! Autosave off the UI thread: the UI hands serialised bytes to a writer thread, which
//! saves them with `write_atomic`. Saves that queue up while a write is in progress are
//! coalesced (only the newest bytes per file are written); dropping the saver writes
//! whatever is still queued before returning, so quitting never loses the last change.

use crossbeam_channel::{Receiver, Sender};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bytes to write, or a snapshot that makes them on the writer thread.
type Payload = Box<dyn FnOnce() -> Vec<u8> + Send>;

enum Msg {
    Save {
        path: PathBuf,
        bytes: Payload,
        tag: u64,
    },
    Flush(Sender<()>),
}

pub struct Autosaver {
    tx: Option<Sender<Msg>>,
    errors: Receiver<String>,
    saved: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Autosaver {
    pub fn new() -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Msg>();
        let (err_tx, errors) = crossbeam_channel::unbounded();
        let saved = Arc::new(AtomicU64::new(0));
        let saved_w = saved.clone();
        let thread = std::thread::Builder::new()
            .name("review-autosave".into())
            .spawn(move || writer(&rx, &err_tx, &saved_w))?;
        Ok(Self {
            tx: Some(tx),
            errors,
            saved,
            thread: Some(thread),
        })
    }

    /// Queue `bytes` for `path`; `tag` (e.g. the state's version) is reported by
    /// `saved_tag` once written.
    pub fn save(&self, path: PathBuf, bytes: Vec<u8>, tag: u64) {
        self.save_with(path, move || bytes, tag);
    }

    /// Like `save`, but the bytes are made on the writer thread (and only for the
    /// newest of coalesced saves): serialising never costs the UI a frame.
    pub fn save_with(
        &self,
        path: PathBuf,
        make: impl FnOnce() -> Vec<u8> + Send + 'static,
        tag: u64,
    ) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Save {
                path,
                bytes: Box::new(make),
                tag,
            });
        }
    }

    /// Wait until everything queued so far is on disk (or `timeout` passes).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (ack_tx, ack) = crossbeam_channel::bounded(1);
        match &self.tx {
            Some(tx) if tx.send(Msg::Flush(ack_tx)).is_ok() => ack.recv_timeout(timeout).is_ok(),
            _ => false,
        }
    }

    /// The tag of the newest save written.
    pub fn saved_tag(&self) -> u64 {
        self.saved.load(Ordering::Acquire)
    }

    /// Errors since the last call (a full disk, a read-only folder…).
    pub fn take_errors(&self) -> Vec<String> {
        self.errors.try_iter().collect()
    }
}

impl Drop for Autosaver {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it has written what is queued.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer(rx: &Receiver<Msg>, errors: &Sender<String>, saved: &AtomicU64) {
    while let Ok(first) = rx.recv() {
        // Everything that arrived meanwhile: keep only the newest bytes per file.
        let mut pending: Vec<(PathBuf, Payload, u64)> = Vec::new();
        let mut acks = Vec::new();
        for msg in std::iter::once(first).chain(rx.try_iter()) {
            match msg {
                Msg::Save { path, bytes, tag } => {
                    pending.retain(|(p, _, _)| *p != path);
                    pending.push((path, bytes, tag));
                }
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        for (path, bytes, tag) in pending {
            match crate::atomic::write_atomic(&path, &bytes()) {
                Ok(()) => saved.store(tag, Ordering::Release),
                Err(e) => {
                    let _ = errors.send(format!("autosave failed: {e:#}"));
                }
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_coalesce_and_drop_flushes_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let saver = Autosaver::new().unwrap();
        for k in 0..200u64 {
            saver.save(path.clone(), format!("{k}").into_bytes(), k);
        }
        drop(saver);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "199");

        let saver = Autosaver::new().unwrap();
        saver.save(path.clone(), b"flushed".to_vec(), 7);
        assert!(saver.flush(Duration::from_secs(10)));
        assert_eq!(saver.saved_tag(), 7);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "flushed");
        // A save into a missing folder reports an error instead of failing silently.
        saver.save(dir.path().join("no/such/x.json"), b"x".to_vec(), 8);
        assert!(saver.flush(Duration::from_secs(10)));
        let errors = saver.take_errors();
        assert!(errors[0].contains("no/such"), "{errors:?}");
    }
}

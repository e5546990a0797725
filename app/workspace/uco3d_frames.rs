//! Video frames for the open uCO3D sequence: one decoding thread that owns the RGB and
//! mask videos, answers the newest request first (scrubbing never queues up stale
//! decodes), keeps a small cache and decodes ahead while idle so playback is smooth.

use crate::datasets::uco3d::camera::{OpenCvCamera, Undistorter};
use crate::datasets::uco3d::video::VideoReader;
use crate::worker::RepaintHook;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Frames decoded ahead of the current one while nothing else is asked.
const PREFETCH: usize = 6;
/// Decoded frames kept (each holds three images of the frame's size).
const CACHE: usize = 48;

/// One annotated frame, ready to show.
pub struct FetchedFrame {
    pub index: usize,
    pub raw: Arc<image::RgbaImage>,
    /// The loader's undistorted frame (`None` when the camera has no distortion).
    pub undistorted: Option<Arc<image::RgbaImage>>,
    /// The mask as an overlay: white, alpha = foreground probability × 255 (the mask
    /// video's channel 0). Built here so the UI thread only uploads it.
    pub mask: Option<Arc<image::RgbaImage>>,
}

pub type FetchResult = Result<FetchedFrame, String>;

struct Job {
    index: usize,
    time: f64,
    camera: OpenCvCamera,
}

pub struct FrameFetcher {
    requests: Sender<(usize, Vec<Job>)>,
    results: Receiver<(usize, FetchResult)>,
}

impl FrameFetcher {
    /// `frames`: per annotated frame, its timestamp and raw camera.
    pub fn spawn(video: Option<PathBuf>, mask: Option<PathBuf>, repaint: RepaintHook) -> Self {
        let (req_tx, req_rx) = crossbeam_channel::unbounded::<(usize, Vec<Job>)>();
        let (res_tx, res_rx) = crossbeam_channel::unbounded();
        let spawned = std::thread::Builder::new()
            .name("uco3d-frames".into())
            .spawn(move || decode_loop(video, mask, &req_rx, &res_tx, &repaint));
        if let Err(e) = spawned {
            tracing::error!("cannot start the frame thread: {e}");
        }
        Self {
            requests: req_tx,
            results: res_rx,
        }
    }

    /// Ask for frame `index` (at `time` seconds) and the ones after it, in order.
    pub fn request(&self, index: usize, frames: &[(f64, OpenCvCamera)]) {
        let jobs = frames
            .iter()
            .enumerate()
            .skip(index)
            .take(PREFETCH + 1)
            .map(|(i, (time, camera))| Job {
                index: i,
                time: *time,
                camera: *camera,
            })
            .collect();
        let _ = self.requests.send((index, jobs));
    }

    /// Frames finished since the last call.
    pub fn take(&self) -> Vec<(usize, FetchResult)> {
        self.results.try_iter().collect()
    }
}

fn decode_loop(
    video: Option<PathBuf>,
    mask: Option<PathBuf>,
    requests: &Receiver<(usize, Vec<Job>)>,
    results: &Sender<(usize, FetchResult)>,
    repaint: &RepaintHook,
) {
    let mut rgb = video.as_deref().map(VideoReader::open);
    let mut masks = mask.as_deref().map(VideoReader::open).and_then(Result::ok);
    let mut cache: HashMap<usize, Arc<FetchedFrame>> = HashMap::new();
    let mut order: Vec<usize> = Vec::new();
    let mut undistorter: Option<(OpenCvCamera, Arc<Undistorter>)> = None;
    let mut pending: Vec<Job> = Vec::new();
    loop {
        // Block only when there is nothing to prefetch; the channel closing ends the thread.
        let next = if pending.is_empty() {
            requests.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            requests.recv_timeout(Duration::ZERO)
        };
        match next {
            Ok(first) => {
                // Newest request wins.
                let (_, jobs) = requests.try_iter().last().unwrap_or(first);
                pending = jobs;
                pending.reverse();
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(job) = pending.pop() else { continue };
        let result = if let Some(hit) = cache.get(&job.index) {
            Ok(hit.clone())
        } else {
            let decoded = match rgb.as_mut() {
                None => Err("the sequence has no video".to_owned()),
                Some(Err(e)) => Err(e.to_string()),
                Some(Ok(reader)) => reader.frame_at(job.time).map_err(|e| e.to_string()),
            };
            decoded.map(|frame| {
                let undistorted = if job.camera.distortion.is_zero() {
                    None
                } else {
                    let u = match &undistorter {
                        Some((cam, u))
                            if cam.k == job.camera.k && cam.distortion == job.camera.distortion =>
                        {
                            u.clone()
                        }
                        _ => {
                            let u =
                                Arc::new(Undistorter::new(&job.camera.k, &job.camera.distortion));
                            undistorter = Some((job.camera, u.clone()));
                            u
                        }
                    };
                    Some(Arc::new(u.apply(&frame.image)))
                };
                let current = undistorter
                    .as_ref()
                    .filter(|_| !job.camera.distortion.is_zero())
                    .map(|(_, u)| u.clone());
                let mask = masks
                    .as_mut()
                    .and_then(|m| m.frame_at(job.time).ok())
                    .map(|m| {
                        // Undistorted like the frame (the loader remaps both).
                        let img = match &current {
                            Some(u) => Arc::new(u.apply(&m.image)),
                            None => m.image,
                        };
                        Arc::new(image::RgbaImage::from_fn(
                            img.width(),
                            img.height(),
                            |x, y| image::Rgba([255, 255, 255, img.get_pixel(x, y).0[0]]),
                        ))
                    });
                let fetched = Arc::new(FetchedFrame {
                    index: job.index,
                    raw: frame.image.clone(),
                    undistorted,
                    mask,
                });
                cache.insert(job.index, fetched.clone());
                order.retain(|&i| i != job.index);
                order.push(job.index);
                if order.len() > CACHE {
                    let old = order.remove(0);
                    cache.remove(&old);
                }
                fetched
            })
        };
        let out = result.map(|f| FetchedFrame {
            index: f.index,
            raw: f.raw.clone(),
            undistorted: f.undistorted.clone(),
            mask: f.mask.clone(),
        });
        if results.send((job.index, out)).is_err() {
            return;
        }
        repaint();
    }
}

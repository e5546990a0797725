//! The one image cache every workspace shares.
//!
//! Images decode on the worker's decode pool (never on the UI thread), optionally
//! downscaled to a thumbnail, and are uploaded to the GPU once as an egui texture that
//! every view reuses. Entries are evicted least-recently-used once the decoded bytes
//! exceed a budget, except those drawn in the current frame.

use crate::worker::Worker;
use crossbeam_channel::{Receiver, Sender, unbounded};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where an image's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ImageSource {
    File(PathBuf),
    /// A byte range of a file: a JPEG member inside a tar shard, read without
    /// extracting it.
    Member {
        path: std::sync::Arc<Path>,
        offset: u64,
        len: u64,
    },
    /// Bytes compiled into the binary (demo assets), named for messages.
    Embedded {
        name: &'static str,
        bytes: &'static [u8],
    },
}

impl ImageSource {
    pub fn display_name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Member { path, offset, .. } => format!("{}@{offset}", path.display()),
            Self::Embedded { name, .. } => (*name).to_owned(),
        }
    }

    /// Decodes the whole image (for a model, not for display: no texture, no cache).
    pub fn decode(&self) -> Result<image::DynamicImage, String> {
        let bytes = self.read()?;
        image::load_from_memory(&bytes)
            .map_err(|e| format!("{}: cannot read the image: {e}", self.display_name()))
    }

    fn read(&self) -> Result<std::borrow::Cow<'static, [u8]>, String> {
        match self {
            Self::File(path) => std::fs::read(path)
                .map(std::borrow::Cow::Owned)
                .map_err(|err| format!("{}: cannot read: {err}", path.display())),
            Self::Member { path, offset, len } => {
                crate::datasets::biomedica::catalog::read_range(path, *offset, *len)
                    .map(std::borrow::Cow::Owned)
                    .map_err(|err| format!("{}: cannot read: {err}", self.display_name()))
            }
            Self::Embedded { bytes, .. } => Ok(std::borrow::Cow::Borrowed(bytes)),
        }
    }
}

impl From<&Path> for ImageSource {
    fn from(path: &Path) -> Self {
        Self::File(path.to_path_buf())
    }
}

/// Full resolution, or a thumbnail whose longer side is at most this many pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    Full,
    Thumbnail(u32),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    source: ImageSource,
    resolution: Resolution,
}

/// A decoded image ready for upload.
pub struct Decoded {
    pub image: egui::ColorImage,
    /// The size of the file's image before any downscaling: boxes live in these pixels.
    pub original_size: [u32; 2],
}

/// Decode (and downscale) an image file's bytes. Pure; runs on a worker.
pub fn decode(source: &ImageSource, resolution: Resolution) -> Result<Decoded, String> {
    decode_with(source, resolution, None)
}

fn to_decoded(img: &image::DynamicImage, original_size: [u32; 2]) -> Decoded {
    let rgba = img.to_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    Decoded {
        image: egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw()),
        original_size,
    }
}

/// [`decode`] with the thumbnail fast paths: the on-disk cache first, then JPEG
/// DCT-domain downscaling (`thumbnails`), then the full decode; thumbnails of images
/// at least twice their size are stored in the disk cache.
pub fn decode_with(
    source: &ImageSource,
    resolution: Resolution,
    disk: Option<&crate::thumbnails::DiskCache>,
) -> Result<Decoded, String> {
    if let Resolution::Thumbnail(side) = resolution {
        if let Some((img, full)) = disk.and_then(|d| d.get(source, side)) {
            return Ok(to_decoded(&img, full));
        }
        let bytes = source.read()?;
        let (img, full) = match crate::thumbnails::decode_jpeg_scaled(&bytes, side) {
            Some(fast) => fast,
            None => {
                let img = image::load_from_memory(&bytes)
                    .map_err(|err| format!("{}: {err}", source.display_name()))?;
                let full = [img.width(), img.height()];
                let img = if full[0].max(full[1]) > side {
                    img.thumbnail(side, side)
                } else {
                    img
                };
                (img, full)
            }
        };
        if let Some(d) = disk
            && full[0].max(full[1]) >= 2 * side
        {
            d.put(source, side, &img, full);
        }
        return Ok(to_decoded(&img, full));
    }
    let bytes = source.read()?;
    let name = source.display_name();
    let img = image::load_from_memory(&bytes).map_err(|err| format!("{name}: {err}"))?;
    let original_size = [img.width(), img.height()];
    let img = match resolution {
        Resolution::Full => img,
        Resolution::Thumbnail(side) if img.width().max(img.height()) > side => {
            // `thumbnail` averages whole source pixels: sharp and much faster than a
            // windowed filter at large reduction factors.
            img.thumbnail(side, side)
        }
        Resolution::Thumbnail(_) => img,
    };
    let rgba = img.to_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    Ok(Decoded {
        image: egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw()),
        original_size,
    })
}

/// What a view gets when it asks for an image.
pub enum ImageState<'a> {
    Loading,
    Ready(&'a ReadyImage),
    Failed(&'a str),
}

pub struct ReadyImage {
    pub texture: egui::TextureHandle,
    pub original_size: [u32; 2],
    bytes: usize,
}

impl ReadyImage {
    pub fn texture_size(&self) -> egui::Vec2 {
        self.texture.size_vec2()
    }
}

enum Entry {
    Loading,
    Ready(ReadyImage),
    Failed(String),
}

impl Entry {
    fn bytes(&self) -> usize {
        match self {
            Self::Ready(ready) => ready.bytes,
            _ => 0,
        }
    }
}

type DecodeResult = (Key, Result<Decoded, String>);

pub struct ImageCache {
    entries: lru::LruCache<Key, Entry>,
    bytes: usize,
    budget_bytes: usize,
    used_this_frame: HashSet<Key>,
    tx: Sender<DecodeResult>,
    rx: Receiver<DecodeResult>,
    worker: Worker,
    ctx: egui::Context,
    disk: Option<crate::thumbnails::DiskCache>,
}

impl ImageCache {
    pub const DEFAULT_BUDGET: usize = 1 << 30;

    /// The egui context textures are made in (workspaces upload their own too).
    pub fn ctx(&self) -> &egui::Context {
        &self.ctx
    }

    pub fn new(ctx: egui::Context, worker: Worker, budget_bytes: usize) -> Self {
        let (tx, rx) = unbounded();
        Self {
            entries: lru::LruCache::unbounded(),
            bytes: 0,
            budget_bytes,
            used_this_frame: HashSet::new(),
            tx,
            rx,
            worker,
            ctx,
            disk: None,
        }
    }

    /// Keep thumbnails on disk too (the app does; tests usually do not).
    pub fn with_disk_cache(mut self, cache: crate::thumbnails::DiskCache) -> Self {
        self.disk = Some(cache);
        self
    }

    /// Call once at the start of every frame: takes finished decodes, uploads them and
    /// evicts what no longer fits.
    pub fn begin_frame(&mut self) {
        while let Ok((key, result)) = self.rx.try_recv() {
            let entry = match result {
                Ok(decoded) => {
                    let bytes = decoded.image.pixels.len() * 4;
                    let texture = self.ctx.load_texture(
                        key.source.display_name(),
                        decoded.image,
                        egui::TextureOptions::LINEAR,
                    );
                    Entry::Ready(ReadyImage {
                        texture,
                        original_size: decoded.original_size,
                        bytes,
                    })
                }
                Err(message) => {
                    tracing::warn!("{message}");
                    Entry::Failed(message)
                }
            };
            // Only store results still wanted (an evicted request is simply dropped).
            if let Some(slot) = self.entries.peek_mut(&key) {
                self.bytes += entry.bytes();
                *slot = entry;
            }
        }
        // Evict with last frame's set of visible images still protected, then start anew.
        self.evict();
        self.used_this_frame.clear();
    }

    /// The image at `resolution`, starting a background decode on first request.
    pub fn get(&mut self, source: &ImageSource, resolution: Resolution) -> ImageState<'_> {
        let key = Key {
            source: source.clone(),
            resolution,
        };
        if !self.entries.contains(&key) {
            self.entries.put(key.clone(), Entry::Loading);
            let tx = self.tx.clone();
            let job_key = key.clone();
            let disk = self.disk.clone();
            self.worker.spawn_decode(move || {
                let result = decode_with(&job_key.source, job_key.resolution, disk.as_ref());
                let _ = tx.send((job_key, result));
            });
        }
        self.used_this_frame.insert(key.clone());
        match self.entries.get(&key) {
            Some(Entry::Ready(ready)) => ImageState::Ready(ready),
            Some(Entry::Failed(message)) => ImageState::Failed(message),
            Some(Entry::Loading) | None => ImageState::Loading,
        }
    }

    /// Decoded bytes held (CPU-side size of the uploaded textures).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_loading(&self) -> bool {
        self.entries
            .iter()
            .any(|(_, e)| matches!(e, Entry::Loading))
    }

    fn evict(&mut self) {
        let mut skipped = Vec::new();
        while self.bytes > self.budget_bytes {
            let Some((key, entry)) = self.entries.pop_lru() else {
                break;
            };
            if self.used_this_frame.contains(&key) {
                skipped.push((key, entry));
                continue;
            }
            self.bytes -= entry.bytes();
        }
        // Put back what is on screen right now, oldest first so LRU order is kept.
        for (key, entry) in skipped {
            self.entries.push(key, entry);
        }
    }
}

//! An open uCO3D dataset in the 3D workspace: the sequence browser (SQL queries on a
//! job, never a full load), the loaded sequence with its cameras, the video frame and
//! mask for the current annotated frame, the timeline, and look-through comparisons.

use super::Shared;
use super::uco3d_frames::{FetchedFrame, FrameFetcher};
use crate::datasets::uco3d::camera::{Alignment, OpenCvCamera, optimal_new_intrinsics};
use crate::datasets::uco3d::caption_index;
use crate::datasets::uco3d::db::{self, MetadataDb, SequenceQuery, SequenceRow, SortBy};
use crate::datasets::uco3d::{Dataset, Sequence};
use crate::worker::{JobError, JobHandle};
use egui::{Color32, RichText, Ui};
use loupe_render::camera::Camera;
use loupe_render::reference::{self, RenderSettings};
use loupe_render::{OrbitController, Segment, Splats};
use nalgebra::{Matrix3, Point3, Vector3};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest side of the images the PSNR is measured at (a CPU reference render).
const PSNR_SIDE: u32 = 320;

/// The browser's first page: what `open` returns.
pub struct Opened {
    pub root: PathBuf,
    pub categories: Vec<(String, String, usize)>,
    pub set_lists: Vec<(String, PathBuf)>,
    pub rows: Vec<SequenceRow>,
}

/// A sequence loaded on the worker, with everything derived from it.
pub struct LoadedSequence {
    pub seq: Sequence,
    pub splats: Arc<Splats>,
    pub home: OrbitController,
}

/// What the 3D view draws for the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Splats,
    /// `point_cloud.ply`
    Points,
    /// `segmented_point_cloud.ply`
    Segmented,
    /// `sparse_point_cloud.ply`
    Sparse,
    /// The current frame's depth map, unprojected and coloured by the frame.
    Depth,
}

impl Layer {
    const ALL: [(Self, &'static str); 5] = [
        (Self::Splats, "Gaussian splats"),
        (Self::Points, "dense point cloud"),
        (Self::Segmented, "segmented point cloud"),
        (Self::Sparse, "sparse SfM points"),
        (Self::Depth, "this frame's depth"),
    ];
}

/// The shown frame, to draw inside its frustum: as an egui texture (painter fallback)
/// and as pixels (the wgpu view uploads them itself, keyed by the texture id).
pub struct FramePicture {
    pub texture: egui::TextureId,
    pub image: Arc<image::RgbaImage>,
    /// Top-left, top-right, bottom-right, bottom-left, in the raw frame.
    pub corners: [Point3<f64>; 4],
}

struct Textures {
    index: usize,
    raw: egui::TextureHandle,
    undistorted: Option<egui::TextureHandle>,
    mask: Option<egui::TextureHandle>,
    frame: FetchedFrame,
}

pub struct Uco3dSession {
    pub root: PathBuf,
    categories: Vec<(String, String, usize)>,
    set_lists: Vec<(String, PathBuf)>,
    query: SequenceQuery,
    set_list_index: Option<usize>,
    rows: Vec<SequenceRow>,
    query_job: Option<JobHandle<(Vec<SequenceRow>, f64)>>,
    query_ms: f64,
    load_job: Option<JobHandle<LoadedSequence>>,
    pub seq: Option<Arc<Sequence>>,
    pub frame: usize,
    playing: bool,
    play_time: f64,
    fetcher: Option<FrameFetcher>,
    requested: Option<usize>,
    textures: Option<Textures>,
    fetch_error: Option<String>,
    pub show_mask: bool,
    /// Show frames undistorted as the loader returns them (else the raw video frame).
    pub undistort: bool,
    /// Look-through overlay: 0 shows the render only, 1 the frame only.
    pub blend: f32,
    psnr: Option<(usize, f64, u32, u32)>,
    psnr_job: Option<JobHandle<(usize, f64, u32, u32)>>,
    /// The alignment is applied to the view (the splats stay in their own frame).
    pub aligned: bool,
    /// The caption trigram index in the cache folder, once built.
    caption_index: Option<PathBuf>,
    index_job: Option<JobHandle<PathBuf>>,
    index_started: bool,
    pub layer: Layer,
    /// The sequence's splats, to switch back to from another layer.
    splats: Option<Arc<Splats>>,
    layer_job: Option<JobHandle<(Layer, usize, Arc<Splats>)>>,
    /// Content for the 3D view built by `layer_job`, taken by the workspace.
    layer_ready: Option<Arc<Splats>>,
    /// (layer, frame) the view shows.
    layer_shown: (Layer, usize),
}

impl Uco3dSession {
    pub fn new(opened: Opened) -> Self {
        Self {
            root: opened.root,
            categories: opened.categories,
            set_lists: opened.set_lists,
            query: SequenceQuery::default(),
            set_list_index: None,
            rows: opened.rows,
            query_job: None,
            query_ms: 0.0,
            load_job: None,
            seq: None,
            frame: 0,
            playing: false,
            play_time: 0.0,
            fetcher: None,
            requested: None,
            textures: None,
            fetch_error: None,
            show_mask: true,
            undistort: true,
            blend: 0.5,
            psnr: None,
            psnr_job: None,
            aligned: true,
            caption_index: None,
            index_job: None,
            index_started: false,
            layer: Layer::Splats,
            splats: None,
            layer_job: None,
            layer_ready: None,
            layer_shown: (Layer::Splats, 0),
        }
    }

    /// Open the dataset at `root` on the worker: categories, set lists, first rows.
    pub fn open_job(
        root: PathBuf,
    ) -> impl FnOnce(&crate::worker::JobContext) -> Result<Opened, JobError> + Send + 'static {
        move |ctx| {
            ctx.progress(0.1, "metadata.sqlite");
            let ds = Dataset::open(&root).map_err(JobError::failed)?;
            let categories = ds.db.categories().map_err(JobError::failed)?;
            ctx.progress(0.6, "sequences");
            let rows = ds
                .db
                .query(&SequenceQuery::default())
                .map_err(JobError::failed)?;
            Ok(Opened {
                set_lists: db::set_lists(&root),
                root,
                categories,
                rows,
            })
        }
    }

    pub fn is_busy(&self) -> bool {
        self.query_job.is_some()
            || self.index_job.is_some()
            || self.layer_job.is_some()
            || self.load_job.is_some()
            || self.psnr_job.is_some()
            || self.requested.is_some()
    }

    pub fn sequence_names(&self) -> impl Iterator<Item = &str> {
        self.rows.iter().map(|r| r.name.as_str())
    }

    pub fn load(&mut self, name: &str, shared: &mut Shared) {
        let root = self.root.clone();
        let name = name.to_owned();
        if let Some(job) = self.load_job.take() {
            job.cancel();
        }
        self.load_job = Some(
            shared
                .worker
                .spawn(&format!("Load sequence {name}"), move |ctx| {
                    let ds = Dataset::open(&root).map_err(JobError::failed)?;
                    let seq = ds
                        .load_sequence(&name, &mut |f, what| ctx.progress(f, what.to_owned()))
                        .map_err(JobError::failed)?;
                    ctx.check_cancelled()?;
                    let splats = seq.splats.clone().unwrap_or_default();
                    let align = seq.alignment();
                    // Frame the foreground in the display frame (canonical, Z up).
                    let fg: Vec<[f32; 3]> = splats
                        .means
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| splats.foreground.as_ref().is_none_or(|f| f[*i]))
                        .map(|(_, m)| {
                            let p = display_point(
                                &align,
                                &Point3::new(f64::from(m[0]), f64::from(m[1]), f64::from(m[2])),
                            );
                            [p.x as f32, p.y as f32, p.z as f32]
                        })
                        .collect();
                    let mut home = OrbitController::framing(&fg);
                    // Back far enough to see the whole camera trajectory around the object.
                    let farthest = seq
                        .cameras
                        .iter()
                        .map(|c| {
                            (display_point(&align, &c.pinhole().centre()) - home.target).norm()
                        })
                        .fold(0.0, f64::max);
                    home.distance = home.distance.max(farthest * 1.6);
                    Ok(LoadedSequence {
                        seq,
                        splats: Arc::new(splats),
                        home,
                    })
                }),
        );
    }

    fn run_query(&mut self, shared: &mut Shared) {
        let root = self.root.clone();
        let mut q = self.query.clone();
        q.caption_index = self.caption_index.clone();
        q.set_list = self
            .set_list_index
            .and_then(|i| self.set_lists.get(i))
            .map(|(_, p)| p.clone());
        if let Some(job) = self.query_job.take() {
            job.cancel();
        }
        self.query_job = Some(shared.worker.spawn("Query sequences", move |_ctx| {
            let t = std::time::Instant::now();
            let db = MetadataDb::open(&root.join("metadata.sqlite")).map_err(JobError::failed)?;
            let rows = db.query(&q).map_err(JobError::failed)?;
            Ok((rows, t.elapsed().as_secs_f64() * 1e3))
        }));
    }

    /// Take finished jobs; returns a newly loaded sequence for the 3D view to show.
    pub fn poll(&mut self, shared: &mut Shared, ctx: &egui::Context) -> Option<LoadedSequence> {
        if !self.index_started {
            self.index_started = true;
            let metadata = self.root.join("metadata.sqlite");
            let dir = crate::datasets::biomedica::sidecar::default_dir()
                .parent()
                .map_or_else(std::env::temp_dir, Path::to_path_buf)
                .join("uco3d");
            self.index_job = Some(shared.worker.spawn("Index uCO3D captions", move |job| {
                let out = caption_index::index_path(&dir, &metadata);
                caption_index::ensure(&metadata, &out, &|| job.is_cancelled())
                    .map_err(JobError::failed)?;
                Ok(out)
            }));
        }
        if let Some(r) = self.index_job.as_mut().and_then(JobHandle::try_take) {
            self.index_job = None;
            match r {
                Ok(path) => {
                    self.caption_index = Some(path);
                    // A search typed while the index was building is answered again, fast.
                    if !self.query.caption.trim().is_empty() {
                        self.run_query(shared);
                    }
                }
                Err(JobError::Cancelled) => {}
                Err(e) => tracing::warn!("caption index: {e} (search scans the captions instead)"),
            }
        }
        if let Some(r) = self.query_job.as_mut().and_then(JobHandle::try_take) {
            self.query_job = None;
            match r {
                Ok((rows, ms)) => {
                    self.rows = rows;
                    self.query_ms = ms;
                }
                Err(JobError::Cancelled) => {}
                Err(e) => shared.toasts.error(e.to_string()),
            }
        }
        if let Some(r) = self.psnr_job.as_mut().and_then(JobHandle::try_take) {
            self.psnr_job = None;
            match r {
                Ok(v) => self.psnr = Some(v),
                Err(JobError::Cancelled) => {}
                Err(e) => shared.toasts.error(e.to_string()),
            }
        }
        if let Some(fetcher) = &self.fetcher {
            for (index, result) in fetcher.take() {
                match result {
                    Ok(frame) if index == self.frame => {
                        self.requested = None;
                        self.fetch_error = None;
                        self.textures = Some(upload(ctx, frame));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if index == self.frame {
                            self.requested = None;
                            self.fetch_error = Some(e);
                        }
                    }
                }
            }
        }
        if let Some(r) = self.layer_job.as_mut().and_then(JobHandle::try_take) {
            self.layer_job = None;
            match r {
                Ok((layer, frame, splats)) => {
                    self.layer_shown = (layer, frame);
                    self.layer_ready = Some(splats);
                }
                Err(JobError::Cancelled) => {}
                Err(e) => shared.toasts.error(e.to_string()),
            }
        }
        if self.layer == Layer::Depth
            && self.layer_shown != (Layer::Depth, self.frame)
            && self.layer_job.is_none()
            && !self.playing
        {
            self.build_layer(shared);
        }
        let loaded = self.load_job.as_mut().and_then(JobHandle::try_take)?;
        self.load_job = None;
        match loaded {
            Ok(l) => {
                for p in &l.seq.problems {
                    shared.toasts.error(p.clone());
                }
                let resolve = |p: &Option<String>| p.as_deref().map(|p| self.root.join(p));
                let repaint = shared.worker.repaint_hook().clone();
                self.fetcher = Some(FrameFetcher::spawn(
                    resolve(&l.seq.annot.video_path),
                    resolve(&l.seq.annot.mask_video_path),
                    repaint,
                ));
                self.seq = Some(Arc::new(Sequence {
                    annot: l.seq.annot.clone(),
                    frames: l.seq.frames.clone(),
                    cameras: l.seq.cameras.clone(),
                    splats: None,
                    point_cloud: l.seq.point_cloud.clone(),
                    segmented_point_cloud: l.seq.segmented_point_cloud.clone(),
                    sparse_point_cloud: l.seq.sparse_point_cloud.clone(),
                    problems: l.seq.problems.clone(),
                }));
                self.splats = Some(l.splats.clone());
                self.layer = Layer::Splats;
                self.layer_shown = (Layer::Splats, 0);
                self.layer_ready = None;
                self.textures = None;
                self.requested = None;
                self.fetch_error = None;
                self.psnr = None;
                self.frame = 0;
                self.play_time = 0.0;
                self.playing = false;
                self.request_frame();
                Some(l)
            }
            Err(JobError::Cancelled) => None,
            Err(e) => {
                shared.toasts.error(e.to_string());
                None
            }
        }
    }

    fn frame_list(&self) -> Vec<(f64, OpenCvCamera)> {
        self.seq
            .as_ref()
            .map(|s| {
                s.frames
                    .iter()
                    .zip(&s.cameras)
                    .map(|(f, c)| (f.timestamp.unwrap_or(0.0), *c))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn request_frame(&mut self) {
        if self
            .textures
            .as_ref()
            .is_some_and(|t| t.index == self.frame)
        {
            return;
        }
        if let Some(f) = &self.fetcher {
            f.request(self.frame, &self.frame_list());
            self.requested = Some(self.frame);
        }
    }

    /// Splats for the 3D view when the layer changed (taken once).
    pub fn take_layer(&mut self) -> Option<Arc<Splats>> {
        self.layer_ready.take()
    }

    /// Build the current layer's content on the worker.
    fn build_layer(&mut self, shared: &mut Shared) {
        let Some(seq) = self.seq.clone() else { return };
        let (layer, frame) = (self.layer, self.frame);
        if layer == Layer::Splats {
            self.layer_shown = (layer, frame);
            self.layer_ready = self.splats.clone();
            return;
        }
        let root = self.root.clone();
        let image = self
            .textures
            .as_ref()
            .filter(|t| t.index == frame)
            .map(|t| t.frame.raw.clone());
        if let Some(job) = self.layer_job.take() {
            job.cancel();
        }
        self.layer_job = Some(shared.worker.spawn("Build the 3D layer", move |_ctx| {
            let cloud = match layer {
                Layer::Points => seq.point_cloud.clone(),
                Layer::Segmented => seq.segmented_point_cloud.clone(),
                Layer::Sparse => seq.sparse_point_cloud.clone(),
                Layer::Depth => Some(
                    depth_cloud(&root, &seq, frame, image.as_deref()).map_err(JobError::Failed)?,
                ),
                Layer::Splats => None,
            };
            let cloud = cloud.ok_or_else(|| {
                JobError::Failed(format!(
                    "{}: this sequence has no such point cloud",
                    seq.annot.name
                ))
            })?;
            Ok((
                layer,
                frame,
                Arc::new(cloud.to_splats(cloud.default_sigma())),
            ))
        }));
    }

    /// The annotated frame whose video frame is on screen.
    pub fn shown_frame(&self) -> Option<usize> {
        self.textures.as_ref().map(|t| t.index)
    }

    /// PSNR of the look-through render against the current frame, once measured.
    pub fn psnr(&self) -> Option<f64> {
        self.psnr
            .filter(|(i, ..)| *i == self.frame)
            .map(|(_, p, ..)| p)
    }

    pub fn fetch_error(&self) -> Option<&str> {
        self.fetch_error.as_deref()
    }

    pub fn frame_count(&self) -> usize {
        self.seq.as_ref().map_or(0, |s| s.frames.len())
    }

    pub fn step(&mut self, delta: isize) {
        let n = self.frame_count();
        if n == 0 {
            return;
        }
        self.frame = (self.frame as isize + delta).rem_euclid(n as isize) as usize;
        self.playing = false;
        if let Some(t) = self
            .seq
            .as_ref()
            .and_then(|s| s.frames[self.frame].timestamp)
        {
            self.play_time = t;
        }
        self.request_frame();
    }

    pub fn toggle_play(&mut self) {
        self.playing = !self.playing;
    }

    /// Advance playback by the frame's real time; keeps repainting while playing.
    pub fn tick(&mut self, ctx: &egui::Context) {
        if !self.playing {
            return;
        }
        let Some(seq) = self.seq.clone() else { return };
        let dt = f64::from(ctx.input(|i| i.stable_dt)).min(0.1);
        let end = seq.frames.last().and_then(|f| f.timestamp).unwrap_or(0.0);
        self.play_time += dt;
        if self.play_time > end {
            self.play_time = 0.0;
        }
        if let Some(i) = seq.frame_near(self.play_time)
            && i != self.frame
        {
            self.frame = i;
            self.request_frame();
        }
        ctx.request_repaint();
    }

    /// The current annotated frame's camera as the renderer should use it: raw frame,
    /// with the undistorted intrinsics when frames are shown undistorted.
    pub fn current_camera(&self) -> Option<Camera> {
        let seq = self.seq.as_ref()?;
        let cv = seq.cameras.get(self.frame)?;
        let mut cam = cv.pinhole();
        if self.undistort && !cv.distortion.is_zero() {
            // Only the new K: the per-pixel map lives on the frame thread.
            cam.intrinsics = optimal_new_intrinsics(&cv.k, &cv.distortion);
        }
        Some(cam)
    }

    /// Turn a camera of the display frame (canonical, Z up) into the raw frame the
    /// splats live in.
    pub fn view_to_raw(&self, cam: &Camera) -> Camera {
        let align = self.display_alignment();
        view_to_raw(cam, &align)
    }

    fn display_alignment(&self) -> Alignment {
        match (&self.seq, self.aligned) {
            (Some(s), true) => s.alignment(),
            _ => Alignment::default(),
        }
    }

    /// Frusta of every annotated camera (current one highlighted) and the canonical
    /// axes, in the raw frame.
    /// The mean distance of the cameras from the scene centre (raw frame).
    fn mean_camera_distance(&self, seq: &Sequence) -> f64 {
        let centre = self.display_alignment().inverse_point(&Point3::origin());
        seq.cameras
            .iter()
            .map(|c| (c.pinhole().centre() - centre).norm())
            .sum::<f64>()
            / seq.cameras.len().max(1) as f64
    }

    /// The shown video frame and the corners of its frustum's image plane (raw frame,
    /// top-left first, clockwise), to draw the frame inside its frustum.
    pub fn frame_in_frustum(&self) -> Option<FramePicture> {
        let seq = self.seq.as_ref()?;
        let t = self.textures.as_ref().filter(|t| t.index == self.frame)?;
        let cam = self.current_camera()?;
        let (texture, image) = match (&t.undistorted, &t.frame.undistorted, self.undistort) {
            (Some(u), Some(img), true) => (u.id(), img.clone()),
            _ => (t.raw.id(), t.frame.raw.clone()),
        };
        let depth = (self.mean_camera_distance(seq) * 0.12).max(1e-3);
        Some(FramePicture {
            texture,
            image,
            corners: cam.frustum_corners(depth),
        })
    }

    pub fn overlay_segments(&self, looking_through: bool) -> Vec<Segment> {
        let Some(seq) = &self.seq else {
            return Vec::new();
        };
        let align = self.display_alignment();
        let mut out = Vec::new();
        // Frusta sized to the scene: a tenth of the mean camera distance to the centre.
        let mean_dist = self.mean_camera_distance(seq);
        let depth = (mean_dist * 0.12).max(1e-3);
        for (i, c) in seq.cameras.iter().enumerate() {
            // Seen from itself, the current frustum is just the image border.
            if looking_through && i == self.frame {
                continue;
            }
            let rgba = if i == self.frame {
                [255, 153, 51, 255]
            } else {
                [150, 170, 200, 140]
            };
            out.extend(loupe_render::DemoScene::frustum_segments(
                &c.pinhole(),
                depth,
                rgba,
            ));
        }
        // The camera trajectory.
        for w in seq.cameras.windows(2) {
            out.push(Segment {
                a: w[0].pinhole().centre(),
                b: w[1].pinhole().centre(),
                rgba: [150, 170, 200, 90],
            });
        }
        // Axes of the display frame, a third of the camera distance long.
        let axis_len = mean_dist * align.scale * 0.3;
        let display_to_raw = |p: Point3<f64>| align.inverse_point(&from_display(&p));
        let o = Point3::origin();
        for (axis, rgba) in [
            (Vector3::x(), [230, 80, 80, 255]),
            (Vector3::y(), [90, 200, 90, 255]),
            (Vector3::z(), [90, 140, 240, 255]),
        ] {
            out.push(Segment {
                a: display_to_raw(o),
                b: display_to_raw(o + axis * axis_len),
                rgba,
            });
        }
        out
    }

    // ----------------------------------------------------------------- UI

    pub fn browser_ui(&mut self, ui: &mut Ui, shared: &mut Shared) {
        ui.heading("uCO3D");
        ui.label(
            RichText::new(self.root.display().to_string())
                .weak()
                .small(),
        );
        let mut changed = false;
        let search_label = ui.label("Caption search");
        changed |= ui
            .add(egui::TextEdit::singleline(&mut self.query.caption).hint_text("e.g. striped"))
            .labelled_by(search_label.id)
            .changed();
        {
            egui::ComboBox::from_label("sort")
                .selected_text(match self.query.sort {
                    SortBy::Name => "name",
                    SortBy::SplatQualityDesc => "splat quality",
                    SortBy::CameraQualityDesc => "camera quality",
                })
                .show_ui(ui, |ui| {
                    for (v, t) in [
                        (SortBy::Name, "name"),
                        (SortBy::SplatQualityDesc, "splat quality"),
                        (SortBy::CameraQualityDesc, "camera quality"),
                    ] {
                        changed |= ui.selectable_value(&mut self.query.sort, v, t).changed();
                    }
                });
        }
        let mut min_q = self.query.min_splat_quality.unwrap_or(0.0);
        if ui
            .add(egui::Slider::new(&mut min_q, 0.0..=1.0).text("min splat quality"))
            .changed()
        {
            self.query.min_splat_quality = (min_q > 0.0).then_some(min_q);
            changed = true;
        }
        if !self.set_lists.is_empty() {
            {
                let current = self
                    .set_list_index
                    .and_then(|i| self.set_lists.get(i))
                    .map_or("all", |(n, _)| n.as_str())
                    .to_owned();
                egui::ComboBox::from_label("set list")
                    .selected_text(current)
                    .show_ui(ui, |ui| {
                        changed |= ui
                            .selectable_value(&mut self.set_list_index, None, "all")
                            .changed();
                        for (i, (n, _)) in self.set_lists.iter().enumerate() {
                            changed |= ui
                                .selectable_value(&mut self.set_list_index, Some(i), n)
                                .changed();
                        }
                    });
            }
        }
        // Category tree: super-category → category, with counts.
        egui::CollapsingHeader::new("Categories")
            .default_open(true)
            .show(ui, |ui| {
                if ui
                    .selectable_label(
                        self.query.super_category.is_none() && self.query.category.is_none(),
                        "all",
                    )
                    .clicked()
                {
                    self.query.super_category = None;
                    self.query.category = None;
                    changed = true;
                }
                let mut i = 0;
                while i < self.categories.len() {
                    let sup = self.categories[i].0.clone();
                    let group: Vec<(String, usize)> = self.categories[i..]
                        .iter()
                        .take_while(|c| c.0 == sup)
                        .map(|c| (c.1.clone(), c.2))
                        .collect();
                    i += group.len();
                    let total: usize = group.iter().map(|g| g.1).sum();
                    egui::CollapsingHeader::new(format!("{sup} ({total})"))
                        .id_salt(("uco3d_sup", &sup))
                        .show(ui, |ui| {
                            for (cat, n) in group {
                                let selected = self.query.category.as_deref() == Some(cat.as_str());
                                if ui
                                    .selectable_label(selected, format!("{cat} ({n})"))
                                    .clicked()
                                {
                                    self.query.super_category = Some(sup.clone());
                                    self.query.category = Some(cat);
                                    changed = true;
                                }
                            }
                        });
                }
            });
        if changed {
            self.run_query(shared);
        }
        ui.label(
            RichText::new(format!(
                "{} sequences · {:.0} ms",
                self.rows.len(),
                self.query_ms
            ))
            .weak(),
        );
        ui.separator();
        let current = self.seq.as_ref().map(|s| s.annot.name.clone());
        let row_h = ui.text_style_height(&egui::TextStyle::Body) * 2.3;
        let mut clicked = None;
        egui::ScrollArea::vertical().auto_shrink(false).show_rows(
            ui,
            row_h,
            self.rows.len(),
            |ui, range| {
                for row in &self.rows[range] {
                    let selected = current.as_deref() == Some(row.name.as_str());
                    let q = row.splat_quality.map_or("–".into(), |v| format!("{v:.2}"));
                    let text = format!(
                        "{}  ·  {}\n{}",
                        row.name,
                        row.category,
                        row.short_caption.as_deref().unwrap_or("")
                    );
                    let r = ui.add_sized(
                        [ui.available_width(), row_h],
                        egui::Button::selectable(selected, text).right_text(q),
                    );
                    if r.clicked() {
                        clicked = Some(row.name.clone());
                    }
                }
            },
        );
        if let Some(name) = clicked {
            self.load(&name, shared);
        }
    }

    /// The frame panel: the video frame (undistorted or raw) with the mask overlay.
    pub fn frame_ui(&mut self, ui: &mut Ui, rect: egui::Rect) {
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::from_gray(18));
        match &self.textures {
            Some(t) => {
                let tex = if self.undistort {
                    t.undistorted.as_ref().unwrap_or(&t.raw)
                } else {
                    &t.raw
                };
                let fitted = crate::ui::widgets::fit_rect(rect.shrink(4.0), tex.size_vec2());
                let uv = egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
                painter.image(tex.id(), fitted, uv, Color32::WHITE);
                // The mask is undistorted with the frame, so over a raw frame it would be
                // misplaced: it is hidden there.
                if self.show_mask
                    && let Some(m) = &t.mask
                    && (self.undistort || t.undistorted.is_none())
                {
                    painter.image(
                        m.id(),
                        fitted,
                        uv,
                        Color32::from_rgba_unmultiplied(255, 90, 200, 110),
                    );
                }
                let label = format!(
                    "frame {} · {:.3} s · {}",
                    self.seq
                        .as_ref()
                        .map_or(0, |s| s.frames[t.index].frame_number),
                    self.seq
                        .as_ref()
                        .and_then(|s| s.frames[t.index].timestamp)
                        .unwrap_or(0.0),
                    if self.undistort && t.undistorted.is_some() {
                        "undistorted"
                    } else {
                        "raw"
                    }
                );
                painter.text(
                    rect.left_top() + egui::vec2(8.0, 8.0),
                    egui::Align2::LEFT_TOP,
                    label,
                    egui::TextStyle::Small.resolve(ui.style()),
                    Color32::from_gray(220),
                );
            }
            None => {
                let text = self
                    .fetch_error
                    .clone()
                    .unwrap_or_else(|| "decoding…".into());
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    text,
                    egui::TextStyle::Body.resolve(ui.style()),
                    Color32::GRAY,
                );
            }
        }
    }

    /// The current frame over the look-through render, at the blend slider's opacity.
    pub fn blend_over(&self, ui: &Ui, rect: egui::Rect) {
        let Some(t) = &self.textures else { return };
        if t.index != self.frame || self.blend <= 0.0 {
            return;
        }
        let tex = if self.undistort {
            t.undistorted.as_ref().unwrap_or(&t.raw)
        } else {
            &t.raw
        };
        let a = (self.blend.clamp(0.0, 1.0) * 255.0).round() as u8;
        ui.painter_at(rect).image(
            tex.id(),
            rect,
            egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
            Color32::from_rgba_unmultiplied(255, 255, 255, a),
        );
    }

    pub fn timeline_ui(&mut self, ui: &mut Ui) {
        let n = self.frame_count();
        if n == 0 {
            return;
        }
        ui.horizontal(|ui| {
            if ui
                .button(if self.playing {
                    "⏸ Pause"
                } else {
                    "▶ Play"
                })
                .on_hover_text("Space")
                .clicked()
            {
                self.toggle_play();
            }
            if ui.button("◀").on_hover_text("Previous frame (←)").clicked() {
                self.step(-1);
            }
            if ui.button("▶").on_hover_text("Next frame (→)").clicked() {
                self.step(1);
            }
            let mut f = self.frame;
            ui.spacing_mut().slider_width = (ui.available_width() - 120.0).max(100.0);
            let label = ui.label("frame");
            if ui
                .add(egui::Slider::new(&mut f, 0..=n - 1))
                .labelled_by(label.id)
                .changed()
            {
                self.frame = f;
                self.playing = false;
                if let Some(t) = self.seq.as_ref().and_then(|s| s.frames[f].timestamp) {
                    self.play_time = t;
                }
                self.request_frame();
            }
        });
    }

    pub fn inspector_ui(&mut self, ui: &mut Ui, shared: &mut Shared, look_through: bool) {
        let Some(seq) = self.seq.clone() else {
            ui.label(RichText::new("Pick a sequence on the left.").weak());
            return;
        };
        let a = &seq.annot;
        ui.label(RichText::new(&a.name).strong());
        ui.label(format!("{} › {}", a.super_category, a.category));
        if let Some(c) = &a.short_caption {
            ui.label(RichText::new(c).italics());
        }
        if let Some(c) = &a.caption {
            egui::CollapsingHeader::new("Caption").show(ui, |ui| {
                ui.add(egui::Label::new(c).wrap());
            });
        }
        egui::Grid::new("uco3d_quality")
            .num_columns(2)
            .show(ui, |ui| {
                let q = &a.quality;
                let f = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.3}"));
                for (k, v) in [
                    ("camera quality", f(q.viewpoint)),
                    ("splat quality", f(q.gaussian_splats)),
                    ("splat PSNR", f(q.psnr)),
                    ("splat SSIM", f(q.ssim)),
                    ("splat LPIPS", f(q.lpips)),
                    (
                        "SfM cameras",
                        q.sfm_n_registered_cameras
                            .map_or("–".into(), |v| v.to_string()),
                    ),
                    ("SfM track length", f(q.sfm_mean_track_length)),
                    ("BA cost", f(q.sfm_bundle_adjustment_final_cost)),
                    (
                        "Gaussians",
                        a.n_gaussians.map_or("–".into(), |v| v.to_string()),
                    ),
                    ("frames", seq.frames.len().to_string()),
                ] {
                    ui.label(k);
                    ui.monospace(v);
                    ui.end_row();
                }
            });
        ui.separator();
        let before = self.layer;
        egui::ComboBox::from_label("3D layer")
            .selected_text(
                Layer::ALL
                    .iter()
                    .find(|(l, _)| *l == self.layer)
                    .map_or("", |(_, n)| *n),
            )
            .show_ui(ui, |ui| {
                for (l, name) in Layer::ALL {
                    ui.selectable_value(&mut self.layer, l, name);
                }
            });
        if self.layer != before {
            self.build_layer(shared);
        }
        ui.checkbox(&mut self.show_mask, "mask overlay");
        ui.checkbox(&mut self.undistort, "undistort frames (as the loader)");
        ui.checkbox(&mut self.aligned, "canonical alignment");
        if look_through {
            let label = ui.label("frame over render");
            ui.add(egui::Slider::new(&mut self.blend, 0.0..=1.0))
                .labelled_by(label.id);
            let stale = self.psnr.is_none_or(|(i, ..)| i != self.frame);
            if stale
                && self.psnr_job.is_none()
                && !self.playing
                && let Some(s) = self.splats.as_ref()
            {
                self.start_psnr(s.clone(), shared);
            }
            match self.psnr {
                Some((i, p, w, h)) if i == self.frame => {
                    ui.label(RichText::new(format!("PSNR render vs frame: {p:.2} dB")).strong());
                    ui.label(
                        RichText::new(format!("CPU reference render at {w}×{h}"))
                            .weak()
                            .small(),
                    );
                }
                _ => {
                    ui.label(RichText::new("PSNR: computing…").weak());
                }
            }
        }
        if let Some(cv) = seq.cameras.get(self.frame) {
            ui.separator();
            let f = &seq.frames[self.frame];
            ui.label(
                RichText::new(format!(
                    "frame {} · {:.3} s",
                    f.frame_number,
                    f.timestamp.unwrap_or(0.0)
                ))
                .strong(),
            );
            egui::Grid::new("uco3d_cam").num_columns(2).show(ui, |ui| {
                ui.label("size");
                ui.monospace(format!("{} × {}", cv.k.width, cv.k.height));
                ui.end_row();
                ui.label("fx, fy");
                ui.monospace(format!("{:.1}, {:.1}", cv.k.fx, cv.k.fy));
                ui.end_row();
                ui.label("cx, cy");
                ui.monospace(format!("{:.1}, {:.1}", cv.k.cx, cv.k.cy));
                ui.end_row();
                ui.label("k1, k2");
                ui.monospace(format!(
                    "{:.4}, {:.4}",
                    cv.distortion.0[0], cv.distortion.0[1]
                ));
                ui.end_row();
            });
        }
        if !seq.problems.is_empty() {
            ui.separator();
            ui.label(
                RichText::new("Problems")
                    .strong()
                    .color(Color32::from_rgb(230, 120, 90)),
            );
            for p in &seq.problems {
                ui.add(egui::Label::new(RichText::new(p).small()).wrap());
            }
        }
        ui.separator();
        ui.horizontal_wrapped(|ui| {
            if ui.button("Export frame PNG…").clicked() {
                self.export_frame(shared);
            }
            if let (Some(s), Some(cam)) = (self.splats.clone(), self.current_camera())
                && ui
                    .button("Export render PNG…")
                    .on_hover_text(
                        "The splats seen by this frame's camera, over white (offscreen wgpu, or the CPU reference without a GPU)",
                    )
                    .clicked()
            {
                let file = format!("{}_render{:03}.png", a.name, self.frame);
                let _ = shared.worker.spawn("Export render", move |_ctx| {
                    let Some(path) = rfd::FileDialog::new().set_file_name(&file).save_file() else {
                        return Ok(());
                    };
                    let settings = RenderSettings {
                        background: [1.0; 3],
                        ..Default::default()
                    };
                    let bytes = super::scene3d::view_png(&s, &cam, &settings)
                        .map_err(JobError::failed)?;
                    crate::atomic::write_atomic(&path, &bytes).map_err(JobError::failed)
                });
            }
            if let Some(s) = self.splats.as_ref()
                && ui.button("Export splats PLY…").clicked()
            {
                export_ply(s.clone(), &a.name, shared);
            }
        });
    }

    fn start_psnr(&mut self, splats: Arc<Splats>, shared: &mut Shared) {
        let (Some(cam), Some(t)) = (self.current_camera(), self.textures.as_ref()) else {
            return;
        };
        if t.index != self.frame {
            return;
        }
        let frame = if self.undistort {
            t.frame
                .undistorted
                .clone()
                .unwrap_or_else(|| t.frame.raw.clone())
        } else {
            t.frame.raw.clone()
        };
        let index = self.frame;
        self.psnr_job = Some(
            shared
                .worker
                .spawn("PSNR of the look-through render", move |_ctx| {
                    let (w, h) = psnr_size(cam.intrinsics.width, cam.intrinsics.height);
                    let small_cam = cam.with_viewport(w, h);
                    let settings = RenderSettings {
                        background: [1.0; 3],
                        ..Default::default()
                    };
                    let render = reference::to_rgba8(
                        &reference::render(&splats, &small_cam, &settings),
                        w,
                        h,
                    );
                    let small = if frame.dimensions() == (w, h) {
                        (*frame).clone()
                    } else {
                        image::imageops::resize(
                            &*frame,
                            w,
                            h,
                            image::imageops::FilterType::Triangle,
                        )
                    };
                    Ok((index, reference::psnr(&render, &small), w, h))
                }),
        );
    }

    fn export_frame(&self, shared: &mut Shared) {
        let Some(t) = &self.textures else { return };
        let image = if self.undistort {
            t.frame
                .undistorted
                .clone()
                .unwrap_or_else(|| t.frame.raw.clone())
        } else {
            t.frame.raw.clone()
        };
        let name = format!(
            "{}_frame{:03}.png",
            self.seq
                .as_ref()
                .map_or("frame".into(), |s| s.annot.name.clone()),
            t.index
        );
        let _ = shared.worker.spawn("Export frame", move |_ctx| {
            let Some(path) = rfd::FileDialog::new().set_file_name(&name).save_file() else {
                return Ok(());
            };
            let mut bytes = Vec::new();
            image
                .write_to(
                    &mut std::io::Cursor::new(&mut bytes),
                    image::ImageFormat::Png,
                )
                .map_err(JobError::failed)?;
            crate::atomic::write_atomic(&path, &bytes).map_err(JobError::failed)
        });
    }
}

/// The frame's depth map as a coloured point cloud in the raw frame (colours from the
/// raw video frame when it is decoded, else grey).
pub fn depth_cloud(
    root: &Path,
    seq: &Sequence,
    frame: usize,
    image: Option<&image::RgbaImage>,
) -> Result<loupe_render::io::PointCloud, String> {
    let rel = seq
        .annot
        .depth_path
        .as_deref()
        .ok_or_else(|| format!("{}: no depth maps in the database", seq.annot.name))?;
    let f = seq.frames.get(frame).ok_or("no such frame")?;
    let depth = crate::datasets::uco3d::depth::read_depth(
        &root.join(rel),
        f.frame_number,
        f.depth_scale_adjustment.unwrap_or(1.0) as f32,
    )
    .map_err(|e| e.to_string())?;
    let cam = seq.cameras[frame].pinhole();
    let stride = ((depth.width as usize * depth.height as usize) / 400_000).max(1);
    let points = depth.unproject(&cam.intrinsics, &cam.world_to_camera, stride);
    let colors = points
        .iter()
        .map(|p| {
            let px = image.and_then(|img| {
                let (u, v, _) = cam.project(p)?;
                (u >= 0.0 && v >= 0.0 && (u as u32) < img.width() && (v as u32) < img.height())
                    .then(|| img.get_pixel(u as u32, v as u32).0)
            });
            px.map_or([180, 180, 180], |c| [c[0], c[1], c[2]])
        })
        .collect();
    Ok(loupe_render::io::PointCloud {
        positions: points
            .iter()
            .map(|p| [p.x as f32, p.y as f32, p.z as f32])
            .collect(),
        colors,
    })
}

fn export_ply(splats: Arc<Splats>, name: &str, shared: &mut Shared) {
    let file = format!("{name}.ply");
    let _ = shared.worker.spawn("Export splats", move |_ctx| {
        let Some(path) = rfd::FileDialog::new().set_file_name(&file).save_file() else {
            return Ok(());
        };
        write_ply_atomic(&path, &splats).map_err(JobError::failed)
    });
}

/// The splats as a standard 3DGS PLY (channel-major `f_rest`), saved atomically.
pub fn write_ply_atomic(path: &Path, splats: &Splats) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    loupe_render::io::ply::write_ply(&mut bytes, splats)?;
    crate::atomic::write_atomic(path, &bytes)
}

fn psnr_size(w: u32, h: u32) -> (u32, u32) {
    let long = w.max(h).max(1);
    if long <= PSNR_SIDE {
        return (w, h);
    }
    let s = f64::from(PSNR_SIDE) / f64::from(long);
    (
        ((f64::from(w) * s).round() as u32).max(1),
        ((f64::from(h) * s).round() as u32).max(1),
    )
}

fn upload(ctx: &egui::Context, frame: FetchedFrame) -> Textures {
    let tex = |name: &str, img: &image::RgbaImage| {
        let c = egui::ColorImage::from_rgba_unmultiplied(
            [img.width() as usize, img.height() as usize],
            img.as_raw(),
        );
        ctx.load_texture(name, c, egui::TextureOptions::LINEAR)
    };
    let raw = tex("uco3d_raw", &frame.raw);
    let undistorted = frame
        .undistorted
        .as_ref()
        .map(|u| tex("uco3d_undistorted", u));
    // White where foreground, transparent elsewhere; tinted when drawn.
    let mask = frame.mask.as_ref().map(|m| tex("uco3d_mask", m));
    Textures {
        index: frame.index,
        raw,
        undistorted,
        mask,
        frame,
    }
}

/// Canonical (Y up) → display (Z up): a proper rotation taking +Y to +Z.
fn to_display_matrix() -> Matrix3<f64> {
    Matrix3::new(1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0)
}

fn from_display(p: &Point3<f64>) -> Point3<f64> {
    Point3::from(to_display_matrix().transpose() * p.coords)
}

/// A raw-frame point in the display frame.
pub fn display_point(align: &Alignment, raw: &Point3<f64>) -> Point3<f64> {
    Point3::from(to_display_matrix() * align.point(raw).coords)
}

/// A camera placed in the display frame, as the equivalent rigid camera of the raw frame:
/// with `M(X) = s·Q·(R_aᵀ·X + T_a)`, `x_cam = R·M(X) + t` divided by `s` (which leaves
/// the projection unchanged) is `R·Q·R_aᵀ·X + R·Q·T_a + t/s`.
pub fn view_to_raw(cam: &Camera, align: &Alignment) -> Camera {
    let r = cam
        .world_to_camera
        .rotation
        .to_rotation_matrix()
        .into_inner();
    let t = cam.world_to_camera.translation.vector;
    let q = to_display_matrix();
    let s = align.scale.max(1e-12);
    let r_raw = r * q * align.r.transpose();
    let t_raw = r * q * align.t + t / s;
    let mut out = *cam;
    out.world_to_camera = nalgebra::Isometry3::from_parts(
        nalgebra::Translation3::from(t_raw),
        nalgebra::UnitQuaternion::from_rotation_matrix(
            &nalgebra::Rotation3::from_matrix_unchecked(r_raw),
        ),
    );
    out.near = cam.near / s;
    out.far = cam.far / s;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use loupe_render::camera::Intrinsics;
    use nalgebra::Rotation3;

    /// A point seen by a display-frame camera lands on the same pixel as its raw-frame
    /// counterpart seen by the converted camera.
    #[test]
    fn display_cameras_convert_to_the_raw_frame() {
        let align = Alignment {
            r: *Rotation3::from_euler_angles(0.3, -0.5, 1.1).matrix(),
            t: Vector3::new(0.2, 0.4, -0.3),
            scale: 1.7,
        };
        let cam = Camera::look_at(
            Point3::new(3.0, -2.0, 1.5),
            Point3::origin(),
            Vector3::z(),
            Intrinsics::from_fov_y(0.9, 320, 240),
        );
        let raw_cam = view_to_raw(&cam, &align);
        for raw in [Point3::new(0.1, 0.2, 0.3), Point3::new(-0.4, 0.0, 0.25)] {
            let shown = display_point(&align, &raw);
            let (u0, v0, _) = cam.project(&shown).unwrap();
            let (u1, v1, _) = raw_cam.project(&raw).unwrap();
            assert!(
                (u0 - u1).abs() < 1e-6 && (v0 - v1).abs() < 1e-6,
                "{u0},{v0} vs {u1},{v1}"
            );
        }
        assert_eq!(psnr_size(1920, 1080), (320, 180));
        assert_eq!(psnr_size(192, 144), (192, 144));
    }
}

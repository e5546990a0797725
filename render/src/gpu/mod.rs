//! wgpu pipelines. `context` makes a headless device for offscreen work (tests, CLI,
//! screenshots); inside the app the device comes from egui-wgpu.

pub mod context;
pub mod image_plane;
pub mod lines;
pub mod offscreen;
mod pipeline;
pub mod sorter;
pub mod splat_pipeline;
pub mod view;

pub use context::{GpuContext, GpuError};
pub use image_plane::{GpuImagePlane, ImagePlanePipeline, plane_clip_corners};
pub use lines::{GpuLines, LineInstance, LinePipeline, project_lines};
pub use splat_pipeline::{GpuSplats, SplatPipeline, bytes_per_splat};
pub use view::{CompositeBinding, CompositePipeline, ViewTarget};

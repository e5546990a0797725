//! wgpu pipelines. `context` makes a headless device for offscreen work (tests, CLI,
//! screenshots); inside the app the device comes from egui-wgpu.

pub mod context;
pub mod offscreen;
pub mod sorter;
pub mod splat_pipeline;

pub use context::{GpuContext, GpuError};
pub use splat_pipeline::{GpuSplats, SplatPipeline, bytes_per_splat};

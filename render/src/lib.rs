//! Drawing for Loupe's 3D workspace, independent of any UI toolkit: cameras, splat and
//! point-cloud files, a CPU reference splat renderer, and the wgpu pipelines.

pub mod camera;
pub mod gpu;
pub mod io;
pub mod reference;
pub mod scene;
pub mod splats;

pub use camera::{Camera, Intrinsics, OrbitController};
pub use scene::{DemoScene, Segment};
pub use splats::Splats;

//! Drawing for Loupe's 3D workspace, independent of any UI toolkit: cameras, scene
//! primitives (points, frusta, axes) and, with the splat renderer, the wgpu pipelines.

pub mod camera;
pub mod scene;

pub use camera::{Camera, Intrinsics, OrbitController};
pub use scene::{DemoScene, Segment};

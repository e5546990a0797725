//! Headless subcommands of the `loupe` binary.

pub mod bench;
mod bench_biomed;
pub mod bench_clip;
mod bench_grid;
pub mod bench_ground;
mod bench_index;
mod bench_uco3d;
pub mod embed;
pub mod eval;
pub mod export;
pub mod ground;
pub mod ground_bench;
pub mod index;
pub mod render;
pub mod render_cameras;
pub mod review_stress;

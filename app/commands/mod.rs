//! Headless subcommands of the `loupe` binary.

pub mod bench;
mod bench_biomed;
pub mod bench_clip;
pub mod bench_ground;
pub mod ground;
pub mod index;
pub mod render;

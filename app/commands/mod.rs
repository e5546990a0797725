//! Headless subcommands of the `loupe` binary.

pub mod bench;
pub mod bench_ground;
pub mod ground;
mod bench_biomed;
pub mod index;
pub mod render;

//! Headless subcommands of the `loupe` binary.

pub mod bench;
pub mod bench_ground;
pub mod ground;
pub mod render;

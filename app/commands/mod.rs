//! Headless subcommands of the `loupe` binary.

pub mod bench;
mod bench_biomed;
pub mod index;
pub mod render;

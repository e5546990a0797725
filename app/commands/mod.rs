//! Headless subcommands of the `loupe` binary.

pub mod bench;
pub mod index;
pub mod render;

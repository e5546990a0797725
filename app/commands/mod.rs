//! Headless subcommands of the `loupe` binary.

pub mod render;

//! Loupe: a desktop workbench for multimodal grounding and 3D / biomedical dataset
//! inspection. All UI lives in this library; `main.rs` is a thin binary.
//!
//! Layers: `app` (this crate) → `loupe_render` (wgpu, cameras) and `loupe_models`
//! (candle inference, answer parsing). Nothing below this crate knows about egui.

// Tests write fixtures directly; the atomic-save rule is for user data.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod app;
pub mod atomic;
pub mod cli;
pub mod commands;
pub mod datasets;
pub mod demo;
pub mod grounding_model;
pub mod image_cache;
pub mod routing;
pub mod state;
pub mod thumbnails;
pub mod ui;
pub mod worker;
pub mod workspace;

pub use app::{LoupeApp, StartOptions};

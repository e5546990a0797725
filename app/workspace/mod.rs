//! The three workspaces. Each draws into the same frame of panels (item list, central
//! view, inspector) and receives the paths routed to it.

pub mod biomed;
pub mod biomed_clip;
pub mod grounding;
pub mod grounding_run;
pub mod scene3d;
pub mod uco3d_frames;
pub mod uco3d_session;

use crate::image_cache::ImageCache;
use crate::routing::Content;
use crate::ui::shortcuts::Binding;
use crate::ui::toasts::Toasts;
use crate::worker::Worker;
use std::path::Path;

/// What every workspace shares: the worker, the image cache and the toasts.
pub struct Shared {
    pub worker: Worker,
    pub images: ImageCache,
    pub toasts: Toasts,
}

pub trait Workspace {
    /// Take results from finished jobs; called every frame before drawing.
    fn poll(&mut self, shared: &mut Shared);
    /// The left panel: the open data set's items.
    fn items_panel(&mut self, ui: &mut egui::Ui, shared: &mut Shared);
    /// The central view.
    fn central(&mut self, ui: &mut egui::Ui, shared: &mut Shared);
    /// The right panel: details of the selection.
    fn inspector(&mut self, ui: &mut egui::Ui, shared: &mut Shared);
    /// Keys of this workspace (only called while it is the active tab).
    fn handle_keys(&mut self, ctx: &egui::Context);
    fn bindings(&self) -> &'static [&'static Binding];
    /// Open a path already recognised as this workspace's content. Loading happens on
    /// the worker; errors are reported through the toasts.
    fn open(&mut self, path: &Path, content: Content, shared: &mut Shared);
    /// True while it waits for background work (used by tests and screenshots).
    fn is_busy(&self) -> bool;
}

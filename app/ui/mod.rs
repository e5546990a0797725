//! The shared look and the app-wide UI pieces: theme, toasts, status bar, shortcuts.

pub mod shortcuts;
pub mod splat_view;
pub mod status_bar;
pub mod theme;
pub mod toasts;
pub mod widgets;

//! What persists across restarts (through eframe's storage). Everything has a default
//! so an old or partial save still loads.

use crate::routing::WorkspaceKind;
use crate::ui::theme::Theme;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub tab: WorkspaceKind,
    pub theme: Theme,
    pub ui_scale: f32,
    pub show_inspector: bool,
    pub show_items: bool,
    pub recent: Vec<PathBuf>,
    /// The grounding model and how to run it.
    pub model: crate::grounding_model::ModelSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tab: WorkspaceKind::Grounding,
            theme: Theme::Dark,
            ui_scale: 1.0,
            show_inspector: true,
            show_items: true,
            recent: Vec::new(),
            model: Default::default(),
        }
    }
}

impl Settings {
    pub const STORAGE_KEY: &'static str = "loupe.settings";
    const MAX_RECENT: usize = 12;

    /// Most recent first, no duplicates, bounded.
    pub fn remember(&mut self, path: &Path) {
        self.recent.retain(|p| p != path);
        self.recent.insert(0, path.to_path_buf());
        self.recent.truncate(Self::MAX_RECENT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_files_are_most_recent_first_and_bounded() {
        let mut s = Settings::default();
        for i in 0..20 {
            s.remember(Path::new(&format!("/data/{i}")));
        }
        s.remember(Path::new("/data/15"));
        assert_eq!(s.recent.len(), 12);
        assert_eq!(s.recent[0], Path::new("/data/15"));
        assert_eq!(s.recent[1], Path::new("/data/19"));
        assert_eq!(
            s.recent
                .iter()
                .filter(|p| *p == Path::new("/data/15"))
                .count(),
            1
        );
    }

    #[test]
    fn partial_and_old_saves_fill_in_defaults() {
        let s: Settings = serde_json::from_str(r#"{"tab": "BioMed", "unknown_field": 3}"#).unwrap();
        assert_eq!(s.tab, WorkspaceKind::BioMed);
        assert_eq!(s.ui_scale, 1.0);
        let round: Settings = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(round, s);
    }
}

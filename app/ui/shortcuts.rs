//! Every key binding in one table, so the F1 overlay can never drift from the code:
//! handlers match on these constants, and the overlay lists them.

use egui::{Key, KeyboardShortcut, Modifiers};

pub struct Binding {
    pub shortcut: KeyboardShortcut,
    pub action: &'static str,
}

const fn bind(modifiers: Modifiers, key: Key, action: &'static str) -> Binding {
    Binding {
        shortcut: KeyboardShortcut::new(modifiers, key),
        action,
    }
}

const CMD: Modifiers = Modifiers::COMMAND;
const CMD_SHIFT: Modifiers = Modifiers::COMMAND.plus(Modifiers::SHIFT);
const NONE: Modifiers = Modifiers::NONE;
const ALT: Modifiers = Modifiers::ALT;

pub const SHOW_HELP: Binding = bind(NONE, Key::F1, "Show / hide this shortcut overlay");
pub const OPEN_FILE: Binding = bind(CMD, Key::O, "Open file…");
pub const OPEN_FOLDER: Binding = bind(CMD_SHIFT, Key::O, "Open folder…");
pub const ZOOM_IN: Binding = bind(CMD, Key::Plus, "Larger UI (projector)");
pub const ZOOM_IN_EQUALS: Binding = bind(CMD, Key::Equals, "Larger UI (same as Ctrl +)");
pub const ZOOM_OUT: Binding = bind(CMD, Key::Minus, "Smaller UI");
pub const ZOOM_RESET: Binding = bind(CMD, Key::Num0, "Reset UI size");
pub const TAB_GROUNDING: Binding = bind(CMD, Key::Num1, "Grounding workspace");
pub const TAB_3D: Binding = bind(CMD, Key::Num2, "3D workspace");
pub const TAB_BIOMED: Binding = bind(CMD, Key::Num3, "BioMed workspace");
pub const TOGGLE_INSPECTOR: Binding = bind(CMD, Key::I, "Show / hide the inspector");
pub const TOGGLE_ITEMS: Binding = bind(CMD, Key::B, "Show / hide the item list");
pub const TOGGLE_THEME: Binding = bind(CMD_SHIFT, Key::L, "Dark / light theme");

pub const GLOBAL: &[&Binding] = &[
    &SHOW_HELP,
    &OPEN_FILE,
    &OPEN_FOLDER,
    &ZOOM_IN,
    &ZOOM_IN_EQUALS,
    &ZOOM_OUT,
    &ZOOM_RESET,
    &TAB_GROUNDING,
    &TAB_3D,
    &TAB_BIOMED,
    &TOGGLE_INSPECTOR,
    &TOGGLE_ITEMS,
    &TOGGLE_THEME,
];

/// Workspace bindings, listed in the overlay under the workspace's name.
pub const NEXT_ITEM: Binding = bind(NONE, Key::ArrowDown, "Next item");
pub const PREV_ITEM: Binding = bind(NONE, Key::ArrowUp, "Previous item");
pub const NEXT_ITEM_ALT: Binding = bind(NONE, Key::J, "Next item");
pub const PREV_ITEM_ALT: Binding = bind(NONE, Key::K, "Previous item");
pub const FIT_VIEW: Binding = bind(NONE, Key::F, "Fit / reset the view");
pub const ORBIT_LEFT: Binding = bind(
    NONE,
    Key::ArrowLeft,
    "Previous frame of a uCO3D sequence; orbit left otherwise",
);
pub const ORBIT_RIGHT: Binding = bind(
    NONE,
    Key::ArrowRight,
    "Next frame of a uCO3D sequence; orbit right otherwise",
);
pub const PLAY_PAUSE: Binding = bind(NONE, Key::Space, "Play / pause the sequence");
pub const FLY_FORWARD: Binding = bind(
    NONE,
    Key::W,
    "Fly forward (hold; S back, A/D sideways, Q/E down/up)",
);
pub const FLY_BACK: Binding = bind(NONE, Key::S, "Fly back");
pub const FLY_LEFT: Binding = bind(NONE, Key::A, "Fly left");
pub const FLY_RIGHT: Binding = bind(NONE, Key::D, "Fly right");
pub const FLY_DOWN: Binding = bind(NONE, Key::Q, "Fly down");
pub const FLY_UP: Binding = bind(NONE, Key::E, "Fly up");
pub const LOOK_THROUGH: Binding = bind(
    NONE,
    Key::C,
    "Look through the selected dataset camera / back to orbit",
);
pub const GRID_LARGER: Binding = bind(NONE, Key::CloseBracket, "Larger thumbnails");
pub const GRID_SMALLER: Binding = bind(NONE, Key::OpenBracket, "Smaller thumbnails");

// Grounding review. CVAT's N draws a shape and Label Studio's arrows move the selected
// region; Enter / R / S / U decide and navigate without leaving the home row.
pub const REVIEW_NEXT: Binding = bind(NONE, Key::ArrowRight, "Next item (no box selected)");
pub const REVIEW_PREV: Binding = bind(NONE, Key::ArrowLeft, "Previous item (no box selected)");
pub const ACCEPT: Binding = bind(NONE, Key::Enter, "Accept the item's boxes and go on");
pub const REJECT: Binding = bind(NONE, Key::R, "Reject the item and go on");
pub const REJECT_ALT: Binding = bind(NONE, Key::Backspace, "Reject the item and go on");
pub const SKIP: Binding = bind(NONE, Key::S, "Skip the item (decide later) and go on");
pub const NEXT_UNREVIEWED: Binding = bind(NONE, Key::U, "Jump to the next unreviewed item");
pub const IMAGE_1: Binding = bind(NONE, Key::Num1, "Select image 1 (again: its next box)");
pub const IMAGE_2: Binding = bind(NONE, Key::Num2, "Select image 2");
pub const IMAGE_3: Binding = bind(NONE, Key::Num3, "Select image 3");
pub const IMAGE_4: Binding = bind(NONE, Key::Num4, "Select image 4");
pub const IMAGE_5: Binding = bind(NONE, Key::Num5, "Select image 5");
pub const IMAGE_6: Binding = bind(NONE, Key::Num6, "Select image 6");
pub const IMAGES: [&Binding; 6] = [&IMAGE_1, &IMAGE_2, &IMAGE_3, &IMAGE_4, &IMAGE_5, &IMAGE_6];
pub const DRAW_BOX: Binding = bind(NONE, Key::N, "Draw a new box: then drag on an image");
pub const DELETE_BOX: Binding = bind(NONE, Key::Delete, "Delete the selected box");
pub const DESELECT: Binding = bind(NONE, Key::Escape, "Deselect the box / stop drawing");
pub const MOVE_BOX: Binding = bind(
    NONE,
    Key::ArrowUp,
    "With a box selected, arrows move it (Shift: 10× step)",
);
pub const GROW_BOX: Binding = bind(ALT, Key::ArrowUp, "Push the edge the arrow points to out");
pub const SHRINK_BOX: Binding = bind(
    CMD,
    Key::ArrowUp,
    "Pull the edge opposite the arrow in (shrink)",
);
pub const UNDO: Binding = bind(CMD, Key::Z, "Undo the last review edit");
pub const REDO: Binding = bind(CMD_SHIFT, Key::Z, "Redo");
pub const REDO_ALT: Binding = bind(CMD, Key::Y, "Redo");
pub const METRICS_VIEW: Binding = bind(NONE, Key::M, "Metrics table + IoU histogram / images");
pub const EXPORT: Binding = bind(CMD, Key::E, "Export the review: COCO, Qwen JSONL, CSV");

pub const GROUNDING: &[&Binding] = &[
    &NEXT_ITEM,
    &PREV_ITEM,
    &REVIEW_NEXT,
    &REVIEW_PREV,
    &NEXT_ITEM_ALT,
    &PREV_ITEM_ALT,
    &NEXT_UNREVIEWED,
    &ACCEPT,
    &REJECT,
    &REJECT_ALT,
    &SKIP,
    &IMAGE_1,
    &IMAGE_2,
    &IMAGE_3,
    &IMAGE_4,
    &IMAGE_5,
    &IMAGE_6,
    &DRAW_BOX,
    &DELETE_BOX,
    &DESELECT,
    &MOVE_BOX,
    &GROW_BOX,
    &SHRINK_BOX,
    &FIT_VIEW,
    &UNDO,
    &REDO,
    &REDO_ALT,
    &METRICS_VIEW,
    &EXPORT,
];
pub const SCENE3D: &[&Binding] = &[
    &FIT_VIEW,
    &ORBIT_LEFT,
    &ORBIT_RIGHT,
    &PLAY_PAUSE,
    &LOOK_THROUGH,
    &FLY_FORWARD,
    &FLY_BACK,
    &FLY_LEFT,
    &FLY_RIGHT,
    &FLY_DOWN,
    &FLY_UP,
];
pub const GRID_DOWN: Binding = bind(NONE, Key::ArrowDown, "Thumbnail below");
pub const GRID_UP: Binding = bind(NONE, Key::ArrowUp, "Thumbnail above");
pub const GRID_LEFT: Binding = bind(NONE, Key::ArrowLeft, "Previous thumbnail");
pub const GRID_RIGHT: Binding = bind(NONE, Key::ArrowRight, "Next thumbnail");
pub const GRID_PAGE_DOWN: Binding = bind(NONE, Key::PageDown, "A screen of thumbnails down");
pub const GRID_PAGE_UP: Binding = bind(NONE, Key::PageUp, "A screen of thumbnails up");
pub const GRID_FIRST: Binding = bind(NONE, Key::Home, "First thumbnail");
pub const GRID_LAST: Binding = bind(NONE, Key::End, "Last thumbnail");
pub const MORE_LIKE_THIS: Binding = bind(NONE, Key::M, "More like this (CLIP similarity)");
pub const BIOMED: &[&Binding] = &[
    &GRID_RIGHT,
    &GRID_LEFT,
    &GRID_DOWN,
    &GRID_UP,
    &GRID_PAGE_DOWN,
    &GRID_PAGE_UP,
    &GRID_FIRST,
    &GRID_LAST,
    &NEXT_ITEM_ALT,
    &PREV_ITEM_ALT,
    &GRID_LARGER,
    &GRID_SMALLER,
    &MORE_LIKE_THIS,
];

/// True while the key of a plain binding is held (for continuous motion), unless a
/// text field has focus.
pub fn held(ctx: &egui::Context, binding: &Binding) -> bool {
    !ctx.egui_wants_keyboard_input()
        && ctx.input(|i| i.key_down(binding.shortcut.logical_key) && i.modifiers.is_none())
}

/// Consume `binding` from this frame's input; true if it was pressed. Plain keys are
/// ignored while a text field has focus so typing never triggers actions.
pub fn pressed(ctx: &egui::Context, binding: &Binding) -> bool {
    if binding.shortcut.modifiers.is_none() && ctx.egui_wants_keyboard_input() {
        return false;
    }
    ctx.input_mut(|i| i.consume_shortcut(&binding.shortcut))
}

/// The overlay window listing every binding.
pub fn overlay(ctx: &egui::Context, open: &mut bool, sections: &[(&str, &[&Binding])]) {
    egui::Window::new("Keyboard shortcuts")
        .open(open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            // The review adds many bindings: scroll rather than run off a small screen.
            egui::ScrollArea::vertical()
                .max_height(ctx.content_rect().height() * 0.8)
                .show(ui, |ui| {
                    ui.columns(sections.len(), |cols| {
                        for (col, (title, bindings)) in cols.iter_mut().zip(sections) {
                            col.heading(*title);
                            egui::Grid::new(*title)
                                .striped(true)
                                .num_columns(2)
                                .show(col, |ui| {
                                    for b in *bindings {
                                        ui.monospace(ctx.format_shortcut(&b.shortcut));
                                        ui.label(b.action);
                                        ui.end_row();
                                    }
                                });
                        }
                    });
                });
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grounding_keys_overlap_only_where_a_selected_box_decides() {
        // ↑ is "previous item" without a selected box and "move it" with one; nothing
        // else in the review may share a key.
        for (i, a) in GROUNDING.iter().enumerate() {
            for b in &GROUNDING[i + 1..] {
                if a.shortcut == b.shortcut {
                    assert!(
                        std::ptr::eq(*b, &MOVE_BOX) || std::ptr::eq(*a, &MOVE_BOX),
                        "{} vs {}",
                        a.action,
                        b.action
                    );
                }
            }
        }
    }

    #[test]
    fn no_two_global_bindings_share_a_key() {
        for (i, a) in GLOBAL.iter().enumerate() {
            for b in &GLOBAL[i + 1..] {
                assert_ne!(a.shortcut, b.shortcut, "{} vs {}", a.action, b.action);
            }
        }
        for section in [GROUNDING, SCENE3D, BIOMED] {
            for b in section {
                assert!(
                    GLOBAL.iter().all(|g| g.shortcut != b.shortcut),
                    "{} clashes",
                    b.action
                );
            }
        }
    }
}

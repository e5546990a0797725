//! Review state of a grounding data set: per item a decision, corrected boxes and a
//! note, with undo/redo over every edit, and the sidecar file it autosaves to.
//!
//! The sidecar (`<annotation>.loupe-review.json`) records a fingerprint of the data file
//! it was written for, so opening it against another file is detected. A sidecar that
//! does not parse, or belongs to other data, is renamed aside and reported; it is never
//! overwritten.

use loupe_models::answer::NormBox;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    #[default]
    Unreviewed,
    Accepted,
    Rejected,
    Skipped,
}

impl Decision {
    pub const ALL: [Decision; 4] = [
        Decision::Unreviewed,
        Decision::Accepted,
        Decision::Rejected,
        Decision::Skipped,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Decision::Unreviewed => "unreviewed",
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
            Decision::Skipped => "skipped",
        }
    }

    /// A one-character mark for the item list.
    pub fn mark(self) -> &'static str {
        match self {
            Decision::Unreviewed => "·",
            Decision::Accepted => "✔",
            Decision::Rejected => "✖",
            Decision::Skipped => "»",
        }
    }
}

/// A box on one image of an item, in coordinates normalised to that image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewBox {
    /// 0-based image index within the item.
    pub image: usize,
    #[serde(rename = "box", with = "box_array")]
    pub bbox: NormBox,
}

/// Boxes are written as `[x1, y1, x2, y2]`: compact and readable in the sidecar.
mod box_array {
    use loupe_models::answer::NormBox;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(b: &NormBox, s: S) -> Result<S::Ok, S::Error> {
        [b.x1, b.y1, b.x2, b.y2].serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NormBox, D::Error> {
        let [x1, y1, x2, y2] = <[f32; 4]>::deserialize(d)?;
        Ok(NormBox::new(x1, y1, x2, y2))
    }
}

/// What the reviewer said about one item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemReview {
    pub decision: Decision,
    /// Corrected boxes; `None` until the reviewer edits a box (the model's proposal
    /// stands until then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boxes: Option<Vec<ReviewBox>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl ItemReview {
    fn is_default(&self) -> bool {
        *self == ItemReview::default()
    }
}

/// Which data file a review belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The data file's name (for messages; not compared).
    pub file: String,
    pub size: u64,
    /// FNV-1a 64 of the file's bytes, in hex.
    pub fnv1a64: String,
    pub items: usize,
}

impl Fingerprint {
    pub fn of_bytes(file: &str, bytes: &[u8], items: usize) -> Self {
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Self {
            file: file.to_owned(),
            size: bytes.len() as u64,
            fnv1a64: format!("{hash:016x}"),
            items,
        }
    }

    /// Same data: the name may differ (a renamed or copied file keeps its review).
    pub fn matches(&self, other: &Self) -> bool {
        self.size == other.size && self.fnv1a64 == other.fnv1a64 && self.items == other.items
    }
}

/// One undoable step: an item's review before and after.
#[derive(Clone, Debug, PartialEq)]
struct Edit {
    item: usize,
    before: ItemReview,
    after: ItemReview,
}

/// The review of a whole data set plus its undo history.
#[derive(Clone, Debug, Default)]
pub struct ReviewState {
    /// Shared with the autosave thread while it serialises a snapshot; an edit copies
    /// the map only if a write still holds the previous one (`Arc::make_mut`).
    items: Arc<BTreeMap<usize, ItemReview>>,
    undo: Vec<Edit>,
    redo: Vec<Edit>,
    /// Counts committed edits, undos and redos: the sidecar stores it, and the kill test
    /// uses it to know how far a file got.
    revision: u64,
    /// Bumped on every change, previews included: the autosave and caches watch it.
    version: u64,
    /// An item being changed live (a drag, typing a note): its review when it began.
    gesture: Option<(usize, ItemReview)>,
}

const UNDO_LIMIT: usize = 10_000;

impl ReviewState {
    pub fn get(&self, item: usize) -> ItemReview {
        self.items.get(&item).cloned().unwrap_or_default()
    }

    pub fn decision(&self, item: usize) -> Decision {
        self.items
            .get(&item)
            .map(|r| r.decision)
            .unwrap_or_default()
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn reviewed(&self) -> impl Iterator<Item = (usize, &ItemReview)> {
        self.items.iter().map(|(&i, r)| (i, r))
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    fn store(&mut self, item: usize, review: ItemReview) {
        let items = Arc::make_mut(&mut self.items);
        if review.is_default() {
            items.remove(&item);
        } else {
            items.insert(item, review);
        }
        self.version += 1;
    }

    /// Change one item as one undoable edit. Returns false (and records nothing) when
    /// the change changes nothing.
    pub fn edit(&mut self, item: usize, change: impl FnOnce(&mut ItemReview)) -> bool {
        self.end_gesture();
        let before = self.get(item);
        let mut after = before.clone();
        change(&mut after);
        self.record(item, before, after)
    }

    fn record(&mut self, item: usize, before: ItemReview, after: ItemReview) -> bool {
        if before == after {
            return false;
        }
        self.store(item, after.clone());
        self.undo.push(Edit {
            item,
            before,
            after,
        });
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
        self.revision += 1;
        true
    }

    /// Change an item live (every frame of a drag, every key of a note) without an undo
    /// step per frame: the whole gesture becomes one step at `end_gesture`.
    pub fn preview(&mut self, item: usize, change: impl FnOnce(&mut ItemReview)) {
        if self.gesture.as_ref().is_some_and(|(i, _)| *i != item) {
            self.end_gesture();
        }
        let current = self.get(item);
        if self.gesture.is_none() {
            self.gesture = Some((item, current.clone()));
        }
        let mut after = current.clone();
        change(&mut after);
        if after != current {
            self.store(item, after);
        }
    }

    /// Close a live gesture into one undoable edit (no-op without one).
    pub fn end_gesture(&mut self) {
        if let Some((item, before)) = self.gesture.take() {
            let after = self.get(item);
            self.record(item, before, after);
        }
    }

    pub fn in_gesture(&self) -> bool {
        self.gesture.is_some()
    }

    /// Undo the last edit; returns the item it touched.
    pub fn undo(&mut self) -> Option<usize> {
        self.end_gesture();
        let edit = self.undo.pop()?;
        self.store(edit.item, edit.before.clone());
        let item = edit.item;
        self.redo.push(edit);
        self.revision += 1;
        Some(item)
    }

    pub fn redo(&mut self) -> Option<usize> {
        self.end_gesture();
        let edit = self.redo.pop()?;
        self.store(edit.item, edit.after.clone());
        let item = edit.item;
        self.undo.push(edit);
        self.revision += 1;
        Some(item)
    }

    /// Counts per decision over `n` items (items never touched are unreviewed).
    pub fn counts(&self, n: usize) -> BTreeMap<Decision, usize> {
        let mut counts: BTreeMap<Decision, usize> = BTreeMap::new();
        let mut touched = 0;
        for (&i, r) in self.items.iter() {
            if i < n {
                *counts.entry(r.decision).or_default() += 1;
                touched += 1;
            }
        }
        *counts.entry(Decision::Unreviewed).or_default() += n - touched;
        counts
    }
}

pub const FORMAT: &str = "loupe-review";
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct SidecarFile {
    format: String,
    version: u32,
    data: Fingerprint,
    revision: u64,
    items: BTreeMap<usize, ItemReview>,
}

fn serialize(
    items: &BTreeMap<usize, ItemReview>,
    fingerprint: &Fingerprint,
    revision: u64,
) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a> {
        format: &'a str,
        version: u32,
        data: &'a Fingerprint,
        revision: u64,
        items: &'a BTreeMap<usize, ItemReview>,
    }
    let out = Out {
        format: FORMAT,
        version: VERSION,
        data: fingerprint,
        revision,
        items,
    };
    // Plain data with integer keys and finite floats: serialising cannot fail, but a
    // failure would still be better as an empty object than a panic.
    serde_json::to_vec_pretty(&out).unwrap_or_else(|_| b"{}".to_vec())
}

/// The sidecar of a data file: `bench.json` → `bench.json.loupe-review.json`.
pub fn sidecar_path(data_file: &Path) -> PathBuf {
    let mut name = data_file.file_name().unwrap_or_default().to_os_string();
    name.push(".loupe-review.json");
    data_file.with_file_name(name)
}

impl ReviewState {
    /// The sidecar's bytes for this state (undo history is not saved).
    pub fn to_sidecar(&self, fingerprint: &Fingerprint) -> Vec<u8> {
        serialize(&self.items, fingerprint, self.revision)
    }

    /// A cheap snapshot that serialises later, on the autosave thread: the UI thread
    /// only clones an `Arc`, however big the review.
    pub fn sidecar_snapshot(
        &self,
        fingerprint: &Fingerprint,
    ) -> impl FnOnce() -> Vec<u8> + Send + 'static {
        let (items, fingerprint, revision) =
            (self.items.clone(), fingerprint.clone(), self.revision);
        move || serialize(&items, &fingerprint, revision)
    }

    /// Parse sidecar bytes, checking the format. Returns the state and the fingerprint
    /// it was written for.
    pub fn from_sidecar(bytes: &[u8]) -> Result<(ReviewState, Fingerprint), String> {
        let file: SidecarFile =
            serde_json::from_slice(bytes).map_err(|e| format!("not a review file: {e}"))?;
        if file.format != FORMAT {
            return Err(format!("format is '{}', not '{FORMAT}'", file.format));
        }
        if file.version > VERSION {
            return Err(format!(
                "written by a newer Loupe (version {} > {VERSION})",
                file.version
            ));
        }
        let state = ReviewState {
            items: Arc::new(
                file.items
                    .into_iter()
                    .filter(|(_, r)| !r.is_default())
                    .collect(),
            ),
            revision: file.revision,
            ..Default::default()
        };
        Ok((state, file.data))
    }
}

/// What opening a sidecar found.
#[derive(Debug, Default)]
pub struct SidecarLoad {
    pub state: ReviewState,
    /// Problems to show the user (a corrupt or foreign sidecar, and where it went).
    pub problems: Vec<String>,
    /// True when a saved review was restored.
    pub restored: bool,
}

/// Load the review saved next to the data. A missing sidecar is a fresh review; a
/// corrupt one is renamed to `….corrupt-<unix seconds>`, one written for other data to
/// `….other-data-<unix seconds>`, and reported; neither is ever overwritten.
pub fn load_sidecar(path: &Path, expected: &Fingerprint) -> SidecarLoad {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return SidecarLoad::default(),
        Err(e) => {
            return SidecarLoad {
                problems: vec![format!("{}: cannot read the review: {e}", path.display())],
                ..Default::default()
            };
        }
    };
    let (kind, why) = match ReviewState::from_sidecar(&bytes) {
        Ok((state, found)) if found.matches(expected) => {
            return SidecarLoad {
                state,
                problems: Vec::new(),
                restored: true,
            };
        }
        Ok((_, found)) => (
            "other-data",
            format!(
                "was written for different data ({}: {} bytes, {} items, hash {}; now {} bytes, {} items, hash {})",
                found.file,
                found.size,
                found.items,
                found.fnv1a64,
                expected.size,
                expected.items,
                expected.fnv1a64
            ),
        ),
        Err(e) => ("corrupt", e),
    };
    let problem = match move_aside(path, kind) {
        Ok(aside) => format!(
            "{}: {why}; kept as {} and a new review started",
            path.display(),
            aside.display()
        ),
        Err(e) => format!("{}: {why}; could not move it aside: {e}", path.display()),
    };
    SidecarLoad {
        problems: vec![problem],
        ..Default::default()
    }
}

/// Rename `path` to a new name beside it, never replacing an existing file.
pub fn move_aside(path: &Path, kind: &str) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for n in 0..1000 {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{kind}-{secs}"));
        if n > 0 {
            name.push(format!("-{n}"));
        }
        let aside = path.with_file_name(name);
        // hard_link fails if the target exists, so nothing is ever overwritten; then the
        // original name is removed.
        match std::fs::hard_link(path, &aside) {
            Ok(()) => {
                std::fs::remove_file(path)?;
                return Ok(aside);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // File systems without hard links: fall back to a checked rename.
            Err(_) if !aside.exists() => {
                std::fs::rename(path, &aside)?;
                return Ok(aside);
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many files set aside"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> NormBox {
        NormBox::new(x1, y1, x2, y2)
    }

    #[test]
    fn edits_undo_and_redo_in_order() {
        let mut s = ReviewState::default();
        assert!(s.edit(0, |r| r.decision = Decision::Accepted));
        assert!(!s.edit(0, |r| r.decision = Decision::Accepted), "no-op");
        assert!(s.edit(1, |r| r.note = "blurry".into()));
        assert!(s.edit(0, |r| {
            r.boxes = Some(vec![ReviewBox {
                image: 2,
                bbox: b(0.1, 0.1, 0.5, 0.5),
            }])
        }));
        assert_eq!(s.revision(), 3);
        assert_eq!(s.undo(), Some(0));
        assert_eq!(s.get(0).boxes, None);
        assert_eq!(s.undo(), Some(1));
        assert_eq!(s.get(1), ItemReview::default());
        assert_eq!(s.counts(3)[&Decision::Unreviewed], 2);
        assert_eq!(s.redo(), Some(1));
        assert_eq!(s.get(1).note, "blurry");
        // A new edit drops the redo branch.
        s.edit(2, |r| r.decision = Decision::Rejected);
        assert!(!s.can_redo());
        assert_eq!(s.redo(), None);
        assert_eq!(s.decision(0), Decision::Accepted);
        assert_eq!(s.decision(2), Decision::Rejected);
        // Undo everything: back to nothing stored.
        while s.undo().is_some() {}
        assert_eq!(s.reviewed().count(), 0);
    }

    #[test]
    fn a_drag_is_one_undo_step() {
        let mut s = ReviewState::default();
        for k in 0..10 {
            s.preview(4, |r| {
                r.boxes = Some(vec![ReviewBox {
                    image: 0,
                    bbox: b(0.0, 0.0, 0.1 + k as f32 * 0.05, 0.5),
                }])
            });
        }
        assert!(s.in_gesture());
        s.end_gesture();
        assert_eq!(s.revision(), 1);
        assert_eq!(s.get(4).boxes.unwrap()[0].bbox.x2, 0.1 + 9.0 * 0.05);
        s.undo();
        assert_eq!(s.get(4), ItemReview::default());
        // A gesture on another item closes the first.
        s.preview(1, |r| r.note = "a".into());
        s.preview(2, |r| r.note = "b".into());
        s.end_gesture();
        assert_eq!(s.undo(), Some(2));
        assert_eq!(s.undo(), Some(1));
    }

    #[test]
    fn sidecar_round_trips_and_detects_other_data() {
        let mut s = ReviewState::default();
        s.edit(0, |r| r.decision = Decision::Accepted);
        s.edit(7, |r| {
            r.decision = Decision::Skipped;
            r.note = "ask \"Ann\"\nlater".into();
            r.boxes = Some(vec![
                ReviewBox {
                    image: 1,
                    bbox: b(0.125, 0.25, 0.5, 0.75),
                },
                ReviewBox {
                    image: 3,
                    bbox: b(0.0, 0.0, 1.0, 1.0),
                },
            ]);
        });
        let fp = Fingerprint::of_bytes("bench.json", b"[1,2,3]", 3);
        let dir = tempfile::tempdir().unwrap();
        let path = sidecar_path(&dir.path().join("bench.json"));
        assert!(path.ends_with("bench.json.loupe-review.json"));
        crate::atomic::write_atomic(&path, &s.to_sidecar(&fp)).unwrap();
        let loaded = load_sidecar(&path, &fp);
        assert!(loaded.restored && loaded.problems.is_empty());
        assert_eq!(loaded.state.items, s.items);
        assert_eq!(loaded.state.revision(), 2);

        // The same sidecar against other data: kept aside, reported, fresh review.
        let other = Fingerprint::of_bytes("bench.json", b"[1,2,4]", 3);
        let loaded = load_sidecar(&path, &other);
        assert!(!loaded.restored);
        assert_eq!(loaded.state.reviewed().count(), 0);
        assert!(
            loaded.problems[0].contains("different data"),
            "{:?}",
            loaded.problems
        );
        assert!(!path.exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(aside[0].contains(".other-data-"), "{aside:?}");
    }

    #[test]
    fn a_snapshot_is_the_state_when_taken() {
        let mut s = ReviewState::default();
        s.edit(3, |r| r.decision = Decision::Accepted);
        let fp = Fingerprint::of_bytes("d", b"d", 5);
        let snapshot = s.sidecar_snapshot(&fp);
        let then = s.to_sidecar(&fp);
        s.edit(4, |r| r.decision = Decision::Rejected);
        assert_eq!(snapshot(), then);
        assert_ne!(s.to_sidecar(&fp), then);
    }

    #[test]
    fn a_corrupt_sidecar_is_kept_aside_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json.loupe-review.json");
        let fp = Fingerprint::of_bytes("x.json", b"[]", 0);
        for round in 0..2 {
            std::fs::write(
                &path,
                format!("{{\"format\": \"loupe-review\", trunc{round}"),
            )
            .unwrap();
            let loaded = load_sidecar(&path, &fp);
            assert!(
                loaded.problems[0].contains("not a review file"),
                "{:?}",
                loaded.problems
            );
            assert!(!path.exists());
        }
        // Both corrupt files survive, under distinct names, with their bytes intact.
        let mut kept: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            vec![
                "{\"format\": \"loupe-review\", trunc0",
                "{\"format\": \"loupe-review\", trunc1"
            ]
        );
        // A missing sidecar is simply a fresh review.
        let fresh = load_sidecar(&path, &fp);
        assert!(fresh.problems.is_empty() && !fresh.restored);
    }
}

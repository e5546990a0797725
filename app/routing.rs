//! Which workspace a dropped or opened path belongs to, decided by content.
//!
//! Extensions lie (a `.bin` PLY, a `.dat` tar), so each candidate is confirmed by its
//! magic bytes; folders are recognised by the files that define each dataset layout.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The workspaces, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum WorkspaceKind {
    Grounding,
    Scene3d,
    BioMed,
}

impl WorkspaceKind {
    pub const ALL: [Self; 3] = [Self::Grounding, Self::Scene3d, Self::BioMed];

    pub fn title(self) -> &'static str {
        match self {
            Self::Grounding => "Grounding",
            Self::Scene3d => "3D",
            Self::BioMed => "BioMed",
        }
    }
}

/// What kind of thing a path is, once recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Image,
    /// A JSON / JSONL annotation or prediction file.
    Annotations,
    /// A JSONL of generic grounding items (`{images, prompt, gt}` a line).
    GroundingJsonl,
    /// A folder of images (or a benchmark folder holding an annotation file).
    ImageFolder,
    Ply,
    Splat,
    /// A gsplat PNG-compressed splat folder (`meta.json` + PNGs).
    GsplatDir,
    /// A uCO3D dataset root (`metadata.sqlite`) or one of its sequence folders.
    Uco3dRoot,
    TarShard,
    /// A folder holding WebDataset tar shards.
    ShardFolder,
}

impl Content {
    pub fn workspace(&self) -> WorkspaceKind {
        match self {
            Self::Image | Self::Annotations | Self::GroundingJsonl | Self::ImageFolder => {
                WorkspaceKind::Grounding
            }
            Self::Ply | Self::Splat | Self::GsplatDir | Self::Uco3dRoot => WorkspaceKind::Scene3d,
            Self::TarShard | Self::ShardFolder => WorkspaceKind::BioMed,
        }
    }
}

/// A path that Loupe cannot open, with the reason in words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot open {}: {reason}", path.display())]
pub struct RouteError {
    pub path: PathBuf,
    pub reason: String,
}

/// Recognise `path` by its content.
pub fn classify(path: &Path) -> Result<Content, RouteError> {
    let fail = |reason: String| RouteError {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|err| fail(err.to_string()))?;
    if meta.is_dir() {
        return classify_dir(path).ok_or_else(|| {
            fail("the folder holds no images, PLY/splat files, uCO3D metadata or tar shards".into())
        });
    }
    let head = read_head(path).map_err(|err| fail(err.to_string()))?;
    if head.is_empty() {
        return Err(fail("the file is empty".into()));
    }
    classify_bytes(path, &head, meta.len()).ok_or_else(|| {
        fail(
            "not a supported file (expected an image, a .ply, a .splat, a .tar or .parquet shard \
             or a JSON/JSONL annotation file)"
                .into(),
        )
    })
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

/// Enough bytes to see a tar header's `ustar` magic at offset 257.
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)?
        .take(512)
        .read_to_end(&mut head)?;
    Ok(head)
}

fn classify_bytes(path: &Path, head: &[u8], len: u64) -> Option<Content> {
    if head.starts_with(b"ply\n") || head.starts_with(b"ply\r\n") {
        return Some(Content::Ply);
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Some(Content::TarShard);
    }
    // The BIOMEDICA Parquet edition (read through a shard copy, see biomedica::parquet).
    if head.starts_with(b"PAR1") {
        return Some(Content::TarShard);
    }
    if image::guess_format(head).is_ok() {
        return Some(Content::Image);
    }
    let ext = extension(path);
    // The .splat format has no header: only its extension and a size that is a whole
    // number of 32-byte records identify it.
    if ext == "splat" && len.is_multiple_of(32) {
        return Some(Content::Splat);
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    // Generic grounding items name their images on every line; prediction lines do not,
    // except answers matched by content, which carry the model's "answer".
    let has = |key: &[u8]| head.windows(key.len()).any(|w| w == key);
    if ext == "jsonl" && first == Some(&b'{') && has(b"\"images\"") && !has(b"\"answer\"") {
        return Some(Content::GroundingJsonl);
    }
    if matches!(ext.as_str(), "json" | "jsonl") && matches!(first, Some(b'{' | b'[')) {
        return Some(Content::Annotations);
    }
    None
}

fn classify_dir(dir: &Path) -> Option<Content> {
    if dir.join("metadata.sqlite").is_file() || dir.join("rgb_video.mp4").is_file() {
        return Some(Content::Uco3dRoot);
    }
    if dir.join("meta.json").is_file() && dir.join("means_l.png").is_file() {
        return Some(Content::GsplatDir);
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let has_ext = |wanted: &[&str]| {
        entries
            .iter()
            .any(|p| p.is_file() && wanted.contains(&extension(p).as_str()))
    };
    // A BIOMEDICA download keeps its shards in licence-subset folders.
    let subset_with_shards = ["commercial", "noncommercial", "other"].iter().any(|s| {
        std::fs::read_dir(dir.join(s)).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| matches!(extension(&e.path()).as_str(), "tar" | "parquet")))
        })
    });
    if has_ext(&["tar", "parquet"]) || subset_with_shards {
        return Some(Content::ShardFolder);
    }
    if has_ext(&["ply", "splat"]) {
        return Some(Content::Ply);
    }
    if has_ext(&[
        "png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "json", "jsonl",
    ]) || dir.join("images").is_dir()
    {
        return Some(Content::ImageFolder);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn files_are_recognised_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let png = write(dir.path(), "x.dat", b"\x89PNG\r\n\x1a\n0000");
        assert_eq!(classify(&png), Ok(Content::Image));
        let ply = write(dir.path(), "cloud.bin", b"ply\nformat ascii 1.0\n");
        assert_eq!(classify(&ply), Ok(Content::Ply));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        let tar = write(dir.path(), "shard.000", &tar);
        assert_eq!(classify(&tar), Ok(Content::TarShard));
        let parquet = write(dir.path(), "rows.bin", b"PAR1\x15\x04");
        assert_eq!(classify(&parquet), Ok(Content::TarShard));
        let splat = write(dir.path(), "s.splat", &[0u8; 64]);
        assert_eq!(classify(&splat), Ok(Content::Splat));
        let json = write(dir.path(), "preds.jsonl", b"{\"id\": 1}\n");
        assert_eq!(classify(&json), Ok(Content::Annotations));
        let generic = write(
            dir.path(),
            "items.jsonl",
            b"{\"images\": [\"a.png\"], \"prompt\": \"p\"}\n",
        );
        assert_eq!(classify(&generic), Ok(Content::GroundingJsonl));
        let by_content = write(
            dir.path(),
            "other_model.jsonl",
            b"{\"images\": [\"a.png\"], \"prompt\": \"p\", \"answer\": \"(1,2),(3,4)\"}\n",
        );
        assert_eq!(classify(&by_content), Ok(Content::Annotations));
        assert_eq!(
            Content::GroundingJsonl.workspace(),
            WorkspaceKind::Grounding
        );
    }

    #[test]
    fn unsupported_and_broken_files_name_the_file_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let txt = write(dir.path(), "notes.txt", b"hello");
        let err = classify(&txt).unwrap_err();
        assert_eq!(err.path, txt);
        assert!(err.to_string().contains("notes.txt"), "{err}");
        assert!(err.reason.contains("not a supported file"), "{err}");

        let empty = write(dir.path(), "empty.png", b"");
        assert!(classify(&empty).unwrap_err().reason.contains("empty"));

        // A .splat whose size is not a multiple of 32 bytes is not a splat file.
        let bad_splat = write(dir.path(), "bad.splat", &[0u8; 33]);
        assert!(classify(&bad_splat).is_err());

        let missing = dir.path().join("nope.ply");
        assert!(
            classify(&missing)
                .unwrap_err()
                .to_string()
                .contains("nope.ply")
        );
    }

    #[test]
    fn folders_are_recognised_by_layout() {
        let root = tempfile::tempdir().unwrap();
        let uco = root.path().join("uco3d");
        std::fs::create_dir(&uco).unwrap();
        write(&uco, "metadata.sqlite", b"SQLite format 3\0");
        assert_eq!(classify(&uco), Ok(Content::Uco3dRoot));

        let shards = root.path().join("shards");
        std::fs::create_dir(&shards).unwrap();
        write(&shards, "000000.tar", b"x");
        assert_eq!(classify(&shards), Ok(Content::ShardFolder));

        // A dataset root with licence-subset folders of shards (and a manifest beside).
        let biomedica = root.path().join("biomedica");
        std::fs::create_dir_all(biomedica.join("other")).unwrap();
        write(&biomedica, "manifest.json", b"{}");
        write(&biomedica.join("other"), "000000.tar", b"x");
        assert_eq!(classify(&biomedica), Ok(Content::ShardFolder));

        let bench = root.path().join("bench");
        std::fs::create_dir_all(bench.join("images")).unwrap();
        assert_eq!(classify(&bench), Ok(Content::ImageFolder));

        let gs = root.path().join("gaussian_splats");
        std::fs::create_dir(&gs).unwrap();
        write(&gs, "meta.json", b"{}");
        write(&gs, "means_l.png", b"");
        assert_eq!(classify(&gs), Ok(Content::GsplatDir));

        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(classify(&empty).is_err());
    }

    #[test]
    fn content_routes_to_its_workspace() {
        assert_eq!(Content::Image.workspace(), WorkspaceKind::Grounding);
        assert_eq!(Content::Ply.workspace(), WorkspaceKind::Scene3d);
        assert_eq!(Content::Uco3dRoot.workspace(), WorkspaceKind::Scene3d);
        assert_eq!(Content::TarShard.workspace(), WorkspaceKind::BioMed);
    }
}

//! Demo content compiled into the binary, so every workspace has something to show on
//! first start (and on a projector with no files at hand).

use crate::image_cache::ImageSource;

macro_rules! embedded_images {
    ($($name:literal),* $(,)?) => {
        /// Every embedded image, by file name.
        pub const IMAGES: &[(&str, &[u8])] = &[
            $(($name, include_bytes!(concat!("../assets/images/", $name)))),*
        ];
    };
}

embedded_images!(
    "astronaut.jpg",
    "chelsea.jpg",
    "coffee.jpg",
    "rocket.jpg",
    "ihc.jpg",
    "retina.jpg",
    "cell.jpg",
    "microaneurysms.png",
    "hubble_deep_field.jpg",
);

/// A MIG-Bench-format annotation file over the embedded images.
pub const MIG_BENCH_JSON: &str = include_str!("../assets/demo/mig_bench_demo.json");

/// Raw answers of a pretend model for the MIG-Bench demo items, one JSON object a line.
pub const PREDICTIONS_JSONL: &str = include_str!("../assets/demo/predictions_demo.jsonl");

/// Tiny real BIOMEDICA shards (copies of the test fixture's, made by
/// `scripts/fixtures/make_biomedica_fixture.py` from the images above), as `(subset/name,
/// bytes)`. The noncommercial fixture shard is left out: its CJK and mathematical
/// captions need glyphs the bundled fonts lack.
pub const BIOMED_SHARDS: &[(&str, &[u8])] = &[
    (
        "commercial/000000.tar",
        include_bytes!("../assets/demo/biomedica/commercial/000000.tar"),
    ),
    (
        "commercial/000001.tar",
        include_bytes!("../assets/demo/biomedica/commercial/000001.tar"),
    ),
    (
        "other/000000.tar",
        include_bytes!("../assets/demo/biomedica/other/000000.tar"),
    ),
];

/// Put the demo shards on disk (once) so the BioMed workspace opens them through the
/// same indexer, sidecars and byte-range thumbnails as any real shard. Returns the
/// shard files (only those: the folder may hold shards of older builds). Call from a
/// job: it writes files.
pub fn materialize_biomed_shards(dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for (rel, bytes) in BIOMED_SHARDS {
        let path = dir.join(rel);
        out.push(path.clone());
        // Rewriting an identical file would change its mtime and force a re-index.
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::atomic::write_atomic(&path, bytes)?;
    }
    Ok(out)
}

/// The demo CLIP: the tiny random-weight OpenCLIP model of the parity tests
/// (`models/tools/make_clip_fixture.py`; 3 MB, 32-d embeddings). It makes semantic
/// search, "more like this" and zero-shot labelling work end to end on the demo shards
/// without a download; its rankings are deterministic but carry no meaning.
pub const CLIP_DEMO_FILES: &[(&str, &[u8])] = &[
    (
        "open_clip_config.json",
        include_bytes!("../models/tests/fixtures/clip_tiny/open_clip_config.json"),
    ),
    (
        "open_clip_model.safetensors",
        include_bytes!("../models/tests/fixtures/clip_tiny/open_clip_model.safetensors"),
    ),
];

/// Folder name of the materialised demo CLIP (it is also the model id).
pub const CLIP_DEMO_NAME: &str = "loupe-demo-tiny-random-clip";

/// Put the demo CLIP on disk (once) under `dir`; returns its folder. Call from a job.
pub fn materialize_clip_demo(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let folder = dir.join(CLIP_DEMO_NAME);
    for (name, bytes) in CLIP_DEMO_FILES {
        let path = folder.join(name);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            continue;
        }
        std::fs::create_dir_all(&folder)?;
        crate::atomic::write_atomic(&path, bytes)?;
    }
    Ok(folder)
}

/// The uCO3D sample dataset (`scripts/fixtures/make_uco3d_fixture.py`): metadata and
/// set-list databases plus three sequences' videos, point clouds, depth and splats, as
/// `(root-relative path, bytes)`. The test oracles next to it are not embedded.
pub const UCO3D_FILES: &[(&str, &[u8])] = &[
    (
        "README.md",
        include_bytes!("../assets/demo/uco3d/README.md"),
    ),
    (
        "home_décor/vase/2-30002-40002/depth_maps.h5",
        include_bytes!("../assets/demo/uco3d/home_décor/vase/2-30002-40002/depth_maps.h5"),
    ),
    (
        "home_décor/vase/2-30002-40002/gaussian_splats/fg_mask.npz",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/gaussian_splats/fg_mask.npz"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/gaussian_splats/means_l.png",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/gaussian_splats/means_l.png"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/gaussian_splats/means_u.png",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/gaussian_splats/means_u.png"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/gaussian_splats/meta.json",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/gaussian_splats/meta.json"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/gaussian_splats/opacities.png",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/gaussian_splats/opacities.png"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/gaussian_splats/quats.png",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/gaussian_splats/quats.png"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/gaussian_splats/scales.png",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/gaussian_splats/scales.png"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/gaussian_splats/sh0.png",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/gaussian_splats/sh0.png"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/gaussian_splats/shN.npz",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/gaussian_splats/shN.npz"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/mask_video.mkv",
        include_bytes!("../assets/demo/uco3d/home_décor/vase/2-30002-40002/mask_video.mkv"),
    ),
    (
        "home_décor/vase/2-30002-40002/point_cloud.ply",
        include_bytes!("../assets/demo/uco3d/home_décor/vase/2-30002-40002/point_cloud.ply"),
    ),
    (
        "home_décor/vase/2-30002-40002/rgb_video.mp4",
        include_bytes!("../assets/demo/uco3d/home_décor/vase/2-30002-40002/rgb_video.mp4"),
    ),
    (
        "home_décor/vase/2-30002-40002/segmented_point_cloud.ply",
        include_bytes!(
            "../assets/demo/uco3d/home_décor/vase/2-30002-40002/segmented_point_cloud.ply"
        ),
    ),
    (
        "home_décor/vase/2-30002-40002/sparse_point_cloud.ply",
        include_bytes!("../assets/demo/uco3d/home_décor/vase/2-30002-40002/sparse_point_cloud.ply"),
    ),
    (
        "metadata.sqlite",
        include_bytes!("../assets/demo/uco3d/metadata.sqlite"),
    ),
    (
        "set_lists/set_lists_all-categories.sqlite",
        include_bytes!("../assets/demo/uco3d/set_lists/set_lists_all-categories.sqlite"),
    ),
    (
        "set_lists/set_lists_static-categories.sqlite",
        include_bytes!("../assets/demo/uco3d/set_lists/set_lists_static-categories.sqlite"),
    ),
    (
        "stationery/pen/1-10001-20001/depth_maps.h5",
        include_bytes!("../assets/demo/uco3d/stationery/pen/1-10001-20001/depth_maps.h5"),
    ),
    (
        "stationery/pen/1-10001-20001/gaussian_splats/fg_mask.npz",
        include_bytes!(
            "../assets/demo/uco3d/stationery/pen/1-10001-20001/gaussian_splats/fg_mask.npz"
        ),
    ),
    (
        "stationery/pen/1-10001-20001/gaussian_splats/means_l.png",
        include_bytes!(
            "../assets/demo/uco3d/stationery/pen/1-10001-20001/gaussian_splats/means_l.png"
        ),
    ),
    (
        "stationery/pen/1-10001-20001/gaussian_splats/means_u.png",
        include_bytes!(
            "../assets/demo/uco3d/stationery/pen/1-10001-20001/gaussian_splats/means_u.png"
        ),
    ),
    (
        "stationery/pen/1-10001-20001/gaussian_splats/meta.json",
        include_bytes!(
            "../assets/demo/uco3d/stationery/pen/1-10001-20001/gaussian_splats/meta.json"
        ),
    ),
    (
        "stationery/pen/1-10001-20001/gaussian_splats/opacities.png",
        include_bytes!(
            "../assets/demo/uco3d/stationery/pen/1-10001-20001/gaussian_splats/opacities.png"
        ),
    ),
    (
        "stationery/pen/1-10001-20001/gaussian_splats/quats.png",
        include_bytes!(
            "../assets/demo/uco3d/stationery/pen/1-10001-20001/gaussian_splats/quats.png"
        ),
    ),
    (
        "stationery/pen/1-10001-20001/gaussian_splats/scales.png",
        include_bytes!(
            "../assets/demo/uco3d/stationery/pen/1-10001-20001/gaussian_splats/scales.png"
        ),
    ),
    (
        "stationery/pen/1-10001-20001/gaussian_splats/sh0.png",
        include_bytes!("../assets/demo/uco3d/stationery/pen/1-10001-20001/gaussian_splats/sh0.png"),
    ),
    (
        "stationery/pen/1-10001-20001/gaussian_splats/shN.npz",
        include_bytes!("../assets/demo/uco3d/stationery/pen/1-10001-20001/gaussian_splats/shN.npz"),
    ),
    (
        "stationery/pen/1-10001-20001/mask_video.mkv",
        include_bytes!("../assets/demo/uco3d/stationery/pen/1-10001-20001/mask_video.mkv"),
    ),
    (
        "stationery/pen/1-10001-20001/point_cloud.ply",
        include_bytes!("../assets/demo/uco3d/stationery/pen/1-10001-20001/point_cloud.ply"),
    ),
    (
        "stationery/pen/1-10001-20001/rgb_video.mp4",
        include_bytes!("../assets/demo/uco3d/stationery/pen/1-10001-20001/rgb_video.mp4"),
    ),
    (
        "stationery/pen/1-10001-20001/segmented_point_cloud.ply",
        include_bytes!(
            "../assets/demo/uco3d/stationery/pen/1-10001-20001/segmented_point_cloud.ply"
        ),
    ),
    (
        "stationery/pen/1-10001-20001/sparse_point_cloud.ply",
        include_bytes!("../assets/demo/uco3d/stationery/pen/1-10001-20001/sparse_point_cloud.ply"),
    ),
];

/// Put the uCO3D sample on disk (once) so it opens through the same reader as a real
/// dataset root; returns the root. Call from a job: it writes files.
pub fn materialize_uco3d(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    for (rel, bytes) in UCO3D_FILES {
        let path = dir.join(rel);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::atomic::write_atomic(&path, bytes)?;
    }
    Ok(dir.to_path_buf())
}

/// The embedded image whose file name ends the given (possibly `./images/…`) path.
pub fn image(path: &str) -> Option<ImageSource> {
    let name = path.rsplit(['/', '\\']).next()?;
    IMAGES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(name, bytes)| ImageSource::Embedded { name, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_image_decodes() {
        for (name, bytes) in IMAGES {
            let img = image::load_from_memory(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(img.width() > 0 && img.height() > 0);
        }
    }

    #[test]
    fn demo_paths_resolve_to_embedded_images() {
        assert!(image("./images/coffee.jpg").is_some());
        assert!(image("coffee.jpg").is_some());
        assert!(image("./images/missing.jpg").is_none());
    }
}

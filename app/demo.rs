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

/// Figure–caption records in the shape of BIOMEDICA samples.
pub const BIOMED_JSON: &str = include_str!("../assets/demo/biomed_demo.json");

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

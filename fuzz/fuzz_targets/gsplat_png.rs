//! The gsplat PNG-compressed directory reader: one file of a valid folder (the render
//! tests' degree-0 fixture) replaced by the fuzz input, the first byte choosing which
//! (`meta.json` or one of the PNGs). No panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_render::io::gsplat_png::{PNG_FILES, read_gsplat_dir};
use std::path::PathBuf;
use std::sync::OnceLock;


/// A private copy of the fixture folder, made once per fuzzing process.
fn folder() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../render/tests/fixtures/gsplat_png/deg0");
        let dst = std::env::temp_dir().join(format!("loupe-fuzz-gsplat-{}", std::process::id()));
        std::fs::create_dir_all(&dst).expect("temp folder");
        for entry in std::fs::read_dir(&src).expect("fixture folder") {
            let entry = entry.expect("fixture entry");
            std::fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy");
        }
        dst
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let dir = folder();
    let k = usize::from(which) % (PNG_FILES.len() + 1);
    let name = if k == 0 { "meta.json" } else { PNG_FILES[k - 1] };
    let original = std::fs::read(dir.join(name)).ok();
    if std::fs::write(dir.join(name), rest).is_err() {
        return;
    }
    let _ = read_gsplat_dir(dir, &mut |_| true);
    // Put the valid file back for the next input.
    if let Some(bytes) = original {
        let _ = std::fs::write(dir.join(name), bytes);
    }
});

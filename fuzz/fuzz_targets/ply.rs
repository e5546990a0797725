//! The PLY reader on arbitrary bytes: 3DGS binary (either endianness) and ASCII bodies,
//! plain point clouds and SuperSplat compressed chunks all start here. No panic; what
//! it accepts holds only finite values (non-finite rows are skipped and counted).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_render::io::ply::read_ply_from;

fuzz_target!(|data: &[u8]| {
    let _ = read_ply_from(std::io::Cursor::new(data), "fuzz.ply", &mut |_| true);
});

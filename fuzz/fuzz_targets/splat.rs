//! The `.splat` reader (32-byte records) on arbitrary bytes, with the record count the
//! file size implies and with a lying one. No panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_render::io::splat::read_splat_from;

fuzz_target!(|data: &[u8]| {
    let _ = read_splat_from(data, data.len() / 32, "fuzz.splat", &mut |_| true);
    let _ = read_splat_from(data, data.len() / 16 + 1, "fuzz.splat", &mut |_| true);
});

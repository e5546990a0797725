//! Damaged inputs never panic: seeded mutations of valid files (truncations, flipped
//! bytes, absurd counts) go through every reader, which must return `Ok` or `Err`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe_render::io::{ply, read_path, splat};
use loupe_render::splats::Splats;

/// A small deterministic generator (xorshift) so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutations(valid: &[u8], seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for i in 0..count {
        let mut bytes = valid.to_vec();
        match i % 3 {
            0 => bytes.truncate(rng.below(valid.len())),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 << rng.below(8);
                }
            }
            _ => {
                // Damage the header, where the structure lives.
                let header_len = bytes
                    .windows(10)
                    .position(|w| w == b"end_header")
                    .unwrap_or(64)
                    .min(bytes.len());
                let at = rng.below(header_len);
                bytes[at] = b"0123456789 \nxyzply"[rng.below(18)];
            }
        }
        out.push(bytes);
    }
    out
}

fn exercise(name: &str, valid: &[u8], seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    for bytes in mutations(valid, seed, 300) {
        std::fs::write(&path, &bytes).unwrap();
        // Either outcome is fine; a panic fails the test.
        let _ = read_path(&path, &mut |_| true);
    }
}

#[test]
fn mutated_binary_plys_never_panic() {
    let mut valid = Vec::new();
    ply::write_ply(&mut valid, &Splats::random(1, 40, 1, 1.0, 0.1)).unwrap();
    exercise("m.ply", &valid, 1);
}

#[test]
fn mutated_ascii_plys_never_panic() {
    let valid = b"ply\nformat ascii 1.0\nelement face 1\nproperty float q\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n7\n0 1 2 255 0 10\n3 4 5 0 128 255\n1 1 1 1 1 1\n";
    exercise("a.ply", valid, 2);
}

#[test]
fn mutated_splat_files_never_panic() {
    let mut valid = Vec::new();
    splat::write_splat(&mut valid, &Splats::random(2, 20, 0, 1.0, 0.1)).unwrap();
    exercise("m.splat", &valid, 3);
}

#[test]
fn an_absurd_vertex_count_is_an_error_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.ply");
    let mut bytes = b"ply\nformat binary_little_endian 1.0\nelement vertex 999999999999\nproperty float x\nproperty float y\nproperty float z\nend_header\n".to_vec();
    bytes.extend([0u8; 24]);
    std::fs::write(&path, &bytes).unwrap();
    let err = read_path(&path, &mut |_| true).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");
}

/// The gsplat PNG folder reader with each of its files damaged in turn (the same
/// mutations as above, applied to `meta.json` and every PNG of a valid folder).
#[test]
fn mutated_gsplat_folders_never_panic() {
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gsplat_png/deg0");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let names = std::iter::once("meta.json").chain(loupe_render::io::gsplat_png::PNG_FILES);
    for (k, name) in names.enumerate() {
        let path = dir.path().join(name);
        let valid = std::fs::read(&path).unwrap();
        for bytes in mutations(&valid, 0x5eed + k as u64, 60) {
            std::fs::write(&path, &bytes).unwrap();
            let _ = loupe_render::io::gsplat_png::read_gsplat_dir(dir.path(), &mut |_| true);
        }
        std::fs::write(&path, &valid).unwrap();
    }
    // Sanity: the restored folder still reads.
    assert!(loupe_render::io::gsplat_png::read_gsplat_dir(dir.path(), &mut |_| true).is_ok());
}

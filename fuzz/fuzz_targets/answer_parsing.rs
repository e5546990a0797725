//! Every answer parser on arbitrary text: no panic, boxes inside the image, ordered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loupe_models::answer::{parse_grounded, parse_qwen_boxes, reference_extract, referenced_image};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_qwen_boxes(text);
    let _ = reference_extract(text);
    let n = text.len() % 7;
    let a = parse_grounded(text, n, referenced_image(text));
    for b in a.boxes {
        assert!(b.bbox.x1 <= b.bbox.x2 && b.bbox.y1 <= b.bbox.y2);
        assert!(b.bbox.x2 <= 1.0 && b.bbox.y2 <= 1.0);
    }
});

//! Boxes and image references in grounding answers.
//!
//! Qwen2-VL writes boxes as `<|box_start|>(x1,y1),(x2,y2)<|box_end|>` with integers in
//! `[0, 1000]` relative to one image; the special tokens vanish when a decoder skips
//! special tokens, so the bare `(x1,y1),(x2,y2)` form is accepted too.

use crate::reference::py_int;
use regex::Regex;
use std::sync::LazyLock;

/// An axis-aligned box in coordinates normalised to `[0, 1]` of one image.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NormBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl NormBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    /// From Qwen's integer grid, where 1000 spans the whole image side.
    pub fn from_qwen(coords: [u32; 4]) -> Self {
        let [x1, y1, x2, y2] = coords.map(|v| v as f32 / 1000.0);
        Self { x1, y1, x2, y2 }
    }

    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Intersection over union; `0` when the union is empty (both boxes degenerate),
    /// where the reference evaluation would divide by zero.
    pub fn iou(&self, other: &Self) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// Pixel coordinates `[x1, y1, x2, y2]` for an image of `width × height`.
    pub fn to_pixels(&self, width: u32, height: u32) -> [f32; 4] {
        let (w, h) = (width as f32, height as f32);
        [self.x1 * w, self.y1 * h, self.x2 * w, self.y2 * h]
    }
}

static QWEN_BOX: LazyLock<Regex> = LazyLock::new(|| {
    // The pattern is a literal; it cannot fail to compile.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*,\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)").unwrap()
});

/// Every Qwen-style box in `text`, in order of appearance.
pub fn parse_qwen_boxes(text: &str) -> Vec<NormBox> {
    QWEN_BOX
        .captures_iter(text)
        .filter_map(|caps| {
            let mut coords = [0u32; 4];
            for (slot, i) in coords.iter_mut().zip(1..=4) {
                *slot = caps.get(i)?.as_str().parse().ok()?;
            }
            Some(NormBox::from_qwen(coords))
        })
        .collect()
}

static IMAGE_REF: LazyLock<Regex> = LazyLock::new(|| {
    // The pattern is a literal; it cannot fail to compile.
    #[allow(clippy::unwrap_used)]
    Regex::new(
        r"(?ix)
        \b(?:the\s+)?(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth
                      |\d+\s*(?:st|nd|rd|th))\s+(?:image|picture|photo)\b
        | \bimage[\s\-_]*(\d+)\b",
    )
    .unwrap()
});

/// The 0-based image index a text refers to ("the third image", "Image-2", "2nd image",
/// "1th image"), taking the last mention: questions name context images first and the
/// target last ("…in Image-1 … locate it in the second image").
pub fn referenced_image(text: &str) -> Option<usize> {
    const ORDINALS: [&str; 10] = [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth",
    ];
    IMAGE_REF.captures_iter(text).last().and_then(|caps| {
        let number =
            if let Some(word) = caps.get(1) {
                let word = word.as_str().to_ascii_lowercase();
                match ORDINALS.iter().position(|o| *o == word) {
                    Some(i) => i + 1,
                    None => usize::try_from(py_int(word.trim_end_matches(|c: char| {
                        c.is_ascii_alphabetic() || c.is_whitespace()
                    }))?)
                    .ok()?,
                }
            } else {
                usize::try_from(py_int(caps.get(2)?.as_str())?).ok()?
            };
        number.checked_sub(1)
    })
}

/// One box of a free-form answer, placed on the image the answer assigns it to.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroundedBox {
    /// 0-based image index.
    pub image: usize,
    /// The `<|object_ref_start|>…<|object_ref_end|>` text just before the box, if any.
    pub label: Option<String>,
    pub bbox: NormBox,
}

/// Every box of an answer. `truncated` says the text ends inside a box (a stream still
/// running, or generation cut by the token limit): the boxes before it are complete.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroundedAnswer {
    pub boxes: Vec<GroundedBox>,
    pub truncated: bool,
}

static OBJECT_REF: LazyLock<Regex> = LazyLock::new(|| {
    // The pattern is a literal; it cannot fail to compile.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"(?s)<\|object_ref_start\|>(.*?)<\|object_ref_end\|>").unwrap()
});

static OPEN_BOX_AT_END: LazyLock<Regex> = LazyLock::new(|| {
    // A box begun but not finished: "<|box_start|>…" or "(12, 34), (5" at the very end.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"(<\|box_start\|>[^<]*$)|(\(\s*\d+[\d\s,()]*$)").unwrap()
});

/// Parses a free-form grounding answer with any number of boxes. A box goes on the
/// image named last in the answer before it ("Image-2: (…)", "in the third image …");
/// with no such mention, on `default_image` (the image the question names); with
/// neither, and one box per image, box k on image k (Migician's "locate it in all
/// these images"); otherwise on the first image. Coordinates are clamped to the image
/// and put in order. Never fails: text without boxes gives no boxes.
pub fn parse_grounded(
    answer: &str,
    n_images: usize,
    default_image: Option<usize>,
) -> GroundedAnswer {
    let matches: Vec<_> = QWEN_BOX.captures_iter(answer).collect();
    let one_per_image = n_images > 1 && matches.len() == n_images;
    let mut boxes = Vec::with_capacity(matches.len());
    let mut segment_start = 0;
    let mut last_end = 0;
    for (k, caps) in matches.iter().enumerate() {
        let Some(whole) = caps.get(0) else { continue };
        let mut coords = [0u32; 4];
        let mut ok = true;
        for (slot, i) in coords.iter_mut().zip(1..=4) {
            // Any script's digits, as Python's `\d` + `int()` read them (`（１９１,…`).
            match caps.get(i).and_then(|m| py_int(m.as_str())) {
                Some(v) => *slot = v.min(1000) as u32,
                None => ok = false,
            }
        }
        last_end = whole.end();
        let before = &answer[..whole.start()];
        let segment = &answer[segment_start..whole.start()];
        segment_start = whole.end();
        if !ok {
            continue;
        }
        let image = referenced_image(before)
            .or(default_image)
            .unwrap_or(if one_per_image { k } else { 0 });
        let label = OBJECT_REF
            .captures_iter(segment)
            .last()
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().trim().to_string())
            .filter(|s| !s.is_empty());
        let b = NormBox::from_qwen(coords);
        let bbox = NormBox::new(
            b.x1.min(b.x2),
            b.y1.min(b.y2),
            b.x1.max(b.x2),
            b.y1.max(b.y2),
        );
        boxes.push(GroundedBox { image, label, bbox });
    }
    GroundedAnswer {
        boxes,
        truncated: OPEN_BOX_AT_END.is_match(&answer[last_end..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_matches_hand_computed_values() {
        let a = NormBox::new(0.0, 0.0, 0.5, 0.5);
        let b = NormBox::new(0.25, 0.25, 0.75, 0.75);
        // Intersection 0.25², union 2·0.5² − 0.25² = 0.4375.
        assert!((a.iou(&b) - 0.0625 / 0.4375).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&NormBox::new(0.6, 0.6, 0.9, 0.9)), 0.0);
        let point = NormBox::new(0.3, 0.3, 0.3, 0.3);
        assert_eq!(point.iou(&point), 0.0);
    }

    #[test]
    fn parses_boxes_with_and_without_special_tokens() {
        let with = "<|box_start|>(120,45),(980, 1000)<|box_end|>";
        let without = "It is here: (120,45),(980,1000). Also ( 1 , 2 ),( 3 , 4 )";
        assert_eq!(
            parse_qwen_boxes(with),
            vec![NormBox::new(0.12, 0.045, 0.98, 1.0)]
        );
        let boxes = parse_qwen_boxes(without);
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[1], NormBox::new(0.001, 0.002, 0.003, 0.004));
        assert!(parse_qwen_boxes("no box (12,3) here").is_empty());
        assert!(parse_qwen_boxes("(99999999999,1),(2,3)").is_empty());
    }

    #[test]
    fn finds_the_referenced_image() {
        assert_eq!(referenced_image("Locate it in the third image."), Some(2));
        assert_eq!(referenced_image("Find the object in Image-2."), Some(1));
        assert_eq!(referenced_image("in the 2nd image"), Some(1));
        assert_eq!(referenced_image("locate it in the 1th image"), Some(0));
        assert_eq!(
            referenced_image("the person in Image-1 … locate it in the second image"),
            Some(1)
        );
        assert_eq!(referenced_image("image 0"), None);
        assert_eq!(referenced_image("no reference at all"), None);
    }

    #[test]
    fn pixel_conversion_scales_each_axis() {
        let b = NormBox::new(0.5, 0.25, 1.0, 0.5);
        assert_eq!(b.to_pixels(200, 100), [100.0, 25.0, 200.0, 50.0]);
    }

    #[test]
    fn grounded_answers_place_each_box_on_its_image() {
        let t = "Image-2: <|object_ref_start|>the cup<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|>";
        let a = parse_grounded(t, 3, None);
        assert_eq!(a.boxes.len(), 1);
        assert_eq!(a.boxes[0].image, 1);
        assert_eq!(a.boxes[0].label.as_deref(), Some("the cup"));
        assert_eq!(a.boxes[0].bbox, NormBox::new(0.1, 0.2, 0.3, 0.4));
        assert!(!a.truncated);

        // One box per image and no mentions: in order. Swapped corners are ordered.
        let t = "(1,2),(3,4) and (30,40),(10,20)";
        let a = parse_grounded(t, 2, None);
        assert_eq!(
            a.boxes.iter().map(|b| b.image).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(a.boxes[1].bbox, NormBox::new(0.01, 0.02, 0.03, 0.04));

        // No mention in the answer: the question's image. Mentions override it.
        assert_eq!(parse_grounded("(1,2),(3,4)", 3, Some(2)).boxes[0].image, 2);
        let t = "In the first image (1,2),(3,4); the third image (5,6),(7,8)";
        let a = parse_grounded(t, 3, Some(1));
        assert_eq!(
            a.boxes.iter().map(|b| b.image).collect::<Vec<_>>(),
            vec![0, 2]
        );

        // Full-width digits are digits (Python's \d and int() agree).
        let a = parse_grounded(
            "In the second image (１９１,２７３),(９３５,８５０)",
            2,
            None,
        );
        assert_eq!(a.boxes[0].image, 1);
        assert_eq!(a.boxes[0].bbox, NormBox::new(0.191, 0.273, 0.935, 0.85));

        // Out-of-range values are clamped to the image.
        assert_eq!(
            parse_grounded("(0,0),(2000,999)", 1, None).boxes[0].bbox.x2,
            1.0
        );
    }

    #[test]
    fn truncated_answers_keep_the_complete_boxes() {
        for t in [
            "<|box_start|>(1,2),(3,4)<|box_end|> and <|box_start|>(5,",
            "(1,2),(3,4) then (5, 6), (7",
            "(1,2),(3,4)<|box_end|><|box_start|>",
        ] {
            let a = parse_grounded(t, 1, None);
            assert_eq!(a.boxes.len(), 1, "{t}");
            assert!(a.truncated, "{t}");
        }
        assert!(!parse_grounded("no boxes here (really)", 1, None).truncated);
        assert!(parse_grounded("", 0, None).boxes.is_empty());
    }

    #[test]
    fn grounded_parsing_never_panics_on_mangled_text() {
        // Seeded mutations of a real answer: splice, cut and repeat bytes at random
        // (a deterministic xorshift, so failures reproduce).
        let base = "The second image: <|object_ref_start|>a dog<|object_ref_end|><|box_start|>(12,34),(560,789)<|box_end|> é日本";
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let chars: Vec<char> = base.chars().collect();
        for _ in 0..2000 {
            let mut v = chars.clone();
            for _ in 0..1 + rnd(6) {
                let i = rnd(v.len().max(1));
                match rnd(3) {
                    0 if !v.is_empty() => {
                        v.remove(i.min(v.len() - 1));
                    }
                    1 => v.insert(i.min(v.len()), ['(', ')', ',', '9', '<', '|', 'é'][rnd(7)]),
                    _ => v.truncate(i),
                }
            }
            let s: String = v.into_iter().collect();
            let a = parse_grounded(&s, 3, None);
            for b in &a.boxes {
                assert!(b.bbox.x1 <= b.bbox.x2 && b.bbox.y1 <= b.bbox.y2 && b.bbox.x2 <= 1.0);
            }
        }
    }
}

//! Migician's MIG-Bench scoring (`eval/utils.py`, `eval/MIG_bench_eval.py` of
//! Michael4933/Migician @ 0dbd601), reproduced bit for bit: the box extraction, the
//! IoU in f64 with Python's `max`/`min`, the Migician-only y-correction with Python's
//! `round(x, 3)`, the image-index lookup and the prompt suffix. Python semantics that
//! matter are pinned to CPython 3.11 (Unicode 14.0.0): `\d` and `float()` accept every
//! decimal digit (`１９１`, `٣`), `\s` is `str.isspace`.
//!
//! Checked against the official functions by `tests/migbench_eval.rs` and the fixture
//! made by `scripts/fixtures/make_migbench_eval_fixture.py`.

use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

mod pyfloat;
pub use pyfloat::{py_repr, py_round};

/// The first code point of each run of ten decimal digits (Unicode category Nd) in
/// CPython 3.11's Unicode 14.0.0. Every Nd digit is `zero + value` for one of these.
const DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a decimal digit as Python sees it (`unicodedata.decimal`).
pub fn py_digit(c: char) -> Option<u32> {
    let c = c as u32;
    let i = DIGIT_ZEROS.partition_point(|&z| z <= c).checked_sub(1)?;
    let v = c - DIGIT_ZEROS[i];
    (v < 10).then_some(v)
}

/// `float(s)` for what the extraction regexes capture (digits, maybe one dot): any
/// script's digits become ASCII first, as CPython does, then a correctly rounded parse.
pub fn py_float(s: &str) -> Option<f64> {
    let ascii: String = s
        .chars()
        .map(|c| match c {
            '.' => Some('.'),
            c => py_digit(c).and_then(|d| char::from_digit(d, 10)),
        })
        .collect::<Option<_>>()?;
    ascii.parse().ok()
}

/// An integer written in any script's digits (`int(s)` for `\d+`); `None` past u64.
pub fn py_int(s: &str) -> Option<u64> {
    s.chars().try_fold(0u64, |acc, c| {
        acc.checked_mul(10)?.checked_add(u64::from(py_digit(c)?))
    })
}

/// Python's `\d` for str patterns, as a regex class pinned to the table above (the
/// regex crate's own `\d` follows a newer Unicode).
fn digit_class() -> String {
    let mut class = String::from("[");
    for z in DIGIT_ZEROS {
        class.push_str(&format!("\\x{{{z:X}}}-\\x{{{:X}}}", z + 9));
    }
    class.push(']');
    class
}

/// Python's `\s` for str patterns (`str.isspace`): Unicode White_Space plus the
/// information separators U+001C–U+001F.
const PY_SPACE: &str = r"[\t\n\x0B\x0C\r\x1C-\x1F \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]";

/// `extract_bbox`'s six forms, in its order, with `\d` and `\s` as Python reads them.
static FORMS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    let d = digit_class();
    let i = format!("({d}+)");
    let f = format!(r"({d}+\.{d}+)");
    let s = PY_SPACE;
    let forms = [
        format!(r"\({i},{s}*{i}\),{s}*\({i},{s}*{i}\)"),
        format!(r"\[{f},{s}*{f},{s}*{f},{s}*{f}\]"),
        // The third form allows no spaces at all, unlike its neighbours.
        format!(r"\({f},{f}\),\({f},{f}\)"),
        format!(r"\({f},{s}*{f},{s}*{f},{s}*{f}\)"),
        format!(r"\[{i},{s}*{i},{s}*{i},{s}*{i}\]"),
        format!(r"<box>{i}{s}+{i}{s}+{i}{s}+{i}</box>"),
    ];
    // The patterns are built from literals; they cannot fail to compile.
    #[allow(clippy::unwrap_used)]
    forms.iter().map(|f| Regex::new(f).unwrap()).collect()
});

/// What `extract_bbox` returns: `[]`, one flat box, or a list of boxes.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Extracted {
    #[default]
    Empty,
    Single([f64; 4]),
    Multi(Vec<[f64; 4]>),
}

impl Extracted {
    /// The box `calculate_iou` scores (the first of several).
    pub fn scored(&self) -> Option<[f64; 4]> {
        match self {
            Extracted::Empty => None,
            Extracted::Single(b) => Some(*b),
            Extracted::Multi(v) => v.first().copied(),
        }
    }

    /// The value as the official record's `filter_answer` holds it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Extracted::Empty => serde_json::json!([]),
            Extracted::Single(b) => serde_json::json!(b),
            Extracted::Multi(v) => serde_json::json!(v),
        }
    }
}

/// `extract_bbox`'s result plus where its first box sits in the text (to find the image
/// the answer names for that box).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extraction {
    pub boxes: Extracted,
    pub first_at: Option<Range<usize>>,
}

/// `utils.extract_bbox`: the first form with any match decides. One match: values
/// ≥ 1 are divided by 1000 (so a literal 1 becomes 0.001); several: values > 1 are.
/// Its `except` branch (`[0, 0, 0, 0]`) cannot trigger: every `\d` string parses.
pub fn extract_bbox(text: &str) -> Extraction {
    for form in FORMS.iter() {
        let mut first_at = None;
        let all: Vec<[f64; 4]> = form
            .captures_iter(text)
            .filter_map(|c| {
                if first_at.is_none() {
                    first_at = c.get(0).map(|m| m.range());
                }
                let v: Vec<f64> = (1..=4)
                    .filter_map(|i| py_float(c.get(i)?.as_str()))
                    .collect();
                <[f64; 4]>::try_from(v).ok()
            })
            .collect();
        let boxes = match all.len() {
            0 => continue,
            1 => Extracted::Single(all[0].map(|v| if v >= 1.0 { v / 1000.0 } else { v })),
            _ => Extracted::Multi(
                all.iter()
                    .map(|b| b.map(|v| if v > 1.0 { v / 1000.0 } else { v }))
                    .collect(),
            ),
        };
        return Extraction { boxes, first_at };
    }
    Extraction::default()
}

/// Python's `max(a, b)`: the first argument unless the second is strictly greater.
fn py_max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// Python's `min(a, b)`: the first argument unless the second is strictly smaller.
fn py_min(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// `utils.calculate_iou(ground_truth, prediction)`, operation for operation. Where
/// Python would raise ZeroDivisionError (a zero union: both boxes degenerate and
/// overlapping), this returns 0.
pub fn calculate_iou(gt: &[f64; 4], prediction: &Extracted) -> f64 {
    let Some(p) = prediction.scored() else {
        return 0.0;
    };
    let x_left = py_max(gt[0], p[0]);
    let y_top = py_max(gt[1], p[1]);
    let x_right = py_min(gt[2], p[2]);
    let y_bottom = py_min(gt[3], p[3]);
    if x_right < x_left || y_bottom < y_top {
        return 0.0;
    }
    let intersection = (x_right - x_left) * (y_bottom - y_top);
    let gt_area = (gt[2] - gt[0]) * (gt[3] - gt[1]);
    let p_area = (p[2] - p[0]) * (p[3] - p[1]);
    let union = gt_area + p_area - intersection;
    if union == 0.0 {
        return 0.0;
    }
    intersection / union
}

/// `migician_eval`'s y-correction: `y1 = round(min(y1*1.05, 0.999), 3)`, `y2 =
/// round(min(y2*1.10, 0.999), 3)`, inside a bare `try/except: pass`. With several boxes
/// `prediction[1]` is a list, `list*1.05` raises TypeError and nothing changes; with
/// none, IndexError: also unchanged. Only a single box is corrected.
pub fn migician_y_correction(e: &Extracted) -> Extracted {
    match e {
        Extracted::Single(b) => {
            let fix = |v: f64, k: f64| py_round(py_min(v * k, 0.999), 3);
            Extracted::Single([b[0], fix(b[1], 1.05), b[2], fix(b[3], 1.10)])
        }
        other => other.clone(),
    }
}

/// `utils.get_image_index`: substring tests in a fixed order (so "first" anywhere wins
/// over "Image-2", and "Image 1" also matches "Image 10"); `None` for its -1.
pub fn get_image_index(text: &str) -> Option<usize> {
    const PATTERNS: [[&str; 5]; 6] = [
        ["first", "Image-1", "Image1", "Image 1", "1th"],
        ["second", "Image-2", "Image2", "Image 2", "2th"],
        ["third", "Image-3", "Image3", "Image 3", "3th"],
        ["fourth", "Image-4", "Image4", "Image 4", "4th"],
        ["fifth", "Image-5", "Image5", "Image 5", "5th"],
        ["sixth", "Image-6", "Image6", "Image 6", "6th"],
    ];
    PATTERNS
        .iter()
        .position(|keys| keys.iter().any(|k| text.contains(k)))
}

/// The ten MIG-Bench tasks, in the order `MIG_bench_eval.py` runs them.
pub const MIG_TASKS: [&str; 10] = [
    "common_object",
    "view_diff",
    "correspondence",
    "diff",
    "group_grounding",
    "multi_view",
    "region",
    "refer_grounding",
    "object_tracking",
    "reasoning",
];

/// `PROMPT_TEMPLATE['format_qwen']` of `MIG_bench_eval.py`, typos and the second
/// `<|box_start|>` included: what the official scores were produced with.
pub const FORMAT_QWEN: &str =
    "Format:<|box_start|>(x1,y1),(x2,y2)<|box_start|>. Don't generate addtional words.";

/// The corrected suffix of `MIG_bench_cot.py` (appended when `need_format` is true).
pub const FORMAT_QWEN_COT: &str =
    " Format:<|box_start|>(x1,y1),(x2,y2)<|box_end|>. Don't generate additional words.";

/// The prompt `MIG_bench_eval.py`'s `qwen2_process` builds for an item of `task`: the
/// question plus the format suffix for every MIG-Bench task (regardless of
/// `need_format`); other tasks keep the bare question.
pub fn official_prompt(task: &str, question: &str) -> String {
    if MIG_TASKS.contains(&task) {
        format!("{question}{FORMAT_QWEN}")
    } else {
        question.to_owned()
    }
}

/// The question without a known format suffix (to match prompts written by others).
pub fn strip_format_suffix(prompt: &str) -> &str {
    prompt
        .strip_suffix(FORMAT_QWEN)
        .or_else(|| prompt.strip_suffix(FORMAT_QWEN_COT))
        .unwrap_or(prompt)
}

/// The target image as `MIG_bench_cot.py` picks it for its second step:
/// correspondence, diff, reasoning, refer_grounding and view_diff: the second image;
/// region: the first; multi_view, object_tracking, common_object: `get_image_index` of
/// the question with "first" removed; group_grounding: `get_image_index` of the
/// reference answer (`additional_info`), the first image when it names none. `None`
/// for other tasks and for indices past the item's images.
pub fn cot_target(
    task: &str,
    question: &str,
    additional_info: &str,
    images: usize,
) -> Option<usize> {
    let t = match task {
        "correspondence" | "diff" | "reasoning" | "refer_grounding" | "view_diff" => Some(1),
        "region" => Some(0),
        "multi_view" | "object_tracking" | "common_object" => {
            get_image_index(&question.replace("first", ""))
        }
        "group_grounding" => Some(get_image_index(additional_info).unwrap_or(0)),
        _ => None,
    };
    t.filter(|&t| t < images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_every_script_parse_as_python_does() {
        assert_eq!(py_digit('７'), Some(7));
        assert_eq!(py_digit('٣'), Some(3));
        assert_eq!(py_digit('𝟡'), Some(9)); // U+1D7E1, in the third mathematical run
        assert_eq!(py_digit('a'), None);
        assert_eq!(py_digit('²'), None, "superscripts are not Nd");
        assert_eq!(py_float("１９１"), Some(191.0));
        assert_eq!(py_float("０.５"), Some(0.5));
        assert_eq!(py_int("٩٨٥"), Some(985));
        assert_eq!(py_int("99999999999999999999999"), None);
    }

    #[test]
    fn extraction_follows_the_official_forms_and_quirks() {
        let e = |t: &str| extract_bbox(t).boxes;
        assert_eq!(
            e("(１９１,２７３),(９３５,８５０)"),
            Extracted::Single([0.191, 0.273, 0.935, 0.85])
        );
        // A full-width decoy before an ASCII box makes two matches: values > 1 only.
        assert_eq!(
            e("（x) (１,２),(３,４) then (100,200),(300,400)"),
            Extracted::Multi(vec![[1.0, 0.002, 0.003, 0.004], [0.1, 0.2, 0.3, 0.4]])
        );
        assert_eq!(
            e("(0,1),(500,1000)"),
            Extracted::Single([0.0, 0.001, 0.5, 1.0])
        );
        // The third form allows no spaces; the spaced pair matches nothing.
        assert_eq!(e("(0.1, 0.2), (0.3, 0.4)"), Extracted::Empty);
        assert_eq!(
            e("(0.1,0.2),(0.3,0.4)"),
            Extracted::Single([0.1, 0.2, 0.3, 0.4])
        );
        // Python's \s includes U+001F; Rust's White_Space does not.
        assert_eq!(
            e("[1,\u{1F}2, 3, 4]"),
            Extracted::Single([0.001, 0.002, 0.003, 0.004])
        );
        let x = extract_bbox("It is in the 2nd image. (1,2),(3,4)");
        assert_eq!(x.first_at, Some(24..35));
    }

    #[test]
    fn iou_is_the_official_f64_value() {
        let gt = [0.1, 0.2, 0.5, 0.6];
        assert_eq!(calculate_iou(&gt, &Extracted::Empty), 0.0);
        assert_eq!(calculate_iou(&gt, &Extracted::Single(gt)), 1.0);
        // Swapped prediction: right < left → 0 before any area is computed.
        assert_eq!(
            calculate_iou(&gt, &Extracted::Single([0.5, 0.6, 0.1, 0.2])),
            0.0
        );
        // Both degenerate on one point: Python divides by zero; we give 0.
        assert_eq!(calculate_iou(&[0.3; 4], &Extracted::Single([0.3; 4])), 0.0);
        let m = Extracted::Multi(vec![[0.1, 0.2, 0.3, 0.6], gt]);
        let exact = (0.3f64 - 0.1) * (0.6 - 0.2)
            / ((0.5 - 0.1) * (0.6 - 0.2) + (0.3 - 0.1) * (0.6 - 0.2) - (0.3 - 0.1) * (0.6 - 0.2));
        assert_eq!(calculate_iou(&gt, &m), exact);
    }

    #[test]
    fn y_correction_skips_several_boxes_as_the_try_except_does() {
        let one = migician_y_correction(&Extracted::Single([0.1, 0.905, 0.5, 0.905]));
        // 0.905·1.05 = 0.95025… → 0.95; 0.905·1.10 = 0.9955000000000002 → 0.996
        assert_eq!(one, Extracted::Single([0.1, 0.95, 0.5, 0.996]));
        let capped = migician_y_correction(&Extracted::Single([0.0, 0.99, 1.0, 0.95]));
        assert_eq!(capped, Extracted::Single([0.0, 0.999, 1.0, 0.999]));
        let many = Extracted::Multi(vec![[0.1, 0.2, 0.3, 0.4]; 2]);
        assert_eq!(migician_y_correction(&many), many);
        assert_eq!(migician_y_correction(&Extracted::Empty), Extracted::Empty);
    }

    #[test]
    fn image_index_and_targets_follow_the_scripts() {
        assert_eq!(get_image_index("locate it in the 3th image"), Some(2));
        assert_eq!(get_image_index("Image-2 … not the first"), Some(0));
        assert_eq!(get_image_index("Image 10"), Some(0));
        assert_eq!(get_image_index("nothing"), None);
        let q = "For the object in the first image, please locate it in the 4th image.";
        assert_eq!(cot_target("object_tracking", q, "", 6), Some(3));
        assert_eq!(cot_target("diff", "anything", "", 2), Some(1));
        assert_eq!(cot_target("region", "the 3th region", "", 4), Some(0));
        assert_eq!(
            cot_target("group_grounding", "q", "It is in the third image.", 4),
            Some(2)
        );
        assert_eq!(cot_target("group_grounding", "q", "", 4), Some(0));
        assert_eq!(cot_target("common_object", "in the 5th image", "", 3), None);
        assert_eq!(cot_target("images", "the first image", "", 3), None);
    }

    #[test]
    fn prompts_carry_the_official_suffix() {
        assert_eq!(
            official_prompt("diff", "Q."),
            "Q.Format:<|box_start|>(x1,y1),(x2,y2)<|box_start|>. Don't generate addtional words."
        );
        assert_eq!(official_prompt("images", "Q."), "Q.");
        assert_eq!(strip_format_suffix(&official_prompt("diff", "Q.")), "Q.");
        assert_eq!(strip_format_suffix(&format!("Q.{FORMAT_QWEN_COT}")), "Q.");
    }
}

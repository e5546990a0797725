//! Exports of a grounding review: COCO JSON (accepted items' boxes in pixels),
//! Migician / Qwen2-VL fine-tuning JSONL (`<|box_start|>(x1,y1),(x2,y2)<|box_end|>` with
//! 0–1000 integers) and a CSV of per-item metrics; plus readers for the first two, so
//! exports can be checked by reading them back.

use super::metrics::{self, ItemScore};
use super::mig_bench::GroundingItem;
use super::predictions::ModelAnswer;
use super::review::{Decision, ItemReview, ReviewBox};
use crate::image_cache::ImageSource;
use loupe_models::answer::{NormBox, parse_grounded};
use loupe_models::reference::{Extracted, py_repr};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq)]
pub struct ExportImage {
    /// The path as the data file writes it.
    pub name: String,
    /// Pixel size `[width, height]`.
    pub size: [u32; 2],
}

/// One item as the exporters see it.
#[derive(Clone, Debug)]
pub struct ExportItem {
    pub index: usize,
    pub task: String,
    pub question: String,
    pub images: Vec<ExportImage>,
    pub target: Option<usize>,
    pub decision: Decision,
    /// The boxes that stand: the reviewer's corrections, else the model's proposal.
    pub boxes: Vec<ReviewBox>,
    pub edited: bool,
    pub note: String,
    pub score: Option<ItemScore>,
    pub gt_suspect: bool,
}

/// The boxes a model proposes for `item`: every box of its answer, each on the image
/// named before it (`parse_grounded`; the target when the answer names none); an
/// answer in another box form gives its scored box. With the y-correction on, a
/// single-box answer is corrected as `migician_eval` corrects it (several boxes are
/// not). With no predictions loaded at all: the ground truth on the target (reviewing
/// a benchmark's own labels).
pub fn proposal(
    item: &GroundingItem,
    answer: Option<&ModelAnswer>,
    any_predictions: bool,
    y_correction: bool,
) -> Vec<ReviewBox> {
    if let Some(a) = answer {
        let n = item.images.len();
        // Only a single extracted box is corrected (the official try/except).
        let corrected = match &a.prediction.extracted {
            Extracted::Single(_) if y_correction => {
                metrics::scored_boxes(&a.prediction, true).scored()
            }
            _ => None,
        };
        let correct = |bbox: NormBox| match corrected {
            Some(c) => NormBox::new(bbox.x1, c[1] as f32, bbox.x2, c[3] as f32),
            None => bbox,
        };
        let grounded = parse_grounded(&a.answer, n, item.target).boxes;
        let single = grounded.len() == 1;
        let boxes: Vec<ReviewBox> = grounded
            .into_iter()
            .filter(|g| g.image < n)
            .map(|g| ReviewBox {
                image: g.image,
                bbox: if single { correct(g.bbox) } else { g.bbox },
            })
            .collect();
        if !boxes.is_empty() {
            return boxes;
        }
        if let Some(bbox) = a.prediction.bbox {
            let image = a.prediction.image.or(item.target).unwrap_or(0);
            if image < n {
                return vec![ReviewBox {
                    image,
                    bbox: correct(bbox),
                }];
            }
        }
    }
    match (item.gt, item.target) {
        (Some(bbox), Some(image)) if !any_predictions => vec![ReviewBox { image, bbox }],
        _ => Vec::new(),
    }
}

impl ExportItem {
    /// An item as exported (image sizes still zero: `image_size` fills them).
    pub fn new(
        index: usize,
        item: &GroundingItem,
        review: ItemReview,
        proposal: Vec<ReviewBox>,
        score: Option<ItemScore>,
    ) -> Self {
        let boxes = review.boxes.clone().unwrap_or_else(|| proposal.clone());
        Self {
            index,
            task: item.task.clone(),
            question: item.question.clone(),
            images: item
                .image_names
                .iter()
                .map(|n| ExportImage {
                    name: n.clone(),
                    size: [0, 0],
                })
                .collect(),
            target: item.target,
            decision: review.decision,
            edited: review.boxes.is_some() && boxes != proposal,
            boxes,
            note: review.note,
            score,
            gt_suspect: item.gt_suspect.is_some(),
        }
    }

    /// Read the pixel sizes of the images of accepted items (COCO needs them), reusing
    /// sizes already read for the same file name.
    pub fn fill_sizes(
        &mut self,
        sources: &[ImageSource],
        cache: &mut std::collections::HashMap<String, [u32; 2]>,
    ) -> Result<(), String> {
        if self.decision != Decision::Accepted {
            return Ok(());
        }
        for (img, src) in self.images.iter_mut().zip(sources) {
            img.size = match cache.get(&img.name) {
                Some(s) => *s,
                None => {
                    let s = image_size(src)?;
                    cache.insert(img.name.clone(), s);
                    s
                }
            };
        }
        Ok(())
    }

    /// Only accepted items become training data.
    fn exported(&self) -> bool {
        self.decision == Decision::Accepted && !self.boxes.is_empty()
    }
}

/// COCO detection JSON. Every image of an accepted item is listed once (by name);
/// categories are the tasks; each annotation also says which item and which of its
/// images it came from (`loupe_item`, `loupe_image`) and the question as `caption`.
pub fn coco(items: &[ExportItem]) -> Value {
    let mut images: Vec<Value> = Vec::new();
    let mut image_ids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut categories: BTreeMap<&str, usize> = BTreeMap::new();
    let mut annotations = Vec::new();
    for item in items.iter().filter(|i| i.exported()) {
        let next = categories.len() + 1;
        let category = *categories.entry(&item.task).or_insert(next);
        for b in &item.boxes {
            let Some(img) = item.images.get(b.image) else {
                continue;
            };
            let next = image_ids.len() + 1;
            let image_id = *image_ids.entry(&img.name).or_insert_with(|| {
                images.push(json!({
                    "id": next,
                    "file_name": img.name,
                    "width": img.size[0],
                    "height": img.size[1],
                }));
                next
            });
            let [x1, y1, x2, y2] = b.bbox.to_pixels(img.size[0], img.size[1]);
            let (w, h) = ((x2 - x1).max(0.0), (y2 - y1).max(0.0));
            annotations.push(json!({
                "id": annotations.len() + 1,
                "image_id": image_id,
                "category_id": category,
                "bbox": [x1, y1, w, h],
                "area": w * h,
                "iscrowd": 0,
                "caption": item.question,
                "loupe_item": item.index,
                "loupe_image": b.image,
            }));
        }
    }
    json!({
        "info": {"description": "Loupe grounding review export", "version": "1.0"},
        "images": images,
        "categories": categories
            .iter()
            .map(|(name, id)| json!({"id": id, "name": name, "supercategory": "grounding"}))
            .collect::<Vec<_>>(),
        "annotations": annotations,
    })
}

/// Boxes per item read back from a COCO export, normalised with the image sizes.
pub fn read_coco(text: &str) -> Result<BTreeMap<usize, Vec<ReviewBox>>, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut sizes = BTreeMap::new();
    for img in root["images"].as_array().ok_or("no 'images' list")? {
        let id = img["id"].as_u64().ok_or("image without id")?;
        let w = img["width"].as_f64().ok_or("image without width")?;
        let h = img["height"].as_f64().ok_or("image without height")?;
        sizes.insert(id, (w, h));
    }
    let mut out: BTreeMap<usize, Vec<ReviewBox>> = BTreeMap::new();
    for a in root["annotations"]
        .as_array()
        .ok_or("no 'annotations' list")?
    {
        let (w, h) = sizes
            .get(
                &a["image_id"]
                    .as_u64()
                    .ok_or("annotation without image_id")?,
            )
            .copied()
            .ok_or("annotation of an unknown image")?;
        let bb: Vec<f64> = a["bbox"]
            .as_array()
            .ok_or("annotation without bbox")?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        let [x, y, bw, bh] = bb[..] else {
            return Err("bbox must be [x, y, w, h]".into());
        };
        let item = a["loupe_item"].as_u64().ok_or("annotation without item")? as usize;
        let image = a["loupe_image"]
            .as_u64()
            .ok_or("annotation without image")? as usize;
        out.entry(item).or_default().push(ReviewBox {
            image,
            bbox: NormBox::new(
                (x / w) as f32,
                (y / h) as f32,
                ((x + bw) / w) as f32,
                ((y + bh) / h) as f32,
            ),
        });
    }
    Ok(out)
}

const ORDINALS: [&str; 6] = ["first", "second", "third", "fourth", "fifth", "sixth"];

/// A normalised coordinate on Qwen's 0–1000 grid.
fn q(v: f32) -> u32 {
    (v.clamp(0.0, 1.0) * 1000.0).round() as u32
}

/// The assistant text for an item's boxes. Items of several images name the image
/// before its boxes ("It is in the third image."), as Migician's training answers do.
pub fn qwen_answer(boxes: &[ReviewBox], n_images: usize) -> String {
    let mut text = String::new();
    let mut current = None;
    for b in boxes {
        if n_images > 1 && current != Some(b.image) {
            let word = ORDINALS
                .get(b.image)
                .map_or_else(|| format!("{}th", b.image + 1), |w| (*w).to_owned());
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&if current.is_none() {
                format!("It is in the {word} image.")
            } else {
                format!("And in the {word} image.")
            });
            current = Some(b.image);
        }
        if !text.is_empty() {
            text.push(' ');
        }
        let r = b.bbox;
        text.push_str(&format!(
            "<|box_start|>({},{}),({},{})<|box_end|>",
            q(r.x1),
            q(r.y1),
            q(r.x2),
            q(r.y2)
        ));
    }
    text
}

/// One JSON line per accepted item, in the LLaMA-Factory / Migician `messages` layout:
/// one `<image>` placeholder per image before the question, the boxes as the answer.
pub fn qwen_jsonl(items: &[ExportItem]) -> String {
    let mut out = String::new();
    for item in items.iter().filter(|i| i.exported()) {
        // Group the boxes by image so each image is named once.
        let mut boxes = item.boxes.clone();
        boxes.sort_by_key(|b| b.image);
        let line = json!({
            "id": item.index,
            "task": item.task,
            "images": item.images.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            "messages": [
                {"role": "user", "content": format!("{}{}", "<image>".repeat(item.images.len()), item.question)},
                {"role": "assistant", "content": qwen_answer(&boxes, item.images.len())},
            ],
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// Boxes per item read back from a JSONL export with the model-answer parser.
pub fn read_qwen_jsonl(text: &str) -> Result<BTreeMap<usize, Vec<ReviewBox>>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", n + 1))?;
        let id = v["id"].as_u64().ok_or(format!("line {}: no id", n + 1))? as usize;
        let n_images = v["images"].as_array().map_or(1, Vec::len);
        let answer = v["messages"][1]["content"]
            .as_str()
            .ok_or(format!("line {}: no assistant message", n + 1))?;
        let boxes = parse_grounded(answer, n_images, None)
            .boxes
            .into_iter()
            .map(|g| ReviewBox {
                image: g.image,
                bbox: g.bbox,
            })
            .collect();
        out.insert(id, boxes);
    }
    Ok(out)
}

/// Pixel size from the image header (the whole image only for embedded or tar images).
pub fn image_size(src: &ImageSource) -> Result<[u32; 2], String> {
    match src {
        ImageSource::File(p) => image::image_dimensions(p)
            .map(|(w, h)| [w, h])
            .map_err(|e| format!("{}: {e}", p.display())),
        other => other.decode().map(|img| [img.width(), img.height()]),
    }
}

/// RFC 4180 quoting of one field (shared by every CSV Loupe writes).
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Per-item metrics and review outcome, one row per item (all items, any decision).
pub fn metrics_csv(items: &[ExportItem]) -> String {
    let mut out = String::from(
        "item,task,images,target_image,decision,edited,boxes,iou,acc_0.3,acc_0.5,acc_0.7,parse_failure,wrong_image,missing,gt_suspect,note\n",
    );
    for it in items {
        // Items without ground truth have no score: the score columns stay empty.
        let score_cells = match it.score {
            Some(s) => vec![
                py_repr(s.iou),
                u8::from(s.hit(0.3)).to_string(),
                u8::from(s.hit(0.5)).to_string(),
                u8::from(s.hit(0.7)).to_string(),
                u8::from(s.parse_failure).to_string(),
                u8::from(s.wrong_image).to_string(),
                u8::from(s.missing).to_string(),
            ],
            None => vec![String::new(); 7],
        };
        let row = [
            it.index.to_string(),
            csv_field(&it.task),
            it.images.len().to_string(),
            it.target.map(|t| (t + 1).to_string()).unwrap_or_default(),
            it.decision.label().to_owned(),
            u8::from(it.edited).to_string(),
            it.boxes.len().to_string(),
        ];
        let tail = [u8::from(it.gt_suspect).to_string(), csv_field(&it.note)];
        out.push_str(
            &row.into_iter()
                .chain(score_cells)
                .chain(tail)
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

/// Make accepted items' boxes fit for training data, saying what changed: corners put
/// in order, coordinates clipped to the image, zero-area boxes refused (dropped).
pub fn sanitize(items: &mut [ExportItem]) -> Vec<String> {
    let mut warnings = Vec::new();
    for item in items
        .iter_mut()
        .filter(|i| i.decision == Decision::Accepted)
    {
        let index = item.index;
        item.boxes.retain_mut(|b| {
            let r = b.bbox;
            let where_ = format!("item {index}, image {}", b.image + 1);
            let ordered = NormBox::new(
                r.x1.min(r.x2),
                r.y1.min(r.y2),
                r.x1.max(r.x2),
                r.y1.max(r.y2),
            );
            if ordered != r {
                warnings.push(format!("{where_}: box corners swapped, put in order"));
            }
            let c = |v: f32| v.clamp(0.0, 1.0);
            let clipped = NormBox::new(c(ordered.x1), c(ordered.y1), c(ordered.x2), c(ordered.y2));
            if clipped != ordered {
                warnings.push(format!("{where_}: box reaches outside the image, clipped"));
            }
            b.bbox = clipped;
            let keep = clipped.x2 > clipped.x1 && clipped.y2 > clipped.y1;
            if !keep {
                warnings.push(format!("{where_}: zero-area box not exported"));
            }
            keep
        });
    }
    warnings
}

/// What an export wrote, and what it had to change on the way.
#[derive(Clone, Debug, Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// Write all three exports into `dir` as `<stem>.coco.json`, `<stem>.qwen.jsonl` and
/// `<stem>.metrics.csv`, each atomically, after [`sanitize`].
pub fn write_all(dir: &Path, stem: &str, items: &[ExportItem]) -> anyhow::Result<Written> {
    let mut items = items.to_vec();
    let warnings = sanitize(&mut items);
    let items = &items[..];
    let coco_bytes = serde_json::to_vec_pretty(&coco(items))?;
    let files = [
        (format!("{stem}.coco.json"), coco_bytes),
        (format!("{stem}.qwen.jsonl"), qwen_jsonl(items).into_bytes()),
        (
            format!("{stem}.metrics.csv"),
            metrics_csv(items).into_bytes(),
        ),
    ];
    let mut written = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        crate::atomic::write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(Written {
        files: written,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<ExportItem> {
        let img = |name: &str, w, h| ExportImage {
            name: name.into(),
            size: [w, h],
        };
        let rb = |image, x1, y1, x2, y2| ReviewBox {
            image,
            bbox: NormBox::new(x1, y1, x2, y2),
        };
        vec![
            ExportItem {
                index: 0,
                task: "group_grounding".into(),
                question: "Find the cup, \"espresso\".".into(),
                images: vec![img("a.jpg", 640, 480), img("b.jpg", 333, 517)],
                target: Some(1),
                decision: Decision::Accepted,
                boxes: vec![rb(1, 0.1234, 0.2, 0.5, 0.9), rb(0, 0.0, 0.0, 1.0, 1.0)],
                edited: true,
                note: "corrected, twice".into(),
                score: Some(ItemScore {
                    iou: 0.25,
                    parse_failure: false,
                    wrong_image: true,
                    missing: false,
                }),
                gt_suspect: false,
            },
            ExportItem {
                index: 1,
                task: "region".into(),
                question: "q".into(),
                images: vec![img("a.jpg", 640, 480)],
                target: Some(0),
                decision: Decision::Rejected,
                boxes: vec![rb(0, 0.1, 0.1, 0.2, 0.2)],
                edited: false,
                note: String::new(),
                score: None,
                gt_suspect: false,
            },
            ExportItem {
                index: 5,
                task: "region".into(),
                question: "r".into(),
                images: vec![img("c.png", 100, 50)],
                target: Some(0),
                decision: Decision::Accepted,
                boxes: vec![rb(0, 0.33, 0.5, 0.667, 1.0)],
                edited: false,
                note: String::new(),
                score: None,
                gt_suspect: false,
            },
        ]
    }

    fn close(a: &[ReviewBox], b: &[ReviewBox], tol: f32) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.image, y.image);
            for (p, q) in [
                (x.bbox.x1, y.bbox.x1),
                (x.bbox.y1, y.bbox.y1),
                (x.bbox.x2, y.bbox.x2),
                (x.bbox.y2, y.bbox.y2),
            ] {
                assert!((p - q).abs() <= tol, "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn coco_round_trips_accepted_boxes_in_pixels() {
        let items = items();
        let c = coco(&items);
        // Two accepted items; a.jpg is shared and listed once.
        assert_eq!(c["images"].as_array().unwrap().len(), 3);
        assert_eq!(c["annotations"].as_array().unwrap().len(), 3);
        let first = &c["annotations"][0];
        // 0.1234·333 = 41.09; (0.5 − 0.1234)·333 = 125.41; 0.2·517 = 103.4; 0.7·517 = 361.9
        let bb: Vec<f64> = first["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (got, want) in bb.iter().zip([41.0922, 103.4, 125.4078, 361.9]) {
            assert!((got - want).abs() < 1e-3, "{bb:?}");
        }
        let back = read_coco(&c.to_string()).unwrap();
        assert_eq!(back.keys().copied().collect::<Vec<_>>(), vec![0, 5]);
        close(&back[&0], &items[0].boxes, 1e-6);
        close(&back[&5], &items[2].boxes, 1e-6);
    }

    #[test]
    fn jsonl_round_trips_within_the_0_1000_grid() {
        let items = items();
        let text = qwen_jsonl(&items);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            v["messages"][0]["content"],
            "<image><image>Find the cup, \"espresso\"."
        );
        assert_eq!(
            v["messages"][1]["content"],
            "It is in the first image. <|box_start|>(0,0),(1000,1000)<|box_end|> And in the second image. <|box_start|>(123,200),(500,900)<|box_end|>"
        );
        let back = read_qwen_jsonl(&text).unwrap();
        let mut sorted = items[0].boxes.clone();
        sorted.sort_by_key(|b| b.image);
        close(&back[&0], &sorted, 0.0005 + 1e-6);
        close(&back[&5], &items[2].boxes, 0.0005 + 1e-6);
    }

    #[test]
    fn csv_lists_every_item_with_escaped_notes() {
        let csv = metrics_csv(&items());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1],
            "0,group_grounding,2,2,accepted,1,2,0.25,0,0,0,0,1,0,0,\"corrected, twice\""
        );
        assert_eq!(lines[2], "1,region,1,1,rejected,0,1,,,,,,,,0,");
    }

    #[test]
    fn degenerate_boxes_are_clipped_or_refused_with_a_warning() {
        let mut items = items();
        items[2].boxes = vec![
            ReviewBox {
                image: 0,
                bbox: NormBox::new(0.5, 0.6, 0.1, 1.2),
            },
            ReviewBox {
                image: 0,
                bbox: NormBox::new(0.3, 0.3, 0.3, 0.5),
            },
        ];
        let warnings = sanitize(&mut items);
        assert_eq!(items[2].boxes.len(), 1);
        assert_eq!(items[2].boxes[0].bbox, NormBox::new(0.1, 0.6, 0.5, 1.0));
        assert_eq!(
            warnings,
            vec![
                "item 5, image 1: box corners swapped, put in order",
                "item 5, image 1: box reaches outside the image, clipped",
                "item 5, image 1: zero-area box not exported",
            ]
        );
        // Rejected items are not training data: left alone.
        assert_eq!(items[1].boxes.len(), 1);
    }

    #[test]
    fn write_all_writes_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(dir.path(), "bench", &items()).unwrap();
        assert_eq!(written.files.len(), 3);
        assert!(written.warnings.is_empty(), "{:?}", written.warnings);
        for f in written.files {
            assert!(std::fs::metadata(f).unwrap().len() > 10);
        }
    }
}

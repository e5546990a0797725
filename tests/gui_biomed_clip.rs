//! CLIP in the BioMed workspace on the embedded demo shards with the embedded tiny demo
//! model: a text query typed into the panel, "more like this" with the M key, hybrid
//! ranking with caption search, zero-shot labels and their confusion matrix, and resume
//! from the per-shard vector cache. The oracle is the model itself run directly on
//! every item's decoded JPEG here (f32, no index, no f16), then ranked by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{Start, settle};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use loupe::LoupeApp;
use loupe::datasets::biomedica::catalog::{Catalog, ItemId, read_range};
use loupe::datasets::biomedica::tar_index::Ext;
use loupe::datasets::biomedica::zero_shot;
use loupe::routing::WorkspaceKind;
use loupe::state::Settings;
use loupe::workspace::biomed_clip::Query;
use loupe_models::clip::{Clip, ModelSource};
use std::path::Path;

fn harness() -> Harness<'static, LoupeApp> {
    common::harness(Start {
        settings: Settings {
            tab: WorkspaceKind::BioMed,
            ..Default::default()
        },
        ..Default::default()
    })
}

/// f16 storage of unit vectors moves a cosine by at most ~dim · 2^-11.
const F16_TOL: f32 = 2e-3;

fn demo_model() -> Clip {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tests/fixtures/clip_tiny");
    Clip::load(
        &ModelSource::Dir(dir),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap()
}

/// Every item's image vector, straight from the model (None where the JPEG is bad).
fn oracle_vectors(clip: &Clip, cat: &Catalog) -> Vec<Option<Vec<f32>>> {
    (0..cat.len() as ItemId)
        .map(|id| {
            let (path, off, len) = cat.member(id, Ext::Jpg)?;
            let bytes = read_range(&path, off, len).ok()?;
            let img = image::load_from_memory(&bytes).ok()?.to_rgb8();
            Some(clip.encode_images(&[img]).unwrap().remove(0))
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The visible order must be the oracle's order up to f16 rounding: every item scores
/// at least as high as the next one (within tolerance), the shown scores match, and
/// exactly the items with an image are shown.
fn assert_ranked(h: &Harness<'_, LoupeApp>, oracle: &[Option<f32>]) {
    let b = h.state().biomed();
    let keys = b.visible_keys();
    let ids: Vec<ItemId> = keys
        .iter()
        .map(|k| {
            (0..b.catalog().len() as ItemId)
                .find(|&i| b.catalog().key(i) == *k)
                .unwrap()
        })
        .collect();
    let with_image = oracle.iter().filter(|s| s.is_some()).count();
    assert_eq!(ids.len(), with_image, "every embedded item is ranked");
    for pair in ids.windows(2) {
        let (a, c) = (
            oracle[pair[0] as usize].unwrap(),
            oracle[pair[1] as usize].unwrap(),
        );
        assert!(
            a >= c - F16_TOL,
            "{} ({a}) before {} ({c})",
            pair[0],
            pair[1]
        );
    }
    for &id in &ids {
        let shown = b.clip.score(id).unwrap();
        let want = oracle[id as usize].unwrap();
        assert!(
            (shown - want).abs() < F16_TOL,
            "item {id}: {shown} vs {want}"
        );
    }
}

#[test]
fn text_query_more_like_this_hybrid_and_zero_shot_on_the_demo() {
    // The vector cache of this test run only (the demo model is materialised there too).
    let cache = tempfile::tempdir().unwrap();
    let mut h = harness();
    h.state_mut()
        .biomed_mut()
        .0
        .clip
        .set_cache_dir(cache.path());
    let total = h.state().biomed().catalog().len();
    assert!(total > 10, "the demo catalog is indexed ({total})");

    let clip = demo_model();
    let images = oracle_vectors(&clip, h.state().biomed().catalog());
    assert!(images.iter().filter(|v| v.is_some()).count() > 10);

    // 1. A text query typed into the panel and submitted with Enter.
    let query = "H&E stained lymph node metastasis";
    let label = (egui::accesskit::Role::TextInput, "Search by meaning (CLIP)");
    h.get_by_role_and_label(label.0, label.1).click();
    h.run_steps(2);
    h.get_by_role_and_label(label.0, label.1).type_text(query);
    h.key_press(egui::Key::Enter);
    settle(&mut h);
    let text = clip.encode_texts(&[query]).unwrap().remove(0);
    let oracle: Vec<Option<f32>> = images
        .iter()
        .map(|v| v.as_ref().map(|v| dot(v, &text)))
        .collect();
    assert!(matches!(
        h.state().biomed().clip.semantic.as_ref().map(|s| &s.query),
        Some(Query::Text(t)) if t == query
    ));
    assert_ranked(&h, &oracle);
    let info = h.state().biomed().clip.info.clone().unwrap();
    assert_eq!(info.vectors, images.iter().filter(|v| v.is_some()).count());
    assert_eq!(
        info.stats.embedded_now, info.vectors,
        "first run embeds all"
    );
    assert_eq!(info.model_id, loupe::demo::CLIP_DEMO_NAME);

    // 2. More like this (M) for the selected item: ranked by image–image cosine; the
    // item itself (or an identical image) comes first with cosine 1.
    let sel_key = h.state().biomed().selected_key().unwrap().to_owned();
    let cat_len = h.state().biomed().catalog().len() as ItemId;
    let sel = (0..cat_len)
        .find(|&i| h.state().biomed().catalog().key(i) == sel_key)
        .unwrap();
    h.key_press(egui::Key::M);
    settle(&mut h);
    let like = images[sel as usize].clone().unwrap();
    let oracle: Vec<Option<f32>> = images
        .iter()
        .map(|v| v.as_ref().map(|v| dot(v, &like)))
        .collect();
    assert_eq!(
        h.state().biomed().clip.semantic.as_ref().map(|s| &s.query),
        Some(&Query::Like(sel))
    );
    assert_ranked(&h, &oracle);
    let first = h.state().biomed().visible_keys()[0].to_owned();
    let first_id = (0..cat_len)
        .find(|&i| h.state().biomed().catalog().key(i) == first)
        .unwrap();
    assert!((oracle[first_id as usize].unwrap() - 1.0).abs() < F16_TOL);

    // 3. Hybrid: caption words plus the top 3 semantic results = the caption matches
    // and those 3, fused by reciprocal rank (rank::rrf is checked by hand in its unit
    // test; here the set and the head are).
    let word = "microaneurysm";
    let caption_hits: std::collections::BTreeSet<String> = h
        .state()
        .biomed()
        .catalog()
        .search(word)
        .iter()
        .map(|hit| h.state().biomed().catalog().key(hit.item).to_owned())
        .collect();
    assert!(!caption_hits.is_empty());
    {
        let (b, _) = h.state_mut().biomed_mut();
        b.clip.limit = 3;
        b.set_query(word);
    }
    settle(&mut h);
    let mut by_cos: Vec<(f32, ItemId)> = oracle
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (s, i as ItemId)))
        .collect();
    by_cos.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top3: std::collections::BTreeSet<String> = by_cos[..3]
        .iter()
        .map(|(_, i)| h.state().biomed().catalog().key(*i).to_owned())
        .collect();
    let got: std::collections::BTreeSet<String> = h
        .state()
        .biomed()
        .visible_keys()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let want: std::collections::BTreeSet<String> = caption_hits.union(&top3).cloned().collect();
    assert_eq!(got, want);
    {
        let (b, _) = h.state_mut().biomed_mut();
        b.clip.limit = 0;
        b.set_query("");
    }
    settle(&mut h);

    // 4. Zero-shot labels over the shown items, from the panel's button.
    h.get_by_label("Zero-shot labels").click();
    h.run_steps(2);
    h.get_by_label("Label the shown items").click();
    settle(&mut h);
    let b = h.state().biomed();
    let z = b.clip.zero_shot.as_ref().expect("zero-shot labels");
    let classes = zero_shot::parse_classes(&b.clip.classes);
    assert_eq!(z.classes, classes);
    let prompts: Vec<String> = classes
        .iter()
        .map(|c| zero_shot::prompt(&b.clip.template, c))
        .collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let class_vecs = clip.encode_texts(&refs).unwrap();
    let (mut agree, mut total) = (0usize, 0usize);
    for (id, v) in images.iter().enumerate() {
        let Some(v) = v else { continue };
        let logits: Vec<f32> = class_vecs.iter().map(|c| dot(c, v)).collect();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &c| logits[c].total_cmp(&logits[a]));
        let got = z
            .labels
            .get(&(id as ItemId))
            .expect("every shown item labelled");
        // The best class, unless the runner-up is within f16 rounding of it.
        if logits[order[0]] - logits[order[1]] > F16_TOL {
            assert_eq!(usize::from(got.class), order[0], "item {id}");
        }
        let labels = b.catalog().primary_labels(id as ItemId);
        if labels
            .iter()
            .any(|l| l.eq_ignore_ascii_case(&classes[usize::from(got.class)]))
        {
            agree += 1;
        }
        total += 1;
    }
    assert_eq!((z.confusion.agree, z.confusion.total), (agree, total));
    // Every labelled item is counted once per primary label (or once as unlabelled).
    let cells: u32 = z.confusion.counts.iter().flatten().sum();
    let want_cells: usize = z
        .labels
        .keys()
        .map(|&id| b.catalog().primary_labels(id).len().max(1))
        .sum();
    assert_eq!(cells as usize, want_cells);
    assert!(b.clip.show_confusion);
    h.get_by_label("Zero-shot labels vs BIOMEDICA primary labels");
    common::snapshot(&mut h, "biomed_clip");

    // 5. Copy image: the selected figure, decoded in full, goes to the clipboard (the
    // toast names its size, checked against a decode here).
    h.state_mut().biomed_mut().0.clip.show_confusion = false;
    h.run_steps(2);
    let key = h.state().biomed().selected_key().unwrap().to_owned();
    let cat = h.state().biomed().catalog();
    let id = (0..cat.len() as ItemId)
        .find(|&i| cat.key(i) == key)
        .unwrap();
    let (path, off, len) = cat.member(id, Ext::Jpg).unwrap();
    let img = image::load_from_memory(&read_range(&path, off, len).unwrap()).unwrap();
    h.get_by_label("Copy image").click();
    settle(&mut h);
    h.get_by_label(&format!(
        "Copied the {} × {} image to the clipboard",
        img.width(),
        img.height()
    ));

    // 6. A second app on the same cache reuses the vectors: nothing is embedded again.
    drop(h);
    let mut h = harness();
    {
        let (b, shared) = h.state_mut().biomed_mut();
        b.clip.set_cache_dir(cache.path());
        b.semantic_search(query, shared);
    }
    settle(&mut h);
    let info = h.state().biomed().clip.info.clone().unwrap();
    assert_eq!(info.stats.embedded_now, 0);
    assert_eq!(info.stats.cached_shards, info.stats.shards);
}

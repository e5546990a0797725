#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

//! OpenCLIP on candle against open-clip-torch 3.3.0: the committed tiny random-weight
//! fixture (`models/tools/make_clip_fixture.py`) must match token for token, pixel for
//! pixel, and in features to f32 rounding.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use loupe_models::clip::loader::{self, ModelSource};
use loupe_models::clip::{Clip, ClipModel, Error, Tokenizer};

#[path = "common/numerics.rs"]
mod numerics;
use numerics::{Sensitivity, relative_backward_error, unit_roundoff};

/// The longest reduction of the tiny towers: the patch embedding (3·14² = 588) beats
/// the vision attention over 257 tokens, the MLPs (256) and the text side (77 tokens).
const LONGEST_REDUCTION: usize = 588;

fn weights() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture().join("open_clip_model.safetensors"), &Device::Cpu)
        .unwrap()
}

/// A CLIP over `weights` (perturbed or broken ones) in `dtype`.
fn clip_from(weights: &HashMap<String, Tensor>, dtype: DType) -> Clip {
    let cfg = loader::load_config(&fixture().join("open_clip_config.json")).unwrap();
    let vb = VarBuilder::from_tensors(weights.clone(), dtype, &Device::Cpu);
    let model = ClipModel::new(&cfg, vb).unwrap();
    Clip::from_parts(cfg, model, "clip_tiny").unwrap()
}

/// Per group, `|got − want| ≤ bound` element-wise and the cosine implied by it:
/// for `g = w + e` with `‖e‖ < ‖w‖` the angle satisfies `sin θ ≤ ‖e‖/‖w‖`, so
/// `1 − cos θ ≤ (‖e‖/‖w‖)²` with `‖e‖ ≤ √d·bound`.
fn min_cosine(want: &[f32], bound: f64) -> f64 {
    let norm = want
        .iter()
        .map(|x| f64::from(*x).powi(2))
        .sum::<f64>()
        .sqrt();
    let r = (want.len() as f64).sqrt() * bound / norm;
    assert!(r < 1.0, "bound {bound} as large as the vector itself");
    1.0 - r * r
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip_tiny")
}

struct Reference {
    tensors: HashMap<String, Tensor>,
    json: serde_json::Value,
}

impl Reference {
    fn load() -> Self {
        let dir = fixture();
        let tensors =
            candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu)
                .unwrap();
        let json =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
                .unwrap();
        Self { tensors, json }
    }
    fn t(&self, name: &str) -> &Tensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
    }
    fn rows(&self, name: &str) -> Vec<Vec<f32>> {
        self.t(name)
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec2()
            .unwrap()
    }
    fn captions(&self) -> Vec<String> {
        self.json["captions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    }
}

fn load_clip() -> Clip {
    Clip::load(&ModelSource::Dir(fixture()), DType::F32, &Device::Cpu).unwrap()
}

fn images(r: &Reference) -> Vec<image::RgbImage> {
    r.json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            image::open(fixture().join(m["file"].as_str().unwrap()))
                .unwrap()
                .to_rgb8()
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Per-row (max-abs-diff, min cosine) over two sets of rows, asserting `|Δ| ≤ tol`
/// and the cosine that bound implies ([`min_cosine`]).
fn compare(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], tol: f64) -> (f32, f64) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    let mut worst = (0f32, 1f64);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = max_abs_diff(g, w);
        let c = cosine(g, w);
        let c_min = min_cosine(w, tol);
        assert!(
            f64::from(d) <= tol && c >= c_min,
            "{what} row {i}: max |diff| {d:e} (bound {tol:e}), cosine {c} (bound {c_min})"
        );
        worst = (worst.0.max(d), worst.1.min(c));
    }
    eprintln!(
        "{what}: {} rows, max |diff| {:.3e} (bound {tol:.3e}), min cosine {:.9}",
        got.len(),
        worst.0,
        worst.1
    );
    worst
}

/// Bounds for the four compared outputs of `Clip` in f32 against open-clip-torch:
/// image features from the reference pixels, image embeddings from the files, text
/// features from the reference ids, text embeddings from the captions
/// (numerics.rs: `ρ = u_f32·√(2N/3)`, σ measured per output).
fn f32_bounds(r: &Reference) -> Sensitivity {
    let ims = images(r);
    let captions = r.captions();
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    let ids = token_ids(r);
    let rho = relative_backward_error(DType::F32, LONGEST_REDUCTION);
    Sensitivity::measure(&weights(), rho, &mut |w| {
        let clip = clip_from(w, DType::F32);
        let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        vec![
            flat(clip.model().image_features(r.t("pixel_values")).unwrap()),
            clip.encode_images(&ims).unwrap().concat(),
            flat(clip.model().text_features(&ids).unwrap()),
            clip.encode_texts(&refs).unwrap().concat(),
        ]
    })
}

fn token_ids(r: &Reference) -> Vec<Vec<u32>> {
    r.t("token_ids")
        .to_vec2::<i64>()
        .unwrap()
        .into_iter()
        .map(|row| row.into_iter().map(|t| t as u32).collect())
        .collect()
}

#[test]
fn token_ids_match_open_clip() {
    let r = Reference::load();
    let tok = Tokenizer::new(77).unwrap();
    let want: Vec<Vec<i64>> = r.t("token_ids").to_vec2().unwrap();
    let cleaned = r.json["cleaned"].as_array().unwrap();
    let mut bad = Vec::new();
    for (i, cap) in r.captions().iter().enumerate() {
        let clean = tok.clean(cap);
        let got: Vec<i64> = tok.tokenize(cap).iter().map(|&t| t as i64).collect();
        if clean != cleaned[i].as_str().unwrap() || got != want[i] {
            bad.push(format!(
                "caption {i} {cap:?}\n  clean ours {clean:?}\n  clean ref  {:?}\n  ids ours {:?}\n  ids ref  {:?}",
                cleaned[i], got, want[i]
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // Truncation keeps EOT last.
    let long = tok.tokenize(&"word ".repeat(100));
    assert_eq!(long.len(), 77);
    assert_eq!(long[76], 49407);
    eprintln!("{} captions tokenised identically", want.len());
}

#[test]
fn fuzzed_captions_tokenise_identically() {
    let text = std::fs::read_to_string(fixture().join("tokenizer_fuzz.json")).unwrap();
    let fuzz: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tok = Tokenizer::new(77).unwrap();
    let cases = fuzz["cases"].as_array().unwrap();
    let mut bad = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got: Vec<u32> = tok.tokenize(text).into_iter().filter(|&t| t != 0).collect();
        if got != want {
            bad.push(format!(
                "case {i} {text:?}\n  clean {:?}\n  ours {got:?}\n  ref  {want:?}",
                tok.clean(text)
            ));
        }
    }
    eprintln!(
        "fuzz: {} of {} strings differ ({} mojibake strings skipped by the generator)",
        bad.len(),
        cases.len(),
        fuzz["skipped_mojibake"]
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn pixels_match_open_clip_transform() {
    let r = Reference::load();
    let clip = load_clip();
    let want = r
        .t("pixel_values")
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let got = clip
        .pixel_tensor(&images(&r))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let d = max_abs_diff(&got, &want);
    eprintln!("pixels: {} values, max |diff| {d:e}", got.len());
    // Same u8 pixels (bit-exact PIL bicubic), then ToTensor (×1/255) and Normalize
    // ((x − mean)/std): at most 3 f32 roundings per side, |Δ| ≤ 2·3·u·max|value|.
    let max = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let bound = 6.0 * unit_roundoff(DType::F32) * f64::from(max);
    assert!(f64::from(d) <= bound, "pixels max |diff| {d} > {bound}");
}

#[test]
fn image_and_text_features_match() {
    let r = Reference::load();
    let clip = load_clip();
    let bounds = f32_bounds(&r);
    // The model alone, on the reference pixels.
    let raw = clip.model().image_features(r.t("pixel_values")).unwrap();
    let raw: Vec<Vec<f32>> = raw.to_vec2().unwrap();
    compare(
        "image features (ref pixels)",
        &raw,
        &r.rows("image_features"),
        bounds.bound(0),
    );
    // The whole path from decoded images.
    let emb = clip.encode_images(&images(&r)).unwrap();
    compare(
        "image embeddings",
        &emb,
        &r.rows("image_embeds"),
        bounds.bound(1),
    );
    let captions = r.captions();
    let raw: Vec<Vec<f32>> = clip
        .model()
        .text_features(&token_ids(&r))
        .unwrap()
        .to_vec2()
        .unwrap();
    compare(
        "text features (ref ids)",
        &raw,
        &r.rows("text_features"),
        bounds.bound(2),
    );
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    let emb = clip.encode_texts(&refs).unwrap();
    compare(
        "text embeddings",
        &emb,
        &r.rows("text_embeds"),
        bounds.bound(3),
    );
    // One at a time gives the same as batched (the batch is trimmed to its longest
    // caption): the same sums over the same tokens, in an order the batch size may
    // change — within the same bound.
    let one = clip.encode_texts(&refs[1..2]).unwrap();
    assert!(f64::from(max_abs_diff(&one[0], &emb[1])) <= bounds.bound(3));
}

#[test]
fn logit_scale_and_id() {
    let r = Reference::load();
    let clip = load_clip();
    let want = r.t("logit_scale").to_vec1::<f32>().unwrap()[0];
    assert!((clip.model().logit_scale() - want).abs() < 1e-6);
    assert!((clip.logit_scale() - want.exp()).abs() < 1e-3);
    assert_eq!(clip.model_id(), "clip_tiny");
    assert_eq!(clip.embed_dim(), 32);
}

fn copy_fixture(dir: &Path) {
    for f in ["open_clip_config.json", "open_clip_model.safetensors"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
}

fn load_err(dir: &Path) -> String {
    match Clip::load(
        &ModelSource::Dir(dir.to_path_buf()),
        DType::F32,
        &Device::Cpu,
    ) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_checkpoints_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir_all(&dir).unwrap();

    // Missing folder / files.
    let e = load_err(&tmp.path().join("nope"));
    assert!(e.contains("no such model folder"), "{e}");
    let e = load_err(&dir);
    assert!(e.contains("open_clip_config.json"), "{e}");
    std::fs::copy(
        fixture().join("open_clip_config.json"),
        dir.join("open_clip_config.json"),
    )
    .unwrap();
    let e = load_err(&dir);
    assert!(e.contains("open_clip_model.safetensors"), "{e}");

    // Bad config JSON.
    copy_fixture(&dir);
    std::fs::write(dir.join("open_clip_config.json"), "{\"model_cfg\": {").unwrap();
    let e = load_err(&dir);
    assert!(e.contains("open_clip_config.json"), "{e}");

    // Unsupported option.
    let cfg = std::fs::read_to_string(fixture().join("open_clip_config.json")).unwrap();
    std::fs::write(
        dir.join("open_clip_config.json"),
        cfg.replace(
            "\"patch_size\": 14",
            "\"patch_size\": 14, \"attentional_pool\": true",
        ),
    )
    .unwrap();
    let e = load_err(&dir);
    assert!(e.contains("attentional_pool"), "{e}");

    // Wrong shape: a config whose width disagrees with the weights.
    std::fs::write(
        dir.join("open_clip_config.json"),
        cfg.replace("\"width\": 64", "\"width\": 128"),
    )
    .unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("open_clip_model.safetensors") && e.contains("shape"),
        "{e}"
    );

    // Missing tensor: one layer more than the file has.
    std::fs::write(
        dir.join("open_clip_config.json"),
        cfg.replacen("\"layers\": 2", "\"layers\": 3", 1),
    )
    .unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("open_clip_model.safetensors") && e.contains("resblocks.2"),
        "{e}"
    );

    // Truncated weights.
    copy_fixture(&dir);
    let bytes = std::fs::read(fixture().join("open_clip_model.safetensors")).unwrap();
    std::fs::write(
        dir.join("open_clip_model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("open_clip_model.safetensors") && e.contains("truncated"),
        "{e}"
    );

    // Not a safetensors file at all.
    std::fs::write(dir.join("open_clip_model.safetensors"), b"PK\x03\x04 zip").unwrap();
    let e = load_err(&dir);
    assert!(e.contains("not a safetensors file"), "{e}");
}

/// Runs `f` with environment variables set. Env mutation is process-wide, so callers
/// are serialised by a lock; no other code in this binary reads `HF_*` variables.
fn temp_env<T>(vars: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    #[allow(unsafe_code)]
    for (k, v) in vars {
        // SAFETY: no other thread in this test binary reads HF_* variables.
        unsafe { std::env::set_var(k, v) };
    }
    let r = f();
    #[allow(unsafe_code)]
    for (k, _) in vars {
        // SAFETY: as above.
        unsafe { std::env::remove_var(k) };
    }
    r
}

#[test]
fn hub_ids_resolve_through_the_local_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("models--BIOMEDICA--tiny_clip");
    let snap = repo.join("snapshots").join("0123abcd");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    copy_fixture(&snap);
    let cache = tmp.path().to_str().unwrap();
    let env = [("HF_HUB_OFFLINE", "1"), ("HF_HUB_CACHE", cache)];
    let files = temp_env(&env, || {
        loader::resolve(&ModelSource::parse("BIOMEDICA/tiny_clip"))
    })
    .unwrap();
    assert_eq!(files.config, snap.join("open_clip_config.json"));
    assert_eq!(files.weights, snap.join("open_clip_model.safetensors"));
    let clip = temp_env(&env, || {
        Clip::load(
            &ModelSource::parse("BIOMEDICA/tiny_clip"),
            DType::F32,
            &Device::Cpu,
        )
    })
    .unwrap();
    assert_eq!(clip.model_id(), "BIOMEDICA/tiny_clip");
    // An offline miss names the file and where it looked.
    let e = temp_env(&env, || {
        loader::resolve(&ModelSource::parse("BIOMEDICA/BMC_CLIP_CF"))
    })
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        e.contains("open_clip_config.json") && e.contains("models--BIOMEDICA--BMC_CLIP_CF"),
        "{e}"
    );
    let e = match loader::resolve(&ModelSource::Dir(tmp.path().join("missing"))) {
        Err(Error::NotFound(m)) => m,
        other => panic!("{:?}", other.map(|f| f.config)),
    };
    assert!(e.contains("no such model folder"));
}

#[test]
fn half_precision_stays_close() {
    let r = Reference::load();
    let w = weights();
    let ims = images(&r);
    let texts = ["a photo of a cat", "H&E stained section, 10µm"];
    let run = |clip: &Clip| -> Vec<Vec<f32>> {
        vec![
            clip.encode_images(&ims).unwrap().concat(),
            clip.encode_texts(&texts).unwrap().concat(),
        ]
    };
    let want_img = r.rows("image_embeds");
    let want_txt = r.rows("text_embeds");
    let want_txt = [&want_txt[1], &want_txt[3]];
    // A broken model the bound must not pass: every block of both towers without its
    // MLP output (dropped sub-layers).
    let mut broken = w.clone();
    for b in 0..2 {
        for k in [
            format!("visual.transformer.resblocks.{b}.mlp.c_proj.weight"),
            format!("transformer.resblocks.{b}.mlp.c_proj.weight"),
        ] {
            let z = broken[&k].zeros_like().unwrap();
            broken.insert(k, z);
        }
    }
    let broken = run(&clip_from(&broken, DType::F32));
    for dtype in [DType::BF16, DType::F16] {
        let clip = Clip::load(&ModelSource::Dir(fixture()), dtype, &Device::Cpu).unwrap();
        let got = run(&clip);
        // numerics.rs: half weights and activations, f32 accumulation.
        let rho = relative_backward_error(dtype, LONGEST_REDUCTION);
        let sens = Sensitivity::measure(&w, rho, &mut |w| run(&clip_from(w, DType::F32)));
        let dim = want_img[0].len();
        for (g, (what, wants)) in [
            ("image", want_img.iter().collect::<Vec<_>>()),
            ("text", want_txt.to_vec()),
        ]
        .into_iter()
        .enumerate()
        {
            let bound = sens.bound(g);
            for (i, w) in wants.iter().enumerate() {
                let row = &got[g][i * dim..(i + 1) * dim];
                let bad = &broken[g][i * dim..(i + 1) * dim];
                let c = cosine(row, w);
                let c_min = min_cosine(w, bound);
                let c_broken = cosine(bad, w);
                eprintln!(
                    "{dtype:?} {what} {i}: cosine {c:.6} (bound {c_min:.6}, u = {:e}); broken model {c_broken:.6}",
                    unit_roundoff(dtype)
                );
                assert!(
                    f64::from(max_abs_diff(row, w)) <= bound && c >= c_min,
                    "{dtype:?} {what} {i}: cosine {c} < {c_min}"
                );
                assert!(
                    c_broken < c_min,
                    "{dtype:?} {what} {i}: the bound would pass a dropped MLP ({c_broken})"
                );
            }
        }
    }
}

#[test]
fn clip_can_live_on_the_inference_thread() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Clip>();
}

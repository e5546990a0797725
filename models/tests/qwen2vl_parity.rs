#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

//! Qwen2-VL on candle against transformers 4.45.2: every stage of the committed tiny
//! random-weight fixture (`models/tools/make_qwen2vl_fixture.py`) must match.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use loupe_models::qwen2vl::chat::grounding_messages;
use loupe_models::qwen2vl::generate::{GenerateParams, StopReason, generate};
use loupe_models::qwen2vl::image_processor::{resize_bicubic_pil, smart_resize, to_rgb8};
use loupe_models::qwen2vl::loader::{self, Loaded, ModelSource};
use loupe_models::qwen2vl::{Error, PrefillTrace, Prompt, Qwen2VL};

#[path = "common/numerics.rs"]
mod numerics;
use numerics::{Sensitivity, relative_backward_error, unit_roundoff};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2vl-tiny")
}

struct Case {
    tensors: HashMap<String, Tensor>,
    json: serde_json::Value,
}

impl Case {
    fn load(name: &str) -> Self {
        let dir = fixture();
        let tensors =
            candle_core::safetensors::load(dir.join(format!("{name}.safetensors")), &Device::Cpu)
                .unwrap();
        let json = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        Self { tensors, json }
    }
    fn t(&self, name: &str) -> &Tensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
    }
    fn i64s(&self, name: &str) -> Vec<i64> {
        self.t(name)
            .flatten_all()
            .unwrap()
            .to_vec1::<i64>()
            .unwrap()
    }
    fn image_files(&self) -> Vec<String> {
        self.json["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["file"].as_str().unwrap().to_string())
            .collect()
    }
    fn user_text(&self) -> String {
        self.json["user_text"].as_str().unwrap().to_string()
    }
}

fn load_model() -> Loaded {
    let files = loader::resolve(&ModelSource::Dir(fixture())).unwrap();
    loader::load(&files, DType::F32, &Device::Cpu, &|_, _| {}, &|| false).unwrap()
}

fn images(case: &Case) -> Vec<image::DynamicImage> {
    case.image_files()
        .iter()
        .map(|f| image::open(fixture().join(f)).unwrap())
        .collect()
}

fn prompt(loaded: &Loaded, case: &Case) -> Prompt {
    let ims = images(case);
    loaded
        .processor
        .prepare(&ims, &grounding_messages(ims.len(), &case.user_text()))
        .unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    numerics::max_abs_diff(a, b) as f32
}

/// The fixture's weights, as stored (f32).
fn weights() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture().join("model.safetensors"), &Device::Cpu).unwrap()
}

/// An f32 model over `weights` (perturbed ones for the sensitivity runs).
fn f32_model(weights: &HashMap<String, Tensor>) -> Qwen2VL {
    let cfg = loader::load_config(&fixture().join("config.json")).unwrap();
    let vb = VarBuilder::from_tensors(weights.clone(), DType::F32, &Device::Cpu);
    Qwen2VL::new(&cfg, vb).unwrap()
}

/// The longest reduction (dot-product length) of a prompt's forward pass: the patch
/// embedding (channels × temporal patch × patch² = 3·2·14² = 1176), an image's vision
/// attention over its patches, and the decoder's attention over the prompt. `γ_N` of
/// this `N` sets every reduction's backward error (numerics.rs, steps 1–2).
fn longest_reduction(p: &Prompt) -> usize {
    let patches = p
        .grids
        .iter()
        .map(|g| g[0] * g[1] * g[2])
        .max()
        .unwrap_or(0);
    1176.max(patches).max(p.input_ids.len())
}

/// Flat f32 values of a tensor.
fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Per row: the indices of the two largest values (ties broken by index).
fn top2(logits: &Tensor) -> Vec<[usize; 2]> {
    let rows: Vec<Vec<f32>> = logits.to_dtype(DType::F32).unwrap().to_vec2().unwrap();
    rows.iter()
        .map(|r| {
            let mut idx: Vec<usize> = (0..r.len()).collect();
            idx.select_nth_unstable_by(1, |&a, &b| r[b].total_cmp(&r[a]).then(a.cmp(&b)));
            let (a, b) = (idx[0], idx[1]);
            if r[a] >= r[b] { [a, b] } else { [b, a] }
        })
        .collect()
}

/// The values at `cols` per row, flattened (the entries an argmax depends on).
fn pick(logits: &Tensor, cols: &[[usize; 2]]) -> Vec<f32> {
    let rows: Vec<Vec<f32>> = logits.to_dtype(DType::F32).unwrap().to_vec2().unwrap();
    rows.iter()
        .zip(cols)
        .flat_map(|(r, c)| [r[c[0]], r[c[1]]])
        .collect()
}

/// The logits that decide each generated token — the prompt's last, then each step's
/// after feeding `tokens` one by one — ending with the logits after the last token.
fn teacher_forced(model: &mut Qwen2VL, p: &Prompt, tokens: &[u32]) -> Vec<Tensor> {
    let mut out = vec![model.prefill(p, &|| false).unwrap().unwrap()];
    for &t in tokens {
        out.push(model.step(t).unwrap());
    }
    out
}

const CASES: [&str; 2] = ["reference", "reference_3img"];

#[test]
fn smart_resize_matches_the_reference_sizes() {
    for name in CASES {
        let case = Case::load(name);
        for im in case.json["images"].as_array().unwrap() {
            let wh: Vec<usize> = serde_json::from_value(im["size_wh"].clone()).unwrap();
            let hw: Vec<usize> = serde_json::from_value(im["resized_hw"].clone()).unwrap();
            let got = smart_resize(wh[1], wh[0], 28, 3136, 37632).unwrap();
            assert_eq!([got.0, got.1], [hw[0], hw[1]], "{}", im["file"]);
        }
    }
    // Hand-checked branches: half-to-even rounding, and the error for tiny images.
    assert_eq!(
        smart_resize(126, 280, 28, 0, usize::MAX).unwrap(),
        (112, 280)
    );
    assert!(smart_resize(20, 100, 28, 3136, 37632).is_err());
    assert!(smart_resize(28, 28 * 201, 28, 0, usize::MAX).is_err());
}

#[test]
fn bicubic_resize_is_bit_exact_with_pil() {
    for name in CASES {
        let case = Case::load(name);
        for (i, file) in case.image_files().iter().enumerate() {
            let want = case.t(&format!("image{i}_resized_rgb"));
            let (h, w, _) = want.dims3().unwrap();
            let src = to_rgb8(&image::open(fixture().join(file)).unwrap());
            let got = resize_bicubic_pil(&src, w, h);
            let want = want.flatten_all().unwrap().to_vec1::<u8>().unwrap();
            let differing = got
                .as_raw()
                .iter()
                .zip(&want)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(
                differing, 0,
                "{name} {file}: {differing} bytes differ from PIL"
            );
        }
    }
}

#[test]
fn processor_matches_ids_grids_positions_and_pixels() {
    let loaded = load_model();
    for name in CASES {
        let case = Case::load(name);
        let p = prompt(&loaded, &case);
        // The reference records the template before `<|image_pad|>` expansion.
        let mut collapsed = p.text.clone();
        while collapsed.contains("<|image_pad|><|image_pad|>") {
            collapsed = collapsed.replace("<|image_pad|><|image_pad|>", "<|image_pad|>");
        }
        assert_eq!(
            collapsed,
            case.json["prompt_text"].as_str().unwrap(),
            "{name}"
        );
        let want_ids = case.i64s("input_ids");
        let got_ids: Vec<i64> = p.input_ids.iter().map(|&x| x as i64).collect();
        assert_eq!(got_ids, want_ids, "{name}: input ids");
        let grids: Vec<i64> = p.grids.iter().flatten().map(|&x| x as i64).collect();
        assert_eq!(grids, case.i64s("image_grid_thw"), "{name}: grids");
        let pos = case.t("position_ids");
        for axis in 0..3 {
            let want = pos.get(axis).unwrap().to_vec1::<i64>().unwrap();
            assert_eq!(p.positions.ids[axis], want, "{name}: position axis {axis}");
        }
        assert_eq!(vec![p.positions.rope_delta], case.i64s("rope_deltas"));
        let pixels = p.pixel_tensor(&Device::Cpu).unwrap();
        let want = case.t("pixel_values");
        let d = f64::from(max_abs_diff(&pixels, want));
        // Bit-identical u8 pixels (checked above) go through rescale (×1/255) and
        // normalise ((x − mean)/std): at most 3 roundings per side in f32, or fewer,
        // so |Δ| ≤ 2·3·u_f32·max|value| whatever order either side uses.
        let max = flat(want)
            .iter()
            .fold(0f64, |m, v| m.max(f64::from(v.abs())));
        let bound = 6.0 * unit_roundoff(DType::F32) * max;
        assert!(d <= bound, "{name}: pixel values differ by {d} > {bound}");
    }
}

/// Every compared stage of one prompt, as flat groups in a fixed order: patch embeds,
/// each vision block, image embeds, each decoder hidden state, the prompt logits at the
/// recorded positions, the same from the reference's own input embeddings (decoder
/// alone), and the two largest logits of every position (`cols`, the argmax's inputs).
fn stages(model: &mut Qwen2VL, case: &Case, p: &Prompt, cols: &[[usize; 2]]) -> Vec<Vec<f32>> {
    let mut trace = PrefillTrace {
        vision: loupe_models::qwen2vl::vision::VisionTrace {
            patch_embeds: Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap(),
            block_outputs: vec![],
        },
        image_embeds: None,
        hidden_states: vec![],
    };
    let hidden = model
        .prefill_hidden(p, &|| false, Some(&mut trace))
        .unwrap()
        .unwrap();
    let mut out = vec![flat(&trace.vision.patch_embeds)];
    out.extend(trace.vision.block_outputs.iter().map(flat));
    out.push(flat(trace.image_embeds.as_ref().unwrap()));
    out.extend(trace.hidden_states.iter().map(flat));
    let rows: Vec<u32> = case
        .i64s("prompt_logits_positions")
        .iter()
        .map(|&x| x as u32)
        .collect();
    let rows = Tensor::new(rows.as_slice(), &Device::Cpu).unwrap();
    out.push(flat(
        &model
            .logits(&hidden.index_select(&rows, 0).unwrap())
            .unwrap(),
    ));
    let hs = case.t("llm_hidden_states");
    let dec = model
        .prefill_embeds(&hs.get(0).unwrap(), &p.positions)
        .unwrap();
    out.push(flat(
        &model.logits(&dec.index_select(&rows, 0).unwrap()).unwrap(),
    ));
    if !cols.is_empty() {
        out.push(pick(&model.logits(&hidden).unwrap(), cols));
    }
    out
}

#[test]
fn vision_tower_and_decoder_match_every_stage() {
    let loaded = load_model();
    let w = weights();
    for name in CASES {
        let case = Case::load(name);
        let p = prompt(&loaded, &case);
        let mut model = f32_model(&w);
        // The argmax at every position depends on its two largest logits only.
        let hidden = model.prefill_hidden(&p, &|| false, None).unwrap().unwrap();
        let cols = top2(&model.logits(&hidden).unwrap());
        let got = stages(&mut model, &case, &p, &cols);
        // Bounds (numerics.rs): candle and PyTorch each sum in their own order, so
        // relative to each other every weight carries an RMS ρ = u_f32·√(2N/3), N the
        // longest reduction; σ of each stage is measured under that ρ.
        let rho = relative_backward_error(DType::F32, longest_reduction(&p));
        let sens = Sensitivity::measure(&w, rho, &mut |w| {
            stages(&mut f32_model(w), &case, &p, &cols)
        });
        let blocks = case.t("vision_block_outputs");
        let hs = case.t("llm_hidden_states");
        let n_blocks = blocks.dim(0).unwrap();
        let n_hidden = hs.dim(0).unwrap();
        let mut want: Vec<(String, Tensor)> =
            vec![("patch embeds".into(), case.t("vision_patch_embeds").clone())];
        for i in 0..n_blocks {
            want.push((format!("vision block {i}"), blocks.get(i).unwrap()));
        }
        want.push(("image embeds".into(), case.t("image_embeds").clone()));
        for i in 0..n_hidden {
            want.push((format!("hidden state {i}"), hs.get(i).unwrap()));
        }
        want.push(("prompt logits".into(), case.t("prompt_logits").clone()));
        // The decoder alone, fed the reference's own input embeddings: isolates it from
        // the vision tower, whose last-bit differences the fixture's deliberately sharp
        // attention (q/k scaled ×3) amplifies end to end.
        want.push((
            "decoder-only logits".into(),
            case.t("prompt_logits").clone(),
        ));
        assert_eq!(got.len(), want.len() + 1, "{name}: stages");
        for (g, (stage, w)) in want.iter().enumerate() {
            let w = flat(w);
            assert_eq!(got[g].len(), w.len(), "{name}: {stage} shape");
            let d = got[g]
                .iter()
                .zip(&w)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
                .fold(0.0, f64::max);
            let bound = sens.bound(g);
            eprintln!("{name} {stage}: {d:.3e} (bound {bound:.3e})");
            assert!(d <= bound, "{name}: {stage} differs by {d:e} > {bound:e}");
        }
        // Argmax everywhere: an order-independent invariant wherever the top-2 margin
        // exceeds twice the bound on those two logits (each may move by the bound).
        // Where it does not, the pick is a near tie that another CPU may break the other
        // way: there the reference's pick must still be one of our two.
        let want_argmax = case.i64s("prompt_argmax");
        let margin_bound = 2.0 * sens.bound(want.len());
        let top = &got[want.len()];
        let mut near_ties = 0;
        for (pos, c) in cols.iter().enumerate() {
            let margin = f64::from(top[2 * pos]) - f64::from(top[2 * pos + 1]);
            if margin > margin_bound {
                assert_eq!(c[0] as i64, want_argmax[pos], "{name}: argmax at {pos}");
            } else {
                near_ties += 1;
                assert!(
                    c.contains(&(want_argmax[pos] as usize)),
                    "{name}: position {pos}: the reference's argmax is not in our top 2"
                );
            }
        }
        eprintln!(
            "{name}: argmax equal at {} positions, {near_ties} near ties (margin ≤ {margin_bound:.2e})",
            cols.len() - near_ties
        );
        assert!(near_ties * 20 < cols.len(), "{name}: {near_ties} near ties");
    }
}

#[test]
fn greedy_decoding_matches_and_the_cache_equals_recomputation() {
    let mut loaded = load_model();
    for name in CASES {
        let case = Case::load(name);
        let p = prompt(&loaded, &case);
        let want = case.i64s("greedy_tokens");
        let mut params = GenerateParams::from_config(&loaded.generation, want.len());
        params.stop_tokens.clear();
        let mut streamed = String::new();
        let mut count = 0;
        let out = generate(
            &mut loaded.model,
            &loaded.processor,
            &p,
            &params,
            &|| false,
            &mut |_, d| {
                count += 1;
                streamed.push_str(d);
            },
        )
        .unwrap();
        let got: Vec<i64> = out.tokens.iter().map(|&x| x as i64).collect();
        assert_eq!(got, want, "{name}: greedy tokens");
        assert_eq!(out.stop, StopReason::MaxTokens);
        assert_eq!(count, want.len());
        assert_eq!(streamed, out.text);
        assert_eq!(
            loaded.processor.decode(&out.tokens, true).unwrap(),
            case.json["greedy_text"].as_str().unwrap()
        );

        // Greedy tokens are an order-independent invariant only if every step's top-2
        // margin exceeds twice the bound on those logits (numerics.rs; ρ = u_f32·√(2N/3) of
        // f32 against the reference's order). Measure it, teacher-forced.
        let w = weights();
        let steps = teacher_forced(&mut f32_model(&w), &p, &out.tokens);
        let cols: Vec<[usize; 2]> = steps[..want.len()]
            .iter()
            .map(|l| top2(&l.unsqueeze(0).unwrap())[0])
            .collect();
        let n_max = longest_reduction(&p) + out.tokens.len();
        let rho = relative_backward_error(DType::F32, n_max);
        let groups = |steps: &[Tensor]| -> Vec<Vec<f32>> {
            let picked = steps[..cols.len()]
                .iter()
                .zip(&cols)
                .flat_map(|(l, c)| pick(&l.unsqueeze(0).unwrap(), &[*c]))
                .collect();
            vec![picked, flat(steps.last().unwrap())]
        };
        let sens = Sensitivity::measure(&w, rho, &mut |w| {
            groups(&teacher_forced(&mut f32_model(w), &p, &out.tokens))
        });
        let base = groups(&steps);
        for (i, c) in cols.iter().enumerate() {
            let margin = f64::from(base[0][2 * i]) - f64::from(base[0][2 * i + 1]);
            let need = 2.0 * sens.bound(0);
            eprintln!("{name} step {i}: margin {margin:.3e} (needs > {need:.3e})");
            assert!(
                margin > need,
                "{name}: step {i}: top-2 margin {margin:e} within {need:e}: greedy token order-dependent"
            );
            assert_eq!(c[0] as i64, want[i], "{name}: step {i}");
        }

        // Recompute the whole sequence without a cache: the last position's logits
        // must equal the cached decoding step's, within the same bound (two orders of
        // the same f32 sums: the cache splits the attention reductions differently).
        let cached = {
            loaded.model.prefill(&p, &|| false).unwrap().unwrap();
            let mut l = None;
            for &t in &out.tokens {
                l = Some(loaded.model.step(t).unwrap());
            }
            l.unwrap()
        };
        let mut full_ids = p.input_ids.clone();
        full_ids.extend_from_slice(&out.tokens);
        let positions = loupe_models::qwen2vl::rope_index::rope_positions(
            &full_ids, &p.grids, 151652, 151655, 2,
        )
        .unwrap();
        let full = Prompt {
            input_ids: full_ids,
            positions,
            ..p.clone()
        };
        let recomputed = loaded.model.prefill(&full, &|| false).unwrap().unwrap();
        let d = f64::from(max_abs_diff(&cached, &recomputed));
        let bound = sens.bound(1);
        eprintln!("{name} cache vs recomputation: {d:.3e} (bound {bound:.3e})");
        assert!(
            d <= bound,
            "{name}: cached decoding differs from recomputation by {d} > {bound}"
        );
    }
}

#[test]
fn cancel_stops_before_the_first_token() {
    let mut loaded = load_model();
    let case = Case::load("reference");
    let p = prompt(&loaded, &case);
    let params = GenerateParams::from_config(&loaded.generation, 16);
    let r = generate(
        &mut loaded.model,
        &loaded.processor,
        &p,
        &params,
        &|| true,
        &mut |_, _| {},
    );
    assert!(matches!(r, Err(Error::Cancelled)));
    // Cancel after 3 tokens: exactly 3 come out.
    let n = std::cell::Cell::new(0);
    let out = generate(
        &mut loaded.model,
        &loaded.processor,
        &p,
        &params,
        &|| n.get() >= 3,
        &mut |_, _| n.set(n.get() + 1),
    )
    .unwrap();
    assert_eq!(out.tokens.len(), 3);
    assert_eq!(out.stop, StopReason::Cancelled);
}

#[test]
fn bad_checkpoints_give_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for f in ["config.json", "tokenizer.json", "preprocessor_config.json"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    // Missing weights.
    let e = loader::resolve(&ModelSource::Dir(dir.to_path_buf())).unwrap_err();
    assert!(e.to_string().contains("model.safetensors"), "{e}");
    // Truncated weights.
    let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let files = loader::resolve(&ModelSource::Dir(dir.to_path_buf())).unwrap();
    let e = loader::load(&files, DType::F32, &Device::Cpu, &|_, _| {}, &|| false)
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("truncated"),
        "{msg}"
    );
    // A broken config.
    std::fs::write(dir.join("config.json"), "{\"hidden_size\": 32").unwrap();
    let e = loader::load(&files, DType::F32, &Device::Cpu, &|_, _| {}, &|| false)
        .err()
        .unwrap();
    assert!(e.to_string().contains("config.json"), "{e}");
    // A hub id that is not cached, offline.
    let e = {
        let cache = tmp.path().join("hub");
        temp_env(
            &[
                ("HF_HUB_OFFLINE", "1"),
                ("HF_HUB_CACHE", cache.to_str().unwrap()),
            ],
            || loader::resolve(&ModelSource::parse("Michael4933/Migician")).unwrap_err(),
        )
    };
    let msg = e.to_string();
    assert!(
        msg.contains("Michael4933/Migician") && msg.contains("looked in"),
        "{msg}"
    );
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
fn loading_reports_progress_in_bytes() {
    let files = loader::resolve(&ModelSource::Dir(fixture())).unwrap();
    let last = std::sync::Mutex::new((0u64, 0u64));
    let calls = std::sync::atomic::AtomicUsize::new(0);
    loader::load(
        &files,
        DType::F32,
        &Device::Cpu,
        &|done, total| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *last.lock().unwrap() = (done, total);
        },
        &|| false,
    )
    .unwrap();
    let (done, total) = *last.lock().unwrap();
    let file_len = std::fs::metadata(&files.weights[0]).unwrap().len();
    // Every tensor is read once; the header is the only part not counted.
    assert_eq!(done, total);
    assert!(
        total < file_len && total > file_len - 64 * 1024,
        "{total} vs {file_len}"
    );
    assert!(calls.load(std::sync::atomic::Ordering::Relaxed) > 10);
    // A cancelled load is reported as such.
    let e = loader::load(&files, DType::F32, &Device::Cpu, &|_, _| {}, &|| true)
        .err()
        .unwrap();
    assert!(matches!(e, Error::Cancelled), "{e}");
}

#[test]
fn tokenizer_matches_the_transformers_test_vector() {
    let loaded = load_model();
    // From transformers' Qwen2-VL integration test (reference doc, section 4.7).
    let text = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|>";
    let ids = loaded.processor.encode(text).unwrap();
    assert_eq!(
        ids,
        vec![
            151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198,
            151652, 151655, 151655
        ]
    );
    assert_eq!(loaded.processor.decode(&ids, false).unwrap(), text);
    // Special tokens vanish with skip_special_tokens, as Migician's evaluation decodes.
    let boxed = "<|box_start|>(1,2),(3,4)<|box_end|>";
    let ids = loaded.processor.encode(boxed).unwrap();
    assert_eq!(ids.first(), Some(&151648));
    assert_eq!(ids.last(), Some(&151649));
    assert_eq!(loaded.processor.decode(&ids, true).unwrap(), "(1,2),(3,4)");
}

#[test]
fn hub_ids_resolve_through_the_local_cache() {
    // The layout hf-hub and huggingface_hub share: refs/main names a snapshot folder.
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("models--tiny--qwen2vl");
    let snap = repo.join("snapshots").join("0123abcd");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "preprocessor_config.json",
        "generation_config.json",
    ] {
        std::fs::copy(fixture().join(f), snap.join(f)).unwrap();
    }
    let files = temp_env(
        &[
            ("HF_HUB_OFFLINE", "1"),
            ("HF_HUB_CACHE", tmp.path().to_str().unwrap()),
        ],
        || loader::resolve(&ModelSource::parse("tiny/qwen2vl")),
    )
    .unwrap();
    assert_eq!(files.config, snap.join("config.json"));
    assert_eq!(files.weights, vec![snap.join("model.safetensors")]);
    assert!(files.generation.is_some());
    // Revisions and local folders parse as such.
    assert_eq!(
        ModelSource::parse("a/b@dev"),
        ModelSource::Hub {
            repo: "a/b".into(),
            revision: Some("dev".into())
        }
    );
    assert!(matches!(ModelSource::parse("./a/b"), ModelSource::Dir(_)));
}

/// The prompt's last logits with every position id on one axis (the plain 1-D RoPE of
/// Qwen2, not Qwen2-VL's M-RoPE): the broken model the bounds must not let through.
fn last_logits_with_1d_rope(model: &mut Qwen2VL, p: &Prompt) -> Tensor {
    let n = p.input_ids.len() as i64;
    let line: Vec<i64> = (0..n).collect();
    let broken = Prompt {
        positions: loupe_models::qwen2vl::rope_index::RopePositions {
            ids: [line.clone(), line.clone(), line],
            rope_delta: 0,
        },
        ..p.clone()
    };
    model.prefill(&broken, &|| false).unwrap().unwrap()
}

#[test]
fn half_precision_stays_close_to_f32() {
    let files = loader::resolve(&ModelSource::Dir(fixture())).unwrap();
    let case = Case::load("reference");
    let want = case.t("prompt_logits").get(3).unwrap();
    let w = weights();
    let broken = {
        let loaded = load_model();
        let p = prompt(&loaded, &case);
        last_logits_with_1d_rope(&mut f32_model(&w), &p)
    };
    let broken_d = f64::from(max_abs_diff(&broken, &want));
    for dtype in [DType::BF16, DType::F16] {
        let mut loaded = loader::load(&files, dtype, &Device::Cpu, &|_, _| {}, &|| false).unwrap();
        let p = prompt(&loaded, &case);
        let logits = loaded.model.prefill(&p, &|| false).unwrap().unwrap();
        let d = f64::from(max_abs_diff(&logits, &want));
        // The bound (numerics.rs): weights, matmul inputs and outputs, norms and
        // residuals rounded to the half type with f32 accumulation: ρ = √(4u_half²/3 +
        // 2N·u_f32²/3); σ of the last logits measured under that ρ in f32.
        let rho = relative_backward_error(dtype, longest_reduction(&p));
        let sens = Sensitivity::measure(&w, rho, &mut |w| {
            vec![flat(&f32_model(w).prefill(&p, &|| false).unwrap().unwrap())]
        });
        let bound = sens.bound(0);
        eprintln!(
            "{dtype:?}: last logits differ by {d:.4} (bound {bound:.4}, u = {:e}, ρ = {:.3e}); 1-D RoPE: {broken_d:.4}",
            unit_roundoff(dtype),
            rho.matrix()
        );
        assert!(d <= bound, "{dtype:?}: last logits differ by {d} > {bound}");
        // The bound still catches a broken model.
        assert!(
            broken_d > bound,
            "{dtype:?}: the bound {bound} would pass plain 1-D RoPE ({broken_d})"
        );
        // Invariant: the next token, where the f32 reference's top-2 margin exceeds
        // twice the bound.
        let [a, b] = top2(&want.unsqueeze(0).unwrap())[0];
        let wv = flat(&want);
        if f64::from(wv[a] - wv[b]) > 2.0 * bound {
            assert_eq!(
                top2(&logits.unsqueeze(0).unwrap())[0][0],
                a,
                "{dtype:?} argmax"
            );
        }
    }
}

#[test]
fn the_renested_weight_layout_of_newer_transformers_loads_too() {
    let tmp = tempfile::tempdir().unwrap();
    let weights =
        candle_core::safetensors::load(fixture().join("model.safetensors"), &Device::Cpu).unwrap();
    let renamed: HashMap<String, Tensor> = weights
        .into_iter()
        .map(|(k, v)| {
            let k = if let Some(rest) = k.strip_prefix("visual.") {
                format!("model.visual.{rest}")
            } else if let Some(rest) = k.strip_prefix("model.") {
                format!("model.language_model.{rest}")
            } else {
                k
            };
            (k, v)
        })
        .collect();
    assert!(renamed.contains_key("model.language_model.embed_tokens.weight"));
    candle_core::safetensors::save(&renamed, tmp.path().join("model.safetensors")).unwrap();
    for f in ["config.json", "tokenizer.json", "preprocessor_config.json"] {
        std::fs::copy(fixture().join(f), tmp.path().join(f)).unwrap();
    }
    let files = loader::resolve(&ModelSource::Dir(tmp.path().to_path_buf())).unwrap();
    let mut loaded = loader::load(&files, DType::F32, &Device::Cpu, &|_, _| {}, &|| false).unwrap();
    let case = Case::load("reference_3img");
    let p = prompt(&loaded, &case);
    let logits = loaded.model.prefill(&p, &|| false).unwrap().unwrap();
    // Same weights, same code, same summation order: the released layout's model must
    // give the very same bits (its parity with transformers is checked above).
    let want = load_model().model.prefill(&p, &|| false).unwrap().unwrap();
    let d = max_abs_diff(&logits, &want);
    assert!(d == 0.0, "re-nested weights: logits differ by {d}");
}

#[test]
fn sampling_top_k_one_is_greedy_and_repetition_penalty_breaks_repeats() {
    use loupe_models::qwen2vl::generate::Decoding;
    let mut loaded = load_model();
    let case = Case::load("reference");
    let p = prompt(&loaded, &case);
    let want = case.i64s("greedy_tokens");
    let base = GenerateParams {
        max_new_tokens: want.len(),
        decoding: Decoding::Sample {
            temperature: 0.7,
            top_k: Some(1),
            top_p: 1.0,
            seed: 7,
        },
        repetition_penalty: 1.0,
        stop_tokens: vec![],
    };
    let run = |loaded: &mut Loaded, params: &GenerateParams| -> Vec<i64> {
        generate(
            &mut loaded.model,
            &loaded.processor,
            &p,
            params,
            &|| false,
            &mut |_, _| {},
        )
        .unwrap()
        .tokens
        .iter()
        .map(|&t| t as i64)
        .collect()
    };
    assert_eq!(
        run(&mut loaded, &base),
        want,
        "top-k 1 sampling must be greedy"
    );
    // The greedy answer repeats tokens ("Sweden Sweden Sweden"); a strong penalty on
    // every token already in the context forbids that.
    assert!(want.windows(2).any(|w| w[0] == w[1]));
    let penalised = run(
        &mut loaded,
        &GenerateParams {
            repetition_penalty: 50.0,
            decoding: Decoding::Greedy,
            ..base.clone()
        },
    );
    let mut seen = std::collections::HashSet::new();
    assert!(penalised.iter().all(|t| seen.insert(*t)), "{penalised:?}");
    // Seeded sampling at a high temperature is reproducible and leaves greedy.
    let hot = GenerateParams {
        decoding: Decoding::Sample {
            temperature: 5.0,
            top_k: None,
            top_p: 0.95,
            seed: 3,
        },
        ..base.clone()
    };
    let a = run(&mut loaded, &hot);
    assert_eq!(a, run(&mut loaded, &hot));
    assert_ne!(a, want);
}

#[test]
fn nested_config_layouts_of_newer_transformers_parse_alike() {
    use loupe_models::qwen2vl::Config;
    use loupe_models::qwen2vl::image_processor::ImageProcessorConfig;
    let text = std::fs::read_to_string(fixture().join("config.json")).unwrap();
    let flat = Config::from_json(&text, "config.json").unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let obj = v.as_object_mut().unwrap();
    let mut nested = serde_json::Map::new();
    for k in [
        "hidden_size",
        "num_hidden_layers",
        "rope_scaling",
        "vocab_size",
    ] {
        nested.insert(k.into(), obj.remove(k).unwrap());
    }
    obj.insert("text_config".into(), nested.into());
    let cfg = Config::from_json(&v.to_string(), "config.json").unwrap();
    assert_eq!(cfg.hidden_size, flat.hidden_size);
    assert_eq!(cfg.rope_scaling.mrope_section, vec![2, 3, 3]);
    assert_eq!(cfg.vision_config.patch_size(), 14);
    // A wrong section sum is rejected, naming the file.
    let bad = text.replace("[\n      2,\n      3,\n      3\n    ]", "[2, 3, 4]");
    assert_ne!(bad, text);
    let e = Config::from_json(&bad, "x/config.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x/config.json") && e.contains("mrope_section"),
        "{e}"
    );
    // Pixel limits nested in `size`.
    let p =
        ImageProcessorConfig::from_json(r#"{"size": {"min_pixels": 10, "max_pixels": 20}}"#, "p")
            .unwrap();
    assert_eq!((p.min_pixels, p.max_pixels), (10, 20));
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

//! Qwen2-VL on candle against transformers 4.45.2: every stage of the committed tiny
//! random-weight fixture (`models/tools/make_qwen2vl_fixture.py`) must match.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use loupe_models::qwen2vl::chat::grounding_messages;
use loupe_models::qwen2vl::generate::{GenerateParams, StopReason, generate};
use loupe_models::qwen2vl::image_processor::{resize_bicubic_pil, smart_resize, to_rgb8};
use loupe_models::qwen2vl::loader::{self, Loaded, ModelSource};
use loupe_models::qwen2vl::{Error, PrefillTrace, Prompt};

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
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
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
        let d = max_abs_diff(&pixels, case.t("pixel_values"));
        assert!(d <= 1e-5, "{name}: pixel values differ by {d}");
    }
}

#[test]
fn vision_tower_and_decoder_match_every_stage() {
    let mut loaded = load_model();
    for name in CASES {
        let case = Case::load(name);
        let p = prompt(&loaded, &case);
        let mut trace = PrefillTrace {
            vision: loupe_models::qwen2vl::vision::VisionTrace {
                patch_embeds: Tensor::zeros(1, DType::F32, &Device::Cpu).unwrap(),
                block_outputs: vec![],
            },
            image_embeds: None,
            hidden_states: vec![],
        };
        let hidden = loaded
            .model
            .prefill_hidden(&p, &|| false, Some(&mut trace))
            .unwrap()
            .unwrap();
        let d = max_abs_diff(&trace.vision.patch_embeds, case.t("vision_patch_embeds"));
        eprintln!("{name} patch {d}");
        assert!(d <= 1e-4, "{name}: patch embeds differ by {d}");
        let blocks = case.t("vision_block_outputs");
        for (i, got) in trace.vision.block_outputs.iter().enumerate() {
            let d = max_abs_diff(got, &blocks.get(i).unwrap());
            eprintln!("{name} block {i} {d}");
            assert!(d <= 1e-4, "{name}: vision block {i} differs by {d}");
        }
        let d = max_abs_diff(trace.image_embeds.as_ref().unwrap(), case.t("image_embeds"));
        assert!(d <= 1e-4, "{name}: image embeds differ by {d}");
        let hs = case.t("llm_hidden_states");
        assert_eq!(trace.hidden_states.len(), hs.dim(0).unwrap());
        for (i, got) in trace.hidden_states.iter().enumerate() {
            let d = max_abs_diff(got, &hs.get(i).unwrap());
            eprintln!("{name} hidden {i} {d}");
            assert!(d <= 1e-4, "{name}: hidden state {i} differs by {d}");
        }
        // Logits at the recorded positions, and the argmax everywhere.
        let positions = case.i64s("prompt_logits_positions");
        let rows: Vec<u32> = positions.iter().map(|&x| x as u32).collect();
        let rows = Tensor::new(rows.as_slice(), &Device::Cpu).unwrap();
        let logits = loaded
            .model
            .logits(&hidden.index_select(&rows, 0).unwrap())
            .unwrap();
        let d = max_abs_diff(&logits, case.t("prompt_logits"));
        // The decoder alone, fed the reference's own input embeddings: this isolates it
        // from the vision tower's last-bit differences, which its sharp attention
        // amplifies (see the README's numerics section).
        let dec = loaded
            .model
            .prefill_embeds(&hs.get(0).unwrap(), &p.positions)
            .unwrap();
        let dec_logits = loaded
            .model
            .logits(&dec.index_select(&rows, 0).unwrap())
            .unwrap();
        let d_dec = max_abs_diff(&dec_logits, case.t("prompt_logits"));
        eprintln!("{name} decoder-only logits {d_dec}, end-to-end {d}");
        assert!(d_dec <= 1e-4, "{name}: decoder logits differ by {d_dec}");
        // End to end, the vision tower's ~5e-6 (f32 summation order in 1176-long dot
        // products) is amplified by the fixture's deliberately sharp attention
        // (q/k scaled ×3): measured 1.8e-4 and 6.8e-5 on logits of magnitude ~27.
        assert!(
            d <= 2.5e-4,
            "{name}: end-to-end prompt logits differ by {d}"
        );
        let all = loaded.model.logits(&hidden).unwrap();
        let argmax: Vec<i64> = all
            .argmax(1)
            .unwrap()
            .to_vec1::<u32>()
            .unwrap()
            .iter()
            .map(|&x| x as i64)
            .collect();
        assert_eq!(argmax, case.i64s("prompt_argmax"), "{name}: argmax");
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

        // Recompute the whole sequence without a cache: the last position's logits
        // must equal the cached decoding step's.
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
        let d = max_abs_diff(&cached, &recomputed);
        assert!(
            d <= 1e-4,
            "{name}: cached decoding differs from recomputation by {d}"
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

#[test]
fn half_precision_stays_close_to_f32() {
    let files = loader::resolve(&ModelSource::Dir(fixture())).unwrap();
    let case = Case::load("reference");
    for dtype in [DType::BF16, DType::F16] {
        let mut loaded = loader::load(&files, dtype, &Device::Cpu, &|_, _| {}, &|| false).unwrap();
        let p = prompt(&loaded, &case);
        let hidden = loaded
            .model
            .prefill_hidden(&p, &|| false, None)
            .unwrap()
            .unwrap();
        let last = hidden.narrow(0, hidden.dim(0).unwrap() - 1, 1).unwrap();
        let logits = loaded.model.logits(&last).unwrap().squeeze(0).unwrap();
        let want = case.t("prompt_logits").get(3).unwrap();
        let d = max_abs_diff(&logits, &want);
        eprintln!("{dtype:?}: last logits differ by {d}");
        // Logits span ±27; bf16 keeps 8 mantissa bits through 3 layers and 2 blocks.
        let bound = if dtype == DType::BF16 { 1.5 } else { 0.25 };
        assert!(d <= bound, "{dtype:?}: last logits differ by {d}");
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
    let want = case.t("prompt_logits").get(0).unwrap();
    let d = max_abs_diff(&logits, &want);
    assert!(d <= 2.5e-4, "re-nested weights: logits differ by {d}");
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

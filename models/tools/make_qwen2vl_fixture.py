#!/usr/bin/env python3
"""Build the tiny random-weight Qwen2-VL parity fixture: models/tests/fixtures/qwen2vl-tiny/.

A Qwen2VLForConditionalGeneration (transformers 4.45.2, the version Migician pins) with
small widths and few layers but the real vocabulary size (151936, as Qwen2-VL-2B), the
real special-token ids, the real Qwen2 tokenizer (built from qwen.tiktoken by
build_qwen2_tokenizer.py) and the real chat template. Weights come from a fixed-seed
numpy generator, so they are byte-identical on any machine. The script writes the model
folder, copies of the test images, and for each test case the processor outputs, the
M-RoPE position ids, logits, greedy tokens and a few intermediate tensors, so that the
Rust (candle) implementation can be checked without Python.

Usage (from the repository root):
    python models/tools/make_qwen2vl_fixture.py            # (re)generate everything
    python models/tools/make_qwen2vl_fixture.py --verify   # only re-check the committed files

See models/tools/README.md for what each output holds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from pathlib import Path

# Keep CPU use modest and results reproducible; must be set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURE = REPO / "models" / "tests" / "fixtures" / "qwen2vl-tiny"
sys.path.insert(0, str(HERE))
import build_qwen2_tokenizer as btok  # noqa: E402

# Seed of the numpy generator that draws every weight. Picked among 0..7 (with the scales in
# init_weights) for varied greedy tokens and the largest top-1/top-2 logit margins in both cases.
SEED = 2
VOCAB_SIZE = 151936  # Qwen2-VL-2B's padded embedding size (7B: 152064); real ids 0..151656 all fit

# --- tiny model configuration (shapes in the spirit of transformers' Qwen2-VL tests) -----------------
TEXT = dict(
    hidden_size=32,
    intermediate_size=37,  # odd on purpose, as in transformers' tests
    num_hidden_layers=3,
    num_attention_heads=2,  # head_dim 16
    num_key_value_heads=1,  # GQA, 2 query heads per kv head
    rope_theta=1000000.0,
    rms_norm_eps=1e-06,
    max_position_embeddings=32768,
    # 16/24/24 of the real model scaled to head_dim 16: sections sum to head_dim / 2 = 8
    mrope_section=[2, 3, 3],
)
VISION = dict(
    depth=2,
    embed_dim=48,  # != hidden_size on purpose (real: 1280 vs 3584); the merger maps 4*48 -> 32
    num_heads=3,  # head_dim 16, rotary dim 8 (2 h + 2 w frequencies, tiled)
    mlp_ratio=4,
    hidden_act="quick_gelu",
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
)
MIN_PIXELS = 56 * 56  # 3136, the released value
MAX_PIXELS = 48 * 28 * 28  # 37632: at most 48 LLM tokens (192 ViT patches) per image

IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]

CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)

# Image copies: (fixture file name, source file, size of the copy (w, h)). The copies are
# LANCZOS downscales of the scikit-image samples in shared/data/images, saved as PNG (lossless,
# so Rust decodes exactly the pixels Python saw; JPEG decoders differ slightly).
IMAGES = {
    # 189x126: 126/28 = 4.5 rounds (half to even) to 4 -> resized 112x196 (h x w), no max/min rescale
    "cat.png": ("chelsea.png", (189, 126)),
    # 320x213: rounds to 224x308 = 68992 > MAX_PIXELS -> floor path -> 140x224
    "rocket.png": ("rocket.jpg", (320, 213)),
    # 45x30: rounds to 28x56 = 1568 < MIN_PIXELS -> ceil path -> 56x84
    "coffee_small.png": ("coffee.png", (45, 30)),
}

CASES = [
    dict(
        name="two_images",
        reference="reference",
        images=["cat.png", "rocket.png"],
        text="Locate the cat in the first image.",
        logits_last=4,
    ),
    dict(
        name="three_images",
        reference="reference_3img",
        images=["rocket.png", "coffee_small.png", "cat.png"],
        # Migician's eval suffix (with its duplicated <|box_start|> and typo), so special tokens appear in user text
        text="Locate the cup in the second image. Format:<|box_start|>(x1,y1),(x2,y2)<|box_start|>. "
        "Don't generate addtional words.",
        logits_last=1,
    ),
]
NUM_GREEDY = 16
TOPK = 8
STOP_IDS = (151645, 151643)


# ------------------------------------------------------------------------------------------------
# configuration files


def config_json() -> dict:
    """Laid out like the released Qwen2-VL config.json (rope_scaling type "mrope", in_chans alias)."""
    return {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "vision_token_id": 151654,
        "image_token_id": 151655,
        "video_token_id": 151656,
        "hidden_act": "silu",
        "hidden_size": TEXT["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": TEXT["intermediate_size"],
        "max_position_embeddings": TEXT["max_position_embeddings"],
        "max_window_layers": TEXT["num_hidden_layers"],
        "model_type": "qwen2_vl",
        "num_attention_heads": TEXT["num_attention_heads"],
        "num_hidden_layers": TEXT["num_hidden_layers"],
        "num_key_value_heads": TEXT["num_key_value_heads"],
        "rms_norm_eps": TEXT["rms_norm_eps"],
        "rope_theta": TEXT["rope_theta"],
        "sliding_window": TEXT["max_position_embeddings"],
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "transformers_version": "4.45.2",
        "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {
            "depth": VISION["depth"],
            "embed_dim": VISION["embed_dim"],
            "hidden_act": VISION["hidden_act"],
            "mlp_ratio": VISION["mlp_ratio"],
            "num_heads": VISION["num_heads"],
            "in_channels": 3,
            "in_chans": 3,
            "hidden_size": TEXT["hidden_size"],
            "patch_size": VISION["patch_size"],
            "spatial_merge_size": VISION["spatial_merge_size"],
            "spatial_patch_size": VISION["patch_size"],
            "temporal_patch_size": VISION["temporal_patch_size"],
        },
        "rope_scaling": {"type": "mrope", "mrope_section": TEXT["mrope_section"]},
        "vocab_size": VOCAB_SIZE,
    }


def generation_config_json() -> dict:
    # As Qwen2-VL-7B-Instruct ships it (top_k 1 => effectively greedy); repetition_penalty 1.0.
    return {
        "bos_token_id": 151643,
        "pad_token_id": 151643,
        "do_sample": True,
        "eos_token_id": [151645, 151643],
        "repetition_penalty": 1.0,
        "temperature": 0.01,
        "top_k": 1,
        "top_p": 0.001,
        "transformers_version": "4.45.2",
    }


def preprocessor_config_json() -> dict:
    return {
        "min_pixels": MIN_PIXELS,
        "max_pixels": MAX_PIXELS,
        "patch_size": VISION["patch_size"],
        "temporal_patch_size": VISION["temporal_patch_size"],
        "merge_size": VISION["spatial_merge_size"],
        "image_mean": IMAGE_MEAN,
        "image_std": IMAGE_STD,
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
    }


def tokenizer_config_json() -> dict:
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(i): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i, t in btok.SPECIAL_TOKENS
        },
        "additional_special_tokens": [t for _, t in btok.SPECIAL_TOKENS if t != "<|endoftext|>"],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# model


def init_weights(model: torch.nn.Module, seed: int) -> None:
    """Deterministic, platform-independent init (numpy PCG64, float64 draws cast to float32).

    Every tensor is random, norm weights and biases included (transformers' own init sets them to
    1 and 0, which would hide a loader that forgets them). Linear/conv weights ~ N(0, 1/fan_in),
    so activations stay O(1); embeddings ~ N(0, 1) and rounded to float16 (they are stored as f16).
    In the LLM, q/k projections are scaled by 3 (sharp, position-dependent attention, so M-RoPE
    errors show) and o_proj/down_proj by 2 (residual branches outweigh the token embedding, so
    greedy decoding neither echoes its input nor settles on one token at once).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    params = dict(model.named_parameters())  # tied lm_head.weight is not listed separately
    for name in sorted(params):
        p = params[name]
        shape = tuple(p.shape)
        if name == "model.embed_tokens.weight":
            w = rng.standard_normal(shape).astype(np.float16).astype(np.float32)
        elif p.ndim == 1 and name.endswith("weight"):  # RMSNorm / LayerNorm scale
            w = 1.0 + 0.1 * rng.standard_normal(shape)
        elif p.ndim == 1:  # biases (linear, LayerNorm)
            w = 0.1 * rng.standard_normal(shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            scale = 1.0
            if name.startswith("model.layers.") and name.endswith(("q_proj.weight", "k_proj.weight")):
                scale = 3.0
            elif name.startswith("model.layers.") and name.endswith(("o_proj.weight", "down_proj.weight")):
                scale = 2.0
            w = scale * rng.standard_normal(shape) / math.sqrt(fan_in)
        with torch.no_grad():
            p.copy_(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)))


def save_model_safetensors(model: torch.nn.Module, path: Path) -> dict:
    from safetensors.torch import save_file

    sd = model.state_dict()
    tensors = {}
    for k, v in sd.items():
        if k == "lm_head.weight":  # tied to model.embed_tokens.weight, not saved (as Qwen2-VL-2B)
            assert v.data_ptr() == sd["model.embed_tokens.weight"].data_ptr()
            continue
        v = v.detach().contiguous()
        if k == "model.embed_tokens.weight":
            v16 = v.to(torch.float16)
            assert torch.equal(v16.to(torch.float32), v), "embedding not exactly representable in f16"
            v = v16
        tensors[k] = v.clone()
    save_file(tensors, str(path), metadata={"format": "pt"})
    return {k: (str(v.dtype).replace("torch.", ""), list(v.shape)) for k, v in sorted(tensors.items())}


def load_model(folder: Path):
    from transformers import Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(
        str(folder), torch_dtype=torch.float32, attn_implementation="eager"
    )
    # transformers 4.45.2 keeps the stored float16 dtype of model.embed_tokens.weight (and so of the
    # tied lm_head) even with torch_dtype=float32; upcast (exact) so everything runs in float32.
    model.to(torch.float32)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.eval()
    return model


# ------------------------------------------------------------------------------------------------
# independent re-implementations used as cross-checks


def smart_resize_ref(h: int, w: int, factor: int = 28, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS):
    h_bar = round(h / factor) * factor  # Python round: half to even
    w_bar = round(w / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        h_bar = math.floor(h / beta / factor) * factor
        w_bar = math.floor(w / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar = math.ceil(h * beta / factor) * factor
        w_bar = math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


def pixel_rows_ref(resized_rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 (already resized) -> (gh*gw, 1176) rows, the processor's patch layout."""
    x = resized_rgb.astype(np.float64) * (1 / 255)  # rescale in float64 (uint8 * python float) ...
    x = x.astype(np.float32)  # ... then cast to float32
    x = (x - np.array(IMAGE_MEAN, np.float32)) / np.array(IMAGE_STD, np.float32)  # normalise in float32
    x = x.transpose(2, 0, 1)  # C,H,W
    x = np.stack([x, x])  # temporal_patch_size = 2 identical frames
    c, ps, ms = 3, VISION["patch_size"], VISION["spatial_merge_size"]
    gh, gw = x.shape[2] // ps, x.shape[3] // ps
    x = x.reshape(1, 2, c, gh // ms, ms, ps, gw // ms, ms, ps)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # t, bh, bw, mh, mw, C, tp, py, px
    return x.reshape(gh * gw, c * 2 * ps * ps)


def rope_index_ref(ids: list[int], grids: list[list[int]]) -> tuple[np.ndarray, int]:
    """Plain re-statement of get_rope_index for one unpadded sequence of images (no videos)."""
    pos = np.zeros((3, len(ids)), dtype=np.int64)
    nxt, i, img = 0, 0, 0
    while i < len(ids):
        if ids[i] == 151655:  # first <|image_pad|> of a block
            t, h, w = grids[img]
            gh, gw = h // 2, w // 2
            for k in range(t * gh * gw):
                pos[:, i + k] = (nxt + k // (gh * gw), nxt + (k // gw) % gh, nxt + k % gw)
            nxt = nxt + max(t, gh, gw)  # next text position: start + max extent, not + token count
            i += t * gh * gw
            img += 1
        else:
            pos[:, i] = nxt
            nxt += 1
            i += 1
    return pos, int(pos.max()) + 1 - len(ids)


# ------------------------------------------------------------------------------------------------
# test cases


def make_image_copies(src_dir: Path | None) -> None:
    for name, (src, size) in IMAGES.items():
        dst = FIXTURE / name
        if src_dir is None:
            if not dst.exists():
                sys.exit(f"{dst} missing and no source image folder found (pass --images)")
            continue
        im = Image.open(src_dir / src).convert("RGB")
        im = im.resize(size, resample=Image.LANCZOS)
        im.save(dst, format="PNG", optimize=False, compress_level=9)


def build_messages(case: dict) -> list[dict]:
    content = [{"type": "image"} for _ in case["images"]]
    content.append({"type": "text", "text": case["text"]})
    return [{"role": "user", "content": content}]


def run_case(case: dict, model, processor) -> tuple[dict, dict]:
    images = [Image.open(FIXTURE / f) for f in case["images"]]
    for im in images:
        im.load()
    text = processor.apply_chat_template(build_messages(case), tokenize=False, add_generation_prompt=True)
    expected = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        + "<|vision_start|><|image_pad|><|vision_end|>" * len(images)
        + case["text"]
        + "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert text == expected, f"chat template output {text!r} != {expected!r}"
    inputs = processor(text=[text], images=images, return_tensors="pt")
    input_ids = inputs["input_ids"]
    pixel_values = inputs["pixel_values"]
    grid = inputs["image_grid_thw"]
    assert input_ids.shape[0] == 1 and bool((inputs["attention_mask"] == 1).all())
    assert pixel_values.dtype == torch.float32 and pixel_values.shape[1] == 1176
    ids = input_ids[0].tolist()
    assert ids[:14] == btok.QWEN2VL_PROMPT_PREFIX[1][:14], ids[:14]

    # --- cross-check the processor against the documented recipe (smart_resize + PIL bicubic + normalise)
    resized, rows = [], []
    for im, g in zip(images, grid.tolist()):
        w, h = im.size
        rh, rw = smart_resize_ref(h, w)
        assert [1, rh // 14, rw // 14] == g, (im.size, (rh, rw), g)
        r = np.asarray(im.convert("RGB").resize((rw, rh), resample=Image.BICUBIC))
        resized.append(r)
        rows.append(pixel_rows_ref(r))
    rows = np.concatenate(rows)
    diff = float(np.abs(rows - pixel_values.numpy()).max())
    assert diff == 0.0, f"pixel_values differ from the reference recipe by {diff}"
    n_tokens = [int(np.prod(g)) // 4 for g in grid.tolist()]
    assert ids.count(151655) == sum(n_tokens)

    # --- M-RoPE positions
    position_ids, rope_deltas = model.get_rope_index(input_ids, grid, None, inputs["attention_mask"])
    pos_ref, delta_ref = rope_index_ref(ids, grid.tolist())
    assert np.array_equal(position_ids[:, 0, :].numpy(), pos_ref), "get_rope_index != reference restatement"
    assert int(rope_deltas[0, 0]) == delta_ref

    # --- intermediate vision tensors via hooks
    captured: dict[str, list] = {"blocks": []}
    hooks = [
        model.visual.patch_embed.register_forward_hook(lambda m, i, o: captured.__setitem__("patch", o.detach())),
        model.visual.merger.register_forward_hook(lambda m, i, o: captured.__setitem__("merger", o.detach())),
    ]
    for blk in model.visual.blocks:
        hooks.append(blk.register_forward_hook(lambda m, i, o: captured["blocks"].append(o.detach())))
    # NB: in transformers 4.45.2 Qwen2VLForConditionalGeneration.forward does NOT call get_rope_index when
    # position_ids is None: it falls back to 1-D positions (arange) on all three axes. Only generate()
    # (prepare_inputs_for_generation) computes M-RoPE ids. So pass them explicitly.
    with torch.no_grad():
        out = model(**inputs, position_ids=position_ids, output_hidden_states=True, return_dict=True)
    for h in hooks:
        h.remove()
    logits = out.logits[0]  # (L, V) f32
    L = logits.shape[0]
    hidden = torch.stack([h[0] for h in out.hidden_states])  # (layers + 1, L, hidden)

    # how much M-RoPE matters here: the same prefill with 1-D positions
    with torch.no_grad():
        out_1d = model(**inputs, return_dict=True)
    diff_1d = float((out_1d.logits[0, -1] - logits[-1]).abs().max())
    assert diff_1d > 1e-3, "1-D and M-RoPE positions give the same logits: the fixture would not test M-RoPE"

    # --- greedy decoding: (a) full recompute each step, no cache
    seq = input_ids.clone()
    greedy, top2 = [], []
    with torch.no_grad():
        for _ in range(NUM_GREEDY):
            pos, _ = model.get_rope_index(seq, grid, None, torch.ones_like(seq))
            o = model(
                input_ids=seq,
                attention_mask=torch.ones_like(seq),
                pixel_values=pixel_values,
                image_grid_thw=grid,
                position_ids=pos,
                use_cache=False,
                return_dict=True,
            )
            last = o.logits[0, -1]
            v, ix = torch.topk(last, 2)
            greedy.append(int(ix[0]))
            top2.append(v.tolist())
            seq = torch.cat([seq, ix[:1].view(1, 1)], dim=1)
    stops = [t for t in greedy if t in STOP_IDS]
    assert not stops, f"greedy run hit a stop token {stops}; change SEED"
    # (b) transformers' generate with the KV cache and rope_deltas, pure greedy
    with torch.no_grad():
        gen = model.generate(
            **inputs,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            max_new_tokens=NUM_GREEDY,
            min_new_tokens=NUM_GREEDY,
        )
    assert gen[0, L:].tolist() == greedy, (gen[0, L:].tolist(), greedy)
    # (c) generate with the shipped generation_config.json (top_k = 1 sampling == greedy)
    with torch.no_grad():
        torch.manual_seed(0)
        gen2 = model.generate(**inputs, max_new_tokens=NUM_GREEDY)
    assert gen2[0, L:].tolist() == greedy

    k = case["logits_last"]
    topv, topi = torch.topk(logits, TOPK, dim=-1)
    tensors = {
        "pixel_values": pixel_values.contiguous(),
        "image_grid_thw": grid.to(torch.int64).contiguous(),
        "input_ids": input_ids[0].to(torch.int64).contiguous(),
        "position_ids": position_ids[:, 0, :].to(torch.int64).contiguous(),
        "rope_deltas": rope_deltas[0].to(torch.int64).contiguous(),
        "prompt_logits": logits[L - k :].contiguous(),
        "prompt_logits_positions": torch.arange(L - k, L, dtype=torch.int64),
        "prompt_argmax": logits.argmax(-1).to(torch.int64),
        "prompt_topk_values": topv.contiguous(),
        "prompt_topk_ids": topi.to(torch.int64).contiguous(),
        "greedy_tokens": torch.tensor(greedy, dtype=torch.int64),
        "greedy_top2_logits": torch.tensor(top2, dtype=torch.float32),
        "vision_patch_embeds": captured["patch"].contiguous(),
        "vision_block_outputs": torch.stack(captured["blocks"]).contiguous(),
        "image_embeds": captured["merger"].contiguous(),
        "llm_hidden_states": hidden.contiguous(),
    }
    for i, r in enumerate(resized):
        tensors[f"image{i}_resized_rgb"] = torch.from_numpy(np.array(r, dtype=np.uint8, copy=True))
    assert tensors["image_embeds"].shape == (sum(n_tokens), TEXT["hidden_size"])

    margins = [a - b for a, b in top2]
    info = {
        "prompt_text": text,
        "user_text": case["text"],
        "images": [
            {
                "file": f,
                "source": f"shared/data/images/{IMAGES[f][0]}",
                "copy": "PIL LANCZOS downscale of the source to size_wh, saved as PNG",
                "size_wh": list(im.size),
                "resized_hw": [int(g[1]) * 14, int(g[2]) * 14],
                "image_grid_thw": [int(x) for x in g],
                "llm_tokens": n,
                "llm_grid_hw": [int(g[1]) // 2, int(g[2]) // 2],
            }
            for f, im, g, n in zip(case["images"], images, grid.tolist(), n_tokens)
        ],
        "seq_len": L,
        "num_image_tokens": sum(n_tokens),
        "num_patches": int(pixel_values.shape[0]),
        "rope_deltas": int(rope_deltas[0, 0]),
        "prompt_logits_positions": list(range(L - k, L)),
        "greedy_tokens": greedy,
        "greedy_text": processor.decode(greedy, skip_special_tokens=True),
        "greedy_text_with_special": processor.decode(greedy, skip_special_tokens=False),
        "greedy_min_top1_top2_margin": float(min(margins)),
        "last_logits_max_abs_diff_if_1d_rope": diff_1d,
        "prompt_min_top1_top2_margin": float((topv[:, 0] - topv[:, 1]).min()),
    }
    return tensors, info


def write_reference(case: dict, tensors: dict, info: dict, versions: dict) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(FIXTURE / f"{case['reference']}.safetensors"), metadata={"format": "pt"})
    info = dict(info)
    info["case"] = case["name"]
    info["tensors"] = {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in tensors.items()}
    info["versions"] = versions
    write_json(FIXTURE / f"{case['reference']}.json", info)


def versions() -> dict:
    import PIL
    import safetensors
    import tokenizers
    import transformers

    return {
        "python": sys.version.split()[0],
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "seed": SEED,
    }


# ------------------------------------------------------------------------------------------------


def verify(model=None) -> None:
    """Reload everything from the fixture folder only and compare with the stored references."""
    from safetensors.torch import load_file
    from transformers import AutoProcessor

    if model is None:  # standalone --verify: also re-check the committed tokenizer.json
        if btok.check(FIXTURE / "tokenizer.json", btok.load_ranks(btok.find_qwen_tiktoken())):
            sys.exit("tokenizer.json check failed")
    processor = AutoProcessor.from_pretrained(str(FIXTURE))
    model = model or load_model(FIXTURE)
    for case in CASES:
        ref = load_file(str(FIXTURE / f"{case['reference']}.safetensors"))
        tensors, _ = run_case(case, model, processor)
        for name, want in ref.items():
            got = tensors[name]
            assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, got.shape, want.shape)
            if want.is_floating_point():
                err = float((got - want).abs().max()) if want.numel() else 0.0
                assert err <= 1e-5, f"{case['name']}: {name} differs by {err}"
            else:
                assert torch.equal(got, want), f"{case['name']}: {name} differs"
        print(f"verify {case['name']}: {len(ref)} tensors match")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify", action="store_true", help="only re-check the committed fixture")
    ap.add_argument("--images", type=Path, default=None, help="folder with chelsea.png, rocket.jpg, coffee.png")
    args = ap.parse_args()
    torch.set_num_threads(1)

    if args.verify:
        verify()
        return

    FIXTURE.mkdir(parents=True, exist_ok=True)
    src_dir = args.images
    if src_dir is None:
        for cand in (REPO / "shared" / "data" / "images", REPO.parent / "shared" / "data" / "images"):
            if (cand / "chelsea.png").exists():
                src_dir = cand
                break
    make_image_copies(src_dir)

    # tokenizer (built and checked; a mismatch aborts)
    ranks = btok.load_ranks(btok.find_qwen_tiktoken())
    tok_path = btok.write_tokenizer_json(ranks, FIXTURE)
    if btok.check(tok_path, ranks):
        sys.exit("tokenizer check failed")
    write_json(FIXTURE / "tokenizer_config.json", tokenizer_config_json())
    write_json(FIXTURE / "chat_template.json", {"chat_template": CHAT_TEMPLATE})
    write_json(FIXTURE / "preprocessor_config.json", preprocessor_config_json())
    write_json(FIXTURE / "config.json", config_json())
    write_json(FIXTURE / "generation_config.json", generation_config_json())

    # model: build from the written config, init, save, reload from disk
    from transformers import AutoProcessor, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    config = Qwen2VLConfig.from_pretrained(str(FIXTURE))
    config._attn_implementation = "eager"
    model = Qwen2VLForConditionalGeneration(config)
    model.eval()
    init_weights(model, SEED)
    model.tie_weights()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    layout = save_model_safetensors(model, FIXTURE / "model.safetensors")
    for stale in ("pytorch_model.bin", "model.safetensors.index.json"):
        if (FIXTURE / stale).exists():
            (FIXTURE / stale).unlink()

    reloaded = load_model(FIXTURE)
    sd_a, sd_b = model.state_dict(), reloaded.state_dict()
    assert sd_a.keys() == sd_b.keys()
    for k in sd_a:
        assert sd_a[k].dtype == sd_b[k].dtype and torch.equal(sd_a[k], sd_b[k]), f"reloaded weight {k} differs"
    assert type(reloaded.visual.blocks[0].attn).__name__ == "VisionAttention"  # eager
    print(f"model: {sum(p.numel() for p in reloaded.parameters())} parameters, {len(layout)} tensors saved")

    processor = AutoProcessor.from_pretrained(str(FIXTURE))
    vers = versions()
    for case in CASES:
        tensors, info = run_case(case, reloaded, processor)
        # the in-memory model must give the same logits as the reloaded one
        with torch.no_grad():
            inputs = processor(
                text=[info["prompt_text"]],
                images=[Image.open(FIXTURE / f) for f in case["images"]],
                return_tensors="pt",
            )
            pos, _ = model.get_rope_index(inputs["input_ids"], inputs["image_grid_thw"], None, inputs["attention_mask"])
            la = model(**inputs, position_ids=pos).logits[0, -1]
        assert torch.equal(la, tensors["prompt_logits"][-1]), "in-memory vs reloaded logits differ"
        write_reference(case, tensors, info, vers)
        print(
            f"{case['name']}: L={info['seq_len']} patches={info['num_patches']} "
            f"image tokens={info['num_image_tokens']} rope_deltas={info['rope_deltas']} greedy={info['greedy_tokens']} "
            f"min greedy margin={info['greedy_min_top1_top2_margin']:.4f}"
        )

    verify(reloaded)
    manifest = {p.name: {"bytes": p.stat().st_size, "sha256": sha256(p)} for p in sorted(FIXTURE.iterdir()) if p.is_file() and p.name != "MANIFEST.json"}
    write_json(FIXTURE / "MANIFEST.json", manifest)
    total = sum(v["bytes"] for v in manifest.values())
    print(f"fixture written to {FIXTURE}: {len(manifest)} files, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Speed of the transformers reference on the inputs `loupe bench ground` uses.

Prints one JSON object: prompt tokens, prefill tokens/s, decode tokens/s and the peak
resident memory of this process. Loupe runs the same measurement in the same order:
one forward pass over the whole prompt (vision tower included), then N greedy steps
with the KV cache.

  python bench_qwen2vl.py --model tiny --images a.png b.png --max-pixels 200704
  python bench_qwen2vl.py --model 2b --dtype bf16 --images a.png b.png ...
"""

import argparse
import json
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import AutoProcessor, Qwen2VLConfig, Qwen2VLForConditionalGeneration  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "qwen2vl-tiny")

# Qwen2-VL-2B-Instruct's shapes (see shared/reference/migician-qwen2vl.md, section 4.4).
CONFIG_2B = dict(
    vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
    num_attention_heads=12, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1e6,
    max_position_embeddings=32768, tie_word_embeddings=True, use_sliding_window=False,
    rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
    vision_start_token_id=151652, vision_end_token_id=151653, vision_token_id=151654,
    image_token_id=151655, video_token_id=151656, bos_token_id=151643, eos_token_id=151645,
    vision_config=dict(depth=32, embed_dim=1280, hidden_size=1536, hidden_act="quick_gelu",
                       mlp_ratio=4, num_heads=16, in_channels=3, patch_size=14,
                       spatial_merge_size=2, temporal_patch_size=2),
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "2b"], required=True)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--prompt", default="Locate the cup in the second image.")
    ap.add_argument("--min-pixels", type=int, default=3136)
    ap.add_argument("--max-pixels", type=int, default=200704)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    processor = AutoProcessor.from_pretrained(
        FIXTURE, min_pixels=args.min_pixels, max_pixels=args.max_pixels)
    torch.manual_seed(0)
    if args.model == "tiny":
        model = Qwen2VLForConditionalGeneration.from_pretrained(FIXTURE, torch_dtype=dtype)
    else:
        torch.set_default_dtype(dtype)
        model = Qwen2VLForConditionalGeneration(Qwen2VLConfig(**CONFIG_2B))
        torch.set_default_dtype(torch.float32)
    # The fixture stores the (tied) embedding in f16; cast everything to the run dtype.
    model = model.to(dtype).eval()
    images = [Image.open(p).convert("RGB") for p in args.images]
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": args.prompt}]
    text = processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    n_prompt = inputs["input_ids"].shape[1]
    with torch.inference_mode():
        t0 = time.perf_counter()
        # 4.45 builds M-RoPE ids only inside generate(); compute them as it does (counted
        # in the prefill time, as Loupe counts its own).
        position_ids, rope_deltas = model.get_rope_index(
            inputs["input_ids"], inputs["image_grid_thw"], None, inputs["attention_mask"])
        out = model(**inputs, position_ids=position_ids, use_cache=True)
        prefill = time.perf_counter() - t0
        # A partial result first: on a slow CPU the caller may stop waiting for decode.
        print(json.dumps({"prompt_tokens": n_prompt, "prefill_tokens_per_sec": n_prompt / prefill}),
              flush=True)
        past = out.past_key_values
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        t1 = time.perf_counter()
        for step in range(args.new_tokens - 1):
            pos = torch.full((3, 1, 1), n_prompt + step, dtype=torch.long) + rope_deltas
            out = model(input_ids=token, past_key_values=past, position_ids=pos, use_cache=True)
            past = out.past_key_values
            token = out.logits[:, -1].argmax(-1, keepdim=True)
        decode = time.perf_counter() - t1
    print(json.dumps({
        "prompt_tokens": n_prompt,
        "prefill_tokens_per_sec": n_prompt / prefill,
        "decode_tokens_per_sec": (args.new_tokens - 1) / decode,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()

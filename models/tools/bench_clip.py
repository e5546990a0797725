#!/usr/bin/env python3
"""Speed of open-clip-torch on the inputs `loupe bench clip` uses (CPU, float32).

Builds an open_clip model with random weights (default ViT-L-14, BMC-CLIP's shapes; or the
tiny parity fixture) and prints one JSON object:

- preprocess_images_per_sec: the eval transform (PIL bicubic resize, centre crop, to tensor,
  normalise) on the given images;
- image_embeddings_per_sec: `encode_image(normalize=True)` on a batch of preprocessed images;
- text_embeddings_per_sec: tokenizer + `encode_text(normalize=True)` on a batch of captions;
- peak_rss_mb.

  python bench_clip.py --model vit-l-14 --images a.png b.png --image-batch 4 --captions captions.json
"""

import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import open_clip  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "clip_tiny")


def median_time(runs, f):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["vit-l-14", "tiny"], default="vit-l-14")
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--image-batch", type=int, default=4)
    ap.add_argument("--captions", required=True, help="JSON list of captions (the text batch)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model == "tiny":
        model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{FIXTURE}")
        tokenizer = open_clip.get_tokenizer(f"local-dir:{FIXTURE}")
    else:
        # ViT-L-14 as BMC_CLIP_CF: GELU, OpenAI mean/std, bicubic, 224 px; random weights.
        model, _, preprocess = open_clip.create_model_and_transforms("ViT-L-14")
        tokenizer = open_clip.get_tokenizer("ViT-L-14")
    model.eval()
    images = [Image.open(p).convert("RGB") for p in args.images]
    with open(args.captions, encoding="utf-8") as f:
        captions = json.load(f)

    out = {"torch": torch.__version__, "open_clip": open_clip.__version__, "threads": torch.get_num_threads()}

    def prep():
        return torch.stack([preprocess(im) for im in images])

    prep()
    out["preprocess_images_per_sec"] = len(images) / median_time(args.runs, prep)
    pixels = prep()
    batch = pixels[: args.image_batch]
    if batch.shape[0] < args.image_batch:
        batch = pixels.repeat((args.image_batch + pixels.shape[0] - 1) // pixels.shape[0], 1, 1, 1)[: args.image_batch]
    with torch.inference_mode():
        model.encode_image(batch[:1], normalize=True)  # warm-up
        t = median_time(args.runs, lambda: model.encode_image(batch, normalize=True))
        out["image_embeddings_per_sec"] = args.image_batch / t
        print(json.dumps(out), flush=True)

        def text():
            return model.encode_text(tokenizer(captions), normalize=True)

        text()
        out["text_embeddings_per_sec"] = len(captions) / median_time(args.runs, text)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

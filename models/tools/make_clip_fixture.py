#!/usr/bin/env python3
"""Build the tiny random-weight OpenCLIP parity fixture: models/tests/fixtures/clip_tiny/.

An open_clip `CLIP` (open-clip-torch 3.3.0) with ViT-L-14's structure (224-px input,
14-px patches, GELU, 77-token context, the real 49,408-entry vocabulary) but tiny widths
and two layers per tower. Weights come from a fixed-seed numpy generator. The script
writes the model in open_clip's Hugging Face hub layout (`open_clip_config.json` +
`open_clip_model.safetensors`), reloads it with `create_model_and_transforms('local-dir:…')`
and records, from the reloaded model and its own transform/tokenizer:

- token ids for tricky captions and the captions of the demo BIOMEDICA shards;
- preprocessed pixels and image features of three small PNG copies of shared images;
- text features, logit_scale.

It also vendors into models/assets/clip/ the BPE vocabulary and licence from the wheel and
the text-cleaning tables the Rust tokenizer needs (html5 entities, ftfy's tables).

Usage (from the repository root):
    python models/tools/make_clip_fixture.py            # (re)generate everything
    python models/tools/make_clip_fixture.py --verify   # reload the committed files and compare

See models/tools/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import html.entities
import json
import os
import shutil
import sys
import tarfile
import unicodedata
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import open_clip  # noqa: E402
from open_clip import tokenizer as oc_tokenizer  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURE = REPO / "models" / "tests" / "fixtures" / "clip_tiny"
ASSETS = REPO / "models" / "assets" / "clip"
SEED = 7

MODEL_CFG = {
    "embed_dim": 32,
    "quick_gelu": False,
    "vision_cfg": {
        "image_size": 224,
        "layers": 2,
        "width": 64,
        "head_width": 32,  # 2 heads
        "mlp_ratio": 4.0,
        "patch_size": 14,
    },
    "text_cfg": {
        "context_length": 77,
        "vocab_size": 49408,
        "width": 24,  # small, so the real-vocabulary embedding stays ~2.4 MB in f16
        "heads": 2,
        "layers": 2,
    },
}
PREPROCESS_CFG = {
    "mean": list(open_clip.OPENAI_DATASET_MEAN),
    "std": list(open_clip.OPENAI_DATASET_STD),
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}

# (copy name, source, size w×h, why)
IMAGES = [
    ("ihc.png", "ihc.png", (301, 250), "RGB; resized 269x224, crop left (269-224)/2 = 22.5 rounds half-to-even to 22"),
    ("cell.png", "cell.png", (250, 300), "grayscale (L) portrait; resized 224x268, crop top 22"),
    ("chelsea_small.png", "chelsea.png", (160, 106), "RGB upscale; resized 338x224, crop left 57"),
]

CAPTIONS = [
    "",
    "a photo of a cat",
    "A Photo Of A CAT",
    "H&E stained section, 10µm",
    "H&amp;E staining &lt;b&gt;bold&lt;/b&gt;",
    "&amp;amp;lt; triple-escaped &AMP; &EACUTE;",
    "Scale bar = 10 µm; ×200 magnification",
    "Café naïve résumé — São Paulo",
    "Emoji 🧬🔬 test 👩‍🔬",
    "Curly ‘quotes’ and “double quotes” and the ﬁrst ligature",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ and ｶﾀｶﾅ",
    "tabs\tand\nnewlines\r\n  and   spaces  ",
    "numbers 12345 3.14159 1,000,000 and 2x10^-5",
    "CD4+/CD8- T cells (n=42) p<0.05",
    "it's they're we've I'm you'll he'd",
    "日本語のキャプション 中文 한국어",
    "Ελληνικά ΟΔΟΣ Straße İstanbul",
    "<start_of_text> literal special tokens <end_of_text>",
    "decomposed e\u0301 vs composed \u00e9",
    "control\u0007chars\u200bzero\u00a0width\ufeffbom",
    "C1 \u0093smart\u0094 quotes \u0085 ellipsis",
    "Figure 3. (A) Immunohistochemistry of CDX2; (B) H&E. " * 8,
    "word " * 80,
]

# A few very long captions should truncate with EOT kept last.


def demo_captions() -> list[str]:
    out = []
    for tar_path in sorted((REPO / "assets" / "demo" / "biomedica").glob("*/*.tar")):
        with tarfile.open(tar_path) as t:
            for m in sorted(t.getmembers(), key=lambda m: m.name):
                if m.name.endswith(".txt"):
                    out.append(t.extractfile(m).read().decode("utf-8"))
    return out


FUZZ_SEED = 11
FUZZ_COUNT = 1500


def fuzz_strings() -> list[str]:
    """Random captions mixing what breaks tokenizers: scripts, accents (composed and
    combining), emoji with ZWJ, digits, punctuation runs, HTML entities (named, numeric,
    upper-cased, unterminated), ligatures, full/half-width forms, curly quotes, C1 and other
    control characters, odd whitespace, `<`, `'s`-style suffixes, special-token text."""
    rng = np.random.Generator(np.random.PCG64(FUZZ_SEED))
    pieces = [
        "cell", "Cells", "H&E", "IHC", "µm", "10", "3.5", "×", "±", "°C", "CD4+", "p<0.05", "α-SMA", "β", "Δ",
        "naïve", "Café", "e\u0301", "n\u0303", "Straße", "İ", "ΟΔΟΣ", "日本語", "中文", "한국어", "Ελληνικά", "русский",
        "עברית", "العربية", "हिन्दी", "ไทย", "🧬", "🔬", "👩\u200d🔬", "🇫🇷", "❤️", "&amp;", "&lt;", "&gt;", "&quot;",
        "&#39;", "&#x27;", "&nbsp;", "&eacute;", "&EACUTE;", "&AMP;", "&amp;amp;", "&notit;", "&ampx", "&#128;", "&#0;",
        "&#x110000;", "&#xD800;", "&bogus;", "&", "ﬁ", "ﬂ", "ﬃ", "Ĳ", "ǆ", "ＡＢＣ", "ｶﾀｶﾅ", "　", "‘", "’", "“", "”", "ʼ",
        "\u0085", "\u0093", "\u0094", "\u0096", "\u0000", "\u0007", "\u001c", "\u007f", "\u200b", "\ufeff",
        "\u2028", "\u00a0", "\t", "\n", "\r\n", "  ", " ", " ", " ", "<b>", "</i>", "<", ">", "'s", "'ll", "'D",
        "don't", "I'M", "<start_of_text>", "<end_of_text>", "...", "!!", "?!", "--", "—", "–", "(", ")", "[", "]", "/",
        "\\", "_", "#", "@", "$", "%", "^", "*", "=", "+", "~", "`", "|", "{", "}", "Figure", "1A", "(a)", "2x10^-5",
        "\x1b[31m", "\x1b[0m", "½", "²", "Ⅻ", "①", "٣", "𝟘", "x\u0308", "ǅ",
    ]
    out = []
    for _ in range(FUZZ_COUNT):
        n = int(rng.integers(0, 14))
        s = "".join(pieces[int(rng.integers(0, len(pieces)))] for _ in range(n))
        out.append(s)
    return out


def images_dir(arg: str | None) -> Path | None:
    cands = [Path(arg)] if arg else [REPO / "shared" / "data" / "images", REPO.parent / "shared" / "data" / "images"]
    for c in cands:
        if (c / "ihc.png").is_file():
            return c
    return None


def init_weights(model: torch.nn.Module) -> None:
    """Every tensor random (LayerNorm gains and all biases too, so a loader that drops one
    is caught); N(0, 1/fan_in) for matrices. numpy PCG64 in float64, cast to float32."""
    rng = np.random.Generator(np.random.PCG64(SEED))
    sd = model.state_dict()
    new = {}
    for name, t in sd.items():
        shape = tuple(t.shape)
        if name == "logit_scale":
            v = np.array(np.log(1 / 0.07))
        elif name.endswith(".bias") or name.endswith("in_proj_bias"):
            v = rng.normal(0.0, 0.1, shape)
        elif name.endswith(".weight") and name.split(".")[-2].startswith("ln"):
            v = 1.0 + rng.normal(0.0, 0.1, shape)
        elif name.endswith("class_embedding") or name.endswith("token_embedding.weight"):
            v = rng.normal(0.0, 1.0, shape)
        elif name.endswith("positional_embedding"):
            v = rng.normal(0.0, 0.5, shape)
        elif name.endswith("conv1.weight"):
            fan_in = int(np.prod(shape[1:]))
            v = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        elif name in ("visual.proj", "text_projection"):
            v = rng.normal(0.0, 1.0 / np.sqrt(shape[0]), shape)
        elif len(shape) == 2:
            v = rng.normal(0.0, 1.0 / np.sqrt(shape[1]), shape)
            if "in_proj_weight" in name:
                v[: 2 * shape[1]] *= 2.0  # sharper attention: q and k ×2
        else:
            raise SystemExit(f"no init rule for {name} {shape}")
        v = torch.from_numpy(np.asarray(v, dtype=np.float64).astype(np.float32))
        if name.endswith("token_embedding.weight"):
            # Stored as F16 in the file (keeps it small); round first so the references use
            # exactly the values an f32 upcast gives.
            v = v.half().float()
        new[name] = v
    model.load_state_dict(new)


def write_tables() -> None:
    """Text-cleaning tables for the Rust tokenizer, from Python's stdlib and ftfy."""
    from ftfy import chardata

    def hexs(s: str) -> str:
        return " ".join(f"{ord(c):X}" for c in s)

    lines = [
        "# Generated by models/tools/make_clip_fixture.py from Python "
        f"{sys.version.split()[0]} html.entities / html and ftfy {__import__('ftfy').__version__} chardata.",
        "# kind<TAB>key<TAB>value as hex code points. html5: html.entities.html5 (names with and",
        "# without ';'); ftfy: ftfy's HTML_ENTITIES; charref: html._invalid_charrefs; badcp:",
        "# html._invalid_codepoints; lig: ftfy LIGATURES; width: ftfy WIDTH_MAP; c1: sloppy-windows-1252.",
    ]
    for k, v in sorted(html.entities.html5.items()):
        lines.append(f"html5\t{k}\t{hexs(v)}")
    for k, v in sorted(chardata.HTML_ENTITIES.items()):
        lines.append(f"ftfy\t{k}\t{hexs(v)}")
    for k, v in sorted(html._invalid_charrefs.items()):
        lines.append(f"charref\t{k:X}\t{hexs(v)}")
    for k in sorted(html._invalid_codepoints):
        lines.append(f"badcp\t{k:X}\t")
    for k, v in sorted(chardata.LIGATURES.items()):
        lines.append(f"lig\t{k:X}\t{hexs(v)}")
    for k, v in sorted(chardata.WIDTH_MAP.items()):
        lines.append(f"width\t{k:X}\t{hexs(v)}")
    for b in range(0x80, 0xA0):
        lines.append(f"c1\t{b:X}\t{hexs(bytes([b]).decode('sloppy-windows-1252'))}")
    ASSETS.mkdir(parents=True, exist_ok=True)
    (ASSETS / "text_tables.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = Path(oc_tokenizer.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    shutil.copyfile(src, ASSETS / "bpe_simple_vocab_16e6.txt.gz")
    dist = Path(open_clip.__file__).parent.parent / f"open_clip_torch-{open_clip.__version__}.dist-info"
    shutil.copyfile(dist / "licenses" / "LICENSE", ASSETS / "LICENSE-open_clip")


def make_images(src_dir: Path | None) -> list[dict]:
    FIXTURE.mkdir(parents=True, exist_ok=True)
    meta = []
    for name, source, size, why in IMAGES:
        dst = FIXTURE / name
        if src_dir is not None:
            im = Image.open(src_dir / source)
            im.load()
            im.resize(size, Image.LANCZOS).save(dst, optimize=True)
        elif not dst.is_file():
            raise SystemExit(f"no source images and no committed {dst}")
        meta.append({"file": name, "source": source, "size": list(size), "why": why})
    return meta


def build() -> torch.nn.Module:
    torch.manual_seed(0)
    model = open_clip.model.CLIP(**MODEL_CFG)
    init_weights(model)
    model.eval()
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd["token_embedding.weight"] = sd["token_embedding.weight"].half()
    from safetensors.torch import save_file

    FIXTURE.mkdir(parents=True, exist_ok=True)
    save_file(sd, FIXTURE / "open_clip_model.safetensors")
    with open(FIXTURE / "open_clip_config.json", "w") as f:
        json.dump({"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}, f, indent=2)
        f.write("\n")
    return model


def references(images: list[dict]) -> tuple[dict, dict]:
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{FIXTURE}")
    model.eval()
    tok = open_clip.get_tokenizer(f"local-dir:{FIXTURE}")
    captions = CAPTIONS + demo_captions()
    ids = tok(captions)
    assert torch.equal(ids, oc_tokenizer.tokenize(captions)), "local-dir tokenizer differs from tokenize()"
    pixels = torch.stack([preprocess(Image.open(FIXTURE / m["file"])) for m in images])
    with torch.no_grad():
        img = model.encode_image(pixels)
        txt = model.encode_text(ids)
        img_n = model.encode_image(pixels, normalize=True)
        txt_n = model.encode_text(ids, normalize=True)
    tensors = {
        "token_ids": ids.to(torch.int64).contiguous(),
        "pixel_values": pixels.contiguous(),
        "image_features": img.contiguous(),
        "text_features": txt.contiguous(),
        "image_embeds": img_n.contiguous(),
        "text_embeds": txt_n.contiguous(),
        "logit_scale": model.logit_scale.detach().reshape(1).contiguous(),
    }
    cleaned = [oc_tokenizer._clean_lower(c) for c in captions]
    # Fuzz strings: ids of everything whose text ftfy's mojibake repair leaves alone (the
    # one ftfy step the Rust cleaner does not restate; see models/src/clip/clean.rs).
    import ftfy

    fuzz = fuzz_strings()
    kept = [f for f in fuzz if ftfy.fix_text(f) == ftfy.fix_text(f, fix_encoding=False)]
    fuzz_ids = tok(kept)
    fuzz_json = {
        "seed": FUZZ_SEED,
        "generated": len(fuzz),
        "skipped_mojibake": len(fuzz) - len(kept),
        "cases": [
            {"text": t, "ids": [int(i) for i in row if i != 0]}
            for t, row in zip(kept, fuzz_ids.tolist())
        ],
    }
    meta = {
        "captions": captions,
        "cleaned": cleaned,
        "n_tricky": len(CAPTIONS),
        "images": images,
        "versions": {
            "open_clip": open_clip.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pillow": Image.__version__,
            "ftfy": __import__("ftfy").__version__,
            "python": sys.version.split()[0],
            "unicodedata": unicodedata.unidata_version,
        },
    }
    meta["fuzz"] = fuzz_json
    return tensors, meta


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", help="folder with the source images (default: shared/data/images)")
    ap.add_argument("--verify", action="store_true", help="recompute references from the committed files and compare")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.verify:
        from safetensors.torch import load_file

        committed = load_file(FIXTURE / "reference.safetensors")
        meta = json.loads((FIXTURE / "reference.json").read_text())
        tensors, _ = references(meta["images"])
        for k, v in committed.items():
            d = (tensors[k].double() - v.double()).abs().max().item()
            print(f"{k}: max |diff| {d:.3g}")
            assert d <= 1e-5, k
        print("ok")
        return
    write_tables()
    images = make_images(images_dir(args.images))
    build()
    tensors, meta = references(images)
    from safetensors.torch import save_file

    save_file(tensors, FIXTURE / "reference.safetensors")
    fuzz = meta.pop("fuzz")
    (FIXTURE / "tokenizer_fuzz.json").write_text(json.dumps(fuzz, ensure_ascii=False) + "\n", encoding="utf-8")
    (FIXTURE / "reference.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    manifest = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(FIXTURE.iterdir())
        if p.name != "MANIFEST.json"
    }
    (FIXTURE / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for p in sorted(FIXTURE.iterdir()):
        print(f"{p.stat().st_size:>9}  {p.name}")


if __name__ == "__main__":
    main()

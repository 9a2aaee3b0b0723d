#!/usr/bin/env python3
"""Writes the WordPiece tokenizer fixtures used by Tests/SparsityTextTests.

Usage (from the repository root, with the model folder from scripts/fetch_minilm.py):

    /work/venv/bin/python scripts/make_tokenizer_fixtures.py [--model DIR]

Outputs (committed):
  Tests/SparsityTextTests/Fixtures/vocab.txt         the model's vocabulary (Apache-2.0)
  Tests/SparsityTextTests/Fixtures/tokenizer_cases.json  texts and what Hugging Face makes of them

The reference is the tokenizer that the model's sentence-transformers pipeline uses:
`transformers.AutoTokenizer.from_pretrained(model)`, i.e. the fast (`tokenizers`) BertTokenizer
built from tokenizer.json. For every text the fixture holds
  text     the text,
  tokens   tokenizer.tokenize(text) (no [CLS]/[SEP], untruncated),
  ids      tokenizer(text)["input_ids"] ([CLS] ... [SEP], untruncated),
  ids128   the same with truncation=True, max_length=128, only where it differs from ids,
  ids256   the same with max_length=256 (sentence-transformers' max_seq_length), where it
           differs.
`cased` holds a few texts encoded by the same pipeline with lowercase=False (and therefore no
accent stripping), for the tokenizer's cased mode.

The script also runs the original BERT Python code (google-research/bert tokenization.py,
reproduced below) on every text and prints where its ids differ from the fast tokenizer's.
"""
import argparse
import json
import pathlib
import random
import shutil
import sys
import unicodedata

import tokenizers
import transformers
from tokenizers import Tokenizer, normalizers
from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "SparsityTextTests" / "Fixtures"
DEFAULT_MODEL = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "all-MiniLM-L6-v2"


def texts():
    t = []
    # Plain English and mixed case.
    t += [
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "This is an example sentence.",
        "Each sentence is converted to a vector.",
        "Sentence embeddings are useful for semantic search and clustering.",
        "I can't believe it's not butter!",
        "unaffable",
        "UNAFFABLE",
        "Unaffable naïveté!",
        "HeLLo WoRLD, tHiS iS mIxEd CaSe",
        "McDonald's iPhone eBay JavaScript camelCaseIdentifier snake_case_identifier",
        "A man is eating food.",
        "A man is riding a white horse on an enclosed ground.",
        "Two men pushed carts through the woods.",
        "A cheetah is running behind its prey.",
        "The new movie is awesome",
        "The cat sits outside",
        "The new movie is so great",
        "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
        "supercalifragilisticexpialidocious",
        "Don't stop believing; hold on to that feeling.",
        "Mr. and Mrs. Smith went to Washington, D.C., on Jan. 5th.",
        "It's 5 o'clock somewhere — isn't it?",
        "He said, \"Yes.\" She said, 'No.'",
        "word" * 30,
        "tokenization tokenizer tokenized retokenize detokenization",
    ]
    # Accents and diacritics.
    t += [
        "café résumé naïve coöperate façade jalapeño piñata",
        "Crème brûlée à la mode",
        "Ångström Øresund Æsir smørrebrød",
        "Müller Straße Größe ÄÖÜ äöü ß ẞ",
        "Þórður Ægisson sá þetta",
        "Đặng Thị Ngọc Hà, Việt Nam, tiếng Việt có dấu",
        "Łódź Kraków Gdańsk źdźbło żółć",
        "Český Krumlov, příliš žluťoučký kůň úpěl ďábelské ódy",
        "İstanbul ISTANBUL ıi İI Diyarbakır",
        "São Paulo, coração, ação, não",
        "El niño comió piña en España",
        "Zoë Brontë Noël",
        "e\u0301 vs \u00e9, a\u0308 vs \u00e4",
        "n\u0303o\u0302\u0323",
        "\u1e9b\u0323 \u1e69 \u1e0b\u0323",
        "Ǆ ǅ ǆ ǈ ǋ",
        "ﬁ ﬂ ﬀ ﬃ ligatures",
        "Ⅻ ⅻ ① ² ½ ™ ℃ ℉ Å K Ω",
        "\u212b\u00c5 \u2126\u03a9",
    ]
    # CJK.
    t += [
        "我爱北京天安门",
        "今天天气很好，我们去公园散步吧。",
        "中文English混合text测试",
        "機器學習與自然語言處理",
        "日本語のテキストです。ひらがなとカタカナと漢字。",
        "東京都渋谷区１−２−３",
        "ｶﾀｶﾅ ＡＢＣ ａｂｃ １２３ ！？",
        "한국어 텍스트입니다. 안녕하세요!",
        "대한민국 서울특별시",
        "ㄱㄴㄷ ㅏㅑㅓ",
        "豈更車賈滑 \uf900\uf901\ufa0e\ufa10",
        "\U00020000\U0002a6d6\U0002a700\U0002b740\U0002b81d",
        "\U0002b820\U0002b8ff\U0002b920\U0002ceaf\U0002ceb0\U0002f800\U0002fa1d",
        "\u3400\u4db5\u4e00\u9fa5\u9fff\u3007\u3005",
        "《红楼梦》、「引用」『二重』【括弧】〔〕",
        "漢字かな交じり文abc123",
    ]
    # Other scripts.
    t += [
        "مرحبا بالعالم! كيف حالك؟",
        "اللُّغَةُ العَرَبِيَّةُ",
        "שלום עולם, מה שלומך?",
        "עִבְרִית מְנֻקֶּדֶת",
        "Привет, мир! Как дела?",
        "ЁЖИК в тумане ёжик",
        "Γειά σου Κόσμε! ΟΔΟΣ οδός Σίσυφος ΣΊΣΥΦΟΣ",
        "ΆΈΉΊΌΎΏ ΐΰ",
        "สวัสดีครับ ภาษาไทย",
        "नमस्ते दुनिया, हिन्दी भाषा",
        "বাংলা ভাষা",
        "தமிழ் மொழி",
        "ქართული ენა",
        "Հայերեն լեզու",
        "ᚠᚢᚦᚨᚱᚲ ᛖᛗᛚ",
        "ئۇيغۇرچە",
        "አማርኛ",
        "ꦗꦮ",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𝓈𝒸𝓇𝒾𝓅𝓉",
    ]
    # Emoji and ZWJ sequences.
    t += [
        "I love pizza 🍕!",
        "😀😃😄😁",
        "hello😀world",
        "hello🥰 world",
        "🥰",
        "🫠 melting",
        "👨‍👩‍👧‍👦 family",
        "👍🏽 thumbs up",
        "🏳️‍🌈 flag",
        "🇺🇸🇫🇷🇯🇵",
        "❤️ ♥ ☺️ ✨",
        "#️⃣ 1️⃣ keycaps",
        "emoji:☕tea",
        "★☆✓✔✗✘→←↑↓",
    ]
    # Punctuation runs.
    t += [
        "!!!???...",
        "Wait...what?!",
        "--- *** ___ ===",
        "(a)[b]{c}<d>",
        "\"quoted\" 'single' `backtick`",
        "¡Hola! ¿Qué tal?",
        "«guillemets» „Anführungszeichen“ ‘curly’ “double”",
        "em—dash en–dash minus−sign hyphen‐x",
        "…‥・·•",
        "§¶†‡※‰‱",
        "#hashtag @mention $100 %50 ^caret &amp; *star",
        "~tilde | pipe \\ backslash / slash",
        "a.b,c;d:e!f?g",
        "##",
        "##abc",
        "## ##ing",
        "¦¬¯°±´µ¸¹º¼¾¿×÷",
        "\u061d\u0a76\u2e43\u2e52\u2e5d\U00010ead\u166d\U000111c9",
    ]
    # Numbers, dates, URLs, emails, code.
    t += [
        "3.14159 2.71828 1,000,000 1e-10 -42 +7",
        "2024-01-15T10:30:00Z",
        "12/25/2023 25.12.2023 2023年12月25日",
        "Call me at +1 (555) 123-4567.",
        "https://www.example.com/path/to/page?query=value&other=123#fragment",
        "http://localhost:8080/api/v1/users",
        "Email me at john.doe+tag@example.co.uk",
        "user_name@sub.domain.org",
        "def foo(x): return x ** 2",
        "for (int i = 0; i < n; ++i) { sum += a[i]; }",
        "let tokenizer = try WordPieceTokenizer(vocabularyFile: path)",
        "SELECT * FROM users WHERE id = 42;",
        "<div class=\"main\">Hello</div>",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
        "#include <stdio.h>",
        "0x1F600 0b1010 0o777",
        "v1.2.3-beta+build.456",
        "$9.99 €10,50 £5 ¥1000 ₹500 ₿0.01",
        "100% 50°C 30km/h 5kg",
        "192.168.1.1 ::1 fe80::1",
        "C:\\Users\\name\\file.txt",
    ]
    # Whitespace and Unicode spaces.
    t += [
        "tab\tseparated\tvalues",
        "line one\nline two\r\nline three\rfour",
        "non\u00a0breaking\u00a0space",
        "en\u2002em\u2003thin\u2009hair\u200afigure\u2007space",
        "ideographic\u3000space",
        "narrow\u202fnbsp medium\u205fmath",
        "ogham\u1680space",
        "line\u2028separator paragraph\u2029separator",
        "next\u0085line",
        "vertical\u000btab form\u000cfeed",
        "zero\u200bwidth\u200cnon\u200djoiner",
        "word\u2060joiner\ufeffbom",
        "soft\u00adhyphen",
        "mongolian\u180evowel",
        "  leading and trailing  ",
        "multiple     spaces    between",
        "\t\n\r mixed \t\n whitespace \r\n",
        "\u00a0\u2000\u3000",
    ]
    # Control characters, U+FFFD, odd code points.
    t += [
        "null\u0000byte",
        "bell\u0007and\u001bescape",
        "replacement\ufffdchar",
        "\ufffd\ufffd\ufffd",
        "del\u007fete",
        "\u0001\u0002\u0003abc\u001f",
        "c1\u0080\u009fcontrols",
        "private\ue000use\U000f0000area",
        "unassigned\u0378\u0379code\U000e0fffpoints",
        "noncharacter\ufffe\uffff",
        "bidi\u202eoverride\u202c marks\u200e\u200f",
        "tag\U000e0041\U000e007f chars",
        "interlinear\ufff9annotation\ufffb",
        "arabic\u0600number\u06ddsign",
        "\u1734\U00011938\u07fd\u0898 late marks",
    ]
    # Combining marks.
    t += [
        "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333",
        "a\u0301\u0302\u0303\u0304",
        "\u0301\u0302 leading marks",
        "combining\u20ddenclosing \u20e3",
        "a\u0338 \u2260 \u226e \u2241",
        "\u0915\u094d\u0937 \u0915\u093c",
        "\u0e01\u0e34\u0e48 \u0e19\u0e49\u0e33",
        "x\u0345\u0307 y\u0307\u0345",
        "mc marks \U0001d165\U0001d16d\U0001d16e",
        "\u0f71\u0f72\u0f74 tibetan",
    ]
    # Very long words, special tokens in text.
    t += [
        "a" * 100,
        "a" * 101,
        "b" * 250 + " short",
        "x" * 99 + "\u0301" + "y",
        "é" * 60,
        "é" * 101,
        "\u0301" * 150 + "a",
        "hello" + "\u200b" * 200 + "world",
        "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
        "[CLS] hello [SEP] world [PAD] [UNK] [MASK]",
        "before[SEP]after",
        "[cls] [sep] [Sep] [ SEP ] [SEP",
        "[[SEP]] [MASK]]",
        "[UNK]",
        "[MASK] is a special token.",
        "[SEP][SEP][SEP]",
        "\u0000[SEP]\ufffd[CLS]",
    ]
    # Empty and whitespace-only.
    t += ["", " ", "   ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u200b", "\u0000", "\ufffd",
          " \t\n\r\u00a0\u2003 ", "\u0301", "\u0007"]
    # Long texts that need truncation.
    paragraph = ("Natural language processing is a subfield of linguistics, computer science, and "
                 "artificial intelligence concerned with the interactions between computers and "
                 "human language, in particular how to program computers to process and analyze "
                 "large amounts of natural language data. ")
    t += [
        paragraph * 2,
        paragraph * 5,
        paragraph * 12,
        "word " * 126,
        "word " * 127,
        "word " * 300,
        "unaffable " * 60,
        ("tokenization " * 42) + "antidisestablishmentarianism",
        "今天天气很好" * 40,
        "😀 " * 200,
        ("Hello, world! " * 30).strip(),
        "a " * 125 + "unaffable",
        "a " * 126 + "unaffable",
        "a " * 254 + "unaffable",
    ]
    # A few more varied sentences.
    t += [
        "The GPU's throughput was 1.5 TFLOPS (FP16) vs. 0.75 TFLOPS (FP32).",
        "COVID-19 vaccines were developed in record time.",
        "e-mail, E-Mail, EMAIL, eMail",
        "naïve NAÏVE Naïve",
        "Résumé RÉSUMÉ",
        "Ça va? Ça va bien.",
        "Dr. Jekyll & Mr. Hyde",
        "O'Neil's dog's bone",
        "rock 'n' roll",
        "state-of-the-art machine-learning models",
        "U.S.A. U.K. E.U.",
        "he said:\"hi\"",
        "2+2=4; 3*3=9; 10/2=5",
        "ＵＴＦ－８ full-width",
        "sentence-transformers/all-MiniLM-L6-v2",
        "The year 1999 and the 2000s",
        "Temperature: -5°C to +10°C",
        "Über-cool Zürich Genève",
        "façade vs facade",
        "Ⅰ Ⅱ Ⅲ Ⅳ",
    ]
    # Random strings over an alphabet of the interesting cases (fixed seed).
    alphabet = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 4
                + list(" " * 20) + list(".,!?;:'\"()[]{}-_#@&*/\\%$^~`|<>+=")
                + list("éèêëàâäôöûüçñøåæœßÉÀÖÜÇÑİıΣσςΟΔκόσμεпривет")
                + ["\u0301", "\u0308", "\u0327", "\u0338", "\u20dd", "\u0345", "\u1734"]
                + list("中文日本語한국어カタカナ가나다") + ["\uf900", "\U0002b820", "\U0002b920"]
                + ["😀", "🥰", "👍", "\U0001f3fd", "\u200d", "\ufe0f", "🇺", "🇸"]
                + ["\t", "\n", "\r", "\u00a0", "\u2003", "\u3000", "\u2028", "\u0085", "\u000b"]
                + ["\u0000", "\ufffd", "\u0007", "\u007f", "\u200b", "\u00ad", "\ufeff", "\ue000",
                   "\u0378", "\u061d", "\u2e43", "\u00bf", "\u00a1", "\u2026", "\u2014", "\u00b7"]
                + ["[SEP]", "[CLS]", "[MASK]", "##", "[sep]"])
    rng = random.Random(20240611)
    for _ in range(160):
        n = rng.choice([1, 2, 3, 5, 8, 13, 21, 34, 60, 120])
        t.append("".join(rng.choice(alphabet) for _ in range(n)))
    for _ in range(20):  # long words made of letters, marks and occasional joiners
        n = rng.randint(90, 110)
        t.append("".join(rng.choice("abcé\u0301\u200b") for _ in range(n)))
    return t


CASED_TEXTS = [
    "Hello World", "Unaffable Naïveté", "İstanbul ΟΔΟΣ", "e\u0301 \u00e9", "한국어", "豈 \uf900",
    "ﬁ Ⅻ Å", "Crème Brûlée", "HELLO, World! [SEP] x", "ẞ Straße", "\u0301alone", "MiXeD cAsE",
]


# --- The original BERT Python implementation (google-research/bert, tokenization.py). ---
def _is_whitespace(char):
    if char in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char):
    if char in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char):
    cp = ord(char)
    if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126):
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp):
    return ((0x4E00 <= cp <= 0x9FFF) or (0x3400 <= cp <= 0x4DBF) or (0x20000 <= cp <= 0x2A6DF)
            or (0x2A700 <= cp <= 0x2B73F) or (0x2B740 <= cp <= 0x2B81F)
            or (0x2B820 <= cp <= 0x2CEAF) or (0xF900 <= cp <= 0xFAFF)
            or (0x2F800 <= cp <= 0x2FA1F))


def original_bert_tokens(text, vocab):
    out = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            continue
        out.append(" " if _is_whitespace(char) else char)
    text = "".join(" " + c + " " if _is_chinese_char(ord(c)) else c for c in out)
    words = []
    for token in text.strip().split():
        token = unicodedata.normalize("NFD", token.lower())
        token = "".join(c for c in token if unicodedata.category(c) != "Mn")
        current = []
        for c in token:
            if _is_punctuation(c):
                if current:
                    words.append("".join(current))
                words.append(c)
                current = []
            else:
                current.append(c)
        if current:
            words.append("".join(current))
    pieces = []
    for word in words:
        if len(word) > 100:
            pieces.append("[UNK]")
            continue
        start, sub = 0, []
        while start < len(word):
            end, found = len(word), None
            while start < end:
                candidate = ("##" if start > 0 else "") + word[start:end]
                if candidate in vocab:
                    found = candidate
                    break
                end -= 1
            if found is None:
                sub = ["[UNK]"]
                break
            sub.append(found)
            start = end
        pieces.extend(sub)
    return pieces


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    if not (args.model / "tokenizer.json").is_file():
        sys.exit(f"error: {args.model}/tokenizer.json not found; run scripts/fetch_minilm.py first")
    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    assert tokenizer.is_fast, type(tokenizer)

    cases = []
    for text in texts():
        ids = tokenizer(text)["input_ids"]
        case = {"text": text, "tokens": tokenizer.tokenize(text), "ids": ids}
        assert tokenizer.convert_ids_to_tokens(ids)[1:-1] == case["tokens"], repr(text)
        for length in (128, 256):
            truncated = tokenizer(text, truncation=True, max_length=length)["input_ids"]
            if truncated != ids:
                case[f"ids{length}"] = truncated
        cases.append(case)
    assert len({c["text"] for c in cases}) == len(cases), "duplicate fixture texts"

    cased_pipeline = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    cased_pipeline.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=False)
    cased_pipeline.no_padding()
    cased_pipeline.no_truncation()
    cased = [{"text": text, "ids": cased_pipeline.encode(text).ids} for text in CASED_TEXTS]

    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.model / "vocab.txt", OUT / "vocab.txt")
    fixture = {
        "source": f"transformers {transformers.__version__} AutoTokenizer (fast), "
                  f"tokenizers {tokenizers.__version__}, sentence-transformers/all-MiniLM-L6-v2",
        "cases": cases,
        "cased": cased,
    }
    with open(OUT / "tokenizer_cases.json", "w", encoding="ascii") as f:
        f.write("{\n")
        f.write(f'"source": {json.dumps(fixture["source"])},\n')
        for key in ("cases", "cased"):
            f.write(f'"{key}": [\n')
            f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in fixture[key]))
            f.write("\n]" + (",\n" if key == "cases" else "\n"))
        f.write("}\n")

    vocab = set(tokenizer.get_vocab())
    differing = []
    for case in cases:
        original = original_bert_tokens(case["text"], vocab)
        # The original code has no special-token matching; compare texts without brackets.
        if original != case["tokens"] and "[" not in case["text"]:
            differing.append((case["text"], original, case["tokens"]))
    print(f"wrote {len(cases)} cases ({sum('ids128' in c for c in cases)} truncated at 128, "
          f"{sum('ids256' in c for c in cases)} at 256), {len(cased)} cased cases to "
          f"{OUT.relative_to(ROOT)}")
    print(f"the original BERT Python code differs on {len(differing)} texts, e.g.:")
    for text, original, fast in differing[:25]:
        diff = next(i for i in range(max(len(original), len(fast)))
                    if i >= len(original) or i >= len(fast) or original[i] != fast[i])
        print(f"  {text[:40]!r}: original {original[diff:diff + 3]} fast {fast[diff:diff + 3]}")


if __name__ == "__main__":
    main()

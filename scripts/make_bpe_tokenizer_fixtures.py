#!/usr/bin/env python3
"""Writes the byte-level BPE tokenizer fixtures used by Tests/SparsityTextTests (BPE*, ChatTemplate*).

Usage (from the repository root, with the model file from scripts/fetch_smollm2.py):

    /work/venv/py/bin/python scripts/make_bpe_tokenizer_fixtures.py [--model DIR]
    /work/venv/py/bin/python scripts/make_bpe_tokenizer_fixtures.py --check-export FILE

Output (committed):
  Tests/SparsityTextTests/Fixtures/bpe/smollm2_cases.json

Outputs (NOT committed; written beside the model, DIR defaults to
~/.cache/swift-sparsity/models/SmolLM2-135M-Instruct):
  DIR/tokenizer.json, DIR/tokenizer_config.json  the reference tokenizer, `save_pretrained`
  DIR/gguf-vocab.json   the GGUF's tokenizer.ggml.* arrays and ids, read with gguf-py

The reference is `transformers.AutoTokenizer.from_pretrained(DIR, gguf_file=...)`, the tokenizer
that transformers builds from the GGUF, with one correction: transformers' GGUF conversion gives
every gpt2-model GGUF GPT-2's ByteLevel pre-tokenizer and ignores `tokenizer.ggml.pre`, while the
file says `smollm` -- llama.cpp's `\\p{N}` split followed by the GPT-2 regex, which is what
SmolLM2's own tokenizer.json declares (a `Digits` step with individual digits, then `ByteLevel`).
The two differ where a whitespace run meets a digit ("x  1"). So the reference's pre-tokenizer is
replaced by Sequence[Digits(individual_digits), ByteLevel]; the uncorrected ids are kept as
`gpt2Ids` (they test the `gpt2` pre-tokenizer over the same vocabulary).

For every text the fixture holds
  text                    the text,
  ids                     tokenizer(text)["input_ids"] (no BOS: add_bos_token is false),
  gpt2Ids                 the same from the uncorrected (GPT-2 pre-tokenizer) tokenizer,
  decoded                 tokenizer.decode(ids) (clean_up_tokenization_spaces off),
  decodedSkippingSpecial  tokenizer.decode(ids, skip_special_tokens=True),
  pieces                  per pre-tokenizer (gpt2, smollm, llama3, qwen2) the byte-level pieces
                          `tokenizers` makes of the text with the pre-tokenizer of GPT-2,
                          SmolLM2, Llama 3 and Qwen2's tokenizer.json (no special tokens),
  nfc                     the NFC form (tokenizers' NFC normalizer), where it differs.
`lossyDecodes` holds id sequences whose bytes are not well-formed UTF-8 (prefixes of multi-byte
characters, byte tokens) and their decoding (U+FFFD replacements); `missingBytes` the byte values
whose byte-level token is not in the vocabulary (they are dropped when encoding).
`chat` holds conversations rendered by `apply_chat_template` with the GGUF's template (and with
a plain ChatML template without a default system message), and the ids of the rendering;
`templateVariants` other spellings of ChatML templates and their renderings of the same
conversations.

--check-export FILE loads a tokenizer.json written by BPETokenizer.tokenizerJSON() (the Swift
tests write it when BPE_EXPORT_PATH is set) with tokenizers.Tokenizer.from_file and
transformers.PreTrainedTokenizerFast, and checks that both give the fixture's ids and decodings.
"""
import argparse
import json
import os
import pathlib
import random
import sys
import tempfile

import tokenizers
import transformers
from tokenizers import Regex, Tokenizer, normalizers
from tokenizers import pre_tokenizers as pre
from transformers import AutoTokenizer, PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "SparsityTextTests" / "Fixtures" / "bpe"
FIXTURE = OUT / "smollm2_cases.json"
DEFAULT_MODEL = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "SmolLM2-135M-Instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# The Split regexes of Llama 3's and Qwen2's tokenizer.json.
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_level(use_regex):
    return pre.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=use_regex)


def pre_tokenizers():
    return {
        "gpt2": byte_level(True),
        "smollm": pre.Sequence([pre.Digits(individual_digits=True), byte_level(True)]),
        "llama3": pre.Sequence([pre.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
                                byte_level(False)]),
        "qwen2": pre.Sequence([pre.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
                               byte_level(False)]),
    }


PLAIN_CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


# Spellings of ChatML templates that Jinja renders in other ways or the same: whitespace control,
# trim_blocks / lstrip_blocks, comments, CRLF, escapes, attribute access, split literals.
TEMPLATE_VARIANTS = {
    "smolWhitespaceControl": r"""{#- SmolLM2 -#}
{%- for message in messages %}
    {%- if loop.first and messages[0].role != "system" %}
        {{- "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" }}
    {%- endif %}
    {{- '<|im_start|>' ~ message.role ~ '\n' }}{{ message['content'] + "<|im_end|>" + '\x0a' -}}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\n' }}
{%- endif %}
""",
    "smolIndentedOutput": (
        r"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        r"{{ '<|im_start|>system\u000aYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>' }}"
        r"{{ '\n' }}{% endif %}" "\n  "
        r"{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        r"{% endfor %}" "\n    " r"{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}" "\n"),
    "plainCommentsAndCRLF": (
        "{% for message in messages %}\n  {# c #}\n{{'<|im_start|>' + message['role'] + '\\n' + "
        "message['content'] + '<|im_end|>\\n'}}\r\n\t{% endfor %}"
        "{% if add_generation_prompt %}\n{{ '<|im_start|>assistant\\n' }}{% endif %}"),
}


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: the scalar standing for each byte value."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def texts():
    t = [
        "", "Hello world", "Hello, world!", " Hello world", "Hello world ", "  leading two", "trailing two  ",
        "The quick brown fox jumps over the lazy dog.",
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
        # Numbers.
        "1234567", "3.14", "-0.5e10", "x  1", "a 1", "a  12 b   345", "0x1F 0b1010 1_000_000", "v2.0.1-rc3",
        "Prices: $19.99, €5, ¥1000, 50%", "٣٤٥ ١٢ Ⅻ ½ ² ³", "3rd 21st 1990s",
        # Contractions.
        "I can't believe it's not butter!", "we'll we've we're I'm he'd", "WE'LL IT'S I'M YOU'RE THEY'VE HE'D DON'T",
        "It'S 'S 'LL 'Re 'rE 'd", "''s 's '' ' s", "rock 'n' roll", "the dog's bone", "long s: a'ſ b",
        # Code.
        "def foo(x):\n    return x ** 2\n",
        "int main(int argc, char **argv) {\n\tprintf(\"%d\\n\", argc);\n\treturn 0;\n}\n",
        "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }",
        "const f = async (a, b) => { await g(a?.b ?? 0); };",
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
        "<div class=\"x\">&nbsp;</div>", "#!/bin/bash\nfor i in $(seq 1 10); do echo \"$i\"; done",
        "x+=1;y-=2;z*=3", "a==b!=c<=d>=e", "path/to/file.txt C:\\Windows\\System32",
        "https://example.com/a?b=c&d=e#f", "user@example.com",
        # Accented Latin and other scripts.
        "café résumé naïve coöperate façade jalapeño piñata", "Crème brûlée à la mode", "e\u0301 vs \u00e9",
        "Ångström Øresund Æsir smørrebrød straße", "Zażółć gęślą jaźń", "Привет, мир!", "Γειά σου Κόσμε",
        "你好，世界！", "日本語のテキストです。", "한국어 텍스트", "مرحبا بالعالم", "नमस्ते दुनिया", "שלום עולם", "ภาษาไทย",
        # Emoji.
        "I love 🤗 and 😀!", "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇩🇪", "emoji🙂glued", "❤️ ✔️ ©️",
        # Whitespace.
        "a\tb", "\t\tindented", "a\n\nb", "line1\r\nline2\r\n", "\n", "\n\n\n", "   ", " ", "\t", "a \n b",
        "  \n  foo", "tabs\t\t\tand spaces   mixed \t ", "a\u00a0b \u00a0 c", "full\u3000width\u3000space",
        "zero\u200bwidth\u200djoiner\ufeffbom", "a\u2028b\u2029c", "a\u0085\u0085b", "x\x1c\x1d y\x1fz",
        "\x00nul\x7fdel", "a\rb", "\r\n\r\n",
        # Special tokens.
        "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
        "word<|im_end|>glued", "<|endoftext|><|endoftext|>", "<|im_start|", "<|im_start|><|im_start|>",
        "before <|im_end|> after", "<repo_name>x<file_sep>y", "<|im_start|>system<|im_end|>",
        # Long runs.
        "a" * 200, " " * 50, "!" * 40, "ab" * 80, "1" * 60, "\n" * 20, "😀" * 10,
    ]
    # Seeded random strings over the characters above.
    alphabet = [
        "a", "Z", "é", "e\u0301", "ß", "ſ", "1", "٣", "½", "Ⅻ", " ", "  ", "\t", "\n", "\r\n", "\u00a0",
        "\u3000", "\u200b", "\u200d", "'", "'s", "'S", "'ll", "'LL", "'Re", ".", ",", "!", "?", "-", "_",
        "(", ")", "{", "}", "<", ">", "/", "\\", "\"", "$", "€", "中", "文", "日本", "한", "ا", "ب", "न",
        "ि", "😀", "👍🏽", "🇫🇷", "👨‍👩‍👧", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start", "|>",
        "\x00", "\x1c", "\x7f", "\u0085", "\u2028", "\ufeff", "🤗", "hello", " world", "123", "ing",
    ]
    rng = random.Random(20250601)
    for _ in range(150):
        t.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))))
    seen, unique = set(), []
    for text in t:
        if text not in seen:
            seen.add(text)
            unique.append(text)
    return unique


def conversations():
    return [
        ([{"role": "user", "content": "Hello!"}], True),
        ([{"role": "user", "content": "Hello!"}], False),
        ([{"role": "system", "content": "You are a pirate."},
          {"role": "user", "content": "What is 2+2?"}], True),
        ([{"role": "user", "content": "Write a haiku about 🌸.\nPlease."},
          {"role": "assistant", "content": "Petals fall softly\n  — the end"},
          {"role": "user", "content": "Merci beaucoup ! 日本語で？"}], True),
        ([{"role": "system", "content": ""}, {"role": "user", "content": ""}], False),
        ([{"role": "user", "content": "first"}, {"role": "system", "content": "late system"}], True),
        ([{"role": "tool", "content": "{\"result\": 4}"}], True),
    ]


def gguf_dump(path):
    from gguf import GGUFReader
    reader = GGUFReader(str(path))
    fields = reader.fields

    def strings(key):
        field = fields[key]
        return [bytes(field.parts[i]).decode("utf-8") for i in field.data]

    def scalar(key):
        field = fields.get(key)
        if field is None:
            return None
        value = field.parts[field.data[0]]
        if len(field.types) == 1 and field.types[0].name == "STRING":
            return bytes(value).decode("utf-8")
        return value.tolist()[0]

    return {
        "source": f"gguf-py GGUFReader of {path.name}",
        "model": scalar("tokenizer.ggml.model"),
        "pre": scalar("tokenizer.ggml.pre"),
        "tokens": strings("tokenizer.ggml.tokens"),
        "merges": strings("tokenizer.ggml.merges"),
        "tokenTypes": [int(fields["tokenizer.ggml.token_type"].parts[i][0])
                       for i in fields["tokenizer.ggml.token_type"].data],
        "bos": scalar("tokenizer.ggml.bos_token_id"),
        "eos": scalar("tokenizer.ggml.eos_token_id"),
        "unknown": scalar("tokenizer.ggml.unknown_token_id"),
        "padding": scalar("tokenizer.ggml.padding_token_id"),
        "addBOS": bool(scalar("tokenizer.ggml.add_bos_token") or False),
        "chatTemplate": scalar("tokenizer.chat_template"),
    }


def check_export(path, fixture):
    fast = PreTrainedTokenizerFast(tokenizer_file=str(path))
    raw = Tokenizer.from_file(str(path))
    bad = 0
    for case in fixture["cases"]:
        for name, ids in (("Tokenizer", raw.encode(case["text"]).ids),
                          ("PreTrainedTokenizerFast", fast(case["text"])["input_ids"])):
            if ids != case["ids"]:
                bad += 1
                print(f"{name} differs on {case['text']!r}: {ids[:12]} vs {case['ids'][:12]}")
        if raw.decode(case["ids"], skip_special_tokens=False) != case["decoded"]:
            bad += 1
            print(f"decode differs on {case['text']!r}")
    for chat in fixture["chat"]:
        if raw.encode(chat["rendered"]).ids != chat["ids"]:
            bad += 1
            print(f"chat rendering ids differ: {chat['rendered']!r}")
    print(f"{path}: {len(fixture['cases'])} texts, {bad} mismatches "
          f"(tokenizers {tokenizers.__version__}, transformers {transformers.__version__})")
    return bad == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    parser.add_argument("--check-export", type=pathlib.Path)
    args = parser.parse_args()
    if args.check_export:
        with open(FIXTURE, encoding="ascii") as f:
            fixture = json.load(f)
        sys.exit(0 if check_export(args.check_export, fixture) else 1)

    model = args.model.expanduser().resolve()
    gguf_path = model / GGUF_NAME
    if not gguf_path.is_file():
        sys.exit(f"error: {gguf_path} not found; run scripts/fetch_smollm2.py first")

    # Load from a folder holding only the GGUF, so that a tokenizer.json written by an earlier run
    # is never what gets loaded.
    with tempfile.TemporaryDirectory() as scratch:
        os.symlink(gguf_path, pathlib.Path(scratch) / GGUF_NAME)
        reference = AutoTokenizer.from_pretrained(scratch, gguf_file=GGUF_NAME)
        gpt2_reference = AutoTokenizer.from_pretrained(scratch, gguf_file=GGUF_NAME)
    declared = json.loads(reference.backend_tokenizer.to_str())["pre_tokenizer"]
    assert declared == {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                        "use_regex": True}, declared
    reference.backend_tokenizer.pre_tokenizer = pre_tokenizers()["smollm"]

    dump = gguf_dump(gguf_path)
    assert dump["model"] == "gpt2" and dump["pre"] == "smollm", (dump["model"], dump["pre"])
    assert reference.chat_template == dump["chatTemplate"]

    splitters = pre_tokenizers()
    nfc = normalizers.NFC()
    cases, differing = [], []
    for text in texts():
        ids = reference(text)["input_ids"]
        gpt2_ids = gpt2_reference(text)["input_ids"]
        decoded = reference.decode(ids, clean_up_tokenization_spaces=False)
        case = {
            "text": text, "ids": ids, "gpt2Ids": gpt2_ids, "decoded": decoded,
            "decodedSkippingSpecial": reference.decode(
                ids, skip_special_tokens=True, clean_up_tokenization_spaces=False),
            "pieces": {name: [p for p, _ in s.pre_tokenize_str(text)] for name, s in splitters.items()},
        }
        if nfc.normalize_str(text) != text:
            case["nfc"] = nfc.normalize_str(text)
        if reference.decode(ids) != decoded:
            print(f"note: default decode cleans up spaces in {text!r}")
        if gpt2_ids != ids:
            differing.append(text)
        cases.append(case)

    chats = []
    for template_name, template in (("gguf", None), ("plainChatML", PLAIN_CHATML)):
        for messages, generation in conversations():
            rendered = reference.apply_chat_template(
                messages, chat_template=template, tokenize=False, add_generation_prompt=generation)
            chats.append({"template": template_name, "messages": messages,
                          "addGenerationPrompt": generation, "rendered": rendered,
                          "ids": reference(rendered)["input_ids"]})

    variants = []
    for name, template in TEMPLATE_VARIANTS.items():
        variants.append({"name": name, "jinja": template, "rendered": [
            reference.apply_chat_template(messages, chat_template=template, tokenize=False,
                                          add_generation_prompt=generation)
            for messages, generation in conversations()]})

    # Decoding ill-formed UTF-8: prefixes of multi-byte encodings, and byte tokens.
    byte_chars = bytes_to_unicode()
    lossy = []
    for text in ["😀日本é", "👨‍👩‍👧‍👦!", "naïve 中文"]:
        ids = reference(text)["input_ids"]
        lossy += [ids[:k] for k in range(1, len(ids))]
    for sequence in [[0xE6, 0x97], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80],
                     [0xE0, 0x80, 0x80], [0x80, 0x80, 0x61], [0xF0, 0x9F, 0x98, 0x61], [0xE2, 0x82],
                     [0x61, 0xF0, 0x9F, 0x92], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xEF, 0xBF, 0xBE]]:
        ids = [reference.convert_tokens_to_ids(byte_chars[b]) for b in sequence]
        if None not in ids and reference.unk_token_id not in ids:
            lossy.append(ids)
    lossy_decodes = [{"ids": ids, "decoded": reference.decode(ids, clean_up_tokenization_spaces=False)}
                     for ids in lossy]

    fixture = {
        "source": f"transformers {transformers.__version__} AutoTokenizer from {GGUF_NAME} (GGUF "
                  f"conversion, pre-tokenizer corrected to smollm), tokenizers {tokenizers.__version__}",
        "vocabularySize": len(dump["tokens"]),
        "bos": reference.bos_token_id, "eos": reference.eos_token_id,
        "chatTemplate": dump["chatTemplate"],
        "plainChatMLTemplate": PLAIN_CHATML,
        "patterns": {"llama3": LLAMA3_PATTERN, "qwen2": QWEN2_PATTERN},
        "missingBytes": [b for b in range(256) if byte_chars[b] not in reference.get_vocab()],
        "cases": cases,
        "lossyDecodes": lossy_decodes,
        "chat": chats,
        "templateVariants": variants,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    with open(FIXTURE, "w", encoding="ascii") as f:
        f.write("{\n")
        keys = list(fixture)
        for index, key in enumerate(keys):
            end = ",\n" if index + 1 < len(keys) else "\n"
            if key in ("cases", "lossyDecodes", "chat", "templateVariants"):
                f.write(f'"{key}": [\n')
                f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in fixture[key]))
                f.write("\n]" + end)
            else:
                f.write(f"{json.dumps(key)}: {json.dumps(fixture[key])}{end}")
        f.write("}\n")

    # Not committed: the reference tokenizer as a Hugging Face folder, and the GGUF arrays.
    reference.save_pretrained(str(model))
    with open(model / "gguf-vocab.json", "w", encoding="utf-8") as f:
        json.dump(dump, f, ensure_ascii=False)
    print(f"wrote {len(cases)} cases and {len(chats)} chat renderings to {FIXTURE.relative_to(ROOT)}")
    print(f"wrote {model}/tokenizer.json, tokenizer_config.json, gguf-vocab.json")
    print(f"the uncorrected (GPT-2 pre-tokenizer) GGUF conversion differs on {len(differing)} texts, e.g. "
          f"{differing[:6]!r}")


if __name__ == "__main__":
    main()

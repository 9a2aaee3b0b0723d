#!/usr/bin/env python3
"""Writes Sources/SparsityText/BertNormalizationTables.swift, the per-code-point tables of the
BERT normalizer and pre-tokenizer as the Hugging Face `tokenizers` library applies them.

Usage (from the repository root, with the model folder from scripts/fetch_minilm.py):

    /work/venv/bin/python scripts/make_tokenizer_tables.py [--model DIR]

Why tables instead of the Unicode data of the Swift runtime: all-MiniLM-L6-v2's tokenizer.json
uses `tokenizers`' BertNormalizer and BertPreTokenizer, whose character categories (control,
nonspacing mark, punctuation) come from a crate with Unicode 8.0 tables, while lower-casing uses
the current Unicode of the Rust standard library and NFD its own crate. A character assigned
after Unicode 8.0 is "unassigned" there and is kept as it is (for example U+1734, a Mn in
Unicode 8 and an Mc now, is stripped; U+061D, a Po since Unicode 14, does not split words;
most emoji after 2016 are kept and make their word [UNK]). Tying the Swift tokenizer to the
Unicode version of whichever Swift runtime runs it would not give the model's ids. So the
script asks the library itself, code point by code point:

  * `clean`: BertNormalizer(clean_text, handle_chinese_chars, no accents, no lower-case) on the
    character alone gives '' (removed: U+0000, U+FFFD, Cc/Cf/Co/Cs of Unicode 8 except
    tab/newline/CR), ' ' (whitespace: tab, newline, CR, White_Space) or ' c ' (a CJK ideograph in
    BERT's ranges, as `tokenizers` spells them: 0x2B920, not 0x2B820, starts the 5th range);
  * `full`: the model's normalizer (clean, CJK, NFD, strip Mn, lower-case) on the character;
  * punctuation: the model's pre-tokenizer on "a" + c + "b" isolates c.

Applying the normalizer character by character equals applying it to a whole text except for
the canonical reordering of NFD among combining marks that survive stripping (marks assigned
after Unicode 8.0 and a few Mc); no vocabulary entry contains such a mark (checked below), so a
word holding one is [UNK] in any order and the ids are the same.
"""
import argparse
import pathlib
import sys
import unicodedata

import tokenizers
from tokenizers import Tokenizer, normalizers

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Sources" / "SparsityText" / "BertNormalizationTables.swift"
DEFAULT_MODEL = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "all-MiniLM-L6-v2"

# Kinds, as `BertNormalization.Kind` in Swift.
KEEP, REMOVE, SPACE, IDEOGRAPH, IDEOGRAPH_MAPPED, STRIPPED, MAPPED, HANGUL = range(8)
KIND_NAMES = ["keep", "remove", "space", "ideograph", "ideographMapped", "stripped", "mapped", "hangul"]


def hangul_nfd(cp):
    s = cp - 0xAC00
    lead, vowel, trail = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
    return [lead, vowel] + ([trail] if trail != 0x11A7 else [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    tokenizer_json = args.model / "tokenizer.json"
    if not tokenizer_json.is_file():
        sys.exit(f"error: {tokenizer_json} not found; run scripts/fetch_minilm.py first")
    model = Tokenizer.from_file(str(tokenizer_json))
    spec = model.to_str()
    for needle in ['"type":"BertNormalizer"', '"lowercase":true', '"handle_chinese_chars":true',
                   '"clean_text":true', '"strip_accents":null', '"type":"BertPreTokenizer"']:
        if needle not in spec.replace(" ", ""):
            sys.exit(f"error: tokenizer.json is not the expected BERT pipeline ({needle} missing)")
    full, pre = model.normalizer, model.pre_tokenizer
    clean = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)

    kinds, payloads, mappings, punctuation = [], [], [], []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:  # surrogates are no Unicode scalars; never looked up
            kinds.append(REMOVE)
            payloads.append(0)
            continue
        c = chr(cp)
        cleaned, normalized = clean.normalize_str(c), full.normalize_str(c)
        pieces = pre.pre_tokenize_str("a" + c + "b")
        if len(pieces) == 3:
            punctuation.append(cp)
        elif len(pieces) == 2:  # whitespace to the pre-tokenizer: the normalizer got it first
            assert cleaned in ("", " "), hex(cp)
        payload = 0
        if cleaned == "":
            kind = REMOVE
        elif cleaned == " ":
            kind = SPACE
        elif cleaned == f" {c} ":
            inner = normalized[1:-1]
            assert normalized[0] == normalized[-1] == " " and len(inner) == 1, hex(cp)
            if inner == c:
                kind = IDEOGRAPH
            else:
                kind, payload = IDEOGRAPH_MAPPED, len(mappings)
                mappings.append([ord(inner)])
        else:
            assert cleaned == c, hex(cp)
            if normalized == c:
                kind = KEEP
            elif normalized == "":
                kind = STRIPPED
            elif 0xAC00 <= cp <= 0xD7A3:
                assert [ord(x) for x in normalized] == hangul_nfd(cp), hex(cp)
                kind = HANGUL
            else:
                assert not any(x.isspace() for x in normalized), hex(cp)
                kind, payload = MAPPED, len(mappings)
                mappings.append([ord(x) for x in normalized])
        kinds.append(kind)
        payloads.append(payload)

    # Runs: a new run where the kind changes; a mapped run's payload is the index of its first
    # code point's mapping and the next code points take the next mappings in order.
    starts, run_kinds, run_payloads = [], [], []
    for cp in range(0x110000):
        k = kinds[cp]
        if run_kinds and run_kinds[-1] == k:
            if k in (MAPPED, IDEOGRAPH_MAPPED):
                assert payloads[cp] == run_payloads[-1] + (cp - starts[-1])
            continue
        starts.append(cp)
        run_kinds.append(k)
        run_payloads.append(payloads[cp])

    punct_ranges = []
    for cp in punctuation:
        if punct_ranges and punct_ranges[-1][1] + 1 == cp:
            punct_ranges[-1][1] = cp
        else:
            punct_ranges.append([cp, cp])

    # The vocabulary holds no combining mark that survives stripping (see the module docstring).
    vocab = args.model / "vocab.txt"
    if vocab.is_file():
        chars = set(vocab.read_text(encoding="utf-8"))
        marks = [c for c in chars if unicodedata.combining(c) and full.normalize_str(c) == c]
        assert not marks, marks

    mapping_ends, mapping_scalars = [], []
    for m in mappings:
        mapping_scalars.extend(m)
        mapping_ends.append(len(mapping_scalars))
    assert len(mapping_scalars) < 65536

    def literal(values, width, per_line):
        lines = []
        for i in range(0, len(values), per_line):
            lines.append("    " + ", ".join(f"0x{v:0{width}X}" for v in values[i:i + per_line]) + ",")
        return "\n".join(lines)

    counts = {name: run_kinds.count(i) for i, name in enumerate(KIND_NAMES)}
    text = f"""// Generated by scripts/make_tokenizer_tables.py from Hugging Face tokenizers {tokenizers.__version__}
// (all-MiniLM-L6-v2's tokenizer.json: BertNormalizer + BertPreTokenizer). Do not edit by hand.
// {len(starts)} runs ({", ".join(f"{v} {k}" for k, v in counts.items())}), {len(mappings)} mappings,
// {len(punct_ranges)} punctuation ranges.

extension BertNormalization {{
  /// First code point of each run of code points that the normalizer treats alike; a run ends
  /// where the next begins and the last one at U+10FFFF.
  static let runStarts: [UInt32] = [
{literal(starts, 5, 10)}
  ]

  /// The ``Kind`` raw value of each run in ``runStarts``.
  static let runKinds: [UInt8] = [
{literal(run_kinds, 1, 24)}
  ]

  /// For ``Kind/mapped`` and ``Kind/ideographMapped`` runs: the index in ``mappingEnds`` of the
  /// run's first code point; the following code points of the run take the following mappings.
  static let runPayloads: [UInt16] = [
{literal(run_payloads, 4, 14)}
  ]

  /// End offset in ``mappingScalars`` of each mapping (the start is the previous end, or 0).
  static let mappingEnds: [UInt16] = [
{literal(mapping_ends, 4, 14)}
  ]

  /// The scalars that mapped code points become (NFD, nonspacing marks removed, lower-cased).
  static let mappingScalars: [UInt32] = [
{literal(mapping_scalars, 5, 10)}
  ]

  /// Inclusive ranges of the code points that the pre-tokenizer isolates as punctuation, as
  /// pairs (first, last).
  static let punctuationRanges: [UInt32] = [
{literal([v for r in punct_ranges for v in r], 5, 10)}
  ]
}}
"""
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(starts)} runs {counts}, {len(mappings)} mappings "
          f"({len(mapping_scalars)} scalars), {len(punct_ranges)} punctuation ranges")


if __name__ == "__main__":
    main()

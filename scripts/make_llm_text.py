#!/usr/bin/env python3
"""Builds Sources/SparsityRecipes/Resources/llm-text.json: English prose for calibrating,
evaluating (perplexity) and timing the Llama-family decoder (SmolLM2), made offline from text
that may be redistributed.

    /work/venv/py/bin/python scripts/make_llm_text.py [--model GGUF] [--out FILE]

Text: the same sources as scripts/make_sentence_corpus.py (whose document walk and paragraph
splitter it reuses): the docstrings of the Python standard library's own .py files (parsed with
`ast`, nothing imported; tests, site-packages, lib2to3, turtledemo skipped) and the help topics of
`pydoc_data.topics`. Copyright (c) 2001-2023 Python Software Foundation, PSF License Agreement
version 2 (sentences-LICENSE.txt, the interpreter's LICENSE.txt, already sits beside the file).
Changes made: paragraphs re-flowed onto one line (runs of whitespace become one space); code,
lists, headings, doctests and paragraphs with markup dropped.

A paragraph (a run of unindented lines, see make_sentence_corpus.paragraphs) is kept when it has
at least 25 words, starts with a capital letter (or an opening quote/bracket), ends with . ! or ?,
has balanced brackets, no backticks (reST roles, literals), no developer notes (XXX, TODO, FIXME),
at least 85% plain words (make_sentence_corpus.plain_word) and at least 70% letters among its
non-space characters, and tokenizes to at most MAX_PARAGRAPH_TOKENS SmolLM2 tokens. Paragraphs
are deduplicated on their lower-cased words.

Sections (disjoint: no source group - a top-level package/module or a help topic - feeds both):
* heldout: one text, paragraphs joined with "\\n\\n". Source groups are taken in a seeded random
  order, each contributing its paragraphs in document order up to HELDOUT_GROUP_CAP tokens, until
  the joined text tokenizes to at least HELDOUT_MIN_TOKENS tokens. Every paragraph of a group used
  here (including any beyond the cap) is kept out of calibration.
* calibration: a list of paragraph texts from all the other groups, round-robin over the groups
  in a seeded order (each group's paragraphs in a seeded shuffle), until the per-paragraph token
  counts total at least CALIBRATION_MIN_TOKENS.
Token counts use the SmolLM2 tokenizer of the GGUF (transformers AutoTokenizer with gguf_file,
no special tokens added) and are recorded in `tokens`.

Deterministic for a given interpreter (the committed file was made with CPython 3.11.7) and
tokenizer; it prints the file's size and SHA-256.
"""
import argparse
import collections
import hashlib
import json
import os
import pathlib
import random
import re
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_sentence_corpus as corpus  # noqa: E402  (documents, paragraphs, plain_word, group_of, ...)

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "Sources" / "SparsityRecipes" / "Resources" / "llm-text.json"
DEFAULT_MODEL = (pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "SmolLM2-135M-Instruct"
                 / "SmolLM2-135M-Instruct.Q4_1.gguf")
EXPECTED_PYTHON = "3.11.7"
SEED = 20250602
MIN_WORDS = 25
MAX_PARAGRAPH_TOKENS = 512
CALIBRATION_MIN_TOKENS = 80_000
HELDOUT_MIN_TOKENS = 24_000
HELDOUT_GROUP_CAP = 3_000
MAX_BYTES = 700_000


def good_paragraph(p):
    words = p.split()
    if len(words) < MIN_WORDS:
        return False
    if not re.match(r"^[\"“(]?[A-Z]", p) or not re.search(r"[.!?][\"”’)]*$", p):
        return False
    if "`" in p or re.search(r"\b(?:XXX|TODO|FIXME)\b", p) or not corpus.balanced(p):
        return False
    if sum(corpus.plain_word(w) for w in words) < 0.85 * len(words):
        return False
    letters = sum(c.isalpha() for c in p)
    return letters >= 0.70 * len(p.replace(" ", ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL, help="SmolLM2 .gguf (tokenizer)")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    python = ".".join(map(str, sys.version_info[:3]))
    if python != EXPECTED_PYTHON:
        print(f"make_llm_text: warning: Python {python}, the committed file was made with "
              f"{EXPECTED_PYTHON}; the output will differ", file=sys.stderr)

    from transformers import AutoTokenizer
    gguf_path = args.model.expanduser().resolve()
    from make_llama_fixtures import isolated_folder  # only the GGUF's own tokenizer, nothing beside it
    tokenizer = AutoTokenizer.from_pretrained(isolated_folder(gguf_path), gguf_file=gguf_path.name)

    def ntokens(text):
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    # Paragraphs per source group, in document order, deduplicated.
    seen = set()
    per_group = collections.OrderedDict()
    for source, text in corpus.documents():
        for p in corpus.paragraphs(text):
            p = re.sub(r"\s+", " ", p).strip()
            if not good_paragraph(p):
                continue
            k = corpus.key(p)
            if k in seen:
                continue
            n = ntokens(p)
            if n > MAX_PARAGRAPH_TOKENS:
                continue
            seen.add(k)
            per_group.setdefault(corpus.group_of(source), []).append((p, n))

    rng = random.Random(SEED)
    groups = sorted(per_group)
    rng.shuffle(groups)

    # Held-out: whole groups, each up to HELDOUT_GROUP_CAP tokens, in document order.
    heldout_parts, heldout_groups = [], []
    heldout_text, heldout_tokens = "", 0
    for g in groups:
        if heldout_tokens >= HELDOUT_MIN_TOKENS:
            break
        heldout_groups.append(g)
        taken = 0
        for p, n in per_group[g]:
            if taken >= HELDOUT_GROUP_CAP:
                break
            heldout_parts.append(p)
            taken += n
            heldout_text = "\n\n".join(heldout_parts)
            heldout_tokens = ntokens(heldout_text)
            if heldout_tokens >= HELDOUT_MIN_TOKENS:
                break
    if heldout_tokens < HELDOUT_MIN_TOKENS:
        sys.exit(f"held-out text has only {heldout_tokens} tokens")

    # Calibration: round-robin over the remaining groups.
    rest = [g for g in groups if g not in set(heldout_groups)]
    pools = {g: list(per_group[g]) for g in rest}
    for g in rest:
        rng.shuffle(pools[g])
    calibration, calibration_tokens, calibration_groups = [], 0, set()
    while calibration_tokens < CALIBRATION_MIN_TOKENS and any(pools.values()):
        for g in rest:
            if pools[g] and calibration_tokens < CALIBRATION_MIN_TOKENS:
                p, n = pools[g].pop()
                calibration.append(p)
                calibration_tokens += n
                calibration_groups.add(g)
    if calibration_tokens < CALIBRATION_MIN_TOKENS:
        sys.exit(f"calibration has only {calibration_tokens} tokens")

    # Checks.
    assert not calibration_groups & set(heldout_groups)
    keys = [corpus.key(p) for p in calibration + heldout_parts]
    assert len(keys) == len(set(keys)), "a paragraph repeats"
    assert sum(ntokens(p) for p in calibration) == calibration_tokens
    joined_calibration_tokens = ntokens("\n\n".join(calibration))

    doc = {
        "source": (f"English prose paragraphs from the docstrings of the Python {python} standard library and its "
                   "pydoc help topics (Language Reference text), made by scripts/make_llm_text.py. "
                   "Copyright (c) 2001-2023 Python Software Foundation; All Rights Reserved. "
                   "PSF License Agreement version 2 (see sentences-LICENSE.txt). Changes: paragraphs re-flowed "
                   "onto one line; code, lists, headings and markup removed."),
        "tokens": {
            "tokenizer": "SmolLM2-135M-Instruct (GGUF tokenizer.ggml, gpt2 BPE, pre=smollm), no special tokens",
            "calibration_paragraphs": len(calibration),
            "calibration_tokens": calibration_tokens,
            "calibration_tokens_joined": joined_calibration_tokens,
            "heldout_paragraphs": len(heldout_parts),
            "heldout_tokens": heldout_tokens,
        },
        "calibration_groups": sorted(calibration_groups),
        "heldout_groups": heldout_groups,
        "calibration": calibration,
        "heldout": heldout_text,
    }
    data = (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    if len(data) > MAX_BYTES:
        sys.exit(f"llm-text is {len(data)} bytes, over {MAX_BYTES}")
    args.out.write_bytes(data)
    counts = [n for g in calibration_groups for _, n in per_group[g]]
    print(f"calibration: {len(calibration)} paragraphs from {len(calibration_groups)} groups, {calibration_tokens} "
          f"tokens (joined with \\n\\n: {joined_calibration_tokens}); paragraph tokens {min(counts)}-{max(counts)}",
          file=sys.stderr)
    print(f"heldout: {len(heldout_parts)} paragraphs from {len(heldout_groups)} groups "
          f"({', '.join(heldout_groups)}), {heldout_tokens} tokens", file=sys.stderr)
    print(f"{len(data)} bytes; sha256 {hashlib.sha256(data).hexdigest()}", file=sys.stderr)
    print(args.out)


if __name__ == "__main__":
    main()

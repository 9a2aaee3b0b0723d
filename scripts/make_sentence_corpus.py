#!/usr/bin/env python3
"""Builds Sources/SparsityNN/Resources/sentences.json: a small English corpus for calibrating,
evaluating and timing all-MiniLM-L6-v2, made offline from text that may be redistributed.

    /work/venv/bin/python scripts/make_sentence_corpus.py [--model DIR] [--out FILE]

Text: the docstrings of the Python standard library's own .py files (parsed with `ast`, nothing
is imported; tests, site-packages, lib2to3, turtledemo and idlelib tests are skipped) and the
help topics of `pydoc_data.topics` (the Language Reference text as `help()` shows it). Both are
Copyright (c) 2001-2023 Python Software Foundation, PSF License Agreement version 2; the
interpreter's LICENSE.txt is copied next to the corpus as sentences-LICENSE.txt (the PSF license
asks for the license and copyright notice to be kept with derivative works).
Changes made to the text: prose paragraphs split into sentences; code, markup, lists and most
identifiers dropped.

Only prose is kept: paragraphs of unindented lines (indented blocks are code, grammar, argument
lists or notes), split into sentences, and a sentence is kept only when it has 5-60 words, starts
with a capital letter, ends with . ! or ?, has balanced brackets and quotes, and every word is a
plain word (letters, digits, hyphen, apostrophe; surrounding punctuation allowed) - so nothing
with `_`, `()`, `=`, `/`, `.` inside a word, backticks, reST roles or URLs survives; developer
notes (XXX, TODO, FIXME) are dropped too.
Sentences are deduplicated on their lower-cased words. Sections (all disjoint):

* retrieval: 64 queries, each the first kept sentence of a docstring or help topic (64 different
  packages/modules/topics) whose next 3 kept sentences are among the 512 documents (`relevant`
  lists their indices); the other 320 documents are sentences from packages/modules/topics
  that have no query.
* throughput: 256 texts, each a run of consecutive kept sentences of one source file (its
  docstrings in `ast.walk` order) or help topic that
  tokenizes (model tokenizer, no special tokens) to at least 130 WordPiece tokens, so truncation
  at 128 with [CLS]/[SEP] always gives 128 tokens; checked with the tokenizer.
* calibration (512) and evaluation (256): the remaining sentences, each at most 126 tokens
  (never truncated at 128), drawn round-robin over source files in a seeded random order so every
  section mixes topics; sentences alternate between the two sections (2 : 1).

Deterministic for a given interpreter (the committed file was made with CPython 3.11.7) and
tokenizer; it prints the file's SHA-256.
"""
import argparse
import ast
import collections
import hashlib
import json
import os
import pathlib
import random
import re
import shutil
import sys
import sysconfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "Sources" / "SparsityNN" / "Resources" / "sentences.json"
DEFAULT_MODEL = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "all-MiniLM-L6-v2"
EXPECTED_PYTHON = "3.11.7"
SEED = 20240606

N_CALIBRATION, N_EVALUATION = 512, 256
N_QUERIES, N_DOCUMENTS, RELATED_PER_QUERY = 64, 512, 3
N_THROUGHPUT, THROUGHPUT_MIN_TOKENS = 256, 130
MAX_SHORT_TOKENS = 126
MAX_BYTES = 400_000

SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__", "_bundled", "lib2to3", "turtledemo"}
SKIP_FILES = {"this.py"}  # the Zen of Python, rot13-encoded
ABBREVIATIONS = {"e.g.", "i.e.", "etc.", "vs.", "cf.", "mr.", "mrs.", "dr.", "no.", "st.", "approx."}
WORD = re.compile(r"^(?:[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*|\d+(?:[.,]\d+)*%?)$")
LEADING = "\"'“‘("
TRAILING = "\"'”’).,;:!?"
LIST_MARKER = re.compile(r"^(?:[-*+•]\s|\d+[.)]\s|\(?[a-z]\)\s|[ivx]+\.\s)")
SPLIT_POINT = re.compile(r"[.!?][\"”’)]*\s+(?=[\"“(]?[A-Z])")


def stdlib_files():
    root = sysconfig.get_paths()["stdlib"]
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("config-"))
        for name in sorted(names):
            if name.endswith(".py") and name not in SKIP_FILES:
                path = os.path.join(folder, name)
                yield os.path.relpath(path, root), path


def documents():
    """(source, text) pairs: one per docstring or help topic, in a fixed order."""
    for rel, path in stdlib_files():
        try:
            tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)  # cleandoc'ed: prose starts in column 0
                if doc:
                    yield rel, doc
    from pydoc_data.topics import topics
    for name in sorted(topics):
        yield f"topic:{name}", topics[name]


def paragraphs(text):
    """Runs of unindented, non-blank lines; list items, headings and doctest lines end a run
    and the paragraph containing them is dropped."""
    lines = text.replace("\t", "        ").splitlines() + [""]
    current, bad = [], False
    for i, line in enumerate(lines):
        stripped = line.strip()
        unindented = stripped and not line[0].isspace()
        if unindented:
            underline = i + 1 < len(lines) and re.fullmatch(r"[-=*~^#+]{3,}", lines[i + 1].strip() or "x")
            if (stripped.startswith((">>>", "...")) or LIST_MARKER.match(stripped) or underline
                    or re.fullmatch(r"[-=*~^#+]{3,}", stripped)):
                bad = True
            current.append(stripped)
            continue
        if current and not bad:
            yield " ".join(current)
        current, bad = [], False


def split_sentences(paragraph):
    text = re.sub(r"\s+", " ", paragraph).strip()
    out, start = [], 0
    for m in SPLIT_POINT.finditer(text):
        candidate = text[start:m.start() + 1]
        last = candidate.split()[-1].lower() if candidate.split() else ""
        if last in ABBREVIATIONS or re.fullmatch(r"[a-z]\.", last):  # e.g. / initials
            continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def plain_word(word):
    if word.lower() in ABBREVIATIONS:
        return True
    core = word.lstrip(LEADING).rstrip(TRAILING)
    return bool(core) and bool(WORD.match(core))


def balanced(s):
    if s.count("(") != s.count(")") or s.count('"') % 2 or s.count("“") != s.count("”"):
        return False
    depth = 0
    for c in s:
        depth += (c == "(") - (c == ")")
        if depth < 0:
            return False
    return True


def good_sentence(s):
    words = s.split()
    if not 5 <= len(words) <= 60:
        return False
    if not re.match(r"^[\"“(]?[A-Z]", s) or not re.search(r"[.!?][\"”’)]*$", s):
        return False
    if not all(plain_word(w) for w in words) or not balanced(s):
        return False
    letters = sum(c.isalpha() for c in s)
    if letters < 0.75 * len(s.replace(" ", "")):
        return False
    if sum(w.strip(LEADING + TRAILING).isupper() for w in words) > len(words) // 3:  # headings, constants
        return False
    if re.search(r"\b(?:XXX|TODO|FIXME)\b", s):  # developer notes
        return False
    if s.rstrip(TRAILING).endswith((" e.g", " i.e")) or s.endswith(":"):
        return False
    return True


def key(sentence):
    return " ".join(re.findall(r"[a-z0-9]+", sentence.lower()))


def collect():
    """Per document: its list of paragraphs, each a list of kept sentences (in order)."""
    seen = set()
    docs = []
    for source, text in documents():
        paras = []
        for p in paragraphs(text):
            kept = []
            for s in split_sentences(p):
                if good_sentence(s):
                    k = key(s)
                    if k in seen:
                        kept.append(None)  # a duplicate breaks adjacency
                        continue
                    seen.add(k)
                    kept.append(s)
                else:
                    kept.append(None)  # a dropped sentence breaks adjacency
            if any(kept):
                paras.append(kept)
        if paras:
            docs.append((source, paras))
    return docs


def group_of(source):
    """Files of one package count as one source for the topic mix (email/..., topic:...)."""
    if source.startswith("topic:"):
        return source
    return source.split(os.sep)[0].removesuffix(".py")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL, help="model folder (tokenizer)")
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    python = ".".join(map(str, sys.version_info[:3]))
    if python != EXPECTED_PYTHON:
        print(f"make_sentence_corpus: warning: Python {python}, the committed corpus was made with "
              f"{EXPECTED_PYTHON}; the output will differ", file=sys.stderr)

    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(str(args.model))

    def ntokens(text):
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    rng = random.Random(SEED)
    docs = collect()
    used = set()

    # Retrieval: query = first kept sentence of a docstring/topic, its next RELATED_PER_QUERY kept
    # sentences are the relevant documents; one docstring/topic per source group.
    candidates = []
    for source, paras in docs:
        run = [s for para in paras for s in para if s is not None][:1 + RELATED_PER_QUERY]
        if len(run) == 1 + RELATED_PER_QUERY:
            candidates.append((group_of(source), run))
    rng.shuffle(candidates)
    queries, related, query_groups = [], [], set()
    for group, run in candidates:
        if group in query_groups or any(ntokens(s) > MAX_SHORT_TOKENS for s in run):
            continue
        query_groups.add(group)
        queries.append(run[0])
        related.append(run[1:])
        used.update(run)
        if len(queries) == N_QUERIES:
            break
    if len(queries) < N_QUERIES:
        sys.exit(f"only {len(queries)} retrieval queries found")

    # Throughput: runs of consecutive kept sentences of one source file or topic, >= 130 tokens.
    per_source = collections.defaultdict(list)  # source file or topic -> its kept sentences in order
    for source, paras in docs:
        per_source[source].extend(s for para in paras for s in para if s is not None and s not in used)
    pieces = []
    for source, sentences in per_source.items():
        text, count = [], 0
        for s in sentences:
            text.append(s)
            count += ntokens(s)
            if count >= THROUGHPUT_MIN_TOKENS + 4:
                joined = " ".join(text)
                if ntokens(joined) >= THROUGHPUT_MIN_TOKENS:
                    pieces.append((group_of(source), joined, list(text)))
                    text, count = [], 0
    by_group = collections.defaultdict(list)
    for group, joined, parts in pieces:
        by_group[group].append((joined, parts))
    groups = sorted(by_group)
    rng.shuffle(groups)
    throughput = []
    while len(throughput) < N_THROUGHPUT and any(by_group[g] for g in groups):
        for g in groups:
            if by_group[g] and len(throughput) < N_THROUGHPUT:
                joined, parts = by_group[g].pop(0)
                throughput.append(joined)
                used.update(parts)
    if len(throughput) < N_THROUGHPUT:
        sys.exit(f"only {len(throughput)} throughput texts found")

    # Everything else: single sentences, round-robin over source groups in a seeded order.
    pool = collections.defaultdict(list)
    for source, paras in docs:
        for para in paras:
            for s in para:
                if s is not None and s not in used and ntokens(s) <= MAX_SHORT_TOKENS:
                    pool[group_of(source)].append(s)
    groups = sorted(pool)
    rng.shuffle(groups)
    for g in groups:
        rng.shuffle(pool[g])

    def round_robin(exclude_groups=()):
        while True:
            progressed = False
            for g in groups:
                if g in exclude_groups or not pool[g]:
                    continue
                progressed = True
                yield pool[g].pop()
            if not progressed:
                return

    # Distractor documents come from groups that have no query.
    distractors = []
    for s in round_robin(exclude_groups=query_groups):
        distractors.append(s)
        if len(distractors) == N_DOCUMENTS - N_QUERIES * RELATED_PER_QUERY:
            break
    tagged = [(s, q) for q, rel in enumerate(related) for s in rel] + [(s, None) for s in distractors]
    if len(tagged) != N_DOCUMENTS:
        sys.exit(f"only {len(tagged)} retrieval documents")
    rng.shuffle(tagged)
    documents_ = [s for s, _ in tagged]
    relevant = [[i for i, (_, q) in enumerate(tagged) if q == query] for query in range(N_QUERIES)]

    calibration, evaluation = [], []
    for i, s in enumerate(round_robin()):
        (evaluation if i % 3 == 2 else calibration).append(s)
        if len(calibration) >= N_CALIBRATION and len(evaluation) >= N_EVALUATION:
            break
    calibration, evaluation = calibration[:N_CALIBRATION], evaluation[:N_EVALUATION]
    if len(calibration) < N_CALIBRATION or len(evaluation) < N_EVALUATION:
        sys.exit("not enough sentences for calibration/evaluation")

    # Checks.
    sections = {"calibration": calibration, "evaluation": evaluation, "queries": queries,
                "documents": documents_, "throughput": throughput}
    keys = [key(s) for texts in sections.values() for s in texts]
    assert len(keys) == len(set(keys)), "sections overlap or repeat a text"
    for text in throughput:
        n = ntokens(text)
        assert n >= THROUGHPUT_MIN_TOKENS, (n, text)
        batch = tokenizer(text, truncation=True, max_length=128)["input_ids"]
        assert len(batch) == 128 and batch[0] == tokenizer.cls_token_id and batch[-1] == tokenizer.sep_token_id
    for name in ("calibration", "evaluation", "queries", "documents"):
        for s in sections[name]:
            assert ntokens(s) <= MAX_SHORT_TOKENS and 5 <= len(s.split()) <= 60, s

    shutil.copyfile(pathlib.Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt",
                    args.out.with_name("sentences-LICENSE.txt"))
    corpus = {
        "source": (f"English sentences from the docstrings of the Python {python} standard library and its "
                   "pydoc help topics (Language Reference text), made by scripts/make_sentence_corpus.py. "
                   "Copyright (c) 2001-2023 Python Software Foundation; All Rights Reserved. "
                   "PSF License Agreement version 2 (see sentences-LICENSE.txt). Changes: prose split into "
                   "sentences, code and markup removed."),
        "calibration": calibration,
        "evaluation": evaluation,
        "retrieval": {"queries": queries, "documents": documents_, "relevant": relevant},
        "throughput": throughput,
    }
    data = (json.dumps(corpus, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    if len(data) > MAX_BYTES:
        sys.exit(f"corpus is {len(data)} bytes, over {MAX_BYTES}")
    args.out.write_bytes(data)

    def stats(texts):
        counts = [ntokens(t) for t in texts]
        return f"{len(texts)} texts, tokens {min(counts)}-{max(counts)} (mean {sum(counts) / len(counts):.1f})"

    for name, texts in sections.items():
        print(f"{name:12} {stats(texts)}", file=sys.stderr)
    print(f"sentences kept from {len(docs)} documents; {len(data)} bytes; "
          f"sha256 {hashlib.sha256(data).hexdigest()}", file=sys.stderr)
    print(args.out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes Tests/SparsityNNTests/Fixtures/minilm_reference.json: sentence-transformers reference
embeddings of all-MiniLM-L6-v2 for 48 texts, with token ids and per-layer debugging anchors.

    /work/venv/bin/python scripts/make_minilm_fixtures.py [--model DIR] [--out FILE]

DIR is the model folder made by scripts/fetch_minilm.py (default
~/.cache/swift-sparsity/models/all-MiniLM-L6-v2). The texts are the first 40 sentences of the
`evaluation` section of Sources/SparsityNN/Resources/sentences.json and 8 edge cases (below).
The model runs as `SentenceTransformer(DIR, device="cpu")` with its own max_seq_length (256),
in eval mode, fp32, one text per call (batch 1, so no padding), normalize_embeddings=True.

Per text: `text`, `kind` ("corpus" or "edge:<name>"), `input_ids` exactly as the model's
preprocess()/tokenize() gives them for that text alone (with [CLS]/[SEP], truncated to max_seq_length, no
padding), `truncated` (whether truncation cut tokens), and `embedding` (384 floats, L2-normalised
mean pooling, rounded to 7 significant digits).
`anchors` (texts 0-3): the first 8 values of token 0 ([CLS]) in each of the 7 hidden states of
the BertModel (`hidden_states[0]` = embeddings output: word + position + token-type embeddings
after LayerNorm; `hidden_states[6]` = last encoder layer), from
`model[0].auto_model(..., output_hidden_states=True)`, and the first 8 values of the mean-pooled,
not yet normalised sentence vector.
The script also checks that the embeddings equal those of a single batched encode (batch 32,
padded) within 1e-5 and prints the largest difference.
"""
import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Sources" / "SparsityNN" / "Resources" / "sentences.json"
DEFAULT_OUT = ROOT / "Tests" / "SparsityNNTests" / "Fixtures" / "minilm_reference.json"
DEFAULT_MODEL = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "all-MiniLM-L6-v2"
N_CORPUS = 40
N_ANCHORS = 4
MAX_BYTES = 250_000


def edge_cases(corpus):
    long_text = " ".join(corpus["throughput"][:3])  # about 430 WordPiece tokens: truncated at 256
    return [
        ("hi", "Hi"),
        ("one_word", "Tokenization"),
        ("punctuation", "Wait... what?!? (Really) -- yes; no: maybe [sure] {ok} #1 @home & co. 100% <done>!!"),
        ("unicode", "Café Müller's naïve résumé — Ångström, São Paulo, Zürich; 東京 and Москва, emoji 🙂 too."),
        ("long_truncated", long_text),
        ("mixed_case", "The QUICK Brown fOX Jumps Over the LAZY DoG in NEW York CITY."),
        ("numbers", "In 2023, 3.14159 × 2 = 6.28318, and 1,000,000 people paid $19.99 (or €18.50) on 12/31."),
        ("whitespace", "  Tabs\tand\nnewlines   between\u00a0words,\r\nand trailing spaces   "),
    ]


def round7(values):
    return [float(f"{float(v):.7g}") for v in values]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    import sentence_transformers
    import transformers
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    items = [("corpus", s) for s in corpus["evaluation"][:N_CORPUS]]
    items += [(f"edge:{name}", text) for name, text in edge_cases(corpus)]
    assert len(items) == 48

    model = SentenceTransformer(str(args.model), device="cpu")
    model.eval()
    max_len = model.max_seq_length
    assert max_len == 256, max_len
    bert = model[0].auto_model
    preprocess = getattr(model, "preprocess", None) or model.tokenize  # tokenize() is deprecated in 6.x

    records, anchors = [], []
    embeddings = []
    with torch.inference_mode():
        for index, (kind, text) in enumerate(items):
            features = preprocess([text])
            ids = features["input_ids"][0].tolist()
            assert all(features["attention_mask"][0].tolist())  # one text: no padding
            full = model.tokenizer(text, verbose=False)["input_ids"]
            emb = model.encode([text], batch_size=1, normalize_embeddings=True, convert_to_numpy=True)[0]
            embeddings.append(emb)
            records.append({"text": text, "kind": kind, "input_ids": ids, "truncated": len(full) > len(ids),
                            "embedding": round7(emb)})
            if index < N_ANCHORS:
                out = bert(input_ids=features["input_ids"], attention_mask=features["attention_mask"],
                           token_type_ids=features.get("token_type_ids"), output_hidden_states=True)
                hidden = out.hidden_states
                assert len(hidden) == 7
                mean = hidden[-1][0].mean(dim=0)  # no padding: mean pooling over all tokens
                check = torch.nn.functional.normalize(mean, dim=0).numpy()
                assert np.abs(check - emb).max() < 1e-5
                anchors.append({
                    "index": index,
                    "embedding_output_token0_first8": round7(hidden[0][0, 0, :8]),
                    "last_hidden_cls_first8": round7(hidden[-1][0, 0, :8]),
                    "hidden_states_token0_first8": [round7(h[0, 0, :8]) for h in hidden],
                    "mean_pooled_first8": round7(mean[:8]),
                })

    batched = model.encode([t for _, t in items], batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    diff = float(np.abs(batched - np.stack(embeddings)).max())
    assert diff < 1e-5, diff
    long_record = next(r for r in records if r["kind"] == "edge:long_truncated")
    assert long_record["truncated"] and len(long_record["input_ids"]) == max_len

    tok = model.tokenizer
    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "made_by": "scripts/make_minilm_fixtures.py",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "max_seq_length": max_len,
        "tokenizer": {"class": type(tok).__name__, "do_lower_case": True, "strip_accents": None,
                      "tokenize_chinese_chars": True, "truncation": "longest_first", "padding": "none (batch 1)"},
        "pooling": "mean over attention-masked tokens, then L2 normalisation",
        "embedding_rounding": "7 significant digits",
        "batched_max_abs_difference": float(f"{diff:.3g}"),
        "texts": records,
        "anchors": anchors,
    }
    # One text per line keeps the file small and readable in diffs.
    lines = ["{"]
    for k, v in fixture.items():
        if k in ("texts", "anchors"):
            body = ",\n".join("  " + json.dumps(x, ensure_ascii=False, separators=(",", ":")) for x in v)
            lines.append(f' "{k}": [\n{body}\n ],')
        else:
            lines.append(f' "{k}": {json.dumps(v, ensure_ascii=False)},')
    lines[-1] = lines[-1].rstrip(",")
    data = ("\n".join(lines) + "\n}\n").encode("utf-8")
    assert json.loads(data) == json.loads(json.dumps(fixture))
    if len(data) > MAX_BYTES:
        sys.exit(f"fixture is {len(data)} bytes, over {MAX_BYTES}")
    args.out.write_bytes(data)
    print(f"{len(records)} texts, {len(anchors)} anchors, batched-vs-single max |diff| {diff:.2e}, "
          f"{len(data)} bytes", file=sys.stderr)
    print(args.out)


if __name__ == "__main__":
    main()

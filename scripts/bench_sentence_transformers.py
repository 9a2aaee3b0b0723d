#!/usr/bin/env python3
"""Times the peer of the Swift MiniLM embedder: sentence-transformers on PyTorch CPU, on the fixed
workload of Sources/SparsityNN/Resources/sentences.json's `throughput` section.

    /work/venv/bin/python scripts/bench_sentence_transformers.py --model DIR [--threads 2] [--repeats 5] [--json]
        [--quantize none|dynamic|torchao]

DIR is the all-MiniLM-L6-v2 folder made by scripts/fetch_minilm.py (default
~/.cache/swift-sparsity/models/all-MiniLM-L6-v2). The model runs fp32 on the CPU with
torch.set_num_threads(threads) and model.max_seq_length = 128. Every throughput text has at
least 130 WordPiece tokens, so each is truncated to exactly 128 tokens ([CLS] + 126 + [SEP]);
the script checks that every batch of 32 is 32 x 128 with no padding.

* batch 32: `model.encode(all 256 texts, batch_size=32, normalize_embeddings=True,
  convert_to_numpy=True)` - tokenization, forward, pooling and normalisation included; one
  warm-up, then the median of --repeats runs -> sentences/s.
* batch 1: `model.encode(first 64 texts, batch_size=1, ...)` (one text per forward pass); one
  warm-up, median of --repeats runs -> sentences/s.
* forward split: one forward pass of the BertModel on a pre-tokenized 32 x 128 batch, timed per
  module with forward hooks (embeddings, each encoder layer; pooling + normalisation as the
  rest); median of --repeats runs, in ms.

--quantize runs a quantized peer instead of fp32: `dynamic` is PyTorch's
torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8) (fbgemm: int8 weights,
per-tensor dynamic uint8 activations), `torchao` is torchao's
quantize_(model, Int8DynamicActivationInt8WeightConfig()) (int8 per-row weights, per-token
int8 activations). Every Linear of the encoder is quantized. The result then also has the mean and
minimum cosine of the quantized embeddings to the fp32 ones on the corpus' 256 `evaluation`
sentences, and the bytes of the quantized Linear weights.

Timings mean something only on an otherwise quiet machine; the 1-minute load average at the
start is printed with the results.
"""
import argparse
import json
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Sources" / "SparsityRecipes" / "Resources" / "sentences.json"
DEFAULT_MODEL = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "all-MiniLM-L6-v2"
BATCH, SEQ, N_BATCH1 = 32, 128, 64


def median_seconds(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def forward_split(model, features, repeats):
    """Median ms per module of one BertModel forward (+ pooling/normalise) on `features`."""
    bert = model[0].auto_model
    modules = [("embeddings", bert.embeddings)] + [(f"layer{i}", layer) for i, layer in enumerate(bert.encoder.layer)]
    stamps = {}
    handles = []
    for name, module in modules:
        handles.append(module.register_forward_pre_hook(lambda m, a, name=name: stamps.__setitem__(name + ":0", time.perf_counter())))
        handles.append(module.register_forward_hook(lambda m, a, o, name=name: stamps.__setitem__(name + ":1", time.perf_counter())))
    runs = {name: [] for name, _ in modules}
    runs["pooling+normalize"], runs["total"] = [], []
    try:
        with torch.inference_mode():
            for r in range(repeats + 1):
                stamps.clear()
                t0 = time.perf_counter()
                out = model.forward(dict(features))
                out["sentence_embedding"].sum().item()
                t1 = time.perf_counter()
                if r == 0:
                    continue  # warm-up
                for name, _ in modules:
                    runs[name].append(stamps[name + ":1"] - stamps[name + ":0"])
                runs["pooling+normalize"].append(t1 - stamps[modules[-1][0] + ":1"])
                runs["total"].append(t1 - t0)
    finally:
        for h in handles:
            h.remove()
    return {name: round(statistics.median(v) * 1e3, 3) for name, v in runs.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--no-split", action="store_true", help="skip the per-layer forward split")
    parser.add_argument("--quantize", choices=["none", "dynamic", "torchao"], default="none",
                        help="run a quantized peer (see above)")
    args = parser.parse_args()

    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    load = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    texts = corpus["throughput"]
    assert len(texts) == 256, len(texts)
    model = SentenceTransformer(str(args.model), device="cpu")
    model.eval()
    model.max_seq_length = SEQ
    fidelity = {}
    if args.quantize != "none":
        with torch.inference_mode():
            reference = model.encode(corpus["evaluation"], batch_size=BATCH, normalize_embeddings=True, convert_to_tensor=True)
        bert = model[0].auto_model
        if args.quantize == "dynamic":
            quantized = torch.ao.quantization.quantize_dynamic(bert, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
            weight_bytes = sum(m._packed_params._weight_bias()[0].int_repr().numel() +
                               4 * m._packed_params._weight_bias()[0].q_per_channel_scales().numel()
                               if m._packed_params._weight_bias()[0].qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
                               else m._packed_params._weight_bias()[0].int_repr().numel() + 4
                               for m in quantized.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear))
        else:
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
            quantize_(bert, Int8DynamicActivationInt8WeightConfig())
            weight_bytes = sum(m.weight.qdata.numel() + 4 * m.weight.scale.numel()
                               for m in bert.modules() if isinstance(m, torch.nn.Linear))
        with torch.inference_mode():
            got = model.encode(corpus["evaluation"], batch_size=BATCH, normalize_embeddings=True, convert_to_tensor=True)
        cos = (got * reference).sum(dim=1)
        fidelity = {"mean_cosine": round(float(cos.mean()), 6), "min_cosine": round(float(cos.min()), 6),
                    "linear_weight_bytes": int(weight_bytes)}
    preprocess = getattr(model, "preprocess", None) or model.tokenize  # tokenize() is deprecated in 6.x

    # The workload really is 32 x 128 per batch and 128 tokens per text at batch 1.
    for start in range(0, len(texts), BATCH):
        f = preprocess(texts[start:start + BATCH])
        assert tuple(f["input_ids"].shape) == (BATCH, SEQ), f["input_ids"].shape
        assert bool(f["attention_mask"].all()), "padding in a throughput batch"
    batch1_tokens = [int(preprocess([t])["attention_mask"].sum()) for t in texts[:N_BATCH1]]
    assert all(n == SEQ for n in batch1_tokens), batch1_tokens

    def encode(subset, batch_size):
        return model.encode(subset, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

    with torch.inference_mode():
        t32 = median_seconds(lambda: encode(texts, BATCH), args.repeats)
        t1 = median_seconds(lambda: encode(texts[:N_BATCH1], 1), args.repeats)
    result = {
        "peer": f"sentence-transformers {sentence_transformers.__version__} / torch {torch.__version__}"
                + {"none": " fp32", "dynamic": " quantize_dynamic (fbgemm int8)", "torchao": " torchao int8 dynamic"}[args.quantize],
        **fidelity,
        "threads": args.threads,
        "repeats": args.repeats,
        "batch32_seq128_sentences_per_s": round(len(texts) / t32, 2),
        "batch32_seq128_ms_per_batch": round(t32 / (len(texts) / BATCH) * 1e3, 3),
        "batch1_sentences_per_s": round(N_BATCH1 / t1, 2),
        "batch1_ms_per_sentence": round(t1 / N_BATCH1 * 1e3, 3),
        "batch1_mean_tokens": statistics.mean(batch1_tokens),
        "texts": len(texts),
        "load_average_1min_at_start": round(load, 2),
    }
    if not args.no_split:
        result["forward_batch32_seq128_ms"] = forward_split(model, preprocess(texts[:BATCH]), args.repeats)

    if args.json:
        print(json.dumps(result))
        return
    print(f"peer      {result['peer']}, {args.threads} thread(s), median of {args.repeats} "
          f"(load average {load:.2f} at start)")
    print(f"batch 32 x 128   {result['batch32_seq128_sentences_per_s']:9.2f} sentences/s  "
          f"({result['batch32_seq128_ms_per_batch']:.1f} ms per batch, {len(texts)} texts)")
    print(f"batch 1  x 128   {result['batch1_sentences_per_s']:9.2f} sentences/s  "
          f"({result['batch1_ms_per_sentence']:.2f} ms per sentence, {N_BATCH1} texts, "
          f"{result['batch1_mean_tokens']:g} tokens each)")
    if "forward_batch32_seq128_ms" in result:
        print("forward pass at 32 x 128 (ms, median):")
        for name, ms in result["forward_batch32_seq128_ms"].items():
            print(f"  {name:18} {ms:9.2f}")


if __name__ == "__main__":
    main()

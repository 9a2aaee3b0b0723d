#!/usr/bin/env python3
"""The talk's SAM table (fp16 / int8 weight-only / int8 dynamic / 2:4 / composed) for our models,
with the peers measured in the same run.

    /work/venv/bin/python scripts/sam_table.py --minilm-24 MINILM_24.safetensors --llm-24 LLM_24.safetensors
        [--minilm-block MINILM_BSR.safetensors] [--binary .build/release/sparsity] [--repeats 3] [--json out.json]
        [--skip-llm] [--skip-minilm]

MiniLM (all-MiniLM-L6-v2, scripts/fetch_minilm.py): every row of ours is one `sparsity eval --json`
run, which times the fp32 dense model and the row's model in alternating rounds (so each row's
speedup is measured against a dense run beside it) on 256 texts × 128 tokens at batch 32 and 64 at
batch 1, and gives the mean cosine of the row's embeddings to the fp32 dense ones on 256 held-out
sentences and the weights' resident bytes. Rows: bf16 (--dtype bf16), int8 weight-only (--dtype int8
--activations none), int8 dynamic (W8A8), 2:4 (MINILM_24, e.g. from `prune-encoder` + `distill`), bf16 + 2:4,
int8 dynamic + 2:4, and with MINILM_BSR (e.g. `prune-encoder --pattern block:32x32`) block-sparse fp32 and
block-sparse + int8 dynamic.
Peers (scripts/bench_sentence_transformers.py, same machine, between our rows): sentence-transformers
fp32, PyTorch quantize_dynamic (fbgemm) and torchao Int8DynamicActivationInt8WeightConfig.

Decoder (SmolLM2-135M-Instruct, scripts/fetch_smollm2.py): scripts/bench_llm.py times prefill (512
tokens) and decode (128 tokens) for ours — fp32 dense, bf16 and int8 dynamic (every Linear, LM head
included), the Q8_0 GGUF run on its own int8 blocks, 2:4 (LLM_24 from `prune-model`), bf16 + 2:4, int8
dynamic + 2:4 — and llama.cpp F32 / Q8_0 /
Q4_1 and PyTorch in one interleaved run; `sparsity perplexity` gives each of ours its held-out perplexity.
(No block-sparse decoder row: a block-pruned LLM is not part of this table's inputs.)
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models"


def run_json(command, env=None):
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"`{' '.join(map(str, command))}` failed ({result.returncode}): {result.stderr.strip()[-600:]}")
    for text in (result.stdout, result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            continue
    sys.exit(f"no JSON from `{' '.join(map(str, command))}`: {result.stdout[-400:]!r}")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def minilm(args):
    model = MODELS / "all-MiniLM-L6-v2"
    ours = [
        ("bf16", ["--dtype", "bf16"]),
        ("int8 dynamic", ["--dtype", "int8"]),
        ("int8 weight-only", ["--dtype", "int8", "--activations", "none"]),
        ("2:4", ["--weights", str(args.minilm_24)]),
        ("bf16 + 2:4", ["--weights", str(args.minilm_24), "--dtype", "bf16"]),
        ("int8 dynamic + 2:4", ["--weights", str(args.minilm_24), "--dtype", "int8"]),
    ]
    if args.minilm_block:
        ours += [("block-sparse", ["--weights", str(args.minilm_block)]),
                 ("block-sparse + int8 dynamic", ["--weights", str(args.minilm_block), "--dtype", "int8"])]
    peers = [("none", "PyTorch fp32"), ("dynamic", "PyTorch quantize_dynamic (fbgemm int8)"), ("torchao", "torchao int8 dynamic")]
    rows, dense = [], []
    for i, (label, options) in enumerate(ours):
        log(f"MiniLM ours: {label}")
        r = run_json([str(args.binary), "eval", "--model", str(model), "--repeats", str(args.repeats), "--json"] + options)
        dense.append(r)
        rows.append({"model": "MiniLM", "engine": "ours", "row": label, "batch32": r["sparse_sentences_per_s"],
                     "batch1": r["sparse_batch1_sentences_per_s"], "speedup32": r["speedup"], "speedup1": r["batch1_speedup"],
                     "weight_bytes": r["sparse_linear_bytes"], "mean_cosine": r["mean_cosine"], "min_cosine": r["min_cosine"]})
        if i < len(peers):
            mode, name = peers[i]
            log(f"MiniLM peer: {name}")
            p = run_json([sys.executable, str(ROOT / "scripts" / "bench_sentence_transformers.py"), "--model", str(model),
                          "--repeats", str(args.repeats), "--json", "--no-split", "--quantize", mode])
            rows.append({"model": "MiniLM", "engine": name, "row": {"none": "fp32 dense"}.get(mode, "int8 dynamic"),
                         "batch32": p["batch32_seq128_sentences_per_s"], "batch1": p["batch1_sentences_per_s"],
                         "weight_bytes": p.get("linear_weight_bytes", dense[0]["dense_linear_bytes"] if dense else None), "mean_cosine": p.get("mean_cosine", 1.0),
                         "min_cosine": p.get("min_cosine", 1.0)})
    # Our fp32 dense: the median over the eval runs' dense measurements.
    mid = lambda xs: sorted(xs)[len(xs) // 2]
    rows.insert(0, {"model": "MiniLM", "engine": "ours", "row": "fp32 dense", "batch32": mid([d["dense_sentences_per_s"] for d in dense]),
                    "batch1": mid([d["dense_batch1_sentences_per_s"] for d in dense]), "speedup32": 1.0, "speedup1": 1.0,
                    "weight_bytes": dense[0]["dense_linear_bytes"], "mean_cosine": 1.0, "min_cosine": 1.0})
    return rows


def llm(args):
    gguf = MODELS / "SmolLM2-135M-Instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    variants = [("fp32 dense", None, None), ("bf16", "dense", "bf16"), ("int8 dynamic", "dense", "int8"),
                ("int8 dynamic, Q8_0 blocks", "gguf:Q8_0", None), ("2:4", str(args.llm_24), None),
                ("bf16 + 2:4", str(args.llm_24), "bf16"), ("int8 dynamic + 2:4", str(args.llm_24), "int8")]
    command = [sys.executable, str(ROOT / "scripts" / "bench_llm.py"), "--rounds", str(args.repeats), "--binary", str(args.binary),
               "--json", str(args.workdir / "bench_llm.json")]
    for label, file, dtype in variants[1:]:
        command += ["--ours-weights", f"{label}={file}" + (f"@{dtype}" if dtype else "")]
    log("decoder: scripts/bench_llm.py")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench_llm.py failed: {result.stderr[-800:]}")
    speed = json.loads((args.workdir / "bench_llm.json").read_text())
    rows = []
    for label, file, dtype in variants:
        log(f"decoder perplexity: {label}")
        model = gguf.with_name(gguf.name.replace(".Q4_1.", ".Q8_0.")) if file == "gguf:Q8_0" else gguf
        command = [str(args.binary), "perplexity", "--model", str(model), "--json"]
        if file and file not in ("dense", "gguf:Q8_0"):
            command += ["--weights", file]
        if dtype or file != "gguf:Q8_0":
            command += ["--dtype", dtype or "f32"]
        ppl = run_json(command)["perplexity"]
        timing = next(r for r in speed["results"] if r["engine"].startswith("ours") and r["weights"] == ("dense" if label == "fp32 dense" else label))
        rows.append({"model": "SmolLM2-135M", "engine": "ours", "row": label, "prefill": timing["prefill_tokens_per_second"],
                     "decode": timing["decode_tokens_per_second"], "perplexity": ppl})
    for r in speed["results"]:
        if not r["engine"].startswith("ours"):
            rows.append({"model": "SmolLM2-135M", "engine": r["engine"], "row": r["weights"], "prefill": r["prefill_tokens_per_second"],
                         "decode": r["decode_tokens_per_second"]})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=pathlib.Path, default=ROOT / ".build" / "release" / "sparsity")
    ap.add_argument("--minilm-24", type=pathlib.Path, help="a 2:4-pruned MiniLM weights file (prune-encoder)")
    ap.add_argument("--minilm-block", type=pathlib.Path, help="a block-sparse MiniLM weights file (prune-encoder --pattern block:RxC)")
    ap.add_argument("--llm-24", type=pathlib.Path, help="a 2:4-pruned SmolLM2 weights file (prune-model)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("/tmp/sam-table"))
    ap.add_argument("--skip-minilm", action="store_true")
    ap.add_argument("--skip-llm", action="store_true")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    if not args.skip_minilm:
        if not args.minilm_24:
            sys.exit("--minilm-24 FILE is needed for the MiniLM rows (or --skip-minilm)")
        rows += minilm(args)
    if not args.skip_llm:
        if not args.llm_24:
            sys.exit("--llm-24 FILE is needed for the decoder rows (or --skip-llm)")
        rows += llm(args)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))
    mib = lambda b: f"{b / 1048576:.1f}" if b else "–"
    if any(r["model"] == "MiniLM" for r in rows):
        print("| MiniLM | engine | sentences/s batch 32×128 | vs our fp32 | batch 1 | vs our fp32 | Linear weight MiB | mean / min cosine to fp32 |")
        print("|---|---|---:|---:|---:|---:|---:|---|")
        for r in (r for r in rows if r["model"] == "MiniLM"):
            ratio = lambda k: f"{r[k]:.2f}×" if k in r else ""
            print(f"| {r['row']} | {r['engine']} | {r['batch32']:.1f} | {ratio('speedup32')} | {r['batch1']:.1f} | {ratio('speedup1')} | "
                  f"{mib(r['weight_bytes'])} | {r['mean_cosine']:.4f} / {r['min_cosine']:.4f} |")
    if any(r["model"] != "MiniLM" for r in rows):
        print()
        print("| SmolLM2-135M | engine | prefill tok/s (512) | decode tok/s (128) | perplexity |")
        print("|---|---|---:|---:|---:|")
        for r in (r for r in rows if r["model"] != "MiniLM"):
            ppl = f"{r['perplexity']:.2f}" if "perplexity" in r else ""
            print(f"| {r['row']} | {r['engine']} | {r['prefill']:.0f} | {r['decode']:.1f} | {ppl} |")


if __name__ == "__main__":
    main()

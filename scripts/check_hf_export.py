#!/usr/bin/env python3
"""Loads a Hugging Face folder written by `sparsity prune-model --format hf` with transformers and
measures its perplexity on the bundled held-out text with the protocol of `sparsity perplexity`
(tokenized once without BOS, non-overlapping windows of --context tokens from the start, the
remainder dropped, exp of the mean NLL of the context − 1 predicted tokens per window). With
--ours P it checks that the two agree within 0.5%.

    /work/venv/py/bin/python scripts/check_hf_export.py FOLDER [--context 512] [--ours 31.2]
"""
import argparse, json, math, pathlib, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
ap = argparse.ArgumentParser()
ap.add_argument("folder")
ap.add_argument("--context", type=int, default=512)
ap.add_argument("--ours", type=float)
a = ap.parse_args()
torch.set_num_threads(2)
model = AutoModelForCausalLM.from_pretrained(a.folder, dtype=torch.float32).eval()
tokenizer = AutoTokenizer.from_pretrained(a.folder)
text = json.loads((ROOT / "Sources/SparsityRecipes/Resources/llm-text.json").read_text())["heldout"]
ids = tokenizer(text, add_special_tokens=False).input_ids
zeros = sum(int((p == 0).sum()) for n, p in model.named_parameters() if "layers." in n and n.endswith("proj.weight"))
total = sum(p.numel() for n, p in model.named_parameters() if "layers." in n and n.endswith("proj.weight"))
windows = len(ids) // a.context
nll = 0.0
with torch.inference_mode():
    for w in range(windows):
        x = torch.tensor([ids[w * a.context:(w + 1) * a.context]])
        nll += model(x, labels=x).loss.item() * (a.context - 1)
ppl = math.exp(nll / (windows * (a.context - 1)))
print(f"transformers {type(model).__name__}: decoder Linear sparsity {zeros / total:.4f}, {len(ids)} tokens, "
      f"{windows} windows of {a.context}: perplexity {ppl:.4f}")
if a.ours is not None:
    diff = abs(ppl - a.ours) / a.ours
    print(f"ours {a.ours:.4f}: relative difference {diff:.5f}")
    sys.exit(0 if diff <= 0.005 else 1)

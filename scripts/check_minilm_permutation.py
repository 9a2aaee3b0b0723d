#!/usr/bin/env python3
"""Check on the real all-MiniLM-L6-v2 that stored channel permutations keep the model's function.

Takes a file written by `sparsity prune … --permute` (holding `W:permutation` I32 tensors) and
applies each FFN permutation to the *dense* model the way it is free at inference time: the
rows and bias of `encoder.layer.N.intermediate.dense` (the producer) and the columns of
`encoder.layer.N.output.dense` (GELU in between is elementwise). It then compares
sentence embeddings of the permuted and the original dense model on real sentences; for the
other layers (attention projections, whose inputs are the residual stream) it checks
`x[:, p] · W[:, p]ᵀ = x · Wᵀ` on captured held-out inputs.

    /work/venv/bin/python scripts/check_minilm_permutation.py PRUNED.safetensors [--data /work/cache/minilm]
"""
import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from capture_minilm_calibration import model_folder, sentences, split  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pruned")
    parser.add_argument("--data", default="/work/cache/minilm")
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    pruned = safe_open(args.pruned, "pt")
    permutations = {k[: -len(":permutation")]: pruned.get_tensor(k).long() for k in pruned.keys() if k.endswith(":permutation")}
    if not permutations:
        sys.exit("no W:permutation tensors in " + args.pruned)
    texts = [s for s in sentences() if split(s) == "heldout"][:64]
    dense = SentenceTransformer(model_folder(), device="cpu")
    permuted = SentenceTransformer(model_folder(), device="cpu")
    modules = dict(permuted[0].auto_model.named_modules())
    ffn = 0
    with torch.no_grad():
        for name, p in permutations.items():
            if name.endswith("output.dense.weight") and ".attention." not in name:
                layer = name[: -len("output.dense.weight")]
                producer = modules[layer + "intermediate.dense"]
                consumer = modules[layer + "output.dense"]
                producer.weight.copy_(producer.weight[p, :])
                producer.bias.copy_(producer.bias[p])
                consumer.weight.copy_(consumer.weight[:, p])
                ffn += 1
        a = dense.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
        b = permuted.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
    print(f"FFN permutations folded into the dense model: {ffn}; {len(texts)} held-out sentences; "
          f"max |embedding difference| {float((a - b).abs().max()):.2e}")
    heldout = safe_open(os.path.join(args.data, "heldout.safetensors"), "pt")
    weights = safe_open(os.path.join(args.data, "weights.safetensors"), "pt")
    worst = 0.0
    for name, p in permutations.items():
        x = heldout.get_tensor(name + ":input").double()
        w = weights.get_tensor(name).double()
        y = x @ w.T
        worst = max(worst, float(((x[:, p] @ w[:, p].T) - y).abs().max() / y.abs().max()))
    print(f"all {len(permutations)} layers: max relative |x[:, p]·W[:, p]ᵀ − x·Wᵀ| = {worst:.2e}")
    ok = float((a - b).abs().max()) < 1e-5 and worst < 1e-12
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

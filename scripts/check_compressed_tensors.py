#!/usr/bin/env python3
"""Checks our compressed-tensors checkpoints against the `compressed-tensors` Python package, both ways.

    # 1. our folder → the package: every Linear weight of FOLDER (from `sparsity prune-model --format
    #    compressed-tensors [--dtype int8]`, or `sparsity export` of OURS) decompressed by the package (its
    #    sparse compressors and q · scale) equals, bit for bit, every sparse or int8 tensor of OURS (our
    #    own safetensors convention, decoded here with NumPy from the README's description).
    PYTHONPATH=/path/to/compressed-tensors-0.12 python scripts/check_compressed_tensors.py ours FOLDER OURS

    # 2. the package's output → ours: builds an llm-compressor-style W8A8 checkpoint of SmolLM2 with the
    #    package (compressed-tensors ≥ 0.20: apply_quantization_config with the W8A8 preset, per-channel
    #    min-max weight scales as llm-compressor's observer computes them, ModelCompressor.compress_model,
    #    save_pretrained; lm_head ignored), measures its perplexity with transformers (the package's
    #    forward: dequantized weights, dynamic per-token activation quantization) and checks that
    #    `BINARY perplexity --model OUT_FOLDER` agrees within 0.5%.
    python scripts/check_compressed_tensors.py theirs OUT_FOLDER --binary .build/release/sparsity

The sparse formats (sparse-24-bitmask, sparse-bitmask) were dropped from compressed-tensors after
0.14; check 1 needs a release that has them (0.12.2: `pip install --no-deps --target DIR
compressed-tensors==0.12.2`, then PYTHONPATH=DIR). Exit status 0 when every check passes.
"""
import argparse
import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL_DIR = pathlib.Path.home() / ".cache" / "swift-sparsity" / "models" / "SmolLM2-135M-Instruct"


def ours_dense(path):
    """Every tensor of OUR safetensors file, decoded to dense float32 with NumPy (README convention)."""
    with safe_open(path, "np") as f:
        meta = f.metadata() or {}
        raw = {k: f.get_tensor(k) for k in f.keys()}
    dense = {}
    for key, text in meta.items():
        if not key.startswith("sparsity:"):
            continue
        name, info = key[len("sparsity:"):], json.loads(text)
        rows, cols = info["shape"]
        if info["format"] == "n_of_m":
            n, m = info["n_of_m"]
            values = raw[name + ".values"]
            bits = max(1, (m - 1).bit_length())
            unpacked = np.unpackbits(raw[name + ".positions"], axis=-1, bitorder="little")
            w = np.zeros((rows, cols), dtype=np.float64)
            count = values.shape[1]
            for r in range(rows):
                for i in range(count):
                    p = sum(int(unpacked[r, i * bits + b]) << b for b in range(bits))
                    c = (i // n) * m + p
                    if c < cols:
                        w[r, c] = values[r, i]
        elif info["format"] == "semi_structured_cutlass":
            from torch.sparse._semi_structured_conversions import sparse_semi_structured_to_dense_cutlass
            w = sparse_semi_structured_to_dense_cutlass(torch.from_numpy(raw[name + ".packed"]),
                                                        torch.from_numpy(raw[name + ".meta"])).numpy().astype(np.float64)
        elif info["format"] == "dense":
            w = raw[name + ".values"].astype(np.float64)
        elif info["format"] == "csr":
            w = np.zeros((rows, cols), dtype=np.float64)
            crow, col, values = raw[name + ".crow_indices"], raw[name + ".col_indices"], raw[name + ".values"]
            for r in range(rows):
                w[r, col[crow[r]:crow[r + 1]]] = values[crow[r]:crow[r + 1]]
        else:
            sys.exit(f"{path}: {name} has format {info['format']}, not one this check decodes")
        if "quantization" in info:
            w = (w.astype(np.float32) * raw[name + ".scale"][:, None]).astype(np.float32)
        dense[name] = torch.from_numpy(w.astype(np.float32))
    claimed = {k for k in raw if any(k.startswith(n + ".") for n in dense)}
    for name, t in raw.items():  # plain dense Linear weights
        if name not in claimed and name not in dense and name.endswith(".weight") and t.ndim == 2:
            dense[name] = torch.from_numpy(t.astype(np.float32))
    return dense


def check_ours(args):
    import compressed_tensors
    from compressed_tensors.compressors import ModelCompressor
    folder = pathlib.Path(args.folder)
    config = json.loads((folder / "config.json").read_text())["quantization_config"]
    compressor = ModelCompressor.from_compression_config(config)
    print(f"compressed-tensors {compressed_tensors.__version__}: sparsity compressor "
          f"{type(compressor.sparsity_compressor).__name__}, quantization format {config.get('format')}")
    tensors = load_file(str(folder / "model.safetensors"))
    decompressed = {}
    if compressor.sparsity_compressor is not None:
        for name, value in compressor.sparsity_compressor.decompress(str(folder / "model.safetensors")):
            decompressed[name] = value if isinstance(value, torch.Tensor) else value["weight"]
    reference = ours_dense(args.ours)
    for name, t in tensors.items():  # Linear weights without sparsity compression
        if name in reference:
            decompressed.setdefault(name, t)
    bad = 0
    for name, ref in sorted(reference.items()):
        got = decompressed.get(name)
        if got is None:
            print(f"MISSING {name}")
            bad += 1
            continue
        scale_name = name[: -len(".weight")] + ".weight_scale"
        if scale_name in tensors:
            # The package's own dequantization of the int8 values.
            from compressed_tensors.quantization.lifecycle.forward import dequantize
            got = dequantize(x_q=got, scale=tensors[scale_name], zero_point=None).to(torch.float32)
        if got.shape != ref.shape or not torch.equal(got.to(torch.float32), ref):
            diff = (got.to(torch.float32) - ref).abs().max().item() if got.shape == ref.shape else float("nan")
            print(f"DIFFERENT {name}: shape {tuple(got.shape)} vs {tuple(ref.shape)}, max |diff| {diff}")
            bad += 1
    print(f"{len(reference) - bad}/{len(reference)} Linear weights equal bit for bit "
          f"(Linear sparsity {sum(int((w == 0).sum()) for w in reference.values()) / sum(w.numel() for w in reference.values()):.4f})")
    return bad == 0


def perplexity_transformers(model, tokenizer, context=512):
    text = json.loads((ROOT / "Sources/SparsityRecipes/Resources/llm-text.json").read_text())["heldout"]
    ids = tokenizer(text, add_special_tokens=False).input_ids
    windows = len(ids) // context
    nll = 0.0
    with torch.inference_mode():
        for w in range(windows):
            x = torch.tensor([ids[w * context:(w + 1) * context]])
            nll += model(x, labels=x).loss.item() * (context - 1)
    return math.exp(nll / (windows * (context - 1)))


def check_theirs(args):
    import compressed_tensors
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import QuantizationConfig, apply_quantization_config, preset_name_to_scheme
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(2)
    out = pathlib.Path(args.folder)
    gguf = MODEL_DIR / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (out / "config.json").exists():
        iso = pathlib.Path(args.workdir) / "gguf"
        iso.mkdir(parents=True, exist_ok=True)
        if not (iso / gguf.name).exists():
            (iso / gguf.name).symlink_to(gguf)
        model = AutoModelForCausalLM.from_pretrained(str(iso), gguf_file=gguf.name, dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(iso), gguf_file=gguf.name)
        model.hf_quantizer = None  # the weights were dequantized from the GGUF file: a plain float model now
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.tie_word_embeddings = False  # compressed-tensors needs lm_head as its own (ignored) module
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
        config = QuantizationConfig(config_groups={"group_0": preset_name_to_scheme("W8A8", ["Linear"])}, ignore=["lm_head"])
        apply_quantization_config(model, config)
        for name, module in model.named_modules():
            if hasattr(module, "weight_scale"):  # llm-compressor's per-channel min-max observer, symmetric int8
                amax = module.weight.detach().abs().amax(dim=1, keepdim=True)
                module.weight_scale.data = torch.clamp(amax / 127.5, min=torch.finfo(torch.float32).eps).to(module.weight_scale.dtype)
                if hasattr(module, "weight_zero_point"):
                    module.weight_zero_point.data.zero_()
        compressor = ModelCompressor.from_pretrained_model(model)
        compressor.compress_model(model)
        model.save_pretrained(str(out))
        compressor.update_config(str(out))
        tokenizer.save_pretrained(str(out))
        print(f"compressed-tensors {compressed_tensors.__version__} wrote {out}")
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    theirs = perplexity_transformers(model, tokenizer)
    result = subprocess.run([args.binary, "perplexity", "--model", str(out), "--json"], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"ours failed: {result.stderr.strip()}")
        return False
    ours = json.loads(result.stdout)["perplexity"]
    diff = abs(ours - theirs) / theirs
    print(f"W8A8 checkpoint by compressed-tensors: perplexity transformers {theirs:.4f}, ours {ours:.4f}, relative difference {diff:.5f}")
    return diff <= 0.005


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("ours")
    a.add_argument("folder")
    a.add_argument("ours")
    b = sub.add_parser("theirs")
    b.add_argument("folder")
    b.add_argument("--binary", default=str(ROOT / ".build" / "release" / "sparsity"))
    b.add_argument("--workdir", default="/tmp/check-compressed-tensors")
    args = ap.parse_args()
    ok = check_ours(args) if args.mode == "ours" else check_theirs(args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

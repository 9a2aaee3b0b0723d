#!/usr/bin/env python3
"""Writes Tests/SparsityIOTests/Fixtures/compressed-tensors/*.sft: small weights encoded by the
`compressed-tensors` package itself (0.12.2, the last release with the sparse compressors), each
file beside `reference` (the dense float32 weight the package decompresses it to). The Swift
reader is checked against them; they seed the safetensors fuzzer too.

    pip install --no-deps --target DIR compressed-tensors==0.12.2
    PYTHONPATH=DIR python3 scripts/make_compressed_tensors_fixtures.py     # torch, safetensors

Files: `w8a8-dense` (int-quantized: I8 weight + weight_scale), `w8a8-24` (the same values 2:4,
sparse-24-bitmask over int8 + weight_scale), `f32-24` (sparse-24-bitmask, float32), `f32-bitmask`
(sparse-bitmask, float32, 70% zeros). Weight name `fc.weight` (ragged column count where the format
allows it).
"""
import os

import compressed_tensors
import torch
from compressed_tensors.compressors.sparse_compressors.sparse_24_bitmask import Sparse24BitMaskTensor
from compressed_tensors.compressors.sparse_compressors.sparse_bitmask import BitmaskTensor
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SparsityIOTests", "Fixtures", "compressed-tensors")


def two_four(w):
    groups = w.reshape(-1, 4)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, groups.abs().topk(2, dim=1).indices, True)
    return torch.where(keep, groups, torch.zeros_like(groups)).reshape(w.shape)  # +0.0, not -0.0, where pruned


def quantize_rows(w):
    # −127…127: the package's 2:4 mask ranks int8 values by `abs()`, which overflows at −128
    # (|−128| is −128 in int8), so it would drop a −128 kept value; our writer keeps it.
    scale = torch.clamp(w.abs().amax(dim=1, keepdim=True) / 127, min=torch.finfo(torch.float32).eps)
    return torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8), scale


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(5)
    meta = {"compressed_tensors": compressed_tensors.__version__}
    w = two_four(torch.randn(16, 32, generator=g))
    q, scale = quantize_rows(w)
    dequantized = q.to(torch.float32) * scale
    save_file({"fc.weight": q, "fc.weight_scale": scale, "reference": dequantized}, os.path.join(OUT, "w8a8-dense.sft"), meta)
    t = Sparse24BitMaskTensor.from_dense(q)
    tensors = t.dict("fc.weight")
    assert torch.equal(Sparse24BitMaskTensor.from_compressed_data(**{k.split(".")[-1]: v for k, v in tensors.items()}).decompress(), q)
    save_file({**tensors, "fc.weight_scale": scale, "reference": dequantized}, os.path.join(OUT, "w8a8-24.sft"), meta)
    t = Sparse24BitMaskTensor.from_dense(w)
    save_file({**t.dict("fc.weight"), "reference": w}, os.path.join(OUT, "f32-24.sft"), meta)
    u = torch.randn(9, 21, generator=g)
    u[torch.rand(9, 21, generator=g) < 0.7] = 0
    b = BitmaskTensor.from_dense(u)
    save_file({**b.dict("fc"), "reference": u}, os.path.join(OUT, "f32-bitmask.sft"), meta)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate Tests/SparsityPruningTests/Fixtures/weight_norm_grid.sft with PyTorch's own
torch.ao.pruning.WeightNormSparsifier.

For every (shape, sparsity_level, sparse_block_shape, zeros_per_block, norm) of the grid the
fixture holds the mask PyTorch computes for a fixed tie-free random weight:

* normally through the public flow: Sequential(Linear).prepare(config) -> step() -> the
  parametrization's mask (converted to bool: PyTorch's own dtype varies, its bug (a));
* where PyTorch's step() returns a mask larger than the weight (sparsity_level >= 1 with
  zeros_per_block < block size on shapes the block does not divide: the padded mask is
  kept), that mask cropped to the weight ("path": "cropped");
* where PyTorch's step() crashes on shapes the block does not divide (its bug (b):
  `logical_or` of the cropped tensor mask with the uncropped block mask), through the
  sparsifier's own `_make_tensor_mask` and `_make_block_mask` with the block mask cropped
  before the OR. Such cases are marked "path": "internals".

Weights are checked to be tie-free: all in-block values distinct and all block means of |w|
and w**2 (float32 and float64) separated by a relative gap > 1e-5, so that the Swift port
(which computes in float64 and breaks ties by index) must agree exactly.

Run: /work/venv/bin/python scripts/make_weight_norm_fixtures.py
Needs torch (2.13 CPU used), numpy and safetensors.
"""
import itertools
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.ao.pruning import WeightNormSparsifier

SHAPES = [(8, 16), (6, 10), (5, 7)]
LEVELS = [0.0, 0.3, 0.5, 0.7, 0.99, 1.0]
BLOCKS = [(1, 1), (1, 4), (2, 2), (4, 1), (2, 3), (1, 8)]
NORMS = [1, 2]
OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SparsityPruningTests", "Fixtures", "weight_norm_grid.sft")


def zeros_options(block):
    v = block[0] * block[1]
    return sorted({0, 1, v // 2, v - 1, v})


def min_relative_gap(values):
    v = np.sort(np.asarray(values, dtype=np.float64))
    if len(v) < 2:
        return math.inf
    gaps = np.diff(v) / np.maximum(np.abs(v[1:]), 1e-30)
    return float(gaps.min())


def block_means(a, block):
    """Means over in-bounds elements, as avg_pool2d(ceil_mode=True) computes them."""
    t = torch.from_numpy(a)[None, None]
    return F.avg_pool2d(t, kernel_size=block, stride=block, ceil_mode=True).flatten().numpy()


def tie_free(w):
    for block in BLOCKS:
        for norm in NORMS:
            a = np.abs(w) if norm == 1 else w * w
            for dtype in (np.float32, np.float64):
                if min_relative_gap(block_means(a.astype(dtype), block)) < 1e-5:
                    return False
    return min_relative_gap(np.abs(w).flatten()) > 1e-5


def make_weight(shape, seed):
    rng = np.random.default_rng(seed)
    while True:
        w = rng.standard_normal(shape).astype(np.float32)
        if tie_free(w):
            return w


def torch_mask(w, level, block, zeros, norm):
    linear = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w))
    model = torch.nn.Sequential(linear)
    sparsifier = WeightNormSparsifier(sparsity_level=level, sparse_block_shape=block, zeros_per_block=zeros, norm=norm)
    sparsifier.prepare(model, config=[{"tensor_fqn": "0.weight"}])
    try:
        sparsifier.step()
        mask = model[0].parametrizations.weight[0].mask.detach().bool().numpy()
        if mask.shape != w.shape:
            # Bug (b) again, silently: with sparsity_level >= 1 both masks keep the padded
            # shape, so the OR succeeds and the mask is larger than the weight. Crop it.
            return mask[: w.shape[0], : w.shape[1]], "cropped"
        return mask, "step"
    except RuntimeError as error:
        if "must match the size" not in str(error):
            raise
    # PyTorch bug (b): crop the block mask before the OR, using the sparsifier's own pieces.
    h, wd = w.shape
    ww = sparsifier.norm_fn(torch.from_numpy(w))
    tensor_mask = sparsifier._make_tensor_mask(data=ww, input_shape=ww.shape, sparsity_level=level, sparse_block_shape=block)
    block_mask = sparsifier._make_block_mask(data=ww, sparse_block_shape=block, zeros_per_block=zeros)[:h, :wd]
    return torch.logical_or(tensor_mask.bool(), block_mask.bool()).numpy(), "internals"


def main():
    tensors = {}
    cases = []
    for s_index, shape in enumerate(SHAPES):
        name = f"weight.{shape[0]}x{shape[1]}"
        w = make_weight(shape, seed=1000 + s_index)
        tensors[name] = torch.from_numpy(w)
        masks = []
        for level, block, norm in itertools.product(LEVELS, BLOCKS, NORMS):
            for zeros in zeros_options(block):
                mask, path = torch_mask(w, level, block, zeros, norm)
                cases.append([name, len(masks), level, block[0], block[1], zeros, norm, path])
                masks.append(torch.from_numpy(mask.copy()))
        tensors[f"masks.{shape[0]}x{shape[1]}"] = torch.stack(masks)
    metadata = {
        # A case's weight is tensor `weight.RxC`; its mask is `masks.RxC[slot]`.
        "columns": json.dumps(["weight", "slot", "level", "block_rows", "block_columns", "zeros_per_block", "norm", "path"]),
        "cases": json.dumps(cases, separators=(",", ":")),
        "generator": "scripts/make_weight_norm_fixtures.py",
        "torch": torch.__version__,
    }
    save_file(tensors, OUT, metadata=metadata)
    paths = {p: sum(c[-1] == p for c in cases) for p in ("step", "cropped", "internals")}
    print(f"wrote {OUT}: {len(cases)} cases {paths}, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()

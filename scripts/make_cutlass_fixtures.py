#!/usr/bin/env python3
"""Golden fixtures for the CUTLASS semi-structured (2:4) layout.

Runs PyTorch's own CPU converter
(`torch.sparse._semi_structured_conversions.sparse_semi_structured_from_dense_cutlass`
and its inverse `sparse_semi_structured_to_dense_cutlass`) on small dense matrices and writes,
for every case, raw little-endian bytes to
Tests/SparsityFormatsTests/Fixtures/cutlass/<case>.{dense,packed,meta}.bin
(plus <case>.restored.bin when decompressing is not bitwise the input: a -0.0 at a dropped
position comes back as +0.0) and an index, cutlass_cases.json.

Usage (from the repository root):
    /work/venv/bin/python scripts/make_cutlass_fixtures.py

Every case is 2:4 (1:2 for float32), so PyTorch drops nothing and the Swift side can compare
packed values and metadata byte for byte. The cases cover all four dtypes, several shapes,
groups with 0, 1 and 2 nonzeros, kept positions whose value is exactly zero, -0.0, NaN,
infinities, and the published goldens (reference/formats-and-semantics.md section 2.4).

Two quirks of PyTorch's CPU path, found while writing this (the layout itself is unaffected):
- `gather`/`scatter_` on float16 quiet signalling NaNs (0x7d01 -> 0x7f01), and on bfloat16
  turn every NaN into 0xffff. A real layout moves bits, so the Swift side does not copy that;
  the cases therefore hold only quiet float16 NaNs (0x7e00) and no bfloat16 NaN.
- `sparse_semi_structured_to_dense_cutlass` rebuilds float32 through a float16 view, so a
  float32 whose low 16 bits look like a float16 signalling NaN comes back with bit 9 set
  (about 1 in 64 random float32 values). The restored bytes here come from an exact
  integer-only inverse (same offsets, same nibbles), checked against PyTorch's inverse
  everywhere else.
"""

import json
import os
import sys

import numpy as np
import torch
from torch.sparse._semi_structured_conversions import (
    _calculate_meta_reordering_scatter_offsets,
    sparse_semi_structured_from_dense_cutlass,
    sparse_semi_structured_to_dense_cutlass,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "SparsityFormatsTests", "Fixtures", "cutlass")

DTYPES = {
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I8": torch.int8,
    "F32": torch.float32,
}
META_NAMES = {torch.int16: "I16", torch.int32: "I32"}

# The six ways to keep two of four, and the two ways to keep one of two.
PAIRS_OF_FOUR = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def raw_bytes(t):
    """The tensor's elements as little-endian bytes (x86 is little-endian)."""
    assert sys.byteorder == "little"
    return t.contiguous().view(torch.uint8).numpy().tobytes()


def random_values(rng, count, dtype):
    """Nonzero random values of `dtype` (as a flat torch tensor)."""
    if dtype == torch.int8:
        v = rng.integers(-128, 128, size=count)
        v[v == 0] = 1
        return torch.from_numpy(v.astype(np.int8))
    v = torch.from_numpy(rng.standard_normal(count).astype(np.float32)).to(dtype)
    v[v == 0] = 1
    return v


def random_sparse(rng, rows, cols, dtype, mix):
    """A random 2:4 (1:2 for float32) matrix.

    mix selects the group kinds: "full" keeps exactly the maximum in every group; "mixed" also
    has groups with fewer nonzeros, kept-but-zero values and (floats) -0.0 in dropped slots.
    """
    width = 2 if dtype == torch.float32 else 4
    groups = rows * cols // width
    values = random_values(rng, rows * cols, dtype).view(groups, width)
    keep = torch.zeros(groups, width, dtype=torch.bool)
    kinds = rng.random(groups)
    for g in range(groups):
        kind = kinds[g] if mix == "mixed" else 0.0
        if width == 4:
            if kind < 0.6:  # exactly two nonzeros
                for i in PAIRS_OF_FOUR[rng.integers(6)]:
                    keep[g, i] = True
            elif kind < 0.75:  # one nonzero
                keep[g, rng.integers(4)] = True
            elif kind < 0.85:  # all zero
                pass
            else:  # two "kept" positions, one of which holds an exact zero
                a, b = PAIRS_OF_FOUR[rng.integers(6)]
                keep[g, a if rng.random() < 0.5 else b] = True
        else:
            if kind < 0.75:
                keep[g, rng.integers(2)] = True
    dense = torch.where(keep, values, torch.zeros((), dtype=dtype))
    if mix == "mixed" and dtype.is_floating_point:
        # -0.0 in some zero slots: it counts as zero, but its bytes show whether the converter
        # kept that slot (it is then stored as -0.0 in the packed values).
        flat = dense.view(-1)
        zero = (flat == 0).nonzero().view(-1)
        pick = zero[torch.from_numpy(rng.random(len(zero)) < 0.3)]
        flat[pick] = -0.0
    return dense.view(rows, cols)


def special_values(rows, cols, dtype):
    """2:4 float matrix of (quiet) NaN, ±inf, subnormals and signed zeros (checks bits are moved, not
    converted, and that NaN counts as nonzero)."""
    base = [float("nan"), float("inf"), float("-inf"), 1e-7, -3.5, 0.0, -0.0]
    if dtype == torch.bfloat16:
        base[0] = 7.0  # PyTorch's CPU gather rewrites every bfloat16 NaN to 0xffff
        base[3] = 1e-39
    dense = torch.zeros(rows, cols, dtype=dtype)
    flat = dense.view(-1)
    for g in range(rows * cols // 4):
        a, b = PAIRS_OF_FOUR[g % 6]
        flat[4 * g + a] = base[g % len(base)]
        flat[4 * g + b] = base[(3 * g + 1) % len(base)]
        # the other two slots: +0.0 or -0.0
        for i in range(4):
            if i not in (a, b) and (g // 6) % 2 == 1:
                flat[4 * g + i] = -0.0
    return dense


def golden_all_0011(rows, cols, dtype):
    dense = torch.zeros(rows, cols, dtype=dtype)
    dense.view(-1, 4)[:, 2] = 1
    dense.view(-1, 4)[:, 3] = 2
    return dense


def golden_mixed():
    """The mixed 32x64 fp16 example of section 2.4."""
    patterns = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    dense = torch.zeros(32, 64, dtype=torch.float16)
    for i in range(32):
        for g in range(16):
            for j in patterns[(16 * i + g) % 6]:
                c = 4 * g + j
                dense[i, c] = ((64 * i + c) % 97) + 1
    return dense


def golden_f32(rows, cols, first):
    dense = torch.zeros(rows, cols, dtype=torch.float32)
    dense.view(-1, 2)[:, 0 if first else 1] = torch.arange(1, rows * cols // 2 + 1, dtype=torch.float32)
    return dense


def exact_inverse(packed, meta, dtype):
    """Decompresses with integer views only (bit-exact), using PyTorch's reorder offsets."""
    m = packed.shape[0]
    ncols = meta.shape[1]
    offsets = _calculate_meta_reordering_scatter_offsets(m, ncols, meta.dtype, "cpu")
    words = meta.view(-1)[offsets].view(m, ncols).to(torch.int64) & (
        0xFFFF if meta.dtype == torch.int16 else 0xFFFFFFFF)
    per_word = 4 if meta.dtype == torch.int16 else 8
    codes = torch.stack([(words >> (4 * q)) & 0xF for q in range(per_word)], dim=-1).view(m, -1)
    bits_type = {1: torch.int8, 2: torch.int16, 4: torch.int32}[dtype.itemsize]
    bits = packed.view(bits_type)
    if dtype == torch.float32:
        assert bool(((codes == 0b0100) | (codes == 0b1110)).all())
        slot = (codes == 0b1110).to(torch.int64)  # which element of the pair is kept
        out = torch.zeros(m, codes.shape[1], 2, dtype=bits_type)
        out.scatter_(-1, slot.unsqueeze(-1), bits.view(m, -1, 1))
    else:
        idx = torch.stack((codes & 3, codes >> 2), dim=-1)
        assert bool((idx[..., 0] < idx[..., 1]).all())
        out = torch.zeros(m, codes.shape[1], 4, dtype=bits_type)
        out.scatter_(-1, idx, bits.view(m, -1, 2))
    return out.view(m, -1).view(dtype)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".bin") or f.endswith(".json"):
            os.remove(os.path.join(OUT, f))

    cases = []

    def add(name, dense, seed=None, note=""):
        packed, meta = sparse_semi_structured_from_dense_cutlass(dense)
        restored = exact_inverse(packed, meta, dense.dtype)
        torch_restored = sparse_semi_structured_to_dense_cutlass(packed, meta)
        if dense.dtype == torch.float32:
            a = restored.view(torch.int32)
            b = torch_restored.view(torch.int32)
            low = a & 0xFFFF
            half_snan = ((low & 0x7C00) == 0x7C00) & ((low & 0x03FF) != 0) & ((low & 0x0200) == 0)
            assert torch.equal(torch.where(half_snan, a | 0x200, a), b), name
        else:
            assert raw_bytes(restored) == raw_bytes(torch_restored), name
        # The input is 2:4, so the inverse must give the same values back.
        if dense.dtype.is_floating_point:
            same = torch.equal(restored.isnan(), dense.isnan()) and bool(
                ((restored == dense) | dense.isnan()).all())
        else:
            same = torch.equal(restored, dense)
        assert same, name
        entry = {
            "name": name,
            "dtype": [k for k, v in DTYPES.items() if v == dense.dtype][0],
            "shape": list(dense.shape),
            "seed": seed,
            "note": note,
            "dense": f"{name}.dense.bin",
            "packed": f"{name}.packed.bin",
            "packedShape": list(packed.shape),
            "meta": f"{name}.meta.bin",
            "metaDType": META_NAMES[meta.dtype],
            "metaShape": list(meta.shape),
        }
        files = {"dense": dense, "packed": packed, "meta": meta}
        if raw_bytes(restored) != raw_bytes(dense):
            entry["restored"] = f"{name}.restored.bin"
            files["restored"] = restored
        for key, t in files.items():
            with open(os.path.join(OUT, entry[key]), "wb") as fh:
                fh.write(raw_bytes(t))
        cases.append(entry)

    shapes = {
        "F16": [(32, 64), (64, 128), (96, 256), (32, 512)],
        "BF16": [(32, 64), (64, 128), (96, 256), (32, 512)],
        "I8": [(16, 128), (32, 256), (48, 384), (16, 1024)],
        "F32": [(32, 32), (64, 64), (96, 160), (32, 256)],
    }
    seed = 1000
    for dname, dtype in DTYPES.items():
        for rows, cols in shapes[dname]:
            for mix in ("mixed", "full"):
                if mix == "full" and (rows, cols) != shapes[dname][1]:
                    continue
                seed += 1
                rng = np.random.default_rng(seed)
                dense = random_sparse(rng, rows, cols, dtype, mix)
                add(f"{dname.lower()}_{mix}_{rows}x{cols}", dense, seed,
                    f"random 2:4 ({mix})" if dtype != torch.float32 else f"random 1:2 ({mix})")

    add("f16_special_32x64", special_values(32, 64, torch.float16), note="NaN, inf, subnormal, -0.0")
    add("bf16_special_32x64", special_values(32, 64, torch.bfloat16), note="NaN, inf, subnormal, -0.0")
    add("golden_f16_all_0011_32x64", golden_all_0011(32, 64, torch.float16),
        note="every group [0,0,x,y]: meta is all 0xEEEE = -4370")
    add("golden_f16_mixed_32x64", golden_mixed(), note="section 2.4 mixed example")
    add("golden_i8_all_0011_16x128", golden_all_0011(16, 128, torch.int8),
        note="every group [0,0,x,y]: meta is all 0xEEEEEEEE")
    add("golden_f32_first_32x32", golden_f32(32, 32, True), note="every pair [x,0]: meta all 0x4444")
    add("golden_f32_second_32x32", golden_f32(32, 32, False), note="every pair [0,x]: meta all 0xEEEE")
    add("golden_f32_zero_32x32", torch.zeros(32, 32), note="all zero: meta all 0xEEEE")

    index = {
        "generator": "scripts/make_cutlass_fixtures.py",
        "torch": torch.__version__,
        "converter": "torch.sparse._semi_structured_conversions.sparse_semi_structured_from_dense_cutlass",
        "byteOrder": "little",
        "cases": cases,
    }
    with open(os.path.join(OUT, "cutlass_cases.json"), "w") as fh:
        json.dump(index, fh, indent=1)
        fh.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{len(cases)} cases, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()

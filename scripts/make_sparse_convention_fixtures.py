#!/usr/bin/env python3
"""Writes Tests/SparsityIOTests/Fixtures/sparse/*.sft: small safetensors files in the sparse
tensor convention of the README (CSR, BSR, N:M values + packed positions), made here with numpy
and the `safetensors` package from the layout's description alone, so that the Swift reader is
checked against an independent writer. Each file also holds the dense matrix as `NAME.dense`.
They seed the safetensors fuzzer's corpus too.

    python3 scripts/make_sparse_convention_fixtures.py      # needs numpy and safetensors
"""
import json
import os

import numpy as np
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SparsityIOTests", "Fixtures", "sparse")


def n_of_m(dense, n, m):
    """The kept values and packed positions of an N:M matrix (fillers: m-n, ..., m-1, 0, 1, ...)."""
    rows, cols = dense.shape
    groups = -(-cols // m)
    bits = max(1, (m - 1).bit_length())
    values = np.zeros((rows, groups * n), dtype=dense.dtype)
    positions = np.zeros((rows, groups * n), dtype=np.int64)
    fill = list(range(m - n, m)) + list(range(0, m - n))
    for r in range(rows):
        for g in range(groups):
            chosen = [j for j in range(m) if g * m + j < cols and dense[r, g * m + j] != 0]
            assert len(chosen) <= n
            for j in fill:
                if len(chosen) < n and j not in chosen:
                    chosen.append(j)
            chosen.sort()
            for s, j in enumerate(chosen):
                positions[r, g * n + s] = j
                if g * m + j < cols:
                    values[r, g * n + s] = dense[r, g * m + j]
    per_row = (groups * n * bits + 7) // 8
    packed = np.zeros((rows, per_row), dtype=np.uint8)
    for r in range(rows):
        word = 0
        for i, p in enumerate(positions[r]):
            word |= int(p) << (i * bits)
        packed[r] = np.frombuffer(word.to_bytes(per_row, "little"), dtype=np.uint8)
    return values, packed


def sparse_matrix(rng, rows, cols, n, m, dtype):
    dense = rng.standard_normal((rows, cols)).astype(dtype)
    for r in range(rows):
        for g in range(0, cols, m):
            width = min(m, cols - g)
            keep = rng.permutation(width)[: rng.integers(0, n + 1)]
            drop = [j for j in range(width) if j not in keep]
            dense[r, [g + j for j in drop]] = 0
    return dense


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    for name, (rows, cols, n, m, dtype) in {
        "f32-2of4": (8, 32, 2, 4, np.float32),
        "f32-2of4-ragged": (5, 30, 2, 4, np.float32),
        "f16-4of8": (4, 21, 4, 8, np.float16),
        "f32-3of16": (3, 40, 3, 16, np.float32),
    }.items():
        dense = sparse_matrix(rng, rows, cols, n, m, dtype)
        values, positions = n_of_m(dense, n, m)
        meta = {"sparsity:w": json.dumps({"format": "n_of_m", "shape": [rows, cols], "n_of_m": [n, m]}, separators=(",", ":"))}
        save_file({"w.values": values, "w.positions": positions, "w.dense": dense}, os.path.join(OUT, name + ".sft"), metadata=meta)
    # CSR and BSR from the same kind of data, for the fuzzer's corpus.
    dense = sparse_matrix(rng, 8, 16, 1, 4, np.float32)
    crow = np.concatenate([[0], np.cumsum((dense != 0).sum(axis=1))]).astype(np.int32)
    col = np.nonzero(dense)[1].astype(np.int32)
    save_file({"w.crow_indices": crow, "w.col_indices": col, "w.values": dense[dense != 0], "w.dense": dense},
              os.path.join(OUT, "f32-csr.sft"),
              metadata={"sparsity:w": '{"format":"csr","shape":[8,16]}'})
    blocks = dense.reshape(2, 4, 4, 4).transpose(0, 2, 1, 3)  # [block row, block col, 4, 4]
    nonzero = [(i, j) for i in range(2) for j in range(4) if blocks[i, j].any()]
    crow = np.array([0] + [sum(1 for i, _ in nonzero if i <= r) for r in range(2)], dtype=np.int32)
    save_file({"w.crow_indices": crow, "w.col_indices": np.array([j for _, j in nonzero], dtype=np.int32),
               "w.values": np.stack([blocks[i, j] for i, j in nonzero]), "w.dense": dense},
              os.path.join(OUT, "f32-bsr.sft"),
              metadata={"sparsity:w": '{"format":"bsr","shape":[8,16],"blocksize":[4,4]}'})
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()

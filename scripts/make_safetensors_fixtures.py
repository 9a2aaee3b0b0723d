#!/usr/bin/env python3
"""Writes the safetensors reference fixture used by Tests/SparsityIOTests.

Run with the project's virtualenv (torch, safetensors):

    /work/venv/bin/python scripts/make_safetensors_fixtures.py

Outputs (committed):
  Tests/SparsityIOTests/Fixtures/reference.sft   file written by the Python `safetensors` package
  Tests/SparsityIOTests/Fixtures/reference.json  expected header order, offsets, bytes and values

The metadata has a single key: the reference writer stores metadata in a Rust HashMap, so the
order of several keys changes from run to run and could not be compared byte for byte.
"""
import json
import pathlib

import safetensors
import torch
from safetensors.torch import save

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "SparsityIOTests" / "Fixtures"

METADATA = {"note": 'format pt; tab\t newline\n quote" backslash\\ é ✓ \x01 /'}


def tensors():
    g = torch.Generator().manual_seed(7)
    t = {}
    t["encoder.weight"] = (torch.randn(3, 5, generator=g) * 4).to(torch.float32)
    t["encoder.bias"] = torch.tensor([0.5, -1.25, 3.0], dtype=torch.float32)
    t["scalar.f32"] = torch.tensor(2.75, dtype=torch.float32)
    t["empty.f32"] = torch.zeros(0, 4, dtype=torch.float32)
    t["half"] = (torch.randn(2, 3, generator=g)).to(torch.float16)
    t["brain"] = (torch.randn(7, generator=g) * 100).to(torch.bfloat16)
    t["bytes.i8"] = torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8)
    t["bytes.u8"] = torch.tensor([[0, 1, 254], [255, 7, 9]], dtype=torch.uint8)
    t["mask"] = torch.tensor([True, False, False, True, True], dtype=torch.bool)
    t["ints.i32"] = torch.tensor([-(2**31), -5, 0, 2**31 - 1], dtype=torch.int32)
    t["doubles"] = torch.tensor([[1e300, -0.0], [3.141592653589793, -2.5e-310]], dtype=torch.float64)
    t["longs"] = torch.tensor([-(2**63), 2**53 + 1, 42], dtype=torch.int64)
    t["ints.i16"] = torch.tensor([-32768, 32767, 3], dtype=torch.int16)
    t["ints.u16"] = torch.tensor([65535, 1], dtype=torch.uint16)
    t["ints.u32"] = torch.tensor([4294967295, 2], dtype=torch.uint32)
    t["ints.u64"] = torch.tensor([18446744073709551615, 3], dtype=torch.uint64)
    t["fp8"] = torch.tensor([0.5, -2.0, 448.0], dtype=torch.float32).to(torch.float8_e4m3fn)
    t["complex"] = torch.tensor([1 + 2j, -3.5 - 0.25j], dtype=torch.complex64)
    return t


def values(tensor):
    """Numeric element values for the dtypes the Swift Tensor converts (None otherwise)."""
    if tensor.dtype in (torch.float8_e4m3fn, torch.complex64):
        return None
    if tensor.dtype == torch.uint64:
        return [int(x) for x in tensor.flatten().tolist()]  # torch returns ints already
    return [float(x) if tensor.is_floating_point() else int(x) for x in tensor.flatten().tolist()]


def main():
    data = tensors()
    blob = save(data, metadata=METADATA)
    (OUT / "reference.sft").write_bytes(blob)

    header_length = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + header_length])
    body = blob[8 + header_length :]
    entries = []
    # The header's key order is the writer's data order.
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        entries.append(
            {
                "name": name,
                "dtype": info["dtype"],
                "shape": info["shape"],
                "data_offsets": [begin, end],
                "hex": body[begin:end].hex(),
                "values": values(data[name]),
            }
        )
    expected = {
        "generator": f"safetensors {safetensors.__version__}, torch {torch.__version__}",
        "header_length": header_length,
        "metadata": METADATA,
        "tensors": entries,
    }
    (OUT / "reference.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(blob)} bytes, {len(entries)} tensors")


if __name__ == "__main__":
    main()

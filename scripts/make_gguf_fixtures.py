#!/usr/bin/env python3
"""Writes the small GGUF fixtures of the GGUF reader's tests, with gguf-py's GGUFWriter.

    /work/venv/py/bin/python scripts/make_gguf_fixtures.py

Needs numpy, gguf (0.19) and safetensors. Output (committed, < 300 KB), in
Tests/SparsityIOTests/Fixtures/gguf/:

  types.gguf          v3: a tensor of every dequantizable type (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
                      Q5_0, Q5_1) in 1-D, 2-D with ragged row counts and 3-D shapes, on seeded
                      random data: quantized from floats (gguf.quants.quantize) and raw random
                      blocks (any d/m bits: negative, subnormal, inf, NaN); F16/F32/BF16 special
                      values (±0, subnormals, ±inf, quiet and signalling NaN); and two types that
                      cannot be dequantized (Q4_K, I32). Metadata of every value type: scalars,
                      unicode and empty strings, arrays of every element type, an empty array.
  v2-align64.gguf     the same layout as version 2 (version bytes patched: v2 and v3 are
                      identical), general.alignment = 64, three tensors.
  metadata-only.gguf  v3 without tensors.
  expected.sft        the values gguf.quants.dequantize gives for every dequantizable tensor of
                      the files above, as F32, named "<file>/<tensor>".
  reference.json      what gguf-py's GGUFReader reads from each file: version, alignment,
                      data offset, metadata (type, value; integers as decimal text, floats as
                      hexadecimal bit patterns) and tensors
                      (name, type id, dims as stored, offset in the data section, bytes).
"""
import json
import pathlib
import struct

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V
from safetensors.numpy import save_file

# The types the Swift reader decodes (GGMLType.isDequantizable).
DEQUANTIZABLE = (T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1)

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "SparsityIOTests" / "Fixtures" / "gguf"


class Writer(gguf.GGUFWriter):
    """GGUFWriter that can also write an empty array (the spec allows one; the writer refuses)."""

    def _pack_val(self, val, vtype, add_vtype, sub_type=None):
        if vtype == V.ARRAY and len(val) == 0:
            return (self._pack("I", vtype) if add_vtype else b"") + self._pack("I", sub_type) + self._pack("Q", 0)
        return super()._pack_val(val, vtype, add_vtype, sub_type)


def f16_bits(values):
    return np.array(values, dtype=np.float32).astype(np.float16)


def special_f32(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32) * 3
    flat = x.reshape(-1)
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 3.0e38, -1.0e-40, 1.0e-45, 65504.0, 1e-8]
    flat[: len(specials)] = specials
    bits = flat.view(np.uint32)
    bits[len(specials)] = 0x7F800001  # signalling NaN
    bits[len(specials) + 1] = 0xFFC12345  # negative quiet NaN with a payload
    return x


def special_f16(rng, shape):
    x = (rng.standard_normal(shape) * 4).astype(np.float16)
    flat = x.reshape(-1)
    values = [0.0, -0.0, 65504.0, -65504.0, 6.0e-8, -6.0e-8, 6.1e-5, 1.0e-6, -3.0e-5, np.inf, -np.inf, np.nan]
    flat[: len(values)] = values
    bits = flat.view(np.uint16)
    bits[len(values)] = 0x7C01  # signalling NaN
    bits[len(values) + 1] = 0xFE3F  # negative NaN with a payload
    bits[len(values) + 2] = 0x03FF  # largest subnormal
    bits[len(values) + 3] = 0x8001  # smallest negative subnormal
    return x


def quantizable(rng, shape):
    """Floats with zeros, negatives, a large value, a block of zeros and a block of negatives."""
    x = rng.standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[::7] = 0
    flat[3] = 1000.0
    flat[32:64] = 0  # one all-zero block (d = 0)
    if flat.size >= 96:
        flat[64:96] = -np.abs(flat[64:96]) - 0.5
    return x


def random_blocks(rng, qtype, shape):
    """Raw random blocks: every bit pattern of d, m, qh and qs is possible."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    data = rng.integers(0, 256, size=rows * shape[-1] // block * size, dtype=np.uint8)
    return data.reshape(*shape[:-1], shape[-1] // block * size)


def add_metadata(w):
    w.add_uint8("test.uint8", 255)
    w.add_int8("test.int8", -128)
    w.add_uint16("test.uint16", 65535)
    w.add_int16("test.int16", -32768)
    w.add_uint32("test.uint32", 4294967295)
    w.add_int32("test.int32", -2147483648)
    w.add_float32("test.float32", 1e-5)
    w.add_uint64("test.uint64", 18446744073709551615)
    w.add_int64("test.int64", -9223372036854775808)
    w.add_float64("test.float64", -2.5e-300)
    w.add_bool("test.true", True)
    w.add_bool("test.false", False)
    w.add_string("test.string", "héllo wörld ✓ 日本語 🙂 e\u0301")
    w.add_key_value("test.empty_string", "", V.STRING)
    w.add_string("test.long_string", "lorem ipsum dolor sit amet " * 20)
    w.add_array("test.strings", ["a", "", "Ġthe", "<|im_start|>", "🙂", "日本"])
    w.add_key_value("test.empty_array", [], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("test.uint8s", [0, 1, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.int8s", [-128, 0, 127], V.ARRAY, sub_type=V.INT8)
    w.add_key_value("test.uint16s", [0, 65535], V.ARRAY, sub_type=V.UINT16)
    w.add_key_value("test.int16s", [-32768, 32767], V.ARRAY, sub_type=V.INT16)
    w.add_key_value("test.uint32s", [0, 4294967295], V.ARRAY, sub_type=V.UINT32)
    w.add_array("test.int32s", list(range(-3, 37)))
    w.add_array("test.float32s", [0.5, -1.25, 1e-5, 3.0e38])
    w.add_array("test.bools", [True, False, True])
    w.add_key_value("test.uint64s", [0, 18446744073709551615], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("test.int64s", [-9223372036854775808, 9223372036854775807], V.ARRAY, sub_type=V.INT64)
    w.add_key_value("test.float64s", [0.1, -1e300], V.ARRAY, sub_type=V.FLOAT64)


def write_types(path):
    rng = np.random.default_rng(20250311)
    w = Writer(str(path), "llama")
    add_metadata(w)
    w.add_tensor("f32.matrix", special_f32(rng, (5, 7)))
    w.add_tensor("f32.vector", rng.standard_normal(13).astype(np.float32))
    w.add_tensor("f16.matrix", special_f16(rng, (3, 11)))
    w.add_tensor("f16.cube", (rng.standard_normal((2, 3, 5)) * 100).astype(np.float16))
    bf = gguf.quants.quantize(special_f32(rng, (4, 9)), T.BF16)
    w.add_tensor("bf16.matrix", bf, raw_dtype=T.BF16)
    w.add_tensor("bf16.random", rng.integers(0, 256, size=(3, 2 * 6), dtype=np.uint8), raw_dtype=T.BF16)
    for qtype in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        low = qtype.name.lower()
        w.add_tensor(f"{low}.matrix", gguf.quants.quantize(quantizable(rng, (5, 96)), qtype), raw_dtype=qtype)
        w.add_tensor(f"{low}.vector", gguf.quants.quantize(quantizable(rng, (64,)), qtype), raw_dtype=qtype)
        w.add_tensor(f"{low}.cube", gguf.quants.quantize(quantizable(rng, (2, 3, 32)), qtype), raw_dtype=qtype)
        w.add_tensor(f"{low}.random", random_blocks(rng, qtype, (7, 64)), raw_dtype=qtype)
    # Types the reader knows but cannot dequantize.
    w.add_tensor("q4_k.unsupported", random_blocks(rng, T.Q4_K, (2, 256)), raw_dtype=T.Q4_K)
    w.add_tensor("i32.unsupported", np.arange(-2, 3, dtype=np.int32))
    finish(w)


def write_v2(path):
    rng = np.random.default_rng(2)
    w = Writer(str(path), "llama")
    w.add_custom_alignment(64)
    w.add_string("general.name", "v2 fixture")
    w.add_tensor("token_embd.weight", gguf.quants.quantize(quantizable(rng, (3, 64)), T.Q8_0), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.attn_q.weight", gguf.quants.quantize(quantizable(rng, (3, 32)), T.Q4_1), raw_dtype=T.Q4_1)
    w.add_tensor("output_norm.weight", rng.standard_normal(5).astype(np.float32))
    finish(w)
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", 2)
    path.write_bytes(bytes(data))


def write_metadata_only(path):
    w = Writer(str(path), "llama")
    w.add_uint32("llama.block_count", 0)
    w.add_array("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>"])
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def value_json(field):
    """A field's type and value; floats as their bit patterns, so the comparison is exact."""
    types = field.types
    main = types[0]

    def scalar(vtype, part):
        if vtype == V.FLOAT32:
            return "0x%08x" % int(part.view(np.uint32)[0])
        if vtype == V.FLOAT64:
            return "0x%016x" % int(part.view(np.uint64)[0])
        if vtype == V.STRING:
            return bytes(part).decode("utf-8")
        if vtype == V.BOOL:
            return bool(part[0])
        return str(int(part[0]))  # as text: JSON readers may round integers above 2^53

    if main == V.ARRAY:
        element = V(int(field.parts[3][0]))  # parts: key length, key, type, element type, count, ...
        values = [scalar(element, field.parts[i]) for i in field.data]
        return {"type": "ARRAY", "element_type": element.name, "value": values}
    return {"type": main.name, "value": scalar(main, field.parts[-1])}


def describe(path, expected):
    reader = gguf.GGUFReader(str(path))
    version = int(reader.fields["GGUF.version"].parts[0][0])
    metadata = []
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        metadata.append({"key": name, **value_json(field)})
    tensors = []
    for t in reader.tensors:
        tensors.append({
            "name": t.name,
            "type": int(t.tensor_type),
            "type_name": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],
            "offset": int(t.data_offset - reader.data_offset),
            "bytes": int(t.n_bytes),
        })
        if t.tensor_type not in DEQUANTIZABLE:
            continue
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        expected[f"{path.name}/{t.name}"] = np.ascontiguousarray(values, dtype=np.float32)
    return {
        "version": version,
        "alignment": int(reader.alignment),
        "data_offset": int(reader.data_offset),
        "file_size": path.stat().st_size,
        "metadata": metadata,
        "tensors": tensors,
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    files = {"types.gguf": write_types, "v2-align64.gguf": write_v2, "metadata-only.gguf": write_metadata_only}
    reference, expected = {}, {}
    for name, write in files.items():
        write(OUT / name)
        reference[name] = describe(OUT / name, expected)
    save_file(expected, str(OUT / "expected.sft"))
    (OUT / "reference.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n")
    total = sum(p.stat().st_size for p in OUT.glob("*") if p.is_file())
    print(f"wrote {len(files)} GGUF files, {len(expected)} expected tensors, {total} bytes to {OUT}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes one small malformed GGUF file per validation rule of the GGUF reader.

    python3 scripts/make_malformed_gguf_corpus.py
    /work/venv/py/bin/python scripts/make_malformed_gguf_corpus.py --compare-reference

With --compare-reference it also runs gguf-py's GGUFReader (the `gguf` package) on every file
and checks that it rejects each one too, except the files listed in STRICTER_THAN_REFERENCE,
which gguf-py accepts and we reject (each with the reason).

Output (committed): Tests/SparsityIOTests/Fixtures/gguf/malformed/<errorCase>--<what>.gguf
The part of the name before "--" is the GGUFError case the reader must throw; the table-driven
test in GGUFMalformedTests.swift checks every file against it. Valid edge cases (optional final
padding, alignment 1, empty arrays…) go to Fixtures/gguf/accepted/<what>.gguf and must open.
"""
import pathlib
import struct
import sys

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "SparsityIOTests" / "Fixtures" / "gguf"
OUT = FIXTURES / "malformed"
ACCEPTED_OUT = FIXTURES / "accepted"

# Value type ids (gguf_type) and ggml type ids used below.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
F32, F16, Q4_0, Q4_1, Q8_0, Q4_K = 0, 1, 2, 3, 8, 12


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def gstr(text, length=None):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return u64(len(data) if length is None else length) + data


def kv(key, vtype, payload):
    """One metadata pair: key, value type, encoded value."""
    return gstr(key) + u32(vtype) + payload


def kv_str(key, value):
    return kv(key, STRING, gstr(value))


def kv_u32(key, value):
    return kv(key, UINT32, u32(value))


def array(etype, count, payload):
    return u32(etype) + u64(count) + payload


def tinfo(name, dims, ggml_type=F32, offset=0, n_dims=None):
    body = gstr(name) + u32(len(dims) if n_dims is None else n_dims)
    body += b"".join(u64(d) for d in dims)
    return body + u32(ggml_type) + u64(offset)


ARCH = kv_str("general.architecture", "llama")


def gguf(kvs=(ARCH,), tensors=(), data=b"", version=3, alignment=32, n_tensors=None, n_kv=None,
         magic=b"GGUF", pad=True):
    """A GGUF file: header, pairs, tensor infos, padding to `alignment`, data."""
    out = magic + u32(version)
    out += u64(len(tensors) if n_tensors is None else n_tensors)
    out += u64(len(kvs) if n_kv is None else n_kv)
    out += b"".join(kvs) + b"".join(tensors)
    if pad:
        out += bytes(-len(out) % alignment)
    return out + data


def valid(data=bytes(8), extra_tensors=(), extra_data=b""):
    """One F32 tensor 'x' of 2 elements (the base of many files)."""
    return gguf(tensors=(tinfo("x", [2]),) + tuple(extra_tensors), data=data + extra_data)


def two(offset_b, name_b="b", dims_b=(2,), data=bytes(40), alignment=32, kvs=(ARCH,)):
    return gguf(kvs=kvs, tensors=(tinfo("a", [2]), tinfo(name_b, list(dims_b), offset=offset_b)), data=data,
                alignment=alignment)


BASE = valid()

CORPUS = {
    # Header
    "truncated--empty": b"",
    "truncated--partial-magic": b"GG",
    "truncated--no-version": b"GGUF",
    "truncated--partial-counts": BASE[:20],
    "truncated--no-kv-count": BASE[:16],
    "truncated--no-value-type": gguf(kvs=(gstr("general.architecture"),), pad=False),
    "truncated--inside-uint32-value": gguf(kvs=(kv("a", UINT32, b"\x01\x02"),), pad=False),
    "truncated--inside-array-count": gguf(kvs=(kv("a", ARRAY, u32(INT32) + b"\x01"),), pad=False),
    "truncated--inside-tensor-offset": gguf(tensors=(tinfo("tensor.name", [2])[:-3],), pad=False),
    "truncated--no-tensor-type": gguf(tensors=(gstr("a.longer.tensor.name") + u32(1) + u64(2),), pad=False),
    "invalidMagic--ggml": b"ggml" + BASE[4:],
    "invalidMagic--lowercase": b"gguf" + BASE[4:],
    "invalidMagic--byte-reversed": b"FUGG" + BASE[4:],
    "invalidMagic--short-and-wrong": b"GX",
    "unsupportedVersion--zero": gguf(version=0),
    "unsupportedVersion--one": gguf(version=1),
    "unsupportedVersion--four": gguf(version=4),
    "unsupportedVersion--huge": gguf(version=0xFFFFFFFF),
    "byteSwapped--big-endian-three": gguf(version=0x03000000),
    "byteSwapped--big-endian-two": gguf(version=0x02000000),
    # Counts
    "countTooLarge--kv-count-u64-max": gguf(n_kv=2**64 - 1),
    "countTooLarge--kv-count-beyond-file": gguf(n_kv=100),
    "countTooLarge--tensor-count-u64-max": gguf(n_tensors=2**64 - 1),
    "countTooLarge--tensor-count-beyond-file": gguf(tensors=(tinfo("x", [2]),), n_tensors=3, pad=False),
    # Strings
    "invalidStringLength--key-u64-max": gguf(kvs=(gstr("a", length=2**64 - 1) + u32(UINT8) + b"\x00",)),
    "invalidStringLength--key-beyond-file": gguf(kvs=(gstr("abc", length=40) + u32(UINT8) + b"\x00",)),
    "invalidStringLength--value-beyond-file": gguf(kvs=(kv("a", STRING, gstr("xy", length=1000)),)),
    "invalidStringLength--over-1-gib": gguf(kvs=(kv("a", STRING, gstr("xy", length=2**30 + 1)),)),
    "invalidStringLength--array-element": gguf(kvs=(kv("a", ARRAY, array(STRING, 2, gstr("ok") + gstr("no", length=99))),)),
    "invalidStringLength--tensor-name": gguf(tensors=(gstr("x", length=500) + u32(1) + u64(2) + u32(F32) + u64(0),), data=bytes(8)),
    "invalidUTF8--key": gguf(kvs=(gstr(b"a\xffb") + u32(UINT8) + b"\x00",)),
    "invalidUTF8--key-overlong": gguf(kvs=(gstr(b"\xc0\xaf") + u32(UINT8) + b"\x00",)),
    "invalidUTF8--key-surrogate": gguf(kvs=(gstr(b"\xed\xa0\x80") + u32(UINT8) + b"\x00",)),
    "invalidUTF8--value": gguf(kvs=(kv("a", STRING, gstr(b"caf\xe9")),)),
    "invalidUTF8--value-cut-sequence": gguf(kvs=(kv("a", STRING, gstr("🙂".encode()[:3])),)),
    "invalidUTF8--array-element": gguf(kvs=(kv("a", ARRAY, array(STRING, 2, gstr("ok") + gstr(b"\x80"))),)),
    "invalidUTF8--tensor-name": gguf(tensors=(tinfo(b"w\xfe", [2]),), data=bytes(8)),
    # Keys
    "invalidKey--empty": gguf(kvs=(kv("", UINT8, b"\x00"),)),
    "invalidKey--nul-byte": gguf(kvs=(kv("general.name\x00x", UINT8, b"\x00"),)),
    "duplicateKey--same-key": gguf(kvs=(ARCH, ARCH)),
    "duplicateKey--different-types": gguf(kvs=(kv_u32("a", 1), kv_str("a", "one"))),
    "duplicateKey--unicode-normalization": gguf(kvs=(kv_u32("\u00e9", 1), kv_u32("e\u0301", 2))),
    # Values
    "unknownValueType--thirteen": gguf(kvs=(kv("a", 13, b"\x00" * 8),)),
    "unknownValueType--u32-max": gguf(kvs=(kv("a", 0xFFFFFFFF, b"\x00" * 8),)),
    "unknownValueType--array-element": gguf(kvs=(kv("a", ARRAY, array(13, 1, b"\x00" * 8)),)),
    "nestedArray--array-of-arrays": gguf(kvs=(kv("a", ARRAY, array(ARRAY, 1, array(INT32, 1, u32(7)))),)),
    "nestedArray--empty-array-of-arrays": gguf(kvs=(kv("a", ARRAY, array(ARRAY, 0, b"")),)),
    "invalidArrayLength--u64-max": gguf(kvs=(kv("a", ARRAY, array(UINT8, 2**64 - 1, b"\x00")),)),
    "invalidArrayLength--beyond-file": gguf(kvs=(kv("a", ARRAY, array(INT32, 100, u32(1) * 3)),)),
    "invalidArrayLength--over-2-30": gguf(kvs=(kv("a", ARRAY, array(UINT8, 2**30 + 1, b"\x00" * 8)),)),
    "invalidArrayLength--strings-beyond-file": gguf(kvs=(kv("a", ARRAY, array(STRING, 10, gstr(""))),)),
    "invalidBool--two": gguf(kvs=(kv("a", BOOL, b"\x02"),)),
    "invalidBool--array-element": gguf(kvs=(kv("a", ARRAY, array(BOOL, 3, b"\x01\x00\xff")),)),
    # Alignment
    "invalidAlignment--zero": gguf(kvs=(ARCH, kv_u32("general.alignment", 0))),
    "invalidAlignment--over-1-mib": gguf(kvs=(ARCH, kv_u32("general.alignment", 1 << 21))),
    "invalidAlignment--not-power-of-two": gguf(kvs=(ARCH, kv_u32("general.alignment", 24)), alignment=24),
    "invalidAlignment--uint64": gguf(kvs=(ARCH, kv("general.alignment", UINT64, u64(32)))),
    "invalidAlignment--int32": gguf(kvs=(ARCH, kv("general.alignment", INT32, u32(32)))),
    "invalidAlignment--string": gguf(kvs=(ARCH, kv_str("general.alignment", "32"))),
    # Tensor infos
    "invalidTensorName--empty": gguf(tensors=(tinfo("", [2]),), data=bytes(8)),
    "invalidTensorName--64-bytes": gguf(tensors=(tinfo("w" * 64, [2]),), data=bytes(8)),
    "invalidTensorName--nul-byte": gguf(tensors=(tinfo("w\x00", [2]),), data=bytes(8)),
    "duplicateTensorName--same-name": two(32, name_b="a"),
    "invalidDimensionCount--zero": gguf(tensors=(tinfo("x", []),), data=bytes(32)),
    "invalidDimensionCount--five": gguf(tensors=(tinfo("x", [1, 1, 1, 1, 2]),), data=bytes(8)),
    "invalidDimensionCount--u32-max": gguf(tensors=(tinfo("x", [2], n_dims=0xFFFFFFFF),), data=bytes(8)),
    "invalidDimension--zero": gguf(tensors=(tinfo("x", [2, 0]),), data=bytes(8)),
    "invalidDimension--above-int64-max": gguf(tensors=(tinfo("x", [2**63, 1]),), data=bytes(8)),
    "sizeOverflow--element-count": gguf(tensors=(tinfo("x", [2**32, 2**32]),), data=bytes(8)),
    "sizeOverflow--byte-count": gguf(tensors=(tinfo("x", [2**62]),), data=bytes(8)),
    "sizeOverflow--f16-byte-count": gguf(tensors=(tinfo("x", [2, 2**61], F16),), data=bytes(8)),
    "unknownTensorType--removed-id-4": gguf(tensors=(tinfo("x", [32], 4),), data=bytes(32)),
    "unknownTensorType--42": gguf(tensors=(tinfo("x", [32], 42),), data=bytes(32)),
    "unknownTensorType--u32-max": gguf(tensors=(tinfo("x", [32], 0xFFFFFFFF),), data=bytes(32)),
    "rowNotBlockAligned--q4_0-16": gguf(tensors=(tinfo("x", [16, 2], Q4_0),), data=bytes(32)),
    "rowNotBlockAligned--q4_k-32": gguf(tensors=(tinfo("x", [32], Q4_K),), data=bytes(32)),
    # Offsets and data
    "misalignedOffset--first": gguf(tensors=(tinfo("x", [2], offset=4),), data=bytes(12)),
    "misalignedOffset--second-unpadded": two(8),
    "invalidOffset--gap-at-start": gguf(tensors=(tinfo("x", [2], offset=32),), data=bytes(40)),
    "invalidOffset--gap": two(64, data=bytes(72)),
    "invalidOffset--overlap": two(0),
    "invalidOffset--out-of-order": gguf(
        tensors=(tinfo("a", [2], offset=32), tinfo("b", [2], offset=0)), data=bytes(40)),
    "invalidOffset--u64-max": gguf(tensors=(tinfo("x", [32], offset=2**64 - 32),), data=bytes(128)),
    "truncatedData--no-data": gguf(tensors=(tinfo("x", [2]),), data=b""),
    "truncatedData--no-padding-no-data": gguf(tensors=(tinfo("x", [2]),), pad=False),
    "truncatedData--one-byte-short": valid(data=bytes(7)),
    "truncatedData--second-tensor": two(32, data=bytes(36)),
    "truncatedData--huge-tensor": gguf(tensors=(tinfo("x", [2**40]),), data=bytes(64)),
    "trailingBytes--after-padding": valid(data=bytes(32), extra_data=b"\x00"),
    "trailingBytes--second-block": valid(data=bytes(64)),
    "trailingBytes--no-tensors": gguf(data=bytes(32)),
}


# Edge cases that are valid and must open (Fixtures/gguf/accepted/<what>.gguf).
ALIGN1 = kv_u32("general.alignment", 1)
ACCEPTED = {
    # The padding after the last tensor is optional (ggml reads only the tensors' bytes).
    "no-final-padding": valid(),
    "partial-final-padding": valid(data=bytes(20)),
    "full-final-padding": valid(data=bytes(32)),
    # No tensors: the padding to the data section is optional too.
    "no-tensors-no-padding": gguf(pad=False),
    "no-tensors-padded": gguf(),
    "no-metadata-no-tensors": gguf(kvs=(), pad=False),
    # Alignment 1: an F32 tensor at an odd address (read by copying, not as a view).
    "alignment-1-unaligned-f32": gguf(
        kvs=(ARCH, ALIGN1), tensors=(tinfo("h", [3], F16), tinfo("x", [2], offset=6)),
        data=struct.pack("<3e", 1.0, -2.0, 0.5) + struct.pack("<2f", 3.0, -4.0), alignment=1),
    "alignment-64-version-2": gguf(
        kvs=(ARCH, kv_u32("general.alignment", 64)), tensors=(tinfo("a", [2]), tinfo("b", [1], offset=64)),
        data=bytes(64) + bytes(4), version=2, alignment=64),
    # Values at their limits: empty key-less arrays, empty strings, every element type.
    "empty-arrays-and-strings": gguf(kvs=(
        kv("a", ARRAY, array(STRING, 0, b"")), kv("b", ARRAY, array(UINT8, 0, b"")), kv("c", STRING, gstr("")),
        kv("d", ARRAY, array(STRING, 2, gstr("") + gstr(""))))),
    # Four dimensions, quantized rows, and a name of 63 bytes.
    "four-dimensions-q8_0": gguf(tensors=(tinfo("n" * 63, [32, 1, 2, 1], Q8_0),), data=bytes(68)),
}


# Files gguf-py's GGUFReader (0.19) accepts but we reject, and why (what ggml does in brackets).
LAZY = "gguf-py reads through numpy slices that the end of the file silently shortens [ggml rejects]"
OFFSETS = "gguf-py adds each offset to the data start and checks nothing more [ggml requires contiguous offsets]"
TRAILING = "bytes after the data's padding mean a writer bug or a cut-off file [both ignore them]"
STRICTER_THAN_REFERENCE = {
    "invalidStringLength--value-beyond-file": LAZY,
    "invalidStringLength--over-1-gib": LAZY,
    "invalidStringLength--array-element": LAZY,
    "invalidKey--empty": "the spec's keys are non-empty [ggml does not check either]",
    "invalidKey--nul-byte": "a NUL byte cuts the key short in ggml's strcmp lookups [ggml does not check]",
    "duplicateKey--unicode-normalization": "Swift compares strings by canonical equivalence [ggml compares bytes]",
    "nestedArray--array-of-arrays": "gguf-py flattens nested arrays [ggml rejects them]",
    "nestedArray--empty-array-of-arrays": "gguf-py flattens nested arrays [ggml rejects them]",
    "invalidBool--two": "the spec allows 0 and 1 [ggml, like gguf-py, reads any nonzero byte as true]",
    "invalidBool--array-element": "the spec allows 0 and 1 [ggml, like gguf-py, reads any nonzero byte as true]",
    "invalidTensorName--empty": "an empty name cannot be looked up [ggml does not check]",
    "invalidTensorName--64-bytes": "gguf-py has no limit [ggml rejects names of 64+ bytes: GGML_MAX_NAME]",
    "invalidTensorName--nul-byte": "a NUL byte cuts the name short in ggml's strcmp lookups [ggml does not check]",
    "invalidDimensionCount--zero": "a tensor has 1-4 dimensions here [ggml reads 0 as a 1-element tensor]",
    "invalidDimensionCount--five": "gguf-py has no limit [ggml rejects more than 4: GGML_MAX_DIMS]",
    "invalidDimension--zero": "no empty tensors [ggml allows 0 but its overflow check divides by ne[1..3]]",
    "misalignedOffset--first": OFFSETS,
    "misalignedOffset--second-unpadded": OFFSETS,
    "invalidOffset--gap-at-start": OFFSETS,
    "invalidOffset--gap": OFFSETS,
    "invalidOffset--overlap": OFFSETS,
    "invalidOffset--out-of-order": OFFSETS,
    "invalidOffset--u64-max": OFFSETS + " (the uint64 sum wraps around)",
    "trailingBytes--after-padding": TRAILING,
    "trailingBytes--second-block": TRAILING,
    "trailingBytes--no-tensors": TRAILING,
}
# gguf-py loops over these counts element by element (2^64 - 1 and 2^30 + 1 empty reads) and
# does not finish in reasonable time; they count as rejections.


READER_SNIPPET = """
import sys
from gguf import GGUFReader
reader = GGUFReader(sys.argv[1])
for field in reader.fields.values():  # touch every value, as a user of the reader would
    field.contents()
for tensor in reader.tensors:
    tensor.data.tobytes()
"""


def compare_reference(timeout=5):
    """Runs GGUFReader on every file in a subprocess (it loops for a very long time over some
    huge counts: those time out and count as rejections, reported as such)."""
    import subprocess
    import tempfile

    failures, hangs = 0, []
    with tempfile.TemporaryDirectory() as directory:
        for name, blob in list(CORPUS.items()) + [("accepted/" + k, v) for k, v in ACCEPTED.items()]:
            path = pathlib.Path(directory) / f"{name.replace('/', '--')}.gguf"
            path.write_bytes(blob)
            try:
                run = subprocess.run([sys.executable, "-c", READER_SNIPPET, str(path)], capture_output=True,
                                     timeout=timeout)
                accepted = run.returncode == 0
            except subprocess.TimeoutExpired:
                accepted = False
                hangs.append(name)
            should_accept = name.startswith("accepted/") or name in STRICTER_THAN_REFERENCE
            if accepted != should_accept:
                failures += 1
                print(f"MISMATCH {name}: reference {'accepts' if accepted else 'rejects'} it")
    for name in hangs:
        print(f"reference did not finish within {timeout} s: {name}")
    print(f"compared {len(CORPUS) + len(ACCEPTED)} files with gguf-py's GGUFReader, {failures} mismatches, "
          f"{len(STRICTER_THAN_REFERENCE)} accepted there and rejected here (documented)")
    return failures == 0


def main():
    if "--compare-reference" in sys.argv:
        sys.exit(0 if compare_reference() else 1)
    for directory, files in ((OUT, CORPUS), (ACCEPTED_OUT, ACCEPTED)):
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.gguf"):
            old.unlink()
        for name, blob in files.items():
            (directory / f"{name}.gguf").write_bytes(blob)
        print(f"wrote {len(files)} files to {directory}")


if __name__ == "__main__":
    main()

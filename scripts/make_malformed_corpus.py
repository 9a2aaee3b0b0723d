#!/usr/bin/env python3
"""Writes one small malformed safetensors file per validation rule.

    python3 scripts/make_malformed_corpus.py
    /work/venv/bin/python scripts/make_malformed_corpus.py --compare-reference

With --compare-reference it also runs the Python `safetensors` package on every file and
checks that it rejects each one too, except the documented rules where we are stricter.

Output (committed): Tests/SparsityIOTests/Fixtures/malformed/<errorCase>--<what>.sft
The part of the name before "--" is the SafetensorsError case the reader must throw; the
table-driven test in SafetensorsMalformedTests.swift checks every file against it.
"""
import json
import pathlib
import struct
import sys

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "SparsityIOTests" / "Fixtures" / "malformed"


def file(header, data=b"", length=None):
    """8-byte little-endian header length, header bytes, data bytes."""
    if isinstance(header, (dict, list)):
        header = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    if isinstance(header, str):
        header = header.encode("utf-8")
    n = len(header) if length is None else length
    return struct.pack("<Q", n) + header + data


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def one(dtype="F32", shape=(2,), offsets=(0, 8), data=None, name="x"):
    size = offsets[1] if data is None else None
    return file({name: entry(dtype, shape, offsets)}, data if data is not None else bytes(size))


CORPUS = {
    # Header length and bounds
    "fileTooSmall--empty": b"",
    "fileTooSmall--truncated-length": b"\x10\x00\x00\x00\x00",
    "headerTooLarge--over-limit": struct.pack("<Q", 100_000_001) + b"{}",
    "headerTooLarge--u64-max": b"\xff" * 8 + b"{}",
    "headerOutOfBounds--beyond-file": file("{}", length=100),
    # Header start
    "invalidHeaderStart--zero-length": file(""),
    "invalidHeaderStart--leading-space": file(' {"x":' + json.dumps(entry()) + "}", bytes(8)),
    "invalidHeaderStart--array": file("[]"),
    "invalidHeaderStart--nul-padding": file(b"\x00{}"),
    # JSON
    "invalidJSON--syntax": file('{"x":}'),
    "invalidJSON--unterminated": file('{"x":{"dtype":"F32"'),
    "invalidJSON--trailing-garbage": file("{} x"),
    "invalidJSON--trailing-comma": file('{"x":' + json.dumps(entry()) + ",}", bytes(8)),
    "invalidJSON--invalid-utf8": file(b'{"\xff":' + json.dumps(entry()).encode() + b"}", bytes(8)),
    "invalidJSON--overlong-utf8": file(b'{"\xc0\xaf":' + json.dumps(entry()).encode() + b"}", bytes(8)),
    "invalidJSON--utf8-surrogate": file(b'{"\xed\xa0\x80":' + json.dumps(entry()).encode() + b"}", bytes(8)),
    "invalidJSON--lone-surrogate-escape": file('{"\\ud800":' + json.dumps(entry()) + "}", bytes(8)),
    "invalidJSON--control-character": file(b'{"a\x01b":' + json.dumps(entry()).encode() + b"}", bytes(8)),
    "invalidJSON--bad-escape": file('{"a\\qb":' + json.dumps(entry()) + "}", bytes(8)),
    "invalidJSON--leading-zero": file('{"x":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}', bytes(8)),
    "invalidJSON--deep-nesting": file('{"__metadata__":' + "[" * 100 + "]" * 100 + "}"),
    "invalidJSON--duplicate-key-in-entry": file('{"x":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', bytes(8)),
    # Names
    "duplicateName--same-name": file('{"x":' + json.dumps(entry()) + ',"x":' + json.dumps(entry()) + "}", bytes(8)),
    "duplicateName--unicode-normalization": file(
        '{"\u00e9":' + json.dumps(entry()) + ',"e\u0301":' + json.dumps(entry(offsets=(8, 16))) + "}", bytes(16)
    ),
    "duplicateName--metadata-twice": file('{"__metadata__":{},"__metadata__":{}}'),
    "invalidEntry--empty-name": one(name=""),
    # Entries
    "invalidEntry--not-an-object": file('{"x":"F32"}'),
    "invalidEntry--extra-key": file({"x": {**entry(), "strides": [1]}}, bytes(8)),
    "invalidEntry--missing-dtype": file({"x": {"shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
    "invalidEntry--missing-offsets": file({"x": {"dtype": "F32", "shape": [2]}}, bytes(8)),
    "invalidEntry--dtype-not-string": file('{"x":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}', bytes(8)),
    "unknownDType--f128": one(dtype="F128"),
    "unknownDType--lowercase": one(dtype="f32"),
    "invalidEntry--negative-shape": file('{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', bytes(8)),
    "invalidEntry--float-shape": file('{"x":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', bytes(8)),
    "invalidEntry--exponent-shape": file('{"x":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}', bytes(8)),
    "invalidEntry--huge-shape": file('{"x":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}}', bytes(8)),
    "invalidEntry--shape-not-array": file('{"x":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}', bytes(8)),
    "invalidEntry--shape-of-strings": file('{"x":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}', bytes(8)),
    "invalidEntry--three-offsets": file('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}', bytes(8)),
    "invalidEntry--one-offset": file('{"x":{"dtype":"F32","shape":[2],"data_offsets":[8]}}', bytes(8)),
    "invalidEntry--negative-offset": file('{"x":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', bytes(8)),
    # Sizes
    "validationOverflow--element-count": one(shape=(2**40, 2**40), offsets=(0, 8)),
    "validationOverflow--bit-count": one(dtype="F64", shape=(2**60,), offsets=(0, 8)),
    "partialByte--odd-f4": one(dtype="F4", shape=(3,), offsets=(0, 2)),
    "partialByte--f6-not-whole-bytes": one(dtype="F6_E2M3", shape=(5,), offsets=(0, 4)),
    "sizeMismatch--too-few-bytes": one(shape=(3,), offsets=(0, 8)),
    "sizeMismatch--empty-with-bytes": one(shape=(0, 3), offsets=(0, 4)),
    # Offsets
    "invalidOffsets--begin-after-end": one(offsets=(8, 0), data=bytes(8)),
    "invalidOffsets--not-from-zero": one(offsets=(4, 12), data=bytes(12)),
    "invalidOffsets--gap": file({"a": entry(offsets=(0, 8)), "b": entry(offsets=(12, 20))}, bytes(20)),
    "invalidOffsets--overlap": file({"a": entry(offsets=(0, 8)), "b": entry(offsets=(4, 12))}, bytes(12)),
    "invalidOffsets--same-range-twice": file({"a": entry(offsets=(0, 8)), "b": entry(offsets=(0, 8))}, bytes(8)),
    # Data section
    "truncatedData--missing-bytes": one(data=bytes(5)),
    "truncatedData--no-data": one(data=b""),
    "trailingBytes--extra-bytes": one(data=bytes(9)),
    "trailingBytes--no-tensors-but-data": file("{}", b"\x00"),
    # Metadata
    "invalidMetadata--not-an-object": file('{"__metadata__":"pt"}'),
    "invalidMetadata--number-value": file('{"__metadata__":{"format":1}}'),
    "invalidMetadata--nested-object": file('{"__metadata__":{"format":{"a":"b"}}}'),
    "invalidMetadata--null": file('{"__metadata__":null}'),
}


# Files the reference reader (safetensors 0.8) accepts but we reject, and why.
STRICTER_THAN_REFERENCE = {
    "duplicateName--same-name": "serde keeps the last of two equal keys; we refuse the ambiguity",
    "duplicateName--unicode-normalization": "Swift compares strings by canonical equivalence",
    "invalidEntry--empty-name": "our writer cannot write an empty name, so the reader refuses it",
    "invalidEntry--extra-key": "serde ignores unknown fields; an unknown key may change meaning",
    "invalidHeaderStart--leading-space": "the spec says the header starts with '{' (0.8 does not check)",
    "invalidMetadata--null": "serde reads null as no metadata; the spec allows only a string map",
}


def compare_reference():
    from safetensors import deserialize

    failures = 0
    for name, blob in CORPUS.items():
        try:
            deserialize(blob)
            accepted = True
        except Exception:  # noqa: BLE001 - any rejection counts
            accepted = False
        if accepted != (name in STRICTER_THAN_REFERENCE):
            failures += 1
            print(f"MISMATCH {name}: reference {'accepts' if accepted else 'rejects'} it")
    print(f"compared {len(CORPUS)} files with the reference reader, {failures} mismatches")
    return failures == 0


def main():
    if "--compare-reference" in sys.argv:
        sys.exit(0 if compare_reference() else 1)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.sft"):
        old.unlink()
    for name, blob in CORPUS.items():
        (OUT / f"{name}.sft").write_bytes(blob)
    print(f"wrote {len(CORPUS)} files to {OUT}")


if __name__ == "__main__":
    main()

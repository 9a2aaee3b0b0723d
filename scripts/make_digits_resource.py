#!/usr/bin/env python3
"""Writes Sources/SparsityNN/Resources/digits.bin from scikit-learn's digits dataset.

`sklearn.datasets.load_digits()` ships the 1,797 8x8 images of the UCI "Optical Recognition
of Handwritten Digits" test set (pixel values 0-16, labels 0-9) inside the scikit-learn
wheel, so no download happens.

Layout (all integers little-endian; documented again in Sources/SparsityNN/Digits.swift):
    offset  size          field
    0       8             magic b"DIGITS01"
    8       4             count      (UInt32)
    12      2             height = 8 (UInt16)
    14      2             width  = 8 (UInt16)
    16      count*h*w     pixels, UInt8 0...16, image after image, each row-major
    16+c*hw count         labels, UInt8 0...9
Total for the digits: 16 + 1797 * 65 = 116,821 bytes.

Usage (from the repository root):
    /work/venv/bin/python scripts/make_digits_resource.py

Prints the checksums that Tests/SparsityNNTests/DigitsTests.swift asserts, and repeats
`Digits.split()` (Sources/SparsityNN/Digits.swift) in plain Python -- the same xoshiro256**
generator as SparsityCore's SeededGenerator, the same bounded draws and shares -- so the
tests can check the Swift split against an independent implementation.
"""

import hashlib
import struct
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

MASK = (1 << 64) - 1
SPLIT_SEED = 1797  # Digits.splitSeed
CLASS_COUNT = 10


class SeededGenerator:
    """xoshiro256** seeded through SplitMix64, as Sources/SparsityCore/Random.swift."""

    def __init__(self, seed: int) -> None:
        x = seed & MASK
        state = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            state.append(z ^ (z >> 31))
        self.s = state

    def next(self) -> int:
        s = self.s
        r = (s[1] * 5) & MASK
        result = (((r << 7) | (r >> 57)) & MASK) * 9 & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = ((s[3] << 45) | (s[3] >> 19)) & MASK
        return result

    def below(self, bound: int) -> int:
        """Lemire's multiply-shift with rejection, as Digits.boundedRandom."""
        m = self.next() * bound
        low = m & MASK
        if low < bound:
            threshold = ((1 << 64) - bound) % bound
            while low < threshold:
                m = self.next() * bound
                low = m & MASK
        return m >> 64


def shares(total: int, counts: list[int]) -> list[int]:
    """`total` shared in proportion to `counts` by largest remainder, lower class first on ties."""
    n = sum(counts)
    result = [total * c // n for c in counts]
    remainders = [total * c % n for c in counts]
    order = sorted(range(len(counts)), key=lambda c: (-remainders[c], c))
    for c in order[: total - sum(result)]:
        result[c] += 1
    return result


def split(labels: list[int]) -> tuple[list[int], list[int], list[int]]:
    """Digits.split(): stratified, seeded; test and validation get 20 % and 10 % rounded up."""
    n = len(labels)
    members = [[i for i, l in enumerate(labels) if l == c] for c in range(CLASS_COUNT)]
    counts = [len(m) for m in members]
    test_shares = shares((n * 20 + 99) // 100, counts)
    validation_shares = shares((n * 10 + 99) // 100, counts)
    rng = SeededGenerator(SPLIT_SEED)
    train, validation, test = [], [], []
    for c in range(CLASS_COUNT):
        idx = list(members[c])
        for i in range(len(idx) - 1, 0, -1):
            j = rng.below(i + 1)
            idx[i], idx[j] = idx[j], idx[i]
        t = test_shares[c]
        v = min(validation_shares[c], len(idx) - t)
        test += idx[:t]
        validation += idx[t : t + v]
        train += idx[t + v :]
    return sorted(train), sorted(validation), sorted(test)


OUT = Path(__file__).resolve().parent.parent / "Sources/SparsityNN/Resources/digits.bin"


def main() -> None:
    digits = load_digits()
    images = np.asarray(digits.images)  # (n, 8, 8) float64 holding integers
    labels = np.asarray(digits.target)
    n, h, w = images.shape
    assert (n, h, w) == (1797, 8, 8), images.shape
    assert np.array_equal(images, np.round(images)), "pixels are not integers"
    assert images.min() >= 0 and images.max() <= 16
    assert labels.min() >= 0 and labels.max() <= 9

    pixels = images.astype(np.uint8)
    data = (
        b"DIGITS01"
        + struct.pack("<IHH", n, h, w)
        + pixels.reshape(-1).tobytes()
        + labels.astype(np.uint8).tobytes()
    )
    assert len(data) == 16 + n * (h * w + 1)
    OUT.write_bytes(data)

    counts = np.bincount(labels, minlength=10)
    print(f"wrote {OUT} ({len(data)} bytes)")
    print(f"count: {n}")
    print(f"pixel sum: {int(pixels.astype(np.int64).sum())}")
    print(f"per-class counts: {counts.tolist()}")
    print(f"per-class pixel sums: {[int(pixels[labels == c].astype(np.int64).sum()) for c in range(10)]}")
    print(f"first label: {int(labels[0])}, first image row 0..1: {pixels[0, :2].tolist()}")
    print(f"last label: {int(labels[-1])}")
    print(f"sha256: {hashlib.sha256(data).hexdigest()}")

    rng = SeededGenerator(42)
    print(f"SeededGenerator(seed: 42) first outputs: {[rng.next() for _ in range(3)]}")
    train, validation, test = split(labels.tolist())
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        per_class = np.bincount(labels[part], minlength=10).tolist()
        print(
            f"{name}: {len(part)} images, index sum {sum(part)}, index square sum"
            f" {sum(i * i for i in part)}, first {part[:5]}, per class {per_class}"
        )
    print(f"validation indices: {validation}")
    print(f"test indices: {test}")


if __name__ == "__main__":
    main()

import Foundation
import PropertyBased
import SparsityCore
import SparsityFormats
import SparsityTestSupport
import Testing

// MARK: - Fixtures (made by scripts/make_cutlass_fixtures.py with PyTorch's own converter)

/// One golden case: a dense 2:4 matrix and PyTorch's packed values and reordered metadata.
struct CUTLASSCase: Sendable, CustomTestStringConvertible {
  let name: String
  let dtype: DType
  let shape: [Int]
  let dense: Tensor
  let packed: Tensor
  let meta: Tensor
  /// What decompression gives back: `dense`, except a dropped `-0.0` becomes `+0.0`.
  let restored: Tensor
  var testDescription: String { name }
}

struct CUTLASSIndex: Decodable {
  struct Entry: Decodable {
    let name: String
    let dtype: String
    let shape: [Int]
    let dense: String
    let packed: String
    let packedShape: [Int]
    let meta: String
    let metaDType: String
    let metaShape: [Int]
    let restored: String?
  }
  let cases: [Entry]
}

enum CUTLASSFixtures {
  static let directory: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    .appendingPathComponent("cutlass")

  static let cases: [CUTLASSCase] = {
    do {
      let index = try JSONDecoder().decode(
        CUTLASSIndex.self,
        from: Data(contentsOf: directory.appendingPathComponent("cutlass_cases.json")))
      return try index.cases.map { e in
        func load(_ file: String, _ shape: [Int], _ dtype: String) throws -> Tensor {
          let data = try Data(contentsOf: directory.appendingPathComponent(file))
          return data.withUnsafeBytes { Tensor(shape: shape, dtype: DType(rawValue: dtype)!, copying: $0) }
        }
        let dense = try load(e.dense, e.shape, e.dtype)
        return CUTLASSCase(
          name: e.name, dtype: DType(rawValue: e.dtype)!, shape: e.shape, dense: dense,
          packed: try load(e.packed, e.packedShape, e.dtype),
          meta: try load(e.meta, e.metaShape, e.metaDType),
          restored: try e.restored.map { try load($0, e.shape, e.dtype) } ?? dense)
      }
    } catch {
      Issue.record("cannot load CUTLASS fixtures: \(error)")
      return []
    }
  }()

  static func named(_ name: String) -> CUTLASSCase {
    cases.first { $0.name == name }!
  }
}

// MARK: - Helpers

/// The raw bits of every element, widened (so tensors of any supported dtype compare exactly).
fileprivate func elementBits(_ t: Tensor) -> [UInt64] {
  t.withUnsafeBytes { raw -> [UInt64] in
    let width = t.dtype.byteWidth!
    return (0..<t.count).map { i in
      var v: UInt64 = 0
      for b in 0..<width { v |= UInt64(raw[i * width + b]) << (8 * UInt64(b)) }
      return v
    }
  }
}

/// Whether the bits of one element are a zero of `dtype` (either sign for floats).
fileprivate func isZeroBits(_ bits: UInt64, _ dtype: DType) -> Bool {
  switch dtype {
  case .float16, .bfloat16: bits & 0x7FFF == 0
  case .float32: bits & 0x7FFF_FFFF == 0
  default: bits == 0
  }
}

/// A seeded random matrix with at most `keep` nonzeros in every group of `width` (2 of 4, or
/// 1 of 2 for float32), with all-zero groups, single nonzeros and -0.0 among the zeros.
fileprivate func randomSparse(
  dtype: DType, rows: Int, columns: Int, seed: UInt64
) -> Tensor {
  var rng = SeededGenerator(seed: seed)
  let width = dtype == .float32 ? 2 : 4
  var values = [Float](repeating: 0, count: rows * columns)
  for g in 0..<(rows * columns / width) {
    let kept = Int.random(in: 0...(width / 2), using: &rng)
    var slots = Array(0..<width)
    slots.shuffle(using: &rng)
    for i in 0..<width {
      let index = g * width + slots[i]
      if i < kept {
        var v = Float(Int.random(in: 1...100, using: &rng)) * (Bool.random(using: &rng) ? 1 : -1)
        if dtype != .int8 { v *= 0.25 }
        values[index] = v
      } else if dtype != .int8 && Int.random(in: 0..<4, using: &rng) == 0 {
        values[index] = -0.0
      }
    }
  }
  return Tensor(values, shape: [rows, columns]).converted(to: dtype)
}

/// A matrix whose every row holds `pattern` (nonzero flags of 4) in every group of 4.
fileprivate func repeatingPattern(_ flags: [Bool], dtype: DType, rows: Int, columns: Int) -> Tensor {
  var values = [Float](repeating: 0, count: rows * columns)
  for i in 0..<values.count where flags[i % flags.count] { values[i] = Float(i % 7 + 1) }
  return Tensor(values, shape: [rows, columns]).converted(to: dtype)
}

/// Sets one element of a matrix (any supported dtype) to a value.
fileprivate func setting(_ t: Tensor, _ row: Int, _ column: Int, to value: Float) -> Tensor {
  var f = t.converted(to: .float32).scalars(as: Float.self)
  f[row * t.shape[1] + column] = value
  return Tensor(f, shape: t.shape).converted(to: t.dtype)
}

/// A copy of `t` whose bytes start one byte past an aligned address (as a tensor borrowed from
/// a file may).
fileprivate func misaligned(_ t: Tensor) -> Tensor {
  let owner = ByteOwner(byteCount: t.byteCount + 1)
  let start = owner.pointer.baseAddress! + 1
  t.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
  let storage = TensorStorage(borrowing: UnsafeRawBufferPointer(start: start, count: t.byteCount), owner: owner)
  return Tensor(shape: t.shape, dtype: t.dtype, storage: storage)
}

/// The error `body` throws, or `nil` (recording an issue): ``thrownError(sourceLocation:_:)``.
fileprivate func compressError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> SparseFormatError? {
  thrownError(sourceLocation: sourceLocation, body)
}

// MARK: - Tests

@Suite("CUTLASS semi-structured layout")
struct CUTLASSTests {
  @Test("the fixtures cover every dtype")
  func fixturesLoaded() {
    let cases = CUTLASSFixtures.cases
    #expect(cases.count >= 28)
    for dtype in CUTLASSSemiStructured.supportedDTypes {
      #expect(cases.filter { $0.dtype == dtype }.count >= 5, "\(dtype)")
    }
    // Some cases exercise the -0.0 rule (restored differs from the input).
    #expect(cases.contains { !$0.restored.isBitwiseEqual(to: $0.dense) })
  }

  @Test("packed values and metadata are byte-identical to PyTorch", arguments: CUTLASSFixtures.cases)
  func matchesPyTorch(_ c: CUTLASSCase) throws {
    let s = try CUTLASSSemiStructured(compressing: c.dense, name: c.name)
    #expect(s.rows == c.shape[0] && s.columns == c.shape[1])
    #expect(s.packed.dtype == c.dtype && s.packed.shape == c.packed.shape)
    #expect(s.meta.dtype == c.meta.dtype && s.meta.shape == c.meta.shape)
    #expect(s.packed.isBitwiseEqual(to: c.packed), "packed values differ")
    #expect(s.meta.isBitwiseEqual(to: c.meta), "metadata differs")
    #expect(s.byteCount == c.packed.byteCount + c.meta.byteCount)
  }

  @Test("dense() restores the input", arguments: CUTLASSFixtures.cases)
  func denseRestores(_ c: CUTLASSCase) throws {
    let back = try CUTLASSSemiStructured(compressing: c.dense, name: c.name).dense()
    #expect(back.shape == c.shape && back.dtype == c.dtype)
    #expect(back.isBitwiseEqual(to: c.restored))
    // Element by element: the same bits, or both zeros.
    let a = elementBits(back)
    let b = elementBits(c.dense)
    let mismatches = (0..<a.count).filter {
      a[$0] != b[$0] && !(isZeroBits(a[$0], c.dtype) && isZeroBits(b[$0], c.dtype))
    }
    #expect(mismatches.isEmpty, "first mismatch at flat index \(mismatches.first ?? -1)")
  }

  @Test("init(packed:meta:) of PyTorch's tensors rebuilds the input", arguments: CUTLASSFixtures.cases)
  func rebuildsFromStored(_ c: CUTLASSCase) throws {
    let s = try CUTLASSSemiStructured(packed: c.packed, meta: c.meta, name: c.name)
    #expect(s.rows == c.shape[0] && s.columns == c.shape[1] && s.dtype == c.dtype)
    #expect(s.dense().isBitwiseEqual(to: c.restored))
    #expect(s == (try CUTLASSSemiStructured(compressing: c.dense, name: c.name)))
  }

  @Test(
    "tensors borrowed at unaligned addresses work",
    arguments: ["bf16_mixed_64x128", "i8_mixed_32x256", "f32_mixed_64x64"])
  func unalignedInputs(_ name: String) throws {
    let c = CUTLASSFixtures.named(name)
    let dense = misaligned(c.dense)
    #expect(dense.withUnsafeBytes { Int(bitPattern: $0.baseAddress) % 2 == 1 })
    let s = try CUTLASSSemiStructured(compressing: dense, name: name)
    #expect(s.packed.isBitwiseEqual(to: c.packed) && s.meta.isBitwiseEqual(to: c.meta))
    let rebuilt = try CUTLASSSemiStructured(packed: misaligned(c.packed), meta: misaligned(c.meta), name: name)
    #expect(rebuilt.dense().isBitwiseEqual(to: c.restored))
  }

  // MARK: Published goldens, checked without the fixtures

  @Test("all-[0,0,1,1] goldens: 0xEEEE = -4370 (F16/BF16/F32), 0xEEEEEEEE (I8)")
  func allHighPairGoldens() throws {
    for (dtype, shape) in [(DType.float16, [32, 64]), (.bfloat16, [64, 128]), (.int8, [16, 128])] {
      let dense = repeatingPattern([false, false, true, true], dtype: dtype, rows: shape[0], columns: shape[1])
      let s = try CUTLASSSemiStructured(compressing: dense, name: "w")
      if dtype == .int8 {
        #expect(s.meta.dtype == .int32 && s.meta.shape == [16, 4])
        #expect(s.meta.scalars(as: Int32.self).allSatisfy { UInt32(bitPattern: $0) == 0xEEEE_EEEE })
      } else {
        #expect(s.meta.dtype == .int16 && s.meta.shape == [shape[0], shape[1] / 16])
        #expect(s.meta.scalars(as: Int16.self).allSatisfy { $0 == -4370 })
      }
      #expect(s.packed.shape == [shape[0], shape[1] / 2])
    }
    // f32 pairs: [x, 0] -> 0b0100 per pair, [0, x] and [0, 0] -> 0b1110.
    let first = try CUTLASSSemiStructured(
      compressing: repeatingPattern([true, false], dtype: .float32, rows: 32, columns: 32), name: "w")
    #expect(first.meta.shape == [32, 4])
    #expect(first.meta.scalars(as: Int16.self).allSatisfy { $0 == 0x4444 })
    let second = try CUTLASSSemiStructured(
      compressing: repeatingPattern([false, true], dtype: .float32, rows: 32, columns: 32), name: "w")
    #expect(second.meta.scalars(as: Int16.self).allSatisfy { UInt16(bitPattern: $0) == 0xEEEE })
    let zero = try CUTLASSSemiStructured(compressing: Tensor(zeros: [32, 32]), name: "w")
    #expect(zero.meta.scalars(as: Int16.self).allSatisfy { UInt16(bitPattern: $0) == 0xEEEE })
  }

  @Test("the mixed 32×64 F16 golden of the reference")
  func mixedGolden() throws {
    let patterns: [[Int]] = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    var values = [Float](repeating: 0, count: 32 * 64)
    for i in 0..<32 {
      for g in 0..<16 {
        for j in patterns[(16 * i + g) % 6] {
          let c = 4 * g + j
          values[64 * i + c] = Float((64 * i + c) % 97 + 1)
        }
      }
    }
    let s = try CUTLASSSemiStructured(
      compressing: Tensor(values, shape: [32, 64]).converted(to: .float16), name: "mixed")
    #expect(Array(s.packed.floatValues.prefix(8)) == [1, 2, 5, 7, 9, 12, 14, 15])
    let words = s.meta.scalars(as: Int16.self).map { UInt16(bitPattern: $0) }
    #expect(
      Array(words.prefix(16)) == [
        0x9c84, 0xed9c, 0x84ed, 0x9c84, 0x84ed, 0x9c84, 0xed9c, 0x84ed,
        0x84ed, 0x9c84, 0xed9c, 0x84ed, 0xed9c, 0x84ed, 0x9c84, 0xed9c,
      ])
  }

  /// The code of every nonzero-flag pattern with at most 2 nonzeros (reference §2.4 table).
  static let degenerateCodes: [(flags: [Bool], code: Int)] = [
    ([true, true, false, false], 0b0100), ([true, false, true, false], 0b1000),
    ([true, false, false, true], 0b1100), ([false, true, true, false], 0b1001),
    ([false, true, false, true], 0b1101), ([false, false, true, true], 0b1110),
    ([false, false, false, false], 0b1110), ([false, false, false, true], 0b1110),
    ([false, false, true, false], 0b1110), ([true, false, false, false], 0b1000),
    ([false, true, false, false], 0b1001),
  ]

  @Test("codes for groups with fewer than two nonzeros are PyTorch's", arguments: degenerateCodes)
  func degenerateCode(_ flags: [Bool], _ code: Int) throws {
    for dtype in [DType.float16, .bfloat16, .int8] {
      let (rows, columns) = dtype == .int8 ? (16, 128) : (32, 64)
      let dense = repeatingPattern(flags, dtype: dtype, rows: rows, columns: columns)
      let s = try CUTLASSSemiStructured(compressing: dense, name: "w")
      // Every group has the same code, so every word is the code repeated (reorder-invariant).
      if dtype == .int8 {
        let expected = UInt32(code) * 0x1111_1111
        #expect(s.meta.scalars(as: Int32.self).allSatisfy { UInt32(bitPattern: $0) == expected })
      } else {
        let expected = UInt16(code) * 0x1111
        #expect(s.meta.scalars(as: Int16.self).allSatisfy { UInt16(bitPattern: $0) == expected })
      }
      #expect(s.dense().isBitwiseEqual(to: dense))
    }
  }

  // MARK: Refusing non-2:4 input

  /// (dtype, shape, nonzeros to add as (row, column), expected first group (row, column), count)
  static let violations: [(DType, [Int], [(Int, Int)], (Int, Int), Int)] = [
    (.float16, [32, 64], [(0, 0), (0, 1), (0, 2)], (0, 0), 3),
    (.float16, [32, 64], [(5, 60), (5, 61), (5, 62), (5, 63)], (5, 60), 4),
    (.bfloat16, [64, 128], [(63, 124), (63, 125), (63, 127), (40, 8), (40, 10), (40, 11)], (40, 8), 3),
    // Two offending groups in one row: the leftmost is reported.
    (.bfloat16, [32, 64], [(7, 33), (7, 34), (7, 35), (7, 4), (7, 5), (7, 7)], (7, 4), 3),
    (.int8, [16, 128], [(15, 100), (15, 101), (15, 102)], (15, 100), 3),
    (.int8, [32, 256], [(3, 252), (3, 253), (3, 254), (3, 255), (20, 0), (20, 1), (20, 2)], (3, 252), 4),
    // Large enough to compress in parallel blocks: the earliest block's violation wins.
    (.float16, [256, 512], [(250, 0), (250, 1), (250, 2), (3, 500), (3, 501), (3, 503)], (3, 500), 3),
    (.float16, [256, 512], [(200, 4), (200, 5), (200, 6), (201, 0), (201, 1), (201, 2)], (200, 4), 3),
  ]

  @Test("non-2:4 input names the first offending group", arguments: violations)
  func refusesNon24(
    _ dtype: DType, _ shape: [Int], _ nonzeros: [(Int, Int)], _ first: (Int, Int), _ count: Int
  ) {
    // Zeros everywhere else: only the listed nonzeros can break the pattern.
    var dense = Tensor(zeros: shape, dtype: dtype)
    for (r, c) in nonzeros { dense = setting(dense, r, c, to: 3) }
    let error = compressError { _ = try CUTLASSSemiStructured(compressing: dense, name: "w") }
    #expect(
      error
        == .patternViolation(
          tensor: "w", pattern: "2:4", rows: first.0..<(first.0 + 1),
          columns: first.1..<(first.1 + 4), nonzeros: count, allowed: 2))
  }

  @Test("a NaN counts as nonzero, -0.0 does not")
  func zeroSemantics() throws {
    var dense = Tensor(zeros: [32, 64], dtype: .float16)
    dense = setting(dense, 2, 8, to: .nan)
    dense = setting(dense, 2, 9, to: 1)
    dense = setting(dense, 2, 10, to: -0.0)
    dense = setting(dense, 2, 11, to: -0.0)
    _ = try CUTLASSSemiStructured(compressing: dense, name: "w")
    dense = setting(dense, 2, 11, to: .nan)
    let error = compressError { _ = try CUTLASSSemiStructured(compressing: dense, name: "w") }
    #expect(
      error
        == .patternViolation(
          tensor: "w", pattern: "2:4", rows: 2..<3, columns: 8..<12, nonzeros: 3, allowed: 2))
  }

  @Test(
    "f32 is 1:2: a pair with two nonzeros is refused",
    arguments: [([32, 32], 0, 0), ([64, 64], 9, 16), ([32, 256], 31, 254)])
  func refusesF32Pairs(_ shape: [Int], _ row: Int, _ pair: Int) {
    var dense = Tensor(zeros: shape, dtype: .float32)
    dense = setting(dense, row, pair, to: 1)
    dense = setting(dense, row, pair + 1, to: -2)
    // Elsewhere in the row, single nonzeros per pair (allowed).
    dense = setting(dense, row, (pair + 3) % shape[1], to: 5)
    let error = compressError { _ = try CUTLASSSemiStructured(compressing: dense, name: "w") }
    #expect(
      error
        == .patternViolation(
          tensor: "w", pattern: "1:2 (f32 2:4 is stored as 1:2, as in PyTorch)",
          rows: row..<(row + 1), columns: pair..<(pair + 2), nonzeros: 2, allowed: 1))
  }

  // MARK: Shape and dtype rules

  static let shapeRules: [(DType, [Int], String)] = [
    (.float16, [48, 64], "CUTLASS 2:4 for F16 needs rows divisible by 32"),
    (.bfloat16, [16, 128], "CUTLASS 2:4 for BF16 needs rows divisible by 32"),
    (.float32, [40, 32], "CUTLASS 2:4 for F32 needs rows divisible by 32"),
    (.int8, [24, 128], "CUTLASS 2:4 for I8 needs rows divisible by 16"),
    (.float16, [32, 48], "CUTLASS 2:4 for F16 needs columns divisible by 32 (an even number of I16 metadata words per row)"),
    (.float16, [32, 16], "CUTLASS 2:4 for F16 needs columns divisible by 32 (an even number of I16 metadata words per row)"),
    (.int8, [16, 96], "CUTLASS 2:4 for I8 needs columns divisible by 64 (an even number of I32 metadata words per row)"),
    (.float32, [32, 40], "CUTLASS 2:4 for F32 needs columns divisible by 16 (an even number of I16 metadata words per row)"),
    (.float16, [32, 32], "CUTLASS 2:4 for F16 needs both dimensions at least, and multiples of, (32, 64) (PyTorch to_sparse_semi_structured minimum)"),
    (.float16, [32, 96], "CUTLASS 2:4 for F16 needs both dimensions at least, and multiples of, (32, 64) (PyTorch to_sparse_semi_structured minimum)"),
    (.float16, [0, 64], "CUTLASS 2:4 for F16 needs both dimensions at least, and multiples of, (32, 64) (PyTorch to_sparse_semi_structured minimum)"),
    (.int8, [16, 64], "CUTLASS 2:4 for I8 needs both dimensions at least, and multiples of, (16, 128) (PyTorch to_sparse_semi_structured minimum)"),
    (.int8, [16, 192], "CUTLASS 2:4 for I8 needs both dimensions at least, and multiples of, (16, 128) (PyTorch to_sparse_semi_structured minimum)"),
    (.float32, [32, 16], "CUTLASS 2:4 for F32 needs both dimensions at least, and multiples of, (32, 32) (PyTorch to_sparse_semi_structured minimum)"),
    (.float16, [32, 64, 1], "CUTLASS 2:4 needs a matrix (rank 2), got rank 3"),
    (.int8, [2048], "CUTLASS 2:4 needs a matrix (rank 2), got rank 1"),
  ]

  @Test("shape rules", arguments: shapeRules)
  func shapeRule(_ dtype: DType, _ shape: [Int], _ rule: String) {
    let error = compressError {
      _ = try CUTLASSSemiStructured(compressing: Tensor(zeros: shape, dtype: dtype), name: "w")
    }
    #expect(error == .shapeRule(tensor: "w", shape: shape, rule: rule))
  }

  @Test("unsupported dtypes", arguments: [DType.float64, .uint8, .int16, .int32, .bool])
  func unsupportedDType(_ dtype: DType) {
    let error = compressError {
      _ = try CUTLASSSemiStructured(compressing: Tensor(zeros: [32, 128], dtype: dtype), name: "w")
    }
    #expect(
      error
        == .unsupportedDType(
          tensor: "w", dtype: dtype, format: "CUTLASS 2:4",
          supported: [.float16, .bfloat16, .int8, .float32]))
  }

  // MARK: Validating stored tensors

  /// (fixture, stored meta element (flat), nibble, bad code, expected detail prefix)
  static let corruptions: [(String, Int, Int, UInt32, String)] = [
    // Stored flat 0 is logical word (0, 0); stored flat 2 is (0, 1); stored flat 8 is (1, 0).
    ("f16_mixed_32x64", 0, 0, 0b0101, "row 0, columns 0..<4: code 0b0101 (meta word [0, 0] in row-major order, nibble 0, stored at meta[0, 0]) is invalid: it encodes indices (1, 1), which must increase"),
    ("bf16_mixed_32x64", 2, 1, 0b0011, "row 0, columns 20..<24: code 0b0011 (meta word [0, 1] in row-major order, nibble 1, stored at meta[0, 2]) is invalid: it encodes indices (3, 0), which must increase"),
    ("f16_full_64x128", 8, 3, 0b0000, "row 1, columns 12..<16: code 0b0000 (meta word [1, 0] in row-major order, nibble 3, stored at meta[1, 0]) is invalid: it encodes indices (0, 0), which must increase"),
    ("i8_mixed_16x128", 0, 7, 0b1111, "row 0, columns 28..<32: code 0b1111 (meta word [0, 0] in row-major order, nibble 7, stored at meta[0, 0]) is invalid: it encodes indices (3, 3), which must increase"),
    ("f32_mixed_32x32", 0, 2, 0b1000, "row 0, columns 4..<6: code 0b1000 (meta word [0, 0] in row-major order, nibble 2, stored at meta[0, 0]) is invalid: f32 pairs allow only 0b0100 (first kept) and 0b1110 (second kept)"),
  ]

  @Test("a corrupt metadata code is detected and located", arguments: corruptions)
  func corruptMeta(_ fixture: String, _ flat: Int, _ nibble: Int, _ code: UInt32, _ detail: String) {
    let c = CUTLASSFixtures.named(fixture)
    var meta = c.meta
    let shift = UInt32(4 * nibble)
    if meta.dtype == .int32 {
      meta.withUnsafeMutableBufferPointer(as: Int32.self) {
        let w = UInt32(bitPattern: $0[flat]) & ~(0xF << shift) | code << shift
        $0[flat] = Int32(bitPattern: w)
      }
    } else {
      meta.withUnsafeMutableBufferPointer(as: Int16.self) {
        let w = UInt16(bitPattern: $0[flat]) & ~(0xF << UInt16(shift)) | UInt16(code) << UInt16(shift)
        $0[flat] = Int16(bitPattern: w)
      }
    }
    let error = compressError { _ = try CUTLASSSemiStructured(packed: c.packed, meta: meta, name: "w") }
    #expect(error == .invalidEncoding(tensor: "w", format: "CUTLASS 2:4", detail: detail))
  }

  @Test("stored tensors with wrong ranks, shapes or dtypes are refused")
  func storedShapes() {
    let c = CUTLASSFixtures.named("f16_mixed_32x64")
    func error(_ packed: Tensor, _ meta: Tensor) -> SparseFormatError? {
      compressError { _ = try CUTLASSSemiStructured(packed: packed, meta: meta, name: "w") }
    }
    #expect(
      error(c.packed.reshaped([32, 32, 1]), c.meta)
        == .shapeRule(tensor: "w", shape: [32, 32, 1], rule: "CUTLASS 2:4 packed values must be a matrix (rank 2), got rank 3"))
    #expect(
      error(c.packed, c.meta.reshaped([128]))
        == .shapeRule(tensor: "w", shape: [128], rule: "CUTLASS 2:4 metadata must be a matrix (rank 2), got rank 1"))
    #expect(
      error(c.packed, c.meta.reshaped([64, 2]))
        == .shapeRule(
          tensor: "w", shape: [64, 2],
          rule: "CUTLASS 2:4 metadata for packed values [32, 32] (dense [32, 64], F16) must have shape [32, 4]"))
    #expect(
      error(c.packed, Tensor(zeros: [32, 2], dtype: .int32))
        == .invalidEncoding(
          tensor: "w", format: "CUTLASS 2:4", detail: "metadata has dtype I32, but F16 values need I16 metadata"))
    #expect(
      error(c.packed.reshaped([64, 16]), c.meta)
        == .shapeRule(
          tensor: "w", shape: [64, 16],
          rule: "packed values [64, 16] describe a dense [64, 32] matrix; CUTLASS 2:4 for F16 needs both dimensions at least, and multiples of, (32, 64) (PyTorch to_sparse_semi_structured minimum)"))
    #expect(
      error(c.packed.converted(to: .float64), c.meta)
        == .unsupportedDType(
          tensor: "w", dtype: .float64, format: "CUTLASS 2:4", supported: CUTLASSSemiStructured.supportedDTypes))
  }

  // MARK: Transpose

  /// A matrix that is 2:4 (1:2 for f32) along rows and along columns: a diagonal band in
  /// every 4×4 (2×2) tile.
  static func bothWays(dtype: DType, rows: Int, columns: Int) -> Tensor {
    let tile: [[Bool]] =
      dtype == .float32
      ? [[true, false], [false, true]]
      : [[true, true, false, false], [false, true, true, false], [false, false, true, true], [true, false, false, true]]
    let n = tile.count
    var values = [Float](repeating: 0, count: rows * columns)
    for r in 0..<rows {
      for c in 0..<columns where tile[r % n][c % n] { values[r * columns + c] = Float((r * 7 + c) % 23 + 1) }
    }
    return Tensor(values, shape: [rows, columns]).converted(to: dtype)
  }

  @Test(
    "transposed() equals compressing the transpose",
    arguments: [(DType.float16, 64, 128), (.bfloat16, 128, 64), (.int8, 128, 128), (.float32, 32, 64)])
  func transposedMatches(_ dtype: DType, _ rows: Int, _ columns: Int) throws {
    let dense = Self.bothWays(dtype: dtype, rows: rows, columns: columns)
    let s = try CUTLASSSemiStructured(compressing: dense, name: "w")
    let t = try s.transposed(name: "w.T")
    #expect(t == (try CUTLASSSemiStructured(compressing: dense.transposed(), name: "w.T")))
    #expect(t.rows == columns && t.columns == rows)
    #expect(t.dense().isBitwiseEqual(to: dense.transposed()))
    #expect(try t.transposed(name: "w") == s)
  }

  @Test("transposed() refuses a transpose that is not 2:4, in transposed coordinates")
  func transposedViolation() throws {
    // Column 5, rows 8, 9, 10: one nonzero per row (2:4 by rows), three in one column group.
    var dense = Tensor(zeros: [64, 64], dtype: .float16)
    for r in [8, 9, 10, 40] { dense = setting(dense, r, 5, to: 1) }
    let s = try CUTLASSSemiStructured(compressing: dense, name: "w")
    let error = compressError { _ = try s.transposed(name: "w.T") }
    #expect(
      error
        == .patternViolation(
          tensor: "w.T", pattern: "2:4 along the rows of the transpose (columns of the original)",
          rows: 5..<6, columns: 8..<12, nonzeros: 3, allowed: 2))
    // A shape whose transpose breaks the shape rules.
    let wide = try CUTLASSSemiStructured(compressing: Tensor(zeros: [32, 64], dtype: .float16), name: "w")
    let shapeError = compressError { _ = try wide.transposed(name: "w.T") }
    #expect(
      shapeError
        == .shapeRule(
          tensor: "w.T", shape: [64, 32],
          rule: "CUTLASS 2:4 for F16 needs both dimensions at least, and multiples of, (32, 64) (PyTorch to_sparse_semi_structured minimum)"))
  }

  // MARK: Properties

  @Test("random 2:4 matrices round-trip through packed + meta")
  func roundTripProperty() async {
    let dtypes = CUTLASSSemiStructured.supportedDTypes
    await propertyCheck(
      count: 60, input: Gen.int(in: 0...3), Gen.int(in: 1...3), Gen.int(in: 1...3), Gen.int(in: 0...100_000)
    ) { d, rowBlocks, columnBlocks, seed in
      let dtype = dtypes[d]
      let minimum = CUTLASSSemiStructured.minimumShape(for: dtype)!
      let rows = minimum.rows * rowBlocks
      let columns = minimum.columns * columnBlocks
      let dense = randomSparse(dtype: dtype, rows: rows, columns: columns, seed: UInt64(seed))
      let s = try CUTLASSSemiStructured(compressing: dense, name: "w")
      #expect(s.packed.shape == [rows, columns / 2])
      let rebuilt = try CUTLASSSemiStructured(packed: s.packed, meta: s.meta, name: "w")
      let back = rebuilt.dense()
      let a = elementBits(back)
      let b = elementBits(dense)
      #expect(
        (0..<a.count).allSatisfy { a[$0] == b[$0] || (isZeroBits(a[$0], dtype) && isZeroBits(b[$0], dtype)) },
        "\(dtype) \(rows)×\(columns) seed \(seed)")
      // Compressing what came back gives the same bytes (canonical form).
      #expect(try CUTLASSSemiStructured(compressing: back, name: "w") == s)
    }
  }
}

import PropertyBased
import SparsityCore
import SparsityFormats
import SparsityTestSupport
import Testing

// Every direct conversion between formats (FormatConversions.swift) must give exactly what the
// dense route gives — `Target(dense: source.dense())` — results compared with `==` (bitwise
// values), errors compared case and text. The inputs hold random-bit nonzeros (NaNs,
// infinities and subnormals included), `-0.0` among the zeros, all-zero rows, and — for CSR
// sources — explicitly stored `+0.0` / `-0.0` values.

// MARK: - Cases and data

/// The dtypes the conversions are checked with (every byte width, floats with and without a
/// signed zero, complex).
private let conversionDTypes: [DType] = [
  .float32, .float16, .bfloat16, .int8, .float64, .int32, .uint8, .bool, .float8E4M3, .float8E5M2FNUZ,
  .complex64,
]
private let conversionDensities: [Double] = [0, 0.1, 0.5, 0.9, 1]
/// Shapes, ragged ones (columns not a multiple of 4) and empty ones included.
private let conversionShapes: [Shape] = [
  Shape(1, 4), Shape(8, 8), Shape(7, 12), Shape(16, 32), Shape(64, 48), Shape(1, 1), Shape(3, 5),
  Shape(5, 19), Shape(6, 1), Shape(0, 5), Shape(4, 0), Shape(0, 0),
]

private struct Pattern: Sendable, Hashable, CustomTestStringConvertible {
  var n: Int
  var m: Int
  init(_ n: Int, _ m: Int) { (self.n, self.m) = (n, m) }
  var testDescription: String { "\(n):\(m)" }
}
private let conversionPatterns: [Pattern] = [
  Pattern(2, 4), Pattern(1, 4), Pattern(4, 8), Pattern(1, 2), Pattern(2, 8), Pattern(8, 16), Pattern(3, 16),
  Pattern(1, 1), Pattern(2, 3), Pattern(4, 4),
]

private struct BlockCase: Sendable, CustomTestStringConvertible {
  var shape: Shape
  var blockRows: Int
  var blockColumns: Int
  var testDescription: String { "\(shape.testDescription) in \(blockRows)x\(blockColumns) blocks" }
}
/// Every conversion shape with every block shape that tiles it.
private let blockCases: [BlockCase] = conversionShapes.flatMap { shape in
  [(1, 1), (1, 4), (2, 2), (4, 4), (8, 8), (4, 1), (2, 3), (16, 16), (7, 3)]
    .filter { shape.rows % $0.0 == 0 && shape.columns % $0.1 == 0 }
    .map { BlockCase(shape: shape, blockRows: $0.0, blockColumns: $0.1) }
}

private struct CUTLASSShape: Sendable, CustomTestStringConvertible {
  var dtype: DType
  var rows: Int
  var columns: Int
  var testDescription: String { "\(dtype) \(rows)x\(columns)" }
}
/// CUTLASS shapes: the minimum of each dtype, and larger ones spanning several metadata row
/// groups and word pairs.
private let cutlassShapes: [CUTLASSShape] = [
  CUTLASSShape(dtype: .float16, rows: 32, columns: 64), CUTLASSShape(dtype: .float16, rows: 96, columns: 128),
  CUTLASSShape(dtype: .bfloat16, rows: 32, columns: 64), CUTLASSShape(dtype: .bfloat16, rows: 64, columns: 192),
  CUTLASSShape(dtype: .int8, rows: 16, columns: 128), CUTLASSShape(dtype: .int8, rows: 48, columns: 256),
  CUTLASSShape(dtype: .float32, rows: 32, columns: 32), CUTLASSShape(dtype: .float32, rows: 64, columns: 96),
]

/// The bytes of `-0.0` of `dtype`, or `nil` when the dtype has no negative zero (integers,
/// `bool`, the FNUZ floats whose `0x80` is NaN).
private func negativeZeroBytes(_ dtype: DType) -> [UInt8]? {
  let w = width(dtype)
  var b = [UInt8](repeating: 0, count: w)
  b[w - 1] = 0x80
  if dtype == .complex64 { b[3] = 0x80 }
  let t = b.withUnsafeBytes { Tensor(shape: [1], dtype: dtype, copying: $0) }
  return t.nonzeroCount == 0 ? b : nil
}

/// A matrix nonzero where `keep` says, except that every fourth row (from row 2) is all zero;
/// about a third of the zeros are `-0.0` where the dtype has one.
private func conversionMatrix(keeping keep: [Bool], _ shape: Shape, dtype: DType, seed: UInt64) -> Tensor {
  var keep = keep
  for r in stride(from: 2, to: shape.rows, by: 4) {
    for c in 0..<shape.columns { keep[r * shape.columns + c] = false }
  }
  var t = matrix(keeping: keep, rows: shape.rows, columns: shape.columns, dtype: dtype, seed: seed)
  guard let negativeZero = negativeZeroBytes(dtype) else { return t }
  var rng = SeededGenerator(seed: seed ^ 0x2E20)
  let w = negativeZero.count
  t.withUnsafeMutableBytes { raw in
    for i in 0..<keep.count where !keep[i] && rng.next() % 3 == 0 {
      for j in 0..<w { raw[i * w + j] = negativeZero[j] }
    }
  }
  return t
}

/// A random unstructured test matrix.
private func unstructuredMatrix(_ shape: Shape, dtype: DType, density: Double, seed: UInt64) -> Tensor {
  conversionMatrix(
    keeping: randomKeep(rows: shape.rows, columns: shape.columns, density: density, seed: seed), shape,
    dtype: dtype, seed: seed)
}

/// A CSR matrix that stores exactly the elements of `dense` where `positions` is true (explicit
/// zeros included; nonzeros elsewhere are left out).
private func csrStoring(_ dense: Tensor, positions: [Bool]) -> CSRMatrix {
  let (rows, columns) = (dense.shape[0], dense.shape[1])
  let w = width(dense.dtype)
  let b = bytes(of: dense)
  var offsets: [Int32] = [0]
  var indices: [Int32] = []
  var values: [UInt8] = []
  for r in 0..<rows {
    for c in 0..<columns where positions[r * columns + c] {
      indices.append(Int32(c))
      values += b[(r * columns + c) * w..<(r * columns + c + 1) * w]
    }
    offsets.append(Int32(indices.count))
  }
  let tensor = values.withUnsafeBytes { Tensor(shape: [indices.count], dtype: dense.dtype, copying: $0) }
  return try! CSRMatrix(shape: dense.shape, rowOffsets: offsets, columnIndices: indices, values: tensor, name: "w")
}

/// A CSR matrix of `dense` that also stores about a fifth of its zeros (`+0.0` and `-0.0`)
/// explicitly, as an assembled file tensor may.
private func csrWithStoredZeros(_ dense: Tensor, seed: UInt64) -> CSRMatrix {
  var rng = SeededGenerator(seed: seed ^ 0x0C52)
  let nonzero = dense.nonzeroMask.scalars(as: Bool.self)
  return csrStoring(dense, positions: nonzero.map { $0 || rng.next() % 5 == 0 })
}

/// Whether a stored-values tensor holds a zero that is not all-zero bytes (a `-0.0`).
private func holdsNegativeZero(_ values: Tensor) -> Bool {
  guard let negativeZero = negativeZeroBytes(values.dtype) else { return false }
  let b = bytes(of: values)
  let w = negativeZero.count
  return (0..<values.count).contains { Array(b[$0 * w..<($0 + 1) * w]) == negativeZero }
}

/// The outcome of a conversion: its result or its error.
private func outcome<T>(_ body: () throws(SparseFormatError) -> T) -> Result<T, SparseFormatError> {
  do { return .success(try body()) } catch { return .failure(error) }
}

/// Checks that a direct conversion and the dense route agree: the same result (`==`) or the
/// same error.
private func expectSame<T: Equatable>(
  _ direct: Result<T, SparseFormatError>, _ viaDense: Result<T, SparseFormatError>, _ what: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  guard direct != viaDense else { return }
  func text(_ r: Result<T, SparseFormatError>) -> String {
    switch r {
    case .success(let v): String(String(describing: v).prefix(600))
    case .failure(let e): "error \(e)"
    }
  }
  Issue.record("\(what): direct \(text(direct))\n  ≠ dense route \(text(viaDense))", sourceLocation: sourceLocation)
}

/// A CUTLASS matrix compressed from a random 2:4 (1:2 for `float32`) matrix with `-0.0` among
/// the zeros and all-zero rows.
private func compressedCUTLASS(_ s: CUTLASSShape, density: Double, seed: UInt64) -> CUTLASSSemiStructured {
  let (n, m) = s.dtype == .float32 ? (1, 2) : (2, 4)
  let shape = Shape(s.rows, s.columns)
  let keep = randomNOfMKeep(rows: s.rows, columns: s.columns, n: n, m: m, density: density, seed: seed)
  let dense = conversionMatrix(keeping: keep, shape, dtype: s.dtype, seed: seed)
  return try! CUTLASSSemiStructured(compressing: dense, name: "w")
}

/// A CUTLASS matrix assembled from random packed values (zeros and `-0.0` among them) and
/// random valid metadata codes — codes that compression never writes for such values (a zero
/// kept beside a lone nonzero at any position), as a file from elsewhere may hold.
private func assembledCUTLASS(_ s: CUTLASSShape, density: Double, seed: UInt64) -> CUTLASSSemiStructured {
  let packedShape = Shape(s.rows, s.columns / 2)
  let packed = unstructuredMatrix(packedShape, dtype: s.dtype, density: density, seed: seed)
  // Valid 4-bit codes: idx0 < idx1 (2:4), or 0b0100 / 0b1110 (float32 1:2).
  let codes: [UInt64] = s.dtype == .float32 ? [0b0100, 0b1110] : [0b0100, 0b1000, 0b1100, 0b1001, 0b1101, 0b1110]
  let (metaDType, codesPerWord) = s.dtype == .int8 ? (DType.int32, 8) : (DType.int16, 4)
  let groupWidth = s.dtype == .float32 ? 2 : 4
  let words = s.rows * s.columns / (groupWidth * codesPerWord)
  var rng = SeededGenerator(seed: seed ^ 0x3E7A)
  var metaBytes: [UInt8] = []
  for _ in 0..<words {
    var word: UInt64 = 0
    for q in 0..<codesPerWord { word |= codes[Int(rng.next() % UInt64(codes.count))] << (4 * UInt64(q)) }
    for b in 0..<(codesPerWord / 2) { metaBytes.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(b)))) }
  }
  let meta = metaBytes.withUnsafeBytes {
    Tensor(shape: [s.rows, s.columns / (groupWidth * codesPerWord)], dtype: metaDType, copying: $0)
  }
  return try! CUTLASSSemiStructured(packed: packed, meta: meta, name: "w")
}

// MARK: - Tests

@Suite("Format conversions")
struct FormatConversionTests {
  // MARK: To CSR

  @Test(arguments: blockCases)
  fileprivate func csrFromBSRMatchesDenseRoute(_ c: BlockCase) throws {
    var storedNegativeZero = false
    for (d, dtype) in conversionDTypes.enumerated() {
      for (k, density) in conversionDensities.enumerated() {
        let seed = UInt64(d * 100 + k)
        // Half block-structured (full and partial blocks), half unstructured.
        let keep =
          k % 2 == 0
          ? randomBlockKeep(
            rows: c.shape.rows, columns: c.shape.columns, br: c.blockRows, bc: c.blockColumns, density: density,
            seed: seed)
          : randomKeep(rows: c.shape.rows, columns: c.shape.columns, density: density, seed: seed)
        let dense = conversionMatrix(keeping: keep, c.shape, dtype: dtype, seed: seed)
        let bsr = try BSRMatrix(dense: dense, blockRows: c.blockRows, blockColumns: c.blockColumns)
        storedNegativeZero = storedNegativeZero || holdsNegativeZero(bsr.values)
        let direct = CSRMatrix(bsr)
        expectSame(
          .success(direct), outcome { () throws(SparseFormatError) in try CSRMatrix(dense: bsr.dense()) },
          "\(dtype) density \(density)")
        try direct.checkInvariants()
      }
    }
    // The data must reach the zero rule: some stored block holds a -0.0 (a partial block).
    if c.shape.rows * c.shape.columns >= 16 && c.blockRows * c.blockColumns > 1 {
      #expect(storedNegativeZero, "no stored block held a -0.0: the test data misses the zero rule")
    }
  }

  @Test(arguments: conversionPatterns)
  fileprivate func csrFromSemiStructuredMatchesDenseRoute(_ p: Pattern) throws {
    var storedNegativeZero = false
    for shape in conversionShapes {
      for (d, dtype) in conversionDTypes.enumerated() {
        for (k, density) in conversionDensities.enumerated() {
          let seed = UInt64(shape.rows * 1000 + shape.columns * 50 + d * 7 + k)
          let keep = randomNOfMKeep(
            rows: shape.rows, columns: shape.columns, n: p.n, m: p.m, density: density, seed: seed)
          let dense = conversionMatrix(keeping: keep, shape, dtype: dtype, seed: seed)
          let semi = try SemiStructuredMatrix(dense: dense, n: p.n, m: p.m)
          storedNegativeZero = storedNegativeZero || holdsNegativeZero(semi.values)
          let direct = CSRMatrix(semi)
          expectSame(
            .success(direct), outcome { () throws(SparseFormatError) in try CSRMatrix(dense: semi.dense()) },
            "\(p.testDescription) \(shape.testDescription) \(dtype) density \(density)")
          try direct.checkInvariants()
        }
      }
    }
    if p.n < p.m { #expect(storedNegativeZero, "no filler slot held a -0.0: the test data misses the zero rule") }
  }

  @Test(arguments: cutlassShapes)
  fileprivate func csrFromCUTLASSMatchesDenseRoute(_ s: CUTLASSShape) throws {
    var keptNegativeZero = false
    for (k, density) in conversionDensities.enumerated() {
      for c in [
        compressedCUTLASS(s, density: density, seed: UInt64(k)), assembledCUTLASS(s, density: density, seed: UInt64(k)),
      ] {
        keptNegativeZero = keptNegativeZero || holdsNegativeZero(c.packed)
        let direct = CSRMatrix(c)
        expectSame(
          .success(direct), outcome { () throws(SparseFormatError) in try CSRMatrix(dense: c.dense()) },
          "\(s.testDescription) density \(density)")
        try direct.checkInvariants()
      }
    }
    if s.dtype != .int8 { #expect(keptNegativeZero, "no kept value was -0.0: the test data misses the zero rule") }
  }

  /// `keptColumns(row:)` decodes the metadata as `dense()` does: `packed[r, j]` sits at column
  /// `keptColumns(row: r)[j]`, inside its own group, and every other element is `+0.0`.
  @Test(arguments: cutlassShapes)
  fileprivate func cutlassKeptColumnsLocateThePackedValues(_ s: CUTLASSShape) {
    let (groupWidth, keptPerGroup) = s.dtype == .float32 ? (2, 1) : (4, 2)
    let w = width(s.dtype)
    for c in [compressedCUTLASS(s, density: 0.5, seed: 7), assembledCUTLASS(s, density: 0.7, seed: 8)] {
      let denseBytes = bytes(of: c.dense())
      let packedBytes = bytes(of: c.packed)
      let half = s.columns / 2
      rows: for r in 0..<s.rows {
        let columns = c.keptColumns(row: r)
        guard columns.count == half else {
          Issue.record("row \(r): \(columns.count) kept columns, expected \(half)")
          break
        }
        var covered = [Bool](repeating: false, count: s.columns)
        for (j, column) in columns.enumerated() {
          let inGroup = column / groupWidth == j / keptPerGroup
          let increasing = j == 0 || column > columns[j - 1]
          let at = (r * s.columns + column) * w
          let sameBits = denseBytes[at..<at + w] == packedBytes[(r * half + j) * w..<(r * half + j + 1) * w]
          guard inGroup, increasing, sameBits else {
            Issue.record(
              "row \(r), packed \(j): column \(column) (in group \(inGroup), increasing \(increasing), same bits \(sameBits))"
            )
            break rows
          }
          covered[column] = true
        }
        for column in 0..<s.columns where !covered[column] {
          let at = (r * s.columns + column) * w
          guard denseBytes[at..<at + w].allSatisfy({ $0 == 0 }) else {
            Issue.record("row \(r), column \(column) is not kept but dense() holds a value there")
            break rows
          }
        }
      }
    }
  }

  // MARK: To N:M

  @Test(arguments: cutlassShapes)
  fileprivate func semiStructuredFromCUTLASSMatchesDenseRoute(_ s: CUTLASSShape) {
    for (k, density) in conversionDensities.enumerated() {
      for c in [
        compressedCUTLASS(s, density: density, seed: UInt64(k)), assembledCUTLASS(s, density: density, seed: UInt64(k)),
      ] {
        expectSame(
          outcome { () throws(SparseFormatError) in try SemiStructuredMatrix(c, name: "w") },
          outcome { () throws(SparseFormatError) in try SemiStructuredMatrix(dense: c.dense(), n: 2, m: 4, name: "w") },
          "\(s.testDescription) density \(density)")
      }
    }
  }

  /// The positions of groups with fewer than two nonzeros follow the N:M fill order (2, 3, 0,
  /// 1), not the CUTLASS codes, and a filler slot holds what `dense()` holds there.
  @Test func semiStructuredFromCUTLASSFillsLikeTheDenseRoute() throws {
    // Row 0 of a 32×64 float16 matrix, groups of four: no nonzero; one at 0, 1, 2, 3; two at
    // 0 and 3; one at 0 with a -0.0 at 2 (CUTLASS keeps 0 and 2, so the -0.0 is the filler
    // value); one at 3 with a -0.0 at 0 (not a filler position: it is dropped, the filler at 2
    // is +0.0).
    let groups: [[UInt16]] = [
      [0, 0, 0, 0], [0x3C00, 0, 0, 0], [0, 0x3C00, 0, 0], [0, 0, 0x3C00, 0], [0, 0, 0, 0x3C00],
      [0x4000, 0, 0, 0x4200], [0x3C00, 0, 0x8000, 0], [0x8000, 0, 0, 0x3C00],
    ]
    var values = [UInt16](repeating: 0, count: 32 * 64)
    for (g, group) in groups.enumerated() { for j in 0..<4 { values[4 * g + j] = group[j] } }
    let dense = values.withUnsafeBytes { Tensor(shape: [32, 64], dtype: .float16, copying: $0) }
    let semi = try SemiStructuredMatrix(try CUTLASSSemiStructured(compressing: dense, name: "w"))
    let expectedPositions: [UInt8] = [2, 3, 0, 2, 1, 2, 2, 3, 2, 3, 0, 3, 0, 2, 2, 3]
    #expect(Array(semi.indices.prefix(16)) == expectedPositions)
    let slotValues = semi.values.withUnsafeBufferPointer(as: Float16.self) { Array($0.prefix(16)) }
    #expect(slotValues[13].bitPattern == 0x8000, "the kept -0.0 of group 6 is its filler value")
    #expect(
      slotValues[14].bitPattern == 0x0000 && slotValues[15].bitPattern == 0x3C00, "group 7 keeps +0.0 at 2, x at 3")
    #expect(semi == (try SemiStructuredMatrix(dense: dense, n: 2, m: 4)))

    // Assembled with code (0, 1) everywhere: a lone nonzero at 0 keeps a -0.0 at 1, but the N:M
    // form takes positions 0 and 2, with +0.0 at 2.
    var packed = [UInt16](repeating: 0, count: 32 * 32)
    packed[0] = 0x3C00
    packed[1] = 0x8000
    let c = try CUTLASSSemiStructured(
      packed: packed.withUnsafeBytes { Tensor(shape: [32, 32], dtype: .float16, copying: $0) },
      meta: Tensor([Int16](repeating: 0x4444, count: 32 * 4), shape: [32, 4]), name: "w")
    let fromCodes = try SemiStructuredMatrix(c)
    #expect(Array(fromCodes.indices.prefix(2)) == [0, 2])
    #expect(fromCodes.values.withUnsafeBufferPointer(as: Float16.self) { $0[1].bitPattern } == 0)
    #expect(fromCodes == (try SemiStructuredMatrix(dense: c.dense(), n: 2, m: 4)))
  }

  @Test(arguments: conversionPatterns)
  fileprivate func semiStructuredFromCSRMatchesDenseRoute(_ p: Pattern) {
    var violations = 0
    var accepted = 0
    for shape in conversionShapes {
      for (d, dtype) in conversionDTypes.enumerated() {
        for (k, density) in conversionDensities.enumerated() {
          let seed = UInt64(shape.rows * 1000 + shape.columns * 50 + d * 7 + k)
          // Conforming (N:M) data, and unstructured data that may break the pattern.
          let conforming = conversionMatrix(
            keeping: randomNOfMKeep(
              rows: shape.rows, columns: shape.columns, n: p.n, m: p.m, density: density, seed: seed),
            shape, dtype: dtype, seed: seed)
          let unstructured = unstructuredMatrix(shape, dtype: dtype, density: density / 2, seed: seed)
          for dense in [conforming, unstructured] {
            for csr in [try! CSRMatrix(dense: dense), csrWithStoredZeros(dense, seed: seed)] {
              let direct = outcome { () throws(SparseFormatError) in
                try SemiStructuredMatrix(csr: csr, n: p.n, m: p.m, name: "blk.w")
              }
              let viaDense = outcome { () throws(SparseFormatError) in
                try SemiStructuredMatrix(dense: csr.dense(), n: p.n, m: p.m, name: "blk.w")
              }
              expectSame(direct, viaDense, "\(p.testDescription) \(shape.testDescription) \(dtype) density \(density)")
              if case .failure = viaDense { violations += 1 } else { accepted += 1 }
            }
          }
        }
      }
    }
    // Both branches must be exercised (a 1:1 or 4:4 pattern cannot be broken).
    #expect(accepted > 0)
    if p.n < p.m { #expect(violations > 0, "no input broke \(p.testDescription)") }
  }

  @Test(arguments: [(0, 4), (5, 4), (2, 17), (1, 0), (-1, 4), (0, 0), (17, 17)])
  func semiStructuredFromCSRRefusesABadPatternLikeDenseRoute(_ n: Int, _ m: Int) throws {
    for shape in [Shape(4, 8), Shape(0, 3), Shape(3, 0)] {
      let csr = try CSRMatrix(dense: unstructuredMatrix(shape, dtype: .float16, density: 0.3, seed: 5))
      let direct = outcome { () throws(SparseFormatError) in try SemiStructuredMatrix(csr: csr, n: n, m: m, name: "x") }
      #expect(throws: SparseFormatError.self) { try direct.get() }
      expectSame(
        direct,
        outcome { () throws(SparseFormatError) in try SemiStructuredMatrix(dense: csr.dense(), n: n, m: m, name: "x") },
        "\(n):\(m) \(shape.testDescription)")
    }
  }

  /// The first violation in row-major order is named, the ragged last group included.
  @Test func semiStructuredFromCSRNamesTheFirstViolatingGroup() throws {
    let dense = floatMatrix(["1100 1001 1", "0000 0000 0", "1000 1110 0", "1111 0000 0"])
    let csr = try CSRMatrix(dense: dense)
    expectError(
      .patternViolation(tensor: "fc", pattern: "2:4", rows: 2..<3, columns: 4..<8, nonzeros: 3, allowed: 2)
    ) { _ = try SemiStructuredMatrix(csr: csr, n: 2, m: 4, name: "fc") }
    let ragged = try CSRMatrix(dense: floatMatrix(["1000 1000 11", "0000 0000 00"]))
    expectError(
      .patternViolation(tensor: "fc", pattern: "1:4", rows: 0..<1, columns: 8..<10, nonzeros: 2, allowed: 1)
    ) { _ = try SemiStructuredMatrix(csr: ragged, n: 1, m: 4, name: "fc") }
  }

  // MARK: To BSR

  @Test(arguments: blockCases)
  fileprivate func bsrFromCSRMatchesDenseRoute(_ c: BlockCase) {
    var storedZeroReachedABlock = false
    for (d, dtype) in conversionDTypes.enumerated() {
      for (k, density) in conversionDensities.enumerated() {
        let seed = UInt64(d * 100 + k)
        let keep =
          k % 2 == 0
          ? randomBlockKeep(
            rows: c.shape.rows, columns: c.shape.columns, br: c.blockRows, bc: c.blockColumns, density: density,
            seed: seed)
          : randomKeep(rows: c.shape.rows, columns: c.shape.columns, density: density / 3, seed: seed)
        let dense = conversionMatrix(keeping: keep, c.shape, dtype: dtype, seed: seed)
        for csr in [try! CSRMatrix(dense: dense), csrWithStoredZeros(dense, seed: seed)] {
          let direct = outcome { () throws(SparseFormatError) in
            try BSRMatrix(csr: csr, blockRows: c.blockRows, blockColumns: c.blockColumns, name: "b")
          }
          expectSame(
            direct,
            outcome { () throws(SparseFormatError) in
              try BSRMatrix(dense: csr.dense(), blockRows: c.blockRows, blockColumns: c.blockColumns, name: "b")
            }, "\(dtype) density \(density)")
          if case .success(let bsr) = direct {
            storedZeroReachedABlock = storedZeroReachedABlock || holdsNegativeZero(bsr.values)
            #expect(
              csr.nonzeroBlockCount(blockRows: c.blockRows, blockColumns: c.blockColumns) == bsr.storedBlockCount)
          }
        }
      }
    }
    if c.shape.rows * c.shape.columns >= 16 && c.blockRows * c.blockColumns > 1 {
      #expect(storedZeroReachedABlock, "no block held a -0.0: the test data misses the copy of stored zeros")
    }
  }

  @Test(arguments: [
    (Shape(8, 12), 3, 4), (Shape(8, 12), 8, 5), (Shape(7, 12), 2, 2), (Shape(8, 8), 0, 4), (Shape(8, 8), 4, 0),
    (Shape(8, 8), -2, 4), (Shape(0, 5), 1, 2), (Shape(4, 0), 3, 1), (Shape(0, 0), 0, 0),
  ])
  func bsrFromCSRRefusesLikeDenseRoute(_ shape: Shape, _ blockRows: Int, _ blockColumns: Int) throws {
    let csr = try CSRMatrix(dense: unstructuredMatrix(shape, dtype: .bfloat16, density: 0.4, seed: 11))
    let direct = outcome { () throws(SparseFormatError) in
      try BSRMatrix(csr: csr, blockRows: blockRows, blockColumns: blockColumns, name: "q")
    }
    #expect(throws: SparseFormatError.self) { try direct.get() }
    expectSame(
      direct,
      outcome { () throws(SparseFormatError) in
        try BSRMatrix(dense: csr.dense(), blockRows: blockRows, blockColumns: blockColumns, name: "q")
      }, "\(shape.testDescription) \(blockRows)x\(blockColumns)")
  }

  // MARK: Structure queries

  /// Random matrices (half of them N:M-structured, some with stored zeros): the queries equal
  /// the dense route's answers.
  @Test func csrQueriesMatchDenseRoute() async {
    var conformed = 0
    var broke = 0
    await propertyCheck(
      count: 300, input: Gen.int(in: 0...20), Gen.int(in: 0...40), Gen.int(in: 1...16), Gen.int(in: 0...17),
      Gen.int(in: 0...100), Gen.int(in: 0..<conversionDTypes.count), Gen.int(in: 0...1_000_000)
    ) { rows, columns, m, nn, percent, d, seed in
      let n = min(nn, m + 1)
      let shape = Shape(rows, columns)
      let dtype = conversionDTypes[d]
      let density = Double(percent) / 100
      let keep =
        seed % 2 == 0
        ? randomNOfMKeep(rows: rows, columns: columns, n: max(n, 1), m: m, density: density, seed: UInt64(seed))
        : randomKeep(rows: rows, columns: columns, density: density, seed: UInt64(seed))
      let dense = conversionMatrix(keeping: keep, shape, dtype: dtype, seed: UInt64(seed))
      let csr = seed % 3 == 0 ? csrWithStoredZeros(dense, seed: UInt64(seed)) : try CSRMatrix(dense: dense)
      let what = "\(rows)x\(columns) \(dtype) \(n):\(m)"
      let expected = Mask(nonzerosOf: csr.dense()).conforms(to: .nOfM(n: n, m: m))
      #expect(csr.conforms(nOfM: n, m) == expected, "\(what)")
      if expected { conformed += 1 } else { broke += 1 }
      #expect(csr.nonzeroCount == csr.dense().nonzeroCount, "\(what)")
      let blockRows = [1, 2, 3, 4].last { rows % $0 == 0 }!
      let blockColumns = [1, 2, 4, 5, 8].last { columns % $0 == 0 }!
      #expect(
        csr.nonzeroBlockCount(blockRows: blockRows, blockColumns: blockColumns)
          == (try BSRMatrix(dense: csr.dense(), blockRows: blockRows, blockColumns: blockColumns).storedBlockCount),
        "\(what) blocks \(blockRows)x\(blockColumns)")
    }
    #expect(conformed > 0 && broke > 0, "conforms(nOfM:) was not seen answering both ways")
  }

  /// The ragged last group counts like a full one; stored zeros (`-0.0` included) do not count.
  @Test func csrConformsReadsRaggedGroupsAndStoredZeros() throws {
    #expect(try CSRMatrix(dense: floatMatrix(["1100 1"])).conforms(nOfM: 2, 4))
    #expect(try !CSRMatrix(dense: floatMatrix(["1100 111"])).conforms(nOfM: 2, 4))
    #expect(try CSRMatrix(dense: floatMatrix(["1100 110"])).conforms(nOfM: 2, 4))
    #expect(try !CSRMatrix(dense: floatMatrix(["0000", "0010"])).conforms(nOfM: 0, 4))
    #expect(try CSRMatrix(dense: floatMatrix(["0000", "0000"])).conforms(nOfM: 0, 4))
    #expect(
      try !CSRMatrix(dense: floatMatrix(["0000", "0000"])).conforms(nOfM: -1, 4), "as Mask: every group breaks n < 0")
    #expect(try CSRMatrix(dense: floatMatrix(["1111 1"])).conforms(nOfM: 4, 4))
    #expect(try CSRMatrix(dense: Tensor(zeros: [0, 7])).conforms(nOfM: 1, 4))
    // A row 1, 2, -0.0, +0.0 with all four stored: two nonzeros, one nonzero block.
    let csr = try CSRMatrix(
      shape: [1, 4], rowOffsets: [0, 4], columnIndices: [0, 1, 2, 3],
      values: Tensor([1, 2, -0.0, 0] as [Float]), name: "w")
    #expect(csr.conforms(nOfM: 2, 4))
    #expect(!csr.conforms(nOfM: 1, 4))
    #expect(csr.nonzeroCount == 2)
    #expect(csr.nonzeroBlockCount(blockRows: 1, blockColumns: 2) == 1)
    #expect(csr.nonzeroBlockCount(blockRows: 1, blockColumns: 1) == 2)
  }

  // MARK: A dtype without a zero

  /// `F8_E8M0` has no zero, so an unstored position reads as a nonzero `0x00` in `dense()`; the
  /// direct conversions see it the same way.
  @Test func dtypeWithoutZeroConvertsLikeDenseRoute() throws {
    var semiChecked = 0
    for (i, shape) in [Shape(4, 8), Shape(3, 5), Shape(8, 12), Shape(1, 1)].enumerated() {
      let dense = conversionMatrix(
        keeping: [Bool](repeating: true, count: shape.rows * shape.columns), shape, dtype: .float8E8M0,
        seed: UInt64(i))
      // Store only about half of the elements.
      let csr = csrStoring(
        dense, positions: randomKeep(rows: shape.rows, columns: shape.columns, density: 0.5, seed: UInt64(i)))
      let what = shape.testDescription
      #expect(csr.nonzeroCount == shape.rows * shape.columns, "\(what)")
      #expect(csr.nonzeroCount == csr.dense().nonzeroCount, "\(what)")
      for p in [Pattern(1, 1), Pattern(4, 4), Pattern(2, 4), Pattern(16, 16)] {
        #expect(
          csr.conforms(nOfM: p.n, p.m) == Mask(nonzerosOf: csr.dense()).conforms(to: .nOfM(n: p.n, m: p.m)), "\(what)")
        expectSame(
          outcome { () throws(SparseFormatError) in try SemiStructuredMatrix(csr: csr, n: p.n, m: p.m) },
          outcome { () throws(SparseFormatError) in try SemiStructuredMatrix(dense: csr.dense(), n: p.n, m: p.m) },
          "\(what) \(p.testDescription)")
        // An N:M matrix of it (where the dense matrix conforms): the filler slots past a ragged
        // edge hold 0x00, a nonzero here, which CSR must still leave out.
        if let semi = try? SemiStructuredMatrix(dense: dense, n: p.n, m: p.m) {
          #expect(CSRMatrix(semi) == (try CSRMatrix(dense: semi.dense())), "\(what) \(p.testDescription)")
          semiChecked += 1
        }
      }
      let block = (shape.rows % 2 == 0 ? 2 : 1, shape.columns % 4 == 0 ? 4 : 1)
      let bsr = try BSRMatrix(csr: csr, blockRows: block.0, blockColumns: block.1)
      #expect(bsr == (try BSRMatrix(dense: csr.dense(), blockRows: block.0, blockColumns: block.1)), "\(what)")
      #expect(CSRMatrix(bsr) == (try CSRMatrix(dense: bsr.dense())), "\(what)")
    }
    #expect(semiChecked >= 4)
  }
}

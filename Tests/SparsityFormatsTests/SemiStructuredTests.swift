import SparsityCore
import SparsityFormats
import SparsityTestSupport
import Testing

struct NM: Sendable, CustomTestStringConvertible, Hashable {
  var n: Int
  var m: Int
  init(_ n: Int, _ m: Int) { (self.n, self.m) = (n, m) }
  var testDescription: String { "\(n):\(m)" }
  /// Bits per stored position, ⌈log2 m⌉, from a table rather than a formula.
  var bits: Int { [1: 0, 2: 1, 3: 2, 4: 2, 8: 3, 16: 4][m] ?? -1 }
}

let nmPatterns: [NM] = [NM(2, 4), NM(1, 4), NM(4, 8), NM(1, 2), NM(2, 8), NM(8, 16), NM(3, 16)]
let semiShapes: [Shape] = testShapes + [Shape(5, 19), Shape(3, 17), Shape(2, 30)]

/// Reference logical form: for each group, the nonzero positions plus fillers taken in the
/// order m−n, …, m−1, 0, 1, … until there are n; values are the dense elements at in-bounds
/// positions and zero bytes past the last column.
func referenceLogical(_ dense: Tensor, n: Int, m: Int) -> (positions: [UInt8], values: [UInt8]) {
  let (rows, columns) = (dense.shape[0], dense.shape[1])
  let w = width(dense.dtype)
  let b = bytes(of: dense)
  let nonzero = dense.nonzeroMask.scalars(as: Bool.self)
  let fill = Array((m - n)..<m) + Array(0..<(m - n))
  var positions: [UInt8] = []
  var values: [UInt8] = []
  for r in 0..<rows {
    for c0 in stride(from: 0, to: columns, by: m) {
      var chosen = Set((0..<min(m, columns - c0)).filter { nonzero[r * columns + c0 + $0] })
      for j in fill where chosen.count < n { chosen.insert(j) }
      for j in chosen.sorted() {
        positions.append(UInt8(j))
        if c0 + j < columns {
          let at = (r * columns + c0 + j) * w
          values += b[at..<at + w]
        } else {
          values += [UInt8](repeating: 0, count: w)
        }
      }
    }
  }
  return (positions, values)
}

@Suite("Semi-structured N:M")
struct SemiStructuredTests {
  @Test(arguments: nmPatterns, semiShapes)
  func roundTripInvariantsAndByteCount(_ p: NM, _ shape: Shape) throws {
    for dtype in formatDTypes {
      for (k, density) in densities.enumerated() {
        let keep = randomNOfMKeep(rows: shape.rows, columns: shape.columns, n: p.n, m: p.m, density: density, seed: UInt64(k))
        let dense = matrix(keeping: keep, rows: shape.rows, columns: shape.columns, dtype: dtype, seed: UInt64(k))
        try check(dense, p, "\(dtype) density \(density)")
      }
    }
  }

  private func check(_ dense: Tensor, _ p: NM, _ note: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let (rows, columns) = (dense.shape[0], dense.shape[1])
    let s = try SemiStructuredMatrix(dense: dense, n: p.n, m: p.m, name: "w")
    expectBitwiseEqual(s.dense(), dense, "\(note)", sourceLocation: sourceLocation)
    try s.checkInvariants()
    let groups = (columns + p.m - 1) / p.m
    let stored = rows * groups * p.n
    #expect(s.n == p.n && s.m == p.m, sourceLocation: sourceLocation)
    #expect(s.pattern == .nOfM(n: p.n, m: p.m), sourceLocation: sourceLocation)
    #expect(s.groupsPerRow == groups, sourceLocation: sourceLocation)
    #expect(s.values.shape == [rows, groups * p.n], sourceLocation: sourceLocation)
    #expect(s.indices.count == stored, sourceLocation: sourceLocation)
    #expect(s.storedValueCount == stored, sourceLocation: sourceLocation)
    #expect(s.bitsPerIndex == p.bits, sourceLocation: sourceLocation)
    #expect(
      s.byteCount == stored * width(dense.dtype) + (stored * p.bits + 7) / 8, "\(note)", sourceLocation: sourceLocation)
    let reference = referenceLogical(dense, n: p.n, m: p.m)
    #expect(s.indices == reference.positions, "\(note)", sourceLocation: sourceLocation)
    #expect(bytes(of: s.values) == reference.values, "\(note)", sourceLocation: sourceLocation)
    let rebuilt = try SemiStructuredMatrix(
      shape: s.shape, n: s.n, m: s.m, values: s.values, indices: s.indices, name: "w")
    #expect(rebuilt == s, sourceLocation: sourceLocation)
  }

  @Test(arguments: extraDTypes.filter { $0 != .float8E8M0 })
  func everyByteAlignedDTypeRoundTrips(_ dtype: DType) throws {
    let keep = randomNOfMKeep(rows: 6, columns: 14, n: 2, m: 4, density: 0.5, seed: 2)
    try check(matrix(keeping: keep, rows: 6, columns: 14, dtype: dtype, seed: 2), NM(2, 4), "\(dtype)")
  }

  /// F8_E8M0 has no zero (0x00 is 2^-127), so a zero-filled E8M0 matrix is dense.
  @Test func e8m0HasNoZerosToDrop() {
    expectError(.patternViolation(tensor: "w", pattern: "2:4", rows: 0..<1, columns: 0..<4, nonzeros: 4, allowed: 2)) {
      _ = try SemiStructuredMatrix(dense: Tensor(zeros: [2, 8], dtype: .float8E8M0), n: 2, m: 4, name: "w")
    }
  }

  @Test func defaultIsTwoFour() throws {
    let keep = randomNOfMKeep(rows: 4, columns: 8, n: 2, m: 4, density: 1, seed: 1)
    let s = try SemiStructuredMatrix(dense: matrix(keeping: keep, rows: 4, columns: 8, dtype: .float16, seed: 1))
    #expect(s.n == 2 && s.m == 4)
    #expect(SemiStructuredMatrix.formatName == "semi-structured")
  }

  /// The 2:4 fill rule: a group with 0 or 1 nonzeros gets the positions the CUTLASS encoding
  /// picks; a group with 2 keeps its own.
  @Test(arguments: [
    ([], [2, 3]), ([0], [0, 2]), ([1], [1, 2]), ([2], [2, 3]), ([3], [2, 3]),
    ([0, 1], [0, 1]), ([0, 2], [0, 2]), ([0, 3], [0, 3]), ([1, 2], [1, 2]), ([1, 3], [1, 3]), ([2, 3], [2, 3]),
  ] as [([Int], [UInt8])])
  func twoFourFillRule(_ nonzeros: [Int], _ positions: [UInt8]) throws {
    // The group appears in every position of a 3-group row, and in the second row alone.
    var values = [Float](repeating: 0, count: 2 * 12)
    for g in 0..<3 { for j in nonzeros { values[g * 4 + j] = Float(10 * g + j + 1) } }
    for j in nonzeros { values[12 + 4 + j] = -Float(j + 1) }
    let dense = Tensor(values, shape: [2, 12])
    let s = try SemiStructuredMatrix(dense: dense, n: 2, m: 4)
    let empty: [UInt8] = [2, 3]
    #expect(s.indices == positions + positions + positions + empty + positions + empty)
    // Filler slots hold zeros; kept slots hold the values.
    let row0 = s.values.scalars(as: Float.self).prefix(6)
    #expect(Array(row0) == (0..<3).flatMap { g in positions.map { values[g * 4 + Int($0)] } })
    expectBitwiseEqual(s.dense(), dense)
  }

  @Test func twoFourHandExampleWithRaggedTail() throws {
    let dense = Tensor(
      [
        1, 0, 2, 0, 3, 0,
        0, 0, 0, 4, 0, 5,
      ] as [Float], shape: [2, 6])
    let s = try SemiStructuredMatrix(dense: dense, n: 2, m: 4, name: "w")
    #expect(s.indices == [0, 2, 0, 2, 2, 3, 1, 2])
    #expect(s.values.scalars(as: Float.self) == [1, 2, 3, 0, 0, 4, 5, 0])
    #expect(s.byteCount == 8 * 4 + 2)
  }

  @Test(arguments: nmPatterns)
  func firstViolatingGroupIsReported(_ p: NM) {
    // Rows 0–2 conform; row 3 breaks the pattern in group 1 (and also later groups).
    let (rows, columns) = (5, 3 * p.m + 1)
    var keep = randomNOfMKeep(rows: rows, columns: columns, n: p.n, m: p.m, density: 0.7, seed: 9)
    for r in 3..<rows {
      for g in 1..<3 {
        for j in 0..<p.m { keep[r * columns + g * p.m + j] = j <= p.n }
      }
    }
    let dense = matrix(keeping: keep, rows: rows, columns: columns, dtype: .bfloat16, seed: 9)
    expectError(
      .patternViolation(
        tensor: "blk.0.w", pattern: "\(p.n):\(p.m)", rows: 3..<4, columns: p.m..<(2 * p.m), nonzeros: p.n + 1,
        allowed: p.n), "\(p)"
    ) {
      _ = try SemiStructuredMatrix(dense: dense, n: p.n, m: p.m, name: "blk.0.w")
    }
  }

  @Test(arguments: [
    (Shape(1, 7), [4, 5, 6], 0, 4..<7, 3),
    (Shape(2, 7), [0, 1, 7 + 4, 7 + 5, 7 + 6], 1, 4..<7, 3),
    (Shape(3, 3), [3, 4, 5, 6, 7], 1, 0..<3, 3),
    (Shape(1, 5), [0, 1, 2, 3, 4], 0, 0..<4, 4),
  ] as [(Shape, [Int], Int, Range<Int>, Int)])
  func violationInARaggedTailGroup(_ shape: Shape, _ kept: [Int], _ row: Int, _ columns: Range<Int>, _ count: Int) {
    var keep = [Bool](repeating: false, count: shape.rows * shape.columns)
    for i in kept { keep[i] = true }
    let dense = matrix(keeping: keep, rows: shape.rows, columns: shape.columns, dtype: .int8, seed: 1)
    expectError(
      .patternViolation(tensor: "w", pattern: "2:4", rows: row..<(row + 1), columns: columns, nonzeros: count, allowed: 2)
    ) {
      _ = try SemiStructuredMatrix(dense: dense, n: 2, m: 4, name: "w")
    }
  }

  @Test(arguments: [NM(0, 4), NM(5, 4), NM(2, 17), NM(3, 2), NM(-1, 4), NM(2, 32)])
  func invalidNMBreaksTheShapeRule(_ p: NM) {
    expectShapeRule(name: "w", shape: [4, 8], "\(p.n):\(p.m)") {
      _ = try SemiStructuredMatrix(dense: Tensor(zeros: [4, 8]), n: p.n, m: p.m, name: "w")
    }
    expectShapeRule(name: "w", shape: [4, 8], "\(p.n):\(p.m)") {
      _ = try SemiStructuredMatrix(shape: [4, 8], n: p.n, m: p.m, values: Tensor(zeros: [4, 4]), indices: [], name: "w")
    }
  }

  struct Corruption: Sendable, CustomTestStringConvertible {
    var note: String
    var values: Tensor
    var indices: [UInt8]
    var testDescription: String { note }
  }

  // Valid 2:4 form of [[1,0,2,0,3,0],[0,0,0,4,0,5]] (shape [2, 6], two groups per row).
  static let values = Tensor([1, 2, 3, 0, 0, 4, 5, 0] as [Float], shape: [2, 4])
  static let indices: [UInt8] = [0, 2, 0, 2, 2, 3, 1, 2]
  static func replacing(_ i: Int, with v: UInt8) -> [UInt8] { var x = indices; x[i] = v; return x }

  static let corruptions: [Corruption] = [
    Corruption(note: "position = m", values: values, indices: replacing(1, with: 4)),
    Corruption(note: "position 255", values: values, indices: replacing(0, with: 255)),
    Corruption(note: "repeated position", values: values, indices: replacing(1, with: 0)),
    Corruption(note: "decreasing positions", values: values, indices: [2, 0, 0, 2, 2, 3, 1, 2]),
    Corruption(note: "nonzero past the last column", values: Tensor([1, 2, 3, 7, 0, 4, 5, 0] as [Float], shape: [2, 4]), indices: indices),
    Corruption(note: "nonzero past the last column, row 1", values: Tensor([1, 2, 3, 0, 0, 4, 5, 9] as [Float], shape: [2, 4]), indices: indices),
    Corruption(note: "too few indices", values: values, indices: Array(indices.dropLast())),
    Corruption(note: "too many indices", values: values, indices: indices + [3]),
    Corruption(note: "values of the wrong width", values: Tensor(zeros: [2, 3]), indices: Array(indices.prefix(6))),
    Corruption(note: "values flattened", values: Tensor([1, 2, 3, 0, 0, 4, 5, 0] as [Float]), indices: indices),
    Corruption(note: "values of rank 3", values: Tensor(zeros: [2, 4, 1]), indices: indices),
    Corruption(note: "sub-byte values", values: Tensor(zeros: [2, 4], dtype: .float4E2M1), indices: indices),
  ]

  @Test func validComponentsAssemble() throws {
    let s = try SemiStructuredMatrix(shape: [2, 6], n: 2, m: 4, values: Self.values, indices: Self.indices, name: "w")
    #expect(s.dense().scalars(as: Float.self) == [1, 0, 2, 0, 3, 0, 0, 0, 0, 4, 0, 5])
    // Filler positions past the last column are fine while their values are zero (-0.0 too).
    let negativeZero = Tensor([1, 2, 3, -0.0, 0, 4, 5, -0.0] as [Float], shape: [2, 4])
    #expect(throws: Never.self) {
      try SemiStructuredMatrix(shape: [2, 6], n: 2, m: 4, values: negativeZero, indices: Self.indices, name: "w")
    }
  }

  @Test(arguments: corruptions)
  func componentInitRejectsCorruptArrays(_ c: Corruption) {
    expectInvalidEncoding(name: "w", format: "2:4", "\(c.note)") {
      _ = try SemiStructuredMatrix(shape: [2, 6], n: 2, m: 4, values: c.values, indices: c.indices, name: "w")
    }
  }

  @Test func componentInitRejectsBadShapes() {
    expectShapeRule(name: "w", shape: [12]) {
      _ = try SemiStructuredMatrix(shape: [12], n: 2, m: 4, values: Self.values, indices: Self.indices, name: "w")
    }
    expectShapeRule(name: "w", shape: [2, -6]) {
      _ = try SemiStructuredMatrix(shape: [2, -6], n: 2, m: 4, values: Self.values, indices: Self.indices, name: "w")
    }
  }

  /// 2:4 of a 4096×1024 fp32 weight: half the values plus 2 bits per kept value,
  /// 8 MiB + 0.5 MiB of 16 MiB = 53.125%.
  @Test func twoFourFloat32Footprint() throws {
    let (rows, columns) = (4096, 1024)
    var dense = Tensor(zeros: [rows, columns], dtype: .float32)
    dense.withUnsafeMutableBufferPointer(as: Float.self) { p in
      for i in stride(from: 0, to: p.count, by: 4) {
        p[i] = 1
        p[i + 3] = -2
      }
    }
    let s = try SemiStructuredMatrix(dense: dense, n: 2, m: 4, name: "w")
    #expect(s.byteCount == rows * columns / 2 * 4 + rows * columns / 2 * 2 / 8)
    let ratio = Double(s.byteCount) / Double(dense.byteCount)
    #expect(ratio <= 0.56)
    #expect(ratio == 0.53125)
    #expect(s.compressionRatio == 0.53125)
  }
}

import SparsityCore
import SparsityFormats
import Testing

/// A hand-made mask, a pattern, and the first violation (nil when it conforms).
struct ConformanceCase: Sendable, CustomTestStringConvertible {
  var rows: [String]
  var pattern: SparsityPattern
  var violation: Violation?
  var note: String
  var testDescription: String { "\(pattern) \(note)" }
}

/// The expected fields of a ``PatternViolation`` (which has no public initializer).
struct Violation: Sendable, Equatable, CustomStringConvertible {
  var rows: Range<Int>
  var columns: Range<Int>
  var kept: Int
  var limit: PatternViolation.Limit
  init(_ v: PatternViolation) { (rows, columns, kept, limit) = (v.rows, v.columns, v.kept, v.limit) }
  init(rows: Range<Int>, columns: Range<Int>, kept: Int, limit: PatternViolation.Limit) {
    (self.rows, self.columns, self.kept, self.limit) = (rows, columns, kept, limit)
  }
  var description: String { "rows \(rows), columns \(columns), kept \(kept), \(limit)" }
}

private func v(_ rows: Range<Int>, _ columns: Range<Int>, kept: Int, _ limit: PatternViolation.Limit) -> Violation {
  Violation(rows: rows, columns: columns, kept: kept, limit: limit)
}

extension Mask {
  /// The first violation's fields.
  func violation(of pattern: SparsityPattern) -> Violation? { firstViolation(of: pattern).map(Violation.init) }
}

@Suite("Mask conformance")
struct MaskTests {
  static let cases: [ConformanceCase] = [
    // Unstructured: always conforms.
    ConformanceCase(rows: ["1111", "1011"], pattern: .unstructured, violation: nil, note: "dense"),
    // N:M
    ConformanceCase(rows: ["11000011", "10100101"], pattern: .twoFour, violation: nil, note: "2:4 ok"),
    ConformanceCase(rows: ["11000011", "10100111"], pattern: .twoFour, violation: v(1..<2, 4..<8, kept: 3, .atMost(2)), note: "3 in row 1 group 1"),
    ConformanceCase(rows: ["11100000", "11110000"], pattern: .twoFour, violation: v(0..<1, 0..<4, kept: 3, .atMost(2)), note: "first in row-major order"),
    ConformanceCase(rows: ["1100111"], pattern: .twoFour, violation: v(0..<1, 4..<7, kept: 3, .atMost(2)), note: "ragged tail group of 3"),
    ConformanceCase(rows: ["1100011"], pattern: .twoFour, violation: nil, note: "ragged tail ok"),
    ConformanceCase(rows: ["11"], pattern: .twoFour, violation: nil, note: "one short group"),
    ConformanceCase(rows: ["111"], pattern: .twoFour, violation: v(0..<1, 0..<3, kept: 3, .atMost(2)), note: "one short group of 3"),
    ConformanceCase(rows: ["1000", "0001", "0100"], pattern: .nOfM(n: 1, m: 4), violation: nil, note: "1:4 ok"),
    ConformanceCase(rows: ["1000", "0101"], pattern: .nOfM(n: 1, m: 4), violation: v(1..<2, 0..<4, kept: 2, .atMost(1)), note: "1:4"),
    ConformanceCase(rows: ["101001"], pattern: .nOfM(n: 1, m: 2), violation: nil, note: "1:2 ok"),
    ConformanceCase(rows: ["100111"], pattern: .nOfM(n: 1, m: 2), violation: v(0..<1, 4..<6, kept: 2, .atMost(1)), note: "1:2"),
    ConformanceCase(rows: ["11110000 11111"], pattern: .nOfM(n: 4, m: 8), violation: v(0..<1, 8..<13, kept: 5, .atMost(4)), note: "4:8 ragged"),
    ConformanceCase(rows: ["1111111111111111"], pattern: .nOfM(n: 16, m: 16), violation: nil, note: "16:16"),
    // Blocks: every block all zero or all nonzero; edge blocks are cut short.
    ConformanceCase(rows: ["11001", "11001", "00110"], pattern: .block(rows: 2, columns: 2), violation: nil, note: "2x2 ok with partial edges"),
    ConformanceCase(rows: ["11000", "11000", "00111"], pattern: .block(rows: 2, columns: 2), violation: nil, note: "2x2 edge blocks full"),
    ConformanceCase(rows: ["11000", "10000", "00000"], pattern: .block(rows: 2, columns: 2), violation: v(0..<2, 0..<2, kept: 3, .allOrNothing), note: "2x2 partial interior"),
    ConformanceCase(rows: ["11001", "11000", "00000"], pattern: .block(rows: 2, columns: 2), violation: v(0..<2, 4..<5, kept: 1, .allOrNothing), note: "2x1 edge block half full"),
    ConformanceCase(rows: ["11000", "11000", "00010"], pattern: .block(rows: 2, columns: 2), violation: v(2..<3, 2..<4, kept: 1, .allOrNothing), note: "1x2 bottom edge block"),
    ConformanceCase(rows: ["1111", "0000"], pattern: .block(rows: 1, columns: 4), violation: nil, note: "1x4 ok"),
    ConformanceCase(rows: ["1111", "0010"], pattern: .block(rows: 1, columns: 4), violation: v(1..<2, 0..<4, kept: 1, .allOrNothing), note: "1x4"),
    // Rows and columns.
    ConformanceCase(rows: ["111", "000", "111"], pattern: .rows, violation: nil, note: "rows ok"),
    ConformanceCase(rows: ["111", "000", "101"], pattern: .rows, violation: v(2..<3, 0..<3, kept: 2, .allOrNothing), note: "rows"),
    ConformanceCase(rows: ["101", "101"], pattern: .columns, violation: nil, note: "columns ok"),
    ConformanceCase(rows: ["101", "111", "101"], pattern: .columns, violation: v(0..<3, 1..<2, kept: 1, .allOrNothing), note: "columns"),
    // N kept in R×C blocks.
    ConformanceCase(rows: ["1100", "0011"], pattern: .nOfMInBlocks(n: 2, rows: 2, columns: 2), violation: nil, note: "2 in 2x2 ok"),
    ConformanceCase(rows: ["1100", "1011"], pattern: .nOfMInBlocks(n: 2, rows: 2, columns: 2), violation: v(0..<2, 0..<2, kept: 3, .atMost(2)), note: "2 in 2x2"),
    ConformanceCase(rows: ["1100", "0011", "1110"], pattern: .nOfMInBlocks(n: 2, rows: 2, columns: 2), violation: nil, note: "2 in 2x2 edge ok"),
    ConformanceCase(rows: ["1100", "0011", "1110"], pattern: .nOfMInBlocks(n: 1, rows: 2, columns: 2), violation: v(0..<2, 0..<2, kept: 2, .atMost(1)), note: "1 in 2x2"),
    ConformanceCase(rows: ["1000", "0000", "0111"], pattern: .nOfMInBlocks(n: 1, rows: 2, columns: 2), violation: v(2..<3, 2..<4, kept: 2, .atMost(1)), note: "1 in 2x2 edge"),
    ConformanceCase(rows: ["1101"], pattern: .nOfMInBlocks(n: 2, rows: 1, columns: 4), violation: v(0..<1, 0..<4, kept: 3, .atMost(2)), note: "2 in 1x4 is 2:4"),
  ]

  @Test(arguments: cases)
  func firstViolation(_ c: ConformanceCase) {
    let m = mask(c.rows)
    #expect(m.violation(of: c.pattern) == c.violation)
    #expect(m.conforms(to: c.pattern) == (c.violation == nil))
    #expect(m.statistics(for: c.pattern).conforms == (c.violation == nil))
    // The same nonzeros in a float tensor (with -0.0 for the zeros) conform the same way.
    let t = floatMatrix(c.rows).map { $0 == 0 ? -0.0 : $0 }
    #expect(t.conforms(to: c.pattern) == (c.violation == nil))
  }

  @Test func emptyMasksConformToEverything() {
    for pattern in PatternTests.valid {
      #expect(Mask(repeating: true, shape: [0, 8]).conforms(to: pattern))
      #expect(Mask(repeating: true, shape: [3, 0]).conforms(to: pattern))
      #expect(Mask(repeating: false, shape: [5, 9]).conforms(to: pattern))
    }
  }

  @Test func fullMaskViolatesEveryStructuredLimit() {
    let m = Mask(repeating: true, shape: [4, 8])
    #expect(m.violation(of: .twoFour) == v(0..<1, 0..<4, kept: 4, .atMost(2)))
    #expect(m.conforms(to: .block(rows: 2, columns: 2)))
    #expect(m.conforms(to: .rows))
    #expect(m.conforms(to: .columns))
    #expect(m.violation(of: .nOfMInBlocks(n: 3, rows: 2, columns: 2)) == v(0..<2, 0..<2, kept: 4, .atMost(3)))
  }

  @Test func higherRanksAreViewedAsMatrices() {
    // [2, 2, 4] is viewed as [4, 4]: the last axis is the input dimension.
    let bits: [Bool] = [
      true, true, false, false, false, false, true, true,
      true, false, true, false, true, true, true, false,
    ]
    let m = Mask(Tensor(bits, shape: [2, 2, 4]))
    #expect(m.matrixShape == (rows: 4, columns: 4))
    #expect(m.violation(of: .twoFour) == v(3..<4, 0..<4, kept: 3, .atMost(2)))
    #expect(Mask(Tensor(bits, shape: [16])).matrixShape == (rows: 1, columns: 16))
    #expect(Mask(Tensor(bits, shape: [16])).violation(of: .twoFour) == v(0..<1, 12..<16, kept: 3, .atMost(2)))
    #expect(Mask(Tensor(scalar: true)).matrixShape == (rows: 1, columns: 1))
  }

  struct StatisticsCase: Sendable, CustomTestStringConvertible {
    var rows: [String]
    var pattern: SparsityPattern
    var cells: Int
    var empty: Int
    var violating: Int
    var maximumKept: Int
    var testDescription: String { "\(pattern) \(rows)" }
  }

  @Test(arguments: [
    StatisticsCase(rows: ["11000000", "11100001"], pattern: .twoFour, cells: 4, empty: 1, violating: 1, maximumKept: 3),
    StatisticsCase(rows: ["1100011"], pattern: .twoFour, cells: 2, empty: 0, violating: 0, maximumKept: 2),
    StatisticsCase(rows: ["11000", "11001", "00000"], pattern: .block(rows: 2, columns: 2), cells: 6, empty: 4, violating: 1, maximumKept: 4),
    StatisticsCase(rows: ["111", "000", "010"], pattern: .rows, cells: 3, empty: 1, violating: 1, maximumKept: 3),
    StatisticsCase(rows: ["110", "100"], pattern: .columns, cells: 3, empty: 1, violating: 1, maximumKept: 2),
    StatisticsCase(rows: ["1111", "1011"], pattern: .unstructured, cells: 0, empty: 0, violating: 0, maximumKept: 0),
    StatisticsCase(rows: ["1100", "0011", "1110"], pattern: .nOfMInBlocks(n: 1, rows: 2, columns: 2), cells: 4, empty: 0, violating: 3, maximumKept: 2),
  ])
  func statistics(_ c: StatisticsCase) {
    let s = mask(c.rows).statistics(for: c.pattern)
    #expect(s.pattern == c.pattern)
    #expect(s.cells == c.cells)
    #expect(s.emptyCells == c.empty)
    #expect(s.violatingCells == c.violating)
    #expect(s.maximumKept == c.maximumKept)
    #expect(s.conforms == (c.violating == 0))
    #expect(s.emptyFraction == (c.cells == 0 ? 0 : Double(c.empty) / Double(c.cells)))
  }

  @Test func keptCountAndSparsity() {
    let m = mask(["1100", "0001"])
    #expect(m.keptCount == 3)
    #expect(m.sparsity == 5.0 / 8)
    #expect(m.shape == [2, 4])
    #expect(Mask(repeating: false, shape: [0]).sparsity == 0)
    #expect(Mask(repeating: true, shape: [3]).keptCount == 3)
  }

  @Test func nonzerosOfTreatsNegativeZeroAsZero() {
    let t = Tensor([0, -0.0, 1, .nan, -2] as [Float])
    #expect(Mask(nonzerosOf: t).tensor.scalars(as: Bool.self) == [false, false, true, true, true])
    let h = Tensor([UInt16]([0, 0x8000, 1]).map { Float16(bitPattern: $0) })
    #expect(Mask(nonzerosOf: h).keptCount == 1)
  }

  @Test func tensorConformsUsesNonzeros() {
    let w = Tensor([1, 2, 0, 0, 0, -0.0, 3, 4] as [Float], shape: [2, 4])
    #expect(w.conforms(to: .twoFour))
    #expect(!w.conforms(to: .nOfM(n: 1, m: 4)))
    #expect(!w.conforms(to: .rows))
    #expect(w.conforms(to: .block(rows: 1, columns: 2)))
    #expect(!w.conforms(to: .block(rows: 2, columns: 2)))
    let i = Tensor([5, 0, 0, 7, 1, 1, 0, 0] as [Int8], shape: [2, 4])
    #expect(i.conforms(to: .twoFour))
    #expect(!i.conforms(to: .nOfM(n: 1, m: 2)))
  }

  @Test func violationErrorsAndDescriptions() throws {
    let atMost = try #require(mask(["11000011", "10100111"]).firstViolation(of: .twoFour))
    #expect(
      atMost.error(tensor: "w", pattern: .twoFour)
        == .patternViolation(tensor: "w", pattern: "2:4", rows: 1..<2, columns: 4..<8, nonzeros: 3, allowed: 2))
    #expect(atMost.description == "row 1, columns 4..<8 hold 3 nonzeros of 4 (at most 2 allowed)")
    let block = try #require(mask(["11001", "11000", "00000"]).firstViolation(of: .block(rows: 2, columns: 2)))
    #expect(
      block.error(tensor: "w", pattern: .block(rows: 2, columns: 2))
        == .partialBlock(tensor: "w", pattern: "block:2x2", rows: 0..<2, columns: 4..<5, nonzeros: 1, size: 2))
    #expect(block.description == "rows 0..<2, columns 4..<5 hold 1 nonzeros of 2 (must be all zero or all nonzero)")
    let inBlocks = try #require(mask(["1100", "1011"]).firstViolation(of: .nOfMInBlocks(n: 2, rows: 2, columns: 2)))
    #expect(
      inBlocks.error(tensor: "w", pattern: .nOfMInBlocks(n: 2, rows: 2, columns: 2))
        == .patternViolation(tensor: "w", pattern: "2:2x2", rows: 0..<2, columns: 0..<2, nonzeros: 3, allowed: 2))
  }

  @Test func randomMasksFromTheGeneratorsConform() {
    for seed in UInt64(0)..<20 {
      let nm = randomNOfMKeep(rows: 9, columns: 21, n: 2, m: 4, density: 0.5, seed: seed)
      #expect(Mask(Tensor(nm, shape: [9, 21])).conforms(to: .twoFour))
      let b = randomBlockKeep(rows: 9, columns: 21, br: 4, bc: 4, density: 0.5, seed: seed)
      #expect(Mask(Tensor(b, shape: [9, 21])).statistics(for: .block(rows: 4, columns: 4)).cells == 18)
    }
  }
}

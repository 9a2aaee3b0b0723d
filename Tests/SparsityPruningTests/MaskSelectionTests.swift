import PropertyBased
import SparsityCore
import SparsityFormats
import Testing

@testable import SparsityPruning

/// Mask creation for every pattern: exact conformance and counts (property tests over random
/// shapes, ragged included, with many tied scores), and the documented tie rule.
@Suite struct MaskSelectionTests {
  static let patterns: [SparsityPattern] = [
    .unstructured, .nOfM(n: 2, m: 4), .nOfM(n: 1, m: 4), .nOfM(n: 3, m: 8), .nOfM(n: 5, m: 7), .block(rows: 2, columns: 3),
    .block(rows: 4, columns: 4), .block(rows: 1, columns: 5), .rows, .columns, .nOfMInBlocks(n: 3, rows: 2, columns: 2),
    .nOfMInBlocks(n: 5, rows: 3, columns: 4),
  ]

  /// Scores with many ties (small integers), shaped `[rows, columns]`.
  static func tiedScores(_ rows: Int, _ columns: Int, seed: Int) -> Tensor {
    var rng = SeededGenerator(seed: UInt64(seed))
    return Tensor((0..<(rows * columns)).map { _ in Double(rng.next() % 5) }, shape: [rows, columns])
  }

  /// The cells of a pattern on a `[rows, columns]` grid, row-major, each as its flat indices.
  static func cells(_ pattern: SparsityPattern, rows: Int, columns: Int) -> [[Int]] {
    let (r, c): (Int, Int)
    switch pattern {
    case let .block(br, bc), let .nOfMInBlocks(_, br, bc): (r, c) = (br, bc)
    case let .nOfM(_, m): (r, c) = (1, m)
    case .rows: (r, c) = (1, columns)
    case .columns: (r, c) = (rows, 1)
    case .unstructured: (r, c) = (1, 1)
    }
    var out: [[Int]] = []
    for r0 in stride(from: 0, to: rows, by: r) {
      for c0 in stride(from: 0, to: columns, by: c) {
        out.append((r0..<Swift.min(r0 + r, rows)).flatMap { row in (c0..<Swift.min(c0 + c, columns)).map { row * columns + $0 } })
      }
    }
    return out
  }

  @Test func everyMaskConformsWithExactCounts() async {
    await propertyCheck(
      count: 300, input: Gen.int(in: 1...19), Gen.int(in: 1...37), Gen.int(in: 0..<Self.patterns.count),
      Gen.int(in: 0...20), Gen.int(in: 0...100_000)
    ) { rows, columns, patternIndex, levelTwentieths, seed in
      let pattern = Self.patterns[patternIndex]
      let level = Double(levelTwentieths) / 20
      let scores = Self.tiedScores(rows, columns, seed: seed)
      let context = "\(pattern) on \(rows)×\(columns) at \(level), seed \(seed)"
      guard let mask = try? Mask(scores: scores, pattern: pattern, sparsityLevel: level) else {
        Issue.record("selection threw: \(context)")
        return
      }
      let keep = mask.tensor.scalars(as: Bool.self)
      let cells = Self.cells(pattern, rows: rows, columns: columns)
      let expectedCells = Mask.prunedCellCount(sparsityLevel: level, cells: cells.count)
      switch pattern {
      case .unstructured:
        #expect(keep.count { !$0 } == expectedCells, "\(context)")
      case .block, .rows, .columns:
        #expect(mask.conforms(to: pattern), "\(context)")
        #expect(cells.count { cell in cell.allSatisfy { !keep[$0] } } == expectedCells, "\(context)")
      case let .nOfM(n, _), let .nOfMInBlocks(n, _, _):
        if level == 1 { #expect(mask.conforms(to: pattern), "\(context)") }
        // Every cell keeps all of its elements, or exactly min(n, size) (made N:M).
        var made = 0
        var ambiguous = 0
        for cell in cells {
          let kept = cell.count { keep[$0] }
          if cell.count <= n {
            #expect(kept == cell.count, "\(context)")
            ambiguous += 1
          } else if kept == n {
            made += 1
          } else {
            #expect(kept == cell.count, "\(context): a cell keeps \(kept) of \(cell.count)")
          }
        }
        #expect(made <= expectedCells && expectedCells <= made + ambiguous, "\(context)")
      }
    }
  }

  /// Kept elements outrank pruned ones in every comparison group (ranking order: score, then
  /// lower index pruned first).
  @Test func keptOutranksPrunedUnstructured() async {
    await propertyCheck(
      count: 200, input: Gen.int(in: 1...12), Gen.int(in: 1...30), Gen.int(in: 0...10), Gen.int(in: 0...100_000),
      Gen.int(in: 0...1)
    ) { rows, columns, tenths, seed, rowScope in
      let scores = Self.tiedScores(rows, columns, seed: seed)
      let scope: ComparisonScope = rowScope == 1 ? .row : .layer
      let level = Double(tenths) / 10
      guard let mask = try? Mask(scores: scores, pattern: .unstructured, sparsityLevel: level, scope: scope) else {
        Issue.record("selection threw")
        return
      }
      let s = scores.doubleValues
      let keep = mask.tensor.scalars(as: Bool.self)
      let groups: [[Int]] =
        scope == .row ? (0..<rows).map { r in Array((r * columns)..<((r + 1) * columns)) } : [Array(0..<(rows * columns))]
      for group in groups {
        let pruned = group.filter { !keep[$0] }
        let kept = group.filter { keep[$0] }
        #expect(pruned.count == Mask.prunedCellCount(sparsityLevel: level, cells: group.count))
        for p in pruned {
          for k in kept {
            #expect(Ranking.prunedBefore(s[p], p, s[k], k), "pruned \(p) (\(s[p])) ranks above kept \(k) (\(s[k]))")
          }
        }
      }
    }
  }

  /// Tie rule: lower score first; on equal scores the lower flat index is pruned first; NaN
  /// last.
  @Test func documentedTieRule() throws {
    let scores = Tensor([3, 1, 1, 2, 1, 3, .nan, 0] as [Double], shape: [1, 8])
    let half = try Mask(scores: scores, pattern: .unstructured, sparsityLevel: 0.5)
    expectMask(half, equals: [[1, 0, 0, 1, 0, 1, 1, 0]])
    let most = try Mask(scores: scores, pattern: .unstructured, sparsityLevel: 7.0 / 8)
    expectMask(most, equals: [[0, 0, 0, 0, 0, 0, 1, 0]])
    let twoFour = try Mask(scores: scores, pattern: .twoFour, sparsityLevel: 1)
    expectMask(twoFour, equals: [[1, 0, 0, 1, 0, 1, 1, 0]])
  }

  /// torchao `mask_creator` example (reference §1.6): `[1,-5,3,0.5, 2,2,-7,1]` → `[0,1,1,0, 0,1,1,0]`.
  @Test func torchaoMaskCreatorExample() throws {
    let w = Tensor([1, -5, 3, 0.5, 2, 2, -7, 1] as [Float], shape: [1, 8])
    expectMask(try Magnitude.mask(for: w, pattern: .twoFour), equals: [[0, 1, 1, 0, 0, 1, 1, 0]])
  }

  @Test func ragged2of4KeepsShortGroups() throws {
    // 6 columns: a full group and a group of 2 (both kept: at most 2 may be kept).
    let w = Tensor([4, 1, 3, 2, 5, 6] as [Float], shape: [1, 6])
    expectMask(try Magnitude.mask(for: w, pattern: .twoFour), equals: [[1, 0, 1, 0, 1, 1]])
    let w7 = Tensor([4, 1, 3, 2, 5, 6, 0.5] as [Float], shape: [1, 7])
    expectMask(try Magnitude.mask(for: w7, pattern: .twoFour), equals: [[1, 0, 1, 0, 1, 1, 0]])
  }

  @Test func blockMeansRankPartialEdgeBlocks() throws {
    // 2×5 with 2×2 blocks: blocks [0..<2,0..<2] mean 1, [.., 2..<4] mean 10, edge [.., 4..<5] mean 5.
    let w = matrix([[1, 1, 10, 10, 4], [1, 1, 10, 10, 6]])
    expectMask(try Magnitude.mask(for: w, pattern: .block(rows: 2, columns: 2), sparsityLevel: 0.67), equals: [[0, 0, 1, 1, 0], [0, 0, 1, 1, 0]])
  }

  @Test func rowsAndColumnsByMeanScore() throws {
    let w = matrix([[1, 2, 3], [-9, 0, 0], [0.5, 0.5, 0.1]])
    expectMask(try Magnitude.mask(for: w, pattern: .rows, sparsityLevel: 0.34), equals: [[1, 1, 1], [1, 1, 1], [0, 0, 0]])
    expectMask(try Magnitude.mask(for: w, pattern: .columns, sparsityLevel: 0.67), equals: [[1, 0, 0], [1, 0, 0], [1, 0, 0]])
  }

  @Test func globalRanksAcrossTensors() throws {
    let a = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    let b = Tensor([0.5, 10, 0.7, 20, 30, 40] as [Float], shape: [2, 3])
    let masks = try Magnitude.globalMasks(for: [a, b], sparsityLevel: 0.5)
    // Ten elements, five pruned: 0.5, 0.7, 1, 2, 3.
    expectMask(masks[0], equals: [[0, 0], [0, 1]])
    expectMask(masks[1], equals: [[0, 1, 0], [1, 1, 1]])
  }

  @Test(arguments: [-0.1, 1.5, Double.nan, Double.infinity])
  func invalidLevelsThrow(level: Double) {
    #expect(throws: PruningError.self) {
      try Mask(scores: randomMatrix(2, 4, seed: 1), pattern: .unstructured, sparsityLevel: level)
    }
  }

  @Test func rowScopeOnlyForUnstructured() {
    #expect(throws: PruningError.self) {
      try Mask(scores: randomMatrix(2, 4, seed: 1), pattern: .twoFour, sparsityLevel: 1, scope: .row)
    }
  }

  @Test func nonFiniteWeightsAreRejectedWithTheirIndex() {
    let w = Tensor([1, 2, .nan, 4] as [Float], shape: [1, 4])
    #expect(throws: PruningError.nonFiniteValue(tensor: "w", index: 2)) {
      try Magnitude.mask(for: w, pattern: .twoFour, name: "w")
    }
  }

  @Test func prunedCellCountFloorsWithAllowance() {
    #expect(Mask.prunedCellCount(sparsityLevel: 0.29, cells: 100) == 29)
    #expect(Mask.prunedCellCount(sparsityLevel: 0.5, cells: 5) == 2)
    #expect(Mask.prunedCellCount(sparsityLevel: 1, cells: 7) == 7)
    #expect(Mask.prunedCellCount(sparsityLevel: 0.999, cells: 7) == 6)
  }
}

import SparsityCore
import SparsityFormats

/// Which elements compete with each other when the lowest scores are pruned.
public enum ComparisonScope: String, Sendable, Hashable, Codable, CaseIterable {
  /// One ranking per tensor (layer-wise pruning).
  case layer
  /// One ranking per row (output channel): every row reaches the same sparsity. This is
  /// Wanda's comparison group.
  case row
  /// One ranking across every tensor pruned together (global magnitude pruning).
  case global
}

extension Mask {
  /// The mask that keeps the highest-scoring elements of `scores` so that the result follows
  /// `pattern` at `sparsityLevel`.
  ///
  /// ```swift
  /// let mask = try Mask(scores: weight.abs(), pattern: .twoFour, sparsityLevel: 1)   // 2:4 magnitude
  /// let half = try Mask(scores: weight.abs(), pattern: .unstructured, sparsityLevel: 0.5, scope: .row)
  /// ```
  ///
  /// The meaning of `sparsityLevel` (0 … 1) depends on the pattern, as in PyTorch's
  /// `WeightNormSparsifier`; `count` below is ⌊level · cells⌋ (see ``prunedCellCount(sparsityLevel:cells:)``):
  ///
  /// | pattern | cells | what is pruned |
  /// |---|---|---|
  /// | `unstructured`, scope `.layer` | elements | the `count` lowest scores |
  /// | `unstructured`, scope `.row` | elements of each row | the `count` lowest of every row |
  /// | `block:RxC` | R×C blocks (ragged edge blocks included) | the `count` blocks with the lowest mean score |
  /// | `rows` / `columns` | rows / columns | the `count` with the lowest mean score |
  /// | `N:M`, `N:RxC` | groups of M along a row / R×C blocks | the `count` groups with the lowest mean score are made N:M: each keeps its N highest scores (a ragged group of L ≤ N elements keeps all) |
  ///
  /// So a level of 1 makes every group N:M and the mask conforms to the N:M pattern; a smaller
  /// level ramps N:M in gradually (a schedule's "fraction of groups"). The tensor is viewed as
  /// the matrix `[count / last, last]` of ``SparsityPattern``.
  ///
  /// **Ties** break deterministically: a lower score is pruned first; on equal scores the
  /// lower flat index (for cells: the lower row-major cell index) is pruned first; NaN is
  /// pruned last.
  ///
  /// - Parameters:
  ///   - scores: importance of each element (any numeric dtype); higher is kept.
  ///   - pattern: where zeros may be.
  ///   - sparsityLevel: fraction of cells pruned, in 0 … 1.
  ///   - scope: `.layer` or `.row` (`.row` applies to `unstructured` only; use
  ///     ``globalMasks(scores:sparsityLevel:names:)`` for `.global`).
  ///   - name: the tensor's name, for error messages.
  /// - Throws: ``PruningError`` for a level outside 0 … 1, an invalid pattern, or a scope that
  ///   does not apply.
  /// - Complexity: O(n log n) for n elements (one sort of the elements or of the cells).
  public init(
    scores: Tensor, pattern: SparsityPattern, sparsityLevel: Double, scope: ComparisonScope = .layer,
    name: String? = nil
  ) throws(PruningError) {
    try Mask.checkLevel(sparsityLevel, tensor: name)
    do { _ = try pattern.validated() } catch {
      throw .unsupportedPattern(tensor: name, method: "mask selection", pattern: pattern, rule: error.rule)
    }
    switch scope {
    case .layer: break
    case .row:
      guard pattern == .unstructured else {
        throw .unsupportedPattern(
          tensor: name, method: "row-scoped selection", pattern: pattern,
          rule: "the row scope applies to unstructured sparsity only")
      }
    case .global:
      throw .invalidOption(name: "scope", rule: "global selection spans several tensors: use Mask.globalMasks")
    }
    let (rows, columns) = Mask.matrixView(scores.shape)
    let values = scores.doubleValues
    let keep = values.withUnsafeBufferPointer { s in
      MaskSelection.keepFlags(
        scores: s, rows: rows, columns: columns, pattern: pattern, level: sparsityLevel, scope: scope)
    }
    self.init(Tensor(keep, shape: scores.shape))
  }

  /// Unstructured masks for several tensors ranked together (global magnitude pruning): the
  /// ⌊level · total⌋ lowest scores over all tensors are pruned.
  ///
  /// Ties break by tensor order, then by flat index (lower first).
  ///
  /// ```swift
  /// let masks = try Mask.globalMasks(scores: weights.map { $0.abs() }, sparsityLevel: 0.8)
  /// ```
  public static func globalMasks(scores: [Tensor], sparsityLevel: Double, names: [String]? = nil) throws(PruningError)
    -> [Mask]
  {
    try checkLevel(sparsityLevel, tensor: nil)
    var all: [Double] = []
    all.reserveCapacity(scores.reduce(0) { $0 + $1.count })
    for s in scores { all += s.doubleValues }
    let pruned = all.withUnsafeBufferPointer { Ranking.lowest(Ranking.prunedCount(sparsityLevel, of: $0.count), of: $0) }
    var keep = [Bool](repeating: true, count: all.count)
    for i in pruned { keep[i] = false }
    var masks: [Mask] = []
    var offset = 0
    for s in scores {
      masks.append(Mask(Tensor(Array(keep[offset..<offset + s.count]), shape: s.shape)))
      offset += s.count
    }
    return masks
  }

  /// ⌊level · cells⌋, the number of cells a level prunes, computed with a 1e-9 allowance so
  /// that decimal levels that are not exact in binary count as written (0.29 · 100 → 29).
  public static func prunedCellCount(sparsityLevel: Double, cells: Int) -> Int {
    Ranking.prunedCount(sparsityLevel, of: cells)
  }

  static func checkLevel(_ level: Double, tensor: String?) throws(PruningError) {
    guard level.isFinite, level >= 0, level <= 1 else {
      throw .invalidSparsity(tensor: tensor, value: level, rule: "must be a number from 0 to 1")
    }
  }

  /// The matrix view `[count / last, last]` patterns are defined on.
  static func matrixView(_ shape: [Int]) -> (rows: Int, columns: Int) {
    guard let last = shape.last else { return (1, 1) }
    return (last == 0 ? 0 : Tensor.elementCount(shape) / last, last)
  }
}

/// The selection rules behind ``Mask/init(scores:pattern:sparsityLevel:scope:name:)``, on raw
/// buffers.
enum MaskSelection {
  /// Keep flags (row-major) for `scores` viewed as `[rows, columns]`.
  static func keepFlags(
    scores: UnsafeBufferPointer<Double>, rows: Int, columns: Int, pattern: SparsityPattern, level: Double,
    scope: ComparisonScope
  ) -> [Bool] {
    var keep = [Bool](repeating: true, count: rows * columns)
    guard rows > 0, columns > 0 else { return keep }
    keep.withUnsafeMutableBufferPointer { keep in
      switch pattern {
      case .unstructured:
        if scope == .row {
          let k = Ranking.prunedCount(level, of: columns)
          let out = UncheckedPointer(keep.baseAddress!)
          Parallel.forEachRange(rows, minimumChunk: 64) { range in
            for r in range {
              let row = UnsafeBufferPointer(rebasing: scores[(r * columns)..<((r + 1) * columns)])
              for c in Ranking.lowest(k, of: row) { out.pointer[r * columns + c] = false }
            }
          }
        } else {
          for i in Ranking.lowest(Ranking.prunedCount(level, of: scores.count), of: scores) { keep[i] = false }
        }
      case let .block(r, c):
        pruneCells(scores, rows, columns, cellRows: r, cellColumns: c, level: level, keepInCell: 0, keep)
      case .rows:
        pruneCells(scores, rows, columns, cellRows: 1, cellColumns: columns, level: level, keepInCell: 0, keep)
      case .columns:
        pruneCells(scores, rows, columns, cellRows: rows, cellColumns: 1, level: level, keepInCell: 0, keep)
      case let .nOfM(n, m):
        pruneCells(scores, rows, columns, cellRows: 1, cellColumns: m, level: level, keepInCell: n, keep)
      case let .nOfMInBlocks(n, r, c):
        pruneCells(scores, rows, columns, cellRows: r, cellColumns: c, level: level, keepInCell: n, keep)
      }
    }
    return keep
  }

  /// Ranks the `cellRows × cellColumns` cells by mean score and prunes the lowest
  /// ⌊level · cells⌋ of them: entirely (`keepInCell == 0`) or down to their `keepInCell`
  /// highest scores.
  static func pruneCells(
    _ scores: UnsafeBufferPointer<Double>, _ rows: Int, _ columns: Int, cellRows: Int, cellColumns: Int,
    level: Double, keepInCell: Int, _ keep: UnsafeMutableBufferPointer<Bool>
  ) {
    let gridRows = (rows + cellRows - 1) / cellRows
    let gridColumns = (columns + cellColumns - 1) / cellColumns
    let cellCount = gridRows * gridColumns
    let selectedCount = Ranking.prunedCount(level, of: cellCount)
    if selectedCount == 0 { return }
    func bounds(_ cell: Int) -> (Range<Int>, Range<Int>) {
      let r0 = (cell / gridColumns) * cellRows
      let c0 = (cell % gridColumns) * cellColumns
      return (r0..<Swift.min(r0 + cellRows, rows), c0..<Swift.min(c0 + cellColumns, columns))
    }
    var selected: [Int]
    if selectedCount == cellCount {
      selected = Array(0..<cellCount)
    } else {
      var means = [Double](repeating: 0, count: cellCount)
      for cell in 0..<cellCount {
        let (rr, cc) = bounds(cell)
        var sum = 0.0
        for r in rr { for c in cc { sum += scores[r * columns + c] } }
        means[cell] = sum / Double(rr.count * cc.count)
      }
      selected = means.withUnsafeBufferPointer { Ranking.lowest(selectedCount, of: $0) }
    }
    if keepInCell == 0 {
      for cell in selected {
        let (rr, cc) = bounds(cell)
        for r in rr { for c in cc { keep[r * columns + c] = false } }
      }
      return
    }
    let cellSize = cellRows * cellColumns
    selected.sort()
    let out = UncheckedPointer(keep.baseAddress!)
    selected.withUnsafeBufferPointer { selected in
      Parallel.forEachRange(selected.count, minimumChunk: 4096) { range in
        withUnsafeTemporaryAllocation(of: Int.self, capacity: cellSize) { scratch in
          for s in range {
            let (rr, cc) = bounds(selected[s])
            var n = 0
            for r in rr { for c in cc { scratch[n] = r * columns + c; n += 1 } }
            let prune = n - Swift.min(keepInCell, n)
            if prune == 0 { continue }
            Ranking.sortPositions(scratch, count: n, scores: scores)
            for i in 0..<prune { out.pointer[scratch[i]] = false }
          }
        }
      }
    }
  }
}

/// A raw pointer handed to concurrent workers that write disjoint elements.
struct UncheckedPointer<T>: @unchecked Sendable {
  let pointer: UnsafeMutablePointer<T>
  init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

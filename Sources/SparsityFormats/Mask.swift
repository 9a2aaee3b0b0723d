import SparsityCore

/// Which elements of a weight are kept: a `bool` tensor, `true` = kept.
///
/// ```swift
/// let mask = Mask(nonzerosOf: weight)
/// mask.conforms(to: .twoFour)          // is the weight 2:4 sparse?
/// mask.firstViolation(of: .twoFour)    // where it is not
/// let pruned = weight.masked(by: mask.tensor)
/// ```
public struct Mask: Sendable, Equatable {
  /// The `bool` tensor.
  public let tensor: Tensor

  /// Wraps a `bool` tensor.
  ///
  /// - Precondition: `tensor.dtype == .bool`.
  public init(_ tensor: Tensor) {
    precondition(tensor.dtype == .bool, "a mask is a bool tensor, got \(tensor.dtype)")
    self.tensor = tensor
  }

  /// The mask of a tensor's nonzero elements (`-0.0` counts as zero).
  public init(nonzerosOf tensor: Tensor) { self.tensor = tensor.nonzeroMask }

  /// A mask with every element `value`.
  public init(repeating value: Bool, shape: [Int]) {
    self.tensor = Tensor(repeating: value, shape: shape)
  }

  public var shape: [Int] { tensor.shape }

  /// Number of kept elements.
  public var keptCount: Int { tensor.withUnsafeBufferPointer(as: Bool.self) { $0.count { $0 } } }

  /// Fraction of elements not kept (0 for an empty mask).
  public var sparsity: Double {
    tensor.count == 0 ? 0 : 1 - Double(keptCount) / Double(tensor.count)
  }

  /// The matrix view `[rows, columns]` that patterns are defined on.
  public var matrixShape: (rows: Int, columns: Int) { Mask.matrixShape(of: shape) }

  static func matrixShape(of shape: [Int]) -> (rows: Int, columns: Int) {
    guard let last = shape.last else { return (1, 1) }
    return (last == 0 ? 0 : Tensor.elementCount(shape) / last, last)
  }

  /// Whether the kept elements obey `pattern`.
  public func conforms(to pattern: SparsityPattern) -> Bool { firstViolation(of: pattern) == nil }

  /// The first group or block (row-major order) that breaks `pattern`, or `nil`.
  public func firstViolation(of pattern: SparsityPattern) -> PatternViolation? {
    var found: PatternViolation?
    forEachCell(of: pattern) { rows, columns, kept, limit in
      if !limit.allows(kept: kept, size: rows.count * columns.count) {
        found = PatternViolation(rows: rows, columns: columns, kept: kept, limit: limit)
        return false
      }
      return true
    }
    return found
  }

  /// How the mask sits on `pattern`'s groups or blocks.
  public func statistics(for pattern: SparsityPattern) -> PatternStatistics {
    var stats = PatternStatistics(pattern: pattern)
    forEachCell(of: pattern) { rows, columns, kept, limit in
      let size = rows.count * columns.count
      stats.cells += 1
      if kept == 0 { stats.emptyCells += 1 }
      if !limit.allows(kept: kept, size: size) { stats.violatingCells += 1 }
      stats.maximumKept = Swift.max(stats.maximumKept, kept)
      return true
    }
    return stats
  }

  /// Visits the cells (groups, blocks, rows or columns) of `pattern` with their kept count;
  /// stops when `body` returns false. Unstructured patterns have no cells.
  func forEachCell(
    of pattern: SparsityPattern,
    _ body: (Range<Int>, Range<Int>, Int, PatternViolation.Limit) -> Bool
  ) {
    let (rows, columns) = matrixShape
    guard rows > 0, columns > 0 else { return }
    tensor.withUnsafeBufferPointer(as: Bool.self) { keep in
      func count(_ rr: Range<Int>, _ cc: Range<Int>) -> Int {
        var n = 0
        for r in rr {
          let base = r * columns
          for c in cc where keep[base + c] { n += 1 }
        }
        return n
      }
      func blocks(_ br: Int, _ bc: Int, _ limit: PatternViolation.Limit) {
        for r0 in stride(from: 0, to: rows, by: br) {
          for c0 in stride(from: 0, to: columns, by: bc) {
            let rr = r0..<Swift.min(r0 + br, rows)
            let cc = c0..<Swift.min(c0 + bc, columns)
            if !body(rr, cc, count(rr, cc), limit) { return }
          }
        }
      }
      switch pattern {
      case .unstructured:
        return
      case let .nOfM(n, m):
        blocks(1, m, .atMost(n))
      case let .block(r, c):
        blocks(r, c, .allOrNothing)
      case .rows:
        blocks(1, columns, .allOrNothing)
      case .columns:
        for c in 0..<columns {
          if !body(0..<rows, c..<c + 1, count(0..<rows, c..<c + 1), .allOrNothing) { return }
        }
      case let .nOfMInBlocks(n, r, c):
        blocks(r, c, .atMost(n))
      }
    }
  }
}

/// A group or block that breaks a pattern.
public struct PatternViolation: Equatable, Sendable, CustomStringConvertible {
  /// What a cell of a pattern may hold.
  public enum Limit: Equatable, Sendable {
    /// At most this many kept elements.
    case atMost(Int)
    /// Either none or all of its elements kept.
    case allOrNothing

    func allows(kept: Int, size: Int) -> Bool {
      switch self {
      case let .atMost(n): kept <= n
      case .allOrNothing: kept == 0 || kept == size
      }
    }
  }

  public var rows: Range<Int>
  public var columns: Range<Int>
  /// Kept (nonzero) elements in the cell.
  public var kept: Int
  public var limit: Limit

  public var description: String {
    let where_ =
      rows.count == 1
      ? "row \(rows.lowerBound)" : "rows \(rows.lowerBound)..<\(rows.upperBound)"
    let rule: String
    switch limit {
    case let .atMost(n): rule = "at most \(n) allowed"
    case .allOrNothing: rule = "must be all zero or all nonzero"
    }
    return
      "\(where_), columns \(columns.lowerBound)..<\(columns.upperBound) hold \(kept) nonzeros of \(rows.count * columns.count) (\(rule))"
  }

  /// The format error for this violation in tensor `name`.
  public func error(tensor name: String, pattern: SparsityPattern) -> SparseFormatError {
    switch limit {
    case let .atMost(n):
      .patternViolation(
        tensor: name, pattern: pattern.description, rows: rows, columns: columns, nonzeros: kept,
        allowed: n)
    case .allOrNothing:
      .partialBlock(
        tensor: name, pattern: pattern.description, rows: rows, columns: columns, nonzeros: kept,
        size: rows.count * columns.count)
    }
  }
}

/// How a mask sits on a pattern's cells (its N:M groups, blocks, rows or columns).
public struct PatternStatistics: Equatable, Sendable {
  public var pattern: SparsityPattern
  /// Number of cells (0 for unstructured).
  public var cells = 0
  /// Cells with no kept element.
  public var emptyCells = 0
  /// Cells that break the pattern.
  public var violatingCells = 0
  /// The most kept elements in one cell.
  public var maximumKept = 0

  public init(pattern: SparsityPattern) { self.pattern = pattern }

  /// Whether every cell obeys the pattern.
  public var conforms: Bool { violatingCells == 0 }
  /// Fraction of cells that are entirely zero (block sparsity for block patterns).
  public var emptyFraction: Double { cells == 0 ? 0 : Double(emptyCells) / Double(cells) }
}

extension Tensor {
  /// Whether the nonzeros of this tensor obey `pattern`.
  public func conforms(to pattern: SparsityPattern) -> Bool {
    Mask(nonzerosOf: self).conforms(to: pattern)
  }
}

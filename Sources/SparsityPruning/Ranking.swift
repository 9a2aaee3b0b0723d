/// The one ordering every pruning decision in this module uses.
///
/// Elements (or blocks, groups, rows) are pruned in *ranking order*: a lower score is pruned
/// first; on equal scores the lower index (flat row-major index, or block index in row-major
/// block order) is pruned first; NaN ranks above every number, so it is pruned last. The
/// order is total, so every selection is the same on every run and machine.
enum Ranking {
  /// Whether `(a, i)` is pruned before `(b, j)`.
  @inline(__always)
  static func prunedBefore(_ a: Double, _ i: Int, _ b: Double, _ j: Int) -> Bool {
    if a < b { return true }
    if b < a { return false }
    if a == b { return i < j }
    // At least one NaN.
    if a.isNaN && b.isNaN { return i < j }
    return b.isNaN
  }

  /// The indices `0..<scores.count` of the `count` lowest scores, in ranking order.
  static func lowest(_ count: Int, of scores: UnsafeBufferPointer<Double>) -> [Int] {
    let n = scores.count
    let k = Swift.max(0, Swift.min(count, n))
    if k == 0 { return [] }
    var order = Array(0..<n)
    order.sort { prunedBefore(scores[$0], $0, scores[$1], $1) }
    return Array(order.prefix(k))
  }

  /// Sorts the first `count` entries of `indices` (positions into `scores`) in ranking order;
  /// by insertion for the few elements of an N:M group, by introsort for big blocks.
  @inline(__always)
  static func sortPositions(_ indices: UnsafeMutableBufferPointer<Int>, count: Int, scores: UnsafeBufferPointer<Double>) {
    if count < 2 { return }
    if count > 32 {
      var head = UnsafeMutableBufferPointer(rebasing: indices[0..<count])
      head.sort { prunedBefore(scores[$0], $0, scores[$1], $1) }
      return
    }
    for a in 1..<count {
      let x = indices[a]
      let sx = scores[x]
      var b = a - 1
      while b >= 0 && prunedBefore(sx, x, scores[indices[b]], indices[b]) {
        indices[b + 1] = indices[b]
        b -= 1
      }
      indices[b + 1] = x
    }
  }

  /// The number of cells pruned at `sparsity`: ⌊sparsity · cells⌋, computed with a 1e-9
  /// allowance so that decimal levels that are not exact in binary (0.29 · 100) count as
  /// written; clamped to `0...cells`.
  static func prunedCount(_ sparsity: Double, of cells: Int) -> Int {
    let raw = (sparsity * Double(cells) + 1e-9).rounded(.down)
    return Swift.max(0, Swift.min(cells, Int(raw)))
  }
}

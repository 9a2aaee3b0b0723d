import SparsityCore
import SparsityFormats

/// The element norm ``WeightNorm`` ranks blocks by.
public enum BlockNorm: Int, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
  /// `|w|`.
  case l1 = 1
  /// `w²` (PyTorch's default).
  case l2 = 2

  /// The norm with index `p` (1 or 2).
  ///
  /// - Throws: ``PruningError/unsupportedNorm(_:)`` ("L-3 is not yet implemented.") otherwise.
  public init(p: Int) throws(PruningError) {
    guard let norm = BlockNorm(rawValue: p) else { throw .unsupportedNorm(p) }
    self = norm
  }

  public var description: String { "L\(rawValue)" }

  @inline(__always) func apply(_ w: Double) -> Double {
    switch self {
    case .l1: Swift.abs(w)
    case .l2: w * w
    }
  }
}

/// PyTorch's `torch.ao.pruning.WeightNormSparsifier`, reproduced exactly, minus its two bugs.
///
/// ```swift
/// // 2:4 by magnitude, as PyTorch's WeightNormSparsifier(1.0, (1, 4), 2) computes it:
/// let mask = try WeightNorm.mask(for: weight, sparsityLevel: 1, blockRows: 1, blockColumns: 4, zerosPerBlock: 2)
/// ```
///
/// With `V = blockRows · blockColumns` and `z = zerosPerBlock` (default `V`):
/// 1. `z > V` and `z < 0` throw PyTorch's `ValueError` texts.
/// 2. `level ≤ 0` or `z == 0`: everything is kept. `level ≥ 1` and `z == V`: nothing is.
/// 3. Otherwise, with `A = |W|` (L1) or `W²` (L2):
///    - the **tensor mask** `T` ranks the blocks (origin at `[0, 0]`; edge blocks cut by the
///      matrix edge included) by the *mean* of `A` over their in-bounds elements
///      (`avg_pool2d(ceil_mode=True)`), and prunes the `k` lowest, where
///      `k = round(level · blocks)` with Python's half-to-even rounding, clamped to
///      `0 … blocks − 1` (so `level = 0.99` with 8 blocks prunes 7); `level ≥ 1` prunes all;
///    - if `z < V`, the **block mask** `B` prunes, inside every block, the `z` elements with
///      the smallest `A` (all in-bounds ones when an edge block holds fewer than `z`);
///    - the result keeps `T ∨ B` (just `T` when `z == V`): an element is pruned when its block
///      is among the `k` lowest *and* it is among the `z` smallest of its block.
///
/// Differences from PyTorch, both bug fixes: the mask is always `bool` (PyTorch's changes
/// dtype between paths and then breaks `squash_mask` for f16/bf16 weights), and `B` is cropped
/// to the matrix before the OR, so shapes that blocks do not divide work (PyTorch raises a
/// size mismatch there). Ties, which PyTorch leaves to `torch.topk`, break by the rule of
/// ``Mask/init(scores:pattern:sparsityLevel:scope:name:)``: lower flat (or block) index first.
///
/// Scores are computed in `Double`. Tensors of rank other than 2 use the matrix view
/// `[count / last, last]` of ``SparsityPattern``.
public enum WeightNorm {
  /// The mask PyTorch's `WeightNormSparsifier.update_mask` computes for `weight` (already
  /// multiplied by its current mask, as PyTorch's parametrized weight is).
  ///
  /// - Parameters:
  ///   - weight: a floating-point tensor.
  ///   - sparsityLevel: fraction of blocks pruned (`sparsity_level`).
  ///   - blockRows: block extent along rows (output channels), `sparse_block_shape[0]`.
  ///   - blockColumns: block extent along columns (input channels), `sparse_block_shape[1]`.
  ///   - zerosPerBlock: `zeros_per_block`; `nil` means the whole block.
  ///   - norm: `.l2` (default) or `.l1`.
  /// - Throws: ``PruningError`` with PyTorch's texts for a bad `zerosPerBlock`; for a NaN
  ///   level, block extents below 1, or a non-floating-point weight.
  /// - Complexity: O(n + b log b) for n elements in b blocks.
  public static func mask(
    for weight: Tensor, sparsityLevel: Double, blockRows: Int, blockColumns: Int, zerosPerBlock: Int? = nil,
    norm: BlockNorm = .l2, name: String = "weight"
  ) throws(PruningError) -> Mask {
    guard blockRows >= 1, blockColumns >= 1 else {
      throw .invalidOption(name: "sparse_block_shape", rule: "block extents must be at least 1, got \(blockRows)x\(blockColumns)")
    }
    let valuesPerBlock = blockRows * blockColumns
    let zeros = zerosPerBlock ?? valuesPerBlock
    if zeros > valuesPerBlock { throw .zerosPerBlockTooLarge }
    if zeros < 0 { throw .zerosPerBlockNegative }
    guard !sparsityLevel.isNaN else {
      throw .invalidSparsity(tensor: name, value: sparsityLevel, rule: "the sparsity level is not a number")
    }
    guard weight.dtype.isFloatingPoint, weight.dtype.isNumeric else {
      throw .unsupportedTensor(tensor: name, shape: weight.shape, dtype: weight.dtype, rule: "weight-norm pruning needs a floating-point tensor")
    }
    if sparsityLevel <= 0 || zeros == 0 { return Mask(repeating: true, shape: weight.shape) }
    if sparsityLevel >= 1 && zeros == valuesPerBlock { return Mask(repeating: false, shape: weight.shape) }

    let (rows, columns) = Mask.matrixView(weight.shape)
    var scores = weight.doubleValues
    for i in scores.indices { scores[i] = norm.apply(scores[i]) }
    let gridRows = (rows + blockRows - 1) / blockRows
    let gridColumns = (columns + blockColumns - 1) / blockColumns
    let blockCount = gridRows * gridColumns
    func bounds(_ block: Int) -> (Range<Int>, Range<Int>) {
      let r0 = (block / gridColumns) * blockRows
      let c0 = (block % gridColumns) * blockColumns
      return (r0..<Swift.min(r0 + blockRows, rows), c0..<Swift.min(c0 + blockColumns, columns))
    }

    // Tensor-level mask T: whole blocks, by mean score.
    var blockSelected = [Bool](repeating: false, count: blockCount)
    if sparsityLevel >= 1 {
      blockSelected = [Bool](repeating: true, count: blockCount)
    } else if blockCount > 0 {
      var means = [Double](repeating: 0, count: blockCount)
      for b in 0..<blockCount {
        let (rr, cc) = bounds(b)
        var sum = 0.0
        for r in rr { for c in cc { sum += scores[r * columns + c] } }
        means[b] = sum / Double(rr.count * cc.count)
      }
      let k = Swift.max(0, Swift.min(blockCount - 1, Int((sparsityLevel * Double(blockCount)).rounded(.toNearestOrEven))))
      for b in means.withUnsafeBufferPointer({ Ranking.lowest(k, of: $0) }) { blockSelected[b] = true }
    }

    // Pruned = selected block ∧ among the z smallest of the block (all of it when z == V).
    var keep = [Bool](repeating: true, count: rows * columns)
    scores.withUnsafeBufferPointer { scores in
      withUnsafeTemporaryAllocation(of: Int.self, capacity: valuesPerBlock) { scratch in
        for b in 0..<blockCount where blockSelected[b] {
          let (rr, cc) = bounds(b)
          var n = 0
          for r in rr { for c in cc { scratch[n] = r * columns + c; n += 1 } }
          let prune = Swift.min(zeros, n)
          if prune < n { Ranking.sortPositions(scratch, count: n, scores: scores) }
          for i in 0..<prune { keep[scratch[i]] = false }
        }
      }
    }
    return Mask(Tensor(keep, shape: weight.shape))
  }
}

import SparsityCore
import SparsityFormats

/// The knobs of ``SparseGPT``.
public struct SparseGPTOptions: Sendable, Hashable, Codable {
  /// `percdamp`: `dampening · mean(diag H)` is added to the Hessian's diagonal (default 0.01).
  /// If `H` is still not positive definite the dampening is raised tenfold, up to three times.
  public var dampening: Double
  /// `B`: columns per lazy-update block, also the block over which unstructured masks are
  /// chosen (default 128; rounded down to a multiple of M for N:M).
  public var blockSize: Int

  /// The reference's defaults: dampening 0.01, blocks of 128 columns.
  public init(dampening: Double = 0.01, blockSize: Int = 128) {
    self.dampening = dampening
    self.blockSize = blockSize
  }
}

/// SparseGPT (Frantar & Alistarh 2023): prune a layer and update its remaining weights so that
/// its outputs on calibration inputs change as little as possible.
///
/// ```swift
/// let stats = try LayerInputStatistics(inputs: x)          // x: [tokens, in]
/// let result = try SparseGPT.prune(weight: w, hessian: stats.hessian(), pattern: .twoFour)
/// // result.weight is W with zeros and updated survivors; result.mask says which are kept
/// ```
///
/// The algorithm follows the reference code (`sparsegpt.py`, `fasterprune`):
/// 1. `H = (2/n) XᵀX`; an input that is always zero (`H_jj = 0`) gets `H_jj = 1`; then
///    `H += dampening · mean(diag H) · I`.
/// 2. `U` is the upper Cholesky factor of `H⁻¹` (`UᵀU = H⁻¹`), in `Double`.
/// 3. Columns are processed left to right in blocks of `B`. For unstructured sparsity the mask
///    of a whole block (all rows × `B` columns) is chosen at the block's start from the
///    saliency `w² / U_jj²` of the current (already updated) weights. For N:M it is chosen
///    every M columns, per row, from the same saliency.
/// 4. Each column `j`: `q = w` where kept, 0 where pruned; `err = (w − q) / U_jj`;
///    `W[:, j:] −= err ⊗ U[j, j:]` inside the block; after the block, the remaining columns get
///    the batched update `W[:, i2:] −= Err · U[i1:i2, i2:]`.
///
/// Differences from the reference, all deliberate: the mask holds exactly the requested count
/// (the reference's `score <= threshold` prunes one extra element per block, and more on ties;
/// here each block prunes ⌊level · rows · i2⌋ − ⌊level · rows · i1⌋ by the package's tie
/// rule, so the whole layer prunes exactly ⌊level · numel⌋); weights of always-zero inputs are
/// not zeroed unless the mask prunes them; a Hessian that is not positive definite is retried
/// with more dampening. Patterns other than unstructured and N:M (blocks, rows, columns,
/// N-in-blocks) get their mask once, up front, from the initial saliency by the rules of
/// ``Mask/init(scores:pattern:sparsityLevel:scope:name:)``, followed by the same updates.
///
/// - Complexity: O(in³) for the factorization plus O(out · in²) for the updates; rows run in
///   parallel.
public enum SparseGPT {
  /// A pruned weight and its mask.
  public struct Result: Sendable {
    /// The pruned, updated weight, in the input weight's dtype.
    public var weight: Tensor
    /// The kept positions.
    public var mask: Mask
    /// The dampening fraction that made `H` positive definite.
    public var dampening: Double
  }

  /// Prunes `weight` (`[out, in]`) given the Hessian of its layer's inputs (`[in, in]`,
  /// row-major, as ``LayerInputStatistics/hessian()`` computes it).
  ///
  /// - Parameters:
  ///   - sparsityLevel: unstructured: fraction of elements pruned; N:M: must be 1 (every
  ///     group); other patterns: as in ``Mask/init(scores:pattern:sparsityLevel:scope:name:)``.
  ///   - scope: unstructured only: `.layer` (the reference: one ranking per block of columns
  ///     over all rows) or `.row` (every row prunes the same count in every block).
  ///   - fixedMask: use this mask instead of choosing one (only the weight updates run).
  /// - Throws: ``PruningError`` for shapes that do not match, non-finite weights, an N:M
  ///   level other than 1, or a Hessian that stays not positive definite.
  public static func prune(
    weight: Tensor, hessian: [Double], pattern: SparsityPattern, sparsityLevel: Double = 1,
    scope: ComparisonScope = .layer, options: SparseGPTOptions = SparseGPTOptions(), fixedMask: Mask? = nil,
    name: String = "weight"
  ) throws(PruningError) -> Result {
    let (rows, columns) = Mask.matrixView(weight.shape)
    guard hessian.count == columns * columns else {
      throw .calibrationShape(
        tensor: name, inputShape: [hessian.count], weightShape: weight.shape, rule: "the Hessian must be [in, in]")
    }
    try Mask.checkLevel(sparsityLevel, tensor: name)
    guard options.blockSize >= 1 else { throw .invalidOption(name: "blockSize", rule: "must be at least 1") }
    guard options.dampening.isFinite, options.dampening >= 0 else {
      throw .invalidOption(name: "dampening", rule: "must be a finite number ≥ 0")
    }
    if scope == .global {
      throw .invalidOption(name: "scope", rule: "SparseGPT prunes layer by layer; the global scope does not apply")
    }
    do { _ = try pattern.validated() } catch {
      throw .unsupportedPattern(tensor: name, method: "sparsegpt", pattern: pattern, rule: error.rule)
    }
    if case .nOfM = pattern, sparsityLevel != 1, fixedMask == nil {
      throw .unsupportedPattern(
        tensor: name, method: "sparsegpt", pattern: pattern, rule: "it makes every group N:M; the sparsity level must be 1")
    }
    if let fixedMask, fixedMask.shape != weight.shape {
      throw .invalidOption(name: "fixedMask", rule: "mask shape \(fixedMask.shape) differs from weight \(weight.shape)")
    }
    var w = try Magnitude.finiteValues(weight, name: name)

    // Hessian: dead inputs, dampening, factor of the inverse.
    var h = hessian
    var diagonalSum = 0.0
    for j in 0..<columns {
      if h[j * columns + j] == 0 { h[j * columns + j] = 1 }
      diagonalSum += h[j * columns + j]
    }
    let mean = columns == 0 ? 0 : diagonalSum / Double(columns)
    var dampening = options.dampening
    var factor: [Double]? = nil
    for attempt in 0..<4 {
      if attempt > 0 { dampening = Swift.max(dampening * 10, 1e-6) }
      var damped = h
      for j in 0..<columns { damped[j * columns + j] += dampening * mean }
      factor = LinearAlgebra.upperCholeskyOfInverse(damped, n: columns)
      if factor != nil { break }
    }
    guard let u = factor else { throw .notPositiveDefinite(tensor: name, dampening: dampening) }

    var keep = [Bool](repeating: true, count: rows * columns)
    var mode = Mode.adaptive
    if let fixedMask {
      keep = fixedMask.tensor.scalars(as: Bool.self)
      mode = .fixed
    } else {
      switch pattern {
      case .unstructured: mode = .adaptive
      case let .nOfM(n, m): mode = .nOfM(n: n, m: m)
      default:
        // Up-front mask from the initial saliency w² / U_jj².
        var saliency = w
        for r in 0..<rows {
          for c in 0..<columns {
            let d = u[c * columns + c]
            saliency[r * columns + c] = w[r * columns + c] * w[r * columns + c] / (d * d)
          }
        }
        keep = saliency.withUnsafeBufferPointer {
          MaskSelection.keepFlags(
            scores: $0, rows: rows, columns: columns, pattern: pattern, level: sparsityLevel, scope: .layer)
        }
        mode = .fixed
      }
    }

    var block = options.blockSize
    if case let .nOfM(_, m) = mode { block = Swift.max(m, (block / m) * m) }
    sweep(
      weight: &w, keep: &keep, rows: rows, columns: columns, u: u, block: block, mode: mode, level: sparsityLevel,
      rowScope: scope == .row)
    let updated = Tensor(doubles: w, shape: weight.shape, dtype: weight.dtype)
    return Result(weight: updated, mask: Mask(Tensor(keep, shape: weight.shape)), dampening: dampening)
  }

  /// Prunes `weight` given its layer's calibration inputs `[tokens, in]`.
  public static func prune(
    weight: Tensor, inputs: Tensor, pattern: SparsityPattern, sparsityLevel: Double = 1,
    scope: ComparisonScope = .layer, options: SparseGPTOptions = SparseGPTOptions(), name: String = "weight"
  ) throws(PruningError) -> Result {
    let x = try CalibrationInputs.validated(inputs, weight: name, shape: weight.shape)
    let statistics = try LayerInputStatistics(inputs: x, name: name + CalibrationInputs.nameSuffix)
    return try prune(
      weight: weight, hessian: statistics.hessian(), pattern: pattern, sparsityLevel: sparsityLevel, scope: scope,
      options: options, name: name)
  }

  enum Mode {
    case adaptive
    case nOfM(n: Int, m: Int)
    case fixed
  }

  /// The column sweep of `fasterprune` over `weight` (`rows × columns`, updated in place),
  /// choosing or reading `keep`.
  static func sweep(
    weight: inout [Double], keep: inout [Bool], rows: Int, columns: Int, u: [Double], block: Int, mode: Mode,
    level: Double, rowScope: Bool
  ) {
    weight.withUnsafeMutableBufferPointer { w in
      keep.withUnsafeMutableBufferPointer { keep in
        u.withUnsafeBufferPointer { u in
          let wp = UncheckedPointer(w.baseAddress!)
          let kp = UncheckedPointer(keep.baseAddress!)
          let up = u.baseAddress!
          var i1 = 0
          while i1 < columns {
            let i2 = Swift.min(i1 + block, columns)
            let count = i2 - i1
            if case .adaptive = mode {
              chooseBlockMask(
                w: w, keep: keep, u: up, rows: rows, columns: columns, i1: i1, i2: i2, level: level, rowScope: rowScope)
            }
            Parallel.forEachRange(rows, minimumChunk: 8) { range in
              withUnsafeTemporaryAllocation(of: Double.self, capacity: count) { errors in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: 16) { scratch in
                  withUnsafeTemporaryAllocation(of: Double.self, capacity: 16) { groupScores in
                    for r in range {
                      let row = wp.pointer + r * columns
                      let rowKeep = kp.pointer + r * columns
                      for i in 0..<count {
                        let j = i1 + i
                        if case let .nOfM(n, m) = mode, j % m == 0 {
                          let size = Swift.min(m, columns - j)
                          let prune = size - Swift.min(n, size)
                          if prune > 0 {
                            for k in 0..<size {
                              let d = up[(j + k) * columns + j + k]
                              groupScores[k] = row[j + k] * row[j + k] / (d * d)
                              scratch[k] = k
                            }
                            Ranking.sortPositions(scratch, count: size, scores: UnsafeBufferPointer(groupScores))
                            for k in 0..<prune { rowKeep[j + scratch[k]] = false }
                          }
                        }
                        let value = row[j]
                        let q = rowKeep[j] ? value : 0
                        let diagonal = up[j * columns + j]
                        let err = (value - q) / diagonal
                        errors[i] = err
                        if err != 0 {
                          LinearAlgebra.subtractScaled(row + j + 1, up + j * columns + j + 1, err, i2 - j - 1)
                        }
                        row[j] = q
                      }
                      // Lazy batched update of the columns right of the block.
                      if i2 < columns {
                        for i in 0..<count where errors[i] != 0 {
                          LinearAlgebra.subtractScaled(row + i2, up + (i1 + i) * columns + i2, errors[i], columns - i2)
                        }
                      }
                    }
                  }
                }
              }
            }
            i1 = i2
          }
        }
      }
    }
  }

  /// Unstructured, adaptive: prunes the lowest saliencies `w² / U_jj²` of the block
  /// `[:, i1..<i2]`, so that the layer (or each row) has pruned exactly ⌊level · n⌋ elements
  /// of its first `i2` columns.
  static func chooseBlockMask(
    w: UnsafeMutableBufferPointer<Double>, keep: UnsafeMutableBufferPointer<Bool>, u: UnsafePointer<Double>, rows: Int,
    columns: Int, i1: Int, i2: Int, level: Double, rowScope: Bool
  ) {
    let count = i2 - i1
    var saliency = [Double](repeating: 0, count: rows * count)
    for r in 0..<rows {
      for i in 0..<count {
        let d = u[(i1 + i) * columns + i1 + i]
        let v = w[r * columns + i1 + i]
        saliency[r * count + i] = v * v / (d * d)
      }
    }
    saliency.withUnsafeBufferPointer { s in
      if rowScope {
        let quota = Ranking.prunedCount(level, of: i2) - Ranking.prunedCount(level, of: i1)
        for r in 0..<rows {
          let row = UnsafeBufferPointer(rebasing: s[(r * count)..<((r + 1) * count)])
          for i in Ranking.lowest(quota, of: row) { keep[r * columns + i1 + i] = false }
        }
      } else {
        let quota = Ranking.prunedCount(level, of: rows * i2) - Ranking.prunedCount(level, of: rows * i1)
        for flat in Ranking.lowest(quota, of: s) { keep[(flat / count) * columns + i1 + flat % count] = false }
      }
    }
  }
}

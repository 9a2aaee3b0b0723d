import SparsityCore
import SparsityFormats

/// Magnitude pruning: score `|W_ij|`, no data needed.
///
/// ```swift
/// let mask = try Magnitude.mask(for: weight, pattern: .twoFour)                           // 2:4
/// let rows = try Magnitude.mask(for: weight, pattern: .unstructured, sparsityLevel: 0.5, scope: .row)
/// let global = try Magnitude.globalMasks(for: [w1, w2], sparsityLevel: 0.8)
/// ```
public enum Magnitude {
  /// The mask that keeps the largest `|W|` under `pattern` (see
  /// ``Mask/init(scores:pattern:sparsityLevel:scope:name:)`` for the level's
  /// meaning per pattern and the tie rule).
  ///
  /// - Throws: ``PruningError`` for a non-finite weight, a level outside 0 … 1, or a scope
  ///   that does not apply.
  public static func mask(
    for weight: Tensor, pattern: SparsityPattern, sparsityLevel: Double = 1, scope: ComparisonScope = .layer,
    name: String = "weight"
  ) throws(PruningError) -> Mask {
    try Mask(scores: try scores(weight, name: name), pattern: pattern, sparsityLevel: sparsityLevel, scope: scope, name: name)
  }

  /// Unstructured masks ranked across several tensors together: the ⌊level · total⌋ smallest
  /// `|w|` of all of them are pruned (ties: tensor order, then flat index).
  public static func globalMasks(for weights: [Tensor], sparsityLevel: Double, names: [String]? = nil) throws(PruningError)
    -> [Mask]
  {
    var scored: [Tensor] = []
    for (i, w) in weights.enumerated() { scored.append(try scores(w, name: names?[i] ?? "weight \(i)")) }
    return try Mask.globalMasks(scores: scored, sparsityLevel: sparsityLevel, names: names)
  }

  /// `|W|` as `f64`, after checking that every element is finite.
  static func scores(_ weight: Tensor, name: String) throws(PruningError) -> Tensor {
    let values = try finiteValues(weight, name: name)
    return Tensor(values.map { Swift.abs($0) }, shape: weight.shape)
  }

  /// The elements of a floating-point weight as `Double`s.
  ///
  /// - Throws: ``PruningError/unsupportedTensor(tensor:shape:dtype:rule:)`` for a
  ///   non-floating-point tensor, ``PruningError/nonFiniteValue(tensor:index:)`` for NaN or ±∞.
  static func finiteValues(_ weight: Tensor, name: String) throws(PruningError) -> [Double] {
    guard weight.dtype.isFloatingPoint, weight.dtype.isNumeric else {
      throw .unsupportedTensor(
        tensor: name, shape: weight.shape, dtype: weight.dtype, rule: "pruning needs a floating-point tensor")
    }
    let values = weight.doubleValues
    if let bad = values.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteValue(tensor: name, index: bad) }
    return values
  }
}

/// Wanda (Sun et al. 2023): score `|W_ij| · ‖X_j‖₂`, compared within each output row; the
/// weights themselves are not changed.
///
/// ```swift
/// let stats = try LayerInputStatistics(inputs: x)                          // x: [tokens, in]
/// let mask = try Wanda.mask(for: weight, statistics: stats, pattern: .unstructured, sparsityLevel: 0.5)
/// let twoFour = try Wanda.mask(for: weight, statistics: stats, pattern: .twoFour)
/// ```
public enum Wanda {
  /// The Wanda scores `|W_ij| · ‖X_j‖₂` (`f64`, the weight's shape).
  public static func scores(for weight: Tensor, columnNorms: [Double], name: String = "weight") throws(PruningError)
    -> Tensor
  {
    let (rows, columns) = Mask.matrixView(weight.shape)
    guard columnNorms.count == columns else {
      throw .calibrationShape(
        tensor: name, inputShape: [columnNorms.count], weightShape: weight.shape,
        rule: "there must be one activation norm per input feature")
    }
    var values = try Magnitude.finiteValues(weight, name: name)
    for r in 0..<rows {
      for c in 0..<columns { values[r * columns + c] = Swift.abs(values[r * columns + c]) * columnNorms[c] }
    }
    return Tensor(values, shape: weight.shape)
  }

  /// The Wanda mask: per output row for unstructured sparsity (the paper's comparison group,
  /// `scope: .row`, the default), per group for N:M, per tensor for block patterns.
  ///
  /// - Throws: ``PruningError`` when the statistics do not match the weight, for non-finite
  ///   weights, or an invalid level.
  public static func mask(
    for weight: Tensor, statistics: LayerInputStatistics, pattern: SparsityPattern, sparsityLevel: Double = 1,
    scope: ComparisonScope = .row, name: String = "weight"
  ) throws(PruningError) -> Mask {
    let scores = try scores(for: weight, columnNorms: statistics.columnNorms, name: name)
    let scope = pattern == .unstructured ? scope : .layer
    return try Mask(scores: scores, pattern: pattern, sparsityLevel: sparsityLevel, scope: scope, name: name)
  }
}

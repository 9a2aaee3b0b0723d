import SparsityCore
import SparsityFormats

/// Sample inputs of the layers being pruned, keyed by weight name.
///
/// For a weight `W` of shape `[out, in]` (PyTorch `nn.Linear`), its layer's inputs are a
/// `[tokens, in]` tensor (or any shape whose last extent is `in`; leading axes are flattened),
/// stored in files under the name `W:input`:
///
/// ```swift
/// let file = try SafetensorsFile(contentsOf: "calibration.safetensors")
/// let calibration = CalibrationInputs(fileTensors: try file.tensors())
/// let x = try calibration.inputs(forWeight: "encoder.layer.0.output.dense.weight", shape: [384, 1536])
/// ```
public struct CalibrationInputs: Sendable {
  /// The suffix that marks a weight's inputs in a file: `W:input`.
  public static let nameSuffix = ":input"

  /// Inputs by weight name (without the suffix).
  public var inputs: [String: Tensor]

  /// Wraps inputs keyed by weight name.
  public init(_ inputs: [String: Tensor] = [:]) { self.inputs = inputs }

  /// Picks the `W:input` tensors of a file's contents; other tensors are ignored.
  public init(fileTensors: some Sequence<(name: String, tensor: Tensor)>) {
    var inputs: [String: Tensor] = [:]
    for (name, tensor) in fileTensors where name.hasSuffix(CalibrationInputs.nameSuffix) {
      inputs[String(name.dropLast(CalibrationInputs.nameSuffix.count))] = tensor
    }
    self.inputs = inputs
  }

  /// The inputs of weight `name`, or `nil`.
  public subscript(weight name: String) -> Tensor? { inputs[name] }

  /// The inputs of weight `name` (shape `weightShape`) as a `[tokens, in]` matrix.
  ///
  /// - Throws: ``PruningError/missingCalibration(tensor:expectedName:)`` when there are none;
  ///   ``PruningError/calibrationShape(tensor:inputShape:weightShape:rule:)`` when the last
  ///   extent is not the weight's input features, there are no tokens, or the dtype is not
  ///   floating point.
  public func inputs(forWeight name: String, shape weightShape: [Int]) throws(PruningError) -> Tensor {
    guard let x = inputs[name] else {
      throw .missingCalibration(tensor: name, expectedName: name + CalibrationInputs.nameSuffix)
    }
    return try CalibrationInputs.validated(x, weight: name, shape: weightShape)
  }

  /// `x` viewed as `[tokens, in]` for a weight of `weightShape`, after checking it fits.
  static func validated(_ x: Tensor, weight name: String, shape weightShape: [Int]) throws(PruningError) -> Tensor {
    let features = weightShape.last ?? 1
    guard let last = x.shape.last, last == features else {
      throw .calibrationShape(
        tensor: name, inputShape: x.shape, weightShape: weightShape,
        rule: "the last extent must be the weight's \(features) input features")
    }
    guard x.dtype.isFloatingPoint, x.dtype.isNumeric else {
      throw .calibrationShape(
        tensor: name, inputShape: x.shape, weightShape: weightShape, rule: "inputs must be floating point, got \(x.dtype)")
    }
    let tokens = features == 0 ? 0 : x.count / features
    guard tokens > 0 else {
      throw .calibrationShape(tensor: name, inputShape: x.shape, weightShape: weightShape, rule: "there are no tokens")
    }
    return x.rank == 2 ? x : x.reshaped([tokens, features])
  }
}

/// What the calibration-aware methods need from one layer's inputs `X` (`[tokens, in]`).
public struct LayerInputStatistics: Sendable {
  /// The number of calibration tokens (rows of `X`).
  public let tokens: Int
  /// The number of input features (columns of `X`).
  public let features: Int
  /// `‖X_j‖₂` for every input feature `j` (Wanda's activation norms).
  public let columnNorms: [Double]
  let values: [Float]

  /// Summarizes `inputs` (`[tokens, in]`, floating point).
  ///
  /// - Throws: ``PruningError/nonFiniteValue(tensor:index:)`` when an input is NaN or infinite.
  public init(inputs: Tensor, name: String = "inputs") throws(PruningError) {
    precondition(inputs.rank == 2, "calibration inputs must be [tokens, in], got \(inputs.shape)")
    tokens = inputs.shape[0]
    features = inputs.shape[1]
    values = inputs.floatValues
    if let bad = values.firstIndex(where: { !$0.isFinite }) {
      throw .nonFiniteValue(tensor: name, index: bad)
    }
    var sums = [Double](repeating: 0, count: features)
    for t in 0..<tokens {
      for j in 0..<features {
        let v = Double(values[t * features + j])
        sums[j] += v * v
      }
    }
    columnNorms = sums.map { $0.squareRoot() }
  }

  /// SparseGPT's Hessian `H = (2 / tokens) · XᵀX`, `[in, in]` row-major.
  ///
  /// - Complexity: O(tokens · in²), parallel over rows of `H`.
  public func hessian() -> [Double] {
    var g = LinearAlgebra.gram(values, tokens: tokens, features: features)
    let scale = 2 / Double(tokens)
    for i in g.indices { g[i] *= scale }
    return g
  }

  /// `X` with its columns reordered: column `k` of the result is column `order[k]` of `X`
  /// (the inputs of a layer whose input channels were permuted by `order`).
  public func permutedColumns(_ order: [Int]) -> Tensor {
    var out = [Float](repeating: 0, count: values.count)
    for t in 0..<tokens {
      for k in 0..<features { out[t * features + k] = values[t * features + order[k]] }
    }
    return Tensor(out, shape: [tokens, features])
  }
}

/// How far a pruned weight is from the dense one.
public enum PruningMetrics {
  /// `‖X Wᵀ − X Ŵᵀ‖_F / ‖X Wᵀ‖_F`: the relative error of the layer's outputs on inputs `X`.
  ///
  /// - Parameters:
  ///   - original: `W`, `[out, in]`.
  ///   - pruned: `Ŵ`, same shape.
  ///   - inputs: `X`, `[tokens, in]`.
  /// - Complexity: O(tokens · in · out), parallel over tokens; products in `Float`, sums in
  ///   `Double`.
  public static func relativeOutputError(original: Tensor, pruned: Tensor, inputs: Tensor) -> Double {
    precondition(original.shape == pruned.shape, "weights \(original.shape) and \(pruned.shape) differ in shape")
    let (out, d) = Mask.matrixView(original.shape)
    precondition(inputs.rank == 2 && inputs.shape[1] == d, "inputs \(inputs.shape) do not fit weight \(original.shape)")
    let norms = LinearAlgebra.outputNorms(
      inputs: inputs.floatValues, tokens: inputs.shape[0], weight: original.floatValues, pruned: pruned.floatValues,
      out: out, in: d)
    return norms.reference == 0 ? (norms.error == 0 ? 0 : .infinity) : (norms.error / norms.reference).squareRoot()
  }

  /// `‖W ⊙ M‖_F / ‖W‖_F`: the fraction of the weight's L2 norm on the kept positions
  /// (1 for an all-zero weight).
  public static func keptNormFraction(original: Tensor, mask: Mask) -> Double {
    let w = original.doubleValues
    var total = 0.0
    var kept = 0.0
    mask.tensor.withUnsafeBufferPointer(as: Bool.self) { keep in
      for i in 0..<w.count {
        let s = w[i] * w[i]
        total += s
        if keep[i] { kept += s }
      }
    }
    return total == 0 ? 1 : (kept / total).squareRoot()
  }
}

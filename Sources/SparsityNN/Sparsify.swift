import SparsityCore
import SparsityFormats
import SparsityKernels
import SparsityPruning

extension Module: ParameterContainer {
  public var parameterNames: [String] { namedParameters().map(\.name) }

  public func parameter(named name: String) -> Tensor? {
    namedParameters().first { $0.name == name }?.parameter.tensor
  }

  public func setParameter(named name: String, to value: Tensor) {
    guard let p = namedParameters().first(where: { $0.name == name })?.parameter else {
      preconditionFailure("there is no parameter '\(name)'")
    }
    precondition(p.shape == value.shape, "parameter '\(name)' has shape \(p.shape), not \(value.shape)")
    p.value = value.converted(to: .float32).floatValues
  }

  /// Every `Linear` layer under its dotted name.
  public func linearLayers() -> [(name: String, layer: Linear)] {
    namedModules().compactMap { entry in (entry.module as? Linear).map { (entry.name, $0) } }
  }
}

/// Prunes the weights of the `Linear` layers that `filter` accepts, in place, and returns the
/// masks for retraining. SparseGPT's updated weights are written into the model too.
///
/// - Throws: ``PruningError`` (a pattern that does not fit a weight, missing calibration, …);
///   the model is unchanged then.
public func prune(
  _ model: Module, _ configuration: PruningConfiguration, calibration: CalibrationInputs? = nil,
  filter: (_ name: String, _ layer: Linear) -> Bool = { _, _ in true }
) throws(PruningError) -> ParameterMasks {
  let weights = model.linearLayers().filter { filter($0.name, $0.layer) }.map { $0.name + ".weight" }
  var sparsifier = Sparsifier(defaults: configuration)
  try sparsifier.prepare(model, configurations: weights.map { TensorConfiguration(tensor: $0) })
  try sparsifier.step(model, calibration: calibration)
  let masks = Dictionary(uniqueKeysWithValues: weights.map { ($0, sparsifier.state[$0]!.mask) })
  var target: Module = model
  sparsifier.squash(&target)
  return ParameterMasks(masks)
}

/// A compressed form for `Linear` weights.
public enum SparseWeightFormat: Sendable, Hashable, CustomStringConvertible {
  /// 2:4 semi-structured (the weight must be 2:4 along its input axis).
  case semiStructured
  /// Blocked sparse rows with `rows × columns` blocks (extents must divide the weight's).
  case bsr(rows: Int, columns: Int)
  /// Compressed sparse rows.
  case csr

  public var description: String {
    switch self {
    case .semiStructured: "2:4"
    case let .bsr(r, c): "bsr:\(r)x\(c)"
    case .csr: "csr"
    }
  }
}

/// Why a layer could not be compressed.
public struct SparsifyError: Error, CustomStringConvertible, Equatable {
  /// The layer's dotted name.
  public var layer: String
  /// What is wrong.
  public var reason: String

  public var description: String { "cannot compress layer '\(layer)': \(reason)" }
}

/// Swaps the weight of every `Linear` layer that `filter` accepts to `format`, so inference runs
/// on the sparse kernels (chosen per shape by ``LinearDispatcher``) — the pattern of mlx-swift's
/// `quantize(model:)` and torchao's `sparsify_`. Outputs equal the dense layer's within float
/// rounding. The dense weight stays in the layer (state dictionaries, ``densify(_:)``).
///
/// - Returns: the names of the layers compressed, in order.
/// - Throws: ``SparsifyError`` for the first accepted layer whose weight does not fit `format`
///   (nothing is swapped then).
@discardableResult
public func sparsify(
  _ model: Module, format: SparseWeightFormat, filter: (_ name: String, _ layer: Linear) -> Bool = { _, _ in true }
) throws(SparsifyError) -> [String] {
  var swaps: [(name: String, layer: Linear, weight: LinearWeight)] = []
  for (name, layer) in model.linearLayers() where filter(name, layer) {
    let dense = layer.weight.tensor
    let tensorName = name + ".weight"
    do {
      let weight: LinearWeight
      switch format {
      case .semiStructured: weight = try LinearWeight(SemiStructuredMatrix(dense: dense, n: 2, m: 4, name: tensorName))
      case let .bsr(r, c): weight = try LinearWeight(BSRMatrix(dense: dense, blockRows: r, blockColumns: c, name: tensorName))
      case .csr: weight = try LinearWeight(CSRMatrix(dense: dense, name: tensorName))
      }
      swaps.append((name, layer, weight))
    } catch {
      throw SparsifyError(layer: name, reason: "\(error)")
    }
  }
  for swap in swaps { swap.layer.compressed = swap.weight }
  return swaps.map(\.name)
}

/// Returns every `Linear` layer to its dense weight.
public func densify(_ model: Module) {
  for (_, layer) in model.linearLayers() { layer.compressed = nil }
}

/// The compressed form that suits a weight's zeros, or `nil` to keep it dense: 2:4 when every
/// group of 4 inputs holds at most 2 nonzeros; else BSR with the largest square block (32, 16,
/// 8, 4) that divides the shape and leaves at most half of the blocks nonzero; else CSR when at
/// least `minimumSparsity` of the weights are zero.
public func suitableFormat(for weight: Tensor, minimumSparsity: Double = 0.5) -> SparseWeightFormat? {
  guard weight.rank == 2, weight.count > 0 else { return nil }
  let mask = Mask(nonzerosOf: weight)
  guard mask.sparsity >= minimumSparsity - 1e-9 else { return nil }
  if weight.shape[1] % 4 == 0 && mask.conforms(to: .twoFour) { return .semiStructured }
  let (rows, columns) = (weight.shape[0], weight.shape[1])
  let kept = mask.tensor.scalars(as: Bool.self)
  for side in [32, 16, 8, 4] where rows % side == 0 && columns % side == 0 {
    var nonzeroBlocks = 0
    for br in 0..<rows / side {
      for bc in 0..<columns / side {
        blockScan: for r in br * side..<(br + 1) * side {
          for c in bc * side..<(bc + 1) * side where kept[r * columns + c] {
            nonzeroBlocks += 1
            break blockScan
          }
        }
      }
    }
    if nonzeroBlocks * 2 <= (rows / side) * (columns / side) { return .bsr(rows: side, columns: side) }
  }
  return .csr
}

/// Compresses every `Linear` layer whose weight has a ``suitableFormat(for:minimumSparsity:)``
/// (a pruned model loaded from a file); the others stay dense.
///
/// - Returns: the layers compressed and their formats.
@discardableResult
public func sparsifyPrunedLayers(_ model: Module, minimumSparsity: Double = 0.5) throws(SparsifyError)
  -> [(name: String, format: SparseWeightFormat)]
{
  var done: [(name: String, format: SparseWeightFormat)] = []
  for (name, layer) in model.linearLayers() {
    guard let format = suitableFormat(for: layer.weight.tensor, minimumSparsity: minimumSparsity) else { continue }
    do { try sparsify(layer, format: format) } catch { throw SparsifyError(layer: name, reason: error.reason) }
    done.append((name, format))
  }
  return done
}

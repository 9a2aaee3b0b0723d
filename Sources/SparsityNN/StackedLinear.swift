import SparsityCore
import SparsityFormats
import SparsityKernels

/// Layers that read the same input, run at inference as one product over their weights stacked
/// row-wise: one activation packing and one wider GEMM instead of several narrow ones (BERT's
/// query, key and value). The outputs equal the parts' own, column blocks side by side.
///
/// - Trainable `Linear` parts: their dense weights are stacked into a packed copy, rebuilt when
///   a weight or bias changes.
/// - ``PackedLinear`` parts of one form: their packed weights are stacked (a sparse form through
///   its nonzeros) and the parts become rows of the stacked weight, so the weights stay resident
///   once.
/// Mixed parts run one by one.
package final class StackedLinear {
  /// The current parts (the model may have swapped them since the last call).
  private let currentParts: () -> [LinearLayer]
  private var cache: (key: [ObjectIdentifier], versions: [Int], weight: LinearWeight, bias: [Float]?)?

  package init(_ parts: @escaping () -> [LinearLayer]) {
    currentParts = parts
  }

  /// Whether ``callAsFunction(_:)`` can run now: inference (no graph recorded), no part
  /// observed (calibration needs each part's own call), and parts that stack.
  package var isAvailable: Bool {
    !Gradients.areEnabled && currentParts().allSatisfy { $0.inputObserver == nil } && stacked() != nil
  }

  /// `x [..., in]` → `[..., Σ out]`: the parts' outputs side by side. Requires ``isAvailable``.
  package func callAsFunction(_ x: Variable) -> Variable {
    guard let (weight, bias) = stacked() else { preconditionFailure("StackedLinear used while unavailable") }
    return Linear.apply(weight, bias: bias, to: x)
  }

  private func stacked() -> (LinearWeight, [Float]?)? {
    let parts = currentParts()
    let key = parts.map { ObjectIdentifier($0) }
    let versions = parts.flatMap { part -> [Int] in
      guard let linear = part as? Linear else { return [] }
      return [linear.weight.version, linear.bias?.version ?? -1]
    }
    if let cache, cache.key == key, cache.versions == versions { return (cache.weight, cache.bias) }
    let bias: [Float]? =
      parts.allSatisfy { $0.biasValues == nil } ? nil : parts.flatMap { $0.biasValues ?? [Float](repeating: 0, count: $0.outFeatures) }
    let weight: LinearWeight
    if let linears = parts as? [Linear] {
      let values = linears.flatMap(\.weight.value)
      guard let packed = try? LinearWeight(dense: Tensor(values, shape: [values.count / parts[0].inFeatures, parts[0].inFeatures])) else {
        return nil
      }
      weight = packed
    } else if let packed = parts as? [PackedLinear] {
      if let shared = Self.alreadyStacked(packed) {
        weight = shared
      } else {
        guard !packed.contains(where: \.isStacked), let made = try? LinearWeight.stacking(packed.map(\.weight)) else { return nil }
        var row = 0
        for part in packed {
          part.become(rows: row..<row + part.outFeatures, of: made)
          row += part.outFeatures
        }
        weight = made
      }
    } else {
      return nil
    }
    cache = (key, versions, weight, bias)
    return (weight, bias)
  }

  /// The weight the parts already are consecutive rows of, covering it whole, or `nil`.
  private static func alreadyStacked(_ parts: [PackedLinear]) -> LinearWeight? {
    guard let first = parts.first, parts.allSatisfy({ $0.weight === first.weight }) else { return nil }
    var row = 0
    for part in parts {
      guard part.rows.lowerBound == row else { return nil }
      row = part.rows.upperBound
    }
    return row == first.weight.outFeatures ? first.weight : nil
  }
}

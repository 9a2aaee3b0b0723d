import SparsityCore
import SparsityFormats
import SparsityKernels

/// `Linear` layers that read the same input, run at inference as one product over their weights
/// stacked row-wise: one activation packing and one wider GEMM instead of several narrow ones
/// (BERT's query, key and value). The stacked weight takes the parts' common format — dense,
/// or their compressed 2:4 / BSR / CSR form — so the outputs equal the parts' own, column
/// blocks side by side, and is rebuilt when a part's weight, bias or compressed form changes.
final class StackedLinear {
  let parts: [Linear]
  private var cache: (key: [Int], weight: LinearWeight, bias: [Float]?)?

  init(_ parts: [Linear]) {
    precondition(!parts.isEmpty && parts.allSatisfy { $0.inFeatures == parts[0].inFeatures }, "stacked layers must share their input size")
    self.parts = parts
  }

  /// Whether ``callAsFunction(_:)`` can run now: inference (no graph recorded), no part
  /// observed (calibration needs each part's own call), and one format shared by all parts.
  var isAvailable: Bool { !Gradients.areEnabled && parts.allSatisfy { $0.inputObserver == nil } && stacked() != nil }

  /// `x [..., in]` → `[..., Σ out]`: the parts' outputs side by side. Requires ``isAvailable``.
  func callAsFunction(_ x: Variable) -> Variable {
    guard let (weight, bias) = stacked() else { preconditionFailure("StackedLinear used while unavailable") }
    return Linear.apply(weight, bias: bias, to: x)
  }

  private func stacked() -> (LinearWeight, [Float]?)? {
    let key = parts.flatMap { part -> [Int] in
      [part.weight.version, part.bias?.version ?? -1, part.compressed.map { ObjectIdentifier($0).hashValue } ?? 0]
    }
    if let cache, cache.key == key { return (cache.weight, cache.bias) }
    let formats = Set(parts.map { $0.compressed?.format ?? .dense })
    guard formats.count == 1, let format = formats.first else { return nil }
    let k = parts[0].inFeatures
    let rows = parts.reduce(0) { $0 + $1.outFeatures }
    var values: [Float] = []
    values.reserveCapacity(rows * k)
    for part in parts { values += part.compressed?.dense().floatValues ?? part.weight.value }
    let dense = Tensor(values, shape: [rows, k])
    let name = "stacked projection"
    let weight: LinearWeight
    do {
      switch format {
      case .dense: weight = try LinearWeight(dense: dense)
      case .semiStructured: weight = try LinearWeight(SemiStructuredMatrix(dense: dense, n: 2, m: 4, name: name))
      case let .bsr(r, c): weight = try LinearWeight(BSRMatrix(dense: dense, blockRows: r, blockColumns: c, name: name))
      case .csr: weight = try LinearWeight(CSRMatrix(dense: dense, name: name))
      }
    } catch {
      return nil
    }
    let bias: [Float]? =
      parts.allSatisfy { $0.bias == nil } ? nil : parts.flatMap { $0.bias?.value ?? [Float](repeating: 0, count: $0.outFeatures) }
    cache = (key, weight, bias)
    return (weight, bias)
  }
}

import SparsityCore
import SparsityKernels

// 2:4 sparse training (xFormers' sp24, torchao's SemiSparseLinear): operands made 2:4 at run time,
// both ways (`A` and `Aᵀ` 2:4 along their rows), so that every product of a training step that
// involves the sparse operand runs on the 2:4 kernels (`x · Wᵀ`, whose weight must be 2:4 along
// its rows):
//
// | op | forward | input gradient | weight gradient |
// |---|---|---|---|
// | ``semiSparseLinear(_:weight:bias:algorithm:gradient:)`` (2:4 weights) | `x · W̃ᵀ` (W̃ packed) | `g · W̃` (W̃ᵀ packed) | `gᵀ · x`, dense; masked or passed through |
// | ``sparseActivationLinear(_:weight:bias:algorithm:gradient:)`` (2:4 activations) | `(W · h̃ᵀ)ᵀ` (h̃ packed) | `g · W`, dense; masked or passed through | `gᵀ · h̃` (h̃ᵀ packed) |
//
// The mask is chosen afresh from the dense values every call (torchao: "the dense weight is the
// source of truth"; pruned weights can grow back).

/// How a gradient passes back through a 2:4 sparsification (xFormers' `sparsify24` modes).
///
/// xFormers' `24sparse` and `24dense` give the same values — the gradient with the forward
/// mask's pruned positions zeroed — held as a sparse or a dense tensor; gradients here are dense
/// arrays, so ``masked`` is both.
public enum Sparse24Gradient: String, CaseIterable, Sendable {
  /// The gradient re-sparsified with the forward mask: pruned positions get none.
  case masked
  /// The gradient passed through whole, pruned positions included (the straight-through
  /// estimator; what torchao's `SemiSparseLinear` gives its dense weights).
  case straightThrough
}

/// `x [..., k]` as a matrix: the leading axes are rows.
private func matrixShape(_ x: Variable) -> (rows: Int, columns: Int) {
  precondition(x.shape.count >= 1, "a 2:4 operand needs at least one axis, got \(x.shape)")
  let columns = x.shape.last!
  return (columns == 0 ? 0 : x.count / columns, columns)
}

/// `a` made 2:4 both ways; a NaN (which no ranking can place) stops the program with the
/// operand's name and place, as a shape error would.
private func sparsified(_ a: Tensor, _ algorithm: Sparse24.Algorithm, name: String) -> Sparse24.BothWays {
  do { return try Sparse24.sparsifyBothWays(a, algorithm: algorithm, name: name) } catch { preconditionFailure("\(error)") }
}

/// `a` with the positions `mask` does not keep zeroed (the masked gradient).
private func masked(_ a: [Float], rows: Int, columns: Int, by mask: Sparse24.TileMask) -> [Float] {
  do { return try Sparse24.applyDense(mask, to: Tensor(a, shape: [rows, columns]), name: "gradient").floatValues } catch {
    preconditionFailure("\(error)")
  }
}

/// `x` made 2:4 along its last axis at run time: each 4×4 tile of its `[rows, k]` matrix keeps the
/// elements `algorithm` chooses (xFormers' `sparsify24`), the rest zeroed; the gradient goes back
/// as `gradient` says. The values stay dense; the 2:4 products are
/// ``semiSparseLinear(_:weight:bias:algorithm:gradient:)`` and
/// ``sparseActivationLinear(_:weight:bias:algorithm:gradient:)``.
public func sparsify24(
  _ x: Variable, algorithm: Sparse24.Algorithm = .largestAbsValuesGreedy, gradient: Sparse24Gradient = .masked
) -> Variable {
  let (m, k) = matrixShape(x)
  let mask = sparsified(Tensor(x.value, shape: [m, k]), algorithm, name: "sparsify24 input").mask
  return Variable(masked(x.value, rows: m, columns: k, by: mask), shape: x.shape, parents: [x]) { out in
    let g = out.gradient!
    x.accumulate(gradient == .masked ? masked(g, rows: m, columns: k, by: mask) : g)
  }
}

/// `y = x · W̃ᵀ + bias` with `W̃` the weight made 2:4 at run time (torchao's `SemiSparseLinear`
/// forward; `algorithm` transposable by default, so that the input gradient `g · W̃` runs on
/// `W̃ᵀ`'s 2:4 form too). The weight gradient `gᵀ · x` is dense; `gradient` passes it through
/// (straight-through, torchao's choice: pruned weights keep learning and can grow back) or
/// masks it.
public func semiSparseLinear(
  _ x: Variable, weight: Variable, bias: Variable? = nil, algorithm: Sparse24.Algorithm = .largestAbsValuesGreedy,
  gradient: Sparse24Gradient = .straightThrough
) -> Variable {
  precondition(weight.shape.count == 2, "weight must be [out, in], got \(weight.shape)")
  let (n, k) = (weight.shape[0], weight.shape[1])
  precondition(x.shape.last == k, "x \(x.shape) does not end in the weight's \(k) input features")
  if let bias { precondition(bias.shape == [n], "bias must be [\(n)], got \(bias.shape)") }
  let m = k == 0 ? 0 : x.count / k
  let w = sparsified(weight.tensor, algorithm, name: "semi-sparse weight")
  let y = w.weight.apply(x: Tensor(x.value, shape: [m, k]), bias: bias?.tensor)
  return Variable(y.floatValues, shape: Array(x.shape.dropLast()) + [n], parents: [x, weight] + (bias.map { [$0] } ?? [])) { out in
    let g = out.gradient!
    if x.requiresGradient {
      if let transposed = w.transposedWeight {
        x.accumulate(transposed.apply(x: Tensor(g, shape: [m, n])).floatValues)
      } else {
        // A mask that is not transposable (per-row algorithm): the dense product with W̃.
        let dense = masked(weight.value, rows: n, columns: k, by: w.mask)
        var dx = [Float](repeating: 0, count: m * k)
        multiplyTransposed(g, rows: m, transposed(dense, rows: n, columns: k), rows: k, inner: n, into: &dx)
        x.accumulate(dx)
      }
    }
    if weight.requiresGradient {
      var dw = [Float](repeating: 0, count: n * k)
      multiplyTransposed(transposed(g, rows: m, columns: n), rows: n, transposed(x.value, rows: m, columns: k), rows: k, inner: m, into: &dw)
      weight.accumulate(gradient == .masked ? masked(dw, rows: n, columns: k, by: w.mask) : dw)
    }
    if let bias, bias.requiresGradient { bias.accumulate(columnSums(g, rows: m, columns: n)) }
  }
}

/// `y = h̃ · Wᵀ + bias` with `h̃` the activations `h [..., k]` made 2:4 at run time (xFormers'
/// sp24 after a squared ReLU, whose outputs are ≥ 0 and mostly zero: ranked by signed value by
/// default). The sparse operand is `h̃`: the forward runs `yᵀ = W · h̃ᵀ` and the weight gradient
/// `gᵀ · h̃` on `h̃ᵀ`'s 2:4 form, both on the 2:4 kernels; the input gradient `g · W` is dense and
/// masked with `h̃`'s mask (or passed through).
public func sparseActivationLinear(
  _ h: Variable, weight: Variable, bias: Variable? = nil, algorithm: Sparse24.Algorithm = .largestValuesGreedy,
  gradient: Sparse24Gradient = .masked
) -> Variable {
  precondition(weight.shape.count == 2, "weight must be [out, in], got \(weight.shape)")
  precondition(algorithm.isTransposable, "2:4 activations need a transposable algorithm (the weight gradient runs on h̃ᵀ)")
  let (n, k) = (weight.shape[0], weight.shape[1])
  precondition(h.shape.last == k, "h \(h.shape) does not end in the weight's \(k) input features")
  if let bias { precondition(bias.shape == [n], "bias must be [\(n)], got \(bias.shape)") }
  let m = k == 0 ? 0 : h.count / k
  let sparse = sparsified(Tensor(h.value, shape: [m, k]), algorithm, name: "sparse activations")
  // yᵀ [n, m] = W · h̃ᵀ: the activations are the kernel's 2:4 operand.
  let yT = sparse.weight.apply(x: weight.tensor).floatValues
  var y = transposed(yT, rows: n, columns: m)
  if let bias {
    let b = bias.value
    y.withUnsafeMutableBufferPointer { y in
      b.withUnsafeBufferPointer { b in
        for i in 0..<m { for j in 0..<n { y[i * n + j] += b[j] } }
      }
    }
  }
  return Variable(y, shape: Array(h.shape.dropLast()) + [n], parents: [h, weight] + (bias.map { [$0] } ?? [])) { out in
    let g = out.gradient!
    if h.requiresGradient {
      var dh = [Float](repeating: 0, count: m * k)
      multiplyTransposed(g, rows: m, transposed(weight.value, rows: n, columns: k), rows: k, inner: n, into: &dh)
      h.accumulate(gradient == .masked ? masked(dh, rows: m, columns: k, by: sparse.mask) : dh)
    }
    if weight.requiresGradient {
      // dW [n, k] = gᵀ · h̃ = gᵀ [n, m] · (h̃ᵀ [k, m])ᵀ: h̃ᵀ's 2:4 form (along m) is the operand.
      weight.accumulate(sparse.transposedWeight!.apply(x: Tensor(transposed(g, rows: m, columns: n), shape: [n, m])).floatValues)
    }
    if let bias, bias.requiresGradient { bias.accumulate(columnSums(g, rows: m, columns: n)) }
  }
}

/// `Σ_i g[i, j]` for `g [rows, columns]`.
private func columnSums(_ g: [Float], rows: Int, columns: Int) -> [Float] {
  var sums = [Float](repeating: 0, count: columns)
  sums.withUnsafeMutableBufferPointer { sums in
    g.withUnsafeBufferPointer { g in
      for i in 0..<rows { for j in 0..<columns { sums[j] += g[i * columns + j] } }
    }
  }
  return sums
}

/// A Linear layer trained with 2:4 weights (torchao's `SemiSparseLinear`): the dense weight is
/// the parameter, made 2:4 afresh every forward pass (``semiSparseLinear(_:weight:bias:algorithm:gradient:)``),
/// so the optimizer updates dense values and the mask follows them. Made from a ``Linear`` by
/// ``swapLinearWithSemiSparseLinear(_:algorithm:gradient:filter:)``, sharing its parameters.
public final class SemiSparseLinear: LinearLayer {
  public let weight: Variable
  public let bias: Variable?
  public let algorithm: Sparse24.Algorithm
  public let gradient: Sparse24Gradient

  /// A layer on `linear`'s parameters (shared, not copied).
  public init(_ linear: Linear, algorithm: Sparse24.Algorithm = .largestAbsValuesGreedy, gradient: Sparse24Gradient = .straightThrough) {
    weight = linear.weight
    bias = linear.bias
    self.algorithm = algorithm
    self.gradient = gradient
    super.init(inFeatures: linear.inFeatures, outFeatures: linear.outFeatures)
  }

  public override var ownParameters: [(name: String, parameter: Variable)] {
    [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
  }

  public override func callAsFunction(_ x: Variable) -> Variable {
    inputObserver?(x)
    return semiSparseLinear(x, weight: weight, bias: bias, algorithm: algorithm, gradient: gradient)
  }

  /// The dense master weight (what the optimizer updates).
  public override func denseWeight() -> Tensor { weight.tensor }
  public override var biasValues: [Float]? { bias?.value }

  /// The weight the layer computes with now: the master weight made 2:4.
  public func sparseWeight() -> Tensor {
    Tensor(masked(weight.value, rows: outFeatures, columns: inFeatures, by: sparsified(weight.tensor, algorithm, name: "weight").mask), shape: [outFeatures, inFeatures])
  }
}

/// Swaps each ``Linear`` of `model` that `filter` accepts (by name) for a ``SemiSparseLinear`` on
/// the same parameters (torchao's `swap_linear_with_semi_sparse_linear`); returns their names.
@discardableResult
public func swapLinearWithSemiSparseLinear(
  _ model: Module, algorithm: Sparse24.Algorithm = .largestAbsValuesGreedy, gradient: Sparse24Gradient = .straightThrough,
  filter: (_ name: String, _ layer: Linear) -> Bool = { _, _ in true }
) -> [String] {
  let chosen = model.linearLayers().filter { filter($0.name, $0.layer) }
  for (_, layer) in chosen { model.replace(layer, with: SemiSparseLinear(layer, algorithm: algorithm, gradient: gradient)) }
  return chosen.map(\.name)
}

/// Swaps every ``SemiSparseLinear`` back for a ``Linear`` on the same parameters (shared, so an
/// optimizer's state carries on), to go on training dense (torchao's
/// `swap_semi_sparse_linear_with_linear`); `keepingMask` first zeroes the weights the current mask
/// prunes, so the model stays 2:4 (to prune it for good).
public func swapSemiSparseLinearWithLinear(_ model: Module, keepingMask: Bool = false) {
  let layers = model.namedModules().compactMap { $0.module as? SemiSparseLinear }
  for layer in layers {
    if keepingMask { layer.weight.value = layer.sparseWeight().floatValues }
    model.replace(layer, with: Linear(sharing: layer.weight, bias: layer.bias))
  }
}

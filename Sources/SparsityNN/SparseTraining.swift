import SparsityCore
import SparsityKernels

// 2:4 sparse training (xFormers' sp24, torchao's SemiSparseLinear): operands made 2:4 at run time,
// both ways (`A` and `Aᵀ` 2:4 along their rows), so that every product of a training step that
// involves the sparse operand runs on the 2:4 kernels (`x · Wᵀ`, whose weight must be 2:4 along
// its rows):
//
// | op | forward | input gradient | weight gradient |
// |---|---|---|---|
// | ``semiSparseLinear(_:weight:bias:algorithm:gradient:prunedDecay:)`` (2:4 weights) | `x · W̃ᵀ` (W̃ packed) | `g · W̃` (W̃ᵀ packed) | `gᵀ · x`, dense; masked or passed through |
// | ``sparseActivationLinear(_:weight:bias:algorithm:gradient:)`` (2:4 activations) | `(W · h̃ᵀ)ᵀ` (h̃ packed) | `g · W`, dense; masked or passed through | `gᵀ · h̃` (h̃ᵀ packed) |
// | ``sparseActivationMLP(_:fc1:fc2:algorithm:gradient:)``, fc1 (masked gradient) | `x · W₁ᵀ`, dense | `da · W₁` (da packed) | `daᵀ · x` (daᵀ packed) |
//
// No product copies a transpose: the dense GEMM and the 2:4 kernel read `x` (and write `y`) in
// either layout.
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

/// `a [rows, columns]` made 2:4 both ways; a NaN (which no ranking can place) stops the program
/// with the operand's name and place, as a shape error would.
private func sparsified(
  _ a: [Float], rows: Int, columns: Int, _ algorithm: Sparse24.Algorithm, name: String
) -> Sparse24.BothWays {
  do {
    return try a.withUnsafeBufferPointer { a throws(Sparse24Error) in
      try Sparse24.sparsifyBothWays(a, rows: rows, columns: columns, algorithm: algorithm, name: name)
    }
  } catch { preconditionFailure("\(error)") }
}

/// Zeroes the positions of `a` that `mask` does not keep (the masked gradient), in place.
private func applyMask(_ mask: Sparse24.TileMask, to a: inout [Float]) {
  a.withUnsafeMutableBufferPointer { a in
    do { try Sparse24.applyInPlace(mask, to: a, name: "gradient") } catch { preconditionFailure("\(error)") }
  }
}

/// `a` with the positions `mask` does not keep zeroed.
private func masked(_ a: [Float], by mask: Sparse24.TileMask) -> [Float] {
  var a = a
  applyMask(mask, to: &a)
  return a
}

/// Both 2:4 forms of `a` under `mask`.
private func applied(_ mask: Sparse24.TileMask, to a: [Float]) -> Sparse24.BothWays {
  do {
    return try a.withUnsafeBufferPointer { a throws(Sparse24Error) in try Sparse24.apply(mask, to: a, name: "gradient") }
  } catch { preconditionFailure("\(error)") }
}

/// `x` made 2:4 along its last axis at run time: each 4×4 tile of its `[rows, k]` matrix keeps the
/// elements `algorithm` chooses (xFormers' `sparsify24`), the rest zeroed; the gradient goes back
/// as `gradient` says. The values stay dense; the 2:4 products are
/// ``semiSparseLinear(_:weight:bias:algorithm:gradient:prunedDecay:)`` and
/// ``sparseActivationLinear(_:weight:bias:algorithm:gradient:)``.
public func sparsify24(
  _ x: Variable, algorithm: Sparse24.Algorithm = .largestAbsValuesGreedy, gradient: Sparse24Gradient = .masked
) -> Variable {
  let (m, k) = matrixShape(x)
  let mask = sparsified(x.value, rows: m, columns: k, algorithm, name: "sparsify24 input").mask
  return Variable(masked(x.value, by: mask), shape: x.shape, parents: [x]) { out in
    let g = out.gradient!
    x.accumulate(gradient == .masked ? masked(g, by: mask) : g)
  }
}

/// `y = x · W̃ᵀ + bias` with `W̃` the weight made 2:4 at run time (torchao's `SemiSparseLinear`
/// forward; `algorithm` transposable by default, so that the input gradient `g · W̃` runs on
/// `W̃ᵀ`'s 2:4 form too). The weight gradient `gᵀ · x` is dense; `gradient` passes it through
/// (straight-through, torchao's choice: pruned weights keep learning and can grow back) or
/// masks it. `prunedDecay` λ adds `λ · w` to the gradient of every pruned weight (SR-STE, Zhou
/// et al. 2021: pruned weights drift toward zero, so the mask settles); 0 is plain
/// straight-through.
public func semiSparseLinear(
  _ x: Variable, weight: Variable, bias: Variable? = nil, algorithm: Sparse24.Algorithm = .largestAbsValuesGreedy,
  gradient: Sparse24Gradient = .straightThrough, prunedDecay: Float = 0
) -> Variable {
  precondition(weight.shape.count == 2, "weight must be [out, in], got \(weight.shape)")
  let (n, k) = (weight.shape[0], weight.shape[1])
  precondition(x.shape.last == k, "x \(x.shape) does not end in the weight's \(k) input features")
  if let bias { precondition(bias.shape == [n], "bias must be [\(n)], got \(bias.shape)") }
  let m = k == 0 ? 0 : x.count / k
  let w = sparsified(weight.value, rows: n, columns: k, algorithm, name: "semi-sparse weight")
  let y = sparseProduct(w, .matrix, x.value, tokens: m, outputs: n, bias: bias?.value)
  return Variable(y, shape: Array(x.shape.dropLast()) + [n], parents: [x, weight] + (bias.map { [$0] } ?? [])) { out in
    let g = out.gradient!
    if x.requiresGradient {
      if w.mask.isTransposable {
        x.accumulate(sparseProduct(w, .transposed, g, tokens: m, outputs: k))
      } else {
        // A mask that is not transposable (per-row algorithm): the dense product with W̃.
        x.accumulate(product(g, masked(weight.value, by: w.mask), m: m, n: k, k: n))
      }
    }
    if weight.requiresGradient {
      var dw = product(g, transposeA: true, x.value, m: n, n: k, k: m)
      if gradient == .masked {
        applyMask(w.mask, to: &dw)
      } else if prunedDecay != 0 {
        let kept = masked(weight.value, by: w.mask)
        weight.value.withUnsafeBufferPointer { v in
          for i in dw.indices { dw[i] += prunedDecay * (v[i] - kept[i]) }
        }
      }
      weight.accumulate(dw)
    }
    if let bias, bias.requiresGradient { bias.accumulate(columnSums(g, rows: m, columns: n)) }
  }
}

/// `y = h̃ · Wᵀ + bias` with `h̃` the activations `h [..., k]` made 2:4 at run time (xFormers'
/// sp24 after a squared ReLU, whose outputs are ≥ 0 and mostly zero: ranked by signed value by
/// default). The sparse operand is `h̃`: the forward runs `yᵀ = W · h̃ᵀ` and the weight gradient
/// `gᵀ · h̃` on `h̃ᵀ`'s 2:4 form, both on the 2:4 kernels; the input gradient `g · W` is dense and
/// masked with `h̃`'s mask (or passed through). When the activations come from a squared ReLU
/// right after a linear layer, ``sparseActivationMLP(_:fc1:fc2:algorithm:gradient:)`` also runs
/// that layer's backward on the 2:4 kernels.
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
  let sparse = sparsified(h.value, rows: m, columns: k, algorithm, name: "sparse activations")
  let y = sparseActivationProduct(sparse, weight: weight.value, bias: bias?.value, tokens: m, outputs: n)
  return Variable(y, shape: Array(h.shape.dropLast()) + [n], parents: [h, weight] + (bias.map { [$0] } ?? [])) { out in
    let g = out.gradient!
    if h.requiresGradient {
      var dh = product(g, weight.value, m: m, n: k, k: n)
      if gradient == .masked { applyMask(sparse.mask, to: &dh) }
      h.accumulate(dh)
    }
    if weight.requiresGradient { weight.accumulate(sparseWeightGradient(g, sparse, tokens: m, outputs: n)) }
    if let bias, bias.requiresGradient { bias.accumulate(columnSums(g, rows: m, columns: n)) }
  }
}

/// `fc2(s(relu(fc1(x))²))` with `s` making the activations 2:4 at run time: the whole
/// feed-forward block of xFormers' sp24 training, every product on the 2:4 kernels that can be.
///
/// As ``sparseActivationLinear(_:weight:bias:algorithm:gradient:)`` for `fc2` (forward `h̃ · W₂ᵀ`
/// and `gᵀ · h̃` on 2:4). With the masked gradient, the gradient reaching `fc1`'s output,
/// `da = (g · W₂) ⊙ 2·relu(a)` with the mask of `h̃`, is 2:4 with that mask (xFormers'
/// `24sparse` gradient), so `fc1`'s weight gradient `daᵀ · x` and input gradient `da · W₁` run on
/// its 2:4 forms too: four of the block's six products are 2:4. With the straight-through
/// gradient `da` is dense and so are `fc1`'s products.
///
/// - Parameters:
///   - fc1: `weight [hidden, in]` and an optional `bias [hidden]`.
///   - fc2: `weight [out, hidden]` and an optional `bias [out]`.
public func sparseActivationMLP(
  _ x: Variable, fc1: (weight: Variable, bias: Variable?), fc2: (weight: Variable, bias: Variable?),
  algorithm: Sparse24.Algorithm = .largestValuesGreedy, gradient: Sparse24Gradient = .masked
) -> Variable {
  precondition(fc1.weight.shape.count == 2 && fc2.weight.shape.count == 2, "weights must be [out, in]")
  precondition(algorithm.isTransposable, "2:4 activations need a transposable algorithm (the weight gradient runs on h̃ᵀ)")
  let (hidden, d) = (fc1.weight.shape[0], fc1.weight.shape[1])
  let n = fc2.weight.shape[0]
  precondition(x.shape.last == d, "x \(x.shape) does not end in fc1's \(d) input features")
  precondition(fc2.weight.shape[1] == hidden, "fc2 takes \(fc2.weight.shape[1]) inputs, fc1 gives \(hidden)")
  if let b = fc1.bias { precondition(b.shape == [hidden], "fc1's bias must be [\(hidden)], got \(b.shape)") }
  if let b = fc2.bias { precondition(b.shape == [n], "fc2's bias must be [\(n)], got \(b.shape)") }
  let m = d == 0 ? 0 : x.count / d
  let a = product(x.value, fc1.weight.value, transposeB: true, m: m, n: hidden, k: d, bias: fc1.bias?.value)
  let h = a.map { $0 > 0 ? $0 * $0 : 0 }
  let sparse = sparsified(h, rows: m, columns: hidden, algorithm, name: "sparse activations")
  let y = sparseActivationProduct(sparse, weight: fc2.weight.value, bias: fc2.bias?.value, tokens: m, outputs: n)
  let parents = [x, fc1.weight, fc2.weight] + [fc1.bias, fc2.bias].compactMap { $0 }
  return Variable(y, shape: Array(x.shape.dropLast()) + [n], parents: parents) { out in
    let g = out.gradient!
    if fc2.weight.requiresGradient { fc2.weight.accumulate(sparseWeightGradient(g, sparse, tokens: m, outputs: n)) }
    if let b = fc2.bias, b.requiresGradient { b.accumulate(columnSums(g, rows: m, columns: n)) }
    guard x.requiresGradient || fc1.weight.requiresGradient || fc1.bias?.requiresGradient == true else { return }
    // da = (g · W₂) ⊙ 2·relu(a), masked by h̃'s mask.
    var da = product(g, fc2.weight.value, m: m, n: hidden, k: n)
    da.withUnsafeMutableBufferPointer { da in
      a.withUnsafeBufferPointer { a in
        for i in 0..<da.count { da[i] *= a[i] > 0 ? 2 * a[i] : 0 }
      }
    }
    if gradient == .masked { applyMask(sparse.mask, to: &da) }
    if let b = fc1.bias, b.requiresGradient { b.accumulate(columnSums(da, rows: m, columns: hidden)) }
    guard gradient == .masked else {
      if fc1.weight.requiresGradient { fc1.weight.accumulate(product(da, transposeA: true, x.value, m: hidden, n: d, k: m)) }
      if x.requiresGradient { x.accumulate(product(da, fc1.weight.value, m: m, n: d, k: hidden)) }
      return
    }
    let daSparse = applied(sparse.mask, to: da)
    // dW₁ [hidden, d] = daᵀ · x: (xᵀ · (daᵀ)ᵀ)ᵀ with daᵀ's 2:4 form (along the tokens).
    if fc1.weight.requiresGradient {
      fc1.weight.accumulate(
        sparseProduct(daSparse, .transposed, x.value, tokens: d, xTransposed: true, outputs: hidden, yTransposed: true))
    }
    // dx [m, d] = da · W₁: (W₁ᵀ · daᵀ)ᵀ with da's 2:4 form.
    if x.requiresGradient {
      x.accumulate(
        sparseProduct(daSparse, .matrix, fc1.weight.value, tokens: d, xTransposed: true, outputs: m, yTransposed: true))
    }
  }
}

/// `x · Sᵀ (+ bias)` on the 2:4 kernel with `S` = `sparse`'s matrix or its transpose, `[outputs, k]`
/// (``Sparse24/BothWays/multiply(_:x:tokens:xTransposed:into:yTransposed:bias:workers:)``).
private func sparseProduct(
  _ sparse: Sparse24.BothWays, _ side: Sparse24.BothWays.Side, _ x: [Float], tokens: Int, xTransposed: Bool = false,
  outputs: Int, yTransposed: Bool = false, bias: [Float]? = nil
) -> [Float] {
  [Float](unsafeUninitializedCapacity: tokens * outputs) { y, count in
    count = tokens * outputs
    guard count > 0 else { return }
    x.withUnsafeBufferPointer { x in
      // An empty inner dimension: the kernel reads nothing from x.
      let xp = x.baseAddress ?? UnsafePointer(bitPattern: 64)!
      if let bias {
        bias.withUnsafeBufferPointer { b in
          sparse.multiply(
            side, x: xp, tokens: tokens, xTransposed: xTransposed, into: y.baseAddress!, yTransposed: yTransposed,
            bias: b.baseAddress)
        }
      } else {
        sparse.multiply(side, x: xp, tokens: tokens, xTransposed: xTransposed, into: y.baseAddress!, yTransposed: yTransposed)
      }
    }
  }
}

/// `h̃ · Wᵀ + bias` `[tokens, outputs]` as `(W · h̃ᵀ)ᵀ`: the activations `h̃` are the 2:4 operand.
private func sparseActivationProduct(
  _ sparse: Sparse24.BothWays, weight: [Float], bias: [Float]?, tokens m: Int, outputs n: Int
) -> [Float] {
  var y = sparseProduct(sparse, .matrix, weight, tokens: n, outputs: m, yTransposed: true)
  if let bias {
    y.withUnsafeMutableBufferPointer { y in
      bias.withUnsafeBufferPointer { b in
        for i in 0..<m { for j in 0..<n { y[i * n + j] += b[j] } }
      }
    }
  }
  return y
}

/// The weight gradient `gᵀ · h̃` `[outputs, k]` of a sparse-activation product: `h̃ᵀ`'s 2:4 form
/// (along the tokens) times `gᵀ`, read from `g [tokens, outputs]` as is.
private func sparseWeightGradient(_ g: [Float], _ sparse: Sparse24.BothWays, tokens m: Int, outputs n: Int) -> [Float] {
  sparseProduct(sparse, .transposed, g, tokens: n, xTransposed: true, outputs: sparse.mask.columns)
}

/// A Linear layer trained with 2:4 weights (torchao's `SemiSparseLinear`): the dense weight is
/// the parameter, made 2:4 afresh every forward pass (``semiSparseLinear(_:weight:bias:algorithm:gradient:prunedDecay:)``),
/// so the optimizer updates dense values and the mask follows them. Made from a ``Linear`` by
/// ``swapLinearWithSemiSparseLinear(_:algorithm:gradient:prunedDecay:filter:)``, sharing its parameters.
public final class SemiSparseLinear: LinearLayer {
  public let weight: Variable
  public let bias: Variable?
  public let algorithm: Sparse24.Algorithm
  public let gradient: Sparse24Gradient
  /// SR-STE's decay of pruned weights (0: none).
  public let prunedDecay: Float

  /// A layer on `linear`'s parameters (shared, not copied).
  public init(
    _ linear: Linear, algorithm: Sparse24.Algorithm = .largestAbsValuesGreedy, gradient: Sparse24Gradient = .straightThrough,
    prunedDecay: Float = 0
  ) {
    weight = linear.weight
    bias = linear.bias
    self.algorithm = algorithm
    self.gradient = gradient
    self.prunedDecay = prunedDecay
    super.init(inFeatures: linear.inFeatures, outFeatures: linear.outFeatures)
  }

  public override var ownParameters: [(name: String, parameter: Variable)] {
    [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
  }

  public override func callAsFunction(_ x: Variable) -> Variable {
    inputObserver?(x)
    return semiSparseLinear(x, weight: weight, bias: bias, algorithm: algorithm, gradient: gradient, prunedDecay: prunedDecay)
  }

  /// The dense master weight (what the optimizer updates).
  public override func denseWeight() -> Tensor { weight.tensor }
  public override var biasValues: [Float]? { bias?.value }

  /// The weight the layer computes with now: the master weight made 2:4.
  public func sparseWeight() -> Tensor {
    let mask = sparsified(weight.value, rows: outFeatures, columns: inFeatures, algorithm, name: "weight").mask
    return Tensor(masked(weight.value, by: mask), shape: [outFeatures, inFeatures])
  }
}

/// Swaps each ``Linear`` of `model` that `filter` accepts (by name) for a ``SemiSparseLinear`` on
/// the same parameters (torchao's `swap_linear_with_semi_sparse_linear`); returns their names.
@discardableResult
public func swapLinearWithSemiSparseLinear(
  _ model: Module, algorithm: Sparse24.Algorithm = .largestAbsValuesGreedy, gradient: Sparse24Gradient = .straightThrough,
  prunedDecay: Float = 0, filter: (_ name: String, _ layer: Linear) -> Bool = { _, _ in true }
) -> [String] {
  let chosen = model.linearLayers().filter { filter($0.name, $0.layer) }
  for (_, layer) in chosen {
    model.replace(layer, with: SemiSparseLinear(layer, algorithm: algorithm, gradient: gradient, prunedDecay: prunedDecay))
  }
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

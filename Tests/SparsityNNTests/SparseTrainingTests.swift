import SparsityCore
import SparsityKernels
import SparsityTestSupport
import Testing

@testable import SparsityNN

/// 2:4 sparse training ops: gradients against finite differences (values spaced apart so a
/// finite-difference step never changes which elements a tile keeps), the straight-through
/// gradients against their definition, the 2:4 products against the dense ones.
@Suite("2:4 sparse training: sparsify24, semi-sparse and sparse-activation linears")
struct SparseTrainingTests {
  /// Values whose magnitudes differ pairwise by at least 0.02 (a shuffled ladder, random signs).
  static func spaced(_ shape: [Int], seed: UInt64, positive: Bool = false) -> Variable {
    var rng = SeededGenerator(seed: seed)
    let count = shape.reduce(1, *)
    let values = (0..<count).map { Float($0 + 1) * 0.02 }.shuffled(using: &rng).map { v in
      positive || Bool.random(using: &rng) ? v : -v
    }
    return Variable(values, shape: shape, requiresGradient: true)
  }

  /// `y · r` summed, back-propagated: the gradients of every input for output seed `r`.
  static func gradients(_ inputs: [Variable], seed: UInt64, _ f: ([Variable]) -> Variable) -> [[Float]] {
    let out = f(inputs)
    for x in inputs { x.gradient = nil }
    out.backward(seed: randomNormalFloats(out.count, seed: seed))
    return inputs.map { $0.gradient ?? [Float](repeating: 0, count: $0.count) }
  }

  @Test("sparsify24 keeps what the tile mask keeps; masked gradients match finite differences, straight-through passes g", arguments: Sparse24Gradient.allCases)
  func sparsify24Gradients(mode: Sparse24Gradient) throws {
    let x = Self.spaced([6, 10], seed: 1)
    let y = sparsify24(x, gradient: mode)
    let expected = try Sparse24.applyDense(try Sparse24.sparsifyBothWays(x.tensor).mask, to: x.tensor).floatValues
    #expect(y.value == expected)
    for group in stride(from: 0, to: 60, by: 10).flatMap({ row in [row, row + 4, row + 8] }) {
      #expect(y.value[group..<min(group + 4, group - group % 10 + 10)].filter { $0 != 0 }.count <= 2, "group at \(group)")
    }
    if mode == .masked {
      expectGradientsMatch([x], epsilon: 1e-3) { sparsify24($0[0], gradient: .masked) }
    } else {
      let g = Self.gradients([x], seed: 5) { sparsify24($0[0], gradient: .straightThrough) }[0]
      #expect(g == randomNormalFloats(x.count, seed: 5))
    }
  }

  @Test("semi-sparse linear equals the dense linear on the 2:4 weight; its gradients", arguments: Sparse24Gradient.allCases)
  func semiSparseLinearGradients(mode: Sparse24Gradient) throws {
    let (x, w, b) = (randomVariable([2, 5, 12], seed: 2), Self.spaced([9, 12], seed: 3), randomVariable([9], seed: 4))
    let sparseWeight = Variable(try Sparse24.applyDense(try Sparse24.sparsifyBothWays(w.tensor).mask, to: w.tensor).floatValues, shape: w.shape, requiresGradient: true)
    let ours = semiSparseLinear(x, weight: w, bias: b, gradient: mode)
    let dense = linear(x, weight: sparseWeight, bias: b)
    #expect(ours.shape == [2, 5, 9])
    #expect(zip(ours.value, dense.value).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
    // The input and bias gradients are the dense linear's on W̃ in both modes.
    let g = Self.gradients([x, w, b], seed: 6) { semiSparseLinear($0[0], weight: $0[1], bias: $0[2], gradient: mode) }
    let reference = Self.gradients([x, sparseWeight, b], seed: 6) { linear($0[0], weight: $0[1], bias: $0[2]) }
    #expect(zip(g[0], reference[0]).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })
    #expect(zip(g[2], reference[2]).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })
    switch mode {
    case .masked:
      // The true gradient of the forward pass: finite differences agree, pruned weights get 0.
      expectGradientsMatch([x, w, b], epsilon: 1e-3) { semiSparseLinear($0[0], weight: $0[1], bias: $0[2], gradient: .masked) }
    case .straightThrough:
      // gᵀ · x over every weight, pruned ones included: the dense linear's weight gradient.
      #expect(zip(g[1], reference[1]).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })
      #expect(g[1].filter { $0 == 0 }.count < g[1].count / 2)
    }
  }

  @Test("SR-STE: the pruned-weight decay adds λ·w to the gradient of pruned weights only")
  func prunedDecay() throws {
    let (x, w) = (randomVariable([6, 12], seed: 21), Self.spaced([8, 12], seed: 22))
    let plain = Self.gradients([x, w], seed: 23) { semiSparseLinear($0[0], weight: $0[1]) }[1]
    let decayed = Self.gradients([x, w], seed: 23) { semiSparseLinear($0[0], weight: $0[1], prunedDecay: 0.5) }[1]
    let mask = try Sparse24.sparsifyBothWays(w.tensor).mask
    for i in 0..<8 {
      for j in 0..<12 {
        let expected = plain[i * 12 + j] + (mask[i, j] ? 0 : 0.5 * w.value[i * 12 + j])
        #expect(abs(decayed[i * 12 + j] - expected) <= 1e-6, "(\(i), \(j))")
      }
    }
  }

  @Test("semi-sparse linear with the per-row (not transposable) algorithm")
  func semiSparsePerRow() {
    let (x, w) = (randomVariable([7, 8], seed: 7), Self.spaced([5, 8], seed: 8))
    expectGradientsMatch([x, w], epsilon: 1e-3) { semiSparseLinear($0[0], weight: $0[1], algorithm: .largestAbsPerRow, gradient: .masked) }
  }

  @Test("sparse-activation linear equals the dense linear on sparsify24(h); its gradients", arguments: Sparse24Gradient.allCases)
  func sparseActivationGradients(mode: Sparse24Gradient) {
    let (h, w, b) = (Self.spaced([3, 4, 16], seed: 9, positive: true), randomVariable([6, 16], seed: 10), randomVariable([6], seed: 11))
    let ours = sparseActivationLinear(h, weight: w, bias: b, gradient: mode)
    let dense = Gradients.disabled { linear(sparsify24(h, algorithm: .largestValuesGreedy), weight: w, bias: b) }
    #expect(ours.shape == [3, 4, 6])
    #expect(zip(ours.value, dense.value).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
    let g = Self.gradients([h, w, b], seed: 12) { sparseActivationLinear($0[0], weight: $0[1], bias: $0[2], gradient: mode) }
    let reference = Self.gradients([h, w, b], seed: 12) {
      linear(sparsify24($0[0], algorithm: .largestValuesGreedy, gradient: mode), weight: $0[1], bias: $0[2])
    }
    for (i, name) in ["h", "weight", "bias"].enumerated() {
      #expect(zip(g[i], reference[i]).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "\(name)")
    }
    if mode == .masked {
      expectGradientsMatch([h, w, b], epsilon: 1e-3) { sparseActivationLinear($0[0], weight: $0[1], bias: $0[2], gradient: .masked) }
    }
  }

  @Test(
    "sparse-activation MLP equals fc2(sparsify24(relu(fc1(x))²)) and its gradients, with fc1's backward on 2:4",
    arguments: Sparse24Gradient.allCases, [(2, 5, 12, 16, 10), (1, 200, 20, 24, 6)])
  func sparseActivationMLPGradients(mode: Sparse24Gradient, shape: (Int, Int, Int, Int, Int)) {
    let (batch, tokens, d, hidden, n) = shape
    let inputs = [
      randomVariable([batch, tokens, d], seed: 13), randomVariable([hidden, d], seed: 14), randomVariable([hidden], seed: 15),
      randomVariable([n, hidden], seed: 16), randomVariable([n], seed: 17),
    ]
    func ours(_ v: [Variable]) -> Variable {
      sparseActivationMLP(v[0], fc1: (v[1], v[2]), fc2: (v[3], v[4]), gradient: mode)
    }
    func composed(_ v: [Variable]) -> Variable {
      let h = squaredReLU(linear(v[0], weight: v[1], bias: v[2]))
      return linear(sparsify24(h, algorithm: .largestValuesGreedy, gradient: mode), weight: v[3], bias: v[4])
    }
    let (y, reference) = (ours(inputs), composed(inputs))
    #expect(y.shape == [batch, tokens, n])
    #expect(zip(y.value, reference.value).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })
    let g = Self.gradients(inputs, seed: 18, ours), expected = Self.gradients(inputs, seed: 18, composed)
    for (i, name) in ["x", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"].enumerated() {
      let scale = max(1, expected[i].map(abs).max() ?? 0)
      #expect(zip(g[i], expected[i]).allSatisfy { abs($0 - $1) <= 1e-4 * scale }, "\(name)")
    }
  }

  @Test("swapping Linear for SemiSparseLinear shares the parameters both ways; training is reproducible")
  func swapAndTrain() throws {
    func run() throws -> [Float] {
      var rng = SeededGenerator(seed: 42)
      let model = MLP(8, hidden: 16, generator: &rng)
      let weights = model.linearLayers().map(\.layer.weight)
      #expect(swapLinearWithSemiSparseLinear(model).count == 2)
      let layers = model.namedModules().compactMap { $0.module as? SemiSparseLinear }
      #expect(layers.count == weights.count && zip(layers, weights).allSatisfy { $0.weight === $1 })
      let optimizer = SGD(model.parameters())
      let x = randomVariable([12, 8], seed: 13)
      for _ in 0..<3 {
        let loss = maskedMeanSquaredError(model(x), target: [Float](repeating: 0.5, count: 96), rowMask: [Int32](repeating: 1, count: 12))
        optimizer.zeroGradients()
        loss.backward()
        optimizer.step(learningRate: 0.1)
      }
      swapSemiSparseLinearWithLinear(model, keepingMask: true)
      let back = model.linearLayers().map(\.layer)
      #expect(back.count == weights.count && zip(back, weights).allSatisfy { $0.weight === $1 })
      // Kept the mask: every row of 4 holds at most 2 nonzeros.
      for layer in back {
        let v = layer.weight.value
        for group in stride(from: 0, to: v.count, by: 4) { #expect(v[group..<group + 4].filter { $0 != 0 }.count <= 2) }
      }
      return back.flatMap(\.weight.value)
    }
    #expect(try run() == (try run()))
  }
}

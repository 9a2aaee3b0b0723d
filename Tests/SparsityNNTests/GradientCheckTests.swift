import Foundation
import SparsityCore
import SparsityTestSupport
import Testing

import SparsityModels
@testable import SparsityNN

/// A parameter-like variable with normal values; `awayFromZero` keeps |value| ≥ 0.1 so a
/// finite-difference step never crosses a kink (ReLU).
func randomVariable(_ shape: [Int], seed: UInt64, scale: Double = 1, awayFromZero: Bool = false) -> Variable {
  let values = randomNormalFloats(shape.reduce(1, *), seed: seed, scale: scale).map { v -> Float in
    awayFromZero && abs(v) < 0.1 ? (v < 0 ? v - 0.1 : v + 0.1) : v
  }
  return Variable(values, shape: shape, requiresGradient: true)
}

/// Compares back-propagated gradients of `Σ f(inputs) ⊙ r` (r random) with central finite
/// differences, on up to `samples` entries of every input.
func expectGradientsMatch(
  _ inputs: [Variable], epsilon: Float = 1e-2, tolerance: Double = 2e-2, samples: Int = 48,
  sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Variable]) -> Variable
) {
  let out = f(inputs)
  let r = randomNormalFloats(out.count, seed: 99)
  for x in inputs { x.gradient = nil }
  out.backward(seed: r)
  func loss() -> Double {
    let y = Gradients.disabled { f(inputs) }
    return zip(y.value, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
  }
  for (n, x) in inputs.enumerated() {
    let analytic = x.gradient ?? [Float](repeating: 0, count: x.count)
    let step = max(1, x.count / samples)
    for i in stride(from: 0, to: x.count, by: step) {
      let saved = x.value[i]
      x.value[i] = saved + epsilon
      let up = loss()
      x.value[i] = saved - epsilon
      let down = loss()
      x.value[i] = saved
      let numeric = (up - down) / Double(2 * epsilon)
      let error = abs(Double(analytic[i]) - numeric)
      #expect(
        error <= tolerance * max(1, abs(numeric)),
        "input \(n) \(x.shape) entry \(i): backprop \(analytic[i]), finite differences \(numeric)",
        sourceLocation: sourceLocation)
    }
  }
}

@Suite("Gradient checks against finite differences")
struct GradientCheckTests {
  @Test("linear (x, weight, bias) on a ragged 3-D input", arguments: [true, false])
  func linearGradients(bias: Bool) {
    let x = randomVariable([2, 3, 7], seed: 1)
    let w = randomVariable([5, 7], seed: 2)
    let b = randomVariable([5], seed: 3)
    expectGradientsMatch(bias ? [x, w, b] : [x, w]) { v in
      linear(v[0], weight: v[1], bias: bias ? v[2] : nil)
    }
  }

  @Test("batched matmul, with and without transposing b", arguments: [true, false])
  func matmulGradients(transposeB: Bool) {
    let a = randomVariable([2, 3, 4, 5], seed: 4)
    let b = randomVariable(transposeB ? [2, 3, 6, 5] : [2, 3, 5, 6], seed: 5)
    expectGradientsMatch([a, b]) { v in matmul(v[0], v[1], transposeB: transposeB) }
  }

  @Test("add: same shape and suffix broadcast")
  func addGradients() {
    expectGradientsMatch([randomVariable([3, 4], seed: 6), randomVariable([3, 4], seed: 7)]) { add($0[0], $0[1]) }
    expectGradientsMatch([randomVariable([2, 3, 4], seed: 8), randomVariable([3, 4], seed: 9)]) { add($0[0], $0[1]) }
    expectGradientsMatch([randomVariable([2, 3, 4], seed: 10), randomVariable([4], seed: 11)]) { add($0[0], $0[1]) }
  }

  @Test("scaled") func scaledGradients() {
    expectGradientsMatch([randomVariable([3, 5], seed: 12)]) { scaled($0[0], by: -0.37) }
  }

  @Test("activations", arguments: Activation.allCases)
  func activationGradients(activation: Activation) {
    expectGradientsMatch([randomVariable([4, 9], seed: 13, scale: 2, awayFromZero: true)]) { activation($0[0]) }
  }

  @Test("dropout with a fixed mask")
  func dropoutGradients() {
    expectGradientsMatch([randomVariable([6, 8], seed: 14)]) { v in
      var g = SeededGenerator(seed: 5)  // the same mask on every evaluation
      return dropout(v[0], probability: 0.3, generator: &g)
    }
  }

  @Test("layerNorm (x, weight, bias)")
  func layerNormGradients() {
    let x = randomVariable([3, 2, 6], seed: 15, scale: 2)
    let w = randomVariable([6], seed: 16)
    let b = randomVariable([6], seed: 17)
    expectGradientsMatch([x, w, b]) { v in layerNorm(v[0], weight: v[1], bias: v[2]) }
  }

  @Test("layerNorm of a residual sum: gradients, and the fused inference pass equals add + layerNorm")
  func residualLayerNorm() {
    let x = randomVariable([3, 2, 11], seed: 18, scale: 2)
    let r = randomVariable([3, 2, 11], seed: 19)
    let w = randomVariable([11], seed: 20)
    let b = randomVariable([11], seed: 21)
    expectGradientsMatch([x, r, w, b]) { v in layerNorm(v[0], adding: v[1], weight: v[2], bias: v[3]) }
    let composed = layerNorm(add(x, r), weight: w, bias: b)
    let fused = Gradients.disabled { layerNorm(x, adding: r, weight: w, bias: b) }
    #expect(!fused.requiresGradient && fused.shape == composed.shape)
    #expect(zip(fused.value, composed.value).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
  }

  @Test("softmax over the last axis")
  func softmaxGradients() {
    expectGradientsMatch([randomVariable([2, 3, 5], seed: 18, scale: 2)]) { softmax($0[0]) }
  }

  @Test("cross-entropy")
  func crossEntropyGradients() {
    expectGradientsMatch([randomVariable([5, 4], seed: 19, scale: 2)]) { crossEntropy($0[0], labels: [0, 3, 1, 1, 2]) }
  }

  @Test("KL divergence toward target logits: gradients at temperatures 1 and 2, the value, zero at the target")
  func klDivergenceGradients() {
    var g = SeededGenerator(seed: 40)
    let target = (0..<28).map { _ in Float(g.nextNormal()) * 2 }
    for temperature: Float in [1, 2] {
      expectGradientsMatch([randomVariable([4, 7], seed: 41, scale: 2)]) {
        klDivergence($0[0], targetLogits: target, temperature: temperature)
      }
    }
    // By hand: one row, logits (0, log 3) → q = (1/4, 3/4); target (0, 0) → p = (1/2, 1/2).
    let x = Variable([0, log(3)], shape: [1, 2], requiresGradient: true)
    let loss = klDivergence(x, targetLogits: [0, 0])
    let expected = 0.5 * log(0.5 / 0.25) + 0.5 * log(0.5 / 0.75)
    #expect(abs(Double(loss.scalar) - expected) < 1e-6)
    loss.backward()
    #expect(zip(x.gradient!, [-0.25, 0.25] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
    let same = klDivergence(Variable(target, shape: [4, 7]), targetLogits: target.map { $0 + 5 })  // shift-invariant
    #expect(abs(same.scalar) < 1e-6)
  }

  @Test("masked mean squared error: 2-D and 3-D, padding rows ignored")
  func maskedMeanSquaredErrorGradients() {
    var g = SeededGenerator(seed: 37)
    let target = (0..<30).map { _ in Float(g.nextNormal()) }
    expectGradientsMatch([randomVariable([6, 5], seed: 38)]) {
      maskedMeanSquaredError($0[0], target: target, rowMask: [1, 0, 1, 1, 0, 1])
    }
    expectGradientsMatch([randomVariable([2, 3, 5], seed: 39)]) {
      maskedMeanSquaredError($0[0], target: target, rowMask: [1, 1, 1, 1, 0, 0])
    }
  }

  @Test("masked mean squared error: the value, and no rows kept")
  func maskedMeanSquaredErrorValue() {
    let x = Variable([1, 2, 3, 4, 5, 6], shape: [3, 2], requiresGradient: true)
    let loss = maskedMeanSquaredError(x, target: [0, 0, 9, 9, 5, 4], rowMask: [1, 0, 1])
    #expect(abs(loss.scalar - (1 + 4 + 0 + 4) / 4) < 1e-6)
    loss.backward()
    #expect(x.gradient == [0.5, 1, 0, 0, 0, 1])
    let none = maskedMeanSquaredError(x, target: [Float](repeating: 1, count: 6), rowMask: [0, 0, 0])
    #expect(none.scalar == 0)
  }

  @Test("reshape and permute")
  func shapeGradients() {
    expectGradientsMatch([randomVariable([2, 3, 4], seed: 20)]) { reshaped($0[0], [4, 6]) }
    expectGradientsMatch([randomVariable([2, 3, 4, 5], seed: 21)]) { permuted($0[0], [0, 2, 3, 1]) }
    expectGradientsMatch([randomVariable([3, 4], seed: 22)]) { permuted($0[0], [1, 0]) }
  }

  @Test("mean over each axis", arguments: [0, 1, 2])
  func meanGradients(axis: Int) {
    expectGradientsMatch([randomVariable([2, 3, 4], seed: 23)]) { mean($0[0], axis: axis) }
  }

  @Test("overlapping image patches", arguments: [(4, 2), (2, 2), (3, 1)])
  func patchGradients(patch: Int, stride: Int) {
    let side = patch == 3 ? 5 : 6
    expectGradientsMatch([randomVariable([2, side * side], seed: 36)]) { imagePatches($0[0], side: side, patch: patch, stride: stride) }
  }

  @Test("embedding with repeated ids")
  func embeddingGradients() {
    expectGradientsMatch([randomVariable([5, 3], seed: 24)]) { embedding([4, 0, 4, 2, 4], table: $0[0]) }
  }

  @Test("attention with a key mask, through the projections")
  func attentionGradients() {
    let q = randomVariable([2, 4, 6], seed: 25)
    let k = randomVariable([2, 4, 6], seed: 26)
    let v = randomVariable([2, 4, 6], seed: 27)
    let mask: [Int32] = [1, 1, 1, 1, 1, 1, 0, 0]
    expectGradientsMatch([q, k, v]) { attention(query: $0[0], key: $0[1], value: $0[2], heads: 2, keyMask: mask) }
  }

  @Test("inference attention (fused) equals the recorded graph's", arguments: [(1, 1, 1), (2, 5, 2), (3, 17, 4)])
  func fusedAttentionMatchesGraph(batch: Int, tokens: Int, heads: Int) {
    let shape = [batch, tokens, heads * 3]
    let (q, k, v) = (randomVariable(shape, seed: 50), randomVariable(shape, seed: 51), randomVariable(shape, seed: 52))
    let mask = (0..<batch * tokens).map { Int32($0 % tokens < max(1, tokens - $0 / tokens) ? 1 : 0) }
    let graph = attention(query: q, key: k, value: v, heads: heads, keyMask: mask)
    #expect(graph.requiresGradient)
    let fused = attention(
      query: Variable(q.value, shape: shape), key: Variable(k.value, shape: shape), value: Variable(v.value, shape: shape),
      heads: heads, keyMask: mask)
    #expect(fused.shape == graph.shape)
    #expect(zip(fused.value, graph.value).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
  }

  @Test("a transformer block and a ViT end to end (all parameters)")
  func moduleGradients() {
    var g = SeededGenerator(seed: 28)
    let block = TransformerEncoderBlock(8, heads: 2, mlpHidden: 12, activation: .gelu, generator: &g)
    let x = randomVariable([2, 3, 8], seed: 29)
    expectGradientsMatch([x] + block.parameters(), samples: 12) { _ in block(x) }

    let vit = VisionTransformer(
      imageSide: 4, patch: 2, dimension: 8, depth: 1, heads: 2, mlpHidden: 8, classes: 3, seed: 30)
    let images = Variable(randomVariable([2, 16], seed: 31).value, shape: [2, 16])
    expectGradientsMatch(vit.parameters(), samples: 8) { _ in crossEntropy(vit.logits(images), labels: [2, 0]) }
  }

  @Test("MLP classifier with squared ReLU")
  func classifierGradients() {
    let model = MLPClassifier(inputs: 6, hidden: [7, 5], classes: 3, activation: .squaredReLU, seed: 32)
    let x = Variable(randomVariable([4, 6], seed: 33).value, shape: [4, 6])
    expectGradientsMatch(model.parameters(), samples: 10) { _ in crossEntropy(model.logits(x), labels: [0, 1, 2, 1]) }
  }

  @Test("a compressed Linear passes gradients to its input")
  func sparseLinearGradients() throws {
    var g = SeededGenerator(seed: 34)
    let layer = Linear(8, 4, generator: &g)
    for j in layer.weight.value.indices where j % 4 >= 2 { layer.weight.value[j] = 0 }  // 2:4
    let packed = try PackedLinear(.dense(layer.weight.tensor), as: .twoFour, bias: layer.bias?.value)
    expectGradientsMatch([randomVariable([3, 8], seed: 35)]) { packed($0[0]) }
  }
}

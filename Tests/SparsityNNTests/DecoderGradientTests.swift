import Foundation
import SparsityCore
import SparsityTestSupport
import Testing

@testable import SparsityNN

/// The decoder operations (RMSNorm, SwiGLU, rotary embeddings, causal grouped-query attention)
/// against finite differences, and their inference kernels against the recorded path.
@Suite("Decoder operations")
struct DecoderGradientTests {
  @Test("rmsNorm (x, weight)")
  func rmsNormGradients() {
    let x = randomVariable([3, 11], seed: 1)
    let w = randomVariable([11], seed: 2)
    expectGradientsMatch([x, w]) { v in rmsNorm(v[0], weight: v[1], epsilon: 1e-5) }
  }

  @Test("siluGated of a stacked gate/up projection")
  func siluGatedGradients() {
    let x = randomVariable([4, 2 * 9], seed: 3)
    expectGradientsMatch([x]) { v in siluGated(v[0]) }
  }

  @Test("rotary embeddings at an offset")
  func rotaryGradients() {
    let x = randomVariable([5, 3 * 8], seed: 4)
    let rope = RotaryEmbedding(headDimension: 8, base: 10_000)
    expectGradientsMatch([x]) { v in rotary(v[0], rope, heads: 3, offset: 7) }
  }

  @Test("rotary rotates element i with i + d/2 by p·θᵢ")
  func rotaryValues() {
    let rope = RotaryEmbedding(headDimension: 4, base: 100)
    let x = Variable([1, 0, 0, 1], shape: [1, 4])
    let y = Gradients.disabled { rotary(x, rope, heads: 1, offset: 2) }.value
    // θ₀ = 1, θ₁ = 1/10: (x₀, x₂) = (1, 0) turns by 2, (x₁, x₃) = (0, 1) by 0.2.
    let expected: [Float] = [Float(cos(2.0)), -Float(sin(0.2)), Float(sin(2.0)), Float(cos(0.2))]
    for (a, b) in zip(y, expected) { #expect(abs(a - b) < 1e-6) }
  }

  @Test("causal grouped-query attention: gradients, and the kernel equals the recorded path")
  func causalAttentionGradients() {
    let (t, heads, kvHeads, d) = (6, 4, 2, 3)
    let q = randomVariable([t, heads * d], seed: 5)
    let k = randomVariable([t, kvHeads * d], seed: 6)
    let v = randomVariable([t, kvHeads * d], seed: 7)
    expectGradientsMatch([q, k, v]) { x in causalAttention(query: x[0], key: x[1], value: x[2], heads: heads, kvHeads: kvHeads) }
    let recorded = causalAttention(query: q, key: k, value: v, heads: heads, kvHeads: kvHeads).value
    let kernel = Gradients.disabled { causalAttention(query: q, key: k, value: v, heads: heads, kvHeads: kvHeads) }.value
    for (a, b) in zip(recorded, kernel) { #expect(abs(a - b) < 1e-5) }
  }

  @Test("rmsNorm and siluGated kernels equal their recorded paths")
  func kernelsEqualRecordedPaths() {
    let x = randomVariable([3, 21], seed: 8)
    let w = randomVariable([21], seed: 9)
    let a = rmsNorm(x, weight: w, epsilon: 1e-6).value
    let b = Gradients.disabled { rmsNorm(x, weight: w, epsilon: 1e-6) }.value
    #expect(a == b)
    let gateUp = randomVariable([3, 2 * 13], seed: 10)
    let s = Gradients.disabled { siluGated(gateUp) }.value
    for r in 0..<3 {
      for j in 0..<13 {
        let z = Double(gateUp.value[r * 26 + j])
        let expected = z / (1 + exp(-z)) * Double(gateUp.value[r * 26 + 13 + j])
        #expect(abs(Double(s[r * 13 + j]) - expected) < 1e-5 * max(1, abs(expected)))
      }
    }
  }

  @Test("repeatedBlocks")
  func repeatedBlocksGradients() {
    let x = randomVariable([2, 3, 2], seed: 13)
    expectGradientsMatch([x]) { v in repeatedBlocks(v[0], times: 3) }
  }

  @Test("concatenatedColumns")
  func concatenatedGradients() {
    let a = randomVariable([3, 4], seed: 11)
    let b = randomVariable([3, 2], seed: 12)
    expectGradientsMatch([a, b]) { v in concatenatedColumns(v[0], v[1]) }
  }
}

import Foundation
import SparsityCore
import SparsityKernels
import Testing

/// ``ScaledDotProductAttention`` against a `Double` reference, on ragged token counts and head
/// sizes (not multiples of the 6-, 8- or 16-wide tiles), with padding masks and q/k/v read
/// from one fused projection.
@Suite("Scaled dot-product attention against a naive reference")
struct AttentionTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var batch, tokens, heads, headDimension: Int
    var testDescription: String { "b\(batch) t\(tokens) h\(heads) d\(headDimension)" }
  }

  static let cases = [
    Case(batch: 1, tokens: 1, heads: 1, headDimension: 1), Case(batch: 2, tokens: 7, heads: 3, headDimension: 5),
    Case(batch: 3, tokens: 16, heads: 2, headDimension: 8), Case(batch: 2, tokens: 37, heads: 2, headDimension: 12),
    Case(batch: 1, tokens: 70, heads: 3, headDimension: 32), Case(batch: 2, tokens: 24, heads: 1, headDimension: 20),
  ]

  /// `softmax(q·kᵀ/√d + mask) · v` in `Double`, masked keys at −10⁹ as the kernel does.
  static func reference(
    _ qkv: [Float], rowStride: Int, hidden d: Int, c: Case, mask: [Int32]
  ) -> [Double] {
    var out = [Double](repeating: 0, count: c.batch * c.tokens * d)
    let hd = c.headDimension
    for n in 0..<c.batch {
      for h in 0..<c.heads {
        for i in 0..<c.tokens {
          let qRow = (n * c.tokens + i) * rowStride + h * hd
          var scores = (0..<c.tokens).map { j -> Double in
            if mask[n * c.tokens + j] == 0 { return -1e9 }
            let kRow = (n * c.tokens + j) * rowStride + d + h * hd
            return (0..<hd).reduce(0.0) { $0 + Double(qkv[qRow + $1]) * Double(qkv[kRow + $1]) } / Double(hd).squareRoot()
          }
          let top = scores.max()!
          scores = scores.map { Foundation.exp($0 - top) }
          let total = scores.reduce(0, +)
          for j in 0..<c.tokens {
            let vRow = (n * c.tokens + j) * rowStride + 2 * d + h * hd
            for e in 0..<hd { out[(n * c.tokens + i) * d + h * hd + e] += scores[j] / total * Double(qkv[vRow + e]) }
          }
        }
      }
    }
    return out
  }

  @Test(arguments: cases)
  func matchesReference(c: Case) {
    let d = c.heads * c.headDimension
    let rowStride = 3 * d + 3  // fused q/k/v rows with a few spare columns
    var g = SeededGenerator(seed: UInt64(c.tokens * 31 + c.headDimension))
    let qkv = (0..<(c.batch * c.tokens * rowStride)).map { _ in Float(g.nextNormal()) }
    // Sequence n keeps its first tokens − n keys (at least one).
    let mask = (0..<(c.batch * c.tokens)).map { Int32($0 % c.tokens < max(1, c.tokens - $0 / c.tokens) ? 1 : 0) }
    let outStride = d + 2
    var out = [Float](repeating: .nan, count: c.batch * c.tokens * outStride)
    qkv.withUnsafeBufferPointer { p in
      mask.withUnsafeBufferPointer { m in
        out.withUnsafeMutableBufferPointer { o in
          let base = p.baseAddress!
          ScaledDotProductAttention.forward(
            query: base, key: base + d, value: base + 2 * d, rowStride: rowStride, into: o.baseAddress!,
            outRowStride: outStride, batch: c.batch, tokens: c.tokens, heads: c.heads, headDimension: c.headDimension,
            keyMask: m)
        }
      }
    }
    let expected = Self.reference(qkv, rowStride: rowStride, hidden: d, c: c, mask: mask)
    var worst = 0.0
    for r in 0..<(c.batch * c.tokens) {
      for e in 0..<d {
        worst = max(worst, abs(Double(out[r * outStride + e]) - expected[r * d + e]))
      }
      // The two spare columns of each output row are not written.
      #expect(out[r * outStride + d].isNaN && out[r * outStride + d + 1].isNaN)
    }
    #expect(worst <= 1e-5, "largest error \(worst)")
  }
}

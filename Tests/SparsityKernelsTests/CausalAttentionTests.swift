import Foundation
import SparsityCore
import SparsityKernels
import Testing

/// ``ScaledDotProductAttention/causal(query:queryRowStride:key:value:kvRowStride:into:outRowStride:queries:offset:heads:kvHeads:headDimension:workers:)``
/// against a `Double` reference: grouped-query heads, cached keys before the new queries
/// (decode: one or a few queries; prefill: many, past the 16-query panels), ragged head sizes,
/// strided rows.
@Suite("Causal grouped-query attention against a naive reference")
struct CausalAttentionTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var queries, offset, heads, kvHeads, headDimension: Int
    var testDescription: String { "q\(queries) offset\(offset) h\(heads)/\(kvHeads) d\(headDimension)" }
  }

  static let cases = [
    Case(queries: 1, offset: 0, heads: 1, kvHeads: 1, headDimension: 2),
    Case(queries: 1, offset: 37, heads: 9, kvHeads: 3, headDimension: 64),
    Case(queries: 3, offset: 5, heads: 4, kvHeads: 2, headDimension: 10),
    Case(queries: 8, offset: 0, heads: 2, kvHeads: 1, headDimension: 6),
    Case(queries: 17, offset: 0, heads: 3, kvHeads: 3, headDimension: 7),
    Case(queries: 40, offset: 11, heads: 6, kvHeads: 2, headDimension: 12),
    Case(queries: 70, offset: 3, heads: 9, kvHeads: 3, headDimension: 64),
  ]

  @Test(arguments: cases)
  func matchesReference(c: Case) {
    let keys = c.offset + c.queries
    let hd = c.headDimension
    let (qStride, kvStride, outStride) = (c.heads * hd + 3, c.kvHeads * hd + 1, c.heads * hd + 2)
    var g = SeededGenerator(seed: UInt64(c.queries * 131 + c.offset * 7 + hd))
    let q = (0..<(c.queries * qStride)).map { _ in Float(g.nextNormal()) }
    let k = (0..<(keys * kvStride)).map { _ in Float(g.nextNormal()) }
    let v = (0..<(keys * kvStride)).map { _ in Float(g.nextNormal()) }
    var out = [Float](repeating: .nan, count: c.queries * outStride)
    q.withUnsafeBufferPointer { qb in
      k.withUnsafeBufferPointer { kb in
        v.withUnsafeBufferPointer { vb in
          out.withUnsafeMutableBufferPointer { ob in
            ScaledDotProductAttention.causal(
              query: qb.baseAddress!, queryRowStride: qStride, key: kb.baseAddress!, value: vb.baseAddress!, kvRowStride: kvStride,
              into: ob.baseAddress!, outRowStride: outStride, queries: c.queries, offset: c.offset, heads: c.heads,
              kvHeads: c.kvHeads, headDimension: hd)
          }
        }
      }
    }
    var worst = 0.0
    for h in 0..<c.heads {
      let kvHead = h / (c.heads / c.kvHeads)
      for i in 0..<c.queries {
        let visible = c.offset + i + 1
        var scores = (0..<visible).map { j in
          (0..<hd).reduce(0.0) { $0 + Double(q[i * qStride + h * hd + $1]) * Double(k[j * kvStride + kvHead * hd + $1]) }
            / Double(hd).squareRoot()
        }
        let top = scores.max()!
        scores = scores.map { Foundation.exp($0 - top) }
        let total = scores.reduce(0, +)
        for e in 0..<hd {
          let expected = (0..<visible).reduce(0.0) { $0 + scores[$1] / total * Double(v[$1 * kvStride + kvHead * hd + e]) }
          worst = max(worst, abs(Double(out[i * outStride + h * hd + e]) - expected))
        }
      }
    }
    #expect(worst < 2e-5, "max |Δ| \(worst)")
    // The spare columns of each output row are not written.
    for i in 0..<c.queries { #expect(out[i * outStride + c.heads * hd].isNaN && out[i * outStride + c.heads * hd + 1].isNaN) }
  }
}

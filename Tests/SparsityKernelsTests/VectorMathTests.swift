import Foundation
import SparsityCore
import SparsityKernels
import SparsityTestSupport
import Testing

/// The vectorised elementwise kernels against `Double` libm, on ragged lengths (tails of 1–7).
@Suite("VectorMath against libm")
struct VectorMathTests {
  static func values(_ count: Int, seed: UInt64, scale: Double) -> [Float] {
    randomNormalFloats(count, seed: seed, scale: scale)
  }

  @Test("exp: relative error ≤ 4e-7, 0 below −87.3", arguments: [1, 7, 8, 13, 100])
  func exponential(count: Int) {
    var v = Self.values(count, seed: UInt64(count), scale: 30) + [-87.2, -88, -1e9, 0, 88.5]
    let x = v
    v.withUnsafeMutableBufferPointer { VectorMath.exp($0) }
    for (xi, yi) in zip(x, v) {
      let expected = xi < -87.3 ? 0 : Foundation.exp(Double(xi))
      #expect(abs(Double(yi) - expected) <= 4e-7 * expected, "exp(\(xi)) = \(yi), expected \(expected)")
    }
  }

  @Test("GELU and its gradient: error ≤ 3e-7 · (1 + |x|)", arguments: [1, 5, 8, 31, 257])
  func gelu(count: Int) {
    let x = Self.values(count, seed: 100 + UInt64(count), scale: 3) + [0, -8, 8, -0.5]
    let g = Self.values(x.count, seed: 200 + UInt64(count), scale: 1)
    var y = [Float](repeating: .nan, count: x.count)
    var dx = [Float](repeating: 0.25, count: x.count)
    x.withUnsafeBufferPointer { xb in
      y.withUnsafeMutableBufferPointer { VectorMath.gelu(xb, into: $0) }
      g.withUnsafeBufferPointer { gb in dx.withUnsafeMutableBufferPointer { VectorMath.geluGradient(xb, gb, accumulatingInto: $0) } }
    }
    for i in x.indices {
      let d = Double(x[i])
      let cdf = 0.5 * (1 + Foundation.erf(d / 2.0.squareRoot()))
      let pdf = Foundation.exp(-0.5 * d * d) / (2 * Double.pi).squareRoot()
      #expect(abs(Double(y[i]) - d * cdf) <= 3e-7 * (1 + abs(d)), "gelu(\(d)) = \(y[i])")
      let expectedGradient = 0.25 + Double(g[i]) * (cdf + d * pdf)
      #expect(abs(Double(dx[i]) - expectedGradient) <= 1e-6 * (1 + abs(expectedGradient)), "gelu'(\(d))")
    }
  }

  @Test("row softmax", arguments: [1, 3, 8, 9, 128])
  func softmax(length: Int) {
    var v = Self.values(4 * length, seed: 300 + UInt64(length), scale: 5)
    let x = v
    v.withUnsafeMutableBufferPointer { VectorMath.softmaxRows($0, length: length) }
    for r in 0..<4 {
      let row = x[r * length..<(r + 1) * length].map(Double.init)
      let top = row.max()!
      let sum = row.map { Foundation.exp($0 - top) }.reduce(0, +)
      for j in 0..<length {
        let expected = Foundation.exp(row[j] - top) / sum
        #expect(abs(Double(v[r * length + j]) - expected) <= 1e-6 * max(expected, 1e-3))
      }
    }
  }
}

@Suite("DenseMatmul against the reference, in every layout")
struct DenseMatmulLayoutTests {
  /// `op(a) · op(b)` for every layout pair against the reference on the untransposed operands.
  @Test(arguments: [(1, 1, 1), (1, 33, 17), (7, 5, 3), (13, 17, 33), (30, 50, 70), (6, 16, 256), (5, 9, 0), (64, 40, 0)])
  func everyLayoutMatchesReference(m: Int, n: Int, k: Int) {
    var g = SeededGenerator(seed: UInt64(m * 7919 + n * 31 + k))
    let a = Tensor.randomNormal([m, k], using: &g), b = Tensor.randomNormal([k, n], using: &g)
    let bias = Tensor.randomNormal([n], using: &g)
    let expected = Tensor.referenceLinear(a, weight: b.transposed(), bias: bias).floatValues
    let scale = max(expected.map { abs($0) }.max() ?? 0, 1)
    for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
      let heldA = (transposeA ? a.transposed() : a).floatValues, heldB = (transposeB ? b.transposed() : b).floatValues
      for workers in [1, 2] {
        var c = [Float](repeating: .nan, count: m * n)
        let one = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        defer { one.deallocate() }
        heldA.withUnsafeBufferPointer { ab in
          heldB.withUnsafeBufferPointer { bb in
            bias.withUnsafeBufferPointer(as: Float.self) { biasb in
              c.withUnsafeMutableBufferPointer { cb in
                DenseMatmul.multiply(
                  ab.baseAddress ?? UnsafePointer(one), transposeA: transposeA, bb.baseAddress ?? UnsafePointer(one),
                  transposeB: transposeB, m: m, n: n, k: k, into: cb.baseAddress!, bias: biasb.baseAddress,
                  workers: workers)
              }
            }
          }
        }
        #expect(
          zip(c, expected).allSatisfy { abs($0 - $1) <= 1e-5 * scale },
          "\(m)x\(n)x\(k), transposeA \(transposeA), transposeB \(transposeB), \(workers) workers")
      }
    }
  }
}

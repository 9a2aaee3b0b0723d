import Foundation
import SparsityCore
import SparsityKernels

// The operations of a Llama-family decoder block: RMS normalisation, SwiGLU, rotary position
// embeddings and causal grouped-query attention. Each is differentiable (checked against finite
// differences in SparsityNNTests); outside a recorded graph each runs on the vectorised kernels.

/// RMS normalisation over the last axis (Llama's `RMSNorm`): `x / √(mean(x²) + ε) · weight`.
public func rmsNorm(_ x: Variable, weight: Variable, epsilon: Float) -> Variable {
  let d = x.shape.last ?? 0
  precondition(weight.shape == [d], "rmsNorm: weight must be [\(d)], got \(weight.shape)")
  let rows = d == 0 ? 0 : x.count / d
  var inverse = [Float](repeating: 0, count: rows)
  let y = [Float](unsafeUninitializedCapacity: x.count) { yb, count in
    count = x.count
    guard d > 0 else { return }
    x.value.withUnsafeBufferPointer { xb in
      weight.value.withUnsafeBufferPointer { wb in
        inverse.withUnsafeMutableBufferPointer { ib in
          VectorMath.rmsNorm(xb, into: yb, d: d, weight: wb, epsilon: epsilon, inverseRMS: ib)
        }
      }
    }
  }
  return Variable(y, shape: x.shape, parents: [x, weight]) { out in
    let g = out.gradient!
    let (xv, wv) = (x.value, weight.value)
    // With r = 1/√(mean(x²) + ε) and u = g ⊙ w: ∂x = r·u − x·r³·(u·x)/d, ∂w = Σ_rows g ⊙ x·r.
    if x.requiresGradient {
      x.accumulate { dx in
        for row in 0..<rows {
          let base = row * d
          let r = inverse[row]
          var ux: Float = 0
          for j in 0..<d { ux += g[base + j] * wv[j] * xv[base + j] }
          let c = r * r * r * ux / Float(d)
          for j in 0..<d { dx[base + j] += r * g[base + j] * wv[j] - c * xv[base + j] }
        }
      }
    }
    if weight.requiresGradient {
      weight.accumulate { dw in
        for row in 0..<rows {
          let base = row * d
          for j in 0..<d { dw[j] += g[base + j] * xv[base + j] * inverse[row] }
        }
      }
    }
  }
}

/// `silu(gate) ⊙ up` with `silu(z) = z·σ(z)` (the SwiGLU of a Llama MLP), from a stacked projection
/// `gateUp [..., 2·n]` holding each row's gate values, then its up values → `[..., n]`.
public func siluGated(_ gateUp: Variable) -> Variable {
  let width = gateUp.shape.last ?? 0
  precondition(width % 2 == 0, "siluGated: the last axis (\(width)) must hold gate and up halves")
  let n = width / 2
  let rows = n == 0 ? 0 : gateUp.count / width
  let y = [Float](unsafeUninitializedCapacity: rows * n) { yb, count in
    count = rows * n
    guard n > 0 else { return }
    gateUp.value.withUnsafeBufferPointer { VectorMath.siluGated($0, into: yb, count: n) }
  }
  return Variable(y, shape: Array(gateUp.shape.dropLast()) + [n], parents: [gateUp]) { out in
    let g = out.gradient!
    let v = gateUp.value
    gateUp.accumulate { d in
      for row in 0..<rows {
        for j in 0..<n {
          let (z, u) = (v[row * width + j], v[row * width + n + j])
          let s = 1 / (1 + Foundation.exp(-z))
          let gy = g[row * n + j]
          d[row * width + j] += gy * u * s * (1 + z * (1 - s))
          d[row * width + n + j] += gy * z * s
        }
      }
    }
  }
}

/// The cosines and sines of rotary position embeddings (Llama's default RoPE, as transformers
/// computes them in `float32`): `inverseFrequency[i] = 1 / base^(2i/d)`, angle `p · inverseFrequency[i]`.
public struct RotaryEmbedding: Sendable {
  public let headDimension: Int
  public let base: Double
  private let inverseFrequency: [Float]

  public init(headDimension: Int, base: Double) {
    precondition(headDimension > 0 && headDimension % 2 == 0, "rotary embeddings need an even head dimension, got \(headDimension)")
    self.headDimension = headDimension
    self.base = base
    inverseFrequency = (0..<headDimension / 2).map { i in
      Float(1 / Foundation.pow(base, Double(Float(2 * i) / Float(headDimension))))
    }
  }

  /// `(cos, sin)`, each `[positions.count, d/2]`.
  package func table(_ positions: Range<Int>) -> (cos: [Float], sin: [Float]) {
    let half = headDimension / 2
    var c = [Float](repeating: 0, count: positions.count * half), s = c
    for (row, p) in positions.enumerated() {
      for i in 0..<half {
        let angle = Float(p) * inverseFrequency[i]
        c[row * half + i] = Foundation.cos(angle)
        s[row * half + i] = Foundation.sin(angle)
      }
    }
    return (c, s)
  }

  /// Rotates, in place, every head of rows `0..<rows` (row `t` at the position of row `t` of
  /// `angles`, ``table(_:)``; `stride` values apart, `heads` heads of `d` values): element `i` pairs with `i + d/2`
  /// (`x·cos + rotate_half(x)·sin`); `inverse` rotates back (the transpose, for gradients).
  package func rotate(
    _ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int, heads: Int, angles: (cos: [Float], sin: [Float]),
    inverse: Bool = false
  ) {
    let half = headDimension / 2
    let (c, s) = angles
    precondition(c.count == rows * half, "rotate: the table holds \(c.count / max(half, 1)) positions, \(rows) rows given")
    let sign: Float = inverse ? -1 : 1
    for t in 0..<rows {
      for h in 0..<heads {
        let head = x + t * stride + h * headDimension
        for i in 0..<half {
          let (co, si) = (c[t * half + i], sign * s[t * half + i])
          let (a, b) = (head[i], head[i + half])
          head[i] = a * co - b * si
          head[i + half] = b * co + a * si
        }
      }
    }
  }
}

/// Rotary position embeddings applied to `x [tokens, heads · d]` for positions `offset ..< offset + tokens`.
public func rotary(_ x: Variable, _ rope: RotaryEmbedding, heads: Int, offset: Int) -> Variable {
  let d = rope.headDimension
  precondition(x.shape.count == 2 && x.shape[1] == heads * d, "rotary: x must be [tokens, \(heads) × \(d)], got \(x.shape)")
  let rows = x.shape[0]
  var y = x.value
  let angles = rope.table(offset..<offset + rows)
  y.withUnsafeMutableBufferPointer { rope.rotate($0.baseAddress!, rows: rows, stride: heads * d, heads: heads, angles: angles) }
  return Variable(y, shape: x.shape, parents: [x]) { out in
    var g = out.gradient!
    g.withUnsafeMutableBufferPointer {
      rope.rotate($0.baseAddress!, rows: rows, stride: heads * d, heads: heads, angles: angles, inverse: true)
    }
    x.accumulate(g)
  }
}

/// Causal grouped-query self-attention of one sequence: `q [tokens, heads·d]`, `k`, `v`
/// `[tokens, kvHeads·d]`; token `i` attends to tokens `0...i`, query head `h` to kv head
/// `h / (heads / kvHeads)`. Outside a recorded graph it runs ``ScaledDotProductAttention/causal``.
public func causalAttention(query q: Variable, key k: Variable, value v: Variable, heads: Int, kvHeads: Int) -> Variable {
  precondition(q.shape.count == 2 && k.shape == v.shape && k.shape.count == 2 && q.shape[0] == k.shape[0], "causalAttention: shapes \(q.shape), \(k.shape), \(v.shape)")
  precondition(kvHeads > 0 && heads % kvHeads == 0 && q.shape[1] % heads == 0, "causalAttention: \(heads) heads over \(kvHeads) kv heads")
  let (t, d) = (q.shape[0], q.shape[1] / heads)
  precondition(k.shape[1] == kvHeads * d, "causalAttention: k must be [tokens, \(kvHeads) × \(d)], got \(k.shape)")
  let group = heads / kvHeads
  let recording = Gradients.areEnabled && (q.requiresGradient || k.requiresGradient || v.requiresGradient)
  if !recording {
    let out = [Float](unsafeUninitializedCapacity: t * heads * d) { ob, count in
      count = t * heads * d
      guard t > 0 else { return }
      q.value.withUnsafeBufferPointer { qb in
        k.value.withUnsafeBufferPointer { kb in
          v.value.withUnsafeBufferPointer { vb in
            ScaledDotProductAttention.causal(
              query: qb.baseAddress!, queryRowStride: heads * d, key: kb.baseAddress!, value: vb.baseAddress!,
              kvRowStride: kvHeads * d, into: ob.baseAddress!, outRowStride: heads * d, queries: t, offset: 0, heads: heads,
              kvHeads: kvHeads, headDimension: d)
          }
        }
      }
    }
    return Variable(out, shape: [t, heads * d])
  }
  // The graph, per head on the batched GEMM: softmax(q·kᵀ/√d + causal mask) · v, each kv head
  // repeated for its group of query heads.
  func split(_ x: Variable, _ n: Int) -> Variable { permuted(reshaped(x, [t, n, d]), [1, 0, 2]) }
  let (kh, vh) = (repeatedBlocks(split(k, kvHeads), times: group), repeatedBlocks(split(v, kvHeads), times: group))
  var mask = [Float](repeating: 0, count: t * t)
  for i in 0..<t { for j in (i + 1)..<max(i + 1, t) { mask[i * t + j] = -1e9 } }
  let scores = add(scaled(matmul(split(q, heads), kh, transposeB: true), by: 1 / Float(d).squareRoot()), Variable(mask, shape: [t, t]))
  let context = matmul(softmax(scores), vh, transposeB: false)
  return reshaped(permuted(context, [1, 0, 2]), [t, heads * d])
}

/// `x [n, ...]` with each leading block repeated `times` times in a row → `[n · times, ...]`
/// (grouped-query attention's kv heads for their query heads).
public func repeatedBlocks(_ x: Variable, times: Int) -> Variable {
  precondition(times >= 1 && !x.shape.isEmpty, "repeatedBlocks: \(times) repeats of \(x.shape)")
  guard times > 1 else { return x }
  let n = x.shape[0]
  let block = n == 0 ? 0 : x.count / n
  var out = [Float]()
  out.reserveCapacity(x.count * times)
  for i in 0..<n {
    for _ in 0..<times { out.append(contentsOf: x.value[i * block..<(i + 1) * block]) }
  }
  return Variable(out, shape: [n * times] + x.shape.dropFirst(), parents: [x]) { result in
    let g = result.gradient!
    x.accumulate { dx in
      for i in 0..<n {
        for r in 0..<times {
          let from = (i * times + r) * block
          for j in 0..<block { dx[i * block + j] += g[from + j] }
        }
      }
    }
  }
}

/// `a [..., n]` and `b [..., m]` side by side → `[..., n + m]`.
public func concatenatedColumns(_ a: Variable, _ b: Variable) -> Variable {
  let (n, m) = (a.shape.last ?? 0, b.shape.last ?? 0)
  let rows = n == 0 ? 0 : a.count / n
  var out = [Float](repeating: 0, count: rows * (n + m))
  for r in 0..<rows {
    for j in 0..<n { out[r * (n + m) + j] = a.value[r * n + j] }
    for j in 0..<m { out[r * (n + m) + n + j] = b.value[r * m + j] }
  }
  return Variable(out, shape: Array(a.shape.dropLast()) + [n + m], parents: [a, b]) { result in
    let g = result.gradient!
    if a.requiresGradient { a.accumulate { da in for r in 0..<rows { for j in 0..<n { da[r * n + j] += g[r * (n + m) + j] } } } }
    if b.requiresGradient { b.accumulate { db in for r in 0..<rows { for j in 0..<m { db[r * m + j] += g[r * (n + m) + n + j] } } } }
  }
}

/// Llama's RMS normalisation layer (`weight` ones).
public final class RMSNorm: Module {
  public let weight: Variable
  public let epsilon: Float

  public init(_ dimension: Int, epsilon: Float = 1e-6) {
    weight = Variable([Float](repeating: 1, count: dimension), shape: [dimension], requiresGradient: true)
    self.epsilon = epsilon
  }

  public init(weight: Tensor, epsilon: Float) {
    self.weight = Variable(weight, requiresGradient: true)
    self.epsilon = epsilon
  }

  public override var ownParameters: [(name: String, parameter: Variable)] { [("weight", weight)] }

  public func callAsFunction(_ x: Variable) -> Variable { rmsNorm(x, weight: weight, epsilon: epsilon) }
}

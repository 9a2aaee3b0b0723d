import Foundation
import SparsityCore
import SparsityKernels

// Differentiable operations on `Variable`s. Each computes its value and, when recording, a closure
// that adds ∂loss/∂input into every input that requires a gradient. Every one is checked against
// central finite differences in SparsityNNTests/GradientCheckTests.

// MARK: - Linear algebra

/// `y = x · weightᵀ + bias` over the last axis: x `[..., in]`, weight `[out, in]`, bias `[out]`.
public func linear(_ x: Variable, weight: Variable, bias: Variable? = nil) -> Variable {
  precondition(weight.shape.count == 2, "weight must be [out, in], got \(weight.shape)")
  let (n, k) = (weight.shape[0], weight.shape[1])
  precondition(x.shape.last == k, "x \(x.shape) does not end in the weight's \(k) input features")
  if let bias { precondition(bias.shape == [n], "bias must be [\(n)], got \(bias.shape)") }
  let m = x.count / max(k, 1)
  let y = product(x.value, weight.value, transposeB: true, m: m, n: n, k: k, bias: bias?.value)
  return Variable(y, shape: Array(x.shape.dropLast()) + [n], parents: [x, weight] + (bias.map { [$0] } ?? [])) { out in
    let g = out.gradient!
    // ∂x[m, k] = g[m, n] · weight[n, k]
    if x.requiresGradient { x.accumulate(product(g, weight.value, m: m, n: k, k: n)) }
    // ∂weight[n, k] = gᵀ[n, m] · x[m, k]
    if weight.requiresGradient { weight.accumulate(product(g, transposeA: true, x.value, m: n, n: k, k: m)) }
    if let bias, bias.requiresGradient { bias.accumulate(columnSums(g, rows: m, columns: n)) }
  }
}

/// `Σ_i g[i, j]` for `g [rows, columns]`.
func columnSums(_ g: [Float], rows: Int, columns: Int) -> [Float] {
  var sums = [Float](repeating: 0, count: columns)
  sums.withUnsafeMutableBufferPointer { sums in
    g.withUnsafeBufferPointer { g in
      for i in 0..<rows { for j in 0..<columns { sums[j] += g[i * columns + j] } }
    }
  }
  return sums
}

/// Batched matrix product over the last two axes: `a [..., t, k] · b [..., s, k]ᵀ → [..., t, s]`
/// when `transposeB`, else `a [..., t, s] · b [..., s, d] → [..., t, d]`. Leading axes must match.
public func matmul(_ a: Variable, _ b: Variable, transposeB: Bool) -> Variable {
  precondition(a.shape.count >= 2 && a.shape.count == b.shape.count, "matmul of \(a.shape) and \(b.shape)")
  precondition(a.shape.dropLast(2) == b.shape.dropLast(2), "matmul: leading axes differ in \(a.shape) and \(b.shape)")
  let batch = a.shape.dropLast(2).reduce(1, *)
  let (t, ka) = (a.shape[a.shape.count - 2], a.shape[a.shape.count - 1])
  let (rb, cb) = (b.shape[b.shape.count - 2], b.shape[b.shape.count - 1])
  let (inner, s) = transposeB ? (cb, rb) : (rb, cb)
  precondition(ka == inner, "matmul: inner extents differ in \(a.shape) and \(b.shape)\(transposeB ? " (b transposed)" : "")")
  let y = batchedProduct(a.value, b.value, batch: batch, t: t, k: inner, s: s, transposeA: false, transposeB: transposeB)
  return Variable(y, shape: Array(a.shape.dropLast(2)) + [t, s], parents: [a, b]) { out in
    let g = out.gradient!
    if transposeB {
      // c = a·bᵀ: ∂a = g·b, ∂b = gᵀ·a
      if a.requiresGradient {
        a.accumulate(batchedProduct(g, b.value, batch: batch, t: t, k: s, s: inner, transposeA: false, transposeB: false))
      }
      if b.requiresGradient {
        b.accumulate(batchedProduct(g, a.value, batch: batch, t: s, k: t, s: inner, transposeA: true, transposeB: false))
      }
    } else {
      // c = a·b: ∂a = g·bᵀ, ∂b = aᵀ·g
      if a.requiresGradient {
        a.accumulate(batchedProduct(g, b.value, batch: batch, t: t, k: s, s: inner, transposeA: false, transposeB: true))
      }
      if b.requiresGradient {
        b.accumulate(batchedProduct(a.value, g, batch: batch, t: inner, k: t, s: s, transposeA: true, transposeB: false))
      }
    }
  }
}

/// `batch` products `op(a)[t, k] · op(b)[k, s]`, where `op` reads a stored `[k, t]` / `[s, k]`
/// operand as its transpose when asked. Items run in parallel, each on the packed GEMM.
func batchedProduct(
  _ a: [Float], _ b: [Float], batch: Int, t: Int, k: Int, s: Int, transposeA: Bool, transposeB: Bool
) -> [Float] {
  guard t > 0, s > 0, batch > 0, k > 0 else { return [Float](repeating: 0, count: batch * t * s) }
  return [Float](unsafeUninitializedCapacity: batch * t * s) { c, count in
    a.withUnsafeBufferPointer { a in
      b.withUnsafeBufferPointer { b in
        let (a, b, c) = (a.baseAddress!, b.baseAddress!, c.baseAddress!)
        Parallel.forEachRange(batch) { items in
          for item in items {
            DenseMatmul.multiply(
              a + item * t * k, transposeA: transposeA, b + item * k * s, transposeB: transposeB, m: t, n: s, k: k,
              into: c + item * t * s, workers: 1)
          }
        }
      }
    }
    count = batch * t * s
  }
}

/// `op(a) · op(b) (+ bias)`, `[m, n]`, on arrays: ``DenseMatmul/multiply(_:transposeA:_:transposeB:m:n:k:into:bias:workers:)``
/// (`op(a)` is `[m, k]`, held as `[k, m]` when `transposeA`; `op(b)` is `[k, n]`, held as
/// `[n, k]` when `transposeB`).
func product(
  _ a: [Float], transposeA: Bool = false, _ b: [Float], transposeB: Bool = false, m: Int, n: Int, k: Int,
  bias: [Float]? = nil
) -> [Float] {
  guard m > 0, n > 0, k > 0 else {
    return (0..<m).flatMap { _ in bias ?? [Float](repeating: 0, count: n) }
  }
  return [Float](unsafeUninitializedCapacity: m * n) { c, count in
    a.withUnsafeBufferPointer { a in
      b.withUnsafeBufferPointer { b in
        if let bias {
          bias.withUnsafeBufferPointer { bias in
            DenseMatmul.multiply(
              a.baseAddress!, transposeA: transposeA, b.baseAddress!, transposeB: transposeB, m: m, n: n, k: k,
              into: c.baseAddress!, bias: bias.baseAddress)
          }
        } else {
          DenseMatmul.multiply(
            a.baseAddress!, transposeA: transposeA, b.baseAddress!, transposeB: transposeB, m: m, n: n, k: k,
            into: c.baseAddress!)
        }
      }
    }
    count = m * n
  }
}

// MARK: - Elementwise

/// `a + b`, where `b`'s shape equals `a`'s or is a suffix of it (then `b` repeats over `a`'s
/// leading axes, as a bias or a position embedding does).
public func add(_ a: Variable, _ b: Variable) -> Variable {
  precondition(
    b.shape.count <= a.shape.count && Array(a.shape.suffix(b.shape.count)) == b.shape,
    "add: \(b.shape) is not a suffix of \(a.shape)")
  let inner = b.count
  var y = a.value
  if inner > 0 {
    y.withUnsafeMutableBufferPointer { y in
      b.value.withUnsafeBufferPointer { b in
        for start in stride(from: 0, to: y.count, by: inner) { for j in 0..<inner { y[start + j] += b[j] } }
      }
    }
  }
  return Variable(y, shape: a.shape, parents: [a, b]) { out in
    let g = out.gradient!
    a.accumulate(g)
    if b.requiresGradient && inner > 0 {
      b.accumulate { db in
        g.withUnsafeBufferPointer { g in
          for start in stride(from: 0, to: g.count, by: inner) { for j in 0..<inner { db[j] += g[start + j] } }
        }
      }
    }
  }
}

/// `x · factor`.
public func scaled(_ x: Variable, by factor: Float) -> Variable {
  Variable(x.value.map { $0 * factor }, shape: x.shape, parents: [x]) { out in
    x.accumulate(out.gradient!.map { $0 * factor })
  }
}

/// Applies `f` elementwise; `derivative(x, y)` gives ∂y/∂x from the input and the output.
func unary(_ x: Variable, _ f: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Variable {
  let xv = x.value
  let y = xv.map(f)
  return Variable(y, shape: x.shape, parents: [x]) { out in
    let g = out.gradient!
    x.accumulate { dx in
      for i in 0..<dx.count { dx[i] += g[i] * derivative(xv[i], y[i]) }
    }
  }
}

/// `max(x, 0)`.
public func relu(_ x: Variable) -> Variable {
  unary(x, { max($0, 0) }, derivative: { x, _ in x > 0 ? 1 : 0 })
}

/// `relu(x)²` (Primer's squared ReLU).
public func squaredReLU(_ x: Variable) -> Variable {
  unary(x, { $0 > 0 ? $0 * $0 : 0 }, derivative: { x, _ in x > 0 ? 2 * x : 0 })
}

/// The exact GELU, `x · Φ(x)` with the normal CDF (PyTorch's default `approximate='none'`).
/// Vectorised (``VectorMath``); erf within 1.5e-7 absolute.
public func gelu(_ x: Variable) -> Variable {
  let xv = x.value
  var y = [Float](repeating: 0, count: xv.count)
  xv.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { VectorMath.gelu(xb, into: $0) } }
  return Variable(y, shape: x.shape, parents: [x]) { out in
    let g = out.gradient!
    x.accumulate { dx in
      xv.withUnsafeBufferPointer { xb in g.withUnsafeBufferPointer { VectorMath.geluGradient(xb, $0, accumulatingInto: dx) } }
    }
  }
}

/// GELU that reuses `x`'s storage when nothing is recorded (inference): `x` must not be used
/// afterwards. Records like ``gelu(_:)`` otherwise.
package func geluConsuming(_ x: Variable) -> Variable {
  guard !(Gradients.areEnabled && x.requiresGradient) else { return gelu(x) }
  var v = x.value
  x.value = []
  v.withUnsafeMutableBufferPointer { VectorMath.gelu(UnsafeBufferPointer($0), into: $0) }
  return Variable(v, shape: x.shape)
}

/// Zeroes each value with probability `probability` and scales the rest by `1 / (1 − probability)`
/// (inverted dropout), drawing from `generator`.
public func dropout(_ x: Variable, probability: Double, generator: inout SeededGenerator) -> Variable {
  precondition((0..<1).contains(probability), "dropout probability \(probability) is not in [0, 1)")
  guard probability > 0 else { return x }
  let scale = Float(1 / (1 - probability))
  let keep = (0..<x.count).map { _ in generator.nextUnitDouble() >= probability ? scale : 0 }
  return Variable(zip(x.value, keep).map { $0 * $1 }, shape: x.shape, parents: [x]) { out in
    x.accumulate(zip(out.gradient!, keep).map { $0 * $1 })
  }
}

// MARK: - Normalisation and losses

/// `layerNorm(add(x, residual), …)`, a post-norm residual step (BERT). Outside a recorded graph
/// it is one fused pass that never materialises the sum.
public func layerNorm(_ x: Variable, adding residual: Variable, weight: Variable, bias: Variable, epsilon: Float = 1e-5)
  -> Variable
{
  let recording = Gradients.areEnabled && [x, residual, weight, bias].contains { $0.requiresGradient }
  guard !recording, x.shape == residual.shape, let d = x.shape.last, d > 0, x.count > 0 else {
    return layerNorm(add(x, residual), weight: weight, bias: bias, epsilon: epsilon)
  }
  precondition(weight.shape == [d] && bias.shape == [d], "layerNorm: weight/bias must be [\(d)], got \(weight.shape), \(bias.shape)")
  let y = [Float](unsafeUninitializedCapacity: x.count) { yb, count in
    count = x.count
    x.value.withUnsafeBufferPointer { xb in
      residual.value.withUnsafeBufferPointer { rb in
        weight.value.withUnsafeBufferPointer { wb in
          bias.value.withUnsafeBufferPointer { bb in
            VectorMath.layerNorm(xb, adding: rb, into: yb, d: d, weight: wb, bias: bb, epsilon: epsilon)
          }
        }
      }
    }
  }
  return Variable(y, shape: x.shape)
}

/// Layer normalisation over the last axis: `(x − mean) / √(variance + ε) · weight + bias`
/// (biased variance, as PyTorch).
public func layerNorm(_ x: Variable, weight: Variable, bias: Variable, epsilon: Float = 1e-5) -> Variable {
  let d = x.shape.last ?? 0
  precondition(weight.shape == [d] && bias.shape == [d], "layerNorm: weight/bias must be [\(d)], got \(weight.shape), \(bias.shape)")
  let rows = d == 0 ? 0 : x.count / d
  var normalized = [Float]()
  var inverseDeviation = [Float](repeating: 0, count: rows)
  var y = [Float](repeating: 0, count: x.count)
  let (xv, wv, bv) = (x.value, weight.value, bias.value)
  if d > 0 {
    xv.withUnsafeBufferPointer { xb in
      y.withUnsafeMutableBufferPointer { yb in
        wv.withUnsafeBufferPointer { wb in
          bv.withUnsafeBufferPointer { bb in
            inverseDeviation.withUnsafeMutableBufferPointer { ib in
              VectorMath.layerNorm(xb, into: yb, d: d, weight: wb, bias: bb, epsilon: epsilon, inverseDeviation: ib)
            }
          }
        }
      }
    }
  }
  let recording = Gradients.areEnabled && (x.requiresGradient || weight.requiresGradient || bias.requiresGradient)
  if recording {
    normalized = [Float](repeating: 0, count: x.count)
    // x̂ = (y − bias) / weight is unstable for small weights: recompute it.
    normalized.withUnsafeMutableBufferPointer { nb in
      xv.withUnsafeBufferPointer { xb in
        for r in 0..<rows {
          var mean: Float = 0
          for j in 0..<d { mean += xb[r * d + j] }
          mean /= Float(d)
          for j in 0..<d { nb[r * d + j] = (xb[r * d + j] - mean) * inverseDeviation[r] }
        }
      }
    }
  }
  return Variable(y, shape: x.shape, parents: [x, weight, bias]) { out in
    let g = out.gradient!
    g.withUnsafeBufferPointer { g in
      normalized.withUnsafeBufferPointer { nb in
        weight.accumulate { dw in
          for r in 0..<rows { for j in 0..<d { dw[j] += g[r * d + j] * nb[r * d + j] } }
        }
        bias.accumulate { db in
          for r in 0..<rows { for j in 0..<d { db[j] += g[r * d + j] } }
        }
        x.accumulate { dx in
          for r in 0..<rows {
            let base = r * d
            var meanG: Float = 0, meanGN: Float = 0
            for j in 0..<d {
              let gn = g[base + j] * wv[j]
              meanG += gn
              meanGN += gn * nb[base + j]
            }
            meanG /= Float(d)
            meanGN /= Float(d)
            for j in 0..<d {
              dx[base + j] += inverseDeviation[r] * (g[base + j] * wv[j] - meanG - nb[base + j] * meanGN)
            }
          }
        }
      }
    }
  }
}

/// Softmax over the last axis.
public func softmax(_ x: Variable) -> Variable {
  let d = x.shape.last ?? 0
  var y = x.value
  if d > 0 { y.withUnsafeMutableBufferPointer { VectorMath.softmaxRows($0, length: d) } }
  return Variable(y, shape: x.shape, parents: [x]) { out in
    let g = out.gradient!
    x.accumulate { dx in
      g.withUnsafeBufferPointer { g in
        y.withUnsafeBufferPointer { y in
          for start in stride(from: 0, to: g.count, by: max(d, 1)) where d > 0 {
            var dot: Float = 0
            for j in start..<start + d { dot += g[j] * y[j] }
            for j in start..<start + d { dx[j] += y[j] * (g[j] - dot) }
          }
        }
      }
    }
  }
}

func softmaxRow(_ v: inout [Float], start: Int, count: Int) {
  var top = -Float.infinity
  for j in start..<start + count { top = max(top, v[j]) }
  var sum: Float = 0
  for j in start..<start + count {
    v[j] = exp(v[j] - top)
    sum += v[j]
  }
  for j in start..<start + count { v[j] /= sum }
}

/// Mean cross-entropy of `logits [batch, classes]` against class indices `labels [batch]`
/// (PyTorch's `cross_entropy` with mean reduction); a one-element variable.
public func crossEntropy(_ logits: Variable, labels: [Int32]) -> Variable {
  precondition(logits.shape.count == 2 && logits.shape[0] == labels.count, "crossEntropy: logits \(logits.shape) for \(labels.count) labels")
  let (b, c) = (logits.shape[0], logits.shape[1])
  precondition(labels.allSatisfy { $0 >= 0 && Int($0) < c }, "crossEntropy: a label is outside 0..<\(c)")
  var probabilities = logits.value
  var loss: Double = 0
  for i in 0..<b {
    softmaxRow(&probabilities, start: i * c, count: c)
    loss -= Double(log(max(probabilities[i * c + Int(labels[i])], .leastNormalMagnitude)))
  }
  return Variable([Float(loss / Double(max(b, 1)))], shape: [], parents: [logits]) { out in
    let scale = out.gradient![0] / Float(max(b, 1))
    logits.accumulate { dl in
      for i in 0..<b {
        for j in 0..<c { dl[i * c + j] += scale * (probabilities[i * c + j] - (j == Int(labels[i]) ? 1 : 0)) }
      }
    }
  }
}

/// The mean over rows of the Kullback–Leibler divergence `KL(softmax(target) ‖ softmax(logits))`
/// of `logits [rows, classes]` from constant `targetLogits` of the same layout, both at temperature
/// `temperature` (knowledge distillation: `Σ_j p_j (log p_j − log q_j)` with `p` the target's and
/// `q` the input's probabilities), scaled by `temperature²` as Hinton et al. do so that gradients
/// keep their size. A one-element variable; ∂/∂logits = `T (q − p) / rows`.
public func klDivergence(_ logits: Variable, targetLogits: [Float], temperature: Float = 1) -> Variable {
  precondition(logits.shape.count == 2 && targetLogits.count == logits.count, "klDivergence: \(targetLogits.count) target logits for \(logits.shape)")
  precondition(temperature > 0, "klDivergence: temperature must be positive")
  let (rows, classes) = (logits.shape[0], logits.shape[1])
  let (logQ, q) = logSoftmaxRows(logits.value, classes: classes, temperature: temperature)
  let (logP, p) = logSoftmaxRows(targetLogits, classes: classes, temperature: temperature)
  var loss = 0.0
  for r in 0..<rows {
    var row: Float = 0
    for j in r * classes..<(r + 1) * classes where p[j] > 0 { row += p[j] * (logP[j] - logQ[j]) }
    loss += Double(row)
  }
  let scale = temperature * temperature / Float(max(rows, 1))
  return Variable([Float(loss) * scale], shape: [], parents: [logits]) { out in
    let g = out.gradient![0] * scale / temperature
    logits.accumulate { dl in
      for i in 0..<dl.count { dl[i] += g * (q[i] - p[i]) }
    }
  }
}

/// Row-wise log-softmax of `x / temperature` viewed as `[rows, classes]`, and its exponential.
func logSoftmaxRows(_ x: [Float], classes: Int, temperature: Float) -> (log: [Float], probabilities: [Float]) {
  var log = temperature == 1 ? x : x.map { $0 / temperature }
  var probabilities = log
  for start in stride(from: 0, to: log.count, by: max(classes, 1)) {
    let range = start..<start + classes
    let top = log[range].max()!
    for j in range { log[j] -= top }
    probabilities[range].withUnsafeMutableBufferPointer { row in
      for j in 0..<classes { row[j] = log[start + j] }
      VectorMath.exp(row)
    }
    let sum = probabilities[range].reduce(Float(0), +)
    let logSum = Foundation.log(sum)
    for j in range {
      log[j] -= logSum
      probabilities[j] /= sum
    }
  }
  return (log, probabilities)
}

/// Mean squared error of `x [..., d]` against a constant `target` of the same layout, over the
/// rows of `x` viewed as `[rows, d]` whose `rowMask` entry is nonzero (real tokens, not padding):
/// `Σ_{r: rowMask[r] ≠ 0} Σ_j (x[r, j] − target[r, j])² / (kept rows · d)`. A one-element
/// variable; 0 (and no gradient) when no row is kept.
public func maskedMeanSquaredError(_ x: Variable, target: [Float], rowMask: [Int32]) -> Variable {
  let d = x.shape.last ?? 0
  precondition(target.count == x.count, "maskedMeanSquaredError: \(target.count) target values for \(x.shape)")
  let rows = d == 0 ? 0 : x.count / d
  precondition(rowMask.count == rows, "maskedMeanSquaredError: \(rowMask.count) mask values for \(rows) rows of \(d)")
  let elements = rowMask.count { $0 != 0 } * d
  let xv = x.value
  var sum = 0.0
  xv.withUnsafeBufferPointer { xb in
    target.withUnsafeBufferPointer { tb in
      for r in 0..<rows where rowMask[r] != 0 {
        var rowSum: Float = 0
        for j in r * d..<(r + 1) * d {
          let e = xb[j] - tb[j]
          rowSum += e * e
        }
        sum += Double(rowSum)
      }
    }
  }
  let loss = elements > 0 ? sum / Double(elements) : 0
  return Variable([Float(loss)], shape: [], parents: [x]) { out in
    guard elements > 0 else { return }
    let scale = out.gradient![0] * 2 / Float(elements)
    x.accumulate { dx in
      xv.withUnsafeBufferPointer { xb in
        target.withUnsafeBufferPointer { tb in
          for r in 0..<rows where rowMask[r] != 0 {
            for j in r * d..<(r + 1) * d { dx[j] += scale * (xb[j] - tb[j]) }
          }
        }
      }
    }
  }
}

// MARK: - Shapes and gathering

/// The same values in another shape with as many elements.
public func reshaped(_ x: Variable, _ shape: [Int]) -> Variable {
  precondition(shape.reduce(1, *) == x.count, "cannot reshape \(x.shape) to \(shape)")
  return Variable(x.value, shape: shape, parents: [x]) { out in x.accumulate(out.gradient!) }
}

/// Axes reordered: result axis `i` is `x`'s axis `axes[i]`.
public func permuted(_ x: Variable, _ axes: [Int]) -> Variable {
  precondition(axes.sorted() == Array(x.shape.indices), "permuted: \(axes) is not a permutation of \(x.shape.count) axes")
  let shape = axes.map { x.shape[$0] }
  let y = permute(x.value, shape: x.shape, axes: axes)
  var inverse = [Int](repeating: 0, count: axes.count)
  for (i, a) in axes.enumerated() { inverse[a] = i }
  return Variable(y, shape: shape, parents: [x]) { out in
    x.accumulate(permute(out.gradient!, shape: shape, axes: inverse))
  }
}

func permute(_ v: [Float], shape: [Int], axes: [Int]) -> [Float] {
  let rank = shape.count
  let sourceStrides = Tensor.strides(of: shape)
  let outShape = axes.map { shape[$0] }
  let strides = axes.map { sourceStrides[$0] }
  var out = [Float](repeating: 0, count: v.count)
  guard !v.isEmpty, rank > 0 else { return v }
  // Walk the output in order; the last axis runs in an inner loop.
  let last = outShape[rank - 1], lastStride = strides[rank - 1]
  var index = [Int](repeating: 0, count: rank)
  var o = 0
  v.withUnsafeBufferPointer { v in
    out.withUnsafeMutableBufferPointer { out in
      while o < out.count {
        var base = 0
        for a in 0..<rank - 1 { base += index[a] * strides[a] }
        if lastStride == 1 {
          (out.baseAddress! + o).update(from: v.baseAddress! + base, count: last)
        } else {
          for j in 0..<last { out[o + j] = v[base + j * lastStride] }
        }
        o += last
        var a = rank - 2
        while a >= 0 {
          index[a] += 1
          if index[a] < outShape[a] { break }
          index[a] = 0
          a -= 1
        }
      }
    }
  }
  return out
}

/// Mean over `axis` (removed from the shape).
public func mean(_ x: Variable, axis: Int) -> Variable {
  precondition(x.shape.indices.contains(axis), "mean: axis \(axis) of \(x.shape)")
  let outer = x.shape[..<axis].reduce(1, *), extent = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
  var y = [Float](repeating: 0, count: outer * inner)
  let scale = 1 / Float(max(extent, 1))
  let xv = x.value
  for o in 0..<outer {
    for e in 0..<extent { for i in 0..<inner { y[o * inner + i] += xv[(o * extent + e) * inner + i] } }
  }
  for i in y.indices { y[i] *= scale }
  var shape = x.shape
  shape.remove(at: axis)
  return Variable(y, shape: shape, parents: [x]) { out in
    let g = out.gradient!
    x.accumulate { dx in
      for o in 0..<outer {
        for e in 0..<extent { for i in 0..<inner { dx[(o * extent + e) * inner + i] += g[o * inner + i] * scale } }
      }
    }
  }
}

/// Rows of `table [vocabulary, dimension]` picked by `ids`: `[ids.count, dimension]`.
public func embedding(_ ids: [Int32], table: Variable) -> Variable {
  precondition(table.shape.count == 2, "embedding table must be [vocabulary, dimension], got \(table.shape)")
  let (v, d) = (table.shape[0], table.shape[1])
  precondition(ids.allSatisfy { $0 >= 0 && Int($0) < v }, "embedding: an id is outside 0..<\(v)")
  var y = [Float](repeating: 0, count: ids.count * d)
  let tv = table.value
  for (r, id) in ids.enumerated() {
    for j in 0..<d { y[r * d + j] = tv[Int(id) * d + j] }
  }
  return Variable(y, shape: [ids.count, d], parents: [table]) { out in
    let g = out.gradient!
    table.accumulate { dt in
      for (r, id) in ids.enumerated() { for j in 0..<d { dt[Int(id) * d + j] += g[r * d + j] } }
    }
  }
}

/// Adds `-1e9` to the attention scores `[batch, heads, queries, keys]` of keys where
/// `keyMask [batch, keys]` is 0, so softmax gives them no weight (padding).
public func maskingKeys(_ scores: Variable, keyMask: [Int32]) -> Variable {
  precondition(scores.shape.count == 4, "maskingKeys: scores must be [batch, heads, queries, keys], got \(scores.shape)")
  let (b, s) = (scores.shape[0], scores.shape[3])
  precondition(keyMask.count == b * s, "maskingKeys: mask has \(keyMask.count) values for \(b)×\(s)")
  let perBatch = scores.count / max(b, 1)
  var y = scores.value
  for i in 0..<b {
    for start in stride(from: i * perBatch, to: (i + 1) * perBatch, by: s) {
      for j in 0..<s where keyMask[i * s + j] == 0 { y[start + j] += -1e9 }
    }
  }
  return Variable(y, shape: scores.shape, parents: [scores]) { out in scores.accumulate(out.gradient!) }
}

/// The `patch × patch` windows of square images `x [batch, side·side]` taken every `stride`
/// pixels (row-major window order): `[batch, windows, patch·patch]`, windows = ((side − patch) / stride + 1)².
public func imagePatches(_ x: Variable, side: Int, patch: Int, stride step: Int) -> Variable {
  precondition(x.shape.count == 2 && x.shape[1] == side * side, "imagePatches: input must be [batch, \(side * side)], got \(x.shape)")
  precondition(patch > 0 && patch <= side && step > 0 && (side - patch) % step == 0, "imagePatches: \(patch)-pixel windows every \(step) do not tile \(side) pixels")
  let grid = (side - patch) / step + 1, b = x.shape[0], p2 = patch * patch
  // source[i] = the input index of output element i.
  var source = [Int](repeating: 0, count: grid * grid * p2)
  for gy in 0..<grid {
    for gx in 0..<grid {
      for py in 0..<patch {
        for px in 0..<patch { source[((gy * grid + gx) * patch + py) * patch + px] = (gy * step + py) * side + gx * step + px }
      }
    }
  }
  let xv = x.value, per = source.count, inputs = side * side
  var y = [Float](repeating: 0, count: b * per)
  for n in 0..<b { for i in 0..<per { y[n * per + i] = xv[n * inputs + source[i]] } }
  return Variable(y, shape: [b, grid * grid, p2], parents: [x]) { out in
    let g = out.gradient!
    x.accumulate { dx in
      for n in 0..<b { for i in 0..<per { dx[n * inputs + source[i]] += g[n * per + i] } }
    }
  }
}

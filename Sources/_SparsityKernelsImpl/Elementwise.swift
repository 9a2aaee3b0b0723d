// Vectorised transcendental elementwise kernels (8 lanes: one AVX2 register) for the NN
// layers: exp, GELU and its derivative, row softmax. Libm's scalar `expf`/`erff` calls keep a
// loop from vectorising; these polynomial forms are accurate to a few float ulps (exp) and
// 1.5e-7 absolute (erf, Abramowitz & Stegun 7.1.26).

typealias F8 = SIMD8<Float>

/// e^x: Cephes' range reduction x = n·ln 2 + r and a degree-6 polynomial for e^r (fused
/// multiply-adds where the build has them); 0 below −87.3 (where results turn subnormal), +∞
/// above ln(Float.greatestFiniteMagnitude).
@_transparent
func exp8(_ v: F8) -> F8 {
  // Concrete SIMD operations only: the generic rounding and Float→Int conversions of the
  // standard library do not specialise into vector code.
  var x = v.replacing(with: -87.3, where: v .< -87.3)
  x = x.replacing(with: 88.72, where: x .> 88.72)
  // Adding 1.5·2²³ rounds to the nearest integer n (ties to even) in the low mantissa bits.
  let shifted = fma(F8(repeating: 12_582_912), x, F8(repeating: 1.442_695_04))
  let n = shifted - 12_582_912
  var r = fma(x, n, F8(repeating: -0.693_359_375))
  r = fma(r, n, F8(repeating: 2.121_944_4e-4))
  let z = r * r
  var p = F8(repeating: 1.987_569_15e-4)
  p = fma(F8(repeating: 1.398_199_95e-3), p, r)
  p = fma(F8(repeating: 8.333_451_9e-3), p, r)
  p = fma(F8(repeating: 4.166_579_59e-2), p, r)
  p = fma(F8(repeating: 1.666_666_55e-1), p, r)
  p = fma(F8(repeating: 5.000_000_12e-1), p, r)
  let e = fma(r + 1, p, z)
  // 2ⁿ as 2^h · 2^(n−h) with h = ⌊n/2⌋, so that n = 128 (x near the top) stays finite; each
  // factor is a biased exponent in bits 23…30.
  let n32 = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
  let h = n32 &>> 1
  let scale1 = unsafeBitCast((h &+ 127) &<< 23, to: F8.self)
  let scale2 = unsafeBitCast((n32 &- h &+ 127) &<< 23, to: F8.self)
  return (e * scale1 * scale2).replacing(with: 0, where: v .< -87.3).replacing(with: .infinity, where: v .> 88.7228)
}

/// erf(x) with absolute error ≤ 1.5e-7 (Abramowitz & Stegun 7.1.26).
@_transparent
func erf8(_ x: F8) -> F8 {
  let a = x.replacing(with: -x, where: x .< 0)
  let t = 1 / (1 + 0.327_591_1 * a)
  var p = F8(repeating: 1.061_405_429)
  p = fma(F8(repeating: -1.453_152_027), p, t)
  p = fma(F8(repeating: 1.421_413_741), p, t)
  p = fma(F8(repeating: -0.284_496_736), p, t)
  p = fma(F8(repeating: 0.254_829_592), p, t)
  let y = 1 - p * t * exp8(-a * a)
  return y.replacing(with: -y, where: x .< 0)
}

@inline(__always)
func load(_ p: UnsafePointer<Float>, _ lanes: Int) -> F8 {
  if lanes == 8 { return UnsafeRawPointer(p).loadUnaligned(as: F8.self) }
  var v = F8()
  for j in 0..<lanes { v[j] = p[j] }
  return v
}

@inline(__always)
func store(_ v: F8, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
  if lanes == 8 {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
  } else {
    for j in 0..<lanes { p[j] = v[j] }
  }
}

@_transparent
func gelu8(_ v: F8) -> F8 { 0.5 * v * (1 + erf8(v * 0.707_106_77)) }

@_transparent
func geluDerivative8(_ v: F8) -> F8 {
  let cdf = 0.5 * (1 + erf8(v * 0.707_106_77))
  return cdf + v * (exp8(-0.5 * v * v) * 0.398_942_28)
}

/// `y = x · Φ(x)`, the exact-form GELU.
package func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
  var i = 0
  while i + 8 <= count {
    store(gelu8(load(x + i, 8)), y + i, 8)
    i += 8
  }
  if i < count { store(gelu8(load(x + i, count - i)), y + i, count - i) }
}

/// `dx += g · (Φ(x) + x · φ(x))`, GELU's derivative times the incoming gradient.
package func geluBackward(
  _ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int
) {
  var i = 0
  while i + 8 <= count {
    store(load(dx + i, 8) + load(g + i, 8) * geluDerivative8(load(x + i, 8)), dx + i, 8)
    i += 8
  }
  if i < count {
    let lanes = count - i
    store(load(dx + i, lanes) + load(g + i, lanes) * geluDerivative8(load(x + i, lanes)), dx + i, lanes)
  }
}

/// `v ← e^v` in place.
package func expInPlace(_ v: UnsafeMutablePointer<Float>, count: Int) {
  var i = 0
  while i + 8 <= count {
    store(exp8(load(v + i, 8)), v + i, 8)
    i += 8
  }
  if i < count { store(exp8(load(v + i, count - i)), v + i, count - i) }
}

/// Softmax of each row of `v [rows, length]` in place.
package func softmaxRows(_ v: UnsafeMutablePointer<Float>, rows: Int, length: Int) {
  guard length > 0 else { return }
  for r in 0..<rows {
    let row = v + r * length
    var top = -Float.infinity
    for j in 0..<length { top = max(top, row[j]) }
    var sums = F8()
    var i = 0
    while i < length {
      let lanes = min(8, length - i)
      // Padding lanes hold −∞ − top → e = 0, so they add nothing.
      var x = F8(repeating: -.infinity)
      if lanes == 8 {
        x = load(row + i, 8)
      } else {
        for j in 0..<lanes { x[j] = row[i + j] }
      }
      let e = exp8(x - top)
      store(e, row + i, lanes)
      sums += e
      i += 8
    }
    let scale = 1 / sums.sum()
    for j in 0..<length { row[j] *= scale }
  }
}

/// Layer normalisation of each row of `x [rows, d]` into `y`:
/// `(x − mean) / √(variance + ε) · weight + bias`; `inverseDeviation[r]` receives 1/√(variance + ε)
/// when given. With `residual`, the rows of `x + residual` are normalised (one pass over memory).
package func layerNormRows(
  _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, d: Int, weight: UnsafePointer<Float>,
  bias: UnsafePointer<Float>, epsilon: Float, inverseDeviation: UnsafeMutablePointer<Float>?,
  residual: UnsafePointer<Float>? = nil
) {
  guard d > 0 else { return }
  for r in 0..<rows {
    var row = x + r * d
    let out = y + r * d
    if let residual {
      // Normalise x + residual: the sum goes to the output row (in L1), normalised in place.
      let add = residual + r * d
      var i = 0
      while i + 8 <= d {
        store(load(row + i, 8) + load(add + i, 8), out + i, 8)
        i += 8
      }
      for j in i..<d { out[j] = row[j] + add[j] }
      row = UnsafePointer(out)
    }
    var sum8 = F8()
    var i = 0
    while i + 8 <= d {
      sum8 += load(row + i, 8)
      i += 8
    }
    var sum = sum8.sum()
    for j in i..<d { sum += row[j] }
    let mean = sum / Float(d)
    var squares8 = F8()
    i = 0
    while i + 8 <= d {
      let c = load(row + i, 8) - mean
      squares8 += c * c
      i += 8
    }
    var squares = squares8.sum()
    for j in i..<d { squares += (row[j] - mean) * (row[j] - mean) }
    let inv = 1 / (squares / Float(d) + epsilon).squareRoot()
    inverseDeviation?[r] = inv
    i = 0
    while i + 8 <= d {
      store((load(row + i, 8) - mean) * inv * load(weight + i, 8) + load(bias + i, 8), out + i, 8)
      i += 8
    }
    for j in i..<d { out[j] = (row[j] - mean) * inv * weight[j] + bias[j] }
  }
}

/// RMS normalisation of each row of `x [rows, d]` into `y` (Llama's `RMSNorm`):
/// `x / √(mean(x²) + ε) · weight`; `inverseRMS[r]` receives 1/√(mean(x²) + ε) when given.
package func rmsNormRows(
  _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, d: Int, weight: UnsafePointer<Float>,
  epsilon: Float, inverseRMS: UnsafeMutablePointer<Float>?
) {
  for r in 0..<rows {
    let (xr, yr) = (x + r * d, y + r * d)
    var acc = F8()
    var i = 0
    while i + 8 <= d {
      let v = load(xr + i, 8)
      acc = fma(acc, v, v)
      i += 8
    }
    var sum = acc.sum()
    while i < d {
      sum += xr[i] * xr[i]
      i += 1
    }
    let inverse = 1 / (sum / Float(d) + epsilon).squareRoot()
    inverseRMS?[r] = inverse
    let scale = F8(repeating: inverse)
    i = 0
    while i < d {
      let lanes = min(8, d - i)
      store(load(weight + i, lanes) * (load(xr + i, lanes) * scale), yr + i, lanes)
      i += 8
    }
  }
}

/// `y[i] = silu(gate[i]) · up[i]` with `silu(z) = z · σ(z)` (SwiGLU) for `rows` rows of `count`
/// values; row `r` of gate and up starts at `r · stride` (and `+ upOffset` for up), of y at `r · count`.
package func siluGatedRows(
  _ gate: UnsafePointer<Float>, upOffset: Int, stride: Int, rows: Int, count: Int, into y: UnsafeMutablePointer<Float>
) {
  for r in 0..<rows {
    let (g, u, out) = (gate + r * stride, gate + r * stride + upOffset, y + r * count)
    var i = 0
    while i < count {
      let lanes = min(8, count - i)
      let z = load(g + i, lanes)
      store(z / (1 + exp8(-z)) * load(u + i, lanes), out + i, lanes)
      i += 8
    }
  }
}

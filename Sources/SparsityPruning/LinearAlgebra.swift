import SparsityCore

/// Dense linear algebra for calibration statistics and SparseGPT, written for the shapes of
/// transformer layers (up to a few thousand columns): row-major buffers, `Double` factorizations,
/// row-parallel loops over raw pointers.
enum LinearAlgebra {
  // MARK: Dot products

  /// `Σ a[i]·b[i]` over `count` floats, in four 4-lane partial sums.
  @inline(__always)
  static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
    var s0 = SIMD4<Float>(), s1 = SIMD4<Float>(), s2 = SIMD4<Float>(), s3 = SIMD4<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 16 <= count {
      s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
      s1 += ra.loadUnaligned(fromByteOffset: i * 4 + 16, as: SIMD4<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 16, as: SIMD4<Float>.self)
      s2 += ra.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD4<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD4<Float>.self)
      s3 += ra.loadUnaligned(fromByteOffset: i * 4 + 48, as: SIMD4<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 48, as: SIMD4<Float>.self)
      i += 16
    }
    var total = ((s0 + s1) + (s2 + s3)).sum()
    while i < count {
      total += a[i] * b[i]
      i += 1
    }
    return total
  }

  /// `Σ a[i]·b[i]` over `count` doubles, in four 2-lane partial sums.
  @inline(__always)
  static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ count: Int) -> Double {
    var s0 = SIMD2<Double>(), s1 = SIMD2<Double>(), s2 = SIMD2<Double>(), s3 = SIMD2<Double>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 8 <= count {
      s0 += ra.loadUnaligned(fromByteOffset: i * 8, as: SIMD2<Double>.self) * rb.loadUnaligned(fromByteOffset: i * 8, as: SIMD2<Double>.self)
      s1 += ra.loadUnaligned(fromByteOffset: i * 8 + 16, as: SIMD2<Double>.self) * rb.loadUnaligned(fromByteOffset: i * 8 + 16, as: SIMD2<Double>.self)
      s2 += ra.loadUnaligned(fromByteOffset: i * 8 + 32, as: SIMD2<Double>.self) * rb.loadUnaligned(fromByteOffset: i * 8 + 32, as: SIMD2<Double>.self)
      s3 += ra.loadUnaligned(fromByteOffset: i * 8 + 48, as: SIMD2<Double>.self) * rb.loadUnaligned(fromByteOffset: i * 8 + 48, as: SIMD2<Double>.self)
      i += 8
    }
    var total = ((s0 + s1) + (s2 + s3)).sum()
    while i < count {
      total += a[i] * b[i]
      i += 1
    }
    return total
  }

  /// `y[i] -= alpha · x[i]` over `count` doubles.
  @inline(__always)
  static func subtractScaled(_ y: UnsafeMutablePointer<Double>, _ x: UnsafePointer<Double>, _ alpha: Double, _ count: Int) {
    let a = SIMD2<Double>(repeating: alpha)
    let ry = UnsafeMutableRawPointer(y), rx = UnsafeRawPointer(x)
    var i = 0
    while i + 4 <= count {
      let y0 = ry.loadUnaligned(fromByteOffset: i * 8, as: SIMD2<Double>.self) - a * rx.loadUnaligned(fromByteOffset: i * 8, as: SIMD2<Double>.self)
      let y1 = ry.loadUnaligned(fromByteOffset: i * 8 + 16, as: SIMD2<Double>.self) - a * rx.loadUnaligned(fromByteOffset: i * 8 + 16, as: SIMD2<Double>.self)
      ry.storeBytes(of: y0, toByteOffset: i * 8, as: SIMD2<Double>.self)
      ry.storeBytes(of: y1, toByteOffset: i * 8 + 16, as: SIMD2<Double>.self)
      i += 4
    }
    while i < count {
      y[i] -= alpha * x[i]
      i += 1
    }
  }

  // MARK: Conversions

  /// The elements of a floating-point tensor as `Float`s.
  static func floats(_ t: Tensor) -> [Float] { t.floatValues }

  /// `[rows, columns]` row-major `x` transposed to `[columns, rows]`.
  static func transposed(_ x: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: rows * columns)
    x.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        let tile = 32
        for r0 in stride(from: 0, to: rows, by: tile) {
          for c0 in stride(from: 0, to: columns, by: tile) {
            for r in r0..<Swift.min(r0 + tile, rows) {
              for c in c0..<Swift.min(c0 + tile, columns) { dst[c * rows + r] = src[r * columns + c] }
            }
          }
        }
      }
    }
    return out
  }

  // MARK: Gram matrix

  /// `XᵀX` of `x` (`[tokens, features]`, row-major), as `[features, features]` `Double`s.
  ///
  /// Products are accumulated in `Float` within blocks of 512 tokens and in `Double` across
  /// blocks. Blocks of four rows of `XᵀX` are computed in parallel, two columns at a time.
  static func gram(_ x: [Float], tokens: Int, features d: Int) -> [Double] {
    let xt = transposed(x, rows: tokens, columns: d)  // [d, tokens]: feature j is row j
    var g = [Double](repeating: 0, count: d * d)
    let quads = (d + 3) / 4
    xt.withUnsafeBufferPointer { xt in
      g.withUnsafeMutableBufferPointer { g in
        let out = UncheckedPointer(g.baseAddress!)
        let base = xt.baseAddress!
        Parallel.forEach(chunks: quads) { q in
          let i0 = q * 4
          let iCount = Swift.min(4, d - i0)
          var t0 = 0
          while t0 < tokens {
            let tn = Swift.min(512, tokens - t0)
            var j = i0
            while j < d {
              if iCount == 4 && j + 1 < d {
                let tile = gramTile(
                  base + i0 * tokens + t0, tokens, base + j * tokens + t0, base + (j + 1) * tokens + t0, tn)
                for i in 0..<4 {
                  out.pointer[(i0 + i) * d + j] += Double(tile[2 * i])
                  out.pointer[(i0 + i) * d + j + 1] += Double(tile[2 * i + 1])
                }
                j += 2
              } else {
                for i in 0..<iCount {
                  out.pointer[(i0 + i) * d + j] += Double(dot(base + (i0 + i) * tokens + t0, base + j * tokens + t0, tn))
                }
                j += 1
              }
            }
            t0 += tn
          }
        }
        // Mirror: row blocks were computed from their first column on.
        for i in 0..<d {
          for j in 0..<i { g[i * d + j] = g[j * d + i] }
        }
      }
    }
    return g
  }

  /// Dot products of four rows `a`, `a + stride`, … with two rows `b0`, `b1` over `count`
  /// floats: `[a0·b0, a0·b1, a1·b0, a1·b1, …]`.
  @inline(never)
  static func gramTile(
    _ a: UnsafePointer<Float>, _ stride: Int, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>, _ count: Int
  ) -> SIMD8<Float> {
    var s00 = SIMD4<Float>(), s01 = SIMD4<Float>(), s10 = SIMD4<Float>(), s11 = SIMD4<Float>()
    var s20 = SIMD4<Float>(), s21 = SIMD4<Float>(), s30 = SIMD4<Float>(), s31 = SIMD4<Float>()
    let ra0 = UnsafeRawPointer(a), ra1 = UnsafeRawPointer(a + stride)
    let ra2 = UnsafeRawPointer(a + 2 * stride), ra3 = UnsafeRawPointer(a + 3 * stride)
    let rb0 = UnsafeRawPointer(b0), rb1 = UnsafeRawPointer(b1)
    var t = 0
    while t + 4 <= count {
      let o = t * 4
      let v0 = rb0.loadUnaligned(fromByteOffset: o, as: SIMD4<Float>.self)
      let v1 = rb1.loadUnaligned(fromByteOffset: o, as: SIMD4<Float>.self)
      let x0 = ra0.loadUnaligned(fromByteOffset: o, as: SIMD4<Float>.self)
      s00 += x0 * v0
      s01 += x0 * v1
      let x1 = ra1.loadUnaligned(fromByteOffset: o, as: SIMD4<Float>.self)
      s10 += x1 * v0
      s11 += x1 * v1
      let x2 = ra2.loadUnaligned(fromByteOffset: o, as: SIMD4<Float>.self)
      s20 += x2 * v0
      s21 += x2 * v1
      let x3 = ra3.loadUnaligned(fromByteOffset: o, as: SIMD4<Float>.self)
      s30 += x3 * v0
      s31 += x3 * v1
      t += 4
    }
    var r = SIMD8<Float>(
      s00.sum(), s01.sum(), s10.sum(), s11.sum(), s20.sum(), s21.sum(), s30.sum(), s31.sum())
    while t < count {
      let p0 = b0[t], p1 = b1[t]
      r[0] += a[t] * p0
      r[1] += a[t] * p1
      r[2] += a[stride + t] * p0
      r[3] += a[stride + t] * p1
      r[4] += a[2 * stride + t] * p0
      r[5] += a[2 * stride + t] * p1
      r[6] += a[3 * stride + t] * p0
      r[7] += a[3 * stride + t] * p1
      t += 1
    }
    return r
  }

  // MARK: Factorizations

  /// Cholesky factorization in place: on success the lower triangle of `a` (`n × n`,
  /// row-major, symmetric) holds `L` with `L Lᵀ = A` and the strict upper triangle is zeroed.
  ///
  /// - Returns: `false` when `A` is not (numerically) positive definite.
  static func choleskyLower(_ a: inout [Double], n: Int) -> Bool {
    var ok = true
    a.withUnsafeMutableBufferPointer { a in
      let p = UncheckedPointer(a.baseAddress!)
      for j in 0..<n {
        let rowJ = p.pointer + j * n
        let s = rowJ[j] - dot(rowJ, rowJ, j)
        guard s > 0, s.isFinite else {
          ok = false
          return
        }
        let pivot = s.squareRoot()
        rowJ[j] = pivot
        let below = n - j - 1
        if below == 0 { continue }
        let work = below * Swift.max(j, 1)
        let body: (Range<Int>) -> Void = { range in
          for i in range {
            let rowI = p.pointer + (j + 1 + i) * n
            rowI[j] = (rowI[j] - dot(rowI, rowJ, j)) / pivot
          }
        }
        if work < 32_768 { body(0..<below) } else { Parallel.forEachRange(below, minimumChunk: 16, body) }
      }
      for i in 0..<n { for j in (i + 1)..<Swift.max(i + 1, n) { a[i * n + j] = 0 } }
    }
    return ok
  }

  /// The upper-triangular `U` with `Uᵀ U = H⁻¹` (the factor SparseGPT reads its inverse
  /// Hessians from), for symmetric positive-definite `H` (`n × n`, row-major).
  ///
  /// Computed with one Cholesky factorization and one triangular inverse: with `J` the
  /// order-reversing permutation, `J H J = L Lᵀ` gives `H = Ũ Ũᵀ` for the upper `Ũ = J L J`,
  /// so `H⁻¹ = Ũ⁻ᵀ Ũ⁻¹` and `U = Ũ⁻¹ = J L⁻¹ J` (the Cholesky factor is unique). This
  /// equals PyTorch's `cholesky(cholesky_inverse(cholesky(H)), upper=True)` at half the work.
  ///
  /// - Returns: `nil` when `H` is not positive definite.
  static func upperCholeskyOfInverse(_ h: [Double], n: Int) -> [Double]? {
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      for j in 0..<n { l[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)] }
    }
    guard choleskyLower(&l, n: n) else { return nil }
    // Y = L⁻¹ (lower), computed column by column; yt[j] holds column j of Y (entries k ≥ j).
    var yt = [Double](repeating: 0, count: n * n)
    l.withUnsafeBufferPointer { l in
      yt.withUnsafeMutableBufferPointer { yt in
        let lp = l.baseAddress!
        let out = UncheckedPointer(yt.baseAddress!)
        Parallel.forEach(chunks: n) { j in
          let column = out.pointer + j * n
          column[j] = 1 / lp[j * n + j]
          if j + 1 < n {
            for i in (j + 1)..<n {
              let rowI = lp + i * n
              column[i] = -dot(rowI + j, column + j, i - j) / rowI[i]
            }
          }
        }
      }
    }
    // U[a][b] = Y[n-1-a][n-1-b] = yt[n-1-b][n-1-a].
    var u = [Double](repeating: 0, count: n * n)
    for a in 0..<n {
      for b in a..<n { u[a * n + b] = yt[(n - 1 - b) * n + (n - 1 - a)] }
    }
    return u
  }

  // MARK: Linear layers

  /// `x · Wᵀ` and `x · (W − Ŵ)ᵀ` summarized as squared Frobenius norms: returns
  /// `(‖x Wᵀ‖², ‖x (W − Ŵ)ᵀ‖²)` for `x` `[tokens, in]`, `W` and `Ŵ` `[out, in]`.
  ///
  /// Tokens are processed in blocks of 32 (kept in cache while the weight rows stream past),
  /// blocks in parallel.
  static func outputNorms(inputs x: [Float], tokens: Int, weight: [Float], pruned: [Float], out: Int, in d: Int)
    -> (reference: Double, error: Double)
  {
    var difference = [Float](repeating: 0, count: weight.count)
    for i in 0..<weight.count { difference[i] = weight[i] - pruned[i] }
    let blockSize = 32
    let blocks = (tokens + blockSize - 1) / blockSize
    var partial = [Double](repeating: 0, count: 2 * blocks)
    x.withUnsafeBufferPointer { x in
      weight.withUnsafeBufferPointer { w in
        difference.withUnsafeBufferPointer { e in
          partial.withUnsafeMutableBufferPointer { partial in
            let sums = UncheckedPointer(partial.baseAddress!)
            Parallel.forEach(chunks: blocks) { b in
              var reference = 0.0
              var error = 0.0
              let t0 = b * blockSize
              let t1 = Swift.min(tokens, t0 + blockSize)
              for o in 0..<out {
                let wRow = w.baseAddress! + o * d
                let eRow = e.baseAddress! + o * d
                for t in t0..<t1 {
                  let (y, delta) = dotPair(x.baseAddress! + t * d, wRow, eRow, d)
                  reference += Double(y) * Double(y)
                  error += Double(delta) * Double(delta)
                }
              }
              sums.pointer[2 * b] = reference
              sums.pointer[2 * b + 1] = error
            }
          }
        }
      }
    }
    var reference = 0.0
    var error = 0.0
    for b in 0..<blocks {
      reference += partial[2 * b]
      error += partial[2 * b + 1]
    }
    return (reference, error)
  }

  /// `(x·a, x·b)` over `count` floats, loading `x` once.
  @inline(__always)
  static func dotPair(_ x: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int)
    -> (Float, Float)
  {
    var sa0 = SIMD4<Float>(), sa1 = SIMD4<Float>(), sb0 = SIMD4<Float>(), sb1 = SIMD4<Float>()
    let rx = UnsafeRawPointer(x), ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    var i = 0
    while i + 8 <= count {
      let x0 = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
      let x1 = rx.loadUnaligned(fromByteOffset: i * 4 + 16, as: SIMD4<Float>.self)
      sa0 += x0 * ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
      sa1 += x1 * ra.loadUnaligned(fromByteOffset: i * 4 + 16, as: SIMD4<Float>.self)
      sb0 += x0 * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
      sb1 += x1 * rb.loadUnaligned(fromByteOffset: i * 4 + 16, as: SIMD4<Float>.self)
      i += 8
    }
    var ya = (sa0 + sa1).sum()
    var yb = (sb0 + sb1).sum()
    while i < count {
      ya += x[i] * a[i]
      yb += x[i] * b[i]
      i += 1
    }
    return (ya, yb)
  }
}

// Register-blocked microkernels over raw pointers. Each is `@inline(never)`: inlined into a
// `concurrentPerform` closure the same code compiled to narrower vectors (DESIGN §5), and a
// separate function is also what the disassembly check looks at.
//
// Layouts (all `Float`):
// - packed activations `a`: panels of 6 rows, k-major: `a[k·6 + i]` is row i, column k;
// - packed weights `b`: panels of 16 (or 8) output columns, k-major: `b[k·16 + j]`;
// - a *segment* is a run of `length` consecutive k starting at `kStarts[s]` (BSR: one block;
//   dense: one k-block); the weight panels of consecutive segments are stored back to back.

/// `c[0..<6][0..<16] = init + Σ_segments Σ_k a[k][i] · b[k][j]` with 12 ymm accumulators.
///
/// `init` is `c` itself when `accumulate`, else `bias[j]` (or zero). `c` has row stride `ldc`
/// and must hold the full 6×16 tile (edge tiles go through a scratch tile).
@inline(never)
package func kernel6x16(
  segments: Int, length: Int, kStarts: UnsafePointer<Int32>?, a: UnsafePointer<Float>,
  b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
  bias: UnsafePointer<Float>?
) {
  var c00 = Vec8(), c01 = Vec8(), c10 = Vec8(), c11 = Vec8(), c20 = Vec8(), c21 = Vec8()
  var c30 = Vec8(), c31 = Vec8(), c40 = Vec8(), c41 = Vec8(), c50 = Vec8(), c51 = Vec8()
  if accumulate {
    c00 = load8(c); c01 = load8(c + 8)
    c10 = load8(c + ldc); c11 = load8(c + ldc + 8)
    c20 = load8(c + 2 * ldc); c21 = load8(c + 2 * ldc + 8)
    c30 = load8(c + 3 * ldc); c31 = load8(c + 3 * ldc + 8)
    c40 = load8(c + 4 * ldc); c41 = load8(c + 4 * ldc + 8)
    c50 = load8(c + 5 * ldc); c51 = load8(c + 5 * ldc + 8)
  } else if let bias {
    let b0 = load8(bias)
    let b1 = load8(bias + 8)
    c00 = b0; c10 = b0; c20 = b0; c30 = b0; c40 = b0; c50 = b0
    c01 = b1; c11 = b1; c21 = b1; c31 = b1; c41 = b1; c51 = b1
  }
  var bp = b
  for s in 0..<segments {
    var ap = kStarts.map { a + Int($0[s]) &* 6 } ?? a
    for _ in 0..<length {
      let b0 = load8(bp)
      let b1 = load8(bp + 8)
      var x = Vec8(repeating: ap[0])
      c00 = fma(c00, x, b0); c01 = fma(c01, x, b1)
      x = Vec8(repeating: ap[1])
      c10 = fma(c10, x, b0); c11 = fma(c11, x, b1)
      x = Vec8(repeating: ap[2])
      c20 = fma(c20, x, b0); c21 = fma(c21, x, b1)
      x = Vec8(repeating: ap[3])
      c30 = fma(c30, x, b0); c31 = fma(c31, x, b1)
      x = Vec8(repeating: ap[4])
      c40 = fma(c40, x, b0); c41 = fma(c41, x, b1)
      x = Vec8(repeating: ap[5])
      c50 = fma(c50, x, b0); c51 = fma(c51, x, b1)
      ap += 6
      bp += 16
    }
  }
  store8(c00, c); store8(c01, c + 8)
  store8(c10, c + ldc); store8(c11, c + ldc + 8)
  store8(c20, c + 2 * ldc); store8(c21, c + 2 * ldc + 8)
  store8(c30, c + 3 * ldc); store8(c31, c + 3 * ldc + 8)
  store8(c40, c + 4 * ldc); store8(c41, c + 4 * ldc + 8)
  store8(c50, c + 5 * ldc); store8(c51, c + 5 * ldc + 8)
}

/// The 6×8 variant of ``kernel6x16`` (8-column weight panels), with k unrolled by two into
/// two accumulator sets so that 12 FMA chains are in flight.
@inline(never)
package func kernel6x8(
  segments: Int, length: Int, kStarts: UnsafePointer<Int32>?, a: UnsafePointer<Float>,
  b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
  bias: UnsafePointer<Float>?
) {
  var c0 = Vec8(), c1 = Vec8(), c2 = Vec8(), c3 = Vec8(), c4 = Vec8(), c5 = Vec8()
  var d0 = Vec8(), d1 = Vec8(), d2 = Vec8(), d3 = Vec8(), d4 = Vec8(), d5 = Vec8()
  if accumulate {
    c0 = load8(c); c1 = load8(c + ldc); c2 = load8(c + 2 * ldc)
    c3 = load8(c + 3 * ldc); c4 = load8(c + 4 * ldc); c5 = load8(c + 5 * ldc)
  } else if let bias {
    let b0 = load8(bias)
    c0 = b0; c1 = b0; c2 = b0; c3 = b0; c4 = b0; c5 = b0
  }
  var bp = b
  for s in 0..<segments {
    var ap = kStarts.map { a + Int($0[s]) &* 6 } ?? a
    var k = 0
    while k + 2 <= length {
      let b0 = load8(bp)
      let b1 = load8(bp + 8)
      c0 = fma(c0, Vec8(repeating: ap[0]), b0); d0 = fma(d0, Vec8(repeating: ap[6]), b1)
      c1 = fma(c1, Vec8(repeating: ap[1]), b0); d1 = fma(d1, Vec8(repeating: ap[7]), b1)
      c2 = fma(c2, Vec8(repeating: ap[2]), b0); d2 = fma(d2, Vec8(repeating: ap[8]), b1)
      c3 = fma(c3, Vec8(repeating: ap[3]), b0); d3 = fma(d3, Vec8(repeating: ap[9]), b1)
      c4 = fma(c4, Vec8(repeating: ap[4]), b0); d4 = fma(d4, Vec8(repeating: ap[10]), b1)
      c5 = fma(c5, Vec8(repeating: ap[5]), b0); d5 = fma(d5, Vec8(repeating: ap[11]), b1)
      ap += 12
      bp += 16
      k += 2
    }
    if k < length {
      let b0 = load8(bp)
      c0 = fma(c0, Vec8(repeating: ap[0]), b0)
      c1 = fma(c1, Vec8(repeating: ap[1]), b0)
      c2 = fma(c2, Vec8(repeating: ap[2]), b0)
      c3 = fma(c3, Vec8(repeating: ap[3]), b0)
      c4 = fma(c4, Vec8(repeating: ap[4]), b0)
      c5 = fma(c5, Vec8(repeating: ap[5]), b0)
      bp += 8
    }
  }
  store8(c0 + d0, c); store8(c1 + d1, c + ldc); store8(c2 + d2, c + 2 * ldc)
  store8(c3 + d3, c + 3 * ldc); store8(c4 + d4, c + 4 * ldc); store8(c5 + d5, c + 5 * ldc)
}

/// One activation row against a 16-column weight panel (GEMV, M = 1): `c[j] = init +
/// Σ_segments Σ_k x[kStart + k] · b[k][j]`, k unrolled by four (8 accumulators).
@inline(never)
package func kernel1x16(
  segments: Int, length: Int, kStarts: UnsafePointer<Int32>?, x: UnsafePointer<Float>,
  b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, accumulate: Bool,
  bias: UnsafePointer<Float>?
) {
  var a0 = Vec8(), a1 = Vec8(), e0 = Vec8(), e1 = Vec8()
  var f0 = Vec8(), f1 = Vec8(), g0 = Vec8(), g1 = Vec8()
  if accumulate {
    a0 = load8(c); a1 = load8(c + 8)
  } else if let bias {
    a0 = load8(bias); a1 = load8(bias + 8)
  }
  var bp = b
  for s in 0..<segments {
    var xp = kStarts.map { x + Int($0[s]) } ?? x
    var k = 0
    while k + 4 <= length {
      var v = Vec8(repeating: xp[0])
      a0 = fma(a0, v, load8(bp)); a1 = fma(a1, v, load8(bp + 8))
      v = Vec8(repeating: xp[1])
      e0 = fma(e0, v, load8(bp + 16)); e1 = fma(e1, v, load8(bp + 24))
      v = Vec8(repeating: xp[2])
      f0 = fma(f0, v, load8(bp + 32)); f1 = fma(f1, v, load8(bp + 40))
      v = Vec8(repeating: xp[3])
      g0 = fma(g0, v, load8(bp + 48)); g1 = fma(g1, v, load8(bp + 56))
      xp += 4
      bp += 64
      k += 4
    }
    while k < length {
      let v = Vec8(repeating: xp[0])
      a0 = fma(a0, v, load8(bp)); a1 = fma(a1, v, load8(bp + 8))
      xp += 1
      bp += 16
      k += 1
    }
  }
  store8((a0 + e0) + (f0 + g0), c)
  store8((a1 + e1) + (f1 + g1), c + 8)
}

/// ``kernel1x16`` for 8-column panels.
@inline(never)
package func kernel1x8(
  segments: Int, length: Int, kStarts: UnsafePointer<Int32>?, x: UnsafePointer<Float>,
  b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, accumulate: Bool,
  bias: UnsafePointer<Float>?
) {
  var a0 = Vec8(), a1 = Vec8(), a2 = Vec8(), a3 = Vec8()
  if accumulate {
    a0 = load8(c)
  } else if let bias {
    a0 = load8(bias)
  }
  var bp = b
  for s in 0..<segments {
    var xp = kStarts.map { x + Int($0[s]) } ?? x
    var k = 0
    while k + 4 <= length {
      a0 = fma(a0, Vec8(repeating: xp[0]), load8(bp))
      a1 = fma(a1, Vec8(repeating: xp[1]), load8(bp + 8))
      a2 = fma(a2, Vec8(repeating: xp[2]), load8(bp + 16))
      a3 = fma(a3, Vec8(repeating: xp[3]), load8(bp + 24))
      xp += 4
      bp += 32
      k += 4
    }
    while k < length {
      a0 = fma(a0, Vec8(repeating: xp[0]), load8(bp))
      xp += 1
      bp += 8
      k += 1
    }
  }
  store8((a0 + a1) + (a2 + a3), c)
}

/// Two adjacent 16-column weight panels at once (two weight streams in flight, 8
/// accumulators, k unrolled by two): the dense GEMV's kernel.
@inline(never)
package func kernel1x32(
  length: Int, x: UnsafePointer<Float>, b0: UnsafePointer<Float>, b1: UnsafePointer<Float>,
  c: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?
) {
  var a0 = Vec8(), a1 = Vec8(), a2 = Vec8(), a3 = Vec8()
  var e0 = Vec8(), e1 = Vec8(), e2 = Vec8(), e3 = Vec8()
  if let bias {
    a0 = load8(bias); a1 = load8(bias + 8); a2 = load8(bias + 16); a3 = load8(bias + 24)
  }
  var p = b0
  var q = b1
  var k = 0
  while k + 2 <= length {
    let v = Vec8(repeating: x[k])
    let u = Vec8(repeating: x[k + 1])
    a0 = fma(a0, v, load8(p)); a1 = fma(a1, v, load8(p + 8))
    a2 = fma(a2, v, load8(q)); a3 = fma(a3, v, load8(q + 8))
    e0 = fma(e0, u, load8(p + 16)); e1 = fma(e1, u, load8(p + 24))
    e2 = fma(e2, u, load8(q + 16)); e3 = fma(e3, u, load8(q + 24))
    p += 32
    q += 32
    k += 2
  }
  if k < length {
    let v = Vec8(repeating: x[k])
    a0 = fma(a0, v, load8(p)); a1 = fma(a1, v, load8(p + 8))
    a2 = fma(a2, v, load8(q)); a3 = fma(a3, v, load8(q + 8))
  }
  store8(a0 + e0, c); store8(a1 + e1, c + 8); store8(a2 + e2, c + 16); store8(a3 + e3, c + 24)
}

#if SPARSITY_ISA_AVX512
  /// Two 6-row activation panels × two adjacent 16-column weight panels: the 12×32 tile of the
  /// AVX-512 build (24 zmm accumulators), with ``kernel6x16``'s segments, `accumulate` and
  /// `bias` (32 floats) semantics; `c` holds the full 12×32 tile. Per k: 2 weight loads and 12
  /// broadcasts for 24 FMAs, half the traffic per FMA of the 6×16 ymm tile — measured 5–20%
  /// faster over whole GEMMs on two threads (213–224 GFLOP/s, 93–98% of peak, Zen 4).
  @inline(never)
  package func kernel12x32(
    segments: Int, length: Int, kStarts: UnsafePointer<Int32>?, a0: UnsafePointer<Float>,
    a1: UnsafePointer<Float>, b0: UnsafePointer<Float>, b1: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
    ldc: Int, accumulate: Bool, bias: UnsafePointer<Float>?
  ) {
    typealias V = SIMD16<Float>
    @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
      UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }
    var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
    var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
    var d00 = V(), d01 = V(), d10 = V(), d11 = V(), d20 = V(), d21 = V()
    var d30 = V(), d31 = V(), d40 = V(), d41 = V(), d50 = V(), d51 = V()
    let e = c + 6 * ldc
    if accumulate {
      c00 = load(c); c01 = load(c + 16); c10 = load(c + ldc); c11 = load(c + ldc + 16)
      c20 = load(c + 2 * ldc); c21 = load(c + 2 * ldc + 16); c30 = load(c + 3 * ldc); c31 = load(c + 3 * ldc + 16)
      c40 = load(c + 4 * ldc); c41 = load(c + 4 * ldc + 16); c50 = load(c + 5 * ldc); c51 = load(c + 5 * ldc + 16)
      d00 = load(e); d01 = load(e + 16); d10 = load(e + ldc); d11 = load(e + ldc + 16)
      d20 = load(e + 2 * ldc); d21 = load(e + 2 * ldc + 16); d30 = load(e + 3 * ldc); d31 = load(e + 3 * ldc + 16)
      d40 = load(e + 4 * ldc); d41 = load(e + 4 * ldc + 16); d50 = load(e + 5 * ldc); d51 = load(e + 5 * ldc + 16)
    } else if let bias {
      let u = load(bias), v = load(bias + 16)
      c00 = u; c10 = u; c20 = u; c30 = u; c40 = u; c50 = u; d00 = u; d10 = u; d20 = u; d30 = u; d40 = u; d50 = u
      c01 = v; c11 = v; c21 = v; c31 = v; c41 = v; c51 = v; d01 = v; d11 = v; d21 = v; d31 = v; d41 = v; d51 = v
    }
    var bp = b0
    var bq = b1
    for s in 0..<segments {
      let start = kStarts.map { Int($0[s]) &* 6 } ?? 0
      var ap = a0 + start
      var aq = a1 + start
      for _ in 0..<length {
        let u = load(bp)
        let v = load(bq)
        var x = V(repeating: ap[0])
        c00 = c00.addingProduct(x, u); c01 = c01.addingProduct(x, v)
        x = V(repeating: ap[1]); c10 = c10.addingProduct(x, u); c11 = c11.addingProduct(x, v)
        x = V(repeating: ap[2]); c20 = c20.addingProduct(x, u); c21 = c21.addingProduct(x, v)
        x = V(repeating: ap[3]); c30 = c30.addingProduct(x, u); c31 = c31.addingProduct(x, v)
        x = V(repeating: ap[4]); c40 = c40.addingProduct(x, u); c41 = c41.addingProduct(x, v)
        x = V(repeating: ap[5]); c50 = c50.addingProduct(x, u); c51 = c51.addingProduct(x, v)
        x = V(repeating: aq[0]); d00 = d00.addingProduct(x, u); d01 = d01.addingProduct(x, v)
        x = V(repeating: aq[1]); d10 = d10.addingProduct(x, u); d11 = d11.addingProduct(x, v)
        x = V(repeating: aq[2]); d20 = d20.addingProduct(x, u); d21 = d21.addingProduct(x, v)
        x = V(repeating: aq[3]); d30 = d30.addingProduct(x, u); d31 = d31.addingProduct(x, v)
        x = V(repeating: aq[4]); d40 = d40.addingProduct(x, u); d41 = d41.addingProduct(x, v)
        x = V(repeating: aq[5]); d50 = d50.addingProduct(x, u); d51 = d51.addingProduct(x, v)
        ap += 6
        aq += 6
        bp += 16
        bq += 16
      }
    }
    store(c00, c); store(c01, c + 16); store(c10, c + ldc); store(c11, c + ldc + 16)
    store(c20, c + 2 * ldc); store(c21, c + 2 * ldc + 16); store(c30, c + 3 * ldc); store(c31, c + 3 * ldc + 16)
    store(c40, c + 4 * ldc); store(c41, c + 4 * ldc + 16); store(c50, c + 5 * ldc); store(c51, c + 5 * ldc + 16)
    store(d00, e); store(d01, e + 16); store(d10, e + ldc); store(d11, e + ldc + 16)
    store(d20, e + 2 * ldc); store(d21, e + 2 * ldc + 16); store(d30, e + 3 * ldc); store(d31, e + 3 * ldc + 16)
    store(d40, e + 4 * ldc); store(d41, e + 4 * ldc + 16); store(d50, e + 5 * ldc); store(d51, e + 5 * ldc + 16)
  }
#endif

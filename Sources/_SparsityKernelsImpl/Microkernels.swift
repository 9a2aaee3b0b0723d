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

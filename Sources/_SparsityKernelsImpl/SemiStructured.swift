#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

/// A 2:4 weight in its compact form: per row, `groups · 2` kept values (the logical
/// semi-structured layout) and one 4-bit code per group — the two positions `i0 < i1` in
/// 0..<4 as `i0 | i1 << 2`, two groups per byte, even group in the low nibble. That is
/// 4 + 0.25 bytes per kept value: 53% of the dense bytes in fp32.
///
/// The token-panel kernel reads the positions straight from the codes: group g of k-block b
/// touches panel rows `4g + i0` and `4g + i1`. Every row has exactly `k/2` kept weights, so the
/// work is perfectly balanced and branch-free.
package final class PackedSemiStructuredWeight: TokenPanelWeight, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let groups: Int
  /// Bytes of codes per row: groups rounded up to a whole k-block of 16 groups, over 2.
  package let codeStride: Int
  package let values: FloatBuffer
  package let codes: UnsafeMutablePointer<UInt8>
  package var kBlock: Int { 64 }
  package var rowChunk: Int { SemiStructuredTuning.rowChunk }
  package var paddedK: Int { (groups + 15) / 16 * 64 }

  /// Packs the logical 2:4 form: `values` `[n, groups·2]`, `positions` one byte per value.
  package init(n: Int, k: Int, values src: UnsafePointer<Float>, positions: UnsafePointer<UInt8>) {
    self.n = n
    self.k = k
    groups = (k + 3) / 4
    codeStride = (groups + 15) / 16 * 8
    values = FloatBuffer(count: n * groups * 2 + 8)
    values.pointer.update(from: src, count: n * groups * 2)
    codes = .allocate(capacity: Swift.max(1, n * codeStride))
    codes.initialize(repeating: 0, count: Swift.max(1, n * codeStride))
    for r in 0..<n {
      for g in 0..<groups {
        let i0 = positions[(r * groups + g) * 2]
        let i1 = positions[(r * groups + g) * 2 + 1]
        let code = (i0 | i1 << 2) << (4 * UInt8(g & 1))
        codes[r * codeStride + g / 2] |= code
      }
    }
  }

  deinit { codes.deallocate() }

  /// Values plus 4 bits per group (the padding of the code rows not counted).
  package var byteCount: Int { n * groups * 2 * 4 + (n * groups + 1) / 2 }

  package func rowRanges(parts: Int) -> [Range<Int>] {
    (0..<parts).map { (n * $0 / parts)..<(n * ($0 + 1) / parts) }
  }

  @inline(__always)
  package func accumulate(row: Int, block: Int, panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>) {
    let g0 = block * 16
    semiStructuredTile64(
      groups: Swift.min(16, groups - g0), values: values.pointer + row * groups * 2 + g0 * 2,
      codes: UnsafeRawPointer(codes + row * codeStride + block * 8).loadUnaligned(as: UInt64.self),
      panel: panel + block * 64 * panelTokens, acc: acc)
  }

  /// Writes the dense row-major `[n, k]` weight.
  package func unpack(into w: UnsafeMutablePointer<Float>) {
    w.update(repeating: 0, count: n * k)
    for r in 0..<n {
      for g in 0..<groups {
        let code = Int(codes[r * codeStride + g / 2] >> (4 * UInt8(g & 1)))
        for (s, i) in [code & 3, (code >> 2) & 3].enumerated() where 4 * g + i < k {
          w[r * k + 4 * g + i] = values.pointer[r * groups * 2 + g * 2 + s]
        }
      }
    }
  }
}

/// `acc[0..<64] += Σ_g v[2g]·panel[4g + i0] + v[2g+1]·panel[4g + i1]` for one row and one
/// k-block of up to 16 groups, positions decoded from the 64-bit code word.
@inline(never)
package func semiStructuredTile64(
  groups: Int, values: UnsafePointer<Float>, codes: UInt64, panel: UnsafePointer<Float>,
  acc: UnsafeMutablePointer<Float>
) {
  var a0 = load8(acc), a1 = load8(acc + 8), a2 = load8(acc + 16), a3 = load8(acc + 24)
  var a4 = load8(acc + 32), a5 = load8(acc + 40), a6 = load8(acc + 48), a7 = load8(acc + 56)
  var bits = codes
  var v = values
  var base = panel
  for _ in 0..<groups {
    let p = base + Int(truncatingIfNeeded: bits & 3) &* 64
    let q = base + Int(truncatingIfNeeded: (bits >> 2) & 3) &* 64
    let w = Vec8(repeating: v[0])
    let u = Vec8(repeating: v[1])
    a0 = fma(a0, w, load8(p)); a1 = fma(a1, w, load8(p + 8))
    a2 = fma(a2, w, load8(p + 16)); a3 = fma(a3, w, load8(p + 24))
    a4 = fma(a4, w, load8(p + 32)); a5 = fma(a5, w, load8(p + 40))
    a6 = fma(a6, w, load8(p + 48)); a7 = fma(a7, w, load8(p + 56))
    a0 = fma(a0, u, load8(q)); a1 = fma(a1, u, load8(q + 8))
    a2 = fma(a2, u, load8(q + 16)); a3 = fma(a3, u, load8(q + 24))
    a4 = fma(a4, u, load8(q + 32)); a5 = fma(a5, u, load8(q + 40))
    a6 = fma(a6, u, load8(q + 48)); a7 = fma(a7, u, load8(q + 56))
    bits >>= 4
    v += 2
    base += 4 * 64
  }
  store8(a0, acc); store8(a1, acc + 8); store8(a2, acc + 16); store8(a3, acc + 24)
  store8(a4, acc + 32); store8(a5, acc + 40); store8(a6, acc + 48); store8(a7, acc + 56)
}

/// Row-wise 2:4 for small M (the decode path): for each activation row and output row, 8 kept
/// values at a time (4 groups) against a 16-float window of x, selecting the x values with
/// two `vpermps` and a blend (AVX2), or scalar loads in the portable build.
package func semiStructuredLinearRows(
  weight: PackedSemiStructuredWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k, groups) = (weight.n, weight.k, weight.groups)
  guard m > 0, n > 0 else { return }
  // x rows padded to whole 4-group windows (and 16 spare floats) with zeros.
  let stride = (groups + 3) / 4 * 16 + 16
  Scratch.with(count: m * stride) { xs in
    for t in 0..<m {
      (xs + t * stride).update(from: x + t * k, count: k)
      (xs + t * stride + k).update(repeating: 0, count: stride - k)
    }
    let parts = Swift.max(1, Swift.min(workers, n))
    let out = Unchecked(y)
    let xp = Unchecked(UnsafePointer(xs))
    parallelFor(parts) { w in
      for t in 0..<m {
        semiStructuredRows(
          weight: weight, rows: (n * w / parts)..<(n * (w + 1) / parts), x: xp.value + t * stride,
          y: out.value + t * n, bias: bias)
      }
    }
  }
}

@inline(never)
private func semiStructuredRows(
  weight: PackedSemiStructuredWeight, rows: Range<Int>, x: UnsafePointer<Float>,
  y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?
) {
  let groups = weight.groups
  let chunks = groups / 4
  #if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
    let shifts = SIMD8<UInt32>(0, 2, 4, 6, 8, 10, 12, 14)
    let offsets = SIMD8<UInt32>(0, 0, 4, 4, 0, 0, 4, 4)
    let upper = SIMD8<Int32>(0, 0, 0, 0, -1, -1, -1, -1) .< 0
  #endif
  for r in rows {
    let v = UnsafePointer(weight.values.pointer + r * groups * 2)
    let code = UnsafeRawPointer(weight.codes + r * weight.codeStride)
    var acc0 = Vec8()
    var acc1 = Vec8()
    var c = 0
    #if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
      while c + 2 <= chunks {
        let bits = code.loadUnaligned(fromByteOffset: 2 * c, as: UInt32.self)
        let i0 = ((SIMD8<UInt32>(repeating: bits & 0xFFFF) &>> shifts) & 3) &+ offsets
        let i1 = ((SIMD8<UInt32>(repeating: bits >> 16) &>> shifts) & 3) &+ offsets
        let xw = x + 16 * c
        let s0 = _mm256_permutevar8x32_ps(load8(xw), unsafeBitCast(i0, to: __m256i.self))
          .replacing(with: _mm256_permutevar8x32_ps(load8(xw + 8), unsafeBitCast(i0, to: __m256i.self)), where: upper)
        let s1 = _mm256_permutevar8x32_ps(load8(xw + 16), unsafeBitCast(i1, to: __m256i.self))
          .replacing(with: _mm256_permutevar8x32_ps(load8(xw + 24), unsafeBitCast(i1, to: __m256i.self)), where: upper)
        acc0 = fma(acc0, load8(v + 8 * c), s0)
        acc1 = fma(acc1, load8(v + 8 * c + 8), s1)
        c += 2
      }
    #endif
    var tail: Float = 0
    for g in (4 * c)..<groups {
      let byte = Int(code.load(fromByteOffset: g / 2, as: UInt8.self) >> (4 * UInt8(g & 1)))
      tail = fmaScalar(tail, v[2 * g], x[4 * g + (byte & 3)])
      tail = fmaScalar(tail, v[2 * g + 1], x[4 * g + ((byte >> 2) & 3)])
    }
    y[r] = (acc0 + acc1).sum() + tail + (bias?[r] ?? 0)
  }
}

package enum SemiStructuredTuning {
  nonisolated(unsafe) package static var rowChunk = 32
}

import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif
#if SPARSITY_BF16
  import _SparsityBF16
#endif

// bf16 linear layers: `y = bf16(x) · bf16(W)ᵀ + b` — the weights stored in bf16 (half the fp32
// bytes), the activations rounded to bf16 (to nearest even, as `tensor.to(torch.bfloat16)`) when
// a call starts, every product exact in fp32 (8-bit × 8-bit significands) and summed in fp32. With
// AVX512-BF16 one `vdpbf16ps` does two inputs' products per lane (twice the fp32 FMA rate); other
// builds widen the bf16 values to fp32 (a 16-bit shift) and use FMA — the same products.

/// `value` rounded to bfloat16 bits, to nearest even (NaN stays a quiet NaN): ``BFloat16/init(_:)``.
@inline(__always)
package func bfloat16Bits(_ value: Float) -> UInt16 { BFloat16(value).bitPattern }

/// bf16 weights run against activations rounded to bf16, the sums fp32: the dense, 2:4 and
/// block-sparse bf16 weights.
package protocol BF16ActivationPanels: PanelDotWeight {}

extension BF16ActivationPanels {
  package static var activationBytes: Int { 2 }

  /// Activations rounded to bf16 (no scale).
  package static func prepareRows(
    x: UnsafePointer<Float>, m: Int, k: Int, ldq: Int, into: UnsafeMutableRawPointer, scales: UnsafeMutablePointer<Float>
  ) {
    let out = into.assumingMemoryBound(to: UInt16.self)
    for r in 0..<m {
      let row = x + r * k
      let o = out + r * ldq
      var i = 0
      // Vectorized to nearest even: bits + 0x7FFF + (bit 16), high half; NaN lanes made quiet.
      #if SPARSITY_ISA_AVX512
        while i + 16 <= k {
          let bits = _mm512_loadu_si512(row + i)
          let lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1))
          let rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), lsb), 16)
          let magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(0x7FFF_FFFF))
          // All ones where |x| > infinity (NaN): the sign of 0x7F800000 − |x|.
          let nan = _mm512_srai_epi32(_mm512_sub_epi32(_mm512_set1_epi32(0x7F80_0000), magnitude), 31)
          let quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x0040))
          let chosen = _mm512_or_si512(_mm512_andnot_si512(nan, rounded), _mm512_and_si512(nan, quiet))
          let words: __m256i = _mm512_cvtepi32_epi16(chosen)
          UnsafeMutableRawPointer(o + i).storeBytes(of: words, as: __m256i.self)
          i += 16
        }
      #endif
      while i + 16 <= k {
        let bits = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<UInt32>.self)
        let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
        let exponentAll = (bits & 0x7F80_0000) .== 0x7F80_0000
        let nan = exponentAll .& ((bits & 0x007F_FFFF) .!= 0)
        let result = rounded.replacing(with: (bits &>> 16) | 0x0040, where: nan)
        UnsafeMutableRawPointer(o + i).storeBytes(of: SIMD16<UInt16>(truncatingIfNeeded: result), as: SIMD16<UInt16>.self)
        i += 16
      }
      while i < k {
        o[i] = bfloat16Bits(row[i])
        i += 1
      }
      if ldq > k { (o + k).update(repeating: 0, count: ldq - k) }
    }
  }

  /// Sums are fp32 bits: `y = sum + bias`.
  package func finish(
    acc: UnsafeMutablePointer<Int32>, ldacc: Int, a: PreparedActivations, row: Int, rows: Int, column: Int, columns: Int,
    y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>?
  ) {
    storeFloatSums(acc, ldacc: ldacc, row: row, rows: rows, column: column, columns: columns, y: y, ldy: ldy, bias: bias)
  }
}

/// A bf16 weight `[n, k]` packed for the bf16 kernels: panels of 16 output columns; within a
/// panel, pairs of consecutive inputs, each column's 2 values together
/// (`data[((p·pairs + s)·16 + j)·2 + i] = bf16(W[16p + j][2s + i])`, zero past `n` and `k`) — the
/// operand layout of `vdpbf16ps`. 2 bytes per weight.
package final class PackedBF16Weight: BF16ActivationPanels, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let panels: Int
  package let steps: Int
  package let data: ByteBuffer
  package static var inputsPerStep: Int { 2 }
  package static var stepsPerBlock: Int { 192 }
  package static var preparedBytesPerStep: Int { 0 }

  /// Packs row-major bf16 bits `w [n, k]`.
  package init(bits w: UnsafePointer<UInt16>, n: Int, k: Int) {
    self.n = n
    self.k = k
    steps = (k + 1) / 2
    panels = (n + 15) / 16
    data = ByteBuffer(count: panels * steps * 64)
    let d = data.pointer.assumingMemoryBound(to: UInt16.self)
    for r in 0..<n {
      let (p, j) = (r / 16, r % 16)
      for c in 0..<k { d[((p * steps + c / 2) * 16 + j) * 2 + c % 2] = w[r * k + c] }
    }
  }

  /// Bytes held.
  package var byteCount: Int { data.count }

  /// The bf16 bits of row `r`, column `c`.
  @inline(__always)
  package func bits(row r: Int, column c: Int) -> UInt16 {
    data.pointer.assumingMemoryBound(to: UInt16.self)[((r / 16 * steps + c / 2) * 16 + r % 16) * 2 + c % 2]
  }

  package func prepare(panel: Int, steps: Range<Int>, into: UnsafeMutableRawPointer) {}

  package func tile(
    a: PreparedActivations, row: Int, rows: Int, panel: Int, steps range: Range<Int>, prepared: UnsafeRawPointer,
    acc: UnsafeMutablePointer<Int32>
  ) {
    let first = range.lowerBound == 0
    let b = UnsafePointer(data.pointer.assumingMemoryBound(to: UInt16.self))
    let sums = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
    #if SPARSITY_BF16
      withUnsafeTemporaryAllocation(of: UInt16.self, capacity: range.count * 2) { zero in
        zero.initialize(repeating: 0)
        func rowPointer(_ i: Int) -> UnsafeRawPointer {
          i < rows ? UnsafeRawPointer(a.rows + (row + i) * a.stride + range.lowerBound * 4) : UnsafeRawPointer(zero.baseAddress!)
        }
        let second = panel + 1 < panels ? panel + 1 : panel
        bf16Kernel6x32(
          steps: range.count, a0: rowPointer(0), a1: rowPointer(1), a2: rowPointer(2), a3: rowPointer(3), a4: rowPointer(4),
          a5: rowPointer(5), b0: b + (panel * steps + range.lowerBound) * 32, b1: b + (second * steps + range.lowerBound) * 32,
          acc: sums, accumulate: !first)
      }
    #else
      for i in 0..<6 {
        if first { for j in 0..<32 { sums[i * 32 + j] = 0 } }
        guard i < rows else { continue }
        for half in 0..<2 where panel + half < panels {
          bf16RowPanel(
            steps: range.count, x: UnsafeRawPointer(a.rows + (row + i) * a.stride + range.lowerBound * 4).assumingMemoryBound(to: UInt16.self),
            b: b + ((panel + half) * steps + range.lowerBound) * 32, out: sums + i * 32 + half * 16)
        }
      }
    #endif
  }

  package func rowQuad(a: UnsafeRawPointer, quad: Int, acc: UnsafeMutablePointer<Int32>) {
    let b = UnsafePointer(data.pointer.assumingMemoryBound(to: UInt16.self))
    let sums = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
    let count = Swift.min(4, panels - quad * 4)
    sums.initialize(repeating: 0, count: 64)
    for p in 0..<count {
      #if SPARSITY_BF16
        bf16Kernel1x16(steps: steps, a: a, b: b + (quad * 4 + p) * steps * 32, out: sums + p * 16)
      #else
        bf16RowPanel(steps: steps, x: a.assumingMemoryBound(to: UInt16.self), b: b + (quad * 4 + p) * steps * 32, out: sums + p * 16)
      #endif
    }
  }
}

#if SPARSITY_BF16
  /// 6 rows × 32 columns of `vdpbf16ps`: per pair of inputs, two 64-byte weight loads and, per
  /// row, one broadcast dword (the pair) and two dots into 12 zmm accumulators (fp32).
  @inline(never)
  private func bf16Kernel6x32(
    steps: Int, a0: UnsafeRawPointer, a1: UnsafeRawPointer, a2: UnsafeRawPointer, a3: UnsafeRawPointer, a4: UnsafeRawPointer,
    a5: UnsafeRawPointer, b0: UnsafePointer<UInt16>, b1: UnsafePointer<UInt16>, acc: UnsafeMutablePointer<Float>, accumulate: Bool
  ) {
    var c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps()
    var c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps()
    var c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps()
    if accumulate {
      c00 = _mm512_loadu_ps(acc); c01 = _mm512_loadu_ps(acc + 16); c10 = _mm512_loadu_ps(acc + 32); c11 = _mm512_loadu_ps(acc + 48)
      c20 = _mm512_loadu_ps(acc + 64); c21 = _mm512_loadu_ps(acc + 80); c30 = _mm512_loadu_ps(acc + 96); c31 = _mm512_loadu_ps(acc + 112)
      c40 = _mm512_loadu_ps(acc + 128); c41 = _mm512_loadu_ps(acc + 144); c50 = _mm512_loadu_ps(acc + 160); c51 = _mm512_loadu_ps(acc + 176)
    }
    for s in 0..<steps {
      let w0 = _mm512_loadu_si512(b0 + s * 32)
      let w1 = _mm512_loadu_si512(b1 + s * 32)
      let offset = s * 4
      var x = _mm512_set1_epi32(a0.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c00 = sparsity_dpbf16ps(c00, x, w0); c01 = sparsity_dpbf16ps(c01, x, w1)
      x = _mm512_set1_epi32(a1.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c10 = sparsity_dpbf16ps(c10, x, w0); c11 = sparsity_dpbf16ps(c11, x, w1)
      x = _mm512_set1_epi32(a2.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c20 = sparsity_dpbf16ps(c20, x, w0); c21 = sparsity_dpbf16ps(c21, x, w1)
      x = _mm512_set1_epi32(a3.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c30 = sparsity_dpbf16ps(c30, x, w0); c31 = sparsity_dpbf16ps(c31, x, w1)
      x = _mm512_set1_epi32(a4.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c40 = sparsity_dpbf16ps(c40, x, w0); c41 = sparsity_dpbf16ps(c41, x, w1)
      x = _mm512_set1_epi32(a5.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c50 = sparsity_dpbf16ps(c50, x, w0); c51 = sparsity_dpbf16ps(c51, x, w1)
    }
    _mm512_storeu_ps(acc, c00); _mm512_storeu_ps(acc + 16, c01); _mm512_storeu_ps(acc + 32, c10); _mm512_storeu_ps(acc + 48, c11)
    _mm512_storeu_ps(acc + 64, c20); _mm512_storeu_ps(acc + 80, c21); _mm512_storeu_ps(acc + 96, c30); _mm512_storeu_ps(acc + 112, c31)
    _mm512_storeu_ps(acc + 128, c40); _mm512_storeu_ps(acc + 144, c41); _mm512_storeu_ps(acc + 160, c50); _mm512_storeu_ps(acc + 176, c51)
  }

  /// One row against one 16-column panel, two steps per iteration into two accumulators.
  @inline(never)
  private func bf16Kernel1x16(steps: Int, a: UnsafeRawPointer, b: UnsafePointer<UInt16>, out: UnsafeMutablePointer<Float>) {
    var c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps()
    var s = 0
    while s + 2 <= steps {
      c0 = sparsity_dpbf16ps(c0, _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: s * 4, as: Int32.self)), _mm512_loadu_si512(b + s * 32))
      c1 = sparsity_dpbf16ps(c1, _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: s * 4 + 4, as: Int32.self)), _mm512_loadu_si512(b + s * 32 + 32))
      s += 2
    }
    if s < steps {
      c0 = sparsity_dpbf16ps(c0, _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: s * 4, as: Int32.self)), _mm512_loadu_si512(b + s * 32))
    }
    _mm512_storeu_ps(out, _mm512_add_ps(c0, c1))
  }
#else
  /// `out[j] += Σ_s x[2s]·w[j][2s] + x[2s+1]·w[j][2s+1]` for one row and one panel, the bf16
  /// values widened to fp32 (exact) and multiplied with FMA.
  @inline(never)
  private func bf16RowPanel(steps: Int, x: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, out: UnsafeMutablePointer<Float>) {
    typealias V = SIMD16<Float>
    var even = V(), odd = V()
    for s in 0..<steps {
      let pairs = UnsafeRawPointer(b + s * 32).loadUnaligned(as: SIMD32<UInt16>.self)
      var w0 = SIMD16<UInt32>(), w1 = SIMD16<UInt32>()
      for j in 0..<16 {
        w0[j] = UInt32(pairs[2 * j]) << 16
        w1[j] = UInt32(pairs[2 * j + 1]) << 16
      }
      let x0 = Float(bitPattern: UInt32(x[2 * s]) << 16), x1 = Float(bitPattern: UInt32(x[2 * s + 1]) << 16)
      even = fmaV16(even, V(repeating: x0), unsafeBitCast(w0, to: V.self))
      odd = fmaV16(odd, V(repeating: x1), unsafeBitCast(w1, to: V.self))
    }
    let sum = even + odd
    for j in 0..<16 { out[j] += sum[j] }
  }

  @inline(__always)
  private func fmaV16(_ acc: SIMD16<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    #if SPARSITY_FMA
      return acc.addingProduct(a, b)
    #else
      return acc + a * b
    #endif
  }
#endif

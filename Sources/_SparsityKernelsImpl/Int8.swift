import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

// Int8 linear layers with torchao's semantics (`Int8DynamicActivationInt8WeightConfig` and
// `Int8WeightOnlyConfig`, torchao 0.18): weights symmetric per output row in −128…127 with
// `scale = max(amax / 127.5, ε_f32)`; activations quantized the same way per token at run time.
//
//   dynamic:      y[m, n] = (Float(Σ_k xq[m, k] · wq[n, k]) · sx[m]) · sw[n] + b[n]   (int32 sum, exact)
//   weight-only:  y[m, n] = (Σ_k x[m, k] · Float(wq[n, k])) · sw[n] + b[n]            (fp32 sum)
//
// The products run on `vpdpbusd` (AVX512-VNNI: unsigned × signed bytes into int32, no
// intermediate saturation) with the activations shifted by +128 into unsigned bytes and the
// shift taken back out per output column (`128 · Σ_k wq[n, k]`, fixed at packing: oneDNN's
// compensation). Without VNNI (AVX2) both operands are widened to int16 and multiplied with
// `vpmaddwd` (exact: |x·w| ≤ 2¹⁴, pair sums ≤ 2¹⁵ — `vpmaddubsw` would saturate); the portable
// build runs scalar loops.

/// A 64-byte-aligned byte buffer that frees itself (accounted in ``MemoryLedger``).
package final class ByteBuffer: @unchecked Sendable {
  package let pointer: UnsafeMutableRawPointer
  package let count: Int

  package init(count: Int) {
    self.count = count
    MemoryLedger.recordAllocation(bytes: count)
    pointer = .allocate(byteCount: Swift.max(1, count), alignment: 64)
    pointer.initializeMemory(as: UInt8.self, repeating: 0, count: Swift.max(1, count))
  }

  deinit { pointer.deallocate() }
}

// MARK: - Quantization

/// torchao's symmetric int8 scale for a row whose largest magnitude is `amax`.
@inline(__always)
package func int8Scale(amax: Float) -> Float { Swift.max(amax / 127.5, Float.ulpOfOne) }

/// `round_half_even(v · reciprocal)` clamped to −128…127 (NaN → 0).
@inline(__always)
package func int8Quantized(_ v: Float, reciprocal: Float) -> Int8 {
  let r = (v * reciprocal).rounded(.toNearestOrEven)
  guard !r.isNaN else { return 0 }
  return Int8(Swift.max(-128, Swift.min(127, r)))
}

/// How ``quantizeRowsInt8`` writes each quantized value.
package enum Int8Output {
  /// `Int8` (the reference layout).
  case int8
  /// `UInt8`, the value + 128 (the unsigned operand of `vpdpbusd`).
  case shiftedUInt8
  /// `Int16` (the operand of `vpmaddwd`).
  case int16
}

/// Quantizes the rows of `x [m, k]` (row stride `ldx`) per row: `q` gets the values as `output`
/// says, with row stride `ldq` elements (elements `k..<ldq` of a row are the quantized zero),
/// `scales[m]` the row scales. Equal to ``int8Quantized(_:reciprocal:)`` element by element for
/// finite inputs.
package func quantizeRowsInt8(
  x: UnsafePointer<Float>, m: Int, k: Int, ldx: Int, q: UnsafeMutableRawPointer, ldq: Int, output: Int8Output = .int8,
  scales: UnsafeMutablePointer<Float>
) {
  typealias V = SIMD16<Float>
  let width = output == .int16 ? 2 : 1
  let zero: UInt8 = output == .shiftedUInt8 ? 0x80 : 0
  for r in 0..<m {
    let row = x + r * ldx
    var top = V(repeating: 0)
    var i = 0
    while i + 16 <= k {
      top = pointwiseMaxFast(top, abs16(UnsafeRawPointer(row + i).loadUnaligned(as: V.self)))
      i += 16
    }
    var amax = top.max()
    while i < k {
      amax = Swift.max(amax, row[i].magnitude)
      i += 1
    }
    let scale = int8Scale(amax: amax)
    scales[r] = scale
    let reciprocal = 1 / scale
    let out = q + r * ldq * width
    i = 0
    #if SPARSITY_ISA_AVX512
      let rv = _mm512_set1_ps(reciprocal)
      let flip = _mm_set1_epi8(Int8(bitPattern: zero))
      while i + 16 <= k {
        // x · (1/scale), rounded half to even (the MXCSR default) and saturated to int8.
        let v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + i), rv))
        if output == .int16 {
          let clamped = _mm512_max_epi32(_mm512_min_epi32(v, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128))
          let words: __m256i = _mm512_cvtsepi32_epi16(clamped)
          out.storeBytes(of: words, toByteOffset: 2 * i, as: __m256i.self)
        } else {
          let bytes: __m128i = _mm_xor_si128(_mm512_cvtsepi32_epi8(v), flip)
          out.storeBytes(of: bytes, toByteOffset: i, as: __m128i.self)
        }
        i += 16
      }
    #elseif SPARSITY_ISA_AVX2
      let rv = _mm256_set1_ps(reciprocal)
      while i + 8 <= k {
        var v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + i), rv))
        v = _mm256_max_epi32(_mm256_min_epi32(v, _mm256_set1_epi32(127)), _mm256_set1_epi32(-128))
        // Narrow the 8 int32 to int16 (in order), then to bytes when asked.
        let words = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(_mm256_packs_epi32(v, v), _mm256_setr_epi32(0, 1, 4, 5, 0, 1, 4, 5)))
        if output == .int16 {
          out.storeBytes(of: words, toByteOffset: 2 * i, as: __m128i.self)
        } else {
          let bytes = _mm_xor_si128(_mm_packs_epi16(words, words), _mm_set1_epi8(Int8(bitPattern: zero)))
          out.storeBytes(of: _mm_cvtsi128_si64(bytes), toByteOffset: i, as: Int64.self)
        }
        i += 8
      }
    #endif
    while i < k {
      let v = int8Quantized(row[i], reciprocal: reciprocal)
      switch output {
      case .int8: out.storeBytes(of: v, toByteOffset: i, as: Int8.self)
      case .shiftedUInt8: out.storeBytes(of: UInt8(bitPattern: v) ^ 0x80, toByteOffset: i, as: UInt8.self)
      case .int16: out.storeBytes(of: Int16(v), toByteOffset: 2 * i, as: Int16.self)
      }
      i += 1
    }
    if ldq > k { (out + k * width).initializeMemory(as: UInt8.self, repeating: zero, count: (ldq - k) * width) }
  }
}

@inline(__always)
func abs16(_ v: SIMD16<Float>) -> SIMD16<Float> {
  unsafeBitCast(unsafeBitCast(v, to: SIMD16<UInt32>.self) & SIMD16<UInt32>(repeating: 0x7FFF_FFFF), to: SIMD16<Float>.self)
}

/// Lane-wise max/min by compare and blend (the standard library's `pointwiseMax` is not
/// inlined for SIMD16 and runs lane by lane). A NaN lane yields the first operand.
@inline(__always)
func pointwiseMaxFast(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a.replacing(with: b, where: b .> a) }
@inline(__always)
private func pointwiseMinFast(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a.replacing(with: b, where: b .< a) }

// MARK: - Packed weight

/// An int8 weight `[n, k]` with one scale per output row, packed for the int8 kernels: panels
/// of 16 output columns; within a panel, groups of 4 consecutive inputs, each column's 4 bytes
/// together (`data[((p·groups + g)·16 + j)·4 + i] = wq[16p + j][4g + i]`, zero past `n` and `k`) —
/// the operand layout of `vpdpbusd`. Also holds `128 · Σ_k wq[n, k]` per column (the +128
/// activation shift's compensation). 1 byte per weight + 8 bytes per row.
package final class PackedInt8Weight: @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let groups: Int
  package let panels: Int
  package let data: ByteBuffer
  /// `[panels · 16]` row scales (zero past `n`).
  package let scales: FloatBuffer
  /// `[panels · 16]` `128 · Σ_k wq[n, k]`.
  package let compensation: ByteBuffer

  /// Packs row-major int8 values `q [n, k]` and their row scales.
  package init(values q: UnsafePointer<Int8>, scales s: UnsafePointer<Float>, n: Int, k: Int) {
    self.n = n
    self.k = k
    groups = (k + 3) / 4
    panels = (n + 15) / 16
    data = ByteBuffer(count: panels * groups * 64)
    scales = FloatBuffer(count: panels * 16)
    compensation = ByteBuffer(count: panels * 16 * 4)
    let d = data.pointer.assumingMemoryBound(to: Int8.self)
    let comp = compensation.pointer.assumingMemoryBound(to: Int32.self)
    for r in 0..<n {
      let (p, j) = (r / 16, r % 16)
      var sum: Int32 = 0
      for c in 0..<k {
        let v = q[r * k + c]
        d[((p * groups + c / 4) * 16 + j) * 4 + c % 4] = v
        sum += Int32(v)
      }
      comp[r] = 128 * sum
      scales.pointer[r] = s[r]
    }
  }

  /// Bytes held: the values, scales and compensation.
  package var byteCount: Int { data.count + scales.count * 4 + compensation.count }

  /// The int8 value of row `r`, column `c`.
  @inline(__always)
  package func value(row r: Int, column c: Int) -> Int8 {
    data.pointer.assumingMemoryBound(to: Int8.self)[((r / 16 * groups + c / 4) * 16 + r % 16) * 4 + c % 4]
  }
}

// MARK: - Dynamic activations (int8 × int8)

/// Int8 weights with per-row scales, run against per-token int8 activations (W8A8).
package protocol Int8ActivationPanels: PanelDotWeight {
  /// `[panels · 16]` row scales.
  var scales: FloatBuffer { get }
  /// `[panels · 16]` int32 `128 · Σ_k wq[n, k]` (the +128 activation shift's compensation).
  var compensation: ByteBuffer { get }
}

extension Int8ActivationPanels {
  #if SPARSITY_VNNI
    /// One unsigned byte (the value + 128) per activation, for `vpdpbusd`.
    package static var activationBytes: Int { 1 }
  #else
    /// Int16 per activation, for `vpmaddwd` (and the portable loops).
    package static var activationBytes: Int { 2 }
  #endif

  /// Per-token int8 quantization (torchao's), into unsigned bytes (VNNI) or int16.
  package static func prepareRows(
    x: UnsafePointer<Float>, m: Int, k: Int, ldq: Int, into: UnsafeMutableRawPointer, scales: UnsafeMutablePointer<Float>
  ) {
    #if SPARSITY_VNNI
      let output = Int8Output.shiftedUInt8
    #else
      let output = Int8Output.int16
    #endif
    quantizeRowsInt8(x: x, m: m, k: k, ldx: k, q: into, ldq: ldq, output: output, scales: scales)
  }

  package func finish(
    acc: UnsafeMutablePointer<Int32>, ldacc: Int, a: PreparedActivations, row: Int, rows: Int, column: Int, columns: Int,
    y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>?
  ) {
    int8DynamicEpilogue(
      scales: UnsafePointer(scales.pointer), compensation: UnsafePointer(compensation.pointer.assumingMemoryBound(to: Int32.self)),
      acc: acc, ldacc: ldacc, a: a, row: row, rows: rows, column: column, columns: columns, y: y, ldy: ldy, bias: bias)
  }
}

extension PackedInt8Weight: Int8ActivationPanels {
  package var steps: Int { groups }
  package static var inputsPerStep: Int { 4 }
  package static var stepsPerBlock: Int { 96 }
  package static var preparedBytesPerStep: Int { 0 }
  package func prepare(panel: Int, steps: Range<Int>, into: UnsafeMutableRawPointer) {}

  package func tile(
    a: PreparedActivations, row: Int, rows: Int, panel: Int, steps range: Range<Int>, prepared: UnsafeRawPointer,
    acc: UnsafeMutablePointer<Int32>
  ) {
    int8Tile(weight: self, a: a, row: row, rows: rows, panel: panel, groups: range, acc: acc)
  }

  package func rowQuad(a: UnsafeRawPointer, quad: Int, acc: UnsafeMutablePointer<Int32>) {
    let b = UnsafePointer(data.pointer.assumingMemoryBound(to: Int8.self))
    let count = Swift.min(4, panels - quad * 4)
    #if SPARSITY_VNNI
      int8VNNIKernel1x64(groups: groups, a: a, b: b + quad * 4 * groups * 64, panels: count, acc: acc)
    #else
      acc.initialize(repeating: 0, count: 64)
      for p in 0..<count { int8RowPanel(groups: groups, a: a, b: b + (quad * 4 + p) * groups * 64, acc: acc + p * 16) }
    #endif
  }
}

#if SPARSITY_VNNI
  /// One row of unsigned activations against up to 4 consecutive 16-column panels (`panels`):
  /// `acc[16p + j] = Σ_k u[k] · w_p[j][k]`, two groups per step into two accumulator sets.
  @inline(never)
  private func int8VNNIKernel1x64(groups: Int, a: UnsafeRawPointer, b: UnsafePointer<Int8>, panels: Int, acc: UnsafeMutablePointer<Int32>) {
    var c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512(), c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512()
    var d0 = _mm512_setzero_si512(), d1 = _mm512_setzero_si512(), d2 = _mm512_setzero_si512(), d3 = _mm512_setzero_si512()
    let stride = groups * 64
    // Missing panels read panel 0 again (their sums are not stored).
    let p1 = b + (panels > 1 ? stride : 0), p2 = b + (panels > 2 ? 2 * stride : 0), p3 = b + (panels > 3 ? 3 * stride : 0)
    var g = 0
    while g + 2 <= groups {
      let o = g * 64
      let x = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: g * 4, as: Int32.self))
      let x2 = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: g * 4 + 4, as: Int32.self))
      c0 = _mm512_dpbusd_epi32(c0, x, _mm512_loadu_si512(b + o))
      c1 = _mm512_dpbusd_epi32(c1, x, _mm512_loadu_si512(p1 + o))
      c2 = _mm512_dpbusd_epi32(c2, x, _mm512_loadu_si512(p2 + o))
      c3 = _mm512_dpbusd_epi32(c3, x, _mm512_loadu_si512(p3 + o))
      d0 = _mm512_dpbusd_epi32(d0, x2, _mm512_loadu_si512(b + o + 64))
      d1 = _mm512_dpbusd_epi32(d1, x2, _mm512_loadu_si512(p1 + o + 64))
      d2 = _mm512_dpbusd_epi32(d2, x2, _mm512_loadu_si512(p2 + o + 64))
      d3 = _mm512_dpbusd_epi32(d3, x2, _mm512_loadu_si512(p3 + o + 64))
      g += 2
    }
    if g < groups {
      let o = g * 64
      let x = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: g * 4, as: Int32.self))
      c0 = _mm512_dpbusd_epi32(c0, x, _mm512_loadu_si512(b + o))
      c1 = _mm512_dpbusd_epi32(c1, x, _mm512_loadu_si512(p1 + o))
      c2 = _mm512_dpbusd_epi32(c2, x, _mm512_loadu_si512(p2 + o))
      c3 = _mm512_dpbusd_epi32(c3, x, _mm512_loadu_si512(p3 + o))
    }
    let out = UnsafeMutableRawPointer(acc)
    _mm512_storeu_si512(out, _mm512_add_epi32(c0, d0))
    _mm512_storeu_si512(out + 64, _mm512_add_epi32(c1, d1))
    _mm512_storeu_si512(out + 128, _mm512_add_epi32(c2, d2))
    _mm512_storeu_si512(out + 192, _mm512_add_epi32(c3, d3))
  }
#endif

/// `acc[i][j] (+)= Σ_{k in groups} xq[row + i][k] · wq[32·(panel/2) + j][k]` for a 6 × 32 tile
/// (the first block writes, later ones add; rows past `rows` read a zero row, columns past `n`
/// are zero weights).
private func int8Tile(
  weight: PackedInt8Weight, a: PreparedActivations, row: Int, rows: Int, panel: Int, groups range: Range<Int>,
  acc: UnsafeMutablePointer<Int32>
) {
  let groups = weight.groups
  let b = weight.data.pointer.assumingMemoryBound(to: Int8.self)
  let first = range.lowerBound == 0
  #if SPARSITY_VNNI
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: range.count * 4) { zero in
      // A row of +128 bytes: the shifted zero activation (its products are compensated away).
      zero.initialize(repeating: 0x80)
      func rowPointer(_ i: Int) -> UnsafeRawPointer {
        i < rows ? UnsafeRawPointer(a.rows + (row + i) * a.stride + range.lowerBound * 4) : UnsafeRawPointer(zero.baseAddress!)
      }
      let b1 = panel + 1 < weight.panels ? b + ((panel + 1) * groups + range.lowerBound) * 64 : nil
      int8VNNIKernel6x32(
        groups: range.count, a0: rowPointer(0), a1: rowPointer(1), a2: rowPointer(2), a3: rowPointer(3), a4: rowPointer(4),
        a5: rowPointer(5), b0: b + (panel * groups + range.lowerBound) * 64, b1: b1, acc: acc, accumulate: !first)
    }
  #else
    for i in 0..<6 {
      if first { for j in 0..<32 { acc[i * 32 + j] = 0 } }
      guard i < rows else { continue }
      for half in 0..<2 where panel + half < weight.panels {
        int8RowPanel(
          groups: range.count, a: a.rows + (row + i) * a.stride + range.lowerBound * 8,
          b: b + ((panel + half) * groups + range.lowerBound) * 64, acc: acc + i * 32 + half * 16)
      }
    }
  #endif
}

#if SPARSITY_VNNI
  /// 6 rows × 32 columns of `vpdpbusd`: per group of 4 inputs, two 64-byte weight loads and,
  /// per row, one broadcast dword of unsigned activations; 12 zmm accumulators, starting from
  /// `acc` when `accumulate`. `b1` nil: the second panel does not exist (its sums stay zero).
  @inline(never)
  private func int8VNNIKernel6x32(
    groups: Int, a0: UnsafeRawPointer, a1: UnsafeRawPointer, a2: UnsafeRawPointer, a3: UnsafeRawPointer,
    a4: UnsafeRawPointer, a5: UnsafeRawPointer, b0: UnsafePointer<Int8>, b1: UnsafePointer<Int8>?,
    acc: UnsafeMutablePointer<Int32>, accumulate: Bool
  ) {
    let out = UnsafeMutableRawPointer(acc)
    var c00 = _mm512_setzero_si512(), c01 = _mm512_setzero_si512(), c10 = _mm512_setzero_si512()
    var c11 = _mm512_setzero_si512(), c20 = _mm512_setzero_si512(), c21 = _mm512_setzero_si512()
    var c30 = _mm512_setzero_si512(), c31 = _mm512_setzero_si512(), c40 = _mm512_setzero_si512()
    var c41 = _mm512_setzero_si512(), c50 = _mm512_setzero_si512(), c51 = _mm512_setzero_si512()
    if accumulate {
      c00 = _mm512_loadu_si512(out); c01 = _mm512_loadu_si512(out + 64)
      c10 = _mm512_loadu_si512(out + 128); c11 = _mm512_loadu_si512(out + 192)
      c20 = _mm512_loadu_si512(out + 256); c21 = _mm512_loadu_si512(out + 320)
      c30 = _mm512_loadu_si512(out + 384); c31 = _mm512_loadu_si512(out + 448)
      c40 = _mm512_loadu_si512(out + 512); c41 = _mm512_loadu_si512(out + 576)
      c50 = _mm512_loadu_si512(out + 640); c51 = _mm512_loadu_si512(out + 704)
    }
    // A missing second panel multiplies the first one again into sums that are not used.
    let second = b1 ?? b0
    for g in 0..<groups {
      let w0 = _mm512_loadu_si512(b0 + g * 64)
      let w1 = _mm512_loadu_si512(second + g * 64)
      let offset = g * 4
      var x = _mm512_set1_epi32(a0.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c00 = _mm512_dpbusd_epi32(c00, x, w0); c01 = _mm512_dpbusd_epi32(c01, x, w1)
      x = _mm512_set1_epi32(a1.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c10 = _mm512_dpbusd_epi32(c10, x, w0); c11 = _mm512_dpbusd_epi32(c11, x, w1)
      x = _mm512_set1_epi32(a2.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c20 = _mm512_dpbusd_epi32(c20, x, w0); c21 = _mm512_dpbusd_epi32(c21, x, w1)
      x = _mm512_set1_epi32(a3.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c30 = _mm512_dpbusd_epi32(c30, x, w0); c31 = _mm512_dpbusd_epi32(c31, x, w1)
      x = _mm512_set1_epi32(a4.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c40 = _mm512_dpbusd_epi32(c40, x, w0); c41 = _mm512_dpbusd_epi32(c41, x, w1)
      x = _mm512_set1_epi32(a5.loadUnaligned(fromByteOffset: offset, as: Int32.self))
      c50 = _mm512_dpbusd_epi32(c50, x, w0); c51 = _mm512_dpbusd_epi32(c51, x, w1)
    }
    _mm512_storeu_si512(out, c00); _mm512_storeu_si512(out + 64, c01)
    _mm512_storeu_si512(out + 128, c10); _mm512_storeu_si512(out + 192, c11)
    _mm512_storeu_si512(out + 256, c20); _mm512_storeu_si512(out + 320, c21)
    _mm512_storeu_si512(out + 384, c30); _mm512_storeu_si512(out + 448, c31)
    _mm512_storeu_si512(out + 512, c40); _mm512_storeu_si512(out + 576, c41)
    _mm512_storeu_si512(out + 640, c50); _mm512_storeu_si512(out + 704, c51)
  }
#else
  /// One activation row (int16) against one 16-column panel: `acc[j] = Σ_k x[k] · w[j][k]`.
  @inline(never)
  private func int8RowPanel(groups: Int, a: UnsafeRawPointer, b: UnsafePointer<Int8>, acc: UnsafeMutablePointer<Int32>) {
    let x = a.assumingMemoryBound(to: Int16.self)
    #if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
      // Per group: 4 chunks of 4 columns × 4 inputs, widened to int16 and multiplied by the
      // row's 4 inputs with vpmaddwd (pairs of products in int32; exact).
      var s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256()
      for g in 0..<groups {
        let xv = _mm256_set1_epi64x(UnsafeRawPointer(x + g * 4).loadUnaligned(as: Int64.self))
        let w = UnsafeRawPointer(b + g * 64)
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(w.loadUnaligned(as: __m128i.self)), xv))
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_cvtepi8_epi16(w.loadUnaligned(fromByteOffset: 16, as: __m128i.self)), xv))
        s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_cvtepi8_epi16(w.loadUnaligned(fromByteOffset: 32, as: __m128i.self)), xv))
        s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(_mm256_cvtepi8_epi16(w.loadUnaligned(fromByteOffset: 48, as: __m128i.self)), xv))
      }
      // Each sum holds, per column of its chunk, two partial sums side by side.
      withUnsafeTemporaryAllocation(of: Int32.self, capacity: 32) { t in
        let raw = UnsafeMutableRawPointer(t.baseAddress!)
        raw.storeBytes(of: s0, as: __m256i.self); raw.storeBytes(of: s1, toByteOffset: 32, as: __m256i.self)
        raw.storeBytes(of: s2, toByteOffset: 64, as: __m256i.self); raw.storeBytes(of: s3, toByteOffset: 96, as: __m256i.self)
        for j in 0..<16 { acc[j] &+= t[2 * j] &+ t[2 * j + 1] }
      }
    #else
      for j in 0..<16 {
        var s: Int32 = 0
        for g in 0..<groups {
          for i in 0..<4 { s &+= Int32(x[g * 4 + i]) &* Int32(b[(g * 16 + j) * 4 + i]) }
        }
        acc[j] &+= s
      }
    #endif
  }
#endif

/// `y[row + i][column + j] = (Float(acc[i][j] − comp[j]) · sx[i]) · sw[j] + bias[j]` for the
/// valid part of a tile (row stride `ldacc`): the order of torchao's operations, so results
/// match it bit for bit.
@inline(__always)
private func int8DynamicEpilogue(
  scales: UnsafePointer<Float>, compensation: UnsafePointer<Int32>, acc: UnsafeMutablePointer<Int32>, ldacc: Int,
  a: PreparedActivations, row: Int, rows: Int, column: Int, columns: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
  bias: UnsafePointer<Float>?
) {
  let sw = scales + column
  #if SPARSITY_VNNI
    let comp = compensation + column
  #endif
  for i in 0..<rows {
    let sx = a.scales[row + i]
    let out = y + (row + i) * ldy + column
    let sums = UnsafePointer(acc + i * ldacc)
    var j = 0
    while j + 16 <= columns {
      var dot = UnsafeRawPointer(sums + j).loadUnaligned(as: SIMD16<Int32>.self)
      #if SPARSITY_VNNI
        dot &-= UnsafeRawPointer(comp + j).loadUnaligned(as: SIMD16<Int32>.self)
      #endif
      var v = (float16(dot) * SIMD16(repeating: sx)) * UnsafeRawPointer(sw + j).loadUnaligned(as: SIMD16<Float>.self)
      if let bias { v += UnsafeRawPointer(bias + column + j).loadUnaligned(as: SIMD16<Float>.self) }
      UnsafeMutableRawPointer(out + j).storeBytes(of: v, as: SIMD16<Float>.self)
      j += 16
    }
    while j < columns {
      #if SPARSITY_VNNI
        let dot = sums[j] &- comp[j]
      #else
        let dot = sums[j]
      #endif
      let v = (Float(dot) * sx) * sw[j]
      out[j] = bias.map { v + $0[column + j] } ?? v
      j += 1
    }
  }
}

/// The 16 int32 lanes as floats (exact below 2²⁴, else rounded to nearest even like `Float(_:)`).
@inline(__always)
private func float16(_ v: SIMD16<Int32>) -> SIMD16<Float> {
  #if SPARSITY_ISA_AVX512
    return unsafeBitCast(_mm512_cvtepi32_ps(unsafeBitCast(v, to: __m512i.self)), to: SIMD16<Float>.self)
  #elseif SPARSITY_ISA_AVX2
    let halves = unsafeBitCast(v, to: (__m256i, __m256i).self)
    return unsafeBitCast((_mm256_cvtepi32_ps(halves.0), _mm256_cvtepi32_ps(halves.1)), to: SIMD16<Float>.self)
  #else
    var f = SIMD16<Float>()
    for i in 0..<16 { f[i] = Float(v[i]) }
    return f
  #endif
}

/// 16 int8 at `p` as floats.
@inline(__always)
func floatsFromInt8(_ p: UnsafeRawPointer) -> SIMD16<Float> {
  #if SPARSITY_ISA_AVX512
    return unsafeBitCast(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(p.loadUnaligned(as: __m128i.self))), to: SIMD16<Float>.self)
  #elseif SPARSITY_ISA_AVX2
    let lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(p.loadUnaligned(as: Int64.self))))
    let hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(p.loadUnaligned(fromByteOffset: 8, as: Int64.self))))
    return unsafeBitCast((lo, hi), to: SIMD16<Float>.self)
  #else
    var f = SIMD16<Float>()
    for i in 0..<16 { f[i] = Float(p.load(fromByteOffset: i, as: Int8.self)) }
    return f
  #endif
}

// MARK: - Weight-only (fp32 activations)

/// `y = x · Wᵀ + bias` with int8 weights and fp32 activations for many rows: each 16-column
/// panel is dequantized (`q · sw`, the values torchao's weight-only recipe multiplies by) into a
/// float panel of the dense GEMM's layout in a thread's scratch, then the dense 6×16 microkernel
/// runs every row panel of the packed activations over it — fp32 GEMM speed from int8 bytes,
/// never holding more than one float panel per thread.
package func int8WeightOnlyGEMM(
  weight: PackedInt8Weight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k, groups, np) = (weight.n, weight.k, weight.groups, weight.panels)
  guard m > 0, n > 0 else { return }
  let rowPanels = (m + 5) / 6
  withPaddedBias(bias, count: n, padded: np * 16) { biasP in
    withActivationPanels(x: x, m: m, k: k, workers: workers) { ap in
      let parts = Swift.max(1, Swift.min(workItems(workers), np))
      let out = Unchecked(y)
      let apShared = Unchecked(ap)
      parallelFor(parts) { w in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: k * 16) { panel in
          let b = panel.baseAddress!
          let q = weight.data.pointer.assumingMemoryBound(to: Int8.self)
          for p in (np * w / parts)..<(np * (w + 1) / parts) {
            // [K][16] floats: column j of input c is q[((p·groups + c/4)·16 + j)·4 + c%4] · scale[j].
            let scales = weight.scales.pointer + p * 16
            for c in 0..<k {
              let source = q + ((p * groups + c / 4) * 16) * 4 + c % 4
              for j in 0..<16 { b[c * 16 + j] = Float(source[j * 4]) * scales[j] }
            }
            let columns = Swift.min(16, n - p * 16)
            for ir in 0..<rowPanels {
              let rows = Swift.min(6, m - ir * 6)
              withTile(rows: rows, columns: columns, c: out.value + ir * 6 * n + p * 16, ldc: n, accumulate: false) { c, ldc in
                kernel6x16(
                  segments: 1, length: k, kStarts: nil, a: apShared.value + ir * k * 6, b: b, c: c, ldc: ldc, accumulate: false,
                  bias: biasP.map { $0 + p * 16 })
              }
            }
          }
        }
      }
    }
  }
}

/// `y = x · Wᵀ + bias` with int8 weights and fp32 activations (torchao's weight-only recipe:
/// `(x · float(wq)ᵀ) · sw + b`), one activation row at a time: per 16 columns and group of 4
/// inputs, the 64 weight bytes widen to fp32 and meet the row's 4 inputs repeated across the
/// vector; each column's 4 partial sums are added at the end.
package func int8WeightOnlyLinear(
  weight: PackedInt8Weight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k, groups, np) = (weight.n, weight.k, weight.groups, weight.panels)
  guard m > 0, n > 0 else { return }
  let parts = Swift.max(1, Swift.min(workItems(workers), np))
  let out = Unchecked(y)
  let b = UnsafePointer(weight.data.pointer.assumingMemoryBound(to: Int8.self))
  // The rows padded to whole groups with zeros.
  withPaddedRows(x: x, m: m, k: k, ldx: groups * 4) { padded in
    let xp = Unchecked(padded)
    parallelFor(parts) { w in
      for p in (np * w / parts)..<(np * (w + 1) / parts) {
        for r in 0..<m {
          let columns = Swift.min(16, n - p * 16)
          withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { sums in
            int8WeightOnlyRowPanel(groups: groups, x: xp.value + r * groups * 4, b: b + p * groups * 64, out: sums.baseAddress!)
            let o = out.value + r * n + p * 16
            for j in 0..<columns {
              let v = sums[j] * weight.scales.pointer[p * 16 + j]
              o[j] = bias.map { v + $0[p * 16 + j] } ?? v
            }
          }
        }
      }
    }
  }
}

/// `out[j] = Σ_k x[k] · Float(w[j][k])` for one 16-column panel (x padded to whole groups).
@inline(never)
private func int8WeightOnlyRowPanel(groups: Int, x: UnsafePointer<Float>, b: UnsafePointer<Int8>, out: UnsafeMutablePointer<Float>) {
  typealias V = SIMD16<Float>
  // Lanes 4c…4c+3 of chunk q hold column 4q + c's 4 inputs of the group.
  var s0 = V(), s1 = V(), s2 = V(), s3 = V()
  for g in 0..<groups {
    let x4 = UnsafeRawPointer(x + g * 4).loadUnaligned(as: SIMD4<Float>.self)
    let xv = V(lowHalf: SIMD8(lowHalf: x4, highHalf: x4), highHalf: SIMD8(lowHalf: x4, highHalf: x4))
    let w = UnsafeRawPointer(b + g * 64)
    s0 = fma16(s0, xv, floatsFromInt8(w))
    s1 = fma16(s1, xv, floatsFromInt8(w + 16))
    s2 = fma16(s2, xv, floatsFromInt8(w + 32))
    s3 = fma16(s3, xv, floatsFromInt8(w + 48))
  }
  for (q, s) in [s0, s1, s2, s3].enumerated() {
    for c in 0..<4 { out[4 * q + c] = (s[4 * c] + s[4 * c + 1]) + (s[4 * c + 2] + s[4 * c + 3]) }
  }
}

@inline(__always)
func fma16(_ acc: SIMD16<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
  #if SPARSITY_FMA
    return acc.addingProduct(a, b)
  #else
    return acc + a * b
  #endif
}

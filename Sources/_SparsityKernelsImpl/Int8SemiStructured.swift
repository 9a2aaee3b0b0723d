import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

/// A 2:4 int8 weight for the W8A8 kernels (``panelDotLinear(weight:x:m:y:bias:workers:)``): panels of 16 output columns;
/// per k-step of 8 inputs (two groups of 4), each column's 4 kept values — 2 of each group, in
/// column order — as one dword (`values[((p·steps + s)·16 + j)·4 + i]`), and one code byte per
/// column and step (`codes[(p·steps + s)·16 + j]`: the 4 positions within their groups, 2 bits
/// each, least significant first). With AVX512-VNNI and VBMI the kernels turn 16 code bytes into
/// a `vpshufb` control (`vpermb` + `vpmultishiftqb` + one AND/OR) that picks each column's 4
/// activations out of the step's 8 broadcast bytes, then one `vpdpbusd` does the 4 products: per
/// 16 columns and 8 inputs, one shuffle and one dot instead of the dense layout's two dots.
/// 5 bits per weight (k/2 value bytes + k/8 code bytes per row): 62.5% of the dense int8 bytes.
package final class PackedInt8SemiStructuredWeight: Int8ActivationPanels, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let panels: Int
  package let steps: Int
  package let values: ByteBuffer
  package let codes: ByteBuffer
  package let scales: FloatBuffer
  package let compensation: ByteBuffer
  package static var inputsPerStep: Int { 8 }
  package static var stepsPerBlock: Int { 48 }

  /// Packs the logical 2:4 form: int8 `values [n, groups·2]` (the 2 kept values of each group
  /// of 4, in column order) with one position byte per value, and the row scales.
  package init(values q: UnsafePointer<Int8>, positions: UnsafePointer<UInt8>, scales s: UnsafePointer<Float>, n: Int, k: Int) {
    self.n = n
    self.k = k
    let groups = (k + 3) / 4
    steps = (groups + 1) / 2
    panels = (n + 15) / 16
    values = ByteBuffer(count: panels * steps * 64)
    codes = ByteBuffer(count: panels * steps * 16)
    scales = FloatBuffer(count: panels * 16)
    compensation = ByteBuffer(count: panels * 16 * 4)
    let v = values.pointer.assumingMemoryBound(to: Int8.self)
    let c = codes.pointer.assumingMemoryBound(to: UInt8.self)
    let comp = compensation.pointer.assumingMemoryBound(to: Int32.self)
    for r in 0..<n {
      let (p, j) = (r / 16, r % 16)
      var sum: Int32 = 0
      for g in 0..<steps * 2 {
        // A missing last group keeps positions 2 and 3 with zero values (its inputs are zero too).
        let (i0, i1) = g < groups ? (positions[(r * groups + g) * 2], positions[(r * groups + g) * 2 + 1]) : (2, 3)
        let (v0, v1) = g < groups ? (q[(r * groups + g) * 2], q[(r * groups + g) * 2 + 1]) : (0, 0)
        let (step, half) = (g / 2, g % 2)
        let slot = ((p * steps + step) * 16 + j) * 4 + half * 2
        v[slot] = v0
        v[slot + 1] = v1
        c[(p * steps + step) * 16 + j] |= (i0 | i1 << 2) << UInt8(4 * half)
        sum += Int32(v0) + Int32(v1)
      }
      comp[r] = 128 * sum
      scales.pointer[r] = s[r]
    }
  }

  /// Bytes held: values, codes, scales and compensation.
  package var byteCount: Int { values.count + codes.count + scales.count * 4 + compensation.count }

  /// The kept value of row `r` in group `g` (slot 0 or 1) and its position in the group.
  package func kept(row r: Int, group g: Int, slot: Int) -> (value: Int8, position: Int) {
    let (p, j, step, half) = (r / 16, r % 16, g / 2, g % 2)
    let value = values.pointer.assumingMemoryBound(to: Int8.self)[((p * steps + step) * 16 + j) * 4 + half * 2 + slot]
    let code = codes.pointer.assumingMemoryBound(to: UInt8.self)[(p * steps + step) * 16 + j] >> UInt8(4 * half)
    return (value, Int(code >> UInt8(2 * slot)) & 3)
  }

  #if SPARSITY_VNNI && SPARSITY_VBMI
    /// The shuffle controls of a k-block, 64 bytes per step: made once per block and panel,
    /// read by every row tile.
    package static var preparedBytesPerStep: Int { 64 }
    package func prepare(panel: Int, steps range: Range<Int>, into out: UnsafeMutableRawPointer) {
      let c = UnsafePointer(codes.pointer.assumingMemoryBound(to: UInt8.self)) + (panel * steps + range.lowerBound) * 16
      for s in 0..<range.count { out.storeBytes(of: shuffleControl(c + s * 16), toByteOffset: s * 64, as: __m512i.self) }
    }
  #else
    package static var preparedBytesPerStep: Int { 0 }
    package func prepare(panel: Int, steps: Range<Int>, into: UnsafeMutableRawPointer) {}
  #endif

  package func tile(
    a: PreparedActivations, row: Int, rows: Int, panel: Int, steps range: Range<Int>, prepared: UnsafeRawPointer,
    acc: UnsafeMutablePointer<Int32>
  ) {
    let first = range.lowerBound == 0
    #if SPARSITY_VNNI && SPARSITY_VBMI
      let v = UnsafePointer(values.pointer.assumingMemoryBound(to: Int8.self))
      withUnsafeTemporaryAllocation(of: UInt8.self, capacity: range.count * 8) { zero in
        zero.initialize(repeating: 0x80)
        func rowPointer(_ i: Int) -> UnsafeRawPointer {
          i < rows ? UnsafeRawPointer(a.rows + (row + i) * a.stride + range.lowerBound * 8) : UnsafeRawPointer(zero.baseAddress!)
        }
        // A missing second panel runs the first one again into sums that are not used.
        let second = panel + 1 < panels ? panel + 1 : panel
        int8SemiStructuredKernel6x32(
          steps: range.count, a0: rowPointer(0), a1: rowPointer(1), a2: rowPointer(2), a3: rowPointer(3), a4: rowPointer(4),
          a5: rowPointer(5), v0: v + (panel * steps + range.lowerBound) * 64, k0: prepared,
          v1: v + (second * steps + range.lowerBound) * 64, k1: prepared + Self.stepsPerBlock * 64, acc: acc, accumulate: !first)
      }
    #else
      for i in 0..<6 {
        if first { for j in 0..<32 { acc[i * 32 + j] = 0 } }
        guard i < rows else { continue }
        for half in 0..<2 where panel + half < panels {
          rowPanel(a: UnsafeRawPointer(a.rows + (row + i) * a.stride), panel: panel + half, steps: range, acc: acc + i * 32 + half * 16)
        }
      }
    #endif
  }

  package func rowQuad(a: UnsafeRawPointer, quad: Int, acc: UnsafeMutablePointer<Int32>) {
    let count = Swift.min(4, panels - quad * 4)
    #if SPARSITY_VNNI && SPARSITY_VBMI
      let v = UnsafePointer(values.pointer.assumingMemoryBound(to: Int8.self))
      let c = UnsafePointer(codes.pointer.assumingMemoryBound(to: UInt8.self))
      // Missing panels repeat the first (their sums are not used).
      func panel(_ p: Int) -> Int { quad * 4 + (p < count ? p : 0) }
      int8SemiStructuredKernel1x64(
        steps: steps, a: a, v0: v + panel(0) * steps * 64, c0: c + panel(0) * steps * 16, v1: v + panel(1) * steps * 64,
        c1: c + panel(1) * steps * 16, v2: v + panel(2) * steps * 64, c2: c + panel(2) * steps * 16, v3: v + panel(3) * steps * 64,
        c3: c + panel(3) * steps * 16, acc: acc)
    #else
      acc.initialize(repeating: 0, count: 64)
      for p in 0..<count { rowPanel(a: a, panel: quad * 4 + p, steps: 0..<steps, acc: acc + p * 16) }
    #endif
  }

  #if !(SPARSITY_VNNI && SPARSITY_VBMI)
    /// `acc[j] += Σ x[k] · w[j][k]` over `steps` for one int16 activation row (exact int32
    /// products: the reference-like path of builds without VNNI and VBMI).
    private func rowPanel(a: UnsafeRawPointer, panel p: Int, steps range: Range<Int>, acc: UnsafeMutablePointer<Int32>) {
      let x = a.assumingMemoryBound(to: Int16.self)
      let v = values.pointer.assumingMemoryBound(to: Int8.self)
      let c = codes.pointer.assumingMemoryBound(to: UInt8.self)
      for j in 0..<16 {
        var sum: Int32 = 0
        for s in range {
          let code = Int(c[(p * steps + s) * 16 + j])
          let w = v + ((p * steps + s) * 16 + j) * 4
          for i in 0..<4 {
            let position = (code >> (2 * i)) & 3 + (i >= 2 ? 4 : 0)
            sum &+= Int32(x[s * 8 + position]) &* Int32(w[i])
          }
        }
        acc[j] &+= sum
      }
    }
  #endif
}

#if SPARSITY_VNNI && SPARSITY_VBMI
  /// The `vpshufb` control of 16 columns' code bytes: dword j = the byte offsets (within the
  /// step's 8 inputs) of column j's 4 kept values: `[p0, p1, 4 + p2, 4 + p3]`.
  @inline(__always)
  private func shuffleControl(_ codes: UnsafePointer<UInt8>) -> __m512i {
    // Each code byte copied into the 4 bytes of its dword (vpermb), then byte b of a dword
    // takes the code's bits 2b…2b+1 (vpmultishiftqb: per byte, 8 bits at a bit offset of its
    // qword), masked to 2 bits; the second group's positions are 4 further.
    let spread = _mm512_set_epi8(
      15, 15, 15, 15, 14, 14, 14, 14, 13, 13, 13, 13, 12, 12, 12, 12, 11, 11, 11, 11, 10, 10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 8,
      7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0)
    let shifts = _mm512_set1_epi64(0x3E34_2A20_1E14_0A00)
    let copies = _mm512_permutexvar_epi8(spread, _mm512_castsi128_si512(UnsafeRawPointer(codes).loadUnaligned(as: __m128i.self)))
    let fields = _mm512_multishift_epi64_epi8(shifts, copies)
    return _mm512_or_si512(_mm512_and_si512(fields, _mm512_set1_epi8(3)), _mm512_set1_epi32(0x0404_0000))
  }

  /// 6 rows × 32 columns of 2:4 int8: per step of 8 inputs, two prepared shuffle controls, two
  /// value loads, and per row one broadcast qword of activations, two shuffles and two `vpdpbusd`.
  @inline(never)
  private func int8SemiStructuredKernel6x32(
    steps: Int, a0: UnsafeRawPointer, a1: UnsafeRawPointer, a2: UnsafeRawPointer, a3: UnsafeRawPointer, a4: UnsafeRawPointer,
    a5: UnsafeRawPointer, v0: UnsafePointer<Int8>, k0: UnsafeRawPointer, v1: UnsafePointer<Int8>, k1: UnsafeRawPointer,
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
    for s in 0..<steps {
      let k0 = k0.loadUnaligned(fromByteOffset: s * 64, as: __m512i.self)
      let k1 = k1.loadUnaligned(fromByteOffset: s * 64, as: __m512i.self)
      let w0 = _mm512_loadu_si512(v0 + s * 64)
      let w1 = _mm512_loadu_si512(v1 + s * 64)
      let offset = s * 8
      var x = _mm512_set1_epi64(a0.loadUnaligned(fromByteOffset: offset, as: Int64.self))
      c00 = _mm512_dpbusd_epi32(c00, _mm512_shuffle_epi8(x, k0), w0); c01 = _mm512_dpbusd_epi32(c01, _mm512_shuffle_epi8(x, k1), w1)
      x = _mm512_set1_epi64(a1.loadUnaligned(fromByteOffset: offset, as: Int64.self))
      c10 = _mm512_dpbusd_epi32(c10, _mm512_shuffle_epi8(x, k0), w0); c11 = _mm512_dpbusd_epi32(c11, _mm512_shuffle_epi8(x, k1), w1)
      x = _mm512_set1_epi64(a2.loadUnaligned(fromByteOffset: offset, as: Int64.self))
      c20 = _mm512_dpbusd_epi32(c20, _mm512_shuffle_epi8(x, k0), w0); c21 = _mm512_dpbusd_epi32(c21, _mm512_shuffle_epi8(x, k1), w1)
      x = _mm512_set1_epi64(a3.loadUnaligned(fromByteOffset: offset, as: Int64.self))
      c30 = _mm512_dpbusd_epi32(c30, _mm512_shuffle_epi8(x, k0), w0); c31 = _mm512_dpbusd_epi32(c31, _mm512_shuffle_epi8(x, k1), w1)
      x = _mm512_set1_epi64(a4.loadUnaligned(fromByteOffset: offset, as: Int64.self))
      c40 = _mm512_dpbusd_epi32(c40, _mm512_shuffle_epi8(x, k0), w0); c41 = _mm512_dpbusd_epi32(c41, _mm512_shuffle_epi8(x, k1), w1)
      x = _mm512_set1_epi64(a5.loadUnaligned(fromByteOffset: offset, as: Int64.self))
      c50 = _mm512_dpbusd_epi32(c50, _mm512_shuffle_epi8(x, k0), w0); c51 = _mm512_dpbusd_epi32(c51, _mm512_shuffle_epi8(x, k1), w1)
    }
    _mm512_storeu_si512(out, c00); _mm512_storeu_si512(out + 64, c01)
    _mm512_storeu_si512(out + 128, c10); _mm512_storeu_si512(out + 192, c11)
    _mm512_storeu_si512(out + 256, c20); _mm512_storeu_si512(out + 320, c21)
    _mm512_storeu_si512(out + 384, c30); _mm512_storeu_si512(out + 448, c31)
    _mm512_storeu_si512(out + 512, c40); _mm512_storeu_si512(out + 576, c41)
    _mm512_storeu_si512(out + 640, c50); _mm512_storeu_si512(out + 704, c51)
  }

  /// One activation row against 4 panels of 2:4 int8 (decode): `acc[16p + j]`.
  @inline(never)
  private func int8SemiStructuredKernel1x64(
    steps: Int, a: UnsafeRawPointer, v0: UnsafePointer<Int8>, c0: UnsafePointer<UInt8>, v1: UnsafePointer<Int8>,
    c1: UnsafePointer<UInt8>, v2: UnsafePointer<Int8>, c2: UnsafePointer<UInt8>, v3: UnsafePointer<Int8>, c3: UnsafePointer<UInt8>,
    acc: UnsafeMutablePointer<Int32>
  ) {
    var s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512(), s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512()
    for s in 0..<steps {
      let x = _mm512_set1_epi64(a.loadUnaligned(fromByteOffset: s * 8, as: Int64.self))
      s0 = _mm512_dpbusd_epi32(s0, _mm512_shuffle_epi8(x, shuffleControl(c0 + s * 16)), _mm512_loadu_si512(v0 + s * 64))
      s1 = _mm512_dpbusd_epi32(s1, _mm512_shuffle_epi8(x, shuffleControl(c1 + s * 16)), _mm512_loadu_si512(v1 + s * 64))
      s2 = _mm512_dpbusd_epi32(s2, _mm512_shuffle_epi8(x, shuffleControl(c2 + s * 16)), _mm512_loadu_si512(v2 + s * 64))
      s3 = _mm512_dpbusd_epi32(s3, _mm512_shuffle_epi8(x, shuffleControl(c3 + s * 16)), _mm512_loadu_si512(v3 + s * 64))
    }
    let out = UnsafeMutableRawPointer(acc)
    _mm512_storeu_si512(out, s0)
    _mm512_storeu_si512(out + 64, s1)
    _mm512_storeu_si512(out + 128, s2)
    _mm512_storeu_si512(out + 192, s3)
  }
#endif

import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif
#if SPARSITY_BF16
  import _SparsityBF16
#endif

/// A 2:4 bf16 weight for the bf16 kernels (``panelDotLinear(weight:x:m:y:bias:workers:)``, the
/// numerics of ``PackedBF16Weight``: activations rounded to bf16, exact products summed in fp32):
/// panels of 16 output columns; per k-step of 8 inputs (two groups of 4), for each group the 16
/// columns' 2 kept values as one bf16 pair per dword (`values[(((p·steps + s)·2 + h)·16 + j)·2 + i]`),
/// and one code byte per column and step (`codes[(p·steps + s)·16 + j]`: the 4 positions within
/// their groups, 2 bits each, least significant first — the int8 2:4 form's codes). With
/// AVX512-BF16 and VBMI a `vpshufb` control made from 16 code bytes picks each column's pair of
/// activations out of the step's 8 (one broadcast 128-bit lane) and one `vdpbf16ps` does both
/// products: per 16 columns and group, one shuffle and one dot instead of the dense layout's two
/// dots. 2.25 bytes per kept value + code: 56% of the dense bf16 bytes.
package final class PackedBF16SemiStructuredWeight: BF16ActivationPanels, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let panels: Int
  package let steps: Int
  package let values: ByteBuffer
  package let codes: ByteBuffer
  package static var inputsPerStep: Int { 8 }
  package static var stepsPerBlock: Int { 48 }

  /// Packs the logical 2:4 form: bf16 bits `values [n, groups·2]` (the 2 kept values of each
  /// group of 4, in column order) with one position byte per value.
  package init(bits q: UnsafePointer<UInt16>, positions: UnsafePointer<UInt8>, n: Int, k: Int) {
    self.n = n
    self.k = k
    let groups = (k + 3) / 4
    steps = (groups + 1) / 2
    panels = (n + 15) / 16
    values = ByteBuffer(count: panels * steps * 128)
    codes = ByteBuffer(count: panels * steps * 16)
    let v = values.pointer.assumingMemoryBound(to: UInt16.self)
    let c = codes.pointer.assumingMemoryBound(to: UInt8.self)
    for r in 0..<n {
      let (p, j) = (r / 16, r % 16)
      for g in 0..<steps * 2 {
        // A missing last group keeps positions 2 and 3 with zero values (its inputs are zero too).
        let (i0, i1) = g < groups ? (positions[(r * groups + g) * 2], positions[(r * groups + g) * 2 + 1]) : (2, 3)
        let (v0, v1) = g < groups ? (q[(r * groups + g) * 2], q[(r * groups + g) * 2 + 1]) : (0, 0)
        let (step, half) = (g / 2, g % 2)
        let slot = (((p * steps + step) * 2 + half) * 16 + j) * 2
        v[slot] = v0
        v[slot + 1] = v1
        c[(p * steps + step) * 16 + j] |= (i0 | i1 << 2) << UInt8(4 * half)
      }
    }
  }

  /// Bytes held: values and codes.
  package var byteCount: Int { values.count + codes.count }

  /// The kept bf16 bits of row `r` in group `g` (slot 0 or 1) and their position in the group.
  package func kept(row r: Int, group g: Int, slot: Int) -> (bits: UInt16, position: Int) {
    let (p, j, step, half) = (r / 16, r % 16, g / 2, g % 2)
    let bits = values.pointer.assumingMemoryBound(to: UInt16.self)[(((p * steps + step) * 2 + half) * 16 + j) * 2 + slot]
    let code = codes.pointer.assumingMemoryBound(to: UInt8.self)[(p * steps + step) * 16 + j] >> UInt8(4 * half)
    return (bits, Int(code >> UInt8(2 * slot)) & 3)
  }

  #if SPARSITY_BF16 && SPARSITY_VBMI
    /// The two shuffle controls of a k-block's steps, 128 bytes per step: made once per block
    /// and panel, read by every row tile.
    package static var preparedBytesPerStep: Int { 128 }
    package func prepare(panel: Int, steps range: Range<Int>, into out: UnsafeMutableRawPointer) {
      let c = UnsafePointer(codes.pointer.assumingMemoryBound(to: UInt8.self)) + (panel * steps + range.lowerBound) * 16
      for s in 0..<range.count {
        let (first, second) = bf16ShuffleControls(c + s * 16)
        out.storeBytes(of: first, toByteOffset: s * 128, as: __m512i.self)
        out.storeBytes(of: second, toByteOffset: s * 128 + 64, as: __m512i.self)
      }
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
    let sums = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
    #if SPARSITY_BF16 && SPARSITY_VBMI
      let v = UnsafePointer(values.pointer.assumingMemoryBound(to: UInt16.self))
      withUnsafeTemporaryAllocation(of: UInt16.self, capacity: range.count * 8) { zero in
        zero.initialize(repeating: 0)
        func rowPointer(_ i: Int) -> UnsafeRawPointer {
          i < rows ? UnsafeRawPointer(a.rows + (row + i) * a.stride + range.lowerBound * 16) : UnsafeRawPointer(zero.baseAddress!)
        }
        // A missing second panel runs the first one again into sums that are not used.
        let second = panel + 1 < panels ? panel + 1 : panel
        bf16SemiStructuredKernel6x32(
          steps: range.count, a0: rowPointer(0), a1: rowPointer(1), a2: rowPointer(2), a3: rowPointer(3), a4: rowPointer(4),
          a5: rowPointer(5), v0: v + (panel * steps + range.lowerBound) * 64, k0: prepared,
          v1: v + (second * steps + range.lowerBound) * 64, k1: prepared + Self.stepsPerBlock * 128, acc: sums,
          accumulate: !first)
      }
    #else
      for i in 0..<6 {
        if first { for j in 0..<32 { sums[i * 32 + j] = 0 } }
        guard i < rows else { continue }
        for half in 0..<2 where panel + half < panels {
          rowPanel(a: UnsafeRawPointer(a.rows + (row + i) * a.stride), panel: panel + half, steps: range, out: sums + i * 32 + half * 16)
        }
      }
    #endif
  }

  package func rowQuad(a: UnsafeRawPointer, quad: Int, acc: UnsafeMutablePointer<Int32>) {
    let count = Swift.min(4, panels - quad * 4)
    let sums = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
    #if SPARSITY_BF16 && SPARSITY_VBMI
      let v = UnsafePointer(values.pointer.assumingMemoryBound(to: UInt16.self))
      let c = UnsafePointer(codes.pointer.assumingMemoryBound(to: UInt8.self))
      // Missing panels repeat the first (their sums are not used).
      func panel(_ p: Int) -> Int { quad * 4 + (p < count ? p : 0) }
      bf16SemiStructuredKernel1x64(
        steps: steps, a: a, v0: v + panel(0) * steps * 64, c0: c + panel(0) * steps * 16, v1: v + panel(1) * steps * 64,
        c1: c + panel(1) * steps * 16, v2: v + panel(2) * steps * 64, c2: c + panel(2) * steps * 16, v3: v + panel(3) * steps * 64,
        c3: c + panel(3) * steps * 16, out: sums)
    #else
      sums.initialize(repeating: 0, count: 64)
      for p in 0..<count { rowPanel(a: a, panel: quad * 4 + p, steps: 0..<steps, out: sums + p * 16) }
    #endif
  }

  #if !(SPARSITY_BF16 && SPARSITY_VBMI)
    /// `out[j] += Σ x[k] · w[j][k]` over `steps` for one bf16 activation row, the values widened
    /// to fp32 (exact products; the path of builds without AVX512-BF16 and VBMI).
    private func rowPanel(a: UnsafeRawPointer, panel p: Int, steps range: Range<Int>, out: UnsafeMutablePointer<Float>) {
      let x = a.assumingMemoryBound(to: UInt16.self)
      let v = values.pointer.assumingMemoryBound(to: UInt16.self)
      let c = codes.pointer.assumingMemoryBound(to: UInt8.self)
      func widen(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
      for j in 0..<16 {
        var sum: Float = 0
        for s in range {
          let code = Int(c[(p * steps + s) * 16 + j])
          for half in 0..<2 {
            let w = v + (((p * steps + s) * 2 + half) * 16 + j) * 2
            for i in 0..<2 {
              let position = (code >> (4 * half + 2 * i)) & 3 + 4 * half
              sum += widen(x[s * 8 + position]) * widen(w[i])
            }
          }
        }
        out[j] += sum
      }
    }
  #endif
}

#if SPARSITY_BF16 && SPARSITY_VBMI
  /// The `vpshufb` controls of 16 columns' code bytes, one per group of the step: dword j =
  /// the byte offsets (within the step's 8 bf16 inputs, 16 bytes) of column j's 2 kept values:
  /// `[2p0, 2p0 + 1, 2p1, 2p1 + 1]`, and for the second group `8 +` those of p2, p3. Each code
  /// byte widened to its dword (`vpmovzxbd`), then each nibble looks its dword up in a table
  /// of the 16 position pairs (`vpermd` reads the low 4 bits of the index): 4 instructions.
  @inline(__always)
  private func bf16ShuffleControls(_ codes: UnsafePointer<UInt8>) -> (__m512i, __m512i) {
    let index = _mm512_cvtepu8_epi32(UnsafeRawPointer(codes).loadUnaligned(as: __m128i.self))
    return (
      _mm512_permutexvar_epi32(index, bf16PairOffsets(base: 0)),
      _mm512_permutexvar_epi32(_mm512_srli_epi32(index, 4), bf16PairOffsets(base: 8))
    )
  }

  /// Entry `p0 | p1 << 2` = the bytes `[base + 2p0, base + 2p0 + 1, base + 2p1, base + 2p1 + 1]`.
  @inline(__always)
  private func bf16PairOffsets(base: Int32) -> __m512i {
    @inline(__always) func entry(_ c: Int32) -> Int32 {
      let (a, b) = (base + 2 * (c & 3), base + 2 * (c >> 2))
      return a | (a + 1) << 8 | b << 16 | (b + 1) << 24
    }
    return _mm512_set_epi32(
      entry(15), entry(14), entry(13), entry(12), entry(11), entry(10), entry(9), entry(8), entry(7), entry(6), entry(5), entry(4),
      entry(3), entry(2), entry(1), entry(0))
  }

  /// 6 rows × 32 columns of 2:4 bf16: per step of 8 inputs, four prepared shuffle controls and
  /// four value loads, and per row one broadcast 128-bit lane of activations, four shuffles and
  /// four `vdpbf16ps`.
  @inline(never)
  private func bf16SemiStructuredKernel6x32(
    steps: Int, a0: UnsafeRawPointer, a1: UnsafeRawPointer, a2: UnsafeRawPointer, a3: UnsafeRawPointer, a4: UnsafeRawPointer,
    a5: UnsafeRawPointer, v0: UnsafePointer<UInt16>, k0: UnsafeRawPointer, v1: UnsafePointer<UInt16>, k1: UnsafeRawPointer,
    acc: UnsafeMutablePointer<Float>, accumulate: Bool
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
      let p0 = k0.loadUnaligned(fromByteOffset: s * 128, as: __m512i.self)
      let q0 = k0.loadUnaligned(fromByteOffset: s * 128 + 64, as: __m512i.self)
      let p1 = k1.loadUnaligned(fromByteOffset: s * 128, as: __m512i.self)
      let q1 = k1.loadUnaligned(fromByteOffset: s * 128 + 64, as: __m512i.self)
      let w0 = _mm512_loadu_si512(v0 + s * 64), u0 = _mm512_loadu_si512(v0 + s * 64 + 32)
      let w1 = _mm512_loadu_si512(v1 + s * 64), u1 = _mm512_loadu_si512(v1 + s * 64 + 32)
      let offset = s * 16
      @inline(__always) func lane(_ a: UnsafeRawPointer) -> __m512i {
        _mm512_broadcast_i32x4(a.loadUnaligned(fromByteOffset: offset, as: __m128i.self))
      }
      @inline(__always) func dot(_ c: __m512, _ x: __m512i, _ p: __m512i, _ w: __m512i, _ q: __m512i, _ u: __m512i) -> __m512 {
        sparsity_dpbf16ps(sparsity_dpbf16ps(c, _mm512_shuffle_epi8(x, p), w), _mm512_shuffle_epi8(x, q), u)
      }
      var x = lane(a0)
      c00 = dot(c00, x, p0, w0, q0, u0); c01 = dot(c01, x, p1, w1, q1, u1)
      x = lane(a1)
      c10 = dot(c10, x, p0, w0, q0, u0); c11 = dot(c11, x, p1, w1, q1, u1)
      x = lane(a2)
      c20 = dot(c20, x, p0, w0, q0, u0); c21 = dot(c21, x, p1, w1, q1, u1)
      x = lane(a3)
      c30 = dot(c30, x, p0, w0, q0, u0); c31 = dot(c31, x, p1, w1, q1, u1)
      x = lane(a4)
      c40 = dot(c40, x, p0, w0, q0, u0); c41 = dot(c41, x, p1, w1, q1, u1)
      x = lane(a5)
      c50 = dot(c50, x, p0, w0, q0, u0); c51 = dot(c51, x, p1, w1, q1, u1)
    }
    _mm512_storeu_ps(acc, c00); _mm512_storeu_ps(acc + 16, c01); _mm512_storeu_ps(acc + 32, c10); _mm512_storeu_ps(acc + 48, c11)
    _mm512_storeu_ps(acc + 64, c20); _mm512_storeu_ps(acc + 80, c21); _mm512_storeu_ps(acc + 96, c30); _mm512_storeu_ps(acc + 112, c31)
    _mm512_storeu_ps(acc + 128, c40); _mm512_storeu_ps(acc + 144, c41); _mm512_storeu_ps(acc + 160, c50); _mm512_storeu_ps(acc + 176, c51)
  }

  /// One activation row against 4 panels of 2:4 bf16 (decode): `out[16p + j]`; the controls
  /// made from the codes as the weight streams by.
  @inline(never)
  private func bf16SemiStructuredKernel1x64(
    steps: Int, a: UnsafeRawPointer, v0: UnsafePointer<UInt16>, c0: UnsafePointer<UInt8>, v1: UnsafePointer<UInt16>,
    c1: UnsafePointer<UInt8>, v2: UnsafePointer<UInt16>, c2: UnsafePointer<UInt8>, v3: UnsafePointer<UInt16>, c3: UnsafePointer<UInt8>,
    out: UnsafeMutablePointer<Float>
  ) {
    var s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps()
    @inline(__always) func dot(_ c: __m512, _ x: __m512i, _ codes: UnsafePointer<UInt8>, _ v: UnsafePointer<UInt16>) -> __m512 {
      let (p, q) = bf16ShuffleControls(codes)
      return sparsity_dpbf16ps(
        sparsity_dpbf16ps(c, _mm512_shuffle_epi8(x, p), _mm512_loadu_si512(v)), _mm512_shuffle_epi8(x, q), _mm512_loadu_si512(v + 32))
    }
    for s in 0..<steps {
      let x = _mm512_broadcast_i32x4(a.loadUnaligned(fromByteOffset: s * 16, as: __m128i.self))
      s0 = dot(s0, x, c0 + s * 16, v0 + s * 64)
      s1 = dot(s1, x, c1 + s * 16, v1 + s * 64)
      s2 = dot(s2, x, c2 + s * 16, v2 + s * 64)
      s3 = dot(s3, x, c3 + s * 16, v3 + s * 64)
    }
    _mm512_storeu_ps(out, s0)
    _mm512_storeu_ps(out + 16, s1)
    _mm512_storeu_ps(out + 32, s2)
    _mm512_storeu_ps(out + 48, s3)
  }
#endif

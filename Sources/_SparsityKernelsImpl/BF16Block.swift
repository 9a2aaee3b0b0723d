import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif
#if SPARSITY_BF16
  import _SparsityBF16
#endif

/// A block-sparse bf16 weight for the bf16 kernels (the numerics of ``PackedBF16Weight``): its
/// panel layout (16 columns × 2 inputs per 64 bytes) in ``PanelPairUnits`` — only the 32-column ×
/// 2-input units holding a nonzero, 128 bytes and a step index each — run by the dense 6 × 32
/// `vdpbf16ps` tile over the kept units.
package final class PackedBF16BlockWeight: BF16ActivationPanels, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let panels: Int
  package let steps: Int
  package let units: PanelPairUnits
  package let values: ByteBuffer
  /// The (zero) activation row that stands for rows past M in a tile, made once.
  private let zeroRow: ByteBuffer
  package static var inputsPerStep: Int { 2 }
  package static var stepsPerBlock: Int { 192 }
  package static var preparedBytesPerStep: Int { 0 }
  package func prepare(panel: Int, steps: Range<Int>, into: UnsafeMutableRawPointer) {}

  /// Packs the nonzeros of a bf16 matrix `[n, k]` (bits) given row by row (compressed rows).
  package init(n: Int, k: Int, rowOffsets: UnsafePointer<Int32>, columns: UnsafePointer<Int32>, bits: UnsafePointer<UInt16>) {
    self.n = n
    self.k = k
    steps = (k + 1) / 2
    panels = (n + 15) / 16
    // ±0 are zeros.
    units = PanelPairUnits(n: n, k: k, inputsPerStep: 2, rowOffsets: rowOffsets, columns: columns) { bits[$0] & 0x7FFF != 0 }
    values = ByteBuffer(count: Swift.max(1, units.count) * 128)
    zeroRow = ByteBuffer(count: steps * 4)
    let v = values.pointer.assumingMemoryBound(to: UInt16.self)
    for r in 0..<n {
      for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) {
        if let e = units.element(row: r, column: Int(columns[i])) { v[e] = bits[i] }
      }
    }
    units.finishPacking()
  }

  /// Bytes held: values, step indices and the zero row.
  package var byteCount: Int { units.count * (128 + 4) + zeroRow.count }

  /// The bf16 bits `[n, k]` row-major (zeros outside the kept units).
  package func dense() -> [UInt16] { units.dense(n: n, k: k, values: values.pointer.assumingMemoryBound(to: UInt16.self)) }

  package func tile(
    a: PreparedActivations, row: Int, rows: Int, panel: Int, steps range: Range<Int>, prepared: UnsafeRawPointer,
    acc: UnsafeMutablePointer<Int32>
  ) {
    let kept = units.units(pair: panel / 2, steps: range)
    let first = range.lowerBound == 0
    let v = UnsafePointer(values.pointer.assumingMemoryBound(to: UInt16.self))
    let sums = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
    #if SPARSITY_BF16
      func rowPointer(_ i: Int) -> UnsafeRawPointer {
        i < rows ? UnsafeRawPointer(a.rows + (row + i) * a.stride) : UnsafeRawPointer(zeroRow.pointer)
      }
      bf16BlockKernel6x32(
        units: kept.count, steps: units.unitSteps + kept.lowerBound, a0: rowPointer(0), a1: rowPointer(1), a2: rowPointer(2),
        a3: rowPointer(3), a4: rowPointer(4), a5: rowPointer(5), b: v + kept.lowerBound * 64, acc: sums, accumulate: !first)
    #else
      for i in 0..<6 {
        if first { for j in 0..<32 { sums[i * 32 + j] = 0 } }
        guard i < rows else { continue }
        bf16BlockRow(
          units: kept, steps: units.unitSteps, x: UnsafeRawPointer(a.rows + (row + i) * a.stride).assumingMemoryBound(to: UInt16.self),
          b: v, out: sums + i * 32)
      }
    #endif
  }

  package func rowQuad(a: UnsafeRawPointer, quad: Int, acc: UnsafeMutablePointer<Int32>) {
    let v = UnsafePointer(values.pointer.assumingMemoryBound(to: UInt16.self))
    let sums = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
    for half in 0..<2 {
      let out = sums + half * 32
      out.initialize(repeating: 0, count: 32)
      guard quad * 2 + half < units.pairs else { continue }
      let kept = units.offsets[quad * 2 + half]..<units.offsets[quad * 2 + half + 1]
      #if SPARSITY_BF16
        bf16BlockKernel1x32(units: kept.count, steps: units.unitSteps + kept.lowerBound, a: a, b: v + kept.lowerBound * 64, out: out)
      #else
        bf16BlockRow(units: kept, steps: units.unitSteps, x: a.assumingMemoryBound(to: UInt16.self), b: v, out: out)
      #endif
    }
  }
}

#if SPARSITY_BF16
  /// 6 rows × 32 columns of `vdpbf16ps` over the kept units: per unit two 64-byte weight loads
  /// and, per row, one broadcast dword (the unit's pair of inputs) and two dots.
  @inline(never)
  private func bf16BlockKernel6x32(
    units: Int, steps: UnsafePointer<Int32>, a0: UnsafeRawPointer, a1: UnsafeRawPointer, a2: UnsafeRawPointer,
    a3: UnsafeRawPointer, a4: UnsafeRawPointer, a5: UnsafeRawPointer, b: UnsafePointer<UInt16>, acc: UnsafeMutablePointer<Float>,
    accumulate: Bool
  ) {
    var c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps()
    var c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps()
    var c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps()
    if accumulate {
      c00 = _mm512_loadu_ps(acc); c01 = _mm512_loadu_ps(acc + 16); c10 = _mm512_loadu_ps(acc + 32); c11 = _mm512_loadu_ps(acc + 48)
      c20 = _mm512_loadu_ps(acc + 64); c21 = _mm512_loadu_ps(acc + 80); c30 = _mm512_loadu_ps(acc + 96); c31 = _mm512_loadu_ps(acc + 112)
      c40 = _mm512_loadu_ps(acc + 128); c41 = _mm512_loadu_ps(acc + 144); c50 = _mm512_loadu_ps(acc + 160); c51 = _mm512_loadu_ps(acc + 176)
    }
    for u in 0..<units {
      let w0 = _mm512_loadu_si512(b + u * 64)
      let w1 = _mm512_loadu_si512(b + u * 64 + 32)
      let offset = Int(steps[u]) * 4
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

  /// One activation row against one pair of panels over its kept units, two units per iteration.
  @inline(never)
  private func bf16BlockKernel1x32(
    units: Int, steps: UnsafePointer<Int32>, a: UnsafeRawPointer, b: UnsafePointer<UInt16>, out: UnsafeMutablePointer<Float>
  ) {
    var c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps(), d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps()
    var u = 0
    while u + 2 <= units {
      let x = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: Int(steps[u]) * 4, as: Int32.self))
      let x2 = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: Int(steps[u + 1]) * 4, as: Int32.self))
      c0 = sparsity_dpbf16ps(c0, x, _mm512_loadu_si512(b + u * 64))
      c1 = sparsity_dpbf16ps(c1, x, _mm512_loadu_si512(b + u * 64 + 32))
      d0 = sparsity_dpbf16ps(d0, x2, _mm512_loadu_si512(b + u * 64 + 64))
      d1 = sparsity_dpbf16ps(d1, x2, _mm512_loadu_si512(b + u * 64 + 96))
      u += 2
    }
    if u < units {
      let x = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: Int(steps[u]) * 4, as: Int32.self))
      c0 = sparsity_dpbf16ps(c0, x, _mm512_loadu_si512(b + u * 64))
      c1 = sparsity_dpbf16ps(c1, x, _mm512_loadu_si512(b + u * 64 + 32))
    }
    _mm512_storeu_ps(out, _mm512_add_ps(c0, d0))
    _mm512_storeu_ps(out + 16, _mm512_add_ps(c1, d1))
  }
#else
  /// `out[j] += Σ_units x[2s]·w[unit][j][0] + x[2s+1]·w[unit][j][1]` for one bf16 activation
  /// row, the values widened to fp32 (exact products).
  private func bf16BlockRow(
    units: Range<Int>, steps: UnsafePointer<Int32>, x: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, out: UnsafeMutablePointer<Float>
  ) {
    func widen(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
    for u in units {
      let s = Int(steps[u])
      for j in 0..<32 {
        out[j] += widen(x[2 * s]) * widen(b[u * 64 + j * 2]) + widen(x[2 * s + 1]) * widen(b[u * 64 + j * 2 + 1])
      }
    }
  }
#endif

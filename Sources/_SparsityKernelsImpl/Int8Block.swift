import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

/// A block-sparse int8 weight for the W8A8 kernels (``panelDotLinear(weight:x:m:y:bias:workers:)``):
/// the dense int8 panel layout (``PackedInt8Weight``: 16 columns × 4 inputs per 64 bytes) cut into
/// units of two panels (32 output columns) × one k-step (4 inputs), and only the units holding a
/// nonzero kept — in k order per pair of panels, each with its k-step. A 32 × 4-aligned block
/// pattern (BSR 32×32, 64×64, …) keeps exactly its blocks; smaller blocks keep the units they
/// touch. The kernels run the dense 6 × 32 `vpdpbusd` tile over the kept units only.
/// 128 bytes + one 16-bit step index per unit, plus the row scales and compensation.
package final class PackedInt8BlockWeight: Int8ActivationPanels, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let panels: Int
  package let steps: Int
  /// Pairs of panels (`⌈panels / 2⌉`).
  package let pairs: Int
  /// `[pairs + 1]`: the units of pair `p` are `unitOffsets[p]..<unitOffsets[p + 1]`.
  package let unitOffsets: [Int]
  /// The k-step of each unit.
  package let unitSteps: UnsafeMutablePointer<Int32>
  /// 128 bytes per unit: the first panel's 64 bytes, then the second's.
  package let values: ByteBuffer
  package let scales: FloatBuffer
  package let compensation: ByteBuffer
  package static var inputsPerStep: Int { 4 }
  package static var stepsPerBlock: Int { 96 }
  package static var preparedBytesPerStep: Int { 0 }
  package func prepare(panel: Int, steps: Range<Int>, into: UnsafeMutableRawPointer) {}

  /// Packs the nonzeros of an int8 matrix `[n, k]` given row by row (`rowOffsets`, `columns`,
  /// `values`: compressed rows) and its row scales.
  package init(
    n: Int, k: Int, rowOffsets: UnsafePointer<Int32>, columns: UnsafePointer<Int32>, values q: UnsafePointer<Int8>,
    scales s: UnsafePointer<Float>
  ) {
    self.n = n
    self.k = k
    steps = (k + 3) / 4
    panels = (n + 15) / 16
    pairs = (panels + 1) / 2
    // Which units hold a nonzero, then their slots.
    var slot = [Int32](repeating: -1, count: pairs * steps)
    for r in 0..<n {
      for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) where q[i] != 0 {
        slot[(r / 32) * steps + Int(columns[i]) / 4] = 0
      }
    }
    var offsets = [0]
    var count = 0
    for p in 0..<pairs {
      for s in 0..<steps where slot[p * steps + s] == 0 {
        slot[p * steps + s] = Int32(count)
        count += 1
      }
      offsets.append(count)
    }
    unitOffsets = offsets
    MemoryLedger.recordAllocation(bytes: Swift.max(1, count) * 4)
    unitSteps = .allocate(capacity: Swift.max(1, count))
    for p in 0..<pairs {
      for s in 0..<steps where slot[p * steps + s] >= 0 { unitSteps[Int(slot[p * steps + s])] = Int32(s) }
    }
    values = ByteBuffer(count: Swift.max(1, count) * 128)
    scales = FloatBuffer(count: panels * 16)
    compensation = ByteBuffer(count: panels * 16 * 4)
    let v = values.pointer.assumingMemoryBound(to: Int8.self)
    let comp = compensation.pointer.assumingMemoryBound(to: Int32.self)
    for r in 0..<n {
      var sum: Int32 = 0
      for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) {
        let c = Int(columns[i])
        let unit = Int(slot[(r / 32) * steps + c / 4])
        if unit >= 0 { v[unit * 128 + (r / 16 % 2) * 64 + (r % 16) * 4 + c % 4] = q[i] }
        sum += Int32(q[i])
      }
      comp[r] = 128 * sum
      scales.pointer[r] = s[r]
    }
  }

  deinit { unitSteps.deallocate() }

  /// Units kept over all units: the share of the dense int8 work and bytes.
  package var unitDensity: Double { Double(unitOffsets[pairs]) / Double(Swift.max(1, pairs * steps)) }

  /// Bytes held: values, step indices (2 bytes each would do; 4 held), scales and compensation.
  package var byteCount: Int { unitOffsets[pairs] * (128 + 4) + scales.count * 4 + compensation.count }

  /// The int8 value of row `r`, column `c` (zero outside the kept units).
  package func value(row r: Int, column c: Int) -> Int8 {
    let p = r / 32
    let units = UnsafeBufferPointer(start: unitSteps + unitOffsets[p], count: unitOffsets[p + 1] - unitOffsets[p])
    guard let i = units.firstIndex(of: Int32(c / 4)) else { return 0 }
    return values.pointer.assumingMemoryBound(to: Int8.self)[(unitOffsets[p] + i) * 128 + (r / 16 % 2) * 64 + (r % 16) * 4 + c % 4]
  }

  /// The units of pair `p` whose steps lie in `range`.
  private func units(pair p: Int, steps range: Range<Int>) -> Range<Int> {
    var (lo, hi) = (unitOffsets[p], unitOffsets[p + 1])
    if range.lowerBound > 0 { lo = lowerBound(Int32(range.lowerBound), lo, hi) }
    if range.upperBound < steps { hi = lowerBound(Int32(range.upperBound), lo, hi) }
    return lo..<hi
  }

  private func lowerBound(_ step: Int32, _ lo: Int, _ hi: Int) -> Int {
    var (lo, hi) = (lo, hi)
    while lo < hi {
      let mid = (lo + hi) / 2
      if unitSteps[mid] < step { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }

  package func tile(
    a: PreparedActivations, row: Int, rows: Int, panel: Int, steps range: Range<Int>, prepared: UnsafeRawPointer,
    acc: UnsafeMutablePointer<Int32>
  ) {
    let kept = units(pair: panel / 2, steps: range)
    let first = range.lowerBound == 0
    let v = UnsafePointer(values.pointer.assumingMemoryBound(to: Int8.self))
    #if SPARSITY_VNNI
      withUnsafeTemporaryAllocation(of: UInt8.self, capacity: steps * 4) { zero in
        // A row of +128 bytes: the shifted zero activation (its products are compensated away).
        zero.initialize(repeating: 0x80)
        func rowPointer(_ i: Int) -> UnsafeRawPointer {
          i < rows ? UnsafeRawPointer(a.rows + (row + i) * a.stride) : UnsafeRawPointer(zero.baseAddress!)
        }
        int8BlockKernel6x32(
          units: kept.count, steps: unitSteps + kept.lowerBound, a0: rowPointer(0), a1: rowPointer(1), a2: rowPointer(2),
          a3: rowPointer(3), a4: rowPointer(4), a5: rowPointer(5), b: v + kept.lowerBound * 128, acc: acc, accumulate: !first)
      }
    #else
      for i in 0..<6 {
        if first { for j in 0..<32 { acc[i * 32 + j] = 0 } }
        guard i < rows else { continue }
        let x = UnsafeRawPointer(a.rows + (row + i) * a.stride).assumingMemoryBound(to: Int16.self)
        for u in kept {
          let s = Int(unitSteps[u])
          for j in 0..<32 {
            var sum: Int32 = 0
            for c in 0..<4 { sum &+= Int32(x[s * 4 + c]) &* Int32(v[u * 128 + j * 4 + c]) }
            acc[i * 32 + j] &+= sum
          }
        }
      }
    #endif
  }

  package func rowQuad(a: UnsafeRawPointer, quad: Int, acc: UnsafeMutablePointer<Int32>) {
    // Two pairs of panels, each over all its units.
    let v = UnsafePointer(values.pointer.assumingMemoryBound(to: Int8.self))
    for half in 0..<2 {
      let out = acc + half * 32
      guard quad * 2 + half < pairs else {
        out.initialize(repeating: 0, count: 32)
        continue
      }
      let kept = unitOffsets[quad * 2 + half]..<unitOffsets[quad * 2 + half + 1]
      #if SPARSITY_VNNI
        int8BlockKernel1x32(units: kept.count, steps: unitSteps + kept.lowerBound, a: a, b: v + kept.lowerBound * 128, acc: out)
      #else
        let x = a.assumingMemoryBound(to: Int16.self)
        out.initialize(repeating: 0, count: 32)
        for u in kept {
          let s = Int(unitSteps[u])
          for j in 0..<32 {
            var sum: Int32 = 0
            for c in 0..<4 { sum &+= Int32(x[s * 4 + c]) &* Int32(v[u * 128 + j * 4 + c]) }
            out[j] &+= sum
          }
        }
      #endif
    }
  }
}

#if SPARSITY_VNNI
  /// 6 rows × 32 columns of `vpdpbusd` over the kept units: per unit, two 64-byte weight loads
  /// and, per row, one broadcast dword of unsigned activations at the unit's k-step.
  @inline(never)
  private func int8BlockKernel6x32(
    units: Int, steps: UnsafePointer<Int32>, a0: UnsafeRawPointer, a1: UnsafeRawPointer, a2: UnsafeRawPointer,
    a3: UnsafeRawPointer, a4: UnsafeRawPointer, a5: UnsafeRawPointer, b: UnsafePointer<Int8>, acc: UnsafeMutablePointer<Int32>,
    accumulate: Bool
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
    for u in 0..<units {
      let w0 = _mm512_loadu_si512(b + u * 128)
      let w1 = _mm512_loadu_si512(b + u * 128 + 64)
      let offset = Int(steps[u]) * 4
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

  /// One activation row against one pair of panels over its kept units: `acc[0..<32]`, two
  /// units per iteration into two accumulator sets.
  @inline(never)
  private func int8BlockKernel1x32(
    units: Int, steps: UnsafePointer<Int32>, a: UnsafeRawPointer, b: UnsafePointer<Int8>, acc: UnsafeMutablePointer<Int32>
  ) {
    var c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512(), d0 = _mm512_setzero_si512(), d1 = _mm512_setzero_si512()
    var u = 0
    while u + 2 <= units {
      let x = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: Int(steps[u]) * 4, as: Int32.self))
      let x2 = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: Int(steps[u + 1]) * 4, as: Int32.self))
      c0 = _mm512_dpbusd_epi32(c0, x, _mm512_loadu_si512(b + u * 128))
      c1 = _mm512_dpbusd_epi32(c1, x, _mm512_loadu_si512(b + u * 128 + 64))
      d0 = _mm512_dpbusd_epi32(d0, x2, _mm512_loadu_si512(b + u * 128 + 128))
      d1 = _mm512_dpbusd_epi32(d1, x2, _mm512_loadu_si512(b + u * 128 + 192))
      u += 2
    }
    if u < units {
      let x = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: Int(steps[u]) * 4, as: Int32.self))
      c0 = _mm512_dpbusd_epi32(c0, x, _mm512_loadu_si512(b + u * 128))
      c1 = _mm512_dpbusd_epi32(c1, x, _mm512_loadu_si512(b + u * 128 + 64))
    }
    let out = UnsafeMutableRawPointer(acc)
    _mm512_storeu_si512(out, _mm512_add_epi32(c0, d0))
    _mm512_storeu_si512(out + 64, _mm512_add_epi32(c1, d1))
  }
#endif

import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

/// The kept units of a block-sparse weight in a panel-dot layout (``PanelDotWeight``: panels of
/// 16 output columns, k-steps of a few inputs): units of two panels (32 output columns) × one
/// k-step, only those holding a nonzero, in k order per pair of panels, each with its k-step.
/// Every unit's values are 128 bytes — column j's inputs of the step at `j · inputsPerStep`
/// elements — so a 32 × 4-aligned block pattern (int8; 32 × 2 for bf16) keeps exactly its blocks
/// and smaller blocks keep the units they touch.
package final class PanelPairUnits: @unchecked Sendable {
  package let pairs: Int
  package let steps: Int
  /// `[pairs + 1]`: the units of pair `p` are `offsets[p]..<offsets[p + 1]`.
  package let offsets: [Int]
  /// The k-step of each unit.
  package let unitSteps: UnsafeMutablePointer<Int32>
  /// For packing: the unit of each (pair, step), −1 where none is kept.
  private var slots: [Int32]
  private let inputsPerStep: Int

  /// The units that hold the nonzeros `nonzero(i)` of compressed rows (`rowOffsets`, `columns`)
  /// of an `[n, k]` matrix.
  package init(
    n: Int, k: Int, inputsPerStep: Int, rowOffsets: UnsafePointer<Int32>, columns: UnsafePointer<Int32>, nonzero: (Int) -> Bool
  ) {
    self.inputsPerStep = inputsPerStep
    steps = (k + inputsPerStep - 1) / inputsPerStep
    pairs = (n + 31) / 32
    var slot = [Int32](repeating: -1, count: pairs * steps)
    for r in 0..<n {
      for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) where nonzero(i) {
        slot[(r / 32) * steps + Int(columns[i]) / inputsPerStep] = 0
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
    self.offsets = offsets
    MemoryLedger.recordAllocation(bytes: Swift.max(1, count) * 4)
    unitSteps = .allocate(capacity: Swift.max(1, count))
    for p in 0..<pairs {
      for s in 0..<steps where slot[p * steps + s] >= 0 { unitSteps[Int(slot[p * steps + s])] = Int32(s) }
    }
    slots = slot
  }

  deinit { unitSteps.deallocate() }

  /// Units kept.
  package var count: Int { offsets[pairs] }

  /// Units kept over all units: the share of the dense work and bytes.
  package var density: Double { Double(count) / Double(Swift.max(1, pairs * steps)) }

  /// The element index within the values (128 bytes per unit) of row `r`, column `c`, or nil
  /// outside the kept units. Valid while packing (``finishPacking()`` drops the map).
  package func element(row r: Int, column c: Int) -> Int? {
    let unit = Int(slots[(r / 32) * steps + c / inputsPerStep])
    guard unit >= 0 else { return nil }
    return (unit * 32 + r % 32) * inputsPerStep + c % inputsPerStep
  }

  /// Drops the packing map.
  package func finishPacking() { slots = [] }

  /// The `[n, k]` row-major matrix of `values` (the units' elements), zero outside the kept units.
  package func dense<T: FixedWidthInteger>(n: Int, k: Int, values: UnsafePointer<T>) -> [T] {
    var q = [T](repeating: 0, count: n * k)
    for p in 0..<pairs {
      for u in offsets[p]..<offsets[p + 1] {
        let s = Int(unitSteps[u])
        for j in 0..<32 where p * 32 + j < n {
          for i in 0..<inputsPerStep where s * inputsPerStep + i < k {
            q[(p * 32 + j) * k + s * inputsPerStep + i] = values[(u * 32 + j) * inputsPerStep + i]
          }
        }
      }
    }
    return q
  }

  /// The units of pair `p` whose steps lie in `range`.
  package func units(pair p: Int, steps range: Range<Int>) -> Range<Int> {
    var (lo, hi) = (offsets[p], offsets[p + 1])
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
}

/// A block-sparse int8 weight for the W8A8 kernels (``panelDotLinear(weight:x:m:y:bias:workers:)``):
/// the dense int8 panel layout (``PackedInt8Weight``: 16 columns × 4 inputs per 64 bytes) in
/// ``PanelPairUnits`` — only the 32-column × 4-input units holding a nonzero, 128 bytes and a
/// step index each — run by the dense 6 × 32 `vpdpbusd` tile over the kept units.
package final class PackedInt8BlockWeight: Int8ActivationPanels, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let panels: Int
  package let steps: Int
  package let units: PanelPairUnits
  package let values: ByteBuffer
  package let scales: FloatBuffer
  package let compensation: ByteBuffer
  /// The activation row that stands for rows past M in a tile: +128 bytes (the shifted zero,
  /// its products compensated away), made once — the tiles read it at any k-step.
  private let zeroRow: ByteBuffer
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
    units = PanelPairUnits(n: n, k: k, inputsPerStep: 4, rowOffsets: rowOffsets, columns: columns) { q[$0] != 0 }
    values = ByteBuffer(count: Swift.max(1, units.count) * 128)
    scales = FloatBuffer(count: panels * 16)
    compensation = ByteBuffer(count: panels * 16 * 4)
    zeroRow = ByteBuffer(count: steps * 4)
    zeroRow.pointer.initializeMemory(as: UInt8.self, repeating: 0x80, count: steps * 4)
    let v = values.pointer.assumingMemoryBound(to: Int8.self)
    let comp = compensation.pointer.assumingMemoryBound(to: Int32.self)
    for r in 0..<n {
      var sum: Int32 = 0
      for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) {
        if let e = units.element(row: r, column: Int(columns[i])) { v[e] = q[i] }
        sum += Int32(q[i])
      }
      comp[r] = 128 * sum
      scales.pointer[r] = s[r]
    }
    units.finishPacking()
  }

  /// Bytes held: values, step indices, scales, compensation and the zero row.
  package var byteCount: Int { units.count * (128 + 4) + scales.count * 4 + compensation.count + zeroRow.count }

  /// The int8 values `[n, k]` row-major (zeros outside the kept units).
  package func dense() -> [Int8] { units.dense(n: n, k: k, values: values.pointer.assumingMemoryBound(to: Int8.self)) }

  package func tile(
    a: PreparedActivations, row: Int, rows: Int, panel: Int, steps range: Range<Int>, prepared: UnsafeRawPointer,
    acc: UnsafeMutablePointer<Int32>
  ) {
    let kept = units.units(pair: panel / 2, steps: range)
    let first = range.lowerBound == 0
    let v = UnsafePointer(values.pointer.assumingMemoryBound(to: Int8.self))
    #if SPARSITY_VNNI
      func rowPointer(_ i: Int) -> UnsafeRawPointer {
        i < rows ? UnsafeRawPointer(a.rows + (row + i) * a.stride) : UnsafeRawPointer(zeroRow.pointer)
      }
      int8BlockKernel6x32(
        units: kept.count, steps: units.unitSteps + kept.lowerBound, a0: rowPointer(0), a1: rowPointer(1), a2: rowPointer(2),
        a3: rowPointer(3), a4: rowPointer(4), a5: rowPointer(5), b: v + kept.lowerBound * 128, acc: acc, accumulate: !first)
    #else
      for i in 0..<6 {
        if first { for j in 0..<32 { acc[i * 32 + j] = 0 } }
        guard i < rows else { continue }
        int8BlockRow(
          units: kept, steps: units.unitSteps, x: UnsafeRawPointer(a.rows + (row + i) * a.stride).assumingMemoryBound(to: Int16.self),
          b: v, acc: acc + i * 32)
      }
    #endif
  }

  package func rowQuad(a: UnsafeRawPointer, quad: Int, acc: UnsafeMutablePointer<Int32>) {
    // Two pairs of panels, each over all its units.
    let v = UnsafePointer(values.pointer.assumingMemoryBound(to: Int8.self))
    for half in 0..<2 {
      let out = acc + half * 32
      guard quad * 2 + half < units.pairs else {
        out.initialize(repeating: 0, count: 32)
        continue
      }
      let kept = units.offsets[quad * 2 + half]..<units.offsets[quad * 2 + half + 1]
      #if SPARSITY_VNNI
        int8BlockKernel1x32(units: kept.count, steps: units.unitSteps + kept.lowerBound, a: a, b: v + kept.lowerBound * 128, acc: out)
      #else
        out.initialize(repeating: 0, count: 32)
        int8BlockRow(units: kept, steps: units.unitSteps, x: a.assumingMemoryBound(to: Int16.self), b: v, acc: out)
      #endif
    }
  }
}

#if !SPARSITY_VNNI
  /// `acc[j] += Σ_units Σ_c x[4s + c] · w[unit][j][c]` for one int16 activation row (exact).
  private func int8BlockRow(
    units: Range<Int>, steps: UnsafePointer<Int32>, x: UnsafePointer<Int16>, b: UnsafePointer<Int8>, acc: UnsafeMutablePointer<Int32>
  ) {
    for u in units {
      let s = Int(steps[u])
      for j in 0..<32 {
        var sum: Int32 = 0
        for c in 0..<4 { sum &+= Int32(x[s * 4 + c]) &* Int32(b[u * 128 + j * 4 + c]) }
        acc[j] &+= sum
      }
    }
  }
#endif

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

// MARK: - Weight-only (fp32 activations)

/// `y = x · (q · s)ᵀ + bias` for a block-sparse int8 weight with fp32 activations, many rows:
/// per pair of panels, its kept units dequantized (`q · s`) into a float panel `[units][4][32]`
/// in the thread's memory, then 6-row tiles of fp32 FMAs over the units (12 accumulators of 16
/// lanes, each row's input read at the unit's k-step).
package func int8WeightOnlyBlockGEMM(
  weight: PackedInt8BlockWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k, units) = (weight.n, weight.k, weight.units)
  guard m > 0, n > 0 else { return }
  let ldx = weight.steps * 4
  withPaddedRows(x: x, m: m, k: k, ldx: ldx) { xp in
    let parts = Swift.max(1, Swift.min(workItems(workers), units.pairs))
    let out = Unchecked(y)
    let xs = Unchecked(xp)
    parallelFor(parts) { w in
      let pairs = (units.pairs * w / parts)..<(units.pairs * (w + 1) / parts)
      let most = pairs.map { units.offsets[$0 + 1] - units.offsets[$0] }.max() ?? 0
      let panel = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, most) * 128)
      defer { panel.deallocate() }
      let zero = UnsafeMutablePointer<Float>.allocate(capacity: ldx)
      zero.initialize(repeating: 0, count: ldx)
      defer { zero.deallocate() }
      let q = weight.values.pointer.assumingMemoryBound(to: Int8.self)
      withUnsafeTemporaryAllocation(of: Float.self, capacity: 192) { tile in
        for p in pairs {
          let kept = units.offsets[p]..<units.offsets[p + 1]
          // Unit u, input c, column j: q[u·128 + j·4 + c] · s[32p + j].
          let scales = weight.scales.pointer + p * 32
          for (i, u) in kept.enumerated() {
            for c in 0..<4 {
              for j in 0..<32 { panel[(i * 4 + c) * 32 + j] = Float(q[u * 128 + j * 4 + c]) * (32 * p + j < weight.panels * 16 ? scales[j] : 0) }
            }
          }
          let columns = Swift.min(32, n - p * 32)
          var row = 0
          while row < m {
            let rows = Swift.min(6, m - row)
            func rowPointer(_ i: Int) -> UnsafePointer<Float> { i < rows ? xs.value + (row + i) * ldx : UnsafePointer(zero) }
            int8WeightOnlyBlockTile(
              units: kept.count, steps: units.unitSteps + kept.lowerBound, panel: panel, x0: rowPointer(0), x1: rowPointer(1),
              x2: rowPointer(2), x3: rowPointer(3), x4: rowPointer(4), x5: rowPointer(5), out: tile.baseAddress!)
            for i in 0..<rows {
              let o = out.value + (row + i) * n + p * 32
              for j in 0..<columns { o[j] = tile[i * 32 + j] + (bias?[p * 32 + j] ?? 0) }
            }
            row += rows
          }
        }
      }
    }
  }
}

/// `y = x · (q · s)ᵀ + bias` for a block-sparse int8 weight with fp32 activations, one row at a
/// time (decode): per unit the 128 bytes widen to fp32 against the unit's 4 inputs repeated
/// across the vector; each column's 4 partial sums are added, then scaled, at the end.
package func int8WeightOnlyBlockLinearRows(
  weight: PackedInt8BlockWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k, units) = (weight.n, weight.k, weight.units)
  guard m > 0, n > 0 else { return }
  let ldx = weight.steps * 4
  withPaddedRows(x: x, m: m, k: k, ldx: ldx) { xp in
    let parts = Swift.max(1, Swift.min(workItems(workers), units.pairs))
    let out = Unchecked(y)
    let xs = Unchecked(xp)
    let q = UnsafePointer(weight.values.pointer.assumingMemoryBound(to: Int8.self))
    parallelFor(parts) { w in
      withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { sums in
        for p in (units.pairs * w / parts)..<(units.pairs * (w + 1) / parts) {
          let kept = units.offsets[p]..<units.offsets[p + 1]
          let columns = Swift.min(32, n - p * 32)
          for r in 0..<m {
            int8WeightOnlyBlockRow(
              units: kept.count, steps: units.unitSteps + kept.lowerBound, x: xs.value + r * ldx, b: q + kept.lowerBound * 128,
              out: sums.baseAddress!)
            let o = out.value + r * n + p * 32
            for j in 0..<columns { o[j] = sums[j] * weight.scales.pointer[p * 32 + j] + (bias?[p * 32 + j] ?? 0) }
          }
        }
      }
    }
  }
}

/// 6 rows × 32 columns of fp32 FMAs over a pair's dequantized units (`panel [units][4][32]`):
/// per unit and input, two 16-lane weight loads and one broadcast input per row.
@inline(never)
private func int8WeightOnlyBlockTile(
  units: Int, steps: UnsafePointer<Int32>, panel: UnsafePointer<Float>, x0: UnsafePointer<Float>, x1: UnsafePointer<Float>,
  x2: UnsafePointer<Float>, x3: UnsafePointer<Float>, x4: UnsafePointer<Float>, x5: UnsafePointer<Float>,
  out: UnsafeMutablePointer<Float>
) {
  typealias V = SIMD16<Float>
  var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
  var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
  for u in 0..<units {
    let base = Int(steps[u]) * 4
    for c in 0..<4 {
      let w = panel + (u * 4 + c) * 32
      let w0 = UnsafeRawPointer(w).loadUnaligned(as: V.self), w1 = UnsafeRawPointer(w + 16).loadUnaligned(as: V.self)
      var x = V(repeating: x0[base + c])
      c00 = fma16(c00, x, w0); c01 = fma16(c01, x, w1)
      x = V(repeating: x1[base + c])
      c10 = fma16(c10, x, w0); c11 = fma16(c11, x, w1)
      x = V(repeating: x2[base + c])
      c20 = fma16(c20, x, w0); c21 = fma16(c21, x, w1)
      x = V(repeating: x3[base + c])
      c30 = fma16(c30, x, w0); c31 = fma16(c31, x, w1)
      x = V(repeating: x4[base + c])
      c40 = fma16(c40, x, w0); c41 = fma16(c41, x, w1)
      x = V(repeating: x5[base + c])
      c50 = fma16(c50, x, w0); c51 = fma16(c51, x, w1)
    }
  }
  for (i, v) in [c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51].enumerated() {
    UnsafeMutableRawPointer(out + i * 16).storeBytes(of: v, as: V.self)
  }
}

/// `out[j] = Σ_units Σ_c x[4s + c] · Float(q[unit][j][c])` for one row and one pair of panels.
@inline(never)
private func int8WeightOnlyBlockRow(
  units: Int, steps: UnsafePointer<Int32>, x: UnsafePointer<Float>, b: UnsafePointer<Int8>, out: UnsafeMutablePointer<Float>
) {
  typealias V = SIMD16<Float>
  // Lanes 4c…4c+3 of chunk t hold column 4t + c's 4 inputs of the unit.
  var s0 = V(), s1 = V(), s2 = V(), s3 = V(), s4 = V(), s5 = V(), s6 = V(), s7 = V()
  for u in 0..<units {
    let x4 = UnsafeRawPointer(x + Int(steps[u]) * 4).loadUnaligned(as: SIMD4<Float>.self)
    let xv = V(lowHalf: SIMD8(lowHalf: x4, highHalf: x4), highHalf: SIMD8(lowHalf: x4, highHalf: x4))
    let w = UnsafeRawPointer(b + u * 128)
    s0 = fma16(s0, xv, floatsFromInt8(w)); s1 = fma16(s1, xv, floatsFromInt8(w + 16))
    s2 = fma16(s2, xv, floatsFromInt8(w + 32)); s3 = fma16(s3, xv, floatsFromInt8(w + 48))
    s4 = fma16(s4, xv, floatsFromInt8(w + 64)); s5 = fma16(s5, xv, floatsFromInt8(w + 80))
    s6 = fma16(s6, xv, floatsFromInt8(w + 96)); s7 = fma16(s7, xv, floatsFromInt8(w + 112))
  }
  for (t, s) in [s0, s1, s2, s3, s4, s5, s6, s7].enumerated() {
    for c in 0..<4 { out[4 * t + c] = (s[4 * c] + s[4 * c + 1]) + (s[4 * c + 2] + s[4 * c + 3]) }
  }
}

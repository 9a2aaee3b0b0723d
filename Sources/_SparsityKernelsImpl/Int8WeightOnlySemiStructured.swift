import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

/// A 2:4 int8 weight with float32 activations (weight-only): the layout of
/// ``PackedSemiStructuredWeight`` (8-row blocks; per block and group of 4 inputs the 8 rows'
/// first then second kept values, and a 32-bit word of the 8 rows' 4-bit codes) with int8 values
/// and a float32 scale per row — 1 + 0.25 bytes per kept value: 2.25 bytes per group of 4 inputs
/// and row instead of 8.5 in f32. The kernels compute `Σ x · (q · s)` in fp32: the dequantized
/// weight's products, as the weight-only int8 dense kernels do.
/// - Many tokens: the fp32 2:4 token-panel tile (``semiStructuredTile``) over each row chunk's
///   k-block dequantized into a scratch buffer (16 values per group and 8 rows, 32 KiB).
/// - Few tokens (decode): 8 rows per vector, the bytes widened to fp32 in registers, each lane's
///   x picked by `vpermilps` as in the fp32 2:4 GEMV; the row scales applied once at the end.
package final class PackedInt8WeightOnlySemiStructuredWeight: TokenPanelWeight, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let groups: Int
  package let rowBlocks: Int
  package let values: ByteBuffer
  package let codes: UnsafeMutablePointer<UInt32>
  /// `[rowBlocks · 8]` row scales (zero past `n`).
  package let scales: FloatBuffer
  #if SPARSITY_ISA_AVX512
    package var kBlock: Int { 32 }
  #else
    package var kBlock: Int { 64 }
  #endif
  package var rowChunk: Int { 64 }
  package var paddedK: Int { (groups * 4 + kBlock - 1) / kBlock * kBlock }

  /// Packs the logical 2:4 form: int8 `values [n, groups·2]`, one position byte per value, and
  /// the row scales.
  package init(n: Int, k: Int, values src: UnsafePointer<Int8>, positions: UnsafePointer<UInt8>, scales s: UnsafePointer<Float>) {
    self.n = n
    self.k = k
    groups = (k + 3) / 4
    rowBlocks = (n + 7) / 8
    values = ByteBuffer(count: rowBlocks * groups * 16 + 16)
    MemoryLedger.recordAllocation(bytes: Swift.max(1, rowBlocks * groups) * 4)
    codes = .allocate(capacity: Swift.max(1, rowBlocks * groups))
    codes.initialize(repeating: 0, count: Swift.max(1, rowBlocks * groups))
    scales = FloatBuffer(count: rowBlocks * 8)
    let v = values.pointer.assumingMemoryBound(to: Int8.self)
    for r in 0..<n {
      let (rb, lane) = (r / 8, r % 8)
      scales.pointer[r] = s[r]
      for g in 0..<groups {
        let slot = (r * groups + g) * 2
        codes[rb * groups + g] |= (UInt32(positions[slot]) | UInt32(positions[slot + 1]) << 2) << (4 * UInt32(lane))
        v[((rb * groups + g) * 2) * 8 + lane] = src[slot]
        v[((rb * groups + g) * 2 + 1) * 8 + lane] = src[slot + 1]
      }
    }
  }

  deinit { codes.deallocate() }

  /// Values, 4 bits of positions per group and row, and the row scales.
  package var byteCount: Int { n * groups * 2 + (n * groups + 1) / 2 + n * 4 }

  /// The kept int8 value of row `r` in group `g` (slot 0 or 1) and its position in the group.
  package func kept(row r: Int, group g: Int, slot: Int) -> (value: Int8, position: Int) {
    let (rb, lane) = (r / 8, r % 8)
    let value = values.pointer.assumingMemoryBound(to: Int8.self)[((rb * groups + g) * 2 + slot) * 8 + lane]
    return (value, Int(codes[rb * groups + g] >> (4 * UInt32(lane) + 2 * UInt32(slot))) & 3)
  }

  package func rowRanges(parts: Int) -> [Range<Int>] {
    (0..<parts).map { p in Swift.min(n, rowBlocks * p / parts * 8)..<Swift.min(n, rowBlocks * (p + 1) / parts * 8) }
  }

  /// The k-block's values of the rows dequantized (`q · s`, the f32 layout: 16 floats per group
  /// and 8-row block), then the fp32 tile per row.
  @inline(__always)
  package func accumulate(
    rows: Range<Int>, block: Int, first: Bool, panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>
  ) {
    let perBlock = kBlock / 4
    let g0 = block * perBlock
    let count = Swift.min(perBlock, groups - g0)
    let (rb0, rb1) = (rows.lowerBound / 8, (rows.upperBound + 7) / 8)
    let slice = panel + block * kBlock * panelTokens
    let q = UnsafePointer(values.pointer.assumingMemoryBound(to: Int8.self))
    withUnsafeTemporaryAllocation(of: Float.self, capacity: (rb1 - rb0) * perBlock * 16) { scratch in
      let f = scratch.baseAddress!
      for rb in rb0..<rb1 {
        let s = UnsafeRawPointer(scales.pointer + rb * 8).loadUnaligned(as: SIMD8<Float>.self)
        for g in 0..<count {
          let src = q + ((rb * groups + g0 + g) * 2) * 8
          let out = f + ((rb - rb0) * count + g) * 16
          store8(widen8(src) * s, out)
          store8(widen8(src + 8) * s, out + 8)
        }
      }
      var out = acc
      for r in rows {
        let (rb, lane) = (r / 8, r % 8)
        semiStructuredTile(
          groups: count, values: UnsafePointer(f) + (rb - rb0) * count * 16 + lane, codes: UnsafePointer(codes) + rb * groups + g0,
          shift: UInt32(4 * lane), panel: slice, acc: out, first: first)
        out += panelTokens
      }
    }
  }
}

/// 8 int8 values widened to fp32.
@inline(__always)
private func widen8(_ p: UnsafePointer<Int8>) -> Vec8 {
  Vec8(SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Int8>.self)))
}

/// `y = x · (q · s)ᵀ + bias` one activation row at a time (decode): per 8-row block, the 2:4
/// int8 values widened in registers, each lane's x picked out of its group's 4 (two groups per
/// iteration, four FMA chains), the row scales applied to the sums.
package func int8WeightOnlySemiStructuredLinearRows(
  weight: PackedInt8WeightOnlySemiStructuredWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k, groups) = (weight.n, weight.k, weight.groups)
  guard m > 0, n > 0 else { return }
  // x rows padded with zeros to whole groups (filler positions may point past k).
  let stride = groups * 4 + 8
  withPaddedRows(x: x, m: m, k: k, ldx: stride) { xs in
    let parts = Swift.max(1, Swift.min(workItems(workers), weight.rowBlocks))
    let out = Unchecked(y)
    let xp = Unchecked(xs)
    parallelFor(parts) { w in
      let y = out.value
      let q = UnsafePointer(weight.values.pointer.assumingMemoryBound(to: Int8.self))
      for rb in (weight.rowBlocks * w / parts)..<(weight.rowBlocks * (w + 1) / parts) {
        let lanes = Swift.min(8, n - rb * 8)
        let s = UnsafeRawPointer(weight.scales.pointer + rb * 8).loadUnaligned(as: SIMD8<Float>.self)
        for t in 0..<m {
          let sum = int8SemiStructuredRowBlock1(
            groups: groups, values: q + rb * groups * 16, codes: UnsafePointer(weight.codes) + rb * groups, x: xp.value + t * stride) * s
          for j in 0..<lanes { y[t * n + rb * 8 + j] = sum[j] + (bias?[rb * 8 + j] ?? 0) }
        }
      }
    }
  }
}

/// `Σ_g q0[g][lane]·x[4g + i0] + q1[g][lane]·x[4g + i1]` for one activation row and one block
/// of 8 output rows, the int8 values widened to fp32; two groups per iteration.
@inline(never)
private func int8SemiStructuredRowBlock1(
  groups: Int, values: UnsafePointer<Int8>, codes: UnsafePointer<UInt32>, x: UnsafePointer<Float>
) -> Vec8 {
  var a0 = Vec8(), b0 = Vec8(), a1 = Vec8(), b1 = Vec8()
  var v = values
  var g = 0
  while g + 2 <= groups {
    let (i0, i1) = positions(codes[g])
    let (j0, j1) = positions(codes[g + 1])
    let q = quad(x + 4 * g)
    let r = quad(x + 4 * g + 4)
    a0 = fma(a0, widen8(v), select(q, i0)); b0 = fma(b0, widen8(v + 8), select(q, i1))
    a1 = fma(a1, widen8(v + 16), select(r, j0)); b1 = fma(b1, widen8(v + 24), select(r, j1))
    v += 32
    g += 2
  }
  if g < groups {
    let (i0, i1) = positions(codes[g])
    let q = quad(x + 4 * g)
    a0 = fma(a0, widen8(v), select(q, i0)); b0 = fma(b0, widen8(v + 8), select(q, i1))
  }
  return (a0 + b0) + (a1 + b1)
}

/// `y = x · (q · s)ᵀ + bias` for many tokens: the token-panel driver over the dequantized k-blocks.
package func int8WeightOnlySemiStructuredPanelLinear(
  weight: PackedInt8WeightOnlySemiStructuredWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  tokenPanelLinear(weight: weight, x: x, m: m, y: y, bias: bias, workers: workers)
}

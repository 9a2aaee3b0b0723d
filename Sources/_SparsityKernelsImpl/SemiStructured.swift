import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

/// A 2:4 weight in a compact, 8-row interleaved form: output rows in blocks of 8; for every
/// block and group of 4 inputs, the 8 rows' first kept values, then their second kept values
/// (`values[((rb·groups + g)·2 + slot)·8 + lane]`), and one 32-bit word of 8 four-bit codes
/// (`code = i0 | i1 << 2`, the two kept positions of row `8·rb + lane`, at bits `4·lane`).
/// That is 4 + 0.25 bytes per kept value: 53% of the dense fp32 bytes.
///
/// Both kernels read this one layout:
/// - the token-panel kernel (large M) multiplies each row's two values of a group (broadcast;
///   with AVX-512 taken out of the group's 16-value line held in a register for all 8 rows of
///   the block) with panel rows `4g + i0` and `4g + i1`;
/// - the row-block kernel (small M) computes 8 output rows per vector: `vpermilps` picks each
///   lane's x value out of the group's 4 (broadcast to both 128-bit halves), so one group costs
///   two in-lane permutes and two FMAs for 8 rows.
/// Every row has exactly `k/2` kept weights: perfectly balanced, branch-free.
package final class PackedSemiStructuredWeight: TokenPanelWeight, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let groups: Int
  package let rowBlocks: Int
  package let values: FloatBuffer
  package let codes: UnsafeMutablePointer<UInt32>
  #if SPARSITY_ISA_AVX512
    /// 32 inputs: the k-block's panel slice (32 × 128 tokens, 16 KiB) and 64 rows' yᵀ tiles
    /// (32 KiB) share L1 and L2's nearest lines; measured ahead of 64 × 32 rows on Zen 4.
    package var kBlock: Int { 32 }
  #else
    package var kBlock: Int { 64 }
  #endif
  /// 64 rows: their yᵀ tiles (16 KiB) and the 16 KiB panel slice of a k-block fill L1; 64 beat
  /// 16 by 3–10% on the MiniLM and BERT shapes (K = 384…1536, single thread, Zen 3) once the
  /// dense GEMM no longer shares the machine's time with per-k-block C reloads.
  package var rowChunk: Int { 64 }
  package var paddedK: Int { (groups * 4 + kBlock - 1) / kBlock * kBlock }

  /// Packs the logical 2:4 form: `values` `[n, groups·2]`, `positions` one byte per value.
  package init(n: Int, k: Int, values src: UnsafePointer<Float>, positions: UnsafePointer<UInt8>) {
    self.n = n
    self.k = k
    groups = (k + 3) / 4
    rowBlocks = (n + 7) / 8
    values = FloatBuffer(count: rowBlocks * groups * 16 + 16)
    MemoryLedger.recordAllocation(bytes: Swift.max(1, rowBlocks * groups) * 4)
    codes = .allocate(capacity: Swift.max(1, rowBlocks * groups))
    codes.initialize(repeating: 0, count: Swift.max(1, rowBlocks * groups))
    let v = values.pointer
    for r in 0..<n {
      let (rb, lane) = (r / 8, r % 8)
      for g in 0..<groups {
        let slot = (r * groups + g) * 2
        let i0 = UInt32(positions[slot])
        let i1 = UInt32(positions[slot + 1])
        codes[rb * groups + g] |= (i0 | i1 << 2) << (4 * UInt32(lane))
        v[((rb * groups + g) * 2) * 8 + lane] = src[slot]
        v[((rb * groups + g) * 2 + 1) * 8 + lane] = src[slot + 1]
      }
    }
  }

  /// A weight whose values and code words a kernel writes itself, every one of them
  /// (`sparsify24`, which makes this layout straight from a dense matrix): the buffers are not
  /// zeroed, except the 16 values past the last block.
  package init(uninitializedN n: Int, k: Int) {
    self.n = n
    self.k = k
    groups = (k + 3) / 4
    rowBlocks = (n + 7) / 8
    values = FloatBuffer(count: rowBlocks * groups * 16 + 16, zeroed: false)
    (values.pointer + rowBlocks * groups * 16).update(repeating: 0, count: 16)
    MemoryLedger.recordAllocation(bytes: Swift.max(1, rowBlocks * groups) * 4)
    codes = .allocate(capacity: Swift.max(1, rowBlocks * groups))
    codes.initialize(to: 0)
  }

  deinit { codes.deallocate() }

  /// Values plus 4 bits per group and row (the zero rows that pad to a multiple of 8 not counted).
  package var byteCount: Int { n * groups * 2 * 4 + (n * groups + 1) / 2 }

  package func rowRanges(parts: Int) -> [Range<Int>] {
    // Whole 8-row blocks per part, so two threads never share one.
    (0..<parts).map { p in Swift.min(n, rowBlocks * p / parts * 8)..<Swift.min(n, rowBlocks * (p + 1) / parts * 8) }
  }

  @inline(__always)
  package func accumulate(
    rows: Range<Int>, block: Int, first: Bool, panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>
  ) {
    let perBlock = kBlock / 4
    let g0 = block * perBlock
    let count = Swift.min(perBlock, groups - g0)
    let slice = panel + block * kBlock * panelTokens
    semiStructuredTiles(
      rows: rows, groups: count, values: UnsafePointer(values.pointer) + g0 * 16, codes: UnsafePointer(codes) + g0,
      groupStride: groups, panel: slice, acc: acc, first: first)
  }

  /// Writes the dense row-major `[n, k]` weight.
  package func unpack(into w: UnsafeMutablePointer<Float>) {
    w.update(repeating: 0, count: n * k)
    for r in 0..<n {
      let (rb, lane) = (r / 8, r % 8)
      for g in 0..<groups {
        let code = Int(codes[rb * groups + g] >> (4 * UInt32(lane)))
        for (s, i) in [code & 3, (code >> 2) & 3].enumerated() where 4 * g + i < k {
          w[r * k + 4 * g + i] = values.pointer[((rb * groups + g) * 2 + s) * 8 + lane]
        }
      }
    }
  }
}

/// The token-panel tiles of `rows` for one k-block: row r's tile (``semiStructuredTile``) reads
/// its values from `values + (r/8 · groupStride) · 16 + r%8` and its codes from
/// `codes + r/8 · groupStride`, and writes `acc + (r − rows.lowerBound) · T`. One call per
/// row chunk, not per row: a tile runs only 128 FMAs per k-block, and a call per row was 1–7%
/// slower (median 3.5%, 16 shape × M cases timed interleaved on Zen 4).
@inline(never)
func semiStructuredTiles(
  rows: Range<Int>, groups: Int, values: UnsafePointer<Float>, codes: UnsafePointer<UInt32>, groupStride: Int,
  panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>, first: Bool
) {
  var out = acc
  var r = rows.lowerBound
  while r < rows.upperBound {
    let (rb, lane) = (r / 8, r % 8)
    #if SPARSITY_ISA_AVX512
      // A whole block of rows over a whole k-block (32 inputs: 8 groups; the last may be shorter).
      if lane == 0 && r + 8 <= rows.upperBound && groups == 8 {
        semiStructuredBlockTiles(
          values: values + rb * groupStride * 16, codes: codes + rb * groupStride, panel: panel, acc: out, first: first)
        out += 8 * panelTokens
        r += 8
        continue
      }
    #endif
    semiStructuredTile(
      groups: groups, values: values + rb * groupStride * 16 + lane, codes: codes + rb * groupStride,
      shift: UInt32(4 * lane), panel: panel, acc: out, first: first)
    out += panelTokens
    r += 1
  }
}

#if SPARSITY_ISA_AVX512
  /// ``semiStructuredTile`` for the 8 rows of one block over a k-block of 8 groups: the block's
  /// 8 value lines (16 floats each: the rows' first kept values, then their second) are loaded
  /// once into registers and each row's two weights taken out of them with `vpermps`, and the 8
  /// code words are read once — so a row's k-block loads only its panel rows (the kernel is bound
  /// by loads: 16 panel vectors per group and row, plus 2 broadcasts and a code word before).
  /// Tile of row j at `acc + j·T`.
  @inline(__always)
  func semiStructuredBlockTiles(
    values: UnsafePointer<Float>, codes: UnsafePointer<UInt32>, panel: UnsafePointer<Float>,
    acc: UnsafeMutablePointer<Float>, first: Bool
  ) {
    @inline(__always)
    func line(_ g: Int) -> __m512 { _mm512_loadu_ps(values + 16 * g) }
    let (l0, l1, l2, l3, l4, l5, l6, l7) = (line(0), line(1), line(2), line(3), line(4), line(5), line(6), line(7))
    let (c0, c1, c2, c3) = (codes[0], codes[1], codes[2], codes[3])
    let (c4, c5, c6, c7) = (codes[4], codes[5], codes[6], codes[7])
    for lane in 0..<8 {
      let tile = acc + lane * panelTokens
      var a = PanelTile(tile, first: first)
      let shift = UInt32(4 * lane)
      let slots = (_mm512_set1_epi32(Int32(lane)), _mm512_set1_epi32(Int32(lane + 8)))
      semiStructuredBlockGroup(&a, l0, c0 &>> shift, slots, panel)
      semiStructuredBlockGroup(&a, l1, c1 &>> shift, slots, panel + 4 * panelTokens)
      semiStructuredBlockGroup(&a, l2, c2 &>> shift, slots, panel + 8 * panelTokens)
      semiStructuredBlockGroup(&a, l3, c3 &>> shift, slots, panel + 12 * panelTokens)
      semiStructuredBlockGroup(&a, l4, c4 &>> shift, slots, panel + 16 * panelTokens)
      semiStructuredBlockGroup(&a, l5, c5 &>> shift, slots, panel + 20 * panelTokens)
      semiStructuredBlockGroup(&a, l6, c6 &>> shift, slots, panel + 24 * panelTokens)
      semiStructuredBlockGroup(&a, l7, c7 &>> shift, slots, panel + 28 * panelTokens)
      a.store(tile)
    }
  }

  /// One group of ``semiStructuredBlockTiles`` for one row: its two weights out of the group's
  /// value line (lanes `slots`), its positions in the low 4 bits of `bits`, the group's 4 panel
  /// rows at `base`.
  @inline(__always)
  func semiStructuredBlockGroup(
    _ a: inout PanelTile, _ line: __m512, _ bits: UInt32, _ slots: (__m512i, __m512i), _ base: UnsafePointer<Float>
  ) {
    // `__m512` is `PanelVector` (SIMD16<Float>) in this build.
    a.add(_mm512_permutexvar_ps(slots.0, line), base + Int(truncatingIfNeeded: bits & 3) &* panelTokens)
    a.add(_mm512_permutexvar_ps(slots.1, line), base + Int(truncatingIfNeeded: (bits &>> 2) & 3) &* panelTokens)
  }
#endif

/// `acc[0..<T] += Σ_g v0_g·panel[4g + i0] + v1_g·panel[4g + i1]` for one row and one k-block
/// (T = `panelTokens`, 8 `PanelVector` accumulators). `values` points at the row's first value
/// of the block (stride 16 floats per group, second value 8 floats on); `codes >> shift` holds
/// the row's positions; `first` starts from zero instead of `acc`.
@inline(__always)
func semiStructuredTile(
  groups: Int, values: UnsafePointer<Float>, codes: UnsafePointer<UInt32>, shift: UInt32,
  panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>, first: Bool
) {
  var a = PanelTile(acc, first: first)
  var v = values
  var base = panel
  for g in 0..<groups {
    let bits = codes[g] &>> shift
    a.add(PanelVector(repeating: v[0]), base + Int(truncatingIfNeeded: bits & 3) &* panelTokens)
    a.add(PanelVector(repeating: v[8]), base + Int(truncatingIfNeeded: (bits &>> 2) & 3) &* panelTokens)
    v += 16
    base += 4 * panelTokens
  }
  a.store(acc)
}

/// Small-M 2:4 (the decode path): for every block of 8 output rows and up to 4 activation
/// rows at a time, one vector of 8 outputs per activation row; per group two in-lane permutes
/// select each row's x values, shared decode and value loads across the activation rows.
package func semiStructuredLinearRows(
  weight: PackedSemiStructuredWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k, groups) = (weight.n, weight.k, weight.groups)
  guard m > 0, n > 0 else { return }
  // x rows padded with zeros to whole groups (filler positions may point past k).
  let stride = groups * 4 + 8
  Scratch.with(count: m * stride + 8 * 4 * 8) { xs in
    for t in 0..<m {
      (xs + t * stride).update(from: x + t * k, count: k)
      (xs + t * stride + k).update(repeating: 0, count: stride - k)
    }
    let parts = Swift.max(1, Swift.min(workItems(workers), weight.rowBlocks))
    let out = Unchecked(y)
    let xp = Unchecked(UnsafePointer(xs))
    parallelFor(parts) { w in
      let y = out.value
      withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { tile in
        for rb in (weight.rowBlocks * w / parts)..<(weight.rowBlocks * (w + 1) / parts) {
          let lanes = Swift.min(8, n - rb * 8)
          var t = 0
          while t < m {
            let rows = Swift.min(4, m - t)
            let v = UnsafePointer(weight.values.pointer) + rb * groups * 16
            let c = UnsafePointer(weight.codes) + rb * groups
            if rows == 1 {
              semiStructuredRowBlock1(groups: groups, values: v, codes: c, x: xp.value + t * stride, out: tile.baseAddress!)
            } else {
              // Rows past m read the zero row at the end of the scratch buffer.
              let ldx = stride
              let xBase = xp.value + t * stride
              if rows == 4 {
                semiStructuredRowBlock4(groups: groups, values: v, codes: c, x: xBase, ldx: ldx, out: tile.baseAddress!)
              } else {
                for i in 0..<rows {
                  semiStructuredRowBlock1(
                    groups: groups, values: v, codes: c, x: xBase + i * ldx, out: tile.baseAddress! + i * 8)
                }
              }
            }
            for i in 0..<rows {
              for j in 0..<lanes {
                y[(t + i) * n + rb * 8 + j] = tile[i * 8 + j] + (bias?[rb * 8 + j] ?? 0)
              }
            }
            t += rows
          }
        }
      }
    }
  }
}

/// `out[lane] = Σ_g v0[g][lane]·x[4g + i0] + v1[g][lane]·x[4g + i1]` for one activation row
/// and one block of 8 output rows; two groups per iteration (four FMA chains).
@inline(never)
package func semiStructuredRowBlock1(
  groups: Int, values: UnsafePointer<Float>, codes: UnsafePointer<UInt32>, x: UnsafePointer<Float>,
  out: UnsafeMutablePointer<Float>
) {
  var a0 = Vec8(), b0 = Vec8(), a1 = Vec8(), b1 = Vec8()
  var v = values
  var g = 0
  while g + 2 <= groups {
    let (i0, i1) = positions(codes[g])
    let (j0, j1) = positions(codes[g + 1])
    let q = quad(x + 4 * g)
    let r = quad(x + 4 * g + 4)
    a0 = fma(a0, load8(v), select(q, i0)); b0 = fma(b0, load8(v + 8), select(q, i1))
    a1 = fma(a1, load8(v + 16), select(r, j0)); b1 = fma(b1, load8(v + 24), select(r, j1))
    v += 32
    g += 2
  }
  if g < groups {
    let (i0, i1) = positions(codes[g])
    let q = quad(x + 4 * g)
    a0 = fma(a0, load8(v), select(q, i0)); b0 = fma(b0, load8(v + 8), select(q, i1))
  }
  store8((a0 + b0) + (a1 + b1), out)
}

/// ``semiStructuredRowBlock1`` for four activation rows (stride `ldx`) at once, sharing the
/// decoded positions and the value loads; `out` is `[4][8]`.
@inline(never)
package func semiStructuredRowBlock4(
  groups: Int, values: UnsafePointer<Float>, codes: UnsafePointer<UInt32>, x: UnsafePointer<Float>,
  ldx: Int, out: UnsafeMutablePointer<Float>
) {
  var a0 = Vec8(), a1 = Vec8(), a2 = Vec8(), a3 = Vec8()
  var b0 = Vec8(), b1 = Vec8(), b2 = Vec8(), b3 = Vec8()
  let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
  var v = values
  for g in 0..<groups {
    let (i0, i1) = positions(codes[g])
    let v0 = load8(v)
    let v1 = load8(v + 8)
    let o = 4 * g
    var q = quad(x0 + o)
    a0 = fma(a0, v0, select(q, i0)); b0 = fma(b0, v1, select(q, i1))
    q = quad(x1 + o)
    a1 = fma(a1, v0, select(q, i0)); b1 = fma(b1, v1, select(q, i1))
    q = quad(x2 + o)
    a2 = fma(a2, v0, select(q, i0)); b2 = fma(b2, v1, select(q, i1))
    q = quad(x3 + o)
    a3 = fma(a3, v0, select(q, i0)); b3 = fma(b3, v1, select(q, i1))
    v += 16
  }
  store8(a0 + b0, out); store8(a1 + b1, out + 8); store8(a2 + b2, out + 16); store8(a3 + b3, out + 24)
}

#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  /// The per-lane kept positions of one group of 8 rows: lane j's code `>> 4j` (first) and
  /// `>> (4j + 2)` (second); `vpermilps` reads only the low two bits.
  @inline(__always)
  func positions(_ code: UInt32) -> (__m256i, __m256i) {
    let c = _mm256_set1_epi32(Int32(bitPattern: code))
    let first = _mm256_srlv_epi32(c, _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28))
    return (first, _mm256_srli_epi32(first, 2))
  }

  /// The group's 4 x values in both 128-bit halves.
  @inline(__always)
  func quad(_ x: UnsafePointer<Float>) -> Vec8 {
    let q = UnsafeRawPointer(x).loadUnaligned(as: SIMD4<Float>.self)
    return Vec8(lowHalf: q, highHalf: q)
  }

  /// Lane j gets the `index[j] & 3`-th of the quad (in-lane `vpermilps`).
  @inline(__always)
  func select(_ quad: Vec8, _ index: __m256i) -> Vec8 {
    _mm256_permutevar_ps(quad, index)
  }
#else
  @inline(__always)
  func positions(_ code: UInt32) -> (SIMD8<UInt32>, SIMD8<UInt32>) {
    let first = SIMD8<UInt32>(repeating: code) &>> SIMD8<UInt32>(0, 4, 8, 12, 16, 20, 24, 28)
    return (first, first &>> 2)
  }

  @inline(__always)
  func quad(_ x: UnsafePointer<Float>) -> Vec8 {
    let q = UnsafeRawPointer(x).loadUnaligned(as: SIMD4<Float>.self)
    return Vec8(lowHalf: q, highHalf: q)
  }

  @inline(__always)
  func select(_ quad: Vec8, _ index: SIMD8<UInt32>) -> Vec8 {
    var r = Vec8()
    for j in 0..<8 { r[j] = quad[Int(index[j] & 3)] }
    return r
  }
#endif

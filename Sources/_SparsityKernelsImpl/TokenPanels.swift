#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

// The activation-major family (DESIGN §5 (b), reference/performance.md §3.1 (A)): pack xᵀ
// into panels of `panelTokens` tokens (`P[kk·T + j] = x[m0 + j][kk]`), and for every output
// row accumulate `yᵀ[n, m0..<m0+T] += w · P[kk]` over the row's kept weights — one broadcast
// of the weight and 8 vector FMAs with loads of the panel row per nonzero. The 8 accumulators
// of a row stay in registers over a k-block; the tile of yᵀ is transposed into y at the end.

#if SPARSITY_ISA_AVX512
  /// The vector of the token-panel tiles: zmm. A nonzero's 8 FMAs then cover 128 tokens for
  /// the same broadcast and index load as 64 tokens in ymm (2:4 tile measured 126–138 →
  /// 145–162 GFLOP/s dense-equivalent single-thread on Zen 4).
  package typealias PanelVector = SIMD16<Float>
#else
  /// The vector of the token-panel tiles: ymm.
  package typealias PanelVector = SIMD8<Float>
#endif

/// Tokens per panel: 8 accumulators of `PanelVector` (128 with AVX-512, else 64).
package let panelTokens = 8 * PanelVector.scalarCount

/// The 8 accumulators of one row's yᵀ tile as a value (zero when `first`, else read from `tile`).
struct PanelTile {
  var a0, a1, a2, a3, a4, a5, a6, a7: PanelVector

  @inline(__always)
  init(_ tile: UnsafePointer<Float>, first: Bool) {
    if first {
      (a0, a1, a2, a3, a4, a5, a6, a7) = (.zero, .zero, .zero, .zero, .zero, .zero, .zero, .zero)
    } else {
      let l = PanelVector.scalarCount
      (a0, a1, a2, a3) = (loadPanel(tile), loadPanel(tile + l), loadPanel(tile + 2 * l), loadPanel(tile + 3 * l))
      (a4, a5, a6, a7) = (loadPanel(tile + 4 * l), loadPanel(tile + 5 * l), loadPanel(tile + 6 * l), loadPanel(tile + 7 * l))
    }
  }

  /// `+= w · panel row p` (T tokens).
  @inline(__always)
  mutating func add(_ w: PanelVector, _ p: UnsafePointer<Float>) {
    let l = PanelVector.scalarCount
    a0 = fma(a0, w, loadPanel(p)); a1 = fma(a1, w, loadPanel(p + l))
    a2 = fma(a2, w, loadPanel(p + 2 * l)); a3 = fma(a3, w, loadPanel(p + 3 * l))
    a4 = fma(a4, w, loadPanel(p + 4 * l)); a5 = fma(a5, w, loadPanel(p + 5 * l))
    a6 = fma(a6, w, loadPanel(p + 6 * l)); a7 = fma(a7, w, loadPanel(p + 7 * l))
  }

  @inline(__always)
  func store(_ tile: UnsafeMutablePointer<Float>) {
    let l = PanelVector.scalarCount
    storePanel(a0, tile); storePanel(a1, tile + l); storePanel(a2, tile + 2 * l); storePanel(a3, tile + 3 * l)
    storePanel(a4, tile + 4 * l); storePanel(a5, tile + 5 * l); storePanel(a6, tile + 6 * l); storePanel(a7, tile + 7 * l)
  }
}

@inline(__always)
func loadPanel(_ p: UnsafePointer<Float>) -> PanelVector {
  UnsafeRawPointer(p).loadUnaligned(as: PanelVector.self)
}

@inline(__always)
func storePanel(_ v: PanelVector, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: PanelVector.self)
}

#if SPARSITY_ISA_AVX512
  /// `acc + a·b` in zmm (an AVX-512 build always has FMA); `Vec8`'s is in Support.swift.
  @inline(__always)
  func fma(_ acc: PanelVector, _ a: PanelVector, _ b: PanelVector) -> PanelVector { acc.addingProduct(a, b) }
#endif

/// A sparse weight whose rows can be multiplied into a token panel.
package protocol TokenPanelWeight {
  var n: Int { get }
  var k: Int { get }
  /// Rows of a packed panel (≥ k; the padding rows are zero).
  var paddedK: Int { get }
  /// The k-block height: accumulate(row:block:) touches panel rows [block·kBlock, +kBlock).
  var kBlock: Int { get }
  /// Output rows per pass over a k-block: their yᵀ tiles, weights and the panel slice should
  /// fit L1 together.
  var rowChunk: Int { get }
  /// Bytes of the packed weight.
  var byteCount: Int { get }
  /// Output rows split into `parts` ranges of about equal work.
  func rowRanges(parts: Int) -> [Range<Int>]
  /// For each row r in `rows`: `acc[(r − rows.lowerBound)·T ..< +T] += Σ_{kept (kk, w) of r,
  /// kk in block} w · panel[kk]`, T = `panelTokens`; with `first`, `=` instead of `+=` (the
  /// first k-block: `acc` holds garbage and must be written even where a row has no weight).
  func accumulate(
    rows: Range<Int>, block: Int, first: Bool, panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>)
}

/// Packs `x[m0 ..< m0+T][0 ..< k]` transposed into `dst[paddedK][T]`, zero-padded (T = `panelTokens`).
/// With `transposed`, `x` holds the activations as their transpose `[k][m]`: a copy of row slices.
package func packTokenPanel(
  x: UnsafePointer<Float>, m: Int, k: Int, transposed: Bool = false, paddedK: Int, m0: Int,
  into dst: UnsafeMutablePointer<Float>
) {
  let tokens = Swift.min(panelTokens, m - m0)
  if tokens < panelTokens || paddedK > k {
    dst.update(repeating: 0, count: paddedK * panelTokens)
  }
  if transposed {
    for kk in 0..<k { (dst + kk * panelTokens).update(from: x + kk * m + m0, count: tokens) }
  } else {
    transpose(x + m0 * k, rowStride: k, rows: tokens, columns: k, into: dst, rowStride: panelTokens)
  }
}

/// `y = x · Wᵀ + bias` for a CSR weight with the token-panel kernel.
package func csrPanelLinear(
  weight: PackedCSRWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  tokenPanelLinear(weight: weight, x: x, m: m, y: y, bias: bias, workers: workers)
}

/// `y = x · Wᵀ + bias` for a 2:4 weight with the token-panel kernel (`x` and `y` held
/// transposed when asked: ``tokenPanelLinear(weight:x:m:xTransposed:y:yTransposed:bias:workers:)``).
package func semiStructuredPanelLinear(
  weight: PackedSemiStructuredWeight, x: UnsafePointer<Float>, m: Int, xTransposed: Bool = false,
  y: UnsafeMutablePointer<Float>, yTransposed: Bool = false, bias: UnsafePointer<Float>?, workers: Int
) {
  tokenPanelLinear(
    weight: weight, x: x, m: m, xTransposed: xTransposed, y: y, yTransposed: yTransposed, bias: bias, workers: workers)
}

/// `y = x · Wᵀ + bias` for any ``TokenPanelWeight``: `panelTokens` × `rowChunk`-row tiles of
/// yᵀ over packed token panels, split across `workers` by token tiles (large M) or by output
/// rows (small M).
///
/// A token panel holds `paddedK × panelTokens` floats: 1.5 MiB at K = 3,072 with 128 tokens,
/// more than L2. So small k-blocks (2:4's) go in passes whose panel slice stays within 256 KiB,
/// each pass over all the rows of a span (up to 1,024, their yᵀ tiles kept in a scratch
/// buffer), instead of streaming the whole panel from L3 once per row chunk (2:4 at M = 2,048,
/// timed interleaved on Zen 4: +7% at K = 4,096, +11% at 3,072, +21% at 11,008; 128 KiB
/// passes measured the same, 512 KiB worse).
///
/// With `xTransposed`, `x` holds the activations as `xᵀ [k, m]`; with `yTransposed`, the result
/// is written as `yᵀ [n, m]` (the tiles' own layout: no transpose on the way out).
func tokenPanelLinear<W: TokenPanelWeight>(
  weight: W, x: UnsafePointer<Float>, m: Int, xTransposed: Bool = false, y: UnsafeMutablePointer<Float>,
  yTransposed: Bool = false, bias: UnsafePointer<Float>?, workers: Int
) {
  let rowChunk = weight.rowChunk
  let (n, k, kp) = (weight.n, weight.k, weight.paddedK)
  guard m > 0, n > 0 else { return }
  let tiles = (m + panelTokens - 1) / panelTokens
  let panelSize = kp * panelTokens
  let blocks = weight.kBlock == 0 ? 0 : (kp + weight.kBlock - 1) / weight.kBlock
  // K-blocks per pass: as many as fit 256 KiB of panel; when fewer than two fit (CSR's blocks
  // of 512+ inputs, chosen for the sparsest weights), all in one pass per row chunk — there the
  // accumulator round trips of extra passes cost more than they save.
  let fitting = 256 * 1024 / Swift.max(1, weight.kBlock * panelTokens * 4)
  let perPass = fitting >= 2 ? fitting : Swift.max(1, blocks)
  let passes = Swift.max(1, (blocks + perPass - 1) / perPass)
  // Rows whose yᵀ tiles are held at once: one chunk in one pass, else a span of rows.
  func span(_ range: Range<Int>) -> Int { passes == 1 ? rowChunk : Swift.min(1024, Swift.max(1, range.count)) }
  let out = Unchecked(y)
  /// yᵀ for the token tile `t` (its packed panel at `panel`) and the output rows `range`, in
  /// spans of rows whose tiles `yt` holds at once, stored transposed into y.
  func multiply(panel: UnsafePointer<Float>, tile t: Int, rows range: Range<Int>, yt: UnsafeMutablePointer<Float>) {
    let y = out.value
    let spanLength = span(range)
    let m0 = t * panelTokens
    let tokens = Swift.min(panelTokens, m - m0)
    var s0 = range.lowerBound
    while s0 < range.upperBound {
      let count = Swift.min(spanLength, range.upperBound - s0)
      if blocks == 0 { yt.update(repeating: 0, count: count * panelTokens) }
      for pass in 0..<passes {
        let passBlocks = (pass * perPass)..<Swift.min(blocks, (pass + 1) * perPass)
        var n0 = s0
        while n0 < s0 + count {
          let rows = Swift.min(rowChunk, s0 + count - n0)
          let acc = yt + (n0 - s0) * panelTokens
          for b in passBlocks {
            weight.accumulate(rows: n0..<(n0 + rows), block: b, first: b == 0, panel: panel, acc: acc)
          }
          n0 += rows
        }
      }
      if yTransposed {
        for r in 0..<count {
          let out = y + (s0 + r) * m + m0
          out.update(from: yt + r * panelTokens, count: tokens)
          if let bias { for j in 0..<tokens { out[j] += bias[s0 + r] } }
        }
      } else {
        storeTransposed(
          yt: yt, rows: count, tokens: tokens, y: y + m0 * n + s0, ldy: n, bias: bias.map { $0 + s0 })
      }
      s0 += count
    }
  }

  if tiles >= 2 * workers && tiles * panelSize * 4 > weight.byteCount {
    // Large M (the packed activations outweigh the weight): work items are token tiles, each
    // packing its own panels one at a time right before using them, so a panel goes from the
    // packing to the kernel through L2 (packing all panels first sent them through L3:
    // 24 MiB at M = 4,096, K = 1,536), and each item streams the weight once per panel.
    // 2:4, timed interleaved on Zen 4 (M = 2,048 and 4,096): +9–12% on 384x1536 (MiniLM's
    // output layer), +2–13% on the other MiniLM shapes, −6…+8% on the BERT/ViT-L shapes (two runs);
    // CSR on ViT-L shapes: +3–42% at 90–99% sparsity (M = 1,024) and +4–70% (M = 4,096).
    let parts = Swift.min(workItems(workers), tiles)
    parallelFor(parts) { w in
      Scratch.with(count: panelSize + span(0..<n) * panelTokens) { buffer in
        for t in (tiles * w / parts)..<(tiles * (w + 1) / parts) {
          packTokenPanel(x: x, m: m, k: k, transposed: xTransposed, paddedK: kp, m0: t * panelTokens, into: buffer)
          multiply(panel: buffer, tile: t, rows: 0..<n, yt: buffer + panelSize)
        }
      }
    }
  } else {
    // Small M: work items are output rows, every item reading all panels, packed once up front.
    Scratch.with(count: tiles * panelSize) { panels in
      let parts = Swift.min(workers, tiles)
      let pp = Unchecked(panels)
      parallelFor(parts) { w in
        for t in (tiles * w / parts)..<(tiles * (w + 1) / parts) {
          packTokenPanel(x: x, m: m, k: k, transposed: xTransposed, paddedK: kp, m0: t * panelTokens, into: pp.value + t * panelSize)
        }
      }
      let ranges = weight.rowRanges(parts: Swift.max(1, Swift.min(workItems(workers), n)))
      parallelFor(ranges.count) { w in
        Scratch.with(count: span(ranges[w]) * panelTokens) { yt in
          for t in 0..<tiles { multiply(panel: pp.value + t * panelSize, tile: t, rows: ranges[w], yt: yt) }
        }
      }
    }
  }
}

/// `y[j][r] = yt[r][j] (+ bias[r])` for `r < rows`, `j < tokens`: 8×8 blocks through registers
/// (AVX2 unpacks and lane inserts), scalar at the edges.
@inline(never)
package func storeTransposed(
  yt: UnsafePointer<Float>, rows: Int, tokens: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
  bias: UnsafePointer<Float>?
) {
  let fullRows = rows / 8 * 8
  let fullTokens = tokens / 8 * 8
  #if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
    var r = 0
    while r < fullRows {
      let b = bias.map { load8($0 + r) } ?? Vec8()
      var j = 0
      while j < fullTokens {
        let src = yt + r * panelTokens + j
        let t = transpose8x8(
          load8(src), load8(src + panelTokens), load8(src + 2 * panelTokens), load8(src + 3 * panelTokens),
          load8(src + 4 * panelTokens), load8(src + 5 * panelTokens), load8(src + 6 * panelTokens),
          load8(src + 7 * panelTokens))
        let out = y + j * ldy + r
        store8(t.0 + b, out); store8(t.1 + b, out + ldy); store8(t.2 + b, out + 2 * ldy)
        store8(t.3 + b, out + 3 * ldy); store8(t.4 + b, out + 4 * ldy); store8(t.5 + b, out + 5 * ldy)
        store8(t.6 + b, out + 6 * ldy); store8(t.7 + b, out + 7 * ldy)
        j += 8
      }
      r += 8
    }
    let vectorRows = fullRows
    let vectorTokens = fullTokens
  #else
    let vectorRows = 0
    let vectorTokens = 0
  #endif
  // Edges: the tokens past the vector part for the vector rows, then every remaining row.
  for j in 0..<tokens {
    let out = y + j * ldy
    let r0 = j < vectorTokens ? vectorRows : 0
    if let bias {
      for r in r0..<rows { out[r] = yt[r * panelTokens + j] + bias[r] }
    } else {
      for r in r0..<rows { out[r] = yt[r * panelTokens + j] }
    }
  }
}

#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  /// The transpose of the 8×8 matrix whose rows are `a0 … a7`.
  @inline(__always)
  func transpose8x8(
    _ a0: Vec8, _ a1: Vec8, _ a2: Vec8, _ a3: Vec8, _ a4: Vec8, _ a5: Vec8, _ a6: Vec8, _ a7: Vec8
  ) -> (Vec8, Vec8, Vec8, Vec8, Vec8, Vec8, Vec8, Vec8) {
    let t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1)
    let t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3)
    let t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5)
    let t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7)
    func lo(_ x: Vec8, _ y: Vec8) -> Vec8 {
      unsafeBitCast(_mm256_unpacklo_pd(unsafeBitCast(x, to: __m256d.self), unsafeBitCast(y, to: __m256d.self)), to: Vec8.self)
    }
    func hi(_ x: Vec8, _ y: Vec8) -> Vec8 {
      unsafeBitCast(_mm256_unpackhi_pd(unsafeBitCast(x, to: __m256d.self), unsafeBitCast(y, to: __m256d.self)), to: Vec8.self)
    }
    let s0 = lo(t0, t2), s1 = hi(t0, t2), s2 = lo(t1, t3), s3 = hi(t1, t3)
    let s4 = lo(t4, t6), s5 = hi(t4, t6), s6 = lo(t5, t7), s7 = hi(t5, t7)
    return (
      Vec8(lowHalf: s0.lowHalf, highHalf: s4.lowHalf), Vec8(lowHalf: s1.lowHalf, highHalf: s5.lowHalf),
      Vec8(lowHalf: s2.lowHalf, highHalf: s6.lowHalf), Vec8(lowHalf: s3.lowHalf, highHalf: s7.lowHalf),
      Vec8(lowHalf: s0.highHalf, highHalf: s4.highHalf), Vec8(lowHalf: s1.highHalf, highHalf: s5.highHalf),
      Vec8(lowHalf: s2.highHalf, highHalf: s6.highHalf), Vec8(lowHalf: s3.highHalf, highHalf: s7.highHalf)
    )
  }
#endif

/// `dst[c · dstStride + r] = src[r · srcStride + c] · scale` for `r < rows`, `c < columns`:
/// 8×8 blocks through registers where the build has AVX2, scalar at the edges.
package func transpose(
  _ src: UnsafePointer<Float>, rowStride lds: Int, rows: Int, columns: Int, into dst: UnsafeMutablePointer<Float>,
  rowStride ldd: Int, scale: Float = 1
) {
  var r0 = 0
  #if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
    let factor = Vec8(repeating: scale)
    while r0 + 8 <= rows {
      var c0 = 0
      while c0 + 8 <= columns {
        let p = src + r0 * lds + c0
        let t = transpose8x8(
          load8(p), load8(p + lds), load8(p + 2 * lds), load8(p + 3 * lds), load8(p + 4 * lds), load8(p + 5 * lds),
          load8(p + 6 * lds), load8(p + 7 * lds))
        let o = dst + c0 * ldd + r0
        store8(t.0 * factor, o); store8(t.1 * factor, o + ldd); store8(t.2 * factor, o + 2 * ldd)
        store8(t.3 * factor, o + 3 * ldd); store8(t.4 * factor, o + 4 * ldd); store8(t.5 * factor, o + 5 * ldd)
        store8(t.6 * factor, o + 6 * ldd); store8(t.7 * factor, o + 7 * ldd)
        c0 += 8
      }
      for r in r0..<(r0 + 8) {
        for c in c0..<columns { dst[c * ldd + r] = src[r * lds + c] * scale }
      }
      r0 += 8
    }
  #endif
  for r in r0..<rows {
    for c in 0..<columns { dst[c * ldd + r] = src[r * lds + c] * scale }
  }
}

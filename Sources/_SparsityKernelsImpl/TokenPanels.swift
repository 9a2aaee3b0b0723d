// The activation-major family (DESIGN §5 (b), reference/performance.md §3.1 (A)): pack xᵀ
// into panels of 64 tokens (`P[kk·64 + j] = x[m0 + j][kk]`), and for every output row
// accumulate `yᵀ[n, m0..<m0+64] += w · P[kk]` over the row's kept weights — one broadcast of
// the weight and 8 vector FMAs with loads of the panel row per nonzero. The 8 accumulators
// of a row stay in registers over a k-block; the tile of yᵀ is transposed into y at the end.

/// Tokens per panel (8 ymm accumulators).
package let panelTokens = 64

/// A sparse weight whose rows can be multiplied into a 64-token panel.
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
  /// Output rows split into `parts` ranges of about equal work.
  func rowRanges(parts: Int) -> [Range<Int>]
  /// `acc[0..<64] += Σ_{kept (kk, w) of row, kk in block} w · panel[kk]`.
  func accumulate(row: Int, block: Int, panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>)
}

/// Packs `x[m0 ..< m0+64][0 ..< k]` transposed into `dst[paddedK][64]`, zero-padded.
package func packTokenPanel(
  x: UnsafePointer<Float>, m: Int, k: Int, paddedK: Int, m0: Int, into dst: UnsafeMutablePointer<Float>
) {
  let tokens = Swift.min(panelTokens, m - m0)
  if tokens < panelTokens || paddedK > k {
    dst.update(repeating: 0, count: paddedK * panelTokens)
  }
  // 8×8 blocks: read 8 rows of x, write 8 panel rows.
  var j = 0
  while j < tokens {
    let rows = Swift.min(8, tokens - j)
    for kk in 0..<k {
      let o = dst + kk * panelTokens + j
      for t in 0..<rows { o[t] = x[(m0 + j + t) * k + kk] }
    }
    j += 8
  }
}

/// `y = x · Wᵀ + bias` for any ``TokenPanelWeight``: panels packed in parallel, output rows
/// split across `workers`, each worker running 64-token × `rowChunk`-row tiles of yᵀ.
package func tokenPanelLinear<W: TokenPanelWeight>(
  weight: W, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let rowChunk = weight.rowChunk
  let (n, k, kp) = (weight.n, weight.k, weight.paddedK)
  guard m > 0, n > 0 else { return }
  let tiles = (m + panelTokens - 1) / panelTokens
  let panelSize = kp * panelTokens
  let blocks = weight.kBlock == 0 ? 0 : (kp + weight.kBlock - 1) / weight.kBlock
  Scratch.with(count: tiles * panelSize) { panels in
    let parts = Swift.min(workers, tiles)
    let pp = Unchecked(panels)
    parallelFor(parts) { w in
      for t in (tiles * w / parts)..<(tiles * (w + 1) / parts) {
        packTokenPanel(x: x, m: m, k: k, paddedK: kp, m0: t * panelTokens, into: pp.value + t * panelSize)
      }
    }
    let rowParts = Swift.max(1, Swift.min(workers, n))
    let ranges = weight.rowRanges(parts: rowParts)
    let out = Unchecked(y)
    parallelFor(rowParts) { w in
      let y = out.value
      let range = ranges[w]
      Scratch.with(count: rowChunk * panelTokens) { yt in
        for t in 0..<tiles {
          let panel = UnsafePointer(pp.value + t * panelSize)
          let m0 = t * panelTokens
          let tokens = Swift.min(panelTokens, m - m0)
          var n0 = range.lowerBound
          while n0 < range.upperBound {
            let rows = Swift.min(rowChunk, range.upperBound - n0)
            yt.update(repeating: 0, count: rows * panelTokens)
            for b in 0..<blocks {
              for r in 0..<rows {
                weight.accumulate(row: n0 + r, block: b, panel: panel, acc: yt + r * panelTokens)
              }
            }
            storeTransposed(
              yt: yt, rows: rows, tokens: tokens, y: y + m0 * n + n0, ldy: n, bias: bias.map { $0 + n0 })
            n0 += rows
          }
        }
      }
    }
  }
}

/// `y[j][r] = yt[r][j] (+ bias[r])` for `r < rows`, `j < tokens`.
@inline(never)
package func storeTransposed(
  yt: UnsafePointer<Float>, rows: Int, tokens: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
  bias: UnsafePointer<Float>?
) {
  for j in 0..<tokens {
    let out = y + j * ldy
    if let bias {
      for r in 0..<rows { out[r] = yt[r * panelTokens + j] + bias[r] }
    } else {
      for r in 0..<rows { out[r] = yt[r * panelTokens + j] }
    }
  }
}

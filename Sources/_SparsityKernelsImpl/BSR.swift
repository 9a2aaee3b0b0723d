/// A block-sparse weight packed for ``bsrLinear``.
///
/// Blocks are `r × c` (output rows × input columns) with `r` a multiple of 8. Each block row
/// is cut into sub-panels of `width` (16, or 8 when `r` is not a multiple of 16) output
/// columns; a sub-panel stores its blocks back to back, each k-major (`[c][width]`), so the
/// block-sparse product is the dense 6×16 microkernel run over the nonzero blocks only, with
/// the accumulators in registers across a whole block row.
package final class PackedBSRWeight: @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let r: Int
  package let c: Int
  package let width: Int
  /// `n / r + 1` offsets into `kStarts`.
  package let rowOffsets: [Int32]
  /// First input column of every stored block (`blockColumn · c`), plus one trailing 0 so the
  /// array is never empty.
  package let kStarts: [Int32]
  package let data: FloatBuffer

  /// Packs BSR arrays: `values` is `[blocks][r][c]` row-major, `columnIndices` the block columns.
  package init(
    n: Int, k: Int, r: Int, c: Int, rowOffsets: [Int32], columnIndices: [Int32],
    values: UnsafePointer<Float>
  ) {
    precondition(r % 8 == 0 && n % r == 0 && k % c == 0, "unsupported BSR block \(r)x\(c) for [\(n), \(k)]")
    self.n = n
    self.k = k
    self.r = r
    self.c = c
    width = r % 16 == 0 ? 16 : 8
    self.rowOffsets = rowOffsets
    kStarts = columnIndices.map { $0 * Int32(c) } + [0]
    data = FloatBuffer(count: columnIndices.count * r * c)
    let d = data.pointer
    let subPanels = r / width
    let w = width
    for br in 0..<(n / r) {
      let lo = Int(rowOffsets[br])
      let count = Int(rowOffsets[br + 1]) - lo
      for s in 0..<subPanels {
        let base = d + lo * r * c + s * count * c * w
        for b in 0..<count {
          let block = values + (lo + b) * r * c
          for kk in 0..<c {
            for j in 0..<w { base[(b * c + kk) * w + j] = block[(s * w + j) * c + kk] }
          }
        }
      }
    }
  }

  package var blockCount: Int { kStarts.count - 1 }
  /// Bytes of values and indices (4-byte offsets and starts).
  package var byteCount: Int { blockCount * r * c * 4 + 4 * (rowOffsets.count + blockCount) }

  @inline(__always)
  func subPanel(_ br: Int, _ s: Int) -> (data: UnsafePointer<Float>, count: Int, first: Int) {
    let lo = Int(rowOffsets[br])
    let count = Int(rowOffsets[br + 1]) - lo
    return (UnsafePointer(data.pointer + lo * r * c + s * count * c * width), count, lo)
  }

  /// Writes the dense row-major `[n, k]` weight.
  package func unpack(into w: UnsafeMutablePointer<Float>) {
    w.update(repeating: 0, count: n * k)
    for br in 0..<(n / r) {
      for s in 0..<(r / width) {
        let (p, count, lo) = subPanel(br, s)
        for b in 0..<count {
          let k0 = Int(kStarts[lo + b])
          for kk in 0..<c {
            for j in 0..<width { w[(br * r + s * width + j) * k + k0 + kk] = p[(b * c + kk) * width + j] }
          }
        }
      }
    }
  }

  /// Block rows split into `parts` ranges of about equal work (blocks, plus one per row).
  func rowRanges(parts: Int) -> [Range<Int>] {
    let rows = n / r
    return balancedRanges(count: rows, parts: parts) { Int(rowOffsets[$0]) + $0 }
  }
}

/// `y = x · Wᵀ + bias` for a block-sparse weight: activations packed into 6-row panels, the
/// 6×16 (or 6×8) microkernel over each block row's nonzero blocks — with AVX-512, 12×32 tiles
/// over pairs of sub-panels for blocks of 32+ rows; threads split block rows by nonzero count.
package func bsrLinear(
  weight: PackedBSRWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k) = (weight.n, weight.k)
  guard m > 0, n > 0 else { return }
  let mp = (m + 5) / 6
  let width = weight.width
  withPaddedBias(bias, count: n, padded: n + 16) { biasP in
    withActivationPanels(x: x, m: m, k: k, workers: workers) { ap in
      // Rows per pass: the activation block a pass re-reads for every block row stays in L2.
      let chunk = Swift.max(4, (256 * 1024) / Swift.max(1, k * 24))
      // Work items: row panels when the packed activations outweigh the weight (large M: each
      // item streams the weight once and only its own activations), else block rows.
      let items: [(panels: Range<Int>, blockRows: Range<Int>)]
      if mp >= 2 * workers * chunk && mp * k * 24 > weight.byteCount {
        let parts = Swift.min(workItems(workers), mp / chunk)
        items = (0..<parts).map { ((mp * $0 / parts)..<(mp * ($0 + 1) / parts), 0..<(n / weight.r)) }
      } else {
        let parts = Swift.max(1, Swift.min(workItems(workers), n / weight.r))
        items = weight.rowRanges(parts: parts).map { (0..<mp, $0) }
      }
      let out = Unchecked(y)
      parallelFor(items.count) { w in
        let y = out.value
        var ic = items[w].panels.lowerBound
        while ic < items[w].panels.upperBound {
          let icEnd = Swift.min(ic + chunk, items[w].panels.upperBound)
          for br in items[w].blockRows {
            weight.kStarts.withUnsafeBufferPointer { starts in
              // One sub-panel × one row panel (6×16 or 6×8, partial rows through a scratch tile).
              func tile(_ s: Int, _ ir: Int) {
                let (panel, count, lo) = weight.subPanel(br, s)
                let col = br * weight.r + s * width
                withTile(
                  rows: Swift.min(6, m - ir * 6), columns: width, c: y + ir * 6 * n + col, ldc: n, accumulate: false,
                  fullColumns: width
                ) { c, ldc in
                  if width == 16 {
                    kernel6x16(
                      segments: count, length: weight.c, kStarts: starts.baseAddress! + lo, a: ap + ir * k * 6,
                      b: panel, c: c, ldc: ldc, accumulate: false, bias: biasP.map { $0 + col })
                  } else {
                    kernel6x8(
                      segments: count, length: weight.c, kStarts: starts.baseAddress! + lo, a: ap + ir * k * 6,
                      b: panel, c: c, ldc: ldc, accumulate: false, bias: biasP.map { $0 + col })
                  }
                }
              }
              let subPanels = weight.r / width
              var s = 0
              #if SPARSITY_ISA_AVX512
                // Blocks of 32+ rows: two sub-panels share the blocks' columns, so 12×32 tiles
                // (timed interleaved against 6×16: 0.97–1.27×, median 1.11×, blocks 32/64 at
                // 80/90%, ViT-L shapes, M = 128 and 1,024).
                while width == 16 && s + 1 < subPanels {
                  let (p0, count, lo) = weight.subPanel(br, s)
                  let p1 = weight.subPanel(br, s + 1).data
                  let col = br * weight.r + s * width
                  var ir = ic
                  while ir < icEnd {
                    if ir + 1 < icEnd && (ir + 2) * 6 <= m {
                      kernel12x32(
                        segments: count, length: weight.c, kStarts: starts.baseAddress! + lo, a0: ap + ir * k * 6,
                        a1: ap + (ir + 1) * k * 6, b0: p0, b1: p1, c: y + ir * 6 * n + col, ldc: n, accumulate: false,
                        bias: biasP.map { $0 + col })
                      ir += 2
                    } else {
                      tile(s, ir)
                      tile(s + 1, ir)
                      ir += 1
                    }
                  }
                  s += 2
                }
              #endif
              for s in s..<subPanels {
                for ir in ic..<icEnd { tile(s, ir) }
              }
            }
          }
          ic = icEnd
        }
      }
    }
  }
}

/// ``bsrLinear`` one activation row at a time with the GEMV microkernels (M = 1 and tiny M).
package func bsrLinearRows(
  weight: PackedBSRWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k) = (weight.n, weight.k)
  guard m > 0, n > 0 else { return }
  let width = weight.width
  withPaddedBias(bias, count: n, padded: n + 16) { biasP in
    let parts = Swift.max(1, Swift.min(workItems(workers), n / weight.r))
    let ranges = weight.rowRanges(parts: parts)
    let out = Unchecked(y)
    parallelFor(parts) { w in
      let y = out.value
      weight.kStarts.withUnsafeBufferPointer { starts in
        for br in ranges[w] {
          for s in 0..<(weight.r / width) {
            let (panel, count, lo) = weight.subPanel(br, s)
            let col = br * weight.r + s * width
            for row in 0..<m {
              if width == 16 {
                kernel1x16(
                  segments: count, length: weight.c, kStarts: starts.baseAddress! + lo, x: x + row * k, b: panel,
                  c: y + row * n + col, accumulate: false, bias: biasP.map { $0 + col })
              } else {
                kernel1x8(
                  segments: count, length: weight.c, kStarts: starts.baseAddress! + lo, x: x + row * k, b: panel,
                  c: y + row * n + col, accumulate: false, bias: biasP.map { $0 + col })
              }
            }
          }
        }
      }
    }
  }
}

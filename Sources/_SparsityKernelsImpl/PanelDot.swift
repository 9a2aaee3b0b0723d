import SparsityCore

// The driver shared by the kernels whose weights are 16-column panels of a dot-product
// instruction's operand (int8 `vpdpbusd`, bf16 `vdpbf16ps`): activations prepared once per call,
// 6 × 32 register tiles over k-blocks, or one row × 64 columns for decode.

/// A weight packed in panels of 16 output columns for a dot-product instruction that consumes a
/// few consecutive inputs per 32-bit lane (`vpdpbusd`: 4 int8, `vdpbf16ps`: 2 bf16), walked by
/// ``panelDotLinear(weight:x:m:y:bias:workers:)`` in k-steps of ``inputsPerStep`` inputs: int8
/// dense (4 inputs per step) and 2:4 (8), bf16 dense (2). The weight type says how activations
/// are prepared (quantized, rounded) and how 32-bit sums become outputs.
package protocol PanelDotWeight: AnyObject, Sendable {
  var n: Int { get }
  var k: Int { get }
  var panels: Int { get }
  /// k-steps per row: `⌈k / inputsPerStep⌉`.
  var steps: Int { get }
  /// Inputs per k-step.
  static var inputsPerStep: Int { get }
  /// k-steps per k-block of the GEMM.
  static var stepsPerBlock: Int { get }
  /// Bytes of one prepared activation.
  static var activationBytes: Int { get }
  /// Bytes of one prepared row of `paddedK` inputs, before rounding up to 64: the activations,
  /// and whatever per-row data follows them (the default: the activations only).
  static func preparedRowBytes(paddedK: Int) -> Int
  /// Prepares activation rows `x [m, k]` into the kernels' operand: row stride `ldq` elements
  /// (elements `k..<ldq` are the operand's zero), a per-row scale where the form has one.
  static func prepareRows(
    x: UnsafePointer<Float>, m: Int, k: Int, ldq: Int, into: UnsafeMutableRawPointer, scales: UnsafeMutablePointer<Float>)
  /// Writes the outputs of a tile's 32-bit sums (row stride `ldacc`): the valid `rows × columns`
  /// part of `y` at (`row`, `column`), with `bias` (padded) added.
  func finish(
    acc: UnsafeMutablePointer<Int32>, ldacc: Int, a: PreparedActivations, row: Int, rows: Int, column: Int, columns: Int,
    y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>?)
  /// Bytes per k-step and panel that ``prepare(panel:steps:into:)`` writes (0: nothing to prepare).
  static var preparedBytesPerStep: Int { get }
  /// Writes what every row tile of a k-block reuses for `panel` (the 2:4 shuffle controls).
  func prepare(panel: Int, steps: Range<Int>, into: UnsafeMutableRawPointer)
  /// `acc[i][j] (+)= Σ xq[row + i][k] · wq[16·panel + j][k]` over the k-steps `steps` for a
  /// 6 × 32 tile of two panels (the first block writes, later ones add; rows past `rows` and
  /// a missing second panel contribute sums that are not used); `prepared` holds what
  /// ``prepare(panel:steps:into:)`` wrote for the two panels, one after the other.
  func tile(
    a: PreparedActivations, row: Int, rows: Int, panel: Int, steps: Range<Int>, prepared: UnsafeRawPointer,
    acc: UnsafeMutablePointer<Int32>)
  /// `acc[16p + j] = Σ_k xq[k] · wq[16·(4·quad + p) + j][k]` for one activation row and up to four panels.
  func rowQuad(a: UnsafeRawPointer, quad: Int, acc: UnsafeMutablePointer<Int32>)
}

extension PanelDotWeight {
  package static func preparedRowBytes(paddedK: Int) -> Int { paddedK * activationBytes }
}

/// `y[row + i][column + j] = sums[i][j] + bias[column + j]` for the valid part of a tile whose
/// 32-bit sums are fp32 (row stride `ldacc`): the epilogue of the bf16 and grouped int8 forms.
/// Without a bias the sums are stored as they are (−0 stays −0).
package func storeFloatSums(
  _ acc: UnsafeMutablePointer<Int32>, ldacc: Int, row: Int, rows: Int, column: Int, columns: Int, y: UnsafeMutablePointer<Float>,
  ldy: Int, bias: UnsafePointer<Float>?
) {
  typealias V = SIMD16<Float>
  let sums = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
  for i in 0..<rows {
    let out = y + (row + i) * ldy + column
    let s = sums + i * ldacc
    var j = 0
    // 16 columns at a time (the bias is padded to whole panels).
    while j + 16 <= columns {
      var v = UnsafeRawPointer(s + j).loadUnaligned(as: V.self)
      if let bias { v += UnsafeRawPointer(bias + column + j).loadUnaligned(as: V.self) }
      UnsafeMutableRawPointer(out + j).storeBytes(of: v, as: V.self)
      j += 16
    }
    while j < columns {
      out[j] = bias.map { s[j] + $0[column + j] } ?? s[j]
      j += 1
    }
  }
}

/// The activations of one call prepared for a weight's kernels (``PanelDotWeight/prepareRows``),
/// rows padded with the operand's zero to whole k-steps, and a scale per row where there is one.
package struct PreparedActivations {
  let rows: UnsafeMutableRawPointer
  /// Bytes per row.
  let stride: Int
  let scales: UnsafeMutablePointer<Float>
}

/// Prepares `x [m, k]` for `W` into scratch memory (rows padded to `paddedK`) and runs `body` with it.
private func withPreparedActivations<W: PanelDotWeight, R>(
  _: W.Type, x: UnsafePointer<Float>, m: Int, k: Int, paddedK: Int, workers: Int, _ body: (PreparedActivations) -> R
) -> R {
  let stride = (W.preparedRowBytes(paddedK: paddedK) + 63) / 64 * 64
  let floats = (m * stride + 3) / 4 + m
  return Scratch.with(count: floats) { scratch in
    let raw = UnsafeMutableRawPointer(scratch)
    let scales = scratch + (m * stride + 3) / 4
    let parts = Swift.max(1, Swift.min(workers, m / 8))
    let shared = Unchecked((raw, scales))
    parallelFor(parts) { w in
      let (raw, scales) = shared.value
      let rows = (m * w / parts)..<(m * (w + 1) / parts)
      W.prepareRows(
        x: x + rows.lowerBound * k, m: rows.count, k: k, ldq: stride / W.activationBytes, into: raw + rows.lowerBound * stride,
        scales: scales + rows.lowerBound)
    }
    return body(PreparedActivations(rows: raw, stride: stride, scales: scales))
  }
}

/// `y = x · Wᵀ + bias` for a ``PanelDotWeight`` (W8A8: torchao's dynamic recipe; bf16), on
/// `workers` threads: 6 × 32 register tiles; per pair of column panels, k-blocks
/// (``PanelDotWeight/stepsPerBlock``: 384 inputs) whose slice of the weight (12–24 KiB) stays in
/// L1 while every row tile passes over it, the tiles' 32-bit sums waiting in a buffer between blocks.
package func panelDotLinear<W: PanelDotWeight>(
  weight: W, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, steps, np) = (weight.n, weight.steps, weight.panels)
  guard m > 0, n > 0 else { return }
  withPaddedBias(bias, count: n, padded: np * 16) { biasP in
    withPreparedActivations(W.self, x: x, m: m, k: weight.k, paddedK: steps * W.inputsPerStep, workers: workers) { a in
      let tiles = (m + 5) / 6
      let pairs = (np + 1) / 2
      // Split column-panel pairs when there are enough, else row tiles.
      let splitColumns = pairs >= 2 * workers || tiles < workers
      let parts = Swift.max(1, Swift.min(workItems(workers), splitColumns ? pairs : tiles))
      let out = Unchecked(y)
      parallelFor(parts) { w in
        let cr = splitColumns ? (pairs * w / parts)..<(pairs * (w + 1) / parts) : 0..<pairs
        let rr = splitColumns ? 0..<tiles : (tiles * w / parts)..<(tiles * (w + 1) / parts)
        let preparedBytes = W.stepsPerBlock * W.preparedBytesPerStep
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: rr.count * 192 + (2 * preparedBytes + 3) / 4) { sums in
          let acc = sums.baseAddress!
          let prepared = UnsafeMutableRawPointer(acc + rr.count * 192)
          for pair in cr {
            var s0 = 0
            while s0 < steps {
              let length = Swift.min(W.stepsPerBlock, steps - s0)
              if preparedBytes > 0 {
                weight.prepare(panel: pair * 2, steps: s0..<s0 + length, into: prepared)
                weight.prepare(panel: Swift.min(pair * 2 + 1, np - 1), steps: s0..<s0 + length, into: prepared + preparedBytes)
              }
              for (t, tile) in rr.enumerated() {
                weight.tile(
                  a: a, row: tile * 6, rows: Swift.min(6, m - tile * 6), panel: pair * 2, steps: s0..<s0 + length,
                  prepared: UnsafeRawPointer(prepared), acc: acc + t * 192)
              }
              s0 += length
            }
            for (t, tile) in rr.enumerated() {
              weight.finish(
                acc: acc + t * 192, ldacc: 32, a: a, row: tile * 6, rows: Swift.min(6, m - tile * 6), column: pair * 32,
                columns: Swift.min(32, n - pair * 32), y: out.value, ldy: n, bias: biasP)
            }
          }
        }
      }
    }
  }
}

/// ``panelDotLinear(weight:x:m:y:bias:workers:)`` one activation row at a time (decode): each
/// thread streams its share of the weight panels once per row, four panels (64 columns) at a time.
package func panelDotLinearRows<W: PanelDotWeight>(
  weight: W, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, np) = (weight.n, weight.panels)
  guard m > 0, n > 0 else { return }
  withPaddedBias(bias, count: n, padded: np * 16) { biasP in
    withPreparedActivations(W.self, x: x, m: m, k: weight.k, paddedK: weight.steps * W.inputsPerStep, workers: 1) { a in
      let quads = (np + 3) / 4
      let parts = Swift.max(1, Swift.min(workItems(workers), quads))
      let out = Unchecked(y)
      parallelFor(parts) { w in
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: 64) { acc in
          for quad in (quads * w / parts)..<(quads * (w + 1) / parts) {
            for r in 0..<m {
              weight.rowQuad(a: UnsafeRawPointer(a.rows + r * a.stride), quad: quad, acc: acc.baseAddress!)
              let column = quad * 64
              weight.finish(
                acc: acc.baseAddress!, ldacc: 64, a: a, row: r, rows: 1, column: column, columns: Swift.min(64, n - column),
                y: out.value, ldy: n, bias: biasP)
            }
          }
        }
      }
    }
  }
}


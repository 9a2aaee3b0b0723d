/// Where one attention call reads and writes: row `r` (= sequence · tokens + token) of head `h`
/// starts at `base + r · rowStride + h · headDimension` in each of q, k, v and the output, so
/// q, k and v may be slices of one fused projection.
package struct AttentionOperands {
  package var q, k, v: UnsafePointer<Float>
  package var out: UnsafeMutablePointer<Float>
  package var qkvRowStride: Int
  package var outRowStride: Int

  package init(
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, qkvRowStride: Int,
    out: UnsafeMutablePointer<Float>, outRowStride: Int
  ) {
    (self.q, self.k, self.v, self.out) = (q, k, v, out)
    self.qkvRowStride = qkvRowStride
    self.outRowStride = outRowStride
  }
}

/// `out = softmax(q·kᵀ / √headDimension) · v` for every (sequence, head) — keys whose
/// `keyMask[sequence · tokens + key]` is 0 get a score of −10⁹ — on the GEMM microkernel, in
/// the transposed orientation so that the softmax runs down columns, 16 queries per vector pair
/// (no horizontal reductions, no repacking of the probabilities):
/// 1. `sᵀ = k · qᵀ`: k in 6-key panels, q (pre-scaled) in 16-query panels; each 6×16 tile lands
///    in `s[queryPanel][key][16]`, which is already the layout of a GEMM weight panel;
/// 2. per query panel, the column maximum, `e^(s − max)` and the column sums;
/// 3. `outᵀ = vᵀ · e`: vᵀ in 6-dimension panels against `e` as it lies; each 6×16 tile is
///    scaled by 1/sum per query and scattered into `out`.
/// Work items are (sequence, head) pairs on `workers` threads; scratch is reused.
package func attentionForward(
  _ o: AttentionOperands, batch: Int, tokens t: Int, heads: Int, headDimension hd: Int,
  keyMask: UnsafePointer<Int32>?, workers: Int
) {
  guard batch > 0, t > 0, heads > 0, hd > 0 else { return }
  let items = batch * heads
  let queryPanels = (t + 15) / 16
  let keyPanels = (t + 5) / 6
  let dimensionPanels = (hd + 5) / 6
  let keyRows = keyPanels * 6
  let kSize = keyPanels * hd * 6
  let qSize = queryPanels * hd * 16
  let sSize = queryPanels * keyRows * 16
  let vSize = dimensionPanels * t * 6
  let queryColumns = queryPanels * 16
  let contextSize = dimensionPanels * 6 * queryColumns
  let scale = 1 / Float(hd).squareRoot()
  let parts = Swift.max(1, Swift.min(workItems(workers), items))
  let operands = Unchecked(o)
  let mask = keyMask.map(Unchecked.init)
  parallelFor(parts) { w in
    let o = operands.value
    Scratch.with(count: kSize + qSize + sSize + vSize + queryColumns + contextSize) { scratch in
      let kp = scratch, qp = kp + kSize, s = qp + qSize, vp = s + sSize, inverse = vp + vSize
      let context = inverse + queryColumns
      // Padding keys, queries and dimensions stay zero.
      scratch.update(repeating: 0, count: kSize + qSize + sSize + vSize)
      for item in (items * w / parts)..<(items * (w + 1) / parts) {
        let (n, h) = (item / heads, item % heads)
        let first = n * t
        let column = h * hd
        for qpanel in 0..<queryPanels {
          let i0 = qpanel * 16
          transpose(
            o.q + (first + i0) * o.qkvRowStride + column, rowStride: o.qkvRowStride, rows: Swift.min(16, t - i0),
            columns: hd, into: qp + qpanel * hd * 16, rowStride: 16, scale: scale)
        }
        for i in 0..<t {
          let row = (first + i) * o.qkvRowStride + column
          let (k, v) = (o.k + row, o.v + row)
          let kd = kp + (i / 6) * hd * 6 + i % 6
          for j in 0..<hd { kd[j * 6] = k[j] }
          var j = 0
          while j < hd {
            let vd = vp + (j / 6) * t * 6 + i * 6
            for jj in 0..<Swift.min(6, hd - j) { vd[jj] = v[j + jj] }
            j += 6
          }
        }
        for kpanel in 0..<keyPanels {
          for qpanel in 0..<queryPanels {
            kernel6x16(
              segments: 1, length: hd, kStarts: nil, a: kp + kpanel * hd * 6, b: qp + qpanel * hd * 16,
              c: s + (qpanel * keyRows + kpanel * 6) * 16, ldc: 16, accumulate: false, bias: nil)
          }
        }
        if let mask {
          for key in 0..<t where mask.value[first + key] == 0 {
            for qpanel in 0..<queryPanels {
              let row = s + (qpanel * keyRows + key) * 16
              store8(Vec8(repeating: -1e9), row)
              store8(Vec8(repeating: -1e9), row + 8)
            }
          }
        }
        for qpanel in 0..<queryPanels {
          softmaxColumns16(s + qpanel * keyRows * 16, keys: t, inverseSums: inverse + qpanel * 16)
        }
        // outᵀ [dimensions padded to 6][queries padded to 16], scaled per query, transposed into out.
        for dpanel in 0..<dimensionPanels {
          for qpanel in 0..<queryPanels {
            kernel6x16(
              segments: 1, length: t, kStarts: nil, a: vp + dpanel * t * 6, b: s + qpanel * keyRows * 16,
              c: context + dpanel * 6 * queryColumns + qpanel * 16, ldc: queryColumns, accumulate: false, bias: nil)
          }
        }
        for j in 0..<hd {
          let row = context + j * queryColumns
          var i = 0
          while i < queryColumns {
            store8(load8(row + i) * load8(inverse + i), row + i)
            i += 8
          }
        }
        transpose(
          context, rowStride: queryColumns, rows: hd, columns: t, into: o.out + first * o.outRowStride + column,
          rowStride: o.outRowStride)
      }
    }
  }
}

/// For a block `s[key][16]` of scores: every column's maximum, then `s ← e^(s − max)` and
/// `inverseSums[j] = 1 / Σ_key s[key][j]`.
@inline(never)
package func softmaxColumns16(_ s: UnsafeMutablePointer<Float>, keys: Int, inverseSums: UnsafeMutablePointer<Float>) {
  var m0 = Vec8(repeating: -.infinity), m1 = m0
  for key in 0..<keys {
    let a = load8(s + key * 16), b = load8(s + key * 16 + 8)
    m0.replace(with: a, where: a .> m0)
    m1.replace(with: b, where: b .> m1)
  }
  var s0 = Vec8(), s1 = Vec8()
  for key in 0..<keys {
    let row = s + key * 16
    let e0 = exp8(load8(row) - m0), e1 = exp8(load8(row + 8) - m1)
    store8(e0, row)
    store8(e1, row + 8)
    s0 += e0
    s1 += e1
  }
  store8(1 / s0, inverseSums)
  store8(1 / s1, inverseSums + 8)
}

#if canImport(Glibc)
  import Glibc
#endif

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

/// Where one causal attention call reads and writes: query row `i` of head `h` starts at
/// `q + i · qRowStride + h · headDimension`, key/value row `j` of kv head `g` at
/// `k + j · kvRowStride + g · headDimension` (and the same in `v`), output row `i` of head `h` at
/// `out + i · outRowStride + h · headDimension`.
package struct CausalAttentionOperands {
  package var q, k, v: UnsafePointer<Float>
  package var out: UnsafeMutablePointer<Float>
  package var qRowStride, kvRowStride, outRowStride: Int

  package init(
    q: UnsafePointer<Float>, qRowStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, kvRowStride: Int,
    out: UnsafeMutablePointer<Float>, outRowStride: Int
  ) {
    (self.q, self.k, self.v, self.out) = (q, k, v, out)
    (self.qRowStride, self.kvRowStride, self.outRowStride) = (qRowStride, kvRowStride, outRowStride)
  }
}

/// Causal grouped-query attention of `queries` new tokens at positions `offset ..< offset + queries`
/// over `offset + queries` keys (a decoder's cache followed by the new tokens): query `i` sees keys
/// `0 ... offset + i`; query head `h` reads kv head `h / (heads / kvHeads)`.
///
/// Many queries (prefill) run on the GEMM microkernel as ``attentionForward(_:batch:tokens:heads:headDimension:keyMask:workers:)``
/// does, one 16-query panel at a time over only the keys the panel can see; a few queries
/// (decode) run as dot products straight from the cache.
package func causalAttentionForward(
  _ o: CausalAttentionOperands, queries t: Int, offset p0: Int, heads: Int, kvHeads: Int, headDimension hd: Int,
  workers: Int
) {
  guard t > 0, heads > 0, kvHeads > 0, hd > 0 else { return }
  let keys = p0 + t
  let group = heads / kvHeads
  let scale = 1 / Float(hd).squareRoot()
  let operands = Unchecked(o)
  if t < 8 {
    // One head per work item; scores for all keys of one query at a time.
    let parts = Swift.max(1, Swift.min(workers, heads))
    parallelFor(parts) { w in
      let o = operands.value
      Scratch.with(count: keys + hd) { scratch in
        let scores = scratch, context = scratch + keys
        for h in (heads * w / parts)..<(heads * (w + 1) / parts) {
          let (qColumn, kvColumn) = (h * hd, (h / group) * hd)
          for i in 0..<t {
            let q = o.q + i * o.qRowStride + qColumn
            let visible = p0 + i + 1
            var top = -Float.infinity
            for j in 0..<visible {
              let s = dot(q, o.k + j * o.kvRowStride + kvColumn, count: hd) * scale
              scores[j] = s
              top = Swift.max(top, s)
            }
            var sum: Float = 0
            for j in 0..<visible {
              let e = expf(scores[j] - top)
              scores[j] = e
              sum += e
            }
            context.update(repeating: 0, count: hd)
            for j in 0..<visible {
              axpy(scores[j], o.v + j * o.kvRowStride + kvColumn, context, count: hd)
            }
            let inverse = 1 / sum
            let out = o.out + i * o.outRowStride + qColumn
            for d in 0..<hd { out[d] = context[d] * inverse }
          }
        }
      }
    }
    return
  }
  let queryPanels = (t + 15) / 16
  let keyPanels = (keys + 5) / 6
  let dimensionPanels = (hd + 5) / 6
  let keyRows = keyPanels * 6
  let kSize = keyPanels * hd * 6
  let qSize = hd * 16
  let sSize = keyRows * 16
  let vSize = dimensionPanels * keyRows * 6
  let contextSize = dimensionPanels * 6 * 16
  let parts = Swift.max(1, Swift.min(workItems(workers), heads))
  parallelFor(parts) { w in
    let o = operands.value
    Scratch.with(count: kSize + qSize + sSize + vSize + 16 + contextSize) { scratch in
      let kp = scratch, qp = kp + kSize, s = qp + qSize, vp = s + sSize, inverse = vp + vSize
      let context = inverse + 16
      // Padding keys, queries and dimensions stay zero.
      scratch.update(repeating: 0, count: kSize + qSize + sSize + vSize)
      for h in (heads * w / parts)..<(heads * (w + 1) / parts) {
        let (qColumn, kvColumn) = (h * hd, (h / group) * hd)
        // Keys as 6-key panels [panel][dimension][6], values as 6-dimension panels [panel][key][6].
        for j in 0..<keys {
          let row = j * o.kvRowStride + kvColumn
          let (k, v) = (o.k + row, o.v + row)
          let kd = kp + (j / 6) * hd * 6 + j % 6
          for d in 0..<hd { kd[d * 6] = k[d] }
          var d = 0
          while d < hd {
            let vd = vp + (d / 6) * keyRows * 6 + j * 6
            for dd in 0..<Swift.min(6, hd - d) { vd[dd] = v[d + dd] }
            d += 6
          }
        }
        for qpanel in 0..<queryPanels {
          let i0 = qpanel * 16
          let rows = Swift.min(16, t - i0)
          // The keys this panel's last query sees.
          let seen = Swift.min(keys, p0 + i0 + 16)
          if rows < 16 { qp.update(repeating: 0, count: qSize) }
          transpose(
            o.q + i0 * o.qRowStride + qColumn, rowStride: o.qRowStride, rows: rows, columns: hd, into: qp, rowStride: 16,
            scale: scale)
          for kpanel in 0..<((seen + 5) / 6) {
            kernel6x16(
              segments: 1, length: hd, kStarts: nil, a: kp + kpanel * hd * 6, b: qp, c: s + kpanel * 6 * 16, ldc: 16,
              accumulate: false, bias: nil)
          }
          // Query i0 + c (position p0 + i0 + c) does not see key j > p0 + i0 + c.
          for j in (p0 + i0 + 1)..<Swift.max(p0 + i0 + 1, seen) {
            let row = s + j * 16
            for c in 0..<Swift.min(16, j - p0 - i0) { row[c] = -.infinity }
          }
          softmaxColumns16(s, keys: seen, inverseSums: inverse)
          for dpanel in 0..<dimensionPanels {
            kernel6x16(
              segments: 1, length: seen, kStarts: nil, a: vp + dpanel * keyRows * 6, b: s, c: context + dpanel * 6 * 16,
              ldc: 16, accumulate: false, bias: nil)
          }
          for d in 0..<hd {
            let row = context + d * 16
            store8(load8(row) * load8(inverse), row)
            store8(load8(row + 8) * load8(inverse + 8), row + 8)
          }
          transpose(
            context, rowStride: 16, rows: hd, columns: rows, into: o.out + i0 * o.outRowStride + qColumn,
            rowStride: o.outRowStride)
        }
      }
    }
  }
}

@inline(__always)
private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
  var acc0 = Vec8(), acc1 = Vec8()
  var d = 0
  while d + 16 <= count {
    acc0 = fma(acc0, load8(a + d), load8(b + d))
    acc1 = fma(acc1, load8(a + d + 8), load8(b + d + 8))
    d += 16
  }
  while d + 8 <= count {
    acc0 = fma(acc0, load8(a + d), load8(b + d))
    d += 8
  }
  var sum = (acc0 + acc1).sum()
  while d < count {
    sum += a[d] * b[d]
    d += 1
  }
  return sum
}

@inline(__always)
private func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
  let a = Vec8(repeating: alpha)
  var d = 0
  while d + 8 <= count {
    store8(fma(load8(y + d), a, load8(x + d)), y + d)
    d += 8
  }
  while d < count {
    y[d] += alpha * x[d]
    d += 1
  }
}

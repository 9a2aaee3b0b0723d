/// An unstructured sparse weight packed for the token-panel kernel (``tokenPanelLinear``) and
/// the row-wise SpMV: CSR cut into column blocks of `kBlock` inputs, block-major, with 16-bit
/// column indices local to the block and 4-byte values (6 bytes per nonzero).
package final class PackedCSRWeight: TokenPanelWeight, @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let kBlock: Int
  package let blockCount: Int
  /// `blockCount · n + 1` offsets: entries of (block b, row r) are `offsets[b·n + r] ..< offsets[b·n + r + 1]`.
  package let offsets: UnsafeMutablePointer<Int32>
  /// Column within the block of every nonzero (one spare slot so the buffer is never empty).
  package let columns: UnsafeMutablePointer<UInt16>
  package let values: UnsafeMutablePointer<Float>
  package let nonzeroCount: Int
  /// Nonzeros per row, for balancing.
  private let rowPrefix: [Int]

  package var paddedK: Int { k }
  /// 128 rows per pass (measured better than 32 on Zen 3: the panel slice is reused more).
  package var rowChunk: Int { 128 }

  /// Packs CSR arrays (`rowOffsets` `n + 1`, `columnIndices`, `values` f32).
  package init(
    n: Int, k: Int, rowOffsets: [Int32], columnIndices: [Int32], values: UnsafePointer<Float>,
    kBlock requested: Int = 1024
  ) {
    self.n = n
    self.k = k
    let kb = Swift.max(1, Swift.min(requested, 65536, Swift.max(k, 1)))
    kBlock = kb
    blockCount = k == 0 ? 0 : (k + kb - 1) / kb
    let nnz = columnIndices.count
    // Count per (block, row).
    var counts = [Int32](repeating: 0, count: blockCount * n + 1)
    for r in 0..<n {
      for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) {
        counts[Int(columnIndices[i]) / kb * n + r] += 1
      }
    }
    var offsets = [Int32](repeating: 0, count: blockCount * n + 1)
    var run: Int32 = 0
    for i in 0..<(blockCount * n) {
      offsets[i] = run
      run += counts[i]
    }
    offsets[blockCount * n] = run
    var cursor = offsets
    var cols = [UInt16](repeating: 0, count: nnz)
    var vals = [Float](repeating: 0, count: nnz)
    for r in 0..<n {
      for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) {
        let c = Int(columnIndices[i])
        let slot = Int(cursor[c / kb * n + r])
        cursor[c / kb * n + r] += 1
        cols[slot] = UInt16(c % kb)
        vals[slot] = values[i]
      }
    }
    self.offsets = .allocate(capacity: offsets.count)
    self.offsets.initialize(from: offsets, count: offsets.count)
    columns = .allocate(capacity: nnz + 1)
    columns.initialize(from: cols, count: nnz)
    self.values = .allocate(capacity: nnz + 1)
    self.values.initialize(from: vals, count: nnz)
    nonzeroCount = nnz
    var prefix = [Int](repeating: 0, count: n + 1)
    for r in 0..<n { prefix[r + 1] = prefix[r] + Int(rowOffsets[r + 1] - rowOffsets[r]) }
    rowPrefix = prefix
  }

  deinit {
    offsets.deallocate()
    columns.deallocate()
    values.deallocate()
  }

  package var byteCount: Int { nonzeroCount * 6 + (blockCount * n + 1) * 4 }

  package func rowRanges(parts: Int) -> [Range<Int>] {
    balancedRanges(count: n, parts: parts) { rowPrefix[$0] + $0 / 4 }
  }

  @inline(__always)
  package func accumulate(
    rows: Range<Int>, block: Int, first: Bool, panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>
  ) {
    let (offsets, values, columns) = (self.offsets + block * n, self.values, self.columns)
    let slice = panel + block * kBlock * panelTokens
    var out = acc
    for r in rows {
      let lo = Int(offsets[r])
      let hi = Int(offsets[r + 1])
      if lo < hi || first {
        csrTile(count: hi - lo, values: values + lo, columns: columns + lo, panel: slice, acc: out, first: first)
      }
      out += panelTokens
    }
  }

  /// Writes the dense row-major `[n, k]` weight.
  package func unpack(into w: UnsafeMutablePointer<Float>) {
    w.update(repeating: 0, count: n * k)
    for b in 0..<blockCount {
      for r in 0..<n {
        for i in Int(offsets[b * n + r])..<Int(offsets[b * n + r + 1]) {
          w[r * k + b * kBlock + Int(columns[i])] = values[i]
        }
      }
    }
  }
}

#if SPARSITY_ISA_AVX512
  /// `acc[0..<128] += Σ_i values[i] · panel[columns[i]·128 ..< +128]` (8 zmm accumulators; `=` when `first`).
  @inline(never)
  package func csrTile(
    count: Int, values: UnsafePointer<Float>, columns: UnsafePointer<UInt16>,
    panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>, first: Bool
  ) {
    var a0 = Vec16(), a1 = Vec16(), a2 = Vec16(), a3 = Vec16(), a4 = Vec16(), a5 = Vec16(), a6 = Vec16(), a7 = Vec16()
    if !first {
      a0 = load16(acc); a1 = load16(acc + 16); a2 = load16(acc + 32); a3 = load16(acc + 48)
      a4 = load16(acc + 64); a5 = load16(acc + 80); a6 = load16(acc + 96); a7 = load16(acc + 112)
    }
    for i in 0..<count {
      let w = Vec16(repeating: values[i])
      let p = panel + Int(columns[i]) &* 128
      a0 = fma(a0, w, load16(p)); a1 = fma(a1, w, load16(p + 16))
      a2 = fma(a2, w, load16(p + 32)); a3 = fma(a3, w, load16(p + 48))
      a4 = fma(a4, w, load16(p + 64)); a5 = fma(a5, w, load16(p + 80))
      a6 = fma(a6, w, load16(p + 96)); a7 = fma(a7, w, load16(p + 112))
    }
    store16(a0, acc); store16(a1, acc + 16); store16(a2, acc + 32); store16(a3, acc + 48)
    store16(a4, acc + 64); store16(a5, acc + 80); store16(a6, acc + 96); store16(a7, acc + 112)
  }
#else
  /// `acc[0..<64] += Σ_i values[i] · panel[columns[i]·64 ..< +64]` (8 ymm accumulators; `=` when `first`).
  @inline(never)
  package func csrTile(
    count: Int, values: UnsafePointer<Float>, columns: UnsafePointer<UInt16>,
    panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>, first: Bool
  ) {
    var a0 = Vec8(), a1 = Vec8(), a2 = Vec8(), a3 = Vec8(), a4 = Vec8(), a5 = Vec8(), a6 = Vec8(), a7 = Vec8()
    if !first {
      a0 = load8(acc); a1 = load8(acc + 8); a2 = load8(acc + 16); a3 = load8(acc + 24)
      a4 = load8(acc + 32); a5 = load8(acc + 40); a6 = load8(acc + 48); a7 = load8(acc + 56)
    }
    for i in 0..<count {
      let w = Vec8(repeating: values[i])
      let p = panel + Int(columns[i]) &* 64
      a0 = fma(a0, w, load8(p)); a1 = fma(a1, w, load8(p + 8))
      a2 = fma(a2, w, load8(p + 16)); a3 = fma(a3, w, load8(p + 24))
      a4 = fma(a4, w, load8(p + 32)); a5 = fma(a5, w, load8(p + 40))
      a6 = fma(a6, w, load8(p + 48)); a7 = fma(a7, w, load8(p + 56))
    }
    store8(a0, acc); store8(a1, acc + 8); store8(a2, acc + 16); store8(a3, acc + 24)
    store8(a4, acc + 32); store8(a5, acc + 40); store8(a6, acc + 48); store8(a7, acc + 56)
  }
#endif

/// Row-wise SpMV for each activation row (the M = 1 path): `y[t][r] = Σ w · x[t][col] + bias[r]`.
package func csrLinearRows(
  weight: PackedCSRWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let n = weight.n
  guard m > 0, n > 0 else { return }
  let parts = Swift.max(1, Swift.min(workItems(workers), n))
  let ranges = weight.rowRanges(parts: parts)
  let out = Unchecked(y)
  parallelFor(parts) { w in
    csrRows(
      rows: ranges[w], n: n, k: weight.k, kBlock: weight.kBlock, blocks: weight.blockCount,
      offsets: weight.offsets, columns: weight.columns, values: weight.values, x: x, m: m,
      y: out.value, bias: bias)
  }
}

@inline(never)
private func csrRows(
  rows: Range<Int>, n: Int, k: Int, kBlock: Int, blocks: Int, offsets: UnsafePointer<Int32>,
  columns: UnsafePointer<UInt16>, values: UnsafePointer<Float>, x: UnsafePointer<Float>, m: Int,
  y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?
) {
  for t in 0..<m {
    let xt = x + t * k
    for r in rows {
      var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
      do {
        for b in 0..<blocks {
          let xb = xt + b * kBlock
          var i = Int(offsets[b * n + r])
          let hi = Int(offsets[b * n + r + 1])
          while i + 4 <= hi {
            s0 = fmaScalar(s0, values[i], xb[Int(columns[i])])
            s1 = fmaScalar(s1, values[i + 1], xb[Int(columns[i + 1])])
            s2 = fmaScalar(s2, values[i + 2], xb[Int(columns[i + 2])])
            s3 = fmaScalar(s3, values[i + 3], xb[Int(columns[i + 3])])
            i += 4
          }
          while i < hi {
            s0 = fmaScalar(s0, values[i], xb[Int(columns[i])])
            i += 1
          }
        }
      }
      y[t * n + r] = (s0 + s1) + (s2 + s3) + (bias?[r] ?? 0)
    }
  }
}

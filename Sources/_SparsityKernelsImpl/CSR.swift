import SparsityCore

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
    MemoryLedger.recordAllocation(bytes: offsets.count * 4)
    MemoryLedger.recordAllocation(bytes: (nnz + 1) * 2)
    MemoryLedger.recordAllocation(bytes: (nnz + 1) * 4)
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

/// `acc[0..<T] += Σ_i values[i] · panel[columns[i]·T ..< +T]` (T = `panelTokens`, 8
/// `PanelVector` accumulators; `=` when `first`).
@inline(never)
package func csrTile(
  count: Int, values: UnsafePointer<Float>, columns: UnsafePointer<UInt16>,
  panel: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>, first: Bool
) {
  var a = PanelTile(acc, first: first)
  for i in 0..<count {
    a.add(PanelVector(repeating: values[i]), panel + Int(columns[i]) &* panelTokens)
  }
  a.store(acc)
}

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

import SparsityCore

// Conversions between the sparse formats that never build the dense `[rows, columns]` matrix,
// so that a model loader can turn a stored CSR, BSR or 2:4 tensor into the form a kernel needs
// at the cost of the stored data, not of the dense size.
//
// Each conversion gives exactly what the dense route gives — `Target(dense: source.dense())` —
// bit for bit, errors included (same case, same text, `name` as the tensor; the CSR targets
// cannot fail short of 2³¹ nonzeros, so they do not throw). Every conversion reads its source
// through `StoredElements` below: the stored elements of one row, in increasing column order,
// with the zero test of their values (`Tensor.forEachZeroFlag`: a value is zero when its
// magnitude bits are zero, so `-0.0` is zero). Scratch memory is one `Bool` per stored value
// plus arrays the size of one row (or one block row's block columns).
//
// A position that a source does not store reads as all-zero bytes in `dense()`. That is a zero
// of every dtype except `F8_E8M0`, which has no zero: there such a position counts as a nonzero
// element holding `0x00`, exactly as the dense route sees it.

// MARK: - CSR from the other formats

extension CSRMatrix {
  /// The CSR form of a block-sparse matrix, read from its stored blocks.
  ///
  /// Equal to `try CSRMatrix(dense: m.dense())`: only the nonzero values of the stored blocks
  /// are kept (zeros inside a block, `-0.0` included, are dropped), in the same dtype.
  ///
  /// - Precondition: the nonzeros fit 32-bit indices (fewer than 2³¹; the only error the dense
  ///   route can give here).
  /// - Complexity: O(rows + stored values).
  public init(_ m: BSRMatrix) { self.init(StoredElements(.bsr(m))) }

  /// The CSR form of an N:M matrix, read from its value slots.
  ///
  /// Equal to `try CSRMatrix(dense: m.dense())`: filler slots and other zero values (`-0.0`
  /// included) are dropped, and slots past the last column are ignored.
  ///
  /// - Precondition: the nonzeros fit 32-bit indices (fewer than 2³¹).
  /// - Complexity: O(stored values).
  public init(_ m: SemiStructuredMatrix) { self.init(StoredElements(.semiStructured(m))) }

  /// The CSR form of a CUTLASS 2:4 matrix, decoded from its metadata
  /// (``CUTLASSSemiStructured/keptColumns(row:)``).
  ///
  /// Equal to `try CSRMatrix(dense: m.dense())`: kept values that are zero (`-0.0` included)
  /// are dropped.
  ///
  /// - Precondition: the nonzeros fit 32-bit indices (fewer than 2³¹).
  /// - Complexity: O(rows × columns / 2), the size of ``CUTLASSSemiStructured/packed``.
  public init(_ m: CUTLASSSemiStructured) { self.init(StoredElements(.cutlass(m))) }

  /// Builds the CSR arrays from the nonzero elements of `source`, in two passes (count, copy).
  fileprivate init(_ source: StoredElements) {
    let rows = source.rows
    var offsets = [Int](repeating: 0, count: rows + 1)
    var total = 0
    for r in 0..<rows {
      source.forEachNonzero(row: r) { _, _ in total += 1 }
      offsets[r + 1] = total
    }
    precondition(
      total <= Int(Int32.max),
      "csr uses 32-bit indices; \(total) nonzeros of a \(source.shape) matrix are too many")
    var indices = [Int32](repeating: 0, count: total)
    var values = Tensor(zeros: [total], dtype: source.dtype)
    let width = source.width
    source.values.withUnsafeBytes { src in
      values.withUnsafeMutableBytes { dst in
        var k = 0
        for r in 0..<rows {
          source.forEachNonzero(row: r) { column, i in
            indices[k] = Int32(column)
            if i >= 0 { copyElement(dst.baseAddress!, k, src.baseAddress!, i, width: width) }
            k += 1
          }
        }
      }
    }
    self.shape = source.shape
    self.rowOffsets = offsets.map { Int32($0) }
    self.columnIndices = indices
    self.values = values
  }
}

// MARK: - N:M from CUTLASS and CSR

extension SemiStructuredMatrix {
  /// The logical 2:4 form of a CUTLASS matrix, decoded from its metadata.
  ///
  /// Equal to `SemiStructuredMatrix(dense: m.dense(), n: 2, m: 4, name: name)`, positions
  /// included: a group with fewer than two nonzeros takes filler positions in the order 2, 3,
  /// 0, 1, whatever positions the CUTLASS codes name, and a filler slot holds the element of
  /// `m.dense()` there (a kept `-0.0` stays `-0.0`; a position CUTLASS does not keep is
  /// `+0.0`). A `float32` matrix (stored 1:2) becomes 2:4 too.
  ///
  /// - Throws: nothing for a valid CUTLASS matrix (every group holds at most two nonzeros);
  ///   typed like the other initialisers.
  /// - Complexity: O(rows × columns / 2).
  public init(_ m: CUTLASSSemiStructured, name: String = "tensor") throws(SparseFormatError) {
    try self.init(StoredElements(.cutlass(m)), n: 2, m: 4, name: name)
  }

  /// Compresses a CSR matrix to N:M without building the dense matrix.
  ///
  /// Equal to `SemiStructuredMatrix(dense: csr.dense(), n: n, m: m, name: name)`: the same
  /// positions (nonzeros, then fillers in the order `m − n, …, m − 1, 0, 1, …`), and a filler
  /// at a position the CSR stores keeps that stored value (an explicit `-0.0` stays `-0.0`).
  ///
  /// - Throws: ``SparseFormatError/shapeRule(tensor:shape:rule:)`` unless 1 ≤ n ≤ m ≤ 16, and
  ///   ``SparseFormatError/patternViolation(tensor:pattern:rows:columns:nonzeros:allowed:)``
  ///   naming the first group (row-major) with more than `n` nonzeros — the errors of
  ///   ``init(dense:n:m:name:)``.
  /// - Complexity: O(stored values + rows × ⌈columns / m⌉ × m).
  public init(csr: CSRMatrix, n: Int, m: Int, name: String = "tensor") throws(SparseFormatError) {
    if csr.dtype == .float32, 1 <= n, n <= m, m <= 16, let fast = SemiStructuredMatrix(float32CSR: csr, n: n, m: m) {
      self = fast
      return
    }
    try self.init(StoredElements(.csr(csr)), n: n, m: m, name: name)
  }

  /// The same selection for `float32` values in one pass over the CSR arrays (the common case
  /// when a pruned file is loaded); `nil` when a group breaks the pattern, so the general path
  /// can report it.
  private init?(float32CSR csr: CSRMatrix, n: Int, m: Int) {
    let (rows, columns) = (csr.shape[0], csr.shape[1])
    let groups = (columns + m - 1) / m
    var values = Tensor(zeros: [rows, groups * n], dtype: .float32)
    var indices = [UInt8](repeating: 0, count: rows * groups * n)
    let fillOrder = SemiStructuredMatrix.fillOrder(n: n, m: m)
    let ok = csr.values.withUnsafeBufferPointer(as: Float.self) { src in
      values.withUnsafeMutableBufferPointer(as: Float.self) { dst in
        indices.withUnsafeMutableBufferPointer { idx in
          csr.rowOffsets.withUnsafeBufferPointer { offsets in
            csr.columnIndices.withUnsafeBufferPointer { cols in
              // Per group: the stored index at each position (-1: not stored).
              var present = (Int32(-1), Int32(-1), Int32(-1), Int32(-1), Int32(-1), Int32(-1), Int32(-1), Int32(-1),
                             Int32(-1), Int32(-1), Int32(-1), Int32(-1), Int32(-1), Int32(-1), Int32(-1), Int32(-1))
              return withUnsafeMutableBytes(of: &present) { raw -> Bool in
                let at = raw.bindMemory(to: Int32.self)
                for r in 0..<rows {
                  var i = Int(offsets[r])
                  let end = Int(offsets[r + 1])
                  for g in 0..<groups {
                    let c0 = g * m
                    for j in 0..<m { at[j] = -1 }
                    var count = 0
                    var chosen: UInt32 = 0  // the nonzero positions first
                    while i < end, Int(cols[i]) < c0 + m {
                      let j = Int(cols[i]) - c0
                      at[j] = Int32(i)  // stored zeros too: a filler there keeps its bits (-0.0)
                      if src[i].magnitude != 0 {
                        chosen |= 1 << UInt32(j)
                        count += 1
                      }
                      i += 1
                    }
                    guard count <= n else { return false }
                    for j in fillOrder where count < n && chosen & (1 << UInt32(j)) == 0 {
                      chosen |= 1 << UInt32(j)
                      count += 1
                    }
                    var slot = (r * groups + g) * n
                    for j in 0..<m where chosen & (1 << UInt32(j)) != 0 {
                      idx[slot] = UInt8(j)
                      if at[j] >= 0 { dst[slot] = src[Int(at[j])] }
                      slot += 1
                    }
                  }
                }
                return true
              }
            }
          }
        }
      }
    }
    guard ok else { return nil }
    self.shape = csr.shape
    self.n = n
    self.m = m
    self.values = values
    self.indices = indices
  }

  /// Builds the logical N:M arrays group by group from the stored elements of `source`.
  fileprivate init(_ source: StoredElements, n: Int, m: Int, name: String) throws(SparseFormatError) {
    let format = "\(n):\(m)"
    let width = try source.checkedWidth(name: name, format: format)
    // The checks of init(dense:n:m:name:), in its order.
    guard (try? SparsityPattern.nOfM(n: n, m: m).validated()) != nil else {
      throw .shapeRule(tensor: name, shape: source.shape, rule: "N:M needs 1 ≤ N ≤ M ≤ 16, got \(n):\(m)")
    }
    if let violation = source.firstGroupViolation(n: n, m: m) {
      throw violation.error(tensor: name, pattern: .nOfM(n: n, m: m))
    }
    let (rows, columns) = (source.rows, source.columns)
    let groups = (columns + m - 1) / m
    var values = Tensor(zeros: [rows, groups * n], dtype: source.dtype)
    var indices = [UInt8](repeating: 0, count: rows * groups * n)
    let fillOrder = SemiStructuredMatrix.fillOrder(n: n, m: m)
    // Scratch: one row's stored elements, and one group's positions.
    var rowColumns: [Int] = []
    var rowSources: [Int] = []
    var present = [Int](repeating: -1, count: m)  // source index at each position, or -1
    var chosen = [Bool](repeating: false, count: m)
    source.values.withUnsafeBytes { src in
      values.withUnsafeMutableBytes { dst in
        for r in 0..<rows {
          rowColumns.removeAll(keepingCapacity: true)
          rowSources.removeAll(keepingCapacity: true)
          source.forEachStored(row: r) { column, i in
            rowColumns.append(column)
            rowSources.append(i)
          }
          var cursor = 0
          for g in 0..<groups {
            let c0 = g * m
            let groupWidth = Swift.min(m, columns - c0)
            for j in 0..<m { present[j] = -1 }
            while cursor < rowColumns.count, rowColumns[cursor] < c0 + m {
              present[rowColumns[cursor] - c0] = rowSources[cursor]
              cursor += 1
            }
            // The selection of init(dense:n:m:name:): nonzeros, then fillers.
            var count = 0
            for j in 0..<m {
              chosen[j] = j < groupWidth && source.isNonzero(present[j])
              if chosen[j] { count += 1 }
            }
            for j in fillOrder where count < n && !chosen[j] {
              chosen[j] = true
              count += 1
            }
            var slot = (r * groups + g) * n
            for j in 0..<m where chosen[j] {
              indices[slot] = UInt8(j)
              // An unstored position is all-zero bytes, which the values already hold.
              if j < groupWidth, present[j] >= 0 {
                copyElement(dst.baseAddress!, slot, src.baseAddress!, present[j], width: width)
              }
              slot += 1
            }
          }
        }
      }
    }
    self.shape = source.shape
    self.n = n
    self.m = m
    self.values = values
    self.indices = indices
  }
}

// MARK: - BSR from CSR

extension BSRMatrix {
  /// Compresses a CSR matrix into `blockRows × blockColumns` blocks without building the
  /// dense matrix.
  ///
  /// Equal to `BSRMatrix(dense: csr.dense(), blockRows: blockRows, blockColumns:
  /// blockColumns, name: name)`: a block is stored when it holds a nonzero value, and holds
  /// every value the CSR stores inside it (explicit zeros included, bit for bit).
  ///
  /// - Throws: the errors of ``init(dense:blockRows:blockColumns:name:)``: a
  ///   ``SparseFormatError/shapeRule(tensor:shape:rule:)`` for a block extent below 1, a shape
  ///   the blocks do not divide, or more blocks than 32-bit indices hold.
  /// - Complexity: O(rows + stored values + stored blocks × block size); the only dense-sized
  ///   memory is the result.
  public init(csr: CSRMatrix, blockRows: Int, blockColumns: Int, name: String = "tensor")
    throws(SparseFormatError)
  {
    try self.init(StoredElements(.csr(csr)), blockRows: blockRows, blockColumns: blockColumns, name: name)
  }

  /// Builds the BSR arrays: occupied blocks first, then the stored elements copied in.
  fileprivate init(_ source: StoredElements, blockRows: Int, blockColumns: Int, name: String)
    throws(SparseFormatError)
  {
    let width = try source.checkedWidth(name: name, format: "bsr")
    try BSRMatrix.checkBlockShape(
      shape: source.shape, blockRows: blockRows, blockColumns: blockColumns, name: name)
    let (offsets, blockIndices) = source.occupiedBlocks(blockRows: blockRows, blockColumns: blockColumns)
    try MatrixInput.checkIndexRange(blockIndices.count, name: name, shape: source.shape, format: "bsr")
    let (gridRows, gridColumns) = (source.rows / blockRows, source.columns / blockColumns)
    var values = Tensor(zeros: [blockIndices.count, blockRows, blockColumns], dtype: source.dtype)
    let blockSize = blockRows * blockColumns
    var slotOf = [Int](repeating: -1, count: gridColumns)  // stored block of a block column
    source.values.withUnsafeBytes { src in
      values.withUnsafeMutableBytes { dst in
        for br in 0..<gridRows {
          let blocks = offsets[br]..<offsets[br + 1]
          for b in blocks { slotOf[Int(blockIndices[b])] = b }
          for i in 0..<blockRows {
            source.forEachStored(row: br * blockRows + i) { column, s in
              let b = slotOf[column / blockColumns]
              guard b >= 0 else { return }  // a block of zeros only: not stored
              copyElement(
                dst.baseAddress!, b * blockSize + i * blockColumns + column % blockColumns,
                src.baseAddress!, s, width: width)
            }
          }
          for b in blocks { slotOf[Int(blockIndices[b])] = -1 }
        }
      }
    }
    self.shape = source.shape
    self.blockRows = blockRows
    self.blockColumns = blockColumns
    self.rowOffsets = offsets.map { Int32($0) }
    self.columnIndices = blockIndices
    self.values = values
  }
}

// MARK: - Structure queries on CSR

extension CSRMatrix {
  /// The number of nonzero elements of the matrix: stored values that are not zero (`-0.0`
  /// is zero), so `CSRMatrix(dense: dense()).storedValueCount`.
  ///
  /// For `F8_E8M0`, which has no zero, every element counts, stored or not (`dense()` fills
  /// unstored positions with `0x00`, a nonzero value).
  public var nonzeroCount: Int {
    if dtype == .float32 {
      return values.withUnsafeBufferPointer(as: Float.self) { v in v.reduce(0) { $0 + ($1.magnitude != 0 ? 1 : 0) } }
    }
    let source = StoredElements(.csr(self))
    let stored = source.nonzero.count { $0 }
    return source.absentIsNonzero ? stored + shape[0] * shape[1] - storedValueCount : stored
  }

  /// Whether every group of `m` consecutive columns of a row (the last one cut short by the
  /// matrix edge) holds at most `n` nonzeros; equal to
  /// `Mask(nonzerosOf: dense()).conforms(to: .nOfM(n: n, m: m))`, without the dense matrix.
  ///
  /// Like ``Mask``, it does not validate the pattern: `n` may be 0 (only an all-zero matrix
  /// conforms) or at least `m` (every matrix conforms). A matrix without elements conforms.
  ///
  /// - Precondition: `m ≥ 1`.
  /// - Complexity: O(rows + stored values).
  public func conforms(nOfM n: Int, _ m: Int) -> Bool {
    precondition(m >= 1, "an N:M group needs m ≥ 1, got \(n):\(m)")
    guard shape[0] > 0, shape[1] > 0 else { return true }
    guard n >= 0 else { return false }  // every group, even an empty one, holds more than n
    if dtype == .float32 { return float32Conforms(n: n, m: m) }
    return StoredElements(.csr(self)).firstGroupViolation(n: n, m: m) == nil
  }

  /// The number of `blockRows × blockColumns` blocks that hold at least one nonzero value:
  /// the ``BSRMatrix/storedBlockCount`` of `BSRMatrix(dense: dense(), blockRows:
  /// blockRows, blockColumns: blockColumns)`, without the dense matrix.
  ///
  /// - Precondition: both block extents are at least 1 and divide the matrix's.
  /// - Complexity: O(rows + stored values).
  public func nonzeroBlockCount(blockRows: Int, blockColumns: Int) -> Int {
    precondition(
      blockRows >= 1 && blockColumns >= 1 && shape[0] % blockRows == 0 && shape[1] % blockColumns == 0,
      "\(blockRows)x\(blockColumns) blocks do not tile a \(shape[0])x\(shape[1]) matrix")
    if dtype == .float32 { return float32NonzeroBlockCount(blockRows: blockRows, blockColumns: blockColumns) }
    return StoredElements(.csr(self)).occupiedBlocks(blockRows: blockRows, blockColumns: blockColumns)
      .columns.count
  }

  /// ``conforms(nOfM:_:)`` for `float32` values in one pass over the arrays (a model loader
  /// asks it of every stored CSR weight).
  private func float32Conforms(n: Int, m: Int) -> Bool {
    values.withUnsafeBufferPointer(as: Float.self) { v in
      for r in 0..<shape[0] {
        var group = -1
        var count = 0
        for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) where v[i].magnitude != 0 {
          let g = Int(columnIndices[i]) / m
          if g != group { (group, count) = (g, 0) }
          count += 1
          if count > n { return false }
        }
      }
      return true
    }
  }

  /// ``nonzeroBlockCount(blockRows:blockColumns:)`` for `float32` values in one pass.
  private func float32NonzeroBlockCount(blockRows: Int, blockColumns: Int) -> Int {
    let blockColumnCount = shape[1] / blockColumns
    var occupied = [Bool](repeating: false, count: blockColumnCount)
    var total = 0
    return values.withUnsafeBufferPointer(as: Float.self) { v in
      for br in 0..<(shape[0] / blockRows) {
        for j in occupied.indices { occupied[j] = false }
        for r in br * blockRows..<(br + 1) * blockRows {
          for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) where v[i].magnitude != 0 {
            let b = Int(columnIndices[i]) / blockColumns
            if !occupied[b] {
              occupied[b] = true
              total += 1
            }
          }
        }
      }
      return total
    }
  }
}

// MARK: - CUTLASS metadata, row by row

extension CUTLASSSemiStructured {
  /// The dense column of every kept value of one row, decoded from the metadata:
  /// `packed[row, j]` is the element at column `keptColumns(row: row)[j]` of ``dense()``.
  ///
  /// The result has `columns / 2` strictly increasing entries: two per group of four (for
  /// `float32`, one per pair). Only the row's metadata words are read.
  ///
  /// - Precondition: `0 ≤ row < rows`.
  public func keptColumns(row: Int) -> [Int] {
    precondition(row >= 0 && row < rows, "row \(row) is outside 0..<\(rows)")
    var result: [Int] = []
    result.reserveCapacity(columns / 2)
    forEachKept(row: row) { column, _ in result.append(column) }
    return result
  }

  /// Calls `body` with the dense column and the flat index into ``packed`` of every kept value
  /// of row `r`, in increasing column order, as ``dense()`` places them.
  fileprivate func forEachKept(row r: Int, _ body: (_ column: Int, _ packedIndex: Int) -> Void) {
    let pairs = dtype == .float32  // 1:2, one value per pair
    let layout = CUTLASSLayout(rows: rows, columns: columns, dtype: dtype)
    let codesPerWord = layout.codesPerWord
    let base = r * (columns / 2)
    meta.withUnsafeBytes { raw in
      for c in 0..<layout.metaColumns {
        let word = layout.metaWord(raw, row: r, column: c)
        for q in 0..<codesPerWord {
          let g = c * codesPerWord + q
          let code = Int((word >> UInt32(4 * q)) & 0xF)
          if pairs {
            body(2 * g + (code == 0b1110 ? 1 : 0), base + g)
          } else {
            // Valid codes have idx0 < idx1 (checked when the matrix was made).
            body(4 * g + (code & 3), base + 2 * g)
            body(4 * g + (code >> 2), base + 2 * g + 1)
          }
        }
      }
    }
  }
}

// MARK: - Stored elements of any format

/// The stored elements of a sparse matrix, row by row in increasing column order, and which of
/// them are nonzero: what the conversions read instead of `dense()`.
private struct StoredElements {
  enum Source {
    case csr(CSRMatrix)
    case bsr(BSRMatrix)
    case semiStructured(SemiStructuredMatrix)
    case cutlass(CUTLASSSemiStructured)
  }

  let source: Source
  let rows: Int
  let columns: Int
  /// The stored values, indexed flat (element `i`).
  let values: Tensor
  /// Whether each stored value is nonzero (the `Tensor` zero test).
  let nonzero: [Bool]
  /// Whether an unstored position (all-zero bytes in `dense()`) is a nonzero: only for dtypes
  /// without a zero (`F8_E8M0`).
  let absentIsNonzero: Bool

  var shape: [Int] { [rows, columns] }
  var dtype: DType { values.dtype }
  var width: Int { values.elementByteWidth }

  init(_ source: Source) {
    self.source = source
    let shape: [Int]
    switch source {
    case .csr(let m): (shape, values) = (m.shape, m.values)
    case .bsr(let m): (shape, values) = (m.shape, m.values)
    case .semiStructured(let m): (shape, values) = (m.shape, m.values)
    case .cutlass(let m): (shape, values) = (m.shape, m.packed)
    }
    (rows, columns) = (shape[0], shape[1])
    var nonzero: [Bool] = []
    nonzero.reserveCapacity(values.count)
    values.forEachZeroFlag { nonzero.append(!$0) }
    self.nonzero = nonzero
    absentIsNonzero = Tensor(zeros: [1], dtype: values.dtype).nonzeroCount != 0
  }

  /// Whether the element at stored index `i` (or an unstored position, `-1`) is nonzero.
  @inline(__always)
  func isNonzero(_ i: Int) -> Bool { i >= 0 ? nonzero[i] : absentIsNonzero }

  /// The byte width of the dtype, or the error `MatrixInput.check` gives for a dtype that is not
  /// byte-aligned (which no stored format holds).
  func checkedWidth(name: String, format: String) throws(SparseFormatError) -> Int {
    guard let width = dtype.byteWidth else {
      throw .unsupportedDType(
        tensor: name, dtype: dtype, format: format, supported: DType.allCases.filter { $0.byteWidth != nil })
    }
    return width
  }

  /// Calls `body(column, index)` for every stored element of row `r` inside the matrix, in
  /// increasing column order; `index` is the element's flat index in ``values``.
  func forEachStored(row r: Int, _ body: (_ column: Int, _ index: Int) -> Void) {
    switch source {
    case .csr(let m):
      for i in Int(m.rowOffsets[r])..<Int(m.rowOffsets[r + 1]) { body(Int(m.columnIndices[i]), i) }
    case .bsr(let m):
      let (br, i) = r.quotientAndRemainder(dividingBy: m.blockRows)
      let blockSize = m.blockRows * m.blockColumns
      for b in Int(m.rowOffsets[br])..<Int(m.rowOffsets[br + 1]) {
        let c0 = Int(m.columnIndices[b]) * m.blockColumns
        let v0 = b * blockSize + i * m.blockColumns
        for j in 0..<m.blockColumns { body(c0 + j, v0 + j) }
      }
    case .semiStructured(let m):
      let groups = m.groupsPerRow
      for g in 0..<groups {
        for s in 0..<m.n {
          let slot = (r * groups + g) * m.n + s
          let column = g * m.m + Int(m.indices[slot])
          if column < columns { body(column, slot) }  // dense() drops slots past the edge
        }
      }
    case .cutlass(let m):
      m.forEachKept(row: r, body)
    }
  }

  /// Calls `body(column, index)` for every nonzero element of row `r` of `dense()`, in
  /// increasing column order; `index` is its flat index in ``values``, or `-1` for an unstored
  /// position that is nonzero (``absentIsNonzero``).
  func forEachNonzero(row r: Int, _ body: (_ column: Int, _ index: Int) -> Void) {
    if !absentIsNonzero {
      forEachStored(row: r) { column, i in if nonzero[i] { body(column, i) } }
      return
    }
    var next = 0
    forEachStored(row: r) { column, i in
      for gap in next..<column { body(gap, -1) }
      if nonzero[i] { body(column, i) }
      next = column + 1
    }
    for gap in next..<columns { body(gap, -1) }
  }

  /// The first group of `m` columns (row-major, the last cut short) holding more than `n`
  /// nonzeros, as `Mask.firstViolation(of: .nOfM(n: n, m: m))` reports it.
  ///
  /// - Precondition: `n ≥ 0`, `m ≥ 1` (groups without nonzeros never violate).
  func firstGroupViolation(n: Int, m: Int) -> PatternViolation? {
    for r in 0..<rows {
      var found: PatternViolation?
      var group = -1
      var count = 0
      func close() {
        if found == nil, group >= 0, count > n {
          let c0 = group * m
          found = PatternViolation(
            rows: r..<(r + 1), columns: c0..<Swift.min(c0 + m, columns), kept: count, limit: .atMost(n))
        }
      }
      forEachNonzero(row: r) { column, _ in
        let g = column / m
        if g != group {
          close()
          (group, count) = (g, 0)
        }
        count += 1
      }
      close()
      if let found { return found }
    }
    return nil
  }

  /// The blocks holding a nonzero, as BSR arrays: `offsets[br]..<offsets[br + 1]` index the
  /// block columns of block row `br` in `columns` (increasing).
  ///
  /// - Precondition: the block extents are at least 1 and divide the shape.
  func occupiedBlocks(blockRows: Int, blockColumns: Int) -> (offsets: [Int], columns: [Int32]) {
    let gridRows = rows / blockRows
    var offsets = [Int](repeating: 0, count: gridRows + 1)
    var blockColumnsFound: [Int32] = []
    var occupied = [Bool](repeating: false, count: columns / blockColumns)
    var touched: [Int] = []
    for br in 0..<gridRows {
      for i in 0..<blockRows {
        forEachNonzero(row: br * blockRows + i) { column, _ in
          let bc = column / blockColumns
          if !occupied[bc] {
            occupied[bc] = true
            touched.append(bc)
          }
        }
      }
      touched.sort()
      for bc in touched {
        blockColumnsFound.append(Int32(bc))
        occupied[bc] = false
      }
      touched.removeAll(keepingCapacity: true)
      offsets[br + 1] = blockColumnsFound.count
    }
    return (offsets, blockColumnsFound)
  }
}

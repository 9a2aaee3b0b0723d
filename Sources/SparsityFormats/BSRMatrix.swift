import SparsityCore

/// Block compressed sparse rows: PyTorch's `sparse_bsr` layout with `rows × columns` blocks.
///
/// The matrix is tiled into blocks; only blocks holding a nonzero are stored, each as a dense
/// `blockRows × blockColumns` tile. Block-row `b`'s blocks are
/// `values[rowOffsets[b] ..< rowOffsets[b + 1]]` (shape `[nnzBlocks, blockRows, blockColumns]`)
/// at block columns `columnIndices[same range]`.
///
/// - Note: like PyTorch, the matrix extents must be multiples of the block extents.
public struct BSRMatrix: SparseMatrix, Equatable {
  public static let formatName = "bsr"
  public let shape: [Int]
  public let blockRows: Int
  public let blockColumns: Int
  /// `shape[0] / blockRows + 1` offsets into `columnIndices` and `values`.
  public let rowOffsets: [Int32]
  /// The block column of each stored block.
  public let columnIndices: [Int32]
  /// `[nnzBlocks, blockRows, blockColumns]` stored blocks.
  public let values: Tensor

  public var dtype: DType { values.dtype }
  public var storedValueCount: Int { values.count }
  public var storedBlockCount: Int { columnIndices.count }
  public var byteCount: Int { values.byteCount + 4 * (rowOffsets.count + columnIndices.count) }

  public init(dense: Tensor, name: String) throws(SparseFormatError) {
    try self.init(dense: dense, blockRows: 16, blockColumns: 16, name: name)
  }

  /// Compresses `dense` with `blockRows × blockColumns` blocks.
  public init(dense: Tensor, blockRows: Int, blockColumns: Int, name: String = "tensor")
    throws(SparseFormatError)
  {
    let (rows, columns, width) = try MatrixInput.check(dense, name: name, format: "bsr")
    try BSRMatrix.checkBlockShape(
      shape: dense.shape, blockRows: blockRows, blockColumns: blockColumns, name: name)
    let (gridRows, gridColumns) = (rows / blockRows, columns / blockColumns)
    // Which blocks hold a nonzero.
    var occupied = [Bool](repeating: false, count: gridRows * gridColumns)
    dense.nonzeroMask.withUnsafeBufferPointer(as: Bool.self) { keep in
      for r in 0..<rows {
        for c in 0..<columns where keep[r * columns + c] {
          occupied[(r / blockRows) * gridColumns + c / blockColumns] = true
        }
      }
    }
    let blockCount = occupied.count { $0 }
    try MatrixInput.checkIndexRange(blockCount, name: name, shape: dense.shape, format: "bsr")
    var offsets = [Int32](repeating: 0, count: gridRows + 1)
    var indices = [Int32]()
    indices.reserveCapacity(blockCount)
    var values = Tensor(zeros: [blockCount, blockRows, blockColumns], dtype: dense.dtype)
    let blockSize = blockRows * blockColumns
    dense.withUnsafeBytes { src in
      values.withUnsafeMutableBytes { dst in
        for br in 0..<gridRows {
          for bc in 0..<gridColumns where occupied[br * gridColumns + bc] {
            let n = indices.count
            for i in 0..<blockRows {
              (dst.baseAddress! + (n * blockSize + i * blockColumns) * width).copyMemory(
                from: src.baseAddress! + ((br * blockRows + i) * columns + bc * blockColumns) * width,
                byteCount: blockColumns * width)
            }
            indices.append(Int32(bc))
          }
          offsets[br + 1] = Int32(indices.count)
        }
      }
    }
    self.shape = dense.shape
    self.blockRows = blockRows
    self.blockColumns = blockColumns
    self.rowOffsets = offsets
    self.columnIndices = indices
    self.values = values
  }

  /// Assembles a matrix from its arrays and checks the invariants (for data read from files).
  /// The block shape is `values.shape[1...2]`.
  public init(
    shape: [Int], rowOffsets: [Int32], columnIndices: [Int32], values: Tensor, name: String
  ) throws(SparseFormatError) {
    guard values.rank == 3 else {
      throw .invalidEncoding(
        tensor: name, format: "bsr",
        detail: "values have shape \(values.shape); expected [blocks, blockRows, blockColumns]")
    }
    try MatrixInput.checkShape(shape, name: name, format: "bsr")
    try BSRMatrix.checkBlockShape(
      shape: shape, blockRows: values.shape[1], blockColumns: values.shape[2], name: name)
    self.shape = shape
    self.blockRows = values.shape[1]
    self.blockColumns = values.shape[2]
    self.rowOffsets = rowOffsets
    self.columnIndices = columnIndices
    self.values = values
    try checkInvariants(name: name)
  }

  static func checkBlockShape(shape: [Int], blockRows: Int, blockColumns: Int, name: String)
    throws(SparseFormatError)
  {
    guard blockRows >= 1, blockColumns >= 1 else {
      throw .shapeRule(
        tensor: name, shape: shape,
        rule: "bsr block \(blockRows)x\(blockColumns) must have extents of at least 1")
    }
    guard shape[0] % blockRows == 0, shape[1] % blockColumns == 0 else {
      throw .shapeRule(
        tensor: name, shape: shape,
        rule: "bsr with \(blockRows)x\(blockColumns) blocks needs rows divisible by \(blockRows) and columns divisible by \(blockColumns)")
    }
  }

  public func dense() -> Tensor {
    var result = Tensor(zeros: shape, dtype: dtype)
    let width = values.elementByteWidth
    let columns = shape[1]
    let blockSize = blockRows * blockColumns
    values.withUnsafeBytes { src in
      result.withUnsafeMutableBytes { dst in
        for br in 0..<(shape[0] / blockRows) {
          for n in Int(rowOffsets[br])..<Int(rowOffsets[br + 1]) {
            let bc = Int(columnIndices[n])
            for i in 0..<blockRows {
              (dst.baseAddress! + ((br * blockRows + i) * columns + bc * blockColumns) * width)
                .copyMemory(
                  from: src.baseAddress! + (n * blockSize + i * blockColumns) * width,
                  byteCount: blockColumns * width)
            }
          }
        }
      }
    }
    return result
  }

  public func checkInvariants(name: String) throws(SparseFormatError) {
    guard values.rank == 3, values.shape == [columnIndices.count, blockRows, blockColumns],
      values.dtype.byteWidth != nil
    else {
      throw .invalidEncoding(
        tensor: name, format: "bsr",
        detail: "values have shape \(values.shape); expected [\(columnIndices.count), \(blockRows), \(blockColumns)]")
    }
    try checkCompressedRows(
      offsets: rowOffsets, indices: columnIndices, rowCount: shape[0] / blockRows,
      columnCount: shape[1] / blockColumns, format: "bsr", unit: "block", name: name)
  }
}

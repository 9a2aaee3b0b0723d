import SparsityCore

/// Compressed sparse rows: PyTorch's `sparse_csr` layout.
///
/// Row `r`'s nonzeros are `values[rowOffsets[r] ..< rowOffsets[r + 1]]`, in columns
/// `columnIndices[same range]` (strictly increasing). PyTorch names the arrays
/// `crow_indices`, `col_indices` and `values`.
///
/// ```swift
/// let csr = try CSRMatrix(dense: weight, name: "fc1.weight")
/// csr.byteCount          // values + 4 bytes per index
/// csr.dense() == weight  // bitwise
/// ```
public struct CSRMatrix: SparseMatrix, Equatable {
  public static let formatName = "csr"
  public let shape: [Int]
  /// `rows + 1` offsets into `columnIndices` and `values`.
  public let rowOffsets: [Int32]
  /// The column of each stored value.
  public let columnIndices: [Int32]
  /// `[nnz]` stored values, in the dense tensor's dtype.
  public let values: Tensor

  public var dtype: DType { values.dtype }
  public var storedValueCount: Int { columnIndices.count }
  public var byteCount: Int { values.byteCount + 4 * (rowOffsets.count + columnIndices.count) }

  public init(dense: Tensor, name: String) throws(SparseFormatError) {
    let (rows, columns, width) = try MatrixInput.check(dense, name: name, format: "csr")
    let nonzeros = dense.nonzeroCount
    try MatrixInput.checkIndexRange(nonzeros, name: name, shape: dense.shape, format: "csr")
    let keep = dense.nonzeroMask
    var offsets = [Int32](repeating: 0, count: rows + 1)
    var indices = [Int32](repeating: 0, count: nonzeros)
    var values = Tensor(zeros: [nonzeros], dtype: dense.dtype)
    dense.withUnsafeBytes { src in
      values.withUnsafeMutableBytes { dst in
        keep.withUnsafeBufferPointer(as: Bool.self) { keep in
          var n = 0
          for r in 0..<rows {
            for c in 0..<columns where keep[r * columns + c] {
              indices[n] = Int32(c)
              copyElement(dst.baseAddress!, n, src.baseAddress!, r * columns + c, width: width)
              n += 1
            }
            offsets[r + 1] = Int32(n)
          }
        }
      }
    }
    self.shape = dense.shape
    self.rowOffsets = offsets
    self.columnIndices = indices
    self.values = values
  }

  /// Assembles a matrix from its arrays and checks the invariants (for data read from files).
  public init(
    shape: [Int], rowOffsets: [Int32], columnIndices: [Int32], values: Tensor, name: String
  ) throws(SparseFormatError) {
    try MatrixInput.checkShape(shape, name: name, format: "csr")
    self.shape = shape
    self.rowOffsets = rowOffsets
    self.columnIndices = columnIndices
    self.values = values
    try checkInvariants(name: name)
  }

  public func dense() -> Tensor {
    var result = Tensor(zeros: shape, dtype: dtype)
    let width = values.elementByteWidth
    let columns = shape[1]
    values.withUnsafeBytes { src in
      result.withUnsafeMutableBytes { dst in
        for r in 0..<shape[0] {
          for i in Int(rowOffsets[r])..<Int(rowOffsets[r + 1]) {
            copyElement(dst.baseAddress!, r * columns + Int(columnIndices[i]), src.baseAddress!, i, width: width)
          }
        }
      }
    }
    return result
  }

  public func checkInvariants(name: String) throws(SparseFormatError) {
    guard values.rank == 1, values.count == columnIndices.count, values.dtype.byteWidth != nil else {
      throw .invalidEncoding(
        tensor: name, format: "csr",
        detail: "values have shape \(values.shape) and dtype \(values.dtype); expected [\(columnIndices.count)] of a byte-aligned dtype")
    }
    try checkCompressedRows(
      offsets: rowOffsets, indices: columnIndices, rowCount: shape[0], columnCount: shape[1],
      format: "csr", unit: "value", name: name)
  }
}

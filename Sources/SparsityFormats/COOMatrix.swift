import SparsityCore

/// Coordinate format: one (row, column, value) triple per nonzero, sorted row-major.
///
/// The simplest format and the one the talk starts from; it costs 8 bytes of indices per
/// nonzero, so it is for interchange and inspection rather than for kernels.
public struct COOMatrix: SparseMatrix, Equatable {
  public static let formatName = "coo"
  public let shape: [Int]
  public let rowIndices: [Int32]
  public let columnIndices: [Int32]
  /// `[nnz]` stored values.
  public let values: Tensor

  public var dtype: DType { values.dtype }
  public var storedValueCount: Int { rowIndices.count }
  public var byteCount: Int { values.byteCount + 4 * (rowIndices.count + columnIndices.count) }

  public init(dense: Tensor, name: String) throws(SparseFormatError) {
    // Validate here so that errors name this format, not the CSR it is built through.
    _ = try MatrixInput.check(dense, name: name, format: "coo")
    self.init(try CSRMatrix(dense: dense, name: name))
  }

  /// The same matrix as a CSR one, with its row offsets expanded to one row index per value.
  public init(_ csr: CSRMatrix) {
    var rows = [Int32](repeating: 0, count: csr.storedValueCount)
    for r in 0..<csr.shape[0] {
      for i in Int(csr.rowOffsets[r])..<Int(csr.rowOffsets[r + 1]) { rows[i] = Int32(r) }
    }
    self.shape = csr.shape
    self.rowIndices = rows
    self.columnIndices = csr.columnIndices
    self.values = csr.values
  }

  /// Assembles a matrix from its arrays and checks the invariants.
  public init(
    shape: [Int], rowIndices: [Int32], columnIndices: [Int32], values: Tensor, name: String
  ) throws(SparseFormatError) {
    try MatrixInput.checkShape(shape, name: name, format: "coo")
    self.shape = shape
    self.rowIndices = rowIndices
    self.columnIndices = columnIndices
    self.values = values
    try checkInvariants(name: name)
  }

  public func dense() -> Tensor {
    var result = Tensor(zeros: shape, dtype: dtype)
    let width = values.elementByteWidth
    values.withUnsafeBytes { src in
      result.withUnsafeMutableBytes { dst in
        for i in 0..<rowIndices.count {
          copyElement(
            dst.baseAddress!, Int(rowIndices[i]) * shape[1] + Int(columnIndices[i]),
            src.baseAddress!, i, width: width)
        }
      }
    }
    return result
  }

  public func checkInvariants(name: String) throws(SparseFormatError) {
    func fail(_ detail: String) -> SparseFormatError {
      .invalidEncoding(tensor: name, format: "coo", detail: detail)
    }
    guard rowIndices.count == columnIndices.count, values.rank == 1,
      values.count == rowIndices.count, values.dtype.byteWidth != nil
    else {
      throw fail(
        "\(rowIndices.count) row indices, \(columnIndices.count) column indices and values of shape \(values.shape) do not match")
    }
    var previous = -1
    for i in 0..<rowIndices.count {
      let (r, c) = (Int(rowIndices[i]), Int(columnIndices[i]))
      guard r >= 0, r < shape[0], c >= 0, c < shape[1] else {
        throw fail("entry \(i) at (\(r), \(c)) is outside the \(shape[0])×\(shape[1]) matrix")
      }
      let flat = r * shape[1] + c
      guard flat > previous else {
        throw fail("entry \(i) at (\(r), \(c)) is not after the previous one in row-major order")
      }
      previous = flat
    }
  }
}

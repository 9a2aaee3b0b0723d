import SparsityCore

/// A matrix stored in a compressed format.
///
/// Every format converts from and to a dense `[rows, columns]` tensor with an exact round
/// trip (`SomeFormat(dense: w).dense()` is bitwise `w`, except that `-0.0` in a dropped
/// position comes back as `+0.0`), checks its own invariants, and reports the bytes it
/// occupies. Values keep the dense tensor's dtype; every byte-aligned dtype is accepted.
public protocol SparseMatrix: Sendable {
  /// The format's name in messages and files (`"csr"`, `"bsr"`, …).
  static var formatName: String { get }
  /// `[rows, columns]` of the dense matrix.
  var shape: [Int] { get }
  /// The element type of the values.
  var dtype: DType { get }
  /// Number of stored values (including explicit zeros a format keeps, such as padding).
  var storedValueCount: Int { get }
  /// Bytes of every array the format holds (values, indices, metadata).
  var byteCount: Int { get }
  /// Compresses a dense matrix; `name` labels errors.
  init(dense: Tensor, name: String) throws(SparseFormatError)
  /// The dense matrix.
  func dense() -> Tensor
  /// Throws when an index array or the values are inconsistent with the shape; `name` labels
  /// the error.
  func checkInvariants(name: String) throws(SparseFormatError)
}

extension SparseMatrix {
  /// Compresses a dense matrix (errors name it "tensor").
  public init(dense: Tensor) throws(SparseFormatError) { try self.init(dense: dense, name: "tensor") }

  /// Checks the invariants (errors name the matrix "matrix").
  public func checkInvariants() throws(SparseFormatError) { try checkInvariants(name: "matrix") }

  /// The fraction of the dense byte size that this format occupies.
  public var compressionRatio: Double {
    let denseBytes = shape.reduce(1, *) * (dtype.byteWidth ?? 1)
    return denseBytes == 0 ? 0 : Double(byteCount) / Double(denseBytes)
  }
}

/// Shared checks and element copying for the formats.
enum MatrixInput {
  /// Validates a dense input: rank 2 and a byte-aligned dtype. Returns (rows, columns, width).
  static func check(_ dense: Tensor, name: String, format: String) throws(SparseFormatError)
    -> (rows: Int, columns: Int, width: Int)
  {
    guard dense.rank == 2 else {
      throw .shapeRule(tensor: name, shape: dense.shape, rule: "\(format) stores matrices (rank 2)")
    }
    guard let width = dense.dtype.byteWidth else {
      throw .unsupportedDType(
        tensor: name, dtype: dense.dtype, format: format,
        supported: DType.allCases.filter { $0.byteWidth != nil })
    }
    return (dense.shape[0], dense.shape[1], width)
  }

  /// Validates the declared shape of a matrix assembled from stored arrays: rank 2, no
  /// negative extent.
  static func checkShape(_ shape: [Int], name: String, format: String) throws(SparseFormatError) {
    guard shape.count == 2, shape.allSatisfy({ $0 >= 0 }) else {
      throw .shapeRule(tensor: name, shape: shape, rule: "\(format) stores matrices (rank 2)")
    }
  }

  /// Throws unless `count` fits the 32-bit indices the formats use.
  static func checkIndexRange(_ count: Int, name: String, shape: [Int], format: String)
    throws(SparseFormatError)
  {
    guard count <= Int(Int32.max) else {
      throw .shapeRule(
        tensor: name, shape: shape, rule: "\(format) uses 32-bit indices; \(count) is too many")
    }
  }
}

@inline(__always)
func copyElement(
  _ destination: UnsafeMutableRawPointer, _ di: Int, _ source: UnsafeRawPointer, _ si: Int,
  width: Int
) {
  switch width {
  case 1: destination.storeBytes(of: source.load(fromByteOffset: si, as: UInt8.self), toByteOffset: di, as: UInt8.self)
  case 2: destination.storeBytes(of: source.load(fromByteOffset: si * 2, as: UInt16.self), toByteOffset: di * 2, as: UInt16.self)
  case 4: destination.storeBytes(of: source.load(fromByteOffset: si * 4, as: UInt32.self), toByteOffset: di * 4, as: UInt32.self)
  default: (destination + di * width).copyMemory(from: source + si * width, byteCount: width)
  }
}

/// Checks compressed-row index arrays (CSR and BSR): offsets start at 0, never decrease, end
/// at the number of stored entries; indices in each row are strictly increasing and in range.
func checkCompressedRows(
  offsets: [Int32], indices: [Int32], rowCount: Int, columnCount: Int, format: String,
  unit: String, name: String
) throws(SparseFormatError) {
  func fail(_ detail: String) -> SparseFormatError {
    .invalidEncoding(tensor: name, format: format, detail: detail)
  }
  guard offsets.count == rowCount + 1 else {
    throw fail("row offsets have \(offsets.count) entries, expected \(rowCount + 1)")
  }
  guard offsets.first == 0 else { throw fail("row offsets start at \(offsets[0]), not 0") }
  guard Int(offsets[rowCount]) == indices.count else {
    throw fail("last row offset is \(offsets[rowCount]) but there are \(indices.count) \(unit)s")
  }
  // Check every offset before reading any index: a row range past the end (e.g. offsets
  // [0, 5, 3] over 3 entries) must be reported, not read.
  for r in 0..<rowCount where offsets[r] > offsets[r + 1] {
    throw fail("row offsets decrease at row \(r) (\(offsets[r]) > \(offsets[r + 1]))")
  }
  for r in 0..<rowCount {
    let (lo, hi) = (Int(offsets[r]), Int(offsets[r + 1]))
    var previous = -1
    for i in lo..<hi {
      let c = Int(indices[i])
      guard c >= 0, c < columnCount else {
        throw fail("row \(r): \(unit) column index \(c) is outside 0..<\(columnCount)")
      }
      guard c > previous else {
        throw fail("row \(r): \(unit) column indices are not strictly increasing (\(previous), \(c))")
      }
      previous = c
    }
  }
}

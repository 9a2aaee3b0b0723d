import SparsityCore

/// A tensor that cannot be stored in, or read back from, a sparse format.
///
/// Every case names the tensor and, where there is one, the position that breaks the rule, so
/// the message alone tells a user what to fix.
public enum SparseFormatError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A group or block holds more nonzeros than the pattern allows.
  ///
  /// - `row`, `columns`: where the offending group or block is (columns as a half-open range;
  ///   for blocks, `rows` spans several rows).
  case patternViolation(
    tensor: String, pattern: String, rows: Range<Int>, columns: Range<Int>, nonzeros: Int,
    allowed: Int)
  /// A block, row or column that must be all zero or all nonzero is neither.
  case partialBlock(
    tensor: String, pattern: String, rows: Range<Int>, columns: Range<Int>, nonzeros: Int,
    size: Int)
  /// The shape breaks a rule of the format (minimum size, multiple of a tile, rank).
  case shapeRule(tensor: String, shape: [Int], rule: String)
  /// The format does not store this dtype.
  case unsupportedDType(tensor: String, dtype: DType, format: String, supported: [DType])
  /// Stored indices or metadata are inconsistent (out of range, unsorted, invalid code).
  case invalidEncoding(tensor: String, format: String, detail: String)

  public var description: String {
    switch self {
    case let .patternViolation(tensor, pattern, rows, columns, nonzeros, allowed):
      let rowText = rows.count == 1 ? "row \(rows.lowerBound)" : "rows \(rows.lowerBound)..<\(rows.upperBound)"
      return
        "tensor '\(tensor)' is not \(pattern): \(rowText), columns \(columns.lowerBound)..<\(columns.upperBound) hold \(nonzeros) nonzeros, at most \(allowed) allowed"
    case let .partialBlock(tensor, pattern, rows, columns, nonzeros, size):
      let rowText = rows.count == 1 ? "row \(rows.lowerBound)" : "rows \(rows.lowerBound)..<\(rows.upperBound)"
      return
        "tensor '\(tensor)' is not \(pattern): \(rowText), columns \(columns.lowerBound)..<\(columns.upperBound) hold \(nonzeros) nonzeros of \(size); each must be all zero or all nonzero"
    case let .shapeRule(tensor, shape, rule):
      return "tensor '\(tensor)' with shape \(shape) cannot be stored: \(rule)"
    case let .unsupportedDType(tensor, dtype, format, supported):
      return
        "tensor '\(tensor)' has dtype \(dtype), which \(format) does not store (supported: \(supported.map(\.rawValue).joined(separator: ", ")))"
    case let .invalidEncoding(tensor, format, detail):
      return "tensor '\(tensor)' has an invalid \(format) encoding: \(detail)"
    }
  }
}

import SparsityCore
import Testing

// Tensor comparisons for the test targets: `#expect`-based checks that report the first
// mismatching element (with its multi-index) at the caller's source location.

/// The raw bytes of a tensor.
public func bytes(of tensor: Tensor) -> [UInt8] { tensor.withUnsafeBytes { Array($0) } }

/// The row-major multi-index of flat index `flat` in `shape`.
public func multiIndex(_ flat: Int, in shape: [Int]) -> [Int] {
  var index = [Int](repeating: 0, count: shape.count)
  var rest = flat
  for axis in stride(from: shape.count - 1, through: 0, by: -1) {
    index[axis] = rest % shape[axis]
    rest /= shape[axis]
  }
  return index
}

/// Checks that two tensors have the same shape, dtype and bytes, reporting the first differing element.
public func expectBitwiseEqual(
  _ actual: Tensor, _ expected: Tensor, _ comment: Comment? = nil,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  guard actual.shape == expected.shape, actual.dtype == expected.dtype else {
    Issue.record(
      "shape/dtype \(actual.shape) \(actual.dtype) differs from expected \(expected.shape) \(expected.dtype). \(comment?.rawValue ?? "")",
      sourceLocation: sourceLocation)
    return
  }
  let a = bytes(of: actual)
  let b = bytes(of: expected)
  guard let width = actual.dtype.byteWidth else {
    #expect(a == b, comment, sourceLocation: sourceLocation)
    return
  }
  if let i = (0..<actual.count).first(where: { a[$0 * width..<($0 + 1) * width] != b[$0 * width..<($0 + 1) * width] }) {
    let hex = { (x: ArraySlice<UInt8>) in x.map { String($0, radix: 16) }.joined(separator: " ") }
    Issue.record(
      "first differing element \(i) at \(multiIndex(i, in: actual.shape)): bytes [\(hex(a[i * width..<(i + 1) * width]))], expected [\(hex(b[i * width..<(i + 1) * width]))]. \(comment?.rawValue ?? "")",
      sourceLocation: sourceLocation)
  }
}

/// Checks that every element is within `absoluteTolerance + relativeTolerance·|expected|` (NaN matches only NaN).
public func expectClose(
  _ actual: Tensor, _ expected: Tensor, relativeTolerance: Double = 1e-6,
  absoluteTolerance: Double = 1e-9, _ comment: Comment? = nil,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  guard actual.shape == expected.shape else {
    Issue.record(
      "shape \(actual.shape) differs from expected \(expected.shape). \(comment?.rawValue ?? "")",
      sourceLocation: sourceLocation)
    return
  }
  expectClose(
    actual.doubleValues, expected.doubleValues, shape: actual.shape,
    relativeTolerance: relativeTolerance, absoluteTolerance: absoluteTolerance, comment,
    sourceLocation: sourceLocation)
}

/// ``expectClose(_:_:relativeTolerance:absoluteTolerance:_:sourceLocation:)`` for arrays; `shape` labels a mismatch.
public func expectClose(
  _ actual: [Double], _ expected: [Double], shape: [Int]? = nil,
  relativeTolerance: Double = 1e-6, absoluteTolerance: Double = 1e-9, _ comment: Comment? = nil,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  guard actual.count == expected.count else {
    Issue.record(
      "\(actual.count) values, expected \(expected.count). \(comment?.rawValue ?? "")",
      sourceLocation: sourceLocation)
    return
  }
  for i in 0..<actual.count {
    let (a, b) = (actual[i], expected[i])
    let ok: Bool
    if a.isNaN || b.isNaN {
      ok = a.isNaN && b.isNaN
    } else if a.isInfinite || b.isInfinite {
      ok = a == b
    } else {
      ok = Swift.abs(a - b) <= absoluteTolerance + relativeTolerance * Swift.abs(b)
    }
    if !ok {
      let at = shape.map { " at \(multiIndex(i, in: $0))" } ?? ""
      Issue.record(
        "first mismatch at index \(i)\(at): \(a), expected \(b). \(comment?.rawValue ?? "")",
        sourceLocation: sourceLocation)
      return
    }
  }
}

import SparsityCore
import Testing

// Shared helpers for the SparsityCore tests: seeded tensor makers, index arithmetic for
// reference implementations, and `#expect`-based comparisons that report the first
// mismatching element at the caller's source location.

/// Every dtype with element access and arithmetic.
let numericDTypes: [DType] = DType.allCases.filter(\.isNumeric)
/// Every dtype whose elements fill whole bytes.
let byteAlignedDTypes: [DType] = DType.allCases.filter { $0.byteWidth != nil }

/// `count` uniform doubles in `range`, reproducible from `seed`.
func randomDoubles(_ count: Int, seed: UInt64, in range: ClosedRange<Double> = -1...1) -> [Double] {
  var rng = SeededGenerator(seed: seed)
  return (0..<count).map { _ in
    range.lowerBound + (range.upperBound - range.lowerBound) * rng.nextUnitDouble()
  }
}

/// A tensor whose element bytes are random (bool elements are 0 or 1), reproducible from
/// `seed`. Floating-point elements cover NaNs, infinities and subnormals.
func randomBitsTensor(_ shape: [Int], dtype: DType, seed: UInt64) -> Tensor {
  var rng = SeededGenerator(seed: seed)
  var t = Tensor(zeros: shape, dtype: dtype)
  t.withUnsafeMutableBytes { raw in
    for i in 0..<raw.count {
      raw[i] = dtype == .bool ? UInt8(rng.next() & 1) : UInt8(truncatingIfNeeded: rng.next())
    }
  }
  return t
}

/// A numeric tensor with random values, reproducible from `seed`: about `density` of the
/// elements are nonzero. Floats are small multiples of 1/8 (exact in every float dtype),
/// integers lie in the type's small range, `bool` elements are `true`.
func randomTensor(_ shape: [Int], dtype: DType, seed: UInt64, density: Double = 1) -> Tensor {
  var rng = SeededGenerator(seed: seed)
  let n = Tensor.elementCount(shape)
  var values = [Double](repeating: 0, count: n)
  for i in 0..<n where rng.nextUnitDouble() < density {
    let magnitude = Double(1 + rng.next() % 100)
    let negative = rng.next() & 1 == 1
    switch dtype {
    case .bool: values[i] = 1
    case .uint8, .uint16, .uint32, .uint64: values[i] = magnitude
    case _ where dtype.isInteger: values[i] = negative ? -magnitude : magnitude
    default: values[i] = (negative ? -magnitude : magnitude) / 8
    }
  }
  return Tensor(doubles: values, shape: shape, dtype: dtype)
}

/// The raw bytes of a tensor.
func bytes(of tensor: Tensor) -> [UInt8] { tensor.withUnsafeBytes { Array($0) } }

/// A tensor from raw little-endian bytes.
func tensor(bytes: [UInt8], shape: [Int], dtype: DType) -> Tensor {
  bytes.withUnsafeBytes { Tensor(shape: shape, dtype: dtype, copying: $0) }
}

/// The row-major multi-index of flat index `flat` in `shape`.
func multiIndex(_ flat: Int, in shape: [Int]) -> [Int] {
  var index = [Int](repeating: 0, count: shape.count)
  var rest = flat
  for axis in stride(from: shape.count - 1, through: 0, by: -1) {
    index[axis] = rest % shape[axis]
    rest /= shape[axis]
  }
  return index
}

/// The row-major flat index of `index` in `shape`.
func flatIndex(_ index: [Int], in shape: [Int]) -> Int {
  var flat = 0
  for (i, extent) in zip(index, shape) { flat = flat * extent + i }
  return flat
}

/// Checks that two tensors have the same shape, dtype and bytes; on failure reports the first
/// differing element.
func expectBitwiseEqual(
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

/// Checks that two numeric tensors have the same shape and that every element is within
/// `absoluteTolerance + relativeTolerance·|expected|` (NaN only matches NaN, an infinity only
/// itself); on failure reports the first mismatching index and both values.
func expectClose(
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

/// ``expectClose(_:_:relativeTolerance:absoluteTolerance:_:sourceLocation:)`` for arrays.
func expectClose(
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

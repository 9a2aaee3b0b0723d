import SparsityCore

// Helpers for the SparsityCore tests: dtype lists, seeded tensor makers and index arithmetic
// for reference implementations (the tensor comparisons are in SparsityTestSupport).

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

/// A tensor from raw little-endian bytes.
func tensor(bytes: [UInt8], shape: [Int], dtype: DType) -> Tensor {
  bytes.withUnsafeBytes { Tensor(shape: shape, dtype: dtype, copying: $0) }
}

/// The row-major flat index of `index` in `shape`.
func flatIndex(_ index: [Int], in shape: [Int]) -> Int {
  var flat = 0
  for (i, extent) in zip(index, shape) { flat = flat * extent + i }
  return flat
}

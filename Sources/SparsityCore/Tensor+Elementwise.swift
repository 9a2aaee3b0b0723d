/// An elementwise binary operation.
public enum BinaryOperation: Sendable {
  case add, subtract, multiply, divide, maximum, minimum

  @inlinable
  func apply(_ a: Double, _ b: Double) -> Double {
    switch self {
    case .add: a + b
    case .subtract: a - b
    case .multiply: a * b
    case .divide: a / b
    case .maximum: a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
    case .minimum: a.isNaN || b.isNaN ? .nan : Swift.min(a, b)
    }
  }

  @inlinable
  func apply(_ a: Float, _ b: Float) -> Float {
    switch self {
    case .add: a + b
    case .subtract: a - b
    case .multiply: a * b
    case .divide: a / b
    case .maximum: a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
    case .minimum: a.isNaN || b.isNaN ? .nan : Swift.min(a, b)
    }
  }
}

/// An elementwise comparison producing a `bool` tensor.
public enum Comparison: Sendable {
  case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual

  @inlinable
  func apply(_ a: Double, _ b: Double) -> Bool {
    switch self {
    case .equal: a == b
    case .notEqual: a != b
    case .less: a < b
    case .lessOrEqual: a <= b
    case .greater: a > b
    case .greaterOrEqual: a >= b
    }
  }
}

extension Tensor {
  /// The shape two shapes broadcast to (NumPy rules), or `nil` if they are incompatible.
  public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let rank = Swift.max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
      let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
      let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
      if x == y || y == 1 {
        result[i] = x
      } else if x == 1 {
        result[i] = y
      } else {
        return nil
      }
    }
    return result
  }

  /// Calls `body(outputIndex, offsetA, offsetB)` for every element of the broadcast result.
  static func forEachBroadcast(
    _ a: [Int], _ b: [Int], into shape: [Int], _ body: (Int, Int, Int) -> Void
  ) {
    let rank = shape.count
    func broadcastStrides(_ s: [Int]) -> [Int] {
      let own = Tensor.strides(of: s)
      return (0..<rank).map { i in
        let j = i - (rank - s.count)
        return j < 0 || s[j] == 1 ? 0 : own[j]
      }
    }
    let sa = broadcastStrides(a)
    let sb = broadcastStrides(b)
    let n = Tensor.elementCount(shape)
    var index = [Int](repeating: 0, count: rank)
    var oa = 0
    var ob = 0
    for flat in 0..<n {
      body(flat, oa, ob)
      var axis = rank - 1
      while axis >= 0 {
        index[axis] += 1
        oa += sa[axis]
        ob += sb[axis]
        if index[axis] < shape[axis] { break }
        oa -= sa[axis] * shape[axis]
        ob -= sb[axis] * shape[axis]
        index[axis] = 0
        axis -= 1
      }
    }
  }

  /// Applies `operation` elementwise with NumPy broadcasting; the result has `self`'s dtype.
  ///
  /// - Precondition: both tensors are numeric with the same dtype and broadcastable shapes.
  public func elementwise(_ operation: BinaryOperation, _ other: Tensor) -> Tensor {
    precondition(dtype == other.dtype, "dtype mismatch: \(dtype) and \(other.dtype)")
    guard let outShape = Tensor.broadcastShape(shape, other.shape) else {
      preconditionFailure("shapes \(shape) and \(other.shape) do not broadcast")
    }
    if dtype == .float32 && shape == other.shape {
      var result = Tensor(zeros: shape, dtype: .float32)
      withUnsafeBufferPointer(as: Float.self) { a in
        other.withUnsafeBufferPointer(as: Float.self) { b in
          result.withUnsafeMutableBufferPointer(as: Float.self) { out in
            for i in 0..<out.count { out[i] = operation.apply(a[i], b[i]) }
          }
        }
      }
      return result
    }
    let a = doubleValues
    let b = other.doubleValues
    var out = [Double](repeating: 0, count: Tensor.elementCount(outShape))
    Tensor.forEachBroadcast(shape, other.shape, into: outShape) { i, ia, ib in
      out[i] = operation.apply(a[ia], b[ib])
    }
    return Tensor(doubles: out, shape: outShape, dtype: dtype)
  }

  /// Compares elementwise with broadcasting, giving a `bool` tensor.
  public func compared(_ comparison: Comparison, _ other: Tensor) -> Tensor {
    guard let outShape = Tensor.broadcastShape(shape, other.shape) else {
      preconditionFailure("shapes \(shape) and \(other.shape) do not broadcast")
    }
    let a = doubleValues
    let b = other.doubleValues
    var out = [Bool](repeating: false, count: Tensor.elementCount(outShape))
    Tensor.forEachBroadcast(shape, other.shape, into: outShape) { i, ia, ib in
      out[i] = comparison.apply(a[ia], b[ib])
    }
    return Tensor(out, shape: outShape)
  }

  /// Compares every element with a number, giving a `bool` tensor.
  public func compared(_ comparison: Comparison, _ value: Double) -> Tensor {
    Tensor(doubleValues.map { comparison.apply($0, value) }, shape: shape)
  }

  /// A tensor of `dtype` from `Double` values (converted as in ``converted(to:)``).
  public init(doubles: [Double], shape: [Int], dtype: DType) {
    guard let type = dtype.scalarType else {
      preconditionFailure("dtype \(dtype) is not numeric")
    }
    self = Tensor.make(doubles, shape: shape, as: type)
  }

  private static func make<S: TensorScalar>(_ values: [Double], shape: [Int], as: S.Type)
    -> Tensor
  {
    Tensor(values.map { S(converting: $0) }, shape: shape)
  }

  /// Applies `transform` to every element (computed in `Double`), keeping the dtype.
  public func map(_ transform: (Double) -> Double) -> Tensor {
    if dtype == .float32 {
      var result = self
      result.withUnsafeMutableBufferPointer(as: Float.self) { p in
        for i in 0..<p.count { p[i] = Float(transform(Double(p[i]))) }
      }
      return result
    }
    return Tensor(doubles: doubleValues.map(transform), shape: shape, dtype: dtype)
  }

  /// Elementwise absolute value.
  public func abs() -> Tensor { map { Swift.abs($0) } }

  /// Elements where `mask` is `true`, zero elsewhere (`mask` broadcasts).
  public func masked(by mask: Tensor) -> Tensor {
    precondition(mask.dtype == .bool, "mask must be bool, got \(mask.dtype)")
    guard let outShape = Tensor.broadcastShape(shape, mask.shape), outShape == shape else {
      preconditionFailure("mask shape \(mask.shape) does not broadcast to \(shape)")
    }
    var result = self
    let width = elementByteWidth
    mask.withUnsafeBufferPointer(as: Bool.self) { keep in
      result.withUnsafeMutableBytes { out in
        Tensor.forEachBroadcast(shape, mask.shape, into: shape) { i, _, im in
          if !keep[im] {
            (out.baseAddress! + i * width).initializeMemory(as: UInt8.self, repeating: 0, count: width)
          }
        }
      }
    }
    return result
  }

  public static func + (a: Tensor, b: Tensor) -> Tensor { a.elementwise(.add, b) }
  public static func - (a: Tensor, b: Tensor) -> Tensor { a.elementwise(.subtract, b) }
  public static func * (a: Tensor, b: Tensor) -> Tensor { a.elementwise(.multiply, b) }
  public static func / (a: Tensor, b: Tensor) -> Tensor { a.elementwise(.divide, b) }
  public static prefix func - (a: Tensor) -> Tensor { a.map { -$0 } }
  public static func + (a: Tensor, b: Double) -> Tensor { a.map { $0 + b } }
  public static func - (a: Tensor, b: Double) -> Tensor { a.map { $0 - b } }
  public static func * (a: Tensor, b: Double) -> Tensor { a.map { $0 * b } }
  public static func / (a: Tensor, b: Double) -> Tensor { a.map { $0 / b } }
}

extension Tensor {
  /// This tensor with its elements converted to `dtype`.
  ///
  /// Floating-point results round to nearest, ties to even (`Float16`, ``BFloat16``, `Float`).
  /// Integer results truncate toward zero and saturate at the type's bounds; NaN becomes 0.
  /// `Bool` results are `value != 0`. Integers pass through `Double`, exact below 2^53.
  ///
  /// - Precondition: both dtypes are numeric (``DType/isNumeric``).
  public func converted(to dtype: DType) -> Tensor {
    if dtype == self.dtype { return self }
    guard let source = self.dtype.scalarType, let target = dtype.scalarType else {
      preconditionFailure("cannot convert \(self.dtype) to \(dtype): not a numeric dtype")
    }
    var result = Tensor(zeros: shape, dtype: dtype)
    Tensor.convert(self, from: source, into: &result, to: target)
    return result
  }

  private static func convert<S: TensorScalar>(
    _ input: Tensor, from: S.Type, into output: inout Tensor, to target: any TensorScalar.Type
  ) {
    input.withUnsafeBufferPointer(as: S.self) { src in convert(src, into: &output, to: target) }
  }

  private static func convert<S: TensorScalar, D: TensorScalar>(
    _ src: UnsafeBufferPointer<S>, into output: inout Tensor, to: D.Type
  ) {
    output.withUnsafeMutableBufferPointer(as: D.self) { dst in
      if S.self == Float.self, D.self == BFloat16.self {
        // The hot case (weights to bf16): round directly from binary32.
        let f = UnsafeRawBufferPointer(src).bindMemory(to: Float.self)
        let b = UnsafeMutableRawBufferPointer(dst).bindMemory(to: BFloat16.self)
        for i in 0..<f.count { b[i] = BFloat16(f[i]) }
      } else if S.self == Float.self, D.self == Float16.self {
        let f = UnsafeRawBufferPointer(src).bindMemory(to: Float.self)
        let h = UnsafeMutableRawBufferPointer(dst).bindMemory(to: Float16.self)
        for i in 0..<f.count { h[i] = Float16(f[i]) }
      } else {
        for i in 0..<src.count { dst[i] = D(converting: src[i].doubleValue) }
      }
    }
  }

  /// The number of elements that are not zero. Works for every byte-aligned dtype, including
  /// the storage-only 8-bit floats (a value is zero when its magnitude bits are zero; `-0.0`
  /// is zero; `F8_E8M0` has no zero) and `C64` (zero when both parts are zero).
  ///
  /// - Precondition: the dtype is not a sub-byte type (`F4`, `F6_*`).
  public var nonzeroCount: Int {
    var n = 0
    forEachZeroFlag { isZero in if !isZero { n += 1 } }
    return n
  }

  /// The fraction of elements that are zero (0 for an empty tensor).
  public var sparsity: Double {
    count == 0 ? 0 : Double(count - nonzeroCount) / Double(count)
  }

  /// A `bool` tensor of the same shape that is `true` where an element is nonzero.
  public var nonzeroMask: Tensor {
    var result = Tensor(zeros: shape, dtype: .bool)
    result.withUnsafeMutableBufferPointer(as: Bool.self) { out in
      var i = 0
      forEachZeroFlag { isZero in
        out[i] = !isZero
        i += 1
      }
    }
    return result
  }

  /// Calls `body` once per element, in order, with whether that element is zero.
  public func forEachZeroFlag(_ body: (Bool) -> Void) {
    guard let width = dtype.byteWidth else {
      preconditionFailure("zero test is not defined for sub-byte dtype \(dtype)")
    }
    withUnsafeBytes { raw in
      let n = count
      switch (dtype, width) {
      case (.float8E8M0, _):
        for _ in 0..<n { body(false) }
      case (.float16, _), (.bfloat16, _):
        let p = raw.bindMemory(to: UInt16.self)
        for i in 0..<n { body(p[i] & 0x7FFF == 0) }
      case (.float32, _):
        let p = raw.bindMemory(to: UInt32.self)
        for i in 0..<n { body(p[i] & 0x7FFF_FFFF == 0) }
      case (.float64, _):
        let p = raw.bindMemory(to: UInt64.self)
        for i in 0..<n { body(p[i] & 0x7FFF_FFFF_FFFF_FFFF == 0) }
      case (.complex64, _):
        let p = raw.bindMemory(to: UInt32.self)
        for i in 0..<n { body(p[2 * i] & 0x7FFF_FFFF == 0 && p[2 * i + 1] & 0x7FFF_FFFF == 0) }
      case (.float8E5M2, _), (.float8E4M3, _):
        let p = raw.bindMemory(to: UInt8.self)
        for i in 0..<n { body(p[i] & 0x7F == 0) }
      case (_, 1):
        // Integers, bool, and the FNUZ floats (whose 0x80 is NaN, not -0).
        let p = raw.bindMemory(to: UInt8.self)
        for i in 0..<n { body(p[i] == 0) }
      case (_, 2):
        let p = raw.bindMemory(to: UInt16.self)
        for i in 0..<n { body(p[i] == 0) }
      case (_, 4):
        let p = raw.bindMemory(to: UInt32.self)
        for i in 0..<n { body(p[i] == 0) }
      default:
        let p = raw.bindMemory(to: UInt64.self)
        for i in 0..<n { body(p[i] == 0) }
      }
    }
  }
}

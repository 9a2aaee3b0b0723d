/// A Swift type that is the element type of a numeric ``DType``.
///
/// `Float`, `Double`, `Float16`, ``BFloat16``, `Int8`, `Int16`, `Int32`, `Int64`, `UInt8`,
/// `UInt16`, `UInt32`, `UInt64` and `Bool` conform. Typed access to a tensor's elements
/// (``Tensor/withUnsafeBufferPointer(as:_:)``) names one of these types.
public protocol TensorScalar: Sendable {
  /// The dtype whose elements have this type's layout.
  static var dtype: DType { get }
  /// The value as a `Double` (exact for every type but 64-bit integers above 2^53).
  var doubleValue: Double { get }
  /// Converts a `Double`: floats round to nearest even; integers truncate toward zero and
  /// saturate at their bounds (NaN becomes 0); `Bool` is `value != 0`.
  init(converting value: Double)
  /// Whether the value is zero (`-0.0` counts as zero).
  var isZeroValue: Bool { get }
}

/// A ``TensorScalar`` that is a signed or unsigned integer.
public protocol IntegerTensorScalar: TensorScalar, FixedWidthInteger {}

extension IntegerTensorScalar {
  public var doubleValue: Double { Double(self) }
  public init(converting value: Double) {
    if value.isNaN {
      self = 0
    } else if value <= Double(Self.min) {
      self = .min
    } else if value >= Double(Self.max) {
      self = .max
    } else {
      self = Self(value.rounded(.towardZero))
    }
  }
  public var isZeroValue: Bool { self == 0 }
}

extension Int8: IntegerTensorScalar { public static var dtype: DType { .int8 } }
extension Int16: IntegerTensorScalar { public static var dtype: DType { .int16 } }
extension Int32: IntegerTensorScalar { public static var dtype: DType { .int32 } }
extension Int64: IntegerTensorScalar { public static var dtype: DType { .int64 } }
extension UInt8: IntegerTensorScalar { public static var dtype: DType { .uint8 } }
extension UInt16: IntegerTensorScalar { public static var dtype: DType { .uint16 } }
extension UInt32: IntegerTensorScalar { public static var dtype: DType { .uint32 } }
extension UInt64: IntegerTensorScalar { public static var dtype: DType { .uint64 } }

extension Float: TensorScalar {
  public static var dtype: DType { .float32 }
  public var doubleValue: Double { Double(self) }
  public init(converting value: Double) { self = Float(value) }
  public var isZeroValue: Bool { self == 0 }
}

extension Double: TensorScalar {
  public static var dtype: DType { .float64 }
  public var doubleValue: Double { self }
  public init(converting value: Double) { self = value }
  public var isZeroValue: Bool { self == 0 }
}

extension Float16: TensorScalar {
  public static var dtype: DType { .float16 }
  public var doubleValue: Double { Double(self) }
  public init(converting value: Double) { self = Float16(value) }
  public var isZeroValue: Bool { self == 0 }
}

extension BFloat16: TensorScalar {
  public static var dtype: DType { .bfloat16 }
  public var doubleValue: Double { Double(floatValue) }
  public init(converting value: Double) { self = BFloat16(value) }
  public var isZeroValue: Bool { bitPattern & 0x7FFF == 0 }
}

extension Bool: TensorScalar {
  public static var dtype: DType { .bool }
  public var doubleValue: Double { self ? 1 : 0 }
  public init(converting value: Double) { self = value != 0 }
  public var isZeroValue: Bool { !self }
}

extension DType {
  /// The Swift element type of a numeric dtype, or `nil` for storage-only dtypes.
  public var scalarType: (any TensorScalar.Type)? {
    switch self {
    case .bool: Bool.self
    case .uint8: UInt8.self
    case .int8: Int8.self
    case .int16: Int16.self
    case .uint16: UInt16.self
    case .float16: Float16.self
    case .bfloat16: BFloat16.self
    case .int32: Int32.self
    case .uint32: UInt32.self
    case .float32: Float.self
    case .float64: Double.self
    case .int64: Int64.self
    case .uint64: UInt64.self
    default: nil
    }
  }
}

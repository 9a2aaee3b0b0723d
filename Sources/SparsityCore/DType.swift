/// The element type of a ``Tensor``.
///
/// The raw value of each case is its name in the safetensors format (`"F32"`, `"BF16"`, …), so
/// `DType(rawValue: "F16")` parses a file's dtype string. Every dtype of the safetensors
/// specification can be *stored*; element access and arithmetic are available for the numeric
/// ones (``isNumeric``). Sub-byte floats (`F4`, `F6_*`), the 8-bit floats and `C64` are kept as
/// raw bytes: they load, save and count zeros, but do not convert.
public enum DType: String, CaseIterable, Sendable, Hashable, CustomStringConvertible {
  case bool = "BOOL"
  case float4E2M1 = "F4"
  case float6E2M3 = "F6_E2M3"
  case float6E3M2 = "F6_E3M2"
  case uint8 = "U8"
  case int8 = "I8"
  case float8E5M2 = "F8_E5M2"
  case float8E4M3 = "F8_E4M3"
  case float8E8M0 = "F8_E8M0"
  case float8E4M3FNUZ = "F8_E4M3FNUZ"
  case float8E5M2FNUZ = "F8_E5M2FNUZ"
  case int16 = "I16"
  case uint16 = "U16"
  case float16 = "F16"
  case bfloat16 = "BF16"
  case int32 = "I32"
  case uint32 = "U32"
  case float32 = "F32"
  case complex64 = "C64"
  case float64 = "F64"
  case int64 = "I64"
  case uint64 = "U64"

  /// Bits per element (4, 6, 8, 16, 32 or 64).
  public var bitWidth: Int {
    switch self {
    case .float4E2M1: 4
    case .float6E2M3, .float6E3M2: 6
    case .bool, .uint8, .int8, .float8E5M2, .float8E4M3, .float8E8M0, .float8E4M3FNUZ,
      .float8E5M2FNUZ:
      8
    case .int16, .uint16, .float16, .bfloat16: 16
    case .int32, .uint32, .float32: 32
    case .complex64, .float64, .int64, .uint64: 64
    }
  }

  /// Bytes per element, or `nil` for the sub-byte types.
  public var byteWidth: Int? { bitWidth % 8 == 0 ? bitWidth / 8 : nil }

  /// Whether elements convert to and from numbers (and so support arithmetic and conversion).
  public var isNumeric: Bool {
    switch self {
    case .bool, .uint8, .int8, .int16, .uint16, .float16, .bfloat16, .int32, .uint32, .float32,
      .float64, .int64, .uint64:
      true
    default: false
    }
  }

  /// Whether the dtype is a floating-point type (including the storage-only 4/6/8-bit floats).
  public var isFloatingPoint: Bool {
    switch self {
    case .float16, .bfloat16, .float32, .float64, .float4E2M1, .float6E2M3, .float6E3M2,
      .float8E5M2, .float8E4M3, .float8E8M0, .float8E4M3FNUZ, .float8E5M2FNUZ, .complex64:
      true
    default: false
    }
  }

  /// Whether the dtype is a signed or unsigned integer type (not `bool`).
  public var isInteger: Bool {
    switch self {
    case .uint8, .int8, .int16, .uint16, .int32, .uint32, .int64, .uint64: true
    default: false
    }
  }

  /// The number of bytes that `count` elements occupy, or `nil` when the count does not fill
  /// whole bytes (a sub-byte dtype) or overflows.
  public func byteCount(elements count: Int) -> Int? {
    let (bits, overflow) = count.multipliedReportingOverflow(by: bitWidth)
    guard !overflow, bits % 8 == 0 else { return nil }
    return bits / 8
  }

  public var description: String { rawValue }
}

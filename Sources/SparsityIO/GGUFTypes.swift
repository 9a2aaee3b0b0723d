// The value types of GGUF metadata and the ggml tensor types, as gguf-py's `constants.py`
// (0.19.0) defines them.

/// A ggml tensor type: its id in a GGUF tensor info, its name, and its block size.
///
/// Every id of gguf-py's `GGML_QUANT_SIZES` is known, so files holding types this library cannot
/// dequantize still open and validate (offsets and sizes need every type's block size); any
/// other id is rejected (``GGUFError/unknownTensorType(name:typeID:)``). Quantized types store
/// ``blockElements`` consecutive elements of a row (along `dimensions[0]`) in ``blockBytes``
/// bytes:
///
/// ```swift
/// GGMLType.q4_1.blockElements  // 32
/// GGMLType.q4_1.blockBytes     // 20: f16 d, f16 m, 16 bytes of nibbles
/// GGMLType(rawValue: 3)        // Q4_1
/// ```
public struct GGMLType: Sendable, Hashable, CaseIterable, CustomStringConvertible {
  /// The type id stored in the file (`enum ggml_type`).
  public let rawValue: UInt32
  /// The name gguf-py and ggml use: `"F32"`, `"Q4_K"`, `"BF16"`…
  public let name: String
  /// The number of elements in one block (1 for plain types).
  public let blockElements: Int
  /// The number of bytes of one block.
  public let blockBytes: Int

  private init(_ rawValue: UInt32, _ name: String, _ blockElements: Int, _ blockBytes: Int) {
    self.rawValue = rawValue
    self.name = name
    self.blockElements = blockElements
    self.blockBytes = blockBytes
  }

  /// The type with id `rawValue`, or `nil` for an id gguf-py does not define (removed ids 4, 5,
  /// 31–33, 36–38 included).
  public init?(rawValue: UInt32) {
    guard let type = GGMLType.byID[rawValue] else { return nil }
    self = type
  }

  /// The type named `name` (`"Q8_0"`), or `nil`.
  public init?(name: String) {
    guard let type = GGMLType.allCases.first(where: { $0.name == name }) else { return nil }
    self = type
  }

  public var description: String { name }

  /// Whether ``GGUFFile/dequantized(_:)`` can decode this type: F32, F16, BF16, Q8_0, Q4_0,
  /// Q4_1, Q5_0, Q5_1.
  public var isDequantizable: Bool {
    switch rawValue {
    case 0, 1, 30, 8, 2, 3, 6, 7: true
    default: false
    }
  }

  public static func == (a: GGMLType, b: GGMLType) -> Bool { a.rawValue == b.rawValue }
  public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

  private static let qk = 256  // QK_K, the super-block of the k-quants

  public static let f32 = GGMLType(0, "F32", 1, 4)
  public static let f16 = GGMLType(1, "F16", 1, 2)
  public static let q4_0 = GGMLType(2, "Q4_0", 32, 2 + 16)
  public static let q4_1 = GGMLType(3, "Q4_1", 32, 2 + 2 + 16)
  public static let q5_0 = GGMLType(6, "Q5_0", 32, 2 + 4 + 16)
  public static let q5_1 = GGMLType(7, "Q5_1", 32, 2 + 2 + 4 + 16)
  public static let q8_0 = GGMLType(8, "Q8_0", 32, 2 + 32)
  public static let q8_1 = GGMLType(9, "Q8_1", 32, 4 + 4 + 32)
  public static let q2_K = GGMLType(10, "Q2_K", qk, 2 + 2 + qk / 16 + qk / 4)
  public static let q3_K = GGMLType(11, "Q3_K", qk, 2 + qk / 4 + qk / 8 + 12)
  public static let q4_K = GGMLType(12, "Q4_K", qk, 2 + 2 + qk / 2 + 12)
  public static let q5_K = GGMLType(13, "Q5_K", qk, 2 + 2 + qk / 2 + qk / 8 + 12)
  public static let q6_K = GGMLType(14, "Q6_K", qk, 2 + qk / 2 + qk / 4 + qk / 16)
  public static let q8_K = GGMLType(15, "Q8_K", qk, 4 + qk + qk / 8)
  public static let iq2_XXS = GGMLType(16, "IQ2_XXS", qk, 2 + qk / 4)
  public static let iq2_XS = GGMLType(17, "IQ2_XS", qk, 2 + qk / 4 + qk / 32)
  public static let iq3_XXS = GGMLType(18, "IQ3_XXS", qk, 2 + qk / 4 + qk / 8)
  public static let iq1_S = GGMLType(19, "IQ1_S", qk, 2 + qk / 8 + qk / 16)
  public static let iq4_NL = GGMLType(20, "IQ4_NL", 32, 2 + 16)
  public static let iq3_S = GGMLType(21, "IQ3_S", qk, 2 + qk / 4 + qk / 8 + qk / 32 + 4)
  public static let iq2_S = GGMLType(22, "IQ2_S", qk, 2 + qk / 4 + qk / 16)
  public static let iq4_XS = GGMLType(23, "IQ4_XS", qk, 2 + 2 + qk / 2 + qk / 64)
  public static let i8 = GGMLType(24, "I8", 1, 1)
  public static let i16 = GGMLType(25, "I16", 1, 2)
  public static let i32 = GGMLType(26, "I32", 1, 4)
  public static let i64 = GGMLType(27, "I64", 1, 8)
  public static let f64 = GGMLType(28, "F64", 1, 8)
  public static let iq1_M = GGMLType(29, "IQ1_M", qk, qk / 8 + qk / 16 + qk / 32)
  public static let bf16 = GGMLType(30, "BF16", 1, 2)
  public static let tq1_0 = GGMLType(34, "TQ1_0", qk, 2 + 4 * 13)
  public static let tq2_0 = GGMLType(35, "TQ2_0", qk, 2 + 64)
  public static let mxfp4 = GGMLType(39, "MXFP4", 32, 1 + 16)
  public static let nvfp4 = GGMLType(40, "NVFP4", 64, 4 + 32)
  public static let q1_0 = GGMLType(41, "Q1_0", 128, 2 + 16)

  /// Every known type, by id.
  public static let allCases: [GGMLType] = [
    f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, q2_K, q3_K, q4_K, q5_K, q6_K, q8_K, iq2_XXS,
    iq2_XS, iq3_XXS, iq1_S, iq4_NL, iq3_S, iq2_S, iq4_XS, i8, i16, i32, i64, f64, iq1_M, bf16,
    tq1_0, tq2_0, mxfp4, nvfp4, q1_0,
  ]

  private static let byID: [UInt32: GGMLType] = Dictionary(
    uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })

  /// The bytes of one row of `elements` elements, or `nil` when `elements` is not a whole
  /// number of blocks or the size overflows.
  public func rowBytes(elements: Int) -> Int? {
    guard elements >= 0, elements % blockElements == 0 else { return nil }
    let (bytes, overflow) = (elements / blockElements).multipliedReportingOverflow(by: blockBytes)
    return overflow ? nil : bytes
  }
}

/// The type of a GGUF metadata value (`gguf_type`, ids 0–12).
public enum GGUFValueType: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
  case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64

  /// The spec's name: `"UINT8"`, `"STRING"`, `"ARRAY"`…
  public var name: String {
    switch self {
    case .uint8: "UINT8"
    case .int8: "INT8"
    case .uint16: "UINT16"
    case .int16: "INT16"
    case .uint32: "UINT32"
    case .int32: "INT32"
    case .float32: "FLOAT32"
    case .bool: "BOOL"
    case .string: "STRING"
    case .array: "ARRAY"
    case .uint64: "UINT64"
    case .int64: "INT64"
    case .float64: "FLOAT64"
    }
  }

  public var description: String { name }

  /// The encoded size of a fixed-size value, `nil` for strings and arrays.
  public var byteWidth: Int? {
    switch self {
    case .uint8, .int8, .bool: 1
    case .uint16, .int16: 2
    case .uint32, .int32, .float32: 4
    case .uint64, .int64, .float64: 8
    case .string, .array: nil
    }
  }
}

/// One GGUF metadata value.
///
/// ```swift
/// if case .string(let name) = file.metadata["general.architecture"] { print(name) }  // "llama"
/// ```
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
  case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
  case float32(Float), bool(Bool), string(String), array(GGUFArray)
  case uint64(UInt64), int64(Int64), float64(Double)

  /// The value's type.
  public var type: GGUFValueType {
    switch self {
    case .uint8: .uint8
    case .int8: .int8
    case .uint16: .uint16
    case .int16: .int16
    case .uint32: .uint32
    case .int32: .int32
    case .float32: .float32
    case .bool: .bool
    case .string: .string
    case .array: .array
    case .uint64: .uint64
    case .int64: .int64
    case .float64: .float64
    }
  }

  /// The type as the spec writes it, with an array's element type: `"UINT32"`, `"[STRING]"`.
  public var typeName: String {
    if case .array(let array) = self { return "[\(array.elementType.name)]" }
    return type.name
  }

  /// The value of an integer type as an `Int`, or `nil` (not an integer, or a `UINT64` above
  /// `Int.max`).
  public var intValue: Int? {
    switch self {
    case .uint8(let v): Int(v)
    case .int8(let v): Int(v)
    case .uint16(let v): Int(v)
    case .int16(let v): Int(v)
    case .uint32(let v): Int(v)
    case .int32(let v): Int(v)
    case .uint64(let v): Int(exactly: v)
    case .int64(let v): Int(v)
    default: nil
    }
  }

  /// The value as text: numbers in full (floats round-trip), strings quoted and escaped,
  /// arrays in full. ``GGUFFile`` callers that print large arrays should summarize them.
  public var description: String {
    switch self {
    case .uint8(let v): "\(v)"
    case .int8(let v): "\(v)"
    case .uint16(let v): "\(v)"
    case .int16(let v): "\(v)"
    case .uint32(let v): "\(v)"
    case .int32(let v): "\(v)"
    case .float32(let v): "\(v)"
    case .bool(let v): "\(v)"
    case .string(let v): v.debugDescription
    case .array(let a): "[" + (0..<a.count).map { a[$0].description }.joined(separator: ", ") + "]"
    case .uint64(let v): "\(v)"
    case .int64(let v): "\(v)"
    case .float64(let v): "\(v)"
    }
  }
}

/// A GGUF metadata array: its elements, stored by type (arrays of arrays are rejected when
/// reading, as ggml does).
///
/// ```swift
/// if case .array(.string(let tokens)) = file.metadata["tokenizer.ggml.tokens"] { print(tokens.count) }
/// ```
public enum GGUFArray: Sendable, Equatable {
  case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16]), uint32([UInt32]), int32([Int32])
  case float32([Float]), bool([Bool]), string([String])
  case uint64([UInt64]), int64([Int64]), float64([Double])

  /// The type of every element (never ``GGUFValueType/array``).
  public var elementType: GGUFValueType {
    switch self {
    case .uint8: .uint8
    case .int8: .int8
    case .uint16: .uint16
    case .int16: .int16
    case .uint32: .uint32
    case .int32: .int32
    case .float32: .float32
    case .bool: .bool
    case .string: .string
    case .uint64: .uint64
    case .int64: .int64
    case .float64: .float64
    }
  }

  /// The number of elements.
  public var count: Int {
    switch self {
    case .uint8(let a): a.count
    case .int8(let a): a.count
    case .uint16(let a): a.count
    case .int16(let a): a.count
    case .uint32(let a): a.count
    case .int32(let a): a.count
    case .float32(let a): a.count
    case .bool(let a): a.count
    case .string(let a): a.count
    case .uint64(let a): a.count
    case .int64(let a): a.count
    case .float64(let a): a.count
    }
  }

  /// Element `index` as a scalar value.
  ///
  /// - Precondition: `0 <= index < count`.
  public subscript(index: Int) -> GGUFValue {
    switch self {
    case .uint8(let a): .uint8(a[index])
    case .int8(let a): .int8(a[index])
    case .uint16(let a): .uint16(a[index])
    case .int16(let a): .int16(a[index])
    case .uint32(let a): .uint32(a[index])
    case .int32(let a): .int32(a[index])
    case .float32(let a): .float32(a[index])
    case .bool(let a): .bool(a[index])
    case .string(let a): .string(a[index])
    case .uint64(let a): .uint64(a[index])
    case .int64(let a): .int64(a[index])
    case .float64(let a): .float64(a[index])
    }
  }
}

/// One tensor's info in a GGUF file.
///
/// `dimensions` are as stored, fastest-varying first (ggml's `ne`); ``shape`` is the row-major
/// shape, reversed: GGUF dims `[576, 192]` are the PyTorch weight `[192, 576]` (out × in), and
/// quantization blocks run along the last axis of ``shape``.
public struct GGUFTensorInfo: Sendable, Hashable {
  /// The tensor's name, e.g. `"blk.0.attn_q.weight"` (1–63 bytes of UTF-8).
  public var name: String
  /// The extents as stored: `dimensions[0]` is `ne0`, the contiguous axis (1–4 extents, each ≥ 1).
  public var dimensions: [Int]
  /// The element (block) type.
  public var type: GGMLType
  /// The first byte, relative to the start of the data section (a multiple of the alignment).
  public var offset: Int
  /// The number of bytes of data (without the padding that follows).
  public var byteCount: Int

  /// Creates a tensor info; ``GGUFFile`` makes these while validating a file.
  public init(name: String, dimensions: [Int], type: GGMLType, offset: Int, byteCount: Int) {
    self.name = name
    self.dimensions = dimensions
    self.type = type
    self.offset = offset
    self.byteCount = byteCount
  }

  /// The row-major shape: ``dimensions`` reversed (`[ne1, ne0]` for a matrix).
  public var shape: [Int] { dimensions.reversed() }

  /// The number of elements (the product of the dimensions).
  public var elementCount: Int { dimensions.reduce(1, *) }
}

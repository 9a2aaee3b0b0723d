import SparsityCore
import Testing

@Suite("DType")
struct DTypeTests {
  struct Row: Sendable, CustomTestStringConvertible {
    var dtype: DType
    var bits: Int
    var numeric: Bool
    var float: Bool
    var integer: Bool
    var testDescription: String { dtype.rawValue }
  }

  static let table: [Row] = [
    Row(dtype: .bool, bits: 8, numeric: true, float: false, integer: false),
    Row(dtype: .float4E2M1, bits: 4, numeric: false, float: true, integer: false),
    Row(dtype: .float6E2M3, bits: 6, numeric: false, float: true, integer: false),
    Row(dtype: .float6E3M2, bits: 6, numeric: false, float: true, integer: false),
    Row(dtype: .uint8, bits: 8, numeric: true, float: false, integer: true),
    Row(dtype: .int8, bits: 8, numeric: true, float: false, integer: true),
    Row(dtype: .float8E5M2, bits: 8, numeric: false, float: true, integer: false),
    Row(dtype: .float8E4M3, bits: 8, numeric: false, float: true, integer: false),
    Row(dtype: .float8E8M0, bits: 8, numeric: false, float: true, integer: false),
    Row(dtype: .float8E4M3FNUZ, bits: 8, numeric: false, float: true, integer: false),
    Row(dtype: .float8E5M2FNUZ, bits: 8, numeric: false, float: true, integer: false),
    Row(dtype: .int16, bits: 16, numeric: true, float: false, integer: true),
    Row(dtype: .uint16, bits: 16, numeric: true, float: false, integer: true),
    Row(dtype: .float16, bits: 16, numeric: true, float: true, integer: false),
    Row(dtype: .bfloat16, bits: 16, numeric: true, float: true, integer: false),
    Row(dtype: .int32, bits: 32, numeric: true, float: false, integer: true),
    Row(dtype: .uint32, bits: 32, numeric: true, float: false, integer: true),
    Row(dtype: .float32, bits: 32, numeric: true, float: true, integer: false),
    Row(dtype: .complex64, bits: 64, numeric: false, float: true, integer: false),
    Row(dtype: .float64, bits: 64, numeric: true, float: true, integer: false),
    Row(dtype: .int64, bits: 64, numeric: true, float: false, integer: true),
    Row(dtype: .uint64, bits: 64, numeric: true, float: false, integer: true),
  ]

  @Test func tableCoversEveryCase() {
    #expect(Set(Self.table.map(\.dtype)) == Set(DType.allCases))
    #expect(Self.table.count == DType.allCases.count)
  }

  @Test(arguments: table)
  func widthsAndFlags(_ row: Row) {
    #expect(row.dtype.bitWidth == row.bits)
    #expect(row.dtype.byteWidth == (row.bits % 8 == 0 ? row.bits / 8 : nil))
    #expect(row.dtype.isNumeric == row.numeric)
    #expect(row.dtype.isFloatingPoint == row.float)
    #expect(row.dtype.isInteger == row.integer)
    #expect((row.dtype.scalarType != nil) == row.numeric)
    #expect(DType(rawValue: row.dtype.rawValue) == row.dtype)
    #expect(row.dtype.description == row.dtype.rawValue)
  }

  @Test(arguments: numericDTypes)
  func scalarTypeMatchesLayout(_ dtype: DType) throws {
    let type = try #require(dtype.scalarType)
    #expect(type.dtype == dtype)
    // The element byte width agrees with the Swift type's stride.
    func stride<S: TensorScalar>(_: S.Type) -> Int { MemoryLayout<S>.stride }
    #expect(stride(type) == dtype.byteWidth)
  }

  @Test(arguments: [
    ("F32", DType.float32), ("BF16", .bfloat16), ("F16", .float16), ("I8", .int8), ("U8", .uint8),
    ("BOOL", .bool), ("F8_E4M3", .float8E4M3), ("F8_E5M2FNUZ", .float8E5M2FNUZ), ("F4", .float4E2M1),
    ("F6_E3M2", .float6E3M2), ("C64", .complex64), ("U64", .uint64),
  ])
  func parsesSafetensorsNames(_ text: String, _ dtype: DType) {
    #expect(DType(rawValue: text) == dtype)
  }

  @Test(arguments: ["f32", "FP32", "float32", "", "F8", "BF"])
  func rejectsUnknownNames(_ text: String) {
    #expect(DType(rawValue: text) == nil)
  }

  @Test(arguments: [
    (DType.float32, 3, 12 as Int?), (.float32, 0, 0), (.bool, 5, 5), (.bfloat16, 7, 14),
    (.float64, 2, 16), (.float4E2M1, 4, 2), (.float4E2M1, 3, nil), (.float4E2M1, 1, nil),
    (.float6E2M3, 4, 3), (.float6E3M2, 2, nil), (.float6E2M3, 8, 6),
    (.float64, Int.max / 8, nil), (.uint8, Int.max / 8, Int.max / 8),
  ])
  func byteCountOfElements(_ dtype: DType, _ count: Int, _ expected: Int?) {
    #expect(dtype.byteCount(elements: count) == expected)
  }
}

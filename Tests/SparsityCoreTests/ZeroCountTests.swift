import SparsityCore
import Testing

/// A dtype and element bit patterns (little-endian integers of the element width) with the
/// expected zero flags.
struct ZeroCase: Sendable, CustomTestStringConvertible {
  var dtype: DType
  var elements: [UInt64]
  var isZero: [Bool]
  var testDescription: String { dtype.rawValue }
}

@Suite("Nonzero counting")
struct ZeroCountTests {
  static let cases: [ZeroCase] = [
    ZeroCase(dtype: .bool, elements: [0, 1, 0, 1, 1], isZero: [true, false, true, false, false]),
    ZeroCase(dtype: .uint8, elements: [0, 1, 0x80, 0xFF], isZero: [true, false, false, false]),
    ZeroCase(dtype: .int8, elements: [0, 1, 0x80, 0xFF], isZero: [true, false, false, false]),
    // 8-bit floats: 0x80 is -0 for E4M3 and E5M2 ...
    ZeroCase(dtype: .float8E4M3, elements: [0, 0x80, 0x01, 0x81, 0x7F, 0x38], isZero: [true, true, false, false, false, false]),
    ZeroCase(dtype: .float8E5M2, elements: [0, 0x80, 0x01, 0x81, 0x7C, 0x3C], isZero: [true, true, false, false, false, false]),
    // ... but NaN for the FNUZ variants, which have a single zero.
    ZeroCase(dtype: .float8E4M3FNUZ, elements: [0, 0x80, 0x01, 0x81], isZero: [true, false, false, false]),
    ZeroCase(dtype: .float8E5M2FNUZ, elements: [0, 0x80, 0x01, 0x81], isZero: [true, false, false, false]),
    // E8M0 is a pure exponent (0x00 = 2^-127, 0xFF = NaN): it has no zero.
    ZeroCase(dtype: .float8E8M0, elements: [0, 0x80, 0x7F, 0xFF], isZero: [false, false, false, false]),
    ZeroCase(dtype: .int16, elements: [0, 1, 0x8000, 0xFFFF, 0x0100], isZero: [true, false, false, false, false]),
    ZeroCase(dtype: .uint16, elements: [0, 1, 0x8000, 0xFFFF], isZero: [true, false, false, false]),
    ZeroCase(dtype: .float16, elements: [0, 0x8000, 0x0001, 0x8001, 0x3C00, 0x7C00, 0x7E00, 0x0100], isZero: [true, true, false, false, false, false, false, false]),
    ZeroCase(dtype: .bfloat16, elements: [0, 0x8000, 0x0001, 0x8001, 0x3F80, 0xFF80, 0x7FC0, 0x0100], isZero: [true, true, false, false, false, false, false, false]),
    ZeroCase(dtype: .int32, elements: [0, 1, 0x8000_0000, 0x0001_0000], isZero: [true, false, false, false]),
    ZeroCase(dtype: .uint32, elements: [0, 0xFFFF_FFFF, 0x0100_0000], isZero: [true, false, false]),
    ZeroCase(dtype: .float32, elements: [0, 0x8000_0000, 0x0000_0001, 0x8000_0001, 0x3F80_0000, 0x7FC0_0000, 0x0001_0000], isZero: [true, true, false, false, false, false, false]),
    ZeroCase(dtype: .float64, elements: [0, 0x8000_0000_0000_0000, 1, 0x8000_0000_0000_0001, 0x3FF0_0000_0000_0000, 0x0000_0001_0000_0000], isZero: [true, true, false, false, false, false]),
    ZeroCase(dtype: .int64, elements: [0, 0x8000_0000_0000_0000, 1, 0x0000_0001_0000_0000], isZero: [true, false, false, false]),
    ZeroCase(dtype: .uint64, elements: [0, 0xFFFF_FFFF_FFFF_FFFF, 0x0100_0000_0000_0000], isZero: [true, false, false]),
    // complex64: (re, im) as two float32; zero when both parts are ±0.
    ZeroCase(
      dtype: .complex64,
      elements: [0, 0x8000_0000, 0x8000_0000_0000_0000, 0x8000_0000_8000_0000, 0x3F80_0000, 0x3F80_0000_0000_0000, 0x8000_0000_0000_0001],
      isZero: [true, true, true, true, false, false, false]),
  ]

  @Test func casesCoverEveryByteAlignedDType() {
    #expect(Set(Self.cases.map(\.dtype)) == Set(byteAlignedDTypes))
  }

  @Test(arguments: cases)
  func nonzeroCountMaskAndSparsity(_ c: ZeroCase) {
    let width = c.dtype.byteWidth!
    var raw = [UInt8]()
    for e in c.elements {
      for j in 0..<width { raw.append(UInt8(truncatingIfNeeded: e >> (8 * UInt64(j)))) }
    }
    let t = tensor(bytes: raw, shape: [c.elements.count], dtype: c.dtype)
    let zeros = c.isZero.filter { $0 }.count
    #expect(t.nonzeroCount == c.elements.count - zeros)
    #expect(t.sparsity == Double(zeros) / Double(c.elements.count))
    #expect(t.nonzeroMask.dtype == .bool)
    #expect(t.nonzeroMask.shape == t.shape)
    #expect(t.nonzeroMask.scalars(as: Bool.self) == c.isZero.map { !$0 })
    var flags = [Bool]()
    t.forEachZeroFlag { flags.append($0) }
    #expect(flags == c.isZero)
    // Counting a 2-D view gives the same answer.
    let matrix = Tensor.concatenated([t.reshaped([1, c.elements.count]), t.reshaped([1, c.elements.count])])
    #expect(matrix.nonzeroCount == 2 * (c.elements.count - zeros))
  }

  @Test(arguments: numericDTypes)
  func nonzeroCountOfNumericValues(_ dtype: DType) {
    let t = randomTensor([13, 11], dtype: dtype, seed: 77, density: 0.4)
    let expected = t.doubleValues.filter { $0 != 0 }.count
    #expect(t.nonzeroCount == expected)
    #expect(t.sparsity == Double(143 - expected) / 143)
    // The TensorScalar zero test agrees with the byte-level one.
    func zeroFlags<S: TensorScalar>(_: S.Type) -> [Bool] { t.scalars(as: S.self).map(\.isZeroValue) }
    var flags = [Bool]()
    t.forEachZeroFlag { flags.append($0) }
    #expect(zeroFlags(dtype.scalarType!) == flags)
  }

  @Test func emptyTensorHasNoSparsity() {
    #expect(Tensor(zeros: [0, 4]).sparsity == 0)
    #expect(Tensor(zeros: [0, 4]).nonzeroCount == 0)
    #expect(Tensor(zeros: [3, 4]).sparsity == 1)
    #expect(Tensor(repeating: Float(-0.0), shape: [4]).sparsity == 1)
  }

  @Test func scalarZeroTests() {
    #expect(Float(-0.0).isZeroValue)
    #expect(BFloat16(bitPattern: 0x8000).isZeroValue)
    #expect(!BFloat16(bitPattern: 0x0001).isZeroValue)
    #expect(Float16(-0.0).isZeroValue)
    #expect(!Float.nan.isZeroValue)
    #expect(!true.isZeroValue)
    #expect(Int8(0).isZeroValue)
  }
}
